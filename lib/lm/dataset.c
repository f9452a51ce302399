/* dataset.c: window streams loaded or streamed, and their batching into lanes. */
#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "rng.h"
#include "tokenizer.h"

/* The two sizes behind the last LSTM_E_VOCAB of lstm_dataset_open on this thread, for its message. */
static _Thread_local uint64_t vocab_meta;
static _Thread_local uint32_t vocab_tok;

struct lstm_dataset {
    char *path; /* for re-reading; NULL when loaded from stdin */
    lstm_meta meta;
    uint32_t T, K, V;
    uint64_t n;
    int streaming;
    size_t budget;   /* bytes of windows above which a file is streamed */
    uint32_t *in;    /* (held,T) when loaded */
    uint32_t *tg;    /* (held,K) */
    uint8_t *flags;  /* (held) */
    /* Partial: only the windows of ranges [lo, hi) are held, one after the other in in/tg/flags
     * (starts[k]: where range k's first window is). Else all n are held, window i at i. */
    int partial, nr;
    uint64_t *ranges; /* (nr) lo, hi pairs, sorted and disjoint */
    uint64_t *starts; /* (nr) */
    uint64_t held;
};

static uint64_t window_bytes(const lstm_dataset *d) { return ((uint64_t)d->T + d->K) * 4 + 1; }

/* Open a reader on the stream and check it is windows. */
static int open_reader(const char *path, int *fd, lstm_reader **r, uint32_t *kind)
{
    *fd = lstm_in_open(path);
    if (*fd < 0) return LSTM_E_IO;
    int rc = lstm_reader_open_sniff(r, *fd, 0);
    if (rc) {
        if (*fd > 0) close(*fd);
        return rc;
    }
    *kind = lstm_reader_kind(*r);
    if (*kind != LSTM_KIND_WIND) {
        lstm_reader_free(*r);
        if (*fd > 0) close(*fd);
        return LSTM_E_KIND;
    }
    return LSTM_OK;
}

static int check_window(const lstm_dataset *d, const lstm_window *w)
{
    if (w->T != d->T || w->K != d->K) return LSTM_E_FORMAT;
    for (uint32_t i = 0; i < w->T; i++)
        if (w->inputs[i] >= d->V) return LSTM_E_FORMAT;
    for (uint32_t i = 0; i < w->K; i++)
        if (w->targets[i] >= d->V) return LSTM_E_FORMAT;
    return LSTM_OK;
}

