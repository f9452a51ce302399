/* test_decode.c: lib/decode against hand-computed cases: softmax and temperature, top-k, top-p,
 * repetition penalty, bans, greedy as the temperature limit, seeded sampling (determinism and
 * frequencies), and beam search (W = 1 is greedy; a beam wide enough to be exhaustive finds the best
 * sequence by brute force). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "decode.h"
#include "errors.h"
#include "model.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

static void test_softmax(void)
{
    const float x[3] = {1, 2, 3};
    float p[3];
    double z = exp(1) + exp(2) + exp(3);
    double lse = lstm_softmax(p, x, 3, 1.0f);
    CHECK(near(lse, log(z), 1e-6));
    CHECK(near(p[0], exp(1) / z, 1e-6) && near(p[1], exp(2) / z, 1e-6) && near(p[2], exp(3) / z, 1e-6));
    /* temperature 2 = softmax of x / 2 */
    double z2 = exp(0.5) + exp(1.0) + exp(1.5);
    lse = lstm_softmax(p, x, 3, 2.0f);
    CHECK(near(lse, log(z2), 1e-6));
    CHECK(near(p[0], exp(0.5) / z2, 1e-6) && near(p[2], exp(1.5) / z2, 1e-6));
    /* -inf entries get probability 0; in place works */
    float y[3] = {0, -INFINITY, 0};
    lstm_softmax(y, y, 3, 1.0f);
    CHECK(y[0] == 0.5f && y[1] == 0.0f && y[2] == 0.5f);
}

static void test_topk(void)
{
    const float x[6] = {0.1f, 0.5f, 0.5f, -INFINITY, 0.3f, NAN};
    int idx[6];
    CHECK_EQ_INT(lstm_topk(x, 6, 3, idx), 3);
    CHECK(idx[0] == 1 && idx[1] == 2 && idx[2] == 4); /* ties by lower index */
    CHECK_EQ_INT(lstm_topk(x, 6, 10, idx), 4);          /* never -inf or NaN */
    CHECK(idx[0] == 1 && idx[1] == 2 && idx[2] == 4 && idx[3] == 0);
    CHECK_EQ_INT(lstm_topk(x, 6, 0, idx), 0);
    /* a larger random case against a full selection sort */
    enum { N = 1000, K = 17 };
    float v[N];
    int got[K], used[N] = {0};
    lstm_rng r;
    lstm_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) v[i] = (float)lstm_rng_below(&r, 200); /* many ties */
    CHECK_EQ_INT(lstm_topk(v, N, K, got), K);
    for (int k = 0; k < K; k++) {
        int b = -1;
        for (int i = 0; i < N; i++)
            if (!used[i] && (b < 0 || v[i] > v[b])) b = i;
        used[b] = 1;
        CHECK_EQ_INT(got[k], b);
    }
}

static void test_penalty(void)
{
    float x[4] = {2, -2, 1, 3};
    const uint32_t hist[4] = {0, 1, 0, 9}; /* repeated and out-of-range ids */
    lstm_repetition_penalty(x, 4, hist, 4, 2.0f);
    CHECK(x[0] == 1.0f && x[1] == -4.0f && x[2] == 1.0f && x[3] == 3.0f);
    /* the sampler applies the same penalty: with it, id 3 beats id 0 greedily; without, too; make
     * the penalised id the argmax to see it change */
    lstm_sampler s;
    CHECK_EQ_INT(lstm_sampler_init(&s, 4), 0);
    lstm_sampler_opts o;
    lstm_sampler_opts_default(&o);
    o.temperature = 0;
    const float y[4] = {3, 0, 2.5f, -1};
    const uint32_t h0[2] = {0, 0};
    lstm_rng r;
    lstm_rng_seed(&r, 1);
    CHECK_EQ_INT(lstm_sampler_pick(&s, &o, y, NULL, 0, &r, NULL), 0);
    o.repetition_penalty = 1.5f; /* 3 / 1.5 = 2 < 2.5 */
    CHECK_EQ_INT(lstm_sampler_pick(&s, &o, y, h0, 2, &r, NULL), 2);
    /* the penalty must not leak into the next call */
    o.repetition_penalty = 1.0f;
    CHECK_EQ_INT(lstm_sampler_pick(&s, &o, y, h0, 2, &r, NULL), 0);
    lstm_sampler_free(&s);
}

/* logits = log of the given probabilities */
static void logits_of(float *x, const double *p, int n)
{
    for (int i = 0; i < n; i++) x[i] = p[i] > 0 ? (float)log(p[i]) : -INFINITY;
}

