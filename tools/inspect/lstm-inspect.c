/* lstm-inspect: look inside a trained model: gate activations token by token, the spread of final
 * hidden states across different inputs (hidden-state collapse), and the repetition rate of
 * generated text. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "lm.h"
#include "model.h"
#include "tokenizer.h"
#include "tool.h"

#define PROG "lstm-inspect"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " gates  -m MODEL [--speaker NAME] [--tsv] TEXT\n"
            "       " PROG " states -m MODEL [--speaker NAME] [FILE]\n"
            "       " PROG " repeat [-n N] [FILE]\n"
            "Look inside a model trained by lstm-train.\n"
            "\n"
            "  gates   per token, the mean input, forget and output gate activation of every layer\n"
            "          (LSTM; GRU: reset and update gates) while the model reads TEXT. --tsv prints a\n"
            "          tab-separated table for plotting (examples/plot_gates.gp draws a heat map).\n"
            "  states  reads one prompt per line of FILE (or stdin) and reports how different the final\n"
            "          hidden states of the top layer are: mean pairwise cosine similarity and the spread\n"
            "          (per-unit standard deviation across prompts / mean |h|). Collapsed states (every\n"
            "          input ends in nearly the same state) show a similarity near 1 and a spread near 0.\n"
            "  repeat  reads generated texts, one per line, and reports the share of repeated n-grams\n"
            "          within a text (for n = 1..N, default 4): repetitive generation shows high rates.\n"
            "\n"
            "  -m, --model FILE     checkpoint\n"
            "      --speaker NAME   chat models: read the text as a turn of this speaker\n"
            "  -n N                 repeat: n-grams up to N (1 to 8, default 4)\n"
            "  -q, --quiet          no warnings\n"
            "  -v, --verbose        say on stderr what was read and how long it took\n"
            "  -h, --help           this help\n"
            "  -V, --version        version\n"
            "\n"
            "Examples:\n"
            "  lstm-inspect gates -m ptb.ckpt \"the company said it expects profits to rise . </s> the\"\n"
            "  lstm-sample -m chat.ckpt --complete \"sure,\" --temperature 1.2 | lstm-inspect repeat\n");
}


static void die(int code, const char *msg, const char *arg)
{
    if (arg) tool_die(code, "%s: %s", arg, msg);
    tool_die(code, "%s", msg);
}

static void open_model(lstm_lm *lm, const char *path)
{
    if (!path) die(2, "-m MODEL is required", NULL);
    int rc = lstm_lm_open(lm, path);
    if (rc) {
        char buf[512];
        fprintf(stderr, PROG ": %s\n", lstm_lm_open_message(rc, path, buf, sizeof buf));
        exit(1);
    }
}

static void prompt_ids(lstm_lm *lm, const char *speaker, const char *text, lstm_ids *ids)
{
    ids->n = 0;
    int rc = lstm_lm_prompt(lm, speaker, text, strlen(text), ids);
    if (rc == LSTM_E_NOTFOUND) die(1, "unknown speaker (see lstm-dump MODEL)", speaker);
    if (rc) die(1, lstm_strerror(rc), "prompt");
}

/* Gate activations while reading text: the saved (T,1,G*H) gates of every layer. */
static int cmd_gates(lstm_lm *lm, const char *speaker, const char *text, int tsv)
{
    const lstm_model *m = lm->m;
    int cell = m->cfg.cell, H = m->cfg.H, L = m->cfg.L;
    if (cell == LSTM_CELL_RNN) die(1, "a plain RNN cell has no gates", NULL);
    lstm_ids ids = {0};
    prompt_ids(lm, speaker, text, &ids);
    int T = (int)ids.n;
    lstm_model mm = *m; /* forward on the mapped weights: no gradients needed */
    lstm_acts a;
    lstm_state st;
    if (lstm_acts_alloc(&a, &mm, 1, T) || lstm_state_alloc(&st, &mm, 1)) die(1, "out of memory", NULL);
    double loss;
    long cnt;
    int rc = lstm_model_forward(&mm, &a, &st, ids.v, NULL, 1, T, 0, &loss, &cnt);
    if (rc) die(1, lstm_strerror(rc), "forward");
    /* LSTM blocks i, f, g, o: report i, f, o. GRU blocks r, z, n: report r, z. CIFG blocks f, g, o
     * (i = 1 - f): report f, o. */
    static const char *lstm_names[] = {"in", "forget", "out"}, *gru_names[] = {"reset", "update"},
                      *cifg_names[] = {"forget", "out"};
    static const int lstm_blk[] = {0, 1, 3}, gru_blk[] = {0, 1}, cifg_blk[] = {0, 2};
    int four = cell == LSTM_CELL_LSTM || cell == LSTM_CELL_LNLSTM; /* the LayerNorm LSTM's gates: i, f, g, o */
    int ng = four ? 3 : 2;
    const char **names = four ? lstm_names : cell == LSTM_CELL_CIFG ? cifg_names : gru_names;
    const int *blk = four ? lstm_blk : cell == LSTM_CELL_CIFG ? cifg_blk : gru_blk;
    int G = m->G;
    if (tsv) {
        printf("pos\ttoken");
        for (int l = 0; l < L; l++)
            for (int g = 0; g < ng; g++) printf("\tl%d.%s", l, names[g]);
        putchar('\n');
    } else {
        printf("%-16s", "token");
        for (int l = 0; l < L; l++)
            for (int g = 0; g < ng; g++) {
                char h[32];
                snprintf(h, sizeof h, "l%d.%s", l, names[g]);
                printf(" %8s", h);
            }
        putchar('\n');
    }
    for (int t = 0; t < T; t++) {
        size_t len;
        const char *p = lstm_tokenizer_piece(lm->tok, ids.v[t], &len);
        if (tsv) printf("%d\t%.*s", t, (int)len, p ? p : "?");
        else printf("%-16.*s", (int)(len > 16 ? 16 : len), p ? p : "?");
        for (int l = 0; l < L; l++) {
            const float *gt = a.layer[l].gates + (size_t)t * G * H;
            for (int g = 0; g < ng; g++) {
                double s = 0;
                for (int j = 0; j < H; j++) s += gt[blk[g] * H + j];
                printf(tsv ? "\t%.4f" : " %8.3f", s / H);
            }
        }
        putchar('\n');
    }
    lstm_acts_free(&a);
    lstm_state_free(&st);
    lstm_ids_free(&ids);
    return 0;
}

