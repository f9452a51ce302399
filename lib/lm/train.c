/* train.c: the trainer (see train.h): set-up from a configuration or a checkpoint, the step loop
 * (dropout masks, forward, backward, clipping, the update), the epoch end (validation through the
 * evaluator, NaN checks, schedule, early stopping, saves), and the `train` entry of checkpoints. */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "errors.h"
#include "eval.h"
#include "hash.h"

struct lstm_trainer {
    lstm_train_config cfg;
    lstm_train_io io;
    char *best_path, *last_path, *valid_path, *provenance; /* copies */
    const uint8_t *tok;       /* the training data's tokenizer blob */
    size_t tok_len;
    lstm_model model;
    lstm_optim opt;
    lstm_acts acts;
    lstm_state st;
    uint32_t *in, *tg;        /* (B,T) */
    uint8_t *reset;           /* (B) */
    double *tnorms;           /* (n_tensors) */
    lstm_evaluator *ev;       /* NLL of the validation windows, over the buffers above */
    int B, T, K, V, stateful;
    uint64_t n_train, v_begin, v_end;
    lstm_dataset *valid;      /* io.valid, or io.train for held-out windows, or NULL */
    lstm_train_state s;
    /* the epoch in progress */
    lstm_batcher bt;
    int bt_open;
    int in_epoch;             /* between the epoch's first step and its end */
    int carried;              /* not in an epoch: st holds the carried state of step s.step (resumed) */
    uint64_t steps;           /* of the epoch */
    double te0, train_time;   /* clock at the epoch's start in this run; seconds of steps so far */
    double ep_time;
    uint64_t ep_tokens, log_count;
    double log_nll, gnorm, lr;
    int time_up, stop_early, best_saved, failed;
    lstm_train_error err;
    lstm_train_end end;
    char tkv[2048 + PATH_MAX];
    /* split over ranks (io.dist): this rank's lanes are lane0, lane0 + lane_step, ... of Bg */
    const lstm_train_dist *dist;
    int Bg, lane0, lane_step;
    int stop_agreed, time_local; /* the stop every rank agreed on; this rank's clock ran out */
    int dist_rc;                 /* a failed grads_start inside backward */
    lstm_state gst;              /* every lane's carried state (rank 0's is the sum), for a save */
    uint64_t held_min, held_max; /* windows the ranks hold (lstm_train_info) */
    /* One process, SGD without weight decay, untied, a vocabulary much larger than a batch: the
     * embedding's gradient is non-zero on the rows of the batch's inputs only, so they alone are
     * zeroed, clipped and stepped (the other rows of a dense step would stay as they are). */
    int sparse_emb;
    uint8_t *emb_mark;   /* (V) row in emb_rows */
    uint32_t *emb_rows;  /* (B*T) the rows of the last step's inputs */
    size_t n_rows;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int stop_set(const lstm_trainer *t) { return t->io.stop && *t->io.stop; }

/* Whether to stop: the flag, or across ranks the value they last agreed on (agree). */
static int stopping(const lstm_trainer *t) { return t->dist ? t->stop_agreed : stop_set(t); }

/* Fills *e (may be NULL) and returns rc; errno is kept. */
static int fail_ab(lstm_train_error *e, int rc, int at, long a, long b)
{
    int en = errno;
    if (e) {
        memset(e, 0, sizeof *e);
        e->rc = rc;
        e->at = at;
        e->a = a;
        e->b = b;
        e->sys_errno = en;
    }
    errno = en;
    return rc;
}

static int fail(lstm_train_error *e, int rc, int at) { return fail_ab(e, rc, at, 0, 0); }

/* ------------------------------------------------------------------ configuration */

void lstm_train_config_default(lstm_train_config *c)
{
    memset(c, 0, sizeof *c);
    lstm_model_config_default(&c->model);
    c->model.H = c->model.E = 256;
    c->model.dropout = 0.2f;
    c->model.tie = 1;
    c->optim = LSTM_OPT_ADAM;
    c->lr = 0.002;
    c->clip = 0.25;
    c->schedule = LSTM_SCHED_PLATEAU;
    c->lr_decay = 4;
    c->decay_after = 4;
    c->batch = 20;
    c->epochs = 10;
    c->patience = 3;
    c->seed = 1;
    c->valid_frac = 0.05;
    c->log_every = 100;
}

static const char *optim_name(int k) { return k == LSTM_OPT_SGD ? "sgd" : k == LSTM_OPT_ADAMW ? "adamw" : "adam"; }
static const char *sched_name(int k)
{
    return k == LSTM_SCHED_CONST ? "const" : k == LSTM_SCHED_STEP ? "step" : k == LSTM_SCHED_COSINE ? "cosine" : "plateau";
}

/* ------------------------------------------------------------------ the training state entry */

int lstm_train_state_format(char *buf, size_t cap, const lstm_train_config *o, const lstm_train_state *s,
                            const char *valid_path)
{
    int n = snprintf(buf, cap,
             "epoch=%d\nstep=%llu\nglobal_step=%llu\nrng=%llu\nbest_valid=%.17g\nbest_epoch=%d\ntokens=%llu\n"
             "train_nll=%.17g\ntrain_count=%llu\n"
             "sched_lr=%.17g\nsched_best=%.17g\nsched_bad=%d\nearly_best=%.17g\nearly_bad=%d\n"
             "optim=%s\nlr=%.17g\nweight_decay=%.17g\nclip=%.17g\nschedule=%s\nlr_decay=%.17g\ndecay_after=%d\n"
             "warmup=%ld\nbatch=%d\nepochs=%d\npatience=%d\nreset_state=%d\nseed=%llu\nvalid_frac=%.17g\nranks=%d\n",
             s->epoch, (unsigned long long)s->step, (unsigned long long)s->global_step, (unsigned long long)s->rng.s,
             s->best_valid, s->best_epoch, (unsigned long long)s->tokens, s->train_nll,
             (unsigned long long)s->train_count, s->sched.plateau_lr, s->sched.best, s->sched.bad, s->early.best,
             s->early.bad, optim_name(o->optim), o->lr, o->weight_decay, o->clip, sched_name(o->schedule), o->lr_decay,
             o->decay_after, o->warmup, o->batch, o->epochs, o->patience, o->reset_state, (unsigned long long)o->seed,
             o->valid_frac, s->ranks > 1 ? s->ranks : 1);
    if (n < 0 || (size_t)n >= cap) return LSTM_E_TOOBIG;
    if (valid_path) {
        int m = snprintf(buf + n, cap - (size_t)n, "valid=%s\n", valid_path);
        if (m < 0 || (size_t)m >= cap - (size_t)n) return LSTM_E_TOOBIG;
    }
    return 0;
}

static int kv_num(const char *t, size_t n, const char *key, double *out)
{
    char v[64], *e;
    if (lstm_kv_get(t, n, key, v, sizeof v)) return -1;
    *out = strtod(v, &e);
    return *e || e == v ? -1 : 0;
}

static int kv_u64(const char *t, size_t n, const char *key, uint64_t *out)
{
    char v[64], *e;
    if (lstm_kv_get(t, n, key, v, sizeof v)) return -1;
    errno = 0;
    *out = strtoull(v, &e, 10);
    return errno || *e || e == v ? -1 : 0;
}

int lstm_train_state_parse(const char *t, size_t n, lstm_train_config *o, lstm_train_state *s)
{
    double d[18];
    uint64_t u[8];
    char name[32], sname[32];
    if (kv_u64(t, n, "epoch", &u[0]) || kv_u64(t, n, "step", &u[1]) || kv_u64(t, n, "global_step", &u[2]) ||
        kv_u64(t, n, "rng", &u[3]) || kv_num(t, n, "best_valid", &d[0]) || kv_u64(t, n, "best_epoch", &u[4]) ||
        kv_u64(t, n, "tokens", &u[5]) || kv_num(t, n, "train_nll", &d[1]) || kv_u64(t, n, "train_count", &u[6]) ||
        kv_num(t, n, "sched_lr", &d[2]) || kv_num(t, n, "sched_best", &d[3]) || kv_num(t, n, "sched_bad", &d[4]) ||
        kv_num(t, n, "early_best", &d[5]) || kv_num(t, n, "early_bad", &d[6]) || kv_num(t, n, "lr", &d[7]) ||
        kv_num(t, n, "weight_decay", &d[8]) || kv_num(t, n, "clip", &d[9]) || kv_num(t, n, "lr_decay", &d[10]) ||
        kv_num(t, n, "valid_frac", &d[11]) || lstm_kv_get(t, n, "optim", name, sizeof name) ||
        lstm_kv_get(t, n, "schedule", sname, sizeof sname) || kv_num(t, n, "decay_after", &d[12]) ||
        kv_num(t, n, "warmup", &d[13]) || kv_num(t, n, "batch", &d[14]) || kv_num(t, n, "reset_state", &d[15]) ||
        kv_u64(t, n, "seed", &u[7]) || kv_num(t, n, "epochs", &d[16]) || kv_num(t, n, "patience", &d[17]))
        return LSTM_E_NOTFOUND;
    o->optim = !strcmp(name, "sgd") ? LSTM_OPT_SGD : !strcmp(name, "adamw") ? LSTM_OPT_ADAMW : LSTM_OPT_ADAM;
    o->schedule = !strcmp(sname, "const") ? LSTM_SCHED_CONST : !strcmp(sname, "step") ? LSTM_SCHED_STEP
                : !strcmp(sname, "cosine") ? LSTM_SCHED_COSINE : LSTM_SCHED_PLATEAU;
    o->lr = d[7];
    o->weight_decay = d[8];
    o->clip = d[9];
    o->lr_decay = d[10];
    o->valid_frac = d[11];
    o->decay_after = (int)d[12];
    o->warmup = (long)d[13];
    o->batch = (int)d[14];
    o->reset_state = (int)d[15];
    o->seed = u[7];
    o->epochs = (int)d[16];
    o->patience = (int)d[17];
    memset(s, 0, sizeof *s);
    s->epoch = (int)u[0];
    s->step = u[1];
    s->global_step = u[2];
    s->rng.s = u[3];
    s->best_valid = d[0];
    s->best_epoch = (int)u[4];
    s->tokens = u[5];
    s->train_nll = d[1];
    s->train_count = u[6];
    s->sched.plateau_lr = d[2];
    s->sched.best = d[3];
    s->sched.bad = (int)d[4];
    s->early.best = d[5];
    s->early.bad = (int)d[6];
    double r;
    s->ranks = kv_num(t, n, "ranks", &r) || r < 1 ? 1 : (int)r; /* absent before runs were split */
    return 0;
}

/* ------------------------------------------------------------------ resume */

void lstm_train_ckpt_close(lstm_train_ckpt *c)
{
    if (c->open) lstm_modelfile_close(&c->f);
    c->open = 0;
}

int lstm_train_ckpt_open(lstm_train_ckpt *c, const char *path, const uint8_t *tok, size_t len)
{
    memset(c, 0, sizeof *c);
    int rc = lstm_modelfile_open(&c->f, path);
    if (rc) return rc;
    c->open = 1;
    if (c->f.kind != LSTM_CK_KIND_CHECKPOINT) return LSTM_E_KIND; /* an export has no state to resume */
    if (c->f.tokenizer_len != len || memcmp(c->f.tokenizer, tok, len) != 0) return LSTM_E_VOCAB;
    lstm_train_config_default(&c->cfg);
    if (!c->f.train || lstm_train_state_parse(c->f.train, c->f.train_len, &c->cfg, &c->state)) return LSTM_E_NOTFOUND;
    c->cfg.model = c->f.model.cfg;
    if (lstm_kv_get(c->f.train, c->f.train_len, "valid", c->valid_path, sizeof c->valid_path)) c->valid_path[0] = 0;
    return 0;
}

int lstm_train_ckpt_mid_epoch(const lstm_train_ckpt *c) { return c->state.step > 0; }

int lstm_train_ckpt_apply(lstm_train_ckpt *c, const lstm_train_config *g, uint32_t mask, uint32_t *conflict)
{
    lstm_train_config *o = &c->cfg;
    const lstm_model_config *m = &c->f.model.cfg, *gm = &g->model;
    int mid = lstm_train_ckpt_mid_epoch(c);
    /* fixed by the checkpoint's model (its shape, its initialisation, the random stream) */
    const struct { uint32_t bit; int differs; } fixed[] = {
        {LSTM_TF_CELL, gm->cell != m->cell}, {LSTM_TF_LAYERS, gm->L != m->L}, {LSTM_TF_HIDDEN, gm->H != m->H},
        {LSTM_TF_EMB, gm->E != m->E}, {LSTM_TF_TIE, gm->tie != m->tie}, {LSTM_TF_INIT, gm->init_scale != m->init_scale},
        {LSTM_TF_FB, gm->forget_bias != m->forget_bias}, {LSTM_TF_SEED, g->seed != o->seed},
        {LSTM_TF_OPTIM, g->optim != o->optim},
        {LSTM_TF_PEEP, gm->peephole != m->peephole},
        {LSTM_TF_ATT, gm->attention != m->attention},
        {LSTM_TF_SOFTMAX, gm->softmax != m->softmax || gm->n_cutoffs != m->n_cutoffs || gm->div != m->div ||
                              memcmp(gm->cutoffs, m->cutoffs, sizeof m->cutoffs) != 0},
        /* these change what a step does: only at an epoch boundary */
        {LSTM_TF_BATCH, g->batch != o->batch && mid}, {LSTM_TF_RESET, g->reset_state != o->reset_state && mid}};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if ((mask & fixed[i].bit) && fixed[i].differs) {
            *conflict = fixed[i].bit;
            return LSTM_E_ARG;
        }
    double vfrac = (mask & LSTM_TF_VALID_FRAC) ? g->valid_frac : (mask & LSTM_TF_VALID) ? 0 : o->valid_frac;
    if (vfrac != o->valid_frac && mid) {
        *conflict = (mask & LSTM_TF_VALID_FRAC) ? LSTM_TF_VALID_FRAC : LSTM_TF_VALID;
        return LSTM_E_ARG;
    }
    o->model = *m;
    if (mask & LSTM_TF_DROPOUT) o->model.dropout = gm->dropout; /* used in training only */
    if (mask & LSTM_TF_LR) o->lr = g->lr;
    if (mask & LSTM_TF_CLIP) o->clip = g->clip;
    if (mask & LSTM_TF_WD) o->weight_decay = g->weight_decay;
    if (mask & LSTM_TF_DECAY) o->lr_decay = g->lr_decay;
    if (mask & LSTM_TF_AFTER) o->decay_after = g->decay_after;
    if (mask & (LSTM_TF_SCHEDULE | LSTM_TF_AFTER)) o->schedule = g->schedule;
    if (mask & LSTM_TF_WARMUP) o->warmup = g->warmup;
    if (mask & LSTM_TF_BATCH) o->batch = g->batch;
    if (mask & LSTM_TF_RESET) o->reset_state = g->reset_state;
    if (mask & LSTM_TF_EPOCHS) o->epochs = g->epochs;
    if (mask & LSTM_TF_PATIENCE) o->patience = g->patience;
    o->valid_frac = vfrac;
    o->time_limit = g->time_limit;
    o->log_every = g->log_every;
    o->threads = g->threads;
    c->given = mask;
    return 0;
}

void lstm_train_ckpt_apply_reg(lstm_train_ckpt *c, const lstm_train_config *g, uint32_t mask)
{
    lstm_model_config *o = &c->cfg.model;
    const lstm_model_config *gm = &g->model;
    if (mask & LSTM_TR_DROPOUT_IN) o->dropout_in = gm->dropout_in;
    if (mask & LSTM_TR_DROPOUT_HIDDEN) o->dropout_hidden = gm->dropout_hidden;
    if (mask & LSTM_TR_LOCKED) o->locked = gm->locked;
    if (mask & LSTM_TR_DROPOUT_WORDS) o->dropout_words = gm->dropout_words;
    if (mask & LSTM_TR_WEIGHT_DROP) o->weight_drop = gm->weight_drop;
    if (mask & LSTM_TR_AR) o->ar = gm->ar;
    if (mask & LSTM_TR_TAR) o->tar = gm->tar;
}

/* ------------------------------------------------------------------ set-up */

/* Refuse, before allocating, what this machine cannot hold (allocations are lazy, so malloc alone
 * would not say no: the OOM killer would, later). */
static int fits(double need, lstm_train_error *err, int at, long a, long b)
{
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && need > 0.75 * ram) {
        fail_ab(err, LSTM_E_TOOBIG, at, a, b);
        if (err) {
            err->need = need;
            err->have = ram;
        }
        return LSTM_E_TOOBIG;
    }
    return 0;
}

