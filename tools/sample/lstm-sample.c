/* lstm-sample: next-word suggestions and text completion from a checkpoint, one-shot or as a
 * line-oriented JSON server that keeps the model loaded (formats/serve.md). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include "json.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decode.h"
#include "fileio.h"
#include "lm.h"
#include "numparse.h"
#include "rng.h"
#include "utf8.h"

#define PROG "lstm-sample"
#define VERSION "1.0"
#define MAX_K 1000
#define CTX_CAP 1024 /* prompt ids kept (longer prompts keep their last CTX_CAP ids) */

static void die(int code, const char *fmt, ...)
{
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
            "Both\n"
            "      --speaker NAME        chat models: the prompt is a turn of NAME (default: the first speaker\n"
            "                            of the training data); plain text models have no speakers\n"
            "      --ban FILE            words (one per line) never suggested nor generated\n"
            "      --json                one JSON object instead of text (the --serve reply)\n"
            "      --serve               read requests from stdin, one per line, answer one JSON line each\n"
            "                            (plain text = suggest; or a JSON object, see formats/serve.md)\n"
            "      --timing              --serve: per-request microseconds on stderr\n"
            "  -q, --quiet               no notes on stderr\n"
            "  -h, --help                this help\n"
            "  -V, --version             version\n"
            "\n"
            "Examples:\n"
            "  lstm-tok < chats.csv | lstm-window -L 15 | lstm-train -o chat.ckpt\n"
            "  echo 'hi, i need help with my ' | " PROG " -m chat.ckpt --suggest 5\n"
            "  " PROG " -m chat.ckpt --suggest 5 'i was charged twice for my '   (the next word)\n"
            "  " PROG " -m chat.ckpt --suggest 5 'can you reset my pa'           (words completing 'pa')\n"
            "  " PROG " -m chat.ckpt --speaker agent --complete 'sure, please' --top-p 0.9\n"
            "  printf '%%s\\n' 'i need hel' '{\"text\":\"thanks\",\"mode\":\"complete\"}' | " PROG " -m chat.ckpt --serve\n");
}

typedef struct {
    int mode; /* 0 suggest, 1 complete */
    int k;
    const char *speaker;
    int max_new, beam;
    float alpha;
    lstm_sampler_opts so;
    unsigned long long seed;
} req_t;

typedef struct {
    const char *model, *ban_path;
    int json, serve, timing, quiet, beam_words;
    req_t d; /* defaults for every request */
} opts_t;

static double parse_double(const char *s, const char *flag, double lo, double hi)
{
    double v;
    if (lstm_parse_double(s, lo, hi, &v)) die(2, "%s: expected a number from %g to %g, got '%s'", flag, lo, hi, s);
    return v;
}

static long parse_long(const char *s, const char *flag, long lo, long hi)
{
    long v;
    if (lstm_parse_long(s, lo, hi, &v)) die(2, "%s: expected an integer from %ld to %ld, got '%s'", flag, lo, hi, s);
    return v;
}

/* ------------------------------------------------------------------ the engine */

typedef struct {
    lstm_lm lm;
    lstm_session sess;
    lstm_suggester sug;
    lstm_sampler smp;
    uint8_t *banned;    /* (V) never generated */
    uint8_t *gen_ban;   /* (V) banned + specials that generation never emits */
    uint8_t *gen_ban_end; /* (V) gen_ban + every id that ends a word: after a banned word of several pieces */
    lstm_ids ids, out;  /* reused per request */
    char *buf;          /* reused text scratch */
    size_t bufcap;
    char prefix[4 * LSTM_WORD_MAX];
    lstm_suggestion sg[MAX_K];
    lstm_beam beam;
    int beam_W, beam_T;
    uint32_t *gen;      /* (MAX_NEW) generated ids */
    uint32_t *hist;     /* (CTX_CAP + MAX_NEW) prompt + generated, for the repetition penalty */
    lstm_state st1;     /* one lane for generation */
    lstm_infer inf1;
    float *lg;          /* (V) */
    const char *err;    /* message of the last failed request */
    char errbuf[1024];  /* err when it names things (an unknown speaker and the model's speakers) */
} engine;

