/* spm_c.h: a C interface to SentencePiece (which only has a C++ API). Every call catches every C++
 * exception and reports it as LSTM_E_SPM (or LSTM_E_NOMEM); nothing is printed. */
#ifndef LSTM_SPM_C_H
#define LSTM_SPM_C_H
#include <stddef.h>
#include <stdint.h>
#include "errors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lstm_spm lstm_spm;

/* Loads a model from its serialized protobuf bytes (the content of a .model file). */
int lstm_spm_load(lstm_spm **out, const void *model, size_t len);
void lstm_spm_free(lstm_spm *s);

/* Trains a BPE model with byte fallback (so no input is ever unknown) on n sentences; the only
 * reserved piece is <unk> at id 0 (no <s>, </s>, <pad>). case_fold selects the nmt_nfkc_cf
 * normalization instead of nmt_nfkc. On success *model (malloc'ed) holds the serialized model.
 * msg (if not NULL) receives SentencePiece's error text on failure (LSTM_E_SPM), or, when vocab_size
 * is below what the input needs (256 byte pieces, <unk> and its characters: LSTM_E_RANGE), that
 * smallest vocab_size as a decimal number. */
int lstm_spm_train(const char *const *sents, const size_t *lens, size_t n, int vocab_size, int case_fold,
                   int threads, uint8_t **model, size_t *model_len, char *msg, size_t msgcap);

int lstm_spm_size(const lstm_spm *s);
int lstm_spm_unk_id(const lstm_spm *s);
/* The piece text of id (NULL if out of range); valid as long as s. */
const char *lstm_spm_piece(const lstm_spm *s, int id, size_t *len);
/* 1 if id is a control, unused or unknown piece (never produced by encoding with byte fallback). */
int lstm_spm_is_control(const lstm_spm *s, int id);
int lstm_spm_is_byte(const lstm_spm *s, int id);

/* Encodes text, writing at most cap ids into ids; *n is the number of ids the text needs (call again
 * with a larger buffer if *n > cap). Thread-safe on one model. */
int lstm_spm_encode(const lstm_spm *s, const char *text, size_t len, int *ids, size_t cap, size_t *n);
/* Decodes ids to text (malloc'ed, NUL-terminated). */
int lstm_spm_decode(const lstm_spm *s, const int *ids, size_t n, char **text, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
