/* modelfile.c: model checkpoints on top of the checkpoint container. */
#include "modelfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

const char *lstm_cell_name(int cell)
{
    switch (cell) {
    case LSTM_CELL_LSTM: return "lstm";
    case LSTM_CELL_GRU: return "gru";
    case LSTM_CELL_RNN: return "rnn";
    case LSTM_CELL_CIFG: return "cifg";
    case LSTM_CELL_LNLSTM: return "lnlstm";
    }
    return "?";
}

int lstm_cell_from_name(const char *name)
{
    for (int c = 0; c < LSTM_N_CELLS; c++)
        if (strcmp(name, lstm_cell_name(c)) == 0) return c;
    return -1;
}

int lstm_model_config_format(const lstm_model_config *c, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "cell=%s\nvocab=%d\nemb=%d\nhidden=%d\nlayers=%d\ntie=%d\ndropout=%.9g\nforget_bias=%.9g\n"
                     "init_scale=%.9g\n",
                     lstm_cell_name(c->cell), c->V, c->E, c->H, c->L, c->tie, c->dropout, c->forget_bias, c->init_scale);
    if (n < 0 || (size_t)n >= cap) return LSTM_E_TOOBIG;
    if (c->peephole) {
        int k = snprintf(buf + n, cap - (size_t)n, "peephole=1\n");
        if (k < 0 || (size_t)(n += k) >= cap) return LSTM_E_TOOBIG;
    }
    if (c->attention > 0) {
        int k = snprintf(buf + n, cap - (size_t)n, "attention=%d\n", c->attention);
        if (k < 0 || (size_t)(n += k) >= cap) return LSTM_E_TOOBIG;
    }
    if (c->reverse) {
        int k = snprintf(buf + n, cap - (size_t)n, "reverse=%s\n", c->reverse == LSTM_REVERSE_TURNS ? "turns" : "docs");
        if (k < 0 || (size_t)(n += k) >= cap) return LSTM_E_TOOBIG;
    }
    /* training-only regularization, each key only when set (a config without them reads as before) */
    const struct { const char *key; float v; int on; } reg[] = {
        {"dropout_in", c->dropout_in, c->dropout_in >= 0}, {"dropout_hidden", c->dropout_hidden, c->dropout_hidden >= 0},
        {"locked_dropout", 1, c->locked != 0}, {"dropout_words", c->dropout_words, c->dropout_words > 0},
        {"weight_drop", c->weight_drop, c->weight_drop > 0}, {"ar", c->ar, c->ar > 0}, {"tar", c->tar, c->tar > 0}};
    for (size_t i = 0; i < sizeof reg / sizeof *reg; i++) {
        if (!reg[i].on) continue;
        int k = snprintf(buf + n, cap - (size_t)n, "%s=%.9g\n", reg[i].key, (double)reg[i].v);
        if (k < 0 || (size_t)(n += k) >= cap) return LSTM_E_TOOBIG;
    }
    if (c->softmax == LSTM_SOFTMAX_ADAPTIVE) {
        /* only adaptive models carry the keys: a full-softmax config reads as before */
        int k = snprintf(buf + n, cap - (size_t)n, "softmax=adaptive\ncutoffs=");
        for (int i = 0; i < c->n_cutoffs && k >= 0 && (size_t)(n + k) < cap; i++)
            k += snprintf(buf + n + k, cap - (size_t)(n + k), i ? ",%d" : "%d", c->cutoffs[i]);
        if (k >= 0 && (size_t)(n + k) < cap) k += snprintf(buf + n + k, cap - (size_t)(n + k), "\ndiv=%.9g\n", c->div);
        if (k < 0 || (size_t)(n + k) >= cap) return LSTM_E_TOOBIG;
    }
    return LSTM_OK;
}

static int kv_int(const char *t, size_t len, const char *key, int *out)
{
    char v[32], *e;
    int rc = lstm_kv_get(t, len, key, v, sizeof v);
    if (rc) return LSTM_E_FORMAT;
    long x = strtol(v, &e, 10);
    if (*e || e == v || x < 0 || x > 100000000) return LSTM_E_FORMAT;
    *out = (int)x;
    return LSTM_OK;
}

