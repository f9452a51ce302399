/* stream.c: record streams over zstd, as specified in formats/stream.md. */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

static const uint8_t MAGIC[8] = {0x89, 'L', 'S', 'T', 'M', '\r', '\n', 0x1a};
#define HEADER_SIZE 24
#define REC_HEAD 5

/* ------------------------------------------------------------------ metadata */

void lstm_meta_init(lstm_meta *m) { m->e = NULL; m->n = m->cap = 0; }

void lstm_meta_free(lstm_meta *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].key);
        free(m->e[i].val);
    }
    free(m->e);
    lstm_meta_init(m);
}

static lstm_meta_entry *meta_find(const lstm_meta *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].key, key) == 0) return &m->e[i];
    return NULL;
}

int lstm_meta_set(lstm_meta *m, const char *key, const void *val, size_t len)
{
    size_t klen = strlen(key);
    if (klen == 0 || klen > 255 || len > LSTM_MAX_META) return LSTM_E_ARG;
    uint8_t *v = malloc(len + 1);
    if (!v) return LSTM_E_NOMEM;
    if (len) memcpy(v, val, len);
    v[len] = 0;
    lstm_meta_entry *e = meta_find(m, key);
    if (e) {
        free(e->val);
        e->val = v;
        e->len = len;
        return LSTM_OK;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        lstm_meta_entry *ne = realloc(m->e, cap * sizeof *ne);
        if (!ne) { free(v); return LSTM_E_NOMEM; }
        m->e = ne;
        m->cap = cap;
    }
    char *k = strdup(key);
    if (!k) { free(v); return LSTM_E_NOMEM; }
    m->e[m->n++] = (lstm_meta_entry){k, v, len};
    return LSTM_OK;
}

int lstm_meta_copy(lstm_meta *dst, const lstm_meta *src)
{
    lstm_meta_free(dst);
    for (size_t i = 0; i < src->n; i++) {
        int rc = lstm_meta_set(dst, src->e[i].key, src->e[i].val, src->e[i].len);
        if (rc) { lstm_meta_free(dst); return rc; }
    }
    return LSTM_OK;
}

int lstm_meta_set_str(lstm_meta *m, const char *key, const char *val) { return lstm_meta_set(m, key, val, strlen(val)); }

int lstm_meta_set_u64(lstm_meta *m, const char *key, uint64_t v)
{
    char buf[24];
    int n = 0;
    char tmp[24];
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return lstm_meta_set(m, key, buf, (size_t)n);
}

const uint8_t *lstm_meta_get(const lstm_meta *m, const char *key, size_t *len)
{
    const lstm_meta_entry *e = meta_find(m, key);
    if (!e) return NULL;
    if (len) *len = e->len;
    return e->val;
}

int lstm_meta_get_u64(const lstm_meta *m, const char *key, uint64_t *v)
{
    size_t len;
    const uint8_t *p = lstm_meta_get(m, key, &len);
    if (!p) return LSTM_E_NOTFOUND;
    if (len == 0 || len > 20) return LSTM_E_FORMAT;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return LSTM_E_FORMAT;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return LSTM_E_FORMAT;
        x = x * 10 + d;
    }
    *v = x;
    return LSTM_OK;
}

/* Shell-safe characters need no quoting in a provenance line. */
static int plain_arg(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+-@%^", *s)) return 0;
    return 1;
}

int lstm_meta_add_provenance(lstm_meta *m, int argc, char *const *argv)
{
    size_t old_len = 0;
    const uint8_t *old = lstm_meta_get(m, "provenance", &old_len);
    size_t cap = old_len + 2;
    for (int i = 0; i < argc; i++) cap += 4 * strlen(argv[i]) + 3;
    char *buf = malloc(cap), *p = buf;
    if (!buf) return LSTM_E_NOMEM;
    if (old_len) {
        memcpy(p, old, old_len);
        p += old_len;
        *p++ = '\n';
    }
    for (int i = 0; i < argc; i++) {
        if (i) *p++ = ' ';
        const char *a = argv[i];
        if (plain_arg(a)) {
            size_t n = strlen(a);
            memcpy(p, a, n);
            p += n;
            continue;
        }
        *p++ = '\'';
        for (; *a; a++) {
            if (*a == '\'') { memcpy(p, "'\\''", 4); p += 4; }
            else if (*a == '\n') *p++ = ' '; /* lines separate stages */
            else *p++ = *a;
        }
        *p++ = '\'';
    }
    int rc = lstm_meta_set(m, "provenance", buf, (size_t)(p - buf));
    free(buf);
    return rc;
}

