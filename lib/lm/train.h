/* train.h: the trainer: a language model trained on a window stream from a configuration, or resumed
 * exactly from a checkpoint's training state, one step, one epoch or the whole run at a time, with
 * validation, the best and the latest checkpoints saved at every epoch end, NaN/Inf stops, and
 * progress reported through callbacks that the caller formats. lstm-train is a front-end: it parses
 * flags, opens the data, words the messages and turns signals into the stop flag. The `train` entry
 * of a checkpoint (formats/checkpoint.md, "Training state") is written and parsed here.
 *
 *   lstm_train_config c;  lstm_train_config_default(&c);  ... set fields ...
 *   lstm_trainer *t;  lstm_trainer_create(&t, &c, &io, &err);   (or lstm_train_ckpt_open + lstm_trainer_resume)
 *   rc = lstm_trainer_run(t, &rep);   ... LSTM_TRAIN_DONE, LSTM_TRAIN_STOPPED, LSTM_E_NAN ...
 *   lstm_trainer_free(t);
 *
 * Library code: never prints, never exits; 0, a positive LSTM_TRAIN_* status or a negative LSTM_E_*. */
#ifndef LSTM_TRAIN_H
#define LSTM_TRAIN_H
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "model.h"
#include "modelfile.h"
#include "optim.h"
#include "rng.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* What a run is: everything the training state saves besides its counters, and the model. */
typedef struct {
    lstm_model_config model; /* V is the training data's */
    int optim;               /* LSTM_OPT_* */
    double lr, weight_decay, clip; /* clip: global gradient norm, 0 = off */
    int schedule;            /* LSTM_SCHED_* */
    double lr_decay;         /* step / plateau: divide by this */
    int decay_after;         /* step: constant for this many epochs */
    long warmup;             /* linear warm-up steps */
    int batch;               /* lanes (capped at the training windows) */
    int epochs, patience;    /* patience: epochs without validation improvement, 0 = never stop early */
    int reset_state;         /* zero the state at every window instead of carrying it */
    uint64_t seed;           /* initialisation, dropout masks, each epoch's shuffle */
    double valid_frac;       /* without validation data: hold out the last valid_frac of the windows */
    /* Not saved: they may change at every resume. */
    double time_limit;       /* seconds of training steps, 0 = none: then validate, save, end */
    long log_every;          /* global steps between on_log calls (0 = never) */
    int threads;             /* lstm_set_threads at create / resume, 0 = leave as is */
    int dense_grads;         /* 1: every gradient zeroed, clipped and stepped even where the embedding's
                              * are known to be zero (one process, SGD without weight decay, untied, a
                              * large vocabulary: by default only the batch's rows are; tests) */
} lstm_train_config;

/* lstm-train's defaults: LSTM 2x256 tied, dropout 0.2, Adam lr 0.002, clip 0.25, plateau /4, batch 20,
 * 10 epochs, patience 3, seed 1, valid_frac 0.05, log_every 100. */
void lstm_train_config_default(lstm_train_config *c);

/* Bits naming the fields of lstm_train_config (resume: the ones given again; conflicts). */
enum {
    LSTM_TF_CELL = 1u << 0, LSTM_TF_LAYERS = 1u << 1, LSTM_TF_HIDDEN = 1u << 2, LSTM_TF_EMB = 1u << 3,
    LSTM_TF_TIE = 1u << 4, LSTM_TF_INIT = 1u << 5, LSTM_TF_FB = 1u << 6, LSTM_TF_DROPOUT = 1u << 7,
    LSTM_TF_OPTIM = 1u << 8, LSTM_TF_LR = 1u << 9, LSTM_TF_WD = 1u << 10, LSTM_TF_CLIP = 1u << 11,
    LSTM_TF_SCHEDULE = 1u << 12, LSTM_TF_DECAY = 1u << 13, LSTM_TF_AFTER = 1u << 14, LSTM_TF_WARMUP = 1u << 15,
    LSTM_TF_BATCH = 1u << 16, LSTM_TF_EPOCHS = 1u << 17, LSTM_TF_PATIENCE = 1u << 18, LSTM_TF_RESET = 1u << 19,
    LSTM_TF_SEED = 1u << 20, LSTM_TF_VALID_FRAC = 1u << 21,
    LSTM_TF_VALID = 1u << 22, /* other validation data (a file) given: valid_frac becomes 0 */
    LSTM_TF_SOFTMAX = 1u << 23, /* --softmax, --cutoffs, --div */
    LSTM_TF_PEEP = 1u << 24,
    LSTM_TF_ATT = 1u << 25 /* --attention */
};

