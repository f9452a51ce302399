/* lstm-sample: next-word suggestions and text completion from a checkpoint, one-shot or as a
 * line-oriented JSON server that keeps the model loaded (formats/serve.md). The suggestion engine
 * and the protocol live in lib/lm (engine.h, serve_json.h); this file parses the flags, reads the
 * text, the ban list and the request lines, and prints. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "prior.h"
#include "fileio.h"
#include "serve_json.h"
#include "tool.h"

#define PROG "lstm-sample"
#define die tool_die

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " -m MODEL [options] [TEXT...]\n"
            "Suggest next words for TEXT, or continue it, with a model from lstm-train. TEXT is the\n"
            "arguments joined by spaces, or one line of stdin. Output text is written as a person would.\n"
            "\n"
            "  -m, --model FILE          checkpoint (required)\n"
            "Suggest (the default)\n"
            "  -s, --suggest K           the K most likely next words with their probabilities (default 5),\n"
            "                            one 'word<TAB>probability' line each. TEXT ending in a space,\n"
            "                            punctuation or an emoji asks for the next word; TEXT ending inside\n"
            "                            a word (letters or digits, as ICU segments words), only for words\n"
            "                            completing it, with probabilities renormalised over those words.\n"
            "                            BPE and character models assemble whole words with a small beam\n"
            "                            over pieces (--beam-words N, default 8).\n"
            "Complete\n"
            "  -c, --complete            continue TEXT until the end of the turn/line or --max-new tokens\n"
            "  -n, --max-new N           tokens to generate at most (default 30)\n"
            "      --greedy              always the most likely token\n"
            "  -t, --temperature T       sampling temperature (default 1; 0 or below 1e-4 = greedy)\n"
            "      --top-k K             sample among the K most likely tokens (default 0 = all)\n"
            "      --top-p P             sample from the smallest set with mass >= P (default 1 = all)\n"
            "      --beam N              beam search with N hypotheses (length-normalised, see --length-alpha)\n"
            "      --length-alpha A      beam score = log p / length^A (default 1)\n"
            "      --repetition-penalty R  divide the logits of tokens already in the text by R (default 1)\n"
            "      --seed N              random seed (default 1): the same seed gives the same text\n"
            "Fill in the middle\n"
            "  -F, --fill                the words for the gap ___ in TEXT (\"i want to ___ my order\"), ranked by\n"
            "                            log p(w | text before, -m) + log p(w | text after, read backwards by\n"
            "                            --backward) normalised over the vocabulary's words (--suggest K of them,\n"
            "                            default 5); word models only\n"
            "      --backward FILE       the right-to-left model (trained on lstm-window --reverse windows with\n"
            "                            the same vocabulary); with --serve, requests with \"mode\":\"fill\"\n"
            "      --prior TOKENS        divide the fill score by p(w), the word's frequency in TOKENS (the\n"
            "                            training tokens): the product of the two models counts it twice\n"
            "                            (word models)\n"
            "Both\n"
            "      --speaker NAME        chat models: the prompt is a turn of NAME (default: the first speaker\n"
            "                            of the training data); plain text models have no speakers\n"
            "      --ban FILE            words (one per line) never suggested nor generated\n"
            "      --cache N             mix a continuous cache into the predictions (Grave et al. 2017): the last\n"
            "                            N (state, next token) pairs of the context turns and the text vote for\n"
            "                            the next token, so names and numbers already typed come back\n"
            "                            (default 0: off; tune theta and lambda with lstm-eval --cache-search)\n"
            "      --cache-theta T       the match's sharpness, >= 0 (default 0.3)\n"
            "      --cache-lambda L      the cache's weight, 0 to 1 (default 0.1)\n"
            "      --json                one JSON object instead of text (the --serve reply)\n"
            "      --serve               read requests from stdin, one per line, answer one JSON line each\n"
            "                            (plain text = suggest; or a JSON object, see formats/serve.md)\n"
            "      --timing              --serve: per-request microseconds on stderr\n"
            "  -q, --quiet               no notes on stderr\n"
            "  -v, --verbose             the model and the time taken on stderr\n"
            "  -h, --help                this help\n"
            "  -V, --version             version\n"
            "\n"
            "Examples:\n"
            "  lstm-tok < chats.csv | lstm-window -L 15 | lstm-train -o chat.ckpt\n"
            "  echo 'hi, i need help with my ' | " PROG " -m chat.ckpt --suggest 5\n"
            "  " PROG " -m chat.ckpt --suggest 5 'i was charged twice for my '   (the next word)\n"
            "  " PROG " -m chat.ckpt --suggest 5 'can you reset my pa'           (words completing 'pa')\n"
            "  " PROG " -m chat.ckpt --speaker agent --complete 'sure, please' --top-p 0.9\n"
            "  " PROG " -m chat.ckpt --backward chat-bwd.ckpt --fill 'i want to ___ my order'\n"
            "  " PROG " -m chat.ckpt --cache 200 --cache-lambda 0.2 --suggest 3 'order 4417 is late. where is order '\n"
            "  printf '%%s\\n' 'i need hel' '{\"text\":\"thanks\",\"mode\":\"complete\"}' | " PROG " -m chat.ckpt --serve\n");
}

typedef struct {
    const char *model, *ban_path, *backward, *prior;
    int json, serve, timing, beam_words;
    lstm_cache_opts cache;
    lstm_request d; /* defaults for every request */
} opts_t;

