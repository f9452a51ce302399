/* cells.c: recurrent-layer and output-layer kernels on lstm_gemm (gemm.h), their plain-loop reference
 * twins (see cells.h for layouts and conventions); the vectorized exp / sigmoid / tanh and row
 * kernels they use are in vec.c. */
#include "cells.h"

#include "gemm.h"
#include "mathx.h"
#include "vec.h"
#include <math.h>
#include <string.h>

int lstm_cell_gates(int cell)
{
    switch (cell) {
    case LSTM_CELL_LSTM: return 4;
    case LSTM_CELL_GRU: return 3;
    case LSTM_CELL_RNN: return 1;
    case LSTM_CELL_CIFG: return 3;
    case LSTM_CELL_LNLSTM: return 4;
    }
    return 0;
}

int lstm_cell_has_c(int cell) { return cell == LSTM_CELL_LSTM || cell == LSTM_CELL_CIFG || cell == LSTM_CELL_LNLSTM; }

int lstm_cell_ln_floats(int cell, int H) { return cell == LSTM_CELL_LNLSTM ? 10 * H : 0; }

/* y = (x - mean x) / sqrt(var x + eps) over n values (y may equal x); returns 1 / sqrt(var x + eps). */
static float ln_norm(float *y, const float *x, int n)
{
    /* the moments in double: the normalisation divides by the spread, so float sums' rounding would be
     * magnified (a 4H-vector's sums cost little beside the GEMMs) */
    double s = 0.0, v = 0.0;
    for (int j = 0; j < n; j++) s += x[j];
    double mu = s / n;
    for (int j = 0; j < n; j++) v += (x[j] - mu) * (x[j] - mu);
    double rs = 1.0 / sqrt(v / n + (double)LSTM_LN_EPS);
    for (int j = 0; j < n; j++) y[j] = (float)((x[j] - mu) * rs);
    return (float)rs;
}

/* ---------------------------------------------------------------------------------------------------
 * Fused pointwise steps, shared by the training forward and the inference step. */

/* g (4H): W_ih x + W_hh h on entry, activated i,f,g,o on exit. c_prev may equal c. peep (3H: p_i, p_f,
 * p_o) or NULL: the peephole terms p_i*c_prev, p_f*c_prev and p_o*c join the i, f and o pre-activations. */
static void lstm_point(float *g, float *c, float *tc, float *h, const float *c_prev, const float *b_ih,
                       const float *b_hh, const float *peep, int H)
{
    for (int j = 0; j < 4 * H; j++) g[j] += b_ih[j] + b_hh[j];
    if (peep)
        for (int j = 0; j < H; j++) {
            g[j] += peep[j] * c_prev[j];
            g[H + j] += peep[H + j] * c_prev[j];
        }
    lstm_vsigmoid(g, g, (size_t)2 * H);
    lstm_vtanh(g + 2 * H, g + 2 * H, (size_t)H);
    for (int j = 0; j < H; j++) c[j] = g[H + j] * c_prev[j] + g[j] * g[2 * H + j];
    if (peep)
        for (int j = 0; j < H; j++) g[3 * H + j] += peep[2 * H + j] * c[j];
    lstm_vsigmoid(g + 3 * H, g + 3 * H, (size_t)H);
    lstm_vtanh(tc, c, (size_t)H);
    for (int j = 0; j < H; j++) h[j] = g[3 * H + j] * tc[j];
}

/* The LayerNorm LSTM's step. g (4H): W_ih x on entry, activated i,f,g,o on exit; hg (4H): W_hh h. Saves
 * xn = LN(W_ih x) and hn = LN(W_hh h) (4H each; xn may be g, hn may be hg), cn = LN(c') (H), rs (3) the
 * three 1/sqrt(var + eps), tc = tanh(g_c*cn + b_c) (cn may be tc, and both hn: inference keeps nothing).
 * c_prev may equal c. */
static void lnlstm_point(float *g, const float *hg, float *xn, float *hn, float *cn, float *rs, float *c, float *tc,
                         float *h, const float *c_prev, const float *b_ih, const float *b_hh, const float *ln, int H)
{
    int GH = 4 * H;
    const float *gx = ln, *gh = ln + GH, *gc = ln + 2 * GH, *bc = gc + H;
    rs[0] = ln_norm(xn, g, GH);
    rs[1] = ln_norm(hn, hg, GH);
    for (int j = 0; j < GH; j++) g[j] = gx[j] * xn[j] + b_ih[j] + gh[j] * hn[j] + b_hh[j];
    lstm_vsigmoid(g, g, (size_t)2 * H);
    lstm_vtanh(g + 2 * H, g + 2 * H, (size_t)H);
    lstm_vsigmoid(g + 3 * H, g + 3 * H, (size_t)H);
    for (int j = 0; j < H; j++) c[j] = g[H + j] * c_prev[j] + g[j] * g[2 * H + j];
    rs[2] = ln_norm(cn, c, H);
    for (int j = 0; j < H; j++) tc[j] = gc[j] * cn[j] + bc[j];
    lstm_vtanh(tc, tc, (size_t)H);
    for (int j = 0; j < H; j++) h[j] = g[3 * H + j] * tc[j];
}

