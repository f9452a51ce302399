/* test_trainer.c: the trainer's API (lib/lm/train.h) driven directly: a run stopped mid-epoch, saved
 * and resumed into a new trainer ends at exactly the weights and moments of an uninterrupted run
 * (through lstm_trainer_step + lstm_trainer_save, and through the stop flag); a NaN stop returns
 * LSTM_E_NAN and leaves the good checkpoints as they were; the progress callbacks get sane values;
 * the training state entry round-trips; resume refuses what a checkpoint fixes. The data is a window
 * stream written with the library's own writers into a temp directory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dataset.h"
#include "modelfile.h"
#include "stream.h"
#include "tokenizer.h"
#include "train.h"
#include "windows.h"

static char dir[] = "/tmp/test_trainerXXXXXX";

static void path_of(char *buf, const char *name) { snprintf(buf, 512, "%s/%s", dir, name); }

/* nwin windows of T tokens cut from one long text of runs w<s>, w<s+1>, ... over w0..w11 (a learnable
 * language), state carried from window to window. */
static int write_windows(const char *path, int nwin, int T)
{
    lstm_tokenizer *tok = test_space_tokenizer("w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11");
    if (!tok) return -1;
    /* the text: ids 4..15, runs of 3..8 consecutive words */
    size_t n = (size_t)nwin * T + 1;
    uint32_t *seq = malloc(sizeof *seq * n);
    unsigned s = 7, k = 0, run = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        if (run == 0) {
            s = s * 1103515245u + 12345u;
            run = 3 + (s >> 16) % 6;
            w = (s >> 8) % 12;
        }
        seq[i] = 4 + (w + k++) % 12;
        run--;
        if (run == 0) k = 0;
    }
    int rc = test_write_windows(path, tok, seq, nwin, T);
    free(seq);
    lstm_tokenizer_free(tok);
    return rc;
}

static void config(lstm_train_config *c)
{
    lstm_train_config_default(c);
    c->model.H = c->model.E = 8;
    c->model.L = 2;
    c->model.dropout = 0.1f; /* the random stream must continue exactly too */
    c->batch = 4;
    c->epochs = 2;
    c->patience = 0;
    c->seed = 3;
    c->valid_frac = 0.1;
    c->log_every = 1;
    c->threads = 1;
}

/* ---- callbacks: counts and sanity ---- */
typedef struct {
    long steps, logs, epochs, bad;
    uint64_t last_global;
    int stop_after;                  /* set *stop at this many steps (0 = never) */
    int stop_at_epoch_end;           /* set *stop in on_epoch */
    volatile sig_atomic_t *stop;
    const lstm_train_config *cfg;
} probe_t;

static int on_step(void *ctx, const lstm_train_progress *p)
{
    probe_t *q = ctx;
    q->steps++;
    if (!(p->step < p->steps) || p->epoch < 1 || p->epoch > p->epochs || !(p->loss > 0) || !isfinite(p->loss) ||
        !isfinite(p->epoch_loss) || !(p->lr > 0) || p->tokens == 0 || p->epoch_tokens == 0 || p->epoch_time < 0 ||
        p->train_time < p->epoch_time || p->tensor_norms != NULL || !isnan(p->log_loss))
        q->bad++;
    if (q->last_global && p->global_step != q->last_global + 1) q->bad++;
    q->last_global = p->global_step;
    if (q->stop_after && q->steps == q->stop_after) *q->stop = 1;
    return 0;
}

static int on_log(void *ctx, const lstm_train_progress *p)
{
    probe_t *q = ctx;
    q->logs++;
    if (!p->tensor_norms || !isfinite(p->log_loss) || !(p->tensor_norms[0] >= 0) || !(p->grad_norm > 0)) q->bad++;
    return 0;
}

static int on_epoch(void *ctx, const lstm_train_epoch_report *r)
{
    probe_t *q = ctx;
    q->epochs++;
    if (!r->has_valid || !isfinite(r->train_loss) || !isfinite(r->valid_loss) || r->epochs != q->cfg->epochs ||
        r->epoch < 1 || r->epoch > r->epochs || r->epoch_tokens == 0)
        q->bad++;
    if (q->stop_at_epoch_end) *q->stop = 1;
    return 0;
}

