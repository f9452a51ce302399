/* engine.c: one suggest / complete request against a mapped checkpoint (engine.h): the prompt built
 * from the context turns and the text as lstm-tok encodes a conversation, next-word suggestions,
 * sampled or beam-searched completions with word bans, the continuous cache mixed into what they
 * rank, and the completion detokenised as it continues the prompt. */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fill.h"
#include "mathx.h"
#include "utf8.h"

#define CTX_CAP LSTM_ENGINE_CTX_CAP
#define MAX_NEW LSTM_ENGINE_MAX_NEW

void lstm_request_default(lstm_request *r)
{
    memset(r, 0, sizeof *r);
    r->mode = LSTM_MODE_SUGGEST;
    r->k = 5;
    r->max_new = 30;
    r->alpha = 1.0f;
    r->seed = 1;
    lstm_sampler_opts_default(&r->so);
}

const char *lstm_request_check(const lstm_request *r)
{
    if (r->k < 1 || r->k > LSTM_ENGINE_MAX_K) return "k must be from 1 to 1000";
    if (r->max_new < 0 || r->max_new > MAX_NEW) return "max_new must be from 0 to 10000";
    if (!(r->so.temperature >= 0) || r->so.temperature > 100) return "temperature must be from 0 to 100";
    if (r->so.top_k < 0) return "top_k must be >= 0";
    if (!(r->so.top_p > 0) || r->so.top_p > 1) return "top_p must be in (0, 1]";
    if (!(r->so.repetition_penalty > 0) || r->so.repetition_penalty > 100) return "repetition_penalty must be in (0, 100]";
    if (r->beam < 0 || r->beam > LSTM_ENGINE_MAX_BEAM) return "beam must be from 0 to 64";
    if (r->ncontext > LSTM_ENGINE_MAX_TURNS) return "context: at most 256 turns";
    if (r->ncontext && !r->context) return "context: no turns";
    return NULL;
}

/* ------------------------------------------------------------------ set-up */

/* Generation never emits padding, BOS, UNK or a speaker tag; EOS ends it. */
static void set_gen_bans(lstm_engine *e)
{
    int V = e->lm.V;
    memcpy(e->gen_ban, e->banned, (size_t)V);
    for (int i = 0; i < V; i++)
        if ((e->lm.flags[i] & (LSTM_PIECE_SPECIAL | LSTM_PIECE_SPEAKER)) && i != LSTM_EOS_ID) e->gen_ban[i] = 1;
    for (int i = 0; i < V; i++) e->gen_ban_end[i] = e->gen_ban[i] || (e->lm.wf[i] & LSTM_W_BOUND);
}

/* Everything a request needs beside the model, for an engine whose e->lm is open. */
static int engine_setup(lstm_engine *e, int beam_words)
{
    int rc, V = e->lm.V;
    e->beam_words = beam_words;
    e->banned = calloc((size_t)V, 1);
    e->gen_ban = calloc((size_t)V, 1);
    e->gen_ban_end = calloc((size_t)V, 1);
    e->lg = malloc(sizeof *e->lg * (size_t)V);
    e->gen = malloc(sizeof *e->gen * MAX_NEW);
    e->hist = malloc(sizeof *e->hist * (CTX_CAP + MAX_NEW));
    rc = LSTM_E_NOMEM;
    if (e->banned && e->gen_ban && e->gen_ban_end && e->lg && e->gen && e->hist &&
        !(rc = lstm_session_init(&e->sess, &e->lm, CTX_CAP)) && !(rc = lstm_sampler_init(&e->smp, V)) &&
        !(rc = lstm_infer_alloc(&e->inf1, e->lm.m, 1)) && !(rc = lstm_state_alloc(&e->st1, e->lm.m, 1)) &&
        !(rc = lstm_suggester_init(&e->sug, &e->lm, LSTM_ENGINE_MAX_K, beam_words, NULL))) {
        set_gen_bans(e);
        return 0;
    }
    lstm_engine_close(e);
    memset(e, 0, sizeof *e);
    return rc;
}

int lstm_engine_open(lstm_engine *e, const char *path, int beam_words)
{
    memset(e, 0, sizeof *e);
    if (beam_words < 1 || beam_words > 64) return LSTM_E_ARG;
    int rc = lstm_lm_open(&e->lm, path);
    if (rc) return rc; /* e->lm keeps what lstm_lm_open_error reads */
    return engine_setup(e, beam_words);
}

