/* decode.c: softmax, top-k / top-p selection, repetition penalty, sampling and beam search. */
#include "decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "mathx.h"

double lstm_softmax(float *p, const float *x, int n, float temperature)
{
    if (!(temperature >= LSTM_TEMP_MIN)) temperature = LSTM_TEMP_MIN;
    float inv = 1.0f / temperature, mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    if (mx == -INFINITY) { /* nothing allowed: all zero, log-normaliser -inf */
        for (int i = 0; i < n; i++) p[i] = 0.0f;
        return -INFINITY;
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
        float e = expf((x[i] - mx) * inv);
        p[i] = e;
        sum += e;
    }
    float r = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) p[i] *= r;
    return (double)mx * inv + log(sum);
}

/* a ranks before b: larger value, then lower index. */
static int better(const float *x, int a, int b) { return x[a] > x[b] || (x[a] == x[b] && a < b); }

/* Min-heap (root = the worst kept) sift-down. */
static void sift_down(const float *x, int *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(x, h[w], h[l])) w = l;
        if (r < n && better(x, h[w], h[r])) w = r;
        if (w == i) return;
        int t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

int lstm_topk(const float *x, int n, int k, int *idx)
{
    if (k > n) k = n;
    if (k <= 0) return 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!(x[i] > -INFINITY)) continue; /* -inf and NaN are never candidates */
        if (m < k) {
            /* sift up */
            int j = m++;
            idx[j] = i;
            while (j > 0) {
                int p = (j - 1) / 2;
                if (!better(x, idx[p], idx[j])) break;
                int t = idx[p];
                idx[p] = idx[j];
                idx[j] = t;
                j = p;
            }
        } else if (better(x, i, idx[0])) {
            idx[0] = i;
            sift_down(x, idx, m, 0);
        }
    }
    /* Heap sort: repeatedly move the worst to the end, giving best-first order. */
    for (int end = m - 1; end > 0; end--) {
        int t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down(x, idx, end, 0);
    }
    return m;
}

static void penalise(float *x, uint8_t *seen, const uint32_t *hist, size_t n, int V, float penalty)
{
    if (penalty == 1.0f || n == 0) return;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = hist[i];
        if (id >= (uint32_t)V || seen[id]) continue;
        seen[id] = 1;
        x[id] = x[id] > 0 ? x[id] / penalty : x[id] * penalty;
    }
    for (size_t i = 0; i < n; i++)
        if (hist[i] < (uint32_t)V) seen[hist[i]] = 0;
}

void lstm_repetition_penalty(float *logits, int V, const uint32_t *hist, size_t n, float penalty)
{
    if (penalty == 1.0f) return;
    /* Without a scratch mask: penalise an id at its first occurrence only. */
    for (size_t i = 0; i < n; i++) {
        uint32_t id = hist[i];
        if (id >= (uint32_t)V) continue;
        size_t j = 0;
        while (j < i && hist[j] != id) j++;
        if (j < i) continue;
        logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
    }
}

void lstm_sampler_opts_default(lstm_sampler_opts *o)
{
    memset(o, 0, sizeof *o);
    o->temperature = 1.0f;
    o->top_p = 1.0f;
    o->repetition_penalty = 1.0f;
}

int lstm_sampler_init(lstm_sampler *s, int V)
{
    memset(s, 0, sizeof *s);
    if (V < 1) return LSTM_E_ARG;
    s->V = V;
    s->work = malloc(sizeof *s->work * (size_t)V);
    s->prob = malloc(sizeof *s->prob * (size_t)V);
    s->idx = malloc(sizeof *s->idx * (size_t)V);
    s->seen = calloc((size_t)V, 1);
    if (!s->work || !s->prob || !s->idx || !s->seen) {
        lstm_sampler_free(s);
        return LSTM_E_NOMEM;
    }
    return 0;
}

void lstm_sampler_free(lstm_sampler *s)
{
    free(s->work);
    free(s->prob);
    free(s->idx);
    free(s->seen);
    memset(s, 0, sizeof *s);
}

