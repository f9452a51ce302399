/* ngram.c: counting, interpolated modified Kneser-Ney estimation, the model file and scoring
 * (ngram.h; formats/ngram.md is normative). */
#define _GNU_SOURCE /* qsort_r */
#include "ngram.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "stream.h"
#include "tokenizer.h"

/* ---- a hash set of fixed-length id tuples (open addressing, linear probing) ---- */
typedef struct {
    unsigned k;     /* tuple length (0: the set holds at most the empty tuple) */
    size_t n, cap;  /* tuples stored, tuples allocated */
    uint32_t *keys; /* (cap, k) */
    uint32_t *cnt;  /* (cap) a count per tuple (counting tables only; NULL otherwise) */
    uint32_t *slot; /* (nslot) tuple index + 1, 0 = empty */
    size_t nslot;   /* power of two, at least 2n */
} tset;

/* Slots only: tuples are kept, counted and written in insertion order, whatever their hash. */
static uint64_t tuple_hash(const uint32_t *key, unsigned k) { return lstm_hash_bytes(key, k * sizeof *key); }

static void tset_free(tset *t)
{
    free(t->keys);
    free(t->cnt);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

static int tset_init(tset *t, unsigned k, int counts, size_t expect)
{
    memset(t, 0, sizeof *t);
    t->k = k;
    size_t ns = 16;
    while (ns < 2 * expect) ns *= 2;
    t->nslot = ns;
    t->slot = calloc(ns, sizeof *t->slot);
    t->cap = expect < 8 ? 8 : expect;
    t->keys = malloc(t->cap * (k ? k : 1) * sizeof *t->keys);
    if (counts) t->cnt = malloc(t->cap * sizeof *t->cnt);
    if (!t->slot || !t->keys || (counts && !t->cnt)) {
        tset_free(t);
        return LSTM_E_NOMEM;
    }
    return LSTM_OK;
}

/* Index of key, or SIZE_MAX. */
static size_t tset_find(const tset *t, const uint32_t *key)
{
    size_t mask = t->nslot - 1, i = (size_t)tuple_hash(key, t->k) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t s = t->slot[i];
        if (!s) return SIZE_MAX;
        if (memcmp(t->keys + (size_t)(s - 1) * t->k, key, t->k * sizeof *key) == 0) return s - 1;
    }
}

static int tset_grow_slots(tset *t)
{
    size_t ns = t->nslot * 2, mask = ns - 1;
    uint32_t *slot = calloc(ns, sizeof *slot);
    if (!slot) return LSTM_E_NOMEM;
    for (size_t e = 0; e < t->n; e++) {
        size_t i = (size_t)tuple_hash(t->keys + e * t->k, t->k) & mask;
        while (slot[i]) i = (i + 1) & mask;
        slot[i] = (uint32_t)(e + 1);
    }
    free(t->slot);
    t->slot = slot;
    t->nslot = ns;
    return LSTM_OK;
}

/* Finds or adds key; *idx its index, *added 1 if it was new (a new count starts at 0). */
static int tset_insert(tset *t, const uint32_t *key, size_t *idx, int *added)
{
    size_t mask = t->nslot - 1, i = (size_t)tuple_hash(key, t->k) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t s = t->slot[i];
        if (!s) break;
        if (memcmp(t->keys + (size_t)(s - 1) * t->k, key, t->k * sizeof *key) == 0) {
            *idx = s - 1;
            *added = 0;
            return LSTM_OK;
        }
    }
    if (t->n >= UINT32_MAX - 1) return LSTM_E_TOOBIG;
    if (t->n == t->cap) {
        size_t cap = t->cap * 2;
        uint32_t *keys = realloc(t->keys, cap * (t->k ? t->k : 1) * sizeof *keys);
        if (!keys) return LSTM_E_NOMEM;
        t->keys = keys;
        if (t->cnt) {
            uint32_t *cnt = realloc(t->cnt, cap * sizeof *cnt);
            if (!cnt) return LSTM_E_NOMEM;
            t->cnt = cnt;
        }
        t->cap = cap;
    }
    memcpy(t->keys + t->n * t->k, key, t->k * sizeof *key);
    if (t->cnt) t->cnt[t->n] = 0;
    *idx = t->n++;
    *added = 1;
    if (2 * t->n > t->nslot) return tset_grow_slots(t); /* the new tuple is already stored */
    t->slot[i] = (uint32_t)t->n;
    return LSTM_OK;
}

/* ---- counting ---- */
struct lstm_ngram_counter {
    unsigned N;
    uint32_t V;
    int cross;
    tset t[LSTM_NGRAM_MAX_ORDER + 1]; /* t[k]: k-grams with their raw counts, k = 1..N */
    uint32_t hist[LSTM_NGRAM_MAX_ORDER]; /* the last nhist tokens (at most N - 1), most recent last */
    unsigned nhist;
    int started;
    uint64_t tokens;
};

static int is_target(uint32_t id) { return id != LSTM_PAD_ID && id != LSTM_BOS_ID; }

