/* test_gemm.c: lstm_gemm (lib/nn/gemm.c) against the plain-loop lstm_gemm_ref on many shapes (1, 7, 33,
 * 700, 10001 and the micro-tile edges), all four transposition cases, alpha / beta variants, padded
 * leading dimensions, beta = 0 over NaN, K = 0, and 1 to 3 threads; results must be bit-identical run to
 * run and across thread counts, and with op(B) packed once (lstm_gemm_pack_b, lstm_gemm_packed). `make unit` runs it once per micro-kernel of the library (LSTM_KERNEL=
 * avx512, avx2, scalar: gemm.c compiled with that kernel's -m flags, picked by lib/nn/pick.c), and then
 * the kernel run must be the one named. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cells.h"
#include "check.h"
#include "gemm.h"
#include "rng.h"

static lstm_rng R;

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) abort();
    return p;
}

static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * lstm_rng_uniform(&R) - 1.0f;
}

static void absv(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
}

/* One case: op(A) (M,K), op(B) (K,N), leading dimensions padded by `pad`. Checks every element against
 * the double-accumulated reference within the float summation bound 2 (K + 2) eps (|alpha| |A||B| +
 * |beta C|), and that a repeat and every thread count give the same bits. */
static void check_case(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = falloc(na), *Bm = falloc(nb), *C0 = falloc(nc), *C = falloc(nc), *Cr = falloc(nc);
    float *C2 = falloc(nc), *aA = falloc(na), *aB = falloc(nb), *aC = falloc(nc);
    fill(A, na), fill(Bm, nb), fill(C0, nc);
    if (beta == 0.0f)
        for (size_t i = 0; i < nc; i++) C0[i] = NAN; /* beta = 0 must not read C */
    for (int i = 0; i < M; i++) /* the padding columns of C must survive */
        for (int j = N; j < ldc; j++) C0[(size_t)i * ldc + j] = 12345.0f;
    memcpy(Cr, C0, nc * sizeof(float));
    lstm_gemm_ref(ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, Cr, ldc);
    absv(aA, A, na), absv(aB, Bm, nb), absv(aC, C0, nc);
    if (beta == 0.0f) memset(aC, 0, nc * sizeof(float));
    lstm_gemm_ref(ta, tb, M, N, K, fabsf(alpha), aA, lda, aB, ldb, fabsf(beta), aC, ldc);

    int fails = 0;
    double eps = 1.0 / (1 << 24), bound = 2.0 * (K + 2) * eps;
    for (int nt = 1; nt <= 3; nt++) {
        CHECK_EQ_INT(lstm_gemm_set_threads(nt), 0);
        float *out = nt == 1 ? C : C2;
        memcpy(out, C0, nc * sizeof(float));
        lstm_gemm(ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, out, ldc);
        if (nt == 1) {
            for (int i = 0; i < M && fails < 3; i++)
                for (int j = 0; j < ldc && fails < 3; j++) {
                    size_t p = (size_t)i * ldc + j;
                    double err = fabs((double)C[p] - Cr[p]);
                    int ok = j < N ? err <= bound * aC[p] + 1e-30 : C[p] == 12345.0f;
                    if (!ok) {
                        fprintf(stderr, "gemm ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d: C[%d,%d] = %.9g, "
                                "ref %.9g, bound %.3g\n", ta, tb, M, N, K, alpha, beta, pad, i, j, C[p], Cr[p],
                                bound * aC[p]);
                        fails++;
                    }
                }
            CHECK(fails == 0);
            memcpy(C2, C0, nc * sizeof(float)); /* run-to-run: the same call again */
            lstm_gemm(ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, C2, ldc);
        }
        if (memcmp(C, C2, nc * sizeof(float)) != 0) {
            fprintf(stderr, "gemm ta=%d tb=%d M=%d N=%d K=%d: not bit-identical (%d threads)\n", ta, tb, M, N, K, nt);
            check_failures++;
        }
        /* op(B) packed once: the same bits from the packed panels, twice from one packing */
        size_t pbytes = (lstm_gemm_packed_floats(N, K) * sizeof(float) + 63) / 64 * 64;
        float *Bp = aligned_alloc(64, pbytes ? pbytes : 64);
        if (!Bp) abort();
        lstm_gemm_pack_b(tb, N, K, Bm, ldb, Bp);
        for (int rep = 0; rep < 2; rep++) {
            memcpy(C2, C0, nc * sizeof(float));
            CHECK_EQ_INT(lstm_gemm_packed(ta, M, N, K, alpha, A, lda, Bp, beta, C2, ldc), 0);
            if (memcmp(C, C2, nc * sizeof(float)) != 0) {
                fprintf(stderr, "gemm ta=%d tb=%d M=%d N=%d K=%d: packed B differs (%d threads)\n", ta, tb, M, N, K, nt);
                check_failures++;
                break;
            }
        }
        free(Bp);
    }
    CHECK_EQ_INT(lstm_gemm_set_threads(1), 0);
    free(A), free(Bm), free(C0), free(C), free(Cr), free(C2), free(aA), free(aB), free(aC);
}

