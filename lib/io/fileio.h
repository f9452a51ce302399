/* fileio.h: output files that appear whole or not at all, and the rules every tool's outputs follow.
 *
 * A regular file (or a path that does not exist yet) is written to a temp file beside it, fsynced and
 * renamed over it; a symlink is followed and its target replaced, never the link. Anything else (a
 * character device such as /dev/null, a FIFO, a socket, /dev/stdout, /proc/self/fd/N) is opened and
 * written in place: never renamed over, never unlinked, and -f is not needed for it. */
#ifndef LSTM_FILEIO_H
#define LSTM_FILEIO_H
#include "errors.h"

typedef struct {
    int fd;     /* write here */
    char *path; /* final path (the symlink's target); NULL for stdout and in-place outputs */
    char *tmp;  /* temp path being written; NULL for stdout and in-place outputs */
    int slot;   /* index in the table of pending temps (-1: none) */
} lstm_out;

/* path NULL or "-" = stdout. A regular file that exists is refused unless force (LSTM_E_EXISTS); a
 * directory is LSTM_E_IO with errno EISDIR; failures to create the temp are LSTM_E_IO with errno set. */
int lstm_out_open(lstm_out *o, const char *path, int force);
/* fsync + close + rename over the final path (files); close for in-place outputs; nothing for stdout. */
int lstm_out_commit(lstm_out *o);
/* Close and remove the temp file: nothing partial is left behind. Safe to call twice. */
void lstm_out_abort(lstm_out *o);
/* Unlink every temp file still being written (async-signal-safe: for a signal handler that exits). */
void lstm_out_unlink_pending(void);

/* Remove the temps of an output (FILE.tmp.XXXXXX) left by writers that are gone (killed, power loss);
 * a temp another live process is writing is kept (writers hold a lock on their temp). `keep` is never
 * removed. Returns how many were removed. */
int lstm_out_remove_stale(const char *path, const char *keep);

/* An exclusive lock on FILE (held through FILE.lock, which names the holder's pid), so that two
 * processes never write the same output. LSTM_E_BUSY when another live process holds it (*holder set
 * to its pid when known, else 0). */
typedef struct {
    int fd;
    char *path;
} lstm_lock;
int lstm_lock_take(lstm_lock *l, const char *path, long *holder);
void lstm_lock_release(lstm_lock *l);

/* Whether two paths name the same file: the same inode when both exist, else the same absolute path
 * (after following symlinks of the directories). "-" and NULL never match anything. */
int lstm_same_file(const char *a, const char *b);

/* Open /dev/null on any of fds 0, 1, 2 that is closed, so that a file opened later never becomes a
 * standard stream (`tool -o x <&-` would read its own output). Call first in main. *closed (if not
 * NULL) gets bit fd set for each fd that was closed, so a tool can still refuse to read a closed stdin
 * or write data to a closed stdout. */
int lstm_reserve_std_fds(int *closed);

/* Whether lstm_out_open writes path in place (a device, FIFO, socket, /dev/stdout, /proc/self/fd/N, or
 * a symlink to one) rather than through a temp file and a rename. */
int lstm_out_in_place(const char *path);

/* path NULL or "-" = stdin (fd 0). Returns an fd, or LSTM_E_IO with errno set. */
int lstm_in_open(const char *path);

/* Size of a regular file, or -1 (pipe, error). */
long long lstm_file_size(int fd);

#endif