static int grow_buf(engine *e, size_t n)
{
    if (n <= e->bufcap) return 0;
    char *b = realloc(e->buf, n * 2);
    if (!b) return LSTM_E_NOMEM;
    e->buf = b;
    e->bufcap = n * 2;
    return 0;
}

/* Prompt ids of text for speaker into e->ids; message in e->err on failure. */
static int make_prompt(engine *e, const char *speaker, const char *text, size_t len)
{
    e->ids.n = 0;
    int rc = lstm_lm_prompt(&e->lm, e->lm.S ? speaker : NULL, text, len, &e->ids);
    if (rc == LSTM_E_NOTFOUND) {
        /* the name as given (cut at a character boundary: the reply must stay UTF-8) and the model's */
        char names[768];
        size_t n = lstm_utf8_valid_prefix(speaker, strnlen(speaker, 100));
        snprintf(e->errbuf, sizeof e->errbuf, "unknown speaker '%.*s%s' (speakers: %s)", (int)n, speaker,
                 speaker[n] ? "..." : "", lstm_lm_speaker_names(&e->lm, names, sizeof names));
        e->err = e->errbuf;
        return rc;
    }
    if (rc) e->err = lstm_strerror(rc);
    return rc;
}

/* Suggestions for text: fills e->sg, returns how many (or -1, e->err set); *prefix_len > 0 when a
 * partly typed word is being completed (its normalised form in e->prefix). */
static int do_suggest(engine *e, const req_t *r, const char *text, size_t len, size_t *prefix_len, double *mass)
{
    size_t p, plen = 0;
    if (lstm_lm_partial_word(&e->lm, text, len, &p)) {
        e->err = lstm_strerror(LSTM_E_ICU);
        return -1;
    }
    if (p < len) {
        int rc = lstm_lm_normalize(&e->lm, text + p, len - p, e->prefix, sizeof e->prefix, &plen);
        if (rc) {
            e->err = "the word being typed is too long";
            return -1;
        }
    }
    e->prefix[plen] = 0;
    *prefix_len = plen;
    const char *ctx = text;
    size_t clen = p;
    /* A character model needs the space that ends the previous word before a new one starts. */
    if (e->lm.kind == LSTM_TOK_CHARS && clen > 0 && !strchr(" \t\r\n", ctx[clen - 1])) {
        if (grow_buf(e, clen + 2)) {
            e->err = "out of memory";
            return -1;
        }
        memcpy(e->buf, ctx, clen);
        e->buf[clen++] = ' ';
        ctx = e->buf;
    }
    if (make_prompt(e, r->speaker, ctx, clen)) return -1;
    int rc = lstm_session_feed(&e->sess, e->ids.v, e->ids.n);
    if (rc) {
        e->err = lstm_strerror(rc);
        return -1;
    }
    int n = lstm_suggest(&e->sug, &e->sess.st, e->sess.logits, e->prefix, plen, r->k, e->sg, mass);
    if (n < 0) {
        e->err = lstm_strerror(n);
        return -1;
    }
    return n;
}

#define MAX_NEW 10000

/* lstm_beam_opts.held: the hypothesis ends inside a banned word of several pieces. */
static int word_held(void *ctx, const uint32_t *hist, size_t n, size_t nprompt)
{
    return lstm_suggester_word_banned(ctx, hist, n, nprompt);
}