static void reset_probe(probe_t *q, const lstm_train_config *c, volatile sig_atomic_t *stop)
{
    memset(q, 0, sizeof *q);
    q->cfg = c;
    q->stop = stop;
}

static void io_for(lstm_train_io *io, lstm_dataset *d, const char *best, const char *last, probe_t *q,
                   volatile sig_atomic_t *stop)
{
    memset(io, 0, sizeof *io);
    io->train = d;
    io->best_path = best;
    io->last_path = last;
    io->stop = stop;
    io->cb.ctx = q;
    io->cb.on_step = on_step;
    io->cb.on_log = on_log;
    io->cb.on_epoch = on_epoch;
    q->stop = stop;
}

/* 1 if the two checkpoints hold bit-identical parameters and optimizer moments. */
static int same_weights(const char *a, const char *b)
{
    lstm_modelfile fa, fb;
    if (lstm_modelfile_open(&fa, a)) return 0;
    if (lstm_modelfile_open(&fb, b)) {
        lstm_modelfile_close(&fa);
        return 0;
    }
    size_t n = fa.model.n_params;
    int same = n == fb.model.n_params && !memcmp(fa.model.params, fb.model.params, n * sizeof(float)) && fa.optim_m &&
               fb.optim_m && !memcmp(fa.optim_m, fb.optim_m, n * sizeof(float)) &&
               !memcmp(fa.optim_v, fb.optim_v, n * sizeof(float)) && fa.train_len == fb.train_len &&
               !memcmp(fa.train, fb.train, fa.train_len);
    lstm_modelfile_close(&fa);
    lstm_modelfile_close(&fb);
    return same;
}

static lstm_trainer *resume_from(const char *path, lstm_dataset *d, const lstm_train_config *given, uint32_t mask,
                                 const lstm_train_io *io)
{
    size_t tl;
    const uint8_t *tok = lstm_meta_get(lstm_dataset_meta(d), "tokenizer", &tl);
    lstm_train_ckpt ck;
    uint32_t conflict = 0;
    lstm_trainer *t = NULL;
    lstm_train_error err;
    int rc = lstm_train_ckpt_open(&ck, path, tok, tl);
    CHECK_EQ_INT(rc, 0);
    if (!rc) {
        CHECK_EQ_INT(lstm_train_ckpt_apply(&ck, given, mask, &conflict), 0);
        CHECK_EQ_INT(lstm_trainer_resume(&t, &ck, io, &err), 0);
    }
    lstm_train_ckpt_close(&ck);
    return t;
}

