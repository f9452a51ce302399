/* windows.h: test inputs made with the library's own writers: a space tokenizer over a few words,
 * and a window stream cut from one id sequence (consecutive windows carry state). */
#ifndef LSTM_TEST_WINDOWS_H
#define LSTM_TEST_WINDOWS_H
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modelfile.h"
#include "stream.h"
#include "tokenizer.h"

/* A built space tokenizer whose vocabulary is the words of text (ids from LSTM_NUM_SPECIAL), or NULL. */
static inline lstm_tokenizer *test_space_tokenizer(const char *text)
{
    lstm_tokenizer_opts to = {LSTM_TOK_SPACE, 0, NULL};
    lstm_tokenizer *tok;
    if (lstm_tokenizer_create(&tok, &to)) return NULL;
    lstm_ids ids = {0};
    lstm_tokenizer_build_opts bo = {0};
    int rc = lstm_tokenizer_count(tok, text, strlen(text), &ids);
    lstm_ids_free(&ids);
    if (rc || lstm_tokenizer_build(tok, &bo, NULL, NULL)) {
        lstm_tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

/* nwin next-token windows of T ids from seq (nwin * T + 1 ids) into a new file at path. */
static inline int test_write_windows(const char *path, const lstm_tokenizer *tok, const uint32_t *seq, int nwin, int T)
{
    lstm_meta m;
    lstm_meta_init(&m);
    int rc = -1, fd = -1;
    lstm_writer *wr = NULL;
    if (lstm_tokenizer_meta_set(tok, &m) || lstm_meta_set_u64(&m, "window_length", (uint64_t)T) ||
        lstm_meta_set_str(&m, "window_targets", "next") || (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 ||
        lstm_writer_open(&wr, fd, LSTM_KIND_WIND, &m, NULL))
        goto done;
    rc = 0;
    for (int i = 0; i < nwin && !rc; i++) {
        lstm_window w = {i ? LSTM_WIN_CONT : LSTM_WIN_DOC_START, (uint32_t)T, (uint32_t)T, (uint32_t *)seq + (size_t)i * T,
                         (uint32_t *)seq + (size_t)i * T + 1};
        rc = lstm_window_put(wr, &w);
    }
    if (!rc) rc = lstm_writer_finish(wr);
done:
    if (wr) lstm_writer_free(wr);
    if (fd >= 0) close(fd);
    lstm_meta_free(&m);
    return rc;
}

/* A model of config c (V from tok) with weights drawn by seed, saved with tok's tokenizer to ckpt (the
 * untrained models of the evaluator's tests). 0 or an error code. */
static inline int test_write_model(const char *ckpt, const lstm_tokenizer *tok, lstm_model_config c, uint64_t seed)
{
    c.V = (int)lstm_tokenizer_vocab_size(tok);
    lstm_model model;
    int rc = lstm_model_create(&model, &c);
    if (rc) return rc;
    lstm_rng r;
    lstm_rng_seed(&r, seed);
    lstm_model_init_params(&model, &r);
    uint8_t *blob = NULL;
    size_t bl = 0;
    rc = lstm_tokenizer_serialize(tok, &blob, &bl);
    lstm_modelfile_save_args a = {&model, blob, bl, NULL, NULL, NULL, NULL};
    if (!rc) rc = lstm_modelfile_save(ckpt, 1, &a);
    free(blob);
    lstm_model_free(&model);
    return rc;
}

#endif