/* Continuation of text: its ids in e->gen (EOS dropped), count in *ngen; 0 or -1 (e->err set). */
static int do_complete(engine *e, const req_t *r, const char *text, size_t len, int *ngen)
{
    *ngen = 0;
    if (make_prompt(e, r->speaker, text, len)) return -1;
    int rc = lstm_session_feed(&e->sess, e->ids.v, e->ids.n);
    if (rc) {
        e->err = lstm_strerror(rc);
        return -1;
    }
    size_t np = e->ids.n > CTX_CAP ? CTX_CAP : e->ids.n;
    memcpy(e->hist, e->ids.v + e->ids.n - np, np * sizeof *e->hist);
    int n = 0;
    if (r->max_new == 0) return 0;
    if (r->beam > 0) {
        if (r->beam != e->beam_W || r->max_new != e->beam_T) {
            if (e->beam_W) lstm_beam_free(&e->beam);
            e->beam_W = 0;
            if (lstm_beam_init(&e->beam, e->lm.m, r->beam, r->max_new, CTX_CAP)) {
                e->err = "out of memory";
                return -1;
            }
            e->beam_W = r->beam;
            e->beam_T = r->max_new;
        }
        lstm_beam_opts bo = {r->alpha, r->so.repetition_penalty, e->gen_ban, LSTM_EOS_ID, word_held, &e->sug, e->gen_ban_end};
        n = lstm_beam_run(&e->beam, &bo, &e->sess.st, e->sess.logits, e->hist, np, e->gen, NULL);
        if (n < 0) {
            e->err = n == LSTM_E_EMPTY ? "every token is banned" : lstm_strerror(n);
            return -1;
        }
        if (n > 0 && e->gen[n - 1] == LSTM_EOS_ID) n--;
        *ngen = n;
        return 0;
    }
    lstm_sampler_opts so = r->so;
    so.banned = e->gen_ban;
    lstm_rng rng;
    lstm_rng_seed(&rng, r->seed);
    size_t LH = (size_t)e->st1.L * e->st1.H;
    memcpy(e->st1.h, e->sess.st.h, LH * sizeof(float));
    memcpy(e->st1.c, e->sess.st.c, LH * sizeof(float));
    memcpy(e->lg, e->sess.logits, (size_t)e->lm.V * sizeof(float));
    size_t nh = np;
    while (n < r->max_new) {
        so.banned = lstm_suggester_word_banned(&e->sug, e->hist, nh, np) ? e->gen_ban_end : e->gen_ban;
        int64_t id = lstm_sampler_pick(&e->smp, &so, e->lg, e->hist, nh, &rng, NULL);
        if (id == LSTM_E_EMPTY) {
            e->err = "every token is banned";
            return -1;
        }
        if (id < 0 || id == LSTM_EOS_ID) break;
        e->gen[n++] = (uint32_t)id;
        e->hist[nh++] = (uint32_t)id;
        if (n == r->max_new) break;
        uint32_t t = (uint32_t)id;
        if ((rc = lstm_infer_step(&e->inf1, &e->st1, &t, e->lg))) {
            e->err = lstm_strerror(rc);
            return -1;
        }
    }
    /* stopped by --max-new inside a banned word: drop its generated pieces */
    while (n > 0 && lstm_suggester_word_banned(&e->sug, e->hist, np + (size_t)n, np)) n--;
    *ngen = n;
    return 0;
}

/* The generated ids as text that continues the prompt: decode(text ids + generated) minus
 * decode(text ids), so spacing and joined pieces come out as they would in the whole text.
 * Returns a malloc'ed string or NULL. */
static char *continuation(engine *e, int ngen)
{
    size_t a = 0;
    while (a < e->ids.n && (e->lm.flags[e->ids.v[a]] & (LSTM_PIECE_SPEAKER | LSTM_PIECE_SPECIAL)) && e->ids.v[a] != LSTM_UNK_ID) a++;
    size_t nt = e->ids.n - a;
    e->out.n = 0;
    for (size_t i = a; i < e->ids.n; i++) lstm_ids_push(&e->out, e->ids.v[i]);
    for (int i = 0; i < ngen; i++) lstm_ids_push(&e->out, e->gen[i]);
    if (e->out.n != nt + (size_t)ngen) return NULL;
    char *full = NULL, *head = NULL;
    size_t nf, nhd;
    if (lstm_tokenizer_decode(e->lm.tok, e->out.v, e->out.n, &full, &nf)) return NULL;
    if (lstm_tokenizer_decode(e->lm.tok, e->out.v, nt, &head, &nhd)) {
        free(full);
        return NULL;
    }
    char *res;
    if (nhd <= nf && !memcmp(full, head, nhd)) {
        res = strdup(full + nhd);
    } else {
        char *g = NULL;
        size_t ng;
        if (lstm_tokenizer_decode(e->lm.tok, e->gen, (size_t)ngen, &g, &ng)) g = NULL;
        res = g;
    }
    free(full);
    free(head);
    return res;
}

