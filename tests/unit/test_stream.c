/* test_stream.c: round trips of every stream kind, and every way a stream can be damaged. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "check.h"
#include "rng.h"
#include "stream.h"

typedef struct {
    uint8_t *p;
    size_t n;
} buf;

/* Write bytes to an unlinked temp file and return its fd positioned at 0. */
static int fd_of(const uint8_t *p, size_t n)
{
    FILE *f = tmpfile();
    if (!f) abort();
    int fd = dup(fileno(f));
    fclose(f);
    if (n && write(fd, p, n) != (ssize_t)n) abort();
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static buf slurp_fd(int fd)
{
    buf b = {NULL, 0};
    off_t end = lseek(fd, 0, SEEK_END);
    lseek(fd, 0, SEEK_SET);
    b.n = (size_t)end;
    b.p = malloc(b.n + 1);
    if (b.n && read(fd, b.p, b.n) != (ssize_t)b.n) abort();
    return b;
}

/* A token stream of ndocs documents with pseudo-random lengths (some empty, one long). */
static buf make_toks(int ndocs, size_t frame_bytes, lstm_meta *meta)
{
    int fd = fd_of(NULL, 0);
    lstm_writer *w;
    lstm_writer_opts o = {0, frame_bytes, 0};
    if (lstm_writer_open(&w, fd, LSTM_KIND_TOKS, meta, &o)) abort();
    lstm_rng r;
    lstm_rng_seed(&r, 7);
    uint32_t ids[3000];
    for (int d = 0; d < ndocs; d++) {
        uint32_t n = d == 3 ? 3000 : lstm_rng_below(&r, 40);
        for (uint32_t i = 0; i < n; i++) ids[i] = (uint32_t)(d * 1000 + i);
        if (lstm_doc_put(w, ids, n)) abort();
    }
    if (lstm_writer_finish(w)) abort();
    lstm_writer_free(w);
    buf b = slurp_fd(fd);
    close(fd);
    return b;
}

/* Read a whole stream from memory; returns the final status (0 = whole) and counts records. */
static int read_all(const uint8_t *p, size_t n, size_t bufsize, int *nrec, int check_docs)
{
    int fd = fd_of(p, n);
    lstm_reader *r;
    int rc = lstm_reader_open(&r, fd, bufsize);
    *nrec = 0;
    if (rc) { close(fd); return rc; }
    lstm_rng g;
    lstm_rng_seed(&g, 7);
    uint8_t tag;
    const uint8_t *pl;
    uint32_t len;
    while ((rc = lstm_reader_next(r, &tag, &pl, &len)) == 1) {
        if (check_docs) {
            int d = *nrec;
            uint32_t want = d == 3 ? 3000 : lstm_rng_below(&g, 40);
            CHECK(tag == LSTM_REC_DOC);
            CHECK_EQ_INT(len, 4 * want);
            for (uint32_t i = 0; i < len / 4 && i < want; i++)
                if (lstm_get_u32(pl + 4 * i) != (uint32_t)(d * 1000 + i)) { CHECK(!"doc content differs"); break; }
        }
        (*nrec)++;
    }
    CHECK_EQ_INT(lstm_reader_next(r, &tag, &pl, &len), rc); /* sticky */
    lstm_reader_free(r);
    close(fd);
    return rc;
}

/* Compress raw content as one frame with a checksum: for hand-made (possibly invalid) content. */
static buf zc(const uint8_t *p, size_t n)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    buf b;
    b.p = malloc(ZSTD_compressBound(n));
    b.n = ZSTD_compress2(c, b.p, ZSTD_compressBound(n), p, n);
    if (ZSTD_isError(b.n)) abort();
    ZSTD_freeCCtx(c);
    return b;
}

static size_t put_header(uint8_t *p, uint32_t version, uint32_t kind, uint32_t meta_len)
{
    static const uint8_t magic[8] = {0x89, 'L', 'S', 'T', 'M', '\r', '\n', 0x1a};
    memcpy(p, magic, 8);
    lstm_put_u32(p + 8, version);
    lstm_put_u32(p + 12, kind);
    lstm_put_u32(p + 16, meta_len);
    lstm_put_u32(p + 20, 0);
    return 24;
}

