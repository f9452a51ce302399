/* prior.c: --prior TOKENS (prior.h). */
#include "prior.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fill.h"
#include "stream.h"
#include "tool.h"

uint64_t *tool_prior_counts(const char *path, const lstm_lm *lm, const char *model)
{
    uint64_t *c;
    uint32_t kind;
    int rc = lstm_fill_count_prior(path, lm, &c, &kind);
    if (rc == LSTM_E_KIND)
        tool_die(1, "--prior %s: got %s, expected the training tokens (a token stream: lstm-tok -o train.tok)", path,
                 lstm_kind_desc(kind));
    if (rc == LSTM_E_VOCAB) tool_die(1, "--prior %s: tokenizer does not match %s's", path, model);
    if (rc == LSTM_E_TEXT) tool_die(1, "--prior %s: a text file: give the training tokens (lstm-tok -o train.tok)", path);
    if (rc) tool_die(1, "--prior %s: %s", path, rc == LSTM_E_IO ? strerror(errno) : lstm_strerror(rc));
    return c;
}

void tool_fill_prior(lstm_engine *e, const char *path, const char *model)
{
    if (!e->sug.sorted) tool_die(2, "--prior: word models only (a BPE or character model's words have no one id)");
    uint64_t *c = tool_prior_counts(path, &e->lm, model);
    int rc = lstm_engine_set_fill_prior(e, c);
    free(c);
    if (rc) tool_die(1, "--prior: %s", lstm_strerror(rc));
}