static int params_finite(const lstm_model *m)
{
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->params[i])) return 0;
    return 1;
}

void lstm_trainer_free(lstm_trainer *t)
{
    if (!t) return;
    if (t->bt_open) lstm_batcher_free(&t->bt);
    lstm_evaluator_free(t->ev);
    free(t->in);
    free(t->tg);
    free(t->reset);
    free(t->tnorms);
    free(t->emb_mark);
    free(t->emb_rows);
    lstm_acts_free(&t->acts);
    lstm_state_free(&t->st);
    if (t->gst.h) lstm_state_free(&t->gst);
    lstm_optim_free(&t->opt);
    lstm_model_free(&t->model);
    free(t->best_path);
    free(t->last_path);
    free(t->valid_path);
    free(t->provenance);
    free(t);
}

static char *dup_or_null(const char *s, int *bad)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *bad = 1;
    return d;
}

/* The windows [begin, end) that lanes rank, rank + size, ... of Bg read: their segments when state is
 * carried, else all of them (a shuffled or strided order reaches every window). Appended to r at *k. */
static void lane_ranges(uint64_t begin, uint64_t end, int Bg, int rank, int size, int stateful, uint64_t *r, int *k)
{
    if (begin >= end) return;
    if (!stateful) {
        r[2 * *k] = begin;
        r[2 * *k + 1] = end;
        ++*k;
        return;
    }
    uint64_t seg = (end - begin + (uint64_t)Bg - 1) / (uint64_t)Bg;
    for (int lane = rank; lane < Bg; lane += size) {
        uint64_t lo = begin + (uint64_t)lane * seg, hi = lo + seg < end ? lo + seg : end;
        if (lo >= hi) break;
        r[2 * *k] = lo;
        r[2 * *k + 1] = hi;
        ++*k;
    }
}

