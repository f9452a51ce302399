/* model.h: the language model: parameters in one flat block carved into named tensors, embedding ->
 * L stacked LSTM / GRU / RNN layers -> dropout -> linear -> softmax cross-entropy, forward and backward
 * over a (B,T) window with state carried across windows, dropout masks and the AWD-LSTM regularizers
 * (Merity et al. 2017: locked dropout, embedding dropout, weight drop, AR / TAR), and a one-step
 * inference path.
 *
 * Parameters. One 64-byte aligned float block of lstm_model_num_params() floats; tensor i of the table
 * (lstm_model_tensor) starts at params + offset, a multiple of 16 floats, and holds size = shape[0] *
 * shape[1] (or shape[0] when ndim == 1) floats, row-major. The padding floats between tensors are zero
 * and stay zero. Tensors in order:
 *   "emb"      (V,E)        embedding; also the output weight when tied
 *   "l<k>.w_ih" (G*H, In)   layer k input weights, In = E for k = 0, else H; PyTorch gate order
 *   "l<k>.w_hh" (G*H, H)    (LSTM i,f,g,o, G=4; GRU r,z,n, G=3; RNN G=1; CIFG f,g,o, G=3)
 *   "l<k>.b_ih" (G*H)
 *   "l<k>.b_hh" (G*H)
 *   "l<k>.peep" (3H)        with cfg.peephole (LSTM): p_i, p_f, p_o (cells.h)
 *   "l<k>.ln"  (10H)        LayerNorm LSTM: g_x (4H), g_h (4H), g_c (H), b_c (H) (cells.h)
 *   "att.wy", "att.wh" (H,H), "att.w" (H), "att.wr", "att.wx" (H,H)
 *                           with cfg.attention = K > 0: W^Y, W^h, w, W^r, W^x of attention.h; the
 *                           output layer then reads h* instead of the top layer's h
 *   "out.w"    (V,H)        absent when tied
 *   "out.b"    (V)
 * or, with the adaptive softmax (adaptive.h), in place of out.w and out.b:
 *   "head.w"   (c0+n, H)    shortlist plus one row per tail cluster
 *   "head.b"   (c0+n)
 *   "tail<i>.proj" (d_i, H) and "tail<i>.out" (c_{i+1}-c_i, d_i) for each cluster i
 * Gradients (grads) and optimizer moments use exactly the same layout, so the optimizer and clipping
 * are flat loops over lstm_model_num_params() floats.
 *
 * A checkpoint writer saves cfg plus, per table entry, name / shape / data at params + offset. A reader
 * calls lstm_model_layout() to get the table a config implies (to validate what it reads), then either
 * lstm_model_create() + copies, or lstm_model_init_view() on the mapped, aligned tensor block (no copy;
 * the view has no gradients and cannot train).
 *
 * Activations (lstm_acts) are sized once for (B,T) and reused; forward and backward never allocate. They
 * are time-major inside: use lstm_acts_logits() to find the logits of (b, t). */
#ifndef LSTM_MODEL_H
#define LSTM_MODEL_H
#include <stddef.h>
#include <stdint.h>

#include "adaptive.h"
#include "attention.h"
#include "cells.h"
#include "quant.h"
#include "rng.h"

#define LSTM_MAX_LAYERS 8
#define LSTM_MAX_TENSORS (3 + 5 * LSTM_MAX_LAYERS + 5 + 2 * LSTM_MAX_CLUSTERS)

enum { LSTM_SOFTMAX_FULL = 0, LSTM_SOFTMAX_ADAPTIVE = 1 };

enum { LSTM_REVERSE_DOCS = 1, LSTM_REVERSE_TURNS = 2 };