/* The --ban list: the file read whole, its words banned by the engine. */
static void load_bans(lstm_engine *e, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die(1, "%s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (len + 4096 > cap) {
            char *t = realloc(text, cap = (len + 4096) * 2);
            if (!t) die(1, "out of memory");
            text = t;
        }
        len += n = fread(text + len, 1, cap - len, f);
    } while (n > 0);
    if (ferror(f)) die(1, "%s: %s", path, strerror(errno));
    fclose(f);
    unsigned long line;
    const char *why;
    int rc = lstm_engine_ban_list(e, text, len, &line, &why);
    if (rc == LSTM_E_FORMAT) die(1, "%s: line %lu: not a text file (%s): --ban takes words, one per line", path, line, why);
    if (rc) die(1, "%s", lstm_strerror(rc));
    free(text);
}

/* --serve: one reply line per request line of stdin. Returns the requests answered. */
static long serve(lstm_engine *e, const opts_t *o)
{
    lstm_serve_req q;
    memset(&q, 0, sizeof q);
    char *line = NULL, *out = NULL;
    size_t cap = 0, outcap = 0, m;
    ssize_t n;
    long count = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        double t0 = o->timing ? tool_now() : 0;
        char *req = line;
        size_t len = (size_t)n;
        if (len && req[len - 1] == '\n') len--;
        if (len && req[len - 1] == '\r') len--;
        /* A UTF-8 byte order mark (Windows editors, PowerShell pipes) is not part of the first request. */
        if (count == 0 && len >= 3 && !memcmp(req, "\xEF\xBB\xBF", 3)) req += 3, len -= 3;
        count++;
        if (lstm_serve_line(e, &q, &o->d, req, len, &out, &outcap, &m)) die(1, "out of memory");
        if (fwrite(out, 1, m, stdout) != m || fputc('\n', stdout) == EOF || fflush(stdout)) {
            if (errno == EPIPE) break;
            die(1, "stdout: %s", strerror(errno));
        }
        if (o->timing) fprintf(stderr, "%.1f\n", (tool_now() - t0) * 1e6);
    }
    lstm_serve_req_free(&q);
    free(line);
    free(out);
    return count;
}

/* TEXT: the arguments joined by spaces, or one line of stdin (without its line end). */
static char *read_text(int argc, char **argv, size_t *len)
{
    char *text = NULL;
    size_t cap = 0;
    *len = 0;
    if (argc > 0) {
        for (int i = 0; i < argc; i++) cap += strlen(argv[i]) + 1;
        if (!(text = malloc(cap + 1))) die(1, "out of memory");
        for (int i = 0; i < argc; i++) {
            if (i > 0) text[(*len)++] = ' ';
            size_t n = strlen(argv[i]);
            memcpy(text + *len, argv[i], n);
            *len += n;
        }
        text[*len] = 0;
        return text;
    }
    ssize_t n = getline(&text, &cap, stdin);
    if (n < 0) {
        if (ferror(stdin)) die(1, "stdin: %s", strerror(errno));
        free(text);
        if (!(text = strdup(""))) die(1, "out of memory");
        n = 0;
    }
    *len = (size_t)n;
    if (*len && text[*len - 1] == '\n') (*len)--;
    if (*len && text[*len - 1] == '\r') (*len)--;
    return text;
}

