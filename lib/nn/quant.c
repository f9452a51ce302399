/* quant.c: int8 / bf16 weight quantization and the GEMV and row kernels over them (see quant.h): a
 * scalar reference and an AVX2 + FMA twin picked once at run time. */
#include "quant.h"

#include "gemm.h"

#include <math.h>
#include <pthread.h>
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

/* 8 weights of a row at w + j as floats, and one, for either storage type (a constant argument: each
 * caller below is compiled for one). */
AVX2_FN static inline __attribute__((always_inline)) __m256 load8(const void *w, size_t j, int type)
{
    return type == LSTM_Q_INT8 ? load_i8((const int8_t *)w + j) : load_bf16((const uint16_t *)w + j);
}

static inline __attribute__((always_inline)) float load1(const void *w, size_t j, int type)
{
    return type == LSTM_Q_INT8 ? (float)((const int8_t *)w)[j] : lstm_bf16_to_f32(((const uint16_t *)w)[j]);
}

/* y += W x for one storage type. Four rows at a time share each load of x (the output layer's rows are
 * short: H floats of x stay in L1, the weights stream from memory, which is the cost); an int8 row's
 * sum is then scaled. */
AVX2_FN static inline __attribute__((always_inline)) void gemv_rows(float *y, const lstm_qmat *W, const float *x,
                                                                    int type)
{
    int R = W->rows, C = W->cols, C8 = C & ~7, r = 0;
    size_t es = type == LSTM_Q_INT8 ? 1 : 2; /* bytes per weight */
    const char *q = W->w;
#define ROW(k) (q + ((size_t)(r + (k)) * C) * es)
    for (; r + 4 <= R; r += 4) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < C8; j += 8) {
            __m256 xv = _mm256_loadu_ps(x + j);
            a0 = _mm256_fmadd_ps(load8(ROW(0), j, type), xv, a0);
            a1 = _mm256_fmadd_ps(load8(ROW(1), j, type), xv, a1);
            a2 = _mm256_fmadd_ps(load8(ROW(2), j, type), xv, a2);
            a3 = _mm256_fmadd_ps(load8(ROW(3), j, type), xv, a3);
        }
        float s[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
        for (int k = 0; k < 4; k++) {
            for (int j = C8; j < C; j++) s[k] += load1(ROW(k), j, type) * x[j];
            y[r + k] += type == LSTM_Q_INT8 ? s[k] * W->scale[r + k] : s[k];
        }
    }
    for (; r < R; r++) {
        __m256 a0 = _mm256_setzero_ps();
        for (int j = 0; j < C8; j += 8) a0 = _mm256_fmadd_ps(load8(ROW(0), j, type), _mm256_loadu_ps(x + j), a0);
        float s0 = hsum8(a0);
        for (int j = C8; j < C; j++) s0 += load1(ROW(0), j, type) * x[j];
        y[r] += type == LSTM_Q_INT8 ? s0 * W->scale[r] : s0;
    }
#undef ROW
}

AVX2_FN void lstm_qgemv_avx2(float *y, const lstm_qmat *W, const float *x)
{
    if (W->type == LSTM_Q_INT8) gemv_rows(y, W, x, LSTM_Q_INT8);
    else if (W->type == LSTM_Q_BF16) gemv_rows(y, W, x, LSTM_Q_BF16);
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

/* The variant the other kernels run (lib/nn/pick.c: the CPU's best, or LSTM_KERNEL's): the scalar
 * reference with the scalar one, AVX2 with AVX2 or AVX-512 (there is no AVX-512 twin here). */
static void pick(void)
{
    use_avx2 = lstm_quant_have_avx2() && strncmp(lstm_gemm_kernel(), "scalar", 6) != 0;
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
