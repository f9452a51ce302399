/* adaptive.c: the adaptive softmax (see adaptive.h). */
#include "adaptive.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cells.h"
#include "gemm.h"
#include "mathx.h"
#include "vec.h"

int lstm_asm_shape_init(lstm_asm_shape *s, int V, int H, const int *cutoffs, int n, float div)
{
    memset(s, 0, sizeof *s);
    if (n < 1 || n > LSTM_MAX_CLUSTERS || !(div >= 1.0f) || H < 1) return -1;
    s->V = V, s->H = H, s->n = n;
    double d = 1.0;
    for (int i = 0; i < n; i++) {
        if (cutoffs[i] < 1 || cutoffs[i] >= V || (i > 0 && cutoffs[i] <= cutoffs[i - 1])) return -1;
        s->cut[i] = cutoffs[i];
        d *= div;
        /* PyTorch: in_features // (div_value ** (i + 1)) */
        double w = floor((double)H / d);
        if (w < 1.0) return -1;
        s->dim[i] = (int)w;
    }
    s->cut[n] = V;
    s->head = s->cut[0] + n;
    for (int i = 0; i < n; i++)
        if (s->cut[i + 1] - s->cut[i] > s->maxsz) s->maxsz = s->cut[i + 1] - s->cut[i];
    return 0;
}

int lstm_asm_parse_cutoffs(const char *text, int *cut, int *n)
{
    *n = 0;
    const char *p = text;
    for (;;) {
        if (*n == LSTM_MAX_CLUSTERS || *p < '0' || *p > '9') return -1;
        long v = 0;
        while (*p >= '0' && *p <= '9' && v <= 1L << 30) v = v * 10 + (*p++ - '0');
        if (v > 1L << 30) return -1;
        cut[(*n)++] = (int)v;
        if (*p == 0) return 0;
        if (*p++ != ',') return -1;
    }
}

void lstm_asm_carve(lstm_asm_acts *a, const lstm_asm_shape *s, float *base, size_t *cur, size_t N,
                    lstm_asm_take_fn take)
{
    a->head = take(base, cur, N * (size_t)s->head);
    a->hlse = take(base, cur, N);
    a->xg = take(base, cur, N * (size_t)s->H);
    a->proj = take(base, cur, N * (size_t)s->dim[0]); /* dim[0] is the widest projection */
    a->tail = take(base, cur, N * (size_t)s->maxsz);
    a->tlse = take(base, cur, N);
    a->dproj = take(base, cur, N * (size_t)s->dim[0]);
    a->dxg = take(base, cur, N * (size_t)s->H);
    a->rows = (int32_t *)take(base, cur, N);
}

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);

/* log sum exp of row (n) after row += b (b NULL: no bias). */
static float row_lse(float *row, const float *b, int n, int ref)
{
    if (ref) {
        for (int j = 0; b && j < n; j++) row[j] += b[j];
        return (float)lstm_logsumexp_ref(row, (size_t)n);
    }
    float m = lstm_row_bias_max(row, b, n);
    return m + logf(lstm_row_sum_exp(row, m, n));
}

/* row = scale * softmax(row) (lse its log-normaliser), db += row unless db is NULL. */
static void row_grad(float *row, float *db, float lse, float scale, int n, int ref)
{
    if (!ref) {
        lstm_row_softmax_grad(row, db, lse, scale, n);
        return;
    }
    for (int j = 0; j < n; j++) {
        row[j] = (float)(scale * exp((double)row[j] - lse));
        if (db) db[j] += row[j];
    }
}

/* Cluster of target y: -1 for the shortlist (and PAD), else i. */
static int cluster_of(const lstm_asm_shape *s, uint32_t y)
{
    if (y < (uint32_t)s->cut[0]) return -1;
    int i = 0;
    while ((uint32_t)s->cut[i + 1] <= y) i++;
    return i;
}

void lstm_asm_forward(const lstm_asm_shape *s, const lstm_asm_w *w, lstm_asm_acts *a, const float *x,
                      const uint32_t *targets, int N, double *nll_sum, long *count, int ref)
{
    gemm_fn gemm = ref ? lstm_gemm_ref : lstm_gemm;
    int H = s->H, Hd = s->head, C0 = s->cut[0];
    gemm(0, 1, N, Hd, H, 1.0f, x, H, w->head_w, H, 0.0f, a->head, Hd);
    double nll = 0.0;
    long cnt = 0;
    memset(a->nrow, 0, sizeof a->nrow);
    for (int n = 0; n < N; n++) {
        float *row = a->head + (size_t)n * Hd;
        if (!targets || targets[n] == 0) {
            for (int j = 0; j < Hd; j++) row[j] += w->head_b[j];
            a->hlse[n] = 0.0f;
            continue;
        }
        float l = row_lse(row, w->head_b, Hd, ref);
        a->hlse[n] = l;
        int c = cluster_of(s, targets[n]);
        nll += (double)l - (double)row[c < 0 ? (int)targets[n] : C0 + c];
        cnt++;
        if (c >= 0) a->nrow[c]++;
    }
    if (!targets) {
        *nll_sum = 0.0, *count = 0;
        return;
    }
    /* group the rows by cluster (in row order within a cluster) */
    int fill[LSTM_MAX_CLUSTERS];
    size_t poff = 0, toff = 0;
    for (int i = 0, o = 0; i < s->n; i++) {
        a->off[i] = fill[i] = o;
        a->poff[i] = poff, a->toff[i] = toff;
        o += a->nrow[i];
        poff += (size_t)a->nrow[i] * s->dim[i];
        toff += (size_t)a->nrow[i] * (size_t)(s->cut[i + 1] - s->cut[i]);
    }
    for (int n = 0; n < N; n++) {
        if (targets[n] == 0) continue;
        int c = cluster_of(s, targets[n]);
        if (c < 0) continue;
        int k = fill[c]++;
        a->rows[k] = n;
        memcpy(a->xg + (size_t)k * H, x + (size_t)n * H, (size_t)H * sizeof(float));
    }
    for (int i = 0; i < s->n; i++) {
        int ni = a->nrow[i], d = s->dim[i], sz = s->cut[i + 1] - s->cut[i];
        if (ni == 0) continue;
        float *xg = a->xg + (size_t)a->off[i] * H, *p = a->proj + a->poff[i], *tl = a->tail + a->toff[i];
        gemm(0, 1, ni, d, H, 1.0f, xg, H, w->proj[i], H, 0.0f, p, d);
        gemm(0, 1, ni, sz, d, 1.0f, p, d, w->out[i], d, 0.0f, tl, sz);
        for (int k = 0; k < ni; k++) {
            float *row = tl + (size_t)k * sz;
            float l = row_lse(row, NULL, sz, ref);
            a->tlse[a->off[i] + k] = l;
            nll += (double)l - (double)row[targets[a->rows[a->off[i] + k]] - (uint32_t)s->cut[i]];
        }
    }
    *nll_sum = nll;
    *count = cnt;
}

