/* gemm.c: packed, cache-blocked SGEMM with a register-blocked micro-kernel and a persistent thread pool
 * (see gemm.h for the contract).
 *
 * Blocking (BLIS order): for each NC-wide block of columns and KC-deep block of K, the (KC,NC) block of
 * op(B) is packed into NR-wide k-major micro-panels; for each MC-tall block of rows the (MC,KC) block of
 * op(A) is packed into MR-tall k-major micro-panels; then every (MR,NR) tile of C gets one micro-kernel
 * call that keeps the whole tile in registers over the KC steps and touches C once. A B micro-panel is
 * reused across the MC/MR A panels (it stays in L1), the packed A block stays in L2.
 *
 * AVX-512: MR x NR = 14 x 32, 28 zmm accumulators; each k step is two aligned B loads and 14 broadcast
 * FMAs (the broadcast folds into the FMA's memory operand), so FMAs outnumber loads and the two FMA
 * pipes stay busy. A last B panel of at most 16 columns uses a 14 x 16 variant instead of padding to 32.
 * Operands whose K index is contiguous (A not transposed, B transposed) are packed through in-register
 * 16 x 16 transposes, the others by (masked) row copies.
 *
 * Rounding: each C element is one FMA chain over k inside a K block, blocks added in order, then
 * C = fma(acc, alpha, beta * C) (or acc * alpha when beta == 0). Tails and full tiles use the same
 * arithmetic, so a different split of the tiles never changes a result. */
/* GEMM_VARIANT (avx512, avx2, scalar): this file is one of the kernels of a build that picks one at
 * run time (gemm_pick.c), compiled with that kernel's -m flags; its entry points get the variant's
 * name as a suffix (lstm_gemm_avx2, ...). Without it, the entry points are the plain ones. */
#ifdef GEMM_VARIANT
#define GEMM_CAT2(a, b) a##_##b
#define GEMM_CAT(a, b) GEMM_CAT2(a, b)
#define lstm_gemm GEMM_CAT(lstm_gemm, GEMM_VARIANT)
#define lstm_gemm_set_threads GEMM_CAT(lstm_gemm_set_threads, GEMM_VARIANT)
#define lstm_gemm_threads GEMM_CAT(lstm_gemm_threads, GEMM_VARIANT)
#define lstm_gemm_get_stats GEMM_CAT(lstm_gemm_get_stats, GEMM_VARIANT)
#define lstm_gemm_kernel GEMM_CAT(lstm_gemm_kernel, GEMM_VARIANT)
#define lstm_gemm_packed_floats GEMM_CAT(lstm_gemm_packed_floats, GEMM_VARIANT)
#define lstm_gemm_pack_b GEMM_CAT(lstm_gemm_pack_b, GEMM_VARIANT)
#define lstm_gemm_packed GEMM_CAT(lstm_gemm_packed, GEMM_VARIANT)
#endif
#include "gemm.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define GEMM_AVX512 1
#define MR 14
#define NR 32
#define NR_MIN 16 /* width of the narrow last panel */
#define KERNEL_NAME "avx512 14x32"
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GEMM_AVX2 1
#define MR 6
#define NR 16
#define NR_MIN 16
#define KERNEL_NAME "avx2 6x16"
#else
#define MR 4
#define NR 4
#define NR_MIN 4
#define KERNEL_NAME "scalar 4x4"
#endif

/* KC: a (KC,NR) B panel (up to 48 KB) about fills L1, the A stream comes from L2; MC: the (MC,KC) A block
 * (up to 516 KB) fits L2; NC: the (KC,NC) B block (3 MB) sits in L3. KC 200..700, MC 168..700 and
 * NC 1024..4096 all measured within noise of each other on Zen 5 with the training step's shapes. */
#ifndef KC_MAX /* -D overrides for tuning */
#define KC_MAX 384
#endif
#ifndef MC_MAX
#define MC_MAX (MR * 24)
#endif
#ifndef NC_MAX
#define NC_MAX (NR * 64)
#endif

/* Below this many multiply-adds a call runs on the calling thread only (waking a worker costs more). */
#define PAR_MIN_MACS (1L << 22)

