/* fileio.c: atomic output files, in-place outputs for what is not a regular file, output locks, and
 * input opening. */
#define _GNU_SOURCE /* mkostemp */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temps being written, for lstm_out_unlink_pending (a signal handler may read them at any time: a slot
 * is filled before it is marked used, and unmarked before it is reused). */
#define PENDING_MAX 8
static char pending_path[PENDING_MAX][PATH_MAX + 32];
static volatile sig_atomic_t pending_used[PENDING_MAX];

static int pending_add(const char *tmp)
{
    if (strlen(tmp) >= sizeof pending_path[0]) return -1;
    for (int i = 0; i < PENDING_MAX; i++)
        if (!pending_used[i]) {
            strcpy(pending_path[i], tmp);
            pending_used[i] = 1;
            return i;
        }
    return -1;
}

void lstm_out_unlink_pending(void)
{
    for (int i = 0; i < PENDING_MAX; i++)
        if (pending_used[i]) unlink(pending_path[i]);
}

/* /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N name a descriptor of this process: use it
 * (a socket or a pipe cannot always be opened again by name). -1 if path is none of them. */
static int named_fd(const char *path)
{
    if (!strcmp(path, "/dev/stdout")) return 1;
    if (!strcmp(path, "/dev/stderr")) return 2;
    const char *p = !strncmp(path, "/dev/fd/", 8) ? path + 8 : !strncmp(path, "/proc/self/fd/", 14) ? path + 14 : NULL;
    if (!p || !*p) return -1;
    char *e;
    long n = strtol(p, &e, 10);
    return *e || n < 0 || n > INT_MAX ? -1 : (int)n;
}

/* Follow the symlinks of path itself (not its directories) to the file a rename must replace. Sets
 * *special when the chain passes through /dev or /proc (devices and descriptors: written in place). */
static char *resolve_target(const char *path, int *special)
{
    char *cur = strdup(path);
    *special = 0;
    for (int hop = 0; cur && hop < 40; hop++) {
        if (!strncmp(cur, "/dev/", 5) || !strncmp(cur, "/proc/", 6)) *special = 1;
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) return cur;
        char link[PATH_MAX];
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0) return cur;
        link[n] = 0;
        char *next;
        if (link[0] == '/') next = strdup(link);
        else {
            const char *slash = strrchr(cur, '/');
            size_t dl = slash ? (size_t)(slash - cur + 1) : 0;
            next = malloc(dl + (size_t)n + 1);
            if (next) {
                memcpy(next, cur, dl);
                memcpy(next + dl, link, (size_t)n + 1);
            }
        }
        free(cur);
        cur = next;
    }
    return cur;
}

int lstm_out_in_place(const char *path)
{
    if (!path || !strcmp(path, "-")) return 0;
    if (named_fd(path) >= 0) return 1;
    int special;
    char *target = resolve_target(path, &special);
    struct stat st;
    int in_place = special || (target && stat(target, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode));
    free(target);
    return in_place;
}

int lstm_out_open(lstm_out *o, const char *path, int force)
{
    o->fd = 1;
    o->path = o->tmp = NULL;
    o->slot = -1;
    if (!path || strcmp(path, "-") == 0) return LSTM_OK;
    int nfd = named_fd(path);
    if (nfd >= 0) {
        if ((o->fd = fcntl(nfd, F_DUPFD_CLOEXEC, 3)) < 0) return LSTM_E_IO;
        return LSTM_OK;
    }
    int special;
    char *target = resolve_target(path, &special);
    if (!target) return LSTM_E_NOMEM;
    struct stat st;
    int exists = stat(target, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        free(target);
        errno = EISDIR;
        return LSTM_E_IO;
    }
    if (special || (exists && !S_ISREG(st.st_mode))) { /* a device, FIFO or socket: in place */
        o->fd = open(target, O_WRONLY | O_CLOEXEC);
        int e = errno;
        free(target);
        errno = e;
        return o->fd < 0 ? LSTM_E_IO : LSTM_OK;
    }
    if (exists && !force) {
        free(target);
        return LSTM_E_EXISTS;
    }
    size_t n = strlen(target);
    o->path = target;
    o->tmp = malloc(n + 16);
    if (!o->tmp) { lstm_out_abort(o); return LSTM_E_NOMEM; }
    memcpy(o->tmp, target, n);
    memcpy(o->tmp + n, ".tmp.XXXXXX", 12);
    o->fd = mkostemp(o->tmp, O_CLOEXEC);
    if (o->fd < 0) {
        int e = errno;
        free(o->tmp);
        o->tmp = NULL;
        lstm_out_abort(o);
        errno = e;
        return LSTM_E_IO;
    }
    flock(o->fd, LOCK_EX | LOCK_NB); /* marks the temp as owned by a live writer (lstm_out_remove_stale) */
    o->slot = pending_add(o->tmp);
    fchmod(o->fd, 0644); /* mkstemp makes 0600; outputs are ordinary files */
    return LSTM_OK;
}

static void pending_drop(lstm_out *o)
{
    if (o->slot >= 0) pending_used[o->slot] = 0;
    o->slot = -1;
}