int lstm_engine_open_shared(lstm_engine *e, const lstm_engine *base, int beam_words)
{
    memset(e, 0, sizeof *e);
    if (beam_words < 1 || beam_words > 64 || !base->lm.m) return LSTM_E_ARG;
    int rc = lstm_lm_open_shared(&e->lm, &base->lm);
    if (rc) return rc;
    if ((rc = engine_setup(e, beam_words))) return rc;
    if (base->fill_prior) {
        if (!(e->fill_prior = malloc(sizeof *e->fill_prior * (size_t)e->lm.V))) {
            lstm_engine_close(e);
            return LSTM_E_NOMEM;
        }
        memcpy(e->fill_prior, base->fill_prior, sizeof *e->fill_prior * (size_t)e->lm.V);
    }
    if (base->bwd) {
        lstm_engine *b = calloc(1, sizeof *b);
        if (!b || (rc = lstm_engine_open_shared(b, base->bwd, beam_words))) {
            free(b);
            lstm_engine_close(e);
            return b ? rc : LSTM_E_NOMEM;
        }
        e->bwd = b;
    }
    return 0;
}


int lstm_engine_set_fill_prior(lstm_engine *e, const uint64_t *counts)
{
    if (!e->lm.m || !e->sug.sorted) return LSTM_E_ARG;
    if (!e->fill_prior && !(e->fill_prior = malloc(sizeof *e->fill_prior * (size_t)e->lm.V))) return LSTM_E_NOMEM;
    lstm_fill_log_prior(counts, e->lm.V, e->fill_prior);
    return 0;
}

int lstm_engine_set_backward(lstm_engine *e, const char *path, const char **why)
{
    *why = NULL;
    if (!e->lm.m) return LSTM_E_ARG;
    lstm_engine *b = calloc(1, sizeof *b);
    if (!b) {
        *why = "out of memory";
        return LSTM_E_NOMEM;
    }
    int rc = lstm_engine_open(b, path, e->beam_words);
    if (rc) {
        lstm_engine_open_error(b, rc, path, e->errbuf, sizeof e->errbuf);
        *why = e->errbuf;
    } else if (e->lm.m->cfg.reverse) {
        rc = LSTM_E_ARG;
        *why = "the forward model is a right-to-left one (trained on lstm-window --reverse windows)";
    } else if (b->lm.m->cfg.reverse <= 0) {
        rc = LSTM_E_ARG;
        snprintf(e->errbuf, sizeof e->errbuf, "%s: a left-to-right model: train the backward model on lstm-window "
                 "--reverse windows", path);
        *why = e->errbuf;
    } else if (!lstm_lm_same_tokenizer(&e->lm, b->lm.f.tokenizer, b->lm.f.tokenizer_len)) {
        rc = LSTM_E_VOCAB;
        snprintf(e->errbuf, sizeof e->errbuf, "%s: its tokenizer differs from the forward model's: tokenize both "
                 "models' data with the same vocabulary (lstm-tok -m VOCAB)", path);
        *why = e->errbuf;
    }
    if (rc) {
        lstm_engine_close(b);
        free(b);
        return rc;
    }
    if (e->bwd) {
        lstm_engine_close(e->bwd);
        free(e->bwd);
    }
    e->bwd = b;
    return 0;
}

const char *lstm_engine_open_error(const lstm_engine *e, int rc, const char *path, char *buf, size_t cap)
{
    return lstm_lm_open_error(&e->lm, rc, path, buf, cap);
}

void lstm_engine_close(lstm_engine *e)
{
    if (!e->lm.m) return; /* never opened, or already closed */
    if (e->bwd) {
        lstm_engine_close(e->bwd);
        free(e->bwd);
    }
    if (e->cache.N) lstm_cache_free(&e->cache);
    lstm_suggester_free(&e->sug);
    lstm_session_free(&e->sess);
    lstm_sampler_free(&e->smp);
    if (e->beam_W) lstm_beam_free(&e->beam);
    lstm_infer_free(&e->inf1);
    lstm_state_free(&e->st1);
    lstm_ids_free(&e->ids);
    lstm_ids_free(&e->out);
    free(e->banned);
    free(e->gen_ban);
    free(e->gen_ban_end);
    free(e->lg);
    free(e->gen);
    free(e->hist);
    free(e->buf);
    free(e->completion);
    free(e->fill_prior);
    lstm_lm_close(&e->lm);
    memset(e, 0, sizeof *e);
}

