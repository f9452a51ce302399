/* keys.c: the keystroke report of lstm-eval and lstm-ngram (keys.h). */
#include "keys.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

static const char *pending; /* a trace file we created: removed when the tool dies */

static double saved_share(const lstm_eval_result *s)
{
    return s->keys_without > 0 ? 1 - s->keys_with / s->keys_without : 0;
}

static double accepted_share(const lstm_eval_result *s)
{
    return s->typed_words ? (double)s->accepted / (double)s->typed_words : 0;
}

void tool_keys_print(const lstm_eval_result *s, int K)
{
    printf("keystrokes saved %.1f%% (%.0f instead of %.0f, %d suggestions shown) acceptance %.1f%% (%ld of %ld words)\n",
           100 * saved_share(s), s->keys_with, s->keys_without, K, 100 * accepted_share(s), s->accepted,
           s->typed_words);
}

void tool_keys_json(json_t *o, const lstm_eval_result *s)
{
    json_object_set_new(o, "keystrokes_saved", json_real(saved_share(s)));
    json_object_set_new(o, "acceptance_rate", json_real(accepted_share(s)));
    json_object_set_new(o, "keystrokes_with", json_real(s->keys_with));
    json_object_set_new(o, "keystrokes_without", json_real(s->keys_without));
    json_object_set_new(o, "typed_words", json_integer(s->typed_words));
    json_object_set_new(o, "suggestions_shown", json_integer(s->shown));
}

FILE *tool_keys_trace_open(const char *path)
{
    struct stat sb;
    FILE *f;
    if (!stat(path, &sb) && S_ISREG(sb.st_mode)) tool_die(1, "%s: file exists (remove it or give another file)", path);
    if (!(f = fopen(path, "w"))) tool_die(1, "%s: %s", path, strerror(errno));
    if (!stat(path, &sb) && S_ISREG(sb.st_mode)) pending = path;
    return f;
}

void tool_keys_trace_cleanup(void)
{
    if (pending) unlink(pending);
    pending = NULL;
}

void tool_keys_trace_close(FILE *f, const char *path)
{
    if (ferror(f) | fclose(f)) tool_die(1, "%s: %s", path, strerror(errno));
    pending = NULL;
}

void tool_keys_trace_line(FILE *f, const char *w, size_t n, size_t chars, long keys, long typed)
{
    if (typed >= 0) fprintf(f, "%.*s\t%zu\t%ld\t%ld\n", (int)n, w, chars, keys, typed);
    else fprintf(f, "%.*s\t%zu\t%ld\t-\n", (int)n, w, chars, keys);
}
