/* tokenizer.c: word / whitespace / grapheme / BPE tokenizers, their vocabulary and blob. */
#include "tokenizer.h"
#include "checkpoint.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include "hash.h"
#include "spm_c.h"
#include "utf8.h"

static const uint8_t BLOB_MAGIC[4] = {0xC4, 'T', 'O', 'K'};
#define BLOB_HEAD 28
#define FLAG_KEEP_CASE 1u
#define MAX_IDS (1u << 28) /* hard limit on the vocabulary size a blob may declare */
#define BPE_DEFAULT_VOCAB 8000

static const char *const SPECIAL[LSTM_NUM_SPECIAL] = {"<pad>", "<unk>", "<s>", "</s>"};

/* ------------------------------------------------------------------ string table */

/* Interned byte strings with counts: index order is insertion order. */
typedef struct {
    char *pool; /* each string NUL-terminated */
    size_t plen, pcap;
    size_t *off;     /* (n) */
    uint32_t *len;   /* (n) */
    uint32_t *hash;  /* (n) */
    uint64_t *count; /* (n) */
    size_t n, cap;
    uint32_t *slot; /* (nslot) entry index + 1, 0 = empty */
    size_t nslot;
} strtab;

/* The table keeps 32 bits of the hash per string; slots are found by its low bits. */
static uint32_t hash_bytes(const char *s, size_t n) { return (uint32_t)lstm_hash_bytes(s, n); }

static void strtab_free(strtab *t)
{
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->hash);
    free(t->count);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

static const char *strtab_str(const strtab *t, size_t i) { return t->pool + t->off[i]; }

static long strtab_find(const strtab *t, const char *s, size_t n, uint32_t h)
{
    size_t mask, i;
    if (!t->nslot) return -1;
    mask = t->nslot - 1;
    for (i = h & mask;; i = (i + 1) & mask) {
        uint32_t e = t->slot[i];
        if (!e) return -1;
        e--;
        if (t->hash[e] == h && t->len[e] == n && memcmp(t->pool + t->off[e], s, n) == 0) return (long)e;
    }
}

static int strtab_rehash(strtab *t, size_t nslot)
{
    uint32_t *slot = calloc(nslot, sizeof *slot);
    if (!slot) return LSTM_E_NOMEM;
    for (size_t e = 0; e < t->n; e++) {
        size_t i = t->hash[e] & (nslot - 1);
        while (slot[i]) i = (i + 1) & (nslot - 1);
        slot[i] = (uint32_t)e + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->nslot = nslot;
    return 0;
}

/* Appends s (not present yet). */
static int strtab_add(strtab *t, const char *s, size_t n, uint32_t h, uint32_t *idx)
{
    size_t i;
    int e;
    if (t->n >= 0xFFFFFFF0u || n > 0xFFFFFFF0u) return LSTM_E_TOOBIG;
    if ((t->n + 1) * 2 > t->nslot && (e = strtab_rehash(t, t->nslot ? t->nslot * 2 : 1024))) return e;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        size_t *off = realloc(t->off, cap * sizeof *off);
        if (!off) return LSTM_E_NOMEM;
        t->off = off;
        uint32_t *len = realloc(t->len, cap * sizeof *len);
        if (!len) return LSTM_E_NOMEM;
        t->len = len;
        uint32_t *hh = realloc(t->hash, cap * sizeof *hh);
        if (!hh) return LSTM_E_NOMEM;
        t->hash = hh;
        uint64_t *c = realloc(t->count, cap * sizeof *c);
        if (!c) return LSTM_E_NOMEM;
        t->count = c;
        t->cap = cap;
    }
    if (t->plen + n + 1 > t->pcap) {
        size_t cap = t->pcap ? t->pcap : 4096;
        char *p;
        while (cap < t->plen + n + 1) cap *= 2;
        p = realloc(t->pool, cap);
        if (!p) return LSTM_E_NOMEM;
        t->pool = p;
        t->pcap = cap;
    }
    memcpy(t->pool + t->plen, s, n);
    t->pool[t->plen + n] = '\0';
    t->off[t->n] = t->plen;
    t->len[t->n] = (uint32_t)n;
    t->hash[t->n] = h;
    t->count[t->n] = 0;
    t->plen += n + 1;
    for (i = h & (t->nslot - 1); t->slot[i]; i = (i + 1) & (t->nslot - 1)) {
    }
    t->slot[i] = (uint32_t)t->n + 1;
    *idx = (uint32_t)t->n++;
    return 0;
}

static int strtab_intern(strtab *t, const char *s, size_t n, uint32_t *idx)
{
    uint32_t h = hash_bytes(s, n);
    long f = strtab_find(t, s, n, h);
    if (f >= 0) {
        *idx = (uint32_t)f;
        return 0;
    }
    return strtab_add(t, s, n, h, idx);
}

/* ------------------------------------------------------------------ tokenizer */

struct lstm_tokenizer {
    int kind, keep_case, built;
    char *unk_token; /* NULL = none */
    size_t unk_len;
    strtab bt;    /* before build: 'w' + token and 's' + tag keys, with counts; tmp id = 4 + index */
    strtab spk;   /* after build: speaker tags, id = 4 + index */
    strtab vocab; /* after build (not bpe): regular pieces, id = 4 + nspk + index */
    uint32_t V;
    lstm_spm *spm;
    uint8_t *model;
    size_t model_len;
    UBreakIterator *brk;
    const UNormalizer2 *norm;    /* NFKC or NFKC_Casefold */
    const UNormalizer2 *spknorm; /* NFKC_Casefold, for speaker names */
    UChar *u16, *n16;            /* scratch: input as UTF-16, normalised */
    size_t u16cap, n16cap;
    char *san, *u8; /* scratch: repaired UTF-8, one token as UTF-8 (with a key prefix byte) */
    size_t sancap, u8cap;
    int *sids; /* scratch: SentencePiece ids */
    size_t sidcap;
    uint64_t replaced;
    /* bpe word cache (see bpe_encode): space-separated chunk -> SentencePiece ids */
    int wc_state; /* 0 = being checked against whole-text encoding, 1 = on, -1 = off */
    unsigned wc_checked;
    strtab wc;     /* count[i] = offset in wc_ids << 8 | number of ids */
    int *wc_ids;
    size_t wc_n, wc_cap;
    lstm_ids wc_tmp;
};

int lstm_ids_push(lstm_ids *a, uint32_t id)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        uint32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return LSTM_E_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return 0;
}

void lstm_ids_free(lstm_ids *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elsize)
{
    size_t c = *cap ? *cap : 256;
    void *q;
    if (need <= *cap) return 0;
    while (c < need) c *= 2;
    if (c > SIZE_MAX / elsize) return LSTM_E_TOOBIG;
    q = realloc(*p, c * elsize);
    if (!q) return LSTM_E_NOMEM;
    *p = q;
    *cap = c;
    return 0;
}