/* Appends id to a history of at most cap tokens. */
static void hist_push(uint32_t *hist, unsigned *nhist, unsigned cap, uint32_t id)
{
    if (cap == 0) return;
    if (*nhist == cap) {
        memmove(hist, hist + 1, (cap - 1) * sizeof *hist);
        (*nhist)--;
    }
    hist[(*nhist)++] = id;
}

int lstm_ngram_counter_new(lstm_ngram_counter **out, unsigned order, uint32_t V, int cross_docs)
{
    *out = NULL;
    if (order < 1 || order > LSTM_NGRAM_MAX_ORDER || V <= LSTM_NUM_SPECIAL) return LSTM_E_ARG;
    lstm_ngram_counter *c = calloc(1, sizeof *c);
    if (!c) return LSTM_E_NOMEM;
    c->N = order;
    c->V = V;
    c->cross = cross_docs != 0;
    for (unsigned k = 1; k <= order; k++) {
        if (tset_init(&c->t[k], k, 1, 1024)) {
            lstm_ngram_counter_free(c);
            return LSTM_E_NOMEM;
        }
    }
    *out = c;
    return LSTM_OK;
}

void lstm_ngram_counter_free(lstm_ngram_counter *c)
{
    if (!c) return;
    for (unsigned k = 1; k <= c->N; k++) tset_free(&c->t[k]);
    free(c);
}

uint64_t lstm_ngram_counter_tokens(const lstm_ngram_counter *c) { return c->tokens; }

int lstm_ngram_counter_add(lstm_ngram_counter *c, const uint32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= c->V) return LSTM_E_RANGE;
    if (!c->cross || !c->started) {
        c->nhist = 0;
        hist_push(c->hist, &c->nhist, c->N - 1, LSTM_BOS_ID);
        c->started = 1;
    }
    uint32_t key[LSTM_NGRAM_MAX_ORDER];
    for (size_t i = 0; i < n; i++) {
        uint32_t w = ids[i];
        if (is_target(w)) {
            for (unsigned k = 1; k <= c->N && k - 1 <= c->nhist; k++) {
                memcpy(key, c->hist + c->nhist - (k - 1), (k - 1) * sizeof *key);
                key[k - 1] = w;
                size_t idx;
                int added;
                int rc = tset_insert(&c->t[k], key, &idx, &added);
                if (rc) return rc;
                if (c->t[k].cnt[idx] == UINT32_MAX) return LSTM_E_TOOBIG;
                c->t[k].cnt[idx]++;
            }
            c->tokens++;
        }
        hist_push(c->hist, &c->nhist, c->N - 1, w);
    }
    return LSTM_OK;
}

/* ---- the model ---- */
typedef struct {
    uint32_t w, c; /* predicted token, its (continuation) count in the context */
} fol;

typedef struct {
    tset ctx;      /* contexts, k - 1 ids each, in file order */
    uint64_t *off; /* (nctx + 1) followers of context i are f[off[i] .. off[i+1]), ascending w */
    fol *f;        /* (nf) */
    size_t nf;
    double *tot;  /* (nctx) sum of the followers' counts, c(h) */
    double *gnum; /* (nctx) D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.): gamma(h) = gnum / tot */
    double D[3];
    uint64_t coc[4]; /* n1..n4 of this order's counts */
} level;

struct lstm_ngram {
    unsigned N;
    uint32_t V;
    int cross;
    uint64_t train_tokens;
    uint8_t *tok;
    size_t tok_len;
    level lv[LSTM_NGRAM_MAX_ORDER + 1]; /* lv[k], k = 1..N */
    double *p1;                         /* (V) the interpolated unigram distribution (0 for PAD, BOS) */
    uint32_t best1;                     /* argmax of p1, lowest id on ties */
};

static void level_free(level *L)
{
    tset_free(&L->ctx);
    free(L->off);
    free(L->f);
    free(L->tot);
    free(L->gnum);
    memset(L, 0, sizeof *L);
}

void lstm_ngram_free(lstm_ngram *m)
{
    if (!m) return;
    for (unsigned k = 1; k <= m->N; k++) level_free(&m->lv[k]);
    free(m->tok);
    free(m->p1);
    free(m);
}

void lstm_ngram_discounts(const uint64_t n[4], double D[3], int *fallback)
{
    static const double fb[3] = {0.5, 1.0, 1.5};
    double n1 = (double)n[0], n2 = (double)n[1], n3 = (double)n[2], n4 = (double)n[3];
    double Y = n1 + 2 * n2 > 0 ? n1 / (n1 + 2 * n2) : 0;
    double est[3] = {n1 > 0 ? 1 - 2 * Y * n2 / n1 : NAN, n2 > 0 ? 2 - 3 * Y * n3 / n2 : NAN,
                     n3 > 0 ? 3 - 4 * Y * n4 / n3 : NAN};
    for (int i = 0; i < 3; i++) {
        int ok = n[0] && n[1] && n[i] && n[i + 1] && isfinite(est[i]) && est[i] > 0 && est[i] <= i + 1;
        D[i] = ok ? est[i] : fb[i];
        if (!ok && fallback) *fallback = 1;
    }
}