/* g (3H): W_ih x + W_hh h on entry, activated f,g,o on exit (the input gate is 1 - f). c_prev may
 * equal c. */
static void cifg_point(float *g, float *c, float *tc, float *h, const float *c_prev, const float *b_ih,
                       const float *b_hh, int H)
{
    for (int j = 0; j < 3 * H; j++) g[j] += b_ih[j] + b_hh[j];
    lstm_vsigmoid(g, g, (size_t)H);
    lstm_vtanh(g + H, g + H, (size_t)H);
    lstm_vsigmoid(g + 2 * H, g + 2 * H, (size_t)H);
    for (int j = 0; j < H; j++) c[j] = g[j] * c_prev[j] + (1.0f - g[j]) * g[H + j];
    lstm_vtanh(tc, c, (size_t)H);
    for (int j = 0; j < H; j++) h[j] = g[2 * H + j] * tc[j];
}

/* g (3H): W_ih x on entry, activated r,z,n on exit; hg (3H): W_hh h; hn (H) receives W_hn h + b_hn (may
 * alias hg + 2H). h_prev may equal h. */
static void gru_point(float *g, float *hn, float *h, const float *hg, const float *h_prev, const float *b_ih,
                      const float *b_hh, int H)
{
    for (int j = 0; j < 2 * H; j++) g[j] += b_ih[j] + hg[j] + b_hh[j];
    lstm_vsigmoid(g, g, (size_t)2 * H);
    for (int j = 0; j < H; j++) {
        float v = hg[2 * H + j] + b_hh[2 * H + j];
        hn[j] = v;
        g[2 * H + j] += b_ih[2 * H + j] + g[j] * v;
    }
    lstm_vtanh(g + 2 * H, g + 2 * H, (size_t)H);
    for (int j = 0; j < H; j++) {
        float z = g[H + j];
        h[j] = (1.0f - z) * g[2 * H + j] + z * h_prev[j];
    }
}

/* g (H): W_ih x + W_hh h on entry, full pre-activation on exit. */
static void rnn_point(float *g, float *h, const float *b_ih, const float *b_hh, int H)
{
    for (int j = 0; j < H; j++) g[j] += b_ih[j] + b_hh[j];
    lstm_vtanh(h, g, (size_t)H);
}

void lstm_cell_step(int cell, float *h, float *c, float *xg, float *hg, const lstm_layer_w *w, int B, int H)
{
    int GH = lstm_cell_gates(cell) * H;
    const float *b_ih = w->b_ih, *b_hh = w->b_hh, *peep = w->peep;
    for (int b = 0; b < B; b++) {
        float *g = xg + (size_t)b * GH, *hgb = hg + (size_t)b * GH, *hb = h + (size_t)b * H;
        if (cell == LSTM_CELL_LNLSTM) {
            float rs[3], *cb = c + (size_t)b * H;
            lnlstm_point(g, hgb, g, hgb, hgb, rs, cb, hgb, hb, cb, b_ih, b_hh, w->ln, H);
            continue;
        }
        if (cell == LSTM_CELL_GRU) {
            gru_point(g, hgb + 2 * H, hb, hgb, hb, b_ih, b_hh, H);
            continue;
        }
        for (int j = 0; j < GH; j++) g[j] += hgb[j];
        if (cell == LSTM_CELL_LSTM) {
            float *cb = c + (size_t)b * H;
            lstm_point(g, cb, hgb /* tanh(c) scratch */, hb, cb, b_ih, b_hh, peep, H);
        } else if (cell == LSTM_CELL_CIFG) {
            float *cb = c + (size_t)b * H;
            cifg_point(g, cb, hgb /* tanh(c) scratch */, hb, cb, b_ih, b_hh, H);
        } else {
            rnn_point(g, hb, b_ih, b_hh, H);
        }
    }
}

/* ---------------------------------------------------------------------------------------------------
 * Fast layer kernels. */

size_t lstm_cell_wpack_floats(int cell, int H)
{
    int GH = lstm_cell_gates(cell) * H;
    size_t f = lstm_gemm_packed_floats(GH, H), b = lstm_gemm_packed_floats(H, GH);
    return f > b ? f : b;
}

/* h (B,K) times the recurrent weights into out (B,N): from the packed panels when there are some. */
static void rec_gemm(int tb, int B, int N, int K, const float *h, const float *w_hh, const float *packed, float beta,
                     float *out)
{
    if (!packed || lstm_gemm_packed(0, B, N, K, 1.0f, h, K, packed, beta, out, N))
        lstm_gemm(0, tb, B, N, K, 1.0f, h, K, w_hh, tb ? K : N, beta, out, N);
}

