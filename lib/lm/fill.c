/* fill.c: documents read backwards, and fill-in-the-middle scored on held-out documents (fill.h). */
#include "fill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "errors.h"
#include "fileio.h"
#include "mathx.h"
#include "stream.h"

/* The head of the segment s[0..n): "<s>" or "x <s>" (a speaker tag and BOS), else nothing. */
static size_t seg_head(const uint32_t *s, size_t n)
{
    if (n >= 1 && s[0] == LSTM_BOS_ID) return 1;
    if (n >= 2 && s[1] == LSTM_BOS_ID) return 2;
    return 0;
}

int lstm_meta_reverse(const lstm_meta *m)
{
    size_t n;
    const uint8_t *v = lstm_meta_get(m, "reverse", &n);
    if (!v) return 0;
    if (n == 4 && !memcmp(v, "docs", 4)) return LSTM_REVERSE_DOCS;
    if (n == 5 && !memcmp(v, "turns", 5)) return LSTM_REVERSE_TURNS;
    return -1;
}

const char *lstm_reverse_desc(int mode)
{
    return mode == LSTM_REVERSE_DOCS    ? "read backwards (lstm-window --reverse)"
           : mode == LSTM_REVERSE_TURNS ? "turns read backwards (lstm-window --reverse-turns)"
                                        : "read forwards";
}

void lstm_doc_reverse(const uint32_t *in, size_t n, int mode, uint32_t *out, size_t *pos)
{
    /* LSTM_REVERSE_DOCS: segments from the front of in fill out from its back */
    size_t a = 0, end = n;
    while (a < n) {
        size_t b = a;
        while (b < n && in[b] != LSTM_EOS_ID) b++;
        int eos = b < n;
        size_t stop = b + (size_t)eos, len = stop - a, h = seg_head(in + a, len), body = len - h - (size_t)eos;
        size_t o = mode == LSTM_REVERSE_TURNS ? a : end - len; /* this segment's place in out */
        for (size_t i = 0; i < h; i++) {
            out[o + i] = in[a + i];
            if (pos) pos[a + i] = o + i;
        }
        for (size_t i = 0; i < body; i++) {
            out[o + h + i] = in[a + h + body - 1 - i];
            if (pos) pos[a + h + body - 1 - i] = o + h + i;
        }
        if (eos) {
            out[o + len - 1] = LSTM_EOS_ID;
            if (pos) pos[b] = o + len - 1;
        }
        end = o;
        a = stop;
    }
}

