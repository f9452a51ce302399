/* numparse.c: strict numeric parsing for command-line flags. */
#include "numparse.h"

#include <errno.h>
#include <stdlib.h>

int lstm_parse_long(const char *s, long lo, long hi, long *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || e == s || *e || v < lo || v > hi) return LSTM_E_RANGE;
    *out = v;
    return LSTM_OK;
}

int lstm_parse_double(const char *s, double lo, double hi, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || e == s || *e || !(v >= lo && v <= hi)) return LSTM_E_RANGE; /* NaN fails the range test */
    *out = v;
    return LSTM_OK;
}