/* ---- progress, through the caller's callbacks ---- */

/* After every step (on_step), and every log_every global steps (on_log). */
typedef struct {
    int epoch, epochs;
    uint64_t step, steps;     /* the step just done (0-based) of the epoch's steps */
    uint64_t global_step, tokens; /* after it */
    double lr;                /* of the step just done */
    double loss;              /* of the step just done */
    double epoch_loss;        /* mean over the epoch so far */
    double log_loss;          /* on_log: mean since the previous on_log (NaN in on_step) */
    double grad_norm;         /* before clipping */
    const double *tensor_norms; /* on_log: per-tensor gradient norms (lstm_model_num_tensors), else NULL */
    uint64_t epoch_tokens;    /* trained on in this epoch, in this run */
    double epoch_time;        /* seconds of this epoch's steps, in this run */
    double train_time;        /* seconds of steps in this run, all epochs */
} lstm_train_progress;

/* After every completed epoch, once its checkpoints are saved (on_epoch). */
typedef struct {
    int epoch, epochs;        /* the completed one */
    double train_loss;        /* mean NLL per target token of the epoch */
    double valid_loss;        /* NaN without validation data */
    int has_valid, improved;  /* improved: a new best, saved to the best path */
    double lr;                /* at the epoch's end (before its validation loss updates the schedule) */
    double grad_norm;         /* of the epoch's last step */
    uint64_t global_step, tokens;
    uint64_t epoch_tokens;
    double epoch_time, train_time; /* seconds of steps: this epoch, this run */
    int stop_early;           /* patience ran out: the run ends */
    int time_up;              /* the time limit was reached: the run ends */
} lstm_train_epoch_report;

typedef struct {
    void *ctx;
    /* A non-zero return from any callback ends the run with that code. */
    int (*on_step)(void *ctx, const lstm_train_progress *p);
    int (*on_log)(void *ctx, const lstm_train_progress *p);
    /* an epoch's steps are done (validation and saves follow) */
    int (*on_steps_done)(void *ctx);
    int (*on_epoch)(void *ctx, const lstm_train_epoch_report *r);
} lstm_train_callbacks;

/* ---- a run split over ranks (synchronous data parallelism; one process: NULL) ----
 * Every rank holds the whole model and takes lanes rank, rank + size, ... of the batch; the trainer
 * calls these collectives in the same order on every rank, and each must give every rank the same
 * result. A rank's data, gradients and validation are its lanes'; rank 0 alone writes checkpoints.
 * The hooks return 0 or a negative LSTM_E_* (the run then fails with LSTM_TRAIN_AT_DIST). */
typedef struct {
    int rank, size;
    void *ctx;
    /* v (n) summed over the ranks, in place (blocking). */
    int (*sum)(void *ctx, double *v, int n);
    /* grads [off, off + n) summed over the ranks in place: may return before it is done (a
     * non-blocking reduction started as backward finishes each layer); grads_wait finishes them all. */
    int (*grads_start)(void *ctx, float *grads, size_t off, size_t n);
    int (*grads_wait)(void *ctx);
    /* v (n) summed over the ranks into rank 0's v (the carried state of every lane, for a save). */
    int (*gather_sum)(void *ctx, float *v, size_t n);
    /* len bytes from rank 0 to rank `to` (send, on rank 0) and their receipt (recv, on rank `to`):
     * the windows rank 0 read from stdin for each rank's lanes (io.train_on_rank0). */
    int (*send)(void *ctx, int to, const void *buf, size_t len);
    int (*recv)(void *ctx, void *buf, size_t len);
} lstm_train_dist;