void lstm_cell_forward(int cell, lstm_layer_acts *a, const float *x, const lstm_layer_w *w, int B, int T, int In,
                       int H)
{
    int GH = lstm_cell_gates(cell) * H;
    size_t BH = (size_t)B * H, BG = (size_t)B * GH;
    lstm_gemm(0, 1, T * B, GH, In, 1.0f, x, In, w->w_ih, In, 0.0f, a->gates, GH);
    /* W_hh^T packed once for the T steps instead of at each (bit for bit the same products) */
    const float *wp = a->wpack && T > 1 ? a->wpack : NULL;
    if (wp) lstm_gemm_pack_b(1, GH, H, w->w_hh, H, a->wpack);
    for (int t = 0; t < T; t++) {
        float *gt = a->gates + t * BG;
        const float *hp = a->h + t * BH;
        float *hc = a->h + (t + 1) * BH;
        if (cell == LSTM_CELL_GRU) {
            rec_gemm(1, B, GH, H, hp, w->w_hh, wp, 0.0f, a->hg);
            for (int b = 0; b < B; b++)
                gru_point(gt + b * GH, a->hn + t * BH + b * H, hc + b * H, a->hg + b * GH, hp + b * H, w->b_ih,
                          w->b_hh, H);
            continue;
        }
        if (cell == LSTM_CELL_LNLSTM) {
            rec_gemm(1, B, GH, H, hp, w->w_hh, wp, 0.0f, a->hg);
            for (int b = 0; b < B; b++) {
                size_t r = (size_t)t * B + b;
                lnlstm_point(gt + b * GH, a->hg + b * GH, a->lnx + r * GH, a->lnh + r * GH, a->lnc + r * H,
                             a->lnr + r * 3, a->c + (t + 1) * BH + b * H, a->tc + r * H, hc + b * H,
                             a->c + t * BH + b * H, w->b_ih, w->b_hh, w->ln, H);
            }
            continue;
        }
        rec_gemm(1, B, GH, H, hp, w->w_hh, wp, 1.0f, gt);
        for (int b = 0; b < B; b++) {
            if (cell == LSTM_CELL_LSTM)
                lstm_point(gt + b * GH, a->c + (t + 1) * BH + b * H, a->tc + t * BH + b * H, hc + b * H,
                           a->c + t * BH + b * H, w->b_ih, w->b_hh, w->peep, H);
            else if (cell == LSTM_CELL_CIFG)
                cifg_point(gt + b * GH, a->c + (t + 1) * BH + b * H, a->tc + t * BH + b * H, hc + b * H,
                           a->c + t * BH + b * H, w->b_ih, w->b_hh, H);
            else
                rnn_point(gt + b * GH, hc + b * H, w->b_ih, w->b_hh, H);
        }
    }
}

static void add_colsum(float *acc /* (C) */, const float *m /* (R,C) */, int R, int C)
{
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) acc[j] += m[(size_t)r * C + j];
}

