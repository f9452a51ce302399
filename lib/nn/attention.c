/* attention.c: the short attention span over the top layer's recent outputs (see attention.h): window
 * forward and backward, fast (lstm_gemm) and reference (plain loops, double sums), and the one-step
 * inference path. */
#include "attention.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cells.h"
#include "gemm.h"

/* ext (K+T,B,H): memory slot j of lane b at row j*B + b, then the window's outputs. */
static void fill_ext(lstm_att_acts *a, const float *mem, const float *mlen, const float *h, int B, int T, int K, int H)
{
    for (int j = 0; j < K; j++)
        for (int b = 0; b < B; b++)
            memcpy(a->ext + ((size_t)j * B + b) * H, mem + ((size_t)b * K + j) * H, (size_t)H * sizeof(float));
    memcpy(a->ext + (size_t)K * B * H, h, (size_t)T * B * H * sizeof(float));
    for (int b = 0; b < B; b++) a->n0[b] = mlen[b];
}

/* Slot j at step t of lane b holds ext row t + j: filled when it is a step of this window or one of
 * the n0 newest memory slots. */
static int filled(const lstm_att_acts *a, int b, int t, int j, int K) { return t + j >= K - (int)a->n0[b]; }

/* The memory and the filled count at the window's end, and h* of its last step. */
static void carry_out(const lstm_att_acts *a, float *mem, float *mlen, float *hout, int B, int T, int K, int H)
{
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < K; j++)
            memcpy(mem + ((size_t)b * K + j) * H, a->ext + ((size_t)(T + j) * B + b) * H, (size_t)H * sizeof(float));
        mlen[b] = a->n0[b] + T < K ? a->n0[b] + T : (float)K;
        if (hout) memcpy(hout + (size_t)b * H, a->hs + ((size_t)(T - 1) * B + b) * H, (size_t)H * sizeof(float));
    }
}

void lstm_att_forward(lstm_att_acts *a, float *mem, float *mlen, float *hout, const float *h, const lstm_att_w *w,
                      int B, int T, int K, int H)
{
    size_t N = (size_t)B * T, NE = (size_t)(K + T) * B;
    fill_ext(a, mem, mlen, h, B, T, K, H);
    lstm_gemm(0, 1, (int)NE, H, H, 1.0f, a->ext, H, w->wy, H, 0.0f, a->p, H);
    lstm_gemm(0, 1, (int)N, H, H, 1.0f, h, H, w->wh, H, 0.0f, a->q, H);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)t * B + b;
            const float *q = a->q + row * H;
            for (int j = 0; j < K; j++) {
                const float *p = a->p + ((size_t)(t + j) * B + b) * H;
                float *m = a->m + (row * K + j) * H;
                for (int k = 0; k < H; k++) m[k] = p[k] + q[k];
            }
        }
    lstm_vtanh(a->m, a->m, N * K * H);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)t * B + b;
            float *al = a->alpha + row * K, mx = -INFINITY, sum = 0.0f;
            for (int j = 0; j < K; j++) {
                if (!filled(a, b, t, j, K)) continue;
                const float *m = a->m + (row * K + j) * H;
                float s = 0.0f;
                for (int k = 0; k < H; k++) s += w->w[k] * m[k];
                al[j] = s;
                if (s > mx) mx = s;
            }
            for (int j = 0; j < K; j++) {
                al[j] = filled(a, b, t, j, K) ? expf(al[j] - mx) : 0.0f;
                sum += al[j];
            }
            float *r = a->r + row * H;
            memset(r, 0, (size_t)H * sizeof(float));
            for (int j = 0; j < K; j++) {
                if (al[j] == 0.0f) continue;
                al[j] /= sum;
                const float *y = a->ext + ((size_t)(t + j) * B + b) * H;
                for (int k = 0; k < H; k++) r[k] += al[j] * y[k];
            }
        }
    lstm_gemm(0, 1, (int)N, H, H, 1.0f, a->r, H, w->wr, H, 0.0f, a->hs, H);
    lstm_gemm(0, 1, (int)N, H, H, 1.0f, h, H, w->wx, H, 1.0f, a->hs, H);
    lstm_vtanh(a->hs, a->hs, N * H);
    carry_out(a, mem, mlen, hout, B, T, K, H);
}