/* Penalty and bans applied to a copy of logits in s->work. */
static void adjust(lstm_sampler *s, const lstm_sampler_opts *o, const float *logits, const uint32_t *hist, size_t nhist)
{
    int V = s->V;
    float *x = s->work;
    memcpy(x, logits, sizeof *x * (size_t)V);
    penalise(x, s->seen, hist, nhist, V, o->repetition_penalty);
    if (o->banned)
        for (int i = 0; i < V; i++)
            if (o->banned[i]) x[i] = -INFINITY;
}

/* The kept candidates of the adjusted logits s->work into ids, probabilities into p (p != s->work).
 * sorted: ids must come by decreasing probability (top-p and the public API need it). */
static int kept(lstm_sampler *s, const lstm_sampler_opts *o, int *ids, float *p, int sorted)
{
    int V = s->V, n;
    const float *x = s->work;
    if (!(o->temperature >= LSTM_TEMP_MIN)) { /* greedy */
        if (lstm_topk(x, V, 1, ids) != 1) return LSTM_E_EMPTY;
        p[0] = 1.0f;
        return 1;
    }
    int use_p = o->top_p > 0 && o->top_p < 1;
    if (o->top_k > 0 && o->top_k < V) n = lstm_topk(x, V, o->top_k, ids);
    else if (sorted || use_p) n = lstm_topk(x, V, V, ids);
    else {
        n = 0;
        for (int i = 0; i < V; i++)
            if (x[i] > -INFINITY) ids[n++] = i;
    }
    if (n == 0) return LSTM_E_EMPTY;
    float mx = -INFINITY, inv = 1.0f / o->temperature;
    for (int i = 0; i < n; i++)
        if (x[ids[i]] > mx) mx = x[ids[i]];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        p[i] = expf((x[ids[i]] - mx) * inv);
        sum += p[i];
    }
    if (use_p) { /* the smallest prefix (by decreasing probability) whose mass reaches top_p */
        double need = (double)o->top_p * sum, acc = 0;
        int m = 0;
        while (m < n) {
            acc += p[m++];
            if (acc >= need) break;
        }
        n = m;
        sum = acc;
    }
    float r = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) p[i] *= r;
    return n;
}

int lstm_sampler_dist(lstm_sampler *s, const lstm_sampler_opts *o, const float *logits, const uint32_t *hist,
                      size_t nhist, int *ids, float *p)
{
    adjust(s, o, logits, hist, nhist);
    return kept(s, o, ids, p, 1);
}

int64_t lstm_sampler_pick(lstm_sampler *s, const lstm_sampler_opts *o, const float *logits, const uint32_t *hist,
                          size_t nhist, lstm_rng *rng, float *prob)
{
    adjust(s, o, logits, hist, nhist);
    int n = kept(s, o, s->idx, s->prob, 0);
    if (n < 0) return n;
    int pick = n - 1; /* rounding leaves the last candidate whatever mass is missing */
    if (n > 1) {
        double u = lstm_rng_uniform(rng), acc = 0;
        for (int i = 0; i < n; i++) {
            acc += s->prob[i];
            if (u < acc) {
                pick = i;
                break;
            }
        }
    }
    if (prob) *prob = s->prob[pick];
    return s->idx[pick];
}

/* ------------------------------------------------------------------ beam search */

