/* model.c: the flat parameter layout, init, dropout and the other regularizers, and the window forward /
 * backward and inference step that chain the kernels of cells.c (see model.h). */
#include "model.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "gemm.h"

#define ALIGN_FLOATS 16 /* 64 bytes */

static size_t round16(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

void lstm_model_config_default(lstm_model_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->cell = LSTM_CELL_LSTM;
    cfg->V = 10000;
    cfg->E = cfg->H = 200;
    cfg->L = 2;
    cfg->dropout = 0.0f;
    cfg->forget_bias = 1.0f;
    cfg->init_scale = 0.1f;
    cfg->softmax = LSTM_SOFTMAX_FULL;
    cfg->div = 4.0f;
    cfg->dropout_in = cfg->dropout_hidden = -1.0f;
}

int lstm_model_config_check(const lstm_model_config *cfg)
{
    if (!cfg || lstm_cell_gates(cfg->cell) == 0) return LSTM_E_ARG;
    if (cfg->V < 1 || cfg->E < 1 || cfg->H < 1 || cfg->L < 1 || cfg->L > LSTM_MAX_LAYERS) return LSTM_E_ARG;
    if (cfg->tie && cfg->E != cfg->H) return LSTM_E_ARG;
    if (cfg->peephole && (cfg->peephole != 1 || cfg->cell != LSTM_CELL_LSTM)) return LSTM_E_ARG;
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f)) return LSTM_E_ARG;
    if (!(cfg->dropout_in < 1.0f) || !(cfg->dropout_hidden < 1.0f) || (cfg->locked != 0 && cfg->locked != 1)) return LSTM_E_ARG;
    if (!(cfg->dropout_words >= 0.0f && cfg->dropout_words < 1.0f) || !(cfg->weight_drop >= 0.0f && cfg->weight_drop < 1.0f))
        return LSTM_E_ARG;
    if (!(cfg->ar >= 0.0f && cfg->ar < 1e30f) || !(cfg->tar >= 0.0f && cfg->tar < 1e30f)) return LSTM_E_ARG;
    if (cfg->attention < 0 || cfg->attention > LSTM_MAX_ATTENTION) return LSTM_E_ARG;
    /* keep every GEMM dimension and row offset within int */
    if ((long long)cfg->V * cfg->H > (1LL << 30) || (long long)cfg->V * cfg->E > (1LL << 30) ||
        (long long)cfg->H * 4 * cfg->H > (1LL << 30) || (long long)cfg->E * 4 * cfg->H > (1LL << 30))
        return LSTM_E_ARG;
    if (cfg->softmax == LSTM_SOFTMAX_ADAPTIVE) {
        lstm_asm_shape s;
        if (cfg->tie || lstm_asm_shape_init(&s, cfg->V, cfg->H, cfg->cutoffs, cfg->n_cutoffs, cfg->div)) return LSTM_E_ARG;
    } else if (cfg->softmax != LSTM_SOFTMAX_FULL)
        return LSTM_E_ARG;
    return 0;
}

static void add_tensor(lstm_tensor_info *t, int *n, size_t *off, const char *name, int d0, int d1)
{
    lstm_tensor_info *ti = &t[(*n)++];
    memset(ti, 0, sizeof *ti);
    snprintf(ti->name, sizeof ti->name, "%s", name);
    ti->ndim = d1 ? 2 : 1;
    ti->shape[0] = d0;
    ti->shape[1] = d1 ? d1 : 1;
    ti->offset = *off;
    ti->size = (size_t)d0 * (size_t)ti->shape[1];
    *off = round16(*off + ti->size);
}

size_t lstm_model_layout(const lstm_model_config *cfg, lstm_tensor_info *t, int *n_tensors)
{
    *n_tensors = 0;
    if (lstm_model_config_check(cfg)) return 0;
    int G = lstm_cell_gates(cfg->cell), n = 0;
    size_t off = 0;
    char name[32];
    add_tensor(t, &n, &off, "emb", cfg->V, cfg->E);
    for (int l = 0; l < cfg->L; l++) {
        int in = l == 0 ? cfg->E : cfg->H;
        snprintf(name, sizeof name, "l%d.w_ih", l);
        add_tensor(t, &n, &off, name, G * cfg->H, in);
        snprintf(name, sizeof name, "l%d.w_hh", l);
        add_tensor(t, &n, &off, name, G * cfg->H, cfg->H);
        snprintf(name, sizeof name, "l%d.b_ih", l);
        add_tensor(t, &n, &off, name, G * cfg->H, 0);
        snprintf(name, sizeof name, "l%d.b_hh", l);
        add_tensor(t, &n, &off, name, G * cfg->H, 0);
        if (cfg->peephole) {
            snprintf(name, sizeof name, "l%d.peep", l);
            add_tensor(t, &n, &off, name, 3 * cfg->H, 0);
        }
        if (cfg->cell == LSTM_CELL_LNLSTM) {
            snprintf(name, sizeof name, "l%d.ln", l);
            add_tensor(t, &n, &off, name, lstm_cell_ln_floats(cfg->cell, cfg->H), 0);
        }
    }
    if (cfg->attention > 0) {
        add_tensor(t, &n, &off, "att.wy", cfg->H, cfg->H);
        add_tensor(t, &n, &off, "att.wh", cfg->H, cfg->H);
        add_tensor(t, &n, &off, "att.w", cfg->H, 0);
        add_tensor(t, &n, &off, "att.wr", cfg->H, cfg->H);
        add_tensor(t, &n, &off, "att.wx", cfg->H, cfg->H);
    }
    if (cfg->softmax == LSTM_SOFTMAX_ADAPTIVE) {
        lstm_asm_shape s;
        lstm_asm_shape_init(&s, cfg->V, cfg->H, cfg->cutoffs, cfg->n_cutoffs, cfg->div);
        add_tensor(t, &n, &off, "head.w", s.head, cfg->H);
        add_tensor(t, &n, &off, "head.b", s.head, 0);
        for (int i = 0; i < s.n; i++) {
            snprintf(name, sizeof name, "tail%d.proj", i);
            add_tensor(t, &n, &off, name, s.dim[i], cfg->H);
            snprintf(name, sizeof name, "tail%d.out", i);
            add_tensor(t, &n, &off, name, s.cut[i + 1] - s.cut[i], s.dim[i]);
        }
    } else {
        if (!cfg->tie) add_tensor(t, &n, &off, "out.w", cfg->V, cfg->H);
        add_tensor(t, &n, &off, "out.b", cfg->V, 0);
    }
    *n_tensors = n;
    return off;
}