int lstm_meta_encode(const lstm_meta *m, uint8_t **out, size_t *len)
{
    size_t n = 4;
    for (size_t i = 0; i < m->n; i++) n += 1 + strlen(m->e[i].key) + 4 + m->e[i].len;
    if (n > LSTM_MAX_META || m->n > UINT32_MAX) return LSTM_E_TOOBIG;
    uint8_t *b = malloc(n ? n : 1), *p = b;
    if (!b) return LSTM_E_NOMEM;
    lstm_put_u32(p, (uint32_t)m->n);
    p += 4;
    for (size_t i = 0; i < m->n; i++) {
        size_t kl = strlen(m->e[i].key);
        *p++ = (uint8_t)kl;
        memcpy(p, m->e[i].key, kl);
        p += kl;
        lstm_put_u32(p, (uint32_t)m->e[i].len);
        p += 4;
        if (m->e[i].len) memcpy(p, m->e[i].val, m->e[i].len);
        p += m->e[i].len;
    }
    *out = b;
    *len = n;
    return LSTM_OK;
}

int lstm_meta_decode(lstm_meta *m, const uint8_t *p, size_t len)
{
    lstm_meta_free(m);
    if (len < 4) return LSTM_E_FORMAT;
    uint32_t count = lstm_get_u32(p);
    size_t off = 4;
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < 1) goto bad;
        size_t kl = p[off++];
        if (kl == 0 || len - off < kl + 4) goto bad;
        char key[256];
        memcpy(key, p + off, kl);
        key[kl] = 0;
        if (memchr(key, 0, kl) || meta_find(m, key)) goto bad;
        off += kl;
        uint32_t vl = lstm_get_u32(p + off);
        off += 4;
        if (len - off < vl) goto bad;
        int rc = lstm_meta_set(m, key, p + off, vl);
        if (rc) { lstm_meta_free(m); return rc; }
        off += vl;
    }
    if (off != len) goto bad;
    return LSTM_OK;
bad:
    lstm_meta_free(m);
    return LSTM_E_FORMAT;
}

/* ------------------------------------------------------------------ writer */

struct lstm_writer {
    int fd;
    ZSTD_CCtx *cctx;
    uint8_t *stage; /* uncompressed bytes not yet handed to zstd */
    size_t stage_len, stage_cap;
    size_t frame_bytes, frame_in; /* content bytes per frame, and in the current frame */
    uint8_t *obuf;
    size_t obuf_cap;
    uint64_t records, bytes_out;
    int finished, err;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return LSTM_E_IO;
        }
        p += k;
        n -= (size_t)k;
    }
    return LSTM_OK;
}

static int compress_stage(lstm_writer *w, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {w->stage, w->stage_len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->obuf, w->obuf_cap, 0};
        size_t rem = ZSTD_compressStream2(w->cctx, &out, &in, mode);
        if (ZSTD_isError(rem)) return LSTM_E_INTERNAL;
        if (out.pos) {
            int rc = write_all(w->fd, w->obuf, out.pos);
            if (rc) return rc;
            w->bytes_out += out.pos;
        }
        if (mode == ZSTD_e_continue ? in.pos == in.size : rem == 0) break;
    }
    w->stage_len = 0;
    return LSTM_OK;
}

static int feed(lstm_writer *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n) {
        size_t take = w->stage_cap - w->stage_len;
        if (take > w->frame_bytes - w->frame_in) take = w->frame_bytes - w->frame_in;
        if (take > n) take = n;
        memcpy(w->stage + w->stage_len, p, take);
        w->stage_len += take;
        w->frame_in += take;
        p += take;
        n -= take;
        int end = w->frame_in == w->frame_bytes;
        if (end || w->stage_len == w->stage_cap) {
            int rc = compress_stage(w, end ? ZSTD_e_end : ZSTD_e_continue);
            if (rc) return rc;
            if (end) w->frame_in = 0;
        }
    }
    return LSTM_OK;
}

