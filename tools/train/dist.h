/* dist.h: lstm-train over MPI: the process's rank among the ranks mpirun started, the trainer's
 * collectives (lib/lm/train.h's lstm_train_dist) on MPI_COMM_WORLD, and the end of the job. Built
 * with Open MPI when the Makefile finds it (LSTM_HAVE_MPI); otherwise, and whenever the process was
 * not started by an MPI launcher, there is one rank and MPI is never initialised. */
#ifndef LSTM_TRAIN_DIST_H
#define LSTM_TRAIN_DIST_H
#include <stddef.h>
#include <stdint.h>

#include "train.h"

/* Joins the job when an MPI launcher started this process (MPI_Init_thread); else one rank. Also
 * arranges that an exit before dist_finish (an error, tool_die) aborts the whole job. Returns the
 * number of ranks, or -1 for a build without MPI started by mpirun as one rank of several. */
int dist_init(int *argc, char ***argv);
int dist_rank(void);
int dist_size(void);
/* Ranks of this job on this machine (the cores are shared among them). */
int dist_local_size(void);
/* "Open MPI v4.1.4" and the like, or "" without MPI. */
const char *dist_library(void);

/* The trainer's collectives; overlap: a non-blocking MPI_Iallreduce per range backward finishes,
 * else one MPI_Allreduce of the whole block once backward is done. NULL with one rank. */
const lstm_train_dist *dist_hooks(int overlap);

/* Rank 0's *len bytes at *buf to every rank: the others receive them in a malloc'd *buf. 0 or an
 * LSTM_E_*. */
int dist_bcast(uint8_t **buf, size_t *len);

/* Per step, on average so far: bytes of gradients each rank reduced, seconds spent waiting in
 * grads_wait (the reduction that backward did not hide), steps counted. */
void dist_stats(double *bytes_per_step, double *wait_per_step, long *steps);

/* A normal end: MPI_Finalize (once; nothing without MPI). */
void dist_finish(void);

#endif