static double discount(const level *L, uint32_t c) { return c >= 3 ? L->D[2] : c ? L->D[c - 1] : 0; }

/* Per-context totals and interpolation numerators from the followers and the discounts. */
static int level_stats(level *L)
{
    size_t nctx = L->ctx.n;
    L->tot = malloc((nctx ? nctx : 1) * sizeof *L->tot);
    L->gnum = malloc((nctx ? nctx : 1) * sizeof *L->gnum);
    if (!L->tot || !L->gnum) return LSTM_E_NOMEM;
    for (size_t i = 0; i < nctx; i++) {
        uint64_t tot = 0, nk[3] = {0, 0, 0};
        for (uint64_t j = L->off[i]; j < L->off[i + 1]; j++) {
            uint32_t c = L->f[j].c;
            tot += c;
            nk[c >= 3 ? 2 : c - 1]++;
        }
        L->tot[i] = (double)tot;
        L->gnum[i] = L->D[0] * (double)nk[0] + L->D[1] * (double)nk[1] + L->D[2] * (double)nk[2];
    }
    return LSTM_OK;
}

/* The unigram level interpolated with the uniform distribution over the V - 2 predictable ids. */
static int model_finish(lstm_ngram *m)
{
    for (unsigned k = 1; k <= m->N; k++) {
        int rc = level_stats(&m->lv[k]);
        if (rc) return rc;
    }
    m->p1 = malloc((size_t)m->V * sizeof *m->p1);
    if (!m->p1) return LSTM_E_NOMEM;
    const level *L = &m->lv[1];
    double tot = L->tot[0], uni = 1.0 / (double)(m->V - 2);
    for (uint32_t w = 0; w < m->V; w++) m->p1[w] = is_target(w) ? L->gnum[0] * uni / tot : 0;
    for (uint64_t j = L->off[0]; j < L->off[1]; j++) {
        uint32_t c = L->f[j].c;
        m->p1[L->f[j].w] = (fmax((double)c - discount(L, c), 0) + L->gnum[0] * uni) / tot;
    }
    m->best1 = LSTM_UNK_ID;
    for (uint32_t w = 0; w < m->V; w++)
        if (m->p1[w] > m->p1[m->best1]) m->best1 = w;
    return LSTM_OK;
}

static int cmp_fol(const void *a, const void *b)
{
    uint32_t x = ((const fol *)a)->w, y = ((const fol *)b)->w;
    return x < y ? -1 : x > y;
}

/* Level k from the k-grams of t and their counts adj (nt): contexts in order of first appearance. */
static int level_build(level *L, const tset *t, const uint32_t *adj)
{
    unsigned k = t->k;
    size_t n = t->n;
    int rc = tset_init(&L->ctx, k - 1, 0, n / 2 + 1);
    if (rc) return rc;
    uint32_t *ci = malloc((n ? n : 1) * sizeof *ci);
    L->f = malloc((n ? n : 1) * sizeof *L->f);
    if (!ci || !L->f) {
        free(ci);
        return LSTM_E_NOMEM;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        size_t idx;
        int added;
        rc = tset_insert(&L->ctx, t->keys + i * k, &idx, &added);
        ci[i] = (uint32_t)idx;
    }
    L->off = rc ? NULL : calloc(L->ctx.n + 1, sizeof *L->off);
    if (!rc && !L->off) rc = LSTM_E_NOMEM;
    if (rc) {
        free(ci);
        return rc;
    }
    for (size_t i = 0; i < n; i++) L->off[ci[i] + 1]++;
    for (size_t c = 0; c < L->ctx.n; c++) L->off[c + 1] += L->off[c];
    uint64_t *fill = malloc((L->ctx.n ? L->ctx.n : 1) * sizeof *fill);
    if (!fill) {
        free(ci);
        return LSTM_E_NOMEM;
    }
    memcpy(fill, L->off, L->ctx.n * sizeof *fill);
    for (size_t i = 0; i < n; i++) {
        fol f = {t->keys[i * k + k - 1], adj[i]};
        L->f[fill[ci[i]]++] = f;
        L->coc[adj[i] <= 4 ? adj[i] - 1 : 0] += adj[i] <= 4;
    }
    L->nf = n;
    for (size_t c = 0; c < L->ctx.n; c++) qsort(L->f + L->off[c], L->off[c + 1] - L->off[c], sizeof *L->f, cmp_fol);
    free(fill);
    free(ci);
    return LSTM_OK;
}

