/* sgemm.c: OpenBLAS sgemm GFLOP/s on the shapes of one training step (the machine's practical limit
 * for lstm-train's kernels). usage: sgemm V E H B T SECONDS */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Rate of C(M,N) = A(M,K) op B for a shape, run for `secs`. */
static double rate(int M, int N, int K, int tb, double secs)
{
    float *A = malloc(sizeof(float) * (size_t)M * K), *Bm = malloc(sizeof(float) * (size_t)K * N),
          *C = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) Bm[i] = (float)(i % 5) * 0.1f;
    long reps = 0;
    double t0 = now(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, K, Bm, tb ? K : N,
                    0.0f, C, N);
        reps++;
    } while ((t = now() - t0) < secs);
    free(A); free(Bm); free(C);
    return 2.0 * M * N * K * reps / t / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 7) { fprintf(stderr, "usage: sgemm V E H B T SECONDS\n"); return 2; }
    int V = atoi(argv[1]), E = atoi(argv[2]), H = atoi(argv[3]), B = atoi(argv[4]), T = atoi(argv[5]);
    double s = atof(argv[6]);
    int N = B * T;
    double out = rate(N, V, H, 1, s);        /* logits = h W_out^T */
    double proj = rate(N, 4 * H, E, 1, s);   /* input projection of all steps */
    double rec = rate(B, 4 * H, H, 1, s);    /* one recurrent step */
    printf("%.1f %.1f %.1f\n", out, proj, rec);
    return 0;
}