/* What rank needs of the training dataset (valid 0: its steps, and the held-out windows when they are
 * taken from it) or of a separate validation dataset (valid 1). r has room for 2 * (Bg + 1) pairs. */
static int rank_ranges(const lstm_trainer *t, int rank, int valid, uint64_t *r)
{
    int k = 0, size = t->lane_step;
    if (!valid) lane_ranges(0, t->n_train, t->Bg, rank, size, t->stateful, r, &k);
    if (valid ? t->valid && t->valid != t->io.train : t->valid == t->io.train)
        lane_ranges(t->v_begin, t->v_end, t->Bg, rank, size, t->stateful, r, &k);
    return k;
}

/* Across ranks, each keeps only its share of the windows (rank 0 sends theirs when it alone read
 * them), and the ranks learn how many windows each holds. */
static int share_windows(lstm_trainer *t, lstm_train_error *err)
{
    const lstm_train_dist *d = t->dist;
    uint64_t *r = malloc(sizeof *r * 4 * ((size_t)t->Bg + 1));
    double *held = calloc((size_t)d->size, sizeof *held);
    int rc = r && held ? 0 : LSTM_E_NOMEM, k;
    if (rc) goto out;
    if (t->io.train_on_rank0) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (d->rank == 0) {
            for (int to = 1; to < d->size; to++) {
                k = rank_ranges(t, to, 0, r);
                if ((rc = lstm_dataset_pack(t->io.train, r, k, &buf, &len))) goto out_data;
                uint8_t hdr[8];
                lstm_put_u64(hdr, len);
                if (!(rc = d->send(d->ctx, to, hdr, 8))) rc = d->send(d->ctx, to, buf, len);
                free(buf);
                if (rc) goto out_dist;
            }
        } else {
            uint8_t hdr[8];
            k = rank_ranges(t, d->rank, 0, r);
            if ((rc = d->recv(d->ctx, hdr, 8))) goto out_dist;
            len = (size_t)lstm_get_u64(hdr);
            if (!(buf = malloc(len ? len : 1))) { rc = LSTM_E_NOMEM; goto out; }
            if ((rc = d->recv(d->ctx, buf, len))) { free(buf); goto out_dist; }
            rc = lstm_dataset_unpack(t->io.train, r, k, buf, len);
            free(buf);
        }
        if (rc) goto out_data;
    }
    k = rank_ranges(t, d->rank, 0, r);
    if ((rc = lstm_dataset_keep(t->io.train, r, k))) goto out_data;
    held[d->rank] = (double)lstm_dataset_held(t->io.train);
    if (t->valid && t->valid != t->io.train) {
        k = rank_ranges(t, d->rank, 1, r);
        if ((rc = lstm_dataset_keep(t->valid, r, k))) { rc = fail(err, rc, LSTM_TRAIN_AT_VALID); goto out; }
        held[d->rank] += (double)lstm_dataset_held(t->valid);
    }
    if ((rc = d->sum(d->ctx, held, d->size))) goto out_dist;
    t->held_min = UINT64_MAX;
    for (int i = 0; i < d->size; i++) {
        uint64_t h = (uint64_t)held[i];
        if (h < t->held_min) t->held_min = h;
        if (h > t->held_max) t->held_max = h;
    }
    goto out;