typedef struct {
    int cell;          /* LSTM_CELL_LSTM, LSTM_CELL_GRU, LSTM_CELL_RNN, LSTM_CELL_CIFG, LSTM_CELL_LNLSTM */
    int V, E, H, L;    /* vocabulary, embedding width, hidden width, layers (1..LSTM_MAX_LAYERS) */
    int tie;           /* output weight = embedding (requires E == H) */
    float dropout;     /* drop probability in [0, 1) before the output layer, and on the embeddings and
                        * between layers unless dropout_in / dropout_hidden say otherwise */
    float forget_bias; /* LSTM: initial b_ih of the f gate */
    float init_scale;  /* weights uniform in (-init_scale, init_scale) */
    int softmax;       /* LSTM_SOFTMAX_FULL, or LSTM_SOFTMAX_ADAPTIVE (adaptive.h; not with tie) */
    int n_cutoffs;     /* adaptive: 1..LSTM_MAX_CLUSTERS cutoffs, increasing, in (0, V) */
    int cutoffs[LSTM_MAX_CLUSTERS];
    float div;         /* adaptive: cluster i projects to floor(H / div^(i+1)) */
    int peephole;      /* LSTM only: peephole weights l<k>.peep per layer */
    int attention;     /* K in 0..LSTM_MAX_ATTENTION: the top layer attends over its last K outputs */
    int reverse;       /* 0, or a right-to-left model's reading (lstm-window): LSTM_REVERSE_DOCS (--reverse: the
                        * documents backwards) or LSTM_REVERSE_TURNS (--reverse-turns: each line or turn
                        * backwards, in their order) */
    /* Regularization, in training only (forward with train = 1; see "Regularization" below). */
    float dropout_in;     /* on the embeddings (layer 0's input), in [0, 1); < 0: dropout (AWD's dropouti) */
    float dropout_hidden; /* on the inputs of layers 1..L-1, in [0, 1); < 0: dropout (AWD's dropouth) */
    int locked;           /* 1: the three dropouts draw one mask per lane for the whole window (variational) */
    float dropout_words;  /* in [0, 1): whole rows of emb dropped for the window's lookups (AWD's dropoute) */
    float weight_drop;    /* in [0, 1): DropConnect on every layer's w_hh, one mask per window (AWD's wdrop) */
    float ar, tar;        /* >= 0: activation and temporal activation regularization weights (alpha, beta) */
} lstm_model_config;

/* The drop probabilities the three dropout sites use (dropout_in / dropout_hidden, or dropout). */
static inline float lstm_model_p_in(const lstm_model_config *c) { return c->dropout_in < 0 ? c->dropout : c->dropout_in; }
static inline float lstm_model_p_hidden(const lstm_model_config *c)
{
    return c->dropout_hidden < 0 ? c->dropout : c->dropout_hidden;
}

/* Index in the tensor table of layer l's first tensor (l<l>.w_ih); l = L gives the output layer's
 * (after the attention's five when cfg.attention > 0). */
static inline int lstm_layer_tensor(const lstm_model_config *c, int l)
{
    return 1 + (4 + (c->peephole != 0 || c->cell == LSTM_CELL_LNLSTM)) * l + (l == c->L && c->attention > 0 ? 5 : 0);
}

/* Index of att.wy (the attention's first tensor), with cfg.attention > 0. */
static inline int lstm_att_tensor(const lstm_model_config *c)
{
    return 1 + (4 + (c->peephole != 0 || c->cell == LSTM_CELL_LNLSTM)) * c->L;
}

typedef struct {
    char name[32];
    int ndim;      /* 1 or 2 */
    int shape[2];  /* shape[1] = 1 when ndim == 1 */
    size_t offset; /* in floats from the start of the flat block, multiple of 16 */
    size_t size;   /* floats */
} lstm_tensor_info;

