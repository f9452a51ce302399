/* fileio.c: atomic output files and input opening. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lstm_out_open(lstm_out *o, const char *path, int force)
{
    o->fd = 1;
    o->path = o->tmp = NULL;
    if (!path || strcmp(path, "-") == 0) return LSTM_OK;
    struct stat st;
    if (!force && stat(path, &st) == 0) return LSTM_E_EXISTS;
    size_t n = strlen(path);
    o->path = strdup(path);
    o->tmp = malloc(n + 16);
    if (!o->path || !o->tmp) { lstm_out_abort(o); return LSTM_E_NOMEM; }
    memcpy(o->tmp, path, n);
    memcpy(o->tmp + n, ".tmp.XXXXXX", 12);
    o->fd = mkstemp(o->tmp);
    if (o->fd < 0) {
        int e = errno;
        free(o->tmp);
        o->tmp = NULL;
        lstm_out_abort(o);
        errno = e;
        return LSTM_E_IO;
    }
    fchmod(o->fd, 0644 & ~(mode_t)0); /* mkstemp makes 0600; outputs are ordinary files */
    return LSTM_OK;
}

int lstm_out_commit(lstm_out *o)
{
    if (!o->tmp) return LSTM_OK;
    if (fsync(o->fd) != 0 || close(o->fd) != 0) {
        int e = errno;
        o->fd = -1;
        lstm_out_abort(o);
        errno = e;
        return LSTM_E_IO;
    }
    o->fd = -1;
    if (rename(o->tmp, o->path) != 0) {
        int e = errno;
        lstm_out_abort(o);
        errno = e;
        return LSTM_E_IO;
    }
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
    return LSTM_OK;
}

void lstm_out_abort(lstm_out *o)
{
    if (o->tmp) {
        if (o->fd >= 0) close(o->fd);
        unlink(o->tmp);
    }
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
    o->fd = -1;
}

int lstm_in_open(const char *path)
{
    if (!path || strcmp(path, "-") == 0) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return LSTM_E_IO;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        errno = EISDIR;
        return LSTM_E_IO;
    }
    return fd;
}

long long lstm_file_size(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
    return (long long)st.st_size;
}
