/* eval.c: the evaluation pass (see eval.h): batches of windows through the model's forward, scoring
 * every target but PAD and BOS, and the keystroke simulator: word models rank whole words by any
 * next-token distribution (lstm_keys: the LSTM's logits here, lstm-ngram's log-probabilities); BPE
 * and character models type each word against the suggestion beam, one token at a time. With a
 * continuous cache, each lane's logits are turned into the mixed log-probabilities (cache.h) before
 * anything reads them, in the lane's order, and the pair of each scored target joins the cache after. */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "mathx.h"

struct lstm_evaluator {
    lstm_model *m;
    const lstm_lm *lm;      /* NULL: NLL only */
    int B, T;
    lstm_eval_opts o;
    lstm_acts *acts, acts_own;
    lstm_state *st, st_own;
    uint32_t *in, *tg;      /* (B,T) */
    uint8_t *rs;            /* (B) */
    int owns;
    /* keystrokes */
    int word_model;
    lstm_keys ks;
    int has_ks, has_inf, has_wst;
    lstm_infer inf;         /* bpe / chars: one token at a time */
    lstm_state wst;         /* bpe / chars: the one-lane state at the start of the current word */
    float *lg1, *wlg;       /* (V) logits now, (V) logits at the word start */
    lstm_suggestion *cands; /* (k) */
    char word[LSTM_WORD_MAX];
    size_t wlen;
    int in_word;
    /* the continuous cache */
    lstm_cache *caches;     /* (B) or NULL */
    int mixing;             /* the figures are of the mixed distribution */
};

double lstm_eval_ppl(double nll) { return nll < 700 ? exp(nll) : INFINITY; }

void lstm_evaluator_free(lstm_evaluator *e)
{
    if (!e) return;
    if (e->owns) {
        lstm_acts_free(&e->acts_own);
        lstm_state_free(&e->st_own);
        free(e->in);
        free(e->tg);
        free(e->rs);
    }
    if (e->has_ks) lstm_keys_free(&e->ks);
    if (e->has_inf) lstm_infer_free(&e->inf);
    if (e->has_wst) lstm_state_free(&e->wst);
    free(e->lg1);
    free(e->wlg);
    free(e->cands);
    if (e->caches)
        for (int b = 0; b < e->B; b++) lstm_cache_free(&e->caches[b]);
    free(e->caches);
    free(e);
}

int lstm_evaluator_create_over(lstm_evaluator **out, lstm_model *m, lstm_acts *acts, lstm_state *st, uint32_t *in,
                               uint32_t *tg, uint8_t *reset, int B, int T, const lstm_eval_opts *o)
{
    *out = NULL;
    if (!m || !acts || !st || !in || !tg || !reset || B < 1 || T < 1 || B > acts->Bmax || T > acts->Tmax || st->B < B)
        return LSTM_E_ARG;
    lstm_evaluator *e = calloc(1, sizeof *e);
    if (!e) return LSTM_E_NOMEM;
    e->m = m;
    e->B = B;
    e->T = T;
    if (o) e->o = *o;
    e->o.keystrokes = 0; /* needs a language model */
    e->o.cache.N = 0;
    e->o.grid = NULL;
    e->acts = acts;
    e->st = st;
    e->in = in;
    e->tg = tg;
    e->rs = reset;
    *out = e;
    return 0;
}