static int kv_float(const char *t, size_t len, const char *key, float *out)
{
    char v[64], *e;
    int rc = lstm_kv_get(t, len, key, v, sizeof v);
    if (rc) return LSTM_E_FORMAT;
    *out = strtof(v, &e);
    return *e || e == v ? LSTM_E_FORMAT : LSTM_OK;
}

int lstm_model_config_parse(lstm_model_config *c, const char *t, size_t len)
{
    char cell[16];
    if (lstm_kv_get(t, len, "cell", cell, sizeof cell) || (c->cell = lstm_cell_from_name(cell)) < 0) return LSTM_E_FORMAT;
    if (kv_int(t, len, "vocab", &c->V) || kv_int(t, len, "emb", &c->E) || kv_int(t, len, "hidden", &c->H) ||
        kv_int(t, len, "layers", &c->L) || kv_int(t, len, "tie", &c->tie) || kv_float(t, len, "dropout", &c->dropout) ||
        kv_float(t, len, "forget_bias", &c->forget_bias) || kv_float(t, len, "init_scale", &c->init_scale))
        return LSTM_E_FORMAT;
    /* keys written only when they differ from the default (older files have none of them) */
    char pv[8];
    int prc = lstm_kv_get(t, len, "peephole", pv, sizeof pv);
    c->peephole = prc == LSTM_OK && strcmp(pv, "1") == 0;
    if (prc == LSTM_OK ? !c->peephole && strcmp(pv, "0") != 0 : prc != LSTM_E_NOTFOUND) return LSTM_E_FORMAT;
    c->attention = 0;
    prc = lstm_kv_get(t, len, "attention", pv, sizeof pv);
    if (prc == LSTM_OK ? kv_int(t, len, "attention", &c->attention) != LSTM_OK : prc != LSTM_E_NOTFOUND) return LSTM_E_FORMAT;
    prc = lstm_kv_get(t, len, "reverse", pv, sizeof pv);
    c->reverse = prc != LSTM_OK ? 0 : !strcmp(pv, "docs") ? LSTM_REVERSE_DOCS : !strcmp(pv, "turns") ? LSTM_REVERSE_TURNS : -1;
    if (c->reverse < 0 || (prc != LSTM_OK && prc != LSTM_E_NOTFOUND)) return LSTM_E_FORMAT;
    /* the regularization keys (absent: dropout_in and dropout_hidden as dropout, the rest off) */
    struct { const char *key; float *v; float unset, lo; } reg[] = {
        {"dropout_in", &c->dropout_in, -1.0f, 0.0f}, {"dropout_hidden", &c->dropout_hidden, -1.0f, 0.0f},
        {"dropout_words", &c->dropout_words, 0.0f, 0.0f}, {"weight_drop", &c->weight_drop, 0.0f, 0.0f},
        {"ar", &c->ar, 0.0f, 0.0f}, {"tar", &c->tar, 0.0f, 0.0f}};
    for (size_t i = 0; i < sizeof reg / sizeof *reg; i++) {
        *reg[i].v = reg[i].unset;
        char v[64];
        int krc = lstm_kv_get(t, len, reg[i].key, v, sizeof v);
        if (krc == LSTM_E_NOTFOUND) continue;
        if (krc || kv_float(t, len, reg[i].key, reg[i].v) || !(*reg[i].v >= reg[i].lo)) return LSTM_E_FORMAT;
    }
    char lk[8];
    int lrc = lstm_kv_get(t, len, "locked_dropout", lk, sizeof lk);
    c->locked = lrc == LSTM_OK && strcmp(lk, "1") == 0;
    if (lrc == LSTM_OK ? !c->locked && strcmp(lk, "0") != 0 : lrc != LSTM_E_NOTFOUND) return LSTM_E_FORMAT;
    char sm[16];
    c->softmax = LSTM_SOFTMAX_FULL, c->n_cutoffs = 0, c->div = 4.0f;
    memset(c->cutoffs, 0, sizeof c->cutoffs);
    int rc = lstm_kv_get(t, len, "softmax", sm, sizeof sm);
    if (rc == LSTM_OK && strcmp(sm, "adaptive") == 0) {
        char cuts[128];
        c->softmax = LSTM_SOFTMAX_ADAPTIVE;
        if (lstm_kv_get(t, len, "cutoffs", cuts, sizeof cuts) || kv_float(t, len, "div", &c->div) ||
            lstm_asm_parse_cutoffs(cuts, c->cutoffs, &c->n_cutoffs))
            return LSTM_E_FORMAT;
    } else if (rc == LSTM_OK ? strcmp(sm, "full") != 0 : rc != LSTM_E_NOTFOUND)
        return LSTM_E_FORMAT;
    return lstm_model_config_check(c) ? LSTM_E_FORMAT : LSTM_OK;
}