int lstm_ngram_estimate(lstm_ngram **out, const lstm_ngram_counter *c, const lstm_ngram_opts *opts,
                        const uint8_t *tok, size_t tok_len)
{
    *out = NULL;
    if (c->tokens == 0) return LSTM_E_EMPTY;
    if (opts && opts->fixed)
        for (int i = 0; i < 3; i++)
            if (!(opts->D[i] >= 0 && opts->D[i] <= i + 1)) return LSTM_E_ARG;
    lstm_ngram *m = calloc(1, sizeof *m);
    if (!m) return LSTM_E_NOMEM;
    m->N = c->N;
    m->V = c->V;
    m->cross = c->cross;
    m->train_tokens = c->tokens;
    m->tok_len = tok_len;
    m->tok = malloc(tok_len ? tok_len : 1);
    int rc = m->tok ? LSTM_OK : LSTM_E_NOMEM;
    if (!rc && tok_len) memcpy(m->tok, tok, tok_len);
    for (unsigned k = 1; k <= c->N && !rc; k++) {
        const tset *t = &c->t[k];
        uint32_t *adj = malloc((t->n ? t->n : 1) * sizeof *adj);
        if (!adj) {
            rc = LSTM_E_NOMEM;
            break;
        }
        if (k == c->N) {
            memcpy(adj, t->cnt, t->n * sizeof *adj);
        } else {
            /* Continuation counts: the number of distinct tokens seen before the k-gram, i.e. of
             * (k+1)-grams ending with it. A k-gram starting with BOS has nothing before it and keeps
             * its raw count. */
            memset(adj, 0, t->n * sizeof *adj);
            const tset *up = &c->t[k + 1];
            for (size_t e = 0; e < up->n; e++) {
                size_t i = tset_find(t, up->keys + e * up->k + 1);
                if (i == SIZE_MAX) {
                    rc = LSTM_E_INTERNAL;
                    break;
                }
                adj[i]++;
            }
            for (size_t i = 0; i < t->n && !rc; i++) {
                if (t->keys[i * k] == LSTM_BOS_ID) adj[i] = t->cnt[i];
                if (adj[i] == 0) rc = LSTM_E_INTERNAL;
            }
        }
        level *L = &m->lv[k];
        if (!rc) rc = level_build(L, t, adj);
        free(adj);
        if (rc) break;
        if (opts && opts->fixed) memcpy(L->D, opts->D, sizeof L->D);
        else lstm_ngram_discounts(L->coc, L->D, NULL);
    }
    if (!rc) rc = model_finish(m);
    if (rc) {
        lstm_ngram_free(m);
        return rc;
    }
    *out = m;
    return LSTM_OK;
}

/* ---- properties ---- */
unsigned lstm_ngram_order(const lstm_ngram *m) { return m->N; }
uint32_t lstm_ngram_vocab(const lstm_ngram *m) { return m->V; }
int lstm_ngram_cross_docs(const lstm_ngram *m) { return m->cross; }
uint64_t lstm_ngram_train_tokens(const lstm_ngram *m) { return m->train_tokens; }
const uint8_t *lstm_ngram_tokenizer(const lstm_ngram *m, size_t *len)
{
    *len = m->tok_len;
    return m->tok;
}

int lstm_ngram_level(const lstm_ngram *m, unsigned k, uint64_t *ngrams, uint64_t *contexts, double D[3], uint64_t n[4])
{
    if (k < 1 || k > m->N) return LSTM_E_ARG;
    const level *L = &m->lv[k];
    if (ngrams) *ngrams = L->nf;
    if (contexts) *contexts = L->ctx.n;
    if (D) memcpy(D, L->D, sizeof L->D);
    if (n) memcpy(n, L->coc, sizeof L->coc);
    return LSTM_OK;
}

/* ---- probabilities ---- */
static uint32_t follower_count(const level *L, size_t ctx, uint32_t w)
{
    uint64_t lo = L->off[ctx], hi = L->off[ctx + 1];
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (L->f[mid].w < w) lo = mid + 1;
        else hi = mid;
    }
    return lo < L->off[ctx + 1] && L->f[lo].w == w ? L->f[lo].c : 0;
}

static double prob(const lstm_ngram *m, const uint32_t *hist, size_t nhist, uint32_t w)
{
    double p = m->p1[w];
    if (p == 0) return 0;
    for (unsigned k = 2; k <= m->N && k - 1 <= nhist; k++) {
        const level *L = &m->lv[k];
        size_t ci = tset_find(&L->ctx, hist + nhist - (k - 1));
        /* A context never seen at order k is never seen at a higher order either. */
        if (ci == SIZE_MAX) break;
        uint32_t c = follower_count(L, ci, w);
        p = (fmax((double)c - discount(L, c), 0) + L->gnum[ci] * p) / L->tot[ci];
    }
    return p;
}

int lstm_ngram_prob(const lstm_ngram *m, const uint32_t *hist, size_t nhist, uint32_t w, double *p)
{
    if (w >= m->V) return LSTM_E_RANGE;
    for (size_t i = 0; i < nhist; i++)
        if (hist[i] >= m->V) return LSTM_E_RANGE;
    *p = prob(m, hist, nhist, w);
    return LSTM_OK;
}