static void test_top_p_k(void)
{
    const double pr[5] = {0.05, 0.5, 0.15, 0.3, 0.0};
    float x[5], p[5];
    int ids[5];
    logits_of(x, pr, 5);
    lstm_sampler s;
    CHECK_EQ_INT(lstm_sampler_init(&s, 5), 0);
    lstm_sampler_opts o;
    lstm_sampler_opts_default(&o);
    /* no truncation: every possible id, by decreasing probability */
    CHECK_EQ_INT(lstm_sampler_dist(&s, &o, x, NULL, 0, ids, p), 4);
    CHECK(ids[0] == 1 && ids[1] == 3 && ids[2] == 2 && ids[3] == 0);
    CHECK(near(p[0], 0.5, 1e-6) && near(p[3], 0.05, 1e-6));
    /* top-p 0.75: 0.5 < 0.75 <= 0.5 + 0.3, so {1, 3}, renormalised over 0.8 */
    o.top_p = 0.75f;
    CHECK_EQ_INT(lstm_sampler_dist(&s, &o, x, NULL, 0, ids, p), 2);
    CHECK(ids[0] == 1 && ids[1] == 3 && near(p[0], 0.5 / 0.8, 1e-6) && near(p[1], 0.3 / 0.8, 1e-6));
    /* top-p 0.85 needs the third (0.95) */
    o.top_p = 0.85f;
    CHECK_EQ_INT(lstm_sampler_dist(&s, &o, x, NULL, 0, ids, p), 3);
    CHECK(near(p[2], 0.15 / 0.95, 1e-6));
    /* top-p 0.4: the most likely alone already has 0.5 */
    o.top_p = 0.4f;
    CHECK_EQ_INT(lstm_sampler_dist(&s, &o, x, NULL, 0, ids, p), 1);
    CHECK(ids[0] == 1 && p[0] == 1.0f);
    /* top-k 3 then top-p 0.9 of the renormalised three (0.5, 0.3, 0.15)/0.95: 0.842 < 0.9 -> all 3 */
    o.top_p = 0.9f;
    o.top_k = 3;
    CHECK_EQ_INT(lstm_sampler_dist(&s, &o, x, NULL, 0, ids, p), 3);
    CHECK(near(p[0], 0.5 / 0.95, 1e-6));
    o.top_p = 0.8f; /* 0.5/0.95 + 0.3/0.95 = 0.842 >= 0.8 -> 2 */
    CHECK_EQ_INT(lstm_sampler_dist(&s, &o, x, NULL, 0, ids, p), 2);
    /* temperature 0.5 squares the ratios: p ~ pr^2 */
    lstm_sampler_opts_default(&o);
    o.temperature = 0.5f;
    CHECK_EQ_INT(lstm_sampler_dist(&s, &o, x, NULL, 0, ids, p), 4);
    double z = 0.25 + 0.09 + 0.0225 + 0.0025;
    CHECK(near(p[0], 0.25 / z, 1e-5) && near(p[1], 0.09 / z, 1e-5));
    /* bans */
    uint8_t ban[5] = {0, 1, 0, 0, 0};
    lstm_sampler_opts_default(&o);
    o.banned = ban;
    o.temperature = 0;
    CHECK_EQ_INT(lstm_sampler_dist(&s, &o, x, NULL, 0, ids, p), 1);
    CHECK_EQ_INT(ids[0], 3);
    memset(ban, 1, sizeof ban);
    lstm_rng r;
    lstm_rng_seed(&r, 3);
    CHECK_EQ_INT(lstm_sampler_pick(&s, &o, x, NULL, 0, &r, NULL), LSTM_E_EMPTY);
    o.temperature = 1;
    CHECK_EQ_INT(lstm_sampler_pick(&s, &o, x, NULL, 0, &r, NULL), LSTM_E_EMPTY);
    lstm_sampler_free(&s);
}

