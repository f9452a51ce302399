/* cells.h: the compute kernels of the model: LSTM / GRU / RNN layers over a window (forward, backward),
 * the output layer with softmax cross-entropy, and vectorized exp / sigmoid / tanh. Every fast kernel
 * (lstm_gemm or cblas_sgemm + fused loops) has a plain-loop reference twin (*_ref) that the tests compare it with.
 *
 * Layout: activations are time-major, row (t, b) of a (T,B,X) array is at ((t*B)+b)*X, so the rows of
 * one time step are contiguous for the per-step recurrent GEMM, and the hidden states of a window,
 * stored with the initial state in slot 0 as (T+1,B,H), give the "previous h" of every step as one
 * contiguous (T*B, H) matrix for the weight-gradient GEMM.
 *
 * Gate conventions are PyTorch's: W_ih (G*H, In), W_hh (G*H, H), b_ih (G*H), b_hh (G*H);
 *   LSTM (G=4, order i,f,g,o): c' = f*c + i*g, h' = o*tanh(c')
 *   GRU  (G=3, order r,z,n):   n = tanh(W_in x + b_in + r*(W_hn h + b_hn)), h' = (1-z)*n + z*h
 *   RNN  (G=1):                h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
 *   LSTM with peepholes (Gers & Schmidhuber 2000): p_i*c and p_f*c (the previous cell state) join the i
 *                              and f pre-activations, p_o*c' (the new one) joins o's
 *   CIFG (G=3, order f,g,o):   the LSTM with its input gate coupled to the forget gate, i = 1 - f:
 *                              c' = f*c + (1-f)*g, h' = o*tanh(c') (Greff et al. 2017; a quarter smaller)
 *   LayerNorm LSTM (G=4, i,f,g,o; Ba et al. 2016, eqs. 20-22): each of the two projections is normalised
 *                              over its 4H values with its own gain, the biases b_ih and b_hh are the two
 *                              LayerNorms' shifts, and the cell state is normalised before the tanh:
 *                              pre = g_x*LN(W_ih x) + b_ih + g_h*LN(W_hh h) + b_hh, c' = f*c + i*g (c carried
 *                              as is), h' = o*tanh(g_c*LN(c') + b_c); LN(v) = (v - mean v) / sqrt(var v + 1e-5),
 *                              the variance over the vector (divided by its length); ln = g_x, g_h (4H each),
 *                              g_c, b_c (H each)
 * Kernels never allocate and never fail: the caller checks sizes. */
#ifndef LSTM_CELLS_H
#define LSTM_CELLS_H
#include <stddef.h>
#include <stdint.h>

enum { LSTM_CELL_LSTM = 0, LSTM_CELL_GRU = 1, LSTM_CELL_RNN = 2, LSTM_CELL_CIFG = 3, LSTM_CELL_LNLSTM = 4 };
#define LSTM_N_CELLS 5
#define LSTM_LN_EPS 1e-5f

/* Gates per cell type (4, 3, 1, 3, 4), 0 for an unknown type. */
int lstm_cell_gates(int cell);
/* 1 for the cells with a cell state c (LSTM, CIFG, LayerNorm LSTM). */
int lstm_cell_has_c(int cell);
/* Floats of a layer's extra tensor l<k>.ln (LayerNorm LSTM: 10H), 0 for the other cells. */
int lstm_cell_ln_floats(int cell, int H);

/* Weights of one layer (read-only) and the matching gradient accumulators. */
typedef struct {
    const float *w_ih; /* (G*H, In) */
    const float *w_hh; /* (G*H, H) */
    const float *b_ih; /* (G*H) */
    const float *b_hh; /* (G*H) */
    const float *peep; /* (3H) LSTM peephole weights p_i, p_f, p_o, or NULL */
    const float *ln;   /* (10H) LayerNorm LSTM: g_x (4H), g_h (4H), g_c (H), b_c (H); NULL for the others */
} lstm_layer_w;

typedef struct {
    float *w_ih; /* (G*H, In) */
    float *w_hh; /* (G*H, H) */
    float *b_ih; /* (G*H) */
    float *b_hh; /* (G*H) */
    float *peep; /* (3H), with lstm_layer_w.peep */
    float *ln;   /* (10H), with lstm_layer_w.ln */
} lstm_layer_g;

/* What one layer's forward saves for its backward (all time-major). The caller fills slot 0 of h (and
 * of c for LSTM) with the initial state before the forward; the final state is slot T afterwards. */
typedef struct {
    float *gates; /* (T,B,G*H) activated gates (LSTM i,f,g,o; GRU r,z,n; CIFG f,g,o; RNN unused) */
    float *h;     /* (T+1,B,H) */
    float *c;     /* (T+1,B,H) LSTM, CIFG and LayerNorm LSTM only */
    float *tc;    /* (T,B,H)   tanh(c) (LayerNorm LSTM: tanh(g_c*LN(c) + b_c)), cells with c only */
    float *hn;    /* (T,B,H)   W_hn h + b_hn, GRU only */
    float *hg;    /* (B,G*H)   per-step scratch, GRU and LayerNorm LSTM only */
    float *lnx;   /* (T,B,G*H) LN(W_ih x), LayerNorm LSTM only */
    float *lnh;   /* (T,B,G*H) LN(W_hh h), LayerNorm LSTM only */
    float *lnc;   /* (T,B,H)   LN(c'), LayerNorm LSTM only */
    float *lnr;   /* (T,B,3)   the three 1/sqrt(var + eps), LayerNorm LSTM only */
    float *wpack; /* W_hh^T packed for the per-step GEMMs (lstm_gemm_pack_b; may be shared by the layers
                   * and with lstm_layer_scratch's), or NULL: each step packs it again */
} lstm_layer_acts;

