/* ngram.h: an interpolated modified Kneser-Ney n-gram language model over token streams
 * (Chen & Goodman 1998), the count-based baseline for the LSTM models. formats/ngram.md is normative
 * for the model file and for which positions are counted and predicted.
 *
 * Life cycle: counter_new -> counter_add (one call per document) -> estimate -> prob / scorer;
 * write / load for the model file. Library code: never prints, returns 0 or a negative LSTM_E_* code.
 *
 * Sequences: per document, the history starts with one BOS (contexts at a document start are padded
 * with BOS); with cross_docs, one BOS starts the whole stream and the history runs through document
 * boundaries. Every token of the stream is a target except PAD and BOS, which are never predicted:
 * the model's distributions are over the V - 2 other ids (UNK and EOS included). */
#ifndef LSTM_NGRAM_H
#define LSTM_NGRAM_H
#include <stddef.h>
#include <stdint.h>
#include "errors.h"

#define LSTM_NGRAM_MAX_ORDER 10u
#define LSTM_NGRAM_VERSION 2u /* 1: CRC-32 checksum (no longer read: train the model again) */

typedef struct lstm_ngram lstm_ngram;
typedef struct lstm_ngram_counter lstm_ngram_counter;

/* ---- counting ---- */
/* order 1..LSTM_NGRAM_MAX_ORDER, V = vocabulary size (ids 0..V-1, V > 4). */
int lstm_ngram_counter_new(lstm_ngram_counter **out, unsigned order, uint32_t V, int cross_docs);
/* Counts the n-grams ending at every target of one document (ids (n)). LSTM_E_RANGE for an id >= V,
 * LSTM_E_TOOBIG if a count would pass 2^32 - 1. */
int lstm_ngram_counter_add(lstm_ngram_counter *c, const uint32_t *ids, size_t n);
uint64_t lstm_ngram_counter_tokens(const lstm_ngram_counter *c); /* targets counted so far */
void lstm_ngram_counter_free(lstm_ngram_counter *c);

/* ---- estimating ---- */
typedef struct {
    int fixed;           /* 1: use D below at every order instead of the count-of-counts estimate */
    double D[3];         /* D1, D2, D3+ when fixed; each D_k must lie in [0, k] */
} lstm_ngram_opts;

/* Chen & Goodman's discounts from the count-of-counts n[0..3] = n1..n4 of one order:
 * Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3.
 * A discount that cannot be computed (a zero count-of-count) or falls outside (0, k] is replaced by
 * the fallback 0.5, 1.0, 1.5 (the k-th one) and *fallback (may be NULL) is set to 1. */
void lstm_ngram_discounts(const uint64_t n[4], double D[3], int *fallback);

/* Builds the model from the counts. tok (tok_len bytes) is the tokenizer blob stored with the model
 * (may be empty). opts may be NULL. LSTM_E_EMPTY if no token was counted. The counter is left as is. */
int lstm_ngram_estimate(lstm_ngram **out, const lstm_ngram_counter *c, const lstm_ngram_opts *opts,
                        const uint8_t *tok, size_t tok_len);
void lstm_ngram_free(lstm_ngram *m);

/* ---- the model file (formats/ngram.md) ---- */
/* Writes the whole file to fd (not closed); LSTM_E_IO with errno set. */
int lstm_ngram_write(const lstm_ngram *m, int fd);
/* Parses a model file held in memory (buf (len)). LSTM_E_MAGIC, LSTM_E_VERSION, LSTM_E_TRUNCATED
 * (shorter than its header says), LSTM_E_CORRUPT (checksum mismatch), LSTM_E_FORMAT. */
int lstm_ngram_load(lstm_ngram **out, const uint8_t *buf, size_t len);
/* Reads fd to its end and loads it. version (may be NULL): the header's version field when the
 * bytes start with the magic and hold one, else 0; after LSTM_E_VERSION it tells a file made by an
 * older lstm-ngram (below LSTM_NGRAM_VERSION: train it again) from one made by a newer one. */
int lstm_ngram_read(lstm_ngram **out, int fd, uint32_t *version);

/* ---- properties ---- */
unsigned lstm_ngram_order(const lstm_ngram *m);
uint32_t lstm_ngram_vocab(const lstm_ngram *m);
int lstm_ngram_cross_docs(const lstm_ngram *m);
uint64_t lstm_ngram_train_tokens(const lstm_ngram *m);
const uint8_t *lstm_ngram_tokenizer(const lstm_ngram *m, size_t *len);
/* Order k (1..order): distinct n-grams, distinct contexts, discounts D1 D2 D3+, count-of-counts n1..n4
 * of the (continuation) counts. Any output may be NULL. LSTM_E_ARG for k out of range. */