void lstm_att_forward_ref(lstm_att_acts *a, float *mem, float *mlen, float *hout, const float *h,
                          const lstm_att_w *w, int B, int T, int K, int H)
{
    size_t N = (size_t)B * T, NE = (size_t)(K + T) * B;
    fill_ext(a, mem, mlen, h, B, T, K, H);
    lstm_gemm_ref(0, 1, (int)NE, H, H, 1.0f, a->ext, H, w->wy, H, 0.0f, a->p, H);
    lstm_gemm_ref(0, 1, (int)N, H, H, 1.0f, h, H, w->wh, H, 0.0f, a->q, H);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)t * B + b;
            double s[LSTM_MAX_ATTENTION], mx = -INFINITY, sum = 0.0;
            for (int j = 0; j < K; j++) {
                const float *p = a->p + ((size_t)(t + j) * B + b) * H;
                float *m = a->m + (row * K + j) * H;
                double d = 0.0;
                for (int k = 0; k < H; k++) {
                    m[k] = (float)tanh((double)p[k] + a->q[row * H + k]);
                    d += (double)w->w[k] * m[k];
                }
                s[j] = d;
                if (filled(a, b, t, j, K) && d > mx) mx = d;
            }
            for (int j = 0; j < K; j++) {
                s[j] = filled(a, b, t, j, K) ? exp(s[j] - mx) : 0.0;
                sum += s[j];
            }
            for (int j = 0; j < K; j++) a->alpha[row * K + j] = sum > 0.0 ? (float)(s[j] / sum) : 0.0f;
            for (int k = 0; k < H; k++) {
                double r = 0.0;
                for (int j = 0; j < K; j++)
                    r += (double)a->alpha[row * K + j] * a->ext[((size_t)(t + j) * B + b) * H + k];
                a->r[row * H + k] = (float)r;
            }
        }
    for (size_t row = 0; row < N; row++)
        for (int i = 0; i < H; i++) {
            double z = 0.0;
            for (int k = 0; k < H; k++)
                z += (double)w->wr[(size_t)i * H + k] * a->r[row * H + k] + (double)w->wx[(size_t)i * H + k] * h[row * H + k];
            a->hs[row * H + i] = (float)tanh(z);
        }
    carry_out(a, mem, mlen, hout, B, T, K, H);
}

/* dext rows 0..K*B-1 to dmem (B,K,H); the others onto dh. */
static void spread_dext(float *dh, float *dmem, const lstm_att_acts *a, int B, int T, int K, int H)
{
    size_t NH = (size_t)B * T * H;
    const float *d = a->dext + (size_t)K * B * H;
    for (size_t k = 0; k < NH; k++) dh[k] += d[k];
    if (dmem)
        for (int j = 0; j < K; j++)
            for (int b = 0; b < B; b++)
                memcpy(dmem + ((size_t)b * K + j) * H, a->dext + ((size_t)j * B + b) * H, (size_t)H * sizeof(float));
}

