/* checkpoint.c: checkpoint container write (atomic) and read (mmap + full verification). */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "hash.h"
#include "stream.h"

static const uint8_t MAGIC[8] = {0x89, 'L', 'C', 'K', 'P', '\r', '\n', 0x1a};
static const uint8_t MAGIC_MODEL[8] = {0x89, 'L', 'M', 'D', 'L', '\r', '\n', 0x1a}; /* lstm-export's */
#define HDR 64
#define ALIGN 64
#define MAX_ENTRIES 4096

/* ------------------------------------------------------------------ writer */

typedef struct {
    int fd;
    lstm_xxh64_state *h;
    uint64_t pos;
    uint8_t buf[1 << 16];
    size_t len;
} wbuf;

static int wflush(wbuf *w)
{
    size_t off = 0;
    while (off < w->len) {
        ssize_t k = write(w->fd, w->buf + off, w->len - off);
        if (k < 0) {
            if (errno == EINTR) continue;
            return LSTM_E_IO;
        }
        off += (size_t)k;
    }
    w->len = 0;
    return LSTM_OK;
}

static int wput(wbuf *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    lstm_xxh64_update(w->h, p, n);
    w->pos += n;
    while (n) {
        size_t take = sizeof w->buf - w->len < n ? sizeof w->buf - w->len : n;
        memcpy(w->buf + w->len, p, take);
        w->len += take;
        p += take;
        n -= take;
        if (w->len == sizeof w->buf) {
            int rc = wflush(w);
            if (rc) return rc;
        }
    }
    return LSTM_OK;
}

static int wzero(wbuf *w, uint64_t n)
{
    static const uint8_t z[ALIGN];
    while (n) {
        size_t k = n < ALIGN ? (size_t)n : ALIGN;
        int rc = wput(w, z, k);
        if (rc) return rc;
        n -= k;
    }
    return LSTM_OK;
}

static const lstm_ck_entry *find_in(const lstm_ck_entry *e, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0) return &e[i];
    return NULL;
}

/* Bytes per element of a tensor type, 0 for bytes entries. */
static uint64_t elem_size(int type)
{
    switch (type) {
    case LSTM_CK_F32: return 4;
    case LSTM_CK_I8: return 1;
    case LSTM_CK_BF16: return 2;
    }
    return 0;
}

static int type_ok(int kind, int type)
{
    if (type == LSTM_CK_F32 || type == LSTM_CK_BYTES) return 1;
    return kind == LSTM_CK_KIND_MODEL && (type == LSTM_CK_I8 || type == LSTM_CK_BF16);
}

int lstm_ck_write(const char *path, int force, const lstm_ck_entry *e, size_t n)
{
    return lstm_ck_write_kind(path, force, LSTM_CK_KIND_CHECKPOINT, e, n);
}

int lstm_ck_write_kind(const char *path, int force, int kind, const lstm_ck_entry *e, size_t n)
{
    if (n == 0 || n > MAX_ENTRIES || (kind != LSTM_CK_KIND_CHECKPOINT && kind != LSTM_CK_KIND_MODEL)) return LSTM_E_ARG;
    uint64_t *off = calloc(n, sizeof *off);
    if (!off) return LSTM_E_NOMEM;
    /* Layout: owned entries in order, each 64-aligned; views take offsets inside their owner. */
    uint64_t pos = HDR, table_len = 0;
    int rc = LSTM_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t nl = strlen(e[i].name);
        if (nl == 0 || nl > 255 || e[i].ndim < 0 || e[i].ndim > 4 || !type_ok(kind, e[i].type))
            rc = LSTM_E_ARG;
        table_len += 1 + 1 + nl + 1 + 8 * (uint64_t)e[i].ndim + 16;
        if (e[i].view_of) continue;
        off[i] = pos;
        pos += (e[i].nbytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if (!e[i].view_of) continue;
        const lstm_ck_entry *o = find_in(e, n, e[i].view_of);
        const uint8_t *d = e[i].data, *od = o ? o->data : NULL;
        if (!o || o->view_of || d < od || d + e[i].nbytes > od + o->nbytes || (d - od) % ALIGN) {
            rc = LSTM_E_ARG;
            break;
        }
        off[i] = off[o - e] + (uint64_t)(d - od);
    }
    uint64_t table_off = pos, file_size = table_off + table_len + 8;
    lstm_out out;
    if (!rc) rc = lstm_out_open(&out, path, force);
    if (rc) { free(off); return rc; }
    wbuf *w = malloc(sizeof *w);
    if (w && !(w->h = lstm_xxh64_new(0))) {
        free(w);
        w = NULL;
    }
    if (!w) { lstm_out_abort(&out); free(off); return LSTM_E_NOMEM; }
    w->fd = out.fd;
    w->pos = 0;
    w->len = 0;

    uint8_t h[HDR] = {0};
    memcpy(h, kind == LSTM_CK_KIND_MODEL ? MAGIC_MODEL : MAGIC, 8);
    lstm_put_u32(h + 8, LSTM_CK_VERSION);
    lstm_put_u32(h + 12, HDR);
    lstm_put_u64(h + 16, file_size);
    lstm_put_u32(h + 24, (uint32_t)n);
    lstm_put_u64(h + 32, table_off);
    lstm_put_u64(h + 40, table_len);
    rc = wput(w, h, HDR);
    for (size_t i = 0; i < n && !rc; i++) {
        if (e[i].view_of) continue;
        rc = wzero(w, off[i] - w->pos);
        if (!rc && e[i].nbytes) rc = wput(w, e[i].data, e[i].nbytes);
    }
    if (!rc) rc = wzero(w, table_off - w->pos);
    for (size_t i = 0; i < n && !rc; i++) {
        uint8_t t[3 + 255 + 8 * 4 + 16];
        size_t k = 0, nl = strlen(e[i].name);
        t[k++] = (uint8_t)e[i].type;
        t[k++] = (uint8_t)nl;
        memcpy(t + k, e[i].name, nl);
        k += nl;
        t[k++] = (uint8_t)e[i].ndim;
        for (int d = 0; d < e[i].ndim; d++, k += 8) lstm_put_u64(t + k, e[i].dims[d]);
        lstm_put_u64(t + k, off[i]);
        lstm_put_u64(t + k + 8, e[i].nbytes);
        rc = wput(w, t, k + 16);
    }
    if (!rc) {
        uint8_t c[8];
        lstm_put_u64(c, lstm_xxh64_digest(w->h));
        rc = wflush(w);
        memcpy(w->buf, c, 8); /* the checksum is not part of what it sums */
        w->len = 8;
        if (!rc) rc = wflush(w);
    }
    if (!rc) rc = lstm_out_commit(&out);
    else lstm_out_abort(&out);
    lstm_xxh64_free(w->h);
    free(w);
    free(off);
    return rc;
}