int lstm_writer_open(lstm_writer **out, int fd, uint32_t kind, const lstm_meta *meta, const lstm_writer_opts *opts)
{
    *out = NULL;
    lstm_writer *w = calloc(1, sizeof *w);
    if (!w) return LSTM_E_NOMEM;
    w->fd = fd;
    w->frame_bytes = opts && opts->frame_bytes ? opts->frame_bytes : (size_t)4 << 20;
    w->stage_cap = w->frame_bytes < (128u << 10) ? w->frame_bytes : (128u << 10);
    w->obuf_cap = ZSTD_CStreamOutSize();
    w->stage = malloc(w->stage_cap);
    w->obuf = malloc(w->obuf_cap);
    w->cctx = ZSTD_createCCtx();
    int rc = LSTM_E_NOMEM;
    if (!w->stage || !w->obuf || !w->cctx) goto fail;
    rc = LSTM_E_ARG;
    int level = opts && opts->level ? opts->level : 3;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level))) goto fail;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1))) goto fail;
    if (opts && opts->threads > 0) ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_nbWorkers, opts->threads); /* ignored if unsupported */

    uint8_t *mb = NULL;
    size_t ml = 0;
    lstm_meta empty;
    lstm_meta_init(&empty);
    rc = lstm_meta_encode(meta ? meta : &empty, &mb, &ml);
    if (rc) goto fail;
    uint8_t h[HEADER_SIZE];
    memcpy(h, MAGIC, 8);
    lstm_put_u32(h + 8, LSTM_STREAM_VERSION);
    lstm_put_u32(h + 12, kind);
    lstm_put_u32(h + 16, (uint32_t)ml);
    lstm_put_u32(h + 20, 0);
    rc = feed(w, h, sizeof h);
    if (!rc) rc = feed(w, mb, ml);
    free(mb);
    if (rc) goto fail;
    *out = w;
    return LSTM_OK;
fail:
    lstm_writer_free(w);
    return rc;
}

int lstm_writer_put(lstm_writer *w, uint8_t tag, const void *payload, uint32_t len)
{
    if (w->err) return w->err;
    if (w->finished || len > LSTM_MAX_RECORD) return LSTM_E_ARG;
    uint8_t h[REC_HEAD];
    h[0] = tag;
    lstm_put_u32(h + 1, len);
    int rc = feed(w, h, sizeof h);
    if (!rc && len) rc = feed(w, payload, len);
    if (rc) return w->err = rc;
    w->records++;
    return LSTM_OK;
}

int lstm_writer_finish(lstm_writer *w)
{
    if (w->err) return w->err;
    if (w->finished) return LSTM_E_ARG;
    uint8_t p[8];
    lstm_put_u64(p, w->records);
    uint8_t h[REC_HEAD] = {LSTM_REC_END, 8, 0, 0, 0};
    int rc = feed(w, h, sizeof h);
    if (!rc) rc = feed(w, p, sizeof p);
    if (!rc && w->frame_in) rc = compress_stage(w, ZSTD_e_end);
    if (rc) return w->err = rc;
    w->finished = 1;
    return LSTM_OK;
}

void lstm_writer_free(lstm_writer *w)
{
    if (!w) return;
    ZSTD_freeCCtx(w->cctx);
    free(w->stage);
    free(w->obuf);
    free(w);
}

uint64_t lstm_writer_records(const lstm_writer *w) { return w->records; }
uint64_t lstm_writer_bytes_out(const lstm_writer *w) { return w->bytes_out; }

/* ------------------------------------------------------------------ reader */

struct lstm_reader {
    int fd;
    ZSTD_DCtx *dctx;
    uint8_t *ibuf; /* compressed input */
    size_t ibuf_cap;
    ZSTD_inBuffer in;
    uint8_t *cb; /* decompressed content: valid bytes are [start, end) */
    size_t cb_cap, start, end;
    size_t zret;     /* last ZSTD_decompressStream result: 0 = at a frame boundary */
    int eof;         /* read() returned 0 */
    uint64_t bytes_in, content_total, records;
    size_t consumed; /* bytes of the last returned record, dropped on the next call */
    uint32_t version, kind;
    lstm_meta meta;
    int state; /* 0 = reading records, else the sticky return value (0 after end is kept in done) */
    int done;
    uint8_t head[256]; /* the first compressed bytes, for lstm_reader_open_sniff */
    size_t head_n;
};

static void keep_head(lstm_reader *r, const uint8_t *p, size_t n)
{
    size_t k = sizeof r->head - r->head_n;
    if (k > n) k = n;
    memcpy(r->head + r->head_n, p, k);
    r->head_n += k;
}

