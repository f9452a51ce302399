/* lstm-eval: evaluate a checkpoint on a window stream: NLL, perplexity, top-1 / top-k accuracy,
 * per-word perplexity, and (--keystrokes) the keystrokes an autocomplete user would save, of the
 * model or of the model mixed with a continuous cache (--cache), and (--cache-search) the cache's
 * theta and lambda searched on a grid. The measuring is lib/lm/eval.h's; this file parses the flags,
 * opens the inputs and prints the report. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataset.h"
#include "eval.h"
#include "fill.h"
#include "tool.h"
#include "fileio.h"
#include "keys.h"
#include "prior.h"
#include "lm.h"

#define PROG "lstm-eval"

/* ---- progress on stderr, only when it is a terminal: one \r line, at most twice a second ---- */
static int prog_on;   /* stderr is a tty */
static int prog_len;  /* width of the line shown now (0 = none) */
static double prog_last = -1;


static void progress_clear(void)
{
    if (prog_len) fprintf(stderr, "\r%*s\r", prog_len, "");
    prog_len = 0;
}

static void progress(uint64_t done, uint64_t total, const char *name)
{
    if (!prog_on || total == 0) return;
    double t = tool_now();
    if (prog_last >= 0 && t - prog_last < 0.5) return;
    prog_last = t;
    int n = fprintf(stderr, "\r" PROG ": %s: %3.0f%% (%llu of %llu batches)", name, 100.0 * (double)done / (double)total,
                    (unsigned long long)done, (unsigned long long)total);
    n = n > 0 ? n - 1 : 0;
    if (n < prog_len) fprintf(stderr, "%*s", prog_len - n, ""); /* a shorter line leaves no tail */
    if (n > prog_len) prog_len = n;
    fflush(stderr);
}