int lstm_modelfile_save(const char *path, int force, const lstm_modelfile_save_args *a)
{
    const lstm_model *m = a->model;
    char cfg[512];
    int rc = lstm_model_config_format(&m->cfg, cfg, sizeof cfg);
    if (rc) return rc;
    lstm_ck_entry e[LSTM_MAX_TENSORS + 12];
    size_t n = 0;
    e[n++] = (lstm_ck_entry){"config", LSTM_CK_BYTES, 0, {0}, cfg, strlen(cfg), NULL};
    e[n++] = (lstm_ck_entry){"tokenizer", LSTM_CK_BYTES, 0, {0}, a->tokenizer, a->tokenizer_len, NULL};
    e[n++] = (lstm_ck_entry){"params", LSTM_CK_F32, 1, {m->n_params}, m->params, 4 * (uint64_t)m->n_params, NULL};
    for (int i = 0; i < m->n_tensors; i++) {
        const lstm_tensor_info *t = &m->tensors[i];
        lstm_ck_entry v = {t->name, LSTM_CK_F32, t->ndim, {(uint64_t)t->shape[0], (uint64_t)t->shape[1]},
                           m->params + t->offset, 4 * (uint64_t)t->size, "params"};
        e[n++] = v;
    }
    if (a->train) e[n++] = (lstm_ck_entry){"train", LSTM_CK_BYTES, 0, {0}, a->train, strlen(a->train), NULL};
    if (a->optim && a->optim->m && a->optim->v) {
        e[n++] = (lstm_ck_entry){"optim.m", LSTM_CK_F32, 1, {a->optim->n}, a->optim->m, 4 * (uint64_t)a->optim->n, NULL};
        e[n++] = (lstm_ck_entry){"optim.v", LSTM_CK_F32, 1, {a->optim->n}, a->optim->v, 4 * (uint64_t)a->optim->n, NULL};
    }
    if (a->state) {
        const lstm_state *s = a->state;
        uint64_t dims[4] = {(uint64_t)s->L, (uint64_t)s->B, (uint64_t)s->H, 0};
        uint64_t nb = 4 * dims[0] * dims[1] * dims[2];
        e[n++] = (lstm_ck_entry){"state.h", LSTM_CK_F32, 3, {dims[0], dims[1], dims[2], 0}, s->h, nb, NULL};
        e[n++] = (lstm_ck_entry){"state.c", LSTM_CK_F32, 3, {dims[0], dims[1], dims[2], 0}, s->c, nb, NULL};
        if (s->K > 0) { /* the attention's memory: (B,K,H) and the filled slots per lane */
            uint64_t md[4] = {(uint64_t)s->B, (uint64_t)s->K, (uint64_t)s->H, 0};
            e[n++] = (lstm_ck_entry){"state.mem", LSTM_CK_F32, 3, {md[0], md[1], md[2], 0}, s->mem, 4 * md[0] * md[1] * md[2], NULL};
            e[n++] = (lstm_ck_entry){"state.mlen", LSTM_CK_F32, 1, {md[0]}, s->mlen, 4 * md[0], NULL};
        }
    }
    if (a->provenance)
        e[n++] = (lstm_ck_entry){"provenance", LSTM_CK_BYTES, 0, {0}, a->provenance, strlen(a->provenance), NULL};
    return lstm_ck_write(path, force, e, n);
}