static int read_raw_content(const uint8_t *content, size_t n)
{
    buf b = zc(content, n);
    int k, rc = read_all(b.p, b.n, 0, &k, 0);
    free(b.p);
    return rc;
}

static void test_meta(void)
{
    lstm_meta m, d;
    lstm_meta_init(&m);
    lstm_meta_init(&d);
    CHECK(lstm_meta_set_str(&m, "tokenizer", "words") == 0);
    CHECK(lstm_meta_set_u64(&m, "vocab_size", 10002) == 0);
    CHECK(lstm_meta_set_u64(&m, "vocab_size", 18446744073709551615ull) == 0); /* replace */
    char *argv1[] = {"lstm-tok", "--unk-token", "<unk>", "it's"};
    char *argv2[] = {"lstm-window", "-L", "15"};
    CHECK(lstm_meta_add_provenance(&m, 4, argv1) == 0);
    CHECK(lstm_meta_add_provenance(&m, 3, argv2) == 0);
    uint8_t *b;
    size_t n;
    CHECK(lstm_meta_encode(&m, &b, &n) == 0);
    CHECK(lstm_meta_decode(&d, b, n) == 0);
    CHECK_EQ_INT(d.n, 3);
    uint64_t v = 0;
    CHECK(lstm_meta_get_u64(&d, "vocab_size", &v) == 0 && v == 18446744073709551615ull);
    CHECK(lstm_meta_get_u64(&d, "tokenizer", &v) == LSTM_E_FORMAT);
    CHECK(lstm_meta_get_u64(&d, "nope", &v) == LSTM_E_NOTFOUND);
    size_t pl;
    const uint8_t *prov = lstm_meta_get(&d, "provenance", &pl);
    CHECK(prov && strcmp((const char *)prov, "lstm-tok --unk-token '<unk>' 'it'\\''s'\nlstm-window -L 15") == 0);
    /* Every truncation of the block and a trailing byte are rejected. */
    for (size_t k = 0; k < n; k++) CHECK(lstm_meta_decode(&d, b, k) == LSTM_E_FORMAT);
    uint8_t *b2 = malloc(n + 1);
    memcpy(b2, b, n);
    b2[n] = 0;
    CHECK(lstm_meta_decode(&d, b2, n + 1) == LSTM_E_FORMAT);
    /* A duplicated key is rejected. */
    lstm_put_u32(b2, 4);
    memcpy(b2 + n, b + 4, 1);
    free(b2);
    free(b);
    lstm_meta_free(&m);
    lstm_meta_free(&d);
}

