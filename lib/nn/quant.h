/* quant.h: quantized weight matrices for inference (the embedding and the output layer of an exported
 * model, formats/model.md): int8 with one fp32 scale per row (symmetric: w ~ q * scale, q in
 * -127..127) or bf16 (the upper 16 bits of a float, rounded to nearest even), and the kernels that use
 * them: a matrix-vector product against fp32 activations and a row dequantization (the embedding
 * lookup).
 *
 * Kernels: a plain-loop scalar reference and an AVX2 + FMA twin compiled with a target attribute (the
 * build needs no -march flag for it), chosen once at run time with __builtin_cpu_supports. The twins
 * sum in different orders, so they agree to float rounding, not to the bit (tests/unit/test_quant.c
 * states the tolerance). No AVX-512 twin: the AVX2 one is what the machines this is tested on run. */
#ifndef LSTM_QUANT_H
#define LSTM_QUANT_H
#include <stddef.h>
#include <stdint.h>

enum { LSTM_Q_NONE = 0, LSTM_Q_INT8 = 1, LSTM_Q_BF16 = 2 };

/* A (rows, cols) row-major quantized matrix, read in place (a mapped file): int8 w (rows*cols) with
 * scale (rows), or bf16 w (rows*cols) as uint16. */
typedef struct {
    int type; /* LSTM_Q_* (LSTM_Q_NONE: no matrix) */
    int rows, cols;
    const void *w;
    const float *scale; /* int8 only */
} lstm_qmat;

/* "int8", "bf16", "none"; lstm_quant_from_name returns -1 for anything else. */
const char *lstm_quant_name(int type);
int lstm_quant_from_name(const char *name);

/* Row-wise symmetric int8: scale[r] = max_j |w[r,j]| / 127 (0 for an all-zero row), q = round(w / scale),
 * ties to even, so |w - q * scale| <= scale / 2 up to float rounding. A row holding a NaN or an Inf
 * gets a NaN scale (and q 0), so readers that check the scales refuse it. W (rows, cols), q (rows,
 * cols), scale (rows). */
void lstm_quant_int8(int8_t *q, float *scale, const float *W, int rows, int cols);
/* bf16 of x rounded to nearest even (NaN stays a NaN); relative error <= 2^-8 for normal values. */
uint16_t lstm_bf16_from_f32(float x);
float lstm_bf16_to_f32(uint16_t b);
void lstm_quant_bf16(uint16_t *out, const float *x, size_t n);

/* y (rows) += W (rows, cols) x (cols), the kernel lstm_quant_kernel() names. */
void lstm_qgemv(float *y, const lstm_qmat *W, const float *x);
/* out (cols) = row r of W, dequantized. */
void lstm_qrow(float *out, const lstm_qmat *W, int r);
/* W dequantized whole into out (rows, cols). */
void lstm_qdequant(float *out, const lstm_qmat *W);

/* The twins, for tests and benchmarks: the scalar reference, and the AVX2 one (call it only when
 * lstm_quant_have_avx2()). */
void lstm_qgemv_ref(float *y, const lstm_qmat *W, const float *x);
void lstm_qgemv_avx2(float *y, const lstm_qmat *W, const float *x);
void lstm_qrow_ref(float *out, const lstm_qmat *W, int r);
void lstm_qrow_avx2(float *out, const lstm_qmat *W, int r);
int lstm_quant_have_avx2(void);

/* "avx2+fma" or "scalar": the kernel lstm_qgemv and lstm_qrow run on this CPU. LSTM_KERNEL=scalar in
 * the environment forces the reference (as it does for the GEMM and vector kernels). */
const char *lstm_quant_kernel(void);

#endif