int lstm_evaluator_create(lstm_evaluator **out, const lstm_lm *lm, int B, int T, const lstm_eval_opts *o)
{
    *out = NULL;
    if (!lm || !o || B < 1 || T < 1 || o->k < 1 || (o->keystrokes && B != 1)) return LSTM_E_ARG;
    if (lstm_cache_opts_check(&o->cache) || (o->grid && (o->cache.N < 1 || o->keystrokes || o->grid->nt < 1 ||
                                                         o->grid->nl < 1 || !o->grid->nll)))
        return LSTM_E_ARG;
    lstm_evaluator *e = calloc(1, sizeof *e);
    if (!e) return LSTM_E_NOMEM;
    e->m = (lstm_model *)lm->m; /* a view: forward only reads it */
    e->lm = lm;
    e->B = B;
    e->T = T;
    e->o = *o;
    e->owns = 1;
    e->acts = &e->acts_own;
    e->st = &e->st_own;
    int rc;
    if ((rc = lstm_acts_alloc(&e->acts_own, e->m, B, T)) || (rc = lstm_state_alloc(&e->st_own, e->m, B))) goto fail;
    e->in = malloc(sizeof *e->in * (size_t)B * T);
    e->tg = malloc(sizeof *e->tg * (size_t)B * T);
    e->rs = malloc((size_t)B);
    rc = LSTM_E_NOMEM;
    if (!e->in || !e->tg || !e->rs) goto fail;
    e->word_model = lm->kind == LSTM_TOK_WORDS || lm->kind == LSTM_TOK_SPACE;
    if (o->keystrokes) {
        if ((rc = lstm_keys_init(&e->ks, lm, o->k, o->beam_words, NULL, o->ctx, o->on_word))) goto fail;
        e->has_ks = 1;
        if (!e->word_model) {
            if ((rc = lstm_infer_alloc(&e->inf, e->m, 1))) goto fail;
            e->has_inf = 1;
            if ((rc = lstm_state_alloc(&e->wst, e->m, 1))) goto fail;
            e->has_wst = 1;
            e->lg1 = malloc(sizeof *e->lg1 * (size_t)lm->V);
            e->wlg = malloc(sizeof *e->wlg * (size_t)lm->V);
            e->cands = malloc(sizeof *e->cands * (size_t)o->k);
            rc = LSTM_E_NOMEM;
            if (!e->lg1 || !e->wlg || !e->cands) goto fail;
        }
    }
    e->mixing = !o->grid && lstm_cache_opts_on(&o->cache);
    if (e->mixing || o->grid) {
        rc = LSTM_E_NOMEM;
        if (!(e->caches = calloc((size_t)B, sizeof *e->caches))) goto fail;
        for (int b = 0; b < B; b++)
            if ((rc = lstm_cache_init(&e->caches[b], &o->cache, e->m->cfg.H, lm->V))) goto fail;
    }
    *out = e;
    return 0;
fail:
    lstm_evaluator_free(e); /* (every part is zeroed or whole) */
    return rc;
}

/* ------------------------------------------------------------------ scoring */

/* Counts one scored target: its rank among the logits, and whether it starts a word. */
static void score_target(lstm_eval_result *r, const lstm_lm *lm, int k, const float *lg, uint32_t prev, uint32_t tg)
{
    float x = lg[tg];
    int above = 0, V = lm->V;
    for (int i = 0; i < V && above < k; i++) above += lg[i] > x || (lg[i] == x && (uint32_t)i < tg);
    r->top1 += above < 1;
    r->topk += above < k;
    r->words += tg == LSTM_EOS_ID || lstm_lm_starts_word(lm, prev, tg);
}

/* ------------------------------------------------------------------ keystrokes */

static size_t cp_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Byte length of the first j code points of s. */
static size_t cp_bytes(const char *s, size_t n, size_t j)
{
    size_t i = 0;
    while (i < n && j > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        j--;
    }
    return i;
}

int lstm_keys_init(lstm_keys *ks, const lstm_lm *lm, int k, int beam_words, lstm_eval_result *r, void *ctx,
                   int (*on_word)(void *, const char *, size_t, size_t, long, long))
{
    memset(ks, 0, sizeof *ks);
    if (k < 1) return LSTM_E_ARG;
    int rc = lstm_suggester_init(&ks->g, lm, k, beam_words, NULL);
    if (rc) return rc;
    if (!(ks->lg = malloc(sizeof *ks->lg * (size_t)lm->V))) {
        lstm_suggester_free(&ks->g);
        return LSTM_E_NOMEM;
    }
    ks->lm = lm;
    ks->k = k;
    ks->r = r;
    ks->ctx = ctx;
    ks->on_word = on_word;
    return 0;
}

