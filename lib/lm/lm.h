/* lm.h: a trained language model ready to evaluate and serve: the checkpoint mapped read-only with
 * its tokenizer, prompts built exactly as training data was, a word-level view of the pieces (what
 * counts as a word for per-word perplexity and keystroke savings), a one-lane session that reuses
 * the state of the longest prompt prefix it has already read, and next-word suggestions (whole
 * words: vocabulary words for word models, a small beam over pieces for BPE and character models,
 * optionally completing a partly typed word). Library code: never prints, returns 0 or LSTM_E_*. */
#ifndef LSTM_LM_H
#define LSTM_LM_H
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "modelfile.h"
#include "tokenizer.h"

#define LSTM_WORD_MAX 128 /* bytes of a suggested word (longer words are not suggested) */

/* Roles of a piece in a word (lstm_lm.wf). A word is a FIRST piece followed by CONT pieces and ends
 * before a BOUND piece. Word models: every word token is FIRST, punctuation tokens are PUNCT. */
#define LSTM_W_FIRST 1u /* can start a word (letters; bpe: with U+2581) */
#define LSTM_W_CONT 2u  /* can continue a word (bpe: no U+2581; chars: not space or punctuation) */
#define LSTM_W_BOUND 4u /* ends the word before it: specials, speaker tags, word starts, spaces, punctuation */
#define LSTM_W_PUNCT 8u /* punctuation (apostrophe and hyphen count as letters) */

typedef struct {
    lstm_modelfile f;
    const lstm_model *m;
    lstm_tokenizer *tok;
    int kind;          /* enum lstm_tok_kind */
    int keep_case;     /* the tokenizer does not case-fold */
    int V, S;          /* ids, speaker tags */
    uint8_t *flags;    /* (V) lstm_tokenizer_piece_flags */
    uint8_t *wf;       /* (V) LSTM_W_* : the piece's role in assembling words */
    char *text;        /* the pieces' contribution to a word's text: bpe "▁ab" -> "ab", "<0x41>" -> "A" */
    uint32_t *toff;    /* (V+1) offsets into text */
    struct UBreakIterator *brk; /* ICU word breaks, for lstm_lm_partial_word */
    int shared;        /* lstm_lm_open_shared: f, m, flags, wf, text and toff are another lm's */
} lstm_lm;

/* Opens a checkpoint: lstm_modelfile_open's codes (LSTM_E_MAGIC for a file that is not a checkpoint,
 * LSTM_E_TRUNCATED, LSTM_E_CORRUPT, LSTM_E_FORMAT, LSTM_E_NAN for NaN/Inf weights with lm->f.bad_tensor
 * naming the tensor) and the tokenizer's, plus LSTM_E_VOCAB when the tokenizer and the model disagree
 * on the vocabulary size. */
int lstm_lm_open(lstm_lm *lm, const char *path);
/* The word view alone, for a model that is not a checkpoint (lstm-ngram's): the tokenizer of blob
 * (len bytes, a stream's "tokenizer" metadata), lm->V its ids, and everything above that needs no
 * network: lstm_lm_normalize, lstm_lm_partial_word, lstm_lm_starts_word, the piece roles and texts,
 * and a word model's suggester (lstm_suggest with logits, lstm_suggest_rank). lm->m is NULL: no
 * session, no prompt, and no suggester for BPE or characters (its beam runs the network:
 * LSTM_E_ARG). The tokenizer's codes, LSTM_E_ICU or LSTM_E_NOMEM; nothing is left to free then. */
int lstm_lm_open_tokenizer(lstm_lm *lm, const uint8_t *blob, size_t len);
/* An lm over the checkpoint base has open, for another thread: the mapping, the model and the word
 * tables (flags, wf, text, toff) are base's, never written after lstm_lm_open, so any number of
 * threads read them at once; the tokenizer and the break iterator, which keep scratch state, are
 * lm's own (loaded from the same blob: lm encodes exactly as base does). base (and, if base is
 * shared too, the lm it shares) must stay open until lm is closed; lstm_lm_close(lm) frees only
 * what is lm's own. 0, LSTM_E_ARG (base is not open),
 * LSTM_E_NOMEM, LSTM_E_ICU or the tokenizer's codes; nothing is left to free on failure. */
