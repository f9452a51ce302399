/* engine.h: the suggestion engine behind lstm-sample (and any server): a request (suggest the next
 * words or complete the text, for a speaker, after earlier turns of the conversation, with sampling
 * options) -> a reply (words with probabilities, or the completion text, or an error message).
 * formats/serve.md is the protocol; serve_json.h reads and writes its JSON lines.
 *
 * An engine holds every buffer a request needs, sized once, so answering does not allocate (beyond
 * the first use of a beam width), and serves one thread at a time. lstm_engine_open maps a
 * checkpoint; lstm_engine_open_shared opens another engine on an open one's model: the mapped
 * checkpoint, weights and word tables are read-only after opening, so the base and its shared
 * engines answer on different threads at once, never waiting on each other, and a server of N
 * workers holds one copy of the model plus N sets of buffers (mapping the checkpoint once per worker
 * counted it N times in the resident size). Call lstm_set_threads(1) once before (lstm-sample does):
 * inference is a chain of small OpenBLAS gemv / sgemm calls that extra threads only slow down; with
 * one thread OpenBLAS runs each call on the calling thread, and lstm_gemm (gemm.h) bypasses its
 * shared pool. Library code: never prints, returns 0 or LSTM_E_*. */
#ifndef LSTM_ENGINE_H
#define LSTM_ENGINE_H
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "decode.h"
#include "lm.h"

#define LSTM_ENGINE_MAX_K 1000        /* suggestions per request */
#define LSTM_ENGINE_MAX_NEW 10000     /* generated tokens per request */
#define LSTM_ENGINE_MAX_BEAM 64
#define LSTM_ENGINE_CTX_CAP 1024      /* prompt ids kept (longer prompts keep their last ones) */
#define LSTM_ENGINE_MAX_TURNS 256     /* context turns per request */
#define LSTM_ENGINE_MAX_CONTEXT 65536 /* bytes of context text per request */

enum { LSTM_MODE_SUGGEST = 0, LSTM_MODE_COMPLETE = 1, LSTM_MODE_FILL = 2 };

/* Fill: the gap in the text is its one run of three or more underscores ("i want to ___ my order"). */
#define LSTM_FILL_GAP "___"

/* An earlier turn of the conversation. */
typedef struct {
    const char *speaker; /* NULL: the model's first speaker (ignored by plain text models) */
    const char *text;
    size_t len;
} lstm_turn;

typedef struct {
    int mode;                 /* LSTM_MODE_* */
    const char *text;         /* the prompt: the turn being typed (fill: the turn with its gap) */
    size_t len;
    const char *speaker;      /* its speaker; NULL: the first one (ignored by plain text models) */
    const lstm_turn *context; /* (ncontext) earlier turns, oldest first, read before the prompt */
    size_t ncontext;
    int k;                    /* suggest: words, 1..LSTM_ENGINE_MAX_K */
    int max_new;              /* complete: tokens at most, 0..LSTM_ENGINE_MAX_NEW */
    int beam;                 /* complete: beam width, 0 = sample (so) */
    float alpha;              /* beam: length normalisation exponent */
    lstm_sampler_opts so;     /* complete: temperature (below LSTM_TEMP_MIN: greedy), top_k, top_p,
                                 repetition_penalty; .banned is ignored (the engine's bans apply) */
    unsigned long long seed;  /* complete: the sampler's seed */
    const char *id;           /* echoed in the reply: compact JSON text (a string or a number), or NULL */
    size_t id_len;
} lstm_request;

/* The defaults of formats/serve.md: suggest, k 5, max_new 30, no beam, alpha 1, temperature 1, seed 1. */
void lstm_request_default(lstm_request *r);
/* NULL when every number of r is in range, else the message ("k must be from 1 to 1000", ...). */
const char *lstm_request_check(const lstm_request *r);

/* Valid until the engine's next request. */
typedef struct {
    int mode;
    const char *error;        /* NULL: answered; else the message, and only id below is set */
    const char *id;           /* the request's */
    size_t id_len;
    /* suggest */
    const lstm_suggestion *sg; /* (n) by decreasing p */
    int n;
    const char *prefix;       /* the word being typed, normalised ("" when none) */
    size_t plen;              /* > 0: only words extending prefix, p renormalised over them */
    double mass;              /* the unrenormalised probability of all candidates */
    /* complete */
    const char *completion;   /* the generated text as it continues the prompt (NUL-terminated) */
    size_t clen;
    int tokens;               /* generated tokens */
} lstm_reply;

typedef struct lstm_engine {
    lstm_lm lm;
    lstm_session sess;
    lstm_suggester sug;
    lstm_sampler smp;
    int beam_words;
    uint8_t *banned;      /* (V) never generated */
    uint8_t *gen_ban;     /* (V) banned + specials that generation never emits */
    uint8_t *gen_ban_end; /* (V) gen_ban + every id that ends a word: after a banned word of several pieces */
    lstm_ids ids, out;    /* prompt ids (context turns, then the prompt from ids.v[prompt_at]); decode scratch */
    size_t prompt_at;
    char *buf;            /* text scratch */
    size_t bufcap;
    char *completion;     /* the last reply's */
    char prefix[4 * LSTM_WORD_MAX];
    lstm_suggestion sg[LSTM_ENGINE_MAX_K];
    lstm_beam beam;
    int beam_W, beam_T;
    uint32_t *gen;        /* (LSTM_ENGINE_MAX_NEW) generated ids */
    uint32_t *hist;       /* (CTX_CAP + MAX_NEW) prompt + generated, for the repetition penalty */
    lstm_state st1;       /* one lane for generation */
    lstm_infer inf1;
    float *lg;            /* (V) */
    lstm_cache_opts cache_opts; /* lstm_engine_set_cache; N = 0: none */
    lstm_cache cache;     /* complete: the prompt's pairs, then the generated ones */
    struct lstm_engine *bwd; /* lstm_engine_set_backward: the right-to-left model of fill requests, or NULL */
    float *fill_prior;    /* (V) lstm_engine_set_fill_prior: log p(w) taken from fill scores, or NULL */
    const char *err;      /* message of the last failed request */
    char errbuf[1024];    /* err when it names things (an unknown speaker and the model's speakers) */
} lstm_engine;