void lstm_keys_free(lstm_keys *ks)
{
    if (ks->lm) lstm_suggester_free(&ks->g);
    free(ks->lg);
    memset(ks, 0, sizeof *ks);
}

/* Books a typed word of len characters, accepted after typing j of them (j < 0: typed in full). A
 * suggestion list is shown before each typed character up to the accepting one. */
static int book_word(lstm_keys *ks, const char *w, size_t n, size_t len, long j)
{
    lstm_eval_result *r = ks->r;
    r->typed_words++;
    r->keys_without += (double)len + 1;
    r->keys_with += j >= 0 ? (double)j + 1 : (double)len + 1;
    r->accepted += j >= 0;
    r->shown += j >= 0 ? j + 1 : (long)len;
    if (!ks->on_word) return 0;
    return ks->on_word(ks->ctx, w, n, len, j >= 0 ? j + 1 : (long)len + 1, j);
}

/* Typed as is, never suggested: punctuation, stray pieces, and (word = 1) an unknown word. */
static void type_plain(lstm_keys *ks, size_t chars, int word)
{
    ks->r->keys_without += (double)chars + word;
    ks->r->keys_with += (double)chars + word;
    ks->r->typed_words += word;
}

int lstm_keys_ranks(const lstm_keys *ks, uint32_t prev, uint32_t y)
{
    unsigned role = lstm_lm_piece_word_role(ks->lm, prev, y);
    return y != LSTM_UNK_ID && !(role & LSTM_LM_ROLE_PUNCT) && (role & LSTM_LM_ROLE_START);
}

int lstm_keys_token(lstm_keys *ks, const float *lg, uint32_t prev, uint32_t y)
{
    const lstm_lm *lm = ks->lm;
    unsigned role = lstm_lm_piece_word_role(lm, prev, y);
    size_t pn;
    const char *pt = lstm_lm_piece_text(lm, y, &pn);
    if (y == LSTM_UNK_ID) {
        /* the stream does not keep an unknown word's text: 5 characters typed in full */
        type_plain(ks, 5, 1);
        return ks->on_word ? ks->on_word(ks->ctx, "<unk>", 5, 5, 6, -1) : 0;
    }
    if (role & LSTM_LM_ROLE_PUNCT) {
        type_plain(ks, cp_count(pt, pn), 0);
        return 0;
    }
    if (!(role & LSTM_LM_ROLE_START)) return 0;
    size_t len = cp_count(pt, pn), j;
    for (j = 0; j < len; j++)
        if (lstm_suggest_rank(&ks->g, lg, pt, cp_bytes(pt, pn, j), y, ks->k) < ks->k) break;
    return book_word(ks, pt, pn, len, j < len ? (long)j : -1);
}

int lstm_keys_ngram_target(void *ctx, lstm_ngram_scorer *s, uint32_t prev, uint32_t y)
{
    lstm_keys *ks = ctx;
    int rc;
    if (lstm_keys_ranks(ks, prev, y) && (rc = lstm_ngram_scorer_dist(s, ks->lg))) return rc;
    return lstm_keys_token(ks, ks->lg, prev, y);
}

/* BPE / chars: the word w (normalised text, n bytes) typed with, before each character, exactly the k
 * suggestions lstm-sample --suggest k shows for the text so far: lstm_suggest from the state and
 * logits at the word start, with the typed characters as the (normalised) prefix. A word outside the
 * beam at the word start can still be suggested once its first characters are typed. */