out_dist:
    rc = fail(err, rc, LSTM_TRAIN_AT_DIST);
    goto out;
out_data:
    rc = fail(err, rc, LSTM_TRAIN_AT_DATA);
out:
    if (rc == LSTM_E_NOMEM && err && !err->rc) rc = fail(err, rc, LSTM_TRAIN_AT_BUFFERS);
    free(r);
    free(held);
    return rc;
}

/* The parts shared by create and resume, in this order: the model (c from the checkpoint when
 * resuming), the optimizer and schedule, the validation split, the batch, the buffers. */
static int setup(lstm_trainer **out, const lstm_train_config *cfg, const lstm_train_io *io, const lstm_train_ckpt *c,
                 lstm_train_error *err)
{
    *out = NULL;
    if (err) memset(err, 0, sizeof *err);
    if (!cfg || !io || !io->train) return fail(err, LSTM_E_ARG, LSTM_TRAIN_AT_NONE);
    size_t tl;
    const uint8_t *tok = lstm_meta_get(lstm_dataset_meta(io->train), "tokenizer", &tl);
    if (!tok) return fail(err, LSTM_E_ARG, LSTM_TRAIN_AT_NONE);
    lstm_trainer *t = calloc(1, sizeof *t);
    if (!t) return fail(err, LSTM_E_NOMEM, LSTM_TRAIN_AT_BUFFERS);
    int bad = 0, rc;
    t->cfg = *cfg;
    t->io = *io;
    t->best_path = dup_or_null(io->best_path, &bad);
    t->last_path = dup_or_null(io->last_path, &bad);
    t->valid_path = dup_or_null(io->valid_path, &bad);
    t->provenance = dup_or_null(io->provenance, &bad);
    if (bad) {
        lstm_trainer_free(t);
        return fail(err, LSTM_E_NOMEM, LSTM_TRAIN_AT_BUFFERS);
    }
    t->tok = tok;
    t->tok_len = tl;
    t->dist = io->dist && io->dist->size > 1 ? io->dist : NULL;
    t->lane0 = t->dist ? t->dist->rank : 0;
    t->lane_step = t->dist ? t->dist->size : 1;
    if (cfg->threads > 0) lstm_set_threads(cfg->threads);
    lstm_train_config *o = &t->cfg;
    lstm_train_state *s = &t->s;
    uint64_t n_all = lstm_dataset_count(io->train);
    t->T = (int)lstm_dataset_T(io->train);
    t->K = (int)lstm_dataset_K(io->train);
    t->V = (int)lstm_dataset_vocab(io->train);

#define FAIL_AB(code, at, a, b)                                                                                        \
    do {                                                                                                               \
        int fc_ = fail_ab(err, (code), (at), (a), (b));                                                                \
        lstm_trainer_free(t);                                                                                          \
        return fc_;                                                                                                    \
    } while (0)
#define FAIL(code, at) FAIL_AB(code, at, 0, 0)

    /* ---- the model ---- */
    lstm_tensor_info ti[LSTM_MAX_TENSORS];
    int nt;
    if (!c) {
        o->model.V = t->V;
        if (lstm_model_config_check(&o->model)) FAIL_AB(LSTM_E_ARG, LSTM_TRAIN_AT_CONFIG, t->V, 0);
    }
    /* parameters, gradients and two optimizer moments */
    if (fits(16.0 * (double)lstm_model_layout(&o->model, ti, &nt), err, LSTM_TRAIN_AT_MODEL_SIZE, 0, 0)) {
        lstm_trainer_free(t);
        return LSTM_E_TOOBIG;
    }
    if ((rc = lstm_model_create(&t->model, &o->model))) FAIL(rc, LSTM_TRAIN_AT_MODEL);
    if (c) {
        memcpy(t->model.params, c->f.model.params, t->model.n_params * sizeof(float));
        *s = c->state;
    } else {
        memset(s, 0, sizeof *s);
        lstm_rng_seed(&s->rng, o->seed);
        lstm_model_init_params(&t->model, &s->rng);
        s->epoch = 1;
        s->best_valid = INFINITY;
        lstm_early_init(&s->early, o->patience);
    }
    if (o->model.V != t->V) FAIL_AB(LSTM_E_VOCAB, LSTM_TRAIN_AT_VOCAB, t->V, o->model.V);
    s->early.patience = o->patience;
    lstm_sched saved = s->sched;
    lstm_sched_init(&s->sched, o->schedule, o->lr);
    s->sched.factor = o->lr_decay;
    s->sched.start_epoch = o->decay_after;
    s->sched.warmup = o->warmup;
    s->sched.patience = 0;
    if (c) {
        if (!(c->given & LSTM_TF_LR)) s->sched.plateau_lr = saved.plateau_lr; /* a new lr restarts it */
        s->sched.best = saved.best;
        s->sched.bad = saved.bad;
    }
    if ((rc = lstm_optim_init(&t->opt, o->optim, t->model.n_params))) FAIL(rc, LSTM_TRAIN_AT_OPTIM);
    t->opt.weight_decay = (float)o->weight_decay;
    if (c) {
        t->opt.step = (long)s->global_step;
        if (t->opt.m && c->f.optim_m) {
            memcpy(t->opt.m, c->f.optim_m, t->model.n_params * sizeof(float));
            memcpy(t->opt.v, c->f.optim_v, t->model.n_params * sizeof(float));
        } else if (t->opt.m) FAIL(LSTM_E_NOTFOUND, LSTM_TRAIN_AT_MOMENTS);
    }

    /* ---- the validation windows ---- */
    t->n_train = n_all;
    if (io->valid) {
        t->valid = io->valid;
        t->v_end = lstm_dataset_count(io->valid);
    } else if (o->valid_frac > 0) {
        uint64_t nv = (uint64_t)((double)n_all * o->valid_frac);
        if (nv >= 1 && n_all - nv >= 1) {
            t->valid = io->train;
            t->n_train = n_all - nv;
            t->v_begin = t->n_train;
            t->v_end = n_all;
        }
    }
    t->stateful = !o->reset_state && t->K == t->T;
    if ((uint64_t)o->batch > t->n_train) { /* more lanes than windows would only allocate empty lanes */
        if (io->on_batch_capped) io->on_batch_capped(io->cb.ctx, o->batch, t->n_train);
        o->batch = (int)t->n_train;
    }
    /* Across ranks, this rank's share of the batch's lanes. */
    int Bg = t->Bg = o->batch, T = t->T;
    if (Bg < t->lane_step) FAIL_AB(LSTM_E_ARG, LSTM_TRAIN_AT_RANKS, Bg, t->lane_step); /* the same on every rank */
    int B = t->B = lstm_batcher_lanes(Bg, t->lane0, t->lane_step);
    s->ranks = t->lane_step;
    if (t->dist && (rc = share_windows(t, err))) {
        lstm_trainer_free(t);
        return rc;
    }

    /* ---- buffers ---- */
    /* Activations for B x T, counted before they are allocated. */
    if (fits((double)lstm_acts_bytes(&t->model, B, T), err, LSTM_TRAIN_AT_ACTS_SIZE, B, T)) {
        lstm_trainer_free(t);
        return LSTM_E_TOOBIG;
    }
    if ((rc = lstm_acts_alloc(&t->acts, &t->model, B, T)) || (rc = lstm_state_alloc(&t->st, &t->model, B)))
        FAIL_AB(rc, LSTM_TRAIN_AT_ACTS, B, T);
    t->in = malloc(sizeof *t->in * (size_t)B * T);
    t->tg = malloc(sizeof *t->tg * (size_t)B * T);
    t->reset = malloc((size_t)B);
    t->tnorms = malloc(sizeof *t->tnorms * (size_t)t->model.n_tensors);
    if (!t->in || !t->tg || !t->reset || !t->tnorms) FAIL(LSTM_E_NOMEM, LSTM_TRAIN_AT_BUFFERS);
    if (t->dist && (rc = lstm_state_alloc(&t->gst, &t->model, Bg)))
        FAIL_AB(rc, LSTM_TRAIN_AT_ACTS, B, T);
    t->sparse_emb = !o->dense_grads && !t->dist && o->optim == LSTM_OPT_SGD && o->weight_decay == 0 && !o->model.tie &&
                    (uint64_t)B * T * 4 < (uint64_t)t->V;
    if (t->sparse_emb) {
        t->emb_mark = calloc((size_t)t->V, 1);
        t->emb_rows = malloc(sizeof *t->emb_rows * (size_t)B * T);
        if (!t->emb_mark || !t->emb_rows) FAIL(LSTM_E_NOMEM, LSTM_TRAIN_AT_BUFFERS);
    }
    if (c && c->f.state_h && s->step > 0) {
        /* Saved for every lane of the batch: this rank takes its own. */
        if (c->f.state_B != Bg) FAIL_AB(LSTM_E_FORMAT, LSTM_TRAIN_AT_LANES, c->f.state_B, Bg);
        size_t H = (size_t)o->model.H;
        for (int l = 0; l < o->model.L; l++)
            for (int b = 0; b < B; b++) {
                size_t from = ((size_t)l * Bg + (size_t)(t->lane0 + b * t->lane_step)) * H, to = ((size_t)l * B + b) * H;
                memcpy(t->st.h + to, c->f.state_h + from, H * sizeof(float));
                memcpy(t->st.c + to, c->f.state_c + from, H * sizeof(float));
            }
        int K = o->model.attention;
        if (K > 0 && c->f.state_mem) /* the attention's memory, per lane like h */
            for (int b = 0; b < B; b++) {
                size_t g = (size_t)(t->lane0 + b * t->lane_step);
                memcpy(t->st.mem + (size_t)b * K * H, c->f.state_mem + g * K * H, (size_t)K * H * sizeof(float));
                t->st.mlen[b] = c->f.state_mlen[g];
            }
        t->carried = 1;
    }
    lstm_eval_opts eo = {0};
    eo.k = 1;
    eo.stop = t->dist ? NULL : io->stop; /* across ranks a validation is never cut short: ranks would part */
    if (t->dist) {
        eo.lane_step = t->lane_step;
        eo.lane0 = t->lane0;
        eo.lanes_of = Bg;
    }
    if ((rc = lstm_evaluator_create_over(&t->ev, &t->model, &t->acts, &t->st, t->in, t->tg, t->reset, B, T, &eo)))
        FAIL(rc, LSTM_TRAIN_AT_BUFFERS);
    t->best_saved = io->best_on_disk;
#undef FAIL
#undef FAIL_AB
    *out = t;
    return 0;
}