/* The tensors an export may quantize: the embedding and the output weight (absent when tied), and
 * with recurrent the layers' w_ih and w_hh. */
static int quantizable(const char *name, int recurrent)
{
    if (strcmp(name, "emb") == 0 || strcmp(name, "out.w") == 0) return 1;
    size_t n = strlen(name);
    return recurrent && name[0] == 'l' && n > 5 && (strcmp(name + n - 5, ".w_ih") == 0 || strcmp(name + n - 5, ".w_hh") == 0);
}

int lstm_modelfile_export(const char *path, int force, const lstm_modelfile_save_args *a, int quant, int recurrent)
{
    if (quant != LSTM_Q_NONE && quant != LSTM_Q_INT8 && quant != LSTM_Q_BF16) return LSTM_E_ARG;
    if (recurrent && quant == LSTM_Q_NONE) return LSTM_E_ARG;
    const lstm_model *m = a->model;
    char cfg[512], meta[64];
    int rc = lstm_model_config_format(&m->cfg, cfg, sizeof cfg);
    if (rc) return rc;
    snprintf(meta, sizeof meta, "quantize=%s\nrecurrent=%d\n", lstm_quant_name(quant), recurrent ? 1 : 0);
    lstm_ck_entry e[2 * LSTM_MAX_TENSORS + 10];
    void *qbuf[LSTM_MAX_TENSORS] = {NULL};
    float *sbuf[LSTM_MAX_TENSORS] = {NULL};
    char snames[LSTM_MAX_TENSORS][40];
    int nq = 0;
    size_t n = 0;
    e[n++] = (lstm_ck_entry){"config", LSTM_CK_BYTES, 0, {0}, cfg, strlen(cfg), NULL};
    e[n++] = (lstm_ck_entry){"export", LSTM_CK_BYTES, 0, {0}, meta, strlen(meta), NULL};
    e[n++] = (lstm_ck_entry){"tokenizer", LSTM_CK_BYTES, 0, {0}, a->tokenizer, a->tokenizer_len, NULL};
    if (quant == LSTM_Q_NONE)
        e[n++] = (lstm_ck_entry){"params", LSTM_CK_F32, 1, {m->n_params}, m->params, 4 * (uint64_t)m->n_params, NULL};
    rc = LSTM_OK;
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const lstm_tensor_info *t = &m->tensors[i];
        const float *w = m->params + t->offset;
        lstm_ck_entry v = {t->name, LSTM_CK_F32, t->ndim, {(uint64_t)t->shape[0], (uint64_t)t->shape[1]}, w,
                           4 * (uint64_t)t->size, quant == LSTM_Q_NONE ? "params" : NULL};
        if (quant != LSTM_Q_NONE && quantizable(t->name, recurrent)) {
            int R = t->shape[0], C = t->shape[1];
            if (quant == LSTM_Q_INT8) {
                int8_t *q = malloc(t->size);
                float *sc = malloc(sizeof *sc * (size_t)R);
                qbuf[nq] = q;
                sbuf[nq] = sc;
                if (!q || !sc) { rc = LSTM_E_NOMEM; nq++; break; }
                lstm_quant_int8(q, sc, w, R, C);
                v.type = LSTM_CK_I8;
                v.data = q;
                v.nbytes = t->size;
                e[n++] = v;
                snprintf(snames[nq], sizeof snames[nq], "%.31s.scale", t->name);
                v = (lstm_ck_entry){snames[nq], LSTM_CK_F32, 1, {(uint64_t)R}, sc, 4 * (uint64_t)R, NULL};
            } else {
                uint16_t *q = malloc(2 * t->size);
                qbuf[nq] = q;
                if (!q) { rc = LSTM_E_NOMEM; nq++; break; }
                lstm_quant_bf16(q, w, t->size);
                v.type = LSTM_CK_BF16;
                v.data = q;
                v.nbytes = 2 * (uint64_t)t->size;
            }
            nq++;
        }
        e[n++] = v;
    }
    if (!rc && a->provenance)
        e[n++] = (lstm_ck_entry){"provenance", LSTM_CK_BYTES, 0, {0}, a->provenance, strlen(a->provenance), NULL};
    if (!rc) rc = lstm_ck_write_kind(path, force, LSTM_CK_KIND_MODEL, e, n);
    for (int i = 0; i < nq; i++) {
        free(qbuf[i]);
        free(sbuf[i]);
    }
    return rc;
}

