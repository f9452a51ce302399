/* mathx.c: log-sum-exp over a row of logits (see mathx.h). */
#include "mathx.h"

#include <math.h>

#include "cells.h"

/* Exponentials go through a stack buffer of a multiple of 16 floats, so lstm_vexp's vector body and
 * scalar tail split the row exactly as one call over the whole row would. */
#define LSE_CHUNK 256

double lstm_logsumexp(const float *x, size_t n)
{
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    if (mx == -INFINITY) return -INFINITY;
    float tmp[LSE_CHUNK];
    double s = 0;
    for (size_t i = 0; i < n; i += LSE_CHUNK) {
        size_t c = n - i < LSE_CHUNK ? n - i : LSE_CHUNK;
        for (size_t j = 0; j < c; j++) tmp[j] = x[i + j] - mx;
        lstm_vexp(tmp, tmp, c);
        for (size_t j = 0; j < c; j++) s += tmp[j];
    }
    return (double)mx + log(s);
}

double lstm_logsumexp_ref(const float *x, size_t n)
{
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    if (mx == -INFINITY) return -INFINITY;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += exp((double)x[i] - mx);
    return mx + log(s);
}
