/* lstm-eval: evaluate a checkpoint on a window stream: NLL, perplexity, top-1 / top-k accuracy,
 * per-word perplexity, and (--keystrokes) the keystrokes an autocomplete user would save. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dataset.h"
#include "decode.h"
#include "fileio.h"
#include "lm.h"
#include "utf8.h"

#define PROG "lstm-eval"
#define VERSION "1.0"

static const char *trace_path; /* --keystrokes-trace file we created: removed when we fail */

/* ---- progress on stderr, only when it is a terminal: one \r line, at most twice a second ---- */
static int prog_on;   /* stderr is a tty */
static int prog_len;  /* width of the line shown now (0 = none) */
static double prog_last = -1;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress_clear(void)
{
    if (prog_len) fprintf(stderr, "\r%*s\r", prog_len, "");
    prog_len = 0;
}

static void progress(uint64_t done, uint64_t total, const char *name)
{
    if (!prog_on || total == 0) return;
    double t = now_s();
    if (prog_last >= 0 && t - prog_last < 0.5) return;
    prog_last = t;
    int n = fprintf(stderr, "\r" PROG ": %s: %3.0f%% (%llu of %llu batches)", name, 100.0 * (double)done / (double)total,
                    (unsigned long long)done, (unsigned long long)total);
    n = n > 0 ? n - 1 : 0;
    if (n < prog_len) fprintf(stderr, "%*s", prog_len - n, ""); /* a shorter line leaves no tail */
    if (n > prog_len) prog_len = n;
    fflush(stderr);
}

static void die(int code, const char *fmt, ...)
{
    progress_clear();
    if (trace_path) unlink(trace_path);
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
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
            "      --json           one JSON object instead of text\n"
            "      --threads N      BLAS threads (default: all cores)\n"
            "  -h, --help           this help\n"
            "  -V, --version        version\n"
            "\n"
            "Perplexity is exp(mean NLL per target token). Per-word perplexity is exp(total NLL / words), words\n"
            "being the whitespace-separated words of the text plus one per end of line or turn (EOS), so models\n"
            "with different tokenizers can be compared on the same text. When stderr is a terminal, the percent\n"
            "done is shown there while evaluating (never when stderr is a file or a pipe).\n"
            "\n"
            "Keystrokes: a word of n characters costs n + 1 keystrokes typed (the +1 is the space after it);\n"
            "accepting a suggestion after typing j characters costs j + 1 (the click or tab; the space after an\n"
            "accepted word is inserted for free). The suggestions are those of lstm-sample --suggest K with the same\n"
            "--beam-words for the text so far: for BPE and character models the word beam runs again after each\n"
            "typed character, constrained to the typed prefix. Punctuation is typed, never suggested. An unknown\n"
            "word (<unk>) counts as 5 characters typed in full plus the space: the stream does not keep its text,\n"
            "so its real length is unknown. Saved = 1 - keystrokes with suggestions / keystrokes without.\n"
            "\n"
            "Example:\n"
            "  lstm-tok -m chat.ckpt < test.csv | lstm-window -L 15 | " PROG " -m chat.ckpt\n");
}

typedef struct {
    double nll;
    long tokens, top1, topk, words;
} stats_t;

static double safe_exp(double x) { return x < 700 ? exp(x) : INFINITY; }

/* Counts one scored target: rank of the target among the logits, and whether it starts a word. */
static void score_target(stats_t *s, const lstm_lm *lm, const float *lg, uint32_t prev, uint32_t tg, int k)
{
    float x = lg[tg];
    int above = 0, V = lm->V;
    for (int i = 0; i < V && above < k; i++) above += lg[i] > x || (lg[i] == x && (uint32_t)i < tg);
    s->top1 += above < 1;
    s->topk += above < k;
    s->words += tg == LSTM_EOS_ID || lstm_lm_starts_word(lm, prev, tg);
}

/* ------------------------------------------------------------------ keystrokes */

typedef struct {
    double with, without; /* keystrokes */
    long words, accepted, shown;
} keys_t;

static size_t cp_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Byte length of the first j code points of s. */
static size_t cp_bytes(const char *s, size_t n, size_t j)
{
    size_t i = 0;
    while (i < n && j > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        j--;
    }
    return i;
}

/* Books a typed word of len characters, accepted after typing j of them (j < 0: typed in full), and
 * traces it. A suggestion list is shown before each typed character up to the accepting one. */