static int model_setup(lstm_model *m, const lstm_model_config *cfg)
{
    memset(m, 0, sizeof *m);
    int err = lstm_model_config_check(cfg);
    if (err) return err;
    m->cfg = *cfg;
    m->G = lstm_cell_gates(cfg->cell);
    m->n_params = lstm_model_layout(cfg, m->tensors, &m->n_tensors);
    if (cfg->softmax == LSTM_SOFTMAX_ADAPTIVE)
        lstm_asm_shape_init(&m->as, cfg->V, cfg->H, cfg->cutoffs, cfg->n_cutoffs, cfg->div);
    return 0;
}

int lstm_model_create(lstm_model *m, const lstm_model_config *cfg)
{
    int err = model_setup(m, cfg);
    if (err) return err;
    size_t bytes = m->n_params * sizeof(float); /* a multiple of 64 */
    m->params = aligned_alloc(64, bytes);
    m->grads = aligned_alloc(64, bytes);
    if (!m->params || !m->grads) {
        free(m->params);
        free(m->grads);
        memset(m, 0, sizeof *m);
        return LSTM_E_NOMEM;
    }
    memset(m->params, 0, bytes);
    memset(m->grads, 0, bytes);
    m->owns = 1;
    return 0;
}

int lstm_model_init_view(lstm_model *m, const lstm_model_config *cfg, const float *params)
{
    if (!params || ((uintptr_t)params & 63)) return LSTM_E_ARG;
    int err = model_setup(m, cfg);
    if (err) return err;
    m->params = (float *)params; /* never written through: a view has no gradients and cannot train */
    return 0;
}

void lstm_model_free(lstm_model *m)
{
    if (!m) return;
    if (m->owns) {
        free(m->params);
        free(m->grads);
    }
    memset(m, 0, sizeof *m);
}

void lstm_model_init_params(lstm_model *m, lstm_rng *rng)
{
    const lstm_model_config *c = &m->cfg;
    for (int i = 0; i < m->n_tensors; i++) {
        const lstm_tensor_info *t = &m->tensors[i];
        float *p = m->params + t->offset;
        if (strstr(t->name, ".ln")) { /* LayerNorm gains 1, b_c 0 (Ba et al.) */
            for (size_t k = 0; k < t->size; k++) p[k] = k < t->size - (size_t)c->H ? 1.0f : 0.0f;
            continue;
        }
        if (t->ndim == 1 && !strstr(t->name, ".peep") && strcmp(t->name, "att.w") != 0) {
            /* biases; peephole weights and the attention's w are weights */
            memset(p, 0, t->size * sizeof(float));
            continue;
        }
        for (size_t k = 0; k < t->size; k++) p[k] = (2.0f * lstm_rng_uniform(rng) - 1.0f) * c->init_scale;
    }
    if (lstm_cell_has_c(c->cell)) /* the f gate: block 1 of the LSTM's i,f,g,o, block 0 of CIFG's f,g,o */
        for (int l = 0; l < c->L; l++) {
            float *b_ih = m->params + m->tensors[lstm_layer_tensor(c, l) + 2].offset;
            int f0 = c->cell == LSTM_CELL_CIFG ? 0 : c->H;
            for (int j = f0; j < f0 + c->H; j++) b_ih[j] = c->forget_bias;
        }
}

size_t lstm_model_num_params(const lstm_model *m) { return m->n_params; }

size_t lstm_model_num_weights(const lstm_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->n_tensors; i++) n += m->tensors[i].size;
    return n;
}

int lstm_model_num_tensors(const lstm_model *m) { return m->n_tensors; }

const lstm_tensor_info *lstm_model_tensor(const lstm_model *m, int i)
{
    return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL;
}