const char *lstm_tokenizer_kind_name(int kind)
{
    switch (kind) {
    case LSTM_TOK_WORDS: return "words";
    case LSTM_TOK_SPACE: return "space";
    case LSTM_TOK_BPE: return "bpe";
    case LSTM_TOK_CHARS: return "chars";
    }
    return "unknown";
}

static uint32_t base_id(const lstm_tokenizer *t) { return LSTM_NUM_SPECIAL + (uint32_t)t->spk.n; }

int lstm_tokenizer_create(lstm_tokenizer **out, const lstm_tokenizer_opts *o)
{
    lstm_tokenizer *t;
    UErrorCode err = U_ZERO_ERROR;
    int kind = o && o->kind ? o->kind : LSTM_TOK_WORDS;
    *out = NULL;
    if (kind < LSTM_TOK_WORDS || kind > LSTM_TOK_CHARS) return LSTM_E_ARG;
    t = calloc(1, sizeof *t);
    if (!t) return LSTM_E_NOMEM;
    t->kind = kind;
    t->keep_case = o && o->keep_case;
    if (o && o->unk_token && o->unk_token[0]) {
        t->unk_token = strdup(o->unk_token);
        if (!t->unk_token) {
            free(t);
            return LSTM_E_NOMEM;
        }
        t->unk_len = strlen(t->unk_token);
    }
    t->spknorm = unorm2_getNFKCCasefoldInstance(&err);
    t->norm = t->keep_case ? unorm2_getNFKCInstance(&err) : t->spknorm;
    if (U_SUCCESS(err) && (kind == LSTM_TOK_WORDS || kind == LSTM_TOK_CHARS))
        t->brk = ubrk_open(kind == LSTM_TOK_WORDS ? UBRK_WORD : UBRK_CHARACTER, "", NULL, 0, &err);
    if (U_FAILURE(err)) {
        lstm_tokenizer_free(t);
        return LSTM_E_ICU;
    }
    *out = t;
    return 0;
}

void lstm_tokenizer_free(lstm_tokenizer *t)
{
    if (!t) return;
    free(t->unk_token);
    strtab_free(&t->bt);
    strtab_free(&t->spk);
    strtab_free(&t->vocab);
    lstm_spm_free(t->spm);
    free(t->model);
    if (t->brk) ubrk_close(t->brk);
    free(t->u16);
    free(t->n16);
    free(t->san);
    free(t->u8);
    free(t->sids);
    strtab_free(&t->wc);
    free(t->wc_ids);
    lstm_ids_free(&t->wc_tmp);
    free(t);
}

int lstm_tokenizer_is_built(const lstm_tokenizer *t) { return t->built; }
uint32_t lstm_tokenizer_vocab_size(const lstm_tokenizer *t) { return t->built ? t->V : 0; }
uint32_t lstm_tokenizer_num_speakers(const lstm_tokenizer *t) { return (uint32_t)t->spk.n; }
int lstm_tokenizer_kind(const lstm_tokenizer *t) { return t->kind; }
uint64_t lstm_tokenizer_replaced(const lstm_tokenizer *t) { return t->replaced; }

/* ------------------------------------------------------------------ segmentation */

/* Called once per token: s/n is the token (valid UTF-8), or special = UNK for the unk token. */
typedef int (*emit_fn)(lstm_tokenizer *t, const char *s, size_t n, int special, lstm_ids *out);

/* Makes text valid UTF-8: returns it or a repaired copy in t->san, counting the repairs. */
static int repair_count(lstm_tokenizer *t, const char **text, size_t *len)
{
    size_t ok = lstm_utf8_valid_prefix(*text, *len), bad = 0;
    int e;
    if (ok == *len) return 0;
    if (*len > SIZE_MAX / 3) return LSTM_E_TOOBIG;
    if ((e = grow((void **)&t->san, &t->sancap, 3 * *len + 1, 1))) return e;
    *len = lstm_utf8_sanitize(*text, *len, t->san, &bad);
    t->replaced += bad;
    *text = t->san;
    return 0;
}

/* No piece may hold NUL (a blob with one is refused by every reader), so NUL reads as a space: alone
 * it separates tokens, as the other control characters do between words, and it never ends up inside
 * a piece (NUL + a combining mark, UTF-16 text read as UTF-8). */
static int map_nul(lstm_tokenizer *t, const char **text, size_t *len)
{
    int e;
    if (!*len || !memchr(*text, '\0', *len)) return 0;
    if (*text != t->san) { /* t->san is ours to change; the caller's text is not */
        if ((e = grow((void **)&t->san, &t->sancap, *len + 1, 1))) return e;
        memcpy(t->san, *text, *len);
        *text = t->san;
    }
    for (char *p = t->san; (p = memchr(p, '\0', *len - (size_t)(p - t->san))); p++) *p = ' ';
    return 0;
}

/* text (valid UTF-8) -> t->u16 -> normalised t->n16; returns its length in *n. */
static int to_normal_utf16(lstm_tokenizer *t, const UNormalizer2 *norm, const char *text, size_t len, int32_t *n)
{
    UErrorCode err = U_ZERO_ERROR;
    int32_t n16, q, m;
    int e;
    if (len > INT32_MAX / 4) return LSTM_E_TOOBIG;
    if ((e = grow((void **)&t->u16, &t->u16cap, len + 1, sizeof(UChar)))) return e;
    u_strFromUTF8(t->u16, (int32_t)t->u16cap, &n16, text, (int32_t)len, &err);
    if (U_FAILURE(err)) return LSTM_E_ICU;
    q = unorm2_spanQuickCheckYes(norm, t->u16, n16, &err);
    if (U_FAILURE(err)) return LSTM_E_ICU;
    if (q == n16) { /* already normal: swap buffers instead of copying */
        UChar *tmp = t->n16;
        size_t c = t->n16cap;
        t->n16 = t->u16;
        t->n16cap = t->u16cap;
        t->u16 = tmp;
        t->u16cap = c;
        *n = n16;
        return 0;
    }
    if ((e = grow((void **)&t->n16, &t->n16cap, (size_t)n16 + 16, sizeof(UChar)))) return e;
    for (;;) {
        err = U_ZERO_ERROR;
        m = unorm2_normalize(norm, t->u16, n16, t->n16, (int32_t)t->n16cap, &err);
        if (err == U_BUFFER_OVERFLOW_ERROR) {
            if ((size_t)m >= (size_t)INT32_MAX) return LSTM_E_TOOBIG;
            if ((e = grow((void **)&t->n16, &t->n16cap, (size_t)m + 1, sizeof(UChar)))) return e;
            continue;
        }
        if (U_FAILURE(err)) return LSTM_E_ICU;
        break;
    }
    *n = m;
    return 0;
}

