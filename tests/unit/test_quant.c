/* test_quant.c: the quantized kernels and the exported model file.
 *
 * - int8 rows: |w - q * scale| <= scale / 2 (+ a few float ulps of w), q in [-127, 127], the row's
 *   largest |w| quantized to +-127; bf16: relative error <= 2^-8, ties to even, NaN and Inf kept.
 * - The AVX2 GEMV against the scalar reference on random matrices of odd sizes (every tail length of
 *   the 8-wide loop and of the 4-row blocks): both within 2 * cols * 2^-24 * sum_j |w_j x_j| of the
 *   product computed in double, so within twice that of each other (float sums in different orders;
 *   the bound is the classic one of a float dot product). Row dequantization: bit-identical.
 * - A model whose embedding and output weight are quantized: lstm_infer_step's logits through the
 *   quantized kernels against the fp32 path over the dequantized weights, within the same bound.
 * - lstm_modelfile_export: none keeps the parameters bit for bit; int8 / bf16 read back as the
 *   quantization of the parameters (the rest bit for bit; the fp32 copy of the quantized ones made by
 *   the first window forward), with no training state; a flipped byte is LSTM_E_CORRUPT, a truncated
 *   file LSTM_E_TRUNCATED, a NaN or Inf LSTM_E_NAN naming the tensor.
 *
 * `test_quant bench` prints the GEMV microseconds (fp32 sgemv, scalar and AVX2 int8 / bf16) on the
 * PTB small model's output layer (10000 x 200), for tests/bench/quant.sh; never part of the tests. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "model.h"
#include "modelfile.h"
#include "quant.h"
#include "rng.h"

static char dir[] = "/tmp/test_quantXXXXXX";

static float urand(lstm_rng *r, float a) { return a * (2.0f * lstm_rng_uniform(r) - 1.0f); }

static void test_int8_round_trip(void)
{
    lstm_rng r;
    lstm_rng_seed(&r, 11);
    static const int sizes[][2] = {{1, 1}, {3, 7}, {5, 9}, {13, 31}, {7, 200}, {97, 33}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int R = sizes[s][0], C = sizes[s][1];
        float *W = malloc(sizeof *W * (size_t)R * C), *sc = malloc(sizeof *sc * (size_t)R);
        int8_t *q = malloc((size_t)R * C);
        for (int i = 0; i < R * C; i++) W[i] = urand(&r, i % 5 == 0 ? 3.0f : 0.05f);
        if (R > 2) for (int j = 0; j < C; j++) W[2 * C + j] = 0.0f; /* an all-zero row: scale 0, q 0 */
        lstm_quant_int8(q, sc, W, R, C);
        for (int i = 0; i < R; i++) {
            float mx = 0.0f;
            int qmax = 0;
            for (int j = 0; j < C; j++) {
                float w = W[(size_t)i * C + j];
                int qq = q[(size_t)i * C + j];
                mx = fabsf(w) > mx ? fabsf(w) : mx;
                qmax = abs(qq) > qmax ? abs(qq) : qmax;
                CHECK(qq >= -127 && qq <= 127);
                float err = fabsf(w - (float)qq * sc[i]);
                CHECK(err <= sc[i] * 0.5f * (1.0f + 1e-5f) + fabsf(w) * 1e-6f);
            }
            CHECK(sc[i] == mx / 127.0f);
            CHECK_EQ_INT(qmax, mx > 0.0f ? 127 : 0);
        }
        free(W);
        free(sc);
        free(q);
    }
}

static uint32_t bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    return b;
}

static float from_bits(uint32_t b)
{
    float x;
    memcpy(&x, &b, 4);
    return x;
}

static void test_bf16(void)
{
    lstm_rng r;
    lstm_rng_seed(&r, 12);
    for (int i = 0; i < 100000; i++) {
        float x = urand(&r, 1.0f) * powf(2.0f, (float)(i % 60) - 30.0f);
        float y = lstm_bf16_to_f32(lstm_bf16_from_f32(x));
        CHECK(fabsf(x - y) <= fabsf(x) * 0x1p-8f);
    }
    /* ties go to the even upper half; just above a tie rounds up */
    CHECK_EQ_INT(lstm_bf16_from_f32(from_bits(0x3f808000u)), 0x3f80);
    CHECK_EQ_INT(lstm_bf16_from_f32(from_bits(0x3f818000u)), 0x3f82);
    CHECK_EQ_INT(lstm_bf16_from_f32(from_bits(0x3f808001u)), 0x3f81);
    CHECK_EQ_INT(lstm_bf16_from_f32(INFINITY), 0x7f80);
    CHECK(isnan(lstm_bf16_to_f32(lstm_bf16_from_f32(NAN))));
    CHECK(lstm_bf16_to_f32(lstm_bf16_from_f32(-0.0f)) == 0.0f && (bits(lstm_bf16_to_f32(lstm_bf16_from_f32(-0.0f))) >> 31));
}