void lstm_att_backward(lstm_att_g *g, float *dh, float *dmem, lstm_att_acts *a, const float *h, const float *dhs,
                       const lstm_att_w *w, int B, int T, int K, int H)
{
    size_t N = (size_t)B * T, NE = (size_t)(K + T) * B;
    for (size_t k = 0; k < N * H; k++) a->dz[k] = dhs[k] * (1.0f - a->hs[k] * a->hs[k]);
    lstm_gemm(1, 0, H, H, (int)N, 1.0f, a->dz, H, a->r, H, 1.0f, g->wr, H);
    lstm_gemm(1, 0, H, H, (int)N, 1.0f, a->dz, H, h, H, 1.0f, g->wx, H);
    lstm_gemm(0, 0, (int)N, H, H, 1.0f, a->dz, H, w->wr, H, 0.0f, a->dr, H);
    lstm_gemm(0, 0, (int)N, H, H, 1.0f, a->dz, H, w->wx, H, 0.0f, dh, H);
    float *dp = a->p, *dq = a->q; /* p and q are not needed any more */
    memset(dp, 0, NE * H * sizeof(float));
    memset(dq, 0, N * H * sizeof(float));
    memset(a->dext, 0, NE * H * sizeof(float));
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)t * B + b;
            const float *al = a->alpha + row * K, *dr = a->dr + row * H;
            float da[LSTM_MAX_ATTENTION], dot = 0.0f;
            for (int j = 0; j < K; j++) {
                da[j] = 0.0f;
                if (al[j] == 0.0f) continue;
                size_t e = ((size_t)(t + j) * B + b) * H;
                const float *y = a->ext + e;
                float *dy = a->dext + e, s = 0.0f;
                for (int k = 0; k < H; k++) {
                    s += dr[k] * y[k];
                    dy[k] += al[j] * dr[k];
                }
                da[j] = s;
                dot += al[j] * s;
            }
            for (int j = 0; j < K; j++) {
                if (al[j] == 0.0f) continue;
                float ds = al[j] * (da[j] - dot);
                const float *m = a->m + (row * K + j) * H;
                float *dpe = dp + ((size_t)(t + j) * B + b) * H, *dqr = dq + row * H;
                for (int k = 0; k < H; k++) {
                    g->w[k] += ds * m[k];
                    float du = ds * w->w[k] * (1.0f - m[k] * m[k]);
                    dpe[k] += du;
                    dqr[k] += du;
                }
            }
        }
    lstm_gemm(1, 0, H, H, (int)NE, 1.0f, dp, H, a->ext, H, 1.0f, g->wy, H);
    lstm_gemm(0, 0, (int)NE, H, H, 1.0f, dp, H, w->wy, H, 1.0f, a->dext, H);
    lstm_gemm(1, 0, H, H, (int)N, 1.0f, dq, H, h, H, 1.0f, g->wh, H);
    lstm_gemm(0, 0, (int)N, H, H, 1.0f, dq, H, w->wh, H, 1.0f, dh, H);
    spread_dext(dh, dmem, a, B, T, K, H);
}

void lstm_att_backward_ref(lstm_att_g *g, float *dh, float *dmem, lstm_att_acts *a, const float *h,
                           const float *dhs, const lstm_att_w *w, int B, int T, int K, int H)
{
    size_t N = (size_t)B * T, NE = (size_t)(K + T) * B;
    for (size_t k = 0; k < N * H; k++) a->dz[k] = (float)((double)dhs[k] * (1.0 - (double)a->hs[k] * a->hs[k]));
    for (int i = 0; i < H; i++)
        for (int k = 0; k < H; k++) {
            double sr = 0.0, sx = 0.0;
            for (size_t row = 0; row < N; row++) {
                sr += (double)a->dz[row * H + i] * a->r[row * H + k];
                sx += (double)a->dz[row * H + i] * h[row * H + k];
            }
            g->wr[(size_t)i * H + k] += (float)sr;
            g->wx[(size_t)i * H + k] += (float)sx;
        }
    for (size_t row = 0; row < N; row++)
        for (int k = 0; k < H; k++) {
            double sr = 0.0, sx = 0.0;
            for (int i = 0; i < H; i++) {
                sr += (double)a->dz[row * H + i] * w->wr[(size_t)i * H + k];
                sx += (double)a->dz[row * H + i] * w->wx[(size_t)i * H + k];
            }
            a->dr[row * H + k] = (float)sr;
            dh[row * H + k] = (float)sx;
        }
    float *dp = a->p, *dq = a->q;
    memset(dp, 0, NE * H * sizeof(float));
    memset(dq, 0, N * H * sizeof(float));
    memset(a->dext, 0, NE * H * sizeof(float));
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)t * B + b;
            double da[LSTM_MAX_ATTENTION], dot = 0.0;
            for (int j = 0; j < K; j++) {
                double s = 0.0;
                for (int k = 0; k < H; k++) s += (double)a->dr[row * H + k] * a->ext[((size_t)(t + j) * B + b) * H + k];
                da[j] = s;
                dot += (double)a->alpha[row * K + j] * s;
            }
            for (int j = 0; j < K; j++) {
                double al = a->alpha[row * K + j], ds = al * (da[j] - dot);
                if (!filled(a, b, t, j, K)) continue;
                size_t e = ((size_t)(t + j) * B + b) * H;
                const float *m = a->m + (row * K + j) * H;
                for (int k = 0; k < H; k++) {
                    a->dext[e + k] += (float)(al * a->dr[row * H + k]);
                    g->w[k] += (float)(ds * m[k]);
                    double du = ds * w->w[k] * (1.0 - (double)m[k] * m[k]);
                    dp[e + k] += (float)du;
                    dq[row * H + k] += (float)du;
                }
            }
        }
    lstm_gemm_ref(1, 0, H, H, (int)NE, 1.0f, dp, H, a->ext, H, 1.0f, g->wy, H);
    lstm_gemm_ref(0, 0, (int)NE, H, H, 1.0f, dp, H, w->wy, H, 1.0f, a->dext, H);
    lstm_gemm_ref(1, 0, H, H, (int)N, 1.0f, dq, H, h, H, 1.0f, g->wh, H);
    lstm_gemm_ref(0, 0, (int)N, H, H, 1.0f, dq, H, w->wh, H, 1.0f, dh, H);
    spread_dext(dh, dmem, a, B, T, K, H);
}