static void test_sampling(void)
{
    const double pr[4] = {0.5, 0.25, 0.15, 0.1};
    float x[4];
    logits_of(x, pr, 4);
    lstm_sampler s;
    CHECK_EQ_INT(lstm_sampler_init(&s, 4), 0);
    lstm_sampler_opts o;
    lstm_sampler_opts_default(&o);
    /* same seed, same draws; another seed, other draws */
    lstm_rng a, b, c;
    lstm_rng_seed(&a, 42);
    lstm_rng_seed(&b, 42);
    lstm_rng_seed(&c, 43);
    int same = 1, differ = 0;
    for (int i = 0; i < 200; i++) {
        int64_t u = lstm_sampler_pick(&s, &o, x, NULL, 0, &a, NULL);
        int64_t v = lstm_sampler_pick(&s, &o, x, NULL, 0, &b, NULL);
        int64_t w = lstm_sampler_pick(&s, &o, x, NULL, 0, &c, NULL);
        same &= u == v;
        differ |= u != w;
    }
    CHECK(same);
    CHECK(differ);
    /* frequencies: chi-square with 3 degrees of freedom below 16.27 (p = 0.001) */
    enum { N = 40000 };
    long cnt[4] = {0};
    float prob;
    for (int i = 0; i < N; i++) {
        int64_t id = lstm_sampler_pick(&s, &o, x, NULL, 0, &a, &prob);
        CHECK(id >= 0 && id < 4);
        if (id >= 0 && id < 4) cnt[id]++;
        CHECK(near(prob, pr[id], 1e-5));
    }
    double chi2 = 0;
    for (int i = 0; i < 4; i++) chi2 += (cnt[i] - N * pr[i]) * (cnt[i] - N * pr[i]) / (N * pr[i]);
    CHECK(chi2 < 16.27);
    /* with top-k 2: only ids 0 and 1, in ratio 2:1 (chi-square, 1 dof, < 10.83) */
    o.top_k = 2;
    long c2[4] = {0};
    for (int i = 0; i < N; i++) c2[lstm_sampler_pick(&s, &o, x, NULL, 0, &a, NULL)]++;
    CHECK(c2[2] == 0 && c2[3] == 0);
    double e0 = N * 2.0 / 3, e1 = N / 3.0;
    CHECK((c2[0] - e0) * (c2[0] - e0) / e0 + (c2[1] - e1) * (c2[1] - e1) / e1 < 10.83);
    /* temperature -> 0 is greedy */
    o.top_k = 0;
    o.temperature = 0.01f;
    int all0 = 1;
    for (int i = 0; i < 1000; i++) all0 &= lstm_sampler_pick(&s, &o, x, NULL, 0, &a, NULL) == 0;
    CHECK(all0);
    o.temperature = 0;
    uint64_t before = a.s;
    CHECK_EQ_INT(lstm_sampler_pick(&s, &o, x, NULL, 0, &a, &prob), 0);
    CHECK(prob == 1.0f && a.s == before); /* greedy draws nothing */
    /* Temperatures below LSTM_TEMP_MIN are greedy too: 1/T would overflow float (1e-40) or make
     * x/T overflow (1e-38), giving NaN probabilities that picked the last candidate. */
    const float tiny[] = {1e-40f, 1e-38f, 1e-30f, 5e-5f, -1.0f, NAN};
    for (size_t t = 0; t < sizeof tiny / sizeof *tiny; t++) {
        o.temperature = tiny[t];
        before = a.s;
        prob = -1;
        CHECK_EQ_INT(lstm_sampler_pick(&s, &o, x, NULL, 0, &a, &prob), 0);
        CHECK(prob == 1.0f && a.s == before);
        int ids[4];
        float pd[4];
        CHECK_EQ_INT(lstm_sampler_dist(&s, &o, x, NULL, 0, ids, pd), 1);
        CHECK(ids[0] == 0 && pd[0] == 1.0f);
        float q[4];
        double lse = lstm_softmax(q, x, 4, tiny[t]);
        CHECK(isfinite(lse) && q[0] == 1.0f && q[1] == 0.0f && q[3] == 0.0f);
    }
    /* just above the threshold it still samples (a tie of two ids splits evenly) */
    const float tie[4] = {2.0f, 2.0f, 0.0f, -1.0f};
    o.temperature = 2e-4f;
    long ct[4] = {0};
    for (int i = 0; i < 1000; i++) ct[lstm_sampler_pick(&s, &o, tie, NULL, 0, &a, NULL)]++;
    CHECK(ct[0] > 400 && ct[1] > 400 && ct[2] == 0 && ct[3] == 0);
    lstm_sampler_free(&s);
}

/* ---- beam search on a small random model ---- */

