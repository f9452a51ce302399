/* test_cache.c: the continuous cache (lib/lm/cache.h) against a hand computation, its ring, its
 * edges (no pairs, lambda 0 and 1), a repeated rare word on a real model's states, and the evaluator
 * with a cache (lib/lm/eval.h) against an independent one-token-at-a-time pass in double; the
 * grid search against the mixing pass. `test_cache dump FILE` writes a random case and its mixed
 * log-probabilities for tests/cache_crosscheck.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "check.h"
#include "dataset.h"
#include "eval.h"
#include "lm.h"
#include "mathx.h"
#include "modelfile.h"
#include "stream.h"
#include "tokenizer.h"
#include "windows.h"

static char dir[] = "/tmp/test_cacheXXXXXX";

static void path_of(char *buf, const char *name) { snprintf(buf, 512, "%s/%s", dir, name); }

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

/* Three pairs, worked out by hand: H = 2, V = 5, theta 0.5, lambda 0.25. */
static void test_hand(void)
{
    lstm_cache_opts o = {3, 0.5, 0.25};
    lstm_cache c;
    CHECK_EQ_INT(lstm_cache_init(&c, &o, 2, 5), 0);
    if (check_failures) return;
    const float k0[2] = {1, 0}, k1[2] = {0, 1}, k2[2] = {1, 1}, q[2] = {1, 2};
    lstm_cache_push(&c, k0, 2);
    lstm_cache_push(&c, k1, 3);
    lstm_cache_push(&c, k2, 2);
    /* q . k = 1, 2, 3: p_cache(2) = (e^0.5 + e^1.5) / (e^0.5 + e^1 + e^1.5), p_cache(3) = e^1 / (...) */
    double z = exp(0.5) + exp(1.0) + exp(1.5), pc2 = (exp(0.5) + exp(1.5)) / z, pc3 = exp(1.0) / z;
    lstm_cache_dots(&c, q);
    CHECK(close_to(lstm_cache_p_word(&c, 0.5, 2), pc2, 1e-12));
    CHECK(close_to(lstm_cache_p_word(&c, 0.5, 3), pc3, 1e-12));
    CHECK(lstm_cache_p_word(&c, 0.5, 0) == 0);
    /* theta 0: the counts, 2 of 3 and 1 of 3 */
    CHECK(close_to(lstm_cache_p_word(&c, 0, 2), 2.0 / 3, 1e-12));
    float lg[5] = {0, 1, 2, 0.5f, -1}, orig[5];
    memcpy(orig, lg, sizeof lg);
    double zm = 0;
    for (int i = 0; i < 5; i++) zm += exp(orig[i]);
    CHECK_EQ_INT(lstm_cache_mix(&c, q, lg), 0);
    double sum = 0;
    for (int i = 0; i < 5; i++) {
        double pm = exp(orig[i]) / zm, pc = i == 2 ? pc2 : i == 3 ? pc3 : 0;
        CHECK(close_to(exp(lg[i]), 0.75 * pm + 0.25 * pc, 1e-6));
        sum += exp(lg[i]);
    }
    CHECK(close_to(sum, 1, 1e-6));
    /* a shift of the logits changes nothing */
    float sh[5];
    for (int i = 0; i < 5; i++) sh[i] = orig[i] + 7;
    CHECK_EQ_INT(lstm_cache_mix(&c, q, sh), 0);
    for (int i = 0; i < 5; i++) CHECK(close_to(sh[i], lg[i], 1e-5));

    /* the ring: a fourth pair pushes out the first, (k0, 2) */
    const float k3[2] = {-1, 0};
    lstm_cache_push(&c, k3, 4);
    CHECK_EQ_INT(c.n, 3);
    lstm_cache_dots(&c, q); /* q . k = 2, 3, -1 for words 3, 2, 4 */
    z = exp(1.0) + exp(1.5) + exp(-0.5);
    CHECK(close_to(lstm_cache_p_word(&c, 0.5, 2), exp(1.5) / z, 1e-12));
    CHECK(close_to(lstm_cache_p_word(&c, 0.5, 4), exp(-0.5) / z, 1e-12));

    /* the caller's pairs, read in place with a stride, the last N of them */
    const float rows[4 * 3] = {9, 9, 9, 1, 0, 9, 0, 1, 9, 1, 1, 9};
    const uint32_t ws[4] = {1, 2, 3, 2};
    memcpy(lg, orig, sizeof lg);
    float ref[5];
    memcpy(ref, orig, sizeof ref);
    lstm_cache_clear(&c);
    CHECK_EQ_INT(lstm_cache_mix(&c, q, ref), 0); /* no pairs: untouched */
    CHECK(!memcmp(ref, orig, sizeof ref));
    lstm_cache_push(&c, k0, 2);
    lstm_cache_push(&c, k1, 3);
    lstm_cache_push(&c, k2, 2);
    CHECK_EQ_INT(lstm_cache_mix(&c, q, ref), 0);
    CHECK_EQ_INT(lstm_cache_mix_pairs(&c, rows, 3, ws, 4, q, lg), 0);
    CHECK(!memcmp(lg, ref, sizeof lg));
    /* a word id past V is refused */
    const uint32_t bad[1] = {5};
    CHECK_EQ_INT(lstm_cache_mix_pairs(&c, rows + 3, 3, bad, 1, q, lg), LSTM_E_RANGE);
    lstm_cache_free(&c);

    /* lambda 0: the logits as they were, bit for bit; lambda 1: p_cache alone */
    o.lambda = 0;
    CHECK_EQ_INT(lstm_cache_init(&c, &o, 2, 5), 0);
    lstm_cache_push(&c, k0, 2);
    memcpy(lg, orig, sizeof lg);
    CHECK_EQ_INT(lstm_cache_mix(&c, q, lg), 0);
    CHECK(!memcmp(lg, orig, sizeof lg));
    lstm_cache_free(&c);
    o.lambda = 1;
    CHECK_EQ_INT(lstm_cache_init(&c, &o, 2, 5), 0);
    lstm_cache_push(&c, k0, 2);
    lstm_cache_push(&c, k1, 3);
    lstm_cache_push(&c, k2, 2);
    memcpy(lg, orig, sizeof lg);
    CHECK_EQ_INT(lstm_cache_mix(&c, q, lg), 0);
    CHECK(lg[0] == -INFINITY && lg[1] == -INFINITY && lg[4] == -INFINITY);
    CHECK(close_to(exp(lg[2]), pc2, 1e-6) && close_to(exp(lg[3]), pc3, 1e-6));
    lstm_cache_free(&c);

    /* options */
    lstm_cache_opts d;
    lstm_cache_opts_default(&d);
    CHECK(d.N == 0 && !lstm_cache_opts_on(&d) && !lstm_cache_opts_check(&d));
    d.N = -1;
    CHECK(!strcmp(lstm_cache_opts_check(&d), "cache size must be from 0 to 100000"));
    d.N = 10, d.theta = -0.1;
    CHECK(!strcmp(lstm_cache_opts_check(&d), "cache theta must be >= 0"));
    d.theta = NAN;
    CHECK(lstm_cache_opts_check(&d) != NULL);
    d.theta = 0.3, d.lambda = 1.5;
    CHECK(!strcmp(lstm_cache_opts_check(&d), "cache lambda must be from 0 to 1"));
    CHECK_EQ_INT(lstm_cache_init(&c, &d, 2, 5), LSTM_E_ARG);
    d.lambda = 0.1, d.N = 0;
    CHECK_EQ_INT(lstm_cache_init(&c, &d, 2, 5), LSTM_E_ARG);
    d.N = 3;
    CHECK(lstm_cache_opts_on(&d));
}

