/* lstm-dump: print any lstm stream (token stream, windows, vocabulary file) as text, so every
 * intermediate file of the pipeline can be read by a person. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fileio.h"
#include "ngram.h"
#include "hash.h"
#include "stream.h"
#include "tokenizer.h"
#include "tool.h"

#define PROG "lstm-dump"


static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [options] [STREAM | CHECKPOINT]\n"
            "Print a stream written by lstm-tok or lstm-window (or a vocabulary file) as text:\n"
            "header, metadata, speakers, provenance, then each record as token ids and as token strings.\n"
            "Given a checkpoint (lstm-train), print its entries with shapes and checksums, its tokenizer\n"
            "and speakers, configuration, training state and provenance.\n"
            "\n"
            "  -n, --records N   show the first N records only (default: all)\n"
            "      --header      header, metadata and provenance only\n"
            "      --ids         ids only, no token strings\n"
            "      --text        records as detokenized text, one per line (no ids, no header)\n"
            "      --vocab       list the vocabulary: id, token\n"
            "  -q, --quiet       no warnings\n"
            "  -v, --verbose     a summary line on stderr at the end (records read, end record verified)\n"
            "  -h, --help        this help\n"
            "  -V, --version     version\n"
            "\n"
            "Example:\n"
            "  lstm-tok < chats.csv | lstm-window -L 15 | lstm-dump -n 3\n");
}

static int printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f) return 0;
    return 1;
}

/* Every mode ends here: data that did not reach stdout (a full disk, a closed pipe) is an error. */
static int finish_output(void)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    fprintf(stderr, PROG ": stdout: %s\n", errno ? strerror(errno) : "write error");
    return 1;
}

/* A chat tokenizer's speakers by name (the tag without its brackets: what lstm-sample --speaker
 * takes), in id order: "speakers: user, agent". Nothing without speakers. */
static void print_speakers(const lstm_tokenizer *tok)
{
    uint32_t S = tok ? lstm_tokenizer_num_speakers(tok) : 0;
    if (!S) return;
    printf("speakers:");
    for (uint32_t s = 0; s < S; s++) {
        size_t len;
        const char *p = lstm_tokenizer_piece(tok, LSTM_NUM_SPECIAL + s, &len);
        if (!p) p = "?", len = 1;
        if (len >= 2 && p[0] == '<' && p[len - 1] == '>') p++, len -= 2;
        printf("%s %.*s", s ? "," : "", (int)len, p);
    }
    putchar('\n');
}

/* A checkpoint: its entries (name, type, shape, size, XXH64 of the data) and its text entries.
 * prefix/plen: its first bytes, already read from fd (a pipe). */
