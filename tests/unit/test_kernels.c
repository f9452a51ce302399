/* test_kernels.c: every fast kernel equals its plain-loop reference twin (vector math, cell layers,
 * output layer, the whole model forward / backward), stateful carry across windows, the inference
 * step, views on external parameters, the tensor table, and the optimizer / schedule arithmetic on
 * small hand-computed cases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "errors.h"
#include "gemm.h"
#include "model.h"
#include "optim.h"
#include "vec.h"

static lstm_rng R;

static void fill(float *x, size_t n, float s)
{
    for (size_t i = 0; i < n; i++) x[i] = (2.0f * lstm_rng_uniform(&R) - 1.0f) * s;
}

static int peep_all; /* the cell and model tests give LSTMs peepholes */
static int att_all;  /* the model tests attend over this many top outputs (cfg.attention) */

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) abort();
    return p;
}

/* max |a - b| relative to max |b| (absolute when b is all zero). */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e; /* NaN sticks */
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0 ? d / s : d;
}

#define CHECK_CLOSE(a, b, n, tol)                                                                        \
    do {                                                                                                 \
        double d_ = rel_diff((a), (b), (n));                                                             \
        if (!(d_ <= (tol))) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s ~ %s: rel diff %.3g > %.3g\n", __FILE__, __LINE__, \
                    #a, #b, d_, (double)(tol));                                                          \
            check_failures++;                                                                            \
        }                                                                                                \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                             \
    do {                                                                                                  \
        double a_ = (a), b_ = (b);                                                                        \
        if (!(fabs(a_ - b_) <= (tol))) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s ~ %s (%.9g vs %.9g)\n", __FILE__, __LINE__, #a, #b, a_, \
                    b_);                                                                                  \
            check_failures++;                                                                             \
        }                                                                                                 \
    } while (0)

static void test_vector_math(void)
{
    enum { N = 20003 };
    float *x = falloc(N), *y = falloc(N);
    for (int i = 0; i < N; i++) x[i] = -90.0f + 180.0f * (float)i / (N - 1);
    lstm_vexp(y, x, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        if (x[i] < -87.0f || x[i] > 88.0f) continue;
        double e = exp((double)x[i]), r = fabs(y[i] - e) / e;
        if (r > worst) worst = r;
    }
    CHECK(worst < 3e-7);
    for (int i = 0; i < N; i++) CHECK(isfinite(y[i]) && y[i] >= 0.0f);
    for (int i = 0; i < N; i++) x[i] = -20.0f + 40.0f * (float)i / (N - 1);
    x[7] = 0.0f, x[8] = 1e-6f, x[9] = -0.09999f, x[10] = 0.1f;
    lstm_vsigmoid(y, x, N);
    worst = 0;
    for (int i = 0; i < N; i++) {
        double s = 1.0 / (1.0 + exp(-(double)x[i])), r = fabs(y[i] - s) / s;
        if (r > worst) worst = r;
    }
    CHECK(worst < 4e-7);
    lstm_vtanh(y, x, N);
    worst = 0;
    for (int i = 0; i < N; i++) {
        double t = tanh((double)x[i]), e = fabs(y[i] - t) / (fabs(t) + 1e-3);
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-6);
    lstm_vtanh(y, x + 1, 13); /* odd length: scalar tail agrees with vector body */
    for (int i = 0; i < 13; i++) CHECK_NEAR(y[i], tanh((double)x[i + 1]), 3e-7);
    free(x);
    free(y);
}

typedef struct {
    lstm_layer_acts a;
    lstm_layer_scratch s;
    lstm_layer_g g;
    float *dx, *dh0, *dc0;
} layer_bufs;

static void layer_bufs_alloc(layer_bufs *L, int B, int T, int In, int H, int GH)
{
    size_t N = (size_t)B * T;
    L->a.gates = falloc(N * GH);
    L->a.h = falloc((N + B) * H);
    L->a.c = falloc((N + B) * H);
    L->a.tc = falloc(N * H);
    L->a.hn = falloc(N * H);
    L->a.hg = falloc((size_t)B * GH);
    L->a.lnx = falloc(N * GH);
    L->a.lnh = falloc(N * GH);
    L->a.lnc = falloc(N * H);
    L->a.lnr = falloc(N * 3);
    L->g.ln = falloc((size_t)10 * H);
    L->s.dxg = falloc(N * GH);
    L->s.dhg = falloc(N * GH);
    L->s.dh = falloc((size_t)B * H);
    L->s.dc = falloc((size_t)B * H);
    L->g.w_ih = falloc((size_t)GH * In);
    L->g.w_hh = falloc((size_t)GH * H);
    L->g.b_ih = falloc(GH);
    L->g.b_hh = falloc(GH);
    L->dx = falloc(N * In);
    L->dh0 = falloc((size_t)B * H);
    L->dc0 = falloc((size_t)B * H);
    /* the packed W_hh the per-step GEMMs use, as lstm_acts_alloc gives it (GH / H gives the cell) */
    int cell = GH == 4 * H ? LSTM_CELL_LSTM : GH == 3 * H ? LSTM_CELL_GRU : LSTM_CELL_RNN;
    size_t wb = (lstm_cell_wpack_floats(cell, H) * sizeof(float) + 63) / 64 * 64;
    L->a.wpack = L->s.wpack = aligned_alloc(64, wb);
    if (!L->a.wpack) abort();
}

static void layer_bufs_free(layer_bufs *L)
{
    float *p[] = {L->a.gates, L->a.h,    L->a.c,    L->a.tc,   L->a.hn, L->a.hg,  L->s.dxg, L->s.dhg,
                  L->s.dh,    L->s.dc,   L->g.w_ih, L->g.w_hh, L->g.b_ih, L->g.b_hh, L->dx,  L->dh0, L->dc0,
                  L->a.lnx,   L->a.lnh,  L->a.lnc,  L->a.lnr,  L->g.ln};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    free(L->a.wpack);
}