/* ------------------------------------------------------------------ reader */

struct lstm_ck {
    const uint8_t *map;
    size_t size;
    int heap; /* map is a malloc'ed copy (read from a pipe), not a mapping */
    int kind; /* LSTM_CK_KIND_* */
    lstm_ck_entry *e;
    char *names;
    size_t n;
};

void lstm_ck_close(lstm_ck *ck)
{
    if (!ck) return;
    if (ck->map && ck->heap) free((void *)ck->map);
    else if (ck->map) munmap((void *)ck->map, ck->size);
    free(ck->e);
    free(ck->names);
    free(ck);
}

int lstm_ck_is_magic(const void *p, size_t n)
{
    return n >= 8 && (memcmp(p, MAGIC, 8) == 0 || memcmp(p, MAGIC_MODEL, 8) == 0);
}

int lstm_ck_kind(const lstm_ck *ck) { return ck->kind; }

int lstm_ck_is_checkpoint(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    uint8_t b[8];
    ssize_t k = read(fd, b, 8);
    close(fd);
    return k == 8 && lstm_ck_is_magic(b, 8);
}

static int parse(lstm_ck *ck)
{
    const uint8_t *m = ck->map;
    size_t size = ck->size;
    if (size < 8 || !lstm_ck_is_magic(m, size))
        return size < 8 && (memcmp(m, MAGIC, size) == 0 || memcmp(m, MAGIC_MODEL, size) == 0) ? LSTM_E_TRUNCATED : LSTM_E_MAGIC;
    ck->kind = memcmp(m, MAGIC_MODEL, 8) == 0 ? LSTM_CK_KIND_MODEL : LSTM_CK_KIND_CHECKPOINT;
    if (size < HDR + 8) return LSTM_E_TRUNCATED;
    if (lstm_get_u32(m + 8) != LSTM_CK_VERSION) return LSTM_E_VERSION;
    uint64_t fsize = lstm_get_u64(m + 16);
    if (fsize > size) return LSTM_E_TRUNCATED;
    if (fsize < size || lstm_get_u32(m + 12) != HDR) return LSTM_E_FORMAT;
    if (lstm_xxh64(m, size - 8, 0) != lstm_get_u64(m + size - 8)) return LSTM_E_CORRUPT;
    uint32_t n = lstm_get_u32(m + 24);
    uint64_t toff = lstm_get_u64(m + 32), tlen = lstm_get_u64(m + 40);
    if (n == 0 || n > MAX_ENTRIES || toff < HDR || toff > size - 8 || tlen != size - 8 - toff) return LSTM_E_FORMAT;
    ck->e = calloc(n, sizeof *ck->e);
    ck->names = malloc(n * 256);
    if (!ck->e || !ck->names) return LSTM_E_NOMEM;
    const uint8_t *t = m + toff, *tend = t + tlen;
    for (uint32_t i = 0; i < n; i++) {
        lstm_ck_entry *e = &ck->e[i];
        if (tend - t < 3) return LSTM_E_FORMAT;
        e->type = t[0];
        size_t nl = t[1];
        if (!type_ok(ck->kind, e->type) || nl == 0 || (size_t)(tend - t) < 3 + nl) return LSTM_E_FORMAT;
        char *name = ck->names + 256 * (size_t)i;
        memcpy(name, t + 2, nl);
        name[nl] = 0;
        if (memchr(name, 0, nl)) return LSTM_E_FORMAT;
        e->name = name;
        t += 2 + nl;
        e->ndim = *t++;
        if (e->ndim > 4 || (e->type == LSTM_CK_BYTES && e->ndim) || (size_t)(tend - t) < 8 * (size_t)e->ndim + 16)
            return LSTM_E_FORMAT;
        uint64_t count = 1;
        for (int d = 0; d < e->ndim; d++, t += 8) {
            e->dims[d] = lstm_get_u64(t);
            if (e->dims[d] && count > UINT64_MAX / 8 / e->dims[d]) return LSTM_E_FORMAT;
            count *= e->dims[d];
        }
        uint64_t off = lstm_get_u64(t), nb = lstm_get_u64(t + 8);
        t += 16;
        if (off % ALIGN || off < HDR || off > toff || nb > toff - off) return LSTM_E_FORMAT;
        if (e->type != LSTM_CK_BYTES && nb != elem_size(e->type) * count) return LSTM_E_FORMAT;
        e->data = m + off;
        e->nbytes = nb;
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(ck->e[j].name, name) == 0) return LSTM_E_FORMAT;
            /* Ranges either nest (a view inside its owner) or are disjoint. */
            const uint8_t *a0 = ck->e[j].data, *a1 = a0 + ck->e[j].nbytes, *b0 = e->data, *b1 = b0 + nb;
            int disjoint = b1 <= a0 || a1 <= b0, nested = (a0 <= b0 && b1 <= a1) || (b0 <= a0 && a1 <= b1);
            if (!disjoint && !nested) return LSTM_E_FORMAT;
        }
    }
    if (t != tend) return LSTM_E_FORMAT;
    ck->n = n;
    return LSTM_OK;
}