const char *lstm_gemm_kernel(void) { return KERNEL_NAME; }

static inline int imin(int a, int b) { return a < b ? a : b; }

/* ---------------------------------------------------------------------------------------------------
 * Packing. A panel of width P (MR for A, NR or NR_MIN for B) holding n <= P live lines is stored
 * k-major: dst[k*P + r], r < n from the source, n <= r < P zero. */

#ifdef GEMM_AVX512
/* x[r] (16 floats of row r) -> x[c] (16 floats of column c). */
static inline void transpose16(__m512 x[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(x[i], x[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(x[i], x[i + 1]);
    }
    /* u[4i+j], 128-bit lane L: rows 4i..4i+3 of column 4L+j */
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), w0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        __m512 v1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        __m512 w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        x[j] = _mm512_shuffle_f32x4(v0, v1, 0x88);
        x[8 + j] = _mm512_shuffle_f32x4(v0, v1, 0xDD);
        x[4 + j] = _mm512_shuffle_f32x4(w0, w1, 0x88);
        x[12 + j] = _mm512_shuffle_f32x4(w0, w1, 0xDD);
    }
}

static inline __mmask16 lanes(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1); }

/* Source line r at src + r*lds, contiguous in k (A as stored, or B transposed). */
static void pack_rows(float *dst, const float *src, size_t lds, int n, int P, int kc)
{
    for (int k0 = 0; k0 < kc; k0 += 16) {
        int kk = imin(16, kc - k0);
        __mmask16 km = lanes(kk);
        for (int r0 = 0; r0 < P; r0 += 16) {
            __m512 x[16];
            for (int r = 0; r < 16; r++)
                x[r] = r0 + r < n ? _mm512_maskz_loadu_ps(km, src + (size_t)(r0 + r) * lds + k0) : _mm512_setzero_ps();
            transpose16(x);
            __mmask16 wm = lanes(P - r0);
            for (int k = 0; k < kk; k++) _mm512_mask_storeu_ps(dst + (size_t)(k0 + k) * P + r0, wm, x[k]);
        }
    }
}