static void test_cell_kernels(int cell)
{
    int B = 3, T = 5, In = 7, H = 11, GH = lstm_cell_gates(cell) * H;
    size_t N = (size_t)B * T;
    float *w_ih = falloc((size_t)GH * In), *w_hh = falloc((size_t)GH * H), *b_ih = falloc(GH), *b_hh = falloc(GH);
    float *x = falloc(N * In), *dh_seq = falloc(N * H);
    fill(w_ih, (size_t)GH * In, 0.6f), fill(w_hh, (size_t)GH * H, 0.6f), fill(b_ih, GH, 0.5f), fill(b_hh, GH, 0.5f);
    fill(x, N * In, 1.0f), fill(dh_seq, N * H, 1.0f);
    float *peep = cell == LSTM_CELL_LSTM && peep_all ? falloc((size_t)3 * H) : NULL;
    if (peep) fill(peep, (size_t)3 * H, 0.7f);
    /* LayerNorm gains around 1, b_c around 0 */
    float *ln = cell == LSTM_CELL_LNLSTM ? falloc((size_t)10 * H) : NULL;
    if (ln) {
        fill(ln, (size_t)10 * H, 0.5f);
        for (int j = 0; j < 9 * H; j++) ln[j] += 1.0f;
    }
    lstm_layer_w w = {w_ih, w_hh, b_ih, b_hh, peep, ln};
    layer_bufs f, r;
    layer_bufs_alloc(&f, B, T, In, H, GH);
    layer_bufs_alloc(&r, B, T, In, H, GH);
    f.g.peep = peep ? falloc((size_t)3 * H) : NULL;
    r.g.peep = peep ? falloc((size_t)3 * H) : NULL;
    fill(f.a.h, (size_t)B * H, 0.8f), fill(f.a.c, (size_t)B * H, 0.8f);
    memcpy(r.a.h, f.a.h, (size_t)B * H * sizeof(float));
    memcpy(r.a.c, f.a.c, (size_t)B * H * sizeof(float));
    lstm_cell_forward(cell, &f.a, x, &w, B, T, In, H);
    lstm_cell_forward_ref(cell, &r.a, x, &w, B, T, In, H);
    CHECK_CLOSE(f.a.gates, r.a.gates, N * GH, 2e-6);
    CHECK_CLOSE(f.a.h, r.a.h, (N + B) * H, 2e-6);
    if (lstm_cell_has_c(cell)) {
        CHECK_CLOSE(f.a.c, r.a.c, (N + B) * H, 2e-6);
        CHECK_CLOSE(f.a.tc, r.a.tc, N * H, 2e-6);
    }
    if (cell == LSTM_CELL_GRU) CHECK_CLOSE(f.a.hn, r.a.hn, N * H, 2e-6);
    if (ln) {
        CHECK_CLOSE(f.a.lnx, r.a.lnx, N * GH, 2e-6);
        CHECK_CLOSE(f.a.lnh, r.a.lnh, N * GH, 2e-6);
        CHECK_CLOSE(f.a.lnc, r.a.lnc, N * H, 2e-6);
        CHECK_CLOSE(f.a.lnr, r.a.lnr, N * 3, 2e-6);
        fill(f.g.ln, (size_t)10 * H, 1.0f);
        memcpy(r.g.ln, f.g.ln, (size_t)10 * H * sizeof(float));
    }
    /* backward: both from the reference activations, accumulating onto the same non-zero gradients */
    fill(f.g.w_ih, (size_t)GH * In, 1.0f), fill(f.dh0, (size_t)B * H, 1.0f), fill(f.dc0, (size_t)B * H, 1.0f);
    memcpy(r.g.w_ih, f.g.w_ih, (size_t)GH * In * sizeof(float));
    memcpy(r.dh0, f.dh0, (size_t)B * H * sizeof(float));
    memcpy(r.dc0, f.dc0, (size_t)B * H * sizeof(float));
    lstm_cell_backward(cell, &f.g, f.dx, f.dh0, f.dc0, &f.s, dh_seq, &r.a, x, &w, B, T, In, H);
    lstm_cell_backward_ref(cell, &r.g, r.dx, r.dh0, r.dc0, &r.s, dh_seq, &r.a, x, &w, B, T, In, H);
    CHECK_CLOSE(f.g.w_ih, r.g.w_ih, (size_t)GH * In, 2e-6);
    CHECK_CLOSE(f.g.w_hh, r.g.w_hh, (size_t)GH * H, 2e-6);
    CHECK_CLOSE(f.g.b_ih, r.g.b_ih, GH, 2e-6);
    CHECK_CLOSE(f.g.b_hh, r.g.b_hh, GH, 2e-6);
    CHECK_CLOSE(f.dx, r.dx, N * In, 2e-6);
    CHECK_CLOSE(f.dh0, r.dh0, (size_t)B * H, 2e-6);
    CHECK_CLOSE(f.dc0, r.dc0, (size_t)B * H, 2e-6);
    if (peep) CHECK_CLOSE(f.g.peep, r.g.peep, (size_t)3 * H, 2e-6);
    if (ln) CHECK_CLOSE(f.g.ln, r.g.ln, (size_t)10 * H, 2e-6);
    /* a gradient that is all zero would compare equal to nothing useful: make sure these are not */
    double s = 0;
    for (size_t i = 0; i < (size_t)GH * H; i++) s += fabs(r.g.w_hh[i]);
    CHECK(s > 1e-3);
    layer_bufs_free(&f);
    layer_bufs_free(&r);
    free(w_ih), free(w_hh), free(b_ih), free(b_hh), free(x), free(dh_seq), free(peep), free(f.g.peep), free(r.g.peep);
    free(ln);
}

/* The row kernels without a bias (NULL, the adaptive softmax's tail): the same as with a zero one, at
 * lengths that leave vector remainders. */
static void test_row_kernels_nobias(void)
{
    for (int V = 1; V < 80; V += 7) {
        float *x = falloc((size_t)V), *y = falloc((size_t)V), *z = falloc((size_t)V), *db = falloc((size_t)V);
        fill(x, (size_t)V, 3.0f);
        memcpy(y, x, (size_t)V * sizeof *x);
        float m0 = lstm_row_bias_max(y, db /* zeros */, V), m1 = lstm_row_bias_max(x, NULL, V);
        CHECK(m0 == m1);
        CHECK(memcmp(x, y, (size_t)V * sizeof *x) == 0); /* read only, and + 0 changes nothing */
        float l = m1 + logf(lstm_row_sum_exp(x, m1, V));
        memcpy(z, x, (size_t)V * sizeof *x);
        lstm_row_softmax_grad(y, db, l, 0.5f, V);
        lstm_row_softmax_grad(z, NULL, l, 0.5f, V);
        CHECK(memcmp(y, z, (size_t)V * sizeof *z) == 0);
        double sum = 0;
        for (int j = 0; j < V; j++) sum += z[j];
        CHECK(fabs(sum - 0.5) < 1e-5);
        free(x), free(y), free(z), free(db);
    }
}

static void test_out_kernels(void)
{
    int N = 9, H = 13, V = 37;
    float *x = falloc((size_t)N * H), *w = falloc((size_t)V * H), *b = falloc(V);
    float *lf = falloc((size_t)N * V), *lr = falloc((size_t)N * V), *sf = falloc(N), *sr = falloc(N);
    float *dxf = falloc((size_t)N * H), *dxr = falloc((size_t)N * H), *dwf = falloc((size_t)V * H),
          *dwr = falloc((size_t)V * H), *dbf = falloc(V), *dbr = falloc(V);
    uint32_t tg[9] = {3, 0, 36, 1, 5, 0, 7, 7, 20};
    fill(x, (size_t)N * H, 1.0f), fill(w, (size_t)V * H, 1.0f), fill(b, V, 1.0f);
    fill(dwf, (size_t)V * H, 1.0f), fill(dbf, V, 1.0f);
    memcpy(dwr, dwf, (size_t)V * H * sizeof(float));
    memcpy(dbr, dbf, V * sizeof(float));
    double nf, nr;
    long cf, cr;
    lstm_out_forward(lf, sf, &nf, &cf, x, w, b, tg, N, H, V);
    lstm_out_forward_ref(lr, sr, &nr, &cr, x, w, b, tg, N, H, V);
    CHECK_CLOSE(lf, lr, (size_t)N * V, 1e-6);
    CHECK_CLOSE(sf, sr, N, 1e-6);
    CHECK_EQ_INT(cf, 7);
    CHECK_EQ_INT(cr, 7);
    CHECK_NEAR(nf, nr, 1e-5 * fabs(nr));
    lstm_out_backward(dxf, dwf, dbf, lf, sf, x, w, tg, 1.0f / 7, N, H, V);
    lstm_out_backward_ref(dxr, dwr, dbr, lr, sr, x, w, tg, 1.0f / 7, N, H, V);
    CHECK_CLOSE(lf, lr, (size_t)N * V, 1e-6);
    CHECK_CLOSE(dxf, dxr, (size_t)N * H, 2e-6);
    CHECK_CLOSE(dwf, dwr, (size_t)V * H, 2e-6);
    CHECK_CLOSE(dbf, dbr, V, 2e-6);
    /* rows of dlogits sum to 0 (softmax minus one-hot), masked rows are 0 */
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int v = 0; v < V; v++) s += lf[(size_t)n * V + v];
        CHECK_NEAR(s, 0.0, 1e-6);
        if (tg[n] == 0) CHECK(lf[(size_t)n * V + 3] == 0.0f);
    }
    float *p[] = {x, w, b, lf, lr, sf, sr, dxf, dxr, dwf, dwr, dbf, dbr};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

