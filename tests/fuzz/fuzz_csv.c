/* fuzz_csv: the incremental RFC 4180 reader. Input byte 0 picks the read buffer size (1 byte and up)
 * and the size of each read() call, so quotes and CRLF pairs fall on every buffer edge. */
#include "fuzz_common.h"

#include <string.h>

#include "csv.h"

typedef struct {
    const uint8_t *p;
    size_t n, pos, chunk;
} src;

static ssize_t rd(void *ctx, void *buf, size_t cap)
{
    src *s = ctx;
    size_t k = s->n - s->pos;
    if (k > cap) k = cap;
    if (k > s->chunk) k = s->chunk;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (ssize_t)k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const size_t BUF[8] = {1, 2, 3, 5, 16, 64, 4096, 0};
    static const size_t CHUNK[4] = {1, 7, 100, (size_t)-1};
    src s = {data + 1, size - 1, 0, CHUNK[(data[0] >> 3) & 3]};
    lstm_csv *c;
    if (lstm_csv_open(&c, rd, &s, BUF[data[0] & 7])) abort();
    if (lstm_csv_set_delimiter(c, data[0] & 0x20 ? '\t' : ',')) abort(); /* CSV and TSV */
    int rc;
    uint64_t prev = 0;
    while ((rc = lstm_csv_next(c)) == 1) {
        size_t nf = lstm_csv_nfields(c);
        if (nf == 0) abort();
        for (size_t i = 0; i < nf; i++) {
            size_t len;
            const char *f = lstm_csv_field(c, i, &len);
            if (!f || f[len] != 0) abort();
        }
        if (lstm_csv_field(c, nf, NULL)) abort();
        uint64_t line = lstm_csv_line(c);
        if (line < 1 || line < prev) abort();
        prev = line;
    }
    if (rc != 0 && lstm_csv_next(c) != rc) abort(); /* errors are sticky */
    lstm_csv_free(c);
    return 0;
}