static void book_word(keys_t *ks, FILE *trace, const char *w, size_t n, size_t len, long j)
{
    ks->words++;
    ks->without += (double)len + 1;
    ks->with += j >= 0 ? (double)j + 1 : (double)len + 1;
    ks->accepted += j >= 0;
    ks->shown += j >= 0 ? j + 1 : (long)len;
    if (!trace) return;
    if (j >= 0) fprintf(trace, "%.*s\t%zu\t%ld\t%ld\n", (int)n, w, len, j + 1, j);
    else fprintf(trace, "%.*s\t%zu\t%zu\t-\n", (int)n, w, len, len + 1);
}

/* BPE / chars: the word w (normalised text, n bytes) typed with, before each character, exactly the
 * K suggestions lstm-sample --suggest K shows for the text so far: lstm_suggest from the state st and
 * logits lg at the word start, with the typed characters as the (normalised) prefix. A word outside
 * the beam at the word start can still be suggested once its first characters are typed. */
static int type_word_beam(keys_t *ks, FILE *trace, lstm_suggester *g, const lstm_lm *lm, const lstm_state *st,
                          const float *lg, const char *w, size_t n, int K, lstm_suggestion *out /* (K) */)
{
    size_t len = cp_count(w, n);
    char prefix[4 * LSTM_WORD_MAX];
    for (size_t j = 0; j < len; j++) {
        size_t plen = 0;
        if (j > 0) {
            int rc = lstm_lm_normalize(lm, w, cp_bytes(w, n, j), prefix, sizeof prefix, &plen);
            if (rc) return rc;
        }
        prefix[plen] = 0;
        int nc = lstm_suggest(g, st, lg, prefix, plen, K, out, NULL);
        if (nc < 0) return nc;
        for (int i = 0; i < nc; i++)
            if (out[i].len == n && !memcmp(out[i].word, w, n)) {
                book_word(ks, trace, w, n, len, (long)j);
                return 0;
            }
    }
    book_word(ks, trace, w, n, len, -1);
    return 0;
}

static void type_plain(keys_t *ks, size_t chars, int word)
{
    ks->without += (double)chars + word;
    ks->with += (double)chars + word;
    ks->words += word;
}

