/* mkseed: writes the tokenizer blob carried by a stream's metadata to stdout (a seed for fuzz_tokblob).
 * Usage: mkseed STREAM > blob */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "stream.h"

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: mkseed STREAM\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    lstm_reader *r;
    if (fd < 0 || lstm_reader_open(&r, fd, 0)) { fprintf(stderr, "mkseed: %s: not a stream\n", argv[1]); return 1; }
    size_t n;
    const uint8_t *b = lstm_meta_get(lstm_reader_meta(r), "tokenizer", &n);
    if (!b) { fprintf(stderr, "mkseed: %s: no tokenizer\n", argv[1]); return 1; }
    if (fwrite(b, 1, n, stdout) != n) return 1;
    lstm_reader_free(r);
    close(fd);
    return 0;
}