int lstm_model_find_tensor(const lstm_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

void lstm_model_zero_grads(lstm_model *m)
{
    if (m->grads) memset(m->grads, 0, m->n_params * sizeof(float));
}

void lstm_set_threads(int n)
{
    /* Every training GEMM runs on lstm_gemm's pool; OpenBLAS is left with level-1 calls and inference's
     * small products. Its idle workers spin in sched_yield after each threaded call and took ~25% of the
     * CPU samples from our pool on 2 cores (step 15% slower), so it stays single-threaded. */
    openblas_set_num_threads(1);
    lstm_gemm_set_threads(n < 1 ? 1 : n); /* on failure (no memory) the previous count stays: still correct */
}


/* Tensor pointers inside a flat block laid out like params (params itself or grads). */
static void layer_w(const lstm_model *m, const float *base, int l, lstm_layer_w *w)
{
    const lstm_tensor_info *t = &m->tensors[lstm_layer_tensor(&m->cfg, l)];
    w->w_ih = base + t[0].offset;
    w->w_hh = base + t[1].offset;
    w->b_ih = base + t[2].offset;
    w->b_hh = base + t[3].offset;
    w->peep = m->cfg.peephole ? base + t[4].offset : NULL;
    w->ln = m->cfg.cell == LSTM_CELL_LNLSTM ? base + t[4].offset : NULL;
}

static void layer_g(const lstm_model *m, float *base, int l, lstm_layer_g *g)
{
    const lstm_tensor_info *t = &m->tensors[lstm_layer_tensor(&m->cfg, l)];
    g->w_ih = base + t[0].offset;
    g->w_hh = base + t[1].offset;
    g->b_ih = base + t[2].offset;
    g->b_hh = base + t[3].offset;
    g->peep = m->cfg.peephole ? base + t[4].offset : NULL;
    g->ln = m->cfg.cell == LSTM_CELL_LNLSTM ? base + t[4].offset : NULL;
}

static size_t out_w_offset(const lstm_model *m)
{
    return m->cfg.tie ? m->tensors[0].offset : m->tensors[lstm_layer_tensor(&m->cfg, m->cfg.L)].offset;
}

static size_t out_b_offset(const lstm_model *m) { return m->tensors[m->n_tensors - 1].offset; }

/* The attention's tensors inside a block laid out like params (cfg.attention > 0). */
static void att_w(const lstm_model *m, const float *base, lstm_att_w *w)
{
    const lstm_tensor_info *t = &m->tensors[lstm_att_tensor(&m->cfg)];
    w->wy = base + t[0].offset, w->wh = base + t[1].offset, w->w = base + t[2].offset;
    w->wr = base + t[3].offset, w->wx = base + t[4].offset;
}

static void att_g(const lstm_model *m, float *base, lstm_att_g *g)
{
    const lstm_tensor_info *t = &m->tensors[lstm_att_tensor(&m->cfg)];
    g->wy = base + t[0].offset, g->wh = base + t[1].offset, g->w = base + t[2].offset;
    g->wr = base + t[3].offset, g->wx = base + t[4].offset;
}

static int adaptive(const lstm_model *m) { return m->cfg.softmax == LSTM_SOFTMAX_ADAPTIVE; }

/* The adaptive softmax's tensors inside a block laid out like params: head.w, head.b, then proj and
 * out per cluster, right after the layers. */
static void asm_w(const lstm_model *m, const float *base, lstm_asm_w *w)
{
    const lstm_tensor_info *t = &m->tensors[lstm_layer_tensor(&m->cfg, m->cfg.L)];
    w->head_w = base + t[0].offset;
    w->head_b = base + t[1].offset;
    for (int i = 0; i < m->as.n; i++) {
        w->proj[i] = base + t[2 + 2 * i].offset;
        w->out[i] = base + t[3 + 2 * i].offset;
    }
}

void lstm_model_asm_weights(const lstm_model *m, lstm_asm_w *w) { asm_w(m, m->params, w); }

static void asm_g(const lstm_model *m, float *base, lstm_asm_g *g)
{
    const lstm_tensor_info *t = &m->tensors[lstm_layer_tensor(&m->cfg, m->cfg.L)];
    g->head_w = base + t[0].offset;
    g->head_b = base + t[1].offset;
    for (int i = 0; i < m->as.n; i++) {
        g->proj[i] = base + t[2 + 2 * i].offset;
        g->out[i] = base + t[3 + 2 * i].offset;
    }
}

/* ---------------------------------------------------------------------------------------------------
 * State, activations, inference scratch. */

int lstm_state_alloc(lstm_state *s, const lstm_model *m, int B)
{
    memset(s, 0, sizeof *s);
    if (B < 1) return LSTM_E_ARG;
    size_t n = (size_t)m->cfg.L * B * m->cfg.H;
    s->h = calloc(n, sizeof(float));
    s->c = calloc(n, sizeof(float));
    if (!s->h || !s->c) {
        lstm_state_free(s);
        return LSTM_E_NOMEM;
    }
    s->L = m->cfg.L, s->B = B, s->H = m->cfg.H, s->K = m->cfg.attention;
    if (s->K > 0) {
        s->mem = calloc((size_t)B * s->K * s->H, sizeof(float));
        s->mlen = calloc((size_t)B, sizeof(float));
        s->hout = calloc((size_t)B * s->H, sizeof(float));
        if (!s->mem || !s->mlen || !s->hout) {
            lstm_state_free(s);
            return LSTM_E_NOMEM;
        }
    }
    return 0;
}

void lstm_state_free(lstm_state *s)
{
    if (!s) return;
    free(s->h);
    free(s->c);
    free(s->mem);
    free(s->mlen);
    free(s->hout);
    memset(s, 0, sizeof *s);
}

void lstm_state_zero(lstm_state *s)
{
    size_t n = (size_t)s->L * s->B * s->H;
    memset(s->h, 0, n * sizeof(float));
    memset(s->c, 0, n * sizeof(float));
    if (s->K > 0) {
        memset(s->mem, 0, (size_t)s->B * s->K * s->H * sizeof(float));
        memset(s->mlen, 0, (size_t)s->B * sizeof(float));
        memset(s->hout, 0, (size_t)s->B * s->H * sizeof(float));
    }
}

void lstm_state_reset_row(lstm_state *s, int b)
{
    if (b < 0 || b >= s->B) return;
    for (int l = 0; l < s->L; l++) {
        size_t off = ((size_t)l * s->B + b) * s->H;
        memset(s->h + off, 0, (size_t)s->H * sizeof(float));
        memset(s->c + off, 0, (size_t)s->H * sizeof(float));
    }
    if (s->K > 0) {
        memset(s->mem + (size_t)b * s->K * s->H, 0, (size_t)s->K * s->H * sizeof(float));
        s->mlen[b] = 0.0f;
        memset(s->hout + (size_t)b * s->H, 0, (size_t)s->H * sizeof(float));
    }
}

void lstm_state_copy_lane(lstm_state *d, int dl, const lstm_state *s, int sl)
{
    size_t H = (size_t)s->H, KH = (size_t)s->K * H;
    for (int l = 0; l < s->L; l++) {
        memcpy(d->h + ((size_t)l * d->B + dl) * H, s->h + ((size_t)l * s->B + sl) * H, H * sizeof(float));
        memcpy(d->c + ((size_t)l * d->B + dl) * H, s->c + ((size_t)l * s->B + sl) * H, H * sizeof(float));
    }
    if (s->K > 0) {
        memcpy(d->mem + (size_t)dl * KH, s->mem + (size_t)sl * KH, KH * sizeof(float));
        d->mlen[dl] = s->mlen[sl];
        memcpy(d->hout + (size_t)dl * H, s->hout + (size_t)sl * H, H * sizeof(float));
    }
}

void lstm_state_set_memory(lstm_state *s, int b, const float *tops, size_t stride, int n)
{
    if (s->K < 1 || b < 0 || b >= s->B) return;
    int K = s->K, k = n < K ? n : K;
    size_t H = (size_t)s->H;
    float *mb = s->mem + (size_t)b * K * H;
    memset(mb, 0, (size_t)K * H * sizeof(float));
    for (int j = 0; j < k; j++)
        memcpy(mb + (size_t)(K - k + j) * H, tops + (size_t)(n - k + j) * stride, H * sizeof(float));
    s->mlen[b] = (float)k;
}

const float *lstm_state_out(const lstm_state *s, int b)
{
    if (s->K > 0) return s->hout + (size_t)b * s->H;
    return s->h + ((size_t)(s->L - 1) * s->B + b) * s->H;
}

/* Hands out 64-byte aligned pieces of one block; with base NULL it only counts. */
static float *take(float *base, size_t *cur, size_t n)
{
    float *p = base ? base + *cur : NULL;
    *cur += round16(n);
    return p;
}

static size_t carve_acts(lstm_acts *a, const lstm_model *m, float *base, int B, int T)
{
    const lstm_model_config *c = &m->cfg;
    int E = c->E, H = c->H, GH = m->G * H, EH = E > H ? E : H;
    size_t N = (size_t)B * T, cur = 0;
    a->x0 = take(base, &cur, N * E);
    a->xin[0] = a->x0;
    for (int l = 0; l < c->L; l++) {
        lstm_layer_acts *la = &a->layer[l];
        if (l > 0) a->xin[l] = take(base, &cur, N * H);
        la->gates = take(base, &cur, N * GH);
        la->h = take(base, &cur, (N + B) * H);
        if (lstm_cell_has_c(c->cell)) {
            la->c = take(base, &cur, (N + B) * H);
            la->tc = take(base, &cur, N * H);
        }
        if (c->cell == LSTM_CELL_GRU) {
            la->hn = take(base, &cur, N * H);
            la->hg = take(base, &cur, (size_t)B * GH);
        }
        if (c->cell == LSTM_CELL_LNLSTM) {
            la->hg = take(base, &cur, (size_t)B * GH);
            la->lnx = take(base, &cur, N * GH);
            la->lnh = take(base, &cur, N * GH);
            la->lnc = take(base, &cur, N * H);
            la->lnr = take(base, &cur, N * 3);
        }
    }
    if (c->attention > 0) {
        size_t K = (size_t)c->attention, NE = (K + T) * B;
        lstm_att_acts *t = &a->att;
        t->ext = take(base, &cur, NE * H);
        t->p = take(base, &cur, NE * H);
        t->q = take(base, &cur, N * H);
        t->m = take(base, &cur, N * K * H);
        t->alpha = take(base, &cur, N * K);
        t->r = take(base, &cur, N * H);
        t->hs = take(base, &cur, N * H);
        t->dz = take(base, &cur, N * H);
        t->dr = take(base, &cur, N * H);
        t->dext = take(base, &cur, NE * H);
        t->n0 = take(base, &cur, (size_t)B);
    }
    a->out_in = take(base, &cur, N * H);
    if (adaptive(m)) {
        lstm_asm_carve(&a->as, &m->as, base, &cur, N, take);
        a->row_lp = take(base, &cur, (size_t)c->V);
        a->row_scratch = take(base, &cur, lstm_asm_row_scratch(&m->as));
    } else {
        a->logits = take(base, &cur, N * c->V);
        a->lse = take(base, &cur, N);
    }
    /* only the sites that drop have masks (take() of 0 floats would still hand out a pointer) */
    float p_in = lstm_model_p_in(c), p_mid = lstm_model_p_hidden(c);
    a->mask_emb = p_in > 0.0f ? take(base, &cur, N * E) : NULL;
    for (int l = 1; l < c->L; l++) a->mask_mid[l] = p_mid > 0.0f ? take(base, &cur, N * H) : NULL;
    a->mask_out = c->dropout > 0.0f ? take(base, &cur, N * H) : NULL;
    a->mask_words = c->dropout_words > 0.0f ? take(base, &cur, (size_t)c->V) : NULL;
    if (c->weight_drop > 0.0f) {
        for (int l = 0; l < c->L; l++) a->mask_whh[l] = take(base, &cur, (size_t)GH * H);
        a->whh_drop = take(base, &cur, (size_t)GH * H);
        a->dwhh = take(base, &cur, (size_t)GH * H);
    }
    a->scratch.dxg = take(base, &cur, N * GH);
    a->scratch.dhg = c->cell == LSTM_CELL_GRU || c->cell == LSTM_CELL_LNLSTM ? take(base, &cur, N * GH) : a->scratch.dxg;
    a->scratch.dh = take(base, &cur, (size_t)B * H);
    a->scratch.dc = take(base, &cur, (size_t)B * H);
    /* one packed W_hh for whichever layer runs (forward or backward) */
    a->scratch.wpack = take(base, &cur, lstm_cell_wpack_floats(c->cell, H));
    for (int l = 0; l < c->L; l++) a->layer[l].wpack = a->scratch.wpack;
    a->dseq[0] = take(base, &cur, N * EH);
    a->dseq[1] = take(base, &cur, N * EH);
    return cur;
}

double lstm_acts_bytes(const lstm_model *m, int B, int T)
{
    if (B < 1 || T < 1 || (long long)B * T > (1 << 24)) return 0;
    lstm_acts tmp;
    memset(&tmp, 0, sizeof tmp);
    return (double)carve_acts(&tmp, m, NULL, B, T) * sizeof(float) + 2.0 * B * T * sizeof(uint32_t);
}

int lstm_acts_alloc(lstm_acts *a, const lstm_model *m, int B, int T)
{
    memset(a, 0, sizeof *a);
    if (B < 1 || T < 1 || (long long)B * T * m->cfg.V > (1LL << 40) || (long long)B * T > (1 << 24))
        return LSTM_E_ARG;
    lstm_acts tmp;
    memset(&tmp, 0, sizeof tmp);
    size_t n = carve_acts(&tmp, m, NULL, B, T);
    a->block = aligned_alloc(64, n * sizeof(float));
    a->ids = malloc(2 * (size_t)B * T * sizeof(uint32_t));
    if (!a->block || !a->ids) {
        lstm_acts_free(a);
        return LSTM_E_NOMEM;
    }
    memset(a->block, 0, n * sizeof(float));
    carve_acts(a, m, a->block, B, T);
    a->Bmax = B, a->Tmax = T;
    a->bytes = n * sizeof(float) + 2 * (size_t)B * T * sizeof(uint32_t);
    return 0;
}

void lstm_acts_free(lstm_acts *a)
{
    if (!a) return;
    free(a->block);
    free(a->ids);
    memset(a, 0, sizeof *a);
}

float *lstm_acts_logits(const lstm_acts *a, const lstm_model *m, int b, int t)
{
    size_t r = (size_t)t * a->B + b;
    if (!adaptive(m)) return a->logits + r * m->cfg.V;
    lstm_asm_w w;
    asm_w(m, m->params, &w);
    lstm_asm_logprobs(&m->as, &w, a->row_lp, a->out_in + r * m->cfg.H, a->row_scratch);
    return a->row_lp;
}

/* Whether lstm_model_sample_dropout_lanes has anything to draw for this config. */
static int any_dropout(const lstm_model_config *c)
{
    return lstm_model_p_in(c) > 0.0f || lstm_model_p_hidden(c) > 0.0f || c->dropout > 0.0f;
}

void lstm_model_sample_dropout(const lstm_model *m, lstm_acts *a, lstm_rng *rng)
{
    lstm_model_sample_dropout_lanes(m, a, rng, a->Bmax, 0, 1);
}

/* mask[k] for k < n: 0 with probability p, else 1/(1-p), from draws base + k of rng's stream. */
static void mask_at(float *mask, size_t n, float p, const lstm_rng *rng, uint64_t base)
{
    float keep = 1.0f / (1.0f - p);
    for (size_t k = 0; k < n; k++) mask[k] = lstm_rng_uniform_at(rng, base + k) < p ? 0.0f : keep;
}

void lstm_model_sample_dropout_lanes(const lstm_model *m, lstm_acts *a, lstm_rng *rng, int Bg, int lane0,
                                     int lane_step)
{
    const lstm_model_config *c = &m->cfg;
    int B = a->Bmax, T = a->Tmax, E = c->E, H = c->H, L = c->L;
    float p[3] = {lstm_model_p_in(c), lstm_model_p_hidden(c), c->dropout};
    if (any_dropout(c)) {
        /* lstm_model_sample_dropout's order over Bg lanes: emb (T,Bg,E), each mid (T,Bg,H), out (T,Bg,H);
         * locked, one step's worth: emb (Bg,E), each mid (Bg,H), out (Bg,H). A site whose p is 0 keeps
         * its place in the stream, so the others draw what they draw with it on. */
        uint64_t N = (uint64_t)Bg * (uint64_t)(c->locked ? 1 : T);
        for (int b = 0; b < B; b++) {
            uint64_t g = (uint64_t)lane0 + (uint64_t)b * (uint64_t)lane_step;
            for (int t = 0; t < T; t++) {
                size_t row = (size_t)t * B + b;
                if (c->locked && t > 0) { /* the lane's mask of step 0, at every step */
                    size_t row0 = (size_t)b;
                    if (a->mask_emb) memcpy(a->mask_emb + row * E, a->mask_emb + row0 * E, (size_t)E * sizeof(float));
                    for (int l = 1; l < L; l++)
                        if (a->mask_mid[l])
                            memcpy(a->mask_mid[l] + row * H, a->mask_mid[l] + row0 * H, (size_t)H * sizeof(float));
                    if (a->mask_out) memcpy(a->mask_out + row * H, a->mask_out + row0 * H, (size_t)H * sizeof(float));
                    continue;
                }
                uint64_t grow = (uint64_t)t * Bg + g;
                if (a->mask_emb) mask_at(a->mask_emb + row * E, (size_t)E, p[0], rng, grow * E);
                for (int l = 1; l < L; l++)
                    if (a->mask_mid[l])
                        mask_at(a->mask_mid[l] + row * H, (size_t)H, p[1], rng, N * E + (uint64_t)(l - 1) * N * H + grow * H);
                if (a->mask_out) mask_at(a->mask_out + row * H, (size_t)H, p[2], rng, N * E + (uint64_t)(L - 1) * N * H + grow * H);
            }
        }
        lstm_rng_skip(rng, N * E + (uint64_t)L * N * H);
    }
    /* the per-window masks: every share of the batch draws the whole of them */
    if (c->dropout_words > 0.0f) {
        if (a->mask_words) mask_at(a->mask_words, (size_t)c->V, c->dropout_words, rng, 0);
        lstm_rng_skip(rng, (uint64_t)c->V);
    }
    if (c->weight_drop > 0.0f) {
        size_t n = (size_t)m->G * H * H;
        for (int l = 0; l < L; l++)
            if (a->mask_whh[l]) mask_at(a->mask_whh[l], n, c->weight_drop, rng, (uint64_t)l * n);
        lstm_rng_skip(rng, (uint64_t)L * n);
    }
}

void lstm_model_reg_counts(const uint32_t *inputs, int B, int T, long *rows, long *pairs)
{
    long r = 0, q = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const uint32_t *x = inputs + (size_t)b * T + t;
            if (x[0] == 0) continue;
            r++;
            if (t > 0 && x[-1] != 0) q++;
        }
    if (rows) *rows = r;
    if (pairs) *pairs = q;
}