/* One request from the command line, printed as text or as the --serve reply. Returns the exit status. */
static int one_shot(lstm_engine *e, const opts_t *o, const char *text, size_t len)
{
    lstm_request r = o->d;
    r.text = text;
    r.len = len;
    lstm_reply rep;
    if (lstm_engine_run(e, &r, &rep)) {
        if (o->json) {
            tool_msg("%s", rep.error);
            return 1;
        }
        die(1, "%s", rep.error);
    }
    if (o->json) {
        char *out = NULL;
        size_t cap = 0, m;
        if (lstm_serve_format(&rep, &out, &cap, &m)) die(1, "out of memory");
        if (!memcmp(out, "{\"error\":", 9)) { /* a reply that is not valid UTF-8 */
            tool_msg("output is not valid UTF-8");
            free(out);
            return 1;
        }
        fwrite(out, 1, m, stdout);
        fputc('\n', stdout);
        free(out);
    } else if (rep.mode == LSTM_MODE_COMPLETE) {
        const char *p = rep.completion;
        while (*p == ' ') p++;
        printf("%s\n", p);
    } else {
        if (rep.plen && rep.n > 0 && tool_verbosity >= TOOL_NORMAL)
            tool_msg("completing '%s': probabilities renormalised over the words that extend it", rep.prefix);
        if (rep.n == 0 && tool_verbosity >= TOOL_NORMAL) {
            if (rep.plen) tool_msg("no suggestions: no known word starts with '%s'", rep.prefix);
            else tool_msg("no suggestions");
        }
        for (int i = 0; i < rep.n; i++) printf("%s\t%.6f\n", rep.sg[i].word, rep.sg[i].p);
    }
    return 0;
}

