/* lstm-tok: text or chat CSV -> token stream (formats/tokens.md), building or reusing a vocabulary. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "numparse.h"
#include "csv.h"
#include "fileio.h"
#include "stream.h"
#include "tokenizer.h"
#include "utf8.h"

#define PROG "lstm-tok"
#define VERSION "1.0"
#define MAX_DOC_IDS (LSTM_MAX_RECORD / 4)
#define PEEK_MAX (1u << 20)
#define ENCODE_BYTES_PER_THREAD (16u << 20) /* bytes looked at to find the first line when detecting CSV */

enum { FMT_AUTO, FMT_TEXT, FMT_CSV };
enum { MODE_FIXED, MODE_COUNT, MODE_BPE }; /* tokenizer given / vocabulary built here / bpe built here */

/* Everything that must be released or removed on exit lives here, so every path can clean up. */
static struct {
    lstm_out out, vout;
    volatile sig_atomic_t out_ready, vout_ready;
    lstm_tokenizer *tok;
    lstm_writer *w;
    lstm_meta meta;
    int mode;
    lstm_ids cur;  /* the document being assembled */
    lstm_ids all;  /* MODE_COUNT: every document's temporary ids */
    size_t *dend;  /* MODE_COUNT: end of each document in all; MODE_BPE: end of each document in turns */
    size_t ndoc, dcap;
    /* MODE_BPE: turns (speaker tmp id or UINT32_MAX, text in arena) */
    char *arena;
    size_t alen, acap;
    size_t *toff, *tlen;
    uint32_t *tspk;
    size_t nturn, tcap;
    char *san; /* scratch for repaired UTF-8 */
    size_t sancap;
    char *line;
    size_t linecap;
    char *para;
    size_t paralen, paracap;
    char *prevconv;
    size_t prevlen;
    uint64_t docs, tokens, replaced;
    const char *iname; /* current input name for messages */
    const char *opath; /* -o, NULL for stdout */
} A;


static void on_signal(int sig)
{
    (void)sig;
    if (A.out_ready && A.out.tmp) unlink(A.out.tmp);
    if (A.vout_ready && A.vout.tmp) unlink(A.vout.tmp);
    _exit(130);
}

static void cleanup(void)
{
    if (A.out_ready) lstm_out_abort(&A.out);
    if (A.vout_ready) lstm_out_abort(&A.vout);
    A.out_ready = A.vout_ready = 0;
    lstm_writer_free(A.w);
    A.w = NULL;
    lstm_tokenizer_free(A.tok);
    A.tok = NULL;
    lstm_meta_free(&A.meta);
    lstm_ids_free(&A.cur);
    lstm_ids_free(&A.all);
    free(A.dend);
    free(A.arena);
    free(A.toff);
    free(A.tlen);
    free(A.tspk);
    free(A.san);
    free(A.line);
    free(A.para);
    free(A.prevconv);
    A.dend = NULL;
    A.arena = A.san = A.line = A.para = A.prevconv = NULL;
    A.toff = A.tlen = NULL;
    A.tspk = NULL;
}

/* Prints "lstm-tok: msg", cleans up (removing partial output) and returns exit status 1. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cleanup();
    return 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [options] [FILE...]\n"
            "Tokenize plain text or a chat CSV into a token stream for lstm-window / lstm-eval.\n"
            "Reads FILEs or stdin, writes a token stream to stdout or -o FILE.\n"
            "\n"
            "Tokenizer (a vocabulary is built from the input unless -m is given):\n"
            "      --words           ICU word boundaries, NFKC + case folding, punctuation and emoji\n"
            "                        kept as tokens (default)\n"
            "      --split MODE      space: split on whitespace only (pre-tokenized corpora such as PTB);\n"
            "                        also words, chars, bpe\n"
            "      --unk-token S     with --split space: input token S (e.g. '<unk>') is the UNK id\n"
            "      --bpe             SentencePiece BPE trained on the input (byte fallback: no UNK)\n"
            "      --chars           grapheme clusters\n"
            "      --keep-case       no case folding (words, chars, bpe training)\n"
            "      --vocab-size N    at most N ids in all, counting PAD UNK BOS EOS and speaker tags\n"
            "                        (words: default unlimited; bpe: default 8000)\n"
            "      --min-count N     words seen fewer than N times become UNK\n"
            "  -m, --model FILE      reuse the tokenizer of FILE: a vocab file, any lstm stream, or a\n"
            "                        SentencePiece .model (BPE; speaker tags are added from the input)\n"
            "      --vocab-out FILE  also save the tokenizer as a vocab file\n"
            "\n"
            "Input:\n"
            "      --format F        text or csv (default: csv when the first line is a header naming two\n"
            "                        of the speaker|role|author, text|utterance|message and\n"
            "                        conversation columns)\n"
            "      --paragraphs      text: documents are separated by blank lines (default: one per line)\n"
            "  CSV turns are grouped into one document per dialogue_id|conversation_id|conversation|\n"
            "  dialog_id value (each turn is a document without such a column); a turn is\n"
            "  <speaker-tag> <s> tokens </s>. A text document is tokens </s>.\n"
            "\n"
            "Output:\n"
            "  -o, --output FILE     write FILE instead of stdout\n"
            "  -f, --force           overwrite existing output files\n"
            "      --threads N       threads for BPE training and encoding (default 2; encoding adds a\n"
            "                        thread per 16 MB of text)\n"
            "  -q, --quiet           no warnings or summary\n"
            "  -v, --verbose         summary line even when stderr is not a terminal\n"
            "  -h, --help            this help\n"
            "  -V, --version         version\n"
            "\n"
            "Examples:\n"
            "  cat chats.csv | " PROG " | lstm-window -L 15 | lstm-train\n"
            "  " PROG " --vocab-out chat.vocab -o train.tok train.csv && " PROG " -m chat.vocab -o valid.tok valid.csv\n"
            "  " PROG " --split space --unk-token '<unk>' ptb.train.txt | lstm-window -L 20 --cross-docs > train.win\n");
}

static long parse_num(const char *s, const char *flag, long lo, long hi)
{
    long v;
    if (lstm_parse_long(s, lo, hi, &v)) {
        fprintf(stderr, PROG ": %s: expected an integer from %ld to %ld, got '%s'\n", flag, lo, hi, s);
        exit(2);
    }
    return v;
}

/* ------------------------------------------------------------------ input source */

