/* adaptive.h: the adaptive softmax output layer (Grave, Joulin, Cissé, Grangier, Jégou 2017, "Efficient
 * softmax approximation for GPUs"), laid out and computed as PyTorch's nn.AdaptiveLogSoftmaxWithLoss
 * with head_bias=True.
 *
 * The vocabulary, whose ids lstm-tok gives by descending count, is cut at c_0 < c_1 < ... < c_{n-1} < V.
 * The head scores the shortlist [0, c_0) plus one entry per tail cluster: head logits (c_0 + n) =
 * W_head x + b_head. Cluster i holds ids [c_i, c_{i+1}) (c_n = V) and scores them through a projection
 * to d_i = floor(H / div^(i+1)) dimensions: tail logits = W_out_i (W_proj_i x). Then
 *   log p(w) = log softmax(head)[w]                                        for w < c_0
 *   log p(w) = log softmax(head)[c_0 + i] + log softmax(tail_i)[w - c_i]     for w in cluster i
 * which is a normalised distribution over all V ids. Training scores every row's head but each
 * cluster only on the rows whose target falls in it; backward touches only those clusters.
 *
 * Kernels never allocate and never fail: the caller sizes the scratch (lstm_asm_scratch_floats). */
#ifndef LSTM_ADAPTIVE_H
#define LSTM_ADAPTIVE_H
#include <stddef.h>
#include <stdint.h>

#define LSTM_MAX_CLUSTERS 4

/* The shape of an adaptive softmax over V ids and H inputs. */
typedef struct {
    int V, H, n;                        /* n tail clusters, 1..LSTM_MAX_CLUSTERS */
    int cut[LSTM_MAX_CLUSTERS + 1];     /* cut[0] shortlist size, cut[i] first id of cluster i, cut[n] = V */
    int dim[LSTM_MAX_CLUSTERS];         /* projection width of cluster i */
    int head;                           /* cut[0] + n */
    int maxsz;                          /* widest cluster */
} lstm_asm_shape;

/* Fills s from cutoffs (n of them) and div; returns 0 or -1 when they are not 0 < c_0 < ... < c_{n-1} < V
 * with every projection at least 1 wide (div >= 1). */
int lstm_asm_shape_init(lstm_asm_shape *s, int V, int H, const int *cutoffs, int n, float div);

/* Parses "c0,c1,..." (1..LSTM_MAX_CLUSTERS decimal integers, nothing else) into cut / *n; 0 or -1. The
 * values are checked against a vocabulary by lstm_asm_shape_init. */
int lstm_asm_parse_cutoffs(const char *text, int *cut, int *n);

/* Weights (read-only) or their gradient accumulators. */
typedef struct {
    const float *head_w, *head_b;                                    /* (head, H), (head) */
    const float *proj[LSTM_MAX_CLUSTERS], *out[LSTM_MAX_CLUSTERS]; /* (dim_i, H), (size_i, dim_i) */
} lstm_asm_w;

typedef struct {
    float *head_w, *head_b;
    float *proj[LSTM_MAX_CLUSTERS], *out[LSTM_MAX_CLUSTERS];
} lstm_asm_g;

/* What a window forward keeps for its backward, carved by the caller from lstm_asm_scratch_floats()
 * floats for N rows (rows is N ints carved as floats). */
typedef struct {
    float *head;  /* (N, head) logits, then their gradient */
    float *hlse;  /* (N) */
    float *xg;    /* (N, H) inputs of the rows with a tail target, grouped by cluster */
    float *proj;  /* cluster i's (n_i, dim_i) projections at poff[i] */
    float *tail;  /* cluster i's (n_i, size_i) logits at toff[i], then their gradient */
    float *tlse;  /* (N) per grouped row */
    float *dproj; /* like proj */
    float *dxg;   /* like xg */
    int32_t *rows; /* (N) row of each grouped entry */
    int nrow[LSTM_MAX_CLUSTERS], off[LSTM_MAX_CLUSTERS];
    size_t poff[LSTM_MAX_CLUSTERS], toff[LSTM_MAX_CLUSTERS];
} lstm_asm_acts;

/* Floats of the window scratch for N rows, and the carving (base NULL: count only). take(base, cur, n)
 * is the caller's 64-byte aligned allocator, as in model.c. */
typedef float *(*lstm_asm_take_fn)(float *base, size_t *cur, size_t n);
void lstm_asm_carve(lstm_asm_acts *a, const lstm_asm_shape *s, float *base, size_t *cur, size_t N,
                    lstm_asm_take_fn take);

/* Forward over N rows x (N,H): head logits for every row; with targets (N, 0 = PAD masked), the tail
 * logits of each row's cluster and the summed NLL / count of unmasked targets. ref: plain loops and
 * double sums (the reference twin) instead of lstm_gemm and the vector row kernels. */
void lstm_asm_forward(const lstm_asm_shape *s, const lstm_asm_w *w, lstm_asm_acts *a, const float *x,
                      const uint32_t *targets, int N, double *nll_sum, long *count, int ref);

/* Backward of scale * (the NLL summed over the last forward's targets): accumulates (+=) into g and
 * writes dx (N,H) (overwritten). Destroys the saved logits. */
void lstm_asm_backward(const lstm_asm_shape *s, const lstm_asm_w *w, const lstm_asm_g *g, lstm_asm_acts *a,
                       float *dx, const float *x, const uint32_t *targets, float scale, int N, int ref);

/* Floats of scratch lstm_asm_logprobs needs. */
size_t lstm_asm_row_scratch(const lstm_asm_shape *s);

/* The head's log-softmax (head floats) for one input x (H): the shortlist ids' log-probabilities, then
 * each cluster's (an upper bound of every log-probability in it). */
void lstm_asm_head(const lstm_asm_shape *s, const lstm_asm_w *w, float *head, const float *x);
/* Cluster i's log-probabilities (ids cut[i] .. cut[i+1]-1) into out, given the head's; scratch holds
 * dim[i] floats. */
void lstm_asm_cluster(const lstm_asm_shape *s, const lstm_asm_w *w, int i, float *out, const float *x,
                      const float *head, float *scratch);

/* The exact log-probabilities (V) of all ids for one input x (H). */
void lstm_asm_logprobs(const lstm_asm_shape *s, const lstm_asm_w *w, float *out, const float *x, float *scratch);

#endif
