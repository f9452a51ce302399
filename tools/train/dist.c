/* dist.c: lstm-train's MPI glue (see dist.h): joining the job, the trainer's collectives on
 * MPI_COMM_WORLD, and ending it. Without LSTM_HAVE_MPI, the one-rank twin. */
#include "dist.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"

static double bytes_total, wait_total;
static long steps_total;

void dist_stats(double *bytes_per_step, double *wait_per_step, long *steps)
{
    *bytes_per_step = steps_total ? bytes_total / (double)steps_total : 0;
    *wait_per_step = steps_total ? wait_total / (double)steps_total : 0;
    *steps = steps_total;
}

#ifdef LSTM_HAVE_MPI
#include <mpi.h>

static int rank, size = 1, local_size = 1, joined, finished;
static char library[MPI_MAX_LIBRARY_VERSION_STRING];

/* Started by mpirun (Open MPI) or by another PMI launcher (srun, MPICH's hydra). */
static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE") || getenv("PMI_RANK");
}

/* An exit that did not go through dist_finish (a message and exit(1) on any rank): the whole job
 * stops, instead of the other ranks waiting for this one in a collective. */
static void abort_job(void)
{
    if (joined && !finished) MPI_Abort(MPI_COMM_WORLD, 1);
}

int dist_init(int *argc, char ***argv)
{
    if (!launched()) return 1;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return 1;
    joined = 1;
    atexit(abort_job);
    /* Failures come back as codes (the trainer's run then fails with a message) instead of aborting
     * inside the library with MPI's own. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local_size);
        MPI_Comm_free(&node);
    }
    int len = 0;
    MPI_Get_library_version(library, &len);
    char *nl = strchr(library, ',');
    if (nl) *nl = 0; /* "Open MPI v4.1.4, package: ..." */
    return size;
}

int dist_rank(void) { return rank; }
int dist_size(void) { return size; }
int dist_local_size(void) { return local_size; }
const char *dist_library(void) { return joined ? library : ""; }

void dist_finish(void)
{
    if (joined && !finished) {
        finished = 1;
        MPI_Finalize();
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int mpi_rc(int e) { return e == MPI_SUCCESS ? 0 : LSTM_E_IO; }

static int sum(void *ctx, double *v, int n)
{
    (void)ctx;
    return mpi_rc(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
}

static int gather_sum(void *ctx, float *v, size_t n)
{
    (void)ctx;
    for (size_t off = 0; off < n;) { /* counts are ints */
        int k = n - off > (1u << 30) ? 1 << 30 : (int)(n - off);
        int e = rank == 0 ? MPI_Reduce(MPI_IN_PLACE, v + off, k, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD)
                          : MPI_Reduce(v + off, NULL, k, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
        if (e != MPI_SUCCESS) return LSTM_E_IO;
        off += (size_t)k;
    }
    return 0;
}

/* The reductions in flight during one backward: one per range (a layer's tensors), or, without the
 * overlap, the whole range backward covered, reduced at once in grads_wait. */
#define MAX_REQ 64
static MPI_Request req[MAX_REQ];
static int n_req, overlap;
static float *whole;
static size_t whole_lo, whole_hi;

static int grads_start(void *ctx, float *grads, size_t off, size_t n)
{
    (void)ctx;
    bytes_total += (double)n * sizeof(float);
    if (!overlap || n_req + (int)(n >> 30) + 1 > MAX_REQ) {
        if (!whole || off < whole_lo) whole_lo = off;
        if (!whole || off + n > whole_hi) whole_hi = off + n;
        whole = grads;
        return 0;
    }
    for (size_t o = off; o < off + n;) {
        int k = off + n - o > (1u << 30) ? 1 << 30 : (int)(off + n - o);
        if (MPI_Iallreduce(MPI_IN_PLACE, grads + o, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req[n_req]) != MPI_SUCCESS)
            return LSTM_E_IO;
        n_req++;
        o += (size_t)k;
    }
    /* Open MPI moves a non-blocking collective along inside MPI calls: give it a turn now. */
    int done;
    return mpi_rc(MPI_Testall(n_req, req, &done, MPI_STATUSES_IGNORE));
}

static int grads_wait(void *ctx)
{
    (void)ctx;
    double t0 = now();
    int e = MPI_SUCCESS;
    if (n_req) e = MPI_Waitall(n_req, req, MPI_STATUSES_IGNORE);
    n_req = 0;
    for (size_t o = whole_lo; whole && e == MPI_SUCCESS && o < whole_hi;) {
        int k = whole_hi - o > (1u << 30) ? 1 << 30 : (int)(whole_hi - o);
        e = MPI_Allreduce(MPI_IN_PLACE, whole + o, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        o += (size_t)k;
    }
    whole = NULL;
    whole_lo = whole_hi = 0;
    wait_total += now() - t0;
    steps_total++;
    return mpi_rc(e);
}

/* Bytes between rank 0 and one rank, in pieces that an int counts. */
#define PIECE (1u << 30)
static int send_to(void *ctx, int to, const void *buf, size_t len)
{
    (void)ctx;
    for (size_t off = 0; off < len || len == 0; off += PIECE) {
        int k = len - off > PIECE ? (int)PIECE : (int)(len - off);
        if (MPI_Send((const char *)buf + off, k, MPI_BYTE, to, 1, MPI_COMM_WORLD) != MPI_SUCCESS) return LSTM_E_IO;
        if (len == 0) break;
    }
    return 0;
}

static int recv_from0(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    for (size_t off = 0; off < len || len == 0; off += PIECE) {
        int k = len - off > PIECE ? (int)PIECE : (int)(len - off);
        if (MPI_Recv((char *)buf + off, k, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return LSTM_E_IO;
        if (len == 0) break;
    }
    return 0;
}

int dist_bcast(uint8_t **buf, size_t *len)
{
    uint64_t n = rank == 0 ? *len : 0;
    if (MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS) return LSTM_E_IO;
    if (rank != 0) {
        if (!(*buf = malloc(n ? (size_t)n : 1))) return LSTM_E_NOMEM;
        *len = (size_t)n;
    }
    for (size_t off = 0; off < n; off += PIECE) {
        int k = n - off > PIECE ? (int)PIECE : (int)(n - off);
        if (MPI_Bcast(*buf + off, k, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS) return LSTM_E_IO;
    }
    return 0;
}

static lstm_train_dist hooks;

const lstm_train_dist *dist_hooks(int ov)
{
    if (size < 2) return NULL;
    overlap = ov;
    hooks = (lstm_train_dist){rank, size, NULL, sum, grads_start, grads_wait, gather_sum, send_to, recv_from0};
    return &hooks;
}

#else /* one rank, no MPI */

/* Started by mpirun as one of several ranks, a build without MPI cannot take its share: -1. */
int dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    return n && atoi(n) > 1 ? -1 : 1;
}
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
int dist_local_size(void) { return 1; }
const char *dist_library(void) { return ""; }
void dist_finish(void) {}
const lstm_train_dist *dist_hooks(int overlap)
{
    (void)overlap;
    return NULL;
}
int dist_bcast(uint8_t **buf, size_t *len)
{
    (void)buf;
    (void)len;
    return 0;
}

#endif