/* ---- scoring ---- */
struct lstm_ngram_scorer {
    const lstm_ngram *m;
    uint32_t hist[LSTM_NGRAM_MAX_ORDER];
    unsigned nhist;
    int started;       /* a document was added */
    uint32_t prev;     /* the last token read (BOS at a sequence start) */
    int targets;       /* LSTM_NGRAM_TARGETS_* */
    lstm_ngram_stats st;
    int top1, K;
    uint32_t *order1;  /* (V) ids by decreasing unigram probability, ties by id (top-K ranks) */
    lstm_ngram_target_fn fn;
    void *ctx;
    /* p(.|h) = a * p1 + r with r sparse (nonzero only on touched ids), for the history of the
     * current target when expanded */
    int expanded;
    double a;
    double *r;         /* (V) */
    uint8_t *mark;     /* (V) */
    uint32_t *touched; /* (V) */
    size_t ntouched;
};

int lstm_ngram_default_targets(const lstm_ngram *m)
{
    return m->cross ? LSTM_NGRAM_TARGETS_STREAM : LSTM_NGRAM_TARGETS_DOCS;
}

static const char *const target_names[] = {"docs", "stream", "all"};

const char *lstm_ngram_targets_name(int targets)
{
    return targets >= 0 && targets <= LSTM_NGRAM_TARGETS_ALL ? target_names[targets] : "?";
}

int lstm_ngram_targets_parse(const char *name)
{
    for (int i = 0; i <= LSTM_NGRAM_TARGETS_ALL; i++)
        if (!strcmp(name, target_names[i])) return i;
    return -1;
}