void lstm_engine_reset(lstm_engine *e) { lstm_session_reset(&e->sess); }

int lstm_engine_set_cache(lstm_engine *e, const lstm_cache_opts *o)
{
    if (!e->lm.m || lstm_cache_opts_check(o)) return LSTM_E_ARG;
    if (e->cache.N) lstm_cache_free(&e->cache);
    memset(&e->cache_opts, 0, sizeof e->cache_opts);
    if (!lstm_cache_opts_on(o)) return 0;
    /* no request holds more pairs than its prompt and its generated tokens */
    lstm_cache_opts r = *o;
    if (r.N > CTX_CAP + MAX_NEW) r.N = CTX_CAP + MAX_NEW;
    int rc = lstm_cache_init(&e->cache, &r, e->lm.m->cfg.H, e->lm.V);
    if (!rc) e->cache_opts = r;
    return rc;
}

/* The top layer's state in a one-lane state or a session row of L*H floats. */
static const float *top_of(const lstm_engine *e, const float *h)
{
    return h + (size_t)(e->lm.m->cfg.L - 1) * e->lm.m->cfg.H;
}

/* The session's next-token logits into e->lg, mixed with the cache of the prompt's own pairs (the
 * state after each id and the id after it), read in place from the session. */
static int session_logits(lstm_engine *e)
{
    const lstm_session *s = &e->sess;
    memcpy(e->lg, s->logits, (size_t)e->lm.V * sizeof *e->lg);
    if (!e->cache_opts.N || s->n < 2) return 0;
    size_t LH = (size_t)e->lm.m->cfg.L * e->lm.m->cfg.H;
    return lstm_cache_mix_pairs(&e->cache, top_of(e, s->hs), LH, s->ids + 1, (int)s->n - 1, top_of(e, s->st.h), e->lg);
}

int lstm_engine_has_speaker(lstm_engine *e, const char *name)
{
    return e->lm.S == 0 || lstm_tokenizer_speaker_id(e->lm.tok, name) >= 0;
}

/* One word of the ban list: never suggested; a word that is one token also never generated. */
static int ban_word(lstm_engine *e, const char *w, size_t n)
{
    char norm[4 * LSTM_WORD_MAX];
    size_t nn;
    if (lstm_lm_normalize(&e->lm, w, n, norm, sizeof norm, &nn)) return 0; /* too long to be suggested */
    int rc = lstm_suggester_ban_word(&e->sug, norm, nn);
    if (rc) return rc;
    e->ids.n = 0;
    if (!lstm_tokenizer_encode(e->lm.tok, w, n, &e->ids) && e->ids.n == 1 && e->ids.v[0] != LSTM_UNK_ID)
        e->banned[e->ids.v[0]] = 1;
    return 0;
}