double lstm_model_reg_loss(const lstm_model *m, const lstm_acts *a, long rows, long pairs)
{
    const lstm_model_config *c = &m->cfg;
    double H = (double)c->H, v = 0.0;
    if (rows <= 0) rows = a->ar_rows;
    if (pairs <= 0) pairs = a->tar_pairs;
    if (c->ar > 0.0f && rows > 0) v += (double)c->ar * a->ar_sum / (H * (double)rows);
    if (c->tar > 0.0f && pairs > 0) v += (double)c->tar * a->tar_sum / (H * (double)pairs);
    return v;
}

/* y = x (* mask when mask is not NULL). */
static void copy_masked(float *y, const float *x, const float *mask, size_t n)
{
    if (!mask) {
        memcpy(y, x, n * sizeof(float));
        return;
    }
    for (size_t k = 0; k < n; k++) y[k] = x[k] * mask[k];
}

/* ---------------------------------------------------------------------------------------------------
 * Forward and backward over a window. */

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;

/* An export's quantized embedding / output weight into params, the first time a window forward runs
 * (copies of the model struct may each do it once: the same values again). */
static void dequant_pending(lstm_model *m)
{
    pthread_mutex_lock(&q_lock);
    if (m->q_pending) {
        if (m->qemb.type != LSTM_Q_NONE) lstm_qdequant(m->params + m->tensors[0].offset, &m->qemb);
        if (!m->cfg.tie && m->qout.type != LSTM_Q_NONE) lstm_qdequant(m->params + out_w_offset(m), &m->qout);
        for (int l = 0; l < m->cfg.L; l++) {
            int k = lstm_layer_tensor(&m->cfg, l);
            if (m->qw_ih[l].type != LSTM_Q_NONE) lstm_qdequant(m->params + m->tensors[k].offset, &m->qw_ih[l]);
            if (m->qw_hh[l].type != LSTM_Q_NONE) lstm_qdequant(m->params + m->tensors[k + 1].offset, &m->qw_hh[l]);
        }
        m->q_pending = 0;
    }
    pthread_mutex_unlock(&q_lock);
}