static int map_zstd_error(const lstm_reader *r, size_t ret)
{
    ZSTD_ErrorCode c = ZSTD_getErrorCode(ret);
    if (c == ZSTD_error_prefix_unknown && r->content_total == 0) return LSTM_E_MAGIC;
    if (c == ZSTD_error_memory_allocation) return LSTM_E_NOMEM;
    return LSTM_E_CORRUPT;
}

/* Decompress more content into cb. Returns 1 if bytes were added, 0 at a clean end of input
 * (EOF at a frame boundary), or a negative error (LSTM_E_TRUNCATED for EOF inside a frame). */
static int fill(lstm_reader *r)
{
    for (;;) {
        if (r->in.pos == r->in.size && !r->eof) {
            ssize_t k;
            do k = read(r->fd, r->ibuf, r->ibuf_cap);
            while (k < 0 && errno == EINTR);
            if (k < 0) return LSTM_E_IO;
            if (k == 0) r->eof = 1;
            if (r->head_n < sizeof r->head) keep_head(r, r->ibuf, (size_t)k);
            r->in.size = (size_t)k;
            r->in.pos = 0;
            r->bytes_in += (uint64_t)k;
        }
        if (r->in.pos == r->in.size && r->eof) {
            if (r->bytes_in == 0) return LSTM_E_EMPTY;
            return r->zret == 0 ? 0 : LSTM_E_TRUNCATED;
        }
        if (r->end == r->cb_cap) {
            size_t cap = r->cb_cap * 2;
            uint8_t *nb = realloc(r->cb, cap);
            if (!nb) return LSTM_E_NOMEM;
            r->cb = nb;
            r->cb_cap = cap;
        }
        ZSTD_outBuffer out = {r->cb + r->end, r->cb_cap - r->end, 0};
        size_t ret = ZSTD_decompressStream(r->dctx, &out, &r->in);
        if (ZSTD_isError(ret)) return map_zstd_error(r, ret);
        r->zret = ret;
        r->end += out.pos;
        r->content_total += out.pos;
        if (out.pos) return 1;
    }
}

