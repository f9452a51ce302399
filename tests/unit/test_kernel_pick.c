/* test_kernel_pick.c: the GEMM of a build that carries every x86-64 kernel (lib/nn/gemm_pick.c): the
 * first call takes the fastest kernel this CPU runs, its results (GEMM and tanh) are those of that
 * kernel called directly, to the bit, and LSTM_KERNEL picks another one the CPU runs (checked in a child
 * process, since the pick is made once). */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cells.h"
#include "check.h"
#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
void lstm_gemm_avx2(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
void lstm_gemm_scalar(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
void lstm_gemm_avx512(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
void lstm_vtanh_avx512(float *, const float *, size_t);
void lstm_vtanh_avx2(float *, const float *, size_t);
void lstm_vtanh_scalar(float *, const float *, size_t);

static const char *best(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "avx512";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
    return "scalar";
}

/* This test run again with LSTM_KERNEL=want: 0 when the kernel it got starts with expect. */
static int child_kernel(const char *want, const char *expect)
{
    pid_t p = fork();
    if (p == 0) {
        setenv("LSTM_KERNEL", want, 1);
        execl("/proc/self/exe", "test_kernel_pick", "child", expect, (char *)NULL);
        _exit(127);
    }
    int st;
    return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "child")) {
        int ok = strncmp(lstm_gemm_kernel(), argv[2], strlen(argv[2])) == 0;
        if (!ok) fprintf(stderr, "LSTM_KERNEL=%s gave %s\n", getenv("LSTM_KERNEL"), lstm_gemm_kernel());
        return ok ? 0 : 1;
    }
    if (getenv("LSTM_KERNEL")) unsetenv("LSTM_KERNEL"); /* before the first call picks */
    const char *b = best();
    printf("test_kernel_pick: this CPU runs %s; picked %s\n", b, lstm_gemm_kernel());
    CHECK(strncmp(lstm_gemm_kernel(), b, strlen(b)) == 0 && lstm_gemm_kernel()[strlen(b)] == ' ');
    enum { M = 37, N = 53, K = 71 };
    static float A[M * K], B[K * N], C1[M * N], C2[M * N];
    unsigned s = 12345;
    for (int i = 0; i < M * K; i++) A[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (int i = 0; i < K * N; i++) B[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    lstm_gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N);
    if (!strcmp(b, "avx512")) lstm_gemm_avx512(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C2, N);
    else if (!strcmp(b, "avx2")) lstm_gemm_avx2(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C2, N);
    else lstm_gemm_scalar(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C2, N);
    CHECK(memcmp(C1, C2, sizeof C1) == 0);
    /* the elementwise kernels come from the same variant (61 floats: vector bodies and a tail) */
    float y1[61], y2[61];
    lstm_vtanh(y1, A, 61);
    if (!strcmp(b, "avx512")) lstm_vtanh_avx512(y2, A, 61);
    else if (!strcmp(b, "avx2")) lstm_vtanh_avx2(y2, A, 61);
    else lstm_vtanh_scalar(y2, A, 61);
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    /* a kernel asked for and run here is taken; one this CPU cannot run, or no such name, is not */
    CHECK_EQ_INT(child_kernel("scalar", "scalar 4x4"), 0);
    if (strcmp(b, "scalar")) CHECK_EQ_INT(child_kernel("avx2", "avx2 6x16"), 0);
    if (strcmp(b, "avx512")) CHECK_EQ_INT(child_kernel("avx512", b), 0);
    CHECK_EQ_INT(child_kernel("bogus", b), 0);
    CHECK_DONE("test_kernel_pick");
}
#else
int main(void)
{
    printf("test_kernel_pick: one kernel on this architecture (%s)\n", lstm_gemm_kernel());
    CHECK(lstm_gemm_kernel()[0] != 0);
    CHECK_DONE("test_kernel_pick");
}
#endif