/* Source line r at src + r, step k at src + k*lds (A transposed, or B as stored). */
static void pack_cols(float *dst, const float *src, size_t lds, int n, int P, int kc)
{
    for (int k = 0; k < kc; k++) {
        const float *s = src + (size_t)k * lds;
        float *d = dst + (size_t)k * P;
        for (int r0 = 0; r0 < P; r0 += 16)
            _mm512_mask_storeu_ps(d + r0, lanes(P - r0), _mm512_maskz_loadu_ps(lanes(n - r0), s + r0));
    }
}
#elif defined(GEMM_AVX2)
/* x[r] (8 floats of row r) -> x[c] (8 floats of column c). */
static inline void transpose8(__m256 x[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(x[i], x[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(x[i], x[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        x[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        x[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

/* The first n of 8 lanes, as a maskload / maskstore mask. */
static inline __m256i lanes8(int n)
{
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Source line r at src + r*lds, contiguous in k: 8 lines by 8 k at a time through a transpose. */
static void pack_rows(float *dst, const float *src, size_t lds, int n, int P, int kc)
{
    for (int k0 = 0; k0 < kc; k0 += 8) {
        int kk = imin(8, kc - k0);
        __m256i km = lanes8(kk);
        for (int r0 = 0; r0 < P; r0 += 8) {
            __m256 x[8];
            for (int r = 0; r < 8; r++)
                x[r] = r0 + r < n ? _mm256_maskload_ps(src + (size_t)(r0 + r) * lds + k0, km) : _mm256_setzero_ps();
            transpose8(x);
            __m256i wm = lanes8(P - r0);
            for (int k = 0; k < kk; k++) _mm256_maskstore_ps(dst + (size_t)(k0 + k) * P + r0, wm, x[k]);
        }
    }
}

/* Source line r at src + r, step k at src + k*lds. */
static void pack_cols(float *dst, const float *src, size_t lds, int n, int P, int kc)
{
    for (int k = 0; k < kc; k++) {
        const float *s = src + (size_t)k * lds;
        float *d = dst + (size_t)k * P;
        for (int r0 = 0; r0 < P; r0 += 8)
            _mm256_maskstore_ps(d + r0, lanes8(P - r0), _mm256_maskload_ps(s + r0, lanes8(n - r0)));
    }
}
#else
static void pack_rows(float *dst, const float *src, size_t lds, int n, int P, int kc)
{
    for (int r = 0; r < P; r++) {
        const float *s = src + (size_t)r * lds;
        for (int k = 0; k < kc; k++) dst[(size_t)k * P + r] = r < n ? s[k] : 0.0f;
    }
}

static void pack_cols(float *dst, const float *src, size_t lds, int n, int P, int kc)
{
    for (int k = 0; k < kc; k++) {
        const float *s = src + (size_t)k * lds;
        float *d = dst + (size_t)k * P;
        for (int r = 0; r < P; r++) d[r] = r < n ? s[r] : 0.0f;
    }
}
#endif

#ifndef GEMM_AVX512
/* C (mr,nr) = fma(tile, alpha, beta * C) from a (MR, ldt) tile buffer: the partial-tile store of the
 * AVX2 kernel and the only store of the scalar one, with the full tiles' rounding. */
static void store_tile(float *c, size_t ldc, const float *tile, int ldt, int mr, int nr, float alpha, float beta)
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *p = c + (size_t)i * ldc + j, t = tile[i * ldt + j];
            *p = beta == 0.0f ? t * alpha : fmaf(t, alpha, beta == 1.0f ? *p : beta * *p);
        }
}
#endif

/* ---------------------------------------------------------------------------------------------------
 * Micro-kernels: C (mr,nr) of a (MR, P) tile from an (MR, kc) A panel and a (kc, P) B panel. */

#ifdef GEMM_AVX512
static inline __m512 combine16(__m512 acc, __m512 va, __m512 vb, float beta, const float *c, __mmask16 m)
{
    if (beta == 0.0f) return _mm512_mul_ps(acc, va);
    __m512 old = _mm512_maskz_loadu_ps(m, c);
    return _mm512_fmadd_ps(acc, va, beta == 1.0f ? old : _mm512_mul_ps(vb, old));
}

static inline __attribute__((always_inline)) void kernel_avx512(const int nv, int kc, const float *restrict a,
                                                                const float *restrict b, float *c, size_t ldc,
                                                                float alpha, float beta, int mr, int nr)
{
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        if (nv == 2) _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T0);
    }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = nv == 2 ? _mm512_load_ps(b + 16) : b0;
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            if (nv == 2) c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
        a += MR;
        b += 16 * nv;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (mr == MR && nr == 16 * nv) {
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            float *ci = c + (size_t)i * ldc;
            _mm512_storeu_ps(ci, combine16(c0[i], va, vb, beta, ci, 0xFFFF));
            if (nv == 2) _mm512_storeu_ps(ci + 16, combine16(c1[i], va, vb, beta, ci + 16, 0xFFFF));
        }
        return;
    }
    /* partial tile: spill to a buffer so the accumulators are never indexed by a variable */
    float tile[MR * 32] __attribute__((aligned(64)));
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        _mm512_store_ps(tile + i * 32, c0[i]);
        if (nv == 2) _mm512_store_ps(tile + i * 32 + 16, c1[i]);
    }
    __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        _mm512_mask_storeu_ps(ci, m0, combine16(_mm512_load_ps(tile + i * 32), va, vb, beta, ci, m0));
        if (nv == 2 && m1)
            _mm512_mask_storeu_ps(ci + 16, m1,
                                  combine16(_mm512_load_ps(tile + i * 32 + 16), va, vb, beta, ci + 16, m1));
    }
}

static void kernel_32(int kc, const float *a, const float *b, float *c, size_t ldc, float alpha, float beta,
                      int mr, int nr)
{
    kernel_avx512(2, kc, a, b, c, ldc, alpha, beta, mr, nr);
}

static void kernel_16(int kc, const float *a, const float *b, float *c, size_t ldc, float alpha, float beta,
                      int mr, int nr)
{
    kernel_avx512(1, kc, a, b, c, ldc, alpha, beta, mr, nr);
}

static void kernel(int P, int kc, const float *a, const float *b, float *c, size_t ldc, float alpha, float beta,
                   int mr, int nr)
{
    (P == 32 ? kernel_32 : kernel_16)(kc, a, b, c, ldc, alpha, beta, mr, nr);
}
#elif defined(GEMM_AVX2)
static void kernel(int P, int kc, const float *restrict a, const float *restrict b, float *c, size_t ldc,
                   float alpha, float beta, int mr, int nr)
{
    (void)P;
    /* The loops over MR are unrolled so the 12 accumulators stay in registers (without the pragma GCC
     * -O2 keeps them on the stack: a load and a store around every FMA, a third of the speed). */
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
        a += MR;
        b += NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (mr == MR && nr == NR) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float *ci = c + (size_t)i * ldc;
            __m256 r0 = _mm256_mul_ps(c0[i], va), r1 = _mm256_mul_ps(c1[i], va);
            if (beta != 0.0f) {
                __m256 o0 = _mm256_loadu_ps(ci), o1 = _mm256_loadu_ps(ci + 8);
                if (beta != 1.0f) o0 = _mm256_mul_ps(vb, o0), o1 = _mm256_mul_ps(vb, o1);
                r0 = _mm256_fmadd_ps(c0[i], va, o0);
                r1 = _mm256_fmadd_ps(c1[i], va, o1);
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        }
        return;
    }
    float tile[MR * NR] __attribute__((aligned(32)));
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm256_store_ps(tile + i * NR, c0[i]);
        _mm256_store_ps(tile + i * NR + 8, c1[i]);
    }
    store_tile(c, ldc, tile, NR, mr, nr, alpha, beta);
}
#else
static void kernel(int P, int kc, const float *restrict a, const float *restrict b, float *c, size_t ldc,
                   float alpha, float beta, int mr, int nr)
{
    (void)P;
    float tile[MR * NR] = {0};
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) tile[i * NR + j] = fmaf(a[i], b[j], tile[i * NR + j]);
        a += MR;
        b += NR;
    }
    store_tile(c, ldc, tile, NR, mr, nr, alpha, beta);
}
#endif