int lstm_trainer_create(lstm_trainer **out, const lstm_train_config *cfg, const lstm_train_io *io,
                        lstm_train_error *err)
{
    return setup(out, cfg, io, NULL, err);
}

int lstm_trainer_resume(lstm_trainer **out, const lstm_train_ckpt *c, const lstm_train_io *io, lstm_train_error *err)
{
    if (!c || !c->open) {
        *out = NULL;
        return fail(err, LSTM_E_ARG, LSTM_TRAIN_AT_NONE);
    }
    return setup(out, &c->cfg, io, c, err);
}

/* ------------------------------------------------------------------ running */

/* sparse_emb: the gradients zeroed for a backward (the layers' and the output's all, the embedding's
 * rows of the previous step), and this step's input rows noted. */
static void sparse_zero(lstm_trainer *t)
{
    lstm_model *m = &t->model;
    size_t E = (size_t)m->cfg.E, e_end = m->tensors[1].offset;
    memset(m->grads + e_end, 0, (m->n_params - e_end) * sizeof(float));
    for (size_t i = 0; i < t->n_rows; i++) {
        memset(m->grads + (size_t)t->emb_rows[i] * E, 0, E * sizeof(float));
        t->emb_mark[t->emb_rows[i]] = 0;
    }
    t->n_rows = 0;
    for (size_t i = 0, n = (size_t)t->B * t->T; i < n; i++)
        if (!t->emb_mark[t->in[i]]) {
            t->emb_mark[t->in[i]] = 1;
            t->emb_rows[t->n_rows++] = t->in[i];
        }
}

/* sparse_emb: lstm_optim_clip over the non-zero part: the layers and the output, then the rows. */
static double sparse_clip(lstm_trainer *t)
{
    lstm_model *m = &t->model;
    size_t E = (size_t)m->cfg.E, e_end = m->tensors[1].offset;
    double s = lstm_optim_sumsq(m->grads + e_end, m->n_params - e_end);
    for (size_t i = 0; i < t->n_rows; i++) s += lstm_optim_sumsq(m->grads + (size_t)t->emb_rows[i] * E, E);
    double norm = sqrt(s), max_norm = t->cfg.clip;
    if (max_norm > 0.0 && norm > max_norm) {
        float k = (float)(max_norm / norm);
        lstm_optim_scale(m->grads + e_end, m->n_params - e_end, k);
        for (size_t i = 0; i < t->n_rows; i++) lstm_optim_scale(m->grads + (size_t)t->emb_rows[i] * E, E, k);
    }
    return norm;
}

/* sparse_emb: lstm_optim_step (SGD, no weight decay) over the non-zero part. */
static void sparse_sgd(lstm_trainer *t, float lr)
{
    lstm_model *m = &t->model;
    size_t E = (size_t)m->cfg.E, e_end = m->tensors[1].offset;
    t->opt.step++;
    lstm_optim_sgd_part(m->params + e_end, m->grads + e_end, m->n_params - e_end, lr);
    for (size_t i = 0; i < t->n_rows; i++) {
        size_t o = (size_t)t->emb_rows[i] * E;
        lstm_optim_sgd_part(m->params + o, m->grads + o, E, lr);
    }
}