typedef struct {
    int fd;
    char *buf;
    size_t pos, fill, cap;
    int eof;
} src;

/* Reads more bytes at the end of the buffer (growing it when full); 0 at end of input. */
static ssize_t src_more(src *s)
{
    ssize_t n;
    if (s->fill == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        char *b = realloc(s->buf, cap);
        if (!b) {
            errno = ENOMEM;
            return -1;
        }
        s->buf = b;
        s->cap = cap;
    }
    do {
        n = read(s->fd, s->buf + s->fill, s->cap - s->fill);
    } while (n < 0 && errno == EINTR);
    if (n == 0) s->eof = 1;
    if (n > 0) s->fill += (size_t)n;
    return n;
}

/* The CSV reader's callback: buffered bytes first, then the fd. */
static ssize_t src_read(void *ctx, void *buf, size_t cap)
{
    src *s = ctx;
    ssize_t n;
    if (s->pos < s->fill) {
        size_t k = s->fill - s->pos < cap ? s->fill - s->pos : cap;
        memcpy(buf, s->buf + s->pos, k);
        s->pos += k;
        return (ssize_t)k;
    }
    do {
        n = read(s->fd, buf, cap);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Next line (without "\n" / "\r\n") into *line; 1, 0 at end, -1 on a read error. */
static int src_line(src *s, const char **line, size_t *len)
{
    for (;;) {
        char *nl = s->pos < s->fill ? memchr(s->buf + s->pos, '\n', s->fill - s->pos) : NULL;
        if (nl || (s->eof && s->pos < s->fill)) {
            size_t end = nl ? (size_t)(nl - s->buf) : s->fill;
            *line = s->buf + s->pos;
            *len = end - s->pos;
            s->pos = nl ? end + 1 : end;
            if (*len && (*line)[*len - 1] == '\r') (*len)--;
            return 1;
        }
        if (s->eof) return 0;
        if (s->pos > 0) { /* keep the partial line at the start of the buffer */
            memmove(s->buf, s->buf + s->pos, s->fill - s->pos);
            s->fill -= s->pos;
            s->pos = 0;
        }
        if (src_more(s) < 0) return -1;
    }
}

/* ------------------------------------------------------------------ documents */

/* Valid UTF-8 for text: returns it, or a repaired copy (counting the repairs). */
static int clean(const char **text, size_t *len)
{
    size_t ok = lstm_utf8_valid_prefix(*text, *len), bad = 0;
    if (ok == *len) return 0;
    if (3 * *len + 1 > A.sancap) {
        char *p = realloc(A.san, 3 * *len + 1);
        if (!p) return LSTM_E_NOMEM;
        A.san = p;
        A.sancap = 3 * *len + 1;
    }
    *len = lstm_utf8_sanitize(*text, *len, A.san, &bad);
    A.replaced += bad;
    *text = A.san;
    return 0;
}

static int write_doc(const uint32_t *ids, size_t n)
{
    if (n > MAX_DOC_IDS) return LSTM_E_TOOBIG;
    A.docs++;
    A.tokens += n;
    return lstm_doc_put(A.w, ids, (uint32_t)n);
}

static int push_doc_end(size_t end)
{
    if (A.ndoc == A.dcap) {
        size_t cap = A.dcap ? A.dcap * 2 : 1024;
        size_t *d = realloc(A.dend, cap * sizeof *d);
        if (!d) return LSTM_E_NOMEM;
        A.dend = d;
        A.dcap = cap;
    }
    A.dend[A.ndoc++] = end;
    return 0;
}

/* One turn (speaker != NULL) or one text document's text. *msg names a data error. */
static int add_text(const char *speaker, size_t slen, const char *text, size_t len, const char **msg)
{
    uint32_t sid = UINT32_MAX;
    int e;
    if (speaker) {
        char *name;
        if ((e = clean(&speaker, &slen))) return e;
        e = lstm_tokenizer_speaker(A.tok, speaker, slen, &sid);
        if (e == LSTM_E_ARG) {
            *msg = "empty speaker name";
            return LSTM_E_CSV;
        }
        if (e == LSTM_E_NOTFOUND) {
            static char buf[200];
            name = strndup(speaker, slen > 60 ? 60 : slen);
            snprintf(buf, sizeof buf, "speaker '%s' is not in the tokenizer given with -m", name ? name : "?");
            free(name);
            *msg = buf;
            return LSTM_E_CSV;
        }
        if (e) return e;
    }
    if ((e = clean(&text, &len))) return e;
    if (A.mode == MODE_BPE) {
        if (A.nturn == A.tcap) {
            size_t cap = A.tcap ? A.tcap * 2 : 1024;
            size_t *o = realloc(A.toff, cap * sizeof *o), *l;
            uint32_t *s;
            if (!o) return LSTM_E_NOMEM;
            A.toff = o;
            if (!(l = realloc(A.tlen, cap * sizeof *l))) return LSTM_E_NOMEM;
            A.tlen = l;
            if (!(s = realloc(A.tspk, cap * sizeof *s))) return LSTM_E_NOMEM;
            A.tspk = s;
            A.tcap = cap;
        }
        if (A.alen + len + 1 > A.acap) {
            size_t cap = A.acap ? A.acap : 1 << 20;
            char *p;
            while (cap < A.alen + len + 1) cap *= 2;
            if (!(p = realloc(A.arena, cap))) return LSTM_E_NOMEM;
            A.arena = p;
            A.acap = cap;
        }
        memcpy(A.arena + A.alen, text, len);
        A.arena[A.alen + len] = '\0';
        A.toff[A.nturn] = A.alen;
        A.tlen[A.nturn] = len;
        A.tspk[A.nturn] = sid;
        A.alen += len + 1;
        A.nturn++;
        return 0;
    }
    if (speaker) {
        if ((e = lstm_ids_push(&A.cur, sid)) || (e = lstm_ids_push(&A.cur, LSTM_BOS_ID))) return e;
    }
    e = A.mode == MODE_FIXED ? lstm_tokenizer_encode(A.tok, text, len, &A.cur) : lstm_tokenizer_count(A.tok, text, len, &A.cur);
    if (e) return e;
    if (speaker) e = lstm_ids_push(&A.cur, LSTM_EOS_ID);
    return e;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n\v\f", s[i]) || !s[i]) return 0;
    return 1;
}

/* Ends the current document. Text documents get their EOS here; empty ones are dropped. */
static int end_doc(int text_doc)
{
    int e = 0;
    if (A.mode == MODE_BPE) {
        size_t start = A.ndoc ? A.dend[A.ndoc - 1] : 0;
        if (A.nturn == start) return 0;
        if (text_doc && blank(A.arena + A.toff[A.nturn - 1], A.tlen[A.nturn - 1])) { /* no document */
            A.nturn--;
            A.alen = A.toff[A.nturn];
            return 0;
        }
        return push_doc_end(A.nturn);
    }
    if (!A.cur.n) return 0;
    if (text_doc && (e = lstm_ids_push(&A.cur, LSTM_EOS_ID))) return e;
    if (A.cur.n > MAX_DOC_IDS) return LSTM_E_TOOBIG;
    if (A.mode == MODE_FIXED) {
        e = write_doc(A.cur.v, A.cur.n);
    } else {
        for (size_t i = 0; i < A.cur.n && !e; i++) e = lstm_ids_push(&A.all, A.cur.v[i]);
        if (!e) e = push_doc_end(A.all.n);
    }
    A.cur.n = 0;
    return e;
}

/* ------------------------------------------------------------------ formats */

static int name_in(const char *s, size_t n, const char *const *names)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    for (; *names; names++)
        if (strlen(*names) == n && strncasecmp(s, *names, n) == 0) return 1;
    return 0;
}

static const char *const SPEAKER_COLS[] = {"speaker", "role", "author", NULL};
static const char *const TEXT_COLS[] = {"text", "utterance", "message", NULL};
static const char *const CONV_COLS[] = {"dialogue_id", "conversation_id", "conversation", "dialog_id", NULL};

/* Auto-detection: the first line is a header when at least two of its comma-separated fields (quotes
 * stripped) name known columns (speaker, text or conversation), so that a sentence such as
 * "text, as they say, is king" stays text. */
static int looks_like_csv(const char *line, size_t len)
{
    size_t i = 0;
    int known = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && line[j] != ',') j++;
        const char *f = line + i;
        size_t n = j - i;
        while (n && (*f == ' ' || *f == '"')) f++, n--;
        while (n && (f[n - 1] == ' ' || f[n - 1] == '"' || f[n - 1] == '\r')) n--;
        known += name_in(f, n, SPEAKER_COLS) || name_in(f, n, TEXT_COLS) || name_in(f, n, CONV_COLS);
        i = j + 1;
    }
    return known >= 2;
}