void lstm_asm_backward(const lstm_asm_shape *s, const lstm_asm_w *w, const lstm_asm_g *g, lstm_asm_acts *a,
                       float *dx, const float *x, const uint32_t *targets, float scale, int N, int ref)
{
    gemm_fn gemm = ref ? lstm_gemm_ref : lstm_gemm;
    int H = s->H, Hd = s->head, C0 = s->cut[0];
    for (int n = 0; n < N; n++) {
        float *row = a->head + (size_t)n * Hd;
        uint32_t y = targets[n];
        if (y == 0) {
            memset(row, 0, (size_t)Hd * sizeof(float));
            continue;
        }
        row_grad(row, g->head_b, a->hlse[n], scale, Hd, ref);
        int c = cluster_of(s, y), slot = c < 0 ? (int)y : C0 + c;
        row[slot] -= scale;
        g->head_b[slot] -= scale;
    }
    gemm(1, 0, Hd, H, N, 1.0f, a->head, Hd, x, H, 1.0f, g->head_w, H);
    gemm(0, 0, N, H, Hd, 1.0f, a->head, Hd, w->head_w, H, 0.0f, dx, H);
    for (int i = 0; i < s->n; i++) {
        int ni = a->nrow[i], d = s->dim[i], sz = s->cut[i + 1] - s->cut[i];
        if (ni == 0) continue;
        float *xg = a->xg + (size_t)a->off[i] * H, *p = a->proj + a->poff[i], *tl = a->tail + a->toff[i];
        float *dp = a->dproj + a->poff[i], *dxg = a->dxg + (size_t)a->off[i] * H;
        for (int k = 0; k < ni; k++) {
            float *row = tl + (size_t)k * sz;
            row_grad(row, NULL, a->tlse[a->off[i] + k], scale, sz, ref);
            row[targets[a->rows[a->off[i] + k]] - (uint32_t)s->cut[i]] -= scale;
        }
        gemm(1, 0, sz, d, ni, 1.0f, tl, sz, p, d, 1.0f, g->out[i], d);
        gemm(0, 0, ni, d, sz, 1.0f, tl, sz, w->out[i], d, 0.0f, dp, d);
        gemm(1, 0, d, H, ni, 1.0f, dp, d, xg, H, 1.0f, g->proj[i], H);
        gemm(0, 0, ni, H, d, 1.0f, dp, d, w->proj[i], H, 0.0f, dxg, H);
        for (int k = 0; k < ni; k++) {
            float *dst = dx + (size_t)a->rows[a->off[i] + k] * H;
            const float *src = dxg + (size_t)k * H;
            for (int j = 0; j < H; j++) dst[j] += src[j];
        }
    }
}

size_t lstm_asm_row_scratch(const lstm_asm_shape *s) { return (size_t)s->head + (size_t)s->dim[0]; }

void lstm_asm_head(const lstm_asm_shape *s, const lstm_asm_w *w, float *head, const float *x)
{
    int H = s->H, Hd = s->head;
    memcpy(head, w->head_b, (size_t)Hd * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Hd, H, 1.0f, w->head_w, H, x, 1, 1.0f, head, 1);
    float l = (float)lstm_logsumexp(head, (size_t)Hd);
    for (int j = 0; j < Hd; j++) head[j] -= l;
}

void lstm_asm_cluster(const lstm_asm_shape *s, const lstm_asm_w *w, int i, float *out, const float *x,
                      const float *head, float *scratch)
{
    int H = s->H, d = s->dim[i], sz = s->cut[i + 1] - s->cut[i];
    cblas_sgemv(CblasRowMajor, CblasNoTrans, d, H, 1.0f, w->proj[i], H, x, 1, 0.0f, scratch, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, sz, d, 1.0f, w->out[i], d, scratch, 1, 0.0f, out, 1);
    float base = head[s->cut[0] + i] - (float)lstm_logsumexp(out, (size_t)sz);
    for (int j = 0; j < sz; j++) out[j] += base;
}

void lstm_asm_logprobs(const lstm_asm_shape *s, const lstm_asm_w *w, float *out, const float *x, float *scratch)
{
    float *head = scratch;
    lstm_asm_head(s, w, head, x);
    memcpy(out, head, (size_t)s->cut[0] * sizeof(float));
    for (int i = 0; i < s->n; i++) lstm_asm_cluster(s, w, i, out + s->cut[i], x, head, scratch + s->head);
}
