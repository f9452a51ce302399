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
#include "tool.h"
#include "csv.h"
#include "fileio.h"
#include "json.h"
#include "stream.h"
#include "tokenizer.h"
#include "utf8.h"

#define PROG "lstm-tok"
#define MAX_DOC_IDS (LSTM_MAX_RECORD / 4)
#define PEEK_MAX (1u << 20)
#define ENCODE_BYTES_PER_THREAD (16u << 20) /* bytes looked at to find the first line when detecting CSV */

enum { FMT_AUTO, FMT_TEXT, FMT_CSV, FMT_JSONL };
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
    int quiet;
} A;



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
            "      --format F        text, csv, tsv or jsonl (default: csv or tsv when the first line is a\n"
            "                        header naming two of the speaker|role|author, text|utterance|message|\n"
            "                        content and conversation columns; jsonl when it is a {\"messages\": ...}\n"
            "                        object; else text)\n"
            "      --text-col COL    CSV: the text column, by header name or 1-based number\n"
            "      --speaker-col COL CSV: the speaker column (without one, each row is a text document)\n"
            "      --conv-col COL    CSV: the conversation column (consecutive rows with one value: a document)\n"
            "      --delimiter C     CSV field separator, e.g. ';' or tab (default ',')\n"
            "      --no-header       CSV: the first line is data (name the columns by number)\n"
            "      --paragraphs      text: documents are separated by blank lines (default: one per line)\n"
            "  CSV turns are grouped into one document per dialogue_id|conversation_id|conversation|\n"
            "  dialog_id value (each turn is a document without such a column); a turn is\n"
            "  <speaker-tag> <s> tokens </s>. A text document is tokens </s>. JSON Lines: one conversation\n"
            "  per line, {\"messages\":[{\"role\":..,\"content\":..},...]} (or {\"conversations\":[{\"from\":..,\n"
            "  \"value\":..}]}), one document per line.\n"
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
            "  " PROG " --split space --unk-token '<unk>' ptb.train.txt | lstm-window -L 20 --cross-docs > train.win\n"
            "  " PROG " --format tsv --text-col body --speaker-col author --conv-col thread -o chat.tok chats.tsv\n"
            "  " PROG " -o chat.tok finetune.jsonl\n");
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
static const char *const TEXT_COLS[] = {"text", "utterance", "message", "content", NULL};
static const char *const CONV_COLS[] = {"dialogue_id", "conversation_id", "conversation", "dialog_id", NULL};

/* A CSV column chosen on the command line: a header name or a 1-based number. */
typedef struct {
    const char *name; /* NULL: given by number, or not given */
    long num;         /* 1-based; 0: not given */
} colspec;

/* How CSV input is read: its delimiter, the columns named on the command line, a header or not. */
typedef struct {
    char delim;
    colspec text, speaker, conv;
    int no_header;
} csvopts;

/* Field k of a delimited line (quotes and spaces around it stripped); 0 past the last field. */
static int line_field(const char *line, size_t len, char delim, size_t k, const char **f, size_t *n)
{
    size_t i = 0;
    for (size_t at = 0;; at++) {
        size_t j = i;
        while (j < len && line[j] != delim) j++;
        if (at == k) {
            *f = line + i;
            *n = j - i;
            while (*n && (**f == ' ' || **f == '"')) (*f)++, (*n)--;
            while (*n && ((*f)[*n - 1] == ' ' || (*f)[*n - 1] == '"' || (*f)[*n - 1] == '\r')) (*n)--;
            return 1;
        }
        if (j >= len) return 0;
        i = j + 1;
    }
}

static size_t line_nfields(const char *line, size_t len, char delim)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++) n += line[i] == delim;
    return n;
}

/* Auto-detection: the first line is a header when at least two of its fields (quotes stripped) name
 * known columns (speaker, text or conversation), so that a sentence such as
 * "text, as they say, is king" stays text. */
static int looks_like_csv(const char *line, size_t len, char delim)
{
    const char *f;
    size_t n;
    int known = 0;
    for (size_t k = 0; line_field(line, len, delim, k, &f, &n); k++)
        known += name_in(f, n, SPEAKER_COLS) || name_in(f, n, TEXT_COLS) || name_in(f, n, CONV_COLS);
    return known >= 2;
}

/* A line of two or more column-name-like fields (a letter or '_' first, then letters, digits, '_',
 * '-' or '.', at most 40 bytes, no spaces inside) followed by a line with at least as many separators:
 * the header of a CSV whose columns are not known. *text_col is set when one of them names a text
 * column. */