typedef struct {
    lstm_model_config cfg;
    int G;                     /* gates per cell */
    lstm_asm_shape as;         /* the adaptive softmax's shape (cfg.softmax == LSTM_SOFTMAX_ADAPTIVE) */
    int n_tensors;
    lstm_tensor_info tensors[LSTM_MAX_TENSORS];
    size_t n_params;           /* floats in the flat block, padding included */
    float *params;             /* (n_params) */
    float *grads;              /* (n_params), NULL for a view */
    int owns;                  /* params / grads were allocated by lstm_model_create */
    int reference;             /* tests: run the plain-loop reference kernels instead of the fast ones */
    /* An exported model's quantized embedding and output weight and, optionally, recurrent layers'
     * weights (formats/model.md), or type LSTM_Q_NONE. The one-step inference path (lstm_infer_*)
     * reads these instead of params; qout is qemb when tied. */
    lstm_qmat qemb, qout;
    lstm_qmat qw_ih[LSTM_MAX_LAYERS], qw_hh[LSTM_MAX_LAYERS];
    /* 1 while params hold zeros where the quantized tensors above go: lstm_model_forward dequantizes
     * them first (under a lock, once per model struct; a server's one-step inference never needs
     * them, so a served export keeps only its quantized weights resident). */
    int q_pending;
} lstm_model;

/* Hidden state of every layer for B lanes; c is unused (but allocated) for GRU / RNN. With attention
 * (K > 0) the state also holds the attention's memory, and h* of the last step (the output layer's
 * input, for a caller that scores the next token from the state: lstm_state_out). */
typedef struct {
    int L, B, H;
    float *h;    /* (L,B,H) */
    float *c;    /* (L,B,H) */
    int K;       /* cfg.attention */
    float *mem;  /* (B,K,H) the top layer's last K outputs, oldest first; NULL when K = 0 */
    float *mlen; /* (B) filled slots of mem (the newest ones), 0..K, as floats like the rest */
    float *hout; /* (B,H) h* after the last step (zero after a reset) */
} lstm_state;

/* Saved activations and scratch for windows of up to B x T. Fields are internal to model.c except the
 * ones documented here. */
typedef struct {
    int Bmax, Tmax;
    int B, T, train, has_targets; /* of the last forward */
    long count;                   /* unmasked targets of the last forward */
    float *block;                 /* the single float allocation everything below points into */
    uint32_t *ids;                /* (T,B) inputs, then (T,B) targets, time-major */
    float *x0;                    /* (T,B,E) embedded (and dropped) inputs */
    float *xin[LSTM_MAX_LAYERS];  /* layer inputs: xin[0] = x0, else (T,B,H) */
    lstm_layer_acts layer[LSTM_MAX_LAYERS];
    lstm_att_acts att;            /* with cfg.attention */
    float *out_in;                /* (T,B,H) input of the output layer (after dropout) */
    float *logits;                /* (T,B,V) logits after forward; dlogits after backward (full softmax) */
    lstm_asm_acts as;             /* the adaptive softmax's (instead of logits) */
    float *row_lp, *row_scratch;  /* adaptive: lstm_acts_logits' row (V) and its scratch */
    float *lse;                   /* (T,B) */
    float *mask_emb;              /* (T,B,E) 0 or 1/(1-p), or NULL when that site's p is 0 */
    float *mask_mid[LSTM_MAX_LAYERS]; /* (T,B,H) on the input of layer k >= 1, or NULL */
    float *mask_out;              /* (T,B,H), or NULL (locked: each lane's row repeated over T) */
    float *mask_words;            /* (V) dropout_words: 0 or 1/(1-p) per embedding row, or NULL */
    float *mask_whh[LSTM_MAX_LAYERS]; /* (G*H,H) weight_drop: 0 or 1/(1-p) per w_hh entry, or NULL */
    float *whh_drop;              /* (G*H,H) the dropped w_hh of the layer being run, or NULL */
    float *dwhh;                  /* (G*H,H) backward: the gradient w.r.t. the dropped w_hh, or NULL */
    double ar_sum, tar_sum;       /* of the last forward (train): sums of squares AR and TAR average */
    long ar_rows, tar_pairs;      /* ... and what they average over (regularization below) */
    lstm_layer_scratch scratch;
    float *dseq[2];               /* (T,B,max(E,H)) gradients flowing down the stack (ping-pong) */
    size_t bytes;                 /* memory held by these activations (for memory reports) */
} lstm_acts;

