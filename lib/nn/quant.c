/* quant.c: int8 / bf16 weight quantization and the GEMV and row kernels over them (see quant.h): a
 * scalar reference and an AVX2 + FMA twin picked once at run time. */
#include "quant.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QUANT_X86 1
#endif

const char *lstm_quant_name(int type)
{
    switch (type) {
    case LSTM_Q_NONE: return "none";
    case LSTM_Q_INT8: return "int8";
    case LSTM_Q_BF16: return "bf16";
    }
    return "?";
}

int lstm_quant_from_name(const char *name)
{
    for (int t = 0; t <= LSTM_Q_BF16; t++)
        if (strcmp(name, lstm_quant_name(t)) == 0) return t;
    return -1;
}

/* ------------------------------------------------------------------ quantization */

void lstm_quant_int8(int8_t *q, float *scale, const float *W, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        const float *w = W + (size_t)r * cols;
        int8_t *qr = q + (size_t)r * cols;
        float mx = 0.0f;
        int bad = 0;
        for (int j = 0; j < cols; j++) {
            mx = fabsf(w[j]) > mx ? fabsf(w[j]) : mx;
            bad |= !isfinite(w[j]);
        }
        if (bad) { /* a NaN or Inf row stays visibly broken: a NaN scale, never a plausible int8 row */
            scale[r] = NAN;
            memset(qr, 0, (size_t)cols);
            continue;
        }
        float s = mx / 127.0f;
        scale[r] = s;
        for (int j = 0; j < cols; j++) {
            /* w / s, not w * (1 / s): the quotient rounds once, so |w / s| <= 127 holds exactly at the max */
            long v = s > 0.0f ? lrintf(w[j] / s) : 0;
            qr[j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

uint16_t lstm_bf16_from_f32(float x)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x0040u); /* a quiet NaN stays a NaN */
    b += 0x7fffu + ((b >> 16) & 1u); /* round to nearest, ties to the even upper half */
    return (uint16_t)(b >> 16);
}

float lstm_bf16_to_f32(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float x;
    memcpy(&x, &b, 4);
    return x;
}

void lstm_quant_bf16(uint16_t *out, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = lstm_bf16_from_f32(x[i]);
}

/* ------------------------------------------------------------------ scalar reference */

void lstm_qgemv_ref(float *y, const lstm_qmat *W, const float *x)
{
    int R = W->rows, C = W->cols;
    if (W->type == LSTM_Q_INT8) {
        const int8_t *q = W->w;
        for (int r = 0; r < R; r++) {
            const int8_t *qr = q + (size_t)r * C;
            float acc = 0.0f;
            for (int j = 0; j < C; j++) acc += (float)qr[j] * x[j];
            y[r] += acc * W->scale[r];
        }
    } else if (W->type == LSTM_Q_BF16) {
        const uint16_t *q = W->w;
        for (int r = 0; r < R; r++) {
            const uint16_t *qr = q + (size_t)r * C;
            float acc = 0.0f;
            for (int j = 0; j < C; j++) acc += lstm_bf16_to_f32(qr[j]) * x[j];
            y[r] += acc;
        }
    }
}

void lstm_qrow_ref(float *out, const lstm_qmat *W, int r)
{
    int C = W->cols;
    if (W->type == LSTM_Q_INT8) {
        const int8_t *qr = (const int8_t *)W->w + (size_t)r * C;
        float s = W->scale[r];
        for (int j = 0; j < C; j++) out[j] = (float)qr[j] * s;
    } else if (W->type == LSTM_Q_BF16) {
        const uint16_t *qr = (const uint16_t *)W->w + (size_t)r * C;
        for (int j = 0; j < C; j++) out[j] = lstm_bf16_to_f32(qr[j]);
    }
}

/* ------------------------------------------------------------------ AVX2 + FMA */

#ifdef QUANT_X86
#define AVX2_FN __attribute__((target("avx2,fma")))

AVX2_FN static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* 8 weights from p as floats. */
AVX2_FN static inline __m256 load_i8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

AVX2_FN static inline __m256 load_bf16(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* Four rows at a time share each load of x (the output layer's rows are short: H floats of x stay in
 * L1, the weights stream from memory, which is the cost). */
AVX2_FN void lstm_qgemv_avx2(float *y, const lstm_qmat *W, const float *x)
{
    int R = W->rows, C = W->cols, C8 = C & ~7;
    int r = 0;
    if (W->type == LSTM_Q_INT8) {
        const int8_t *q = W->w;
        for (; r + 4 <= R; r += 4) {
            const int8_t *q0 = q + (size_t)r * C, *q1 = q0 + C, *q2 = q1 + C, *q3 = q2 + C;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < C8; j += 8) {
                __m256 xv = _mm256_loadu_ps(x + j);
                a0 = _mm256_fmadd_ps(load_i8(q0 + j), xv, a0);
                a1 = _mm256_fmadd_ps(load_i8(q1 + j), xv, a1);
                a2 = _mm256_fmadd_ps(load_i8(q2 + j), xv, a2);
                a3 = _mm256_fmadd_ps(load_i8(q3 + j), xv, a3);
            }
            float s0 = hsum8(a0), s1 = hsum8(a1), s2 = hsum8(a2), s3 = hsum8(a3);
            for (int j = C8; j < C; j++) {
                s0 += (float)q0[j] * x[j];
                s1 += (float)q1[j] * x[j];
                s2 += (float)q2[j] * x[j];
                s3 += (float)q3[j] * x[j];
            }
            y[r] += s0 * W->scale[r];
            y[r + 1] += s1 * W->scale[r + 1];
            y[r + 2] += s2 * W->scale[r + 2];
            y[r + 3] += s3 * W->scale[r + 3];
        }
        for (; r < R; r++) {
            const int8_t *q0 = q + (size_t)r * C;
            __m256 a0 = _mm256_setzero_ps();
            for (int j = 0; j < C8; j += 8) a0 = _mm256_fmadd_ps(load_i8(q0 + j), _mm256_loadu_ps(x + j), a0);
            float s0 = hsum8(a0);
            for (int j = C8; j < C; j++) s0 += (float)q0[j] * x[j];
            y[r] += s0 * W->scale[r];
        }
    } else if (W->type == LSTM_Q_BF16) {
        const uint16_t *q = W->w;
        for (; r + 4 <= R; r += 4) {
            const uint16_t *q0 = q + (size_t)r * C, *q1 = q0 + C, *q2 = q1 + C, *q3 = q2 + C;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < C8; j += 8) {
                __m256 xv = _mm256_loadu_ps(x + j);
                a0 = _mm256_fmadd_ps(load_bf16(q0 + j), xv, a0);
                a1 = _mm256_fmadd_ps(load_bf16(q1 + j), xv, a1);
                a2 = _mm256_fmadd_ps(load_bf16(q2 + j), xv, a2);
                a3 = _mm256_fmadd_ps(load_bf16(q3 + j), xv, a3);
            }
            float s0 = hsum8(a0), s1 = hsum8(a1), s2 = hsum8(a2), s3 = hsum8(a3);
            for (int j = C8; j < C; j++) {
                s0 += lstm_bf16_to_f32(q0[j]) * x[j];
                s1 += lstm_bf16_to_f32(q1[j]) * x[j];
                s2 += lstm_bf16_to_f32(q2[j]) * x[j];
                s3 += lstm_bf16_to_f32(q3[j]) * x[j];
            }
            y[r] += s0;
            y[r + 1] += s1;
            y[r + 2] += s2;
            y[r + 3] += s3;
        }
        for (; r < R; r++) {
            const uint16_t *q0 = q + (size_t)r * C;
            __m256 a0 = _mm256_setzero_ps();
            for (int j = 0; j < C8; j += 8) a0 = _mm256_fmadd_ps(load_bf16(q0 + j), _mm256_loadu_ps(x + j), a0);
            float s0 = hsum8(a0);
            for (int j = C8; j < C; j++) s0 += lstm_bf16_to_f32(q0[j]) * x[j];
            y[r] += s0;
        }
    }
}