static int open_dataset(lstm_dataset **out, const char *path, size_t mem_budget, uint32_t *kind, int lazy)
{
    *out = NULL;
    lstm_dataset *d = calloc(1, sizeof *d);
    if (!d) return LSTM_E_NOMEM;
    lstm_meta_init(&d->meta);
    int fd;
    lstm_reader *r;
    *kind = 0;
    int rc = open_reader(path, &fd, &r, kind);
    if (rc) { free(d); return rc; }
    uint64_t T = 0, V = 0;
    size_t tl;
    const uint8_t *tgt = lstm_meta_get(lstm_reader_meta(r), "window_targets", &tl);
    rc = LSTM_E_FORMAT;
    if (lstm_meta_get_u64(lstm_reader_meta(r), "window_length", &T) || T == 0 || T > 1000000 ||
        lstm_meta_get_u64(lstm_reader_meta(r), "vocab_size", &V) || V < 4 || V > UINT32_MAX || !tgt)
        goto fail;
    /* vocab_size bounds every id and sizes the model: it must be the tokenizer's */
    rc = lstm_tokenizer_meta_check(lstm_reader_meta(r), &vocab_meta, &vocab_tok);
    if (rc == LSTM_E_NOTFOUND) rc = LSTM_OK;
    else if (rc && rc != LSTM_E_VOCAB) rc = LSTM_E_FORMAT; /* a blob header that is not one */
    if (rc) goto fail;
    d->T = (uint32_t)T;
    d->K = tl == 4 && memcmp(tgt, "last", 4) == 0 ? 1 : d->T;
    d->V = (uint32_t)V;
    if ((rc = lstm_meta_copy(&d->meta, lstm_reader_meta(r)))) goto fail;
    if (path && strcmp(path, "-") && !(d->path = strdup(path))) { rc = LSTM_E_NOMEM; goto fail; }
    d->budget = mem_budget;
    if (lazy && d->path) d->streaming = 1; /* counted now; lstm_dataset_keep loads a share */

    uint64_t cap = 0;
    uint32_t *win_in = malloc(4 * (size_t)d->T), *win_tg = malloc(4 * (size_t)d->T);
    if (!win_in || !win_tg) { free(win_in); free(win_tg); rc = LSTM_E_NOMEM; goto fail; }
    uint8_t tag;
    const uint8_t *p;
    uint32_t len;
    int k;
    while ((k = lstm_reader_next(r, &tag, &p, &len)) == 1) {
        lstm_window w = {0, 0, 0, win_in, win_tg};
        if ((rc = lstm_window_decode(p, len, &w, d->T)) || (rc = check_window(d, &w))) {
            if (rc == LSTM_E_TOOBIG) rc = LSTM_E_FORMAT;
            break;
        }
        if (d->streaming) { d->n++; continue; }
        if (d->n == cap) {
            uint64_t nc = cap ? 2 * cap : 1024;
            if (mem_budget && d->path && nc * (d->T + d->K + 1) * 4 > mem_budget) {
                /* Too big to hold: count only, and re-read per epoch. */
                d->streaming = 1;
                free(d->in); free(d->tg); free(d->flags);
                d->in = d->tg = NULL;
                d->flags = NULL;
                d->n++;
                continue;
            }
            uint32_t *ni = realloc(d->in, nc * d->T * 4), *nt = ni ? realloc(d->tg, nc * d->K * 4) : NULL;
            if (ni) d->in = ni;
            if (nt) d->tg = nt;
            uint8_t *nf = nt ? realloc(d->flags, nc) : NULL;
            if (nf) d->flags = nf;
            if (!ni || !nt || !nf) { rc = LSTM_E_NOMEM; break; }
            cap = nc;
        }
        memcpy(d->in + d->n * d->T, win_in, 4 * (size_t)d->T);
        memcpy(d->tg + d->n * d->K, win_tg, 4 * (size_t)d->K);
        d->flags[d->n] = (uint8_t)w.flags;
        d->n++;
    }
    free(win_in);
    free(win_tg);
    if (k < 0) rc = k;
    else if (k == 0) rc = LSTM_OK;
    if (rc) goto fail;
    if (!d->streaming) d->held = d->n;
    lstm_reader_free(r);
    if (fd > 0) close(fd);
    *out = d;
    return LSTM_OK;
fail:
    lstm_reader_free(r);
    if (fd > 0) close(fd);
    lstm_dataset_free(d);
    return rc;
}

int lstm_dataset_open(lstm_dataset **out, const char *path, size_t mem_budget, uint32_t *kind)
{
    return open_dataset(out, path, mem_budget, kind, 0);
}

int lstm_dataset_open_lazy(lstm_dataset **out, const char *path, size_t mem_budget, uint32_t *kind)
{
    return open_dataset(out, path, mem_budget, kind, 1);
}