static const lstm_ck_entry *find_type(const lstm_ck *ck, const char *name, int type)
{
    const lstm_ck_entry *e = lstm_ck_find(ck, name);
    return e && e->type == type ? e : NULL;
}

/* 1 when every float of x (n) is finite (exponent bits not all ones), tested on the bits so that no
 * floating-point mode can hide a NaN. */
static int all_finite(const float *x, size_t n)
{
    uint32_t any = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, 4);
        any |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
    }
    return !any;
}

/* The first tensor of the open file f with a NaN or Inf, or NULL. */
static const char *first_nonfinite(const lstm_modelfile *f)
{
    const lstm_model *m = &f->model;
    for (int i = 0; i < m->n_tensors; i++)
        if (!all_finite(m->params + m->tensors[i].offset, m->tensors[i].size)) return m->tensors[i].name;
    size_t ns = f->state_h ? (size_t)m->cfg.L * (size_t)f->state_B * (size_t)m->cfg.H : 0;
    if (f->optim_m && !all_finite(f->optim_m, m->n_params)) return "optim.m";
    if (f->optim_v && !all_finite(f->optim_v, m->n_params)) return "optim.v";
    if (f->state_h && !all_finite(f->state_h, ns)) return "state.h";
    if (f->state_c && !all_finite(f->state_c, ns)) return "state.c";
    if (f->state_mem && !all_finite(f->state_mem, (size_t)f->state_B * m->cfg.attention * m->cfg.H)) return "state.mem";
    return NULL;
}

/* 1 when no bf16 value of x (n) is a NaN or an Inf (exponent bits all ones). */
static int bf16_finite(const uint16_t *x, size_t n)
{
    uint16_t any = 0;
    for (size_t i = 0; i < n; i++) any |= (uint16_t)((x[i] & 0x7f80u) == 0x7f80u);
    return !any;
}

/* A quantized export: every tensor of the layout c implies, the fp32 ones copied into a new block laid
 * out as a checkpoint's params, the quantized ones (emb, out.w, the layers' w_ih and w_hh) kept in place
 * as the model's qemb / qout / qw_ih / qw_hh. Their regions of the block stay untouched anonymous memory (no resident pages) until a window
 * forward dequantizes them (lstm_model.q_pending): the one-step inference of a server never does.
 * LSTM_E_NAN with the tensor's name in bad (32 bytes) for a NaN or Inf. */