static int run_fail(lstm_trainer *t, int rc, int at)
{
    fail(&t->err, rc, at);
    t->failed = rc;
    return rc;
}

/* Across ranks: the stop flag and the time limit as every rank sees them, at the points where all
 * the ranks are (the start of a step, the end of an epoch), so that they all stop at the same one. */
static int agree(lstm_trainer *t)
{
    if (!t->dist) return 0;
    double v[2] = {stop_set(t), t->time_local};
    int rc = t->dist->sum(t->dist->ctx, v, 2);
    if (rc) return run_fail(t, rc, LSTM_TRAIN_AT_DIST);
    if (v[0] > 0) t->stop_agreed = 1;
    if (v[1] > 0) t->time_up = 1;
    return 0;
}

/* Across ranks, once per epoch: do all of them hold the same weights? MPI does not promise that a
 * reduction gives every rank the same bits; a rank that drifted would train another model in
 * silence. The parameters' XXH64 in four 16-bit pieces: N * sum(h^2) == sum(h)^2 for each piece
 * exactly when every rank has the same h (the sums are exact in double). 0, 1 (they differ), or an
 * error. */
static int ranks_differ(lstm_trainer *t)
{
    uint64_t h = lstm_xxh64(t->model.params, t->model.n_params * sizeof(float), 0);
    double v[8];
    for (int k = 0; k < 4; k++) {
        double x = (double)((h >> (16 * k)) & 0xffff);
        v[2 * k] = x;
        v[2 * k + 1] = x * x;
    }
    int rc = t->dist->sum(t->dist->ctx, v, 8);
    if (rc) return rc;
    for (int k = 0; k < 4; k++)
        if ((double)t->lane_step * v[2 * k + 1] != v[2 * k] * v[2 * k]) return 1;
    return 0;
}

/* backward's hook: a finished range of gradients goes to the reduction at once. */
static void grads_ready(void *ctx, size_t off, size_t n)
{
    lstm_trainer *t = ctx;
    if (t->dist_rc) return;
    t->dist_rc = t->dist->grads_start(t->dist->ctx, t->model.grads, off, n);
}

static int begin_epoch(lstm_trainer *t)
{
    lstm_train_state *s = &t->s;
    uint64_t shuffle = t->stateful ? 0 : (t->cfg.seed + 1) * 1000003ull + (uint64_t)s->epoch;
    int rc = lstm_batcher_init_lanes(&t->bt, t->io.train, 0, t->n_train, t->Bg, t->lane0, t->lane_step, t->stateful,
                                     shuffle);
    if (rc) return run_fail(t, rc, LSTM_TRAIN_AT_DATA);
    t->bt_open = 1;
    t->in_epoch = 1;
    t->carried = 0;
    t->steps = t->bt.steps;
    s->sched.total = (long)t->bt.steps * t->cfg.epochs; /* cosine: lr0 down to 0 over all the epochs */
    if (s->step == 0) {
        lstm_state_zero(&t->st);
        s->train_nll = 0;
        s->train_count = 0;
    }
    t->te0 = now();
    t->ep_tokens = 0;
    t->log_count = 0;
    t->log_nll = 0;
    t->gnorm = 0;
    t->lr = lstm_sched_lr(&s->sched, s->epoch, (long)s->global_step); /* of the step in progress */
    return 0;
}

int lstm_trainer_step(lstm_trainer *t)
{
    if (t->failed) return t->failed;
    int rc;
    if (!t->in_epoch && (rc = begin_epoch(t))) return rc;
    lstm_train_state *s = &t->s;
    if (s->step >= t->steps || !t->bt_open) return 0;
    int B = t->B, T = t->T;
    long cnt = lstm_batcher_get(&t->bt, s->step, t->in, t->tg, t->reset);
    if (cnt < 0) return run_fail(t, (int)cnt, LSTM_TRAIN_AT_DATA);
    lstm_norms norms = {0, 0, 0};
    if (t->dist) {
        /* The whole batch's targets (the loss is their mean), AR's rows and TAR's pairs, and whether
         * every rank goes on. */
        long rows = 0, pairs = 0;
        if (t->cfg.model.ar > 0 || t->cfg.model.tar > 0) lstm_model_reg_counts(t->in, B, T, &rows, &pairs);
        double v[5] = {(double)cnt, stop_set(t), t->time_local, (double)rows, (double)pairs};
        if ((rc = t->dist->sum(t->dist->ctx, v, 5))) return run_fail(t, rc, LSTM_TRAIN_AT_DIST);
        cnt = (long)v[0];
        norms = (lstm_norms){cnt, (long)v[3], (long)v[4]};
        if (v[1] > 0) {
            t->stop_agreed = 1;
            return 0;
        }
        if (v[2] > 0) { /* a rank's clock ran out after the previous step: that one was the last */
            t->time_up = 1;
            s->step = t->steps;
            return 0;
        }
    }
    for (int b = 0; b < B; b++)
        if (t->reset[b]) lstm_state_reset_row(&t->st, b);
    if (cnt == 0) {
        s->step++;
        return 1;
    }
    lstm_model *m = &t->model;
    /* Masks by the lane's place in the whole batch: the same on any number of ranks (nothing is drawn
     * when nothing drops). */
    lstm_model_sample_dropout_lanes(m, &t->acts, &s->rng, t->Bg, t->lane0, t->lane_step);
    double loss;
    long c;
    if ((rc = lstm_model_forward(m, &t->acts, &t->st, t->in, t->tg, B, T, 1, &loss, &c)))
        return run_fail(t, rc, LSTM_TRAIN_AT_FORWARD);
    if (t->sparse_emb) sparse_zero(t);
    else lstm_model_zero_grads(m);
    if (t->dist) {
        /* Each rank's gradient is its targets' share of the whole batch's mean: the sum is the mean. */
        t->dist_rc = 0;
        if ((rc = lstm_model_backward_ex(m, &t->acts, NULL, &norms, grads_ready, t)))
            return run_fail(t, rc, LSTM_TRAIN_AT_BACKWARD);
        if (t->dist_rc || (rc = t->dist->grads_wait(t->dist->ctx)))
            return run_fail(t, t->dist_rc ? t->dist_rc : rc, LSTM_TRAIN_AT_DIST);
        double v = loss * (double)c;
        if ((rc = t->dist->sum(t->dist->ctx, &v, 1))) return run_fail(t, rc, LSTM_TRAIN_AT_DIST);
        c = cnt;
        loss = v / (double)cnt;
    } else if ((rc = lstm_model_backward(m, &t->acts, NULL))) {
        return run_fail(t, rc, LSTM_TRAIN_AT_BACKWARD);
    }
    int logging = t->io.cb.on_log && t->cfg.log_every > 0;
    if (logging && (s->global_step + 1) % (uint64_t)t->cfg.log_every == 0) lstm_optim_tensor_norms(t->tnorms, m);
    t->gnorm = t->sparse_emb ? sparse_clip(t) : lstm_optim_clip(m->grads, m->n_params, t->cfg.clip);
    t->lr = lstm_sched_lr(&s->sched, s->epoch, (long)s->global_step);
    if (!isfinite(loss) || !isfinite(t->gnorm)) {
        memset(&t->end, 0, sizeof t->end);
        t->end.epoch = s->epoch;
        t->end.step = s->step;
        t->end.mid_epoch = 1;
        t->end.nan = isfinite(loss) ? LSTM_TRAIN_NAN_GRAD : LSTM_TRAIN_NAN_LOSS;
        t->end.lr = t->lr;
        t->failed = LSTM_E_NAN;
        return LSTM_E_NAN;
    }
    if (t->sparse_emb) sparse_sgd(t, (float)t->lr);
    else lstm_optim_step(&t->opt, m->params, m->grads, (float)t->lr);
    s->global_step++;
    s->tokens += (uint64_t)c;
    t->ep_tokens += (uint64_t)c;
    s->train_nll += loss * (double)c;
    s->train_count += (uint64_t)c;
    t->log_nll += loss * (double)c;
    t->log_count += (uint64_t)c;
    double tnow = now();
    lstm_train_progress p = {.epoch = s->epoch, .epochs = t->cfg.epochs, .step = s->step, .steps = t->steps,
                             .global_step = s->global_step, .tokens = s->tokens, .lr = t->lr, .loss = loss,
                             .epoch_loss = s->train_nll / (double)s->train_count, .log_loss = NAN,
                             .grad_norm = t->gnorm, .tensor_norms = NULL, .epoch_tokens = t->ep_tokens,
                             .epoch_time = tnow - t->te0, .train_time = t->train_time + tnow - t->te0};
    if (logging && s->global_step % (uint64_t)t->cfg.log_every == 0) {
        p.log_loss = t->log_nll / (double)t->log_count;
        p.tensor_norms = t->tnorms;
        t->log_nll = 0;
        t->log_count = 0;
        if ((rc = t->io.cb.on_log(t->io.cb.ctx, &p))) return run_fail(t, rc, LSTM_TRAIN_AT_CALLBACK);
        p.log_loss = NAN;
        p.tensor_norms = NULL;
    }
    if (t->io.cb.on_step && (rc = t->io.cb.on_step(t->io.cb.ctx, &p))) return run_fail(t, rc, LSTM_TRAIN_AT_CALLBACK);
    s->step++;
    if (t->cfg.time_limit > 0 && p.train_time >= t->cfg.time_limit) {
        if (t->dist) {
            t->time_local = 1; /* told to the others at the next agreement */
        } else {
            t->time_up = 1;
            s->step = t->steps;
        }
    }
    return 1;
}

