/* vec.c: the vectorized elementwise kernels of cells.h (exp, sigmoid, tanh) and the output layer's row
 * kernels (vec.h). Built once per x86-64 kernel like gemm.c (VEC_VARIANT avx512, avx2, scalar, with
 * that kernel's -m flags; entry points suffixed _avx512, ...) and picked at run time by pick.c; on
 * other machines once, with the plain names. The code paths a build has follow from its -m flags. */
#ifdef VEC_VARIANT
#define VEC_CAT2(a, b) a##_##b
#define VEC_CAT(a, b) VEC_CAT2(a, b)
#define lstm_vexp VEC_CAT(lstm_vexp, VEC_VARIANT)
#define lstm_vsigmoid VEC_CAT(lstm_vsigmoid, VEC_VARIANT)
#define lstm_vtanh VEC_CAT(lstm_vtanh, VEC_VARIANT)
#define lstm_row_bias_max VEC_CAT(lstm_row_bias_max, VEC_VARIANT)
#define lstm_row_sum_exp VEC_CAT(lstm_row_sum_exp, VEC_VARIANT)
#define lstm_row_softmax_grad VEC_CAT(lstm_row_softmax_grad, VEC_VARIANT)
#endif
#include "cells.h"
#include "vec.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LSTM_HAVE_AVX2 1
#if defined(__AVX512F__)
#define LSTM_HAVE_AVX512 1
#endif
#endif

/* ---------------------------------------------------------------------------------------------------
 * Elementwise math. exp(x) = 2^n * e^r with n = round(x / ln2) and |r| <= ln2/2; e^r by its Taylor
 * series to degree 7 (truncation < 1e-8 relative on that interval), ln2 split in a short high part
 * (exact n*ln2_hi for |n| <= 128) and a low part so r keeps full precision. The scalar and the AVX2
 * versions use the same steps so a vector body and its scalar tail agree. */

#define EXP_LO (-87.3f) /* n >= -126: 2^n stays a normal float */
#define EXP_HI 88.3f    /* n <= 127 */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)

static inline float exp1(float x)
{
    x = x < EXP_LO ? EXP_LO : (x > EXP_HI ? EXP_HI : x);
    float n = nearbyintf(x * LOG2E);
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigmoid1(float x) { return 1.0f / (1.0f + exp1(-x)); }

/* tanh from e = exp(-2|x|) as (1-e)/(1+e); below |x| = 0.1 its odd series to x^7 (error < 1e-10), since
 * 1-e loses relative precision there. */
static inline float tanh1(float x)
{
    float a = fabsf(x), t;
    if (a < 0.1f) {
        float a2 = a * a;
        t = a * (1.0f + a2 * (-1.0f / 3.0f + a2 * (2.0f / 15.0f + a2 * (-17.0f / 315.0f))));
    } else {
        float e = exp1(-2.0f * a);
        t = (1.0f - e) / (1.0f + e);
    }
    return x < 0 ? -t : t;
}

#ifdef LSTM_HAVE_AVX2
static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline __m256 sigmoid8(__m256 x)
{
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

static inline __m256 tanh8(__m256 x)
{
    __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(sign, x);
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp8(_mm256_mul_ps(a, _mm256_set1_ps(-2.0f)));
    __m256 big = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
    __m256 a2 = _mm256_mul_ps(a, a);
    __m256 s = _mm256_fmadd_ps(a2, _mm256_set1_ps(-17.0f / 315.0f), _mm256_set1_ps(2.0f / 15.0f));
    s = _mm256_fmadd_ps(a2, s, _mm256_set1_ps(-1.0f / 3.0f));
    s = _mm256_fmadd_ps(a2, s, one);
    s = _mm256_mul_ps(a, s);
    __m256 small = _mm256_cmp_ps(a, _mm256_set1_ps(0.1f), _CMP_LT_OQ);
    __m256 t = _mm256_blendv_ps(big, s, small);
    return _mm256_or_ps(t, _mm256_and_ps(sign, x));
}
#endif


#ifdef LSTM_HAVE_AVX512
/* The same steps 16 wide; scalef does the 2^n. Loops run these first, then the 8-wide ones on what is
 * left, then the scalar ones, so a build with -march=native exercises all three on odd lengths. */
static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LO)), _mm512_set1_ps(EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 sigmoid16(__m512 x)
{
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

static inline __m512 tanh16(__m512 x)
{
    __m512 a = _mm512_abs_ps(x);
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = exp16(_mm512_mul_ps(a, _mm512_set1_ps(-2.0f)));
    __m512 big = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
    __m512 a2 = _mm512_mul_ps(a, a);
    __m512 s = _mm512_fmadd_ps(a2, _mm512_set1_ps(-17.0f / 315.0f), _mm512_set1_ps(2.0f / 15.0f));
    s = _mm512_fmadd_ps(a2, s, _mm512_set1_ps(-1.0f / 3.0f));
    s = _mm512_fmadd_ps(a2, s, one);
    s = _mm512_mul_ps(a, s);
    __m512 t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.1f), _CMP_LT_OQ), big, s);
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign));
}
#endif

void lstm_vexp(float *y, const float *x, size_t n)
{
    size_t i = 0;
#ifdef LSTM_HAVE_AVX512
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp16(_mm512_loadu_ps(x + i)));
#endif
#ifdef LSTM_HAVE_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = exp1(x[i]);
}

void lstm_vsigmoid(float *y, const float *x, size_t n)
{
    size_t i = 0;
#ifdef LSTM_HAVE_AVX512
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, sigmoid16(_mm512_loadu_ps(x + i)));
#endif
#ifdef LSTM_HAVE_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, sigmoid8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = sigmoid1(x[i]);
}