/* One-token-at-a-time inference scratch (for B lanes). */
typedef struct {
    const lstm_model *m;
    int B;
    float *block;
    float *x;      /* (B,max(E,H)) */
    float *xg;     /* (B,G*H) */
    float *hg;     /* (B,G*H) */
    float *as;     /* adaptive softmax scratch (lstm_asm_row_scratch) */
    float *att;    /* attention scratch (lstm_att_step_floats) */
} lstm_infer;

/* Defaults: LSTM, V=10000, E=H=200, L=2, no tying, dropout 0, forget_bias 1, init_scale 0.1; dropout_in
 * and dropout_hidden -1 (as dropout), no other regularization. */
void lstm_model_config_default(lstm_model_config *cfg);

/* 0 or LSTM_E_ARG (unknown cell, sizes < 1, L > LSTM_MAX_LAYERS, tie with E != H, dropout out of
 * [0,1), dropout_in / dropout_hidden not below 1, dropout_words / weight_drop out of [0,1), ar / tar
 * negative or not finite, locked not 0 or 1, an adaptive softmax with tie or cutoffs / div
 * lstm_asm_shape_init refuses). */
int lstm_model_config_check(const lstm_model_config *cfg);

/* The tensor table a config implies; returns the flat size in floats (0 for an invalid config). */
size_t lstm_model_layout(const lstm_model_config *cfg, lstm_tensor_info *tensors /* (LSTM_MAX_TENSORS) */,
                         int *n_tensors);

/* Allocates zeroed params and grads. Returns 0, LSTM_E_ARG, LSTM_E_NOMEM. */
int lstm_model_create(lstm_model *m, const lstm_model_config *cfg);

/* Weights (peepholes included) uniform(-init_scale, init_scale), biases 0, the forget bias in b_ih's f block,
 * LayerNorm gains 1 and shift b_c 0. */
void lstm_model_init_params(lstm_model *m, lstm_rng *rng);

/* A model over external read-only parameters laid out as lstm_model_layout() says (params 64-byte
 * aligned); no copy, no gradients. Returns 0 or LSTM_E_ARG. */
int lstm_model_init_view(lstm_model *m, const lstm_model_config *cfg, const float *params);

void lstm_model_free(lstm_model *m);

size_t lstm_model_num_params(const lstm_model *m);  /* flat floats, padding included */
size_t lstm_model_num_weights(const lstm_model *m); /* real parameters (no padding) */
int lstm_model_num_tensors(const lstm_model *m);
const lstm_tensor_info *lstm_model_tensor(const lstm_model *m, int i);
/* Index of the named tensor or -1. */
int lstm_model_find_tensor(const lstm_model *m, const char *name);

void lstm_model_zero_grads(lstm_model *m);

/* Threads of lstm_gemm's pool (gemm.h), which runs every training GEMM; OpenBLAS is set to 1 thread. */
void lstm_set_threads(int n);

int lstm_state_alloc(lstm_state *s, const lstm_model *m, int B);
void lstm_state_free(lstm_state *s);
void lstm_state_zero(lstm_state *s);
/* Zero lane b of every layer (a new document starts in that lane); its attention memory empties. */
void lstm_state_reset_row(lstm_state *s, int b);
/* Lane dl of d = lane sl of s (every layer, the attention memory and h*); d and s of the same model. */
void lstm_state_copy_lane(lstm_state *d, int dl, const lstm_state *s, int sl);
/* Lane b's attention memory = the n top-layer outputs tops, tops + stride, ... (oldest first; the
 * last K of them are kept), the other slots empty; nothing without attention. For a caller that kept
 * the top layer's state after each token of a sequence that started from a zero state. */