int lstm_engine_ban_list(lstm_engine *e, const char *text, size_t len, unsigned long *bad_line, const char **why)
{
    /* every line checked before anything is banned */
    unsigned long lineno = 0;
    for (size_t a = 0; a < len;) {
        const char *nl = memchr(text + a, '\n', len - a);
        size_t b = nl ? (size_t)(nl - text) + 1 : len;
        lineno++;
        /* A binary file would ban garbage silently (a NUL even cuts the word short): refuse it. */
        const char *bad = memchr(text + a, 0, b - a) ? "a NUL byte"
                          : lstm_utf8_valid_prefix(text + a, b - a) != b - a ? "invalid UTF-8" : NULL;
        if (bad) {
            if (bad_line) *bad_line = lineno;
            if (why) *why = bad;
            return LSTM_E_FORMAT;
        }
        a = b;
    }
    int rc = 0;
    for (size_t a = 0, first = 1; a < len && !rc; first = 0) {
        const char *nl = memchr(text + a, '\n', len - a);
        size_t b = nl ? (size_t)(nl - text) + 1 : len, s = a, t = b;
        a = b;
        if (first && t - s >= 3 && !memcmp(text + s, "\xEF\xBB\xBF", 3)) s += 3;
        while (t > s && strchr(" \t\r\n", text[t - 1])) t--;
        while (s < t && strchr(" \t", text[s])) s++;
        if (s < t) rc = ban_word(e, text + s, t - s);
    }
    if (rc) return rc;
    /* The suggester reads the banned ids when it is built: rebuild it, keeping its word list. */
    char **words = e->sug.ban;
    size_t nw = e->sug.nban;
    e->sug.ban = NULL;
    e->sug.nban = 0;
    lstm_suggester_free(&e->sug);
    rc = lstm_suggester_init(&e->sug, &e->lm, LSTM_ENGINE_MAX_K, e->beam_words, e->banned);
    if (rc) {
        for (size_t i = 0; i < nw; i++) free(words[i]);
        free(words);
        memset(&e->sug, 0, sizeof e->sug);
        lstm_engine_close(e); /* no suggester: the engine cannot answer */
        return rc;
    }
    e->sug.ban = words;
    e->sug.nban = nw;
    set_gen_bans(e);
    return 0;
}

/* ------------------------------------------------------------------ prompts */

static int grow_buf(lstm_engine *e, size_t n)
{
    if (n <= e->bufcap) return 0;
    char *b = realloc(e->buf, n * 2);
    if (!b) return LSTM_E_NOMEM;
    e->buf = b;
    e->bufcap = n * 2;
    return 0;
}

/* e->err for rc from lstm_lm_prompt with speaker; what names the turn ("" for the prompt). */
static void prompt_error(lstm_engine *e, int rc, const char *what, const char *speaker)
{
    if (rc != LSTM_E_NOTFOUND || !speaker) {
        e->err = lstm_strerror(rc);
        return;
    }
    /* the name as given (cut at a character boundary: the reply must stay UTF-8) and the model's */
    char names[768];
    size_t n = lstm_utf8_valid_prefix(speaker, strnlen(speaker, 100));
    snprintf(e->errbuf, sizeof e->errbuf, "%sunknown speaker '%.*s%s' (speakers: %s)", what, (int)n, speaker,
             speaker[n] ? "..." : "", lstm_lm_speaker_names(&e->lm, names, sizeof names));
    e->err = e->errbuf;
}

/* The ids of the conversation into ids for lm (e's model or its backward one), exactly as lstm-tok
 * encodes it: each context turn of a chat model "<speaker-tag> <s> tokens </s>", of a plain text model
 * a document "tokens </s>" (one without tokens is not written), then the prompt as lstm_lm_prompt
 * builds it (from ids->v[*prompt_at]). A plain text model's prompt starts with "</s>", which the
 * context's documents then sit behind: "</s> c1 </s> c2 </s> text". reversed: every turn's tokens
 * from the last one (lstm_prompt_reverse), for a --reverse-turns model. 0 or -1 (e->err set). */
static int conv_prompt(lstm_engine *e, lstm_lm *lm, lstm_ids *ids, const lstm_request *r, const char *text,
                       size_t len, int reversed, size_t *prompt_at)
{
    int chat = lm->S > 0, rc = 0;
    ids->n = 0;
    for (size_t i = 0; i < r->ncontext; i++) {
        const lstm_turn *t = &r->context[i];
        size_t before = ids->n;
        rc = lstm_lm_prompt(lm, chat ? t->speaker : NULL, t->text, t->len, ids);
        if (!rc && reversed) lstm_prompt_reverse(lm, ids->v + before, ids->n - before);
        if (!rc && chat) rc = lstm_ids_push(ids, LSTM_EOS_ID);
        if (rc) {
            char what[40];
            snprintf(what, sizeof what, "context[%zu]: ", i);
            prompt_error(e, rc, what, t->speaker);
            return -1;
        }
        if (!chat && ids->n == before + 1) ids->n = before; /* "</s>" alone: an empty document */
    }
    size_t at = ids->n;
    if (prompt_at) *prompt_at = at;
    rc = lstm_lm_prompt(lm, chat ? r->speaker : NULL, text, len, ids);
    if (rc) {
        prompt_error(e, rc, "", r->speaker);
        return -1;
    }
    if (reversed) lstm_prompt_reverse(lm, ids->v + at, ids->n - at);
    return 0;
}