/* a->whh_drop = w_hh * layer l's weight-drop mask; returns it. */
static const float *drop_whh(const lstm_model *m, lstm_acts *a, int l, const float *w_hh)
{
    const float *mk = a->mask_whh[l];
    for (size_t k = 0, n = (size_t)m->G * m->cfg.H * m->cfg.H; k < n; k++) a->whh_drop[k] = w_hh[k] * mk[k];
    return a->whh_drop;
}

/* AR's and TAR's sums of squares and counts (model.h) over the window: in (T,B) time-major, h (T,B,H)
 * the top layer's output. */
static void reg_sums(lstm_acts *a, const uint32_t *in, const float *h, int B, int T, int H)
{
    double ar = 0.0, tar = 0.0;
    long rows = 0, pairs = 0;
    for (size_t r = 0, N = (size_t)B * T; r < N; r++) {
        if (in[r] == 0) continue;
        const float *x = a->out_in + r * H, *hr = h + r * H;
        for (int j = 0; j < H; j++) ar += (double)x[j] * x[j];
        rows++;
        if (r < (size_t)B || in[r - B] == 0) continue;
        for (int j = 0; j < H; j++) {
            double d = (double)hr[j] - hr[j - (ptrdiff_t)B * H];
            tar += d * d;
        }
        pairs++;
    }
    a->ar_sum = ar, a->tar_sum = tar, a->ar_rows = rows, a->tar_pairs = pairs;
}

