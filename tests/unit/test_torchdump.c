/* test_torchdump.c: the C half of the PyTorch cross-check. With no argument it runs every case in memory
 * and checks it is sane (so `make unit` exercises it); with a directory argument it also writes, per
 * case (lstm/gru/rnn/cifg x tied/untied, the peephole LSTM, and the LSTM with attention over its last 3
 * top outputs, tied and untied, with a carried-in memory: mem0, mlen0 and its gradient dmem0), the weights, inputs, initial state, logits, loss, every gradient,
 * the initial-state gradient, and the parameters after one SGD step and after two Adam and two AdamW
 * steps, as raw little-endian float32 / uint32 files plus a text manifest that
 * tests/torch_crosscheck.py reads. Two more cases (lstm_adaptive, gru_adaptive) replace the output layer
 * by the adaptive softmax: their logits.f32 are log-probabilities, and infer.f32 the same from the
 * one-step inference path. The *_awd cases train with every AWD regularizer (model.h): their masks
 * (dropout on the embeddings, between layers and on the output, locked or not; the words' rows; each
 * layer's w_hh) are written too, as the NLL, AR + TAR and every gradient of their sum. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "errors.h"
#include "model.h"
#include "optim.h"

#define LR_SGD 0.5f
#define LR_ADAM 0.01f
#define WD_ADAMW 0.1

static const char *cell_names[] = {"lstm", "gru", "rnn", "cifg", "lnlstm"};

/* The files are little-endian by contract; this build only targets little-endian hosts. */
static int write_raw(const char *dir, const char *name, const void *data, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, bytes, f) == bytes;
    ok &= fclose(f) == 0;
    return ok ? 0 : -1;
}

static int write_tensors(const char *dir, const char *prefix, const lstm_model *m, const float *base)
{
    char name[128];
    for (int i = 0; i < m->n_tensors; i++) {
        const lstm_tensor_info *t = &m->tensors[i];
        snprintf(name, sizeof name, "%s.%s.f32", prefix, t->name);
        if (write_raw(dir, name, base + t->offset, t->size * sizeof(float))) return -1;
    }
    return 0;
}

/* A case's model (its biases moved off zero so every path runs), activations for B x T and three
 * states: st and s0 the same random initial h (and c, for cells that have one), ds for gradients. */
static void setup_case(lstm_model *m, const lstm_model_config *cfg, lstm_rng *rng, int B, int T, lstm_acts *a,
                       lstm_state *st, lstm_state *s0, lstm_state *ds)
{
    CHECK_EQ_INT(lstm_model_create(m, cfg), 0);
    lstm_model_init_params(m, rng);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].ndim == 1)
            for (size_t k = 0; k < m->tensors[i].size; k++)
                m->params[m->tensors[i].offset + k] += 0.2f * (2.0f * lstm_rng_uniform(rng) - 1.0f);
    CHECK_EQ_INT(lstm_acts_alloc(a, m, B, T), 0);
    lstm_state_alloc(st, m, B), lstm_state_alloc(s0, m, B), lstm_state_alloc(ds, m, B);
    size_t ns = (size_t)cfg->L * B * cfg->H;
    for (size_t k = 0; k < ns; k++) {
        st->h[k] = s0->h[k] = 0.5f * (2.0f * lstm_rng_uniform(rng) - 1.0f);
        st->c[k] = s0->c[k] = lstm_cell_has_c(cfg->cell) ? 0.5f * (2.0f * lstm_rng_uniform(rng) - 1.0f) : 0.0f;
    }
}