static void make_cfg(lstm_model_config *c, int cell, int tie, float dropout)
{
    lstm_model_config_default(c);
    c->cell = cell;
    c->peephole = cell == LSTM_CELL_LSTM && peep_all;
    c->attention = att_all;
    c->V = 29;
    c->E = tie ? 10 : 9;
    c->H = 10;
    c->L = 2;
    c->tie = tie;
    c->dropout = dropout;
    c->init_scale = 0.4f;
}

/* A random carried-in attention memory, lane b with b % (K+1) slots filled; then d = s lane by lane. */
static void fill_mem(lstm_state *s, lstm_state *d, float scale)
{
    if (s->K > 0) {
        fill(s->mem, (size_t)s->B * s->K * s->H, scale);
        for (int b = 0; b < s->B; b++) s->mlen[b] = (float)(b % (s->K + 1));
    }
    for (int b = 0; b < s->B; b++) lstm_state_copy_lane(d, b, s, b);
}

/* Two states' attention memories (and h*) agree. */
static void check_mem(const lstm_state *a, const lstm_state *b, double tol)
{
    if (a->K == 0) return;
    CHECK_CLOSE(a->mem, b->mem, (size_t)a->B * a->K * a->H, tol);
    CHECK_CLOSE(a->hout, b->hout, (size_t)a->B * a->H, tol);
    for (int i = 0; i < a->B; i++) CHECK(a->mlen[i] == b->mlen[i]);
}

static void random_tokens(uint32_t *ids, size_t n, int V, int pad_some)
{
    for (size_t i = 0; i < n; i++) ids[i] = lstm_rng_below(&R, (uint32_t)V);
    if (pad_some) ids[1] = ids[n - 1] = ids[n / 2] = 0;
}

/* The model with reference kernels vs the fast one: forward, loss, final state, all grads, dstate. */
static void test_model_fast_vs_ref(int cell, int tie)
{
    lstm_model_config c;
    make_cfg(&c, cell, tie, 0.3f);
    lstm_model mf, mr;
    CHECK_EQ_INT(lstm_model_create(&mf, &c), 0);
    CHECK_EQ_INT(lstm_model_create(&mr, &c), 0);
    lstm_rng_seed(&R, 11);
    lstm_model_init_params(&mf, &R);
    memcpy(mr.params, mf.params, mf.n_params * sizeof(float));
    mr.reference = 1;
    int B = 4, T = 6;
    lstm_acts af, ar;
    CHECK_EQ_INT(lstm_acts_alloc(&af, &mf, B, T), 0);
    CHECK_EQ_INT(lstm_acts_alloc(&ar, &mr, B, T), 0);
    /* the count lstm-train checks against memory is what the allocation takes */
    CHECK(lstm_acts_bytes(&mf, B, T) == (double)af.bytes);
    CHECK(lstm_acts_bytes(&mf, 0, T) == 0);
    lstm_rng r1, r2;
    lstm_rng_seed(&r1, 5), lstm_rng_seed(&r2, 5);
    lstm_model_sample_dropout(&mf, &af, &r1);
    lstm_model_sample_dropout(&mr, &ar, &r2);
    lstm_state sf, sr, df, dr;
    lstm_state_alloc(&sf, &mf, B), lstm_state_alloc(&sr, &mr, B);
    lstm_state_alloc(&df, &mf, B), lstm_state_alloc(&dr, &mr, B);
    size_t ns = (size_t)c.L * B * c.H;
    fill(sf.h, ns, 0.5f), fill(sf.c, ns, 0.5f);
    fill_mem(&sf, &sr, 0.5f);
    uint32_t in[24], tg[24];
    random_tokens(in, 24, c.V, 0);
    random_tokens(tg, 24, c.V, 1);
    double lf, lr;
    long cf, cr;
    CHECK_EQ_INT(lstm_model_forward(&mf, &af, &sf, in, tg, B, T, 1, &lf, &cf), 0);
    CHECK_EQ_INT(lstm_model_forward(&mr, &ar, &sr, in, tg, B, T, 1, &lr, &cr), 0);
    long want = 0;
    for (int i = 0; i < 24; i++) want += tg[i] != 0;
    CHECK(want <= 21);
    CHECK_EQ_INT(cf, want);
    CHECK_EQ_INT(cr, want);
    CHECK_NEAR(lf, lr, 1e-6 * lr);
    CHECK_CLOSE(af.logits, ar.logits, (size_t)B * T * c.V, 2e-6);
    CHECK_CLOSE(sf.h, sr.h, ns, 2e-6);
    CHECK_CLOSE(sf.c, sr.c, ns, 2e-6);
    check_mem(&sf, &sr, 2e-6);
    lstm_model_zero_grads(&mf), lstm_model_zero_grads(&mr);
    CHECK_EQ_INT(lstm_model_backward(&mf, &af, &df), 0);
    CHECK_EQ_INT(lstm_model_backward(&mr, &ar, &dr), 0);
    /* The LayerNorm LSTM divides by spreads (of a 9-wide embedding with 30% dropped, among others): the
     * float rounding of the fast kernels grows through it by a few times more than in the other cells. */
    double gtol = cell == LSTM_CELL_LNLSTM ? 2e-5 : 5e-6;
    for (int i = 0; i < mf.n_tensors; i++) {
        const lstm_tensor_info *t = lstm_model_tensor(&mf, i);
        double d = rel_diff(mf.grads + t->offset, mr.grads + t->offset, t->size);
        /* att.wh's gradient is what is left of the slots' nearly equal terms (W^h h enters them all) */
        if (!(d <= (strcmp(t->name, "att.wh") == 0 ? 4 * gtol : gtol))) {
            fprintf(stderr, "%s:%d: cell %d tie %d grad %s: rel diff %.3g\n", __FILE__, __LINE__, cell, tie,
                    t->name, d);
            check_failures++;
        }
    }
    CHECK_CLOSE(df.h, dr.h, ns, gtol);
    if (lstm_cell_has_c(cell)) CHECK_CLOSE(df.c, dr.c, ns, gtol);
    if (c.attention) {
        size_t nm = (size_t)B * c.attention * c.H;
        CHECK_CLOSE(df.mem, dr.mem, nm, gtol);
        double s = 0;
        for (size_t i = 0; i < nm; i++) s += fabs(dr.mem[i]);
        CHECK(s > 1e-4); /* the memory's gradient is not all zero */
    }
    lstm_state_free(&sf), lstm_state_free(&sr), lstm_state_free(&df), lstm_state_free(&dr);
    lstm_acts_free(&af), lstm_acts_free(&ar);
    lstm_model_free(&mf), lstm_model_free(&mr);
}