void lstm_cell_backward(int cell, lstm_layer_g *g, float *dx, float *dh0, float *dc0, lstm_layer_scratch *s,
                        const float *dh_seq, const lstm_layer_acts *a, const float *x, const lstm_layer_w *w,
                        int B, int T, int In, int H)
{
    int GH = lstm_cell_gates(cell) * H;
    size_t BH = (size_t)B * H, BG = (size_t)B * GH;
    int own_dhg = cell == LSTM_CELL_GRU || cell == LSTM_CELL_LNLSTM;
    float *dhg = own_dhg ? s->dhg : s->dxg;
    memset(s->dh, 0, BH * sizeof(float));
    if (lstm_cell_has_c(cell)) memset(s->dc, 0, BH * sizeof(float));
    const float *wp = s->wpack && T > 1 ? s->wpack : NULL; /* W_hh packed once for the steps */
    if (wp) lstm_gemm_pack_b(0, H, GH, w->w_hh, H, s->wpack);
    for (int t = T - 1; t >= 0; t--) {
        const float *gt = a->gates + t * BG, *dht = dh_seq + t * BH;
        float *dxt = s->dxg + t * BG, *dhgt = dhg + t * BG;
        for (int b = 0; b < B; b++) {
            const float *gb = gt + b * GH, *dhb = dht + b * H;
            float *d = dxt + b * GH, *dn = s->dh + b * H;
            if (cell == LSTM_CELL_LNLSTM) {
                size_t r = (size_t)t * B + b;
                const float *tc = a->tc + r * H, *cp = a->c + t * BH + b * H, *cn = a->lnc + r * H;
                const float *xn = a->lnx + r * GH, *hn = a->lnh + r * GH, *rs = a->lnr + r * 3;
                const float *gx = w->ln, *gh = w->ln + GH, *gc = w->ln + 2 * GH;
                float *dgx = g->ln, *dgh = g->ln + GH, *dgc = g->ln + 2 * GH, *dbc = dgc + H;
                float *dcn = s->dc + b * H, *e = dhgt + b * GH;
                /* through h' = o*tanh(g_c*LN(c') + b_c): the LayerNorm's input gradient needs the means of
                 * u = dL/dLN(c') and of u*LN(c') first */
                float u1 = 0.0f, u2 = 0.0f;
                for (int j = 0; j < H; j++) {
                    float o = gb[3 * H + j], tcv = tc[j];
                    float u = (dhb[j] + dn[j]) * o * (1.0f - tcv * tcv) * gc[j];
                    u1 += u;
                    u2 += u * cn[j];
                }
                u1 /= (float)H, u2 /= (float)H;
                for (int j = 0; j < H; j++) {
                    float i = gb[j], f = gb[H + j], gg = gb[2 * H + j], o = gb[3 * H + j], tcv = tc[j];
                    float dh = dhb[j] + dn[j];
                    float dy = dh * o * (1.0f - tcv * tcv);
                    dgc[j] += dy * cn[j];
                    dbc[j] += dy;
                    float dc = dcn[j] + rs[2] * (dy * gc[j] - u1 - cn[j] * u2);
                    d[j] = dc * gg * i * (1.0f - i);
                    d[H + j] = dc * cp[j] * f * (1.0f - f);
                    d[2 * H + j] = dc * i * (1.0f - gg * gg);
                    d[3 * H + j] = dh * tcv * o * (1.0f - o);
                    dcn[j] = dc * f;
                }
                /* d = dL/dpre: the biases and gains, then back through the two projections' LayerNorms */
                float x1 = 0.0f, x2 = 0.0f, h1 = 0.0f, h2 = 0.0f;
                for (int j = 0; j < GH; j++) {
                    float dj = d[j], ux = dj * gx[j], uh = dj * gh[j];
                    g->b_ih[j] += dj;
                    g->b_hh[j] += dj;
                    dgx[j] += dj * xn[j];
                    dgh[j] += dj * hn[j];
                    x1 += ux, x2 += ux * xn[j], h1 += uh, h2 += uh * hn[j];
                }
                x1 /= (float)GH, x2 /= (float)GH, h1 /= (float)GH, h2 /= (float)GH;
                for (int j = 0; j < GH; j++) {
                    float dj = d[j];
                    e[j] = rs[1] * (dj * gh[j] - h1 - hn[j] * h2);
                    d[j] = rs[0] * (dj * gx[j] - x1 - xn[j] * x2);
                }
            } else if (cell == LSTM_CELL_LSTM && w->peep) {
                const float *tc = a->tc + t * BH + b * H, *cp = a->c + t * BH + b * H;
                const float *cc = a->c + (t + 1) * BH + b * H, *p = w->peep;
                float *dcn = s->dc + b * H;
                for (int j = 0; j < H; j++) {
                    float i = gb[j], f = gb[H + j], gg = gb[2 * H + j], o = gb[3 * H + j], tcv = tc[j];
                    float dh = dhb[j] + dn[j];
                    float dop = dh * tcv * o * (1.0f - o);
                    float dc = dcn[j] + dh * o * (1.0f - tcv * tcv) + dop * p[2 * H + j];
                    float dip = dc * gg * i * (1.0f - i), dfp = dc * cp[j] * f * (1.0f - f);
                    d[j] = dip;
                    d[H + j] = dfp;
                    d[2 * H + j] = dc * i * (1.0f - gg * gg);
                    d[3 * H + j] = dop;
                    dcn[j] = dc * f + dip * p[j] + dfp * p[H + j];
                    g->peep[j] += dip * cp[j];
                    g->peep[H + j] += dfp * cp[j];
                    g->peep[2 * H + j] += dop * cc[j];
                }
            } else if (cell == LSTM_CELL_LSTM) {
                const float *tc = a->tc + t * BH + b * H, *cp = a->c + t * BH + b * H;
                float *dcn = s->dc + b * H;
                for (int j = 0; j < H; j++) {
                    float i = gb[j], f = gb[H + j], gg = gb[2 * H + j], o = gb[3 * H + j], tcv = tc[j];
                    float dh = dhb[j] + dn[j];
                    float dc = dcn[j] + dh * o * (1.0f - tcv * tcv);
                    d[j] = dc * gg * i * (1.0f - i);
                    d[H + j] = dc * cp[j] * f * (1.0f - f);
                    d[2 * H + j] = dc * i * (1.0f - gg * gg);
                    d[3 * H + j] = dh * tcv * o * (1.0f - o);
                    dcn[j] = dc * f;
                }
            } else if (cell == LSTM_CELL_CIFG) {
                const float *tc = a->tc + t * BH + b * H, *cp = a->c + t * BH + b * H;
                float *dcn = s->dc + b * H;
                for (int j = 0; j < H; j++) {
                    float f = gb[j], gg = gb[H + j], o = gb[2 * H + j], tcv = tc[j];
                    float dh = dhb[j] + dn[j];
                    float dc = dcn[j] + dh * o * (1.0f - tcv * tcv);
                    d[j] = dc * (cp[j] - gg) * f * (1.0f - f);
                    d[H + j] = dc * (1.0f - f) * (1.0f - gg * gg);
                    d[2 * H + j] = dh * tcv * o * (1.0f - o);
                    dcn[j] = dc * f;
                }
            } else if (cell == LSTM_CELL_GRU) {
                const float *hp = a->h + t * BH + b * H, *hn = a->hn + t * BH + b * H;
                float *e = dhgt + b * GH;
                for (int j = 0; j < H; j++) {
                    float r = gb[j], z = gb[H + j], n = gb[2 * H + j];
                    float dh = dhb[j] + dn[j];
                    float dan = dh * (1.0f - z) * (1.0f - n * n);
                    float dar = dan * hn[j] * r * (1.0f - r);
                    float daz = dh * (hp[j] - n) * z * (1.0f - z);
                    d[j] = e[j] = dar;
                    d[H + j] = e[H + j] = daz;
                    d[2 * H + j] = dan;
                    e[2 * H + j] = dan * r;
                    dn[j] = dh * z;
                }
            } else {
                const float *hc = a->h + (t + 1) * BH + b * H;
                for (int j = 0; j < H; j++) d[j] = (dhb[j] + dn[j]) * (1.0f - hc[j] * hc[j]);
            }
        }
        if (t > 0 || dh0) rec_gemm(0, B, H, GH, dhgt, w->w_hh, wp, cell == LSTM_CELL_GRU ? 1.0f : 0.0f, s->dh);
    }
    if (dh0)
        for (size_t k = 0; k < BH; k++) dh0[k] += s->dh[k];
    if (dc0 && lstm_cell_has_c(cell))
        for (size_t k = 0; k < BH; k++) dc0[k] += s->dc[k];
    int N = T * B;
    lstm_gemm(1, 0, GH, In, N, 1.0f, s->dxg, GH, x, In, 1.0f, g->w_ih, In);
    lstm_gemm(1, 0, GH, H, N, 1.0f, dhg, GH, a->h, H, 1.0f, g->w_hh, H);
    if (cell != LSTM_CELL_LNLSTM) { /* (the LayerNorm LSTM's biases took dL/dpre in the loop) */
        add_colsum(g->b_ih, s->dxg, N, GH);
        add_colsum(g->b_hh, dhg, N, GH);
    }
    lstm_gemm(0, 0, N, In, GH, 1.0f, s->dxg, GH, w->w_ih, In, 0.0f, dx, In);
}