/* awd: with every regularizer on (their masks continue the random stream exactly as well). */
static void test_exact_resume(lstm_dataset *d, int awd)
{
    lstm_train_config c;
    config(&c);
    if (awd) {
        c.model.locked = 1, c.model.dropout_in = 0.3f, c.model.dropout_hidden = 0.2f, c.model.dropout_words = 0.1f;
        c.model.weight_drop = 0.4f, c.model.ar = 2.0f, c.model.tar = 1.0f;
    }
    char best[512], last[512], b2[512], l2[512], b3[512], l3[512];
    const char *px = awd ? "awd-" : "";
    char nm[32];
#define P(buf, name) (snprintf(nm, sizeof nm, "%s%s", px, name), path_of(buf, nm))
    P(best, "a.ckpt"), P(last, "a.ckpt.last");
    P(b2, "b.ckpt"), P(l2, "b.ckpt.last");
    P(b3, "c.ckpt"), P(l3, "c.ckpt.last");
#undef P
    volatile sig_atomic_t stop = 0;
    probe_t q = {0};
    q.cfg = &c;
    lstm_train_io io;
    lstm_train_error err;

    /* uninterrupted */
    io_for(&io, d, best, last, &q, &stop);
    lstm_trainer *t;
    CHECK_EQ_INT(lstm_trainer_create(&t, &c, &io, &err), 0);
    lstm_train_info in;
    lstm_trainer_info(t, &in);
    CHECK(in.valid_windows > 0 && in.windows + in.valid_windows == lstm_dataset_count(d));
    CHECK_EQ_INT(in.B, 4);
    CHECK(in.stateful);
    long steps_per_epoch = (long)((in.windows + 3) / 4);
    CHECK_EQ_INT(lstm_trainer_run(t), LSTM_TRAIN_DONE);
    CHECK_EQ_INT(q.bad, 0);
    CHECK_EQ_INT(q.steps, 2 * steps_per_epoch);
    CHECK_EQ_INT(q.logs, q.steps); /* log_every 1 */
    CHECK_EQ_INT(q.epochs, 2);
    lstm_trainer_info(t, &in);
    CHECK(isfinite(in.best_valid) && in.best_epoch >= 1 && in.best_saved);
    CHECK_EQ_INT(in.epoch, 3);
    lstm_trainer_free(t);
    CHECK(access(best, F_OK) == 0 && access(last, F_OK) == 0);

    /* three steps into epoch 2, saved by hand, then a new trainer from the file */
    reset_probe(&q, &c, &stop);
    io_for(&io, d, b2, l2, &q, &stop);
    CHECK_EQ_INT(lstm_trainer_create(&t, &c, &io, &err), 0);
    CHECK_EQ_INT(lstm_trainer_epoch(t), LSTM_TRAIN_NEXT);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(lstm_trainer_step(t), 1);
    CHECK_EQ_INT(lstm_trainer_save(t, l2), 0);
    lstm_trainer_free(t);
    lstm_modelfile f;
    CHECK_EQ_INT(lstm_modelfile_open(&f, l2), 0);
    CHECK(f.state_h != NULL && f.state_B == 4); /* the carried state, for the next step */
    lstm_modelfile_close(&f);
    t = resume_from(l2, d, &c, 0, &io);
    if (t) {
        CHECK_EQ_INT(lstm_trainer_state(t)->epoch, 2);
        CHECK_EQ_INT(lstm_trainer_state(t)->step, 3);
        CHECK_EQ_INT(lstm_trainer_run(t), LSTM_TRAIN_DONE);
        lstm_trainer_free(t);
    }
    CHECK(same_weights(last, l2));
    CHECK(same_weights(best, b2));

    /* the stop flag, set by a callback in the middle of epoch 1: saved there, resumed, the same end */
    reset_probe(&q, &c, &stop);
    q.stop_after = 5;
    io_for(&io, d, b3, l3, &q, &stop);
    CHECK_EQ_INT(lstm_trainer_create(&t, &c, &io, &err), 0);
    CHECK_EQ_INT(lstm_trainer_run(t), LSTM_TRAIN_STOPPED);
    const lstm_train_end *e = lstm_trainer_end(t);
    CHECK_EQ_INT(e->epoch, 1);
    CHECK_EQ_INT(e->step, 5);
    CHECK(e->mid_epoch);
    CHECK_EQ_INT(lstm_trainer_run(t), LSTM_TRAIN_STOPPED); /* a stopped trainer stays stopped */
    lstm_trainer_free(t);
    CHECK(access(b3, F_OK) != 0); /* no epoch ended: no best model */
    stop = 0;
    reset_probe(&q, &c, &stop);
    q.stop_at_epoch_end = 1; /* and once more, after the saves of the epoch it finishes */
    t = resume_from(l3, d, &c, 0, &io);
    if (t) {
        CHECK_EQ_INT(lstm_trainer_run(t), LSTM_TRAIN_STOPPED);
        CHECK_EQ_INT(lstm_trainer_end(t)->epoch, 1);
        CHECK(!lstm_trainer_end(t)->mid_epoch);
        lstm_trainer_free(t);
    }
    stop = 0;
    reset_probe(&q, &c, &stop);
    t = resume_from(l3, d, &c, 0, &io);
    if (t) {
        CHECK_EQ_INT(lstm_trainer_run(t), LSTM_TRAIN_DONE);
        CHECK_EQ_INT(q.epochs, 1);
        CHECK_EQ_INT(q.bad, 0);
        lstm_trainer_free(t);
    }
    CHECK(same_weights(last, l3));
    CHECK(same_weights(best, b3));

    /* resuming a finished run: done at once */
    t = resume_from(last, d, &c, 0, &io);
    if (t) {
        CHECK_EQ_INT(lstm_trainer_run(t), LSTM_TRAIN_DONE);
        lstm_trainer_free(t);
    }
}

