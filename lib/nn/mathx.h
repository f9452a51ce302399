/* mathx.h: the library's log-sum-exp, log sum_i exp(x[i]) over a row of logits: the log-normaliser of
 * a softmax (NLL = lse - x[target], log p = x - lse). One implementation for evaluation, suggestions
 * and beam search, and a double-precision twin for the reference kernels. (The training kernel
 * lstm_out_forward keeps its own pass, fused with the bias add and accumulated in float: see cells.c.) */
#ifndef LSTM_MATHX_H
#define LSTM_MATHX_H
#include <stddef.h>

/* The max m in float, exp(x[i] - m) by lstm_vexp (cells.h), summed in double in index order; returns
 * m + log(sum). -INFINITY when n is 0 or every x[i] is -inf (nothing allowed). Deterministic: the
 * same inputs give the same bits whatever the caller. */
double lstm_logsumexp(const float *x /* (n) */, size_t n);

/* The same in double throughout (exp and log of doubles): the reference kernels' version. */
double lstm_logsumexp_ref(const float *x /* (n) */, size_t n);

#endif
