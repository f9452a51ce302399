/* fuzz_stream: the stream reader (header, metadata, records, end record) and window decoding.
 * Input byte 0 picks the mode: bit 0 set = the rest is *decompressed* stream content, which the
 * harness compresses first (so mutations reach the header, metadata and record parsers instead of
 * dying in zstd); clear = the rest is fed as is (zstd framing, checksums, truncation). Bits 1-3 pick
 * the reader's buffer size, tiny sizes included, so records straddle buffer edges. */
#include "fuzz_common.h"

#include <string.h>
#include <zstd.h>

#include "stream.h"
#include "tokenizer.h"

static const size_t BUFSIZES[8] = {0, 1, 2, 7, 64, 333, 4096, 65536};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    uint8_t *z = NULL;
    if (mode & 1) {
        size_t cap = ZSTD_compressBound(size);
        z = malloc(cap ? cap : 1);
        ZSTD_CCtx *c = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
        size_t n = ZSTD_compress2(c, z, cap, data, size);
        ZSTD_freeCCtx(c);
        if (ZSTD_isError(n)) abort();
        data = z;
        size = n;
    }
    int fd = fuzz_memfd(data, size);
    lstm_reader *r;
    int rc = lstm_reader_open(&r, fd, BUFSIZES[(mode >> 1) & 7]);
    if (rc == 0) {
        /* Metadata consumers the tools run on any stream. */
        uint64_t v;
        lstm_meta_get_u64(lstm_reader_meta(r), "vocab_size", &v);
        if (mode & 16) {
            lstm_tokenizer *t = NULL;
            if (lstm_tokenizer_from_meta(&t, lstm_reader_meta(r)) == 0) lstm_tokenizer_free(t);
        }
        uint32_t cap = 64, ins[64], tgs[64];
        lstm_window win = {0, 0, 0, ins, tgs};
        uint8_t tag;
        const uint8_t *p;
        uint32_t len;
        for (int i = 0; i < 100000; i++) {
            int k = lstm_reader_next(r, &tag, &p, &len);
            if (k <= 0) {
                /* errors and the end are sticky */
                if (lstm_reader_next(r, &tag, &p, &len) != k) abort();
                break;
            }
            volatile uint8_t sink = 0;
            for (uint32_t j = 0; j < len; j++) sink ^= p[j]; /* the whole payload must be readable */
            (void)sink;
            if (tag == LSTM_REC_WINDOW && lstm_window_decode(p, len, &win, cap) == 0) {
                if (win.T == 0 || win.K == 0 || win.K > win.T || win.T > cap) abort();
            }
        }
        lstm_reader_free(r);
    }
    /* Window decoding on the raw bytes too: a payload need not come from a stream. */
    {
        uint32_t ins[16], tgs[16];
        lstm_window win = {0, 0, 0, ins, tgs};
        if (size <= UINT32_MAX) lstm_window_decode(data, (uint32_t)size, &win, 16);
    }
    close(fd);
    free(z);
    return 0;
}
