/* optim.c: SGD / Adam / AdamW updates, clipping, gradient norms, LR schedules, early stopping (see
 * optim.h). The update formulas follow torch.optim so the PyTorch cross-check can compare them. */
#include "optim.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

int lstm_optim_init(lstm_optim *o, int kind, size_t n)
{
    memset(o, 0, sizeof *o);
    if (kind != LSTM_OPT_SGD && kind != LSTM_OPT_ADAM && kind != LSTM_OPT_ADAMW) return LSTM_E_ARG;
    o->kind = kind;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->n = n;
    if (kind != LSTM_OPT_SGD) {
        o->m = calloc(n ? n : 1, sizeof(float));
        o->v = calloc(n ? n : 1, sizeof(float));
        if (!o->m || !o->v) {
            lstm_optim_free(o);
            return LSTM_E_NOMEM;
        }
    }
    return 0;
}

void lstm_optim_free(lstm_optim *o)
{
    if (!o) return;
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

size_t lstm_optim_state_floats(const lstm_optim *o) { return o->kind == LSTM_OPT_SGD ? 0 : o->n; }

void lstm_optim_step(lstm_optim *o, float *p, const float *g, float lr)
{
    o->step++;
    float wd = (float)o->weight_decay;
    if (o->kind == LSTM_OPT_SGD) {
        if (wd == 0.0f && o->n <= INT_MAX)
            cblas_saxpy((int)o->n, -lr, g, 1, p, 1);
        else
            for (size_t i = 0; i < o->n; i++) p[i] -= lr * (g[i] + wd * p[i]);
        return;
    }
    /* torch: step_size = lr / (1 - b1^t); denom = sqrt(v) / sqrt(1 - b2^t) + eps; coefficients formed
     * in double, applied in float */
    double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    float b1 = (float)o->beta1, c1 = (float)(1.0 - o->beta1), b2 = (float)o->beta2, c2 = (float)(1.0 - o->beta2);
    float step_size = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2)), eps = (float)o->eps;
    float decay = o->kind == LSTM_OPT_ADAMW ? (float)(1.0 - (double)lr * o->weight_decay) : 1.0f;
    float l2 = o->kind == LSTM_OPT_ADAM ? wd : 0.0f;
    float *m = o->m, *v = o->v;
    for (size_t i = 0; i < o->n; i++) {
        float gi = g[i] + l2 * p[i];
        float pi = p[i] * decay;
        m[i] = b1 * m[i] + c1 * gi;
        v[i] = b2 * v[i] + c2 * gi * gi;
        p[i] = pi - step_size * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
    }
}

double lstm_optim_sumsq(const float *g, size_t n)
{
    /* float dot products over short blocks (vectorized), summed in double: accurate and fast */
    double s = 0.0;
    for (size_t i = 0; i < n; i += 4096) {
        int len = (int)(n - i < 4096 ? n - i : 4096);
        s += (double)cblas_sdot(len, g + i, 1, g + i, 1);
    }
    return s;
}

void lstm_optim_scale(float *g, size_t n, float k)
{
    for (size_t i = 0; i < n; i += 4096) cblas_sscal((int)(n - i < 4096 ? n - i : 4096), k, g + i, 1);
}

void lstm_optim_sgd_part(float *p, const float *g, size_t n, float lr)
{
    for (size_t i = 0; i < n; i += 1u << 30) cblas_saxpy((int)(n - i < (1u << 30) ? n - i : 1u << 30), -lr, g + i, 1, p + i, 1);
}

double lstm_optim_clip(float *g, size_t n, double max_norm)
{
    double norm = sqrt(lstm_optim_sumsq(g, n));
    if (max_norm > 0.0 && norm > max_norm) lstm_optim_scale(g, n, (float)(max_norm / norm));
    return norm;
}

void lstm_optim_tensor_norms(double *out, const lstm_model *m)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const float *g = m->grads + m->tensors[t].offset;
        double s = 0.0;
        for (size_t i = 0; i < m->tensors[t].size; i++) s += (double)g[i] * g[i];
        out[t] = sqrt(s);
    }
}

void lstm_sched_init(lstm_sched *s, int kind, double lr0)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->lr0 = lr0;
    s->factor = 2.0;
    s->start_epoch = 4;
    s->plateau_lr = lr0;
    s->best = INFINITY;
}

double lstm_sched_lr(const lstm_sched *s, int epoch, long step)
{
    double lr = s->lr0;
    switch (s->kind) {
    case LSTM_SCHED_STEP:
        if (epoch > s->start_epoch) lr = s->lr0 / pow(s->factor, (double)(epoch - s->start_epoch));
        break;
    case LSTM_SCHED_PLATEAU:
        lr = s->plateau_lr;
        break;
    case LSTM_SCHED_COSINE: {
        long span = s->total - s->warmup;
        double frac = span > 0 ? (double)(step - s->warmup) / (double)span : 1.0;
        frac = frac < 0.0 ? 0.0 : (frac > 1.0 ? 1.0 : frac);
        lr = s->min_lr + 0.5 * (s->lr0 - s->min_lr) * (1.0 + cos(M_PI * frac));
        break;
    }
    default:
        break;
    }
    if (s->warmup > 0 && step < s->warmup) lr *= (double)(step + 1) / (double)s->warmup;
    return lr;
}

void lstm_sched_epoch_end(lstm_sched *s, double valid_loss)
{
    if (s->kind != LSTM_SCHED_PLATEAU) return;
    if (valid_loss < s->best) {
        s->best = valid_loss;
        s->bad = 0;
        return;
    }
    if (++s->bad > s->patience) {
        s->plateau_lr /= s->factor;
        s->bad = 0;
    }
}

void lstm_early_init(lstm_early *e, int patience)
{
    memset(e, 0, sizeof *e);
    e->patience = patience;
    e->best = INFINITY;
}

int lstm_early_update(lstm_early *e, double valid_loss)
{
    e->improved = valid_loss < e->best;
    if (e->improved) {
        e->best = valid_loss;
        e->bad = 0;
        return 0;
    }
    e->bad++;
    return e->patience > 0 && e->bad >= e->patience;
}