static int file_bytes(const char *path, char **buf, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    *buf = malloc(*n ? *n : 1);
    size_t got = fread(*buf, 1, *n, f);
    fclose(f);
    return got == *n ? 0 : -1;
}

static void test_nan(lstm_dataset *d)
{
    lstm_train_config c;
    config(&c);
    c.optim = LSTM_OPT_SGD;
    c.lr = 1;
    c.epochs = 1;
    char best[512], last[512];
    path_of(best, "n.ckpt"), path_of(last, "n.ckpt.last");
    volatile sig_atomic_t stop = 0;
    probe_t q = {0};
    q.cfg = &c;
    lstm_train_io io;
    lstm_train_error err;
    io_for(&io, d, best, last, &q, &stop);
    lstm_trainer *t;
    CHECK_EQ_INT(lstm_trainer_create(&t, &c, &io, &err), 0);
    CHECK_EQ_INT(lstm_trainer_run(t), LSTM_TRAIN_DONE);
    lstm_trainer_free(t);
    char *b0, *l0, *b1, *l1;
    size_t nb0, nl0, nb1, nl1;
    CHECK_EQ_INT(file_bytes(best, &b0, &nb0), 0);
    CHECK_EQ_INT(file_bytes(last, &l0, &nl0), 0);

    /* a huge lr without clipping: stopped with LSTM_E_NAN, the checkpoints untouched */
    lstm_train_config g = c;
    g.lr = 1e30;
    g.clip = 0;
    g.epochs = 3;
    io.best_on_disk = 1;
    t = resume_from(last, d, &g, LSTM_TF_LR | LSTM_TF_CLIP | LSTM_TF_EPOCHS, &io);
    if (t) {
        CHECK_EQ_INT(lstm_trainer_run(t), LSTM_E_NAN);
        const lstm_train_end *e = lstm_trainer_end(t);
        CHECK(e->nan >= LSTM_TRAIN_NAN_LOSS && e->nan <= LSTM_TRAIN_NAN_PARAMS);
        CHECK_EQ_INT(e->epoch, 2);
        CHECK(e->lr >= 1e29);
        lstm_train_info in;
        lstm_trainer_info(t, &in);
        CHECK(in.best_saved);
        CHECK_EQ_INT(lstm_trainer_epoch(t), LSTM_E_NAN); /* and stays stopped */
        lstm_trainer_free(t);
    }
    CHECK_EQ_INT(file_bytes(best, &b1, &nb1), 0);
    CHECK_EQ_INT(file_bytes(last, &l1, &nl1), 0);
    CHECK(nb0 == nb1 && !memcmp(b0, b1, nb0));
    CHECK(nl0 == nl1 && !memcmp(l0, l1, nl0));
    lstm_modelfile f;
    CHECK_EQ_INT(lstm_modelfile_open(&f, best), 0); /* whole and finite */
    lstm_modelfile_close(&f);
    free(b0), free(l0), free(b1), free(l1);

    /* from scratch: nothing saved at all */
    char b2[512], l2[512];
    path_of(b2, "n2.ckpt"), path_of(l2, "n2.ckpt.last");
    c.lr = 1e38; /* (1e30 only blows up a trained model: from the start the activations stay bounded) */
    c.clip = 0;
    io_for(&io, d, b2, l2, &q, &stop);
    CHECK_EQ_INT(lstm_trainer_create(&t, &c, &io, &err), 0);
    CHECK_EQ_INT(lstm_trainer_run(t), LSTM_E_NAN);
    lstm_trainer_free(t);
    CHECK(access(b2, F_OK) != 0 && access(l2, F_OK) != 0);
}