/* tool_die's clean-up: the progress line and a half-written trace go. */
static void cleanup(void)
{
    progress_clear();
    tool_keys_trace_cleanup();
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " -m MODEL [options] [WINDOWS]\n"
            "Evaluate a model from lstm-train on a window stream (from lstm-window), WINDOWS or stdin,\n"
            "tokenized with the model's tokenizer (lstm-tok -m MODEL).\n"
            "\n"
            "  -m, --model FILE     checkpoint (required)\n"
            "  -k, --top K          also report top-K accuracy (default 5); with --keystrokes: suggestions shown\n"
            "      --batch B        lanes evaluated side by side (default 10); each lane reads a contiguous part\n"
            "                       of the stream and carries its state from window to window (stateful, as\n"
            "                       published PTB figures are computed)\n"
            "      --reset-state    start every window from a zero state instead\n"
            "      --keystrokes     simulate a user typing the text with K suggestions shown before each word and\n"
            "                       after each typed character; report keystrokes saved and acceptance rate\n"
            "      --beam-words N   BPE / character models: beam width for assembling words (default 8)\n"
            "      --keystrokes-trace FILE  --keystrokes, and one line per typed word into FILE (a new file):\n"
            "                       word, characters, keystrokes, characters typed before accepting it (- if none)\n"
            "      --cache N        mix a continuous cache of the last N (state, next word) pairs into every\n"
            "                       prediction (Grave et al. 2017): p = (1 - lambda) p_model + lambda p_cache,\n"
            "                       p_cache(w) ~ sum of exp(theta h.h_i) over the pairs whose next word is w, h the\n"
            "                       top layer's state; the pairs are the lane's text already scored, carried\n"
            "                       across windows with the state and cleared where it is reset (default 0: off)\n"
            "      --cache-theta T  the match's sharpness, >= 0 (default 0.3)\n"
            "      --cache-lambda L the cache's weight, 0 to 1 (default 0.1; 0: the model's figures exactly)\n"
            "      --cache-search   with --cache N: score every (theta, lambda) of a grid in one pass, print the\n"
            "                       perplexity table and the best pair. Search on validation data, then\n"
            "                       evaluate the test data once with the pair found\n"
            "      --cache-thetas LIST, --cache-lambdas LIST  the grid, comma-separated (default\n"
            "                       0,0.1,0.2,0.3,0.4,0.5,0.7,1 and 0.02,0.05,0.1,0.15,0.2,0.25,0.3,0.4)\n"
            "      --fill           fill-in-the-middle: with --backward, read TOKENS (a token stream from lstm-tok,\n"
            "                       not windows), blank one word per line or turn (drawn with --seed) and\n"
            "                       report how often the blanked word ranks first / in the top K when the\n"
            "                       forward model reads what comes before it and the backward model what\n"
            "                       comes after (log p_fwd + log p_bwd, as lstm-sample --fill), beside the\n"
            "                       forward model alone (next-word prediction) and the backward one alone\n"
            "      --backward FILE  the right-to-left model (trained on lstm-window --reverse windows)\n"
            "      --seed N         --fill: the blanks' random seed (default 1)\n"
            "      --prior TOKENS   --fill: also rank by the fill score minus log p(w), p(w) the word's\n"
            "                       frequency in TOKENS (the training tokens): the product of the two models\n"
            "                       counts a word's frequency twice\n"
            "      --json           one JSON object instead of text\n"
            "      --threads N      BLAS threads (default: all cores)\n"
            "  -q, --quiet          no progress line\n"
            "  -v, --verbose        a timing line on stderr at the end (tokens, time, tokens/s)\n"
            "  -h, --help           this help\n"
            "  -V, --version        version\n"
            "\n"
            "Scored are the windows' targets but PAD and BOS (BOS only follows a speaker tag: it is no prediction;\n"
            "a document's first token is no window's target): the tokens lstm-ngram eval scores on the same\n"
            "text (lstm-window --cross-docs windows: lstm-ngram's --targets stream). Perplexity is exp(mean NLL\n"
            "per scored target).\n"
            "Per-word perplexity is exp(total NLL / words), words being the whitespace-separated words of the\n"
            "text plus one per end of line or turn (EOS), so models with different tokenizers can be compared on\n"
            "the same text. When stderr is a terminal, the percent done is shown there while evaluating (never\n"
            "when stderr is a file or a pipe).\n"
            "\n"
            "Keystrokes: a word of n characters costs n + 1 keystrokes typed (the +1 is the space after it);\n"
            "accepting a suggestion after typing j characters costs j + 1 (the click or tab; the space after an\n"
            "accepted word is inserted for free). The suggestions are those of lstm-sample --suggest K with the same\n"
            "--beam-words for the text so far: for BPE and character models the word beam runs again after each\n"
            "typed character, constrained to the typed prefix. Punctuation is typed, never suggested. An unknown\n"
            "word (<unk>) counts as 5 characters typed in full plus the space: the stream does not keep its text,\n"
            "so its real length is unknown. Saved = 1 - keystrokes with suggestions / keystrokes without.\n"
            "\n"
            "Examples:\n"
            "  lstm-tok -m chat.ckpt < test.csv | lstm-window -L 15 | " PROG " -m chat.ckpt\n"
            "  " PROG " -m ptb.ckpt --batch 1 --cache 500 --cache-search valid.win    (tune on validation)\n"
            "  " PROG " -m ptb.ckpt --batch 1 --cache 500 --cache-theta 0.3 --cache-lambda 0.1 test.win\n"
            "  " PROG " -m fwd.ckpt --backward bwd.ckpt --fill test.tok                (fill-in-the-middle)\n");
}

typedef struct {
    const char *name; /* of the input */
    FILE *trace;      /* --keystrokes-trace, or NULL */
} run_t;

/* --keystrokes-trace: one line per typed word. */
static int trace_word(void *ctx, const char *w, size_t n, size_t chars, long keys, long typed)
{
    tool_keys_trace_line(((run_t *)ctx)->trace, w, n, chars, keys, typed);
    return 0;
}

static void on_batch(void *ctx, uint64_t done, uint64_t total) { progress(done, total, ((run_t *)ctx)->name); }

