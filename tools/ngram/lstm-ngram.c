/* lstm-ngram: the interpolated modified Kneser-Ney n-gram baseline: train a model on a token stream,
 * evaluate it (perplexity, NLL, top-1 / top-K, and with --keystrokes the keystrokes an autocomplete user
 * saves, as lstm-eval counts them) on token streams, scoring the targets lstm-eval scores on the
 * windows of the same text (lib/lm/ngram.h, lib/lm/eval.h's lstm_keys, formats/ngram.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval.h"
#include "fileio.h"
#include "keys.h"
#include "lm.h"
#include "ngram.h"
#include "numparse.h"
#include "stream.h"
#include "tool.h"

#define PROG "lstm-ngram"
#define MAX_EVAL 16

static lstm_out out;
static int tmp_ready; /* out is open: a failure aborts it */

static void cleanup(void)
{
    if (tmp_ready) lstm_out_abort(&out);
    tool_keys_trace_cleanup();
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " train [-n ORDER] [options] [TRAIN]\n"
            "       " PROG " eval -m MODEL [options] [TEST...]\n"
            "An interpolated modified Kneser-Ney n-gram language model (Chen & Goodman 1998) over token\n"
            "streams from lstm-tok: the count-based baseline for the LSTM models. Inputs are files or stdin.\n"
            "\n"
            "train: count n-grams of order 1..ORDER in TRAIN and write the model (formats/ngram.md).\n"
            "  -n, --order N       n-gram order, 1 to 10 (default 5)\n"
            "      --cross-docs    run the history through document boundaries (like lstm-window\n"
            "                      --cross-docs); default: each document starts from a BOS context\n"
            "  -o, --output FILE   write the model to FILE (default stdout, unless --eval is given)\n"
            "  -f, --force         overwrite FILE if it exists\n"
            "      --eval TEST     after training, evaluate on TEST (repeatable): no model file is needed\n"
            "eval: score token streams with a trained model.\n"
            "  -m, --model FILE    model from '" PROG " train' (required)\n"
            "common (eval, and train --eval):\n"
            "      --targets RULE  which tokens are scored (below): docs, stream or all (default: docs, or\n"
            "                      stream for a --cross-docs model: the targets of lstm-window's windows)\n"
            "      --keystrokes    simulate a user typing the text with K suggestions shown before each word and\n"
            "                      after each typed character, as lstm-eval --keystrokes does; report keystrokes\n"
            "                      saved and acceptance rate (word models: lstm-tok --words or --split space)\n"
            "  -k, --top K         also report top-K accuracy (default 5); with --keystrokes: suggestions shown\n"
            "      --keystrokes-trace FILE  --keystrokes, and one line per typed word into FILE (a new file):\n"
            "                      word, characters, keystrokes, characters typed before accepting it (- if none)\n"
            "      --json          one JSON object per evaluated stream instead of text\n"
            "  -q, --quiet         no summary on stderr\n"
            "  -v, --verbose       summary, discounts and times on stderr even when it is not a terminal\n"
            "  -h, --help          this help\n"
            "  -V, --version       version\n"
            "\n"
            "The history of every token starts with one BOS at each document (with --cross-docs, at the\n"
            "stream), the <s> ... </s> convention of SRILM and KenLM. Scored are the targets lstm-eval scores\n"
            "on the windows of the same text, so the two perplexities are over the same tokens: never PAD or\n"
            "BOS (a BOS only follows a speaker tag: it is no prediction), and never a document's first token\n"
            "(--targets docs, for lstm-window's default windows) or the stream's first token (--targets\n"
            "stream, for lstm-window --cross-docs), which no window has as a target. --targets all scores\n"
            "every document's first token too, predicted from BOS: how published n-gram perplexities are\n"
            "computed (Penn Treebank: every word and </s>). EOS and speaker tags are scored. Distributions are\n"
            "over the V - 2 ids other than PAD and BOS, UNK included. Perplexity is exp(mean NLL per scored\n"
            "token); top-1 / top-K: the share of them that were the model's most probable next token / among\n"
            "its K most probable (ties: the lower id first).\n"
            "Keystrokes are counted as lstm-eval counts them, on the same words: a word of n characters costs\n"
            "n + 1 keystrokes typed (the +1 is the space after it); accepting a suggestion after typing j\n"
            "characters costs j + 1 (the click or tab; the space after it is free). The suggestions are the K vocabulary words extending the typed prefix that\n"
            "the n-gram's exact distribution over the whole vocabulary ranks first. Punctuation is typed, never\n"
            "suggested; an unknown word (<unk>) counts as 5 characters typed in full plus the space.\n"
            "Saved = 1 - keystrokes with suggestions / keystrokes without.\n"
            "A test stream must carry the training stream's tokenizer (lstm-tok -m TRAIN.tok or its vocab).\n"
            "\n"
            "Examples:\n"
            "  lstm-tok --split space --unk-token '<unk>' --vocab-out ptb.vocab ptb.train.txt > train.tok\n"
            "  lstm-tok --split space --unk-token '<unk>' -m ptb.vocab ptb.test.txt > test.tok\n"
            "  " PROG " train -n 5 -o ptb5.ngram train.tok && " PROG " eval -m ptb5.ngram test.tok\n"
            "  " PROG " train -n 3 --eval valid.tok --eval test.tok train.tok    # train and evaluate at once\n"
            "  " PROG " eval -m chat5.ngram --keystrokes -k 3 test.tok           # as lstm-eval -m chat.ckpt --keystrokes -k 3\n");
}

