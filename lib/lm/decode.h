/* decode.h: turning a model's logits into choices: softmax with temperature, top-k (partial
 * selection, never a full sort of V), top-p (nucleus), repetition penalty, sampling with an explicit
 * lstm_rng, and beam search with length normalisation over lstm_infer_step.
 *
 * Nothing here allocates per call: a lstm_sampler / lstm_beam owns its scratch, sized once for V
 * (and the beam width). Library code: never prints, returns 0 or a negative LSTM_E_* code. */
#ifndef LSTM_DECODE_H
#define LSTM_DECODE_H
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "rng.h"

/* Temperatures below this are greedy: 1/T overflows float for T < ~3e-39, and well before that
 * x/T rounds every non-maximal candidate to probability 0 anyway (logits differing by 0.01 are
 * already e^-100 apart at 1e-4). */
#define LSTM_TEMP_MIN 1e-4f

/* p (n) = softmax(x / temperature); p may alias x. A temperature below LSTM_TEMP_MIN (zero, negative
 * or NaN included) is taken as LSTM_TEMP_MIN. Returns log(sum exp(x/temp)), the log-normaliser (so
 * log p_i = x_i / temp - returned value). */
double lstm_softmax(float *p, const float *x, int n, float temperature);

/* Indices of the k largest x (k clipped to n), sorted by decreasing x, ties by lower index, into
 * idx (k). Entries equal to -INFINITY are never selected. O(n log k). Returns how many were written. */
int lstm_topk(const float *x, int n, int k, int *idx /* (k) */);

/* CTRL-style repetition penalty (penalty > 1 discourages): every id present in hist gets its logit
 * divided by penalty when positive, multiplied when negative; each id once however often it occurs. */
void lstm_repetition_penalty(float *logits /* (V) */, int V, const uint32_t *hist, size_t n, float penalty);

typedef struct {
    float temperature;        /* < LSTM_TEMP_MIN (0 included): greedy (argmax) */
    int top_k;                /* keep the k most likely ids; 0 = all */
    float top_p;              /* keep the smallest most-likely set with mass >= top_p; >= 1 = all */
    float repetition_penalty; /* 1 = none */
    const uint8_t *banned;    /* (V) 1 = never chosen; NULL = none */
} lstm_sampler_opts;

/* Defaults: temperature 1, no top-k / top-p / penalty / bans. */
void lstm_sampler_opts_default(lstm_sampler_opts *o);

typedef struct {
    int V;
    float *work; /* (V) adjusted logits */
    float *prob; /* (V) probabilities of the kept candidates */
    int *idx;    /* (V) candidate ids */
    uint8_t *seen; /* (V) repetition penalty: ids already penalised */
} lstm_sampler;

int lstm_sampler_init(lstm_sampler *s, int V);
void lstm_sampler_free(lstm_sampler *s);

/* Applies the penalty (hist = ids generated or given so far) and bans to a copy of logits, then picks
 * greedily or samples from what temperature / top-k / top-p keep, drawing one uniform from rng (none
 * when greedy). Returns the id, or a negative code: LSTM_E_EMPTY when every id is banned. prob, when
 * not NULL, receives the chosen id's probability under the final (truncated, renormalised)
 * distribution (1 when greedy). */
int64_t lstm_sampler_pick(lstm_sampler *s, const lstm_sampler_opts *o, const float *logits /* (V) */,
                          const uint32_t *hist, size_t nhist, lstm_rng *rng, float *prob);

/* The kept distribution without drawing: after penalty, bans, temperature, top-k and top-p, writes
 * the kept ids by decreasing probability into ids and their renormalised probabilities into p, and
 * returns how many (>= 1), or LSTM_E_EMPTY. ids / p must hold V entries. Greedy keeps one id. */
int lstm_sampler_dist(lstm_sampler *s, const lstm_sampler_opts *o, const float *logits, const uint32_t *hist,
                      size_t nhist, int *ids, float *p);

/* ---- beam search ----
 * W hypotheses, each a lane of one W-lane lstm_state. Every step expands each live hypothesis by every
 * id allowed (after its own repetition penalty and the bans), keeps the W best continuations by total
 * log probability, and retires a hypothesis when it ends with eos (only when eos ranks within the W
 * best, so W = 1 is exactly greedy). Search stops when W hypotheses have ended or after max_new
 * steps; the answer is the ended (or, failing that, live) hypothesis with the best score
 * logp / len^alpha (len counts generated ids, eos included). */
typedef struct {
    const lstm_model *m;
    int W, max_new, V;
    lstm_infer inf;
    lstm_state st, tmp;     /* W lanes */
    float *logits;          /* (W,V) */
    float *lp;              /* (V) log-probabilities of one hypothesis */
    uint32_t *seq, *seq2;   /* (W,max_new) live hypotheses' ids, and the next step's */
    double *score;          /* (W) total log probability of live hypotheses */
    int nlive;
    uint32_t *best;         /* (max_new) the best ended hypothesis so far */
    int best_len;
    double best_norm;
    int *cand_h, *cand_t;   /* (2W) candidates: parent hypothesis, id */
    double *cand_s;         /* (2W) their total log probability */
    int *top;               /* (2W) */
    int *parent;            /* (W) */
    uint32_t *feed;         /* (W) the ids fed at the next step (PAD in idle lanes) */
    double *nscore;         /* (W) */
    uint32_t *hist;         /* (prompt cap + max_new) per-hypothesis history for the penalty */
    size_t hist_cap;
    uint8_t *seen;          /* (V) */
} lstm_beam;

/* W >= 1, max_new >= 1; hist_cap: the longest prompt history passed to lstm_beam_run. */
int lstm_beam_init(lstm_beam *b, const lstm_model *m, int W, int max_new, size_t hist_cap);
void lstm_beam_free(lstm_beam *b);

typedef struct {
    float alpha;              /* length normalisation exponent (0 = none, 1 = mean log probability) */
    float repetition_penalty; /* 1 = none */
    const uint8_t *banned;    /* (V) or NULL */
    uint32_t eos;             /* the id that ends a hypothesis */
    /* Optional bans that depend on the text so far (e.g. a banned word of several pieces): when
     * held(ctx, hist, n, nprompt) returns 1 for a hypothesis whose history (prompt + its ids) is
     * hist[0..n), its next id is drawn with banned_held (V) instead of banned, and a hypothesis still
     * held at the length limit is not an answer. NULL = none. */
    int (*held)(void *ctx, const uint32_t *hist, size_t n, size_t nprompt);
    void *ctx;
    const uint8_t *banned_held;
} lstm_beam_opts;

/* Searches from the one-lane state st0 whose next-token logits are logits0 (V). prompt (nprompt <=
 * hist_cap ids) only feeds the repetition penalty. Writes the best hypothesis (eos included when it
 * ended) into out (max_new) and returns its length, or a negative code. logp, when not NULL, gets its
 * total log probability. */
int lstm_beam_run(lstm_beam *b, const lstm_beam_opts *o, const lstm_state *st0, const float *logits0,
                  const uint32_t *prompt, size_t nprompt, uint32_t *out, double *logp);

#endif