static void report(const lstm_eval_result *s, const lstm_lm *lm, const char *model, const char *name, int stateful,
                   int B, int K, int json, int keystrokes, const lstm_cache_opts *cache)
{
    int cached = lstm_cache_opts_on(cache);
    double nll = s->nll / (double)s->tokens, ppl = lstm_eval_ppl(nll);
    double wppl = s->words ? lstm_eval_ppl(s->nll / (double)s->words) : NAN;
    const char *mode = stateful ? "stateful" : "reset-state";
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(model));
        json_object_set_new(o, "input", json_string(name));
        json_object_set_new(o, "tokenizer", json_string(lstm_tokenizer_kind_name(lm->kind)));
        json_object_set_new(o, "mode", json_string(mode));
        json_object_set_new(o, "batch", json_integer(B));
        json_object_set_new(o, "tokens", json_integer((json_int_t)s->tokens));
        json_object_set_new(o, "nll", json_real(nll));
        json_object_set_new(o, "perplexity", json_real(ppl));
        json_object_set_new(o, "top1", json_real((double)s->top1 / (double)s->tokens));
        json_object_set_new(o, "k", json_integer(K));
        json_object_set_new(o, "topk", json_real((double)s->topk / (double)s->tokens));
        json_object_set_new(o, "words", json_integer((json_int_t)s->words));
        json_object_set_new(o, "word_perplexity", isfinite(wppl) ? json_real(wppl) : json_null());
        if (cached) {
            json_t *c = json_object();
            json_object_set_new(c, "size", json_integer(cache->N));
            json_object_set_new(c, "theta", json_real(cache->theta));
            json_object_set_new(c, "lambda", json_real(cache->lambda));
            json_object_set_new(o, "cache", c);
        }
        if (keystrokes) tool_keys_json(o, s);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        printf("perplexity %.2f (nll %.4f, %ld tokens, %s, batch %d) top-1 %.1f%% top-%d %.1f%%\n", ppl, nll, s->tokens,
               mode, B, 100.0 * (double)s->top1 / (double)s->tokens, K, 100.0 * (double)s->topk / (double)s->tokens);
        printf("per-word perplexity %.2f (%ld words, %s tokenizer)\n", wppl, s->words, lstm_tokenizer_kind_name(lm->kind));
        if (cached)
            printf("cache %d pairs per lane, theta %g, lambda %g: the figures are of the mixed distribution\n", cache->N,
                   cache->theta, cache->lambda);
        if (keystrokes) tool_keys_print(s, K);
    }
}

#define GRID_MAX 32

/* --cache-thetas / --cache-lambdas: up to GRID_MAX comma-separated numbers in [lo, hi]. */
static int parse_list(const char *s, const char *flag, double lo, double hi, double *v)
{
    int n = 0;
    char buf[64];
    for (const char *p = s;;) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (n == GRID_MAX) tool_die(2, "%s: at most %d values", flag, GRID_MAX);
        if (len == 0 || len >= sizeof buf) tool_die(2, "%s: expected numbers separated by commas, got '%s'", flag, s);
        memcpy(buf, p, len);
        buf[len] = 0;
        v[n++] = tool_parse_double(buf, flag, lo, hi);
        if (!q) return n;
        p = q + 1;
    }
}