static int cmp_p1(const void *a, const void *b, void *arg)
{
    const double *p1 = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (p1[x] != p1[y]) return p1[x] > p1[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

int lstm_ngram_scorer_new(lstm_ngram_scorer **out, const lstm_ngram *m, int top1)
{
    *out = NULL;
    lstm_ngram_scorer *s = calloc(1, sizeof *s);
    if (!s) return LSTM_E_NOMEM;
    s->m = m;
    s->top1 = top1;
    s->K = 1;
    s->targets = lstm_ngram_default_targets(m);
    s->r = calloc(m->V, sizeof *s->r);
    s->mark = calloc(m->V, 1);
    s->touched = malloc((size_t)m->V * sizeof *s->touched);
    s->order1 = top1 ? malloc((size_t)m->V * sizeof *s->order1) : NULL;
    if (!s->r || !s->mark || !s->touched || (top1 && !s->order1)) {
        lstm_ngram_scorer_free(s);
        return LSTM_E_NOMEM;
    }
    if (top1) {
        for (uint32_t w = 0; w < m->V; w++) s->order1[w] = w;
        qsort_r(s->order1, m->V, sizeof *s->order1, cmp_p1, m->p1);
    }
    *out = s;
    return LSTM_OK;
}

int lstm_ngram_scorer_topk(lstm_ngram_scorer *s, int K)
{
    if (K < 1) return LSTM_E_ARG;
    s->K = K;
    return LSTM_OK;
}

int lstm_ngram_scorer_targets(lstm_ngram_scorer *s, int targets)
{
    if (targets < 0 || targets > LSTM_NGRAM_TARGETS_ALL || s->started) return LSTM_E_ARG;
    s->targets = targets;
    return LSTM_OK;
}

void lstm_ngram_scorer_on_target(lstm_ngram_scorer *s, lstm_ngram_target_fn fn, void *ctx)
{
    s->fn = fn;
    s->ctx = ctx;
}

void lstm_ngram_scorer_free(lstm_ngram_scorer *s)
{
    if (!s) return;
    free(s->r);
    free(s->mark);
    free(s->touched);
    free(s->order1);
    free(s);
}

void lstm_ngram_scorer_stats(const lstm_ngram_scorer *s, lstm_ngram_stats *st) { *st = s->st; }

/* The whole distribution after hist, level by level: p_k = (disc_k + gnum * p_{k-1}) / tot, where
 * disc_k is nonzero only on the followers of the context, so p = a * p1 + r with r nonzero only on
 * the ids touched (the followers of the matched contexts). */
static void expand(lstm_ngram_scorer *s, const uint32_t *hist, size_t nhist)
{
    const lstm_ngram *m = s->m;
    for (size_t i = 0; i < s->ntouched; i++) {
        s->r[s->touched[i]] = 0;
        s->mark[s->touched[i]] = 0;
    }
    s->ntouched = 0;
    double a = 1;
    for (unsigned k = 2; k <= m->N && k - 1 <= nhist; k++) {
        const level *L = &m->lv[k];
        size_t ci = tset_find(&L->ctx, hist + nhist - (k - 1));
        if (ci == SIZE_MAX) break;
        double g = L->gnum[ci] / L->tot[ci], inv = 1 / L->tot[ci];
        a *= g;
        for (size_t i = 0; i < s->ntouched; i++) s->r[s->touched[i]] *= g;
        for (uint64_t j = L->off[ci]; j < L->off[ci + 1]; j++) {
            uint32_t w = L->f[j].w, c = L->f[j].c;
            double d = fmax((double)c - discount(L, c), 0) * inv;
            if (!s->mark[w]) {
                s->mark[w] = 1;
                s->touched[s->ntouched++] = w;
                s->r[w] = d;
            } else {
                s->r[w] += d;
            }
        }
    }
    s->a = a;
}

/* The argmax of the expanded distribution: untouched ids are a * p1, whose best is best1 (if best1
 * is touched its value is only larger). */
static void argmax(const lstm_ngram_scorer *s, uint32_t *bw, double *bp)
{
    const lstm_ngram *m = s->m;
    double a = s->a;
    uint32_t best = m->best1;
    double bv = a * m->p1[best] + s->r[best];
    for (size_t i = 0; i < s->ntouched; i++) {
        uint32_t w = s->touched[i];
        double v = a * m->p1[w] + s->r[w];
        if (v > bv || (v == bv && w < best)) {
            best = w;
            bv = v;
        }
    }
    *bw = best;
    *bp = bv;
}

/* How many ids of the expanded distribution rank above w (a higher probability, or the same and a
 * lower id), counting up to limit. The touched ids one by one; the others are a * p1 and come in
 * order1's order, so the count stops at the first one less probable than w. */
static long rank_of(const lstm_ngram_scorer *s, uint32_t w, long limit)
{
    const lstm_ngram *m = s->m;
    double a = s->a, v = a * m->p1[w] + s->r[w];
    long above = 0;
    for (size_t i = 0; i < s->ntouched && above < limit; i++) {
        uint32_t u = s->touched[i];
        double x = a * m->p1[u] + s->r[u];
        above += x > v || (x == v && u < w);
    }
    for (uint32_t i = 0; i < m->V && above < limit; i++) {
        uint32_t u = s->order1[i];
        if (s->mark[u]) continue;
        double x = a * m->p1[u];
        if (x > v || (x == v && u < w)) above++;
        else if (x < v) break; /* nor can any after it (a * p1 only falls along order1) */
    }
    return above;
}

int lstm_ngram_scorer_argmax(lstm_ngram_scorer *s, const uint32_t *hist, size_t nhist, uint32_t *w, double *p)
{
    for (size_t i = 0; i < nhist; i++)
        if (hist[i] >= s->m->V) return LSTM_E_RANGE;
    expand(s, hist, nhist);
    s->expanded = 0; /* not the current target's history */
    argmax(s, w, p);
    return LSTM_OK;
}

int lstm_ngram_scorer_dist(lstm_ngram_scorer *s, float *lp)
{
    const lstm_ngram *m = s->m;
    if (!s->expanded) {
        expand(s, s->hist, s->nhist);
        s->expanded = 1;
    }
    double a = s->a;
    for (uint32_t w = 0; w < m->V; w++) lp[w] = (float)log(a * m->p1[w] + s->r[w]);
    return LSTM_OK;
}

int lstm_ngram_scorer_add(lstm_ngram_scorer *s, const uint32_t *ids, size_t n)
{
    const lstm_ngram *m = s->m;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= m->V) return LSTM_E_RANGE;
    int stream_start = !s->started;
    if (!m->cross || !s->started) {
        s->nhist = 0;
        hist_push(s->hist, &s->nhist, m->N - 1, LSTM_BOS_ID);
        s->prev = LSTM_BOS_ID;
        s->started = 1;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t w = ids[i];
        /* a window's first input is never its target: the first token of each document, or of the
         * stream (lstm-window --cross-docs) */
        int first = i == 0 && (s->targets == LSTM_NGRAM_TARGETS_DOCS ||
                               (s->targets == LSTM_NGRAM_TARGETS_STREAM && stream_start));
        if (is_target(w) && !first) {
            double p = prob(m, s->hist, s->nhist, w);
            s->st.nll -= log(p);
            s->st.tokens++;
            s->expanded = 0;
            if (s->top1) {
                expand(s, s->hist, s->nhist);
                s->expanded = 1;
                long above = rank_of(s, w, s->K);
                s->st.top1 += above < 1;
                s->st.topk += above < s->K;
            }
            if (s->fn) {
                int rc = s->fn(s->ctx, s, s->prev, w);
                if (rc) return rc;
            }
        } else {
            s->st.skipped++;
        }
        hist_push(s->hist, &s->nhist, m->N - 1, w);
        s->prev = w;
    }
    return LSTM_OK;
}

/* ---- the model file ---- */
static const uint8_t ngram_magic[8] = {0x89, 'N', 'G', 'R', 'A', 'M', '\r', '\n'};
#define HEADER_LEN 64u
#define LEVEL_HEAD 80u /* k, reserved, D1..D3+, n1..n4, nctx, nngrams */
#define CHECKSUM_LEN 8u /* XXH64, seed 0, of every byte before it (version 1: a CRC-32, 4 bytes) */

/* Buffered output; everything that goes through bw_flush is summed (the checksum is written raw). */
typedef struct {
    int fd;
    int err;
    lstm_xxh64_state *sum;
    size_t n;
    uint8_t buf[1 << 16];
} bwriter;

static void bw_write(bwriter *b)
{
    size_t done = 0;
    while (done < b->n && !b->err) {
        ssize_t k = write(b->fd, b->buf + done, b->n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) b->err = LSTM_E_IO;
        else done += (size_t)k;
    }
    b->n = 0;
}

static void bw_flush(bwriter *b)
{
    lstm_xxh64_update(b->sum, b->buf, b->n);
    bw_write(b);
}

static void bw_put(bwriter *b, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n && !b->err) {
        size_t k = sizeof b->buf - b->n < n ? sizeof b->buf - b->n : n;
        memcpy(b->buf + b->n, s, k);
        b->n += k;
        s += k;
        n -= k;
        if (b->n == sizeof b->buf) bw_flush(b);
    }
}

