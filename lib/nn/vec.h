/* vec.h: the output layer's row kernels (vec.c), vectorized like lstm_vexp: one row of V logits. */
#ifndef LSTM_VEC_H
#define LSTM_VEC_H

/* row += b (b NULL: no bias, row read only); returns max(row). */
float lstm_row_bias_max(float *row, const float *b, int V);
/* sum_j exp(row[j] - m), read only. */
float lstm_row_sum_exp(const float *row, float m, int V);
/* row[j] = exp(row[j] - lse) * scale; db[j] += row[j] (db NULL: no bias). */
void lstm_row_softmax_grad(float *row, float *db, float lse, float scale, int V);

#endif