static double seq_logp(lstm_model *m, const lstm_state *st0, const float *lg0, const uint32_t *seq, int n)
{
    lstm_state st;
    lstm_infer inf;
    int V = m->cfg.V;
    float *lg = malloc(sizeof *lg * (size_t)V), *p = malloc(sizeof *p * (size_t)V);
    lstm_state_alloc(&st, m, 1);
    lstm_infer_alloc(&inf, m, 1);
    memcpy(st.h, st0->h, sizeof(float) * (size_t)m->cfg.L * m->cfg.H);
    memcpy(st.c, st0->c, sizeof(float) * (size_t)m->cfg.L * m->cfg.H);
    memcpy(lg, lg0, sizeof *lg * (size_t)V);
    double lp = 0;
    for (int i = 0; i < n; i++) {
        double lse = lstm_softmax(p, lg, V, 1.0f);
        lp += lg[seq[i]] - lse;
        if (i + 1 < n) lstm_infer_step(&inf, &st, &seq[i], lg);
    }
    lstm_state_free(&st);
    lstm_infer_free(&inf);
    free(lg);
    free(p);
    return lp;
}

static void test_beam(void)
{
    lstm_model_config cfg;
    lstm_model_config_default(&cfg);
    cfg.V = 5;
    cfg.E = cfg.H = 6;
    cfg.L = 2;
    cfg.init_scale = 1.5f; /* peaky distributions */
    lstm_model m;
    CHECK_EQ_INT(lstm_model_create(&m, &cfg), 0);
    lstm_rng r;
    lstm_rng_seed(&r, 7);
    lstm_model_init_params(&m, &r);
    lstm_state st0;
    lstm_infer inf;
    float lg0[5];
    lstm_state_alloc(&st0, &m, 1);
    lstm_infer_alloc(&inf, &m, 1);
    const uint32_t prompt[2] = {1, 4};
    lstm_infer_step(&inf, &st0, &prompt[0], NULL);
    lstm_infer_step(&inf, &st0, &prompt[1], lg0);

    /* W = 1 equals greedy decoding (with a penalty and a ban in play too) */
    enum { T = 6 };
    uint8_t ban[5] = {0, 0, 1, 0, 0};
    for (int variant = 0; variant < 2; variant++) {
        float pen = variant ? 1.3f : 1.0f;
        lstm_sampler s;
        lstm_sampler_init(&s, 5);
        lstm_sampler_opts so;
        lstm_sampler_opts_default(&so);
        so.temperature = 0;
        so.repetition_penalty = pen;
        so.banned = variant ? ban : NULL;
        lstm_state st;
        lstm_state_alloc(&st, &m, 1);
        memcpy(st.h, st0.h, sizeof(float) * 12);
        memcpy(st.c, st0.c, sizeof(float) * 12);
        float lg[5];
        memcpy(lg, lg0, sizeof lg);
        uint32_t greedy[T + 2], hist[T + 2];
        memcpy(hist, prompt, sizeof prompt);
        int ng = 0;
        for (; ng < T; ng++) {
            uint32_t id = (uint32_t)lstm_sampler_pick(&s, &so, lg, hist, 2 + (size_t)ng, &r, NULL);
            greedy[ng] = hist[2 + ng] = id;
            if (id == 3) { ng++; break; }
            lstm_infer_step(&inf, &st, &id, lg);
        }
        lstm_beam bm;
        CHECK_EQ_INT(lstm_beam_init(&bm, &m, 1, T, 2), 0);
        lstm_beam_opts bo = {.alpha = 1.0f, .repetition_penalty = pen, .banned = so.banned, .eos = 3};
        uint32_t out[T];
        int n = lstm_beam_run(&bm, &bo, &st0, lg0, prompt, 2, out, NULL);
        CHECK_EQ_INT(n, ng);
        CHECK(n == ng && !memcmp(out, greedy, sizeof *out * (size_t)ng));
        lstm_beam_free(&bm);
        lstm_state_free(&st);
        lstm_sampler_free(&s);
    }

    /* No ending id (eos out of range), alpha 0: a beam of 5^3 = 125 is exhaustive over 3 steps and
     * must find the most likely sequence; a beam of 2 finds one no better. */
    enum { N = 3 };
    double best = -INFINITY;
    uint32_t bseq[N];
    for (int a = 0; a < 125; a++) {
        uint32_t sq[N] = {(uint32_t)(a / 25), (uint32_t)(a / 5 % 5), (uint32_t)(a % 5)};
        double lp = seq_logp(&m, &st0, lg0, sq, N);
        if (lp > best) {
            best = lp;
            memcpy(bseq, sq, sizeof sq);
        }
    }
    lstm_beam bm;
    CHECK_EQ_INT(lstm_beam_init(&bm, &m, 125, N, 0), 0);
    lstm_beam_opts bo = {.alpha = 0.0f, .repetition_penalty = 1.0f, .eos = 99};
    uint32_t out[N];
    double lp;
    CHECK_EQ_INT(lstm_beam_run(&bm, &bo, &st0, lg0, NULL, 0, out, &lp), N);
    CHECK(!memcmp(out, bseq, sizeof out));
    CHECK(near(lp, best, 1e-4));
    CHECK(near(seq_logp(&m, &st0, lg0, out, N), lp, 1e-4));
    lstm_beam_free(&bm);
    CHECK_EQ_INT(lstm_beam_init(&bm, &m, 2, N, 0), 0);
    CHECK_EQ_INT(lstm_beam_run(&bm, &bo, &st0, lg0, NULL, 0, out, &lp), N);
    CHECK(lp <= best + 1e-4);
    CHECK(near(seq_logp(&m, &st0, lg0, out, N), lp, 1e-4));
    lstm_beam_free(&bm);

    /* With a real eos and alpha 1: the answers are real sequences whose reported log probability is
     * theirs, and a hypothesis that ended ends with eos. */
    double lp1, lp4;
    uint32_t o1[T], o4[T];
    lstm_beam_opts bn = {.alpha = 1.0f, .repetition_penalty = 1.0f, .eos = 3};
    CHECK_EQ_INT(lstm_beam_init(&bm, &m, 1, T, 0), 0);
    int n1 = lstm_beam_run(&bm, &bn, &st0, lg0, NULL, 0, o1, &lp1);
    lstm_beam_free(&bm);
    CHECK_EQ_INT(lstm_beam_init(&bm, &m, 4, T, 0), 0);
    int n4 = lstm_beam_run(&bm, &bn, &st0, lg0, NULL, 0, o4, &lp4);
    lstm_beam_free(&bm);
    CHECK(n1 > 0 && n4 > 0);
    if (n1 > 0 && n4 > 0) {
        CHECK(near(seq_logp(&m, &st0, lg0, o1, n1), lp1, 1e-4));
        CHECK(near(seq_logp(&m, &st0, lg0, o4, n4), lp4, 1e-4));
        CHECK(n4 == T || o4[n4 - 1] == 3);
        for (int i = 0; i + 1 < n4; i++) CHECK(o4[i] != 3);
    }
    /* Length normalisation: an exhaustive beam (125 >= every candidate over 3 steps) returns the
     * sequence with the best logp / len^alpha among all that end with eos (or reach 3 ids), for each
     * alpha; and alpha changes the answer on this model. */
    {
        int nlen[3] = {0, 0, 0}, k = 0;
        for (int ai = 0; ai < 3; ai++) {
            float alpha = (float)ai; /* 0, 1, 2 */
            double bscore = -INFINITY;
            uint32_t want[N];
            int wlen = 0;
            for (int len = 1; len <= N; len++) {
                int count = len == 1 ? 5 : len == 2 ? 25 : 125;
                for (int a = 0; a < count; a++) {
                    uint32_t sq[N] = {0, 0, 0};
                    for (int i = len - 1, x = a; i >= 0; i--, x /= 5) sq[i] = (uint32_t)(x % 5);
                    int ok = 1;
                    for (int i = 0; i + 1 < len; i++) ok &= sq[i] != 3;
                    if (!ok || (len < N && sq[len - 1] != 3)) continue;
                    double sc = seq_logp(&m, &st0, lg0, sq, len) / pow((double)len, alpha);
                    if (sc > bscore) {
                        bscore = sc;
                        memcpy(want, sq, sizeof sq);
                        wlen = len;
                    }
                }
            }
            lstm_beam_opts ba = {.alpha = alpha, .repetition_penalty = 1.0f, .eos = 3};
            CHECK_EQ_INT(lstm_beam_init(&bm, &m, 125, N, 0), 0);
            int got = lstm_beam_run(&bm, &ba, &st0, lg0, NULL, 0, out, NULL);
            lstm_beam_free(&bm);
            CHECK_EQ_INT(got, wlen);
            CHECK(got == wlen && !memcmp(out, want, sizeof *out * (size_t)wlen));
            nlen[ai] = wlen;
            k += wlen != nlen[0];
        }
        CHECK(k > 0); /* some alpha picks a sequence of another length than alpha 0 */
    }
    /* bad arguments */
    CHECK_EQ_INT(lstm_beam_init(&bm, &m, 0, T, 0), LSTM_E_ARG);

    lstm_state_free(&st0);
    lstm_infer_free(&inf);
    lstm_model_free(&m);
}

int main(void)
{
    test_softmax();
    test_topk();
    test_penalty();
    test_top_p_k();
    test_sampling();
    test_beam();
    CHECK_DONE("test_decode");
}