int lstm_beam_init(lstm_beam *b, const lstm_model *m, int W, int max_new, size_t hist_cap)
{
    memset(b, 0, sizeof *b);
    if (W < 1 || max_new < 1) return LSTM_E_ARG;
    int V = m->cfg.V, rc;
    b->m = m;
    b->W = W;
    b->max_new = max_new;
    b->V = V;
    if ((rc = lstm_infer_alloc(&b->inf, m, W)) || (rc = lstm_state_alloc(&b->st, m, W)) ||
        (rc = lstm_state_alloc(&b->tmp, m, W))) {
        lstm_beam_free(b);
        return rc;
    }
    b->hist_cap = hist_cap + (size_t)max_new;
    b->logits = malloc(sizeof *b->logits * (size_t)W * V);
    b->lp = malloc(sizeof *b->lp * (size_t)V);
    b->seq = malloc(sizeof *b->seq * (size_t)W * max_new);
    b->seq2 = malloc(sizeof *b->seq2 * (size_t)W * max_new);
    b->score = malloc(sizeof *b->score * (size_t)W);
    b->best = malloc(sizeof *b->best * (size_t)max_new);
    b->cand_h = malloc(sizeof *b->cand_h * (size_t)(2 * W));
    b->cand_t = malloc(sizeof *b->cand_t * (size_t)(2 * W));
    b->cand_s = malloc(sizeof *b->cand_s * (size_t)(2 * W));
    b->top = malloc(sizeof *b->top * (size_t)(2 * W));
    b->parent = malloc(sizeof *b->parent * (size_t)W);
    b->feed = malloc(sizeof *b->feed * (size_t)W);
    b->nscore = malloc(sizeof *b->nscore * (size_t)W);
    b->hist = malloc(sizeof *b->hist * (b->hist_cap + 1));
    b->seen = calloc((size_t)V, 1);
    if (!b->logits || !b->lp || !b->seq || !b->seq2 || !b->score || !b->best || !b->cand_h || !b->cand_t ||
        !b->cand_s || !b->top || !b->parent || !b->feed || !b->nscore || !b->hist || !b->seen) {
        lstm_beam_free(b);
        return LSTM_E_NOMEM;
    }
    return 0;
}

void lstm_beam_free(lstm_beam *b)
{
    lstm_infer_free(&b->inf);
    lstm_state_free(&b->st);
    lstm_state_free(&b->tmp);
    free(b->logits);
    free(b->lp);
    free(b->seq);
    free(b->seq2);
    free(b->score);
    free(b->best);
    free(b->cand_h);
    free(b->cand_t);
    free(b->cand_s);
    free(b->top);
    free(b->parent);
    free(b->feed);
    free(b->nscore);
    free(b->hist);
    free(b->seen);
    memset(b, 0, sizeof *b);
}

/* Copies lane src of src_st into lane dst of dst_st (every layer, and the attention's memory). */
static void copy_lane(lstm_state *dst_st, int dst, const lstm_state *src_st, int src)
{
    lstm_state_copy_lane(dst_st, dst, src_st, src);
}

static double norm_score(double s, int len, float alpha) { return alpha == 0 ? s : s / pow((double)len, alpha); }

/* Inserts candidate (s, h, t) into the list of at most cap kept best first (ties: lower h, then t). */
static void cand_insert(lstm_beam *b, int *n, int cap, double s, int h, int t)
{
    int i = *n;
    while (i > 0) {
        double ps = b->cand_s[i - 1];
        int ph = b->cand_h[i - 1], pt = b->cand_t[i - 1];
        if (ps > s || (ps == s && (ph < h || (ph == h && pt < t)))) break;
        i--;
    }
    if (i >= cap) return;
    int last = *n < cap ? *n : cap - 1;
    for (int j = last; j > i; j--) {
        b->cand_s[j] = b->cand_s[j - 1];
        b->cand_h[j] = b->cand_h[j - 1];
        b->cand_t[j] = b->cand_t[j - 1];
    }
    b->cand_s[i] = s;
    b->cand_h[i] = h;
    b->cand_t[i] = t;
    if (*n < cap) (*n)++;
}

static void consider(lstm_beam *b, const uint32_t *seq, int len, double s, float alpha, double *best_logp)
{
    double ns = norm_score(s, len, alpha);
    if (ns > b->best_norm) {
        b->best_norm = ns;
        *best_logp = s;
        memcpy(b->best, seq, sizeof *seq * (size_t)len);
        b->best_len = len;
    }
}