/* ------------------------------------------------------------------ requests */

static json_t *reply_suggest(engine *e, const req_t *r, const char *text, size_t len)
{
    size_t plen;
    double mass;
    int n = do_suggest(e, r, text, len, &plen, &mass);
    if (n < 0) return json_pack("{s:s}", "error", e->err);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s%,s:f}", "word", e->sg[i].word, e->sg[i].len, "p", e->sg[i].p));
    json_t *o = json_pack("{s:s,s:o}", "mode", "suggest", "suggestions", arr);
    if (plen) {
        json_object_set_new(o, "prefix", json_stringn(e->prefix, plen));
        json_object_set_new(o, "renormalized", json_true());
    }
    return o;
}

static json_t *reply_complete(engine *e, const req_t *r, const char *text, size_t len)
{
    int ngen;
    if (do_complete(e, r, text, len, &ngen)) return json_pack("{s:s}", "error", e->err);
    char *c = continuation(e, ngen);
    if (!c) return json_pack("{s:s}", "error", "decoding failed");
    json_t *o = json_pack("{s:s,s:s,s:i}", "mode", "complete", "completion", c, "tokens", ngen);
    free(c);
    if (!o) return json_pack("{s:s}", "error", "output is not valid UTF-8");
    return o;
}

static int check_sampling(const req_t *r, const char **msg)
{
    if (r->k < 1 || r->k > MAX_K) { *msg = "k must be from 1 to 1000"; return -1; }
    if (r->max_new < 0 || r->max_new > MAX_NEW) { *msg = "max_new must be from 0 to 10000"; return -1; }
    if (!(r->so.temperature >= 0) || r->so.temperature > 100) { *msg = "temperature must be from 0 to 100"; return -1; }
    if (r->so.top_k < 0) { *msg = "top_k must be >= 0"; return -1; }
    if (!(r->so.top_p > 0) || r->so.top_p > 1) { *msg = "top_p must be in (0, 1]"; return -1; }
    if (!(r->so.repetition_penalty > 0) || r->so.repetition_penalty > 100) { *msg = "repetition_penalty must be in (0, 100]"; return -1; }
    if (r->beam < 0 || r->beam > 64) { *msg = "beam must be from 0 to 64"; return -1; }
    return 0;
}

