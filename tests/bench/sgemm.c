/* sgemm.c: GFLOP/s of OpenBLAS cblas_sgemm and of lstm_gemm (lib/nn/gemm.c) on the GEMM shapes of one
 * training step: the output layer's forward (logits = X W^T), weight gradient (dW += dY^T X) and input
 * gradient (dX = dY W), the layers' input projection and one recurrent step. The two are timed in
 * alternating rounds and the best round of each is kept, so a busy machine penalizes both alike.
 * usage: sgemm V E H B T SECONDS [THREADS]   (prints "blas out/dw/dx/proj/rec ours out/dw/dx/proj/rec")
 * build: cc -O2 -march=native -Ilib/nn -Ilib/common tests/bench/sgemm.c lib/nn/gemm.c $(pkg-config --cflags --libs openblas) -lpthread */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gemm.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    int ta, tb, M, N, K;
    float beta;
    int packed; /* ours multiplies by op(B) packed once (lstm_gemm_pack_b), as the trainer's steps do */
} shape;

static float *packed_b; /* the current shape's op(B), packed */

static void call(int ours, const shape *s, const float *A, const float *Bm, float *C)
{
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    if (ours && s->packed)
        lstm_gemm_packed(s->ta, s->M, s->N, s->K, 1.0f, A, lda, packed_b, s->beta, C, s->N);
    else if (ours)
        lstm_gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, Bm, ldb, s->beta, C, s->N);
    else
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->M, s->N,
                    s->K, 1.0f, A, lda, Bm, ldb, s->beta, C, s->N);
}

/* Best GFLOP/s of each implementation over `rounds` alternating rounds of `secs` each. */
static void rate(const shape *s, double secs, int rounds, double best[2])
{
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    float *A = malloc(sizeof(float) * na), *Bm = malloc(sizeof(float) * nb), *C = calloc(nc, sizeof(float));
    if (!A || !Bm || !C) { fprintf(stderr, "sgemm: out of memory\n"); exit(1); }
    for (size_t i = 0; i < na; i++) A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < nb; i++) Bm[i] = (float)(i % 5) * 0.1f;
    if (s->packed) {
        size_t pb = (lstm_gemm_packed_floats(s->N, s->K) * sizeof(float) + 63) / 64 * 64;
        if (!(packed_b = aligned_alloc(64, pb))) { fprintf(stderr, "sgemm: out of memory\n"); exit(1); }
        lstm_gemm_pack_b(s->tb, s->N, s->K, Bm, s->tb ? s->K : s->N, packed_b);
    }
    best[0] = best[1] = 0.0;
    for (int r = 0; r < rounds; r++)
        for (int ours = 0; ours < 2; ours++) {
            call(ours, s, A, Bm, C); /* warm */
            long reps = 0;
            double t0 = now(), t;
            do {
                call(ours, s, A, Bm, C);
                reps++;
            } while ((t = now() - t0) < secs);
            double g = 2.0 * s->M * s->N * (double)s->K * reps / t / 1e9;
            if (g > best[ours]) best[ours] = g;
        }
    free(A); free(Bm); free(C);
    free(packed_b);
    packed_b = NULL;
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 8) { fprintf(stderr, "usage: sgemm V E H B T SECONDS [THREADS]\n"); return 2; }
    int V = atoi(argv[1]), E = atoi(argv[2]), H = atoi(argv[3]), B = atoi(argv[4]), T = atoi(argv[5]);
    double secs = atof(argv[6]);
    int threads = argc == 8 ? atoi(argv[7]) : 0;
    if (threads > 0) {
        openblas_set_num_threads(threads);
        lstm_gemm_set_threads(threads);
    } else {
        lstm_gemm_set_threads(openblas_get_num_threads());
    }
    int N = B * T, rounds = 5;
    shape sh[5] = {
        {0, 1, N, V, H, 0.0f}, /* logits (N,V) = X (N,H) W^T */
        {1, 0, V, H, N, 1.0f}, /* dW (V,H) += dY^T X */
        {0, 0, N, H, V, 0.0f}, /* dX (N,H) = dY (N,V) W (V,H) */
        {0, 1, N, 4 * H, E, 0.0f}, /* input projection of all steps */
        {0, 1, B, 4 * H, H, 1.0f, 1}, /* one recurrent step (ours: W_hh packed once per window) */
    };
    double g[5][2];
    for (int i = 0; i < 5; i++) rate(&sh[i], secs / (2.0 * rounds * 5), rounds, g[i]);
    for (int o = 0; o < 2; o++)
        printf("%s%.1f/%.1f/%.1f/%.1f/%.1f", o ? " " : "", g[0][o], g[1][o], g[2][o], g[3][o], g[4][o]);
    printf("\n");
    return 0;
}
