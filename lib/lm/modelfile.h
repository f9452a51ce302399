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

/* An inference-only model (formats/model.md): a's model, tokenizer and provenance (its train, optim
 * and state are not written), with the embedding and the output weight stored as quant says
 * (LSTM_Q_NONE: every tensor fp32, mapped in place by readers as a checkpoint's are; LSTM_Q_INT8:
 * int8 + one fp32 scale per row; LSTM_Q_BF16), and with recurrent != 0 every layer's w_ih and w_hh
 * too (biases always fp32). Written as lstm_modelfile_save writes. LSTM_E_ARG for an unknown quant
 * (or recurrent with LSTM_Q_NONE), LSTM_E_NOMEM, lstm_ck_write's codes. */
int lstm_modelfile_export(const char *path, int force, const lstm_modelfile_save_args *a, int quant, int recurrent);

typedef struct {
    lstm_ck *ck;
    lstm_model model;          /* a view over the mapped parameters (no copy, no gradients) */
    const uint8_t *tokenizer;
    size_t tokenizer_len;
    const char *train;         /* NULL if absent */
    size_t train_len;
    const float *optim_m, *optim_v; /* (model.n_params) each, NULL if absent */
    const float *state_h, *state_c; /* (L,B,H), NULL if absent */
    const float *state_mem, *state_mlen; /* with attention K: (B,K,H) and (B), present with state_h */
    int state_B;
    const char *provenance;
    size_t provenance_len;
    char bad_tensor[32];       /* after LSTM_E_NAN: the first tensor holding a NaN or Inf */
    int kind;                  /* LSTM_CK_KIND_CHECKPOINT, or LSTM_CK_KIND_MODEL for an export */
    int quant;                 /* an export's LSTM_Q_* (LSTM_Q_NONE for checkpoints) */
    int quant_recurrent;       /* an export's recurrent weights are quantized too */
    float *owned;              /* a quantized export's fp32 parameter block (model.params), built at open */
    size_t owned_bytes;
} lstm_modelfile;

/* Opens and verifies (checksum, bounds), parses the config and checks that every tensor is present
 * with the shape the config implies: LSTM_E_FORMAT otherwise (plus lstm_ck_open's codes). A checkpoint
 * or an exported model (told by its magic: f->kind). A quantized export's parameters are rebuilt as
 * one fp32 block (the quantized tensors dequantized into it by the first window forward: see
 * lstm_model.q_pending) and its model's qemb / qout point at the mapped quantized weights (what the
 * one-step inference path reads); an export has no optimizer moments, carried state or training state. Every float
 * it carries (parameters, optimizer moments, carried state) must be finite: LSTM_E_NAN otherwise, with
 * the tensor's name in f->bad_tensor (the one field a failed open leaves set; a checksum proves the
 * bytes are the ones written, not that the training that wrote them had not diverged). */
int lstm_modelfile_open(lstm_modelfile *f, const char *path);
void lstm_modelfile_close(lstm_modelfile *f);

/* Config as key=value lines (cell, vocab, emb, hidden, layers, tie, dropout, forget_bias, init_scale). */
int lstm_model_config_format(const lstm_model_config *cfg, char *buf, size_t cap);
int lstm_model_config_parse(lstm_model_config *cfg, const char *text, size_t len);
const char *lstm_cell_name(int cell); /* "lstm", "gru", "rnn", "cifg", "lnlstm" */
int lstm_cell_from_name(const char *name); /* or -1 */

#endif