void lstm_out_forward(float *logits, float *lse, double *nll_sum, long *count, const float *x, const float *w,
                      const float *b, const uint32_t *targets, int N, int H, int V)
{
    lstm_gemm(0, 1, N, V, H, 1.0f, x, H, w, H, 0.0f, logits, V);
    double nll = 0.0;
    long cnt = 0;
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * V;
        float m = lstm_row_bias_max(row, b, V);
        if (!targets) continue;
        uint32_t tg = targets[n];
        if (tg == 0) {
            lse[n] = 0.0f;
            continue;
        }
        float l = m + logf(lstm_row_sum_exp(row, m, V));
        lse[n] = l;
        nll += (double)l - (double)row[tg];
        cnt++;
    }
    *nll_sum = nll;
    *count = cnt;
}

void lstm_out_backward(float *dx, float *dw, float *db, float *logits, const float *lse, const float *x,
                       const float *w, const uint32_t *targets, float scale, int N, int H, int V)
{
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * V;
        uint32_t tg = targets[n];
        if (tg == 0) {
            memset(row, 0, (size_t)V * sizeof(float));
            continue;
        }
        lstm_row_softmax_grad(row, db, lse[n], scale, V);
        row[tg] -= scale;
        db[tg] -= scale;
    }
    lstm_gemm(1, 0, V, H, N, 1.0f, logits, V, x, H, 1.0f, dw, H);
    lstm_gemm(0, 0, N, H, V, 1.0f, logits, V, w, H, 0.0f, dx, H);
}

/* ---------------------------------------------------------------------------------------------------
 * Reference twins: one (t, b, j) at a time, straight from the equations, libm functions, double sums. */

void lstm_gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *Bm, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = trans_b ? Bm[(size_t)j * ldb + k] : Bm[(size_t)k * ldb + j];
                s += (double)a * b;
            }
            float *c = C + (size_t)i * ldc + j;
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}

static float dot_ref(const float *w, const float *v, int n)
{
    double s = 0.0;
    for (int k = 0; k < n; k++) s += (double)w[k] * v[k];
    return (float)s;
}

static float sigm_ref(float x) { return 1.0f / (1.0f + expf(-x)); }