/* Backward only accumulates: forward+backward twice from the same state doubles every gradient. */
static void test_accumulate(void)
{
    lstm_model_config c;
    make_cfg(&c, LSTM_CELL_LSTM, 0, 0.0f);
    lstm_model m;
    lstm_model_create(&m, &c);
    lstm_model_init_params(&m, &R);
    lstm_acts a;
    lstm_state s;
    lstm_acts_alloc(&a, &m, 2, 3);
    lstm_state_alloc(&s, &m, 2);
    uint32_t in[6], tg[6];
    random_tokens(in, 6, c.V, 0), random_tokens(tg, 6, c.V, 0);
    lstm_model_zero_grads(&m);
    lstm_model_forward(&m, &a, &s, in, tg, 2, 3, 0, NULL, NULL);
    lstm_model_backward(&m, &a, NULL);
    float *g1 = falloc(m.n_params);
    memcpy(g1, m.grads, m.n_params * sizeof(float));
    for (size_t i = 0; i < m.n_params; i++) g1[i] *= 2.0f;
    lstm_state_zero(&s);
    lstm_model_forward(&m, &a, &s, in, tg, 2, 3, 0, NULL, NULL);
    lstm_model_backward(&m, &a, NULL);
    CHECK_CLOSE(m.grads, g1, m.n_params, 1e-6);
    /* padding between tensors stays zero */
    for (int i = 0; i + 1 < m.n_tensors; i++) {
        const lstm_tensor_info *t = &m.tensors[i];
        for (size_t k = t->offset + t->size; k < m.tensors[i + 1].offset; k++) CHECK(m.grads[k] == 0.0f);
    }
    free(g1);
    lstm_acts_free(&a);
    lstm_state_free(&s);
    lstm_model_free(&m);
}

/* Two windows of T with the carried state give the same outputs as one window of 2T. */
static void test_stateful_carry(int cell)
{
    lstm_model_config c;
    make_cfg(&c, cell, 0, 0.5f);
    lstm_model m;
    lstm_model_create(&m, &c);
    lstm_model_init_params(&m, &R);
    int B = 3, T = 4;
    lstm_acts a1, a2;
    lstm_acts_alloc(&a1, &m, B, 2 * T);
    lstm_acts_alloc(&a2, &m, B, T);
    lstm_model_sample_dropout(&m, &a1, &R); /* masks exist but train = 0 must ignore them */
    lstm_state s1, s2;
    lstm_state_alloc(&s1, &m, B), lstm_state_alloc(&s2, &m, B);
    uint32_t in[24], tg[24], w1[12], w2[12], t1[12], t2[12];
    random_tokens(in, 24, c.V, 0), random_tokens(tg, 24, c.V, 1);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            w1[b * T + t] = in[b * 2 * T + t], w2[b * T + t] = in[b * 2 * T + T + t];
            t1[b * T + t] = tg[b * 2 * T + t], t2[b * T + t] = tg[b * 2 * T + T + t];
        }
    double l, la, lb;
    long n, na, nb;
    CHECK_EQ_INT(lstm_model_forward(&m, &a1, &s1, in, tg, B, 2 * T, 0, &l, &n), 0);
    CHECK_EQ_INT(lstm_model_forward(&m, &a2, &s2, w1, t1, B, T, 0, &la, &na), 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            CHECK_CLOSE(lstm_acts_logits(&a2, &m, b, t), lstm_acts_logits(&a1, &m, b, t), (size_t)c.V, 1e-5);
    CHECK_EQ_INT(lstm_model_forward(&m, &a2, &s2, w2, t2, B, T, 0, &lb, &nb), 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            CHECK_CLOSE(lstm_acts_logits(&a2, &m, b, t), lstm_acts_logits(&a1, &m, b, T + t), (size_t)c.V, 1e-5);
    size_t ns = (size_t)c.L * B * c.H;
    CHECK_CLOSE(s2.h, s1.h, ns, 1e-5);
    CHECK_CLOSE(s2.c, s1.c, ns, 1e-5);
    check_mem(&s2, &s1, 1e-5);
    CHECK_EQ_INT(na + nb, n);
    CHECK_NEAR((la * na + lb * nb) / n, l, 1e-5);
    /* resetting one lane zeroes exactly that lane of every layer */
    lstm_state_reset_row(&s1, 1);
    for (int ly = 0; ly < c.L; ly++)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < c.H; j++) {
                size_t k = ((size_t)ly * B + b) * c.H + j;
                CHECK(b == 1 ? s1.h[k] == 0.0f && s1.c[k] == 0.0f : s1.h[k] == s2.h[k]);
            }
    if (c.attention) {
        CHECK(s1.mlen[1] == 0.0f && s1.mlen[0] == (float)c.attention);
        for (int k = 0; k < c.attention * c.H; k++) CHECK(s1.mem[(size_t)1 * c.attention * c.H + k] == 0.0f);
    }
    lstm_state_free(&s1), lstm_state_free(&s2);
    lstm_acts_free(&a1), lstm_acts_free(&a2);
    lstm_model_free(&m);
}

/* Forward with train = 0 ignores every regularizer: a model with all of them on, its masks drawn, gives
 * the logits, loss and state of the same weights without them, bit for bit; with train = 1 it differs. */
static void test_eval_unregularized(void)
{
    lstm_model_config c, r;
    make_cfg(&c, LSTM_CELL_LSTM, 0, 0.0f);
    r = c;
    r.dropout = 0.3f, r.locked = 1, r.dropout_in = 0.5f, r.dropout_hidden = 0.2f, r.dropout_words = 0.3f;
    r.weight_drop = 0.5f, r.ar = 2.0f, r.tar = 1.0f;
    lstm_model m, mr;
    CHECK_EQ_INT(lstm_model_create(&m, &c), 0);
    CHECK_EQ_INT(lstm_model_create(&mr, &r), 0);
    lstm_model_init_params(&m, &R);
    memcpy(mr.params, m.params, m.n_params * sizeof(float));
    int B = 3, T = 5;
    lstm_acts a, ar;
    lstm_state s, sr;
    CHECK_EQ_INT(lstm_acts_alloc(&a, &m, B, T), 0);
    CHECK_EQ_INT(lstm_acts_alloc(&ar, &mr, B, T), 0);
    lstm_state_alloc(&s, &m, B), lstm_state_alloc(&sr, &mr, B);
    lstm_model_sample_dropout(&mr, &ar, &R);
    uint32_t in[15], tg[15];
    random_tokens(in, 15, c.V, 0), random_tokens(tg, 15, c.V, 1);
    double l, lr;
    long n, nr;
    CHECK_EQ_INT(lstm_model_forward(&m, &a, &s, in, tg, B, T, 0, &l, &n), 0);
    CHECK_EQ_INT(lstm_model_forward(&mr, &ar, &sr, in, tg, B, T, 0, &lr, &nr), 0);
    CHECK(l == lr && n == nr);
    CHECK(lstm_model_reg_loss(&mr, &ar, 0, 0) == 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            CHECK(!memcmp(lstm_acts_logits(&a, &m, b, t), lstm_acts_logits(&ar, &mr, b, t), c.V * sizeof(float)));
    size_t ns = (size_t)c.L * B * c.H;
    CHECK(!memcmp(s.h, sr.h, ns * sizeof(float)) && !memcmp(s.c, sr.c, ns * sizeof(float)));
    lstm_state_zero(&sr);
    CHECK_EQ_INT(lstm_model_forward(&mr, &ar, &sr, in, tg, B, T, 1, &lr, &nr), 0);
    CHECK(lr != l);
    CHECK(lstm_model_reg_loss(&mr, &ar, 0, 0) > 0);
    lstm_state_free(&s), lstm_state_free(&sr);
    lstm_acts_free(&a), lstm_acts_free(&ar);
    lstm_model_free(&m), lstm_model_free(&mr);
}

/* The inference step (B = 1 gemv path and B = 3 gemm path) reproduces the window forward. */
static void test_infer(int cell, int B)
{
    lstm_model_config c;
    make_cfg(&c, cell, cell == LSTM_CELL_GRU, 0.0f);
    lstm_model m;
    lstm_model_create(&m, &c);
    lstm_model_init_params(&m, &R);
    int T = 5;
    lstm_acts a;
    lstm_acts_alloc(&a, &m, B, T);
    lstm_state s1, s2;
    lstm_state_alloc(&s1, &m, B), lstm_state_alloc(&s2, &m, B);
    size_t ns = (size_t)c.L * B * c.H;
    fill(s1.h, ns, 0.5f), fill(s1.c, ns, 0.5f);
    fill_mem(&s1, &s2, 0.5f);
    uint32_t in[15], tok[3];
    random_tokens(in, (size_t)B * T, c.V, 0);
    CHECK_EQ_INT(lstm_model_forward(&m, &a, &s1, in, NULL, B, T, 0, NULL, NULL), 0);
    lstm_infer inf;
    CHECK_EQ_INT(lstm_infer_alloc(&inf, &m, B), 0);
    float *lg = falloc((size_t)B * c.V);
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++) tok[b] = in[b * T + t];
        CHECK_EQ_INT(lstm_infer_step(&inf, &s2, tok, t == 2 ? NULL : lg), 0);
        if (t == 2) continue;
        for (int b = 0; b < B; b++)
            CHECK_CLOSE(lg + (size_t)b * c.V, lstm_acts_logits(&a, &m, b, t), (size_t)c.V, 1e-5);
    }
    CHECK_CLOSE(s2.h, s1.h, ns, 1e-5);
    if (lstm_cell_has_c(cell)) CHECK_CLOSE(s2.c, s1.c, ns, 1e-5);
    check_mem(&s2, &s1, 1e-5);
    tok[0] = (uint32_t)c.V;
    CHECK_EQ_INT(lstm_infer_step(&inf, &s2, tok, lg), LSTM_E_RANGE);
    free(lg);
    lstm_infer_free(&inf);
    lstm_state_free(&s1), lstm_state_free(&s2);
    lstm_acts_free(&a);
    lstm_model_free(&m);
}