/* ---------------------------------------------------------------------------------------------------
 * The blocked loops over one thread's part of C. */

typedef struct {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    size_t lda, ldb, ldc;
    const float *Bp; /* op(B) packed whole by lstm_gemm_pack_b (B then unused), or NULL */
    size_t npad;     /* its panels' total width (N rounded up to NR) */
} gemm_args;

/* K block p of nk: its depth, and its first k in *k0 (the same split whoever packs or computes). */
static int kblock(int K, int nk, int p, int *k0)
{
    *k0 = p * (K / nk) + imin(p, K % nk);
    return K / nk + (p < K % nk);
}

static void gemm_part(const gemm_args *g, int m0, int m1, int n0, int n1, float *abuf /* (MC_MAX*KC_MAX) */,
                      float *bbuf /* (KC_MAX*NC_MAX) */)
{
    int K = g->K;
    if (K == 0 || g->alpha == 0.0f) { /* C = beta * C */
        for (int i = m0; i < m1; i++)
            for (int j = n0; j < n1; j++) {
                float *p = g->C + (size_t)i * g->ldc + j;
                *p = g->beta == 0.0f ? 0.0f : g->beta * *p;
            }
        return;
    }
    int nk = (K + KC_MAX - 1) / KC_MAX; /* K blocks of equal depth +-1 */
    for (int jc = n0; jc < n1; jc += NC_MAX) {
        int nc = imin(NC_MAX, n1 - jc);
        for (int p = 0; p < nk; p++) {
            int k0, kc = kblock(K, nk, p, &k0);
            float beta = p == 0 ? g->beta : 1.0f;
            /* the B panels of this block: packed here, or where the whole op(B) was packed before */
            const float *bblk = g->Bp ? g->Bp + (size_t)k0 * g->npad + (size_t)(jc / NR) * kc * NR : bbuf;
            for (int jr = 0; jr < nc && !g->Bp; jr += NR) {
                int n = imin(NR, nc - jr), P = n <= NR_MIN ? NR_MIN : NR;
                float *dst = bbuf + (size_t)(jr / NR) * kc * NR;
                if (g->tb)
                    pack_rows(dst, g->B + (size_t)(jc + jr) * g->ldb + k0, g->ldb, n, P, kc);
                else
                    pack_cols(dst, g->B + (size_t)k0 * g->ldb + jc + jr, g->ldb, n, P, kc);
            }
            for (int ic = m0; ic < m1; ic += MC_MAX) {
                int mc = imin(MC_MAX, m1 - ic);
                for (int ir = 0; ir < mc; ir += MR) {
                    float *dst = abuf + (size_t)(ir / MR) * kc * MR;
                    if (g->ta)
                        pack_cols(dst, g->A + (size_t)k0 * g->lda + ic + ir, g->lda, imin(MR, mc - ir), MR, kc);
                    else
                        pack_rows(dst, g->A + (size_t)(ic + ir) * g->lda + k0, g->lda, imin(MR, mc - ir), MR, kc);
                }
                for (int jr = 0; jr < nc; jr += NR) {
                    int n = imin(NR, nc - jr), P = n <= NR_MIN ? NR_MIN : NR;
                    const float *bp = bblk + (size_t)(jr / NR) * kc * NR;
                    for (int ir = 0; ir < mc; ir += MR)
                        kernel(P, kc, abuf + (size_t)(ir / MR) * kc * MR, bp,
                               g->C + (size_t)(ic + ir) * g->ldc + jc + jr, g->ldc, g->alpha, beta,
                               imin(MR, mc - ir), n);
                }
            }
        }
    }
}

