/* eval.h: a model measured on a window stream, in one pass: mean NLL per target token (perplexity),
 * top-1 / top-k accuracy, the targets that start a word (per-word perplexity, comparable across
 * tokenizers), and the keystrokes an autocomplete user saves. lstm-eval reports all of it; the
 * trainer's validation loss is the same pass counting NLL only, over the trainer's own buffers.
 * Library code: never prints, returns 0 or LSTM_E_*. */
#ifndef LSTM_EVAL_H
#define LSTM_EVAL_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "dataset.h"
#include "lm.h"
#include "model.h"
#include "ngram.h"

/* The scored targets: every target of the windows but PAD (padding) and BOS. BOS only ever follows
 * a speaker tag (formats/tokens.md: a chat turn is `tag BOS tokens... EOS`), so it is no prediction;
 * lstm-ngram skips it too, and with a document's first token, which no window has as a target (it
 * has no input before it), both score the same targets of the same text (README: "The n-gram
 * baseline, and which targets are scored"). Training still learns BOS targets: only what is measured
 * skips them. */
typedef struct {
    double nll;           /* NLL summed over the scored targets, in nats */
    long tokens;          /* scored targets (not PAD, not BOS) */
    long top1, topk;      /* targets ranked first / within the top k (with a language model) */
    long words;           /* targets that start a word, EOS included: lstm_lm_starts_word */
    /* keystrokes (LSTM_EVAL_KEYSTROKES): a word of n characters costs n + 1 typed (the space after
     * it), accepting a suggestion after j typed characters j + 1 (the accepted word's space is free) */
    double keys_with, keys_without;
    long typed_words, accepted, shown; /* words typed, accepted from a suggestion, suggestion lists shown */
} lstm_eval_result;

/* exp(nll) that gives +inf instead of overflowing: a perplexity from a mean NLL. */
double lstm_eval_ppl(double nll);

/* ---- the keystroke simulator, for any model that gives a next-token distribution ----
 * A person types the text word by word with k suggestions shown before each word and after each
 * typed character, and takes the word when it is among them. Word models (words and space
 * tokenizers): each word target is ranked among the vocabulary words extending the typed prefix by
 * the distribution at its position (lstm_suggest_rank), whatever computed it: lstm-eval's LSTM
 * logits, lstm-ngram's n-gram log-probabilities. The costs are in lstm_eval_result. BPE and character
 * models assemble words from pieces with lstm_suggest's beam over the network's states: lstm_evaluator
 * only (lstm_keys_init is LSTM_E_ARG for them without a network). */
typedef struct {
    const lstm_lm *lm;
    lstm_suggester g;
    int k;                /* suggestions shown, >= 1 */
    lstm_eval_result *r;  /* where the costs go */
    float *lg;            /* (V) scratch for a caller's distribution (lstm_keys_ngram_target) */
    void *ctx;
    int (*on_word)(void *ctx, const char *w, size_t n, size_t chars, long keys, long typed); /* lstm_eval_opts' */
} lstm_keys;

/* k suggestions, beam_words the beam's width (bpe / chars), on_word (or NULL) called with ctx for each
 * typed word; the costs go to *r (the caller zeroes it). The suggester's codes, LSTM_E_NOMEM. */
int lstm_keys_init(lstm_keys *ks, const lstm_lm *lm, int k, int beam_words, lstm_eval_result *r, void *ctx,
                   int (*on_word)(void *, const char *, size_t, size_t, long, long));
void lstm_keys_free(lstm_keys *ks);
/* Word models: 1 when lstm_keys_token ranks target y after prev (a word, not punctuation, UNK or a
 * special token), so reads its distribution; 0 when the distribution may be left uncomputed. */
int lstm_keys_ranks(const lstm_keys *ks, uint32_t prev, uint32_t y);
/* Word models: target y, after the token prev, typed with the next-token scores lg (V; logits or
 * log-probabilities: only their order counts, ties to the lower id). Punctuation is typed, never
 * suggested; UNK counts 5 characters typed in full (the stream does not keep its text); specials and
 * speaker tags cost nothing. on_word's code, or 0. */
