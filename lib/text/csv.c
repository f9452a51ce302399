/* csv.c: incremental RFC 4180 reader, one state machine fed one byte at a time from a refillable
 * buffer so that nothing depends on where the buffer edges fall. */
#include "csv.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { ST_START, ST_UNQUOTED, ST_QUOTED, ST_QUOTE_SEEN };

struct lstm_csv {
    lstm_csv_read_fn read;
    void *ctx;
    char *buf;
    size_t bufsize, pos, fill;
    int eof, err;
    char delim; /* field separator: ',' unless set */
    char *data; /* field bytes of the current record, each field NUL-terminated */
    size_t dlen, dcap;
    size_t *off; /* (nf) start of each field in data */
    size_t *flen; /* (nf) */
    size_t nf, fcap;
    uint64_t line;       /* current line (1-based) of the byte about to be read */
    uint64_t rec_line;   /* line where the current record started */
    uint64_t quote_line; /* line where the open quoted field started */
};

int lstm_csv_open(lstm_csv **out, lstm_csv_read_fn read, void *ctx, size_t bufsize)
{
    lstm_csv *c;
    *out = NULL;
    if (!read) return LSTM_E_ARG;
    c = calloc(1, sizeof *c);
    if (!c) return LSTM_E_NOMEM;
    c->bufsize = bufsize ? bufsize : 65536;
    c->buf = malloc(c->bufsize);
    if (!c->buf) {
        free(c);
        return LSTM_E_NOMEM;
    }
    c->read = read;
    c->ctx = ctx;
    c->line = 1;
    c->delim = ',';
    *out = c;
    return 0;
}

int lstm_csv_set_delimiter(lstm_csv *c, char delim)
{
    if (delim == '"' || delim == '\n' || delim == '\r' || delim == '\0') return LSTM_E_ARG;
    c->delim = delim;
    return 0;
}

void lstm_csv_free(lstm_csv *c)
{
    if (!c) return;
    free(c->buf);
    free(c->data);
    free(c->off);
    free(c->flen);
    free(c);
}

/* Next byte, or -1 at end of input, or -2 on a read error. */
static int getb(lstm_csv *c)
{
    if (c->pos == c->fill) {
        ssize_t n;
        if (c->eof) return -1;
        do {
            n = c->read(c->ctx, c->buf, c->bufsize);
        } while (n < 0 && errno == EINTR);
        if (n < 0) return -2;
        if (n == 0) {
            c->eof = 1;
            return -1;
        }
        c->pos = 0;
        c->fill = (size_t)n;
    }
    return (unsigned char)c->buf[c->pos++];
}

/* Pushes back the byte just read (always possible: it is still in the buffer). */
static void ungetb(lstm_csv *c) { c->pos--; }

static int put(lstm_csv *c, char ch)
{
    if (c->dlen + 2 > c->dcap) {
        size_t cap = c->dcap ? c->dcap * 2 : 256;
        char *p;
        if (c->dlen + 2 > LSTM_CSV_MAX_RECORD) return LSTM_E_TOOBIG;
        p = realloc(c->data, cap);
        if (!p) return LSTM_E_NOMEM;
        c->data = p;
        c->dcap = cap;
    }
    c->data[c->dlen++] = ch;
    return 0;
}

static int begin_field(lstm_csv *c)
{
    if (c->nf == c->fcap) {
        size_t cap = c->fcap ? c->fcap * 2 : 16;
        size_t *o = realloc(c->off, cap * sizeof *o), *l;
        if (!o) return LSTM_E_NOMEM;
        c->off = o;
        l = realloc(c->flen, cap * sizeof *l);
        if (!l) return LSTM_E_NOMEM;
        c->flen = l;
        c->fcap = cap;
    }
    c->off[c->nf] = c->dlen;
    c->flen[c->nf] = 0;
    c->nf++;
    return 0;
}

static int end_field(lstm_csv *c)
{
    int e;
    c->flen[c->nf - 1] = c->dlen - c->off[c->nf - 1];
    e = put(c, '\0');
    return e;
}

int lstm_csv_next(lstm_csv *c)
{
    int st = ST_START, ch, e, any = 0;
    if (c->err) return c->err;
    for (;;) {
        c->dlen = 0;
        c->nf = 0;
        st = ST_START;
        any = 0;
        c->rec_line = c->line;
        if ((e = begin_field(c))) goto fail;
        for (;;) {
            ch = getb(c);
            if (ch == -2) {
                e = LSTM_E_IO;
                goto fail;
            }
            if (ch == -1) {
                if (st == ST_QUOTED) {
                    c->line = c->quote_line;
                    c->rec_line = c->quote_line;
                    e = LSTM_E_CSV;
                    goto fail;
                }
                if (!any) {
                    c->err = 0;
                    return 0;
                }
                if ((e = end_field(c))) goto fail;
                return 1;
            }
            if (ch == '\n') c->line++;
            if (st == ST_QUOTED) {
                if (ch == '"') st = ST_QUOTE_SEEN;
                else if ((e = put(c, (char)ch))) goto fail;
                continue;
            }
            if (st == ST_QUOTE_SEEN && ch == '"') { /* doubled quote: a literal quote */
                if ((e = put(c, '"'))) goto fail;
                st = ST_QUOTED;
                continue;
            }
            if (ch == (unsigned char)c->delim) {
                any = 1;
                if ((e = end_field(c)) || (e = begin_field(c))) goto fail;
                st = ST_START;
                continue;
            }
            if (ch == '\r') { /* CRLF ends the record; a lone CR is kept as data */
                int nx = getb(c);
                if (nx == -2) {
                    e = LSTM_E_IO;
                    goto fail;
                }
                if (nx == '\n' || nx == -1) {
                    if (nx == '\n') c->line++;
                    ch = '\n';
                } else {
                    ungetb(c);
                }
            }
            if (ch == '\n') {
                if (!any && st == ST_START) break; /* empty line: skip */
                if ((e = end_field(c))) goto fail;
                return 1;
            }
            any = 1;
            if (st == ST_START && ch == '"') {
                st = ST_QUOTED;
                c->quote_line = c->line;
                continue;
            }
            /* text after a closing quote or a quote inside an unquoted field is kept as is */
            st = ST_UNQUOTED;
            if ((e = put(c, (char)ch))) goto fail;
        }
    }
fail:
    c->err = e;
    return e;
}

size_t lstm_csv_nfields(const lstm_csv *c) { return c->nf; }

const char *lstm_csv_field(const lstm_csv *c, size_t i, size_t *len)
{
    if (i >= c->nf) return NULL;
    if (len) *len = c->flen[i];
    return c->data + c->off[i];
}

uint64_t lstm_csv_line(const lstm_csv *c) { return c->err == LSTM_E_CSV ? c->quote_line : c->rec_line; }