static void test_round_trips(void)
{
    lstm_meta m;
    lstm_meta_init(&m);
    lstm_meta_set_str(&m, "tokenizer", "blob\0with nul");
    lstm_meta_set_u64(&m, "vocab_size", 70000);
    size_t frames[] = {1, 7, 100, 0};
    size_t bufs[] = {1, 3, 17, 0};
    for (int f = 0; f < 4; f++) {
        buf b = make_toks(60, frames[f], &m);
        for (int k = 0; k < 4; k++) {
            int n;
            CHECK_EQ_INT(read_all(b.p, b.n, bufs[k], &n, 1), 0);
            CHECK_EQ_INT(n, 60);
        }
        /* The metadata survives. */
        int fd = fd_of(b.p, b.n);
        lstm_reader *r;
        CHECK(lstm_reader_open(&r, fd, 5) == 0);
        CHECK(lstm_reader_kind(r) == LSTM_KIND_TOKS);
        uint64_t v;
        CHECK(lstm_meta_get_u64(lstm_reader_meta(r), "vocab_size", &v) == 0 && v == 70000);
        lstm_reader_free(r);
        close(fd);
        free(b.p);
    }
    lstm_meta_free(&m);

    /* Windows, both formulations, tiny frames and buffers. */
    int fd = fd_of(NULL, 0);
    lstm_writer *w;
    lstm_writer_opts o = {0, 5, 0};
    CHECK(lstm_writer_open(&w, fd, LSTM_KIND_WIND, NULL, &o) == 0);
    uint32_t in[35], tg[35];
    for (uint32_t i = 0; i < 35; i++) { in[i] = i + 4; tg[i] = i + 5; }
    lstm_window win = {LSTM_WIN_CONT, 35, 35, in, tg};
    CHECK(lstm_window_put(w, &win) == 0);
    win = (lstm_window){LSTM_WIN_DOC_START, 15, 1, in, tg};
    CHECK(lstm_window_put(w, &win) == 0);
    win.K = 16;
    CHECK(lstm_window_put(w, &win) == LSTM_E_ARG);
    CHECK(lstm_writer_finish(w) == 0);
    CHECK_EQ_INT(lstm_writer_records(w), 2);
    lstm_writer_free(w);
    lseek(fd, 0, SEEK_SET);
    lstm_reader *r;
    CHECK(lstm_reader_open(&r, fd, 2) == 0);
    CHECK(lstm_reader_kind(r) == LSTM_KIND_WIND);
    uint8_t tag;
    const uint8_t *p;
    uint32_t len, di[64], dt[64];
    lstm_window got = {0, 0, 0, di, dt};
    CHECK(lstm_reader_next(r, &tag, &p, &len) == 1 && tag == LSTM_REC_WINDOW);
    CHECK(lstm_window_decode(p, len, &got, 64) == 0);
    CHECK(got.flags == LSTM_WIN_CONT && got.T == 35 && got.K == 35 && di[34] == 38 && dt[34] == 39);
    CHECK(lstm_window_decode(p, len, &got, 34) == LSTM_E_TOOBIG);
    CHECK(lstm_window_decode(p, len - 4, &got, 64) == LSTM_E_FORMAT);
    CHECK(lstm_reader_next(r, &tag, &p, &len) == 1);
    CHECK(lstm_window_decode(p, len, &got, 64) == 0);
    CHECK(got.flags == LSTM_WIN_DOC_START && got.T == 15 && got.K == 1 && dt[0] == 5);
    CHECK(lstm_reader_next(r, &tag, &p, &len) == 0);
    lstm_reader_free(r);
    close(fd);

    /* A vocabulary file: metadata, no records; and an empty token stream. */
    uint32_t kinds[] = {LSTM_KIND_VOCB, LSTM_KIND_TOKS};
    for (int k = 0; k < 2; k++) {
        fd = fd_of(NULL, 0);
        CHECK(lstm_writer_open(&w, fd, kinds[k], NULL, NULL) == 0);
        CHECK(lstm_writer_finish(w) == 0);
        lstm_writer_free(w);
        lseek(fd, 0, SEEK_SET);
        CHECK(lstm_reader_open(&r, fd, 0) == 0);
        CHECK(lstm_reader_kind(r) == kinds[k]);
        CHECK(lstm_reader_next(r, &tag, &p, &len) == 0);
        lstm_reader_free(r);
        close(fd);
    }
}

/* Offsets at which each zstd frame of b ends. */
static int frame_ends(const buf *b, size_t *ends, int max)
{
    int n = 0;
    size_t off = 0;
    while (off < b->n && n < max) {
        size_t k = ZSTD_findFrameCompressedSize(b->p + off, b->n - off);
        if (ZSTD_isError(k)) abort();
        off += k;
        ends[n++] = off;
    }
    return n;
}