/* One lane over T tokens at once (lstm_infer_seq) equals T single steps: every per-token state, the
 * final state and the last logits; T above the buffers' lanes and bad ids are refused. */
static void test_infer_seq(int cell)
{
    lstm_model_config c;
    make_cfg(&c, cell, 0, 0.0f);
    c.E = c.H + 3; /* input width differs from the hidden width */
    lstm_model m;
    CHECK_EQ_INT(lstm_model_create(&m, &c), 0);
    lstm_model_init_params(&m, &R);
    enum { T = 7 };
    size_t LH = (size_t)c.L * c.H;
    lstm_state s1, s2;
    lstm_state_alloc(&s1, &m, 1), lstm_state_alloc(&s2, &m, 1);
    fill(s1.h, LH, 0.3f), fill(s1.c, LH, 0.3f);
    memcpy(s2.h, s1.h, LH * sizeof(float));
    memcpy(s2.c, s1.c, LH * sizeof(float));
    uint32_t in[T];
    random_tokens(in, T, c.V, 1);
    lstm_infer one, seq;
    CHECK_EQ_INT(lstm_infer_alloc(&one, &m, 1), 0);
    CHECK_EQ_INT(lstm_infer_alloc(&seq, &m, T), 0);
    float *lg1 = falloc((size_t)c.V), *lg2 = falloc((size_t)c.V), *hs = falloc(T * LH), *cs = falloc(T * LH);
    CHECK_EQ_INT(lstm_infer_seq(&seq, &s2, in, T, hs, cs, lg2), 0);
    for (int t = 0; t < T; t++) {
        CHECK_EQ_INT(lstm_infer_step(&one, &s1, &in[t], t == T - 1 ? lg1 : NULL), 0);
        CHECK_CLOSE(hs + t * LH, s1.h, LH, 1e-5);
        if (lstm_cell_has_c(cell)) CHECK_CLOSE(cs + t * LH, s1.c, LH, 1e-5);
    }
    CHECK_CLOSE(s2.h, s1.h, LH, 1e-5);
    check_mem(&s2, &s1, 1e-5);
    CHECK_CLOSE(lg2, lg1, (size_t)c.V, 1e-5);
    if (c.attention) { /* the memory rebuilt from the per-token states (the session's restore) */
        lstm_state s3;
        lstm_state_alloc(&s3, &m, 1);
        lstm_state_set_memory(&s3, 0, hs + (size_t)(c.L - 1) * c.H, LH, T);
        CHECK_CLOSE(s3.mem, s1.mem, (size_t)c.attention * c.H, 1e-5);
        CHECK(s3.mlen[0] == s1.mlen[0]);
        lstm_state_free(&s3);
    }
    CHECK_EQ_INT(lstm_infer_seq(&seq, &s2, in, T + 1, NULL, NULL, NULL), LSTM_E_ARG);
    in[3] = (uint32_t)c.V;
    CHECK_EQ_INT(lstm_infer_seq(&seq, &s2, in, T, NULL, NULL, NULL), LSTM_E_RANGE);
    free(lg1), free(lg2), free(hs), free(cs);
    lstm_infer_free(&one), lstm_infer_free(&seq);
    lstm_state_free(&s1), lstm_state_free(&s2);
    lstm_model_free(&m);
}