static int type_word_beam(lstm_evaluator *e, const char *w, size_t n)
{
    int K = e->o.k;
    size_t len = cp_count(w, n);
    char prefix[4 * LSTM_WORD_MAX];
    for (size_t j = 0; j < len; j++) {
        size_t plen = 0;
        if (j > 0) {
            int rc = lstm_lm_normalize(e->lm, w, cp_bytes(w, n, j), prefix, sizeof prefix, &plen);
            if (rc) return rc;
        }
        prefix[plen] = 0;
        int nc = lstm_suggest(&e->ks.g, &e->wst, e->wlg, prefix, plen, K, e->cands, NULL);
        if (nc < 0) return nc;
        for (int i = 0; i < nc; i++)
            if (e->cands[i].len == n && !memcmp(e->cands[i].word, w, n)) return book_word(&e->ks, w, n, len, (long)j);
    }
    return book_word(&e->ks, w, n, len, -1);
}

/* The word in progress (bpe / chars), typed now that it has ended. */
static int end_word(lstm_evaluator *e)
{
    int rc = e->in_word && e->wlen ? type_word_beam(e, e->word, e->wlen) : 0;
    e->in_word = 0;
    return rc;
}

/* BPE / chars, one lane: each token through the one-step path, since the word beam needs the state
 * at every word start. */