/* --cache-search: the model's figure, the table of perplexities and the best pair. */
static void report_search(const lstm_eval_result *s, const lstm_cache_grid *g, int N, const char *name, int json)
{
    double ppl = lstm_eval_ppl(s->nll / (double)s->tokens), best = INFINITY;
    int bi = 0, bj = 0;
    for (int i = 0; i < g->nt; i++)
        for (int j = 0; j < g->nl; j++) {
            double p = lstm_eval_ppl(g->nll[i * g->nl + j] / (double)s->tokens);
            if (p < best) best = p, bi = i, bj = j;
        }
    if (json) {
        json_t *o = json_object(), *th = json_array(), *la = json_array(), *tab = json_array(), *b = json_object();
        json_object_set_new(o, "input", json_string(name));
        json_object_set_new(o, "tokens", json_integer((json_int_t)s->tokens));
        json_object_set_new(o, "perplexity", json_real(ppl));
        json_object_set_new(o, "cache_size", json_integer(N));
        for (int i = 0; i < g->nt; i++) json_array_append_new(th, json_real(g->theta[i]));
        for (int j = 0; j < g->nl; j++) json_array_append_new(la, json_real(g->lambda[j]));
        for (int i = 0; i < g->nt; i++) {
            json_t *row = json_array();
            for (int j = 0; j < g->nl; j++)
                json_array_append_new(row, json_real(lstm_eval_ppl(g->nll[i * g->nl + j] / (double)s->tokens)));
            json_array_append_new(tab, row);
        }
        json_object_set_new(o, "theta", th);
        json_object_set_new(o, "lambda", la);
        json_object_set_new(o, "cache_perplexity", tab);
        json_object_set_new(b, "theta", json_real(g->theta[bi]));
        json_object_set_new(b, "lambda", json_real(g->lambda[bj]));
        json_object_set_new(b, "perplexity", json_real(best));
        json_object_set_new(o, "best", b);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
        fputc('\n', stdout);
        json_decref(o);
        return;
    }
    printf("cache search on %s: %ld tokens, %d pairs per lane; perplexity without the cache %.2f\n", name, s->tokens, N,
           ppl);
    printf("theta\\lambda");
    for (int j = 0; j < g->nl; j++) printf(" %8g", g->lambda[j]);
    printf("\n");
    for (int i = 0; i < g->nt; i++) {
        printf("%-12g", g->theta[i]);
        for (int j = 0; j < g->nl; j++) printf(" %8.2f", lstm_eval_ppl(g->nll[i * g->nl + j] / (double)s->tokens));
        printf("\n");
    }
    printf("best: --cache %d --cache-theta %g --cache-lambda %g: perplexity %.2f (%+.1f%%)\n", N, g->theta[bi],
           g->lambda[bj], best, 100.0 * (best / ppl - 1));
    if (!(best < ppl)) printf("no pair of the grid beats the model alone (perplexity %.2f): leave the cache off\n", ppl);
}

/* The windows, tokenized as the model's tokenizer does. */
static lstm_dataset *open_windows(const char *path, const char *name, const char *model, const lstm_lm *lm)
{
    lstm_dataset *d;
    uint32_t kind;
    char msg[1024];
    int rc = lstm_dataset_open(&d, path, (size_t)2048 << 20, &kind);
    if (rc == LSTM_E_TEXT && path && strcmp(path, "-"))
        tool_die(1, "%s: a text/CSV file, not windows: tokenize it with the model's tokenizer and cut it into windows "
               "(lstm-tok -m %s %s | lstm-window -L 15 | " PROG " -m %s)", name, model, name, model);
    if (rc == LSTM_E_TEXT)
        tool_die(1, "stdin: text/CSV, not windows: tokenize it with the model's tokenizer and cut it into windows "
               "(... | lstm-tok -m %s | lstm-window -L 15 | " PROG " -m %s)", model, model);
    if (rc) tool_die(1, "%s", lstm_dataset_open_message(rc, kind, name, msg, sizeof msg));
    size_t bl;
    const uint8_t *blob = lstm_meta_get(lstm_dataset_meta(d), "tokenizer", &bl);
    if (!lstm_lm_same_tokenizer(lm, blob, bl))
        tool_die(1, "%s: tokenizer does not match %s's: tokenize it with lstm-tok -m %s", name, model, model);
    int reversed = lstm_meta_reverse(lstm_dataset_meta(d)), want = lm->m->cfg.reverse;
    if (reversed != want)
        tool_die(1, "%s: windows of documents %s, but %s was trained on documents %s: cut the windows %s", name,
                 lstm_reverse_desc(reversed), model, lstm_reverse_desc(want),
                 want == LSTM_REVERSE_DOCS ? "with lstm-window --reverse" : want == LSTM_REVERSE_TURNS ? "with lstm-window --reverse-turns" : "without --reverse");
    if (lstm_dataset_count(d) == 0) tool_die(1, "%s: no windows to evaluate", name);
    return d;
}