/* UTF-16 s[a, b) -> UTF-8 in t->u8 + 1 (byte 0 is left for a key prefix). */
static int seg_utf8(lstm_tokenizer *t, const UChar *s, int32_t a, int32_t b, size_t *n)
{
    size_t o = 1;
    int e;
    if ((e = grow((void **)&t->u8, &t->u8cap, (size_t)(b - a) * 3 + 2, 1))) return e;
    for (int32_t i = a; i < b;) {
        UChar32 c;
        U16_NEXT(s, i, b, c);
        if (U_IS_SURROGATE(c)) c = 0xFFFD;
        o += lstm_utf8_encode((uint32_t)c, t->u8 + o);
    }
    *n = o - 1;
    return 0;
}

/* A word-break segment with the "none" status is kept unless it is only whitespace, control or
 * format characters: that keeps punctuation, symbols and emoji (Extended_Pictographic). */
static int visible(const UChar *s, int32_t a, int32_t b)
{
    for (int32_t i = a; i < b;) {
        UChar32 c;
        int8_t ty;
        U16_NEXT(s, i, b, c);
        ty = u_charType(c);
        if (u_isUWhiteSpace(c) || ty == U_CONTROL_CHAR || ty == U_FORMAT_CHAR || ty == U_SPACE_SEPARATOR ||
            ty == U_LINE_SEPARATOR || ty == U_PARAGRAPH_SEPARATOR)
            continue;
        return 1;
    }
    return 0;
}