int main(void)
{
    lstm_rng_seed(&R, 7);
    static const int shapes[][3] = {
        {1, 1, 1},      {7, 7, 7},       {1, 33, 7},      {33, 1, 7},     {7, 33, 33},   {33, 7, 700},
        {14, 32, 320},  {15, 33, 321},   {13, 31, 319},   {28, 48, 641},  {29, 16, 17},  {42, 17, 960},
        {1, 10001, 7},  {10001, 1, 33},  {7, 10001, 33},  {10001, 7, 1},  {33, 33, 10001}, {700, 33, 33},
        {33, 700, 200}, {700, 200, 7},   {70, 2050, 33},  {2050, 70, 33}, {350, 33, 20},
    };
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < nshapes; s++)
        for (int t = 0; t < 4; t++)
            check_case(t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, s % 2 ? 1.0f : 0.0f, 0);
    /* alpha / beta variants and padded leading dimensions */
    static const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {-0.5f, 0.0f}, {2.0f, 1.0f}, {0.75f, 0.3f},
                                  {0.0f, 0.5f}, {1.0f, -1.0f}};
    for (int v = 0; v < 7; v++)
        for (int t = 0; t < 4; t++) {
            check_case(t >> 1, t & 1, 37, 45, 29, ab[v][0], ab[v][1], 3);
            check_case(t >> 1, t & 1, 700, 100, 200, ab[v][0], ab[v][1], v % 2 ? 16 : 0);
        }
    /* the recurrent steps of a 2x200 LSTM, B = 20 (forward h W_hh^T, backward dG W_hh), and 2x650 */
    check_case(0, 1, 20, 800, 200, 1.0f, 1.0f, 0);
    check_case(0, 0, 20, 200, 800, 1.0f, 1.0f, 0);
    check_case(0, 1, 20, 2600, 650, 1.0f, 0.0f, 0);
    check_case(0, 0, 20, 650, 2600, 1.0f, 0.0f, 0);
    /* the output layer's shapes, in size */
    check_case(0, 1, 700, 2000, 200, 1.0f, 0.0f, 0); /* logits = X W^T (V cut to 2000 for time) */
    check_case(1, 0, 2000, 200, 700, 1.0f, 1.0f, 0); /* dW += dY^T X */
    check_case(0, 0, 700, 200, 2000, 1.0f, 0.0f, 0); /* dX = dY W */
    /* K = 0 scales C by beta; M or N = 0 touches nothing */
    for (int t = 0; t < 4; t++) {
        check_case(t >> 1, t & 1, 9, 40, 0, 1.0f, 0.5f, 0);
        check_case(t >> 1, t & 1, 9, 40, 0, 1.0f, 0.0f, 0);
    }
    float c = 3.0f, a = 1.0f;
    lstm_gemm(0, 0, 0, 1, 1, 1.0f, &a, 1, &a, 1, 0.0f, &c, 1);
    lstm_gemm(0, 0, 1, 0, 1, 1.0f, &a, 1, &a, 1, 0.0f, &c, 1);
    CHECK(c == 3.0f);
    CHECK_EQ_INT(lstm_gemm_set_threads(2), 0);
    CHECK_EQ_INT(lstm_gemm_threads(), 2);
    CHECK_EQ_INT(lstm_gemm_set_threads(1000), 0);
    CHECK_EQ_INT(lstm_gemm_threads(), LSTM_GEMM_MAX_THREADS);
    CHECK_EQ_INT(lstm_gemm_set_threads(1), 0);
    const char *want = getenv("LSTM_KERNEL"); /* the variant make unit asked for must be the one run */
    if (want) CHECK(strncmp(lstm_gemm_kernel(), want, strlen(want)) == 0 && lstm_gemm_kernel()[strlen(want)] == ' ');
    printf("test_gemm: kernel %s\n", lstm_gemm_kernel());
    CHECK_DONE("test_gemm");
}