static int make_prompt(lstm_engine *e, const lstm_request *r, const char *text, size_t len)
{
    return conv_prompt(e, &e->lm, &e->ids, r, text, len, 0, &e->prompt_at);
}

/* ------------------------------------------------------------------ suggest */

/* make_prompt for a text after which a new word starts: a character model needs the space that ends
 * the previous word before a new one starts. */
static int word_prompt(lstm_engine *e, const lstm_request *r, const char *text, size_t len)
{
    if (e->lm.kind == LSTM_TOK_CHARS && len > 0 && !strchr(" \t\r\n", text[len - 1])) {
        if (grow_buf(e, len + 2)) {
            e->err = "out of memory";
            return -1;
        }
        memcpy(e->buf, text, len);
        e->buf[len++] = ' ';
        text = e->buf;
    }
    return make_prompt(e, r, text, len);
}

/* Suggestions for text: fills e->sg, returns how many (or -1, e->err set); *prefix_len > 0 when a
 * partly typed word is being completed (its normalised form in e->prefix). */
static int do_suggest(lstm_engine *e, const lstm_request *r, size_t *prefix_len, double *mass)
{
    const char *text = r->text;
    size_t len = r->len, p, plen = 0;
    if (lstm_lm_partial_word(&e->lm, text, len, &p)) {
        e->err = lstm_strerror(LSTM_E_ICU);
        return -1;
    }
    if (p < len) {
        int rc = lstm_lm_normalize(&e->lm, text + p, len - p, e->prefix, sizeof e->prefix, &plen);
        if (rc) {
            e->err = "the word being typed is too long";
            return -1;
        }
    }
    e->prefix[plen] = 0;
    *prefix_len = plen;
    if (word_prompt(e, r, text, p)) return -1;
    /* a word model with an adaptive softmax scores only the clusters a suggestion can come from (the
     * continuous cache mixes into the whole distribution: not with it) */
    int lazy = lstm_suggest_lazy(&e->sug) && !e->cache_opts.N;
    int rc = lazy ? lstm_session_feed_state(&e->sess, e->ids.v, e->ids.n) : lstm_session_feed(&e->sess, e->ids.v, e->ids.n);
    if (rc) {
        e->err = lstm_strerror(rc);
        return -1;
    }
    if (!lazy && (rc = session_logits(e))) {
        e->err = lstm_strerror(rc);
        return -1;
    }
    int n = lstm_suggest(&e->sug, &e->sess.st, lazy ? NULL : e->lg, e->prefix, plen, r->k, e->sg, mass);
    if (n < 0) {
        e->err = lstm_strerror(n);
        return -1;
    }
    return n;
}

/* ------------------------------------------------------------------ fill */

/* The backward model's prompt into e->bwd->ids: a model of documents read backwards (--reverse) reads
 * the turn's text after the gap from its end ("<tag> <s>" or "</s>" first); one of turns read
 * backwards (--reverse-turns) reads the context turns first, each from its end. 0 or -1 (e->err set). */
static int backward_prompt(lstm_engine *e, const lstm_request *r, const char *right, size_t rlen)
{
    lstm_request q = *r;
    if (e->bwd->lm.m->cfg.reverse != LSTM_REVERSE_TURNS) q.ncontext = 0; /* what follows the turn: not known */
    return conv_prompt(e, &e->bwd->lm, &e->bwd->ids, &q, right, rlen, 1, NULL);
}

/* BPE and character models: the words the forward model's beam finds after the text before the gap
 * (its lstm_suggest words, with their probabilities, the word's end included), each scored by the
 * backward model as its pieces read backwards after the reversed right context (in w->ids), and for
 * characters the boundary before the word (a space, punctuation, the turn's start), which ends a word
 * read backwards; then normalised over those words. Returns how many went into e->sg, or a code. */
/* Suggestions by decreasing p, ties by the word's bytes (as lstm_suggest orders them). */
static int by_p_then_word(const void *a, const void *b)
{
    const lstm_suggestion *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return strcmp(x->word, y->word);
}