static int dump_checkpoint(int fd, const char *path, const uint8_t *prefix, size_t plen, int vocab, int exported)
{
    lstm_ck *ck;
    int rc = lstm_ck_open_fd(&ck, fd, prefix, plen);
    if (fd > 0) close(fd);
    if (rc) {
        const char *what = exported ? "exported model" : "checkpoint";
        if (rc == LSTM_E_IO) fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        else if (rc == LSTM_E_TRUNCATED) fprintf(stderr, PROG ": %s: truncated %s (shorter than its header says)\n", path, what);
        else if (rc == LSTM_E_CORRUPT) fprintf(stderr, PROG ": %s: corrupted %s (checksum mismatch)\n", path, what);
        else if (rc == LSTM_E_FORMAT) fprintf(stderr, PROG ": %s: malformed %s\n", path, what);
        else fprintf(stderr, PROG ": %s: %s\n", path, lstm_strerror(rc));
        return 1;
    }
    const lstm_ck_entry *t = lstm_ck_find(ck, "tokenizer");
    lstm_tokenizer *tok = NULL;
    if (t && lstm_tokenizer_load(&tok, t->data, (size_t)t->nbytes) != 0) tok = NULL;
    if (vocab) {
        for (uint32_t id = 0; tok && id < lstm_tokenizer_vocab_size(tok); id++) {
            size_t len;
            const char *s = lstm_tokenizer_piece(tok, id, &len);
            printf("%u\t%.*s\n", id, (int)len, s ? s : "");
        }
        lstm_tokenizer_free(tok);
        lstm_ck_close(ck);
        return finish_output();
    }
    exported = lstm_ck_kind(ck) == LSTM_CK_KIND_MODEL;
    printf("%s: %s\nentries:\n", exported ? "model (lstm-export)" : "checkpoint", path);
    for (size_t i = 0; i < lstm_ck_count(ck); i++) {
        const lstm_ck_entry *e = lstm_ck_at(ck, i);
        printf("  %-12s %s", e->name,
               e->type == LSTM_CK_F32 ? "f32" : e->type == LSTM_CK_I8 ? "i8" : e->type == LSTM_CK_BF16 ? "bf16" : "bytes");
        for (int d = 0; d < e->ndim; d++) printf("%s%llu", d ? "x" : " (", (unsigned long long)e->dims[d]);
        printf("%s %llu bytes xxh64 %016llx\n", e->ndim ? ")" : "", (unsigned long long)e->nbytes,
               (unsigned long long)lstm_xxh64(e->data, (size_t)e->nbytes, 0));
    }
    if (tok)
        printf("tokenizer: %s, %u ids, %u speaker tags\n", lstm_tokenizer_kind_name(lstm_tokenizer_kind(tok)),
               lstm_tokenizer_vocab_size(tok), lstm_tokenizer_num_speakers(tok));
    print_speakers(tok);
    static const char *texts[] = {"config", "export", "train", "provenance"};
    for (int k = 0; k < 4; k++) {
        const lstm_ck_entry *e = lstm_ck_find(ck, texts[k]);
        if (!e || e->type != LSTM_CK_BYTES) continue;
        printf("%s:\n", texts[k]);
        const char *s = e->data, *end = s + e->nbytes;
        while (s < end) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            if (!nl) nl = end;
            if (nl > s) printf("  %.*s\n", (int)(nl - s), s);
            s = nl + 1;
        }
    }
    if (tool_verbosity >= TOOL_VERBOSE) tool_msg("%s: %s, %zu entries, checksum verified", path, exported ? "exported model" : "checkpoint",
                                                lstm_ck_count(ck));
    lstm_tokenizer_free(tok);
    lstm_ck_close(ck);
    return finish_output();
}

static void print_ids(const char *label, const uint32_t *ids, size_t n)
{
    printf("    %s", label);
    for (size_t i = 0; i < n; i++) printf(" %u", ids[i]);
    putchar('\n');
}

static void print_pieces(const char *label, lstm_tokenizer *tok, const uint32_t *ids, size_t n)
{
    printf("    %s", label);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = tok ? lstm_tokenizer_piece(tok, ids[i], &len) : NULL;
        if (s) printf(" %.*s", (int)len, s);
        else printf(" #%u", ids[i]);
    }
    putchar('\n');
}

static void print_text(lstm_tokenizer *tok, const uint32_t *ids, size_t n)
{
    char *text;
    size_t len;
    if (tok && lstm_tokenizer_decode(tok, ids, n, &text, &len) == 0) {
        while (len && text[len - 1] == '\n') len--;
        printf("%.*s\n", (int)len, text);
        free(text);
    } else {
        for (size_t i = 0; i < n; i++) printf("%s%u", i ? " " : "", ids[i]);
        putchar('\n');
    }
}