AVX2_FN void lstm_qrow_avx2(float *out, const lstm_qmat *W, int r)
{
    int C = W->cols, C8 = C & ~7, j = 0;
    if (W->type == LSTM_Q_INT8) {
        const int8_t *qr = (const int8_t *)W->w + (size_t)r * C;
        float s = W->scale[r];
        __m256 sv = _mm256_set1_ps(s);
        for (; j < C8; j += 8) _mm256_storeu_ps(out + j, _mm256_mul_ps(load_i8(qr + j), sv));
        for (; j < C; j++) out[j] = (float)qr[j] * s;
    } else if (W->type == LSTM_Q_BF16) {
        const uint16_t *qr = (const uint16_t *)W->w + (size_t)r * C;
        for (; j < C8; j += 8) _mm256_storeu_ps(out + j, load_bf16(qr + j));
        for (; j < C; j++) out[j] = lstm_bf16_to_f32(qr[j]);
    }
}

int lstm_quant_have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
void lstm_qgemv_avx2(float *y, const lstm_qmat *W, const float *x) { lstm_qgemv_ref(y, W, x); }
void lstm_qrow_avx2(float *out, const lstm_qmat *W, int r) { lstm_qrow_ref(out, W, r); }
int lstm_quant_have_avx2(void) { return 0; }
#endif

/* ------------------------------------------------------------------ dispatch */

static pthread_once_t pick_once = PTHREAD_ONCE_INIT;
static int use_avx2;

/* LSTM_KERNEL=scalar (the variable that picks the other kernels' variant too) asks for the reference;
 * any other value, or none, takes AVX2 where the CPU has it (there is no AVX-512 twin). */
static void pick(void)
{
    const char *env = getenv("LSTM_KERNEL");
    use_avx2 = lstm_quant_have_avx2() && !(env && strcmp(env, "scalar") == 0);
}

const char *lstm_quant_kernel(void)
{
    pthread_once(&pick_once, pick);
    return use_avx2 ? "avx2+fma" : "scalar";
}

void lstm_qgemv(float *y, const lstm_qmat *W, const float *x)
{
    pthread_once(&pick_once, pick);
    (use_avx2 ? lstm_qgemv_avx2 : lstm_qgemv_ref)(y, W, x);
}

void lstm_qrow(float *out, const lstm_qmat *W, int r)
{
    pthread_once(&pick_once, pick);
    (use_avx2 ? lstm_qrow_avx2 : lstm_qrow_ref)(out, W, r);
}

void lstm_qdequant(float *out, const lstm_qmat *W)
{
    for (int r = 0; r < W->rows; r++) lstm_qrow(out + (size_t)r * W->cols, W, r);
}