/* A pipe cannot be mapped: read it whole (after the prefix already taken from it) into memory. */
static int read_all(int fd, const uint8_t *prefix, size_t plen, uint8_t **data, size_t *size)
{
    size_t n = plen, cap = plen > 65536 ? plen : 65536;
    uint8_t *b = malloc(cap);
    if (!b) return LSTM_E_NOMEM;
    if (plen) memcpy(b, prefix, plen);
    for (;;) {
        if (n == cap) {
            uint8_t *nb = cap <= SIZE_MAX / 2 ? realloc(b, cap * 2) : NULL;
            if (!nb) { free(b); return LSTM_E_NOMEM; }
            b = nb;
            cap *= 2;
        }
        ssize_t k = read(fd, b + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { free(b); return LSTM_E_IO; }
        if (k == 0) break;
        n += (size_t)k;
    }
    /* Tensors are 64-byte aligned in the file and read in place: so must the buffer be, like a mapping. */
    if ((uintptr_t)b % 64) {
        uint8_t *ab = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
        if (!ab) { free(b); return LSTM_E_NOMEM; }
        memcpy(ab, b, n);
        free(b);
        b = ab;
    }
    *data = b;
    *size = n;
    return LSTM_OK;
}

int lstm_ck_open_fd(lstm_ck **out, int fd, const void *prefix, size_t plen)
{
    *out = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) return LSTM_E_IO;
    if (S_ISDIR(st.st_mode)) { errno = EISDIR; return LSTM_E_IO; }
    lstm_ck *ck = calloc(1, sizeof *ck);
    if (!ck) return LSTM_E_NOMEM;
    if (S_ISREG(st.st_mode) && plen == 0) {
        if (st.st_size == 0) { free(ck); return LSTM_E_EMPTY; }
        ck->size = (size_t)st.st_size;
        void *m = mmap(NULL, ck->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) { free(ck); return LSTM_E_IO; }
        ck->map = m;
    } else {
        uint8_t *b;
        int rc = read_all(fd, prefix, plen, &b, &ck->size);
        if (rc) { free(ck); return rc; }
        ck->map = b;
        ck->heap = 1;
        if (ck->size == 0) { lstm_ck_close(ck); return LSTM_E_EMPTY; }
    }
    int rc = parse(ck);
    if (rc) { lstm_ck_close(ck); return rc; }
    *out = ck;
    return LSTM_OK;
}

int lstm_ck_open(lstm_ck **out, const char *path)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return LSTM_E_IO;
    int rc = lstm_ck_open_fd(out, fd, NULL, 0);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

size_t lstm_ck_count(const lstm_ck *ck) { return ck->n; }
const lstm_ck_entry *lstm_ck_at(const lstm_ck *ck, size_t i) { return i < ck->n ? &ck->e[i] : NULL; }
const lstm_ck_entry *lstm_ck_find(const lstm_ck *ck, const char *name) { return find_in(ck->e, ck->n, name); }

int lstm_kv_get(const char *text, size_t len, const char *key, char *buf, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        if ((size_t)(nl - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = (size_t)(nl - p) - kl - 1;
            if (vl + 1 > cap) return LSTM_E_TOOBIG;
            memcpy(buf, p + kl + 1, vl);
            buf[vl] = 0;
            return LSTM_OK;
        }
        p = nl + 1;
    }
    return LSTM_E_NOTFOUND;
}