/* Final top-layer hidden state of every prompt line; their similarity and spread. */
static int cmd_states(lstm_lm *lm, const char *speaker, FILE *in)
{
    const lstm_model *m = lm->m;
    int H = m->cfg.H, L = m->cfg.L;
    lstm_infer inf;
    lstm_state st;
    if (lstm_infer_alloc(&inf, m, 1) || lstm_state_alloc(&st, m, 1)) die(1, "out of memory", NULL);
    size_t cap = 0, n = 0;
    float *hs = NULL;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t k;
    lstm_ids ids = {0};
    while ((k = getline(&line, &lcap, in)) > 0) {
        while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = 0;
        if (k == 0) continue;
        prompt_ids(lm, speaker, line, &ids);
        lstm_state_zero(&st);
        for (size_t i = 0; i < ids.n; i++)
            if (lstm_infer_step(&inf, &st, &ids.v[i], NULL)) die(1, "token out of range", "prompt");
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            hs = realloc(hs, cap * H * sizeof *hs);
            if (!hs) die(1, "out of memory", NULL);
        }
        memcpy(hs + n * H, st.h + (size_t)(L - 1) * H, H * sizeof *hs);
        n++;
    }
    free(line);
    if (n < 2) die(1, "need at least two prompts (one per line)", NULL);
    double cos_sum = 0, norm_sum = 0, sd_sum = 0;
    long pairs = 0;
    for (size_t a = 0; a < n; a++) {
        double na = 0;
        for (int j = 0; j < H; j++) na += (double)hs[a * H + j] * hs[a * H + j];
        norm_sum += sqrt(na / H);
        for (size_t b = a + 1; b < n; b++) {
            double nb = 0, d = 0;
            for (int j = 0; j < H; j++) {
                nb += (double)hs[b * H + j] * hs[b * H + j];
                d += (double)hs[a * H + j] * hs[b * H + j];
            }
            cos_sum += na > 0 && nb > 0 ? d / sqrt(na * nb) : 1;
            pairs++;
        }
    }
    for (int j = 0; j < H; j++) {
        double mu = 0, v = 0;
        for (size_t a = 0; a < n; a++) mu += hs[a * H + j];
        mu /= (double)n;
        for (size_t a = 0; a < n; a++) v += (hs[a * H + j] - mu) * (hs[a * H + j] - mu);
        sd_sum += sqrt(v / (double)n);
    }
    double cosm = cos_sum / (double)pairs, rms = norm_sum / (double)n, spread = rms > 0 ? sd_sum / H / rms : 0;
    printf("prompts %zu, top layer %d units\n", n, H);
    printf("mean pairwise cosine similarity %.4f\n", cosm);
    printf("mean |h| (rms) %.4f, per-unit std across prompts %.4f, spread %.4f\n", rms, sd_sum / H, spread);
    printf("verdict: %s\n", cosm > 0.99 || spread < 0.05 ? "collapsed: final states barely depend on the input"
                                                          : "states depend on the input");
    free(hs);
    lstm_ids_free(&ids);
    lstm_infer_free(&inf);
    lstm_state_free(&st);
    return 0;
}