const char *lstm_dataset_open_message(int rc, uint32_t kind, const char *name, char *buf, size_t cap)
{
    char kb[5];
    if (rc == LSTM_E_KIND)
        snprintf(buf, cap, "%s: got %s (%s), expected windows (WIND): %s", name, lstm_kind_desc(kind),
                 lstm_kind_name(kind, kb),
                 kind == LSTM_KIND_TOKS ? "pipe it through lstm-window" : "make windows with lstm-tok | lstm-window");
    else if (rc == LSTM_E_TEXT)
        snprintf(buf, cap, "%s: text/CSV, not windows: tokenize it with lstm-tok and cut it with lstm-window", name);
    else if (rc == LSTM_E_IO) snprintf(buf, cap, "%s: %s", name, strerror(errno));
    else if (rc == LSTM_E_EMPTY) snprintf(buf, cap, "%s: empty input (no stream)", name);
    else if (rc == LSTM_E_VOCAB)
        snprintf(buf, cap, "%s: vocab_size %llu in the metadata differs from the tokenizer's %u ids", name,
                 (unsigned long long)vocab_meta, vocab_tok);
    else snprintf(buf, cap, "%s: %s", name, lstm_strerror(rc));
    return buf;
}

void lstm_dataset_free(lstm_dataset *d)
{
    if (!d) return;
    lstm_meta_free(&d->meta);
    free(d->path);
    free(d->in);
    free(d->tg);
    free(d->flags);
    free(d->ranges);
    free(d->starts);
    free(d);
}

const lstm_meta *lstm_dataset_meta(const lstm_dataset *d) { return &d->meta; }
uint64_t lstm_dataset_count(const lstm_dataset *d) { return d->n; }
uint32_t lstm_dataset_T(const lstm_dataset *d) { return d->T; }
uint32_t lstm_dataset_K(const lstm_dataset *d) { return d->K; }
uint32_t lstm_dataset_vocab(const lstm_dataset *d) { return d->V; }
int lstm_dataset_streaming(const lstm_dataset *d) { return d->streaming; }
uint64_t lstm_dataset_held(const lstm_dataset *d) { return d->held; }

/* ------------------------------------------------------------------ shares */

