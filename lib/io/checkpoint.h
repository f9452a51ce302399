/* checkpoint.h: the checkpoint container (formats/checkpoint.md): named float32 tensors and byte
 * blobs at 64-byte aligned offsets, an entry table and an XXH64 checksum; written atomically, read
 * by mmap so tensors are used in place. What the entries mean for a model is lstm-train's business
 * (see lib/ckpt_model.h); this file only stores and verifies. */
#ifndef LSTM_CHECKPOINT_H
#define LSTM_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>
#include "errors.h"

#define LSTM_CK_VERSION 1u
/* Entry types; LSTM_CK_I8 and LSTM_CK_BF16 only in an exported model (formats/model.md). */
enum { LSTM_CK_F32 = 1, LSTM_CK_BYTES = 2, LSTM_CK_I8 = 3, LSTM_CK_BF16 = 4 };
/* What the container holds, told by its magic: a training checkpoint (formats/checkpoint.md) or an
 * inference-only model exported by lstm-export (formats/model.md): the same layout, another magic. */
enum { LSTM_CK_KIND_CHECKPOINT = 0, LSTM_CK_KIND_MODEL = 1 };

typedef struct {
    const char *name;
    int type;           /* LSTM_CK_F32 or LSTM_CK_BYTES */
    int ndim;           /* 0..4; 0 for bytes */
    uint64_t dims[4];
    const void *data;
    uint64_t nbytes;
    const char *view_of; /* writer only: this entry's data lies inside the named entry's data */
} lstm_ck_entry;

/* Writes entries to path (temp file + fsync + rename; LSTM_E_EXISTS unless force). On error nothing
 * is left behind and an existing file at path is untouched. */
int lstm_ck_write(const char *path, int force, const lstm_ck_entry *e, size_t n);
/* The same with the magic of kind (LSTM_CK_KIND_*). */
int lstm_ck_write_kind(const char *path, int force, int kind, const lstm_ck_entry *e, size_t n);

typedef struct lstm_ck lstm_ck;
/* Maps path read-only and verifies it completely: LSTM_E_MAGIC, LSTM_E_VERSION, LSTM_E_TRUNCATED,
 * LSTM_E_CORRUPT (checksum), LSTM_E_FORMAT (any size, offset or name out of bounds). A path that is
 * not a regular file (a pipe, <(...)) is read into memory instead of mapped. */
int lstm_ck_open(lstm_ck **out, const char *path);
/* The same on an open fd (not closed; read to its end unless mapped). prefix/plen: bytes the caller
 * has already read from fd (a pipe peeked at for its magic): the checkpoint is prefix + the rest of
 * fd, read into memory. plen 0 on a regular file maps it. */
int lstm_ck_open_fd(lstm_ck **out, int fd, const void *prefix, size_t plen);
/* 1 if p (n bytes) starts with the magic of a checkpoint or of an exported model (n >= 8). */
int lstm_ck_is_magic(const void *p, size_t n);
/* The kind of an open container (LSTM_CK_KIND_*). */
int lstm_ck_kind(const lstm_ck *ck);
size_t lstm_ck_count(const lstm_ck *ck);
const lstm_ck_entry *lstm_ck_at(const lstm_ck *ck, size_t i);
const lstm_ck_entry *lstm_ck_find(const lstm_ck *ck, const char *name); /* NULL if absent */
void lstm_ck_close(lstm_ck *ck);
/* 1 if the first bytes of the file at path are the magic of a checkpoint or of an exported model
 * (both carry a model's tokenizer). */
int lstm_ck_is_checkpoint(const char *path);

/* key=value text blobs (config, training state): value of key, copied into buf; LSTM_E_NOTFOUND. */
int lstm_kv_get(const char *text, size_t len, const char *key, char *buf, size_t cap);

#endif