int lstm_keys_token(lstm_keys *ks, const float *lg, uint32_t prev, uint32_t y);
/* The n-gram scorer's target callback (lstm_ngram_scorer_on_target, ctx = the lstm_keys of a word
 * model): the target typed with the n-gram's exact distribution over the whole vocabulary
 * (lstm_ngram_scorer_dist, computed only for the targets ranked). */
int lstm_keys_ngram_target(void *ks, lstm_ngram_scorer *s, uint32_t prev, uint32_t y);

typedef struct {
    int k;                /* top-k accuracy; with keystrokes, the suggestions shown (>= 1) */
    int keystrokes;       /* simulate typing the text with k suggestions (needs B = 1) */
    int beam_words;       /* bpe / chars: the suggestion beam's width (lstm_suggester_init's W) */
    const volatile sig_atomic_t *stop; /* or NULL: set, the run ends before the next batch (rc 0, partial counts) */
    void *ctx;
    /* Before each batch (or NULL): done of total batches. */
    void (*on_batch)(void *ctx, uint64_t done, uint64_t total);
    /* Keystrokes, each typed word (or NULL): its text (n bytes), its characters, the keystrokes it
     * cost, and the characters typed before its suggestion was accepted, or -1 when it was typed in
     * full. A non-zero return ends the run with that code. */
    int (*on_word)(void *ctx, const char *w, size_t n, size_t chars, long keys, long typed);
    int lane_step, lane0; /* a share of the batch (one rank's): the evaluator's B lanes are lanes lane0,
                             lane0 + lane_step, ... of lanes_of (lstm_batcher_init_lanes); 0 = all */
    int lanes_of;
    /* The continuous cache (cache.h), one per lane, of the lane's own pairs (its top-layer state at
     * each scored target and that target), cleared wherever the lane's state is reset: with N > 0 and
     * lambda > 0 every figure (NLL, top-k, keystrokes) is of the mixed distribution. N = 0 or
     * lambda = 0: the model's figures, exactly. Needs a language model (lstm_evaluator_create). */
    lstm_cache_opts cache;
    /* Or NULL: a search over (theta, lambda) with cache.N pairs per lane: every target adds to grid's
     * NLL sums while the result stays the model's (no mixing). Not with keystrokes. */
    lstm_cache_grid *grid;
} lstm_eval_opts;

typedef struct lstm_evaluator lstm_evaluator;

/* For lm's model on windows of T tokens, B lanes side by side. LSTM_E_ARG for keystrokes with B != 1,
 * cache options out of range (lstm_cache_opts_check), a grid without cache.N > 0 or with keystrokes,
 * LSTM_E_NOMEM, or the suggester's codes. */
int lstm_evaluator_create(lstm_evaluator **out, const lstm_lm *lm, int B, int T, const lstm_eval_opts *o);
/* NLL only, for model m over the caller's buffers (no second set of activations): acts for B x T,
 * st for B lanes, in and tg (B,T), reset (B). A run overwrites all of them. No cache (o->cache and
 * o->grid are ignored). */
int lstm_evaluator_create_over(lstm_evaluator **out, lstm_model *m, lstm_acts *acts, lstm_state *st, uint32_t *in,
                               uint32_t *tg, uint8_t *reset, int B, int T, const lstm_eval_opts *o);
void lstm_evaluator_free(lstm_evaluator *e);

/* Windows [begin, end) of d, from a zero state; stateful: each lane carries its state from window to
 * window (lstm_batcher_init), else every window starts from zero. Adds to *r (zero it first). Batches
 * without a target are skipped. The dataset's codes, LSTM_E_RANGE, or on_word's. */
int lstm_evaluator_run(lstm_evaluator *e, lstm_dataset *d, uint64_t begin, uint64_t end, int stateful,
                       lstm_eval_result *r);

#endif