int lstm_beam_run(lstm_beam *b, const lstm_beam_opts *o, const lstm_state *st0, const float *logits0,
                  const uint32_t *prompt, size_t nprompt, uint32_t *out, double *logp)
{
    int W = b->W, V = b->V, T = b->max_new, cap = 2 * b->W, rc;
    if (nprompt + (size_t)T > b->hist_cap) return LSTM_E_ARG;
    if (st0->B != 1 || st0->L != b->st.L || st0->H != b->st.H) return LSTM_E_ARG;
    lstm_state_zero(&b->st);
    copy_lane(&b->st, 0, st0, 0);
    memcpy(b->logits, logits0, sizeof *b->logits * (size_t)V);
    if (nprompt) memcpy(b->hist, prompt, sizeof *prompt * nprompt);
    b->nlive = 1;
    b->score[0] = 0;
    b->best_len = 0;
    b->best_norm = -INFINITY;
    double best_logp = -INFINITY;
    int n_ended = 0, live_len = 0;
    for (int step = 0; step < T; step++) {
        int nc = 0;
        for (int h = 0; h < b->nlive; h++) {
            float *x = b->lp;
            memcpy(x, b->logits + (size_t)h * V, sizeof *x * (size_t)V);
            if (step) memcpy(b->hist + nprompt, b->seq + (size_t)h * T, sizeof *b->hist * (size_t)step);
            penalise(x, b->seen, b->hist, nprompt + (size_t)step, V, o->repetition_penalty);
            const uint8_t *ban = o->banned;
            if (o->held && o->held(o->ctx, b->hist, nprompt + (size_t)step, nprompt)) ban = o->banned_held;
            if (ban)
                for (int i = 0; i < V; i++)
                    if (ban[i]) x[i] = -INFINITY;
            double lse = lstm_logsumexp(x, (size_t)V);
            if (lse == -INFINITY) continue; /* every id banned */
            /* Within one hypothesis the order by logit is the order by log probability. */
            int k = lstm_topk(x, V, cap, b->top);
            for (int i = 0; i < k; i++) cand_insert(b, &nc, cap, b->score[h] + ((double)x[b->top[i]] - lse), h, b->top[i]);
        }
        if (nc == 0) break;
        int nlive = 0;
        for (int r = 0; r < nc && nlive < W; r++) {
            int h = b->cand_h[r], t = b->cand_t[r];
            if ((uint32_t)t == o->eos) {
                if (r >= W) continue; /* an ending counts only among the W best */
                n_ended++;
                memcpy(b->seq2, b->seq + (size_t)h * T, sizeof *b->seq * (size_t)step);
                b->seq2[step] = (uint32_t)t;
                consider(b, b->seq2, step + 1, b->cand_s[r], o->alpha, &best_logp);
                continue;
            }
            b->parent[nlive] = h;
            b->feed[nlive] = (uint32_t)t;
            b->nscore[nlive] = b->cand_s[r];
            nlive++;
        }
        if (n_ended >= W || nlive == 0) {
            b->nlive = 0;
            break;
        }
        for (int i = 0; i < nlive; i++) {
            int h = b->parent[i];
            copy_lane(&b->tmp, i, &b->st, h);
            if (step) memcpy(b->seq2 + (size_t)i * T, b->seq + (size_t)h * T, sizeof *b->seq * (size_t)step);
            b->seq2[(size_t)i * T + step] = b->feed[i];
            b->score[i] = b->nscore[i];
        }
        for (int i = nlive; i < W; i++) b->feed[i] = 0; /* idle lanes run on PAD; nobody reads them */
        lstm_state t1 = b->st;
        b->st = b->tmp;
        b->tmp = t1;
        uint32_t *t2 = b->seq;
        b->seq = b->seq2;
        b->seq2 = t2;
        b->nlive = nlive;
        live_len = step + 1;
        if (step + 1 == T) break;
        if ((rc = lstm_infer_step(&b->inf, &b->st, b->feed, b->logits))) return rc;
    }
    /* Hypotheses still live at the length limit compete with the ended ones. */
    for (int h = 0; h < b->nlive && live_len > 0; h++) {
        if (o->held) {
            memcpy(b->hist + nprompt, b->seq + (size_t)h * T, sizeof *b->hist * (size_t)live_len);
            if (o->held(o->ctx, b->hist, nprompt + (size_t)live_len, nprompt)) continue;
        }
        consider(b, b->seq + (size_t)h * T, live_len, b->score[h], o->alpha, &best_logp);
    }
    if (b->best_len == 0) return LSTM_E_EMPTY;
    memcpy(out, b->best, sizeof *out * (size_t)b->best_len);
    if (logp) *logp = best_logp;
    return b->best_len;
}