/* A JSON request line: fields override the defaults. */
static json_t *handle_json(engine *e, const req_t *d, const char *line, size_t len)
{
    json_error_t jerr;
    /* A field given twice is an error (jansson would keep the last one), like an unknown field. */
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    char msg[300];
    if (!j) {
        lstm_json_error_message(&jerr, msg, sizeof msg);
        return json_pack("{s:s}", "error", msg);
    }
    json_t *res = NULL;
    req_t r = *d;
    const char *text = NULL, *bad = NULL;
    size_t tlen = 0;
    int sampling = 0; /* the request names greedy, top_k or top_p */
    if (!json_is_object(j)) {
        res = json_pack("{s:s}", "error", "a request is a JSON object or a line of plain text");
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        int isnum = json_is_number(v), isint = json_is_integer(v);
        double x = isnum ? json_number_value(v) : 0;
        if (!strcmp(key, "text")) {
            if (!json_is_string(v)) { bad = "text must be a string"; break; }
            text = json_string_value(v);
            tlen = json_string_length(v);
        } else if (!strcmp(key, "mode")) {
            const char *m = json_is_string(v) ? json_string_value(v) : "";
            if (!strcmp(m, "suggest")) r.mode = 0;
            else if (!strcmp(m, "complete")) r.mode = 1;
            else { bad = "mode must be \"suggest\" or \"complete\""; break; }
        } else if (!strcmp(key, "speaker")) {
            if (json_is_null(v)) r.speaker = NULL;
            else if (!json_is_string(v)) { bad = "speaker must be a string"; break; }
            else r.speaker = json_string_value(v);
        } else if (!strcmp(key, "k")) {
            if (!isint) { bad = "k must be an integer"; break; }
            r.k = x > MAX_K ? MAX_K + 1 : (int)x;
        } else if (!strcmp(key, "max_new")) {
            if (!isint) { bad = "max_new must be an integer"; break; }
            r.max_new = x > MAX_NEW ? MAX_NEW + 1 : (int)x;
        } else if (!strcmp(key, "top_k")) {
            if (!isint) { bad = "top_k must be an integer"; break; }
            r.so.top_k = x > 1e9 ? 1000000000 : (int)x;
            sampling = 1;
        } else if (!strcmp(key, "beam")) {
            if (!isint) { bad = "beam must be an integer"; break; }
            r.beam = x > 1000 ? 1000 : (int)x;
        } else if (!strcmp(key, "seed")) {
            if (!isint || x < 0) { bad = "seed must be a non-negative integer"; break; }
            r.seed = (unsigned long long)json_integer_value(v);
        } else if (!strcmp(key, "temperature")) {
            if (!isnum) { bad = "temperature must be a number"; break; }
            r.so.temperature = (float)x;
        } else if (!strcmp(key, "top_p")) {
            if (!isnum) { bad = "top_p must be a number"; break; }
            r.so.top_p = (float)x;
            sampling = 1;
        } else if (!strcmp(key, "repetition_penalty")) {
            if (!isnum) { bad = "repetition_penalty must be a number"; break; }
            r.so.repetition_penalty = (float)x;
        } else if (!strcmp(key, "greedy")) {
            if (!json_is_boolean(v)) { bad = "greedy must be true or false"; break; }
            if (json_is_true(v)) r.so.temperature = 0, sampling = 1;
        } else {
            snprintf(msg, sizeof msg, "unknown field \"%.100s\"", key);
            bad = msg;
            break;
        }
    }
    if (!bad && !text) bad = "missing field \"text\"";
    if (!bad && r.beam > 0 && sampling) bad = "beam excludes greedy, top_k and top_p";
    if (!bad) check_sampling(&r, &bad);
    if (r.so.temperature < LSTM_TEMP_MIN) r.so.temperature = 0; /* greedy, as --temperature */
    if (bad) res = json_pack("{s:s}", "error", bad);
    else res = r.mode ? reply_complete(e, &r, text, tlen) : reply_suggest(e, &r, text, tlen);
done:
    json_decref(j);
    return res;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int serve(engine *e, const opts_t *o)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    char *out = malloc(1 << 16);
    size_t outcap = 1 << 16;
    if (!out) die(1, "out of memory");
    int first = 1;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        double t0 = o->timing ? now_us() : 0;
        char *req = line;
        size_t len = (size_t)n;
        if (len && req[len - 1] == '\n') len--;
        if (len && req[len - 1] == '\r') len--;
        /* A UTF-8 byte order mark (Windows editors, PowerShell pipes) is not part of the first request. */
        if (first && len >= 3 && !memcmp(req, "\xEF\xBB\xBF", 3)) req += 3, len -= 3;
        first = 0;
        size_t i = 0;
        while (i < len && (req[i] == ' ' || req[i] == '\t')) i++;
        json_t *res = i < len && (req[i] == '{' || req[i] == '[') ? handle_json(e, &o->d, req, len)
                                               : reply_suggest(e, &(req_t){0, o->d.k, o->d.speaker, o->d.max_new, o->d.beam, o->d.alpha, o->d.so, o->d.seed}, req, len);
        if (!res) res = json_pack("{s:s}", "error", "output is not valid UTF-8");
        size_t m = json_dumpb(res, out, outcap, JSON_COMPACT);
        if (m > outcap) {
            char *b = realloc(out, m);
            if (!b) die(1, "out of memory");
            out = b;
            outcap = m;
            m = json_dumpb(res, out, outcap, JSON_COMPACT);
        }
        json_decref(res);
        if (fwrite(out, 1, m, stdout) != m || fputc('\n', stdout) == EOF || fflush(stdout)) {
            if (errno == EPIPE) break;
            die(1, "stdout: %s", strerror(errno));
        }
        if (o->timing) fprintf(stderr, "%.1f\n", now_us() - t0);
    }
    free(line);
    free(out);
    return 0;
}

