/* attention.h: the attention over the top layer's own recent outputs of Daniluk, Rocktäschel, Welbl &
 * Riedel 2017 ("Frustratingly Short Attention Spans in Neural Language Modeling", the basic attention
 * LM, their eqs. 1-4): at step t, with h_t the top LSTM layer's output and the memory
 * Y_t = [h_{t-K} .. h_{t-1}] its K previous outputs (before dropout),
 *   M_t     = tanh(W^Y Y_t + (W^h h_t) 1^T)        (H,K)
 *   alpha_t = softmax(w^T M_t)                     (K)   over the filled slots only
 *   r_t     = Y_t alpha_t^T                        (H)   (0 when no slot is filled)
 *   h*_t    = tanh(W^r r_t + W^x h_t)              (H)   the output layer's input instead of h_t.
 * No biases. Slots not yet filled (a document's first K steps: the memory starts empty with the state)
 * get no weight. The memory is carried state like h and c: (B,K,H) per lane, oldest slot first, with
 * the number of filled slots (the newest ones) per lane.
 *
 * Window kernels are time-major like cells.h; the fast ones run lstm_gemm, the *_ref twins plain
 * loops with double sums. Kernels never allocate and never fail. */
#ifndef LSTM_ATTENTION_H
#define LSTM_ATTENTION_H
#include <stddef.h>

#define LSTM_MAX_ATTENTION 64

typedef struct {
    const float *wy; /* (H,H) W^Y */
    const float *wh; /* (H,H) W^h */
    const float *w;  /* (H)   w */
    const float *wr; /* (H,H) W^r */
    const float *wx; /* (H,H) W^x */
} lstm_att_w;

typedef struct {
    float *wy, *wh, *w, *wr, *wx; /* shaped as lstm_att_w's */
} lstm_att_g;

/* What the window forward saves for the backward, and the backward's scratch. */
typedef struct {
    float *ext;   /* (K+T,B,H) the carried memory (slots 0..K-1) then the window's top outputs */
    float *p;     /* (K+T,B,H) W^Y ext; the backward leaves its gradient here */
    float *q;     /* (T,B,H)   W^h h; the backward leaves its gradient here */
    float *m;     /* (T,B,K,H) M */
    float *alpha; /* (T,B,K)   0 on the empty slots */
    float *r;     /* (T,B,H) */
    float *hs;    /* (T,B,H)   h* */
    float *dz;    /* (T,B,H)   backward scratch */
    float *dr;    /* (T,B,H)   backward scratch */
    float *dext;  /* (K+T,B,H) backward scratch */
    float *n0;    /* (B)       filled slots at the window's start */
} lstm_att_acts;

/* Window forward over h (T,B,H), the top layer's outputs. mem (B,K,H) and mlen (B, filled slots as
 * floats) hold the memory at the window's start on entry and at its end on exit; hout (B,H), unless
 * NULL, gets h* of the last step. */
void lstm_att_forward(lstm_att_acts *a, float *mem, float *mlen, float *hout, const float *h, const lstm_att_w *w,
                      int B, int T, int K, int H);
void lstm_att_forward_ref(lstm_att_acts *a, float *mem, float *mlen, float *hout, const float *h,
                          const lstm_att_w *w, int B, int T, int K, int H);

/* Backward of the last forward given dhs (T,B,H) = dL/dh*: accumulates (+=) into g, writes (=)
 * dh (T,B,H) = dL/dh of the top outputs through the attention, and dmem (B,K,H) = dL/d(the memory at
 * the window's start) unless NULL. */
void lstm_att_backward(lstm_att_g *g, float *dh, float *dmem, lstm_att_acts *a, const float *h, const float *dhs,
                       const lstm_att_w *w, int B, int T, int K, int H);
void lstm_att_backward_ref(lstm_att_g *g, float *dh, float *dmem, lstm_att_acts *a, const float *h,
                           const float *dhs, const lstm_att_w *w, int B, int T, int K, int H);

/* Scratch floats of lstm_att_step. */
size_t lstm_att_step_floats(int K, int H);
/* One step for B lanes (the inference path): hout (B,H) = h* from h (B,H) and the memory, then h
 * joins the memory (the oldest slot leaves). */
void lstm_att_step(float *hout, float *mem, float *mlen, const float *h, const lstm_att_w *w, int B, int K, int H,
                   float *scratch);
/* The memory update of lstm_att_step alone (a prompt token whose h* nobody reads). */
void lstm_att_push(float *mem, float *mlen, const float *h, int B, int K, int H);

#endif