/* ---- what a run reads and writes ---- */
typedef struct {
    lstm_dataset *train;      /* windows (borrowed, for the trainer's life); tokenizer in its metadata */
    lstm_dataset *valid;      /* validation windows (borrowed), or NULL: hold out valid_frac of train */
    const char *valid_path;   /* saved in the training state for resume (absolute), or NULL */
    const char *best_path;    /* the best model by validation loss (every epoch without validation) */
    const char *last_path;    /* the latest state: every epoch end, and a stop */
    int best_on_disk;         /* resume: best_path already holds a best model of this run */
    const char *provenance;   /* command lines for the checkpoints (copied), or NULL */
    const volatile sig_atomic_t *stop; /* or NULL: set (a signal), the trainer stops between steps and saves */
    lstm_train_callbacks cb;
    /* Called once if batch is more than the training windows, before it is capped (or NULL). */
    void (*on_batch_capped)(void *ctx, int batch, uint64_t windows);
    const lstm_train_dist *dist; /* or NULL: one process */
    /* Across ranks, each rank keeps only its lanes' windows of train (and valid): opened lazily
     * (lstm_dataset_open_lazy), its share is loaded. train_on_rank0: only rank 0 has read them (stdin;
     * the other ranks' train is lstm_dataset_from_header of rank 0's) and it sends each rank its share. */
    int train_on_rank0;
} lstm_train_io;

/* Where a create, resume or run failed, for the caller's message (lstm_trainer_error). */
enum {
    LSTM_TRAIN_AT_NONE = 0,
    LSTM_TRAIN_AT_CONFIG,      /* lstm_model_config_check refused the model (LSTM_E_ARG) */
    LSTM_TRAIN_AT_MODEL_SIZE,  /* parameters, gradients and moments need more than 3/4 of RAM (LSTM_E_TOOBIG) */
    LSTM_TRAIN_AT_MODEL,       /* allocating the model */
    LSTM_TRAIN_AT_VOCAB,       /* resume: the data's vocabulary (a) is not the model's (b) (LSTM_E_VOCAB) */
    LSTM_TRAIN_AT_OPTIM,       /* allocating the optimizer */
    LSTM_TRAIN_AT_MOMENTS,     /* resume: the checkpoint has no optimizer moments (LSTM_E_NOTFOUND) */
    LSTM_TRAIN_AT_ACTS_SIZE,   /* activations for batch a x b need more than 3/4 of RAM (LSTM_E_TOOBIG) */
    LSTM_TRAIN_AT_ACTS,        /* allocating activations for batch a x b */
    LSTM_TRAIN_AT_BUFFERS,     /* allocating the batch buffers (LSTM_E_NOMEM) */
    LSTM_TRAIN_AT_LANES,       /* resume: the saved carried state has a lanes, the batch b (LSTM_E_FORMAT) */
    LSTM_TRAIN_AT_DATA,        /* reading the training windows */
    LSTM_TRAIN_AT_FORWARD,
    LSTM_TRAIN_AT_BACKWARD,
    LSTM_TRAIN_AT_PADDING,     /* every training target is padding: nothing to train on (LSTM_E_EMPTY) */
    LSTM_TRAIN_AT_VALID,       /* reading the validation windows */
    LSTM_TRAIN_AT_SAVE,        /* writing path (errno in sys_errno for LSTM_E_IO) */
    LSTM_TRAIN_AT_RANKS,       /* the batch a has fewer lanes than the b ranks (LSTM_E_ARG) */
    LSTM_TRAIN_AT_DIST,        /* a collective across the ranks failed */
    LSTM_TRAIN_AT_DIVERGED,    /* at the end of epoch a the ranks' weights differ (LSTM_E_INTERNAL): nothing saved */
    LSTM_TRAIN_AT_CALLBACK     /* a callback's non-zero return */
};

typedef struct {
    int rc;                   /* the code returned */
    int at;                   /* LSTM_TRAIN_AT_* */
    long a, b;                /* see the LSTM_TRAIN_AT_* */
    double need, have;        /* bytes, for the *_SIZE ones */
    const char *path;         /* LSTM_TRAIN_AT_SAVE */
    int sys_errno;            /* errno right after the failure */
} lstm_train_error;

/* A NaN/Inf stop (LSTM_E_NAN): nothing was saved after the last good epoch. */
enum {
    LSTM_TRAIN_NAN_LOSS = 1,  /* a step's loss */
    LSTM_TRAIN_NAN_GRAD,      /* a step's gradient norm (its loss was finite) */
    LSTM_TRAIN_NAN_VALID,     /* the validation loss at the epoch's end */
    LSTM_TRAIN_NAN_PARAMS     /* the parameters after the last update */
};

/* How a run ended, after lstm_trainer_epoch / lstm_trainer_run. */
typedef struct {
    int epoch;                /* LSTM_TRAIN_STOPPED: where the saved state resumes; NaN: where it happened */
    uint64_t step;
    int mid_epoch;            /* STOPPED: saved inside the epoch (steps or validation); NaN: at a step */
    int nan;                  /* LSTM_TRAIN_NAN_* */
    double lr;                /* NaN: the lr of the failing step (or of the epoch's last) */
} lstm_train_end;