static void test_damage(void)
{
    buf b = make_toks(60, 200, NULL);
    size_t ends[4096];
    int nf = frame_ends(&b, ends, 4096);
    CHECK(nf > 10); /* tiny frames: many of them */
    int n;

    /* Cut exactly between frames: every zstd check passes, only the end record is missing. */
    for (int f = 0; f < nf - 1; f++) CHECK_EQ_INT(read_all(b.p, ends[f], 7, &n, 0), LSTM_E_TRUNCATED);
    /* Cut inside frames, at every byte of the last three frames and a sample elsewhere. */
    for (size_t cut = 1; cut < b.n; cut += (cut > ends[nf - 4] ? 1 : 37)) {
        int rc = read_all(b.p, cut, 64, &n, 0);
        CHECK(rc == LSTM_E_TRUNCATED || (cut < 8 && rc == LSTM_E_MAGIC));
        if (rc != LSTM_E_TRUNCATED && !(cut < 8 && rc == LSTM_E_MAGIC)) fprintf(stderr, "cut %zu: %d\n", cut, rc);
    }
    CHECK_EQ_INT(read_all(b.p, 0, 0, &n, 0), LSTM_E_EMPTY);

    /* Flip one byte anywhere: the stream is rejected, unless the byte is one zstd ignores (a window
     * size hint in a frame header) and the records read back are exactly the original ones. */
    int corrupt = 0;
    for (size_t i = 0; i < b.n; i++) {
        b.p[i] ^= 0x10;
        int rc = read_all(b.p, b.n, 0, &n, 0);
        if (rc == 0) {
            int before = check_failures;
            CHECK_EQ_INT(read_all(b.p, b.n, 0, &n, 1), 0); /* content re-verified record by record */
            if (check_failures != before) fprintf(stderr, "flip at %zu accepted with different content\n", i);
        }
        corrupt += rc == LSTM_E_CORRUPT;
        b.p[i] ^= 0x10;
    }
    CHECK(corrupt > (int)b.n / 2); /* most flips are caught by zstd's checksum or its decoder */
    /* A flip in the last frame's checksum specifically: */
    b.p[b.n - 2] ^= 1;
    CHECK_EQ_INT(read_all(b.p, b.n, 0, &n, 0), LSTM_E_CORRUPT);
    b.p[b.n - 2] ^= 1;

    /* Another stream appended after the end record: rejected. */
    uint8_t *two = malloc(2 * b.n);
    memcpy(two, b.p, b.n);
    memcpy(two + b.n, b.p, b.n);
    CHECK_EQ_INT(read_all(two, 2 * b.n, 0, &n, 0), LSTM_E_FORMAT);
    free(two);
    free(b.p);

    /* Not zstd at all, and zstd holding something else. */
    const char *text = "hello world, this is not a stream\n";
    CHECK_EQ_INT(read_all((const uint8_t *)text, strlen(text), 0, &n, 0), LSTM_E_MAGIC);
    CHECK_EQ_INT(read_raw_content((const uint8_t *)text, strlen(text)), LSTM_E_MAGIC);
    CHECK_EQ_INT(read_raw_content((const uint8_t *)"\x89XY", 3), LSTM_E_MAGIC);
    CHECK_EQ_INT(read_raw_content((const uint8_t *)"\x89LS", 3), LSTM_E_TRUNCATED); /* a cut magic */

    /* Hand-made content: future version, bad tag, wrong end count, oversized lengths, trailing bytes. */
    uint8_t c[256];
    size_t k = put_header(c, 2, LSTM_KIND_TOKS, 4);
    memset(c + k, 0, 4);
    k += 4;
    c[k] = 'E'; lstm_put_u32(c + k + 1, 8); lstm_put_u64(c + k + 5, 0);
    size_t whole = k + 13;
    CHECK_EQ_INT(read_raw_content(c, whole), LSTM_E_VERSION);
    lstm_put_u32(c + 8, 1);
    CHECK_EQ_INT(read_raw_content(c, whole), 0); /* the hand-made stream itself is valid */
    lstm_put_u64(c + k + 5, 1);
    CHECK_EQ_INT(read_raw_content(c, whole), LSTM_E_FORMAT);
    lstm_put_u64(c + k + 5, 0);
    c[k] = 'W'; /* a window record in a token stream */
    CHECK_EQ_INT(read_raw_content(c, whole), LSTM_E_FORMAT);
    c[k] = 'Q';
    CHECK_EQ_INT(read_raw_content(c, whole), LSTM_E_FORMAT);
    c[k] = 'D';
    lstm_put_u32(c + k + 1, 0xFFFFFFF0u);
    CHECK_EQ_INT(read_raw_content(c, whole), LSTM_E_FORMAT);
    c[k] = 'E';
    lstm_put_u32(c + k + 1, 8);
    c[whole] = 0;
    CHECK_EQ_INT(read_raw_content(c, whole + 1), LSTM_E_FORMAT);
    lstm_put_u32(c + 16, 0x7FFFFFFF);
    CHECK_EQ_INT(read_raw_content(c, whole), LSTM_E_FORMAT);
    lstm_put_u32(c + 16, 40); /* metadata longer than the stream */
    CHECK_EQ_INT(read_raw_content(c, whole), LSTM_E_TRUNCATED);
}

int main(void)
{
    test_meta();
    test_round_trips();
    test_damage();
    CHECK_DONE("test_stream");
}
