/* rng.h: a small, explicit-state random generator (splitmix64), so every random draw is reproducible
 * from --seed and the state can be saved in a checkpoint. */
#ifndef LSTM_RNG_H
#define LSTM_RNG_H
#include <stdint.h>

typedef struct { uint64_t s; } lstm_rng;

static inline void lstm_rng_seed(lstm_rng *r, uint64_t seed) { r->s = seed ^ 0x9E3779B97F4A7C15ull; }

static inline uint64_t lstm_rng_next(lstm_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The k-th value (k = 0: the next) lstm_rng_next would return, without moving: splitmix64 is a
 * counter, so any draw of a stream can be computed on its own (each rank draws only its lanes'). */
static inline uint64_t lstm_rng_at(const lstm_rng *r, uint64_t k)
{
    uint64_t z = r->s + (k + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Moves the stream past k draws. */
static inline void lstm_rng_skip(lstm_rng *r, uint64_t k) { r->s += k * 0x9E3779B97F4A7C15ull; }

/* Uniform in [0, 1) with 24 bits of precision (exactly representable as float). */
static inline float lstm_rng_uniform(lstm_rng *r) { return (float)(lstm_rng_next(r) >> 40) * (1.0f / 16777216.0f); }
static inline float lstm_rng_uniform_at(const lstm_rng *r, uint64_t k)
{
    return (float)(lstm_rng_at(r, k) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n), n > 0. */
static inline uint32_t lstm_rng_below(lstm_rng *r, uint32_t n) { return (uint32_t)(((lstm_rng_next(r) >> 32) * (uint64_t)n) >> 32); }

#endif