int lstm_trainer_validate(lstm_trainer *t, double *loss)
{
    *loss = NAN;
    if (!t->valid) return 0;
    lstm_eval_result r;
    memset(&r, 0, sizeof r);
    int rc = lstm_evaluator_run(t->ev, t->valid, t->v_begin, t->v_end, t->stateful, &r);
    t->carried = 0; /* the validation went through the carried state */
    if (rc) return rc;
    if (t->dist) { /* each rank validated its lanes */
        double v[2] = {r.nll, (double)r.tokens};
        if ((rc = t->dist->sum(t->dist->ctx, v, 2))) return rc;
        r.nll = v[0];
        r.tokens = (long)v[1];
    }
    *loss = r.tokens ? r.nll / (double)r.tokens : NAN;
    return 0;
}

int lstm_trainer_save(lstm_trainer *t, const char *path)
{
    int rc = lstm_train_state_format(t->tkv, sizeof t->tkv, &t->cfg, &t->s, t->valid_path);
    if (rc) return rc;
    /* Inside an epoch the carried state continues the next step (none is needed once its steps are
     * done: the resumed run validates first). */
    int with_state = t->in_epoch ? t->s.step < t->steps : t->carried && t->s.step > 0;
    if (!t->dist) {
        lstm_modelfile_save_args a = {&t->model, t->tok, t->tok_len, t->tkv, &t->opt, with_state ? &t->st : NULL,
                                      t->provenance};
        return lstm_modelfile_save(path, 1, &a);
    }
    /* Across ranks: every lane's carried state to rank 0 (a sum over zeros elsewhere), which writes;
     * then every rank learns how the write went. */
    int L = t->model.cfg.L, H = t->model.cfg.H, Bg = t->Bg, r0 = t->dist->rank == 0;
    if (with_state) {
        size_t n = (size_t)L * Bg * H;
        memset(t->gst.h, 0, n * sizeof(float));
        memset(t->gst.c, 0, n * sizeof(float));
        for (int l = 0; l < L; l++)
            for (int b = 0; b < t->B; b++) {
                size_t to = ((size_t)l * Bg + (size_t)(t->lane0 + b * t->lane_step)) * H, from = ((size_t)l * t->B + b) * H;
                memcpy(t->gst.h + to, t->st.h + from, (size_t)H * sizeof(float));
                memcpy(t->gst.c + to, t->st.c + from, (size_t)H * sizeof(float));
            }
        if ((rc = t->dist->gather_sum(t->dist->ctx, t->gst.h, n)) || (rc = t->dist->gather_sum(t->dist->ctx, t->gst.c, n)))
            return rc;
        int K = t->model.cfg.attention;
        if (K > 0) { /* the attention's memory likewise */
            size_t nm = (size_t)Bg * K * H;
            memset(t->gst.mem, 0, nm * sizeof(float));
            memset(t->gst.mlen, 0, (size_t)Bg * sizeof(float));
            for (int b = 0; b < t->B; b++) {
                size_t g = (size_t)(t->lane0 + b * t->lane_step);
                memcpy(t->gst.mem + g * K * H, t->st.mem + (size_t)b * K * H, (size_t)K * H * sizeof(float));
                t->gst.mlen[g] = t->st.mlen[b];
            }
            if ((rc = t->dist->gather_sum(t->dist->ctx, t->gst.mem, nm)) ||
                (rc = t->dist->gather_sum(t->dist->ctx, t->gst.mlen, (size_t)Bg)))
                return rc;
        }
    }
    if (r0 && !rc) {
        lstm_modelfile_save_args a = {&t->model, t->tok, t->tok_len, t->tkv, &t->opt, with_state ? &t->gst : NULL,
                                      t->provenance};
        rc = lstm_modelfile_save(path, 1, &a);
    }
    int en = errno;
    double v = r0 ? rc : 0;
    int src = t->dist->sum(t->dist->ctx, &v, 1);
    errno = en;
    return src ? src : (int)v;
}

static int save_to(lstm_trainer *t, const char *path)
{
    if (!path) return 0;
    int rc = lstm_trainer_save(t, path);
    if (rc) {
        run_fail(t, rc, LSTM_TRAIN_AT_SAVE);
        t->err.path = path;
    }
    return rc;
}