/* y (R) = W x in double over the dequantized weights, and sum_j |w_j x_j| per row. */
static void exact_gemv(double *y, double *mag, const lstm_qmat *W, const float *x)
{
    float *row = malloc(sizeof *row * (size_t)W->cols);
    for (int i = 0; i < W->rows; i++) {
        lstm_qrow_ref(row, W, i);
        double s = 0, m = 0;
        for (int j = 0; j < W->cols; j++) {
            s += (double)row[j] * x[j];
            m += fabs((double)row[j] * x[j]);
        }
        y[i] = s;
        mag[i] = m;
    }
    free(row);
}

static void test_gemv(void)
{
    int avx2 = lstm_quant_have_avx2();
    if (!avx2) printf("test_quant: this CPU has no AVX2 + FMA: the AVX2 twin is NOT RUN, only the reference\n");
    lstm_rng r;
    lstm_rng_seed(&r, 13);
    double worst = 0; /* the largest |avx2 - ref| / its bound, for the log */
    for (int R = 1; R <= 11; R += 2)
        for (int C = 1; C <= 43; C += 3) {
            float *W = malloc(sizeof *W * (size_t)R * C), *sc = malloc(sizeof *sc * (size_t)R);
            int8_t *q8 = malloc((size_t)R * C);
            uint16_t *qb = malloc(2 * (size_t)R * C);
            float *x = malloc(sizeof *x * (size_t)C), *y0 = malloc(sizeof *y0 * (size_t)R), *y1 = malloc(sizeof *y1 * (size_t)R);
            float *ra = malloc(sizeof *ra * (size_t)C), *rb = malloc(sizeof *rb * (size_t)C);
            double *ye = malloc(sizeof *ye * (size_t)R), *mag = malloc(sizeof *mag * (size_t)R);
            for (int i = 0; i < R * C; i++) W[i] = urand(&r, 0.3f);
            for (int j = 0; j < C; j++) x[j] = urand(&r, 2.0f);
            lstm_quant_int8(q8, sc, W, R, C);
            lstm_quant_bf16(qb, W, (size_t)R * C);
            lstm_qmat mats[2] = {{LSTM_Q_INT8, R, C, q8, sc}, {LSTM_Q_BF16, R, C, qb, NULL}};
            for (int k = 0; k < 2; k++) {
                const lstm_qmat *M = &mats[k];
                exact_gemv(ye, mag, M, x);
                for (int i = 0; i < R; i++) y0[i] = y1[i] = 0.5f; /* y += W x */
                lstm_qgemv_ref(y0, M, x);
                if (avx2) lstm_qgemv_avx2(y1, M, x);
                else lstm_qgemv(y1, M, x);
                for (int i = 0; i < R; i++) {
                    double bound = 2.0 * C * 0x1p-24 * (mag[i] + 0.5) + 1e-30;
                    CHECK(fabs(y0[i] - (ye[i] + 0.5)) <= bound);
                    CHECK(fabs(y1[i] - (ye[i] + 0.5)) <= bound);
                    CHECK(fabs((double)y1[i] - y0[i]) <= 2 * bound);
                    double rel = fabs((double)y1[i] - y0[i]) / (2 * bound);
                    worst = rel > worst ? rel : worst;
                }
                for (int i = 0; i < R; i++) {
                    lstm_qrow_ref(ra, M, i);
                    if (avx2) lstm_qrow_avx2(rb, M, i);
                    else lstm_qrow(rb, M, i);
                    CHECK(memcmp(ra, rb, sizeof *ra * (size_t)C) == 0);
                }
            }
            free(W), free(sc), free(q8), free(qb), free(x), free(y0), free(y1), free(ra), free(rb), free(ye), free(mag);
        }
    printf("test_quant: kernel %s; avx2 vs scalar GEMV: largest gap %.3f of the stated bound\n", lstm_quant_kernel(), worst);
}

