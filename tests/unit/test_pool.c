/* test_pool.c: the GEMM thread pool never hangs. Each child process starts a fresh pool (2 to 8
 * threads) and at once runs tiny jobs large enough to be split; the parent gives every child a deadline
 * and fails on any child that misses it. A job published before a new worker first took the pool's lock
 * used to be taken as done by that worker, leaving the caller waiting forever. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cells.h"
#include "check.h"
#include "gemm.h"

#define CHILDREN 300
#define JOBS 40
#define DEADLINE_S 5.0

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One child: a fresh pool of nt threads, then JOBS split jobs checked against the plain loops. */
static int child(int nt)
{
    enum { M = 64, N = 256, K = 256 }; /* M N K = 2^22 MACs: the smallest job the pool splits */
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
    if (!A || !B || !C || !R) return 3;
    for (int i = 0; i < M * K; i++) A[i] = (float)((i * 7) % 13) - 6.0f;
    for (int i = 0; i < K * N; i++) B[i] = (float)((i * 5) % 11) - 5.0f;
    lstm_gemm_ref(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, R, N);
    if (lstm_gemm_set_threads(nt)) return 3;
    for (int j = 0; j < JOBS; j++) {
        lstm_gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        if (memcmp(C, R, sizeof(float) * M * N)) return 4; /* small integers: exact in float */
    }
    return 0;
}

int main(void)
{
    int hung = 0, failed = 0;
    for (int i = 0; i < CHILDREN; i++) {
        int nt = 2 + i % 7;
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid < 0) break;
        if (pid == 0) _exit(child(nt));
        double t0 = now();
        int status = 0;
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid) break;
            if (now() - t0 > DEADLINE_S) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                hung++;
                fprintf(stderr, "test_pool: child %d (%d threads) hung\n", i, nt);
                break;
            }
            usleep(1000);
        }
        if (!WIFSIGNALED(status) && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) failed++;
        else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) failed++;
    }
    CHECK_EQ_INT(hung, 0);
    CHECK_EQ_INT(failed, 0);
    printf("test_pool: %d fresh pools x %d jobs, %d hung, %d failed\n", CHILDREN, JOBS, hung, failed);
    CHECK_DONE("test_pool");
}
