/* optim.h: parameter updates on the model's flat arrays (SGD, Adam, AdamW), global-norm clipping,
 * per-tensor gradient norms, learning-rate schedules and early stopping.
 *
 * The optimizer state is plain data so a checkpoint can save it for an exact resume: `step` and, for
 * Adam / AdamW, the moments m and v, each n floats in the same flat layout as params and grads (the
 * model's tensor table describes both). The schedule and early-stopping structs are plain data too. */
#ifndef LSTM_OPTIM_H
#define LSTM_OPTIM_H
#include <stddef.h>

#include "model.h"

enum { LSTM_OPT_SGD = 0, LSTM_OPT_ADAM = 1, LSTM_OPT_ADAMW = 2 };

typedef struct {
    int kind;
    double beta1, beta2, eps; /* Adam(W); defaults 0.9, 0.999, 1e-8 (double, as torch's are) */
    double weight_decay;      /* SGD / Adam: L2 added to the gradient (PyTorch's weight_decay);
                                 AdamW: decoupled, p -= lr * wd * p before the Adam step */
    size_t n;                /* floats in params / grads / m / v */
    long step;               /* updates done so far (Adam bias correction uses step after increment) */
    float *m;                /* (n) first moment, NULL for SGD */
    float *v;                /* (n) second moment, NULL for SGD */
} lstm_optim;

/* Zeroed state for n parameters, Adam defaults set. Returns 0, LSTM_E_ARG, LSTM_E_NOMEM. */
int lstm_optim_init(lstm_optim *o, int kind, size_t n);
void lstm_optim_free(lstm_optim *o);
/* Floats of optimizer state per array (n for Adam / AdamW, 0 for SGD) and the number of arrays (m, v). */
size_t lstm_optim_state_floats(const lstm_optim *o);

/* One update of params (n) from grads (n) at learning rate lr. Matches torch.optim.SGD / Adam / AdamW. */
void lstm_optim_step(lstm_optim *o, float *params /* (n) */, const float *grads /* (n) */, float lr);

/* Global L2 norm of grads (computed in double); if max_norm > 0 and the norm exceeds it, grads are
 * scaled by max_norm / norm. Returns the norm before clipping (NaN / Inf propagate for the caller). */
double lstm_optim_clip(float *grads /* (n) */, size_t n, double max_norm);

/* The pieces of a step over part of the parameters (a trainer whose embedding gradient is non-zero on
 * a few rows only): the sum of squares of g (n) in lstm_optim_clip's blocks and order, g *= k, and
 * SGD without weight decay p -= lr g. */
double lstm_optim_sumsq(const float *g, size_t n);
void lstm_optim_scale(float *g, size_t n, float k);
void lstm_optim_sgd_part(float *p, const float *g, size_t n, float lr);

/* L2 norm of every tensor of the model's gradient: out (lstm_model_num_tensors). */
void lstm_optim_tensor_norms(double *out, const lstm_model *m);

/* Learning-rate schedules. Epochs count from 1; steps from 0. */
enum { LSTM_SCHED_CONST = 0, LSTM_SCHED_STEP = 1, LSTM_SCHED_PLATEAU = 2, LSTM_SCHED_COSINE = 3 };

typedef struct {
    int kind;
    double lr0;        /* base learning rate */
    double factor;     /* STEP / PLATEAU: divide by this (e.g. 2) */
    int start_epoch;   /* STEP: lr0 through this epoch, then / factor per epoch (Zaremba: 4) */
    int patience;      /* PLATEAU: epochs without improvement before dividing */
    long warmup;       /* any kind: linear warmup over the first `warmup` steps (0 = none) */
    long total;        /* COSINE: steps until min_lr */
    double min_lr;     /* COSINE floor */
    /* state (PLATEAU), saved for resume */
    double plateau_lr; /* current lr of the plateau schedule */
    double best;       /* best validation loss seen */
    int bad;           /* epochs since best */
} lstm_sched;

/* Fills the kind and lr0 and neutral values for the rest (factor 2, start_epoch 4, patience 0). */
void lstm_sched_init(lstm_sched *s, int kind, double lr0);
/* Learning rate for global step `step` in epoch `epoch`. */
double lstm_sched_lr(const lstm_sched *s, int epoch, long step);
/* End-of-epoch hook: PLATEAU divides its lr when valid_loss has not improved for more than patience
 * epochs (then restarts counting). Other kinds ignore it. */
void lstm_sched_epoch_end(lstm_sched *s, double valid_loss);

/* Early stopping: stop when the validation loss has not improved for `patience` epochs. */
typedef struct {
    int patience;
    double best; /* +inf before the first update */
    int bad;     /* epochs since the best */
    int improved; /* the last update set a new best (keep that checkpoint) */
} lstm_early;

void lstm_early_init(lstm_early *e, int patience);
/* Records one validation loss; returns 1 when training should stop, else 0. */
int lstm_early_update(lstm_early *e, double valid_loss);

#endif