static void test_state_and_apply(lstm_dataset *d)
{
    /* the training state entry round-trips */
    lstm_train_config c, r;
    config(&c);
    c.optim = LSTM_OPT_ADAMW, c.schedule = LSTM_SCHED_COSINE, c.warmup = 17, c.lr = 0.1 / 3, c.reset_state = 1;
    lstm_train_state s, u;
    memset(&s, 0, sizeof s);
    s.epoch = 4, s.step = 9, s.global_step = 123, s.rng.s = 0xfedcba9876543210ull, s.best_valid = 1.0 / 7;
    s.best_epoch = 3, s.tokens = 99999, s.train_nll = 12.5, s.train_count = 77, s.sched.plateau_lr = 0.01;
    s.sched.best = INFINITY, s.sched.bad = 2, s.early.best = 2.0 / 3, s.early.bad = 1;
    char buf[4096];
    CHECK_EQ_INT(lstm_train_state_format(buf, sizeof buf, &c, &s, "/data/valid.win"), 0);
    CHECK(strstr(buf, "\nvalid=/data/valid.win\n") != NULL);
    lstm_train_config_default(&r);
    CHECK_EQ_INT(lstm_train_state_parse(buf, strlen(buf), &r, &u), 0);
    CHECK(r.optim == c.optim && r.schedule == c.schedule && r.warmup == 17 && r.lr == c.lr && r.reset_state == 1 &&
          r.batch == c.batch && r.seed == c.seed && r.valid_frac == c.valid_frac && r.epochs == c.epochs);
    CHECK(u.epoch == 4 && u.step == 9 && u.global_step == 123 && u.rng.s == s.rng.s && u.best_valid == s.best_valid &&
          u.train_nll == 12.5 && u.sched.best == INFINITY && u.sched.bad == 2 && u.early.best == s.early.best);
    CHECK_EQ_INT(lstm_train_state_format(buf, 100, &c, &s, NULL), LSTM_E_TOOBIG);
    CHECK_EQ_INT(lstm_train_state_parse("epoch=1\n", 8, &r, &u), LSTM_E_NOTFOUND);

    /* what a checkpoint fixes, and what only an epoch boundary may change */
    char last[512];
    path_of(last, "m.ckpt.last");
    config(&c);
    lstm_train_io io;
    probe_t q = {0};
    q.cfg = &c;
    volatile sig_atomic_t stop = 0;
    io_for(&io, d, NULL, last, &q, &stop);
    lstm_train_error err;
    lstm_trainer *t;
    CHECK_EQ_INT(lstm_trainer_create(&t, &c, &io, &err), 0);
    CHECK_EQ_INT(lstm_trainer_step(t), 1);
    CHECK_EQ_INT(lstm_trainer_save(t, last), 0);
    lstm_trainer_free(t);
    size_t tl;
    const uint8_t *tok = lstm_meta_get(lstm_dataset_meta(d), "tokenizer", &tl);
    lstm_train_ckpt ck;
    uint32_t conflict = 0;
    CHECK_EQ_INT(lstm_train_ckpt_open(&ck, last, tok, tl), 0);
    CHECK(lstm_train_ckpt_mid_epoch(&ck));
    lstm_train_config g = c;
    g.model.H = 16;
    CHECK_EQ_INT(lstm_train_ckpt_apply(&ck, &g, LSTM_TF_HIDDEN, &conflict), LSTM_E_ARG);
    CHECK_EQ_INT(conflict, LSTM_TF_HIDDEN);
    g = c;
    g.batch = 2;
    CHECK_EQ_INT(lstm_train_ckpt_apply(&ck, &g, LSTM_TF_BATCH, &conflict), LSTM_E_ARG);
    CHECK_EQ_INT(conflict, LSTM_TF_BATCH);
    g = c;
    g.seed = 4;
    CHECK_EQ_INT(lstm_train_ckpt_apply(&ck, &g, LSTM_TF_SEED, &conflict), LSTM_E_ARG);
    CHECK_EQ_INT(conflict, LSTM_TF_SEED);
    CHECK_EQ_INT(lstm_train_ckpt_apply(&ck, &g, LSTM_TF_VALID, &conflict), LSTM_E_ARG); /* valid_frac to 0 mid-epoch */
    CHECK_EQ_INT(conflict, LSTM_TF_VALID);
    g = c;
    g.lr = 0.5, g.epochs = 7, g.model.dropout = 0.3f, g.model.H = 99;
    CHECK_EQ_INT(lstm_train_ckpt_apply(&ck, &g, LSTM_TF_LR | LSTM_TF_EPOCHS | LSTM_TF_DROPOUT, &conflict), 0);
    CHECK(ck.cfg.lr == 0.5 && ck.cfg.epochs == 7 && ck.cfg.model.dropout == 0.3f && ck.cfg.model.H == 8);
    /* the regularization flags given again, mid-epoch: only the named ones change */
    g.model.weight_drop = 0.5f, g.model.ar = 2.0f, g.model.tar = 1.0f, g.model.locked = 1;
    lstm_train_ckpt_apply_reg(&ck, &g, LSTM_TR_WEIGHT_DROP | LSTM_TR_LOCKED);
    CHECK(ck.cfg.model.weight_drop == 0.5f && ck.cfg.model.locked == 1 && ck.cfg.model.ar == 0.0f && ck.cfg.model.tar == 0.0f);
    CHECK(ck.cfg.model.dropout_in < 0 && ck.cfg.model.dropout_words == 0.0f);
    lstm_train_ckpt_close(&ck);
    /* another tokenizer */
    const uint8_t other[3] = {1, 2, 3};
    CHECK_EQ_INT(lstm_train_ckpt_open(&ck, last, other, sizeof other), LSTM_E_VOCAB);
    lstm_train_ckpt_close(&ck);

    /* a configuration this machine cannot hold is refused before allocating it */
    config(&c);
    c.model.H = c.model.E = 16384;
    c.model.L = 8;
    CHECK_EQ_INT(lstm_trainer_create(&t, &c, &io, &err), LSTM_E_TOOBIG);
    CHECK_EQ_INT(err.at, LSTM_TRAIN_AT_MODEL_SIZE);
    CHECK(err.need > err.have * 0.75);
}

