/* gemm.h: single-precision GEMM for the large products of training (the output layer's three GEMMs):
 * row-major C (M,N) = alpha * op(A) op(B) + beta * C, with packed, cache-blocked panels and an AVX-512
 * (else AVX2 + FMA, else scalar) register-blocked micro-kernel, run on a persistent pool of threads. On
 * x86-64 every kernel is built in and the first call picks the fastest the CPU runs (gemm_pick.c).
 *
 * Arguments follow cblas_sgemm's row-major convention: op(A) is (M,K) and A is stored (M,K) with row
 * stride lda, or (K,M) when trans_a; op(B) is (K,N) and B is stored (K,N) with row stride ldb, or (N,K)
 * when trans_b. beta == 0 never reads C (it may hold NaN).
 *
 * Determinism: the work split between threads depends only on (M, N, K, threads) and every element of
 * C is summed by one thread in a fixed order, so the same inputs and thread count give bit-identical C.
 * The K blocking does not depend on the thread count either, so results are also identical across
 * thread counts.
 *
 * Threads: a call small enough (or a thread count of 1) runs on the calling thread alone, on that
 * thread's own packing buffers, and takes no lock: independent callers on different threads (one
 * inference or evaluation session each) run at the same time. Larger calls with a thread count above 1
 * are split over a persistent pool of workers, one such call at a time (the workers are shared).
 * Buffers are made once: the pool's by lstm_gemm_set_threads, a thread's own by its first call (or by
 * lstm_gemm_set_threads on that thread) and freed when it exits; calls never allocate afterwards. */
#ifndef LSTM_GEMM_H
#define LSTM_GEMM_H
#include <stddef.h>

#define LSTM_GEMM_MAX_THREADS 16

void lstm_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *Bm, int ldb, float beta, float *C, int ldc);

/* Products with one B many times (the recurrent weights at every step of a window): op(B) (K,N)
 * packed once into lstm_gemm_packed_floats(N, K) floats by lstm_gemm_pack_b, then C (M,N) = alpha *
 * op(A) op(B) + beta * C from it, bit for bit what lstm_gemm gives with B itself, without packing B
 * again at every call. The layout is the kernel's: pack and multiply in the same process; packed is
 * 64-byte aligned. */
size_t lstm_gemm_packed_floats(int N, int K);
void lstm_gemm_pack_b(int trans_b, int N, int K, const float *Bm, int ldb, float *packed);
/* 0, or LSTM_E_NOMEM when this thread's packing buffers cannot be made (C untouched: multiply by B with
 * lstm_gemm instead). */
int lstm_gemm_packed(int trans_a, int M, int N, int K, float alpha, const float *A, int lda, const float *packed,
                     float beta, float *C, int ldc);

/* Threads used by the following calls (clamped to 1..LSTM_GEMM_MAX_THREADS); starts the workers and
 * allocates their buffers the first time a count is reached. Returns 0 or LSTM_E_NOMEM (the previous
 * count stays in effect). */
int lstm_gemm_set_threads(int n);
int lstm_gemm_threads(void);

/* Counters since the process started: calls split over the pool (each took its lock), calls that ran
 * on their caller alone (no lock), and the most of the latter ever running at the same time. */
typedef struct {
    unsigned long long pooled, direct;
    int direct_peak;
} lstm_gemm_stats;
void lstm_gemm_get_stats(lstm_gemm_stats *s);

/* Name of the micro-kernel in use ("avx512 14x32", "avx2 6x16", "scalar 4x4"). */
const char *lstm_gemm_kernel(void);

#endif