int lstm_model_forward(lstm_model *m, lstm_acts *a, lstm_state *st, const uint32_t *inputs,
                       const uint32_t *targets, int B, int T, int train, double *loss, long *count)
{
    dequant_pending(m);
    const lstm_model_config *c = &m->cfg;
    int V = c->V, E = c->E, H = c->H, L = c->L;
    if (!inputs || B < 1 || T < 1 || B > a->Bmax || T > a->Tmax || !st || st->B != B || st->L != L ||
        st->H != H || st->K != c->attention)
        return LSTM_E_ARG;
    size_t N = (size_t)B * T, BH = (size_t)B * H;
    uint32_t *in = a->ids, *tg = a->ids + (size_t)a->Bmax * a->Tmax;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            uint32_t id = inputs[(size_t)b * T + t];
            uint32_t y = targets ? targets[(size_t)b * T + t] : 0;
            if (id >= (uint32_t)V || y >= (uint32_t)V) return LSTM_E_RANGE;
            in[(size_t)t * B + b] = id;
            tg[(size_t)t * B + b] = y;
        }
    /* in training, the masks of the sites that drop (NULL where nothing is dropped) */
    const float *m_emb = train ? a->mask_emb : NULL, *m_words = train ? a->mask_words : NULL;
    const float *P = m->params;
    const float *emb = P + m->tensors[0].offset;
    for (size_t r = 0; r < N; r++) {
        if (!m_words) {
            copy_masked(a->x0 + r * E, emb + (size_t)in[r] * E, m_emb ? m_emb + r * E : NULL, (size_t)E);
            continue;
        }
        /* (emb[id] * the word's mask) * the element's: the dropped embedding matrix, then dropout */
        const float *e = emb + (size_t)in[r] * E, *mk = m_emb ? m_emb + r * E : NULL;
        float sw = m_words[in[r]], *x = a->x0 + r * E;
        for (int k = 0; k < E; k++) x[k] = mk ? e[k] * sw * mk[k] : e[k] * sw;
    }
    for (int l = 0; l < L; l++) {
        lstm_layer_acts *la = &a->layer[l];
        int In = l == 0 ? E : H;
        if (l > 0) copy_masked(a->xin[l], a->layer[l - 1].h + BH, train ? a->mask_mid[l] : NULL, N * H);
        lstm_layer_w w;
        layer_w(m, P, l, &w);
        if (train && a->mask_whh[l]) w.w_hh = drop_whh(m, a, l, w.w_hh); /* what the steps (and wpack) use */
        memcpy(la->h, st->h + l * BH, BH * sizeof(float));
        if (lstm_cell_has_c(c->cell)) memcpy(la->c, st->c + l * BH, BH * sizeof(float));
        if (m->reference)
            lstm_cell_forward_ref(c->cell, la, a->xin[l], &w, B, T, In, H);
        else
            lstm_cell_forward(c->cell, la, a->xin[l], &w, B, T, In, H);
        memcpy(st->h + l * BH, la->h + N * H, BH * sizeof(float));
        if (lstm_cell_has_c(c->cell)) memcpy(st->c + l * BH, la->c + N * H, BH * sizeof(float));
    }
    const float *top = a->layer[L - 1].h + BH;
    if (c->attention > 0) {
        lstm_att_w aw;
        att_w(m, P, &aw);
        (m->reference ? lstm_att_forward_ref : lstm_att_forward)(&a->att, st->mem, st->mlen, st->hout, top, &aw, B, T,
                                                                  c->attention, H);
        top = a->att.hs;
    }
    copy_masked(a->out_in, top, train ? a->mask_out : NULL, N * H);
    /* AR on the output layer's (dropped) input, TAR on the top layer's own output (h* with attention is
     * not it: AWD's raw_output is the last recurrent layer's) */
    a->ar_sum = a->tar_sum = 0.0, a->ar_rows = a->tar_pairs = 0;
    if (train && (c->ar > 0.0f || c->tar > 0.0f)) reg_sums(a, in, a->layer[L - 1].h + BH, B, T, H);
    double nll = 0.0;
    long cnt = 0;
    if (adaptive(m)) {
        lstm_asm_w aw;
        asm_w(m, P, &aw);
        lstm_asm_forward(&m->as, &aw, &a->as, a->out_in, targets ? tg : NULL, (int)N, &nll, &cnt, m->reference);
    } else
        (m->reference ? lstm_out_forward_ref : lstm_out_forward)(a->logits, a->lse, &nll, &cnt, a->out_in,
                                                                  P + out_w_offset(m), P + out_b_offset(m),
                                                                  targets ? tg : NULL, (int)N, H, V);
    a->B = B, a->T = T, a->train = train != 0, a->has_targets = targets != NULL, a->count = cnt;
    if (loss) *loss = cnt ? nll / (double)cnt : 0.0;
    if (count) *count = cnt;
    return 0;
}

static void mul_mask(float *x, const float *mask, size_t n)
{
    for (size_t k = 0; k < n; k++) x[k] *= mask[k];
}

/* d(out_in) += 2 alpha / (H rows) out_in on the rows AR averages over (inputs in (T,B), time-major), then
 * the output mask: dout is d(out_in) on entry, the gradient of what the mask was applied to on exit. */
static void ar_backward(const lstm_model *m, const lstm_acts *a, float *dout, long rows)
{
    const lstm_model_config *c = &m->cfg;
    int H = c->H;
    size_t N = (size_t)a->B * a->T;
    const uint32_t *in = a->ids;
    if (c->ar > 0.0f && rows > 0) {
        float k = (float)(2.0 * c->ar / ((double)H * (double)rows));
        for (size_t r = 0; r < N; r++) {
            if (in[r] == 0) continue;
            const float *x = a->out_in + r * H;
            float *d = dout + r * H;
            for (int j = 0; j < H; j++) d[j] += k * x[j];
        }
    }
    if (a->mask_out) mul_mask(dout, a->mask_out, N * H);
}

/* d(h(t)) += 2 beta / (H pairs) (h(t) - h(t-1)), d(h(t-1)) -= the same, on TAR's pairs; h (T,B,H) the top
 * layer's output, dh (T,B,H) its gradient. */
static void tar_backward(const lstm_model *m, const lstm_acts *a, float *dh, long pairs)
{
    const lstm_model_config *c = &m->cfg;
    int B = a->B, H = c->H;
    size_t N = (size_t)B * a->T;
    const uint32_t *in = a->ids;
    if (!(c->tar > 0.0f) || pairs <= 0) return;
    float k = (float)(2.0 * c->tar / ((double)H * (double)pairs));
    const float *h = a->layer[c->L - 1].h + (size_t)B * H;
    for (size_t r = (size_t)B; r < N; r++) {
        if (in[r] == 0 || in[r - B] == 0) continue;
        float *d = dh + r * H, *dp = dh + (r - B) * H;
        const float *x = h + r * H, *xp = h + (r - B) * H;
        for (int j = 0; j < H; j++) {
            float v = k * (x[j] - xp[j]);
            d[j] += v;
            dp[j] -= v;
        }
    }
}

int lstm_model_backward(lstm_model *m, lstm_acts *a, lstm_state *dstate)
{
    return lstm_model_backward_ex(m, a, dstate, NULL, NULL, NULL);
}