static int is_space_byte(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static int segment(lstm_tokenizer *t, const char *text, size_t len, emit_fn emit, lstm_ids *out)
{
    int e;
    if ((e = repair_count(t, &text, &len)) || (e = map_nul(t, &text, &len))) return e;
    if (t->kind == LSTM_TOK_SPACE) {
        size_t i = 0;
        while (i < len) {
            size_t j;
            while (i < len && is_space_byte((unsigned char)text[i])) i++;
            if (i >= len) break;
            for (j = i; j < len && !is_space_byte((unsigned char)text[j]); j++) {
            }
            if (t->unk_token && j - i == t->unk_len && memcmp(text + i, t->unk_token, t->unk_len) == 0)
                e = emit(t, NULL, 0, (int)LSTM_UNK_ID, out);
            else
                e = emit(t, text + i, j - i, 0, out);
            if (e) return e;
            i = j;
        }
        return 0;
    }
    if (t->kind == LSTM_TOK_WORDS || t->kind == LSTM_TOK_CHARS) {
        UErrorCode err = U_ZERO_ERROR;
        int32_t n, a, b;
        if (!len) return 0;
        if ((e = to_normal_utf16(t, t->norm, text, len, &n))) return e;
        ubrk_setText(t->brk, t->n16, n, &err);
        if (U_FAILURE(err)) return LSTM_E_ICU;
        for (a = ubrk_first(t->brk), b = ubrk_next(t->brk); b != UBRK_DONE; a = b, b = ubrk_next(t->brk)) {
            size_t m;
            if (t->kind == LSTM_TOK_WORDS) {
                int32_t st = ubrk_getRuleStatus(t->brk);
                if (st >= UBRK_WORD_NONE && st < UBRK_WORD_NONE_LIMIT && !visible(t->n16, a, b)) continue;
            }
            if ((e = seg_utf8(t, t->n16, a, b, &m))) return e;
            if ((e = emit(t, t->u8 + 1, m, 0, out))) return e;
        }
        ubrk_setText(t->brk, NULL, 0, &err); /* drop the pointer into our scratch buffer */
        return 0;
    }
    return LSTM_E_ARG;
}

static int emit_count(lstm_tokenizer *t, const char *s, size_t n, int special, lstm_ids *out)
{
    uint32_t idx;
    int e;
    if (special) return lstm_ids_push(out, (uint32_t)special);
    if (s != t->u8 + 1) { /* space tokens point into the input: copy behind the prefix byte */
        if ((e = grow((void **)&t->u8, &t->u8cap, n + 2, 1))) return e;
        memcpy(t->u8 + 1, s, n);
    }
    t->u8[0] = 'w';
    if ((e = strtab_intern(&t->bt, t->u8, n + 1, &idx))) return e;
    t->bt.count[idx]++;
    return lstm_ids_push(out, LSTM_NUM_SPECIAL + idx);
}

static int emit_encode(lstm_tokenizer *t, const char *s, size_t n, int special, lstm_ids *out)
{
    long f;
    if (special) return lstm_ids_push(out, (uint32_t)special);
    f = strtab_find(&t->vocab, s, n, hash_bytes(s, n));
    return lstm_ids_push(out, f < 0 ? LSTM_UNK_ID : base_id(t) + (uint32_t)f);
}

int lstm_tokenizer_count(lstm_tokenizer *t, const char *text, size_t len, lstm_ids *out)
{
    if (t->built || t->kind == LSTM_TOK_BPE) return LSTM_E_ARG;
    return segment(t, text, len, emit_count, out);
}

/* SentencePiece ids of text -> t->sids[0, *n). */
static int spm_ids(lstm_tokenizer *t, const char *text, size_t len, size_t *n)
{
    int e;
    for (;;) {
        if ((e = lstm_spm_encode(t->spm, text, len, t->sids, t->sidcap, n))) return e;
        if (*n <= t->sidcap) return 0;
        if ((e = grow((void **)&t->sids, &t->sidcap, *n, sizeof(int)))) return e;
    }
}

static int append_spm(lstm_tokenizer *t, const int *sids, size_t n, lstm_ids *out)
{
    uint32_t base = base_id(t);
    int unk = lstm_spm_unk_id(t->spm);
    if (out->n + n > out->cap) {
        size_t cap = out->cap ? out->cap : 64;
        uint32_t *v;
        while (cap < out->n + n) cap *= 2;
        v = realloc(out->v, cap * sizeof *v);
        if (!v) return LSTM_E_NOMEM;
        out->v = v;
        out->cap = cap;
    }
    for (size_t i = 0; i < n; i++) out->v[out->n++] = sids[i] == unk ? LSTM_UNK_ID : base + (uint32_t)sids[i];
    return 0;
}

#define WC_MAX_CHUNK 64        /* longer chunks are encoded directly, not cached */
#define WC_MAX_ENTRIES 2000000 /* the cache stops growing here */
#define WC_CHECKS 256          /* texts encoded both ways before the cache is trusted */

/* With SentencePiece's usual options (whitespace splitting, dummy prefix, extra whitespace removed)
 * no piece spans a space, so a text encodes as the concatenation of its space-separated chunks
 * encoded alone: encoding each distinct chunk once makes BPE encoding several times faster.
 * Models where this does not hold are caught two ways: a piece with U+2581 past its start turns
 * the cache off at once, and the first WC_CHECKS texts are encoded both ways and compared. */
static int bpe_encode_chunks(lstm_tokenizer *t, const char *text, size_t len, lstm_ids *out)
{
    size_t i = 0, n;
    int e;
    while (i < len) {
        size_t j;
        while (i < len && text[i] == ' ') i++;
        if (i >= len) break;
        for (j = i; j < len && text[j] != ' '; j++) {
        }
        if (j - i > WC_MAX_CHUNK) {
            if ((e = spm_ids(t, text + i, j - i, &n)) || (e = append_spm(t, t->sids, n, out))) return e;
        } else {
            uint32_t h = hash_bytes(text + i, j - i), idx;
            long f = strtab_find(&t->wc, text + i, j - i, h);
            if (f >= 0) {
                uint64_t c = t->wc.count[f];
                if ((e = append_spm(t, t->wc_ids + (c >> 8), (size_t)(c & 0xFF), out))) return e;
            } else {
                if ((e = spm_ids(t, text + i, j - i, &n)) || (e = append_spm(t, t->sids, n, out))) return e;
                if (n < 256 && t->wc.n < WC_MAX_ENTRIES) {
                    if ((e = grow((void **)&t->wc_ids, &t->wc_cap, t->wc_n + n + 1, sizeof(int)))) return e;
                    if ((e = strtab_add(&t->wc, text + i, j - i, h, &idx))) return e;
                    memcpy(t->wc_ids + t->wc_n, t->sids, n * sizeof(int));
                    t->wc.count[idx] = (uint64_t)t->wc_n << 8 | n;
                    t->wc_n += n;
                }
            }
        }
        i = j;
    }
    return 0;
}

static void wc_off(lstm_tokenizer *t)
{
    t->wc_state = -1;
    strtab_free(&t->wc);
    free(t->wc_ids);
    t->wc_ids = NULL;
    t->wc_n = t->wc_cap = 0;
}

static int bpe_encode(lstm_tokenizer *t, const char *text, size_t len, lstm_ids *out)
{
    size_t n, n0 = out->n;
    int e;
    if ((e = repair_count(t, &text, &len))) return e;
    if (t->wc_state > 0) return bpe_encode_chunks(t, text, len, out);
    if ((e = spm_ids(t, text, len, &n)) || (e = append_spm(t, t->sids, n, out))) return e;
    if (t->wc_state == 0) {
        t->wc_tmp.n = 0;
        if ((e = bpe_encode_chunks(t, text, len, &t->wc_tmp))) return e;
        if (t->wc_tmp.n != n || (n && memcmp(t->wc_tmp.v, out->v + n0, n * sizeof *out->v))) wc_off(t);
        else if (++t->wc_checked >= WC_CHECKS) t->wc_state = 1;
    }
    return 0;
}

int lstm_tokenizer_encode(lstm_tokenizer *t, const char *text, size_t len, lstm_ids *out)
{
    if (!t->built) return LSTM_E_ARG;
    if (t->kind == LSTM_TOK_BPE) return bpe_encode(t, text, len, out);
    return segment(t, text, len, emit_encode, out);
}

/* "<" + NFKC case-folded name, trimmed, whitespace runs -> '_' + ">" into t->u8 + 1. */
static int speaker_tag(lstm_tokenizer *t, const char *name, size_t len, size_t *n)
{
    int32_t m, a = 0, b;
    size_t o = 1;
    int e, gap = 0;
    if ((e = repair_count(t, &name, &len))) return e;
    if ((e = to_normal_utf16(t, t->spknorm, name, len, &m))) return e;
    b = m;
    while (a < b && u_isUWhiteSpace(t->n16[a])) a++;
    while (b > a && u_isUWhiteSpace(t->n16[b - 1])) b--;
    if (a == b) return LSTM_E_ARG;
    if ((e = grow((void **)&t->u8, &t->u8cap, (size_t)(b - a) * 3 + 8, 1))) return e;
    t->u8[o++] = '<';
    for (int32_t i = a; i < b;) {
        UChar32 c;
        U16_NEXT(t->n16, i, b, c);
        if (u_isUWhiteSpace(c) || u_iscntrl(c)) {
            gap = 1;
            continue;
        }
        if (gap) t->u8[o++] = '_';
        gap = 0;
        if (U_IS_SURROGATE(c)) c = 0xFFFD;
        o += lstm_utf8_encode((uint32_t)c, t->u8 + o);
    }
    t->u8[o++] = '>';
    *n = o - 1;
    return 0;
}

int lstm_tokenizer_speaker(lstm_tokenizer *t, const char *name, size_t len, uint32_t *id)
{
    size_t n;
    int e = speaker_tag(t, name, len, &n);
    if (e) return e;
    if (!t->built) {
        uint32_t idx;
        t->u8[0] = 's';
        if ((e = strtab_intern(&t->bt, t->u8, n + 1, &idx))) return e;
        t->bt.count[idx]++;
        *id = LSTM_NUM_SPECIAL + idx;
        return 0;
    }
    long f = strtab_find(&t->spk, t->u8 + 1, n, hash_bytes(t->u8 + 1, n));
    if (f < 0) return LSTM_E_NOTFOUND;
    *id = LSTM_NUM_SPECIAL + (uint32_t)f;
    return 0;
}

int64_t lstm_tokenizer_speaker_id(lstm_tokenizer *t, const char *name)
{
    uint32_t id;
    int e;
    if (!t->built) return LSTM_E_ARG;
    e = lstm_tokenizer_speaker(t, name, strlen(name), &id);
    return e ? e : (int64_t)id;
}

int lstm_tokenizer_encode_turn(lstm_tokenizer *t, const char *speaker, const char *text, size_t len, lstm_ids *out)
{
    int e;
    if (!t->built) return LSTM_E_ARG;
    if (speaker) {
        uint32_t id;
        if ((e = lstm_tokenizer_speaker(t, speaker, strlen(speaker), &id))) return e;
        if ((e = lstm_ids_push(out, id))) return e;
    }
    if ((e = lstm_ids_push(out, LSTM_BOS_ID))) return e;
    return lstm_tokenizer_encode(t, text, len, out);
}

/* ------------------------------------------------------------------ build */

typedef struct {
    uint64_t count;
    const char *s;
    uint32_t len, idx;
} cand;

static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    c = memcmp(a->s, b->s, n);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int finish_bpe(lstm_tokenizer *t)
{
    int n = lstm_spm_size(t->spm);
    if (n <= 0 || (uint64_t)base_id(t) + (uint64_t)n > MAX_IDS) return LSTM_E_RANGE;
    t->V = base_id(t) + (uint32_t)n;
    t->wc_state = 0;
    for (int i = 0; i < n; i++) { /* a piece with U+2581 inside can span a space: no word cache */
        size_t m;
        const char *p = lstm_spm_piece(t->spm, i, &m);
        for (size_t k = 1; p && k + 3 <= m; k++)
            if (!memcmp(p + k, "\xE2\x96\x81", 3)) {
                wc_off(t);
                return 0;
            }
    }
    return 0;
}

int lstm_tokenizer_set_bpe_model(lstm_tokenizer *t, const void *model, size_t len)
{
    lstm_spm *s;
    uint8_t *copy;
    int e;
    if (t->kind != LSTM_TOK_BPE || t->built) return LSTM_E_ARG;
    if ((e = lstm_spm_load(&s, model, len))) return e;
    copy = malloc(len ? len : 1);
    if (!copy) {
        lstm_spm_free(s);
        return LSTM_E_NOMEM;
    }
    memcpy(copy, model, len);
    lstm_spm_free(t->spm);
    free(t->model);
    t->spm = s;
    t->model = copy;
    t->model_len = len;
    return 0;
}

int lstm_tokenizer_build(lstm_tokenizer *t, const lstm_tokenizer_build_opts *o, uint32_t **remap, size_t *nremap)
{
    lstm_tokenizer_build_opts def = {0};
    uint32_t *map = NULL, idx;
    cand *c = NULL;
    size_t nc = 0, maxw = SIZE_MAX, base, i;
    int e = 0;
    if (remap) *remap = NULL;
    if (nremap) *nremap = 0;
    if (t->built) return LSTM_E_ARG;
    if (!o) o = &def;
    map = malloc((LSTM_NUM_SPECIAL + t->bt.n) * sizeof *map);
    if (!map) return LSTM_E_NOMEM;
    for (i = 0; i < LSTM_NUM_SPECIAL; i++) map[i] = (uint32_t)i;
    /* speakers first, in order of first appearance */
    for (i = 0; i < t->bt.n; i++) {
        const char *s = strtab_str(&t->bt, i);
        if (s[0] != 's') continue;
        if ((e = strtab_intern(&t->spk, s + 1, t->bt.len[i] - 1, &idx))) goto out;
        map[LSTM_NUM_SPECIAL + i] = LSTM_NUM_SPECIAL + idx;
    }
    base = base_id(t);
    if (t->kind == LSTM_TOK_BPE) {
        if (!t->spm) {
            size_t vs = o->vocab_size ? o->vocab_size : BPE_DEFAULT_VOCAB;
            uint8_t *model;
            size_t mlen;
            char need[512] = "";
            if (vs > base && vs - base > INT32_MAX) {
                e = LSTM_E_RANGE;
                goto out;
            }
            if (!o->nsents) {
                e = LSTM_E_EMPTY;
                goto out;
            }
            /* a size at or below the special ids still goes to SentencePiece, which names the
             * smallest size that works for this input */
            e = lstm_spm_train(o->sents, o->lens, o->nsents, vs > base + 1 ? (int)(vs - base) : 2, !t->keep_case,
                               o->threads, &model, &mlen, need, sizeof need);
            if (e == LSTM_E_RANGE) {
                if (o->msg && o->msgcap) snprintf(o->msg, o->msgcap, "%zu", (size_t)base + strtoul(need, NULL, 10));
                goto out;
            }
            if (e == LSTM_E_SPM && o->msg && o->msgcap) snprintf(o->msg, o->msgcap, "%s", need);
            if (e) goto out;
            e = lstm_spm_load(&t->spm, model, mlen);
            if (e) {
                free(model);
                goto out;
            }
            t->model = model;
            t->model_len = mlen;
        }
        if ((e = finish_bpe(t))) goto out;
    } else {
        if (o->vocab_size) {
            if (o->vocab_size <= base) {
                e = LSTM_E_RANGE;
                goto out;
            }
            maxw = o->vocab_size - base;
        }
        c = malloc((t->bt.n ? t->bt.n : 1) * sizeof *c);
        if (!c) {
            e = LSTM_E_NOMEM;
            goto out;
        }
        for (i = 0; i < t->bt.n; i++) {
            const char *s = strtab_str(&t->bt, i);
            if (s[0] != 'w') continue;
            map[LSTM_NUM_SPECIAL + i] = LSTM_UNK_ID;
            if (o->min_count > 1 && t->bt.count[i] < o->min_count) continue;
            c[nc++] = (cand){t->bt.count[i], s + 1, t->bt.len[i] - 1, (uint32_t)i};
        }
        qsort(c, nc, sizeof *c, cand_cmp);
        if (nc > maxw) nc = maxw;
        if (base + nc > MAX_IDS) {
            e = LSTM_E_TOOBIG;
            goto out;
        }
        for (i = 0; i < nc; i++) {
            uint32_t h = hash_bytes(c[i].s, c[i].len);
            if ((e = strtab_add(&t->vocab, c[i].s, c[i].len, h, &idx))) goto out;
            t->vocab.count[idx] = c[i].count;
            map[LSTM_NUM_SPECIAL + c[i].idx] = (uint32_t)(base + idx);
        }
        t->V = (uint32_t)(base + nc);
    }
    t->built = 1;
    if (remap) {
        *remap = map;
        map = NULL;
        if (nremap) *nremap = LSTM_NUM_SPECIAL + t->bt.n;
    }
    strtab_free(&t->bt);
out:
    if (e) {
        strtab_free(&t->spk);
        strtab_free(&t->vocab);
    }
    free(c);
    free(map);
    return e;
}

/* ------------------------------------------------------------------ pieces and decoding */

const char *lstm_tokenizer_piece(const lstm_tokenizer *t, uint32_t id, size_t *len)
{
    uint32_t base;
    if (!t->built || id >= t->V) return NULL;
    if (id < LSTM_NUM_SPECIAL) {
        if (len) *len = strlen(SPECIAL[id]);
        return SPECIAL[id];
    }
    base = base_id(t);
    if (id < base) {
        if (len) *len = t->spk.len[id - LSTM_NUM_SPECIAL];
        return strtab_str(&t->spk, id - LSTM_NUM_SPECIAL);
    }
    if (t->kind == LSTM_TOK_BPE) return lstm_spm_piece(t->spm, (int)(id - base), len);
    if (len) *len = t->vocab.len[id - base];
    return strtab_str(&t->vocab, id - base);
}

static int8_t first_type(const char *s, size_t n, uint32_t *cp)
{
    *cp = 0;
    if (!lstm_utf8_decode(s, n, cp)) return -1;
    return (int8_t)u_charType((UChar32)*cp);
}

static int8_t last_type(const char *s, size_t n)
{
    size_t i = n;
    uint32_t cp;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return -1;
    i--;
    if (!lstm_utf8_decode(s + i, n - i, &cp)) return -1;
    return (int8_t)u_charType((UChar32)cp);
}

/* Written without a space before it: closing and most other punctuation ("." "," "!" ")" "'s"). */
static int attach_left(const char *s, size_t n)
{
    uint32_t cp;
    int8_t ty = first_type(s, n, &cp);
    if (ty == U_END_PUNCTUATION || ty == U_FINAL_PUNCTUATION) return 1;
    if (ty == U_OTHER_PUNCTUATION) return !strchr("\"#&@*\\", (int)cp) && cp != 0xA1 && cp != 0xBF;
    return 0;
}

/* Written without a space after it: opening punctuation ("(" "[" "“" "¿"). */
static int attach_right(const char *s, size_t n)
{
    int8_t ty = last_type(s, n);
    return ty == U_START_PUNCTUATION || ty == U_INITIAL_PUNCTUATION || (n == 2 && (!memcmp(s, "\xC2\xA1", 2) || !memcmp(s, "\xC2\xBF", 2)));
}

unsigned lstm_tokenizer_piece_flags(const lstm_tokenizer *t, uint32_t id)
{
    size_t n;
    const char *s;
    unsigned f = 0;
    uint32_t cp;
    int8_t ty;
    if (!t->built || id >= t->V) return 0;
    if (id < LSTM_NUM_SPECIAL) return LSTM_PIECE_SPECIAL;
    if (id < base_id(t)) return LSTM_PIECE_SPEAKER;
    s = lstm_tokenizer_piece(t, id, &n);
    if (!s) return 0;
    ty = first_type(s, n, &cp);
    if (ty == U_START_PUNCTUATION || ty == U_END_PUNCTUATION || ty == U_INITIAL_PUNCTUATION ||
        ty == U_FINAL_PUNCTUATION || ty == U_OTHER_PUNCTUATION || ty == U_DASH_PUNCTUATION ||
        ty == U_CONNECTOR_PUNCTUATION)
        f |= LSTM_PIECE_PUNCT;
    switch (t->kind) {
    case LSTM_TOK_WORDS:
    case LSTM_TOK_SPACE:
        f |= LSTM_PIECE_WORD_START;
        break;
    case LSTM_TOK_BPE:
        if (lstm_spm_is_control(t->spm, (int)(id - base_id(t)))) return LSTM_PIECE_SPECIAL;
        if (n >= 3 && !memcmp(s, "\xE2\x96\x81", 3)) {
            f |= LSTM_PIECE_WORD_START;
            if (n == 3) f |= LSTM_PIECE_SPACE;
        }
        break;
    case LSTM_TOK_CHARS:
        if (ty >= 0 && (u_isUWhiteSpace((UChar32)cp) || ty == U_CONTROL_CHAR)) f |= LSTM_PIECE_SPACE;
        break;
    }
    return f;
}

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t n)
{
    int e = grow((void **)&b->p, &b->cap, b->n + n + 1, 1);
    if (e) return e;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* Decodes a run of bpe ids [i, j) through SentencePiece and appends it. */
static int bpe_run(lstm_tokenizer *t, const uint32_t *ids, size_t i, size_t j, sbuf *b)
{
    uint32_t base = base_id(t);
    char *s;
    size_t n;
    int e;
    if ((e = grow((void **)&t->sids, &t->sidcap, j - i + 1, sizeof(int)))) return e;
    for (size_t k = i; k < j; k++) t->sids[k - i] = (int)(ids[k] - base);
    if ((e = lstm_spm_decode(t->spm, t->sids, j - i, &s, &n))) return e;
    e = sb_put(b, s, n);
    free(s);
    return e;
}

/* 1 if the piece of id (a word or space token) starts with an ASCII digit. */
static int piece_starts_digit(const lstm_tokenizer *t, uint32_t id)
{
    size_t m;
    const char *s = id >= base_id(t) && id < t->V ? lstm_tokenizer_piece(t, id, &m) : NULL;
    return s && m > 0 && isdigit((unsigned char)s[0]);
}

int lstm_tokenizer_decode(lstm_tokenizer *t, const uint32_t *ids, size_t n, char **text, size_t *len)
{
    sbuf b = {0};
    int e = 0, line_start = 1, glue = 0; /* glue: the previous token asked for no space after it */
    uint32_t base = base_id(t);
    *text = NULL;
    if (len) *len = 0;
    if (!t->built) return LSTM_E_ARG;
    if ((e = sb_put(&b, "", 0))) return e;
    for (size_t i = 0; i < n && !e; i++) {
        uint32_t id = ids[i];
        const char *s;
        size_t m;
        if (id >= t->V) {
            e = LSTM_E_RANGE;
            break;
        }
        if (id == LSTM_PAD_ID || id == LSTM_BOS_ID) continue;
        if (id == LSTM_EOS_ID) {
            e = sb_put(&b, "\n", 1);
            line_start = 1;
            continue;
        }
        if (id >= LSTM_NUM_SPECIAL && id < base) { /* speaker tag */
            s = lstm_tokenizer_piece(t, id, &m);
            if (!line_start && t->kind != LSTM_TOK_CHARS) e = sb_put(&b, " ", 1);
            if (!e) e = sb_put(&b, s, m);
            if (!e) e = sb_put(&b, " ", 1);
            line_start = 1; /* the turn's text follows without another space */
            continue;
        }
        if (t->kind == LSTM_TOK_BPE && id != LSTM_UNK_ID) {
            size_t j = i;
            int sid = (int)(id - base);
            if (sid == lstm_spm_unk_id(t->spm)) {
                s = "<unk>";
                m = 5;
                goto word;
            }
            while (j < n && ids[j] >= base && ids[j] < t->V && (int)(ids[j] - base) != lstm_spm_unk_id(t->spm)) j++;
            /* a run that starts a new word after earlier text needs the space SentencePiece strips */
            if (!line_start && (lstm_tokenizer_piece_flags(t, id) & LSTM_PIECE_WORD_START)) e = sb_put(&b, " ", 1);
            if (!e) e = bpe_run(t, ids, i, j, &b);
            i = j - 1;
            line_start = 0;
            continue;
        }
        if (id == LSTM_UNK_ID) {
            s = t->unk_token ? t->unk_token : "<unk>";
            m = strlen(s);
        } else {
            s = lstm_tokenizer_piece(t, id, &m);
        }
    word:
        if (t->kind == LSTM_TOK_CHARS) {
            e = sb_put(&b, s, m);
        } else {
            /* "6" ":" "30" and "3" "/" "5" are one time or date: no spaces around the separator */
            int joins = m == 1 && (s[0] == ':' || s[0] == '/') && b.n > 0 && isdigit((unsigned char)b.p[b.n - 1]) &&
                        i + 1 < n && piece_starts_digit(t, ids[i + 1]);
            if (!line_start && !glue && !attach_left(s, m) && !joins) e = sb_put(&b, " ", 1);
            if (!e) e = sb_put(&b, s, m);
            glue = attach_right(s, m) || joins;
        }
        line_start = 0;
    }
    if (e) {
        free(b.p);
        return e;
    }
    *text = b.p;
    if (len) *len = b.n;
    return 0;
}

/* ------------------------------------------------------------------ blob */

static int put_bytes(sbuf *b, const void *p, size_t n) { return sb_put(b, p, n); }

static int put_u32(sbuf *b, uint32_t v)
{
    uint8_t x[4];
    lstm_put_u32(x, v);
    return put_bytes(b, x, 4);
}

static int put_str(sbuf *b, const char *s, size_t n)
{
    int e = put_u32(b, (uint32_t)n);
    return e ? e : put_bytes(b, s, n);
}

int lstm_tokenizer_serialize(const lstm_tokenizer *t, uint8_t **blob, size_t *len)
{
    sbuf b = {0};
    int e;
    *blob = NULL;
    *len = 0;
    if (!t->built) return LSTM_E_ARG;
    if (t->kind == LSTM_TOK_BPE && t->model_len > UINT32_MAX) return LSTM_E_TOOBIG;
    e = put_bytes(&b, BLOB_MAGIC, 4);
    if (!e) e = put_u32(&b, LSTM_TOKENIZER_VERSION);
    if (!e) e = put_u32(&b, (uint32_t)t->kind);
    if (!e) e = put_u32(&b, t->keep_case ? FLAG_KEEP_CASE : 0);
    if (!e) e = put_u32(&b, t->V);
    if (!e) e = put_u32(&b, (uint32_t)t->spk.n);
    if (!e) e = put_str(&b, t->unk_token ? t->unk_token : "", t->unk_len);
    for (size_t i = 0; !e && i < t->spk.n; i++) e = put_str(&b, strtab_str(&t->spk, i), t->spk.len[i]);
    if (t->kind == LSTM_TOK_BPE) {
        if (!e) e = put_str(&b, (const char *)t->model, t->model_len);
    } else {
        for (size_t i = 0; !e && i < t->vocab.n; i++) e = put_str(&b, strtab_str(&t->vocab, i), t->vocab.len[i]);
    }
    if (e) {
        free(b.p);
        return e;
    }
    *blob = (uint8_t *)b.p;
    *len = b.n;
    return 0;
}

typedef struct {
    const uint8_t *p;
    size_t len, pos;
} rd;

static int get_u32(rd *r, uint32_t *v)
{
    if (r->len - r->pos < 4) return LSTM_E_FORMAT;
    *v = lstm_get_u32(r->p + r->pos);
    r->pos += 4;
    return 0;
}

static int get_str(rd *r, const char **s, uint32_t *n)
{
    int e = get_u32(r, n);
    if (e) return e;
    if (r->len - r->pos < *n) return LSTM_E_FORMAT;
    *s = (const char *)r->p + r->pos;
    r->pos += *n;
    return 0;
}

/* A table entry from a blob: non-empty, valid UTF-8, no NUL, not already present. */
static int load_piece(strtab *t, const char *s, uint32_t n)
{
    uint32_t h, idx;
    if (n == 0 || lstm_utf8_valid_prefix(s, n) != n || memchr(s, '\0', n)) return LSTM_E_FORMAT;
    h = hash_bytes(s, n);
    if (strtab_find(t, s, n, h) >= 0) return LSTM_E_FORMAT;
    return strtab_add(t, s, n, h, &idx);
}

int lstm_tokenizer_load(lstm_tokenizer **out, const uint8_t *blob, size_t len)
{
    rd r = {blob, len, 0};
    uint32_t ver, kind, flags, V, nspk, n;
    const char *s;
    lstm_tokenizer *t = NULL;
    lstm_tokenizer_opts o = {0};
    char *unk = NULL;
    int e;
    *out = NULL;
    if (!blob || len < 4 || memcmp(blob, BLOB_MAGIC, 4)) return LSTM_E_MAGIC;
    r.pos = 4;
    if ((e = get_u32(&r, &ver))) return e;
    if (ver != LSTM_TOKENIZER_VERSION) return LSTM_E_VERSION;
    if ((e = get_u32(&r, &kind)) || (e = get_u32(&r, &flags)) || (e = get_u32(&r, &V)) || (e = get_u32(&r, &nspk)))
        return e;
    if (kind < LSTM_TOK_WORDS || kind > LSTM_TOK_CHARS || (flags & ~FLAG_KEEP_CASE) || V > MAX_IDS ||
        nspk > V || V - nspk < LSTM_NUM_SPECIAL)
        return LSTM_E_FORMAT;
    if ((e = get_str(&r, &s, &n))) return e;
    if (n > 4096 || memchr(s, '\0', n)) return LSTM_E_FORMAT;
    if (n && kind != LSTM_TOK_SPACE) return LSTM_E_FORMAT;
    if (n) {
        unk = malloc(n + 1);
        if (!unk) return LSTM_E_NOMEM;
        memcpy(unk, s, n);
        unk[n] = '\0';
    }
    o.kind = (int)kind;
    o.keep_case = !!(flags & FLAG_KEEP_CASE);
    o.unk_token = unk;
    e = lstm_tokenizer_create(&t, &o);
    free(unk);
    if (e) return e;
    /* each piece takes at least 5 bytes: reject absurd counts before allocating for them */
    if ((uint64_t)nspk * 5 > r.len - r.pos) {
        e = LSTM_E_FORMAT;
        goto fail;
    }
    for (uint32_t i = 0; i < nspk; i++) {
        if ((e = get_str(&r, &s, &n))) goto fail;
        if (n < 3 || s[0] != '<' || s[n - 1] != '>') {
            e = LSTM_E_FORMAT;
            goto fail;
        }
        if ((e = load_piece(&t->spk, s, n))) goto fail;
    }
    if (kind == LSTM_TOK_BPE) {
        if ((e = get_str(&r, &s, &n))) goto fail;
        if (r.pos != r.len) {
            e = LSTM_E_FORMAT;
            goto fail;
        }
        if ((e = lstm_tokenizer_set_bpe_model(t, s, n))) goto fail;
        if ((e = finish_bpe(t))) goto fail;
        if (t->V != V) {
            e = LSTM_E_FORMAT;
            goto fail;
        }
    } else {
        uint32_t nv = V - LSTM_NUM_SPECIAL - nspk;
        if ((uint64_t)nv * 5 > r.len - r.pos) {
            e = LSTM_E_FORMAT;
            goto fail;
        }
        for (uint32_t i = 0; i < nv; i++) {
            if ((e = get_str(&r, &s, &n))) goto fail;
            if ((e = load_piece(&t->vocab, s, n))) goto fail;
        }
        if (r.pos != r.len) {
            e = LSTM_E_FORMAT;
            goto fail;
        }
        t->V = V;
    }
    t->built = 1;
    *out = t;
    return 0;
fail:
    lstm_tokenizer_free(t);
    return e;
}

int lstm_tokenizer_blob_check(const uint8_t *blob, size_t len)
{
    lstm_tokenizer *t;
    int e = lstm_tokenizer_load(&t, blob, len);
    lstm_tokenizer_free(t);
    return e;
}

int lstm_tokenizer_blob_vocab_size(const uint8_t *blob, size_t len, uint32_t *V)
{
    *V = 0;
    if (!blob || len < 4 || memcmp(blob, BLOB_MAGIC, 4)) return LSTM_E_MAGIC;
    if (len < 20) return LSTM_E_FORMAT;
    if (lstm_get_u32(blob + 4) != LSTM_TOKENIZER_VERSION) return LSTM_E_VERSION;
    *V = lstm_get_u32(blob + 16);
    return 0;
}

int lstm_tokenizer_meta_check(const lstm_meta *m, uint64_t *meta_V, uint32_t *tok_V)
{
    size_t n;
    const uint8_t *b = lstm_meta_get(m, "tokenizer", &n);
    uint64_t mv = 0;
    uint32_t tv = 0;
    int e, ke;
    if (meta_V) *meta_V = 0;
    if (tok_V) *tok_V = 0;
    if (!b) return LSTM_E_NOTFOUND;
    if ((e = lstm_tokenizer_blob_vocab_size(b, n, &tv))) return e;
    ke = lstm_meta_get_u64(m, "vocab_size", &mv);
    if (meta_V) *meta_V = mv;
    if (tok_V) *tok_V = tv;
    if (ke == LSTM_E_FORMAT || (ke == 0 && mv != tv)) return LSTM_E_VOCAB;
    return 0;
}

int lstm_tokenizer_dup(lstm_tokenizer **out, const lstm_tokenizer *t)
{
    uint8_t *b;
    size_t n;
    int e;
    *out = NULL;
    if ((e = lstm_tokenizer_serialize(t, &b, &n))) return e;
    e = lstm_tokenizer_load(out, b, n);
    free(b);
    return e;
}

int lstm_tokenizer_equal(const lstm_tokenizer *a, const lstm_tokenizer *b)
{
    uint8_t *pa, *pb;
    size_t na, nb;
    int eq;
    if (lstm_tokenizer_serialize(a, &pa, &na)) return 0;
    if (lstm_tokenizer_serialize(b, &pb, &nb)) {
        free(pa);
        return 0;
    }
    eq = na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return eq;
}

/* ------------------------------------------------------------------ metadata and files */

int lstm_tokenizer_meta_set(const lstm_tokenizer *t, lstm_meta *m)
{
    uint8_t *b;
    size_t n;
    int e = lstm_tokenizer_serialize(t, &b, &n);
    if (e) return e;
    e = lstm_meta_set(m, "tokenizer", b, n);
    free(b);
    if (!e) e = lstm_meta_set_str(m, "tokenizer_kind", lstm_tokenizer_kind_name(t->kind));
    if (!e) e = lstm_meta_set_u64(m, "vocab_size", t->V);
    if (!e) e = lstm_meta_set_u64(m, "pad_id", LSTM_PAD_ID);
    if (!e) e = lstm_meta_set_u64(m, "unk_id", LSTM_UNK_ID);
    if (!e) e = lstm_meta_set_u64(m, "bos_id", LSTM_BOS_ID);
    if (!e) e = lstm_meta_set_u64(m, "eos_id", LSTM_EOS_ID);
    return e;
}

int lstm_tokenizer_from_meta(lstm_tokenizer **out, const lstm_meta *m)
{
    size_t n;
    const uint8_t *b = lstm_meta_get(m, "tokenizer", &n);
    int e;
    *out = NULL;
    if (!b) return LSTM_E_NOTFOUND;
    if ((e = lstm_tokenizer_meta_check(m, NULL, NULL)) == LSTM_E_VOCAB) return e;
    return lstm_tokenizer_load(out, b, n);
}

int lstm_tokenizer_write_vocab(const lstm_tokenizer *t, int fd, const lstm_meta *extra)
{
    lstm_meta m;
    lstm_writer *w = NULL;
    int e;
    lstm_meta_init(&m);
    e = extra ? lstm_meta_copy(&m, extra) : 0;
    if (!e) e = lstm_tokenizer_meta_set(t, &m);
    if (!e) e = lstm_writer_open(&w, fd, LSTM_KIND_VOCB, &m, NULL);
    if (!e) e = lstm_writer_finish(w);
    lstm_writer_free(w);
    lstm_meta_free(&m);
    return e;
}

int lstm_tokenizer_load_file(lstm_tokenizer **out, const char *path)
{
    static const uint8_t ZSTD_MAGIC[4] = {0x28, 0xB5, 0x2F, 0xFD};
    uint8_t head[4];
    lstm_reader *r = NULL;
    ssize_t n;
    int fd, e;
    *out = NULL;
    fd = open(path, O_RDONLY);
    if (fd < 0) return errno == ENOENT ? LSTM_E_NOTFOUND : LSTM_E_IO;
    do {
        n = pread(fd, head, 4, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        e = LSTM_E_IO;
        goto out;
    }
    if (n < 4 || memcmp(head, ZSTD_MAGIC, 4)) {
        /* A checkpoint (not compressed, own magic) carries the training tokenizer as an entry. */
        if (lstm_ck_is_checkpoint(path)) {
            lstm_ck *ck;
            if ((e = lstm_ck_open(&ck, path))) goto out;
            const lstm_ck_entry *t = lstm_ck_find(ck, "tokenizer");
            e = t && t->type == LSTM_CK_BYTES ? lstm_tokenizer_load(out, t->data, (size_t)t->nbytes) : LSTM_E_FORMAT;
            lstm_ck_close(ck);
            goto out;
        }
        e = LSTM_E_MAGIC;
        goto out;
    }
    if ((e = lstm_reader_open(&r, fd, 0))) goto out;
    e = lstm_tokenizer_from_meta(out, lstm_reader_meta(r));
    /* read through to the end record, as every other reader does: a cut, unfinished or
     * concatenated stream gets the same verdict here as in lstm-window or lstm-dump */
    for (int k = 1; k == 1;) {
        uint8_t tag;
        const uint8_t *p;
        uint32_t len;
        k = lstm_reader_next(r, &tag, &p, &len);
        if (k < 0) e = k; /* the stream's own fault comes first */
    }
    if (e && *out) {
        lstm_tokenizer_free(*out);
        *out = NULL;
    }
    lstm_reader_free(r);
out:
    close(fd);
    return e;
}