static int run_text(src *s, int paragraphs)
{
    const char *line, *msg = NULL;
    size_t len;
    int k, e;
    uint64_t lineno = 0;
    while ((k = src_line(s, &line, &len)) == 1) {
        lineno++;
        if (lineno == 1 && len >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) line += 3, len -= 3;
        if (!paragraphs) {
            if ((e = add_text(NULL, 0, line, len, &msg)) || (e = end_doc(1))) goto err;
            continue;
        }
        size_t i = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
        if (i == len) { /* blank line: end of paragraph */
            if (A.paralen) {
                e = add_text(NULL, 0, A.para, A.paralen, &msg);
                A.paralen = 0;
                if (e || (e = end_doc(1))) goto err;
            }
            continue;
        }
        if (A.paralen + len + 2 > A.paracap) {
            size_t cap = A.paracap ? A.paracap : 4096;
            char *p;
            while (cap < A.paralen + len + 2) cap *= 2;
            if (!(p = realloc(A.para, cap))) return fail("out of memory");
            A.para = p;
            A.paracap = cap;
        }
        if (A.paralen) A.para[A.paralen++] = '\n';
        memcpy(A.para + A.paralen, line, len);
        A.paralen += len;
    }
    if (k < 0) return fail("%s: %s", A.iname, strerror(errno));
    if (A.paralen) {
        e = add_text(NULL, 0, A.para, A.paralen, &msg);
        A.paralen = 0;
        if (e || (e = end_doc(1))) goto err;
    }
    return 0;
err:
    if (e == LSTM_E_TOOBIG) return fail("%s:%llu: document too long (more than %u tokens)", A.iname, (unsigned long long)lineno, MAX_DOC_IDS);
    return fail("%s:%llu: %s", A.iname, (unsigned long long)lineno, e == LSTM_E_IO ? strerror(errno) : lstm_strerror(e));
}