static int looks_like_header(const char *line, size_t len, const char *next, size_t nlen, char delim, int *text_col)
{
    const char *f;
    size_t n, k, nf = line_nfields(line, len, delim);
    *text_col = 0;
    if (nf < 2 || !next || line_nfields(next, nlen, delim) < nf) return 0;
    for (k = 0; line_field(line, len, delim, k, &f, &n); k++) {
        if (!n || n > 40 || !(((*f | 32) >= 'a' && (*f | 32) <= 'z') || *f == '_')) return 0;
        for (size_t i = 1; i < n; i++) {
            unsigned char c = (unsigned char)f[i];
            if (!(((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) return 0;
        }
        *text_col |= name_in(f, n, TEXT_COLS);
    }
    return 1;
}

/* Appends field k (at most 40 bytes of it) to the "a, b, c" list in buf (cap bytes) at *p, for
 * messages; 0 once the list is full (it then ends in ", ..."). */
static int list_add(char *buf, size_t cap, size_t *p, size_t k, const char *f, size_t n)
{
    int w = snprintf(buf + *p, cap - *p, "%s%.*s", k ? ", " : "", (int)(n > 40 ? 40 : n), f);
    if (w < 0 || (size_t)w >= cap - *p) {
        if (*p + 6 < cap) snprintf(buf + *p, cap - *p, ", ...");
        return 0;
    }
    *p += (size_t)w;
    return 1;
}

/* "a, b, c": the header's fields, for messages. */
static const char *header_list(const char *line, size_t len, char delim)
{
    static char buf[400];
    const char *f;
    size_t n, p = 0;
    buf[0] = '\0';
    for (size_t k = 0; line_field(line, len, delim, k, &f, &n) && list_add(buf, sizeof buf, &p, k, f, n); k++) {}
    return buf;
}

static int run_text(src *s, int paragraphs)
{
    const char *line, *msg = NULL;
    size_t len;
    int k, e;
    uint64_t lineno = 0;
    while ((k = src_line(s, &line, &len)) == 1) {
        lineno++;
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

/* "a, b, c": the fields of the CSV record just read, for messages. */
static const char *record_list(const lstm_csv *c)
{
    static char buf[400];
    size_t p = 0, n;
    buf[0] = '\0';
    for (size_t k = 0; k < lstm_csv_nfields(c); k++) {
        const char *f = lstm_csv_field(c, k, &n); /* before n is read */
        if (!list_add(buf, sizeof buf, &p, k, f, n)) break;
    }
    return buf;
}

/* The column a colspec names in the header record (or by number); -1 if not given. *msg on error. */
static long find_col(const lstm_csv *c, const colspec *cs, const char *flag, int header, char *msg, size_t cap)
{
    size_t nf = lstm_csv_nfields(c);
    if (cs->num) {
        if (header && (size_t)cs->num > nf) {
            snprintf(msg, cap, "%s %ld: the header has %zu column%s (%s)", flag, cs->num, nf, nf == 1 ? "" : "s", record_list(c));
            return -2;
        }
        return cs->num - 1;
    }
    if (!cs->name) return -1;
    for (size_t k = 0; k < nf; k++) {
        size_t n;
        const char *f = lstm_csv_field(c, k, &n);
        while (n && (*f == ' ' || *f == '\t')) f++, n--;
        while (n && (f[n - 1] == ' ' || f[n - 1] == '\t')) n--;
        if (strlen(cs->name) == n && !strncasecmp(f, cs->name, n)) return (long)k;
    }
    snprintf(msg, cap, "%s: no column '%s' in the header (columns: %s)", flag, cs->name, record_list(c));
    return -2;
}

static int run_csv(src *s, const csvopts *co)
{
    lstm_csv *c;
    long sc = -1, tc = -1, cc = -1;
    size_t nf, need;
    int k, e, have = 0; /* have: the first data record is already read (no header) */
    const char *msg = NULL;
    char cmsg[600];
    if ((e = lstm_csv_open(&c, src_read, s, 0)) || (e = lstm_csv_set_delimiter(c, co->delim))) {
        lstm_csv_free(c);
        return fail("%s", lstm_strerror(e));
    }
    k = lstm_csv_next(c);
    if (k < 0) goto csv_err;
    if (k == 0) { /* no header at all: an empty input */
        lstm_csv_free(c);
        return 0;
    }
    nf = lstm_csv_nfields(c);
    if ((tc = find_col(c, &co->text, "--text-col", !co->no_header, cmsg, sizeof cmsg)) < -1 ||
        (sc = find_col(c, &co->speaker, "--speaker-col", !co->no_header, cmsg, sizeof cmsg)) < -1 ||
        (cc = find_col(c, &co->conv, "--conv-col", !co->no_header, cmsg, sizeof cmsg)) < -1) {
        unsigned long long line = (unsigned long long)lstm_csv_line(c);
        lstm_csv_free(c);
        return fail("%s:%llu: %s", A.iname, line, cmsg);
    }
    if (co->no_header) {
        have = 1;
    } else {
        for (size_t i = 0; i < nf; i++) { /* the columns not named on the command line, by their names */
            size_t n;
            const char *f = lstm_csv_field(c, i, &n);
            if ((long)i == tc || (long)i == sc || (long)i == cc) continue;
            if (sc < 0 && !co->speaker.name && !co->speaker.num && name_in(f, n, SPEAKER_COLS)) sc = (long)i;
            else if (tc < 0 && !co->text.name && !co->text.num && name_in(f, n, TEXT_COLS)) tc = (long)i;
            else if (cc < 0 && !co->conv.name && !co->conv.num && name_in(f, n, CONV_COLS)) cc = (long)i;
        }
        if (tc < 0) {
            unsigned long long line = (unsigned long long)lstm_csv_line(c);
            fail("%s:%llu: no text column in the CSV header (columns: %s): expected text, utterance, message or "
                 "content, or name it with --text-col",
                 A.iname, line, record_list(c));
            lstm_csv_free(c);
            return 1;
        }
    }
    if (tc < 0) {
        lstm_csv_free(c);
        return fail("--no-header: name the text column by number with --text-col");
    }
    if (sc < 0 && cc >= 0) {
        unsigned long long line = (unsigned long long)lstm_csv_line(c);
        lstm_csv_free(c);
        return fail("%s:%llu: a conversation column needs a speaker column (expected speaker, role or author, or "
                    "name it with --speaker-col)",
                    A.iname, line);
    }
    if ((tc == sc && sc >= 0) || (tc == cc && cc >= 0) || (sc == cc && sc >= 0)) {
        lstm_csv_free(c);
        return fail("the text, speaker and conversation columns must be different columns");
    }
    need = (size_t)(sc > tc ? sc : tc);
    if (cc > (long)need) need = (size_t)cc;
    free(A.prevconv);
    A.prevconv = NULL;
    while (have || (k = lstm_csv_next(c)) == 1) {
        size_t slen, tlen, clen;
        const char *sp, *tx;
        have = 0;
        if (lstm_csv_nfields(c) <= need) {
            unsigned long long line = (unsigned long long)lstm_csv_line(c);
            size_t got = lstm_csv_nfields(c);
            lstm_csv_free(c);
            if (co->no_header)
                return fail("%s:%llu: %zu field%s, the columns named need %zu", A.iname, line, got, got == 1 ? "" : "s", need + 1);
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
        tx = lstm_csv_field(c, (size_t)tc, &tlen);
        if (sc < 0) { /* no speakers: each row is a text document */
            if ((e = add_text(NULL, 0, tx, tlen, &msg)) || (e = end_doc(1))) goto data_err;
            continue;
        }
        sp = lstm_csv_field(c, (size_t)sc, &slen);
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

/* The text of a chat message's content: a string, or an array of parts whose "text" strings are
 * joined with newlines (the multi-part layout); NULL content is no text. 0, or -1 if malformed. */
static int content_text(json_t *v, char **buf, size_t *cap, size_t *len)
{
    *len = 0;
    if (json_is_null(v)) return 0;
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n + 1 > *cap) {
            char *p = realloc(*buf, n + 1);
            if (!p) return -2;
            *buf = p;
            *cap = n + 1;
        }
        memcpy(*buf, json_string_value(v), n);
        *len = n;
        return 0;
    }
    if (!json_is_array(v)) return -1;
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *part = json_array_get(v, i), *t = json_is_object(part) ? json_object_get(part, "text") : part;
        if (!json_is_string(t)) {
            if (json_is_object(part) && !t) continue; /* an image or other non-text part */
            return -1;
        }
        size_t n = json_string_length(t);
        if (*len + n + 2 > *cap) {
            size_t c = *cap ? *cap : 256;
            while (c < *len + n + 2) c *= 2;
            char *p = realloc(*buf, c);
            if (!p) return -2;
            *buf = p;
            *cap = c;
        }
        if (*len) (*buf)[(*len)++] = '\n';
        memcpy(*buf + *len, json_string_value(t), n);
        *len += n;
    }
    return 0;
}

/* JSON Lines chat: one conversation per line, {"messages":[{"role":..,"content":..},...]}; also the
 * {"conversations":[{"from":..,"value":..},...]} layout. Each line is one document. */
static int run_jsonl(src *s)
{
    const char *line, *msg = NULL;
    size_t len, cap = 0, tlen;
    char *text = NULL, jmsg[300];
    int k, e = 0;
    uint64_t lineno = 0;
    while ((k = src_line(s, &line, &len)) == 1) {
        json_error_t jerr;
        json_t *root, *msgs;
        const char *rk = "role", *ck = "content";
        lineno++;
        if (blank(line, len)) continue;
        if (!(root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr))) {
            lstm_json_error_message(&jerr, jmsg, sizeof jmsg);
            free(text);
            return fail("%s:%llu: %s (column %d)", A.iname, (unsigned long long)lineno, jmsg, jerr.column);
        }
        msgs = json_is_object(root) ? json_object_get(root, "messages") : NULL;
        if (!msgs && json_is_object(root) && (msgs = json_object_get(root, "conversations"))) rk = "from", ck = "value";
        if (!json_is_array(msgs)) {
            json_decref(root);
            free(text);
            return fail("%s:%llu: expected an object with a \"messages\" array of {\"role\", \"content\"} objects",
                        A.iname, (unsigned long long)lineno);
        }
        int bad = 0;
        for (size_t i = 0; i < json_array_size(msgs) && !bad && !e; i++) {
            json_t *m = json_array_get(msgs, i), *r = json_is_object(m) ? json_object_get(m, rk) : NULL;
            json_t *cv = json_is_object(m) ? json_object_get(m, ck) : NULL;
            int c;
            if (!json_is_string(r) || !json_string_length(r)) {
                snprintf(jmsg, sizeof jmsg, "message %zu: \"%s\" must be a non-empty string", i + 1, rk);
                bad = 1;
                break;
            }
            c = cv ? content_text(cv, &text, &cap, &tlen) : -1;
            if (c == -2) e = LSTM_E_NOMEM;
            else if (c < 0) {
                snprintf(jmsg, sizeof jmsg, "message %zu: \"%s\" must be a string, null or an array of text parts", i + 1, ck);
                bad = 1;
            } else if (!json_is_null(cv)) { /* null: e.g. a tool call, no text */
                e = add_text(json_string_value(r), json_string_length(r), text ? text : "", tlen, &msg);
            }
        }
        if (bad) {
            json_decref(root);
            free(text);
            return fail("%s:%llu: %s", A.iname, (unsigned long long)lineno, jmsg);
        }
        json_decref(root);
        if (!e) e = end_doc(0);
        if (e) {
            free(text);
            if (e == LSTM_E_CSV) return fail("%s:%llu: %s", A.iname, (unsigned long long)lineno, msg);
            if (e == LSTM_E_TOOBIG) return fail("%s:%llu: document too long (more than %u tokens)", A.iname, (unsigned long long)lineno, MAX_DOC_IDS);
            return fail("%s:%llu: %s", A.iname, (unsigned long long)lineno, lstm_strerror(e));
        }
    }
    free(text);
    if (k < 0) return fail("%s: %s", A.iname, strerror(errno));
    return 0;
}

/* Reads one input (NULL = stdin) in the given or detected format. */
static int has_sub(const char *s, size_t n, const char *sub)
{
    size_t k = strlen(sub);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, sub, k)) return 1;
    return 0;
}

static int run_input(const char *path, int format, int paragraphs, const csvopts *given)
{
    src s = {0};
    csvopts co = *given;
    int rc;
    A.iname = path && strcmp(path, "-") ? path : "stdin";
    s.fd = lstm_in_open(path);
    if (s.fd < 0) return fail("%s: %s", A.iname, strerror(errno));
    while (s.fill < 3 && !s.eof) /* a UTF-8 byte order mark is skipped here, for every format */
        if (src_more(&s) < 0) {
            rc = fail("%s: %s", A.iname, strerror(errno));
            goto out;
        }
    if (s.fill >= 3 && !memcmp(s.buf, "\xEF\xBB\xBF", 3)) s.pos = 3;
    if (format == FMT_AUTO) { /* look at the first two lines */
        for (;;) {
            const char *nl = s.fill > s.pos ? memchr(s.buf + s.pos, '\n', s.fill - s.pos) : NULL;
            if ((nl && memchr(nl + 1, '\n', s.fill - (size_t)(nl + 1 - s.buf))) || s.eof || s.fill >= PEEK_MAX) break;
            if (src_more(&s) < 0) {
                rc = fail("%s: %s", A.iname, strerror(errno));
                goto out;
            }
        }
        {
            size_t n = s.fill - s.pos, n2 = 0;
            const char *b = s.fill > s.pos ? s.buf + s.pos : "", *b2 = NULL, *nl2;
            const char *nl = n ? memchr(b, '\n', n) : NULL;
            static const char DELIMS[] = {',', '\t'};
            int text_col;
            if (nl) {
                n = (size_t)(nl - b);
                b2 = nl + 1;
                nl2 = memchr(b2, '\n', s.fill - (size_t)(b2 - s.buf));
                n2 = nl2 ? (size_t)(nl2 - b2) : s.fill - (size_t)(b2 - s.buf);
                if (!nl2 && !s.eof) b2 = NULL; /* a second line cut by PEEK_MAX says nothing */
            }
            format = FMT_TEXT;
            while (n && (*b == ' ' || *b == '\t')) b++, n--;
            if (n && *b == '{' && (has_sub(b, n, "\"messages\"") || has_sub(b, n, "\"conversations\"")))
                format = FMT_JSONL;
            for (size_t d = 0; d < sizeof DELIMS && format == FMT_TEXT && n; d++) {
                if (looks_like_csv(b, n, DELIMS[d])) {
                    format = FMT_CSV, co.delim = DELIMS[d];
                } else if (looks_like_header(b, n, b2, n2, DELIMS[d], &text_col)) {
                    if (text_col) {
                        format = FMT_CSV, co.delim = DELIMS[d];
                    } else {
                        if (!A.quiet)
                            fprintf(stderr,
                                    PROG ": warning: %s:1 looks like the header of a %s file with columns %s, none of "
                                    "them a known text column: reading it as plain text; name the columns with "
                                    "--text-col (and --speaker-col, --conv-col), or say --format text\n",
                                    A.iname, DELIMS[d] == ',' ? "CSV" : "TSV", header_list(b, n, DELIMS[d]));
                        break;
                    }
                }
            }
        }
    }
    rc = format == FMT_CSV ? run_csv(&s, &co) : format == FMT_JSONL ? run_jsonl(&s) : run_text(&s, paragraphs);
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
    enum { O_WORDS = 256, O_SPLIT, O_UNK, O_BPE, O_CHARS, O_KEEP, O_VS, O_MC, O_VOUT, O_FMT, O_PARA, O_THR,
           O_DELIM, O_TCOL, O_SCOL, O_CCOL, O_NOHDR };
    csvopts co = {',', {0}, {0}, {0}, 0};
    int csv_flags = 0, delim_given = 0;
    static const struct option opts[] = {
        {"words", no_argument, 0, O_WORDS},       {"split", required_argument, 0, O_SPLIT},
        {"unk-token", required_argument, 0, O_UNK}, {"bpe", no_argument, 0, O_BPE},
        {"chars", no_argument, 0, O_CHARS},       {"keep-case", no_argument, 0, O_KEEP},
        {"vocab-size", required_argument, 0, O_VS}, {"min-count", required_argument, 0, O_MC},
        {"vocab-out", required_argument, 0, O_VOUT}, {"format", required_argument, 0, O_FMT},
        {"paragraphs", no_argument, 0, O_PARA},   {"threads", required_argument, 0, O_THR},
        {"delimiter", required_argument, 0, O_DELIM}, {"text-col", required_argument, 0, O_TCOL},
        {"speaker-col", required_argument, 0, O_SCOL}, {"conv-col", required_argument, 0, O_CCOL},
        {"no-header", no_argument, 0, O_NOHDR},
        {"model", required_argument, 0, 'm'},     {"output", required_argument, 0, 'o'},
        {"force", no_argument, 0, 'f'},           {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},         {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},         {0, 0, 0, 0}};
    int nkind = 0;

    int closed;
    lstm_reserve_std_fds(&closed); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    int in_closed = closed & 1, out_closed = closed & 2;
    lstm_meta_init(&A.meta);
    tool_init(PROG);
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
        case O_VS: vocab_size = tool_parse_long(optarg, "--vocab-size", 5, 1L << 28), vocab_flags++; break;
        case O_MC: min_count = tool_parse_long(optarg, "--min-count", 1, 1L << 40), vocab_flags++; break;
        case O_VOUT: vpath = optarg; break;
        case O_FMT:
            if (!strcmp(optarg, "text")) format = FMT_TEXT;
            else if (!strcmp(optarg, "csv")) format = FMT_CSV;
            else if (!strcmp(optarg, "tsv")) format = FMT_CSV, co.delim = '\t', delim_given = 1;
            else if (!strcmp(optarg, "jsonl")) format = FMT_JSONL;
            else {
                fprintf(stderr, PROG ": --format: expected text, csv, tsv or jsonl, got '%s'\n", optarg);
                return 2;
            }
            break;
        case O_DELIM:
            if (!strcmp(optarg, "\\t") || !strcmp(optarg, "\t") || !strcmp(optarg, "tab")) co.delim = '\t';
            else if (strlen(optarg) == 1 && optarg[0] > ' ' && optarg[0] < 127 && optarg[0] != '"') co.delim = optarg[0];
            else {
                fprintf(stderr, PROG ": --delimiter: expected one ASCII character other than a quote, or 'tab', got '%s'\n", optarg);
                return 2;
            }
            delim_given = 1;
            break;
        case O_TCOL:
        case O_SCOL:
        case O_CCOL: {
            colspec *cs = ch == O_TCOL ? &co.text : ch == O_SCOL ? &co.speaker : &co.conv;
            const char *flag = ch == O_TCOL ? "--text-col" : ch == O_SCOL ? "--speaker-col" : "--conv-col";
            long v;
            if (!*optarg) {
                fprintf(stderr, PROG ": %s: expected a column name or a 1-based number\n", flag);
                return 2;
            }
            if (optarg[strspn(optarg, "0123456789")] == '\0') {
                if (lstm_parse_long(optarg, 1, 1 << 20, &v)) {
                    fprintf(stderr, PROG ": %s: columns are numbered from 1, got '%s'\n", flag, optarg);
                    return 2;
                }
                cs->num = v, cs->name = NULL;
            } else {
                cs->name = optarg, cs->num = 0;
            }
            csv_flags++;
            break;
        }
        case O_NOHDR: co.no_header = 1, csv_flags++; break;
        case O_PARA: paragraphs = 1; break;
        case O_THR: threads = (int)tool_parse_long(optarg, "--threads", 1, 16); break;
        case 'm': mpath = optarg; break;
        case 'o': opath = optarg; break;
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
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
    if ((csv_flags || delim_given) && format == FMT_AUTO) format = FMT_CSV;
    if ((csv_flags || delim_given) && format != FMT_CSV) {
        fprintf(stderr, PROG ": --delimiter, --text-col, --speaker-col, --conv-col and --no-header apply to CSV input, not --format %s\n",
                format == FMT_TEXT ? "text" : "jsonl");
        return 2;
    }
    if (co.no_header && ((co.text.name || !co.text.num) || co.speaker.name || co.conv.name)) {
        fprintf(stderr, PROG ": --no-header: name the columns by number (--text-col N, and --speaker-col, --conv-col)\n");
        return 2;
    }
    if (paragraphs && (format == FMT_CSV || format == FMT_JSONL)) {
        fprintf(stderr, PROG ": --paragraphs applies to text input, not --format %s\n", format == FMT_CSV ? "csv" : "jsonl");
        return 2;
    }
    A.quiet = quiet;
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
    tool_exit_on_signals();
    if (A.mode == MODE_FIXED && open_writer()) return 1;

    if (optind == argc) {
        if (run_input(NULL, format, paragraphs, &co)) return 1;
    }
    for (int i = optind; i < argc; i++)
        if (run_input(argv[i], format, paragraphs, &co)) return 1;

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
        if (e == LSTM_E_RANGE && A.mode == MODE_BPE && msg[0])
            return fail("--vocab-size %ld is too small for --bpe on this input: the smallest that works is %s (the "
                        "special ids and speaker tags, 256 byte-fallback pieces and the input's characters)",
                        vocab_size ? vocab_size : 8000, msg);
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