/* ------------------------------------------------------------------ setup */

static void open_model(engine *e, const char *path)
{
    char msg[1024];
    int rc = lstm_lm_open(&e->lm, path);
    if (rc) die(1, "%s", lstm_lm_open_error(&e->lm, rc, path, msg, sizeof msg));
}

static void load_bans(engine *e, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die(1, "%s: %s", path, strerror(errno));
    char *line = NULL, norm[4 * LSTM_WORD_MAX];
    size_t cap = 0, nn;
    ssize_t n;
    unsigned long lineno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        /* A binary file would ban garbage silently (a NUL even cuts the word short): refuse it. */
        if (memchr(line, 0, (size_t)n))
            die(1, "%s: line %lu: not a text file (a NUL byte): --ban takes words, one per line", path, lineno);
        if (lstm_utf8_valid_prefix(line, (size_t)n) != (size_t)n)
            die(1, "%s: line %lu: not a text file (invalid UTF-8): --ban takes words, one per line", path, lineno);
        if (lineno == 1 && n >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) memmove(line, line + 3, (size_t)(n -= 3));
        while (n > 0 && strchr(" \t\r\n", line[n - 1])) n--;
        size_t a = 0;
        while (a < (size_t)n && strchr(" \t", line[a])) a++;
        if (a == (size_t)n) continue;
        if (lstm_lm_normalize(&e->lm, line + a, (size_t)n - a, norm, sizeof norm, &nn)) continue;
        if (lstm_suggester_ban_word(&e->sug, norm, nn)) die(1, "out of memory");
        /* a word that is one token is also never generated */
        e->ids.n = 0;
        if (!lstm_tokenizer_encode(e->lm.tok, line + a, (size_t)n - a, &e->ids) && e->ids.n == 1 && e->ids.v[0] != LSTM_UNK_ID)
            e->banned[e->ids.v[0]] = 1;
    }
    if (ferror(f)) die(1, "%s: %s", path, strerror(errno));
    free(line);
    fclose(f);
}

static void engine_init(engine *e, const opts_t *o)
{
    memset(e, 0, sizeof *e);
    open_model(e, o->model);
    int V = e->lm.V, rc;
    e->banned = calloc((size_t)V, 1);
    e->gen_ban = calloc((size_t)V, 1);
    e->gen_ban_end = calloc((size_t)V, 1);
    e->lg = malloc(sizeof *e->lg * (size_t)V);
    e->gen = malloc(sizeof *e->gen * MAX_NEW);
    e->hist = malloc(sizeof *e->hist * (CTX_CAP + MAX_NEW));
    if (!e->banned || !e->gen_ban || !e->gen_ban_end || !e->lg || !e->gen || !e->hist) die(1, "out of memory");
    if ((rc = lstm_session_init(&e->sess, &e->lm, CTX_CAP)) || (rc = lstm_sampler_init(&e->smp, V)) ||
        (rc = lstm_infer_alloc(&e->inf1, e->lm.m, 1)) || (rc = lstm_state_alloc(&e->st1, e->lm.m, 1)))
        die(1, "%s", lstm_strerror(rc));
    /* The suggester reads the bans when it is built: a temporary one takes the word list first. */
    if ((rc = lstm_suggester_init(&e->sug, &e->lm, MAX_K, o->beam_words, NULL))) die(1, "%s", lstm_strerror(rc));
    if (o->ban_path) {
        load_bans(e, o->ban_path);
        char **words = e->sug.ban;
        size_t nw = e->sug.nban;
        e->sug.ban = NULL;
        e->sug.nban = 0;
        lstm_suggester_free(&e->sug);
        if ((rc = lstm_suggester_init(&e->sug, &e->lm, MAX_K, o->beam_words, e->banned))) die(1, "%s", lstm_strerror(rc));
        e->sug.ban = words;
        e->sug.nban = nw;
    }
    /* Generation never emits padding, BOS, UNK or a speaker tag; EOS ends it. */
    memcpy(e->gen_ban, e->banned, (size_t)V);
    for (int i = 0; i < V; i++)
        if ((e->lm.flags[i] & (LSTM_PIECE_SPECIAL | LSTM_PIECE_SPEAKER)) && i != LSTM_EOS_ID) e->gen_ban[i] = 1;
    for (int i = 0; i < V; i++) e->gen_ban_end[i] = e->gen_ban[i] || (e->lm.wf[i] & LSTM_W_BOUND);
}

