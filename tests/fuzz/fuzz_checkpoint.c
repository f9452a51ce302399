/* fuzz_checkpoint: the checkpoint container (lstm_ck_open) and the model checkpoint on top of it
 * (lstm_modelfile_open, then the tokenizer blob and the training state it carries). Input byte 0:
 * bit 0 set = the harness rewrites the trailing XXH64 so that mutations get past the checksum and
 * reach the table and config parsers; clear = the bytes are used as is. */
#include "fuzz_common.h"

#include <string.h>

#include "checkpoint.h"
#include "hash.h"
#include "modelfile.h"
#include "stream.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if ((mode & 1) && size >= 8) lstm_put_u64(copy + size - 8, lstm_xxh64(copy, size - 8, 0));
    int fd = fuzz_memfd(copy, size);
    char path[64];
    fuzz_fd_path(fd, path);

    lstm_ck *ck;
    if (lstm_ck_open(&ck, path) == 0) {
        for (size_t i = 0; i < lstm_ck_count(ck); i++) {
            const lstm_ck_entry *e = lstm_ck_at(ck, i);
            volatile uint8_t sink = 0;
            const uint8_t *p = e->data;
            for (uint64_t j = 0; j < e->nbytes; j++) sink ^= p[j]; /* every entry lies inside the map */
            (void)sink;
            if (strlen(e->name) == 0) abort();
        }
        lstm_ck_close(ck);
    }
    lstm_modelfile f;
    if (lstm_modelfile_open(&f, path) == 0) {
        const lstm_model *m = &f.model;
        volatile float s = 0;
        for (size_t i = 0; i < m->n_params; i++) s += m->params[i];
        (void)s;
        lstm_tokenizer *t;
        if (lstm_tokenizer_load(&t, f.tokenizer, f.tokenizer_len) == 0) lstm_tokenizer_free(t);
        char buf[64];
        if (f.train) lstm_kv_get(f.train, f.train_len, "epoch", buf, sizeof buf);
        lstm_modelfile_close(&f);
    }
    close(fd);
    free(copy);
    return 0;
}