size_t lstm_gemm_packed_floats(int N, int K)
{
    return N > 0 && K > 0 ? (size_t)((N + NR - 1) / NR) * NR * (size_t)K : 0;
}

/* op(B) whole, K block after K block (the blocks of gemm_part), each holding every NR-wide panel of
 * columns: panel q of block p at k0(p) * npad + q * kc(p) * NR, as gemm_part packs it for a call. */
void lstm_gemm_pack_b(int trans_b, int N, int K, const float *Bm, int ldb, float *packed)
{
    if (N <= 0 || K <= 0) return;
    int nk = (K + KC_MAX - 1) / KC_MAX;
    size_t npad = (size_t)((N + NR - 1) / NR) * NR;
    for (int p = 0; p < nk; p++) {
        int k0, kc = kblock(K, nk, p, &k0);
        for (int j = 0; j < N; j += NR) {
            int n = imin(NR, N - j), P = n <= NR_MIN ? NR_MIN : NR;
            float *dst = packed + (size_t)k0 * npad + (size_t)(j / NR) * kc * NR;
            if (trans_b)
                pack_rows(dst, Bm + (size_t)j * ldb + k0, (size_t)ldb, n, P, kc);
            else
                pack_cols(dst, Bm + (size_t)k0 * ldb + j, (size_t)ldb, n, P, kc);
        }
    }
}

/* Part t of nt: the longer of M and N cut into nt runs of whole MR rows or NR columns. */
static void run_part(const gemm_args *g, int t, int nt, float *abuf, float *bbuf)
{
    if (g->N >= g->M) {
        long units = (g->N + NR - 1) / NR;
        int n0 = (int)(units * t / nt) * NR, n1 = (int)(units * (t + 1) / nt) * NR;
        gemm_part(g, 0, g->M, n0, imin(n1, g->N), abuf, bbuf);
    } else {
        long units = (g->M + MR - 1) / MR;
        int m0 = (int)(units * t / nt) * MR, m1 = (int)(units * (t + 1) / nt) * MR;
        gemm_part(g, m0, imin(m1, g->M), 0, g->N, abuf, bbuf);
    }
}