static void engine_free(engine *e)
{
    lstm_suggester_free(&e->sug);
    lstm_session_free(&e->sess);
    lstm_sampler_free(&e->smp);
    if (e->beam_W) lstm_beam_free(&e->beam);
    lstm_infer_free(&e->inf1);
    lstm_state_free(&e->st1);
    lstm_ids_free(&e->ids);
    lstm_ids_free(&e->out);
    free(e->banned);
    free(e->gen_ban);
    free(e->gen_ban_end);
    free(e->lg);
    free(e->gen);
    free(e->hist);
    free(e->buf);
    lstm_lm_close(&e->lm);
}

int main(int argc, char **argv)
{
    lstm_reserve_std_fds(NULL); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    opts_t o;
    memset(&o, 0, sizeof o);
    o.d.k = 5;
    o.d.max_new = 30;
    o.d.alpha = 1.0f;
    o.d.seed = 1;
    o.beam_words = 8;
    lstm_sampler_opts_default(&o.d.so);
    int suggest_set = 0, complete_set = 0, greedy = 0;
    enum { O_GREEDY = 256, O_TOPK, O_TOPP, O_BEAM, O_ALPHA, O_REP, O_SEED, O_SPEAKER, O_BAN, O_JSON, O_SERVE,
           O_TIMING, O_BEAMW };
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"suggest", required_argument, 0, 's'},
        {"complete", no_argument, 0, 'c'}, {"max-new", required_argument, 0, 'n'},
        {"greedy", no_argument, 0, O_GREEDY}, {"temperature", required_argument, 0, 't'},
        {"top-k", required_argument, 0, O_TOPK}, {"top-p", required_argument, 0, O_TOPP},
        {"beam", required_argument, 0, O_BEAM}, {"length-alpha", required_argument, 0, O_ALPHA},
        {"repetition-penalty", required_argument, 0, O_REP}, {"seed", required_argument, 0, O_SEED},
        {"speaker", required_argument, 0, O_SPEAKER}, {"ban", required_argument, 0, O_BAN},
        {"json", no_argument, 0, O_JSON}, {"serve", no_argument, 0, O_SERVE}, {"timing", no_argument, 0, O_TIMING},
        {"beam-words", required_argument, 0, O_BEAMW}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "m:s:cn:t:qhV", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 's': o.d.k = (int)parse_long(optarg, "--suggest", 1, MAX_K); suggest_set = 1; break;
        case 'c': complete_set = 1; break;
        case 'n': o.d.max_new = (int)parse_long(optarg, "--max-new", 0, MAX_NEW); break;
        case O_GREEDY: greedy = 1; break;
        case 't': o.d.so.temperature = (float)parse_double(optarg, "--temperature", 0, 100); break;
        case O_TOPK: o.d.so.top_k = (int)parse_long(optarg, "--top-k", 0, 1000000000); break;
        case O_TOPP: o.d.so.top_p = (float)parse_double(optarg, "--top-p", 1e-6, 1); break;
        case O_BEAM: o.d.beam = (int)parse_long(optarg, "--beam", 1, 64); break;
        case O_ALPHA: o.d.alpha = (float)parse_double(optarg, "--length-alpha", 0, 10); break;
        case O_REP: o.d.so.repetition_penalty = (float)parse_double(optarg, "--repetition-penalty", 1e-3, 100); break;
        case O_SEED: o.d.seed = (unsigned long long)parse_long(optarg, "--seed", 0, 0x7fffffffffffffffL); break;
        case O_SPEAKER: o.d.speaker = optarg; break;
        case O_BAN: o.ban_path = optarg; break;
        case O_JSON: o.json = 1; break;
        case O_SERVE: o.serve = 1; break;
        case O_TIMING: o.timing = 1; break;
        case O_BEAMW: o.beam_words = (int)parse_long(optarg, "--beam-words", 1, 64); break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " " VERSION "\n"); return 0;
        default: fprintf(stderr, PROG ": try '" PROG " --help'\n"); return 2;
        }
    }
    if (!o.model) die(2, "no model: give -m MODEL.ckpt (see --help)");
    if (suggest_set && complete_set) die(2, "--suggest and --complete exclude each other");
    /* Below LSTM_TEMP_MIN sampling is greedy in all but name (and 1/T overflows float below ~3e-39). */
    if (greedy || o.d.so.temperature < LSTM_TEMP_MIN) o.d.so.temperature = 0;
    if (o.d.beam && (greedy || o.d.so.top_k || o.d.so.top_p < 1)) die(2, "--beam excludes --greedy, --top-k and --top-p");
    if (o.serve && optind < argc) die(2, "--serve reads requests from stdin: no TEXT arguments");
    o.d.mode = complete_set;

    /* One request is a chain of small gemv calls: threads only add hand-off latency. */
    lstm_set_threads(1);
    engine e;
    engine_init(&e, &o);
    if (o.d.speaker && e.lm.S > 0 && lstm_tokenizer_speaker_id(e.lm.tok, o.d.speaker) < 0) {
        char names[768];
        die(2, "--speaker: '%s' is not a speaker of this model (speakers: %s)", o.d.speaker,
            lstm_lm_speaker_names(&e.lm, names, sizeof names));
    }
    if (o.serve) {
        int rc = serve(&e, &o);
        engine_free(&e);
        return rc;
    }

    /* TEXT: the arguments, or one line of stdin */
    char *text = NULL;
    size_t len = 0, cap = 0;
    if (optind < argc) {
        for (int i = optind; i < argc; i++) len += strlen(argv[i]) + 1;
        text = malloc(len + 1);
        if (!text) die(1, "out of memory");
        len = 0;
        for (int i = optind; i < argc; i++) {
            if (i > optind) text[len++] = ' ';
            size_t n = strlen(argv[i]);
            memcpy(text + len, argv[i], n);
            len += n;
        }
        text[len] = 0;
    } else {
        ssize_t n = getline(&text, &cap, stdin);
        if (n < 0) {
            if (ferror(stdin)) die(1, "stdin: %s", strerror(errno));
            n = 0;
            free(text);
            text = strdup("");
        }
        len = (size_t)n;
        if (len && text[len - 1] == '\n') len--;
        if (len && text[len - 1] == '\r') len--;
    }

    int status = 0;
    if (o.json) {
        json_t *res = o.d.mode ? reply_complete(&e, &o.d, text, len) : reply_suggest(&e, &o.d, text, len);
        json_t *err = json_object_get(res, "error");
        if (err) {
            fprintf(stderr, PROG ": %s\n", json_string_value(err));
            status = 1;
        } else {
            json_dumpf(res, stdout, JSON_COMPACT);
            fputc('\n', stdout);
        }
        json_decref(res);
    } else if (o.d.mode) {
        int ngen;
        if (do_complete(&e, &o.d, text, len, &ngen)) die(1, "%s", e.err);
        char *c = continuation(&e, ngen);
        if (!c) die(1, "decoding the output failed");
        const char *p = c;
        while (*p == ' ') p++;
        printf("%s\n", p);
        free(c);
    } else {
        size_t plen;
        double mass;
        int n = do_suggest(&e, &o.d, text, len, &plen, &mass);
        if (n < 0) die(1, "%s", e.err);
        if (plen && n > 0 && !o.quiet)
            fprintf(stderr, PROG ": completing '%s': probabilities renormalised over the words that extend it\n", e.prefix);
        if (n == 0 && !o.quiet) {
            if (plen) fprintf(stderr, PROG ": no suggestions: no known word starts with '%s'\n", e.prefix);
            else fprintf(stderr, PROG ": no suggestions\n");
        }
        for (int i = 0; i < n; i++) printf("%s\t%.6f\n", e.sg[i].word, e.sg[i].p);
    }
    if (fflush(stdout) || ferror(stdout)) die(1, "stdout: %s", strerror(errno));
    free(text);
    engine_free(&e);
    return status;
}