size_t lstm_att_step_floats(int K, int H) { return (size_t)K * H + 3 * (size_t)H + (size_t)K; }

void lstm_att_push(float *mem, float *mlen, const float *h, int B, int K, int H)
{
    for (int b = 0; b < B; b++) {
        float *mb = mem + (size_t)b * K * H;
        memmove(mb, mb + H, (size_t)(K - 1) * H * sizeof(float));
        memcpy(mb + (size_t)(K - 1) * H, h + (size_t)b * H, (size_t)H * sizeof(float));
        if (mlen[b] < K) mlen[b] += 1.0f;
    }
}

void lstm_att_step(float *hout, float *mem, float *mlen, const float *h, const lstm_att_w *w, int B, int K, int H,
                   float *scratch)
{
    float *m = scratch, *q = m + (size_t)K * H, *r = q + H, *z = r + H, *s = z + H;
    for (int b = 0; b < B; b++) {
        const float *hb = h + (size_t)b * H, *mb = mem + (size_t)b * K * H;
        int j0 = K - (int)mlen[b];
        cblas_sgemv(CblasRowMajor, CblasNoTrans, H, H, 1.0f, w->wh, H, hb, 1, 0.0f, q, 1);
        float mx = -INFINITY, sum = 0.0f;
        for (int j = j0; j < K; j++) {
            float *mj = m + (size_t)j * H;
            memcpy(mj, q, (size_t)H * sizeof(float));
            cblas_sgemv(CblasRowMajor, CblasNoTrans, H, H, 1.0f, w->wy, H, mb + (size_t)j * H, 1, 1.0f, mj, 1);
            lstm_vtanh(mj, mj, (size_t)H);
            float d = 0.0f;
            for (int k = 0; k < H; k++) d += w->w[k] * mj[k];
            s[j] = d;
            if (d > mx) mx = d;
        }
        for (int j = j0; j < K; j++) sum += s[j] = expf(s[j] - mx);
        memset(r, 0, (size_t)H * sizeof(float));
        for (int j = j0; j < K; j++) {
            float al = s[j] / sum;
            for (int k = 0; k < H; k++) r[k] += al * mb[(size_t)j * H + k];
        }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, H, H, 1.0f, w->wr, H, r, 1, 0.0f, z, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, H, H, 1.0f, w->wx, H, hb, 1, 1.0f, z, 1);
        lstm_vtanh(hout + (size_t)b * H, z, (size_t)H);
    }
    lstm_att_push(mem, mlen, h, B, K, H);
}
