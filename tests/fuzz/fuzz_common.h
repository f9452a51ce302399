/* fuzz_common.h: helpers shared by the libFuzzer harnesses: bytes as a file (memfd), so the readers
 * see a real fd or path exactly as the tools give them. */
#ifndef LSTM_FUZZ_COMMON_H
#define LSTM_FUZZ_COMMON_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* A memfd holding data, positioned at 0; aborts on failure (a harness bug, not a finding). */
static inline int fuzz_memfd(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0) { perror("memfd_create"); abort(); }
    size_t off = 0;
    while (off < size) {
        ssize_t k = write(fd, data + off, size - off);
        if (k <= 0) { perror("write"); abort(); }
        off += (size_t)k;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) abort();
    return fd;
}

/* /proc/self/fd/N: a path for APIs that open by name. */
static inline void fuzz_fd_path(int fd, char buf[64]) { snprintf(buf, 64, "/proc/self/fd/%d", fd); }

#endif
