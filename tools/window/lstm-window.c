/* lstm-window: cut a token stream into training windows (formats/windows.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"
#include "fileio.h"
#include "fill.h"
#include "stream.h"
#include "tokenizer.h"

#define PROG "lstm-window"
#define MAX_T 100000u

static lstm_out out;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [options] [TOKENS]\n"
            "Cut a token stream (from lstm-tok) into training windows for lstm-train / lstm-eval.\n"
            "Reads TOKENS or stdin, writes a window stream to stdout or -o FILE.\n"
            "\n"
            "  -L, --length N      inputs per window (default 35)\n"
            "  -s, --stride S      tokens between window starts (default N; 1 with --last)\n"
            "      --last          N inputs -> 1 target (the last-word formulation), stride 1\n"
            "      --cross-docs    run windows through document boundaries (continuous corpora, e.g. PTB)\n"
            "      --reverse       read every document backwards (its lines or turns in reverse order, each\n"
            "                      one's words reversed, a turn's speaker tag kept in front): windows for a\n"
            "                      right-to-left model, the --backward model of lstm-sample --fill; with\n"
            "                      --cross-docs the documents come in reverse order too\n"
            "      --reverse-turns read every line or chat turn backwards but keep their order: a\n"
            "                      right-to-left model of the turn being typed that has read the\n"
            "                      conversation before it (the --backward model for chat fills)\n"
            "  -o, --output FILE   write FILE instead of stdout\n"
            "  -f, --force         overwrite FILE if it exists\n"
            "  -q, --quiet         no summary line\n"
            "  -v, --verbose       summary line even when stderr is not a terminal\n"
            "  -h, --help          this help\n"
            "  -V, --version       version\n"
            "\n"
            "By default every position predicts the next token (N targets per window), windows do not\n"
            "cross documents and a document's last window is padded (padding is masked out of the loss).\n"
            "\n"
            "Example:\n"
            "  lstm-tok < chats.csv | lstm-window -L 15 | lstm-train -o chat.ckpt\n"
            "  lstm-tok --split space --unk-token '<unk>' ptb.train.txt | lstm-window -L 20 --cross-docs > train.win\n"
            "  lstm-window -L 15 --reverse train.tok | lstm-train -o bwd.ckpt   (a right-to-left model)\n");
}

/* The cutter holds the tokens of the current text (document, or the whole stream with --cross-docs)
 * that later windows still need; abs0 is the position in the text of seq[0]. */
typedef struct {
    lstm_writer *w;
    uint32_t T, S;
    int last;
    uint32_t *seq;
    size_t len, cap;
    uint64_t abs0;
    uint64_t next; /* next window start (pair index, --last: target index), absolute */
    uint64_t covered; /* pairs covered by emitted windows, absolute */
    uint32_t *in, *tg; /* (T) scratch */
    uint64_t windows;
} cutter;

static int emit(cutter *c, uint32_t flags, uint32_t K)
{
    lstm_window win = {flags, c->T, K, c->in, c->tg};
    int rc = lstm_window_put(c->w, &win);
    c->windows++;
    return rc;
}

/* Windows of T pairs at c->next while a whole one is available; at the end of the text (final),
 * one padded window for the pairs left. */
static int cut_next(cutter *c, int final)
{
    uint64_t end = c->abs0 + c->len; /* tokens of the text seen so far */
    while (c->next + c->T + 1 <= end || (final && c->covered + 1 < end && c->next + 1 < end)) {
        size_t s = (size_t)(c->next - c->abs0);
        size_t avail = c->len - s - 1; /* pairs available from s */
        size_t n = avail < c->T ? avail : c->T;
        for (size_t i = 0; i < c->T; i++) {
            c->in[i] = i < n ? c->seq[s + i] : 0;
            c->tg[i] = i < n ? c->seq[s + i + 1] : 0;
        }
        uint32_t flags = c->next == 0 ? LSTM_WIN_DOC_START : (c->S == c->T ? LSTM_WIN_CONT : 0);
        int rc = emit(c, flags, c->T);
        if (rc) return rc;
        c->covered = c->next + n;
        c->next += c->S;
    }
    return LSTM_OK;
}

/* One window per target position j = 1, 1+S, ...: the T tokens before it, left-padded. */
static int cut_last(cutter *c)
{
    uint64_t end = c->abs0 + c->len;
    if (c->next == 0) c->next = 1;
    while (c->next < end) {
        uint64_t j = c->next;
        for (uint32_t i = 0; i < c->T; i++) {
            int64_t p = (int64_t)j - (int64_t)c->T + (int64_t)i; /* absolute position of input i */
            c->in[i] = p < 0 ? 0 : c->seq[(size_t)((uint64_t)p - c->abs0)];
        }
        c->tg[0] = c->seq[(size_t)(j - c->abs0)];
        int rc = emit(c, j <= c->T ? LSTM_WIN_DOC_START : 0, 1);
        if (rc) return rc;
        c->next += c->S;
    }
    return LSTM_OK;
}