/* --fill: the token stream's documents, each with one blank per line or turn. */
static void run_fill(const char *path, const char *name, const char *model, const char *bpath, const char *prior,
                     uint64_t seed, int K, int json)
{
    if (K != 5) tool_die(2, "--fill reports top-1 and top-5: no -k");
    lstm_lm fw, bw;
    char msg[1024];
    int rc = lstm_lm_open(&fw, model);
    if (rc) tool_die(1, "%s", lstm_lm_open_error(&fw, rc, model, msg, sizeof msg));
    if ((rc = lstm_lm_open(&bw, bpath))) tool_die(1, "%s", lstm_lm_open_error(&bw, rc, bpath, msg, sizeof msg));
    if (fw.kind == LSTM_TOK_BPE || fw.kind == LSTM_TOK_CHARS)
        tool_die(1, "--fill: %s has a %s tokenizer: fill-in-the-middle needs word models (lstm-tok --split words or space)",
                 model, lstm_tokenizer_kind_name(fw.kind));
    if (fw.m->cfg.reverse) tool_die(1, "%s: a right-to-left model (trained on --reverse windows): give it as --backward", model);
    if (bw.m->cfg.reverse <= 0)
        tool_die(1, "--backward %s: a left-to-right model: train the backward model on lstm-window --reverse windows", bpath);
    if (!lstm_lm_same_tokenizer(&fw, bw.f.tokenizer, bw.f.tokenizer_len))
        tool_die(1, "--backward %s: its tokenizer differs from %s's: tokenize both models' data with the same vocabulary "
                    "(lstm-tok -m VOCAB)", bpath, model);
    int fd = tool_open_input(path, "a token stream");
    lstm_reader *r;
    rc = lstm_reader_open_sniff(&r, fd, 0);
    if (rc == LSTM_E_TEXT)
        tool_die(1, "%s: text/CSV, not a token stream: tokenize it with the model's tokenizer (lstm-tok -m %s %s > test.tok)",
                 name, model, path ? path : "test.csv");
    if (rc) tool_die(1, "%s: %s", name, rc == LSTM_E_EMPTY ? "empty input (no stream)" : lstm_strerror(rc));
    if (lstm_reader_kind(r) != LSTM_KIND_TOKS) {
        char k[5];
        tool_die(1, "%s: got %s (%s): --fill reads the token stream (lstm-tok -m %s), not windows", name,
                 lstm_kind_desc(lstm_reader_kind(r)), lstm_kind_name(lstm_reader_kind(r), k), model);
    }
    size_t bl;
    const uint8_t *blob = lstm_meta_get(lstm_reader_meta(r), "tokenizer", &bl);
    if (!lstm_lm_same_tokenizer(&fw, blob, bl))
        tool_die(1, "%s: tokenizer does not match %s's: tokenize it with lstm-tok -m %s", name, model, model);
    lstm_fill_eval f;
    if ((rc = lstm_fill_eval_init(&f, &fw, &bw, seed))) tool_die(1, "--fill: %s", lstm_strerror(rc));
    if (prior) {
        uint64_t *c = tool_prior_counts(prior, &fw, model);
        if ((rc = lstm_fill_eval_set_prior(&f, c))) tool_die(1, "--prior: %s", lstm_strerror(rc));
        free(c);
    }
    lstm_fill_stats s;
    memset(&s, 0, sizeof s);
    uint32_t *ids = NULL;
    size_t cap = 0;
    uint64_t docs = 0;
    for (;;) {
        uint8_t tag;
        const uint8_t *p;
        uint32_t len;
        int k = lstm_reader_next(r, &tag, &p, &len);
        if (k < 0) tool_die(1, "%s: %s", name, lstm_strerror(k));
        if (k == 0) break;
        if (tag != 'D') continue;
        size_t n = len / 4;
        if (n > cap) {
            cap = n * 2;
            if (!(ids = realloc(ids, cap * sizeof *ids))) tool_die(1, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            ids[i] = lstm_get_u32(p + 4 * i);
            if (ids[i] >= (uint32_t)fw.V) tool_die(1, "%s: document %llu: token id %u out of range", name, (unsigned long long)docs + 1, ids[i]);
        }
        if ((rc = lstm_fill_eval_doc(&f, ids, n, &s))) tool_die(1, "%s: %s", name, lstm_strerror(rc));
        docs++;
        if (prog_on) {
            double t = tool_now();
            if (prog_last < 0 || t - prog_last >= 0.5) {
                prog_last = t;
                prog_len = fprintf(stderr, "\r" PROG ": %s: %llu documents, %ld blanks", name, (unsigned long long)docs, s.blanks);
                fflush(stderr);
            }
        }
    }
    progress_clear();
    if (s.blanks == 0) tool_die(1, "%s: no word to blank (no line or turn has a vocabulary word)", name);
    double b = (double)s.blanks;
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(model));
        json_object_set_new(o, "backward", json_string(bpath));
        json_object_set_new(o, "input", json_string(name));
        json_object_set_new(o, "seed", json_integer((json_int_t)seed));
        json_object_set_new(o, "blanks", json_integer(s.blanks));
        json_object_set_new(o, "fill_top1", json_real(s.fill1 / b));
        json_object_set_new(o, "fill_top5", json_real(s.fill5 / b));
        json_object_set_new(o, "forward_top1", json_real(s.fwd1 / b));
        json_object_set_new(o, "forward_top5", json_real(s.fwd5 / b));
        json_object_set_new(o, "backward_top1", json_real(s.bwd1 / b));
        json_object_set_new(o, "backward_top5", json_real(s.bwd5 / b));
        json_object_set_new(o, "fill_perplexity", json_real(exp(s.fill_nll / b)));
        json_object_set_new(o, "forward_perplexity", json_real(exp(s.fwd_nll / b)));
        if (prior) {
            json_object_set_new(o, "prior_top1", json_real(s.prior1 / b));
            json_object_set_new(o, "prior_top5", json_real(s.prior5 / b));
            json_object_set_new(o, "prior_perplexity", json_real(exp(s.prior_nll / b)));
        }
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        printf("fill-in-the-middle on %s: %ld blanks (one word per line or turn, seed %llu), %llu documents\n", name,
               s.blanks, (unsigned long long)seed, (unsigned long long)docs);
        printf("fill (forward + backward)  top-1 %5.1f%%  top-5 %5.1f%%  perplexity %.2f\n", 100 * s.fill1 / b,
               100 * s.fill5 / b, exp(s.fill_nll / b));
        printf("forward alone (next word)  top-1 %5.1f%%  top-5 %5.1f%%  perplexity %.2f\n", 100 * s.fwd1 / b, 100 * s.fwd5 / b,
               exp(s.fwd_nll / b));
        printf("backward alone             top-1 %5.1f%%  top-5 %5.1f%%\n", 100 * s.bwd1 / b, 100 * s.bwd5 / b);
        if (prior)
            printf("fill / unigram prior       top-1 %5.1f%%  top-5 %5.1f%%  perplexity %.2f\n", 100 * s.prior1 / b,
                   100 * s.prior5 / b, exp(s.prior_nll / b));
    }
    if (fflush(stdout) || ferror(stdout)) tool_die(1, "stdout: %s", strerror(errno));
    free(ids);
    lstm_fill_eval_free(&f);
    lstm_reader_free(r);
    lstm_lm_close(&bw);
    lstm_lm_close(&fw);
}