/* Every batch of lanes lane0, lane0 + step, ... from d equals the same from the whole dataset w. */
static void same_batches(lstm_dataset *w, lstm_dataset *d, uint64_t end, int Bg, int lane0, int step, int stateful)
{
    lstm_batcher a, b;
    CHECK_EQ_INT(lstm_batcher_init_lanes(&a, w, 0, end, Bg, lane0, step, stateful, 0), 0);
    CHECK_EQ_INT(lstm_batcher_init_lanes(&b, d, 0, end, Bg, lane0, step, stateful, 0), 0);
    int T = (int)lstm_dataset_T(w), B = a.B;
    uint32_t *ia = malloc(4 * (size_t)B * T), *ta = malloc(4 * (size_t)B * T);
    uint32_t *ib = malloc(4 * (size_t)B * T), *tb = malloc(4 * (size_t)B * T);
    uint8_t ra[64], rb[64];
    for (uint64_t s = 0; s < a.steps; s++) {
        long ca = lstm_batcher_get(&a, s, ia, ta, ra), cb = lstm_batcher_get(&b, s, ib, tb, rb);
        CHECK(ca > 0 && ca == cb);
        CHECK(memcmp(ia, ib, 4 * (size_t)B * T) == 0 && memcmp(ta, tb, 4 * (size_t)B * T) == 0);
        CHECK(memcmp(ra, rb, (size_t)B) == 0);
    }
    free(ia); free(ta); free(ib); free(tb);
    lstm_batcher_free(&a);
    lstm_batcher_free(&b);
}

/* A rank's share: kept from a loaded dataset, loaded from a lazily opened file, or sent as bytes to a
 * dataset made from the header; each gives the batches of its lanes, and a window outside is refused. */