static void bw_u32(bwriter *b, uint32_t v)
{
    uint8_t x[4];
    lstm_put_u32(x, v);
    bw_put(b, x, 4);
}

static void bw_u64(bwriter *b, uint64_t v)
{
    uint8_t x[8];
    lstm_put_u64(x, v);
    bw_put(b, x, 8);
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static uint64_t file_length(const lstm_ngram *m)
{
    uint64_t len = HEADER_LEN + m->tok_len + CHECKSUM_LEN;
    for (unsigned k = 1; k <= m->N; k++)
        len += LEVEL_HEAD + (uint64_t)m->lv[k].ctx.n * 4 * k + (uint64_t)m->lv[k].nf * 8;
    return len;
}

int lstm_ngram_write(const lstm_ngram *m, int fd)
{
    bwriter *b = malloc(sizeof *b);
    if (!b) return LSTM_E_NOMEM;
    b->sum = lstm_xxh64_new(0);
    if (!b->sum) {
        free(b);
        return LSTM_E_NOMEM;
    }
    b->fd = fd;
    b->err = 0;
    b->n = 0;
    uint8_t h[HEADER_LEN] = {0};
    memcpy(h, ngram_magic, 8);
    lstm_put_u32(h + 8, LSTM_NGRAM_VERSION);
    lstm_put_u32(h + 12, HEADER_LEN);
    lstm_put_u32(h + 16, m->N);
    lstm_put_u32(h + 20, (uint32_t)m->cross);
    lstm_put_u32(h + 24, m->V);
    lstm_put_u32(h + 28, (uint32_t)m->tok_len);
    lstm_put_u64(h + 32, m->train_tokens);
    lstm_put_u64(h + 40, file_length(m));
    bw_put(b, h, sizeof h);
    bw_put(b, m->tok, m->tok_len);
    for (unsigned k = 1; k <= m->N; k++) {
        const level *L = &m->lv[k];
        bw_u32(b, k);
        bw_u32(b, 0);
        for (int i = 0; i < 3; i++) bw_u64(b, dbits(L->D[i]));
        for (int i = 0; i < 4; i++) bw_u64(b, L->coc[i]);
        bw_u64(b, L->ctx.n);
        bw_u64(b, L->nf);
        for (size_t c = 0; c < L->ctx.n; c++) {
            for (unsigned i = 0; i + 1 < k; i++) bw_u32(b, L->ctx.keys[c * (k - 1) + i]);
            bw_u32(b, (uint32_t)(L->off[c + 1] - L->off[c]));
        }
        for (size_t j = 0; j < L->nf; j++) {
            bw_u32(b, L->f[j].w);
            bw_u32(b, L->f[j].c);
        }
    }
    bw_flush(b);
    lstm_put_u64(b->buf, lstm_xxh64_digest(b->sum));
    b->n = CHECKSUM_LEN;
    bw_write(b);
    int rc = b->err;
    lstm_xxh64_free(b->sum);
    free(b);
    return rc;
}

/* A bounds-checked cursor over the file. */
typedef struct {
    const uint8_t *p;
    size_t left;
} cursor;

static int take(cursor *c, size_t n, const uint8_t **out)
{
    if (c->left < n) return LSTM_E_FORMAT;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return LSTM_OK;
}

static int level_load(level *L, unsigned k, uint32_t V, cursor *cur)
{
    const uint8_t *p;
    if (take(cur, LEVEL_HEAD, &p) || lstm_get_u32(p) != k || lstm_get_u32(p + 4) != 0) return LSTM_E_FORMAT;
    for (int i = 0; i < 3; i++) {
        uint64_t u = lstm_get_u64(p + 8 + 8 * i);
        memcpy(&L->D[i], &u, sizeof u);
        if (!(L->D[i] >= 0 && L->D[i] <= i + 1)) return LSTM_E_FORMAT;
    }
    for (int i = 0; i < 4; i++) L->coc[i] = lstm_get_u64(p + 32 + 8 * i);
    uint64_t nctx = lstm_get_u64(p + 64), nf = lstm_get_u64(p + 72);
    /* every context holds at least one follower: nctx <= nf; sizes must fit what is left */
    if (nctx == 0 || nctx > nf || (k == 1 && nctx != 1) || nf > cur->left / 8 ||
        nctx > (cur->left - nf * 8) / (4 * k) || nf >= UINT32_MAX)
        return LSTM_E_FORMAT;
    int rc = tset_init(&L->ctx, k - 1, 0, (size_t)nctx);
    if (rc) return rc;
    L->off = malloc((size_t)(nctx + 1) * sizeof *L->off);
    L->f = malloc((size_t)nf * sizeof *L->f);
    if (!L->off || !L->f) return LSTM_E_NOMEM;
    L->nf = (size_t)nf;
    L->off[0] = 0;
    uint32_t key[LSTM_NGRAM_MAX_ORDER];
    for (uint64_t c = 0; c < nctx; c++) {
        take(cur, 4 * k, &p);
        for (unsigned i = 0; i + 1 < k; i++) {
            key[i] = lstm_get_u32(p + 4 * i);
            if (key[i] >= V) return LSTM_E_FORMAT;
        }
        uint32_t cnt = lstm_get_u32(p + 4 * (k - 1));
        if (cnt == 0 || cnt > nf - L->off[c]) return LSTM_E_FORMAT;
        L->off[c + 1] = L->off[c] + cnt;
        size_t idx;
        int added;
        rc = tset_insert(&L->ctx, key, &idx, &added);
        if (rc) return rc;
        if (!added) return LSTM_E_FORMAT; /* a context listed twice */
    }
    if (L->off[nctx] != nf) return LSTM_E_FORMAT;
    take(cur, (size_t)nf * 8, &p);
    for (uint64_t c = 0; c < nctx; c++) {
        for (uint64_t j = L->off[c]; j < L->off[c + 1]; j++) {
            fol f = {lstm_get_u32(p + 8 * j), lstm_get_u32(p + 8 * j + 4)};
            if (f.w >= V || !is_target(f.w) || f.c == 0 || (j > L->off[c] && f.w <= L->f[j - 1].w))
                return LSTM_E_FORMAT;
            L->f[j] = f;
        }
    }
    return LSTM_OK;
}

int lstm_ngram_load(lstm_ngram **out, const uint8_t *buf, size_t len)
{
    *out = NULL;
    size_t cmp = len < 8 ? len : 8;
    if (len == 0 || memcmp(buf, ngram_magic, cmp) != 0) return LSTM_E_MAGIC;
    if (len < HEADER_LEN) return LSTM_E_TRUNCATED;
    if (lstm_get_u32(buf + 8) != LSTM_NGRAM_VERSION) return LSTM_E_VERSION;
    if (lstm_get_u32(buf + 12) != HEADER_LEN) return LSTM_E_FORMAT;
    uint64_t flen = lstm_get_u64(buf + 40);
    if (flen > len) return LSTM_E_TRUNCATED;
    if (flen < len || flen < HEADER_LEN + CHECKSUM_LEN) return LSTM_E_FORMAT;
    if (lstm_xxh64(buf, len - CHECKSUM_LEN, 0) != lstm_get_u64(buf + len - CHECKSUM_LEN)) return LSTM_E_CORRUPT;
    uint32_t N = lstm_get_u32(buf + 16), flags = lstm_get_u32(buf + 20), V = lstm_get_u32(buf + 24);
    uint32_t tok_len = lstm_get_u32(buf + 28);
    for (size_t i = 48; i < HEADER_LEN; i++)
        if (buf[i]) return LSTM_E_FORMAT;
    if (N < 1 || N > LSTM_NGRAM_MAX_ORDER || flags > 1 || V <= LSTM_NUM_SPECIAL || V > (1u << 28) ||
        tok_len > len - HEADER_LEN - CHECKSUM_LEN)
        return LSTM_E_FORMAT;
    lstm_ngram *m = calloc(1, sizeof *m);
    if (!m) return LSTM_E_NOMEM;
    m->N = N;
    m->V = V;
    m->cross = (int)flags;
    m->train_tokens = lstm_get_u64(buf + 32);
    m->tok_len = tok_len;
    m->tok = malloc(tok_len ? tok_len : 1);
    int rc = m->tok ? LSTM_OK : LSTM_E_NOMEM;
    if (!rc) memcpy(m->tok, buf + HEADER_LEN, tok_len);
    cursor cur = {buf + HEADER_LEN + tok_len, len - HEADER_LEN - tok_len - CHECKSUM_LEN};
    for (unsigned k = 1; k <= N && !rc; k++) rc = level_load(&m->lv[k], k, V, &cur);
    if (!rc && cur.left) rc = LSTM_E_FORMAT;
    if (!rc) rc = model_finish(m);
    if (rc) {
        lstm_ngram_free(m);
        return rc;
    }
    *out = m;
    return LSTM_OK;
}

int lstm_ngram_read(lstm_ngram **out, int fd, uint32_t *version)
{
    *out = NULL;
    if (version) *version = 0;
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) return LSTM_E_NOMEM;
    for (;;) {
        if (n == cap) {
            uint8_t *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                return LSTM_E_NOMEM;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return LSTM_E_IO;
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    int rc = lstm_ngram_load(out, buf, n);
    if (version && n >= 12 && memcmp(buf, ngram_magic, 8) == 0) *version = lstm_get_u32(buf + 8);
    free(buf);
    return rc;
}