/* Backward scratch of one layer. */
typedef struct {
    float *dxg; /* (T,B,G*H) gradient w.r.t. the input-side pre-activations */
    float *dhg; /* (T,B,G*H) gradient w.r.t. the hidden-side pre-activations (GRU and LayerNorm LSTM;
                 * else = dxg) */
    float *dh;  /* (B,H) carried dL/dh_{t-1} */
    float *dc;  /* (B,H) carried dL/dc_{t-1} (LSTM) */
    float *wpack; /* W_hh packed for the per-step GEMMs, or NULL (see lstm_layer_acts) */
} lstm_layer_scratch;

/* Floats of a wpack buffer (64-byte aligned) for layers of this cell and size, forward and backward. */
size_t lstm_cell_wpack_floats(int cell, int H);

/* Forward of one layer over T steps: input projection of all steps in one GEMM, one recurrent GEMM per
 * step, fused gate nonlinearities. */
void lstm_cell_forward(int cell, lstm_layer_acts *a, const float *x /* (T,B,In) */, const lstm_layer_w *w,
                       int B, int T, int In, int H);
void lstm_cell_forward_ref(int cell, lstm_layer_acts *a, const float *x /* (T,B,In) */, const lstm_layer_w *w,
                           int B, int T, int In, int H);

/* Backward of one layer: given dL/dh_t for every output (dh_seq), accumulates (+=) into g, writes
 * (overwrites) dx, and accumulates (+=) the gradient w.r.t. the initial state into dh0 / dc0 (dc0 is
 * ignored unless LSTM; either may be NULL). */
void lstm_cell_backward(int cell, lstm_layer_g *g, float *dx /* (T,B,In) */, float *dh0 /* (B,H) */,
                        float *dc0 /* (B,H) */, lstm_layer_scratch *s, const float *dh_seq /* (T,B,H) */,
                        const lstm_layer_acts *a, const float *x /* (T,B,In) */, const lstm_layer_w *w,
                        int B, int T, int In, int H);
void lstm_cell_backward_ref(int cell, lstm_layer_g *g, float *dx /* (T,B,In) */, float *dh0 /* (B,H) */,
                            float *dc0 /* (B,H) */, lstm_layer_scratch *s, const float *dh_seq /* (T,B,H) */,
                            const lstm_layer_acts *a, const float *x /* (T,B,In) */, const lstm_layer_w *w,
                            int B, int T, int In, int H);

/* One step of one layer for inference: gates from precomputed projections, state updated in place.
 * xg (B,G*H): W_ih x (no bias), overwritten; hg (B,G*H): W_hh h (no bias), overwritten. Of w, only the
 * biases, peep and ln are read. */
void lstm_cell_step(int cell, float *h /* (B,H) */, float *c /* (B,H) */, float *xg, float *hg, const lstm_layer_w *w,
                    int B, int H);

/* Output layer over N = T*B rows: logits = x W^T + b. With targets (id 0 = PAD, masked), also lse[n] =
 * log sum exp(logits[n]) and the NLL summed in double over unmasked rows, and the number of such rows. */
void lstm_out_forward(float *logits /* (N,V) */, float *lse /* (N) */, double *nll_sum, long *count,
                      const float *x /* (N,H) */, const float *w /* (V,H) */, const float *b /* (V) */,
                      const uint32_t *targets /* (N) or NULL */, int N, int H, int V);
void lstm_out_forward_ref(float *logits /* (N,V) */, float *lse /* (N) */, double *nll_sum, long *count,
                          const float *x /* (N,H) */, const float *w /* (V,H) */, const float *b /* (V) */,
                          const uint32_t *targets /* (N) or NULL */, int N, int H, int V);

/* Backward of (mean over unmasked rows, scale = 1/count) softmax cross-entropy and the output layer.
 * logits is turned into dlogits in place (so it no longer holds logits). Accumulates (+=) dw and db,
 * overwrites dx. */
void lstm_out_backward(float *dx /* (N,H) */, float *dw /* (V,H) */, float *db /* (V) */,
                       float *logits /* (N,V) */, const float *lse /* (N) */, const float *x /* (N,H) */,
                       const float *w /* (V,H) */, const uint32_t *targets /* (N) */, float scale,
                       int N, int H, int V);
void lstm_out_backward_ref(float *dx /* (N,H) */, float *dw /* (V,H) */, float *db /* (V) */,
                           float *logits /* (N,V) */, const float *lse /* (N) */, const float *x /* (N,H) */,
                           const float *w /* (V,H) */, const uint32_t *targets /* (N) */, float scale,
                           int N, int H, int V);

/* Vectorized elementwise math (y may equal x). Relative error about 2e-7 for exp and sigmoid, absolute
 * error about 2e-7 for tanh; inputs are clamped so results stay finite (exp(x < -87) is ~1e-38). */
void lstm_vexp(float *y, const float *x, size_t n);
void lstm_vsigmoid(float *y, const float *x, size_t n);
void lstm_vtanh(float *y, const float *x, size_t n);

/* C = alpha * op(A) op(B) + beta * C, row-major, plain loops: the reference twin of cblas_sgemm. */
void lstm_gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *Bm, int ldb, float beta, float *C, int ldc);

#endif