static void test_shares(const char *win, lstm_dataset *whole)
{
    uint32_t kind;
    uint64_t n = lstm_dataset_count(whole), seg = (n + 3) / 4;
    /* lanes 1 and 3 of 4, carrying state: segments 1 and 3; given out of order and overlapping */
    uint64_t r[6] = {3 * seg, n + 5, seg, 2 * seg, seg + 1, seg + 2};
    lstm_dataset *kept, *lazy, *sent;
    CHECK_EQ_INT(lstm_dataset_open(&kept, win, 0, &kind), 0);
    CHECK_EQ_INT(lstm_dataset_keep(kept, r, 3), 0);
    CHECK(lstm_dataset_held(kept) == seg + (n - 3 * seg));
    same_batches(whole, kept, n, 4, 1, 2, 1);
    CHECK_EQ_INT(lstm_dataset_open_lazy(&lazy, win, 0, &kind), 0);
    CHECK(lstm_dataset_streaming(lazy) && lstm_dataset_held(lazy) == 0);
    CHECK_EQ_INT(lstm_dataset_keep(lazy, r, 3), 0);
    CHECK(!lstm_dataset_streaming(lazy) && lstm_dataset_held(lazy) == lstm_dataset_held(kept));
    same_batches(whole, lazy, n, 4, 1, 2, 1);
    /* a lazily opened file whose share is above the budget stays streamed, and serves every window */
    lstm_dataset *big;
    CHECK_EQ_INT(lstm_dataset_open_lazy(&big, win, 100, &kind), 0);
    CHECK_EQ_INT(lstm_dataset_keep(big, r, 3), 0);
    CHECK(lstm_dataset_streaming(big));
    same_batches(whole, big, n, 4, 0, 1, 1);
    lstm_dataset_free(big);
    uint8_t *h, *p;
    size_t hl, pl;
    CHECK_EQ_INT(lstm_dataset_header(whole, &h, &hl), 0);
    CHECK_EQ_INT(lstm_dataset_from_header(&sent, h, hl), 0);
    CHECK(lstm_dataset_count(sent) == n && lstm_dataset_held(sent) == 0 && lstm_dataset_T(sent) == lstm_dataset_T(whole));
    size_t tl1, tl2;
    const uint8_t *t1 = lstm_meta_get(lstm_dataset_meta(whole), "tokenizer", &tl1);
    const uint8_t *t2 = lstm_meta_get(lstm_dataset_meta(sent), "tokenizer", &tl2);
    CHECK(t1 && t2 && tl1 == tl2 && memcmp(t1, t2, tl1) == 0);
    CHECK_EQ_INT(lstm_dataset_pack(whole, r, 3, &p, &pl), 0);
    CHECK_EQ_INT(lstm_dataset_unpack(sent, r, 3, p, pl - 1), LSTM_E_ARG); /* a short message */
    CHECK_EQ_INT(lstm_dataset_unpack(sent, r, 3, p, pl), 0);
    same_batches(whole, sent, n, 4, 1, 2, 1);
    /* lanes 0 and 2 read windows this share does not hold */
    lstm_batcher bt;
    CHECK_EQ_INT(lstm_batcher_init_lanes(&bt, sent, 0, n, 4, 0, 2, 1, 0), 0);
    uint32_t in[64 * 8], tg[64 * 8];
    uint8_t rs[8];
    CHECK_EQ_INT((int)lstm_batcher_get(&bt, 0, in, tg, rs), LSTM_E_ARG);
    lstm_batcher_free(&bt);
    /* nor can a share keep what it does not hold; ids beyond the vocabulary are refused */
    uint64_t all[2] = {0, n};
    CHECK_EQ_INT(lstm_dataset_keep(kept, all, 1), LSTM_E_ARG);
    p[0] = 0xff;
    p[3] = 0x7f;
    CHECK_EQ_INT(lstm_dataset_unpack(sent, r, 3, p, pl), LSTM_E_FORMAT);
    free(h);
    free(p);
    lstm_dataset_free(kept);
    lstm_dataset_free(lazy);
    lstm_dataset_free(sent);
}

/* SGD over a vocabulary 8x a batch: the trainer zeroes, clips and steps only the embedding rows of
 * the batch; the weights after 2 epochs are a dense step's (to the rounding of the norm's sum). */
