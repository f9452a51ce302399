/* csv.h: an incremental RFC 4180 reader (quoted fields with commas, doubled quotes and newlines;
 * LF or CRLF line ends) that reports the line number of every record and of every error. */
#ifndef LSTM_CSV_H
#define LSTM_CSV_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "errors.h"

/* Reads up to cap bytes into buf: returns the count, 0 at end of input, or -1 on error (errno set). */
typedef ssize_t (*lstm_csv_read_fn)(void *ctx, void *buf, size_t cap);

typedef struct lstm_csv lstm_csv;

#define LSTM_CSV_MAX_RECORD (256u << 20) /* bytes of field data per record, LSTM_E_TOOBIG beyond */

/* bufsize = read buffer size, 0 = default (64 KiB); tests pass tiny sizes so that fields, quotes
 * and CRLF pairs straddle buffer edges. */
int lstm_csv_open(lstm_csv **out, lstm_csv_read_fn read, void *ctx, size_t bufsize);
void lstm_csv_free(lstm_csv *c);
/* The field separator (',' by default; '\t' for TSV, ';' ...), set before the first record.
 * LSTM_E_ARG for a quote, CR, LF or NUL. */
int lstm_csv_set_delimiter(lstm_csv *c, char delim);

/* 1 and a record, 0 at the end of input, or a negative code: LSTM_E_CSV (unterminated quoted field),
 * LSTM_E_IO, LSTM_E_NOMEM, LSTM_E_TOOBIG. Empty lines are skipped. After an error the same code is
 * returned again. */
int lstm_csv_next(lstm_csv *c);
size_t lstm_csv_nfields(const lstm_csv *c);
/* Field i of the current record (NUL-terminated, may contain NUL bytes: use len); NULL if i is out of
 * range. Valid until the next lstm_csv_next. */
const char *lstm_csv_field(const lstm_csv *c, size_t i, size_t *len);
/* 1-based line where the current record starts; after LSTM_E_CSV, the line where the unterminated
 * quoted field opened. */
uint64_t lstm_csv_line(const lstm_csv *c);

#endif