enum {
    LSTM_TRAIN_NEXT = 0,      /* an epoch is done; more to run */
    LSTM_TRAIN_DONE = 1,      /* the last epoch is done, patience ran out, or the time limit was reached */
    LSTM_TRAIN_STOPPED = 2    /* the stop flag: the state was saved to last_path (end: where) */
};

typedef struct lstm_trainer lstm_trainer;

/* A fresh model: checks the configuration against the data and this machine, initialises the model
 * from cfg->seed, splits off the validation windows, caps the batch, allocates everything training
 * needs (nothing is allocated per step). Returns 0 or an error with *err filled (err may be NULL). */
int lstm_trainer_create(lstm_trainer **out, const lstm_train_config *cfg, const lstm_train_io *io,
                        lstm_train_error *err);

/* ---- the training state: the counters a checkpoint saves for an exact resume ---- */
typedef struct {
    int epoch;                /* epoch in progress or next, 1-based */
    uint64_t step;            /* next step within the epoch */
    uint64_t global_step;     /* optimizer steps so far */
    lstm_rng rng;             /* dropout masks */
    lstm_sched sched;         /* saved: plateau_lr, best, bad */
    lstm_early early;         /* saved: best, bad */
    double best_valid;        /* inf before the first validation */
    int best_epoch;
    uint64_t tokens;          /* target tokens trained on so far */
    double train_nll;         /* of the epoch in progress */
    uint64_t train_count;
    int ranks;                /* processes of the run that saved it (1 when the key is absent) */
} lstm_train_state;

/* The `train` entry (formats/checkpoint.md, key=value lines) of a configuration and its state, into
 * buf; valid_path (or NULL) is saved as `valid`. LSTM_E_TOOBIG if cap is too small. */
int lstm_train_state_format(char *buf, size_t cap, const lstm_train_config *cfg, const lstm_train_state *s,
                            const char *valid_path);
/* Reads one back into cfg (every saved field; cfg->model is not in it) and s. LSTM_E_NOTFOUND when
 * a key is missing or unreadable. */
int lstm_train_state_parse(const char *text, size_t len, lstm_train_config *cfg, lstm_train_state *s);

/* ---- resume: a checkpoint's training state, the flags given again, then the trainer ---- */
typedef struct {
    lstm_modelfile f;         /* the checkpoint (f.bad_tensor after LSTM_E_NAN) */
    lstm_train_config cfg;    /* as saved (the model's config from the checkpoint), then as applied */
    lstm_train_state state;
    char valid_path[PATH_MAX + 1]; /* the saved validation file, or "" */
    uint32_t given;           /* lstm_train_ckpt_apply's mask */
    int open;
} lstm_train_ckpt;

/* Opens path and reads its training state; tok (len bytes) is the training data's tokenizer, which
 * must be the checkpoint's. lstm_modelfile_open's codes, LSTM_E_VOCAB (another tokenizer),
 * LSTM_E_NOTFOUND (no training state, or one missing a key), LSTM_E_KIND (an exported model, which
 * has none: formats/model.md). Closed by lstm_train_ckpt_close, also
 * after a failure. */
int lstm_train_ckpt_open(lstm_train_ckpt *c, const char *path, const uint8_t *tok, size_t len);
void lstm_train_ckpt_close(lstm_train_ckpt *c);
/* 1 if the state is inside an epoch (resuming mid-epoch), else 0. */
int lstm_train_ckpt_mid_epoch(const lstm_train_ckpt *c);

/* The values given again (the fields of given named by the mask's LSTM_TF_* bits) applied to c->cfg:
 * the schedule, the data and time take the new value; the model's shape and initialisation, --seed
 * and the optimizer must equal the saved ones, and the batch, reset_state and the held-out windows
 * may change only at an epoch boundary. LSTM_E_ARG with *conflict = the refused field's bit. Given
 * epochs / patience replace the saved ones; threads, time_limit and log_every always come from given. */
int lstm_train_ckpt_apply(lstm_train_ckpt *c, const lstm_train_config *given, uint32_t mask, uint32_t *conflict);

/* The regularization flags given again (model.h's training-only settings besides dropout), as bits
 * of a mask of their own: one LSTM_TF_* bit each would take all that is left of that mask. */