/* Runs one case; writes it under root when root is not NULL. */
static void run_case(const char *root, int cell, int tie, int softmax, int peephole, int attention)
{
    lstm_rng rng;
    lstm_rng_seed(&rng, 100 + (uint64_t)cell * 2 + (uint64_t)tie + 10 * (uint64_t)softmax);
    lstm_model_config cfg;
    lstm_model_config_default(&cfg);
    cfg.cell = cell;
    cfg.V = 23;
    cfg.H = 8;
    cfg.E = tie ? 8 : 6;
    cfg.L = 2;
    cfg.tie = tie;
    cfg.init_scale = 0.3f;
    cfg.forget_bias = 1.0f;
    cfg.peephole = peephole;
    cfg.attention = attention;
    if (softmax == LSTM_SOFTMAX_ADAPTIVE) {
        /* shortlist 0..3, clusters 4..9, 10..15, 16..22 projected to 4, 2 and 1 */
        cfg.softmax = softmax;
        cfg.n_cutoffs = 3;
        cfg.cutoffs[0] = 4, cfg.cutoffs[1] = 10, cfg.cutoffs[2] = 16;
        cfg.div = 2.0f;
    }
    int B = 3, T = 5;
    lstm_model m;
    lstm_acts a;
    lstm_state st, s0, ds;
    setup_case(&m, &cfg, &rng, B, T, &a, &st, &s0, &ds);
    size_t ns = (size_t)cfg.L * B * cfg.H;
    size_t nm = (size_t)B * attention * cfg.H;
    for (size_t k = 0; k < nm; k++) st.mem[k] = s0.mem[k] = 0.8f * (2.0f * lstm_rng_uniform(&rng) - 1.0f);
    for (int b = 0; b < B && attention; b++) /* lane 0 starts empty (r = 0 at its first step), lane 2 full */
        st.mlen[b] = s0.mlen[b] = (float)(b == 0 ? 0 : b == 1 ? 1 : attention);
    uint32_t in[15], tg[15];
    for (int k = 0; k < B * T; k++) {
        in[k] = lstm_rng_below(&rng, (uint32_t)cfg.V);
        tg[k] = 1 + lstm_rng_below(&rng, (uint32_t)cfg.V - 1);
    }
    tg[3] = tg[9] = tg[14] = 0; /* PAD */
    float *inferred = malloc((size_t)B * T * cfg.V * sizeof(float));
    if (!inferred) abort();
    if (softmax == LSTM_SOFTMAX_ADAPTIVE) {
        /* the one-step inference path from the same initial state: the log-probabilities again */
        lstm_infer inf;
        CHECK_EQ_INT(lstm_infer_alloc(&inf, &m, B), 0);
        uint32_t tok[3];
        float *lp = malloc((size_t)B * cfg.V * sizeof(float));
        if (!lp) abort();
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < B; b++) tok[b] = in[b * T + t];
            CHECK_EQ_INT(lstm_infer_step(&inf, &st, tok, lp), 0);
            for (int b = 0; b < B; b++)
                memcpy(inferred + ((size_t)b * T + t) * cfg.V, lp + (size_t)b * cfg.V, cfg.V * sizeof(float));
        }
        free(lp);
        lstm_infer_free(&inf);
        memcpy(st.h, s0.h, ns * sizeof(float));
        memcpy(st.c, s0.c, ns * sizeof(float));
    }
    double loss = 0;
    long count = 0;
    lstm_model_zero_grads(&m);
    CHECK_EQ_INT(lstm_model_forward(&m, &a, &st, in, tg, B, T, 1, &loss, &count), 0);
    CHECK_EQ_INT(count, B * T - 3);
    CHECK(isfinite(loss) && loss > 0.5 * log((double)cfg.V) && loss < 2.0 * log((double)cfg.V));
    float *logits = malloc((size_t)B * T * cfg.V * sizeof(float));
    if (!logits) abort();
    for (int b = 0; b < B; b++) /* to (B,T,V), PyTorch's batch_first order */
        for (int t = 0; t < T; t++)
            memcpy(logits + ((size_t)b * T + t) * cfg.V, lstm_acts_logits(&a, &m, b, t), cfg.V * sizeof(float));
    CHECK_EQ_INT(lstm_model_backward(&m, &a, &ds), 0);
    /* optimizer steps from the same parameters and gradients */
    size_t n = lstm_model_num_params(&m);
    float *p_sgd = malloc(n * sizeof(float)), *p_adam = malloc(n * sizeof(float)), *p_adamw = malloc(n * sizeof(float));
    if (!p_sgd || !p_adam || !p_adamw) abort();
    memcpy(p_sgd, m.params, n * sizeof(float));
    memcpy(p_adam, m.params, n * sizeof(float));
    memcpy(p_adamw, m.params, n * sizeof(float));
    lstm_optim o;
    CHECK_EQ_INT(lstm_optim_init(&o, LSTM_OPT_SGD, n), 0);
    lstm_optim_step(&o, p_sgd, m.grads, LR_SGD);
    lstm_optim_free(&o);
    CHECK_EQ_INT(lstm_optim_init(&o, LSTM_OPT_ADAM, n), 0);
    lstm_optim_step(&o, p_adam, m.grads, LR_ADAM);
    lstm_optim_step(&o, p_adam, m.grads, LR_ADAM);
    lstm_optim_free(&o);
    CHECK_EQ_INT(lstm_optim_init(&o, LSTM_OPT_ADAMW, n), 0);
    o.weight_decay = WD_ADAMW;
    lstm_optim_step(&o, p_adamw, m.grads, LR_ADAM);
    lstm_optim_step(&o, p_adamw, m.grads, LR_ADAM);
    double beta1 = o.beta1, beta2 = o.beta2, eps = o.eps;
    lstm_optim_free(&o);

    if (root) {
        char dir[4096];
        if (softmax == LSTM_SOFTMAX_ADAPTIVE)
            snprintf(dir, sizeof dir, "%s/%s_adaptive", root, cell_names[cell]);
        else if (attention)
            snprintf(dir, sizeof dir, "%s/%s_attention_tie%d", root, cell_names[cell], tie);
        else if (peephole)
            snprintf(dir, sizeof dir, "%s/%s_peephole_tie%d", root, cell_names[cell], tie);
        else
            snprintf(dir, sizeof dir, "%s/%s_tie%d", root, cell_names[cell], tie);
        if (mkdir(dir, 0755) && errno != EEXIST) {
            fprintf(stderr, "test_torchdump: cannot create %s\n", dir);
            check_failures++;
        } else {
            int err = 0;
            err |= write_tensors(dir, "param", &m, m.params);
            err |= write_tensors(dir, "grad", &m, m.grads);
            err |= write_tensors(dir, "sgd", &m, p_sgd);
            err |= write_tensors(dir, "adam", &m, p_adam);
            err |= write_tensors(dir, "adamw", &m, p_adamw);
            err |= write_raw(dir, "inputs.u32", in, sizeof in);
            err |= write_raw(dir, "targets.u32", tg, sizeof tg);
            err |= write_raw(dir, "h0.f32", s0.h, ns * sizeof(float));
            err |= write_raw(dir, "c0.f32", s0.c, ns * sizeof(float));
            err |= write_raw(dir, "dh0.f32", ds.h, ns * sizeof(float));
            err |= write_raw(dir, "dc0.f32", ds.c, ns * sizeof(float));
            err |= write_raw(dir, "logits.f32", logits, (size_t)B * T * cfg.V * sizeof(float));
            if (attention) {
                err |= write_raw(dir, "mem0.f32", s0.mem, nm * sizeof(float));
                err |= write_raw(dir, "mlen0.f32", s0.mlen, (size_t)B * sizeof(float));
                err |= write_raw(dir, "dmem0.f32", ds.mem, nm * sizeof(float));
            }
            if (softmax == LSTM_SOFTMAX_ADAPTIVE)
                err |= write_raw(dir, "infer.f32", inferred, (size_t)B * T * cfg.V * sizeof(float));
            char path[4200];
            snprintf(path, sizeof path, "%s/manifest.txt", dir);
            FILE *f = fopen(path, "w");
            if (!f) {
                err = -1;
            } else {
                fprintf(f, "cell %s\nV %d\nE %d\nH %d\nL %d\ntie %d\nB %d\nT %d\n", cell_names[cell], cfg.V, cfg.E,
                        cfg.H, cfg.L, cfg.tie, B, T);
                fprintf(f, "loss %.17g\ncount %ld\n", loss, count);
                fprintf(f, "lr_sgd %.9g\nlr_adam %.9g\nweight_decay_adamw %.17g\nbeta1 %.17g\nbeta2 %.17g\neps %.17g\n",
                        LR_SGD, LR_ADAM, WD_ADAMW, beta1, beta2, eps);
                fprintf(f, "adam_steps 2\npeephole %d\nattention %d\n", peephole, attention);
                if (softmax == LSTM_SOFTMAX_ADAPTIVE)
                    fprintf(f, "softmax adaptive\ncutoffs %d,%d,%d\ndiv %.9g\n", cfg.cutoffs[0], cfg.cutoffs[1],
                            cfg.cutoffs[2], cfg.div);
                for (int i = 0; i < m.n_tensors; i++)
                    fprintf(f, "tensor %s %d %d\n", m.tensors[i].name, m.tensors[i].shape[0], m.tensors[i].shape[1]);
                if (fclose(f)) err = -1;
            }
            if (err) {
                fprintf(stderr, "test_torchdump: writing %s failed\n", dir);
                check_failures++;
            }
        }
    }
    free(logits), free(inferred), free(p_sgd), free(p_adam), free(p_adamw);
    lstm_state_free(&st), lstm_state_free(&s0), lstm_state_free(&ds);
    lstm_acts_free(&a);
    lstm_model_free(&m);
}