/* ---- token stream input ---- */
typedef struct {
    const char *name; /* for messages */
    int fd;
    lstm_reader *r;
    uint64_t V;
    const uint8_t *tok; /* tokenizer blob (metadata of r) */
    size_t tok_len;
    uint32_t *ids; /* (cap) the current document */
    size_t n, cap;
    uint64_t docs;
} tokin;

static int in_closed, out_closed;

/* tok_m: NULL for a training stream, else the -m a test stream must be tokenized with; then is the rest
 * of the pipeline: both only for the message on text given instead of a stream. */
static void tokin_open(tokin *t, const char *path, const char *tok_m, const char *then)
{
    memset(t, 0, sizeof *t);
    t->name = path && strcmp(path, "-") ? path : "stdin";
    if (!path || strcmp(path, "-") == 0) {
        if (in_closed) tool_die(1, "stdin: %s", strerror(EBADF));
        if (isatty(0)) tool_die(2, "reading a token stream from a terminal: give a file or a pipe (see --help)");
    }
    t->fd = lstm_in_open(path);
    if (t->fd < 0) tool_die(1, "%s: %s", t->name, strerror(errno));
    int rc = lstm_reader_open_sniff(&t->r, t->fd, 0);
    if (rc == LSTM_E_TEXT) {
        const char *how = tok_m ? "tokenize it like the training stream" : "pipe it through lstm-tok";
        if (path && strcmp(path, "-"))
            tool_die(1, "%s: a text/CSV file, not a token stream: %s (lstm-tok%s%s %s%s)", t->name, how, tok_m ? " -m " : "",
                tok_m ? tok_m : "", t->name, then);
        tool_die(1, "stdin: text/CSV, not a token stream: %s (... | lstm-tok%s%s%s)", how, tok_m ? " -m " : "",
            tok_m ? tok_m : "", then);
    }
    if (rc) tool_die(1, "%s: %s", t->name, rc == LSTM_E_EMPTY ? "empty input (no stream)" : lstm_strerror(rc));
    uint32_t kind = lstm_reader_kind(t->r);
    if (kind != LSTM_KIND_TOKS) {
        char k[5];
        tool_die(1, "%s: got %s (%s), expected a token stream (TOKS): make one with lstm-tok", t->name, lstm_kind_desc(kind),
            lstm_kind_name(kind, k));
    }
    const lstm_meta *m = lstm_reader_meta(t->r);
    if (lstm_meta_get_u64(m, "vocab_size", &t->V) != 0 || t->V <= 4 || t->V > (1u << 28))
        tool_die(1, "%s: no valid vocab_size in the stream's metadata", t->name);
    t->tok = lstm_meta_get(m, "tokenizer", &t->tok_len);
    if (!t->tok) tool_die(1, "%s: no tokenizer in the stream's metadata", t->name);
}