int lstm_model_backward_ex(lstm_model *m, lstm_acts *a, lstm_state *dstate, const lstm_norms *norm,
                           lstm_grads_ready_fn ready, void *ctx)
{
    const lstm_model_config *c = &m->cfg;
    int V = c->V, E = c->E, H = c->H, L = c->L, B = a->B, T = a->T;
    if (!m->grads || !a->has_targets) return LSTM_E_ARG;
    if (dstate && (dstate->B != B || dstate->L != L || dstate->H != H || dstate->K != c->attention)) return LSTM_E_ARG;
    size_t N = (size_t)B * T, BH = (size_t)B * H;
    const uint32_t *in = a->ids, *tg = a->ids + (size_t)a->Bmax * a->Tmax;
    const float *P = m->params;
    float *Gr = m->grads;
    long n_div = norm && norm->targets > 0 ? norm->targets : a->count;
    long rows = norm && norm->rows > 0 ? norm->rows : a->ar_rows, pairs = norm && norm->pairs > 0 ? norm->pairs : a->tar_pairs;
    float scale = n_div ? 1.0f / (float)n_div : 0.0f;
    /* Tensor k's layer: emb, then 4 per layer (5 with peepholes or LayerNorm), then the attention's 5 (in the top
     * layer's range), then out.w (untied) and out.b, or the adaptive softmax's tensors. */
    const size_t first_out = m->tensors[lstm_layer_tensor(c, L)].offset; /* out.w, out.b when tied, or head.w */
    int cur = 0;
    if (adaptive(m)) {
        lstm_asm_w aw;
        lstm_asm_g ag;
        asm_w(m, P, &aw);
        asm_g(m, Gr, &ag);
        lstm_asm_backward(&m->as, &aw, &ag, &a->as, a->dseq[cur], a->out_in, tg, scale, (int)N, m->reference);
    } else
        (m->reference ? lstm_out_backward_ref : lstm_out_backward)(a->dseq[cur], Gr + out_w_offset(m),
                                                                    Gr + out_b_offset(m), a->logits, a->lse,
                                                                    a->out_in, P + out_w_offset(m), tg, scale,
                                                                    (int)N, H, V);
    if (a->train) ar_backward(m, a, a->dseq[cur], rows); /* AR, then the output mask */
    /* Tied, the output weight is the embedding: only out.b is final here. */
    if (ready) ready(ctx, first_out, m->n_params - first_out);
    if (c->attention > 0) { /* its tensors are final with the top layer's (they share its range) */
        lstm_att_w aw;
        lstm_att_g ag;
        att_w(m, P, &aw);
        att_g(m, Gr, &ag);
        (m->reference ? lstm_att_backward_ref : lstm_att_backward)(&ag, a->dseq[1 - cur], dstate ? dstate->mem : NULL,
                                                                    &a->att, a->layer[L - 1].h + BH, a->dseq[cur],
                                                                    &aw, B, T, c->attention, H);
        cur = 1 - cur;
    }
    if (a->train) tar_backward(m, a, a->dseq[cur], pairs); /* on the top layer's own output */
    for (int l = L - 1; l >= 0; l--) {
        int In = l == 0 ? E : H;
        lstm_layer_w w;
        lstm_layer_g g;
        layer_w(m, P, l, &w);
        layer_g(m, Gr, l, &g);
        int wd = a->train && a->mask_whh[l];
        if (wd) { /* the dropped w_hh again, and its gradient apart, to be masked into w_hh's */
            w.w_hh = drop_whh(m, a, l, w.w_hh);
            memset(a->dwhh, 0, (size_t)m->G * H * H * sizeof(float));
            g.w_hh = a->dwhh;
        }
        float *dh0 = dstate ? dstate->h + l * BH : NULL, *dc0 = dstate ? dstate->c + l * BH : NULL;
        (m->reference ? lstm_cell_backward_ref : lstm_cell_backward)(c->cell, &g, a->dseq[1 - cur], dh0, dc0,
                                                                      &a->scratch, a->dseq[cur], &a->layer[l],
                                                                      a->xin[l], &w, B, T, In, H);
        cur = 1 - cur;
        if (wd) {
            float *gw = Gr + m->tensors[lstm_layer_tensor(c, l) + 1].offset;
            const float *mk = a->mask_whh[l];
            for (size_t k = 0, n = (size_t)m->G * H * H; k < n; k++) gw[k] += mk[k] * a->dwhh[k];
        }
        if (ready) {
            size_t lo = m->tensors[lstm_layer_tensor(c, l)].offset;
            size_t hi = l + 1 < L ? m->tensors[lstm_layer_tensor(c, l + 1)].offset : first_out;
            ready(ctx, lo, hi - lo);
        }
        const float *mk = l == 0 ? a->mask_emb : a->mask_mid[l];
        if (a->train && mk) mul_mask(a->dseq[cur], mk, N * In);
    }
    float *gemb = Gr + m->tensors[0].offset;
    const float *m_words = a->train ? a->mask_words : NULL;
    for (size_t r = 0; r < N; r++) {
        float *row = gemb + (size_t)in[r] * E;
        const float *d = a->dseq[cur] + r * E;
        if (m_words) {
            float sw = m_words[in[r]];
            for (int k = 0; k < E; k++) row[k] += sw * d[k];
        } else
            for (int k = 0; k < E; k++) row[k] += d[k];
    }
    if (ready) ready(ctx, 0, m->tensors[1].offset);
    return 0;
}

/* ---------------------------------------------------------------------------------------------------
 * Inference. */

int lstm_infer_alloc(lstm_infer *inf, const lstm_model *m, int B)
{
    memset(inf, 0, sizeof *inf);
    if (B < 1) return LSTM_E_ARG;
    int EH = m->cfg.E > m->cfg.H ? m->cfg.E : m->cfg.H, GH = m->G * m->cfg.H;
    size_t cur = 0;
    take(NULL, &cur, (size_t)B * EH);
    take(NULL, &cur, (size_t)B * GH);
    take(NULL, &cur, (size_t)B * GH);
    size_t as = adaptive(m) ? lstm_asm_row_scratch(&m->as) : 0;
    take(NULL, &cur, as);
    size_t at = m->cfg.attention > 0 ? lstm_att_step_floats(m->cfg.attention, m->cfg.H) : 0;
    take(NULL, &cur, at);
    inf->block = aligned_alloc(64, cur * sizeof(float));
    if (!inf->block) return LSTM_E_NOMEM;
    cur = 0;
    inf->x = take(inf->block, &cur, (size_t)B * EH);
    inf->xg = take(inf->block, &cur, (size_t)B * GH);
    inf->hg = take(inf->block, &cur, (size_t)B * GH);
    inf->as = as ? take(inf->block, &cur, as) : NULL;
    inf->att = at ? take(inf->block, &cur, at) : NULL;
    inf->m = m;
    inf->B = B;
    return 0;
}

void lstm_infer_free(lstm_infer *inf)
{
    if (!inf) return;
    free(inf->block);
    memset(inf, 0, sizeof *inf);
}