static int run_csv(src *s)
{
    lstm_csv *c;
    long sc = -1, tc = -1, cc = -1;
    size_t nf, need;
    int k, e;
    const char *msg = NULL;
    if ((e = lstm_csv_open(&c, src_read, s, 0))) return fail("out of memory");
    k = lstm_csv_next(c);
    if (k < 0) goto csv_err;
    if (k == 0) { /* no header at all: an empty input */
        lstm_csv_free(c);
        return 0;
    }
    nf = lstm_csv_nfields(c);
    for (size_t i = 0; i < nf; i++) {
        size_t n;
        const char *f = lstm_csv_field(c, i, &n);
        if (i == 0 && n >= 3 && !memcmp(f, "\xEF\xBB\xBF", 3)) f += 3, n -= 3;
        if (sc < 0 && name_in(f, n, SPEAKER_COLS)) sc = (long)i;
        else if (tc < 0 && name_in(f, n, TEXT_COLS)) tc = (long)i;
        else if (cc < 0 && name_in(f, n, CONV_COLS)) cc = (long)i;
    }
    if (tc < 0 || sc < 0) {
        unsigned long long line = (unsigned long long)lstm_csv_line(c);
        lstm_csv_free(c);
        if (tc < 0) return fail("%s:%llu: no text column in the CSV header (expected text, utterance or message)", A.iname, line);
        return fail("%s:%llu: no speaker column in the CSV header (expected speaker, role or author)", A.iname, line);
    }
    need = (size_t)(sc > tc ? sc : tc);
    if (cc > (long)need) need = (size_t)cc;
    free(A.prevconv);
    A.prevconv = NULL;
    while ((k = lstm_csv_next(c)) == 1) {
        size_t slen, tlen, clen;
        const char *sp, *tx;
        if (lstm_csv_nfields(c) <= need) {
            unsigned long long line = (unsigned long long)lstm_csv_line(c);
            size_t got = lstm_csv_nfields(c);
            lstm_csv_free(c);
            return fail("%s:%llu: %zu field%s, the header has %zu", A.iname, line, got, got == 1 ? "" : "s", nf);
        }
        if (cc >= 0) {
            const char *cv = lstm_csv_field(c, (size_t)cc, &clen);
            if (!A.prevconv || clen != A.prevlen || memcmp(cv, A.prevconv, clen)) {
                char *p;
                if ((e = end_doc(0))) goto data_err;
                if (!(p = malloc(clen + 1))) {
                    e = LSTM_E_NOMEM;
                    goto data_err;
                }
                memcpy(p, cv, clen);
                free(A.prevconv);
                A.prevconv = p;
                A.prevlen = clen;
            }
        }
        sp = lstm_csv_field(c, (size_t)sc, &slen);
        tx = lstm_csv_field(c, (size_t)tc, &tlen);
        if ((e = add_text(sp, slen, tx, tlen, &msg))) goto data_err;
        if (cc < 0 && (e = end_doc(0))) goto data_err;
    }
    if (k < 0) goto csv_err;
    if ((e = end_doc(0))) goto data_err;
    lstm_csv_free(c);
    return 0;
csv_err : {
    unsigned long long line = (unsigned long long)lstm_csv_line(c);
    lstm_csv_free(c);
    if (k == LSTM_E_CSV) return fail("%s:%llu: unterminated quoted field", A.iname, line);
    if (k == LSTM_E_TOOBIG) return fail("%s:%llu: CSV record larger than %u bytes", A.iname, line, LSTM_CSV_MAX_RECORD);
    return fail("%s: %s", A.iname, k == LSTM_E_IO ? strerror(errno) : lstm_strerror(k));
}
data_err : {
    unsigned long long line = (unsigned long long)lstm_csv_line(c);
    lstm_csv_free(c);
    if (e == LSTM_E_CSV) return fail("%s:%llu: %s", A.iname, line, msg);
    if (e == LSTM_E_TOOBIG) return fail("%s:%llu: document too long (more than %u tokens)", A.iname, line, MAX_DOC_IDS);
    return fail("%s:%llu: %s", A.iname, line, lstm_strerror(e));
}
}