void lstm_state_set_memory(lstm_state *s, int b, const float *tops, size_t stride, int n);
/* The output layer's input (H) after lane b's last step: h* with attention, else the top layer's h. */
const float *lstm_state_out(const lstm_state *s, int b);

int lstm_acts_alloc(lstm_acts *a, const lstm_model *m, int B, int T);
/* The bytes lstm_acts_alloc(B, T) takes, without allocating (0 for sizes it refuses). */
double lstm_acts_bytes(const lstm_model *m, int B, int T);
void lstm_acts_free(lstm_acts *a);
/* Logits (V) of lane b at step t of the last forward (valid until the backward). With the adaptive
 * softmax: the exact log-probabilities (V) instead, computed on the call from the saved output-layer
 * input, valid until the next call. */
float *lstm_acts_logits(const lstm_acts *a, const lstm_model *m, int b, int t);

/* Regularization (Merity, Keskar & Socher 2017, "Regularizing and optimizing LSTM language models"),
 * all of it in forward / backward with train = 1 only, with the masks the last sample drew:
 *   dropout     x * m, m = 0 with probability p else 1/(1-p), on the embedded inputs (p_in), the inputs
 *               of layers 1..L-1 (p_hidden) and the output layer's input (dropout); one m per element of
 *               (T,B,X), or with locked one per (b, k) shared by the window's T steps
 *   words       x0(t,b) = emb[id] * m[id] (* the dropout above): m per vocabulary row, per window, so a
 *               dropped word is dropped at every occurrence in the batch (the output layer, tied or
 *               not, reads the undropped emb)
 *   weight drop each layer runs with w_hh * M, M per entry per window (the same at every step and
 *               lane); the gradient of w_hh is M times the gradient of the dropped matrix
 *   AR          alpha * sum over rows (t,b) whose input is not PAD of |out_in(t,b)|^2 / (H * rows):
 *               the output layer's (dropped) input; PyTorch AWD's alpha * dropped_h.pow(2).mean()
 *   TAR         beta * sum over pairs (t-1, t) of the window, both inputs not PAD, of
 *               |h(t) - h(t-1)|^2 / (H * pairs), h the top layer's undropped output (with
 *               attention too: h, not h*, AWD's raw_output of the last recurrent layer);
 *               beta * (h[1:] - h[:-1]).pow(2).mean()
 * The returned loss stays the mean NLL (what perplexity is of); lstm_model_reg_loss gives AR + TAR. */

/* Draws fresh masks for the whole (Bmax,Tmax) window; forward with train = 1 applies them. */
void lstm_model_sample_dropout(const lstm_model *m, lstm_acts *a, lstm_rng *rng);
/* The same masks for a share of the lanes: this acts' lane b is lane lane0 + b * lane_step of a batch
 * of Bg lanes, and gets exactly the masks lstm_model_sample_dropout draws for that lane with acts of
 * Bg lanes (each draw is computed from its place in rng's stream), so a batch split over ranks draws
 * the masks of one process; the per-window masks (words, weight drop) are the same on every share.
 * rng moves past the whole batch's draws: the dropout masks (T,Bg,E), (L-1) x (T,Bg,H), (T,Bg,H) in
 * this order (locked: (Bg,E), (L-1) x (Bg,H), (Bg,H)) when any of the three p is above 0, then V draws
 * for words, then L x (G*H,H) for weight drop, each only when on. Bmax lanes, Tmax steps. */
void lstm_model_sample_dropout_lanes(const lstm_model *m, lstm_acts *a, lstm_rng *rng, int Bg, int lane0,
                                     int lane_step);

/* What AR and TAR average over in inputs (B,T) (row-major by lane): rows whose input is not PAD, and
 * consecutive pairs of such rows within a lane. */
void lstm_model_reg_counts(const uint32_t *inputs /* (B,T) */, int B, int T, long *rows, long *pairs);

/* AR + TAR of the last forward (0 unless train with ar or tar), averaged over rows and pairs (0: the
 * forward's own; across ranks, the whole batch's, so that the ranks' terms add up to the batch's). */
