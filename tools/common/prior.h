/* prior.h: --prior TOKENS of the fill-in-the-middle tools: the training text's word counts, read
 * with lstm_fill_count_prior (lib/lm/fill.h), or the tool dies with a one-line message. */
#ifndef TOOL_PRIOR_H
#define TOOL_PRIOR_H
#include <stdint.h>

#include "engine.h"
#include "lm.h"

/* The counts of path's ids ((V), malloc'ed); model names lm in messages. */
uint64_t *tool_prior_counts(const char *path, const lstm_lm *lm, const char *model);
/* lstm_engine_set_fill_prior with path's counts. */
void tool_fill_prior(lstm_engine *e, const char *path, const char *model);

#endif