/* Reads one input (NULL = stdin) in the given or detected format. */
static int run_input(const char *path, int format, int paragraphs)
{
    src s = {0};
    int rc;
    A.iname = path && strcmp(path, "-") ? path : "stdin";
    s.fd = lstm_in_open(path);
    if (s.fd < 0) return fail("%s: %s", A.iname, strerror(errno));
    if (format == FMT_AUTO) { /* look at the first line */
        for (;;) {
            if (memchr(s.buf ? s.buf : "", '\n', s.fill) || s.eof || s.fill >= PEEK_MAX) break;
            if (src_more(&s) < 0) {
                rc = fail("%s: %s", A.iname, strerror(errno));
                goto out;
            }
        }
        {
            size_t n = s.fill;
            const char *nl = s.fill ? memchr(s.buf, '\n', s.fill) : NULL;
            const char *b = s.buf;
            if (nl) n = (size_t)(nl - s.buf);
            if (n >= 3 && !memcmp(b, "\xEF\xBB\xBF", 3)) b += 3, n -= 3;
            format = n && looks_like_csv(b, n) ? FMT_CSV : FMT_TEXT;
        }
    }
    rc = format == FMT_CSV ? run_csv(&s) : run_text(&s, paragraphs);
out:
    if (s.fd > 0) close(s.fd);
    free(s.buf);
    return rc;
}

/* ------------------------------------------------------------------ BPE encoding on threads */

typedef struct {
    lstm_tokenizer *tok;
    size_t d0, d1; /* documents [d0, d1) */
    lstm_ids ids;
    size_t *end; /* (d1 - d0) end of each document in ids */
    int err;
} job;

static void *bpe_job(void *arg)
{
    job *j = arg;
    for (size_t d = j->d0; d < j->d1 && !j->err; d++) {
        size_t t0 = d ? A.dend[d - 1] : 0;
        for (size_t t = t0; t < A.dend[d] && !j->err; t++) {
            if (A.tspk[t] != UINT32_MAX) {
                j->err = lstm_ids_push(&j->ids, A.tspk[t]);
                if (!j->err) j->err = lstm_ids_push(&j->ids, LSTM_BOS_ID);
            }
            if (!j->err) j->err = lstm_tokenizer_encode(j->tok, A.arena + A.toff[t], A.tlen[t], &j->ids);
            if (!j->err) j->err = lstm_ids_push(&j->ids, LSTM_EOS_ID);
        }
        j->end[d - j->d0] = j->ids.n;
    }
    return NULL;
}

static int bpe_write(int threads)
{
    job jobs[16];
    pthread_t th[16];
    int nj = threads < 1 ? 1 : threads > 16 ? 16 : threads, started = 1, e = 0;
    /* with the tokenizer's chunk cache, encoding is cheap: another thread (its own model copy and
     * cold cache) only pays off on large inputs */
    if ((size_t)nj > 1 + A.alen / ENCODE_BYTES_PER_THREAD) nj = (int)(1 + A.alen / ENCODE_BYTES_PER_THREAD);
    if ((size_t)nj > A.ndoc) nj = A.ndoc ? (int)A.ndoc : 1;
    memset(jobs, 0, sizeof jobs);
    for (int k = 0; k < nj && !e; k++) {
        jobs[k].d0 = A.ndoc * (size_t)k / (size_t)nj;
        jobs[k].d1 = A.ndoc * (size_t)(k + 1) / (size_t)nj;
        jobs[k].end = malloc((jobs[k].d1 - jobs[k].d0 + 1) * sizeof(size_t));
        if (!jobs[k].end) e = LSTM_E_NOMEM;
        else if (k) e = lstm_tokenizer_dup(&jobs[k].tok, A.tok);
        else jobs[k].tok = A.tok;
    }
    for (int k = 1; k < nj && !e; k++) {
        if (pthread_create(&th[k], NULL, bpe_job, &jobs[k])) e = LSTM_E_NOMEM;
        else started = k + 1;
    }
    if (!e) bpe_job(&jobs[0]);
    for (int k = 1; k < started; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < nj && !e; k++) {
        size_t p = 0;
        e = jobs[k].err;
        for (size_t d = jobs[k].d0; d < jobs[k].d1 && !e; d++) {
            size_t q = jobs[k].end[d - jobs[k].d0];
            e = write_doc(jobs[k].ids.v + p, q - p);
            p = q;
        }
    }
    for (int k = 0; k < 16; k++) {
        if (k) lstm_tokenizer_free(jobs[k].tok);
        lstm_ids_free(&jobs[k].ids);
        free(jobs[k].end);
    }
    return e;
}