static int fill_pieces(lstm_engine *e, int k)
{
    lstm_engine *w = e->bwd;
    lstm_suggestion *cand = e->bwd->sg; /* the backward engine's reply buffer: free while it serves e */
    int nc = lstm_suggest(&e->sug, &e->sess.st, e->lg, "", 0, LSTM_ENGINE_MAX_K, cand, NULL);
    if (nc <= 0) return nc;
    size_t nr = w->ids.n;
    int V = w->lm.V;
    int rc = 0;
    for (int c = 0; c < nc && !rc; c++) { /* cand[c].p becomes the word's log score */
        w->out.n = 0;
        if ((rc = lstm_tokenizer_encode(w->lm.tok, cand[c].word, cand[c].len, &w->out))) break;
        double lp = log(cand[c].p);
        w->ids.n = nr;
        for (size_t j = w->out.n; j-- > 0 && !rc;) { /* the pieces from the last one */
            if ((rc = lstm_session_feed(&w->sess, w->ids.v, w->ids.n))) break;
            const float *x = w->sess.logits;
            lp += (double)x[w->out.v[j]] - lstm_logsumexp(x, (size_t)V);
            rc = lstm_ids_push(&w->ids, w->out.v[j]);
        }
        if (!rc && w->lm.kind == LSTM_TOK_CHARS && !(rc = lstm_session_feed(&w->sess, w->ids.v, w->ids.n))) {
            const float *x = w->sess.logits;
            double lse = lstm_logsumexp(x, (size_t)V), pb = 0;
            for (uint32_t i = 0; i < w->sug.nbound; i++) pb += exp((double)x[w->sug.bound[i]] - lse);
            lp += log(pb);
        }
        cand[c].p = lp;
    }
    w->ids.n = nr;
    if (rc) return rc;
    double mx = -INFINITY, z = 0;
    for (int c = 0; c < nc; c++) mx = cand[c].p > mx ? cand[c].p : mx;
    for (int c = 0; c < nc; c++) z += exp(cand[c].p - mx);
    for (int c = 0; c < nc; c++) cand[c].p = exp(cand[c].p - mx) / z;
    qsort(cand, (size_t)nc, sizeof *cand, by_p_then_word);
    int n = nc < k ? nc : k;
    memcpy(e->sg, cand, (size_t)n * sizeof *cand);
    return n;
}

/* Words for the gap of r->text: fills e->sg, returns how many (or -1, e->err set). */
static int do_fill(lstm_engine *e, const lstm_request *r)
{
    if (!e->bwd) {
        e->err = "fill needs a right-to-left model: give --backward FILE";
        return -1;
    }
    const char *t = r->text, *g = NULL;
    size_t len = r->len, a = 0, b = 0;
    for (size_t i = 0; i + 3 <= len; i++) {
        if (memcmp(t + i, LSTM_FILL_GAP, 3)) continue;
        if (g) {
            e->err = "fill: the text has more than one gap (___)";
            return -1;
        }
        g = t + i;
        a = i;
        for (b = i; b < len && t[b] == '_'; b++) {}
        i = b;
    }
    if (!g) {
        e->err = "fill: the text has no gap: mark the missing word with ___";
        return -1;
    }
    if (word_prompt(e, r, t, a)) return -1;
    int rc = lstm_session_feed(&e->sess, e->ids.v, e->ids.n);
    if (!rc) rc = session_logits(e);
    if (rc) {
        e->err = lstm_strerror(rc);
        return -1;
    }
    lstm_engine *w = e->bwd;
    if (backward_prompt(e, r, t + b, len - b)) return -1;
    if ((rc = lstm_session_feed(&w->sess, w->ids.v, w->ids.n))) {
        e->err = lstm_strerror(rc);
        return -1;
    }
    int n = e->sug.sorted ? lstm_suggest_fill(&e->sug, e->lg, w->sess.logits, e->fill_prior, r->k, e->sg) : fill_pieces(e, r->k);
    if (n < 0) {
        e->err = n == LSTM_E_NOMEM ? "out of memory" : lstm_strerror(n);
        return -1;
    }
    return n;
}

/* ------------------------------------------------------------------ complete */

/* lstm_beam_opts.held: the hypothesis ends inside a banned word of several pieces. */
static int word_held(void *ctx, const uint32_t *hist, size_t n, size_t nprompt)
{
    return lstm_suggester_word_banned(ctx, hist, n, nprompt);
}