static void test_layout_and_view(void)
{
    lstm_model_config c;
    make_cfg(&c, LSTM_CELL_GRU, 0, 0.0f);
    lstm_model m, v;
    CHECK_EQ_INT(lstm_model_create(&m, &c), 0);
    CHECK_EQ_INT(lstm_model_num_tensors(&m), 1 + 4 * 2 + 2);
    const char *names[] = {"emb",     "l0.w_ih", "l0.w_hh", "l0.b_ih", "l0.b_hh", "l1.w_ih",
                           "l1.w_hh", "l1.b_ih", "l1.b_hh", "out.w",   "out.b"};
    int G = 3, H = c.H;
    int shapes[][2] = {{c.V, c.E}, {G * H, c.E}, {G * H, H}, {G * H, 1}, {G * H, 1}, {G * H, H},
                       {G * H, H}, {G * H, 1},   {G * H, 1}, {c.V, H},   {c.V, 1}};
    size_t weights = 0, end = 0;
    for (int i = 0; i < lstm_model_num_tensors(&m); i++) {
        const lstm_tensor_info *t = lstm_model_tensor(&m, i);
        CHECK(strcmp(t->name, names[i]) == 0);
        CHECK_EQ_INT(t->shape[0], shapes[i][0]);
        CHECK_EQ_INT(t->shape[1], shapes[i][1]);
        CHECK_EQ_INT(t->ndim, shapes[i][1] == 1 ? 1 : 2);
        CHECK_EQ_INT(t->offset % 16, 0);
        CHECK(t->offset >= end);
        end = t->offset + t->size;
        weights += t->size;
        CHECK_EQ_INT(lstm_model_find_tensor(&m, names[i]), i);
    }
    CHECK(end <= lstm_model_num_params(&m));
    CHECK_EQ_INT(lstm_model_num_params(&m) % 16, 0);
    CHECK_EQ_INT(lstm_model_num_weights(&m), weights);
    CHECK_EQ_INT(lstm_model_find_tensor(&m, "nope"), -1);
    CHECK(lstm_model_tensor(&m, 99) == NULL);
    CHECK_EQ_INT((uintptr_t)m.params % 64, 0);
    /* LSTM init: forget bias in b_ih's f block only, other biases zero, weights within the scale */
    lstm_model l4;
    lstm_model_config c4 = c;
    c4.cell = LSTM_CELL_LSTM;
    c4.forget_bias = 1.5f;
    CHECK_EQ_INT(lstm_model_create(&l4, &c4), 0);
    lstm_model_init_params(&l4, &R);
    const float *bi = l4.params + l4.tensors[lstm_model_find_tensor(&l4, "l1.b_ih")].offset;
    const float *bh = l4.params + l4.tensors[lstm_model_find_tensor(&l4, "l1.b_hh")].offset;
    for (int j = 0; j < 4 * H; j++) {
        CHECK(bi[j] == (j >= H && j < 2 * H ? 1.5f : 0.0f));
        CHECK(bh[j] == 0.0f);
    }
    const lstm_tensor_info *we = lstm_model_tensor(&l4, 0);
    float mx = 0;
    for (size_t k = 0; k < we->size; k++) mx = fabsf(l4.params[we->offset + k]) > mx ? fabsf(l4.params[we->offset + k]) : mx;
    CHECK(mx <= c4.init_scale && mx > 0.8f * c4.init_scale);
    lstm_model_free(&l4);
    /* tied: no out.w; E != H is refused */
    lstm_model t;
    lstm_model_config ct = c;
    ct.tie = 1;
    CHECK_EQ_INT(lstm_model_create(&t, &ct), LSTM_E_ARG);
    ct.E = ct.H;
    CHECK_EQ_INT(lstm_model_create(&t, &ct), 0);
    CHECK_EQ_INT(lstm_model_num_tensors(&t), 10);
    CHECK_EQ_INT(lstm_model_find_tensor(&t, "out.w"), -1);
    lstm_model_free(&t);
    ct.dropout = 1.0f;
    CHECK_EQ_INT(lstm_model_config_check(&ct), LSTM_E_ARG);
    ct.dropout = 0.0f, ct.cell = 7;
    CHECK_EQ_INT(lstm_model_config_check(&ct), LSTM_E_ARG);
    ct.cell = 0, ct.L = LSTM_MAX_LAYERS + 1;
    CHECK_EQ_INT(lstm_model_config_check(&ct), LSTM_E_ARG);
    /* a view over a copy of the parameters computes the same logits; unaligned memory is refused */
    lstm_model_init_params(&m, &R);
    float *copy = aligned_alloc(64, m.n_params * sizeof(float));
    memcpy(copy, m.params, m.n_params * sizeof(float));
    CHECK_EQ_INT(lstm_model_init_view(&v, &c, copy + 1), LSTM_E_ARG);
    CHECK_EQ_INT(lstm_model_init_view(&v, &c, copy), 0);
    CHECK(v.grads == NULL);
    lstm_acts a1, a2;
    lstm_state s1, s2;
    lstm_acts_alloc(&a1, &m, 2, 3), lstm_acts_alloc(&a2, &v, 2, 3);
    lstm_state_alloc(&s1, &m, 2), lstm_state_alloc(&s2, &v, 2);
    uint32_t in[6], tg[6];
    random_tokens(in, 6, c.V, 0), random_tokens(tg, 6, c.V, 0);
    double l1, l2;
    CHECK_EQ_INT(lstm_model_forward(&m, &a1, &s1, in, tg, 2, 3, 0, &l1, NULL), 0);
    CHECK_EQ_INT(lstm_model_forward(&v, &a2, &s2, in, tg, 2, 3, 0, &l2, NULL), 0);
    CHECK(l1 == l2);
    CHECK_CLOSE(a2.logits, a1.logits, (size_t)6 * c.V, 0.0);
    CHECK_EQ_INT(lstm_model_backward(&v, &a2, NULL), LSTM_E_ARG);
    /* argument and range errors */
    in[4] = (uint32_t)c.V;
    CHECK_EQ_INT(lstm_model_forward(&m, &a1, &s1, in, tg, 2, 3, 0, &l1, NULL), LSTM_E_RANGE);
    in[4] = 1, tg[0] = 1000;
    CHECK_EQ_INT(lstm_model_forward(&m, &a1, &s1, in, tg, 2, 3, 0, &l1, NULL), LSTM_E_RANGE);
    CHECK_EQ_INT(lstm_model_forward(&m, &a1, &s1, in, NULL, 2, 4, 0, NULL, NULL), LSTM_E_ARG);
    CHECK_EQ_INT(lstm_model_forward(&m, &a1, &s1, in, NULL, 1, 3, 0, NULL, NULL), LSTM_E_ARG); /* state B */
    CHECK_EQ_INT(lstm_model_forward(&m, &a1, &s1, in, NULL, 2, 3, 0, NULL, NULL), 0);
    CHECK_EQ_INT(lstm_model_backward(&m, &a1, NULL), LSTM_E_ARG); /* no targets */
    lstm_acts_free(&a1), lstm_acts_free(&a2);
    lstm_state_free(&s1), lstm_state_free(&s2);
    lstm_model_free(&v);
    free(copy);
    lstm_model_free(&m);
}

static void test_optim(void)
{
    lstm_optim o;
    float p[2], g[2];
    /* SGD: p -= lr * (g + wd * p) */
    CHECK_EQ_INT(lstm_optim_init(&o, LSTM_OPT_SGD, 2), 0);
    CHECK_EQ_INT(lstm_optim_state_floats(&o), 0);
    p[0] = 1, p[1] = 2, g[0] = 0.5f, g[1] = -1;
    lstm_optim_step(&o, p, g, 0.1f);
    CHECK_NEAR(p[0], 0.95, 1e-7);
    CHECK_NEAR(p[1], 2.1, 1e-6);
    o.weight_decay = 0.1f, p[0] = 1;
    lstm_optim_step(&o, p, g, 0.1f);
    CHECK_NEAR(p[0], 0.94, 1e-7);
    lstm_optim_free(&o);
    /* Adam, constant gradient 0.5, lr 0.1: the bias-corrected step is lr * sign(g) each time, so 1 -> 0.9
     * -> 0.8 (m1 = 0.05, v1 = 2.5e-4; m2 = 0.095, v2 = 4.9975e-4, corrected 0.5 and 0.25). */
    CHECK_EQ_INT(lstm_optim_init(&o, LSTM_OPT_ADAM, 2), 0);
    CHECK_EQ_INT(lstm_optim_state_floats(&o), 2);
    p[0] = 1, p[1] = -3, g[0] = 0.5f, g[1] = -2;
    lstm_optim_step(&o, p, g, 0.1f);
    CHECK_NEAR(o.m[0], 0.05, 1e-8);
    CHECK_NEAR(o.v[0], 2.5e-4, 1e-10);
    CHECK_NEAR(p[0], 0.9, 1e-6);
    CHECK_NEAR(p[1], -2.9, 1e-6);
    lstm_optim_step(&o, p, g, 0.1f);
    CHECK_EQ_INT(o.step, 2);
    CHECK_NEAR(o.m[0], 0.095, 1e-8);
    CHECK_NEAR(o.v[0], 4.9975e-4, 1e-10);
    CHECK_NEAR(p[0], 0.8, 1e-6);
    /* a third step with g = 0: m3 = 0.0855, v3 = 4.99250e-4; corrected m 0.0855/0.271, v 4.9925e-4/0.002997 */
    g[0] = 0.0f;
    lstm_optim_step(&o, p, g, 0.1f);
    double mh = 0.0855 / (1 - 0.729), vh = 4.99250250e-4 / (1 - pow(0.999, 3));
    CHECK_NEAR(p[0], 0.8 - 0.1 * mh / (sqrt(vh) + 1e-8), 1e-6);
    lstm_optim_free(&o);
    /* AdamW: p *= 1 - lr * wd first, then the Adam step: 1 * 0.99 - 0.1 = 0.89 */
    CHECK_EQ_INT(lstm_optim_init(&o, LSTM_OPT_ADAMW, 1), 0);
    o.weight_decay = 0.1f;
    p[0] = 1, g[0] = 0.5f;
    lstm_optim_step(&o, p, g, 0.1f);
    CHECK_NEAR(p[0], 0.89, 1e-6);
    lstm_optim_free(&o);
    /* Adam with L2: the gradient becomes 0.5 + 0.1 * 1; first step still lr * sign */
    CHECK_EQ_INT(lstm_optim_init(&o, LSTM_OPT_ADAM, 1), 0);
    o.weight_decay = 0.1f;
    p[0] = 1, g[0] = 0.5f;
    lstm_optim_step(&o, p, g, 0.1f);
    CHECK_NEAR(o.m[0], 0.06, 1e-8);
    CHECK_NEAR(p[0], 0.9, 1e-6);
    lstm_optim_free(&o);
    CHECK_EQ_INT(lstm_optim_init(&o, 9, 1), LSTM_E_ARG);
    /* clipping */
    g[0] = 3, g[1] = 4;
    CHECK_NEAR(lstm_optim_clip(g, 2, 10.0), 5.0, 1e-12);
    CHECK(g[0] == 3.0f && g[1] == 4.0f);
    CHECK_NEAR(lstm_optim_clip(g, 2, 1.0), 5.0, 1e-12);
    CHECK_NEAR(g[0], 0.6, 1e-7);
    CHECK_NEAR(g[1], 0.8, 1e-7);
    CHECK_NEAR(lstm_optim_clip(g, 2, 0.0), 1.0, 1e-7); /* 0: norm only */
    g[1] = NAN;
    CHECK(isnan(lstm_optim_clip(g, 2, 1.0)));
    /* per-tensor norms */
    lstm_model_config c;
    make_cfg(&c, LSTM_CELL_RNN, 1, 0.0f);
    lstm_model m;
    lstm_model_create(&m, &c);
    m.grads[m.tensors[0].offset] = 3, m.grads[m.tensors[0].offset + 5] = 4;
    m.grads[m.tensors[m.n_tensors - 1].offset + 2] = -2;
    double norms[LSTM_MAX_TENSORS];
    lstm_optim_tensor_norms(norms, &m);
    CHECK_NEAR(norms[0], 5.0, 1e-12);
    CHECK_NEAR(norms[1], 0.0, 1e-12);
    CHECK_NEAR(norms[m.n_tensors - 1], 2.0, 1e-12);
    lstm_model_free(&m);
}