/* The quantized inference path against the fp32 one over the same (dequantized) weights: with the
 * embedding and output weight quantized, the state is the same to the bit (the embedding rows are the
 * same floats) and the logits within the GEMV bound; with the recurrent weights too, the state differs
 * by float rounding through the steps (stated: 1e-5 absolute on h, c and the logits, whose size here is
 * about 0.1). lstm_infer_seq on one lane gives the bits of lstm_infer_step on the quantized model. */
static void test_infer(int tie, int type, int recurrent)
{
    lstm_model_config c;
    lstm_model_config_default(&c);
    c.V = 37, c.E = 19, c.H = 19, c.L = 2, c.tie = tie;
    lstm_model m;
    CHECK_EQ_INT(lstm_model_create(&m, &c), 0);
    lstm_rng rng;
    lstm_rng_seed(&rng, 21);
    lstm_model_init_params(&m, &rng);
    /* larger weights than the init's, so that activations and logits are of order 1 */
    for (size_t k = 0; k < m.n_params; k++) m.params[k] *= 8.0f;
    const char *names[6] = {"emb", "out.w", "l0.w_ih", "l0.w_hh", "l1.w_ih", "l1.w_hh"};
    void *qw[6] = {NULL};
    float *qs[6] = {NULL};
    lstm_qmat qm[6];
    memset(qm, 0, sizeof qm);
    for (int k = 0; k < 6; k++) {
        if ((k == 1 && tie) || (k >= 2 && !recurrent)) continue;
        const lstm_tensor_info *t = lstm_model_tensor(&m, lstm_model_find_tensor(&m, names[k]));
        float *w = m.params + t->offset;
        int R = t->shape[0], C = t->shape[1];
        if (type == LSTM_Q_INT8) {
            qw[k] = malloc(t->size);
            qs[k] = malloc(sizeof(float) * (size_t)R);
            lstm_quant_int8(qw[k], qs[k], w, R, C);
        } else {
            qw[k] = malloc(2 * t->size);
            lstm_quant_bf16(qw[k], w, t->size);
        }
        qm[k] = (lstm_qmat){type, R, C, qw[k], qs[k]};
        lstm_qdequant(w, &qm[k]); /* the fp32 model now holds exactly the dequantized weights */
    }
    lstm_model v;
    CHECK_EQ_INT(lstm_model_init_view(&v, &c, m.params), 0);
    v.qemb = qm[0];
    v.qout = tie ? qm[0] : qm[1];
    for (int l = 0; l < 2; l++) v.qw_ih[l] = qm[2 + 2 * l], v.qw_hh[l] = qm[3 + 2 * l];
    const int B = 3;
    lstm_infer i0, i1, i2;
    lstm_state s0, s1, s2;
    CHECK_EQ_INT(lstm_infer_alloc(&i0, &m, B), 0);
    CHECK_EQ_INT(lstm_infer_alloc(&i1, &v, B), 0);
    CHECK_EQ_INT(lstm_infer_alloc(&i2, &v, 3), 0);
    CHECK_EQ_INT(lstm_state_alloc(&s0, &m, B), 0);
    CHECK_EQ_INT(lstm_state_alloc(&s1, &v, B), 0);
    CHECK_EQ_INT(lstm_state_alloc(&s2, &v, 1), 0);
    lstm_state_zero(&s0);
    lstm_state_zero(&s1);
    lstm_state_zero(&s2);
    float *l0 = malloc(sizeof(float) * B * c.V), *l1 = malloc(sizeof(float) * B * c.V), *l2 = malloc(sizeof(float) * c.V);
    uint32_t tok[3][3] = {{4, 5, 36}, {0, 17, 2}, {9, 9, 30}}, lane0[3] = {4, 0, 9};
    const float *ow = m.params + lstm_model_tensor(&m, lstm_model_find_tensor(&m, tie ? "emb" : "out.w"))->offset;
    const float *ob = m.params + lstm_model_tensor(&m, lstm_model_find_tensor(&m, "out.b"))->offset;
    size_t nst = (size_t)c.L * B * c.H;
    double worst = 0;
    for (int step = 0; step < 3; step++) {
        CHECK_EQ_INT(lstm_infer_step(&i0, &s0, tok[step], l0), 0);
        CHECK_EQ_INT(lstm_infer_step(&i1, &s1, tok[step], l1), 0);
        if (!recurrent) CHECK(memcmp(s0.h, s1.h, sizeof(float) * nst) == 0);
        for (size_t k = 0; k < nst; k++) {
            CHECK(fabsf(s0.h[k] - s1.h[k]) <= 1e-5f);
            CHECK(fabsf(s0.c[k] - s1.c[k]) <= 1e-5f);
        }
        for (int b = 0; b < B; b++) {
            const float *h = s0.h + (size_t)(c.L - 1) * B * c.H + (size_t)b * c.H;
            for (int j = 0; j < c.V; j++) {
                double d = fabs((double)l0[b * c.V + j] - l1[b * c.V + j]);
                worst = d > worst ? d : worst;
                if (recurrent) {
                    CHECK(d <= 1e-5);
                    continue;
                }
                double mag = fabs(ob[j]);
                for (int k = 0; k < c.H; k++) mag += fabs((double)ow[(size_t)j * c.H + k] * h[k]);
                CHECK(d <= 4.0 * c.H * 0x1p-24 * mag + 1e-30);
            }
        }
    }
    /* lane 0's three tokens in one lstm_infer_seq: with quantized recurrent weights both run the same
     * GEMV per token, so the same bits; otherwise a GEMM against the steps' GEMVs (float rounding) */
    CHECK_EQ_INT(lstm_infer_seq(&i2, &s2, lane0, 3, NULL, NULL, l2), 0);
    for (int l = 0; l < c.L; l++) {
        const float *a = s2.h + (size_t)l * c.H, *b = s1.h + (size_t)l * B * c.H;
        if (recurrent) CHECK(memcmp(a, b, sizeof(float) * c.H) == 0);
        for (int k = 0; k < c.H; k++) CHECK(fabsf(a[k] - b[k]) <= 1e-5f);
    }
    if (recurrent) CHECK(memcmp(l2, l1, sizeof(float) * c.V) == 0);
    for (int j = 0; j < c.V; j++) CHECK(fabsf(l2[j] - l1[j]) <= 1e-5f);
    printf("test_quant: %s%s, %s: quantized path vs fp32 path: largest logit gap %.2g\n", lstm_quant_name(type),
           recurrent ? " + recurrent" : "", tie ? "tied" : "untied", worst);
    free(l0), free(l1), free(l2);
    lstm_infer_free(&i0), lstm_infer_free(&i1), lstm_infer_free(&i2);
    lstm_state_free(&s0), lstm_state_free(&s1), lstm_state_free(&s2);
    lstm_model_free(&v);
    lstm_model_free(&m);
    for (int k = 0; k < 6; k++) free(qw[k]), free(qs[k]);
}

