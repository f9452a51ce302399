/* fill.h: fill-in-the-middle with two word models, one trained left to right and one right to left
 * (on lstm-window --reverse windows). A gap between a left and a right context is filled by the
 * words w that maximise
 *
 *     log p_fwd(w | left) + log p_bwd(w | right read backwards)
 *
 * normalised over the candidate words (the vocabulary words lstm_suggest offers), so the two models
 * vote as a product of experts. A document (token ids, formats/tokens.md) reads backwards as its
 * segments (each up to and with an EOS: a text line, a chat turn) in reverse order, each segment's
 * tokens reversed but its leading "<tag> <s>" (chat) kept in front and its EOS kept at its end.
 * Library code: never prints, returns 0 or LSTM_E_*. */
#ifndef LSTM_FILL_H
#define LSTM_FILL_H
#include <stddef.h>
#include <stdint.h>

#include "lm.h"
#include "rng.h"
#include "stream.h"

/* The document in[0..n) read backwards into out (n ids; out != in): mode LSTM_REVERSE_DOCS (model.h)
 * puts the segments in reverse order, LSTM_REVERSE_TURNS keeps their order (each segment is read
 * backwards either way). pos (may be NULL): pos[i] is the index in out of in[i]. A segment's head is
 * its leading BOS, or a token followed by BOS (a speaker tag and BOS), as lstm-tok writes chat turns;
 * text lines have none. Applied twice it gives back a
 * document that ends with EOS, as every lstm-tok document does (a last segment without one would
 * join the next segment in out). */
void lstm_doc_reverse(const uint32_t *in, size_t n, int mode, uint32_t *out, size_t *pos);

/* The reading of a window stream's documents, from its "reverse" metadata: 0 (absent),
 * LSTM_REVERSE_DOCS ("docs") or LSTM_REVERSE_TURNS ("turns"); -1 for another value. */
int lstm_meta_reverse(const lstm_meta *m);
/* "read forwards", "read backwards (lstm-window --reverse)", "turns read backwards (lstm-window
 * --reverse-turns)": for messages. */
const char *lstm_reverse_desc(int mode);

/* The reversed form of a prompt lstm_lm_prompt built: its head ("<tag> <s>" for a chat model, "</s>"
 * for a plain text model) kept, the tokens after it reversed in place, so the backward model reads
 * the right context from its end towards the gap. */
void lstm_prompt_reverse(const lstm_lm *lm, uint32_t *ids, size_t n);

/* A unigram prior for the fill score: the occurrences of each id in a token stream (path; NULL or "-"
 * stdin), which must carry lm's tokenizer (the training tokens, lstm-tok -o train.tok), into *counts
 * ((V), malloc'ed). 0, LSTM_E_KIND (not a token stream: *kind says what it is), LSTM_E_VOCAB (another
 * tokenizer), LSTM_E_IO (errno), the stream's codes, LSTM_E_NOMEM. */
int lstm_fill_count_prior(const char *path, const lstm_lm *lm, uint64_t **counts, uint32_t *kind);
/* log p(w) = log((count + 1) / (total + V)) for every id, into logp (V). */
void lstm_fill_log_prior(const uint64_t *counts, int V, float *logp);

/* Scoring fill-in-the-middle on held-out documents (lstm-eval --fill): in every segment (a line or a
 * turn) one word token, drawn uniformly from the segment's candidate words (never UNK) with a seeded
 * generator, is blanked; the forward model reads the document up to it, the backward model the
 * document after it (read backwards), and the word's rank among the candidates is counted for the
 * fill score and for either model alone. */
typedef struct {
    long blanks;
    long fill1, fill5;   /* the blanked word ranked first / in the first five by the fill score */
    long fwd1, fwd5;     /* ... by the forward model alone (next-word prediction of that word) */
    long bwd1, bwd5;     /* ... by the backward model alone */
    double fill_nll;     /* summed -log of the fill probability of the blanked words */
    double fwd_nll;      /* summed -log of the forward probability renormalised over the candidates */
    long prior1, prior5; /* with a unigram prior (lstm_fill_eval_set_prior): the fill score minus log p(w) */
    double prior_nll;
} lstm_fill_stats;

typedef struct {
    const lstm_lm *fwd, *bwd;
    lstm_session sf, sb;
    uint8_t *cand;       /* (V) 1 for a candidate word */
    float *lpf;          /* (cap_blanks, V) forward log-probabilities at the blanks of a document */
    float *lpb;          /* (V) the backward model's at one blank */
    size_t cap_blanks;
    size_t *bpos;        /* (cap_blanks) positions of the blanks in the document */
    uint32_t *rev, *ctx; /* (cap) the document backwards; a context with its head */
    size_t *pos, cap;
    lstm_rng rng;
    float *logprior;     /* (V) or NULL: log p(w), the words' frequencies in the training text */
} lstm_fill_eval;

/* fwd and bwd: open word models with the same tokenizer, bwd trained on reversed windows. 0,
 * LSTM_E_ARG (not word models, or bwd is not a backward model, or fwd is one), LSTM_E_VOCAB
 * (different tokenizers), LSTM_E_NOMEM. */
int lstm_fill_eval_init(lstm_fill_eval *f, const lstm_lm *fwd, const lstm_lm *bwd, uint64_t seed);
void lstm_fill_eval_free(lstm_fill_eval *f);
/* Also score log p_fwd(w|left) + log p_bwd(w|right) - log p(w): under the assumption that the left and
 * the right context are independent given the word, p(w | left, right) is proportional to
 * p(w | left) p(w | right) / p(w), and the plain product counts the word's frequency twice. counts:
 * (V) occurrences of each id in the training text; p(w) = (count + 1) / (total + V). 0 or LSTM_E_NOMEM. */
int lstm_fill_eval_set_prior(lstm_fill_eval *f, const uint64_t *counts);
/* One document's blanks added to s. Ids must be < V. */
int lstm_fill_eval_doc(lstm_fill_eval *f, const uint32_t *ids, size_t n, lstm_fill_stats *s);

#endif