static int open_quantized(lstm_modelfile *f, const lstm_model_config *c, char *bad)
{
    lstm_tensor_info t[LSTM_MAX_TENSORS];
    int nt;
    size_t np = lstm_model_layout(c, t, &nt);
    if (np == 0) return LSTM_E_FORMAT;
    size_t bytes = (np * sizeof(float) + 4095) / 4096 * 4096;
    void *blk = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (blk == MAP_FAILED) return LSTM_E_NOMEM;
    f->owned = blk; /* zero, so the padding between tensors is zero as in a checkpoint */
    f->owned_bytes = bytes;
    lstm_qmat q[LSTM_MAX_TENSORS];
    int qi[LSTM_MAX_TENSORS], nq = 0, quant = LSTM_Q_NONE, recurrent = 0;
    for (int i = 0; i < nt; i++) {
        const lstm_ck_entry *v = lstm_ck_find(f->ck, t[i].name);
        if (!v || v->ndim != t[i].ndim || v->dims[0] != (uint64_t)t[i].shape[0] ||
            (t[i].ndim == 2 && v->dims[1] != (uint64_t)t[i].shape[1]))
            return LSTM_E_FORMAT;
        if (v->type == LSTM_CK_F32) {
            if (!all_finite(v->data, t[i].size)) { snprintf(bad, 32, "%.31s", t[i].name); return LSTM_E_NAN; }
            memcpy(f->owned + t[i].offset, v->data, t[i].size * sizeof(float));
            continue;
        }
        /* one quantization per file: int8 or bf16, for the weight matrices only (never the biases) */
        int type = v->type == LSTM_CK_I8 ? LSTM_Q_INT8 : v->type == LSTM_CK_BF16 ? LSTM_Q_BF16 : -1;
        if (type < 0 || !quantizable(t[i].name, 1) || t[i].ndim != 2 || (quant != LSTM_Q_NONE && quant != type))
            return LSTM_E_FORMAT;
        quant = type;
        recurrent |= !quantizable(t[i].name, 0);
        lstm_qmat m = {type, t[i].shape[0], t[i].shape[1], v->data, NULL};
        if (type == LSTM_Q_INT8) {
            char sn[48];
            snprintf(sn, sizeof sn, "%.31s.scale", t[i].name);
            const lstm_ck_entry *s = find_type(f->ck, sn, LSTM_CK_F32);
            if (!s || s->ndim != 1 || s->dims[0] != (uint64_t)t[i].shape[0]) return LSTM_E_FORMAT;
            m.scale = s->data;
            if (!all_finite(m.scale, (size_t)t[i].shape[0])) { snprintf(bad, 32, "%.31s", sn); return LSTM_E_NAN; }
        } else if (!bf16_finite(v->data, t[i].size)) {
            snprintf(bad, 32, "%.31s", t[i].name);
            return LSTM_E_NAN;
        }
        q[nq] = m;
        qi[nq++] = i;
    }
    if (lstm_model_init_view(&f->model, c, f->owned)) return LSTM_E_FORMAT;
    /* the layout: emb, then w_ih, w_hh, b_ih, b_hh (, peep) per layer, (the attention's, never quantized,)
     * then out.w (untied) and out.b */
    int per = lstm_layer_tensor(c, 1) - lstm_layer_tensor(c, 0), first_out = lstm_att_tensor(c);
    for (int k = 0; k < nq; k++) {
        if (qi[k] == 0) f->model.qemb = q[k];
        else if (qi[k] < first_out && (qi[k] - 1) % per == 0) f->model.qw_ih[(qi[k] - 1) / per] = q[k];
        else if (qi[k] < first_out && (qi[k] - 1) % per == 1) f->model.qw_hh[(qi[k] - 1) / per] = q[k];
        else f->model.qout = q[k];
    }
    if (c->tie) f->model.qout = f->model.qemb;
    f->model.q_pending = nq > 0;
    f->quant = quant;
    f->quant_recurrent = recurrent;
    return LSTM_OK;
}