static void path_of(char *buf, const char *name) { snprintf(buf, 256, "%s/%s", dir, name); }

static int copy_modified(const char *in, const char *out, long flip_at, long keep)
{
    FILE *f = fopen(in, "rb");
    if (!f) return -1;
    static uint8_t b[1 << 20];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (flip_at >= 0 && (size_t)flip_at < n) b[flip_at] ^= 0x10;
    if (keep >= 0 && (size_t)keep < n) n = (size_t)keep;
    f = fopen(out, "wb");
    if (!f) return -1;
    fwrite(b, 1, n, f);
    return fclose(f);
}

static void test_export_file(int tie)
{
    lstm_model_config c;
    lstm_model_config_default(&c);
    c.V = 29, c.E = 12, c.H = 12, c.L = 2, c.tie = tie;
    lstm_model m;
    CHECK_EQ_INT(lstm_model_create(&m, &c), 0);
    lstm_rng rng;
    lstm_rng_seed(&rng, 31);
    lstm_model_init_params(&m, &rng);
    const uint8_t tok[5] = {9, 8, 7, 6, 5};
    lstm_modelfile_save_args a = {&m, tok, sizeof tok, "epoch=1\n", NULL, NULL, "lstm-train x\n"};
    char p[256], q[256];
    /* none, int8, bf16, then int8 and bf16 with the recurrent weights */
    for (int run = 0; run < 5; run++) {
        int type = run < 3 ? run : run - 2, rec = run >= 3;
        path_of(p, "m.lstm");
        CHECK_EQ_INT(lstm_modelfile_export(p, 1, &a, type, rec), 0);
        CHECK_EQ_INT(lstm_modelfile_export(p, 0, &a, type, rec), LSTM_E_EXISTS);
        lstm_modelfile f;
        CHECK_EQ_INT(lstm_modelfile_open(&f, p), 0);
        CHECK_EQ_INT(f.kind, LSTM_CK_KIND_MODEL);
        CHECK_EQ_INT(f.quant, type);
        CHECK(!f.train && !f.optim_m && !f.state_h);
        CHECK(f.tokenizer_len == sizeof tok && !memcmp(f.tokenizer, tok, sizeof tok));
        CHECK(f.provenance && f.provenance_len == strlen("lstm-train x\n"));
        CHECK_EQ_INT(f.model.n_params, m.n_params);
        CHECK_EQ_INT(f.model.q_pending, type != LSTM_Q_NONE);
        if (type != LSTM_Q_NONE) {
            /* the fp32 copy of the quantized weights is made by the first window forward only */
            const float *e0 = f.model.params + m.tensors[0].offset;
            float mx = 0;
            for (size_t k = 0; k < m.tensors[0].size; k++) mx = fabsf(e0[k]) > mx ? fabsf(e0[k]) : mx;
            CHECK(mx == 0.0f);
            lstm_acts acts;
            lstm_state st;
            CHECK_EQ_INT(lstm_acts_alloc(&acts, &f.model, 1, 3), 0);
            CHECK_EQ_INT(lstm_state_alloc(&st, &f.model, 1), 0);
            lstm_state_zero(&st);
            uint32_t in[3] = {1, 2, 3};
            CHECK_EQ_INT(lstm_model_forward(&f.model, &acts, &st, in, NULL, 1, 3, 0, NULL, NULL), 0);
            CHECK_EQ_INT(f.model.q_pending, 0);
            lstm_acts_free(&acts);
            lstm_state_free(&st);
        }
        for (int i = 0; i < m.n_tensors; i++) {
            const lstm_tensor_info *t = &m.tensors[i];
            const float *w = m.params + t->offset, *g = f.model.params + t->offset;
            int matrix = t->ndim == 2, recw = matrix && t->name[0] == 'l';
            int quantized = type != LSTM_Q_NONE && matrix && (!recw || rec);
            if (!quantized) {
                CHECK(memcmp(w, g, t->size * sizeof(float)) == 0);
                continue;
            }
            for (size_t k = 0; k < t->size; k++) {
                if (type == LSTM_Q_BF16) CHECK(g[k] == lstm_bf16_to_f32(lstm_bf16_from_f32(w[k])));
                else CHECK(fabsf(g[k] - w[k]) <= c.init_scale / 127.0f * 0.5f * 1.0001f); /* |w| < init_scale */
            }
        }
        CHECK_EQ_INT(f.model.qemb.type, type);
        CHECK_EQ_INT(f.model.qout.type, type);
        CHECK_EQ_INT(f.quant_recurrent, rec);
        for (int l = 0; l < c.L; l++) {
            CHECK_EQ_INT(f.model.qw_ih[l].type, rec ? type : LSTM_Q_NONE);
            CHECK_EQ_INT(f.model.qw_hh[l].type, rec ? type : LSTM_Q_NONE);
        }
        if (type != LSTM_Q_NONE) CHECK(tie ? f.model.qout.w == f.model.qemb.w : f.model.qout.w != f.model.qemb.w);
        lstm_modelfile_close(&f);

        struct stat st;
        CHECK_EQ_INT(stat(p, &st), 0);
        path_of(q, "bad.lstm");
        CHECK_EQ_INT(copy_modified(p, q, st.st_size / 2, -1), 0);
        CHECK_EQ_INT(lstm_modelfile_open(&f, q), LSTM_E_CORRUPT);
        CHECK_EQ_INT(copy_modified(p, q, -1, st.st_size - 100), 0);
        CHECK_EQ_INT(lstm_modelfile_open(&f, q), LSTM_E_TRUNCATED);
        CHECK_EQ_INT(copy_modified(p, q, -1, 5), 0); /* the magic's first bytes only */
        CHECK_EQ_INT(lstm_modelfile_open(&f, q), LSTM_E_TRUNCATED);
        unlink(q);
        unlink(p);
    }
    CHECK_EQ_INT(lstm_modelfile_export(p, 1, &a, 7, 0), LSTM_E_ARG);
    CHECK_EQ_INT(lstm_modelfile_export(p, 1, &a, LSTM_Q_NONE, 1), LSTM_E_ARG);
    /* NaN weights survive quantization as a NaN scale (int8) or a NaN (bf16): refused, named */
    m.params[m.tensors[0].offset + 5] = NAN;
    lstm_modelfile f;
    CHECK_EQ_INT(lstm_modelfile_export(p, 1, &a, LSTM_Q_INT8, 0), 0);
    CHECK_EQ_INT(lstm_modelfile_open(&f, p), LSTM_E_NAN);
    CHECK(strcmp(f.bad_tensor, "emb.scale") == 0);
    CHECK_EQ_INT(lstm_modelfile_export(p, 1, &a, LSTM_Q_BF16, 0), 0);
    CHECK_EQ_INT(lstm_modelfile_open(&f, p), LSTM_E_NAN);
    CHECK(strcmp(f.bad_tensor, "emb") == 0);
    m.params[m.tensors[0].offset + 5] = 0.0f;
    m.params[lstm_model_tensor(&m, lstm_model_find_tensor(&m, "l1.w_hh"))->offset] = INFINITY;
    CHECK_EQ_INT(lstm_modelfile_export(p, 1, &a, LSTM_Q_INT8, 0), 0);
    CHECK_EQ_INT(lstm_modelfile_open(&f, p), LSTM_E_NAN);
    CHECK(strcmp(f.bad_tensor, "l1.w_hh") == 0);
    unlink(p);
    lstm_model_free(&m);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Microseconds per call of fn on the output layer of the PTB small model, the median of 9 runs. */
static int bench(void)
{
    const int R = 10000, C = 200, reps = 50;
    lstm_rng r;
    lstm_rng_seed(&r, 5);
    float *W = malloc(sizeof *W * (size_t)R * C), *sc = malloc(sizeof *sc * R), *x = malloc(sizeof *x * C),
          *y = malloc(sizeof *y * R);
    int8_t *q8 = malloc((size_t)R * C);
    uint16_t *qb = malloc(2 * (size_t)R * C);
    if (!W || !sc || !x || !y || !q8 || !qb) return 1;
    for (size_t i = 0; i < (size_t)R * C; i++) W[i] = urand(&r, 0.1f);
    for (int j = 0; j < C; j++) x[j] = urand(&r, 1.0f);
    lstm_quant_int8(q8, sc, W, R, C);
    lstm_quant_bf16(qb, W, (size_t)R * C);
    lstm_qmat m8 = {LSTM_Q_INT8, R, C, q8, sc}, mb = {LSTM_Q_BF16, R, C, qb, NULL};
    int avx2 = lstm_quant_have_avx2();
    const char *names[5] = {"fp32 cblas_sgemv", "int8 scalar", "int8 avx2+fma", "bf16 scalar", "bf16 avx2+fma"};
    printf("GEMV %d x %d (the output layer of the PTB small model), median of 9 runs of %d calls:\n", R, C, reps);
    for (int k = 0; k < 5; k++) {
        if ((k == 2 || k == 4) && !avx2) {
            printf("  %-18s not run (no AVX2 + FMA)\n", names[k]);
            continue;
        }
        double t[9];
        for (int run = 0; run < 9; run++) {
            double t0 = now();
            for (int i = 0; i < reps; i++) {
                switch (k) {
                case 0: cblas_sgemv(CblasRowMajor, CblasNoTrans, R, C, 1.0f, W, C, x, 1, 1.0f, y, 1); break;
                case 1: lstm_qgemv_ref(y, &m8, x); break;
                case 2: lstm_qgemv_avx2(y, &m8, x); break;
                case 3: lstm_qgemv_ref(y, &mb, x); break;
                case 4: lstm_qgemv_avx2(y, &mb, x); break;
                }
            }
            t[run] = (now() - t0) / reps * 1e6;
        }
        for (int i = 1; i < 9; i++)
            for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
                double s = t[j];
                t[j] = t[j - 1];
                t[j - 1] = s;
            }
        printf("  %-18s %8.1f us\n", names[k], t[4]);
    }
    free(W), free(sc), free(x), free(y), free(q8), free(qb);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "bench")) return bench();
    if (argc != 1) {
        fprintf(stderr, "usage: test_quant [bench]\n");
        return 2;
    }
    if (!mkdtemp(dir)) return 1;
    test_int8_round_trip();
    test_bf16();
    test_gemv();
    for (int tie = 0; tie < 2; tie++) {
        for (int rec = 0; rec < 2; rec++) {
            test_infer(tie, LSTM_Q_INT8, rec);
            test_infer(tie, LSTM_Q_BF16, rec);
        }
        test_export_file(tie);
    }
    rmdir(dir);
    CHECK_DONE("test_quant");
}