int main(int argc, char **argv)
{
    lstm_reserve_std_fds(NULL); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    tool_init(PROG);
    opts_t o;
    memset(&o, 0, sizeof o);
    lstm_request_default(&o.d);
    o.beam_words = 8;
    lstm_cache_opts_default(&o.cache);
    int suggest_set = 0, complete_set = 0, fill_set = 0, greedy = 0;
    enum { O_GREEDY = 256, O_TOPK, O_TOPP, O_BEAM, O_ALPHA, O_REP, O_SEED, O_SPEAKER, O_BAN, O_JSON, O_SERVE,
           O_TIMING, O_BEAMW, O_CACHE, O_CTHETA, O_CLAMBDA, O_BACKWARD, O_PRIOR };
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"suggest", required_argument, 0, 's'},
        {"complete", no_argument, 0, 'c'}, {"max-new", required_argument, 0, 'n'},
        {"greedy", no_argument, 0, O_GREEDY}, {"temperature", required_argument, 0, 't'},
        {"top-k", required_argument, 0, O_TOPK}, {"top-p", required_argument, 0, O_TOPP},
        {"beam", required_argument, 0, O_BEAM}, {"length-alpha", required_argument, 0, O_ALPHA},
        {"repetition-penalty", required_argument, 0, O_REP}, {"seed", required_argument, 0, O_SEED},
        {"speaker", required_argument, 0, O_SPEAKER}, {"ban", required_argument, 0, O_BAN},
        {"json", no_argument, 0, O_JSON}, {"serve", no_argument, 0, O_SERVE}, {"timing", no_argument, 0, O_TIMING},
        {"beam-words", required_argument, 0, O_BEAMW}, {"cache", required_argument, 0, O_CACHE},
        {"cache-theta", required_argument, 0, O_CTHETA}, {"cache-lambda", required_argument, 0, O_CLAMBDA},
        {"fill", no_argument, 0, 'F'}, {"backward", required_argument, 0, O_BACKWARD},
        {"prior", required_argument, 0, O_PRIOR},
        {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int ch;
    opterr = 0; /* getopt's own messages would start with the full argv[0] */
    while ((ch = getopt_long(argc, argv, ":m:s:cn:t:FqvhV", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 's': o.d.k = (int)tool_parse_long(optarg, "--suggest", 1, LSTM_ENGINE_MAX_K); suggest_set = 1; break;
        case 'c': complete_set = 1; break;
        case 'F': fill_set = 1; break;
        case O_BACKWARD: o.backward = optarg; break;
        case O_PRIOR: o.prior = optarg; break;
        case 'n': o.d.max_new = (int)tool_parse_long(optarg, "--max-new", 0, LSTM_ENGINE_MAX_NEW); break;
        case O_GREEDY: greedy = 1; break;
        case 't': o.d.so.temperature = (float)tool_parse_double(optarg, "--temperature", 0, 100); break;
        case O_TOPK: o.d.so.top_k = (int)tool_parse_long(optarg, "--top-k", 0, 1000000000); break;
        case O_TOPP: o.d.so.top_p = (float)tool_parse_double(optarg, "--top-p", 1e-6, 1); break;
        case O_BEAM: o.d.beam = (int)tool_parse_long(optarg, "--beam", 1, LSTM_ENGINE_MAX_BEAM); break;
        case O_ALPHA: o.d.alpha = (float)tool_parse_double(optarg, "--length-alpha", 0, 10); break;
        case O_REP: o.d.so.repetition_penalty = (float)tool_parse_double(optarg, "--repetition-penalty", 1e-3, 100); break;
        case O_SEED: o.d.seed = (unsigned long long)tool_parse_long(optarg, "--seed", 0, 0x7fffffffffffffffL); break;
        case O_SPEAKER: o.d.speaker = optarg; break;
        case O_BAN: o.ban_path = optarg; break;
        case O_JSON: o.json = 1; break;
        case O_SERVE: o.serve = 1; break;
        case O_TIMING: o.timing = 1; break;
        case O_BEAMW: o.beam_words = (int)tool_parse_long(optarg, "--beam-words", 1, 64); break;
        case O_CACHE: o.cache.N = (int)tool_parse_long(optarg, "--cache", 0, LSTM_CACHE_MAX_N); break;
        case O_CTHETA: o.cache.theta = tool_parse_double(optarg, "--cache-theta", 0, 1e6); break;
        case O_CLAMBDA: o.cache.lambda = tool_parse_double(optarg, "--cache-lambda", 0, 1); break;
        case 'q': tool_verbosity = TOOL_QUIET; break;
        case 'v': tool_verbosity = TOOL_VERBOSE; break;
        case 'h': usage(stdout); return 0;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    if (!o.model) die(2, "no model: give -m MODEL.ckpt (see --help)");
    if (suggest_set && complete_set) die(2, "--suggest and --complete exclude each other");
    if (fill_set && complete_set) die(2, "--fill and --complete exclude each other");
    if (fill_set && !o.backward) die(2, "--fill needs the right-to-left model: give --backward FILE");
    if (o.prior && !o.backward) die(2, "--prior is for fill-in-the-middle: give --backward FILE");
    if (fill_set && o.serve) die(2, "--serve: a fill request says \"mode\":\"fill\" (give --backward, not --fill)");
    /* Below LSTM_TEMP_MIN sampling is greedy in all but name (and 1/T overflows float below ~3e-39). */
    if (greedy || o.d.so.temperature < LSTM_TEMP_MIN) o.d.so.temperature = 0;
    if (o.d.beam && (greedy || o.d.so.top_k || o.d.so.top_p < 1)) die(2, "--beam excludes --greedy, --top-k and --top-p");
    if (o.serve && optind < argc) die(2, "--serve reads requests from stdin: no TEXT arguments");
    o.d.mode = complete_set ? LSTM_MODE_COMPLETE : fill_set ? LSTM_MODE_FILL : LSTM_MODE_SUGGEST;

    double t0 = tool_now();
    /* One request is a chain of small gemv calls: threads only add hand-off latency. */
    lstm_set_threads(1);
    lstm_engine e;
    int rc = lstm_engine_open(&e, o.model, o.beam_words);
    if (rc) {
        char msg[1024];
        die(1, "%s", lstm_engine_open_error(&e, rc, o.model, msg, sizeof msg));
    }
    if (o.ban_path) load_bans(&e, o.ban_path);
    if (o.backward) {
        const char *why;
        if (lstm_engine_set_backward(&e, o.backward, &why)) die(1, "--backward: %s", why);
    }
    if (o.prior) tool_fill_prior(&e, o.prior, o.model);
    if ((rc = lstm_engine_set_cache(&e, &o.cache))) die(1, "--cache %d: %s", o.cache.N, lstm_strerror(rc));
    if (o.d.speaker && !lstm_engine_has_speaker(&e, o.d.speaker)) {
        char names[768];
        die(2, "--speaker: '%s' is not a speaker of this model (speakers: %s)", o.d.speaker,
            lstm_lm_speaker_names(&e.lm, names, sizeof names));
    }
    if (tool_verbosity >= TOOL_VERBOSE) {
        char wd[128];
        tool_msg("%s: %s tokenizer, %d ids, %d x %d %s, %s, loaded in %.1f ms", o.model,
                 lstm_tokenizer_kind_name(e.lm.kind), e.lm.V, e.lm.m->cfg.L, e.lm.m->cfg.H,
                 lstm_cell_name(e.lm.m->cfg.cell), lstm_lm_weights_desc(&e.lm, wd, sizeof wd), (tool_now() - t0) * 1e3);
    }
    int status = 0;
    long answered = 1;
    if (o.serve) {
        answered = serve(&e, &o);
    } else {
        size_t len;
        char *text = read_text(argc - optind, argv + optind, &len);
        status = one_shot(&e, &o, text, len);
        free(text);
        if (fflush(stdout) || ferror(stdout)) die(1, "stdout: %s", strerror(errno));
    }
    if (tool_verbosity >= TOOL_VERBOSE) tool_msg("%ld request(s) in %.1f ms", answered, (tool_now() - t0) * 1e3);
    lstm_engine_close(&e);
    return status;
}