/* v = LN(v) in place, sums in double; returns 1 / sqrt(var + eps). */
static float ln_ref(float *v, int n)
{
    double mu = 0.0, var = 0.0;
    for (int j = 0; j < n; j++) mu += v[j];
    mu /= n;
    for (int j = 0; j < n; j++) var += (v[j] - mu) * (v[j] - mu);
    double rs = 1.0 / sqrt(var / n + (double)LSTM_LN_EPS);
    for (int j = 0; j < n; j++) v[j] = (float)((v[j] - mu) * rs);
    return (float)rs;
}

/* dx (n) = the input gradient of y = LN(x) given dy = du * gain (n), y and rs; sums in double (dx may be du). */
static void ln_back_ref(float *dx, const float *du, const float *gain, const float *y, float rs, int n)
{
    double m1 = 0.0, m2 = 0.0;
    for (int j = 0; j < n; j++) {
        m1 += (double)du[j] * gain[j];
        m2 += (double)du[j] * gain[j] * y[j];
    }
    m1 /= n, m2 /= n;
    for (int j = 0; j < n; j++) dx[j] = (float)(rs * ((double)du[j] * gain[j] - m1 - y[j] * m2));
}

/* The LayerNorm LSTM's row (t, b) = r, straight from Ba et al.'s equations. */
static void lnlstm_forward_ref_row(lstm_layer_acts *a, const float *xr, const lstm_layer_w *w, size_t r, int B,
                                   int In, int H)
{
    int GH = 4 * H;
    const float *hp = a->h + r * H, *gx = w->ln, *gh = w->ln + GH, *gc = w->ln + 2 * GH, *bc = gc + H;
    float *xn = a->lnx + r * GH, *hn = a->lnh + r * GH, *rs = a->lnr + r * 3, *g = a->gates + r * GH;
    for (int k = 0; k < GH; k++) {
        xn[k] = dot_ref(w->w_ih + (size_t)k * In, xr, In);
        hn[k] = dot_ref(w->w_hh + (size_t)k * H, hp, H);
    }
    rs[0] = ln_ref(xn, GH);
    rs[1] = ln_ref(hn, GH);
#define PRE(k) (gx[k] * xn[k] + w->b_ih[k] + gh[k] * hn[k] + w->b_hh[k])
    float *cn = a->lnc + r * H, *c = a->c + (r + B) * H;
    for (int j = 0; j < H; j++) {
        float i = sigm_ref(PRE(j)), f = sigm_ref(PRE(H + j)), gg = tanhf(PRE(2 * H + j)), o = sigm_ref(PRE(3 * H + j));
        g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;
        c[j] = cn[j] = f * a->c[r * H + j] + i * gg;
    }
#undef PRE
    rs[2] = ln_ref(cn, H);
    for (int j = 0; j < H; j++) {
        a->tc[r * H + j] = tanhf(gc[j] * cn[j] + bc[j]);
        a->h[(r + B) * H + j] = g[3 * H + j] * a->tc[r * H + j];
    }
}

/* Its backward: d (4H) = dL/d(W_ih x), e (4H) = dL/d(W_hh h) for row r; dc (H) carried in, out; dh (H) =
 * dL/dh' on entry. The gains, b_c and both biases take their gradients here. e holds dL/dtanh-input and
 * dL/dc' from LN(c') on the way, d dL/dpre. */
static void lnlstm_backward_ref_row(lstm_layer_g *g, float *d, float *e, float *dc, const float *dh,
                                    const lstm_layer_acts *a, const lstm_layer_w *w, size_t r, int H)
{
    int GH = 4 * H;
    const float *gr = a->gates + r * GH, *cn = a->lnc + r * H, *tc = a->tc + r * H, *cp = a->c + r * H;
    const float *xn = a->lnx + r * GH, *hn = a->lnh + r * GH, *rs = a->lnr + r * 3, *gc = w->ln + 2 * GH;
    float *dy = e, *dcl = e + H, *dpre = d;
    for (int j = 0; j < H; j++) {
        float o = gr[3 * H + j];
        dy[j] = dh[j] * o * (1.0f - tc[j] * tc[j]);
        g->ln[2 * GH + j] += dy[j] * cn[j];
        g->ln[2 * GH + H + j] += dy[j];
    }
    ln_back_ref(dcl, dy, gc, cn, rs[2], H);
    for (int j = 0; j < H; j++) {
        float i = gr[j], f = gr[H + j], gg = gr[2 * H + j], o = gr[3 * H + j];
        float c = dc[j] + dcl[j];
        dpre[j] = c * gg * i * (1.0f - i);
        dpre[H + j] = c * cp[j] * f * (1.0f - f);
        dpre[2 * H + j] = c * i * (1.0f - gg * gg);
        dpre[3 * H + j] = dh[j] * tc[j] * o * (1.0f - o);
        dc[j] = c * f;
    }
    for (int k = 0; k < GH; k++) {
        g->b_ih[k] += dpre[k];
        g->b_hh[k] += dpre[k];
        g->ln[k] += dpre[k] * xn[k];
        g->ln[GH + k] += dpre[k] * hn[k];
    }
    ln_back_ref(e, dpre, w->ln + GH, hn, rs[1], GH);
    ln_back_ref(d, dpre, w->ln, xn, rs[0], GH); /* in place, last */
}

