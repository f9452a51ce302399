/* hash.h: the project's one hash family, xxHash, from Debian's libxxhash. XXH64 (seed 0) is the
 * checksum stored in checkpoints and n-gram model files: its values are part of those formats.
 * XXH3 (64-bit) hashes the keys of in-memory tables (the tokenizer's strings, the n-gram tuples):
 * its values are never stored and no output order depends on them. */
#ifndef LSTM_HASH_H
#define LSTM_HASH_H
#include <stddef.h>
#include <stdint.h>

/* XXH64 of p (n bytes). */
uint64_t lstm_xxh64(const void *p, size_t n, uint64_t seed);

/* XXH64 over data given in pieces: new, update any number of times, digest (the state stays usable),
 * free. The state is libxxhash's, on the heap (its layout is private to the library). */
typedef struct lstm_xxh64_state lstm_xxh64_state;
lstm_xxh64_state *lstm_xxh64_new(uint64_t seed); /* NULL when out of memory */
void lstm_xxh64_update(lstm_xxh64_state *s, const void *p, size_t n);
uint64_t lstm_xxh64_digest(const lstm_xxh64_state *s);
void lstm_xxh64_free(lstm_xxh64_state *s); /* NULL is a no-op */

/* The hash-table hash of p (n bytes): XXH3_64bits. Never written to a file, so it can change without
 * a format change. */
uint64_t lstm_hash_bytes(const void *p, size_t n);

#endif
