/* modelfile.h: a model checkpoint = the checkpoint container (checkpoint.h) holding a model's config,
 * parameters (one flat block + a view per tensor), tokenizer blob, and optionally the optimizer
 * moments, the carried hidden state and the training state needed for an exact resume
 * (formats/checkpoint.md, "Entries written by lstm-train"). */
#ifndef LSTM_MODELFILE_H
#define LSTM_MODELFILE_H
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "model.h"
#include "optim.h"

typedef struct {
    const lstm_model *model;
    const uint8_t *tokenizer; /* tokenizer blob */
    size_t tokenizer_len;
    const char *train;        /* key=value lines, or NULL */
    const lstm_optim *optim;  /* moments saved when it has them; NULL = none */
    const lstm_state *state;  /* carried hidden state (mid-epoch resume), or NULL */
    const char *provenance;   /* or NULL */
} lstm_modelfile_save_args;

/* Atomic (temp + fsync + rename). LSTM_E_EXISTS unless force. */
int lstm_modelfile_save(const char *path, int force, const lstm_modelfile_save_args *a);

typedef struct {
    lstm_ck *ck;
    lstm_model model;          /* a view over the mapped parameters (no copy, no gradients) */
    const uint8_t *tokenizer;
    size_t tokenizer_len;
    const char *train;         /* NULL if absent */
    size_t train_len;
    const float *optim_m, *optim_v; /* (model.n_params) each, NULL if absent */
    const float *state_h, *state_c; /* (L,B,H), NULL if absent */
    int state_B;
    const char *provenance;
    size_t provenance_len;
    char bad_tensor[32];       /* after LSTM_E_NAN: the first tensor holding a NaN or Inf */
} lstm_modelfile;

/* Opens and verifies (checksum, bounds), parses the config and checks that every tensor is present
 * with the shape the config implies: LSTM_E_FORMAT otherwise (plus lstm_ck_open's codes). Every float
 * it carries (parameters, optimizer moments, carried state) must be finite: LSTM_E_NAN otherwise, with
 * the tensor's name in f->bad_tensor (the one field a failed open leaves set; a checksum proves the
 * bytes are the ones written, not that the training that wrote them had not diverged). */
int lstm_modelfile_open(lstm_modelfile *f, const char *path);
void lstm_modelfile_close(lstm_modelfile *f);

/* Config as key=value lines (cell, vocab, emb, hidden, layers, tie, dropout, forget_bias, init_scale). */
int lstm_model_config_format(const lstm_model_config *cfg, char *buf, size_t cap);
int lstm_model_config_parse(lstm_model_config *cfg, const char *text, size_t len);
const char *lstm_cell_name(int cell); /* "lstm", "gru", "rnn" */
int lstm_cell_from_name(const char *name); /* or -1 */

#endif