int lstm_lm_open_shared(lstm_lm *lm, const lstm_lm *base);
void lstm_lm_close(lstm_lm *lm);

/* What the weights are, for -v lines, into buf: "fp32 checkpoint", "fp32 export", or "int8 export
 * (embedding, output layer; kernel avx2+fma)" ("..., output layer and recurrent weights; ...") naming
 * the quantized kernel in use. Returns buf. */
const char *lstm_lm_weights_desc(const lstm_lm *lm, char *buf, size_t cap);

/* The one-line message for lstm_lm_open's error rc on path (without the program name), into buf. */
const char *lstm_lm_open_message(int rc, const char *path, char *buf, size_t cap);
/* The same, after a failed lstm_lm_open(lm, path): also names the tensor of LSTM_E_NAN. */
const char *lstm_lm_open_error(const lstm_lm *lm, int rc, const char *path, char *buf, size_t cap);

/* What a file that is not a checkpoint looks like: "a window stream (WIND)", "a token stream (TOKS)",
 * "a vocabulary file (VOCB)", "an n-gram model (lstm-ngram)", "another lstm stream", "an empty file",
 * "a text file", or "not a checkpoint" (static strings). lstm_lm_open_message tells an n-gram model's
 * user what evaluates it. */
const char *lstm_lm_describe_file(const char *path);

/* 1 if the blob (e.g. a stream's "tokenizer" metadata) is the model's tokenizer. */
int lstm_lm_same_tokenizer(const lstm_lm *lm, const uint8_t *blob, size_t len);

/* The ids of a prompt, as training saw them: for a chat model (S > 0) "<speaker-tag> <BOS> tokens"
 * (speaker NULL = the first speaker of the tokenizer); for a plain text model "EOS tokens" (the end
 * of a previous document, which is what preceded every document of a --cross-docs stream; with it an
 * empty prompt predicts the first word of a document). LSTM_E_NOTFOUND for an unknown speaker. */
int lstm_lm_prompt(lstm_lm *lm, const char *speaker, const char *text, size_t len, lstm_ids *out);

/* Where the partly typed word at the end of text starts, in *start: len when the text ends in
 * whitespace, punctuation, a symbol or an emoji (a next-word request after the whole text). The
 * boundary is ICU's, as the word tokenizer segments: the partial word is the last word-break segment
 * when it is word-like (letters, digits, kana, ideographs), plus a trailing apostrophe ("don'" is
 * the start of "don't"). For BPE, character and space models, whose words run through apostrophes
 * and hyphens and stop at punctuation (lstm_lm.wf), segments joined by ' or - count as one ("e-ma")
 * and the word starts after the last punctuation inside it ("3.1" -> "1"). Uses lm's break iterator:
 * one lm per thread. 0 or LSTM_E_ICU. */
int lstm_lm_partial_word(lstm_lm *lm, const char *text, size_t len, size_t *start);

/* The speaker names of a chat model (its tags without the angle brackets: what lstm_lm_prompt
 * takes), joined by ", ", into buf (cap bytes, NUL-terminated); "" without speakers. Names that do
 * not fit are counted instead: "user, agent, ... (12 more)". Returns buf. */
const char *lstm_lm_speaker_names(const lstm_lm *lm, char *buf, size_t cap);

/* The typed prefix normalised as the tokenizer normalises text (NFKC, case-folded unless keep_case),
 * into out (cap bytes, NUL-terminated). LSTM_E_TOOBIG if it does not fit. */
int lstm_lm_normalize(const lstm_lm *lm, const char *s, size_t n, char *out, size_t cap, size_t *outn);

