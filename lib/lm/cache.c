/* cache.c: the continuous cache (cache.h): a ring of (state, next word) pairs, their match with the
 * query state by one matrix-vector product, and the mixture written back as log-probabilities. */
#include "cache.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "mathx.h"

void lstm_cache_opts_default(lstm_cache_opts *o)
{
    o->N = 0;
    o->theta = 0.3;
    o->lambda = 0.1;
}

const char *lstm_cache_opts_check(const lstm_cache_opts *o)
{
    if (o->N < 0 || o->N > LSTM_CACHE_MAX_N) return "cache size must be from 0 to 100000";
    if (!(o->theta >= 0) || !isfinite(o->theta)) return "cache theta must be >= 0";
    if (!(o->lambda >= 0) || o->lambda > 1) return "cache lambda must be from 0 to 1";
    return NULL;
}

int lstm_cache_opts_on(const lstm_cache_opts *o) { return o->N > 0 && o->lambda > 0; }

int lstm_cache_init(lstm_cache *c, const lstm_cache_opts *o, int H, int V)
{
    memset(c, 0, sizeof *c);
    if (lstm_cache_opts_check(o) || o->N < 1 || H < 1 || V < 1) return LSTM_E_ARG;
    c->N = o->N;
    c->H = H;
    c->V = V;
    c->theta = o->theta;
    c->lambda = o->lambda;
    c->keys = malloc(sizeof *c->keys * (size_t)o->N * (size_t)H);
    c->words = malloc(sizeof *c->words * (size_t)o->N);
    c->dot = malloc(sizeof *c->dot * (size_t)o->N);
    c->acc = calloc((size_t)V, sizeof *c->acc);
    c->seen = malloc(sizeof *c->seen * (size_t)o->N);
    c->mixed = malloc(sizeof *c->mixed * (size_t)o->N);
    if (!c->keys || !c->words || !c->dot || !c->acc || !c->seen || !c->mixed) {
        lstm_cache_free(c);
        return LSTM_E_NOMEM;
    }
    return 0;
}

void lstm_cache_free(lstm_cache *c)
{
    free(c->keys);
    free(c->words);
    free(c->dot);
    free(c->acc);
    free(c->seen);
    free(c->mixed);
    memset(c, 0, sizeof *c);
}

void lstm_cache_clear(lstm_cache *c)
{
    c->n = 0;
    c->head = 0;
    c->ndot = 0;
}

void lstm_cache_push(lstm_cache *c, const float *h, uint32_t w)
{
    memcpy(c->keys + (size_t)c->head * c->H, h, sizeof *h * (size_t)c->H);
    c->words[c->head] = w;
    c->head = c->head + 1 == c->N ? 0 : c->head + 1;
    if (c->n < c->N) c->n++;
}

/* h . h_i for n pairs of the caller's (the last N of them when there are more). */
static void dots_of(lstm_cache *c, const float *keys, size_t ld, const uint32_t *words, int n, const float *q)
{
    if (n > c->N) {
        keys += (size_t)(n - c->N) * ld;
        words += n - c->N;
        n = c->N;
    }
    c->ndot = n;
    c->dot_words = words;
    if (n > 0) cblas_sgemv(CblasRowMajor, CblasNoTrans, n, c->H, 1.0f, keys, (int)ld, q, 1, 0.0f, c->dot, 1);
}

void lstm_cache_dots(lstm_cache *c, const float *q) { dots_of(c, c->keys, (size_t)c->H, c->words, c->n, q); }

double lstm_cache_p_word(const lstm_cache *c, double theta, uint32_t w)
{
    if (c->ndot == 0) return 0;
    float mx = c->dot[0];
    for (int i = 1; i < c->ndot; i++)
        if (c->dot[i] > mx) mx = c->dot[i];
    double z = 0, num = 0;
    for (int i = 0; i < c->ndot; i++) {
        double e = exp(theta * ((double)c->dot[i] - mx));
        z += e;
        if (c->dot_words[i] == w) num += e;
    }
    return num / z;
}

/* The mixture from the dot products of dots_of, into logits (see lstm_cache_mix). */
static int mix_dots(lstm_cache *c, float *logits)
{
    int n = c->ndot, V = c->V;
    if (n == 0 || c->lambda <= 0) return 0;
    for (int i = 0; i < n; i++)
        if (c->dot_words[i] >= (uint32_t)V) return LSTM_E_RANGE;
    double lse = lstm_logsumexp(logits, (size_t)V), lam = c->lambda;
    float mx = c->dot[0];
    for (int i = 1; i < n; i++)
        if (c->dot[i] > mx) mx = c->dot[i];
    /* p_cache by word in acc (unnormalised), its distinct words in seen */
    double z = 0;
    int ns = 0;
    for (int i = 0; i < n; i++) {
        uint32_t w = c->dot_words[i];
        double e = exp(c->theta * ((double)c->dot[i] - mx));
        if (c->acc[w] == 0) c->seen[ns++] = w; /* (a weight that underflows to 0 may list w twice: harmless) */
        c->acc[w] += e;
        z += e;
    }
    for (int k = 0; k < ns; k++) {
        uint32_t w = c->seen[k];
        c->mixed[k] = (1 - lam) * exp((double)logits[w] - lse) + lam * c->acc[w] / z;
    }
    if (lam < 1) {
        double off = log1p(-lam) - lse;
        for (int i = 0; i < V; i++) logits[i] = (float)((double)logits[i] + off);
    } else {
        for (int i = 0; i < V; i++) logits[i] = -INFINITY;
    }
    for (int k = 0; k < ns; k++) logits[c->seen[k]] = (float)log(c->mixed[k]);
    for (int k = 0; k < ns; k++) c->acc[c->seen[k]] = 0;
    return 0;
}

int lstm_cache_mix(lstm_cache *c, const float *q, float *logits)
{
    if (c->n == 0 || c->lambda <= 0) return 0;
    lstm_cache_dots(c, q);
    return mix_dots(c, logits);
}

int lstm_cache_mix_pairs(lstm_cache *c, const float *keys, size_t ld, const uint32_t *words, int n, const float *q,
                         float *logits)
{
    if (n <= 0 || c->lambda <= 0) return 0;
    dots_of(c, keys, ld, words, n, q);
    return mix_dots(c, logits);
}