/* 1 with a document in t->ids (t->n), 0 at the end of the stream. */
static int tokin_next(tokin *t)
{
    uint8_t tag;
    const uint8_t *p;
    uint32_t len;
    int k = lstm_reader_next(t->r, &tag, &p, &len);
    if (k < 0) tool_die(1, "%s: %s", t->name, lstm_strerror(k));
    if (k == 0) return 0;
    if (tag != LSTM_REC_DOC || len % 4) tool_die(1, "%s: %s", t->name, lstm_strerror(LSTM_E_FORMAT));
    t->n = len / 4;
    if (t->n > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n) cap *= 2;
        uint32_t *ids = realloc(t->ids, cap * sizeof *ids);
        if (!ids) tool_die(1, "out of memory");
        t->ids = ids;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->n; i++) {
        t->ids[i] = lstm_get_u32(p + 4 * i);
        if (t->ids[i] >= t->V)
            tool_die(1, "%s: document %llu: token id %u out of range (vocab_size %llu)", t->name,
                (unsigned long long)t->docs + 1, t->ids[i], (unsigned long long)t->V);
    }
    t->docs++;
    return 1;
}

static void tokin_close(tokin *t)
{
    lstm_reader_free(t->r);
    if (t->fd > 0) close(t->fd);
    free(t->ids);
}

/* A test stream must have been tokenized like the model's training stream. */
static void check_tokenizer(const tokin *t, const lstm_ngram *m, const char *model)
{
    size_t len;
    const uint8_t *blob = lstm_ngram_tokenizer(m, &len);
    if (len != t->tok_len || memcmp(blob, t->tok, len) != 0 || t->V != lstm_ngram_vocab(m))
        tool_die(1, "%s: tokenizer does not match %s's: tokenize it with lstm-tok -m (the training stream or its vocab)",
            t->name, model);
}

static const char *model_error(int rc)
{
    switch (rc) {
    case LSTM_E_MAGIC: return "not an lstm-ngram model (wrong magic)";
    case LSTM_E_VERSION: return "unsupported model version";
    case LSTM_E_TRUNCATED: return "truncated model file";
    case LSTM_E_CORRUPT: return "corrupted model (checksum mismatch)";
    case LSTM_E_FORMAT: return "malformed model";
    default: return lstm_strerror(rc);
    }
}

typedef struct {
    int json, quiet, verbose;
    int targets;       /* LSTM_NGRAM_TARGETS_*, or -1: the model's default */
    int keystrokes, K; /* --keystrokes, -k */
    const char *trace; /* --keystrokes-trace FILE, or NULL */
} common_opts;

enum { O_CROSS = 256, O_EVAL, O_JSON, O_TARGETS, O_KEYS, O_TRACE };

/* The options train and eval share: 1 if ch was one. */
static int common_opt(common_opts *o, int ch, const char *arg)
{
    switch (ch) {
    case O_JSON: o->json = 1; return 1;
    case 'q': o->quiet = 1; return 1;
    case 'v': o->verbose = 1; return 1;
    case O_TARGETS:
        if ((o->targets = lstm_ngram_targets_parse(arg)) < 0)
            tool_die(2, "--targets: expected docs, stream or all, got '%s'", arg);
        return 1;
    case O_KEYS: o->keystrokes = 1; return 1;
    case 'k': o->K = (int)tool_parse_long(arg, "-k", 1, 100000); return 1;
    case O_TRACE:
        o->trace = arg;
        o->keystrokes = 1;
        return 1;
    default: return 0;
    }
}

