/* pick.c: the kernel entry points of gemm.h, cells.h (lstm_vexp, lstm_vsigmoid, lstm_vtanh) and vec.h
 * for a build that carries every x86-64 kernel: gemm.c and vec.c are compiled once per kernel with
 * its -m flags (entry points suffixed _avx512, _avx2, _scalar), and the first call picks the fastest
 * kernel this CPU runs (__builtin_cpu_supports), so one binary runs on any x86-64 and uses AVX-512 or
 * AVX2 + FMA where they are. LSTM_KERNEL=avx2 (or scalar, avx512) asks for another one the CPU also
 * runs, for comparisons and tests; a kernel it cannot run, or an unknown name, is not taken. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cells.h"
#include "gemm.h"
#include "vec.h"

#define KERNEL(v)                                                                                              \
    void lstm_gemm_##v(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,   \
                       const float *Bm, int ldb, float beta, float *C, int ldc);                               \
    int lstm_gemm_set_threads_##v(int n);                                                                      \
    int lstm_gemm_threads_##v(void);                                                                           \
    void lstm_gemm_get_stats_##v(lstm_gemm_stats *s);                                                          \
    const char *lstm_gemm_kernel_##v(void);                                                                    \
    size_t lstm_gemm_packed_floats_##v(int N, int K);                                                          \
    void lstm_gemm_pack_b_##v(int trans_b, int N, int K, const float *Bm, int ldb, float *packed);             \
    int lstm_gemm_packed_##v(int trans_a, int M, int N, int K, float alpha, const float *A, int lda,           \
                             const float *packed, float beta, float *C, int ldc);                              \
    void lstm_vexp_##v(float *y, const float *x, size_t n);                                                    \
    void lstm_vsigmoid_##v(float *y, const float *x, size_t n);                                                \
    void lstm_vtanh_##v(float *y, const float *x, size_t n);                                                   \
    float lstm_row_bias_max_##v(float *row, const float *b, int V);                                            \
    float lstm_row_sum_exp_##v(const float *row, float m, int V);                                              \
    void lstm_row_softmax_grad_##v(float *row, float *db, float lse, float scale, int V);
KERNEL(avx512)
KERNEL(avx2)
KERNEL(scalar)

typedef struct {
    const char *name;
    void (*gemm)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
    int (*set_threads)(int);
    int (*threads)(void);
    void (*get_stats)(lstm_gemm_stats *);
    const char *(*kernel)(void);
    size_t (*packed_floats)(int, int);
    void (*pack_b)(int, int, int, const float *, int, float *);
    int (*packed)(int, int, int, int, float, const float *, int, const float *, float, float *, int);
    void (*vexp)(float *, const float *, size_t);
    void (*vsigmoid)(float *, const float *, size_t);
    void (*vtanh)(float *, const float *, size_t);
    float (*bias_max)(float *, const float *, int);
    float (*sum_exp)(const float *, float, int);
    void (*softmax_grad)(float *, float *, float, float, int);
} kernel_t;

#define ENTRY(v)                                                                                               \
    {#v, lstm_gemm_##v, lstm_gemm_set_threads_##v, lstm_gemm_threads_##v, lstm_gemm_get_stats_##v,            \
     lstm_gemm_kernel_##v, lstm_gemm_packed_floats_##v, lstm_gemm_pack_b_##v, lstm_gemm_packed_##v, lstm_vexp_##v, lstm_vsigmoid_##v, lstm_vtanh_##v, lstm_row_bias_max_##v,            \
     lstm_row_sum_exp_##v, lstm_row_softmax_grad_##v}
static const kernel_t kernels[] = {ENTRY(avx512), ENTRY(avx2), ENTRY(scalar)}; /* fastest first */

static int runs_here(int i)
{
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (i == 0) return avx2 && __builtin_cpu_supports("avx512f");
    if (i == 1) return avx2;
    return 1;
}

static const kernel_t *use;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void pick(void)
{
    const char *want = getenv("LSTM_KERNEL");
    int n = (int)(sizeof kernels / sizeof kernels[0]);
    for (int i = 0; want && i < n; i++)
        if (strcmp(want, kernels[i].name) == 0 && runs_here(i)) use = &kernels[i];
    for (int i = 0; !use && i < n; i++)
        if (runs_here(i)) use = &kernels[i];
}

static inline const kernel_t *k(void)
{
    pthread_once(&once, pick);
    return use;
}

void lstm_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *Bm, int ldb, float beta, float *C, int ldc)
{
    k()->gemm(trans_a, trans_b, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
}

int lstm_gemm_set_threads(int n) { return k()->set_threads(n); }
int lstm_gemm_threads(void) { return k()->threads(); }
void lstm_gemm_get_stats(lstm_gemm_stats *s) { k()->get_stats(s); }
const char *lstm_gemm_kernel(void) { return k()->kernel(); }
size_t lstm_gemm_packed_floats(int N, int K) { return k()->packed_floats(N, K); }
void lstm_gemm_pack_b(int trans_b, int N, int K, const float *Bm, int ldb, float *packed)
{
    k()->pack_b(trans_b, N, K, Bm, ldb, packed);
}
int lstm_gemm_packed(int trans_a, int M, int N, int K, float alpha, const float *A, int lda, const float *packed,
                     float beta, float *C, int ldc)
{
    return k()->packed(trans_a, M, N, K, alpha, A, lda, packed, beta, C, ldc);
}
void lstm_vexp(float *y, const float *x, size_t n) { k()->vexp(y, x, n); }
void lstm_vsigmoid(float *y, const float *x, size_t n) { k()->vsigmoid(y, x, n); }
void lstm_vtanh(float *y, const float *x, size_t n) { k()->vtanh(y, x, n); }
float lstm_row_bias_max(float *row, const float *b, int V) { return k()->bias_max(row, b, V); }
float lstm_row_sum_exp(const float *row, float m, int V) { return k()->sum_exp(row, m, V); }
void lstm_row_softmax_grad(float *row, float *db, float lse, float scale, int V)
{
    k()->softmax_grad(row, db, lse, scale, V);
}