static void test_schedules(void)
{
    lstm_sched s;
    lstm_sched_init(&s, LSTM_SCHED_STEP, 1.0); /* Zaremba: lr 1 for 4 epochs, then halve each epoch */
    for (int e = 1; e <= 4; e++) CHECK_NEAR(lstm_sched_lr(&s, e, 1000), 1.0, 0);
    CHECK_NEAR(lstm_sched_lr(&s, 5, 0), 0.5, 1e-15);
    CHECK_NEAR(lstm_sched_lr(&s, 6, 0), 0.25, 1e-15);
    CHECK_NEAR(lstm_sched_lr(&s, 13, 0), 1.0 / 512, 1e-15);
    lstm_sched_init(&s, LSTM_SCHED_CONST, 0.3);
    CHECK_NEAR(lstm_sched_lr(&s, 9, 99999), 0.3, 0);
    lstm_sched_init(&s, LSTM_SCHED_COSINE, 1.0);
    s.warmup = 10, s.total = 110, s.min_lr = 0.0;
    CHECK_NEAR(lstm_sched_lr(&s, 1, 0), 0.1, 1e-12);
    CHECK_NEAR(lstm_sched_lr(&s, 1, 9), 1.0, 1e-12);
    CHECK_NEAR(lstm_sched_lr(&s, 1, 10), 1.0, 1e-12);
    CHECK_NEAR(lstm_sched_lr(&s, 1, 60), 0.5, 1e-12);
    CHECK_NEAR(lstm_sched_lr(&s, 1, 85), 0.5 * (1 + cos(M_PI * 0.75)), 1e-12);
    CHECK_NEAR(lstm_sched_lr(&s, 1, 110), 0.0, 1e-12);
    CHECK_NEAR(lstm_sched_lr(&s, 1, 500), 0.0, 1e-12);
    lstm_sched_init(&s, LSTM_SCHED_PLATEAU, 1.0);
    s.patience = 1;
    double losses[] = {5, 4, 4.5, 4.6, 3, 3, 3}, lrs[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.25};
    for (int i = 0; i < 7; i++) {
        lstm_sched_epoch_end(&s, losses[i]);
        CHECK_NEAR(lstm_sched_lr(&s, i + 2, 0), lrs[i], 1e-15);
    }
    lstm_early e;
    lstm_early_init(&e, 2);
    CHECK_EQ_INT(lstm_early_update(&e, 5.0), 0);
    CHECK(e.improved);
    CHECK_EQ_INT(lstm_early_update(&e, 4.0), 0);
    CHECK_EQ_INT(lstm_early_update(&e, 4.1), 0);
    CHECK(!e.improved);
    CHECK_EQ_INT(lstm_early_update(&e, 4.0), 1);
    CHECK_NEAR(e.best, 4.0, 0);
}

/* A batch split over ranks: each share's dropout masks are the whole batch's for its lanes (and the
 * stream moves as far), and the shares' gradients, each normalised by the whole batch's targets and
 * reported range by range, add up to the whole batch's gradient. awd: with locked dropout at three
 * rates, word dropout, weight drop, AR and TAR (and PAD inputs), whose per-window masks every share
 * draws whole, and whose AR / TAR terms, over the whole batch's rows and pairs, add up as well. */
static void ready_count(void *ctx, size_t off, size_t n)
{
    unsigned char *seen = ctx;
    for (size_t i = off; i < off + n; i++) seen[i]++;
}