/* Drop tokens no future window needs. */
static void compact(cutter *c)
{
    uint64_t keep_from = c->last ? (c->next > c->T ? c->next - c->T : 0) : c->next;
    if (keep_from <= c->abs0) return;
    size_t drop = (size_t)(keep_from - c->abs0);
    if (drop > c->len) drop = c->len;
    memmove(c->seq, c->seq + drop, (c->len - drop) * sizeof *c->seq);
    c->len -= drop;
    c->abs0 += drop;
}

/* Room for n more tokens in c->seq. */
static int reserve(cutter *c, size_t n)
{
    if (c->len + n <= c->cap) return LSTM_OK;
    size_t cap = c->cap ? c->cap : 1024;
    while (cap < c->len + n) cap *= 2;
    uint32_t *s = realloc(c->seq, cap * sizeof *s);
    if (!s) return LSTM_E_NOMEM;
    c->seq = s;
    c->cap = cap;
    return LSTM_OK;
}

static int append(cutter *c, const uint8_t *p, uint32_t n)
{
    if (reserve(c, n)) return LSTM_E_NOMEM;
    for (uint32_t i = 0; i < n; i++) c->seq[c->len + i] = lstm_get_u32(p + 4 * (size_t)i);
    c->len += n;
    return LSTM_OK;
}

static int append_ids(cutter *c, const uint32_t *ids, size_t n)
{
    if (reserve(c, n)) return LSTM_E_NOMEM;
    memcpy(c->seq + c->len, ids, n * sizeof *ids);
    c->len += n;
    return LSTM_OK;
}

/* --reverse: a document's ids, read backwards, in *buf (grown as needed). */
static int reversed_doc(const uint8_t *p, uint32_t n, int mode, uint32_t **buf, size_t *cap)
{
    if (n * 2 > *cap) {
        size_t k = (size_t)n * 4 + 64;
        uint32_t *b = realloc(*buf, k * sizeof *b);
        if (!b) return LSTM_E_NOMEM;
        *buf = b, *cap = k;
    }
    uint32_t *in = *buf + n;
    for (uint32_t i = 0; i < n; i++) in[i] = lstm_get_u32(p + 4 * (size_t)i);
    lstm_doc_reverse(in, n, mode, *buf, NULL);
    return LSTM_OK;
}

static int end_text(cutter *c)
{
    int rc = c->last ? cut_last(c) : cut_next(c, 1);
    c->len = 0;
    c->abs0 = c->next = c->covered = 0;
    return rc;
}


/* --reverse --cross-docs: the documents read backwards, held until the stream ends. */
typedef struct {
    uint32_t *ids;
    size_t *off; /* (n + 1) */
    size_t n, len, cap, ocap;
} held_docs;

static int hold_doc(held_docs *h, const uint32_t *ids, size_t n)
{
    if (h->len + n > h->cap) {
        size_t cap = (h->len + n) * 2 + 1024;
        uint32_t *p = realloc(h->ids, cap * sizeof *p);
        if (!p) return LSTM_E_NOMEM;
        h->ids = p, h->cap = cap;
    }
    if (h->n + 2 > h->ocap) {
        size_t cap = h->ocap * 2 + 64;
        size_t *o = realloc(h->off, cap * sizeof *o);
        if (!o) return LSTM_E_NOMEM;
        h->off = o, h->ocap = cap;
    }
    if (h->n == 0) h->off[0] = 0;
    memcpy(h->ids + h->len, ids, n * sizeof *ids);
    h->len += n;
    h->off[++h->n] = h->len;
    return LSTM_OK;
}