#define COMMON_LONGOPTS                                                                                            \
    {"json", no_argument, 0, O_JSON}, {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'},           \
        {"targets", required_argument, 0, O_TARGETS}, {"keystrokes", no_argument, 0, O_KEYS},                    \
        {"top", required_argument, 0, 'k'},                                                                     \
        {"keystrokes-trace", required_argument, 0, O_TRACE}, {"help", no_argument, 0, 'h'},                      \
        {"version", no_argument, 0, 'V'}

/* What the evaluations need: the trace goes to one stream only. */
static void check_common(const common_opts *o, int nstreams)
{
    if (o->trace && nstreams > 1)
        tool_die(2, "--keystrokes-trace: one test stream at a time (got %d)", nstreams);
}

static int chatty(const common_opts *o) { return o->verbose || (!o->quiet && isatty(2)); }

typedef struct {
    FILE *trace;
} trace_ctx;

static int trace_word(void *ctx, const char *w, size_t n, size_t chars, long keys, long typed)
{
    tool_keys_trace_line(((trace_ctx *)ctx)->trace, w, n, chars, keys, typed);
    return 0;
}

/* --keystrokes: the word view of the model's tokenizer (blob), which must be a word model's; name
 * names the model in messages. */
static void keys_view(lstm_lm *lm, const uint8_t *blob, size_t len, const char *name)
{
    int rc = lstm_lm_open_tokenizer(lm, blob, len);
    if (rc) tool_die(1, "%s: its tokenizer: %s", name, lstm_strerror(rc));
    if (lm->kind != LSTM_TOK_WORDS && lm->kind != LSTM_TOK_SPACE)
        tool_die(1, "%s: --keystrokes needs a word model (lstm-tok --words or --split space), not a %s model: its words "
                    "are assembled by a beam that runs an LSTM (lstm-eval --keystrokes)",
                 name, lm->kind == LSTM_TOK_BPE ? "BPE" : "character");
}

/* Scores one stream and prints its line (text or JSON) on stdout; with --keystrokes, the keystroke
 * line of lstm-eval after it. model names the model in messages; tok_m and then are tokin_open's. */
static void eval_one(const lstm_ngram *m, const char *model, const char *tok_m, const char *then, const char *path,
                     const common_opts *o)
{
    tokin t;
    tokin_open(&t, path, tok_m, then);
    check_tokenizer(&t, m, model);
    double t0 = tool_now();
    lstm_ngram_scorer *s;
    if (lstm_ngram_scorer_new(&s, m, 1)) tool_die(1, "out of memory");
    int targets = o->targets >= 0 ? o->targets : lstm_ngram_default_targets(m);
    lstm_ngram_scorer_targets(s, targets);
    lstm_ngram_scorer_topk(s, o->K);
    lstm_lm lm;
    lstm_keys ks;
    lstm_eval_result kr;
    trace_ctx tc = {NULL};
    memset(&kr, 0, sizeof kr);
    if (o->keystrokes) {
        size_t bl;
        const uint8_t *blob = lstm_ngram_tokenizer(m, &bl);
        keys_view(&lm, blob, bl, model);
        if (o->trace) tc.trace = tool_keys_trace_open(o->trace);
        int rc;
        if ((rc = lstm_keys_init(&ks, &lm, o->K, 1, &kr, &tc, tc.trace ? trace_word : NULL)))
            tool_die(1, "%s", lstm_strerror(rc));
        lstm_ngram_scorer_on_target(s, lstm_keys_ngram_target, &ks);
    }
    while (tokin_next(&t)) {
        int rc = lstm_ngram_scorer_add(s, t.ids, t.n);
        if (rc) tool_die(1, "%s: %s", t.name, lstm_strerror(rc));
    }
    lstm_ngram_stats st;
    lstm_ngram_scorer_stats(s, &st);
    if (st.tokens == 0) tool_die(1, "%s: no tokens to evaluate", t.name);
    double nll = st.nll / (double)st.tokens, ppl = exp(nll), top1 = (double)st.top1 / (double)st.tokens;
    double topk = (double)st.topk / (double)st.tokens;
    unsigned N = lstm_ngram_order(m);
    const char *mode = lstm_ngram_cross_docs(m) ? "cross-docs" : "per-document";
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(model));
        json_object_set_new(j, "input", json_string(t.name));
        json_object_set_new(j, "order", json_integer(N));
        json_object_set_new(j, "cross_docs", json_boolean(lstm_ngram_cross_docs(m)));
        json_object_set_new(j, "targets", json_string(lstm_ngram_targets_name(targets)));
        json_object_set_new(j, "documents", json_integer((json_int_t)t.docs));
        json_object_set_new(j, "tokens", json_integer((json_int_t)st.tokens));
        json_object_set_new(j, "skipped", json_integer((json_int_t)st.skipped));
        json_object_set_new(j, "nll", isfinite(nll) ? json_real(nll) : json_null());
        json_object_set_new(j, "perplexity", isfinite(ppl) ? json_real(ppl) : json_null());
        json_object_set_new(j, "top1", json_real(top1));
        json_object_set_new(j, "k", json_integer(o->K));
        json_object_set_new(j, "topk", json_real(topk));
        if (o->keystrokes) tool_keys_json(j, &kr);
        json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
        putchar('\n');
        json_decref(j);
    } else {
        printf("%s: perplexity %.2f (nll %.4f, %llu tokens, %u-gram, %s, targets %s) top-1 %.1f%% top-%d %.1f%%\n",
               t.name, ppl, nll, (unsigned long long)st.tokens, N, mode, lstm_ngram_targets_name(targets), 100 * top1,
               o->K, 100 * topk);
        if (o->keystrokes) tool_keys_print(&kr, o->K);
    }
    if (fflush(stdout) || ferror(stdout)) tool_die(1, "stdout: %s", strerror(errno));
    if (tc.trace) tool_keys_trace_close(tc.trace, o->trace);
    if (chatty(o))
        fprintf(stderr, PROG ": %s: %llu documents, %llu tokens scored%s in %.2f s\n", t.name,
                (unsigned long long)t.docs, (unsigned long long)st.tokens, o->keystrokes ? " and typed" : "",
                tool_now() - t0);
    if (o->keystrokes) {
        lstm_keys_free(&ks);
        lstm_lm_close(&lm);
    }
    lstm_ngram_scorer_free(s);
    tokin_close(&t);
}

