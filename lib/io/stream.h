/* stream.h: record streams over zstd (formats/stream.md is normative).
 *
 * A stream, once decompressed, is: a 24-byte fixed header (magic, version, kind, metadata length),
 * the metadata block (ordered key/value pairs), records (tag, length, payload), and an end record
 * that carries the record count. The end record is what proves a stream is whole.
 */
#ifndef LSTM_STREAM_H
#define LSTM_STREAM_H
#include <stddef.h>
#include <stdint.h>
#include "errors.h"

#define LSTM_STREAM_VERSION 1u
/* Kinds are four ASCII bytes read as a little-endian u32. */
#define LSTM_KIND(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define LSTM_KIND_TOKS LSTM_KIND('T', 'O', 'K', 'S')
#define LSTM_KIND_WIND LSTM_KIND('W', 'I', 'N', 'D')
#define LSTM_KIND_VOCB LSTM_KIND('V', 'O', 'C', 'B') /* a vocabulary file: metadata only, no records */

/* Record tags. */
#define LSTM_REC_DOC 'D'    /* token stream: one document, payload = n x u32 token ids */
#define LSTM_REC_WINDOW 'W' /* window stream: see lstm_window below */
#define LSTM_REC_END 'E'    /* end of stream: payload = u64 number of records before it */

#define LSTM_MAX_RECORD (256u << 20) /* largest record payload accepted, bytes */
#define LSTM_MAX_META (1u << 30)     /* largest metadata block accepted, bytes */

/* ---- little-endian put/get helpers (never dump structs) ---- */
static inline void lstm_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void lstm_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void lstm_put_u64(uint8_t *p, uint64_t v) { lstm_put_u32(p, (uint32_t)v); lstm_put_u32(p + 4, (uint32_t)(v >> 32)); }
static inline uint16_t lstm_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t lstm_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t lstm_get_u64(const uint8_t *p) { return lstm_get_u32(p) | (uint64_t)lstm_get_u32(p + 4) << 32; }

/* ---- metadata: an ordered list of (key, value bytes); keys are unique ---- */
typedef struct {
    char *key;      /* NUL-terminated, 1..255 bytes */
    uint8_t *val;   /* value bytes (also NUL-terminated for convenience, not counted in len) */
    size_t len;
} lstm_meta_entry;

typedef struct {
    lstm_meta_entry *e;
    size_t n, cap;
} lstm_meta;

void lstm_meta_init(lstm_meta *m);
void lstm_meta_free(lstm_meta *m);
int lstm_meta_copy(lstm_meta *dst, const lstm_meta *src); /* dst must be initialised (emptied first) */
/* Set (replace or append) a key. */
int lstm_meta_set(lstm_meta *m, const char *key, const void *val, size_t len);
int lstm_meta_set_str(lstm_meta *m, const char *key, const char *val);
int lstm_meta_set_u64(lstm_meta *m, const char *key, uint64_t v); /* stored as decimal text */
/* NULL if absent. */
const uint8_t *lstm_meta_get(const lstm_meta *m, const char *key, size_t *len);
/* LSTM_E_NOTFOUND if absent, LSTM_E_FORMAT if not a decimal number. */
int lstm_meta_get_u64(const lstm_meta *m, const char *key, uint64_t *v);
/* Append one line "argv[0] argv[1] ..." (arguments with spaces or quotes are shell-quoted)
 * to the "provenance" value (lines separated by '\n'). */
int lstm_meta_add_provenance(lstm_meta *m, int argc, char *const *argv);
/* Serialise / parse the metadata block (formats/stream.md "Metadata block"). */
int lstm_meta_encode(const lstm_meta *m, uint8_t **out, size_t *len);
int lstm_meta_decode(lstm_meta *m, const uint8_t *p, size_t len);

/* ---- writer ---- */
typedef struct lstm_writer lstm_writer;

typedef struct {
    int level;          /* zstd level; 0 = default (3) */
    size_t frame_bytes; /* end a zstd frame after this many uncompressed bytes; 0 = default (4 MiB) */
    int threads;        /* zstd worker threads; 0 = none */
} lstm_writer_opts;

/* Writes to fd (not closed by the writer). opts may be NULL. The header and metadata are written
 * at once. */