void lstm_prompt_reverse(const lstm_lm *lm, uint32_t *ids, size_t n)
{
    size_t h = lm->S > 0 ? 2 : 1;
    if (n <= h) return;
    for (size_t i = h, j = n - 1; i < j; i++, j--) {
        uint32_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
}

/* ------------------------------------------------------------------ evaluation */

#define FILL_CTX_CAP 4096 /* ids of context a session keeps (longer documents keep their last ones) */

/* Whether id is a word a fill may propose: what lstm_suggest offers a word model's user. */
static int is_candidate(const lstm_lm *lm, uint32_t id)
{
    size_t n;
    lstm_lm_piece_text(lm, id, &n);
    return (lm->wf[id] & LSTM_W_FIRST) && id != LSTM_UNK_ID && n > 0 && n < LSTM_WORD_MAX;
}

int lstm_fill_eval_init(lstm_fill_eval *f, const lstm_lm *fwd, const lstm_lm *bwd, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    if (!fwd->m || !bwd->m || fwd->kind == LSTM_TOK_BPE || fwd->kind == LSTM_TOK_CHARS) return LSTM_E_ARG;
    if (fwd->m->cfg.reverse || bwd->m->cfg.reverse <= 0) return LSTM_E_ARG;
    if (fwd->f.tokenizer_len != bwd->f.tokenizer_len || memcmp(fwd->f.tokenizer, bwd->f.tokenizer, fwd->f.tokenizer_len))
        return LSTM_E_VOCAB;
    f->fwd = fwd;
    f->bwd = bwd;
    lstm_rng_seed(&f->rng, seed);
    int rc = lstm_session_init(&f->sf, fwd, FILL_CTX_CAP);
    if (!rc) rc = lstm_session_init(&f->sb, bwd, FILL_CTX_CAP);
    if (!rc && (!(f->cand = calloc((size_t)fwd->V, 1)) || !(f->lpb = malloc(sizeof *f->lpb * (size_t)fwd->V))))
        rc = LSTM_E_NOMEM;
    if (rc) {
        lstm_fill_eval_free(f);
        return rc;
    }
    for (int id = 0; id < fwd->V; id++) f->cand[id] = (uint8_t)is_candidate(fwd, (uint32_t)id);
    return 0;
}

void lstm_fill_eval_free(lstm_fill_eval *f)
{
    if (f->sf.lm) lstm_session_free(&f->sf);
    if (f->sb.lm) lstm_session_free(&f->sb);
    free(f->cand);
    free(f->lpb);
    free(f->lpf);
    free(f->bpos);
    free(f->rev);
    free(f->ctx);
    free(f->pos);
    free(f->logprior);
    memset(f, 0, sizeof *f);
}

void lstm_fill_log_prior(const uint64_t *counts, int V, float *logp)
{
    double total = 0;
    for (int i = 0; i < V; i++) total += (double)counts[i];
    for (int i = 0; i < V; i++) logp[i] = (float)log(((double)counts[i] + 1) / (total + V));
}

int lstm_fill_eval_set_prior(lstm_fill_eval *f, const uint64_t *counts)
{
    int V = f->fwd->V;
    if (!f->logprior && !(f->logprior = malloc(sizeof *f->logprior * (size_t)V))) return LSTM_E_NOMEM;
    lstm_fill_log_prior(counts, V, f->logprior);
    return 0;
}

int lstm_fill_count_prior(const char *path, const lstm_lm *lm, uint64_t **counts, uint32_t *kind)
{
    *counts = NULL;
    *kind = 0;
    int fd = lstm_in_open(path);
    if (fd < 0) return LSTM_E_IO;
    lstm_reader *r;
    int rc = lstm_reader_open_sniff(&r, fd, 0);
    if (rc) {
        if (fd > 0) close(fd);
        return rc;
    }
    size_t bl;
    const uint8_t *blob = lstm_meta_get(lstm_reader_meta(r), "tokenizer", &bl);
    uint64_t *c = NULL;
    if ((*kind = lstm_reader_kind(r)) != LSTM_KIND_TOKS) rc = LSTM_E_KIND;
    else if (!lstm_lm_same_tokenizer(lm, blob, bl)) rc = LSTM_E_VOCAB;
    else if (!(c = calloc((size_t)lm->V, sizeof *c))) rc = LSTM_E_NOMEM;
    while (!rc) {
        uint8_t tag;
        const uint8_t *p;
        uint32_t len;
        int k = lstm_reader_next(r, &tag, &p, &len);
        if (k <= 0) {
            rc = k;
            break;
        }
        for (uint32_t i = 0; tag == 'D' && i < len / 4; i++) {
            uint32_t id = lstm_get_u32(p + 4 * (size_t)i);
            if (id < (uint32_t)lm->V) c[id]++;
        }
    }
    lstm_reader_free(r);
    if (fd > 0) close(fd);
    if (rc) free(c);
    else *counts = c;
    return rc;
}

static int grow(lstm_fill_eval *f, size_t n, size_t blanks)
{
    size_t V = (size_t)f->fwd->V;
    if (n + 1 > f->cap) {
        size_t cap = (n + 1) * 2;
        uint32_t *r = realloc(f->rev, cap * sizeof *r);
        if (!r) return LSTM_E_NOMEM;
        f->rev = r;
        uint32_t *c = realloc(f->ctx, cap * sizeof *c);
        if (!c) return LSTM_E_NOMEM;
        f->ctx = c;
        size_t *p = realloc(f->pos, cap * sizeof *p);
        if (!p) return LSTM_E_NOMEM;
        f->pos = p;
        f->cap = cap; /* only once all three hold cap */
    }
    if (blanks > f->cap_blanks) {
        size_t cap = blanks * 2;
        float *l = realloc(f->lpf, cap * V * sizeof *l);
        if (!l) return LSTM_E_NOMEM;
        f->lpf = l;
        size_t *b = realloc(f->bpos, cap * sizeof *b);
        if (!b) return LSTM_E_NOMEM;
        f->bpos = b;
        f->cap_blanks = cap;
    }
    return 0;
}

/* The session's next-token log-probabilities after ctx[0..n) into out (V). */
static int logprobs(lstm_session *s, const uint32_t *ctx, size_t n, float *out, int V)
{
    int rc = lstm_session_feed(s, ctx, n);
    if (rc) return rc;
    double lse = lstm_logsumexp(s->logits, (size_t)V);
    for (int i = 0; i < V; i++) out[i] = (float)((double)s->logits[i] - lse);
    return 0;
}

/* The context of a model before position p of the document d: a plain text model's prompts start
 * with "</s>" (lstm_lm_prompt), a chat document with its first speaker tag. Returns its length. */
static size_t context(const lstm_fill_eval *f, const uint32_t *d, size_t p)
{
    size_t h = f->fwd->S > 0 ? 0 : 1;
    if (h) f->ctx[0] = LSTM_EOS_ID;
    memcpy(f->ctx + h, d, p * sizeof *d);
    return h + p;
}

/* The rank of target among the candidates by score a (ties: lower ids first, as lstm_suggest ranks),
 * and the log of its probability renormalised over them. */
static long rank_of(const lstm_fill_eval *f, const float *a, const float *b, const float *c, uint32_t target, double *lp)
{
    int V = f->fwd->V;
#define SCORE(i) ((double)a[i] + (b ? (double)b[i] : 0) - (c ? (double)c[i] : 0))
    double st = SCORE(target), mx = -INFINITY;
    long r = 0;
    for (int i = 0; i < V; i++) {
        if (!f->cand[i]) continue;
        double s = SCORE(i);
        if (s > st || (s == st && (uint32_t)i < target)) r++;
        if (s > mx) mx = s;
    }
    double z = 0;
    for (int i = 0; i < V; i++)
        if (f->cand[i]) z += exp(SCORE(i) - mx);
#undef SCORE
    *lp = st - (mx + log(z));
    return r;
}

int lstm_fill_eval_doc(lstm_fill_eval *f, const uint32_t *ids, size_t n, lstm_fill_stats *s)
{
    int V = f->fwd->V, rc;
    size_t segs = 0;
    for (size_t i = 0; i < n; i++) segs += ids[i] == LSTM_EOS_ID;
    if ((rc = grow(f, n, segs + 1))) return rc;
    /* one blank per segment */
    size_t nb = 0;
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && ids[b] != LSTM_EOS_ID) b++;
        size_t stop = b + (b < n), h = seg_head(ids + a, stop - a), m = 0;
        for (size_t i = a + h; i < b; i++) m += f->cand[ids[i]];
        if (m > 0) {
            uint32_t j = lstm_rng_below(&f->rng, (uint32_t)m);
            for (size_t i = a + h; i < b; i++)
                if (f->cand[ids[i]] && j-- == 0) {
                    f->bpos[nb++] = i;
                    break;
                }
        }
        a = stop;
    }
    if (nb == 0) return 0;
    /* forward: the document up to each blank, in order (the session reuses the read prefix) */
    for (size_t k = 0; k < nb; k++) {
        size_t c = context(f, ids, f->bpos[k]);
        if ((rc = logprobs(&f->sf, f->ctx, c, f->lpf + k * (size_t)V, V))) return rc;
    }
    /* backward: the document read backwards up to each blank (with --reverse the last blank first;
     * with --reverse-turns the blanks come in their order, each after the turns before it) */
    lstm_doc_reverse(ids, n, f->bwd->m->cfg.reverse, f->rev, f->pos);
    float *lpb = f->lpb;
    int turns = f->bwd->m->cfg.reverse == LSTM_REVERSE_TURNS;
    for (size_t i = 0; i < nb; i++) {
        size_t k = turns ? i : nb - 1 - i;
        size_t p = f->pos[f->bpos[k]];
        uint32_t t = ids[f->bpos[k]];
        size_t c = context(f, f->rev, p);
        if ((rc = logprobs(&f->sb, f->ctx, c, lpb, V))) break;
        const float *lpf = f->lpf + k * (size_t)V;
        double lp;
        long r = rank_of(f, lpf, lpb, NULL, t, &lp);
        s->fill1 += r < 1, s->fill5 += r < 5, s->fill_nll -= lp;
        r = rank_of(f, lpf, NULL, NULL, t, &lp);
        s->fwd1 += r < 1, s->fwd5 += r < 5, s->fwd_nll -= lp;
        r = rank_of(f, lpb, NULL, NULL, t, &lp);
        s->bwd1 += r < 1, s->bwd5 += r < 5;
        if (f->logprior) {
            r = rank_of(f, lpf, lpb, f->logprior, t, &lp);
            s->prior1 += r < 1, s->prior5 += r < 5, s->prior_nll -= lp;
        }
        s->blanks++;
    }
    return rc;
}