/* ------------------------------------------------------------------ on a model */

#define WORDS "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 rare , ."

static uint32_t rare_id, other_ids[32], n_other; /* "rare", and the other words of WORDS */

/* The ids of make_inputs' text: the other words in a cycle, "rare" every 13th. */
static uint32_t seq_id(size_t i)
{
    if (i % 13 == 6) return rare_id;
    if (i % 9 == 8) return LSTM_EOS_ID;
    return other_ids[(i * 7) % n_other];
}

static int make_inputs(const char *win, const char *ckpt, int nwin, int T, uint32_t *Vout)
{
    lstm_tokenizer *tok = test_space_tokenizer(WORDS);
    if (!tok) return -1;
    uint32_t V = lstm_tokenizer_vocab_size(tok);
    *Vout = V;
    n_other = 0;
    for (uint32_t id = LSTM_NUM_SPECIAL; id < V && n_other < 32; id++) {
        size_t len;
        const char *w = lstm_tokenizer_piece(tok, id, &len);
        if (len == 4 && !memcmp(w, "rare", 4)) rare_id = id;
        else other_ids[n_other++] = id;
    }
    size_t n = (size_t)nwin * T + 1;
    uint32_t *seq = malloc(sizeof *seq * n);
    for (size_t i = 0; i < n; i++) seq[i] = seq_id(i);
    int rc = test_write_windows(win, tok, seq, nwin, T);
    free(seq);
    lstm_model_config c;
    lstm_model_config_default(&c);
    c.E = c.H = 8, c.L = 2, c.tie = 0, c.init_scale = 0.5f;
    if (!rc) rc = test_write_model(ckpt, tok, c, 11);
    lstm_tokenizer_free(tok);
    return rc;
}