int lstm_writer_open(lstm_writer **out, int fd, uint32_t kind, const lstm_meta *meta, const lstm_writer_opts *opts);
int lstm_writer_put(lstm_writer *w, uint8_t tag, const void *payload, uint32_t len);
/* Writes the end record and flushes everything to fd. A stream not finished has no end record and
 * is rejected by readers as truncated. */
int lstm_writer_finish(lstm_writer *w);
void lstm_writer_free(lstm_writer *w);
uint64_t lstm_writer_records(const lstm_writer *w);
/* Compressed bytes written so far. */
uint64_t lstm_writer_bytes_out(const lstm_writer *w);

/* ---- reader ---- */
typedef struct lstm_reader lstm_reader;

/* Reads from fd (not closed by the reader). bufsize = size of the compressed input buffer, 0 = default;
 * tests pass tiny sizes so records straddle buffer edges. Reads and checks the header at once:
 * LSTM_E_MAGIC, LSTM_E_VERSION, LSTM_E_TRUNCATED, LSTM_E_CORRUPT, LSTM_E_FORMAT. */
int lstm_reader_open(lstm_reader **out, int fd, size_t bufsize);
/* The same when the caller has already read the first plen bytes of fd (to peek at a pipe's magic):
 * the stream is prefix followed by the rest of fd. */
int lstm_reader_open_prefix(lstm_reader **out, int fd, size_t bufsize, const void *prefix, size_t plen);
/* lstm_reader_open for a tool's input: a file that is not a stream (LSTM_E_MAGIC, or LSTM_E_TRUNCATED
 * before any content) and whose first bytes look like text gives LSTM_E_TEXT instead, so the tool can
 * say "pipe it through lstm-tok". The bytes looked at are the ones read for the magic: nothing more
 * is read than lstm_reader_open reads. */
int lstm_reader_open_sniff(lstm_reader **out, int fd, size_t bufsize);
/* 1 if the first n bytes of an input look like text (a CSV or text file given where a stream is
 * expected): n > 0, no control bytes other than tab, LF, VT, FF and CR, and either valid UTF-8 (a
 * sequence cut at the end counts) or at most a third of the bytes >= 0x80 (text in a legacy 8-bit
 * encoding, which lstm-tok reads with a warning). Stream and checkpoint magics (0x1a) never qualify. */
int lstm_stream_looks_like_text(const void *p, size_t n);
uint32_t lstm_reader_kind(const lstm_reader *r);
uint32_t lstm_reader_version(const lstm_reader *r);
const lstm_meta *lstm_reader_meta(const lstm_reader *r);
/* 1 and a record (payload valid until the next call), 0 at the end record (whole stream verified,
 * including that no data follows it), or a negative error code. Once an error or the end has been
 * returned, the same value is returned again. */
int lstm_reader_next(lstm_reader *r, uint8_t *tag, const uint8_t **payload, uint32_t *len);
/* Compressed bytes consumed so far (for progress). */
uint64_t lstm_reader_bytes_in(const lstm_reader *r);
void lstm_reader_free(lstm_reader *r);
/* What a kind is, for messages: "a token stream", "windows", "a vocabulary file", "an unknown kind". */
const char *lstm_kind_desc(uint32_t kind);
/* "TOKS" etc. into buf (5 bytes); non-printable bytes shown as '?'. */
const char *lstm_kind_name(uint32_t kind, char buf[5]);

/* ---- window records ---- */
#define LSTM_WIN_CONT 1u      /* this window continues the previous window of the stream (carry state) */
#define LSTM_WIN_DOC_START 2u /* the first input token is the first token of a document */

typedef struct {
    uint32_t flags;
    uint32_t T;        /* number of inputs */
    uint32_t K;        /* number of targets: T (next-token at every position) or 1 (--last) */
    uint32_t *inputs;  /* (T) */
    uint32_t *targets; /* (K); PAD id = masked out of the loss */
} lstm_window;

/* Encodes a window record (payload: u32 flags, u32 T, u32 K, T x u32 inputs, K x u32 targets). */
int lstm_window_put(lstm_writer *w, const lstm_window *win);
/* Decodes into win, whose inputs/targets arrays must hold cap entries each; LSTM_E_FORMAT on a
 * malformed payload, LSTM_E_TOOBIG if T or K exceed cap. */
int lstm_window_decode(const uint8_t *p, uint32_t len, lstm_window *win, uint32_t cap);
/* Token documents: payload is n x u32. */
int lstm_doc_put(lstm_writer *w, const uint32_t *ids, uint32_t n);

#endif