/* Word view. A token "starts a word" when it begins a new whitespace-separated word of the text:
 * words/space tokens except punctuation that follows another token; bpe pieces with the U+2581
 * prefix; a non-space character after a space. Anything right after a special token or speaker tag
 * (BOS, EOS) starts a word unless it is whitespace. Speaker tags and specials start none. */
int lstm_lm_starts_word(const lstm_lm *lm, uint32_t prev, uint32_t id);

/* Words assembled from pieces as a user types them (keystroke savings): the role of piece id after
 * piece prev, as LSTM_LM_ROLE_* bits. A word starts at a START piece and takes the CONT pieces after
 * it; anything else ends it. Word models: every word token is START, punctuation PUNCT. For
 * characters, a letter starts a word only after a boundary (a space, punctuation, a special token). */
#define LSTM_LM_ROLE_START 1u /* begins a word here */
#define LSTM_LM_ROLE_CONT 2u  /* extends the word in progress (bpe: no U+2581; chars: a letter) */
#define LSTM_LM_ROLE_TEXT 4u  /* has text that is typed: not a special token, speaker tag or space, not empty */
#define LSTM_LM_ROLE_PUNCT 8u /* punctuation: typed, never suggested */
unsigned lstm_lm_piece_word_role(const lstm_lm *lm, uint32_t prev, uint32_t id);

/* The piece's contribution to a word's text, normalised as suggestions spell words (bpe "▁ab" ->
 * "ab", "<0x41>" -> "A"), *n bytes, not NUL-terminated. */
const char *lstm_lm_piece_text(const lstm_lm *lm, uint32_t id, size_t *n);

/* ---- a one-lane session ---- */
typedef struct {
    const lstm_lm *lm;
    lstm_infer inf;
    lstm_infer seq;     /* one lane over up to LSTM_SESSION_CHUNK prompt tokens at a time */
    lstm_state st;
    float *logits;      /* (V) after lstm_session_feed: the next-token logits */
    uint32_t *ids;      /* (cap) the prompt read last */
    float *hs, *cs;     /* (cap, L*H) state after each of those ids */
    size_t n, cap;
} lstm_session;

#define LSTM_SESSION_CHUNK 64
int lstm_session_init(lstm_session *s, const lstm_lm *lm, size_t cap);
void lstm_session_free(lstm_session *s);
/* Runs the prompt ids (n >= 1) and leaves its final state in s->st and the next-token logits in
 * s->logits. Reuses the states of the longest common prefix with the previous prompt (only the
 * last id runs the output layer). Prompts longer than cap keep their last cap ids. */
int lstm_session_feed(lstm_session *s, const uint32_t *ids, size_t n);
/* lstm_session_feed without the output layer for the last id (s->logits is left as it was): for
 * lstm_suggest with logits NULL. */
int lstm_session_feed_state(lstm_session *s, const uint32_t *ids, size_t n);
/* Forget the previous prompt (the next feed starts from a zero state). */
void lstm_session_reset(lstm_session *s);

/* ---- next-word suggestions ---- */
typedef struct {
    char word[LSTM_WORD_MAX];
    size_t len;
    double p;       /* probability (see lstm_suggest) */
} lstm_suggestion;

typedef struct {
    const lstm_lm *lm;
    int kmax, W, max_pieces;
    const uint8_t *banned;    /* (V) or NULL: never suggested */
    float *work;              /* (V) */
    int *idx;                 /* (max(V, W*2)) */
    uint32_t *sorted;         /* word models: word ids by their bytes, for prefix ranges */
    uint32_t nsorted;
    /* beam over pieces (bpe, chars) */
    lstm_infer inf;
    lstm_state st, tmp;       /* W lanes */
    float *logits;            /* (W,V) */
    char *htext, *htext2;     /* (W, LSTM_WORD_MAX) hypothesis texts */
    size_t *hlen, *hlen2;     /* (W) */
    double *hlp, *hlp2;       /* (W) */
    int *par;                 /* (W) */
    uint32_t *feed;           /* (W) */
    lstm_suggestion *found;   /* (W * max_pieces + 1) finished words */
    char **ban;               /* normalised banned words, never suggested */
    size_t nban;
    uint32_t *excl;           /* word models: ids never suggested (not in sorted) */
    uint32_t nexcl;
    int nfound, capfound;
    uint32_t *bound;          /* ids that end a word: specials, speakers, word starts, spaces, punctuation */
    uint32_t nbound;
    /* word models with an adaptive softmax: the next word's log-probabilities, filled only where a
     * suggestion can be (lstm_suggest with logits NULL), the head's and a projection */
    float *lazy, *ahead, *topv;
    int ntopv;
} lstm_suggester;