/* Y (B,N) = X (B,K) W^T, W (N,K): gemv for the single-lane case the suggestion server lives on. */
static void project(float *Y, const float *X, const float *W, int B, int N, int K, float beta)
{
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, W, K, X, 1, beta, Y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, N, K, 1.0f, X, K, W, K, beta, Y, N);
}

/* project() over weights that may be quantized (q->type != LSTM_Q_NONE): one GEMV per lane then. */
static void qproject(float *Y, const float *X, const lstm_qmat *q, const float *W, int B, int N, int K)
{
    if (q->type == LSTM_Q_NONE) {
        project(Y, X, W, B, N, K, 0.0f);
        return;
    }
    for (int b = 0; b < B; b++) {
        memset(Y + (size_t)b * N, 0, (size_t)N * sizeof(float));
        lstm_qgemv(Y + (size_t)b * N, q, X + (size_t)b * K);
    }
}

/* x (n,E) = the embeddings of tokens (n); LSTM_E_RANGE for an id outside the vocabulary. */
static int embed(const lstm_model *m, float *x, const uint32_t *tokens, int n)
{
    int E = m->cfg.E;
    const float *emb = m->params + m->tensors[0].offset;
    for (int i = 0; i < n; i++) {
        if (tokens[i] >= (uint32_t)m->cfg.V) return LSTM_E_RANGE;
        if (m->qemb.type != LSTM_Q_NONE) lstm_qrow(x + (size_t)i * E, &m->qemb, (int)tokens[i]);
        else memcpy(x + (size_t)i * E, emb + (size_t)tokens[i] * E, (size_t)E * sizeof(float));
    }
    return 0;
}

/* logits (B,V) = h (B,H) W_out^T + b_out; with the adaptive softmax, the log-probabilities. */
static void out_logits(const lstm_infer *inf, float *logits, const float *h, int B)
{
    const lstm_model *m = inf->m;
    int V = m->cfg.V;
    if (adaptive(m)) {
        lstm_asm_w w;
        asm_w(m, m->params, &w);
        for (int b = 0; b < B; b++)
            lstm_asm_logprobs(&m->as, &w, logits + (size_t)b * V, h + (size_t)b * m->cfg.H, inf->as);
        return;
    }
    const float *bias = m->params + out_b_offset(m);
    for (int b = 0; b < B; b++) memcpy(logits + (size_t)b * V, bias, (size_t)V * sizeof(float));
    if (m->qout.type != LSTM_Q_NONE) {
        /* quantized weights: one GEMV per lane (B is 1 for suggestions, a small beam otherwise) */
        for (int b = 0; b < B; b++) lstm_qgemv(logits + (size_t)b * V, &m->qout, h + (size_t)b * m->cfg.H);
        return;
    }
    project(logits, h, m->params + out_w_offset(m), B, V, m->cfg.H, 1.0f);
}

int lstm_infer_seq(lstm_infer *inf, lstm_state *st, const uint32_t *tokens, int T, float *hs, float *cs,
                   float *logits)
{
    const lstm_model *m = inf->m;
    const lstm_model_config *c = &m->cfg;
    int E = c->E, H = c->H, GH = m->G * H, L = c->L;
    if (T < 1 || T > inf->B || !st || st->B != 1 || st->L != L || st->H != H || st->K != c->attention) return LSTM_E_ARG;
    const float *P = m->params;
    int rc = embed(m, inf->x, tokens, T);
    if (rc) return rc;
    size_t LH = (size_t)L * H;
    for (int l = 0; l < L; l++) {
        lstm_layer_w w;
        layer_w(m, P, l, &w);
        int in = l == 0 ? E : H;
        /* xg (T,GH) = x (T,in) W_ih^T: then x is free to take this layer's outputs, the next one's input */
        if (m->qw_ih[l].type != LSTM_Q_NONE) qproject(inf->xg, inf->x, &m->qw_ih[l], NULL, T, GH, in);
        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, GH, in, 1.0f, inf->x, in, w.w_ih, in, 0.0f, inf->xg, GH);
        float *h = st->h + (size_t)l * H, *cc = st->c + (size_t)l * H;
        for (int t = 0; t < T; t++) {
            qproject(inf->hg, h, &m->qw_hh[l], w.w_hh, 1, GH, H);
            lstm_cell_step(c->cell, h, cc, inf->xg + (size_t)t * GH, inf->hg, &w, 1, H);
            memcpy(inf->x + (size_t)t * H, h, (size_t)H * sizeof(float));
            if (hs) memcpy(hs + (size_t)t * LH + (size_t)l * H, h, (size_t)H * sizeof(float));
            if (cs) memcpy(cs + (size_t)t * LH + (size_t)l * H, cc, (size_t)H * sizeof(float));
        }
    }
    if (c->attention > 0) { /* inf->x holds the top layer's T outputs: only the last one's h* is read */
        lstm_att_w aw;
        att_w(m, P, &aw);
        for (int t = 0; t + 1 < T; t++) lstm_att_push(st->mem, st->mlen, inf->x + (size_t)t * H, 1, c->attention, H);
        lstm_att_step(st->hout, st->mem, st->mlen, inf->x + (size_t)(T - 1) * H, &aw, 1, c->attention, H, inf->att);
    }
    if (logits) out_logits(inf, logits, lstm_state_out(st, 0), 1);
    return 0;
}

int lstm_infer_step(lstm_infer *inf, lstm_state *st, const uint32_t *tokens, float *logits)
{
    const lstm_model *m = inf->m;
    const lstm_model_config *c = &m->cfg;
    int B = inf->B, E = c->E, H = c->H, GH = m->G * H;
    if (!st || st->B != B || st->L != c->L || st->H != H || st->K != c->attention) return LSTM_E_ARG;
    const float *P = m->params;
    int rc = embed(m, inf->x, tokens, B);
    if (rc) return rc;
    size_t BH = (size_t)B * H;
    for (int l = 0; l < c->L; l++) {
        lstm_layer_w w;
        layer_w(m, P, l, &w);
        const float *x = l == 0 ? inf->x : st->h + (l - 1) * BH;
        qproject(inf->xg, x, &m->qw_ih[l], w.w_ih, B, GH, l == 0 ? E : H);
        qproject(inf->hg, st->h + l * BH, &m->qw_hh[l], w.w_hh, B, GH, H);
        lstm_cell_step(c->cell, st->h + l * BH, st->c + l * BH, inf->xg, inf->hg, &w, B, H);
    }
    if (c->attention > 0) {
        lstm_att_w aw;
        att_w(m, P, &aw);
        lstm_att_step(st->hout, st->mem, st->mlen, st->h + (c->L - 1) * BH, &aw, B, c->attention, H, inf->att);
    }
    if (logits) out_logits(inf, logits, lstm_state_out(st, 0), B);
    return 0;
}