/* The text read one token at a time on one lane, the mixture computed here in double from the
 * model's logits and top states: the summed NLL of targets [0, n), and of "rare" targets without
 * and with the cache. */
static double reference_nll(const lstm_lm *lm, size_t n, int N, double theta, double lambda, double *rare_model,
                            double *rare_mixed)
{
    const lstm_model *m = lm->m;
    int H = m->cfg.H, V = lm->V, L = m->cfg.L;
    lstm_infer inf;
    lstm_state st;
    lstm_infer_alloc(&inf, m, 1);
    lstm_state_alloc(&st, m, 1);
    lstm_state_zero(&st);
    float *lg = malloc(sizeof *lg * (size_t)V), *keys = malloc(sizeof *keys * n * (size_t)H);
    uint32_t *ws = malloc(sizeof *ws * n);
    double nll = 0;
    *rare_model = *rare_mixed = 0;
    for (size_t t = 0; t < n; t++) {
        uint32_t x = seq_id(t), y = seq_id(t + 1);
        lstm_infer_step(&inf, &st, &x, lg);
        const float *h = st.h + (size_t)(L - 1) * H;
        double mx = -INFINITY, z = 0, num = 0, lse = 0;
        for (int i = 0; i < V; i++) mx = lg[i] > mx ? lg[i] : mx;
        for (int i = 0; i < V; i++) lse += exp(lg[i] - mx);
        double pm = exp(lg[y] - mx) / lse;
        size_t from = t > (size_t)N ? t - (size_t)N : 0;
        double dmax = -INFINITY, dots[256];
        for (size_t i = from; i < t; i++) {
            double d = 0;
            for (int k = 0; k < H; k++) d += (double)h[k] * keys[i * H + k];
            dots[i - from] = d;
            dmax = d > dmax ? d : dmax;
        }
        for (size_t i = from; i < t; i++) {
            double e = exp(theta * (dots[i - from] - dmax));
            z += e;
            num += ws[i] == y ? e : 0;
        }
        double p = t > from ? (1 - lambda) * pm + lambda * num / z : pm;
        nll -= log(p);
        if (y == rare_id) {
            *rare_model -= log(pm);
            *rare_mixed -= log(p);
        }
        memcpy(keys + t * H, h, sizeof *h * (size_t)H);
        ws[t] = y;
    }
    free(lg);
    free(keys);
    free(ws);
    lstm_infer_free(&inf);
    lstm_state_free(&st);
    return nll;
}