/* ---------------------------------------------------------------------------------------------------
 * Packing buffers of the calling thread: every thread that calls lstm_gemm packs into its own (made on
 * its first call, freed when it exits), so a call that runs on the caller alone takes no lock and
 * independent callers (inference sessions, evaluators on their own threads) never wait on each other. */

typedef struct {
    float *a; /* (MC_MAX*KC_MAX) */
    float *b; /* (KC_MAX*NC_MAX) */
} packbuf;

static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static int tl_ok;

static void tl_free(void *p)
{
    packbuf *pb = p;
    free(pb->a);
    free(pb->b);
    free(pb);
}

static void tl_init(void) { tl_ok = pthread_key_create(&tl_key, tl_free) == 0; }

/* The calling thread's buffers, or NULL without memory. */
static packbuf *thread_bufs(void)
{
    pthread_once(&tl_once, tl_init);
    if (!tl_ok) return NULL;
    packbuf *pb = pthread_getspecific(tl_key);
    if (pb) return pb;
    pb = malloc(sizeof *pb);
    if (!pb) return NULL;
    pb->a = aligned_alloc(64, sizeof(float) * MC_MAX * KC_MAX);
    pb->b = aligned_alloc(64, sizeof(float) * KC_MAX * NC_MAX);
    if (!pb->a || !pb->b || pthread_setspecific(tl_key, pb)) {
        tl_free(pb);
        return NULL;
    }
    return pb;
}

/* Diagnostics (lstm_gemm_get_stats). */
static unsigned long long n_pooled, n_direct;
static int direct_now, direct_peak;

/* ---------------------------------------------------------------------------------------------------
 * The pool: workers 1..started-1 sleep on `go` and run part t of the current job when its generation
 * changes; the caller runs part 0 on its own buffers and waits on `done`. Only calls split over
 * several threads come here. */

static struct {
    pthread_mutex_t call; /* one split GEMM at a time (the workers and their buffers are shared) */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    int nt;        /* threads per call (0 = never set: 1); read without the lock by lstm_gemm */
    int started;   /* 1 + workers running (0 = none started); worker t uses abuf[t], bbuf[t] */
    unsigned gen;  /* job generation */
    int remaining; /* workers yet to finish the current job */
    gemm_args job;
    int job_nt;
    unsigned first_gen[LSTM_GEMM_MAX_THREADS]; /* the generation current when worker t was created */
    float *abuf[LSTM_GEMM_MAX_THREADS], *bbuf[LSTM_GEMM_MAX_THREADS];
    pthread_t tid[LSTM_GEMM_MAX_THREADS];
} pool = {.call = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    pthread_mutex_lock(&pool.mu);
    /* Not pool.gen as found here: a job published between pthread_create and this lock would then be
     * taken as done, and the caller would wait for this worker forever. */
    unsigned seen = pool.first_gen[t];
    for (;;) {
        while (pool.gen == seen) pthread_cond_wait(&pool.go, &pool.mu);
        seen = pool.gen;
        if (t >= pool.job_nt) continue;
        gemm_args g = pool.job;
        int nt = pool.job_nt;
        pthread_mutex_unlock(&pool.mu);
        run_part(&g, t, nt, pool.abuf[t], pool.bbuf[t]);
        pthread_mutex_lock(&pool.mu);
        if (--pool.remaining == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* With pool.call held: workers 1..n-1 with their buffers (thread 0 is the caller). */
static int ensure_threads(int n)
{
    if (pool.started < 1) pool.started = 1;
    for (int t = pool.started; t < n; t++) {
        pool.abuf[t] = aligned_alloc(64, sizeof(float) * MC_MAX * KC_MAX);
        pool.bbuf[t] = aligned_alloc(64, sizeof(float) * KC_MAX * NC_MAX);
        if (!pool.abuf[t] || !pool.bbuf[t]) {
            free(pool.abuf[t]);
            free(pool.bbuf[t]);
            pool.abuf[t] = pool.bbuf[t] = NULL;
            return LSTM_E_NOMEM;
        }
        /* workers never take the process's signals (SIGINT belongs to the tool's main thread) */
        pthread_mutex_lock(&pool.mu);
        pool.first_gen[t] = pool.gen;
        pthread_mutex_unlock(&pool.mu);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int err = pthread_create(&pool.tid[t], NULL, worker, (void *)(intptr_t)t);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err) {
            free(pool.abuf[t]);
            free(pool.bbuf[t]);
            pool.abuf[t] = pool.bbuf[t] = NULL;
            return LSTM_E_NOMEM;
        }
        pthread_detach(pool.tid[t]);
        pool.started = t + 1;
    }
    return 0;
}

int lstm_gemm_set_threads(int n)
{
    n = n < 1 ? 1 : n > LSTM_GEMM_MAX_THREADS ? LSTM_GEMM_MAX_THREADS : n;
    if (!thread_bufs()) return LSTM_E_NOMEM; /* the caller's buffers now, not in its first step */
    pthread_mutex_lock(&pool.call);
    int err = ensure_threads(n);
    if (!err) __atomic_store_n(&pool.nt, n, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&pool.call);
    return err;
}

int lstm_gemm_threads(void)
{
    int n = __atomic_load_n(&pool.nt, __ATOMIC_ACQUIRE);
    return n ? n : 1;
}

void lstm_gemm_get_stats(lstm_gemm_stats *s)
{
    s->pooled = __atomic_load_n(&n_pooled, __ATOMIC_RELAXED);
    s->direct = __atomic_load_n(&n_direct, __ATOMIC_RELAXED);
    s->direct_peak = __atomic_load_n(&direct_peak, __ATOMIC_RELAXED);
}

static void run(const gemm_args *gp, packbuf *pb);

void lstm_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *Bm, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    packbuf *pb = thread_bufs();
    if (!pb) { /* no memory for the packing buffers: still compute */
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N,
                    K, alpha, A, lda, Bm, ldb, beta, C, ldc);
        return;
    }
    gemm_args g = {trans_a, trans_b, M, N, K, alpha, beta, A, Bm, C, (size_t)lda, (size_t)ldb, (size_t)ldc, NULL, 0};
    run(&g, pb);
}