/* mask (T,B,X) time-major into out (B,T,X), or with locked its step-0 rows (B,X) (each lane's mask). */
static void mask_bt(float *out, const float *mask, int B, int T, int X, int locked)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < (locked ? 1 : T); t++)
            memcpy(out + ((size_t)b * (locked ? 1 : T) + t) * X, mask + ((size_t)t * B + b) * X, (size_t)X * sizeof(float));
}

/* An AWD-regularized training step (forward with fixed masks, backward of NLL + AR + TAR). */
static void run_awd_case(const char *root, int cell, int tie, int locked)
{
    lstm_rng rng;
    lstm_rng_seed(&rng, 500 + (uint64_t)cell * 2 + (uint64_t)tie);
    lstm_model_config cfg;
    lstm_model_config_default(&cfg);
    cfg.cell = cell;
    cfg.V = 23, cfg.H = 8, cfg.E = tie ? 8 : 6, cfg.L = 2, cfg.tie = tie;
    cfg.init_scale = 0.3f;
    cfg.dropout = 0.3f, cfg.dropout_in = 0.4f, cfg.dropout_hidden = 0.2f, cfg.locked = locked;
    cfg.dropout_words = 0.2f, cfg.weight_drop = 0.5f, cfg.ar = 2.0f, cfg.tar = 1.0f;
    int B = 3, T = 5, E = cfg.E, H = cfg.H, L = cfg.L, V = cfg.V;
    lstm_model m;
    lstm_acts a;
    lstm_state st, s0, ds;
    setup_case(&m, &cfg, &rng, B, T, &a, &st, &s0, &ds);
    size_t ns = (size_t)cfg.L * B * cfg.H;
    uint32_t in[15], tg[15];
    for (int k = 0; k < B * T; k++) { /* no PAD input: AR and TAR are the plain means of AWD's code */
        in[k] = 1 + lstm_rng_below(&rng, (uint32_t)V - 1);
        tg[k] = 1 + lstm_rng_below(&rng, (uint32_t)V - 1);
    }
    tg[3] = tg[9] = 0;
    lstm_model_sample_dropout(&m, &a, &rng);
    a.mask_words[in[0]] = 0.0f; /* a word of the batch dropped at all its occurrences, whatever the draw */
    double loss = 0;
    long count = 0;
    lstm_model_zero_grads(&m);
    CHECK_EQ_INT(lstm_model_forward(&m, &a, &st, in, tg, B, T, 1, &loss, &count), 0);
    double reg = lstm_model_reg_loss(&m, &a, 0, 0);
    CHECK_EQ_INT(count, B * T - 2);
    CHECK(isfinite(loss) && loss > 0.5 * log((double)V) && isfinite(reg) && reg > 0);
    CHECK_EQ_INT(a.ar_rows, B * T);
    CHECK_EQ_INT(a.tar_pairs, B * (T - 1));
    CHECK_EQ_INT(lstm_model_backward(&m, &a, &ds), 0);
    if (root) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s_awd_tie%d%s", root, cell_names[cell], tie, locked ? "" : "_unlocked");
        int err = mkdir(dir, 0755) && errno != EEXIST ? -1 : 0;
        size_t G = (size_t)m.G, nt = locked ? 1 : (size_t)T;
        float *buf = malloc(sizeof(float) * ((size_t)L * G * H * H + (size_t)B * T * (E > H ? E : H) * L + V));
        if (!buf) abort();
        err |= write_tensors(dir, "param", &m, m.params);
        err |= write_tensors(dir, "grad", &m, m.grads);
        err |= write_raw(dir, "inputs.u32", in, sizeof in);
        err |= write_raw(dir, "targets.u32", tg, sizeof tg);
        err |= write_raw(dir, "h0.f32", s0.h, ns * sizeof(float));
        err |= write_raw(dir, "c0.f32", s0.c, ns * sizeof(float));
        err |= write_raw(dir, "dh0.f32", ds.h, ns * sizeof(float));
        err |= write_raw(dir, "dc0.f32", ds.c, ns * sizeof(float));
        mask_bt(buf, a.mask_emb, B, T, E, locked);
        err |= write_raw(dir, "mask_in.f32", buf, (size_t)B * nt * E * sizeof(float));
        for (int l = 1; l < L; l++) mask_bt(buf + (size_t)(l - 1) * B * nt * H, a.mask_mid[l], B, T, H, locked);
        err |= write_raw(dir, "mask_hidden.f32", buf, (size_t)(L - 1) * B * nt * H * sizeof(float));
        mask_bt(buf, a.mask_out, B, T, H, locked);
        err |= write_raw(dir, "mask_out.f32", buf, (size_t)B * nt * H * sizeof(float));
        err |= write_raw(dir, "mask_words.f32", a.mask_words, (size_t)V * sizeof(float));
        for (int l = 0; l < L; l++) memcpy(buf + (size_t)l * G * H * H, a.mask_whh[l], G * H * H * sizeof(float));
        err |= write_raw(dir, "mask_whh.f32", buf, (size_t)L * G * H * H * sizeof(float));
        free(buf);
        char path[4200];
        snprintf(path, sizeof path, "%s/manifest.txt", dir);
        FILE *f = err ? NULL : fopen(path, "w");
        if (!f) {
            err = -1;
        } else {
            fprintf(f, "cell %s\nV %d\nE %d\nH %d\nL %d\ntie %d\nB %d\nT %d\n", cell_names[cell], V, E, H, L, tie, B, T);
            fprintf(f, "awd 1\nlocked %d\nloss %.17g\nreg %.17g\ncount %ld\nar %.9g\ntar %.9g\n", locked, loss, reg,
                    count, (double)cfg.ar, (double)cfg.tar);
            for (int i = 0; i < m.n_tensors; i++)
                fprintf(f, "tensor %s %d %d\n", m.tensors[i].name, m.tensors[i].shape[0], m.tensors[i].shape[1]);
            if (fclose(f)) err = -1;
        }
        if (err) {
            fprintf(stderr, "test_torchdump: writing %s failed\n", dir);
            check_failures++;
        }
    }
    lstm_state_free(&st), lstm_state_free(&s0), lstm_state_free(&ds);
    lstm_acts_free(&a);
    lstm_model_free(&m);
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : NULL;
    if (root && mkdir(root, 0755) && errno != EEXIST) {
        fprintf(stderr, "test_torchdump: cannot create %s\n", root);
        return 1;
    }
    lstm_set_threads(1);
    for (int cell = 0; cell < LSTM_N_CELLS; cell++)
        for (int tie = 0; tie < 2; tie++) run_case(root, cell, tie, LSTM_SOFTMAX_FULL, 0, 0);
    /* peephole LSTM (a torch autograd module on the other side) */
    for (int tie = 0; tie < 2; tie++) run_case(root, LSTM_CELL_LSTM, tie, LSTM_SOFTMAX_FULL, 1, 0);
    /* attention over the last 3 top outputs (a torch module written out on the other side) */
    for (int tie = 0; tie < 2; tie++) run_case(root, LSTM_CELL_LSTM, tie, LSTM_SOFTMAX_FULL, 0, 3);
    /* the adaptive softmax (PyTorch's nn.AdaptiveLogSoftmaxWithLoss): logits.f32 holds log-probabilities */
    for (int cell = 0; cell < 2; cell++) run_case(root, cell, 0, LSTM_SOFTMAX_ADAPTIVE, 0, 0);
    /* AWD regularization: locked dropout, word dropout, weight drop, AR, TAR (masks written out) */
    run_awd_case(root, LSTM_CELL_LSTM, 0, 1);
    run_awd_case(root, LSTM_CELL_GRU, 1, 1);
    run_awd_case(root, LSTM_CELL_CIFG, 0, 1);
    run_awd_case(root, LSTM_CELL_LSTM, 1, 0);
    CHECK_DONE("test_torchdump");
}