/* Share of repeated n-grams within each line (whitespace-separated words). */
static int cmd_repeat(FILE *in, int N)
{
    long total[9] = {0}, rep[9] = {0};
    long lines = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t k;
    char **w = NULL;
    size_t wcap = 0;
    while ((k = getline(&line, &lcap, in)) > 0) {
        size_t nw = 0;
        for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
            if (nw == wcap) {
                wcap = wcap ? 2 * wcap : 64;
                w = realloc(w, wcap * sizeof *w);
                if (!w) die(1, "out of memory", NULL);
            }
            w[nw++] = tok;
        }
        if (!nw) continue;
        lines++;
        for (int n = 1; n <= N; n++)
            for (size_t i = 0; i + n <= nw; i++) {
                total[n]++;
                for (size_t j = 0; j < i; j++) { /* seen earlier in this line? */
                    int same = 1;
                    for (int q = 0; q < n && same; q++) same = strcmp(w[i + q], w[j + q]) == 0;
                    if (same) { rep[n]++; break; }
                }
            }
    }
    free(line);
    free(w);
    if (!lines) die(1, "no text to measure (one generated text per line)", NULL);
    printf("texts %ld\n", lines);
    for (int n = 1; n <= N; n++)
        printf("%d-grams %ld, repeated within their text %.1f%%\n", n, total[n], total[n] ? 100.0 * rep[n] / total[n] : 0);
    return 0;
}

/* -v: what ran and how long it took, on stderr. */
static int said_done(const char *cmd, double t0, int rc)
{
    char d[32];
    tool_fmt_duration(d, sizeof d, tool_now() - t0);
    if (tool_verbosity >= TOOL_VERBOSE && rc == 0) tool_msg("%s: done in %s", cmd, d);
    return rc;
}

int main(int argc, char **argv)
{
    int closed;
    lstm_reserve_std_fds(&closed); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    int in_closed = closed & 1, out_closed = closed & 2;
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) { usage(stdout); return 0; }
    tool_init(PROG);
    if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) tool_version();
    const char *cmd = argv[1];
    if (strcmp(cmd, "gates") && strcmp(cmd, "states") && strcmp(cmd, "repeat")) {
        fprintf(stderr, PROG ": unknown command '%s' (gates, states or repeat)\n", cmd);
        return 2;
    }
    const char *model = NULL, *speaker = NULL;
    int tsv = 0, N = 4;
    static const struct option lo[] = {{"model", required_argument, 0, 'm'}, {"speaker", required_argument, 0, 's'},
                                       {"tsv", no_argument, 0, 't'},         {"help", no_argument, 0, 'h'},
                                       {"quiet", no_argument, 0, 'q'},       {"verbose", no_argument, 0, 'v'},
                                       {"version", no_argument, 0, 'V'},     {0, 0, 0, 0}};
    int ch;
    optind = 2;
    opterr = 0; /* getopt's own messages would start with the full argv[0] */
    while ((ch = getopt_long(argc, argv, ":m:n:qvhV", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 's': speaker = optarg; break;
        case 't': tsv = 1; break;
        case 'n': N = (int)tool_parse_long(optarg, "-n", 1, 8); break;
        case 'q': tool_verbosity = TOOL_QUIET; break;
        case 'v': tool_verbosity = TOOL_VERBOSE; break;
        case 'h': usage(stdout); return 0;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    double t0 = tool_now();
    if (out_closed) die(1, strerror(EBADF), "stdout");
    if (optind >= argc && strcmp(cmd, "gates") && in_closed) die(1, strerror(EBADF), "stdin");
    if (!strcmp(cmd, "repeat")) {
        FILE *in = optind < argc ? fopen(argv[optind], "r") : stdin;
        if (!in) die(1, strerror(errno), argv[optind]);
        return said_done(cmd, t0, cmd_repeat(in, N));
    }
    lstm_lm lm;
    if (!strcmp(cmd, "gates")) {
        if (optind != argc - 1) die(2, "gates takes one TEXT argument", NULL);
        open_model(&lm, model);
        int rc = cmd_gates(&lm, speaker, argv[optind], tsv);
        lstm_lm_close(&lm);
        return said_done(cmd, t0, rc);
    }
    FILE *in = optind < argc ? fopen(argv[optind], "r") : stdin;
    if (!in) die(1, strerror(errno), argv[optind]);
    open_model(&lm, model);
    int rc = cmd_states(&lm, speaker, in);
    lstm_lm_close(&lm);
    return said_done(cmd, t0, rc);
}