/* Make at least n content bytes available at cb + start. */
static int need(lstm_reader *r, size_t n)
{
    if (r->end - r->start >= n) return LSTM_OK;
    if (r->start) {
        memmove(r->cb, r->cb + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    /* No growing to n up front: a header may declare sizes its data never backs, so the buffer grows
     * (in fill) only as decompressed bytes actually arrive. */
    while (r->end - r->start < n) {
        int rc = fill(r);
        if (rc < 0) return rc;
        if (rc == 0) return LSTM_E_TRUNCATED;
    }
    return LSTM_OK;
}

/* Malformed content may really be a damaged frame whose checksum has not been reached yet: decode
 * the rest and report corruption if zstd finds it, so the error names the real cause. */
static int diagnose(lstm_reader *r, int err)
{
    for (int guard = 0; guard < (1 << 20); guard++) {
        r->start = r->end = 0;
        int rc = fill(r);
        if (rc == LSTM_E_CORRUPT) return rc;
        if (rc <= 0) break;
    }
    return err;
}

static int reader_open(lstm_reader **out, int fd, size_t bufsize, const void *prefix, size_t plen, int sniff);

int lstm_reader_open(lstm_reader **out, int fd, size_t bufsize) { return reader_open(out, fd, bufsize, NULL, 0, 0); }

int lstm_reader_open_sniff(lstm_reader **out, int fd, size_t bufsize)
{
    return reader_open(out, fd, bufsize, NULL, 0, 1);
}

int lstm_reader_open_prefix(lstm_reader **out, int fd, size_t bufsize, const void *prefix, size_t plen)
{
    return reader_open(out, fd, bufsize, prefix, plen, 0);
}

int lstm_stream_looks_like_text(const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t high = 0, i = 0;
    int utf8 = 1;
    if (n == 0) return 0;
    while (i < n) {
        uint8_t c = b[i];
        if ((c < 0x20 && (c < '\t' || c > '\r')) || c == 0x7f) return 0;
        if (c < 0x80) { i++; continue; }
        high++;
        /* a well-formed UTF-8 sequence (lead C2..F4, then continuation bytes) advances past it */
        size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        size_t j = 1;
        while (len && j < len && i + j < n && (b[i + j] & 0xc0) == 0x80) j++;
        if (!len || (j < len && i + j < n)) { utf8 = 0; i++; continue; }
        high += j - 1;
        i += j;
    }
    return utf8 || 3 * high <= n;
}

static int reader_open(lstm_reader **out, int fd, size_t bufsize, const void *prefix, size_t plen, int sniff)
{
    *out = NULL;
    lstm_reader *r = calloc(1, sizeof *r);
    if (!r) return LSTM_E_NOMEM;
    r->fd = fd;
    lstm_meta_init(&r->meta);
    r->ibuf_cap = bufsize ? bufsize : ZSTD_DStreamInSize();
    if (r->ibuf_cap < plen) r->ibuf_cap = plen;
    r->cb_cap = bufsize ? (bufsize < 64 ? 64 : bufsize) : (size_t)1 << 17;
    r->ibuf = malloc(r->ibuf_cap);
    r->cb = malloc(r->cb_cap);
    r->dctx = ZSTD_createDCtx();
    int rc = LSTM_E_NOMEM;
    if (!r->ibuf || !r->cb || !r->dctx) goto fail;
    ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, 27); /* refuse frames asking for > 128 MiB windows */
    r->in = (ZSTD_inBuffer){r->ibuf, 0, 0};
    if (plen) { /* bytes the caller already read from fd: they come first */
        memcpy(r->ibuf, prefix, plen);
        r->in.size = plen;
        r->bytes_in = plen;
        keep_head(r, prefix, plen);
    }

    rc = need(r, HEADER_SIZE);
    if (rc == LSTM_E_TRUNCATED && r->end - r->start < 8 && memcmp(r->cb + r->start, MAGIC, r->end - r->start) != 0)
        rc = LSTM_E_MAGIC;
    if (rc) goto fail;
    const uint8_t *h = r->cb + r->start;
    if (memcmp(h, MAGIC, 8) != 0) { rc = LSTM_E_MAGIC; goto fail; }
    r->version = lstm_get_u32(h + 8);
    r->kind = lstm_get_u32(h + 12);
    uint32_t ml = lstm_get_u32(h + 16);
    if (r->version != LSTM_STREAM_VERSION) { rc = LSTM_E_VERSION; goto fail; }
    if (ml > LSTM_MAX_META) { rc = diagnose(r, LSTM_E_FORMAT); goto fail; }
    r->start += HEADER_SIZE;
    rc = need(r, ml);
    if (rc) goto fail;
    rc = lstm_meta_decode(&r->meta, r->cb + r->start, ml);
    if (rc == LSTM_E_FORMAT) rc = diagnose(r, rc);
    if (rc) goto fail;
    r->start += ml;
    *out = r;
    return LSTM_OK;
fail:
    /* Not zstd, or ended before a byte of content (but not inside zstd's magic, 28 b5 2f fd, whose
     * first byte is '('): a text file if its bytes say so. */
    if (sniff && (rc == LSTM_E_MAGIC || (rc == LSTM_E_TRUNCATED && r->content_total == 0)) &&
        !(r->head_n < 4 && memcmp(r->head, "\x28\xb5\x2f\xfd", r->head_n) == 0) &&
        lstm_stream_looks_like_text(r->head, r->head_n))
        rc = LSTM_E_TEXT;
    lstm_reader_free(r);
    return rc;
}

static int tag_allowed(uint32_t kind, uint8_t tag)
{
    if (tag == LSTM_REC_END) return 1;
    if (kind == LSTM_KIND_TOKS) return tag == LSTM_REC_DOC;
    if (kind == LSTM_KIND_WIND) return tag == LSTM_REC_WINDOW;
    if (kind == LSTM_KIND_VOCB) return 0;
    return 1; /* a future kind: records are framed, so they can still be listed */
}

int lstm_reader_next(lstm_reader *r, uint8_t *tag, const uint8_t **payload, uint32_t *len)
{
    if (r->done) return 0;
    if (r->state) return r->state;
    r->start += r->consumed;
    r->consumed = 0;
    int rc = need(r, REC_HEAD);
    if (rc) return r->state = rc;
    uint8_t t = r->cb[r->start];
    uint32_t n = lstm_get_u32(r->cb + r->start + 1);
    if (!tag_allowed(r->kind, t) || n > LSTM_MAX_RECORD || (t == LSTM_REC_END && n != 8))
        return r->state = diagnose(r, LSTM_E_FORMAT);
    rc = need(r, REC_HEAD + (size_t)n);
    if (rc) return r->state = rc;
    const uint8_t *p = r->cb + r->start + REC_HEAD;
    if (t == LSTM_REC_END) {
        if (lstm_get_u64(p) != r->records) return r->state = diagnose(r, LSTM_E_FORMAT);
        r->start += REC_HEAD + 8;
        /* Nothing may follow, and the last frame must close (which verifies its checksum). */
        if (r->end != r->start) return r->state = diagnose(r, LSTM_E_FORMAT);
        for (;;) {
            rc = fill(r);
            if (rc < 0) return r->state = rc;
            if (rc == 0) break;
            return r->state = LSTM_E_FORMAT;
        }
        r->done = 1;
        return 0;
    }
    r->records++;
    r->consumed = REC_HEAD + n;
    *tag = t;
    *payload = p;
    *len = n;
    return 1;
}

uint32_t lstm_reader_kind(const lstm_reader *r) { return r->kind; }
uint32_t lstm_reader_version(const lstm_reader *r) { return r->version; }
const lstm_meta *lstm_reader_meta(const lstm_reader *r) { return &r->meta; }
uint64_t lstm_reader_bytes_in(const lstm_reader *r) { return r->bytes_in; }

void lstm_reader_free(lstm_reader *r)
{
    if (!r) return;
    ZSTD_freeDCtx(r->dctx);
    free(r->ibuf);
    free(r->cb);
    lstm_meta_free(&r->meta);
    free(r);
}

const char *lstm_kind_desc(uint32_t kind)
{
    if (kind == LSTM_KIND_TOKS) return "a token stream";
    if (kind == LSTM_KIND_WIND) return "windows";
    if (kind == LSTM_KIND_VOCB) return "a vocabulary file";
    return "an unknown kind";
}

const char *lstm_kind_name(uint32_t kind, char buf[5])
{
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)(kind >> (8 * i));
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[4] = 0;
    return buf;
}