static void test_evaluator(void)
{
    char win[512], ckpt[512];
    path_of(win, "c.win");
    path_of(ckpt, "c.ckpt");
    int T = 6, nwin = 20;
    uint32_t V;
    CHECK_EQ_INT(make_inputs(win, ckpt, nwin, T, &V), 0);
    lstm_lm lm;
    CHECK_EQ_INT(lstm_lm_open(&lm, ckpt), 0);
    lstm_dataset *d;
    uint32_t kind;
    CHECK_EQ_INT(lstm_dataset_open(&d, win, 0, &kind), 0);
    if (check_failures) return;
    uint64_t nw = lstm_dataset_count(d);
    size_t ntok = (size_t)nw * T;
    CHECK(rare_id >= LSTM_NUM_SPECIAL && n_other == 14);

    lstm_eval_opts o = {0};
    o.k = 3;
    lstm_evaluator *e;
    lstm_eval_result plain, r;
    memset(&plain, 0, sizeof plain);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &plain), 0);
    lstm_evaluator_free(e);

    /* lambda 0: exactly the model's figures */
    o.cache = (lstm_cache_opts){40, 0.5, 0};
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &r), 0);
    CHECK(r.nll == plain.nll && r.top1 == plain.top1 && r.topk == plain.topk && r.tokens == plain.tokens);
    lstm_evaluator_free(e);
    /* a vanishing lambda: the mixing path's NLL tends to the model's */
    o.cache.lambda = 1e-12;
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &r), 0);
    CHECK(close_to(r.nll, plain.nll, 1e-6));
    lstm_evaluator_free(e);

    /* the mixture over the whole stream, state and cache carried across windows, against the
     * one-token pass computed here (float logits: 1e-5) */
    double rm, rx;
    o.cache = (lstm_cache_opts){40, 0.5, 0.3};
    double ref = reference_nll(&lm, ntok, 40, 0.5, 0.3, &rm, &rx);
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &r), 0);
    CHECK_EQ_INT(r.tokens, (long)ntok);
    CHECK(close_to(r.nll, ref, 1e-5));
    /* the rare word, repeated, is more likely with the cache than without: a lower NLL on its targets */
    CHECK(rx < rm);
    lstm_evaluator_free(e);
    /* with B lanes each lane has its own cache, cleared where its state is: not the one-lane figure,
     * and a reset-state pass differs again */
    lstm_eval_result r4, rr;
    memset(&r4, 0, sizeof r4);
    memset(&rr, 0, sizeof rr);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 4, T, &o), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &r4), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 0, &rr), 0);
    CHECK(r4.tokens == r.tokens && rr.tokens == r.tokens && r4.nll != r.nll && rr.nll != r4.nll);
    lstm_evaluator_free(e);
    /* lambda 1 with theta 0 on the reset-state pass: the first target of a window has an empty
     * cache (the model's), each later one p_cache alone; a target not seen earlier in its window
     * then has probability 0 */
    o.cache = (lstm_cache_opts){40, 0, 1};
    memset(&rr, 0, sizeof rr);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 4, T, &o), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 0, &rr), 0);
    CHECK(rr.nll == INFINITY);
    lstm_evaluator_free(e);

    /* the grid: each cell is the mixing pass with that theta and lambda */
    const double th[3] = {0, 0.5, 2}, la[2] = {0.1, 0.3};
    double gn[6] = {0};
    lstm_cache_grid g = {3, 2, th, la, gn};
    o.cache = (lstm_cache_opts){40, 0.3, 0.1};
    o.grid = &g;
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 2, T, &o), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &r), 0);
    lstm_evaluator_free(e);
    lstm_eval_result p2;
    memset(&p2, 0, sizeof p2);
    lstm_eval_opts po = {0};
    po.k = 3;
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 2, T, &po), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &p2), 0);
    lstm_evaluator_free(e);
    CHECK(r.nll == p2.nll && r.top1 == p2.top1); /* searching leaves the model's figures */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            lstm_eval_opts mo = {0};
            mo.k = 3;
            mo.cache = (lstm_cache_opts){40, th[i], la[j]};
            lstm_eval_result x;
            memset(&x, 0, sizeof x);
            CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 2, T, &mo), 0);
            CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &x), 0);
            lstm_evaluator_free(e);
            CHECK(close_to(gn[i * 2 + j], x.nll, 1e-5));
        }
    /* refused: a grid without a cache size or with keystrokes, options out of range */
    o.cache.N = 0;
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), LSTM_E_ARG);
    o.cache.N = 5;
    o.keystrokes = 1;
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), LSTM_E_ARG);
    o.keystrokes = 0;
    o.grid = NULL;
    o.cache.lambda = 2;
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), LSTM_E_ARG);

    /* keystrokes with a cache: the same NLL as the plain mixing pass (one lane) */
    o.cache = (lstm_cache_opts){40, 0.5, 0.3};
    o.keystrokes = 1;
    o.beam_words = 4;
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &r), 0);
    CHECK(close_to(r.nll, ref, 1e-5) && r.typed_words > 0);
    lstm_evaluator_free(e);

    lstm_dataset_free(d);
    lstm_lm_close(&lm);
}