/* Continuation of the text: its ids in e->gen (EOS dropped), count in *ngen; 0 or -1 (e->err set). */
static int do_complete(lstm_engine *e, const lstm_request *r, int *ngen)
{
    *ngen = 0;
    if (make_prompt(e, r, r->text, r->len)) return -1;
    int rc = lstm_session_feed(&e->sess, e->ids.v, e->ids.n);
    if (rc) {
        e->err = lstm_strerror(rc);
        return -1;
    }
    /* the repetition penalty's history: the prompt turn (not the context) and what is generated */
    size_t np = e->ids.n - e->prompt_at;
    if (np > CTX_CAP) np = CTX_CAP;
    memcpy(e->hist, e->ids.v + e->ids.n - np, np * sizeof *e->hist);
    int n = 0;
    if (r->max_new == 0) return 0;
    if ((rc = session_logits(e))) {
        e->err = lstm_strerror(rc);
        return -1;
    }
    if (r->beam > 0) {
        if (r->beam != e->beam_W || r->max_new != e->beam_T) {
            if (e->beam_W) lstm_beam_free(&e->beam);
            e->beam_W = 0;
            if (lstm_beam_init(&e->beam, e->lm.m, r->beam, r->max_new, CTX_CAP)) {
                e->err = "out of memory";
                return -1;
            }
            e->beam_W = r->beam;
            e->beam_T = r->max_new;
        }
        lstm_beam_opts bo = {r->alpha, r->so.repetition_penalty, e->gen_ban, LSTM_EOS_ID, word_held, &e->sug, e->gen_ban_end};
        n = lstm_beam_run(&e->beam, &bo, &e->sess.st, e->lg, e->hist, np, e->gen, NULL);
        if (n < 0) {
            e->err = n == LSTM_E_EMPTY ? "every token is banned" : lstm_strerror(n);
            return -1;
        }
        if (n > 0 && e->gen[n - 1] == LSTM_EOS_ID) n--;
        *ngen = n;
        return 0;
    }
    lstm_sampler_opts so = r->so;
    if (so.temperature < LSTM_TEMP_MIN) so.temperature = 0; /* greedy */
    lstm_rng rng;
    lstm_rng_seed(&rng, r->seed);
    size_t LH = (size_t)e->st1.L * e->st1.H;
    lstm_state_copy_lane(&e->st1, 0, &e->sess.st, 0);
    if (e->cache_opts.N) { /* the prompt's pairs, then each generated token's */
        lstm_cache_clear(&e->cache);
        size_t from = e->sess.n > (size_t)e->cache.N + 1 ? e->sess.n - 1 - (size_t)e->cache.N : 0;
        for (size_t i = from; i + 1 < e->sess.n; i++)
            lstm_cache_push(&e->cache, top_of(e, e->sess.hs + i * LH), e->sess.ids[i + 1]);
    }
    size_t nh = np;
    while (n < r->max_new) {
        so.banned = lstm_suggester_word_banned(&e->sug, e->hist, nh, np) ? e->gen_ban_end : e->gen_ban;
        int64_t id = lstm_sampler_pick(&e->smp, &so, e->lg, e->hist, nh, &rng, NULL);
        if (id == LSTM_E_EMPTY) {
            e->err = "every token is banned";
            return -1;
        }
        if (id < 0 || id == LSTM_EOS_ID) break;
        e->gen[n++] = (uint32_t)id;
        e->hist[nh++] = (uint32_t)id;
        if (n == r->max_new) break;
        uint32_t t = (uint32_t)id;
        if (e->cache_opts.N) lstm_cache_push(&e->cache, top_of(e, e->st1.h), t);
        if ((rc = lstm_infer_step(&e->inf1, &e->st1, &t, e->lg)) ||
            (e->cache_opts.N && (rc = lstm_cache_mix(&e->cache, top_of(e, e->st1.h), e->lg)))) {
            e->err = lstm_strerror(rc);
            return -1;
        }
    }
    /* stopped by max_new inside a banned word: drop its generated pieces */
    while (n > 0 && lstm_suggester_word_banned(&e->sug, e->hist, np + (size_t)n, np)) n--;
    *ngen = n;
    return 0;
}