void lstm_cell_forward_ref(int cell, lstm_layer_acts *a, const float *x, const lstm_layer_w *w, int B, int T,
                           int In, int H)
{
    int GH = lstm_cell_gates(cell) * H;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)t * B + b; /* row (t, b) */
            const float *xr = x + r * In, *hp = a->h + r * H;
            float *g = a->gates + r * GH, *h = a->h + (r + B) * H;
            if (cell == LSTM_CELL_LNLSTM) {
                lnlstm_forward_ref_row(a, xr, w, r, B, In, H);
                continue;
            }
            /* pre(k) = input part + hidden part of gate row k, biases included */
#define PX(k) (dot_ref(w->w_ih + (size_t)(k) * In, xr, In) + w->b_ih[k])
#define PH(k) (dot_ref(w->w_hh + (size_t)(k) * H, hp, H) + w->b_hh[k])
            for (int j = 0; j < H; j++) {
                if (cell == LSTM_CELL_LSTM) {
                    const float *p = w->peep;
                    float cp = a->c[r * H + j];
                    float i = sigm_ref(PX(j) + PH(j) + (p ? p[j] * cp : 0.0f));
                    float f = sigm_ref(PX(H + j) + PH(H + j) + (p ? p[H + j] * cp : 0.0f));
                    float gg = tanhf(PX(2 * H + j) + PH(2 * H + j));
                    float c = f * cp + i * gg;
                    float o = sigm_ref(PX(3 * H + j) + PH(3 * H + j) + (p ? p[2 * H + j] * c : 0.0f));
                    g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;
                    a->c[(r + B) * H + j] = c;
                    a->tc[r * H + j] = tanhf(c);
                    h[j] = o * tanhf(c);
                } else if (cell == LSTM_CELL_CIFG) {
                    float f = sigm_ref(PX(j) + PH(j)), gg = tanhf(PX(H + j) + PH(H + j));
                    float o = sigm_ref(PX(2 * H + j) + PH(2 * H + j));
                    float c = f * a->c[r * H + j] + (1.0f - f) * gg;
                    g[j] = f, g[H + j] = gg, g[2 * H + j] = o;
                    a->c[(r + B) * H + j] = c;
                    a->tc[r * H + j] = tanhf(c);
                    h[j] = o * tanhf(c);
                } else if (cell == LSTM_CELL_GRU) {
                    float rr = sigm_ref(PX(j) + PH(j)), z = sigm_ref(PX(H + j) + PH(H + j));
                    float hn = PH(2 * H + j);
                    float n = tanhf(PX(2 * H + j) + rr * hn);
                    g[j] = rr, g[H + j] = z, g[2 * H + j] = n;
                    a->hn[r * H + j] = hn;
                    h[j] = (1.0f - z) * n + z * hp[j];
                } else {
                    g[j] = PX(j) + PH(j);
                    h[j] = tanhf(g[j]);
                }
            }
#undef PX
#undef PH
        }
}