int main(int argc, char **argv)
{
    long long limit = -1;
    int header_only = 0, ids_only = 0, text_only = 0, vocab = 0;
    static const struct option opts[] = {{"records", required_argument, 0, 'n'}, {"header", no_argument, 0, 'H'},
                                         {"ids", no_argument, 0, 'i'},         {"text", no_argument, 0, 't'},
                                         {"vocab", no_argument, 0, 'b'},       {"help", no_argument, 0, 'h'},
                                         {"quiet", no_argument, 0, 'q'},       {"verbose", no_argument, 0, 'v'},
                                         {"version", no_argument, 0, 'V'},     {0, 0, 0, 0}};
    int ch;
    int closed;
    lstm_reserve_std_fds(&closed); /* before any open: a closed 0, 1 or 2 must not become one of our files */
    int in_closed = closed & 1, out_closed = closed & 2;
    tool_init(PROG);
    opterr = 0; /* getopt's own messages would start with the full argv[0] */
    while ((ch = getopt_long(argc, argv, ":n:qvhV", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': {
            char *e;
            errno = 0;
            limit = strtoll(optarg, &e, 10);
            if (errno || *e || e == optarg || limit < 0) {
                fprintf(stderr, PROG ": -n: expected a non-negative integer, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'H': header_only = 1; break;
        case 'i': ids_only = 1; break;
        case 't': text_only = 1; break;
        case 'b': vocab = 1; break;
        case 'h': usage(stdout); return 0;
        case 'q': tool_verbosity = TOOL_QUIET; break;
        case 'v': tool_verbosity = TOOL_VERBOSE; break;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, PROG ": one input at most (got %d)\n", argc - optind);
        return 2;
    }
    const char *ipath = optind < argc ? argv[optind] : NULL;
    const char *iname = ipath && strcmp(ipath, "-") ? ipath : "stdin";
    if (out_closed || (in_closed && (!ipath || !strcmp(ipath, "-")))) {
        fprintf(stderr, PROG ": %s: %s\n", out_closed ? "stdout" : "stdin", strerror(EBADF));
        return 1;
    }
    int fd = tool_open_input(ipath, "a stream or checkpoint");
    /* The input is opened once and its first bytes tell a checkpoint from a stream: a pipe or FIFO
     * cannot be opened again. A regular file is rewound; from a pipe, the bytes are handed on. */
    uint8_t head[8];
    size_t hn = 0, plen;
    struct stat st;
    while (hn < sizeof head) {
        ssize_t k = read(fd, head + hn, sizeof head - hn);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            fprintf(stderr, PROG ": %s: %s\n", iname, strerror(errno));
            return 1;
        }
        if (k == 0) break;
        hn += (size_t)k;
    }
    plen = hn;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(fd, -(off_t)hn, SEEK_CUR) >= 0) plen = 0;
    if (lstm_ck_is_magic(head, hn)) return dump_checkpoint(fd, iname, head, plen, vocab, head[2] == 'M'); /* \x89LMDL */
    lstm_reader *r;
    int rc = lstm_reader_open_prefix(&r, fd, 0, head, plen);
    if (rc) {
        lstm_ngram *ng = NULL;
        if (rc == LSTM_E_MAGIC && hn >= 8 && lstm_ngram_load(&ng, head, 8) != LSTM_E_MAGIC)
            fprintf(stderr, PROG ": %s: an n-gram model (lstm-ngram), not an lstm stream or checkpoint: evaluate it with 'lstm-ngram eval -m %s TEST.tok'\n", iname, ipath ? ipath : "-");
        else if (rc == LSTM_E_MAGIC && lstm_stream_looks_like_text(head, hn))
            fprintf(stderr, PROG ": %s: a text/CSV file, not an lstm stream or checkpoint: lstm-dump shows what lstm-tok and the other tools write\n", iname);
        else fprintf(stderr, PROG ": %s: %s\n", iname, rc == LSTM_E_EMPTY ? "empty input (no stream)" : lstm_strerror(rc));
        lstm_ngram_free(ng);
        return 1;
    }
    const lstm_meta *m = lstm_reader_meta(r);
    lstm_tokenizer *tok = NULL;
    int trc = lstm_tokenizer_from_meta(&tok, m);
    if (trc && trc != LSTM_E_NOTFOUND) tool_warn("%s: tokenizer: %s (showing ids only)", iname, lstm_strerror(trc));

    if (vocab) {
        if (!tok) {
            fprintf(stderr, PROG ": %s: the stream carries no tokenizer\n", iname);
            return 1;
        }
        for (uint32_t id = 0; id < lstm_tokenizer_vocab_size(tok); id++) {
            size_t len;
            const char *s = lstm_tokenizer_piece(tok, id, &len);
            printf("%u\t%.*s\n", id, (int)len, s ? s : "");
        }
        lstm_tokenizer_free(tok);
        lstm_reader_free(r);
        return finish_output();
    }

    char kb[5];
    if (!text_only) {
        printf("stream: %s\n", iname);
        printf("kind: %s (%s), version %u\n", lstm_kind_name(lstm_reader_kind(r), kb), lstm_kind_desc(lstm_reader_kind(r)),
               lstm_reader_version(r));
        printf("metadata:\n");
        for (size_t i = 0; i < m->n; i++) {
            const lstm_meta_entry *e = &m->e[i];
            if (strcmp(e->key, "provenance") == 0) continue;
            if (strcmp(e->key, "tokenizer") == 0) {
                if (tok)
                    printf("  tokenizer: %s, %u ids, %u speaker tags (%zu bytes)\n",
                           lstm_tokenizer_kind_name(lstm_tokenizer_kind(tok)), lstm_tokenizer_vocab_size(tok),
                           lstm_tokenizer_num_speakers(tok), e->len);
                else printf("  tokenizer: (%zu bytes, unreadable)\n", e->len);
                continue;
            }
            if (printable(e->val, e->len)) printf("  %s: %.*s\n", e->key, (int)e->len, (const char *)e->val);
            else printf("  %s: (%zu bytes)\n", e->key, e->len);
        }
        print_speakers(tok);
        size_t plen;
        const uint8_t *prov = lstm_meta_get(m, "provenance", &plen);
        if (prov) {
            printf("provenance:\n");
            const char *s = (const char *)prov, *end = s + plen;
            while (s < end) {
                const char *nl = memchr(s, '\n', (size_t)(end - s));
                if (!nl) nl = end;
                printf("  %.*s\n", (int)(nl - s), s);
                s = nl + 1;
            }
        }
    }
    if (header_only) goto done;

    uint32_t cap = 1024;
    uint32_t *ids = malloc(cap * sizeof *ids), *tg = malloc(cap * sizeof *tg);
    uint64_t n = 0;
    uint8_t tag;
    const uint8_t *p;
    uint32_t len;
    if (!text_only) printf("records:\n");
    while ((rc = lstm_reader_next(r, &tag, &p, &len)) == 1) {
        n++;
        size_t need = len / 4 + 1;
        if (need > cap) {
            while (cap < need) cap *= 2;
            free(ids);
            free(tg);
            ids = malloc(cap * sizeof *ids);
            tg = malloc(cap * sizeof *tg);
        }
        if (!ids || !tg) { rc = LSTM_E_NOMEM; break; }
        if (limit >= 0 && (long long)n > limit) continue; /* keep reading: the end record is still verified */
        if (tag == LSTM_REC_DOC) {
            size_t k = len / 4;
            for (size_t i = 0; i < k; i++) ids[i] = lstm_get_u32(p + 4 * i);
            if (text_only) { print_text(tok, ids, k); continue; }
            printf("  D #%llu: %zu tokens\n", (unsigned long long)n, k);
            print_ids("ids: ", ids, k);
            if (!ids_only) print_pieces("toks:", tok, ids, k);
        } else if (tag == LSTM_REC_WINDOW) {
            lstm_window w = {0, 0, 0, ids, tg};
            rc = lstm_window_decode(p, len, &w, cap);
            if (rc) break;
            if (text_only) { print_text(tok, ids, w.T); continue; }
            printf("  W #%llu: T=%u K=%u%s%s\n", (unsigned long long)n, w.T, w.K,
                   w.flags & LSTM_WIN_DOC_START ? " doc-start" : "", w.flags & LSTM_WIN_CONT ? " cont" : "");
            print_ids("in:  ", ids, w.T);
            print_ids("tgt: ", tg, w.K);
            if (!ids_only) {
                print_pieces("in:  ", tok, ids, w.T);
                print_pieces("tgt: ", tok, tg, w.K);
            }
        } else if (!text_only) {
            printf("  %c #%llu: %u bytes\n", tag >= 0x20 && tag < 0x7f ? tag : '?', (unsigned long long)n, len);
        }
    }
    free(ids);
    free(tg);
    if (rc < 0) {
        fflush(stdout);
        fprintf(stderr, PROG ": %s: %s\n", iname, lstm_strerror(rc));
        lstm_tokenizer_free(tok);
        lstm_reader_free(r);
        return 1;
    }
    if (!text_only) printf("end: %llu records, whole\n", (unsigned long long)n);
    if (tool_verbosity >= TOOL_VERBOSE) tool_msg("%s: %llu records, end record verified", iname, (unsigned long long)n);
done:
    lstm_tokenizer_free(tok);
    lstm_reader_free(r);
    return finish_output();
}