/* ------------------------------------------------------------------ typed records */

int lstm_doc_put(lstm_writer *w, const uint32_t *ids, uint32_t n)
{
    if (n > LSTM_MAX_RECORD / 4) return LSTM_E_TOOBIG;
    /* Encode in chunks through a small buffer: documents can be large. */
    uint8_t h[REC_HEAD];
    if (w->err) return w->err;
    if (w->finished) return LSTM_E_ARG;
    h[0] = LSTM_REC_DOC;
    lstm_put_u32(h + 1, n * 4);
    int rc = feed(w, h, sizeof h);
    uint8_t buf[4096];
    for (uint32_t i = 0; !rc && i < n;) {
        uint32_t k = 0;
        for (; k < sizeof buf / 4 && i < n; k++, i++) lstm_put_u32(buf + 4 * k, ids[i]);
        rc = feed(w, buf, 4 * k);
    }
    if (rc) return w->err = rc;
    w->records++;
    return LSTM_OK;
}

int lstm_window_put(lstm_writer *w, const lstm_window *win)
{
    if (win->T == 0 || win->K == 0 || win->K > win->T || win->T > LSTM_MAX_RECORD / 8) return LSTM_E_ARG;
    size_t n = 12 + 4 * ((size_t)win->T + win->K);
    uint8_t stackbuf[4096];
    uint8_t *p = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!p) return LSTM_E_NOMEM;
    lstm_put_u32(p, win->flags);
    lstm_put_u32(p + 4, win->T);
    lstm_put_u32(p + 8, win->K);
    for (uint32_t i = 0; i < win->T; i++) lstm_put_u32(p + 12 + 4 * i, win->inputs[i]);
    for (uint32_t i = 0; i < win->K; i++) lstm_put_u32(p + 12 + 4 * ((size_t)win->T + i), win->targets[i]);
    int rc = lstm_writer_put(w, LSTM_REC_WINDOW, p, (uint32_t)n);
    if (p != stackbuf) free(p);
    return rc;
}

int lstm_window_decode(const uint8_t *p, uint32_t len, lstm_window *win, uint32_t cap)
{
    if (len < 12) return LSTM_E_FORMAT;
    uint32_t T = lstm_get_u32(p + 4), K = lstm_get_u32(p + 8);
    if (T == 0 || K == 0 || K > T || (uint64_t)len != 12 + 4 * ((uint64_t)T + K)) return LSTM_E_FORMAT;
    if (T > cap) return LSTM_E_TOOBIG;
    win->flags = lstm_get_u32(p);
    win->T = T;
    win->K = K;
    for (uint32_t i = 0; i < T; i++) win->inputs[i] = lstm_get_u32(p + 12 + 4 * i);
    for (uint32_t i = 0; i < K; i++) win->targets[i] = lstm_get_u32(p + 12 + 4 * ((size_t)T + i));
    return LSTM_OK;
}
