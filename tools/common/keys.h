/* keys.h: the keystroke report lstm-eval and lstm-ngram print alike, so the two evaluators' figures
 * read and parse the same: the text line, the JSON fields and the --keystrokes-trace file (one line
 * per typed word). The simulation itself is the library's (lib/lm/eval.h, lstm_keys). */
#ifndef LSTM_TOOL_KEYS_H
#define LSTM_TOOL_KEYS_H
#include <jansson.h>
#include <stdio.h>

#include "eval.h"

/* "keystrokes saved 70.1% (7694 instead of 25546, 3 suggestions shown) acceptance 94.7% (... of ... words)"
 * on stdout. */
void tool_keys_print(const lstm_eval_result *s, int K);
/* keystrokes_saved, acceptance_rate, keystrokes_with, keystrokes_without, typed_words,
 * suggestions_shown into o. */
void tool_keys_json(json_t *o, const lstm_eval_result *s);

/* --keystrokes-trace FILE: a new file (an existing regular file is refused: exit 1), devices and pipes
 * written in place. A tool_die before tool_keys_trace_close removes the file (call
 * tool_keys_trace_cleanup from the tool's clean-up). */
FILE *tool_keys_trace_open(const char *path);
void tool_keys_trace_cleanup(void);
/* Checks the writes and closes: "FILE: error" and exit 1 when one failed. */
void tool_keys_trace_close(FILE *f, const char *path);
/* lstm_keys' on_word for a trace: word, characters, keystrokes, characters typed before accepting
 * it (- if none), tab-separated. */
void tool_keys_trace_line(FILE *f, const char *w, size_t n, size_t chars, long keys, long typed);

#endif