int main(int argc, char **argv)
{
    long T = 35, S = 0;
    int last = 0, cross = 0, reverse = 0, force = 0, quiet = 0, verbose = 0;
    const char *opath = NULL;
    static const struct option opts[] = {
        {"length", required_argument, 0, 'L'}, {"stride", required_argument, 0, 's'},
        {"last", no_argument, 0, 'l'},         {"cross-docs", no_argument, 0, 'c'},
        {"reverse", no_argument, 0, 'r'},       {"reverse-turns", no_argument, 0, 't'},
        {"output", required_argument, 0, 'o'}, {"force", no_argument, 0, 'f'},
        {"quiet", no_argument, 0, 'q'},        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},         {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int ch;
    int closed;
    lstm_reserve_std_fds(&closed); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    int in_closed = closed & 1, out_closed = closed & 2;
    tool_init(PROG);
    opterr = 0; /* getopt's own messages would start with the full argv[0] */
    while ((ch = getopt_long(argc, argv, ":L:s:o:fqvhV", opts, NULL)) != -1) {
        switch (ch) {
        case 'L': T = tool_parse_long(optarg, "-L", 1, MAX_T); break;
        case 's': S = tool_parse_long(optarg, "--stride", 1, MAX_T); break;
        case 'l': last = 1; break;
        case 'c': cross = 1; break;
        case 'r':
        case 't':
            if (reverse && reverse != (ch == 'r' ? LSTM_REVERSE_DOCS : LSTM_REVERSE_TURNS)) {
                fprintf(stderr, PROG ": --reverse and --reverse-turns exclude each other\n");
                return 2;
            }
            reverse = ch == 'r' ? LSTM_REVERSE_DOCS : LSTM_REVERSE_TURNS;
            break;
        case 'o': opath = optarg; break;
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, PROG ": one input at most (got %d)\n", argc - optind);
        return 2;
    }
    if (S == 0) S = last ? 1 : T;
    if (!last && S > T) {
        fprintf(stderr, PROG ": --stride %ld is larger than -L %ld: tokens would be skipped\n", S, T);
        return 2;
    }
    const char *ipath = optind < argc ? argv[optind] : NULL;
    const char *iname = ipath && strcmp(ipath, "-") ? ipath : "stdin";
    if ((!opath || strcmp(opath, "-") == 0) && isatty(1)) {
        fprintf(stderr, PROG ": refusing to write binary data to a terminal: use -o FILE or a pipe\n");
        return 2;
    }

    if (opath && ipath && lstm_same_file(opath, ipath)) {
        fprintf(stderr, PROG ": %s: -o names the input file\n", opath);
        return 2;
    }

    if (out_closed && (!opath || !strcmp(opath, "-"))) {
        fprintf(stderr, PROG ": stdout: %s\n", strerror(EBADF));
        return 1;
    }
    if (in_closed && (!ipath || !strcmp(ipath, "-"))) {
        fprintf(stderr, PROG ": stdin: %s\n", strerror(EBADF));
        return 1;
    }
    int fd = tool_open_input(ipath, "a token stream");
    lstm_reader *r;
    int rc = lstm_reader_open_sniff(&r, fd, 0);
    if (rc == LSTM_E_TEXT && ipath && strcmp(ipath, "-")) {
        fprintf(stderr, PROG ": %s: a text/CSV file, not a token stream: pipe it through lstm-tok (lstm-tok %s | " PROG
                             " ...)\n", iname, ipath);
        return 1;
    }
    if (rc == LSTM_E_TEXT) {
        fprintf(stderr, PROG ": stdin: text/CSV, not a token stream: pipe it through lstm-tok (... | lstm-tok | " PROG
                             " ...)\n");
        return 1;
    }
    if (rc) {
        fprintf(stderr, PROG ": %s: %s\n", iname, rc == LSTM_E_EMPTY ? "empty input (no stream)" : lstm_strerror(rc));
        return 1;
    }
    if (lstm_reader_kind(r) != LSTM_KIND_TOKS) {
        char k[5];
        fprintf(stderr, PROG ": %s: got %s (%s), expected a token stream (TOKS): make one with lstm-tok\n", iname,
                lstm_kind_desc(lstm_reader_kind(r)), lstm_kind_name(lstm_reader_kind(r), k));
        lstm_reader_free(r);
        return 1;
    }
    const lstm_meta *im = lstm_reader_meta(r);
    uint64_t vocab = 0;
    if (lstm_meta_get_u64(im, "vocab_size", &vocab) != 0 || vocab == 0) {
        fprintf(stderr, PROG ": %s: no vocab_size in the stream's metadata\n", iname);
        lstm_reader_free(r);
        return 1;
    }
    /* The tokenizer is copied into the output: it must be one every reader accepts, and agree with
     * vocab_size (which bounds the ids checked below). */
    {
        uint64_t mv;
        uint32_t tv;
        size_t bl;
        const uint8_t *blob = lstm_meta_get(im, "tokenizer", &bl);
        int tc = lstm_tokenizer_meta_check(im, &mv, &tv);
        if (tc == LSTM_E_VOCAB)
            fprintf(stderr, PROG ": %s: vocab_size %llu in the metadata differs from the tokenizer's %u ids\n", iname,
                    (unsigned long long)mv, tv);
        else if (tc == LSTM_E_NOTFOUND) /* ids only: vocab_size alone bounds them */
            tc = 0;
        else if (tc || (tc = lstm_tokenizer_blob_check(blob, bl)))
            fprintf(stderr, PROG ": %s: tokenizer: %s\n", iname, lstm_strerror(tc));
        if (tc) {
            lstm_reader_free(r);
            return 1;
        }
    }
    lstm_meta m;
    lstm_meta_init(&m);
    if (lstm_meta_copy(&m, im) || lstm_meta_set_u64(&m, "window_length", (uint64_t)T) ||
        lstm_meta_set_u64(&m, "window_stride", (uint64_t)S) ||
        lstm_meta_set_str(&m, "window_targets", last ? "last" : "next") ||
        lstm_meta_set_u64(&m, "cross_docs", (uint64_t)cross) || (reverse && lstm_meta_set_str(&m, "reverse", reverse == LSTM_REVERSE_TURNS ? "turns" : "docs")) ||
        lstm_meta_add_provenance(&m, argc, argv)) {
        fprintf(stderr, PROG ": out of memory\n");
        lstm_meta_free(&m);
        lstm_reader_free(r);
        return 1;
    }

    rc = lstm_out_open(&out, opath, force);
    if (rc) {
        fprintf(stderr, PROG ": %s: %s\n", opath, rc == LSTM_E_IO ? strerror(errno) : lstm_strerror(rc));
        lstm_meta_free(&m);
        lstm_reader_free(r);
        return 1;
    }
    tool_exit_on_signals();

    cutter c = {0};
    c.T = (uint32_t)T;
    c.S = (uint32_t)S;
    c.last = last;
    c.in = malloc((size_t)T * sizeof *c.in);
    c.tg = malloc((size_t)T * sizeof *c.tg);
    if (!c.in || !c.tg) rc = LSTM_E_NOMEM;
    if (!rc) rc = lstm_writer_open(&c.w, out.fd, LSTM_KIND_WIND, &m, NULL);
    uint64_t docs = 0, tokens = 0;
    uint32_t *rbuf = NULL;
    size_t rcap = 0;
    held_docs held = {0};
    const char *where = opath ? opath : "stdout";
    int read_err = 0;
    uint8_t tag;
    const uint8_t *p;
    uint32_t len;
    while (!rc) {
        int k = lstm_reader_next(r, &tag, &p, &len);
        if (k < 0) { rc = k; read_err = 1; break; }
        if (k == 0) break;
        if (len % 4) { rc = LSTM_E_FORMAT; read_err = 1; break; }
        for (uint32_t i = 0; i < len / 4; i++) {
            uint32_t id = lstm_get_u32(p + 4 * (size_t)i);
            if (id >= vocab) {
                fprintf(stderr, PROG ": %s: document %llu: token id %u out of range (vocab_size %llu)\n", iname,
                        (unsigned long long)docs + 1, id, (unsigned long long)vocab);
                rc = 1; /* reported: clean up below */
                break;
            }
        }
        if (rc) break;
        docs++;
        tokens += len / 4;
        if (reverse == LSTM_REVERSE_DOCS && cross) { /* every document, then the stream from its end */
            rc = reversed_doc(p, len / 4, reverse, &rbuf, &rcap);
            if (!rc) rc = hold_doc(&held, rbuf, len / 4);
            continue;
        }
        if (reverse) {
            rc = reversed_doc(p, len / 4, reverse, &rbuf, &rcap);
            if (!rc) rc = append_ids(&c, rbuf, len / 4);
        } else rc = append(&c, p, len / 4);
        if (!rc) rc = last ? cut_last(&c) : cut_next(&c, 0);
        if (!rc && !cross) rc = end_text(&c);
        if (!rc) compact(&c);
    }
    for (size_t d = held.n; !rc && d-- > 0;) {
        rc = append_ids(&c, held.ids + held.off[d], held.off[d + 1] - held.off[d]);
        if (!rc) rc = last ? cut_last(&c) : cut_next(&c, 0);
        if (!rc) compact(&c);
    }
    if (!rc && cross) rc = end_text(&c);
    if (!rc) rc = lstm_writer_finish(c.w);
    if (!rc) {
        rc = lstm_out_commit(&out);
        if (rc) read_err = 0;
    }
    if (rc) {
        int e = errno;
        lstm_out_abort(&out);
        if (rc == 1) { /* already reported */
        } else if (read_err) fprintf(stderr, PROG ": %s: %s\n", iname, lstm_strerror(rc));
        else fprintf(stderr, PROG ": %s: %s\n", where, rc == LSTM_E_IO ? strerror(e) : lstm_strerror(rc));
    } else if (verbose || (!quiet && isatty(2)))
        fprintf(stderr, PROG ": %llu documents, %llu tokens -> %llu windows of %ld (%s)\n", (unsigned long long)docs,
                (unsigned long long)tokens, (unsigned long long)c.windows, T, last ? "last" : "next");
    lstm_writer_free(c.w);
    lstm_reader_free(r);
    lstm_meta_free(&m);
    free(c.seq);
    free(rbuf);
    free(held.ids);
    free(held.off);
    free(c.in);
    free(c.tg);
    return rc ? 1 : 0;
}