int lstm_ngram_level(const lstm_ngram *m, unsigned k, uint64_t *ngrams, uint64_t *contexts, double D[3], uint64_t n[4]);

/* ---- probabilities ---- */
/* p(w | hist): hist (nhist) are the tokens before w, most recent last (only the last order - 1 are
 * used; pass the BOS that starts a sequence yourself). LSTM_E_RANGE for w >= V or an id >= V in
 * hist. PAD and BOS have probability 0. */
int lstm_ngram_prob(const lstm_ngram *m, const uint32_t *hist, size_t nhist, uint32_t w, double *p);

/* Scores documents with the same sequence rules as training (per document or cross_docs as the model
 * was trained). top1: also find the most probable next token at every position (costs a pass over
 * the tokens seen after each matched context). */
typedef struct lstm_ngram_scorer lstm_ngram_scorer;
typedef struct {
    uint64_t tokens;  /* targets scored (PAD, BOS and the first tokens of the target rule excluded) */
    uint64_t skipped; /* positions not scored: PAD, BOS, and the first token of each document (DOCS)
                         or of the stream (STREAM) */
    double nll;       /* sum of -ln p over the targets */
    uint64_t top1;    /* targets that were the argmax of the model's distribution (ties: lowest id) */
    uint64_t topk;    /* targets among the K most probable ids (lstm_ngram_scorer_topk; ties: lowest id) */
} lstm_ngram_stats;

/* Which positions are scored: PAD and BOS never; the first token of a sequence as the rule says.
 * DOCS and STREAM are the targets of lstm-window's windows of the same stream (per document, and
 * --cross-docs: a window's first input is never a target), so lstm-eval scores the same tokens;
 * ALL predicts every document's first token too from the BOS context (SRILM and KenLM's <s>). The
 * history is the model's either way. */
enum { LSTM_NGRAM_TARGETS_DOCS = 0, LSTM_NGRAM_TARGETS_STREAM = 1, LSTM_NGRAM_TARGETS_ALL = 2 };
/* The rule lstm-window's windows follow with the model's own --cross-docs: STREAM or DOCS. */
int lstm_ngram_default_targets(const lstm_ngram *m);
/* "docs", "stream", "all"; lstm_ngram_targets_parse: the rule of such a name, or -1. */
const char *lstm_ngram_targets_name(int targets);
int lstm_ngram_targets_parse(const char *name);

/* A scorer with lstm_ngram_default_targets(m) (lstm_ngram_scorer_targets changes it before the
 * first document). */
int lstm_ngram_scorer_new(lstm_ngram_scorer **out, const lstm_ngram *m, int top1);
/* LSTM_E_ARG for an unknown rule or once a document was added. */
int lstm_ngram_scorer_targets(lstm_ngram_scorer *s, int targets);
/* A scorer made with top1 also counts the targets ranked within the K best (K >= 1, default 1) of
 * the whole distribution, as lstm-eval's top-K: exact, in double, without visiting every id (the
 * ids no matched context has seen are ranked by the unigram order). LSTM_E_ARG for K < 1. */
int lstm_ngram_scorer_topk(lstm_ngram_scorer *s, int K);
/* fn (or NULL) is called at every scored target, before the target joins the history, with prev the
 * token before it (BOS at a sequence start) and y the target; it may call lstm_ngram_scorer_dist. A
 * non-zero return ends lstm_ngram_scorer_add with that code. */
typedef int (*lstm_ngram_target_fn)(void *ctx, lstm_ngram_scorer *s, uint32_t prev, uint32_t y);
void lstm_ngram_scorer_on_target(lstm_ngram_scorer *s, lstm_ngram_target_fn fn, void *ctx);
/* Inside the target callback: lp (V) = ln p(w | the history), for every id w (-inf for PAD and BOS),
 * computed from the whole interpolation (not only the tokens seen after the history). */
int lstm_ngram_scorer_dist(lstm_ngram_scorer *s, float *lp);
/* LSTM_E_RANGE for an id >= V. */
int lstm_ngram_scorer_add(lstm_ngram_scorer *s, const uint32_t *ids, size_t n);
void lstm_ngram_scorer_stats(const lstm_ngram_scorer *s, lstm_ngram_stats *st);
void lstm_ngram_scorer_free(lstm_ngram_scorer *s);
/* The argmax of p(. | hist) and its probability (the scorer's top-1 machinery, for tests). */
int lstm_ngram_scorer_argmax(lstm_ngram_scorer *s, const uint32_t *hist, size_t nhist, uint32_t *w, double *p);

#endif