static int run_pieces(lstm_evaluator *e, lstm_eval_result *r)
{
    const lstm_lm *lm = e->lm;
    int V = lm->V, rc;
    for (int t = 0; t < e->T; t++) {
        uint32_t x = e->in[t], y = e->tg[t];
        if ((rc = lstm_infer_step(&e->inf, e->st, &x, e->lg1))) return rc;
        if (y == LSTM_PAD_ID) continue;
        const float *h = e->st->h + (size_t)(e->st->L - 1) * e->st->H; /* the top layer, one lane */
        if (e->mixing) {
            if ((rc = lstm_cache_mix(&e->caches[0], h, e->lg1))) return rc;
            lstm_cache_push(&e->caches[0], h, y);
        }
        r->nll += lstm_logsumexp(e->lg1, (size_t)V) - (double)e->lg1[y];
        r->tokens++;
        score_target(r, lm, e->o.k, e->lg1, x, y);
        unsigned role = lstm_lm_piece_word_role(lm, x, y);
        size_t pn;
        const char *pt = lstm_lm_piece_text(lm, y, &pn);
        if (e->in_word && (role & LSTM_LM_ROLE_CONT) && e->wlen + pn < LSTM_WORD_MAX) {
            memcpy(e->word + e->wlen, pt, pn);
            e->wlen += pn;
            continue;
        }
        if ((rc = end_word(e))) return rc;
        if ((role & LSTM_LM_ROLE_START) && pn < LSTM_WORD_MAX) {
            /* the suggestions for this word all start from here, whatever is typed */
            lstm_state_copy_lane(&e->wst, 0, e->st, 0);
            memcpy(e->wlg, e->lg1, sizeof *e->wlg * (size_t)V);
            memcpy(e->word, pt, pn);
            e->wlen = pn;
            e->in_word = 1;
        } else if (role & LSTM_LM_ROLE_TEXT) {
            type_plain(&e->ks, cp_count(pt, pn), 0); /* punctuation and stray pieces are typed */
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ the cache */

/* The top layer's state at (b, t) of the last forward: what the output layer read (no dropout here). */
static const float *top_state(const lstm_evaluator *e, int b, int t)
{
    return e->acts->out_in + ((size_t)t * e->B + b) * (size_t)e->m->cfg.H;
}

/* Target y at (b, t): mixing, the logits become the mixed log-probabilities and y's NLL is counted;
 * searching, every grid cell adds y's NLL; either way the pair then joins lane b's cache. */
static int cache_target(lstm_evaluator *e, lstm_eval_result *r, int b, int t, float *lg, uint32_t y)
{
    lstm_cache *c = &e->caches[b];
    const float *h = top_state(e, b, t);
    int rc;
    if (e->mixing) {
        if ((rc = lstm_cache_mix(c, h, lg))) return rc;
        r->nll += lstm_logsumexp(lg, (size_t)e->lm->V) - (double)lg[y];
    } else {
        lstm_cache_grid *g = e->o.grid;
        double lpm = (double)lg[y] - lstm_logsumexp(lg, (size_t)e->lm->V);
        lstm_cache_dots(c, h);
        for (int i = 0; i < g->nt; i++) {
            double pc = lstm_cache_p_word(c, g->theta[i], y);
            for (int j = 0; j < g->nl; j++) {
                double lam = c->ndot ? g->lambda[j] : 0; /* an empty cache leaves the model's */
                double lp = lam == 0 ? lpm : pc == 0 ? log1p(-lam) + lpm : log((1 - lam) * exp(lpm) + lam * pc);
                g->nll[(size_t)i * g->nl + j] -= lp;
            }
        }
    }
    lstm_cache_push(c, h, y);
    return 0;
}

/* ------------------------------------------------------------------ the pass */

int lstm_evaluator_run(lstm_evaluator *e, lstm_dataset *d, uint64_t begin, uint64_t end, int stateful,
                       lstm_eval_result *r)
{
    int B = e->B, T = e->T, rc;
    lstm_batcher bt;
    if (e->o.lane_step > 0)
        rc = lstm_batcher_init_lanes(&bt, d, begin, end, e->o.lanes_of, e->o.lane0, e->o.lane_step, stateful, 0);
    else
        rc = lstm_batcher_init(&bt, d, begin, end, B, stateful, 0);
    if (rc) return rc;
    if (bt.B != B) {
        lstm_batcher_free(&bt);
        return LSTM_E_ARG;
    }
    lstm_state_zero(e->st);
    if (e->caches)
        for (int b = 0; b < B; b++) lstm_cache_clear(&e->caches[b]);
    e->in_word = 0;
    e->wlen = 0;
    e->ks.r = r;
    for (uint64_t step = 0; step < bt.steps; step++) {
        if (e->o.stop && *e->o.stop) break;
        if (e->o.on_batch) e->o.on_batch(e->o.ctx, step, bt.steps);
        long cnt = lstm_batcher_get(&bt, step, e->in, e->tg, e->rs);
        if (cnt < 0) { rc = (int)cnt; break; }
        for (int b = 0; b < B; b++)
            if (e->rs[b]) {
                lstm_state_reset_row(e->st, b);
                if (e->caches) lstm_cache_clear(&e->caches[b]);
            }
        if (cnt == 0) continue; /* no window: padding lanes only (a batch of BOS targets still runs) */
        for (size_t i = 0; i < (size_t)B * T; i++)
            if (e->tg[i] == LSTM_BOS_ID) e->tg[i] = LSTM_PAD_ID; /* never scored (eval.h) */
        if (e->o.keystrokes && !e->word_model) {
            if ((rc = run_pieces(e, r))) break;
            continue;
        }
        double loss;
        long c;
        if ((rc = lstm_model_forward(e->m, e->acts, e->st, e->in, e->tg, B, T, 0, &loss, &c))) break;
        if (!e->mixing) r->nll += loss * (double)c;
        r->tokens += c;
        if (!e->lm) continue;
        for (int b = 0; b < B && !rc; b++)
            for (int t = 0; t < T; t++) {
                uint32_t y = e->tg[(size_t)b * T + t], x = e->in[(size_t)b * T + t];
                if (y == LSTM_PAD_ID) continue;
                float *lg = lstm_acts_logits(e->acts, e->m, b, t);
                if (e->caches && (rc = cache_target(e, r, b, t, lg, y))) break;
                score_target(r, e->lm, e->o.k, lg, x, y);
                if (e->o.keystrokes && (rc = lstm_keys_token(&e->ks, lg, x, y))) break;
            }
        if (rc) break;
    }
    if (!rc && e->o.keystrokes && !e->word_model) rc = end_word(e);
    lstm_batcher_free(&bt);
    return rc;
}
