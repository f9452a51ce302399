/* hash.c: lstm_xxh64* and lstm_hash_bytes on libxxhash (hash.h). */
#include "hash.h"

#include <xxhash.h>

/* lstm_xxh64_state is libxxhash's XXH64_state_t under our name: a pointer cast both ways. */
static XXH64_state_t *st(const lstm_xxh64_state *s) { return (XXH64_state_t *)(void *)s; }

uint64_t lstm_xxh64(const void *p, size_t n, uint64_t seed) { return XXH64(p, n, seed); }

lstm_xxh64_state *lstm_xxh64_new(uint64_t seed)
{
    XXH64_state_t *s = XXH64_createState();
    if (s) XXH64_reset(s, seed);
    return (lstm_xxh64_state *)(void *)s;
}

void lstm_xxh64_update(lstm_xxh64_state *s, const void *p, size_t n)
{
    if (n) XXH64_update(st(s), p, n); /* libxxhash fails only on p == NULL with n > 0 */
}

uint64_t lstm_xxh64_digest(const lstm_xxh64_state *s) { return XXH64_digest(st(s)); }

void lstm_xxh64_free(lstm_xxh64_state *s) { XXH64_freeState(st(s)); }

uint64_t lstm_hash_bytes(const void *p, size_t n) { return XXH3_64bits(p, n); }
