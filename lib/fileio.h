/* fileio.h: output files that appear whole or not at all (temp file in the same directory, fsync,
 * rename), and input opening with "-" meaning stdin. */
#ifndef LSTM_FILEIO_H
#define LSTM_FILEIO_H
#include "errors.h"

typedef struct {
    int fd;     /* write here */
    char *path; /* final path; NULL for stdout */
    char *tmp;  /* temp path being written; NULL for stdout */
} lstm_out;

/* path NULL or "-" = stdout. Otherwise refuses an existing path unless force (LSTM_E_EXISTS), and
 * creates a temp file beside it (LSTM_E_IO with errno set, e.g. ENOENT for a missing directory). */
int lstm_out_open(lstm_out *o, const char *path, int force);
/* fsync + close + rename over the final path (files); nothing for stdout. */
int lstm_out_commit(lstm_out *o);
/* Close and remove the temp file: nothing partial is left behind. Safe to call twice. */
void lstm_out_abort(lstm_out *o);

/* path NULL or "-" = stdin (fd 0). Returns an fd, or LSTM_E_IO with errno set. */
int lstm_in_open(const char *path);

/* Size of a regular file, or -1 (pipe, error). */
long long lstm_file_size(int fd);

#endif