int lstm_out_commit(lstm_out *o)
{
    if (!o->tmp) { /* stdout stays open; an in-place output is closed, its error reported */
        if (o->fd > 2 && close(o->fd) != 0) { o->fd = -1; return LSTM_E_IO; }
        o->fd = -1;
        return LSTM_OK;
    }
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
    pending_drop(o);
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
    return LSTM_OK;
}

void lstm_out_abort(lstm_out *o)
{
    if (o->tmp) {
        pending_drop(o);
        if (o->fd >= 0) close(o->fd);
        unlink(o->tmp);
    } else if (o->fd > 2) {
        close(o->fd);
    }
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
    o->fd = -1;
}

int lstm_out_remove_stale(const char *path, const char *keep)
{
    int special;
    char *target = resolve_target(path, &special);
    if (!target || special) { free(target); return 0; }
    char pat[2 * PATH_MAX + 16], *q = pat;
    for (const char *p = target; *p && q < pat + sizeof pat - 16; p++) {
        if (strchr("*?[\\", *p)) *q++ = '\\';
        *q++ = *p;
    }
    strcpy(q, ".tmp.??????");
    free(target);
    glob_t g;
    if (glob(pat, GLOB_NOSORT, NULL, &g) != 0) return 0;
    int removed = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (keep && !strcmp(g.gl_pathv[i], keep)) continue;
        int fd = open(g.gl_pathv[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(g.gl_pathv[i]) == 0) removed++;
        close(fd);
    }
    globfree(&g);
    return removed;
}

int lstm_lock_take(lstm_lock *l, const char *path, long *holder)
{
    l->fd = -1;
    l->path = NULL;
    *holder = 0;
    int special;
    char *target = resolve_target(path, &special);
    if (!target) return LSTM_E_NOMEM;
    if (special) { free(target); return LSTM_OK; } /* a device needs no lock */
    size_t n = strlen(target);
    char *lp = malloc(n + 6);
    if (!lp) { free(target); return LSTM_E_NOMEM; }
    memcpy(lp, target, n);
    memcpy(lp + n, ".lock", 6);
    free(target);
    for (int tries = 0; tries < 100; tries++) {
        int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) { int e = errno; free(lp); errno = e; return LSTM_E_IO; }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            char buf[32] = {0};
            if (e == EWOULDBLOCK && pread(fd, buf, sizeof buf - 1, 0) > 0) *holder = strtol(buf, NULL, 10);
            close(fd);
            free(lp);
            if (e == EWOULDBLOCK) return LSTM_E_BUSY;
            errno = e;
            return LSTM_E_IO;
        }
        /* The holder before us may have unlinked the file between our open and our lock: then the lock
         * is on a file nobody else will find, so start again. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lp, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
            char pid[32];
            int k = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)k, 0) != k) { /* the lock holds even so */ }
            l->fd = fd;
            l->path = lp;
            return LSTM_OK;
        }
        close(fd);
    }
    free(lp);
    return LSTM_E_BUSY;
}

void lstm_lock_release(lstm_lock *l)
{
    if (l->fd >= 0) {
        unlink(l->path); /* while still holding it, so a waiting process retries on a fresh file */
        close(l->fd);
    }
    free(l->path);
    l->fd = -1;
    l->path = NULL;
}

/* An absolute path for a file that may not exist: its directory resolved, then its name. */
static char *abs_path(const char *p)
{
    char *r = realpath(p, NULL);
    if (r) return r;
    const char *slash = strrchr(p, '/');
    char dir[PATH_MAX];
    const char *base = slash ? slash + 1 : p;
    if (slash) {
        size_t dl = slash == p ? 1 : (size_t)(slash - p);
        if (dl >= sizeof dir) return NULL;
        memcpy(dir, p, dl);
        dir[dl] = 0;
    } else {
        strcpy(dir, ".");
    }
    char *d = realpath(dir, NULL);
    if (!d) return strdup(p);
    size_t a = strlen(d), b = strlen(base);
    char *out = malloc(a + b + 2);
    if (out) {
        memcpy(out, d, a);
        out[a] = '/';
        memcpy(out + a + 1, base, b + 1);
    }
    free(d);
    return out;
}

int lstm_same_file(const char *a, const char *b)
{
    if (!a || !b || !strcmp(a, "-") || !strcmp(b, "-")) return 0;
    struct stat sa, sb;
    int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea && eb) {
        /* Two names of one device (/dev/null twice) write in place without harm. */
        if (!S_ISREG(sa.st_mode) || !S_ISREG(sb.st_mode)) return 0;
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    }
    if (ea != eb) return 0;
    char *pa = abs_path(a), *pb = abs_path(b);
    int same = pa && pb && !strcmp(pa, pb);
    free(pa);
    free(pb);
    return same;
}

int lstm_reserve_std_fds(int *closed)
{
    if (closed) *closed = 0;
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        if (closed) *closed |= 1 << fd;
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n < 0) return LSTM_E_IO;
        if (n != fd) { /* a lower fd was closed too and took it: the loop fills that one first */
            if (dup2(n, fd) < 0) return LSTM_E_IO;
            close(n);
        }
    }
    return LSTM_OK;
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