void lstm_vtanh(float *y, const float *x, size_t n)
{
    size_t i = 0;
#ifdef LSTM_HAVE_AVX512
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, tanh16(_mm512_loadu_ps(x + i)));
#endif
#ifdef LSTM_HAVE_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, tanh8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = tanh1(x[i]);
}

/* max(row), read only. */
static float row_max(const float *row, int V)
{
    int j = 0;
    float m = -INFINITY;
#ifdef LSTM_HAVE_AVX512
    if (V >= 16) {
        __m512 vm = _mm512_set1_ps(-INFINITY);
        for (; j + 16 <= V; j += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(row + j));
        m = _mm512_reduce_max_ps(vm);
    }
#endif
#ifdef LSTM_HAVE_AVX2
    if (V - j >= 8) {
        __m256 vm = _mm256_set1_ps(-INFINITY);
        for (; j + 8 <= V; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(row + j));
        float lanes[8];
        _mm256_storeu_ps(lanes, vm);
        for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
    }
#endif
    for (; j < V; j++) m = row[j] > m ? row[j] : m;
    return m;
}

/* row += b (b NULL: no bias, row read only), returns max(row). */
float lstm_row_bias_max(float *row /* (V) */, const float *b /* (V) or NULL */, int V)
{
    if (!b) return row_max(row, V);
    int j = 0;
    float m = -INFINITY;
#ifdef LSTM_HAVE_AVX512
    if (V >= 16) {
        __m512 vm = _mm512_set1_ps(-INFINITY);
        for (; j + 16 <= V; j += 16) {
            __m512 z = _mm512_add_ps(_mm512_loadu_ps(row + j), _mm512_loadu_ps(b + j));
            _mm512_storeu_ps(row + j, z);
            vm = _mm512_max_ps(vm, z);
        }
        m = _mm512_reduce_max_ps(vm);
    }
#endif
#ifdef LSTM_HAVE_AVX2
    if (V - j >= 8) {
        __m256 vm = _mm256_set1_ps(-INFINITY);
        for (; j + 8 <= V; j += 8) {
            __m256 z = _mm256_add_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(b + j));
            _mm256_storeu_ps(row + j, z);
            vm = _mm256_max_ps(vm, z);
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, vm);
        for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
    }
#endif
    for (; j < V; j++) {
        row[j] += b[j];
        m = row[j] > m ? row[j] : m;
    }
    return m;
}

/* sum_j exp(row[j] - m), read only: the output kernel's log-sum-exp, summed in float vector lanes and
 * fused with lstm_row_bias_max's max (elsewhere the library uses mathx.h's lstm_logsumexp). */
float lstm_row_sum_exp(const float *row /* (V) */, float m, int V)
{
    int j = 0;
    float s = 0.0f;
#ifdef LSTM_HAVE_AVX512
    __m512 ws = _mm512_setzero_ps(), wm = _mm512_set1_ps(m);
    for (; j + 16 <= V; j += 16) ws = _mm512_add_ps(ws, exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), wm)));
    s = _mm512_reduce_add_ps(ws);
#endif
#ifdef LSTM_HAVE_AVX2
    __m256 vs = _mm256_setzero_ps(), vm = _mm256_set1_ps(m);
    for (; j + 8 <= V; j += 8) vs = _mm256_add_ps(vs, exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm)));
    float lanes[8];
    _mm256_storeu_ps(lanes, vs);
    for (int k = 0; k < 8; k++) s += lanes[k];
#endif
    for (; j < V; j++) s += exp1(row[j] - m);
    return s;
}

/* row[j] = exp(row[j] - lse) * scale, in place: softmax times the mean-loss factor, for a row without bias. */
static void row_softmax(float *row, float lse, float scale, int V)
{
    int j = 0;
#ifdef LSTM_HAVE_AVX512
    __m512 wl = _mm512_set1_ps(lse), wsc = _mm512_set1_ps(scale);
    for (; j + 16 <= V; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), wl)), wsc));
#endif
#ifdef LSTM_HAVE_AVX2
    __m256 vl = _mm256_set1_ps(lse), vs = _mm256_set1_ps(scale);
    for (; j + 8 <= V; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), vl)), vs));
#endif
    for (; j < V; j++) row[j] = exp1(row[j] - lse) * scale;
}

/* row[j] = exp(row[j] - lse) * scale; db[j] += row[j] (db NULL: no bias): softmax times the mean-loss
 * factor, in place. */
void lstm_row_softmax_grad(float *row /* (V) */, float *db /* (V) or NULL */, float lse, float scale, int V)
{
    if (!db) {
        row_softmax(row, lse, scale, V);
        return;
    }
    int j = 0;
#ifdef LSTM_HAVE_AVX512
    __m512 wl = _mm512_set1_ps(lse), wsc = _mm512_set1_ps(scale);
    for (; j + 16 <= V; j += 16) {
        __m512 p = _mm512_mul_ps(exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), wl)), wsc);
        _mm512_storeu_ps(row + j, p);
        _mm512_storeu_ps(db + j, _mm512_add_ps(_mm512_loadu_ps(db + j), p));
    }
#endif
#ifdef LSTM_HAVE_AVX2
    __m256 vl = _mm256_set1_ps(lse), vs = _mm256_set1_ps(scale);
    for (; j + 8 <= V; j += 8) {
        __m256 p = _mm256_mul_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), vl)), vs);
        _mm256_storeu_ps(row + j, p);
        _mm256_storeu_ps(db + j, _mm256_add_ps(_mm256_loadu_ps(db + j), p));
    }
#endif
    for (; j < V; j++) {
        float p = exp1(row[j] - lse) * scale;
        row[j] = p;
        db[j] += p;
    }
}