/* Maps the checkpoint and allocates everything. beam_words: the beam over pieces that assembles
 * words for BPE and character models (1..64). On failure the rc is lstm_lm_open's (its message:
 * lstm_engine_open_error) or LSTM_E_NOMEM / LSTM_E_ARG; nothing is left to free. */
int lstm_engine_open(lstm_engine *e, const char *path, int beam_words);
/* An engine on base's model, for another thread: it answers every request byte for byte as
 * lstm_engine_open of base's checkpoint with this beam_words would. The mapped checkpoint, the
 * weights and the word tables are base's, read-only (never freed by e); e allocates its own
 * buffers, session, suggester and tokenizer (tokenizers keep scratch state: tokenizer.h), and starts
 * with no bans (lstm_engine_ban_list on e or base bans for that engine alone). base must stay open
 * until every engine sharing it is closed. 0, LSTM_E_ARG (beam_words out of range, base not open),
 * LSTM_E_NOMEM or the tokenizer's codes; nothing is left to free on failure. */
int lstm_engine_open_shared(lstm_engine *e, const lstm_engine *base, int beam_words);
/* lstm_lm_open_error's message for a failed lstm_engine_open(e, path). */
const char *lstm_engine_open_error(const lstm_engine *e, int rc, const char *path, char *buf, size_t cap);
void lstm_engine_close(lstm_engine *e);

/* Bans the words of a list (one per line, surrounding spaces and tabs ignored, a UTF-8 byte order
 * mark before the first): never suggested, nor generated (a word of one token is never emitted; one
 * of several pieces is never allowed to end). A list that is not text is refused with LSTM_E_FORMAT,
 * *bad_line (1-based) and *why ("a NUL byte", "invalid UTF-8"), before anything is banned. */
int lstm_engine_ban_list(lstm_engine *e, const char *text, size_t len, unsigned long *bad_line, const char **why);

/* The continuous cache (cache.h) for every following request: the conversation's own (top-layer
 * state, next token) pairs, its context turns and the prompt as the session read them (the last N of
 * them), vote for the next token, so the names and numbers already typed come back. Suggest: the
 * first token's distribution is mixed (a word model's whole words; a BPE or character model's first
 * piece, the beam's later pieces being the model's). Complete: sampling and greedy mix every step,
 * each generated token joining the cache; beam search mixes its first step only. The mixed logits
 * are log-probabilities (all <= 0), so a repetition penalty multiplies every penalised one. o->N = 0
 * or lambda = 0 turns it off (the engine answers exactly as without). 0, LSTM_E_ARG (o out of
 * range: lstm_cache_opts_check) or LSTM_E_NOMEM (the engine then has no cache). */
int lstm_engine_set_cache(lstm_engine *e, const lstm_cache_opts *o);

/* The right-to-left model (a checkpoint trained on lstm-window --reverse windows, path) that fill
 * requests read the text after the gap with; engines opened shared on e afterwards share it too.
 * Both must be word models with the same tokenizer. 0, or the rc with *why set to a one-line message
 * (static or in e->errbuf): lstm_lm_open's codes, LSTM_E_ARG (not word models, e is a right-to-left
 * model or path is not one), LSTM_E_VOCAB (another tokenizer), LSTM_E_NOMEM. */
int lstm_engine_set_backward(lstm_engine *e, const char *path, const char **why);

/* A unigram prior for fill requests (word models): the score becomes log p_fwd + log p_bwd - log p(w),
 * p(w) = (counts[w] + 1) / (total + V) from the training text's counts (lstm_fill_count_prior), which
 * under independence of the two sides given the word is p(w | left, right) (the plain product counts
 * the word's frequency twice). Engines opened shared on e afterwards copy it. 0, LSTM_E_ARG (not a word
 * model), LSTM_E_NOMEM. */
int lstm_engine_set_fill_prior(lstm_engine *e, const uint64_t *counts);

/* Forgets the prompt read last. The session reuses the recurrent state of the longest prompt prefix
 * it read before, which saves time but runs the new tokens in other groupings than a fresh start
 * would (one GEMM per chunk of new tokens), so a probability can differ from a fresh engine's in its
 * last digits (relative differences of about 1e-8): after a reset the next answer is exactly a fresh engine's. */
void lstm_engine_reset(lstm_engine *e);

/* 1 if name is a speaker of the model (or the model has none), else 0. */
int lstm_engine_has_speaker(lstm_engine *e, const char *name);

/* Answers r into out. Returns 0, or -1 with out->error set (an unknown speaker, a field out of range,
 * every token banned, out of memory). Suggest: the text ending inside a word (ICU word boundaries)
 * asks for words completing it. Complete: until EOS or max_new tokens. Fill: the words for the gap
 * (LSTM_FILL_GAP), by log p_fwd(w | context turns, text before the gap) + log p_bwd(w | text after the
 * gap read backwards) normalised over the vocabulary's words (lstm_suggest_fill); the text after the
 * gap is the rest of the turn. Needs lstm_engine_set_backward. */
int lstm_engine_run(lstm_engine *e, const lstm_request *r, lstm_reply *out);

#endif