static void test_sparse_emb(void)
{
    char text[2000] = "", win[512], a[512], al[512], b[512], bl[512];
    for (int i = 0; i < 200; i++) snprintf(text + strlen(text), sizeof text - strlen(text), "%sw%d", i ? " " : "", i);
    lstm_tokenizer *tok = test_space_tokenizer(text);
    CHECK(tok != NULL);
    if (!tok) return;
    int nwin = 60, T = 6;
    uint32_t *seq = malloc(sizeof *seq * ((size_t)nwin * T + 1));
    unsigned s = 11;
    for (int i = 0; i <= nwin * T; i++) {
        s = s * 1103515245u + 12345u;
        seq[i] = 4 + (i % 3 ? seq[i - 1] - 4 + 1 : (s >> 8)) % 200; /* runs of three */
    }
    path_of(win, "big.win");
    CHECK_EQ_INT(test_write_windows(win, tok, seq, nwin, T), 0);
    free(seq);
    lstm_tokenizer_free(tok);
    lstm_dataset *d;
    uint32_t kind;
    CHECK_EQ_INT(lstm_dataset_open(&d, win, 0, &kind), 0);
    lstm_train_config c;
    config(&c);
    c.optim = LSTM_OPT_SGD, c.lr = 1.0, c.clip = 0.05; /* a clip that bites */
    c.model.tie = 0;
    volatile sig_atomic_t stop = 0;
    probe_t q;
    lstm_train_io io;
    lstm_train_error err;
    lstm_trainer *t;
    path_of(a, "s.ckpt"), path_of(al, "s.ckpt.last"), path_of(b, "d.ckpt"), path_of(bl, "d.ckpt.last");
    for (int dense = 0; dense < 2; dense++) {
        c.dense_grads = dense;
        reset_probe(&q, &c, &stop);
        io_for(&io, d, dense ? b : a, dense ? bl : al, &q, &stop);
        CHECK_EQ_INT(lstm_trainer_create(&t, &c, &io, &err), 0);
        CHECK_EQ_INT(lstm_trainer_run(t), LSTM_TRAIN_DONE);
        CHECK_EQ_INT(q.bad, 0);
        lstm_trainer_free(t);
    }
    lstm_modelfile fa, fb;
    CHECK_EQ_INT(lstm_modelfile_open(&fa, al), 0);
    CHECK_EQ_INT(lstm_modelfile_open(&fb, bl), 0);
    size_t n = fa.model.n_params;
    CHECK(n == fb.model.n_params);
    double worst = 0, big = 0, moved = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs((double)fa.model.params[i] - fb.model.params[i]);
        worst = x > worst ? x : worst;
        big = fabs(fb.model.params[i]) > big ? fabs(fb.model.params[i]) : big;
    }
    /* and training moved the embedding: the comparison is not of two untouched initialisations */
    lstm_model init;
    lstm_rng rng;
    CHECK_EQ_INT(lstm_model_create(&init, &fb.model.cfg), 0);
    lstm_rng_seed(&rng, c.seed);
    lstm_model_init_params(&init, &rng);
    for (size_t i = 0; i < fb.model.tensors[0].size; i++) moved += fabs((double)init.params[i] - fb.model.params[i]);
    lstm_model_free(&init);
    CHECK(worst <= 1e-6 * big);
    CHECK(moved > 1e-3);
    lstm_modelfile_close(&fa);
    lstm_modelfile_close(&fb);
    lstm_dataset_free(d);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    char win[512];
    path_of(win, "train.win");
    CHECK_EQ_INT(write_windows(win, 90, 6), 0);
    lstm_dataset *d;
    uint32_t kind;
    CHECK_EQ_INT(lstm_dataset_open(&d, win, 0, &kind), 0);
    if (!check_failures) {
        test_exact_resume(d, 0);
        test_exact_resume(d, 1);
        test_nan(d);
        test_state_and_apply(d);
        test_shares(win, d);
        test_sparse_emb();
        lstm_dataset_free(d);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    CHECK_DONE("test_trainer");
}