/* The generated ids as text that continues the prompt: decode(text ids + generated) minus
 * decode(text ids), so spacing and joined pieces come out as they would in the whole text.
 * Returns a malloc'ed string or NULL. */
static char *continuation(lstm_engine *e, int ngen, size_t *clen)
{
    size_t a = e->prompt_at;
    while (a < e->ids.n && (e->lm.flags[e->ids.v[a]] & (LSTM_PIECE_SPEAKER | LSTM_PIECE_SPECIAL)) && e->ids.v[a] != LSTM_UNK_ID) a++;
    size_t nt = e->ids.n - a;
    e->out.n = 0;
    for (size_t i = a; i < e->ids.n; i++) lstm_ids_push(&e->out, e->ids.v[i]);
    for (int i = 0; i < ngen; i++) lstm_ids_push(&e->out, e->gen[i]);
    if (e->out.n != nt + (size_t)ngen) return NULL;
    char *full = NULL, *head = NULL, *res;
    size_t nf, nhd;
    if (lstm_tokenizer_decode(e->lm.tok, e->out.v, e->out.n, &full, &nf)) return NULL;
    if (lstm_tokenizer_decode(e->lm.tok, e->out.v, nt, &head, &nhd)) {
        free(full);
        return NULL;
    }
    if (nhd <= nf && !memcmp(full, head, nhd)) {
        res = strdup(full + nhd);
        if (res) *clen = nf - nhd;
    } else {
        char *g = NULL;
        size_t ng;
        if (lstm_tokenizer_decode(e->lm.tok, e->gen, (size_t)ngen, &g, &ng)) g = NULL;
        res = g;
        if (res) *clen = ng;
    }
    free(full);
    free(head);
    return res;
}

/* ------------------------------------------------------------------ requests */

static int fail(lstm_reply *out, const char *msg)
{
    out->error = msg;
    return -1;
}

int lstm_engine_run(lstm_engine *e, const lstm_request *r, lstm_reply *out)
{
    memset(out, 0, sizeof *out);
    out->mode = r->mode;
    out->id = r->id;
    out->id_len = r->id_len;
    out->prefix = "";
    out->completion = "";
    if (!e->lm.m) return fail(out, "the engine is not open");
    const char *bad = lstm_request_check(r);
    if (bad) return fail(out, bad);
    if (!r->text && r->len) return fail(out, "no text");
    size_t bytes = 0;
    for (size_t i = 0; i < r->ncontext; i++) {
        if (!r->context[i].text && r->context[i].len) return fail(out, "context: a turn without text");
        bytes += r->context[i].len;
    }
    if (bytes > LSTM_ENGINE_MAX_CONTEXT) return fail(out, "context: more than 65536 bytes of text");
    lstm_request q = *r;
    if (!q.text) q.text = "";
    if (r->mode == LSTM_MODE_SUGGEST) {
        size_t plen;
        int n = do_suggest(e, &q, &plen, &out->mass);
        if (n < 0) return fail(out, e->err);
        out->sg = e->sg;
        out->n = n;
        out->prefix = e->prefix;
        out->plen = plen;
        return 0;
    }
    if (r->mode == LSTM_MODE_FILL) {
        int n = do_fill(e, &q);
        if (n < 0) return fail(out, e->err);
        out->sg = e->sg;
        out->n = n;
        out->mass = 1;
        return 0;
    }
    if (r->mode != LSTM_MODE_COMPLETE) return fail(out, "mode must be \"suggest\", \"complete\" or \"fill\"");
    int ngen;
    if (do_complete(e, &q, &ngen)) return fail(out, e->err);
    free(e->completion);
    size_t clen = 0;
    e->completion = continuation(e, ngen, &clen);
    if (!e->completion) return fail(out, "decoding failed");
    /* The space before the first word is the prompt's own when the prompt ends with one. */
    char last = r->len ? r->text[r->len - 1] : 0;
    if ((last == ' ' || last == '\t' || last == '\n' || last == '\r') && clen && e->completion[0] == ' ')
        memmove(e->completion, e->completion + 1, clen--);
    out->completion = e->completion;
    out->clen = clen;
    out->tokens = ngen;
    return 0;
}