/* ------------------------------------------------------------------ main */

static int out_error(const char *path, int e);

/* The tokenizer goes into the metadata only if every reader will accept it back. */
static int open_writer(void)
{
    int e = lstm_tokenizer_meta_set(A.tok, &A.meta);
    if (!e) {
        size_t n;
        const uint8_t *b = lstm_meta_get(&A.meta, "tokenizer", &n);
        if (lstm_tokenizer_blob_check(b, n)) return fail("the tokenizer built would be refused by its readers (a bug: please report it)");
        e = lstm_writer_open(&A.w, A.out.fd, LSTM_KIND_TOKS, &A.meta, NULL);
    }
    return e ? out_error(A.opath, e) : 0;
}

static int out_error(const char *path, int e)
{
    int err = errno;
    return fail("%s: %s", path ? path : "stdout", e == LSTM_E_IO ? strerror(err) : lstm_strerror(e));
}

int main(int argc, char **argv)
{
    int kind = 0, keep_case = 0, paragraphs = 0, format = FMT_AUTO, force = 0, quiet = 0, verbose = 0;
    int threads = 2, ch, e, vocab_flags = 0;
    long vocab_size = 0, min_count = 0;
    const char *unk = NULL, *mpath = NULL, *vpath = NULL, *opath = NULL;
    enum { O_WORDS = 256, O_SPLIT, O_UNK, O_BPE, O_CHARS, O_KEEP, O_VS, O_MC, O_VOUT, O_FMT, O_PARA, O_THR };
    static const struct option opts[] = {
        {"words", no_argument, 0, O_WORDS},       {"split", required_argument, 0, O_SPLIT},
        {"unk-token", required_argument, 0, O_UNK}, {"bpe", no_argument, 0, O_BPE},
        {"chars", no_argument, 0, O_CHARS},       {"keep-case", no_argument, 0, O_KEEP},
        {"vocab-size", required_argument, 0, O_VS}, {"min-count", required_argument, 0, O_MC},
        {"vocab-out", required_argument, 0, O_VOUT}, {"format", required_argument, 0, O_FMT},
        {"paragraphs", no_argument, 0, O_PARA},   {"threads", required_argument, 0, O_THR},
        {"model", required_argument, 0, 'm'},     {"output", required_argument, 0, 'o'},
        {"force", no_argument, 0, 'f'},           {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},         {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},         {0, 0, 0, 0}};
    int nkind = 0;

    int closed;
    lstm_reserve_std_fds(&closed); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    int in_closed = closed & 1, out_closed = closed & 2;
    lstm_meta_init(&A.meta);
    opterr = 0; /* getopt's own messages would start with the full argv[0] */
    while ((ch = getopt_long(argc, argv, ":m:o:fqvhV", opts, NULL)) != -1) {
        switch (ch) {
        case O_WORDS: kind = LSTM_TOK_WORDS, nkind++; break;
        case O_BPE: kind = LSTM_TOK_BPE, nkind++; break;
        case O_CHARS: kind = LSTM_TOK_CHARS, nkind++; break;
        case O_SPLIT:
            nkind++;
            if (!strcmp(optarg, "space")) kind = LSTM_TOK_SPACE;
            else if (!strcmp(optarg, "words")) kind = LSTM_TOK_WORDS;
            else if (!strcmp(optarg, "chars")) kind = LSTM_TOK_CHARS;
            else if (!strcmp(optarg, "bpe")) kind = LSTM_TOK_BPE;
            else {
                fprintf(stderr, PROG ": --split: expected space, words, chars or bpe, got '%s'\n", optarg);
                return 2;
            }
            break;
        case O_UNK: unk = optarg; break;
        case O_KEEP: keep_case = 1, vocab_flags++; break;
        case O_VS: vocab_size = parse_num(optarg, "--vocab-size", 5, 1L << 28), vocab_flags++; break;
        case O_MC: min_count = parse_num(optarg, "--min-count", 1, 1L << 40), vocab_flags++; break;
        case O_VOUT: vpath = optarg; break;
        case O_FMT:
            if (!strcmp(optarg, "text")) format = FMT_TEXT;
            else if (!strcmp(optarg, "csv")) format = FMT_CSV;
            else {
                fprintf(stderr, PROG ": --format: expected text or csv, got '%s'\n", optarg);
                return 2;
            }
            break;
        case O_PARA: paragraphs = 1; break;
        case O_THR: threads = (int)parse_num(optarg, "--threads", 1, 16); break;
        case 'm': mpath = optarg; break;
        case 'o': opath = optarg; break;
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " " VERSION "\n"); return 0;
        case ':':
            fprintf(stderr, PROG ": option '%s' needs an argument (try '" PROG " --help')\n", argv[optind - 1]);
            return 2;
        default:
            if (optopt) fprintf(stderr, PROG ": unknown option '-%c' (try '" PROG " --help')\n", optopt);
            else fprintf(stderr, PROG ": unknown option '%s' (try '" PROG " --help')\n", argv[optind - 1]);
            return 2;
        }
    }
    if (nkind > 1) {
        fprintf(stderr, PROG ": choose one of --words, --split, --bpe, --chars\n");
        return 2;
    }
    if (unk && kind != LSTM_TOK_SPACE) {
        fprintf(stderr, PROG ": --unk-token needs --split space\n");
        return 2;
    }
    if (mpath && (vocab_flags || (nkind && kind != LSTM_TOK_BPE))) {
        fprintf(stderr, PROG ": -m reuses a tokenizer: --words, --split, --chars, --keep-case, --vocab-size and --min-count do not apply\n");
        return 2;
    }
    if (min_count && kind == LSTM_TOK_BPE) {
        fprintf(stderr, PROG ": --min-count does not apply to --bpe\n");
        return 2;
    }
    if (paragraphs && format == FMT_CSV) {
        fprintf(stderr, PROG ": --paragraphs applies to text input, not --format csv\n");
        return 2;
    }
    if ((!opath || !strcmp(opath, "-")) && isatty(1)) {
        fprintf(stderr, PROG ": refusing to write binary data to a terminal: use -o FILE or a pipe\n");
        return 2;
    }
    /* an output over another output or over an input would lose data: refuse before any work */
    if (opath && vpath && lstm_same_file(opath, vpath)) {
        fprintf(stderr, PROG ": %s: -o and --vocab-out name the same file\n", vpath);
        return 2;
    }
    for (int k = 0; k < 2; k++) {
        const char *op = k ? vpath : opath, *flag = k ? "--vocab-out" : "-o";
        if (!op) continue;
        if (mpath && lstm_same_file(op, mpath)) {
            fprintf(stderr, PROG ": %s: %s names the input given with -m\n", op, flag);
            return 2;
        }
        for (int i = optind; i < argc; i++)
            if (lstm_same_file(op, argv[i])) {
                fprintf(stderr, PROG ": %s: %s names an input file\n", op, flag);
                return 2;
            }
    }
    A.opath = opath;
    if (out_closed && (!opath || !strcmp(opath, "-"))) return fail("stdout: %s", strerror(EBADF));
    if (in_closed) {
        int reads_stdin = optind == argc || (mpath && !strcmp(mpath, "-"));
        for (int i = optind; i < argc; i++) reads_stdin |= !strcmp(argv[i], "-");
        if (reads_stdin) return fail("stdin: %s", strerror(EBADF));
    }

    /* the tokenizer: given (-m) or to be built from the input */
    if (mpath) {
        e = lstm_tokenizer_load_file(&A.tok, mpath);
        if (e == LSTM_E_MAGIC) { /* not a stream: maybe a SentencePiece model */
            lstm_tokenizer_opts o = {LSTM_TOK_BPE, 0, NULL};
            FILE *f = fopen(mpath, "rb");
            uint8_t *buf = NULL;
            size_t n = 0, cap = 0;
            if (!f) return fail("%s: %s", mpath, strerror(errno));
            for (;;) {
                if (n == cap) {
                    uint8_t *p = realloc(buf, cap ? cap * 2 : 1 << 20);
                    if (!p) {
                        free(buf);
                        fclose(f);
                        return fail("out of memory");
                    }
                    buf = p;
                    cap = cap ? cap * 2 : 1 << 20;
                }
                size_t k = fread(buf + n, 1, cap - n, f);
                n += k;
                if (k == 0) break;
            }
            fclose(f);
            e = lstm_tokenizer_create(&A.tok, &o);
            if (!e) e = lstm_tokenizer_set_bpe_model(A.tok, buf, n);
            free(buf);
            if (e == LSTM_E_SPM) return fail("%s: not a vocab file, an lstm stream or a SentencePiece model", mpath);
            if (e) return fail("%s: %s", mpath, lstm_strerror(e));
            A.mode = MODE_BPE;
        } else if (e == LSTM_E_NOTFOUND && access(mpath, F_OK) == 0) {
            return fail("%s: no tokenizer in the stream's metadata", mpath);
        } else if (e == LSTM_E_VOCAB) {
            return fail("%s: vocab_size in the metadata differs from the tokenizer's vocabulary", mpath);
        } else if (e) {
            return fail("%s: %s", mpath, e == LSTM_E_NOTFOUND ? strerror(ENOENT) : e == LSTM_E_IO ? strerror(errno) : lstm_strerror(e));
        } else {
            if (nkind && lstm_tokenizer_kind(A.tok) != LSTM_TOK_BPE)
                return fail("%s: holds a %s tokenizer, not bpe", mpath, lstm_tokenizer_kind_name(lstm_tokenizer_kind(A.tok)));
            A.mode = MODE_FIXED;
        }
    } else {
        lstm_tokenizer_opts o = {kind ? kind : LSTM_TOK_WORDS, keep_case, unk};
        if ((e = lstm_tokenizer_create(&A.tok, &o))) return fail("%s", lstm_strerror(e));
        A.mode = o.kind == LSTM_TOK_BPE ? MODE_BPE : MODE_COUNT;
    }

    if ((e = lstm_meta_add_provenance(&A.meta, argc, argv))) return fail("%s", lstm_strerror(e));
    if ((e = lstm_out_open(&A.out, opath, force))) return out_error(opath, e);
    A.out_ready = 1;
    if (vpath) {
        if ((e = lstm_out_open(&A.vout, vpath, force))) return out_error(vpath, e);
        A.vout_ready = 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (A.mode == MODE_FIXED && open_writer()) return 1;

    if (optind == argc) {
        if (run_input(NULL, format, paragraphs)) return 1;
    }
    for (int i = optind; i < argc; i++)
        if (run_input(argv[i], format, paragraphs)) return 1;

    if (A.mode != MODE_FIXED) { /* fix the ids, then write everything read */
        char msg[512] = "";
        uint32_t *remap = NULL;
        size_t nremap = 0;
        lstm_tokenizer_build_opts bo = {0};
        const char **sents = NULL;
        bo.vocab_size = (size_t)vocab_size;
        bo.min_count = (uint64_t)min_count;
        bo.threads = threads;
        bo.msg = msg;
        bo.msgcap = sizeof msg;
        if (A.mode == MODE_BPE && !lstm_tokenizer_is_built(A.tok) && !mpath) {
            sents = malloc((A.nturn ? A.nturn : 1) * sizeof *sents);
            if (!sents) return fail("out of memory");
            for (size_t t = 0; t < A.nturn; t++) sents[t] = A.arena + A.toff[t];
            bo.sents = sents;
            bo.lens = A.tlen;
            bo.nsents = A.nturn;
        }
        e = lstm_tokenizer_build(A.tok, &bo, &remap, &nremap);
        free(sents);
        if (e == LSTM_E_EMPTY) return fail("--bpe: no text to train on");
        if (e == LSTM_E_RANGE)
            return fail("--vocab-size %ld leaves no room for a vocabulary after the special ids and speaker tags", vocab_size);
        if (e == LSTM_E_SPM) return fail("--bpe: SentencePiece training failed: %s", msg[0] ? msg : "unknown error");
        if (e) return fail("building the vocabulary: %s", lstm_strerror(e));
        if (open_writer()) {
            free(remap);
            return 1;
        }
        if (A.mode == MODE_COUNT) {
            size_t p = 0;
            for (size_t i = 0; i < A.all.n; i++) A.all.v[i] = A.all.v[i] < nremap ? remap[A.all.v[i]] : LSTM_UNK_ID;
            for (size_t d = 0; d < A.ndoc && !e; d++) {
                e = write_doc(A.all.v + p, A.dend[d] - p);
                p = A.dend[d];
            }
        } else {
            for (size_t t = 0; t < A.nturn; t++)
                if (A.tspk[t] != UINT32_MAX) A.tspk[t] = A.tspk[t] < nremap ? remap[A.tspk[t]] : LSTM_UNK_ID;
            e = bpe_write(threads);
        }
        free(remap);
        if (e == LSTM_E_TOOBIG) return fail("a document has more than %u tokens", MAX_DOC_IDS);
        if (e) return out_error(opath, e);
    }
    if ((e = lstm_writer_finish(A.w))) return out_error(opath, e);
    if (vpath) {
        lstm_meta vm;
        lstm_meta_init(&vm);
        e = lstm_meta_add_provenance(&vm, argc, argv);
        if (!e) e = lstm_tokenizer_write_vocab(A.tok, A.vout.fd, &vm);
        lstm_meta_free(&vm);
        if (e) return out_error(vpath, e);
    }
    if ((e = lstm_out_commit(&A.out))) return out_error(opath, e);
    A.out_ready = 0;
    if (vpath) {
        if ((e = lstm_out_commit(&A.vout))) return out_error(vpath, e);
        A.vout_ready = 0;
    }
    if (A.replaced && !quiet)
        fprintf(stderr, PROG ": warning: %llu invalid UTF-8 sequence%s replaced with U+FFFD\n",
                (unsigned long long)A.replaced, A.replaced == 1 ? "" : "s");
    if (verbose || (!quiet && isatty(2)))
        fprintf(stderr, PROG ": %llu documents, %llu tokens, vocabulary %u (%s)\n", (unsigned long long)A.docs,
                (unsigned long long)A.tokens, lstm_tokenizer_vocab_size(A.tok),
                lstm_tokenizer_kind_name(lstm_tokenizer_kind(A.tok)));
    cleanup();
    return 0;
}