double lstm_model_reg_loss(const lstm_model *m, const lstm_acts *a, long rows, long pairs);

/* Forward over a window. inputs / targets are (B,T) row-major by lane (targets may be NULL: logits
 * only; target id 0 = PAD is masked). st (B lanes) holds the initial state on entry and the final state
 * on exit. loss = mean NLL over unmasked targets (0 if none), count = their number. B <= Bmax,
 * T <= Tmax. Returns 0, LSTM_E_ARG, or LSTM_E_RANGE for an id >= V. */
int lstm_model_forward(lstm_model *m, lstm_acts *a, lstm_state *st, const uint32_t *inputs /* (B,T) */,
                       const uint32_t *targets /* (B,T) */, int B, int T, int train, double *loss,
                       long *count);

/* Backward of the mean loss of the last forward (which needs targets): accumulates (+=) into m->grads,
 * and, when dstate is not NULL, the gradient w.r.t. the forward's initial state into dstate (B lanes).
 * Destroys the logits. Returns 0 or LSTM_E_ARG (view model, forward without targets). */
int lstm_model_backward(lstm_model *m, lstm_acts *a, lstm_state *dstate);

/* Called by lstm_model_backward_ex as soon as grads [offset, offset + n) is final: the output layer's
 * tensors first, then each layer's from the top down, the embedding last (the ranges cover the flat
 * block once, padding included), so a caller can start reducing them while the lower layers are
 * still in backward. */
typedef void (*lstm_grads_ready_fn)(void *ctx, size_t offset, size_t n);

/* What backward divides by: the targets of the NLL, the rows of AR and the pairs of TAR (each 0: the
 * last forward's own count). */
typedef struct {
    long targets, rows, pairs;
} lstm_norms;

/* lstm_model_backward of the loss summed over the last forward's targets and divided by norm->targets
 * (plus AR and TAR over norm->rows and ->pairs; norm NULL: the forward's own counts), with ready (or
 * NULL) called per finished range. With the counts of the whole batch split over ranks, every rank's
 * gradients add up to the whole batch's. */
int lstm_model_backward_ex(lstm_model *m, lstm_acts *a, lstm_state *dstate, const lstm_norms *norm,
                           lstm_grads_ready_fn ready, void *ctx);

/* The adaptive softmax's weights of a model with cfg.softmax == LSTM_SOFTMAX_ADAPTIVE (for the
 * lstm_asm_head / lstm_asm_cluster calls of a caller that needs only part of the distribution). */
void lstm_model_asm_weights(const lstm_model *m, lstm_asm_w *w);

int lstm_infer_alloc(lstm_infer *inf, const lstm_model *m, int B);
void lstm_infer_free(lstm_infer *inf);
/* One step for inf->B lanes: feeds tokens (B), updates st, and writes logits (B,V) unless logits is
 * NULL (prompt tokens whose prediction nobody reads skip the output layer). Returns 0 or LSTM_E_RANGE. */
int lstm_infer_step(lstm_infer *inf, lstm_state *st, const uint32_t *tokens /* (B) */,
                    float *logits /* (B,V) */);
/* One lane over T consecutive tokens (1 <= T <= inf->B: the buffers of a B-lane infer hold T steps
 * of one lane), layer by layer: each layer's input projections of all T steps in one GEMM, then the
 * recurrent step per token (then, with attention, the memory takes the T top outputs, h* of the last). st (one lane) is updated to the state after the last token; hs, cs (T,L*H)
 * get the state after each token unless NULL; logits (V) are those after the last token unless NULL.
 * The same result as T calls of lstm_infer_step up to float rounding. 0, LSTM_E_ARG or LSTM_E_RANGE. */
int lstm_infer_seq(lstm_infer *inf, lstm_state *st, const uint32_t *tokens /* (T) */, int T,
                   float *hs /* (T,L*H) */, float *cs /* (T,L*H) */, float *logits /* (V) */);

#endif