/* The epoch's end, once its steps are done or stopped. */
static int end_epoch(lstm_trainer *t)
{
    lstm_train_state *s = &t->s;
    int rc;
    if (t->io.cb.on_steps_done && (rc = t->io.cb.on_steps_done(t->io.cb.ctx)))
        return run_fail(t, rc, LSTM_TRAIN_AT_CALLBACK);
    if ((rc = agree(t))) return rc;
    if (t->dist && (rc = ranks_differ(t))) {
        if (rc > 0) {
            fail_ab(&t->err, LSTM_E_INTERNAL, LSTM_TRAIN_AT_DIVERGED, s->epoch, 0);
            return t->failed = LSTM_E_INTERNAL;
        }
        return run_fail(t, rc, LSTM_TRAIN_AT_DIST);
    }
    if (s->train_count == 0 && !stopping(t)) return run_fail(t, LSTM_E_EMPTY, LSTM_TRAIN_AT_PADDING);
    double tl = s->train_count ? s->train_nll / (double)s->train_count : NAN;
    double vl = NAN;
    if (t->valid && !stopping(t) && (rc = lstm_trainer_validate(t, &vl))) return run_fail(t, rc, LSTM_TRAIN_AT_VALID);
    /* The last step's update can overflow without its own loss showing it: never save such a model. */
    int valid_bad = t->valid && !stopping(t) && !isfinite(vl);
    if (valid_bad || !params_finite(&t->model)) {
        memset(&t->end, 0, sizeof t->end);
        t->end.epoch = s->epoch;
        t->end.step = s->step;
        t->end.mid_epoch = s->step < t->steps;
        t->end.nan = valid_bad ? LSTM_TRAIN_NAN_VALID : LSTM_TRAIN_NAN_PARAMS;
        t->end.lr = t->lr;
        t->failed = LSTM_E_NAN;
        return LSTM_E_NAN;
    }
    if (stopping(t)) {
        /* In the steps or the validation: save everything needed to continue exactly here (a resumed
         * run redoes the validation). */
        if ((rc = save_to(t, t->last_path))) return rc;
        memset(&t->end, 0, sizeof t->end);
        t->end.epoch = s->epoch;
        t->end.step = s->step;
        t->end.mid_epoch = 1;
        t->failed = LSTM_TRAIN_STOPPED;
        return LSTM_TRAIN_STOPPED;
    }
    lstm_train_epoch_report r;
    memset(&r, 0, sizeof r);
    r.epoch = s->epoch;
    r.epochs = t->cfg.epochs;
    s->step = 0;
    r.lr = lstm_sched_lr(&s->sched, s->epoch, (long)s->global_step);
    if (t->valid) {
        lstm_sched_epoch_end(&s->sched, vl);
        t->stop_early = lstm_early_update(&s->early, vl) && t->cfg.patience > 0;
        if (vl < s->best_valid) {
            s->best_valid = vl;
            s->best_epoch = r.epoch;
            r.improved = 1;
        }
    }
    /* The saved state describes the start of the next epoch. */
    s->epoch++;
    t->in_epoch = 0;
    if (!t->valid || r.improved) {
        if ((rc = save_to(t, t->best_path))) return rc;
        if (t->best_path) t->best_saved = 1;
    }
    if ((rc = save_to(t, t->last_path))) return rc;
    r.train_loss = tl;
    r.valid_loss = vl;
    r.has_valid = t->valid != NULL;
    r.grad_norm = t->gnorm;
    r.global_step = s->global_step;
    r.tokens = s->tokens;
    r.epoch_tokens = t->ep_tokens;
    r.epoch_time = t->ep_time;
    r.train_time = t->train_time;
    r.stop_early = t->stop_early;
    r.time_up = t->time_up;
    if (t->io.cb.on_epoch && (rc = t->io.cb.on_epoch(t->io.cb.ctx, &r))) return run_fail(t, rc, LSTM_TRAIN_AT_CALLBACK);
    if ((rc = agree(t))) return rc;
    if (stopping(t)) {
        /* During the epoch-end saves (or just after the validation): the epoch is saved whole. */
        memset(&t->end, 0, sizeof t->end);
        t->end.epoch = r.epoch;
        t->failed = LSTM_TRAIN_STOPPED;
        return LSTM_TRAIN_STOPPED;
    }
    if (s->epoch > t->cfg.epochs || t->stop_early || t->time_up) return LSTM_TRAIN_DONE;
    return LSTM_TRAIN_NEXT;
}

int lstm_trainer_epoch(lstm_trainer *t)
{
    if (t->failed) return t->failed;
    int rc = 0;
    if (!t->in_epoch && (rc = begin_epoch(t))) return rc;
    /* The flag is checked before each step, so a stop leaves s.step at the next step to run. */
    while (!stopping(t) && (rc = lstm_trainer_step(t)) > 0) {}
    if (t->bt_open) lstm_batcher_free(&t->bt);
    t->bt_open = 0;
    t->ep_time = now() - t->te0;
    t->train_time += t->ep_time;
    if (rc < 0) return rc;
    return end_epoch(t);
}

int lstm_trainer_run(lstm_trainer *t)
{
    int rc;
    if (t->failed) return t->failed;
    if (t->s.epoch > t->cfg.epochs) return LSTM_TRAIN_DONE;
    while ((rc = lstm_trainer_epoch(t)) == LSTM_TRAIN_NEXT) {}
    return rc;
}

/* ------------------------------------------------------------------ reports */

void lstm_trainer_info(const lstm_trainer *t, lstm_train_info *o)
{
    memset(o, 0, sizeof *o);
    o->windows = t->n_train;
    o->valid_windows = t->valid ? t->v_end - t->v_begin : 0;
    o->T = t->T;
    o->K = t->K;
    o->V = t->V;
    o->B = t->Bg;
    o->lanes = t->B;
    o->ranks = t->lane_step;
    o->stateful = t->stateful;
    o->streaming = lstm_dataset_streaming(t->io.train);
    o->held_min = t->held_min;
    o->held_max = t->held_max;
    if (t->dist)
        o->all_windows = lstm_dataset_count(t->io.train) + (t->valid && t->valid != t->io.train ? t->v_end - t->v_begin : 0);
    o->weights = lstm_model_num_weights(&t->model);
    o->params_bytes = t->model.n_params * sizeof(float);
    o->optim_bytes = lstm_optim_state_floats(&t->opt) * 2 * sizeof(float);
    o->acts_bytes = t->acts.bytes;
    o->epoch = t->s.epoch;
    o->epochs = t->cfg.epochs;
    o->best_valid = t->s.best_valid;
    o->best_epoch = t->s.best_epoch;
    o->best_saved = t->best_saved;
}

const lstm_train_config *lstm_trainer_config(const lstm_trainer *t) { return &t->cfg; }
const lstm_model *lstm_trainer_model(const lstm_trainer *t) { return &t->model; }
const lstm_train_error *lstm_trainer_error(const lstm_trainer *t) { return &t->err; }
const lstm_train_end *lstm_trainer_end(const lstm_trainer *t) { return &t->end; }
const lstm_train_state *lstm_trainer_state(const lstm_trainer *t) { return &t->s; }