int lstm_gemm_packed(int trans_a, int M, int N, int K, float alpha, const float *A, int lda, const float *packed,
                     float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return 0;
    packbuf *pb = thread_bufs();
    if (!pb) return LSTM_E_NOMEM; /* the caller multiplies by B itself (lstm_gemm falls back to cblas) */
    gemm_args g = {trans_a, 0, M, N, K, alpha, beta, A, NULL, C, (size_t)lda, 0, (size_t)ldc, packed,
                   (size_t)((N + NR - 1) / NR) * NR};
    run(&g, pb);
    return 0;
}

static void run(const gemm_args *gp, packbuf *pb)
{
    gemm_args g = *gp;
    int M = g.M, N = g.N, K = g.K;
    /* (acquire: the workers of a count are running before the count is seen) */
    int nt = lstm_gemm_threads();
    long units = N >= M ? (N + NR - 1) / NR : (M + MR - 1) / MR;
    if ((double)M * N * K < (double)PAR_MIN_MACS) nt = 1;
    if (nt > units) nt = (int)units;
    if (nt == 1) { /* on this thread alone: no lock */
        int now = __atomic_add_fetch(&direct_now, 1, __ATOMIC_RELAXED);
        int peak = __atomic_load_n(&direct_peak, __ATOMIC_RELAXED);
        while (now > peak && !__atomic_compare_exchange_n(&direct_peak, &peak, now, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
        run_part(&g, 0, 1, pb->a, pb->b);
        __atomic_sub_fetch(&direct_now, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&n_direct, 1, __ATOMIC_RELAXED);
        return;
    }
    pthread_mutex_lock(&pool.call);
    __atomic_add_fetch(&n_pooled, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&pool.mu);
    pool.job = g;
    pool.job_nt = nt;
    pool.remaining = nt - 1;
    pool.gen++;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    run_part(&g, 0, nt, pb->a, pb->b);
    pthread_mutex_lock(&pool.mu);
    while (pool.remaining) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&pool.call);
}