static int cmp_range(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* ranges (nr lo, hi pairs) clipped to [0, n), sorted and merged into *out (malloc'd; *out_nr pairs),
 * their windows in *total. */
static int normalize(const uint64_t *ranges, int nr, uint64_t n, uint64_t **out, int *out_nr, uint64_t *total)
{
    uint64_t *r = malloc(sizeof *r * 2 * (size_t)(nr > 0 ? nr : 1));
    if (!r) return LSTM_E_NOMEM;
    int k = 0;
    for (int i = 0; i < nr; i++) {
        uint64_t lo = ranges[2 * i], hi = ranges[2 * i + 1] < n ? ranges[2 * i + 1] : n;
        if (lo < hi) { r[2 * k] = lo; r[2 * k + 1] = hi; k++; }
    }
    qsort(r, (size_t)k, 2 * sizeof *r, cmp_range);
    int m = 0;
    *total = 0;
    for (int i = 0; i < k; i++) {
        if (m && r[2 * i] <= r[2 * m - 1]) {
            if (r[2 * i + 1] > r[2 * m - 1]) r[2 * m - 1] = r[2 * i + 1];
            continue;
        }
        r[2 * m] = r[2 * i];
        r[2 * m + 1] = r[2 * i + 1];
        m++;
    }
    for (int i = 0; i < m; i++) *total += r[2 * i + 1] - r[2 * i];
    *out = r;
    *out_nr = m;
    return LSTM_OK;
}

/* Where window idx is held, or -1. */
static int64_t held_at(const lstm_dataset *d, uint64_t idx)
{
    if (!d->partial) return idx < d->held ? (int64_t)idx : -1;
    int lo = 0, hi = d->nr - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (idx < d->ranges[2 * mid]) hi = mid - 1;
        else if (idx >= d->ranges[2 * mid + 1]) lo = mid + 1;
        else return (int64_t)(d->starts[mid] + idx - d->ranges[2 * mid]);
    }
    return -1;
}

/* Make r (m normalized ranges, total windows) the held ranges: starts computed, r owned. */
static int set_ranges(lstm_dataset *d, uint64_t *r, int m, uint64_t total)
{
    uint64_t *st = malloc(sizeof *st * (size_t)(m > 0 ? m : 1));
    if (!st) { free(r); return LSTM_E_NOMEM; }
    for (int i = 0; i < m; i++) st[i] = i ? st[i - 1] + (r[2 * i - 1] - r[2 * i - 2]) : 0;
    free(d->ranges);
    free(d->starts);
    d->ranges = r;
    d->starts = st;
    d->nr = m;
    d->held = total;
    d->partial = !(m == 1 && r[0] == 0 && r[1] == d->n);
    return LSTM_OK;
}

static int alloc_held(lstm_dataset *d, uint64_t total)
{
    size_t c = total ? (size_t)total : 1;
    d->in = malloc(c * d->T * 4);
    d->tg = malloc(c * d->K * 4);
    d->flags = malloc(c);
    return d->in && d->tg && d->flags ? LSTM_OK : LSTM_E_NOMEM;
}

static void free_held(lstm_dataset *d)
{
    free(d->in); free(d->tg); free(d->flags);
    d->in = d->tg = NULL;
    d->flags = NULL;
}

/* A streamed file: read it once, holding the windows of the m ranges r (total windows). */
static int load_ranges(lstm_dataset *d, uint64_t *r, int m, uint64_t total)
{
    int fd;
    lstm_reader *rd;
    uint32_t kind;
    int rc = open_reader(d->path, &fd, &rd, &kind);
    if (rc) { free(r); return rc; }
    if ((rc = alloc_held(d, total))) goto out;
    uint32_t *win_tg = malloc(4 * (size_t)d->T);
    if (!win_tg) { rc = LSTM_E_NOMEM; goto out; }
    uint64_t idx = 0, pos = 0;
    int k = 0;
    while (k < m) {
        uint8_t tag;
        const uint8_t *p;
        uint32_t len;
        int got = lstm_reader_next(rd, &tag, &p, &len);
        if (got <= 0) { rc = got ? got : LSTM_E_TRUNCATED; break; }
        if (idx >= r[2 * k]) {
            lstm_window w = {0, 0, 0, d->in + pos * d->T, win_tg};
            if ((rc = lstm_window_decode(p, len, &w, d->T)) || (rc = check_window(d, &w))) { rc = LSTM_E_FORMAT; break; }
            memcpy(d->tg + pos * d->K, win_tg, 4 * (size_t)d->K);
            d->flags[pos++] = (uint8_t)w.flags;
        }
        if (++idx == r[2 * k + 1]) k++;
    }
    free(win_tg);
out:
    lstm_reader_free(rd);
    if (fd > 0) close(fd);
    if (rc) { free_held(d); free(r); return rc; }
    d->streaming = 0;
    return set_ranges(d, r, m, total);
}

int lstm_dataset_keep(lstm_dataset *d, const uint64_t *ranges, int nr)
{
    uint64_t *r, total;
    int m, rc = normalize(ranges, nr, d->n, &r, &m, &total);
    if (rc) return rc;
    if (d->streaming) {
        if (d->budget && total * window_bytes(d) > d->budget) { free(r); return LSTM_OK; } /* still too big */
        return load_ranges(d, r, m, total);
    }
    /* Held already: every window asked for must be, and they move towards the front in order. */
    uint64_t pos = 0;
    for (int k = 0; k < m; k++)
        for (uint64_t i = r[2 * k]; i < r[2 * k + 1]; i++, pos++) {
            int64_t at = held_at(d, i);
            if (at < 0) { free(r); return LSTM_E_ARG; }
            if ((uint64_t)at != pos) {
                memmove(d->in + pos * d->T, d->in + (uint64_t)at * d->T, 4 * (size_t)d->T);
                memmove(d->tg + pos * d->K, d->tg + (uint64_t)at * d->K, 4 * (size_t)d->K);
                d->flags[pos] = d->flags[at];
            }
        }
    size_t c = total ? (size_t)total : 1;
    uint32_t *ni = realloc(d->in, c * d->T * 4), *nt = realloc(d->tg, c * d->K * 4);
    uint8_t *nf = realloc(d->flags, c);
    if (ni) d->in = ni;
    if (nt) d->tg = nt;
    if (nf) d->flags = nf;
    return set_ranges(d, r, m, total);
}

int lstm_dataset_header(const lstm_dataset *d, uint8_t **out, size_t *len)
{
    uint8_t *mb;
    size_t ml;
    int rc = lstm_meta_encode(&d->meta, &mb, &ml);
    if (rc) return rc;
    uint8_t *p = malloc(ml + 20);
    if (!p) { free(mb); return LSTM_E_NOMEM; }
    lstm_put_u32(p, d->T);
    lstm_put_u32(p + 4, d->K);
    lstm_put_u32(p + 8, d->V);
    lstm_put_u64(p + 12, d->n);
    memcpy(p + 20, mb, ml);
    free(mb);
    *out = p;
    *len = ml + 20;
    return LSTM_OK;
}

int lstm_dataset_from_header(lstm_dataset **out, const uint8_t *p, size_t len)
{
    *out = NULL;
    if (len < 20) return LSTM_E_FORMAT;
    lstm_dataset *d = calloc(1, sizeof *d);
    if (!d) return LSTM_E_NOMEM;
    lstm_meta_init(&d->meta);
    d->T = lstm_get_u32(p);
    d->K = lstm_get_u32(p + 4);
    d->V = lstm_get_u32(p + 8);
    d->n = lstm_get_u64(p + 12);
    d->partial = 1; /* nothing held */
    int rc = lstm_meta_decode(&d->meta, p + 20, len - 20);
    if (!rc && (d->T == 0 || (d->K != 1 && d->K != d->T) || d->V < 4)) rc = LSTM_E_FORMAT;
    if (rc) { lstm_dataset_free(d); return rc; }
    *out = d;
    return LSTM_OK;
}

int lstm_dataset_pack(const lstm_dataset *d, const uint64_t *ranges, int nr, uint8_t **out, size_t *len)
{
    uint64_t *r, total;
    int m, rc = normalize(ranges, nr, d->n, &r, &m, &total);
    if (rc) return rc;
    if (d->streaming) { free(r); return LSTM_E_ARG; }
    size_t bytes = (size_t)(total * window_bytes(d));
    uint8_t *p = malloc(bytes ? bytes : 1);
    if (!p) { free(r); return LSTM_E_NOMEM; }
    uint32_t *in = (uint32_t *)p, *tg = in + total * d->T;
    uint8_t *fl = (uint8_t *)(tg + total * d->K);
    uint64_t pos = 0;
    for (int k = 0; k < m; k++)
        for (uint64_t i = r[2 * k]; i < r[2 * k + 1]; i++, pos++) {
            int64_t at = held_at(d, i);
            if (at < 0) { free(p); free(r); return LSTM_E_ARG; }
            memcpy(in + pos * d->T, d->in + (uint64_t)at * d->T, 4 * (size_t)d->T);
            memcpy(tg + pos * d->K, d->tg + (uint64_t)at * d->K, 4 * (size_t)d->K);
            fl[pos] = d->flags[at];
        }
    free(r);
    *out = p;
    *len = bytes;
    return LSTM_OK;
}

int lstm_dataset_unpack(lstm_dataset *d, const uint64_t *ranges, int nr, const uint8_t *p, size_t len)
{
    uint64_t *r, total;
    int m, rc = normalize(ranges, nr, d->n, &r, &m, &total);
    if (rc) return rc;
    if (len != total * window_bytes(d) || d->streaming) { free(r); return LSTM_E_ARG; }
    free_held(d);
    if ((rc = alloc_held(d, total))) { free_held(d); free(r); return rc; }
    const uint32_t *in = (const uint32_t *)p, *tg = in + total * d->T;
    const uint8_t *fl = (const uint8_t *)(tg + total * d->K);
    memcpy(d->in, in, (size_t)total * d->T * 4);
    memcpy(d->tg, tg, (size_t)total * d->K * 4);
    memcpy(d->flags, fl, (size_t)total);
    for (uint64_t i = 0; i < total * d->T; i++) /* a sender's bytes are checked like a file's */
        if (d->in[i] >= d->V) rc = LSTM_E_FORMAT;
    for (uint64_t i = 0; i < total * d->K; i++)
        if (d->tg[i] >= d->V) rc = LSTM_E_FORMAT;
    if (rc) { free_held(d); free(r); d->held = 0; d->nr = 0; return rc; }
    return set_ranges(d, r, m, total);
}

/* ------------------------------------------------------------------ batching */

typedef struct {
    int fd;
    lstm_reader *r;
    uint64_t pos; /* index of the next window this reader returns */
} lane_reader;

static int lane_seek(lstm_batcher *b, lane_reader *l, uint64_t target)
{
    if (!l->r || l->pos > target) {
        if (l->r) { lstm_reader_free(l->r); close(l->fd); l->r = NULL; }
        uint32_t kind;
        int rc = open_reader(b->d->path, &l->fd, &l->r, &kind);
        if (rc) return rc;
        l->pos = 0;
    }
    uint8_t tag;
    const uint8_t *p;
    uint32_t len;
    while (l->pos < target) {
        int k = lstm_reader_next(l->r, &tag, &p, &len);
        if (k <= 0) return k ? k : LSTM_E_TRUNCATED;
        l->pos++;
    }
    return LSTM_OK;
}

/* Window idx into (in, tg, flags) from memory or from the lane's reader. */
static int fetch(lstm_batcher *b, lane_reader *l, uint64_t idx, uint32_t *in, uint32_t *tg, uint32_t *flags)
{
    lstm_dataset *d = b->d;
    if (!d->streaming) {
        int64_t at = held_at(d, idx);
        if (at < 0) return LSTM_E_ARG; /* not in this process's share */
        memcpy(in, d->in + (uint64_t)at * d->T, 4 * (size_t)d->T);
        memcpy(tg, d->tg + (uint64_t)at * d->K, 4 * (size_t)d->K);
        *flags = d->flags[at];
        return LSTM_OK;
    }
    int rc = lane_seek(b, l, idx);
    if (rc) return rc;
    uint8_t tag;
    const uint8_t *p;
    uint32_t len;
    int k = lstm_reader_next(l->r, &tag, &p, &len);
    if (k <= 0) return k ? k : LSTM_E_TRUNCATED;
    l->pos++;
    lstm_window w = {0, 0, 0, in, tg};
    rc = lstm_window_decode(p, len, &w, d->T);
    if (!rc) rc = check_window(d, &w);
    *flags = w.flags;
    return rc ? LSTM_E_FORMAT : LSTM_OK;
}

int lstm_batcher_lanes(int Bg, int lane0, int lane_step)
{
    return lane_step < 1 || lane0 < 0 || lane0 >= Bg ? 0 : (Bg - lane0 + lane_step - 1) / lane_step;
}

int lstm_batcher_init(lstm_batcher *b, lstm_dataset *d, uint64_t begin, uint64_t end, int B, int stateful,
                      uint64_t shuffle_seed)
{
    return lstm_batcher_init_lanes(b, d, begin, end, B, 0, 1, stateful, shuffle_seed);
}

int lstm_batcher_init_lanes(lstm_batcher *b, lstm_dataset *d, uint64_t begin, uint64_t end, int Bg, int lane0,
                            int lane_step, int stateful, uint64_t shuffle_seed)
{
    memset(b, 0, sizeof *b);
    int B = lstm_batcher_lanes(Bg, lane0, lane_step);
    if (B < 1 || begin > end || end > d->n) return LSTM_E_ARG;
    b->d = d;
    b->begin = begin;
    b->end = end;
    b->B = B;
    b->Bg = Bg;
    b->lane0 = lane0;
    b->lane_step = lane_step;
    b->stateful = stateful;
    uint64_t n = end - begin;
    b->seg = (n + (uint64_t)Bg - 1) / (uint64_t)Bg;
    b->steps = b->seg; /* stateless: ceil(n / B) batches as well */
    b->win_in = malloc(4 * (size_t)d->T);
    b->win_tg = malloc(4 * (size_t)d->T);
    if (!b->win_in || !b->win_tg) { lstm_batcher_free(b); return LSTM_E_NOMEM; }
    if (!stateful && shuffle_seed && !d->streaming) {
        b->perm = malloc(n * sizeof *b->perm);
        if (!b->perm && n) { lstm_batcher_free(b); return LSTM_E_NOMEM; }
        for (uint64_t i = 0; i < n; i++) b->perm[i] = begin + i;
        lstm_rng r;
        lstm_rng_seed(&r, shuffle_seed);
        for (uint64_t i = n; i > 1; i--) { /* Fisher-Yates */
            uint64_t j = lstm_rng_next(&r) % i, t = b->perm[i - 1];
            b->perm[i - 1] = b->perm[j];
            b->perm[j] = t;
        }
    }
    if (d->streaming) {
        b->lanes = calloc((size_t)B, sizeof(lane_reader));
        if (!b->lanes) { lstm_batcher_free(b); return LSTM_E_NOMEM; }
    }
    return LSTM_OK;
}

void lstm_batcher_free(lstm_batcher *b)
{
    if (b->lanes) {
        lane_reader *l = b->lanes;
        for (int i = 0; i < b->B; i++)
            if (l[i].r) { lstm_reader_free(l[i].r); close(l[i].fd); }
        free(b->lanes);
    }
    free(b->perm);
    free(b->win_in);
    free(b->win_tg);
    memset(b, 0, sizeof *b);
}

long lstm_batcher_get(lstm_batcher *b, uint64_t step, uint32_t *inputs, uint32_t *targets, uint8_t *reset)
{
    lstm_dataset *d = b->d;
    uint32_t T = d->T;
    long count = 0;
    if (step >= b->steps) return LSTM_E_ARG;
    lane_reader *lanes = b->lanes;
    for (int i = 0; i < b->B; i++) {
        uint32_t *in = inputs + (size_t)i * T, *tg = targets + (size_t)i * T;
        uint64_t lane = (uint64_t)b->lane0 + (uint64_t)i * (uint64_t)b->lane_step; /* of the whole batch */
        uint64_t idx;
        int have;
        lane_reader *l = lanes ? &lanes[b->stateful ? i : 0] : NULL;
        if (b->stateful) {
            idx = b->begin + (uint64_t)lane * b->seg + step;
            have = (uint64_t)lane * b->seg + step < b->end - b->begin && step < b->seg;
        } else {
            uint64_t k = step * (uint64_t)b->Bg + lane;
            have = k < b->end - b->begin;
            idx = b->perm && have ? b->perm[k] : b->begin + k;
        }
        if (!have) {
            memset(in, 0, 4 * (size_t)T);
            memset(tg, 0, 4 * (size_t)T);
            reset[i] = 1;
            continue;
        }
        uint32_t flags;
        int rc = fetch(b, l, idx, in, b->win_tg, &flags);
        if (rc) return rc;
        if (d->K == T) {
            memcpy(tg, b->win_tg, 4 * (size_t)T);
        } else {
            memset(tg, 0, 4 * (size_t)T);
            tg[T - 1] = b->win_tg[0];
        }
        for (uint32_t i = 0; i < T; i++) count += tg[i] != 0;
        reset[i] = !(b->stateful && step > 0 && (flags & LSTM_WIN_CONT));
    }
    return count;
}