int main(int argc, char **argv)
{
    lstm_reserve_std_fds(NULL); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    const char *model = NULL, *path = NULL, *tpath = NULL, *bpath = NULL, *prior = NULL;
    int fill = 0;
    unsigned long long seed = 1;
    int K = 5, B = 10, reset = 0, json = 0, keystrokes = 0, threads = 0, beam_words = 8;
    int search = 0, cache_set = 0, ncache_t = 8, ncache_l = 8;
    lstm_cache_opts cache;
    lstm_cache_opts_default(&cache);
    double cache_t[GRID_MAX] = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1};
    double cache_l[GRID_MAX] = {0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4};
    enum { O_BATCH = 256, O_RESET, O_JSON, O_KEYS, O_THREADS, O_BEAMW, O_TRACE, O_CACHE, O_CTHETA, O_CLAMBDA,
           O_CSEARCH, O_CTHETAS, O_CLAMBDAS, O_FILL, O_BACKWARD, O_SEED, O_PRIOR };
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"top", required_argument, 0, 'k'},
        {"batch", required_argument, 0, O_BATCH}, {"reset-state", no_argument, 0, O_RESET},
        {"keystrokes", no_argument, 0, O_KEYS}, {"beam-words", required_argument, 0, O_BEAMW},
        {"keystrokes-trace", required_argument, 0, O_TRACE},
        {"cache", required_argument, 0, O_CACHE}, {"cache-theta", required_argument, 0, O_CTHETA},
        {"cache-lambda", required_argument, 0, O_CLAMBDA}, {"cache-search", no_argument, 0, O_CSEARCH},
        {"cache-thetas", required_argument, 0, O_CTHETAS}, {"cache-lambdas", required_argument, 0, O_CLAMBDAS},
        {"json", no_argument, 0, O_JSON}, {"threads", required_argument, 0, O_THREADS},
        {"fill", no_argument, 0, O_FILL}, {"backward", required_argument, 0, O_BACKWARD},
        {"seed", required_argument, 0, O_SEED}, {"prior", required_argument, 0, O_PRIOR},
        {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int ch;
    tool_init(PROG);
    tool_at_die(cleanup);
    opterr = 0; /* getopt's own messages would start with the full argv[0] */
    while ((ch = getopt_long(argc, argv, ":m:k:qvhV", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'k': K = (int)tool_parse_long(optarg, "-k", 1, 100000); break;
        case O_BATCH: B = (int)tool_parse_long(optarg, "--batch", 1, 100000); break;
        case O_THREADS: threads = (int)tool_parse_long(optarg, "--threads", 1, 100000); break;
        case O_BEAMW: beam_words = (int)tool_parse_long(optarg, "--beam-words", 1, 100000); break;
        case O_RESET: reset = 1; break;
        case O_JSON: json = 1; break;
        case O_KEYS: keystrokes = 1; break;
        case O_TRACE:
            tpath = optarg;
            keystrokes = 1;
            break;
        case O_CACHE: cache.N = (int)tool_parse_long(optarg, "--cache", 0, LSTM_CACHE_MAX_N); break;
        case O_CTHETA: cache.theta = tool_parse_double(optarg, "--cache-theta", 0, 1e6); cache_set = 1; break;
        case O_CLAMBDA: cache.lambda = tool_parse_double(optarg, "--cache-lambda", 0, 1); cache_set = 1; break;
        case O_CSEARCH: search = 1; break;
        case O_FILL: fill = 1; break;
        case O_BACKWARD: bpath = optarg; break;
        case O_PRIOR: prior = optarg; break;
        case O_SEED: seed = (unsigned long long)tool_parse_long(optarg, "--seed", 0, 0x7fffffffffffffffL); break;
        case O_CTHETAS: ncache_t = parse_list(optarg, "--cache-thetas", 0, 1e6, cache_t); search = 1; break;
        case O_CLAMBDAS: ncache_l = parse_list(optarg, "--cache-lambdas", 0, 1, cache_l); search = 1; break;
        case 'q': tool_verbosity = TOOL_QUIET; break;
        case 'v': tool_verbosity = TOOL_VERBOSE; break;
        case 'h': usage(stdout); return 0;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    if (!model) tool_die(2, "no model: give -m MODEL.ckpt (see --help)");
    if (argc - optind > 1) tool_die(2, "one input at most (got %d)", argc - optind);
    if (search && cache.N == 0) tool_die(2, "--cache-search: give the cache size with --cache N (N >= 1)");
    if (search && cache_set)
        tool_die(2, "--cache-search tries a grid of theta and lambda: give it with --cache-thetas / --cache-lambdas, "
                    "not --cache-theta / --cache-lambda");
    if (search && (keystrokes || tpath)) tool_die(2, "--cache-search excludes --keystrokes");
    if (fill && !bpath) tool_die(2, "--fill needs the right-to-left model: give --backward FILE");
    if (bpath && !fill) tool_die(2, "--backward is for --fill");
    if (prior && !fill) tool_die(2, "--prior is for --fill");
    if (fill && (keystrokes || search || cache.N || reset || B != 10))
        tool_die(2, "--fill excludes --keystrokes, --cache, --reset-state and --batch");
    path = optind < argc ? argv[optind] : NULL;
    const char *name = path && strcmp(path, "-") ? path : "stdin";
    if (!path && isatty(0))
        tool_die(2, "reading %s from a terminal: give a file or a pipe (see --help)", fill ? "tokens" : "windows");
    if (!threads && fill) threads = 1; /* one lane, one token at a time: threads only add hand-off latency */
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    lstm_set_threads(threads);

    if (fill) {
        prog_on = isatty(2) && tool_verbosity > TOOL_QUIET;
        run_fill(path, name, model, bpath, prior, seed, K, json);
        return 0;
    }
    lstm_lm lm;
    char msg[1024];
    int rc = lstm_lm_open(&lm, model);
    if (rc) tool_die(1, "%s", lstm_lm_open_error(&lm, rc, model, msg, sizeof msg));
    lstm_dataset *d = open_windows(path, name, model, &lm);
    int T = (int)lstm_dataset_T(d), stateful = !reset && (int)lstm_dataset_K(d) == T;
    if (keystrokes) B = 1;
    FILE *trace = tpath ? tool_keys_trace_open(tpath) : NULL;

    run_t run = {name, trace};
    double grid_nll[GRID_MAX * GRID_MAX] = {0};
    lstm_cache_grid grid = {ncache_t, ncache_l, cache_t, cache_l, grid_nll};
    lstm_eval_opts eo = {K, keystrokes, beam_words, NULL, &run, on_batch, trace ? trace_word : NULL, 0, 0, 0,
                         cache, search ? &grid : NULL};
    lstm_evaluator *ev;
    if ((rc = lstm_evaluator_create(&ev, &lm, B, T, &eo)))
        tool_die(1, "allocating activations for batch %d x %d: %s", B, T, lstm_strerror(rc));
    lstm_eval_result s;
    memset(&s, 0, sizeof s);
    prog_on = isatty(2) && tool_verbosity > TOOL_QUIET;
    double t0 = tool_now();
    if ((rc = lstm_evaluator_run(ev, d, 0, lstm_dataset_count(d), stateful, &s))) tool_die(1, "%s: %s", name, lstm_strerror(rc));
    progress_clear();
    if (s.tokens == 0) tool_die(1, "%s: no target tokens to evaluate", name);
    if (search) report_search(&s, &grid, cache.N, name, json);
    else report(&s, &lm, model, name, stateful, B, K, json, keystrokes, &cache);
    if (tool_verbosity >= TOOL_VERBOSE) {
        char d[32];
        double took = tool_now() - t0;
        tool_fmt_duration(d, sizeof d, took);
        char wd[128];
        tool_msg("%s: %llu target tokens in %s (%.0f tok/s), %s", name, (unsigned long long)s.tokens, d,
                 took > 0 ? (double)s.tokens / took : 0, lstm_lm_weights_desc(&lm, wd, sizeof wd));
    }
    if (fflush(stdout) || ferror(stdout)) tool_die(1, "stdout: %s", strerror(errno));
    if (trace) tool_keys_trace_close(trace, tpath);
    lstm_evaluator_free(ev);
    lstm_dataset_free(d);
    lstm_lm_close(&lm);
    return 0;
}