enum {
    LSTM_TR_DROPOUT_IN = 1u << 0, LSTM_TR_DROPOUT_HIDDEN = 1u << 1, LSTM_TR_LOCKED = 1u << 2,
    LSTM_TR_DROPOUT_WORDS = 1u << 3, LSTM_TR_WEIGHT_DROP = 1u << 4, LSTM_TR_AR = 1u << 5, LSTM_TR_TAR = 1u << 6
};

/* After lstm_train_ckpt_apply: the fields of given->model the mask names replace the saved ones. They
 * act in training only, as dropout does, so each may change at any resume, mid-epoch included (the
 * masks drawn from then on are the new settings'). */
void lstm_train_ckpt_apply_reg(lstm_train_ckpt *c, const lstm_train_config *given, uint32_t mask);

/* The trainer continuing c exactly: weights, optimizer moments, counters, schedule, random stream and
 * the carried state of an interrupted epoch are copied (c may be closed afterwards). */
int lstm_trainer_resume(lstm_trainer **out, const lstm_train_ckpt *c, const lstm_train_io *io, lstm_train_error *err);

void lstm_trainer_free(lstm_trainer *t);

/* ---- running ---- */

/* One training step of the epoch in progress (an epoch starts at its first step): 1 when a step ran
 * (or a batch without targets was skipped), 0 when the epoch has no steps left (or the time limit is
 * reached: then lstm_trainer_epoch ends it), LSTM_E_NAN (lstm_trainer_end says where; the update was
 * not applied), or an error. Does not look at the stop flag. */
int lstm_trainer_step(lstm_trainer *t);

/* Mean NLL per target token on the validation windows (NaN without any, or when stopped). Uses the
 * training buffers: the carried state is lost, so only between epochs. 0 or the data's error. */
int lstm_trainer_validate(lstm_trainer *t, double *loss);

/* The state now (weights, moments, the training state: where the next step resumes; the carried
 * state when inside an epoch) to path, atomically. LSTM_E_IO with errno. */
int lstm_trainer_save(lstm_trainer *t, const char *path);

/* The rest of the epoch in progress: steps until its end, the stop flag or a NaN, then the end of
 * the epoch: validation, the NaN checks, the schedule and early stopping, the best and last
 * checkpoints, on_epoch. A stop saves the state to last_path instead (LSTM_TRAIN_STOPPED, also when
 * the flag is found set after an epoch's saves). LSTM_TRAIN_NEXT, LSTM_TRAIN_DONE, LSTM_TRAIN_STOPPED,
 * LSTM_E_NAN, or an error (lstm_trainer_error). */
int lstm_trainer_epoch(lstm_trainer *t);

/* Epochs until the run ends: LSTM_TRAIN_DONE (at once when all epochs are done already),
 * LSTM_TRAIN_STOPPED, LSTM_E_NAN or an error. */
int lstm_trainer_run(lstm_trainer *t);

/* ---- what the caller reports ---- */
typedef struct {
    uint64_t windows, valid_windows; /* trained on per epoch, validated on (0: no validation) */
    int T, K, V, B;            /* window length, targets per window (T or 1), vocabulary, lanes */
    int ranks, lanes;          /* processes the batch is split over; this one's lanes (B with one) */
    int stateful, streaming;   /* state carried across windows; the training input is re-read each epoch */
    /* Across ranks: the fewest and most windows (training and validation) a rank holds in memory, of
     * all_windows (0 held: every rank streams its lanes from the file). One process: 0, 0, 0. */
    uint64_t held_min, held_max, all_windows;
    size_t weights;            /* real parameters (lstm_model_num_weights) */
    size_t params_bytes, optim_bytes, acts_bytes; /* parameters (= gradients), both moments, activations */
    int epoch, epochs;         /* epoch in progress or next */
    double best_valid;         /* inf before the first validation */
    int best_epoch;
    int best_saved;            /* best_path holds a model of this run */
} lstm_train_info;

void lstm_trainer_info(const lstm_trainer *t, lstm_train_info *out);
const lstm_train_config *lstm_trainer_config(const lstm_trainer *t);
const lstm_model *lstm_trainer_model(const lstm_trainer *t);
const lstm_train_error *lstm_trainer_error(const lstm_trainer *t);
const lstm_train_end *lstm_trainer_end(const lstm_trainer *t);
const lstm_train_state *lstm_trainer_state(const lstm_trainer *t);

#endif