static int cmd_train(int argc, char **argv)
{
    long N = 5;
    int cross = 0, force = 0;
    common_opts co = {0, 0, 0, -1, 0, 5, NULL};
    const char *opath = NULL, *evals[MAX_EVAL];
    int nevals = 0;
    static const struct option opts[] = {
        {"order", required_argument, 0, 'n'}, {"cross-docs", no_argument, 0, O_CROSS},
        {"output", required_argument, 0, 'o'}, {"force", no_argument, 0, 'f'},
        {"eval", required_argument, 0, O_EVAL}, COMMON_LONGOPTS, {0, 0, 0, 0}};
    int ch;
    opterr = 0; /* getopt's own messages would start with the full argv[0] */
    while ((ch = getopt_long(argc, argv, ":n:o:fk:qvhV", opts, NULL)) != -1) {
        if (common_opt(&co, ch, optarg)) continue;
        switch (ch) {
        case 'n': N = tool_parse_long(optarg, "-n", 1, LSTM_NGRAM_MAX_ORDER); break;
        case O_CROSS: cross = 1; break;
        case 'o': opath = optarg; break;
        case 'f': force = 1; break;
        case O_EVAL:
            if (nevals == MAX_EVAL) tool_die(2, "--eval: at most %d test streams", MAX_EVAL);
            evals[nevals++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    if (argc - optind > 1) tool_die(2, "train: one training stream at most (got %d)", argc - optind);
    const char *ipath = optind < argc ? argv[optind] : NULL;
    if (!nevals && (co.keystrokes || co.targets >= 0))
        tool_die(2, "train: --%s applies to the evaluations: give the test streams with --eval TEST",
                 co.keystrokes ? "keystrokes" : "targets");
    check_common(&co, nevals);
    int to_stdout = !opath && !nevals;
    if (to_stdout && isatty(1)) tool_die(2, "refusing to write binary data to a terminal: use -o FILE or a pipe");
    if (opath && strcmp(opath, "-") == 0 && nevals) tool_die(2, "--eval prints on stdout: write the model with -o FILE");
    if (out_closed && (to_stdout || nevals || (opath && !strcmp(opath, "-")))) tool_die(1, "stdout: %s", strerror(EBADF));
    for (int i = 0; i < nevals; i++)
        if ((!ipath || !strcmp(ipath, "-")) && !strcmp(evals[i], "-"))
            tool_die(2, "--eval -: stdin is already the training stream");
    /* the model written over an input would destroy it: refuse before training */
    if (opath && ipath && lstm_same_file(opath, ipath)) tool_die(2, "%s: -o names the training stream", opath);
    for (int i = 0; i < nevals; i++)
        if (opath && lstm_same_file(opath, evals[i])) tool_die(2, "%s: -o names a stream given with --eval", opath);

    tokin t;
    tokin_open(&t, ipath, NULL, " | " PROG " train ...");
    const char *tok_m = ipath && strcmp(ipath, "-") ? t.name : "<training stream or its vocab>";
    if (co.keystrokes) { /* refused before training, not after */
        lstm_lm lm;
        keys_view(&lm, t.tok, t.tok_len, t.name);
        lstm_lm_close(&lm);
    }
    /* Refuse a test stream with another tokenizer before spending time on training (stdin can only
     * be read once, so it is checked when it is evaluated). */
    for (int i = 0; i < nevals; i++) {
        if (!strcmp(evals[i], "-")) continue;
        tokin e;
        tokin_open(&e, evals[i], tok_m, " > test.tok");
        if (e.tok_len != t.tok_len || memcmp(e.tok, t.tok, t.tok_len) != 0 || e.V != t.V)
            tool_die(1, "%s: tokenizer does not match %s's: tokenize it with lstm-tok -m %s", e.name, t.name, t.name);
        tokin_close(&e);
    }
    if (opath || to_stdout) {
        int rc = lstm_out_open(&out, opath, force);
        if (rc) tool_die(1, "%s: %s", opath, rc == LSTM_E_IO ? strerror(errno) : lstm_strerror(rc));
        tmp_ready = 1;
        tool_exit_on_signals();
    }

    double t0 = tool_now();
    lstm_ngram_counter *c;
    if (lstm_ngram_counter_new(&c, (unsigned)N, (uint32_t)t.V, cross)) tool_die(1, "out of memory");
    while (tokin_next(&t)) {
        int rc = lstm_ngram_counter_add(c, t.ids, t.n);
        if (rc) tool_die(1, "%s: %s", t.name, rc == LSTM_E_TOOBIG ? "an n-gram count passes 2^32 - 1" : lstm_strerror(rc));
    }
    double t1 = tool_now();
    lstm_ngram *m;
    int rc = lstm_ngram_estimate(&m, c, NULL, t.tok, t.tok_len);
    if (rc == LSTM_E_EMPTY) tool_die(1, "%s: no tokens to train on", t.name);
    if (rc) tool_die(1, "%s: %s", t.name, lstm_strerror(rc));
    lstm_ngram_counter_free(c);
    double t2 = tool_now();
    if (chatty(&co)) {
        fprintf(stderr, PROG ": %s: %llu documents, %llu tokens, %ld-gram (%s) counted in %.2f s, estimated in %.2f s\n",
                t.name, (unsigned long long)t.docs, (unsigned long long)lstm_ngram_train_tokens(m), N,
                cross ? "cross-docs" : "per-document", t1 - t0, t2 - t1);
        if (co.verbose)
            for (unsigned k = 1; k <= (unsigned)N; k++) {
                uint64_t ng, nc, nk[4];
                double D[3];
                lstm_ngram_level(m, k, &ng, &nc, D, nk);
                fprintf(stderr,
                        PROG ": order %u: %llu n-grams, %llu contexts, n1..n4 %llu %llu %llu %llu, D %.4f %.4f %.4f\n",
                        k, (unsigned long long)ng, (unsigned long long)nc, (unsigned long long)nk[0],
                        (unsigned long long)nk[1], (unsigned long long)nk[2], (unsigned long long)nk[3], D[0], D[1],
                        D[2]);
            }
    }
    tokin_close(&t);

    if (opath || to_stdout) {
        const char *where = opath && strcmp(opath, "-") ? opath : "stdout";
        rc = lstm_ngram_write(m, out.fd);
        if (!rc) rc = lstm_out_commit(&out);
        if (rc) tool_die(1, "%s: %s", where, rc == LSTM_E_IO ? strerror(errno) : lstm_strerror(rc));
        tmp_ready = 0;
        if (co.verbose) fprintf(stderr, PROG ": model written to %s in %.2f s\n", where, tool_now() - t2);
    }
    for (int i = 0; i < nevals; i++) eval_one(m, t.name, tok_m, " > test.tok", evals[i], &co);
    lstm_ngram_free(m);
    return 0;
}

static int cmd_eval(int argc, char **argv)
{
    common_opts co = {0, 0, 0, -1, 0, 5, NULL};
    const char *mpath = NULL;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, COMMON_LONGOPTS, {0, 0, 0, 0}};
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":m:k:qvhV", opts, NULL)) != -1) {
        if (common_opt(&co, ch, optarg)) continue;
        switch (ch) {
        case 'm': mpath = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    if (!mpath) tool_die(2, "eval: -m MODEL is required");
    if (out_closed) tool_die(1, "stdout: %s", strerror(EBADF));
    int nin = argc - optind, nstdin = 0;
    for (int i = optind; i < argc; i++) nstdin += strcmp(argv[i], "-") == 0;
    if (nstdin > 1 || (nstdin && !strcmp(mpath, "-"))) tool_die(2, "eval: stdin can be read once");
    check_common(&co, nin);
    double t0 = tool_now();
    int fd = lstm_in_open(mpath);
    const char *mname = strcmp(mpath, "-") ? mpath : "stdin";
    if (fd < 0) tool_die(1, "%s: %s", mname, strerror(errno));
    lstm_ngram *m;
    uint32_t version;
    int rc = lstm_ngram_read(&m, fd, &version);
    if (rc == LSTM_E_VERSION && version >= 1 && version < LSTM_NGRAM_VERSION)
        tool_die(1, "%s: an n-gram model of format version %u, made by an older " PROG ": train it again with " PROG
                 " train", mname, version);
    if (rc) tool_die(1, "%s: %s", mname, rc == LSTM_E_IO ? strerror(errno) : model_error(rc));
    if (fd > 0) close(fd);
    if (co.verbose)
        fprintf(stderr, PROG ": %s: %u-gram model loaded in %.2f s\n", mname, lstm_ngram_order(m), tool_now() - t0);
    char then[1200];
    snprintf(then, sizeof then, " | " PROG " eval -m %s", mname);
    const char *tok_m = "<training stream or its vocab>";
    if (nin == 0) eval_one(m, mname, tok_m, then, NULL, &co);
    for (int i = optind; i < argc; i++) eval_one(m, mname, tok_m, then, argv[i], &co);
    lstm_ngram_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    int closed; /* eval and train --eval print on stdout, train writes the model there */
    tool_init(PROG);
    tool_at_die(cleanup);
    lstm_reserve_std_fds(&closed); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    in_closed = closed & 1;
    out_closed = closed & 2;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) tool_version();
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    tool_die(2, "unknown command '%s': expected train or eval (see --help)", cmd);
}