static void test_split_batch(int tie, int awd)
{
    lstm_model_config c;
    make_cfg(&c, LSTM_CELL_LSTM, tie, 0.4f);
    if (awd) {
        c.locked = 1, c.dropout_in = 0.5f, c.dropout_hidden = 0.2f, c.dropout_words = 0.3f, c.weight_drop = 0.5f;
        c.ar = 2.0f, c.tar = 1.0f;
    }
    lstm_model m;
    CHECK_EQ_INT(lstm_model_create(&m, &c), 0);
    lstm_rng_seed(&R, 21);
    lstm_model_init_params(&m, &R);
    enum { Bg = 5, T = 4 };
    uint32_t in[Bg * T], tg[Bg * T];
    random_tokens(in, Bg * T, c.V, awd);
    random_tokens(tg, Bg * T, c.V, 1);
    long rows, pairs;
    lstm_model_reg_counts(in, Bg, T, &rows, &pairs);
    long want_rows = 0, want_pairs = 0;
    for (int b = 0; b < Bg; b++)
        for (int t = 0; t < T; t++) {
            want_rows += in[b * T + t] != 0;
            want_pairs += t > 0 && in[b * T + t] != 0 && in[b * T + t - 1] != 0;
        }
    CHECK_EQ_INT(rows, want_rows);
    CHECK_EQ_INT(pairs, want_pairs);
    CHECK(!awd || rows < Bg * T);
    lstm_acts whole;
    lstm_state st;
    CHECK_EQ_INT(lstm_acts_alloc(&whole, &m, Bg, T), 0);
    CHECK_EQ_INT(lstm_state_alloc(&st, &m, Bg), 0);
    lstm_rng r0;
    lstm_rng_seed(&r0, 7);
    lstm_model_sample_dropout(&m, &whole, &r0);
    if (!awd) { /* the stream of the masks before the regularizers came: one draw per element, in order */
        lstm_rng q;
        lstm_rng_seed(&q, 7);
        size_t N = (size_t)Bg * T;
        float *mk[3] = {whole.mask_emb, whole.mask_mid[1], whole.mask_out};
        size_t len[3] = {N * c.E, N * c.H, N * c.H};
        int same = 1;
        for (int i = 0; i < 3; i++)
            for (size_t k = 0; k < len[i]; k++) same &= mk[i][k] == (lstm_rng_uniform(&q) < 0.4f ? 0.0f : 1.0f / 0.6f);
        CHECK(same && q.s == r0.s);
    } else { /* locked: a lane's mask at every step is its mask at step 0; words and w_hh: 0 or 1/(1-p) */
        for (int t = 1; t < T; t++)
            for (int b = 0; b < Bg; b++) {
                size_t r = (size_t)t * Bg + b;
                CHECK(!memcmp(whole.mask_emb + r * c.E, whole.mask_emb + (size_t)b * c.E, c.E * sizeof(float)));
                CHECK(!memcmp(whole.mask_mid[1] + r * c.H, whole.mask_mid[1] + (size_t)b * c.H, c.H * sizeof(float)));
                CHECK(!memcmp(whole.mask_out + r * c.H, whole.mask_out + (size_t)b * c.H, c.H * sizeof(float)));
            }
        int zeros = 0;
        for (int v = 0; v < c.V; v++) {
            CHECK(whole.mask_words[v] == 0.0f || whole.mask_words[v] == 1.0f / 0.7f);
            zeros += whole.mask_words[v] == 0.0f;
        }
        CHECK(zeros > 0 && zeros < c.V);
        for (size_t k = 0, n = (size_t)4 * c.H * c.H; k < n; k++)
            CHECK(whole.mask_whh[1][k] == 0.0f || whole.mask_whh[1][k] == 2.0f);
        CHECK(memcmp(whole.mask_whh[0], whole.mask_whh[1], (size_t)4 * c.H * c.H * sizeof(float)) != 0);
    }
    double loss;
    long cnt;
    lstm_state_zero(&st);
    CHECK_EQ_INT(lstm_model_forward(&m, &whole, &st, in, tg, Bg, T, 1, &loss, &cnt), 0);
    CHECK_EQ_INT(whole.ar_rows, awd ? rows : 0);
    CHECK_EQ_INT(whole.tar_pairs, awd ? pairs : 0);
    double reg = lstm_model_reg_loss(&m, &whole, 0, 0), reg_sum = 0;
    CHECK(awd ? reg > 0 : reg == 0);
    lstm_model_zero_grads(&m);
    CHECK_EQ_INT(lstm_model_backward(&m, &whole, NULL), 0);
    float *want = malloc(m.n_params * sizeof(float)), *sum = calloc(m.n_params, sizeof(float));
    unsigned char *seen = calloc(m.n_params, 1);
    CHECK(want && sum && seen);
    memcpy(want, m.grads, m.n_params * sizeof(float));
    for (int r = 0; r < 2; r++) { /* shares: lanes 0, 2, 4 and lanes 1, 3 */
        int B = (Bg - r + 1) / 2;
        lstm_acts a;
        lstm_state s;
        CHECK_EQ_INT(lstm_acts_alloc(&a, &m, B, T), 0);
        CHECK_EQ_INT(lstm_state_alloc(&s, &m, B), 0);
        lstm_rng rr;
        lstm_rng_seed(&rr, 7);
        lstm_model_sample_dropout_lanes(&m, &a, &rr, Bg, r, 2);
        CHECK(rr.s == r0.s);
        uint32_t pin[Bg * T], ptg[Bg * T];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int g = r + 2 * b;
                pin[b * T + t] = in[g * T + t];
                ptg[b * T + t] = tg[g * T + t];
                size_t lr = (size_t)t * B + b, wr = (size_t)t * Bg + g;
                for (int k = 0; k < c.E; k++) CHECK(a.mask_emb[lr * c.E + k] == whole.mask_emb[wr * c.E + k]);
                for (int k = 0; k < c.H; k++) {
                    CHECK(a.mask_mid[1][lr * c.H + k] == whole.mask_mid[1][wr * c.H + k]);
                    CHECK(a.mask_out[lr * c.H + k] == whole.mask_out[wr * c.H + k]);
                }
            }
        if (awd) {
            CHECK(!memcmp(a.mask_words, whole.mask_words, c.V * sizeof(float)));
            for (int l = 0; l < c.L; l++)
                CHECK(!memcmp(a.mask_whh[l], whole.mask_whh[l], (size_t)4 * c.H * c.H * sizeof(float)));
        }
        double l;
        long n;
        lstm_state_zero(&s);
        CHECK_EQ_INT(lstm_model_forward(&m, &a, &s, pin, ptg, B, T, 1, &l, &n), 0);
        lstm_model_zero_grads(&m);
        lstm_norms nm = {cnt, rows, pairs};
        reg_sum += lstm_model_reg_loss(&m, &a, rows, pairs);
        CHECK_EQ_INT(lstm_model_backward_ex(&m, &a, NULL, &nm, ready_count, seen), 0);
        for (size_t i = 0; i < m.n_params; i++) sum[i] += m.grads[i];
        lstm_acts_free(&a);
        lstm_state_free(&s);
    }
    double worst = 0, top = 0;
    for (size_t i = 0; i < m.n_params; i++) {
        CHECK(seen[i] == 2); /* every float reported once per backward */
        double d = fabs((double)sum[i] - want[i]);
        if (d > worst) worst = d;
        if (fabs(want[i]) > top) top = fabs(want[i]);
    }
    CHECK(top > 0);
    CHECK(worst <= 1e-6 * top);
    CHECK_NEAR(reg_sum, reg, 1e-9 * reg);
    free(want);
    free(sum);
    free(seen);
    lstm_acts_free(&whole);
    lstm_state_free(&st);
    lstm_model_free(&m);
}

/* The model-level checks of one cell: fast vs reference, state carried across windows, the one-token
 * and sequence inference paths against the window path. */
static void test_model_paths(int cell)
{
    for (int tie = 0; tie < 2; tie++) test_model_fast_vs_ref(cell, tie);
    test_stateful_carry(cell);
    test_infer(cell, 1);
    test_infer(cell, 3);
    test_infer_seq(cell);
}

int main(void)
{
    lstm_set_threads(1);
    lstm_rng_seed(&R, 42);
    test_vector_math();
    for (int cell = 0; cell < LSTM_N_CELLS; cell++) {
        test_cell_kernels(cell);
        test_model_paths(cell);
    }
    /* the same for the LSTM with peepholes */
    peep_all = 1;
    test_cell_kernels(LSTM_CELL_LSTM);
    test_model_paths(LSTM_CELL_LSTM);
    peep_all = 0;
    /* attention over the last 3 top outputs (windows of 4-8, so the memory crosses windows), on every cell */
    att_all = 3;
    for (int cell = 0; cell < LSTM_N_CELLS; cell++) test_model_paths(cell);
    att_all = 0;
    test_out_kernels();
    test_row_kernels_nobias();
    test_accumulate();
    test_layout_and_view();
    test_optim();
    test_schedules();
    test_split_batch(0, 0);
    test_split_batch(1, 0);
    test_split_batch(0, 1);
    test_split_batch(1, 1);
    test_eval_unregularized();
    /* make unit runs this once per kernel variant (LSTM_KERNEL): the one asked for must be the one run */
    const char *want = getenv("LSTM_KERNEL");
    if (want) CHECK(strncmp(lstm_gemm_kernel(), want, strlen(want)) == 0);
    printf("test_kernels: kernel %s\n", lstm_gemm_kernel());
    CHECK_DONE("test_kernels");
}
