/* fuzz_tokblob: the tokenizer blob loader (lstm_tokenizer_load), as found in stream metadata and
 * checkpoints. A blob that loads must encode, decode and serialise back to the same bytes. */
#include "fuzz_common.h"

#include <string.h>

#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lstm_tokenizer *t;
    if (lstm_tokenizer_load(&t, data, size) != 0) return 0;
    static const char text[] = "Hello, the cat sat on the mat 🙂 Жук";
    lstm_ids ids = {0};
    if (lstm_tokenizer_encode(t, text, sizeof text - 1, &ids) == 0) {
        uint32_t V = lstm_tokenizer_vocab_size(t);
        for (size_t i = 0; i < ids.n; i++)
            if (ids.v[i] >= V) abort();
        char *s;
        size_t n;
        if (lstm_tokenizer_decode(t, ids.v, ids.n, &s, &n) == 0) free(s);
    }
    lstm_ids_free(&ids);
    uint32_t V = lstm_tokenizer_vocab_size(t);
    for (uint32_t id = 0; id < V && id < 300; id++) {
        size_t n;
        if (!lstm_tokenizer_piece(t, id, &n)) abort();
    }
    int64_t sp = lstm_tokenizer_speaker_id(t, "user");
    (void)sp;
    uint8_t *b;
    size_t n;
    if (lstm_tokenizer_serialize(t, &b, &n) == 0) {
        lstm_tokenizer *u;
        if (lstm_tokenizer_load(&u, b, n) != 0) abort(); /* what we write, we read */
        if (!lstm_tokenizer_equal(t, u)) abort();
        lstm_tokenizer_free(u);
        free(b);
    }
    lstm_tokenizer_free(t);
    return 0;
}