int main(int argc, char **argv)
{
    lstm_reserve_std_fds(NULL); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    const char *model = NULL, *path = NULL, *tpath = NULL;
    int K = 5, B = 10, reset = 0, json = 0, keystrokes = 0, threads = 0, beam_words = 8;
    enum { O_BATCH = 256, O_RESET, O_JSON, O_KEYS, O_THREADS, O_BEAMW, O_TRACE };
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"top", required_argument, 0, 'k'},
        {"batch", required_argument, 0, O_BATCH}, {"reset-state", no_argument, 0, O_RESET},
        {"keystrokes", no_argument, 0, O_KEYS}, {"beam-words", required_argument, 0, O_BEAMW},
        {"keystrokes-trace", required_argument, 0, O_TRACE},
        {"json", no_argument, 0, O_JSON}, {"threads", required_argument, 0, O_THREADS},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int ch;
    char *e;
    while ((ch = getopt_long(argc, argv, "m:k:hV", lo, NULL)) != -1) {
        long v;
        switch (ch) {
        case 'm': model = optarg; break;
        case 'k':
        case O_BATCH:
        case O_THREADS:
        case O_BEAMW:
            errno = 0;
            v = strtol(optarg, &e, 10);
            if (errno || e == optarg || *e || v < 1 || v > 100000)
                die(2, "%s: expected an integer from 1 to 100000, got '%s'",
                    ch == 'k' ? "-k" : ch == O_BATCH ? "--batch" : ch == O_THREADS ? "--threads" : "--beam-words", optarg);
            if (ch == 'k') K = (int)v;
            else if (ch == O_BATCH) B = (int)v;
            else if (ch == O_THREADS) threads = (int)v;
            else beam_words = (int)v;
            break;
        case O_RESET: reset = 1; break;
        case O_JSON: json = 1; break;
        case O_KEYS: keystrokes = 1; break;
        case O_TRACE:
            tpath = optarg;
            keystrokes = 1;
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " " VERSION "\n"); return 0;
        default: fprintf(stderr, PROG ": try '" PROG " --help'\n"); return 2;
        }
    }
    if (!model) die(2, "no model: give -m MODEL.ckpt (see --help)");
    if (argc - optind > 1) die(2, "one input at most (got %d)", argc - optind);
    path = optind < argc ? argv[optind] : NULL;
    const char *name = path && strcmp(path, "-") ? path : "stdin";
    if (!path && isatty(0)) die(2, "reading windows from a terminal: give a file or a pipe (see --help)");
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    lstm_set_threads(threads);

    lstm_lm lm;
    char msg[1024];
    int rc = lstm_lm_open(&lm, model);
    if (rc) die(1, "%s", lstm_lm_open_error(&lm, rc, model, msg, sizeof msg));

    lstm_dataset *d;
    uint32_t kind;
    rc = lstm_dataset_open(&d, path, (size_t)2048 << 20, &kind);
    if (rc == LSTM_E_TEXT && path && strcmp(path, "-"))
        die(1, "%s: a text/CSV file, not windows: tokenize it with the model's tokenizer and cut it into windows "
               "(lstm-tok -m %s %s | lstm-window -L 15 | " PROG " -m %s)", name, model, name, model);
    if (rc == LSTM_E_TEXT)
        die(1, "stdin: text/CSV, not windows: tokenize it with the model's tokenizer and cut it into windows "
               "(... | lstm-tok -m %s | lstm-window -L 15 | " PROG " -m %s)", model, model);
    if (rc) die(1, "%s", lstm_dataset_open_message(rc, kind, name, msg, sizeof msg));
    size_t bl;
    const uint8_t *blob = lstm_meta_get(lstm_dataset_meta(d), "tokenizer", &bl);
    if (!lstm_lm_same_tokenizer(&lm, blob, bl))
        die(1, "%s: tokenizer does not match %s's: tokenize it with lstm-tok -m %s", name, model, model);
    uint64_t nwin = lstm_dataset_count(d);
    if (nwin == 0) die(1, "%s: no windows to evaluate", name);
    int T = (int)lstm_dataset_T(d), Kt = (int)lstm_dataset_K(d);
    int stateful = !reset && Kt == T;
    if (keystrokes) B = 1;
    int V = lm.V;
    FILE *trace = NULL;
    if (tpath) {
        /* a new file, never an existing one overwritten (devices and pipes are fine) */
        struct stat sb;
        if (!stat(tpath, &sb) && S_ISREG(sb.st_mode)) die(1, "%s: file exists (remove it or give another file)", tpath);
        if (!(trace = fopen(tpath, "w"))) die(1, "%s: %s", tpath, strerror(errno));
        if (!stat(tpath, &sb) && S_ISREG(sb.st_mode)) trace_path = tpath;
    }

    lstm_model *m = (lstm_model *)lm.m;
    lstm_acts acts;
    lstm_state st;
    if ((rc = lstm_acts_alloc(&acts, m, B, T)) || (rc = lstm_state_alloc(&st, m, B)))
        die(1, "allocating activations for batch %d x %d: %s", B, T, lstm_strerror(rc));
    uint32_t *in = malloc(sizeof *in * (size_t)B * T), *tg = malloc(sizeof *tg * (size_t)B * T);
    uint8_t *rs = malloc((size_t)B);
    if (!in || !tg || !rs) die(1, "out of memory");

    stats_t s = {0};
    keys_t ks = {0};
    int word_model = lm.kind == LSTM_TOK_WORDS || lm.kind == LSTM_TOK_SPACE;
    lstm_suggester g;
    lstm_infer inf;
    lstm_state wst;               /* bpe / chars: the one-lane state at the start of the current word */
    float *lg1 = NULL, *wlg = NULL; /* (V) logits now, (V) logits at the word start */
    lstm_suggestion *cands = NULL;  /* (K) */
    char word[LSTM_WORD_MAX];
    size_t wlen = 0;
    int in_word = 0;
    if (keystrokes) {
        if ((rc = lstm_suggester_init(&g, &lm, K, beam_words, NULL))) die(1, "%s", lstm_strerror(rc));
        if (!word_model) {
            if ((rc = lstm_infer_alloc(&inf, m, 1)) || (rc = lstm_state_alloc(&wst, m, 1))) die(1, "%s", lstm_strerror(rc));
            lg1 = malloc(sizeof *lg1 * (size_t)V);
            wlg = malloc(sizeof *wlg * (size_t)V);
            cands = malloc(sizeof *cands * (size_t)K);
            if (!lg1 || !wlg || !cands) die(1, "out of memory");
        }
    }

    lstm_batcher bt;
    if ((rc = lstm_batcher_init(&bt, d, 0, nwin, B, stateful || keystrokes ? stateful : 0, 0))) die(1, "%s: %s", name, lstm_strerror(rc));
    lstm_state_zero(&st);
    prog_on = isatty(2);
    for (uint64_t step = 0; step < bt.steps; step++) {
        progress(step, bt.steps, name);
        long cnt = lstm_batcher_get(&bt, step, in, tg, rs);
        if (cnt < 0) die(1, "%s: %s", name, lstm_strerror((int)cnt));
        if (stateful) {
            for (int b = 0; b < B; b++)
                if (rs[b]) lstm_state_reset_row(&st, b);
        } else lstm_state_zero(&st);
        if (cnt == 0) continue;
        if (keystrokes && !word_model) {
            /* One token at a time: the word beam needs the state at each word start. */
            for (int t = 0; t < T; t++) {
                uint32_t x = in[t], y = tg[t];
                if ((rc = lstm_infer_step(&inf, &st, &x, lg1))) die(1, "%s: %s", name, lstm_strerror(rc));
                if (y == LSTM_PAD_ID) continue;
                double lse = 0;
                {
                    float mx = -INFINITY;
                    for (int i = 0; i < V; i++) mx = lg1[i] > mx ? lg1[i] : mx;
                    double sum = 0;
                    for (int i = 0; i < V; i++) sum += expf(lg1[i] - mx);
                    lse = (double)mx + log(sum);
                }
                s.nll += lse - (double)lg1[y];
                s.tokens++;
                score_target(&s, &lm, lg1, x, y, K);
                uint8_t w = lm.wf[y];
                size_t pn = lm.toff[y + 1] - lm.toff[y];
                const char *pt = lm.text + lm.toff[y];
                if (in_word && (w & LSTM_W_CONT) && !((lm.flags[y] & LSTM_PIECE_WORD_START)) && wlen + pn < LSTM_WORD_MAX) {
                    memcpy(word + wlen, pt, pn);
                    wlen += pn;
                    continue;
                }
                if (in_word && wlen && (rc = type_word_beam(&ks, trace, &g, &lm, &wst, wlg, word, wlen, K, cands)))
                    die(1, "%s", lstm_strerror(rc));
                in_word = 0;
                /* (a bare U+2581 piece is FIRST too: it starts a word spelt by the pieces after it) */
                int starts = (w & LSTM_W_FIRST) && (lm.kind != LSTM_TOK_CHARS || (lm.wf[x] & LSTM_W_BOUND) ||
                                                    x == LSTM_PAD_ID) &&
                             pn < LSTM_WORD_MAX;
                if (starts) {
                    /* the suggestions for this word all start from here, whatever is typed */
                    size_t LH = (size_t)st.L * st.H;
                    memcpy(wst.h, st.h, sizeof *wst.h * LH);
                    memcpy(wst.c, st.c, sizeof *wst.c * LH);
                    memcpy(wlg, lg1, sizeof *wlg * (size_t)V);
                    memcpy(word, pt, pn);
                    wlen = pn;
                    in_word = 1;
                } else if (!(lm.flags[y] & (LSTM_PIECE_SPECIAL | LSTM_PIECE_SPEAKER | LSTM_PIECE_SPACE)) && pn > 0) {
                    type_plain(&ks, cp_count(pt, pn), 0); /* punctuation and stray pieces are typed */
                }
            }
            continue;
        }
        double loss;
        long c;
        if ((rc = lstm_model_forward(m, &acts, &st, in, tg, B, T, 0, &loss, &c))) die(1, "%s: %s", name, lstm_strerror(rc));
        s.nll += loss * (double)c;
        s.tokens += c;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                uint32_t y = tg[(size_t)b * T + t], x = in[(size_t)b * T + t];
                if (y == LSTM_PAD_ID) continue;
                const float *lg = lstm_acts_logits(&acts, m, b, t);
                score_target(&s, &lm, lg, x, y, K);
                if (!keystrokes) continue;
                /* word models: every word token is a word; the prefix filter runs on the logits */
                size_t pn = lm.toff[y + 1] - lm.toff[y];
                const char *pt = lm.text + lm.toff[y];
                if (y == LSTM_UNK_ID) {
                    type_plain(&ks, 5, 1);
                    if (trace) fprintf(trace, "<unk>\t5\t6\t-\n");
                } else if (lm.wf[y] & LSTM_W_PUNCT) type_plain(&ks, cp_count(pt, pn), 0);
                else if (lm.wf[y] & LSTM_W_FIRST) {
                    size_t len = cp_count(pt, pn), j;
                    for (j = 0; j < len; j++)
                        if (lstm_suggest_rank(&g, lg, pt, cp_bytes(pt, pn, j), y, K) < K) break;
                    book_word(&ks, trace, pt, pn, len, j < len ? (long)j : -1);
                }
            }
    }
    if (in_word && wlen && (rc = type_word_beam(&ks, trace, &g, &lm, &wst, wlg, word, wlen, K, cands)))
        die(1, "%s", lstm_strerror(rc));
    progress_clear();
    lstm_batcher_free(&bt);
    if (s.tokens == 0) die(1, "%s: no target tokens to evaluate", name);

    double nll = s.nll / (double)s.tokens, ppl = safe_exp(nll);
    double wppl = s.words ? safe_exp(s.nll / (double)s.words) : NAN;
    const char *mode = stateful ? "stateful" : "reset-state";
    double saved = ks.without > 0 ? 100.0 * (1 - ks.with / ks.without) : 0;
    double acc = ks.words ? 100.0 * (double)ks.accepted / (double)ks.words : 0;
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(model));
        json_object_set_new(o, "input", json_string(name));
        json_object_set_new(o, "tokenizer", json_string(lstm_tokenizer_kind_name(lm.kind)));
        json_object_set_new(o, "mode", json_string(mode));
        json_object_set_new(o, "batch", json_integer(B));
        json_object_set_new(o, "tokens", json_integer((json_int_t)s.tokens));
        json_object_set_new(o, "nll", json_real(nll));
        json_object_set_new(o, "perplexity", json_real(ppl));
        json_object_set_new(o, "top1", json_real((double)s.top1 / (double)s.tokens));
        json_object_set_new(o, "k", json_integer(K));
        json_object_set_new(o, "topk", json_real((double)s.topk / (double)s.tokens));
        json_object_set_new(o, "words", json_integer((json_int_t)s.words));
        json_object_set_new(o, "word_perplexity", isfinite(wppl) ? json_real(wppl) : json_null());
        if (keystrokes) {
            json_object_set_new(o, "keystrokes_saved", json_real(saved / 100));
            json_object_set_new(o, "acceptance_rate", json_real(acc / 100));
            json_object_set_new(o, "keystrokes_with", json_real(ks.with));
            json_object_set_new(o, "keystrokes_without", json_real(ks.without));
            json_object_set_new(o, "typed_words", json_integer(ks.words));
            json_object_set_new(o, "suggestions_shown", json_integer(ks.shown));
        }
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        printf("perplexity %.2f (nll %.4f, %ld tokens, %s, batch %d) top-1 %.1f%% top-%d %.1f%%\n", ppl, nll, s.tokens,
               mode, B, 100.0 * (double)s.top1 / (double)s.tokens, K, 100.0 * (double)s.topk / (double)s.tokens);
        printf("per-word perplexity %.2f (%ld words, %s tokenizer)\n", wppl, s.words, lstm_tokenizer_kind_name(lm.kind));
        if (keystrokes)
            printf("keystrokes saved %.1f%% (%.0f instead of %.0f, %d suggestions shown) acceptance %.1f%% (%ld of %ld words)\n",
                   saved, ks.with, ks.without, K, acc, ks.accepted, ks.words);
    }
    if (fflush(stdout) || ferror(stdout)) die(1, "stdout: %s", strerror(errno));
    if (trace && (ferror(trace) | fclose(trace))) die(1, "%s: %s", tpath, strerror(errno));
    trace_path = NULL;
    if (keystrokes) {
        lstm_suggester_free(&g);
        if (!word_model) {
            lstm_infer_free(&inf);
            lstm_state_free(&wst);
        }
    }
    free(lg1);
    free(wlg);
    free(cands);
    free(in);
    free(tg);
    free(rs);
    lstm_acts_free(&acts);
    lstm_state_free(&st);
    lstm_dataset_free(d);
    lstm_lm_close(&lm);
    return 0;
}
