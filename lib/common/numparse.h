/* numparse.h: strict parsing of numeric command-line values (the whole string, within a range), so
 * every tool rejects "12x", "", "nan" and out-of-range values the same way. */
#ifndef LSTM_NUMPARSE_H
#define LSTM_NUMPARSE_H
#include "errors.h"

/* 0 and *out, or LSTM_E_RANGE (not a number, trailing characters, overflow, outside [lo, hi]). */
int lstm_parse_long(const char *s, long lo, long hi, long *out);
int lstm_parse_double(const char *s, double lo, double hi, double *out);

#endif