/* ------------------------------------------------------------------ the cross-check's case */

/* H, V, N, theta, lambda, n pairs (keys, words), the query, the logits in and the mixed log-probs
 * out, as text, one value per line group. */
static int dump_case(const char *path)
{
    enum { H = 16, V = 50, N = 24, NP = 30 };
    lstm_cache_opts o = {N, 0.7, 0.2};
    lstm_cache c;
    if (lstm_cache_init(&c, &o, H, V)) return 1;
    unsigned s = 7;
#define RND() ((s = s * 1664525u + 1013904223u), (float)((s >> 8) % 20000) / 10000.0f - 1.0f)
    float keys[NP][H], q[H], lg[V], out[V];
    uint32_t ws[NP];
    for (int i = 0; i < NP; i++) {
        for (int k = 0; k < H; k++) keys[i][k] = RND();
        ws[i] = (uint32_t)((s >> 12) % 8) * 3 % V; /* few distinct words, some repeated */
        lstm_cache_push(&c, keys[i], ws[i]);
    }
    for (int k = 0; k < H; k++) q[k] = keys[NP - 3][k] * 0.8f + RND() * 0.2f; /* close to a recent key */
    for (int i = 0; i < V; i++) lg[i] = out[i] = 3 * RND();
    if (lstm_cache_mix(&c, q, out)) return 1;
#undef RND
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "%d %d %d %.17g %.17g %d\n", H, V, N, o.theta, o.lambda, NP);
    for (int i = 0; i < NP; i++) {
        for (int k = 0; k < H; k++) fprintf(f, "%.9g ", keys[i][k]);
        fprintf(f, "%u\n", ws[i]);
    }
    for (int k = 0; k < H; k++) fprintf(f, "%.9g%c", q[k], k + 1 < H ? ' ' : '\n');
    for (int i = 0; i < V; i++) fprintf(f, "%.9g%c", lg[i], i + 1 < V ? ' ' : '\n');
    for (int i = 0; i < V; i++) fprintf(f, "%.9g%c", out[i], i + 1 < V ? ' ' : '\n');
    lstm_cache_free(&c);
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "dump")) return dump_case(argv[2]);
    if (!mkdtemp(dir)) return 1;
    test_hand();
    test_evaluator();
    char p[512];
    path_of(p, "c.win");
    unlink(p);
    path_of(p, "c.ckpt");
    unlink(p);
    rmdir(dir);
    CHECK_DONE("test_cache");
}