int lstm_modelfile_open(lstm_modelfile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    int rc = lstm_ck_open(&f->ck, path);
    if (rc) return rc;
    const lstm_ck_entry *cfg = find_type(f->ck, "config", LSTM_CK_BYTES);
    const lstm_ck_entry *tok = find_type(f->ck, "tokenizer", LSTM_CK_BYTES);
    const lstm_ck_entry *par = find_type(f->ck, "params", LSTM_CK_F32);
    lstm_model_config c;
    f->kind = lstm_ck_kind(f->ck);
    rc = LSTM_E_FORMAT;
    if (!cfg || !tok || lstm_model_config_parse(&c, cfg->data, cfg->nbytes)) goto fail;
    if (!par && f->kind == LSTM_CK_KIND_MODEL) {
        char name[sizeof f->bad_tensor] = "";
        if ((rc = open_quantized(f, &c, name)) != 0) {
            lstm_modelfile_close(f);
            memcpy(f->bad_tensor, name, sizeof name);
            return rc;
        }
        f->tokenizer = tok->data;
        f->tokenizer_len = tok->nbytes;
        const lstm_ck_entry *pv = find_type(f->ck, "provenance", LSTM_CK_BYTES);
        if (pv) { f->provenance = pv->data; f->provenance_len = pv->nbytes; }
        return LSTM_OK; /* every float checked as it was read */
    }
    if (!par) goto fail;
    lstm_tensor_info t[LSTM_MAX_TENSORS];
    int nt;
    size_t np = lstm_model_layout(&c, t, &nt);
    if (np == 0 || par->ndim != 1 || par->dims[0] != np) goto fail;
    /* Every tensor view must be where the layout puts it, with its shape. */
    for (int i = 0; i < nt; i++) {
        const lstm_ck_entry *v = find_type(f->ck, t[i].name, LSTM_CK_F32);
        if (!v || v->ndim != t[i].ndim || v->dims[0] != (uint64_t)t[i].shape[0] ||
            (t[i].ndim == 2 && v->dims[1] != (uint64_t)t[i].shape[1]) ||
            (const float *)v->data != (const float *)par->data + t[i].offset)
            goto fail;
    }
    if ((rc = lstm_model_init_view(&f->model, &c, par->data)) != 0) { rc = LSTM_E_FORMAT; goto fail; }
    f->tokenizer = tok->data;
    f->tokenizer_len = tok->nbytes;
    const lstm_ck_entry *e;
    if (f->kind == LSTM_CK_KIND_MODEL) { /* an export carries no training state */
        if ((e = find_type(f->ck, "provenance", LSTM_CK_BYTES))) { f->provenance = e->data; f->provenance_len = e->nbytes; }
        goto check;
    }
    if ((e = find_type(f->ck, "train", LSTM_CK_BYTES))) { f->train = e->data; f->train_len = e->nbytes; }
    if ((e = find_type(f->ck, "provenance", LSTM_CK_BYTES))) { f->provenance = e->data; f->provenance_len = e->nbytes; }
    const lstm_ck_entry *om = find_type(f->ck, "optim.m", LSTM_CK_F32), *ov = find_type(f->ck, "optim.v", LSTM_CK_F32);
    if (om && ov) {
        rc = LSTM_E_FORMAT;
        if (om->dims[0] != np || ov->dims[0] != np || om->ndim != 1 || ov->ndim != 1) goto fail;
        f->optim_m = om->data;
        f->optim_v = ov->data;
    }
    const lstm_ck_entry *sh = find_type(f->ck, "state.h", LSTM_CK_F32), *sc = find_type(f->ck, "state.c", LSTM_CK_F32);
    if (sh && sc) {
        rc = LSTM_E_FORMAT;
        if (sh->ndim != 3 || sc->ndim != 3 || sh->dims[0] != (uint64_t)c.L || sh->dims[2] != (uint64_t)c.H ||
            sh->dims[1] == 0 || sh->dims[1] > 1000000 || memcmp(sh->dims, sc->dims, sizeof sh->dims) != 0)
            goto fail;
        f->state_h = sh->data;
        f->state_c = sc->data;
        f->state_B = (int)sh->dims[1];
        if (c.attention > 0) { /* the carried state includes the attention's memory */
            const lstm_ck_entry *sm = find_type(f->ck, "state.mem", LSTM_CK_F32), *sl = find_type(f->ck, "state.mlen", LSTM_CK_F32);
            if (!sm || !sl || sm->ndim != 3 || sm->dims[0] != sh->dims[1] || sm->dims[1] != (uint64_t)c.attention ||
                sm->dims[2] != (uint64_t)c.H || sl->ndim != 1 || sl->dims[0] != sh->dims[1])
                goto fail;
            f->state_mem = sm->data;
            f->state_mlen = sl->data;
            for (int b = 0; b < f->state_B; b++)
                if (!(f->state_mlen[b] >= 0 && f->state_mlen[b] <= (float)c.attention)) goto fail;
        }
    }
check:;
    const char *bad = first_nonfinite(f);
    if (bad) {
        char name[sizeof f->bad_tensor];
        snprintf(name, sizeof name, "%s", bad);
        lstm_modelfile_close(f);
        memcpy(f->bad_tensor, name, sizeof name);
        return LSTM_E_NAN;
    }
    return LSTM_OK;
fail:
    lstm_modelfile_close(f);
    return rc;
}

void lstm_modelfile_close(lstm_modelfile *f)
{
    if (f->model.params) lstm_model_free(&f->model);
    if (f->owned) munmap(f->owned, f->owned_bytes);
    lstm_ck_close(f->ck);
    memset(f, 0, sizeof *f);
}
