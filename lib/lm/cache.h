/* cache.h: the continuous cache of Grave, Joulin & Usunier (2017), "Improving neural language models
 * with a continuous cache": at inference, without retraining, the last N (hidden state, next word)
 * pairs of the text already read vote for the next word. For a query h_t (the top layer's hidden
 * state that the output layer reads at step t) and pairs (h_i, w_i), w_i the word that followed h_i:
 *
 *     p_cache(w) = sum_i [w_i = w] exp(theta * h_t . h_i) / sum_i exp(theta * h_t . h_i)
 *     p(w)       = (1 - lambda) p_model(w) + lambda p_cache(w)
 *
 * (the paper's linear interpolation). A cache with no pairs, or lambda = 0, leaves the model's
 * distribution as it is. theta >= 0 (0: every pair weighs the same, a unigram cache of the recent
 * words), lambda in [0, 1].
 *
 * The pairs live in a ring of N rows (lstm_cache_push), or are the caller's own rows
 * (lstm_cache_mix_pairs: a session's stored states, read in place). Mixing turns the logits into the
 * mixed log-probabilities, so whatever ranks or normalises logits (top-k, suggestions, the sampler,
 * log-sum-exp) works on the mixed distribution unchanged. Nothing allocates after lstm_cache_init.
 * Library code: never prints, returns 0 or LSTM_E_*. */
#ifndef LSTM_CACHE_H
#define LSTM_CACHE_H
#include <stddef.h>
#include <stdint.h>

#define LSTM_CACHE_MAX_N 100000 /* pairs a cache may keep */

typedef struct {
    int N;          /* pairs kept; 0 = no cache */
    double theta;   /* the flatness of the match: exp(theta * h . h_i), >= 0 */
    double lambda;  /* the cache's weight in the mixture, in [0, 1] */
} lstm_cache_opts;

/* The defaults: no cache (N 0), theta 0.3, lambda 0.1. */
void lstm_cache_opts_default(lstm_cache_opts *o);
/* NULL when o is usable, else the message: "cache size must be from 0 to 100000", "cache theta must
 * be >= 0", "cache lambda must be from 0 to 1". */
const char *lstm_cache_opts_check(const lstm_cache_opts *o);
/* 1 when o changes the model's distribution at all (N > 0 and lambda > 0). */
int lstm_cache_opts_on(const lstm_cache_opts *o);

typedef struct {
    int N, H, V;
    double theta, lambda;
    float *keys;      /* (N,H) ring of hidden states */
    uint32_t *words;  /* (N) the word that followed each */
    int n, head;      /* pairs held (<= N), the row the next push writes */
    float *dot;       /* (N) h . h_i of the last lstm_cache_dots */
    int ndot;         /* pairs lstm_cache_dots scored */
    const uint32_t *dot_words; /* (ndot) their words */
    double *acc;      /* (V) p_cache by word, all zero between calls */
    uint32_t *seen;   /* (N) the distinct words acc holds */
    double *mixed;    /* (N) their mixed probabilities */
} lstm_cache;

/* For states of H floats and ids below V. 0, LSTM_E_ARG (an option out of range, N = 0, H or V < 1)
 * or LSTM_E_NOMEM; nothing is left to free on failure. */
int lstm_cache_init(lstm_cache *c, const lstm_cache_opts *o, int H, int V);
void lstm_cache_free(lstm_cache *c);
/* Forget every pair (a new document, a reset state). */
void lstm_cache_clear(lstm_cache *c);
/* Keep the pair (h (H), w): the state that was followed by w. The oldest pair goes when N are held. */
void lstm_cache_push(lstm_cache *c, const float *h, uint32_t w);

/* Logits (V) in, log p(w) (V) out, in place, for the query state q (H) against the ring's pairs. The
 * logits may carry any constant shift (they are normalised first). With no pairs or lambda = 0 they
 * are left untouched. A word outside the cache gets log(1 - lambda) + log p_model(w) (lambda = 1:
 * -inf), so words outside it keep the model's order. 0 or LSTM_E_RANGE (a word id >= V). */
int lstm_cache_mix(lstm_cache *c, const float *q, float *logits);
/* The same against n pairs of the caller's: keys row i at keys + i * ld (H floats each), words (n),
 * read in place (n may exceed N). */
int lstm_cache_mix_pairs(lstm_cache *c, const float *keys, size_t ld, const uint32_t *words, int n, const float *q,
                         float *logits);

/* The two halves of the mixture, for a search over theta and lambda from one pass: the dot
 * products of q with the ring's pairs (kept in c->dot), then p_cache(w) for any theta from them
 * (0 when no pair is held). */
void lstm_cache_dots(lstm_cache *c, const float *q);
double lstm_cache_p_word(const lstm_cache *c, double theta, uint32_t w);

/* A grid of (theta, lambda) pairs scored in one pass (lstm-eval --cache-search): nll[i * nl + j] adds
 * -log((1 - lambda_j) p_model(y) + lambda_j p_cache(y; theta_i)) for every scored target y. */
typedef struct {
    int nt, nl;
    const double *theta;  /* (nt) */
    const double *lambda; /* (nl) */
    double *nll;          /* (nt, nl) sums in nats: zero them first */
} lstm_cache_grid;

#endif