void lstm_cell_backward_ref(int cell, lstm_layer_g *g, float *dx, float *dh0, float *dc0, lstm_layer_scratch *s,
                            const float *dh_seq, const lstm_layer_acts *a, const float *x, const lstm_layer_w *w,
                            int B, int T, int In, int H)
{
    int GH = lstm_cell_gates(cell) * H;
    float *dhg = cell == LSTM_CELL_GRU || cell == LSTM_CELL_LNLSTM ? s->dhg : s->dxg;
    memset(s->dh, 0, (size_t)B * H * sizeof(float));
    if (lstm_cell_has_c(cell)) memset(s->dc, 0, (size_t)B * H * sizeof(float));
    for (int t = T - 1; t >= 0; t--)
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)t * B + b;
            const float *gr = a->gates + r * GH, *hp = a->h + r * H, *xr = x + r * In;
            float *d = s->dxg + r * GH, *e = dhg + r * GH, *dn = s->dh + (size_t)b * H;
            if (cell == LSTM_CELL_LNLSTM) {
                for (int j = 0; j < H; j++) dn[j] += dh_seq[r * H + j];
                lnlstm_backward_ref_row(g, d, e, s->dc + (size_t)b * H, dn, a, w, r, H);
                for (int j = 0; j < H; j++) dn[j] = 0.0f;
            }
            for (int j = 0; j < H && cell != LSTM_CELL_LNLSTM; j++) {
                float dh = dh_seq[r * H + j] + dn[j];
                if (cell == LSTM_CELL_LSTM) {
                    const float *p = w->peep;
                    float i = gr[j], f = gr[H + j], gg = gr[2 * H + j], o = gr[3 * H + j];
                    float c = a->c[(r + B) * H + j], tc = tanhf(c), cp = a->c[r * H + j];
                    float dop = dh * tc * o * (1.0f - o);
                    float dc = s->dc[(size_t)b * H + j] + dh * o * (1.0f - tc * tc) + (p ? dop * p[2 * H + j] : 0.0f);
                    d[j] = dc * gg * i * (1.0f - i);
                    d[H + j] = dc * cp * f * (1.0f - f);
                    d[2 * H + j] = dc * i * (1.0f - gg * gg);
                    d[3 * H + j] = dop;
                    s->dc[(size_t)b * H + j] = dc * f + (p ? d[j] * p[j] + d[H + j] * p[H + j] : 0.0f);
                    if (p) {
                        g->peep[j] += d[j] * cp;
                        g->peep[H + j] += d[H + j] * cp;
                        g->peep[2 * H + j] += dop * c;
                    }
                    dn[j] = 0.0f;
                } else if (cell == LSTM_CELL_CIFG) {
                    float f = gr[j], gg = gr[H + j], o = gr[2 * H + j];
                    float c = a->c[(r + B) * H + j], tc = tanhf(c);
                    float dc = s->dc[(size_t)b * H + j] + dh * o * (1.0f - tc * tc);
                    d[j] = dc * (a->c[r * H + j] - gg) * f * (1.0f - f);
                    d[H + j] = dc * (1.0f - f) * (1.0f - gg * gg);
                    d[2 * H + j] = dh * tc * o * (1.0f - o);
                    s->dc[(size_t)b * H + j] = dc * f;
                    dn[j] = 0.0f;
                } else if (cell == LSTM_CELL_GRU) {
                    float rr = gr[j], z = gr[H + j], n = gr[2 * H + j];
                    float dan = dh * (1.0f - z) * (1.0f - n * n);
                    d[j] = e[j] = dan * a->hn[r * H + j] * rr * (1.0f - rr);
                    d[H + j] = e[H + j] = dh * (hp[j] - n) * z * (1.0f - z);
                    d[2 * H + j] = dan;
                    e[2 * H + j] = dan * rr;
                    dn[j] = dh * z; /* the direct path h' = ... + z*h */
                } else {
                    float hc = a->h[(r + B) * H + j];
                    d[j] = dh * (1.0f - hc * hc);
                    dn[j] = 0.0f;
                }
            }
            /* dh_{t-1} through W_hh, then the weight and input gradients of this (t, b) */
            for (int k = 0; k < H; k++) {
                double sum = 0.0;
                for (int j = 0; j < GH; j++) sum += (double)e[j] * w->w_hh[(size_t)j * H + k];
                dn[k] += (float)sum;
            }
            for (int j = 0; j < GH; j++) {
                for (int k = 0; k < In; k++) g->w_ih[(size_t)j * In + k] += d[j] * xr[k];
                for (int k = 0; k < H; k++) g->w_hh[(size_t)j * H + k] += e[j] * hp[k];
                if (cell != LSTM_CELL_LNLSTM) { /* (its biases took dL/dpre above) */
                    g->b_ih[j] += d[j];
                    g->b_hh[j] += e[j];
                }
            }
            for (int k = 0; k < In; k++) {
                double sum = 0.0;
                for (int j = 0; j < GH; j++) sum += (double)d[j] * w->w_ih[(size_t)j * In + k];
                dx[r * In + k] = (float)sum;
            }
        }
    for (int k = 0; k < B * H; k++) {
        if (dh0) dh0[k] += s->dh[k];
        if (dc0 && lstm_cell_has_c(cell)) dc0[k] += s->dc[k];
    }
}

void lstm_out_forward_ref(float *logits, float *lse, double *nll_sum, long *count, const float *x, const float *w,
                          const float *b, const uint32_t *targets, int N, int H, int V)
{
    double nll = 0.0;
    long cnt = 0;
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * V;
        for (int v = 0; v < V; v++) row[v] = dot_ref(w + (size_t)v * H, x + (size_t)n * H, H) + b[v];
        if (!targets) continue;
        if (targets[n] == 0) {
            lse[n] = 0.0f;
            continue;
        }
        double l = lstm_logsumexp_ref(row, (size_t)V);
        lse[n] = (float)l;
        nll += l - row[targets[n]];
        cnt++;
    }
    *nll_sum = nll;
    *count = cnt;
}

void lstm_out_backward_ref(float *dx, float *dw, float *db, float *logits, const float *lse, const float *x,
                           const float *w, const uint32_t *targets, float scale, int N, int H, int V)
{
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * V;
        for (int v = 0; v < V; v++)
            row[v] = targets[n] == 0 ? 0.0f : scale * (expf(row[v] - lse[n]) - (v == (int)targets[n]));
        for (int v = 0; v < V; v++) {
            db[v] += row[v];
            for (int k = 0; k < H; k++) dw[(size_t)v * H + k] += row[v] * x[(size_t)n * H + k];
        }
    }
    lstm_gemm_ref(0, 0, N, H, V, 1.0f, logits, V, w, H, 0.0f, dx, H);
}