/* kmax: the largest k asked; W: beam width (bpe / chars: needs lm->m); banned: (V) ids never suggested, or NULL
 * (for bpe / chars a banned piece is never part of a suggested word; ban whole words with
 * lstm_suggest's caller-side filter). */
int lstm_suggester_init(lstm_suggester *g, const lstm_lm *lm, int kmax, int W, const uint8_t *banned);
void lstm_suggester_free(lstm_suggester *g);

/* Adds a word (normalised) that is never suggested, whatever the tokenizer. */
int lstm_suggester_ban_word(lstm_suggester *g, const char *w, size_t n);

/* The k most likely next words (k <= kmax) after a context whose one-lane state is st and whose
 * next-token logits are logits. logits may be NULL for a word model with an adaptive softmax
 * (lstm_suggest_lazy): the distribution is computed from st's top layer, the head and only the tail
 * clusters that can hold a suggestion (for a prefix, those holding a word that extends it); the
 * suggestions are the ones the full distribution gives. prefix (normalised, may be empty): only words extending it. Writes
 * up to k suggestions by decreasing probability and returns how many. Probabilities: without a
 * prefix, the model's probability that the next word is that word; with a prefix, renormalised over
 * the words extending the prefix that were found (all vocabulary words for word models, the beam's
 * words for bpe / chars). *mass (may be NULL): the unrenormalised probability of all candidates. */
int lstm_suggest(lstm_suggester *g, const lstm_state *st, const float *logits, const char *prefix, size_t plen,
                 int k, lstm_suggestion *out, double *mass);
/* The fill scores of every candidate word of g (a word model's suggester: lstm_suggest's words, bans
 * applied) from the two models' next-token logits lf (forward, after the left context) and lb
 * (backward, after the reversed right context), both over the same V ids, minus logprior (V; NULL:
 * none) when given (fill.h, engine.h: lstm_engine_set_fill_prior): the k best by decreasing
 * probability into out, p normalised over the candidates. Returns how many (<= k), LSTM_E_ARG for a
 * suggester that is not a word model's. */
int lstm_suggest_fill(lstm_suggester *g, const float *lf, const float *lb, const float *logprior, int k,
                      lstm_suggestion *out);

/* 1 when lstm_suggest on g may be given NULL logits (a word model with an adaptive softmax). */
int lstm_suggest_lazy(const lstm_suggester *g);

/* Generation-side bans for words of several pieces: 1 when the word that ids[0..n) ends with (its
 * first piece and the continuing ones after it) is a banned word and has a piece at index >= from
 * (a generated one), else 0. The caller then keeps the word from ending: no id that ends a word
 * (lstm_lm.wf & LSTM_W_BOUND, EOS included) may come next. */
int lstm_suggester_word_banned(const lstm_suggester *g, const uint32_t *ids, size_t n, size_t from);

/* Word models: the rank (0-based) of word id among the words extending prefix by the logits, stopping
 * at limit (returns limit when it ranks there or lower, or id does not extend prefix). For keystroke
 * simulation: ranks ties by lower id, as lstm_suggest does. */
int lstm_suggest_rank(lstm_suggester *g, const float *logits, const char *prefix, size_t plen, uint32_t id, int limit);

#endif
