/* lm.c: a checkpoint with its tokenizer as a servable language model: prompts, the word view of the
 * pieces, a prefix-reusing one-lane session, and whole-word suggestions. */
#define _GNU_SOURCE /* qsort_r */
#include "lm.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "cells.h"
#include "checkpoint.h"
#include "decode.h"
#include "mathx.h"
#include "ngram.h"
#include "stream.h"
#include "utf8.h"

/* ------------------------------------------------------------------ opening */

/* Apostrophes and hyphens join words ("don't", "e-mail"). */
static int joiner(uint32_t cp) { return cp == '\'' || cp == '-' || cp == 0x2019; }

static int is_punct_cp(uint32_t cp)
{
    if (joiner(cp)) return 0;
    if (cp < 128) return cp > ' ' && cp < 127 && !((cp | 32) >= 'a' && (cp | 32) <= 'z') && !(cp >= '0' && cp <= '9');
    return u_ispunct((UChar32)cp) != 0;
}

/* A piece's contribution to a word's text, appended to buf; returns its length. */
static size_t piece_text(const lstm_lm *lm, uint32_t id, char *buf, size_t cap)
{
    size_t n;
    const char *s = lstm_tokenizer_piece(lm->tok, id, &n);
    if (!s || id < LSTM_NUM_SPECIAL + (uint32_t)lm->S) return 0;
    if (lm->kind == LSTM_TOK_BPE) {
        unsigned v;
        if (n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' && sscanf(s + 3, "%2x", &v) == 1) {
            buf[0] = (char)v;
            return 1;
        }
        size_t o = 0;
        for (size_t i = 0; i < n && o < cap;) { /* U+2581 is a space: leading one dropped, others kept */
            if (i + 3 <= n && !memcmp(s + i, "\xE2\x96\x81", 3)) {
                if (i > 0) buf[o++] = ' ';
                i += 3;
            } else buf[o++] = s[i++];
        }
        return o;
    }
    if (n > cap) n = cap;
    memcpy(buf, s, n);
    return n;
}

/* The word view of lm->tok (lm->V ids): kind, speakers, case, the break iterator and the tables of
 * every piece's flags, role and text. */
static int lm_word_view(lstm_lm *lm, const uint8_t *blob, size_t len)
{
    lm->S = (int)lstm_tokenizer_num_speakers(lm->tok);
    lm->kind = lstm_tokenizer_kind(lm->tok);
    lm->keep_case = len > 12 && (blob[12] & 1);
    UErrorCode err = U_ZERO_ERROR;
    lm->brk = ubrk_open(UBRK_WORD, "", NULL, 0, &err);
    if (U_FAILURE(err)) {
        lm->brk = NULL;
        return LSTM_E_ICU;
    }
    lm->flags = malloc((size_t)lm->V);
    lm->wf = malloc((size_t)lm->V);
    lm->toff = malloc(sizeof *lm->toff * ((size_t)lm->V + 1));
    if (!lm->flags || !lm->wf || !lm->toff) return LSTM_E_NOMEM;
    size_t cap = 0, used = 0;
    char buf[1024];
    for (int id = 0; id < lm->V; id++) {
        unsigned f = lstm_tokenizer_piece_flags(lm->tok, (uint32_t)id);
        lm->flags[id] = (uint8_t)f;
        size_t n = piece_text(lm, (uint32_t)id, buf, sizeof buf);
        if (used + n + 1 > cap) {
            cap = (used + n + 1) * 2 + 4096;
            char *t = realloc(lm->text, cap);
            if (!t) return LSTM_E_NOMEM;
            lm->text = t;
        }
        memcpy(lm->text + used, buf, n);
        lm->toff[id] = (uint32_t)used;
        used += n;
        uint32_t cp = 0;
        int punct = n > 0 && lstm_utf8_decode(buf, n, &cp) && is_punct_cp(cp);
        uint8_t w = 0;
        if (f & (LSTM_PIECE_SPECIAL | LSTM_PIECE_SPEAKER)) w = LSTM_W_BOUND;
        else if (lm->kind == LSTM_TOK_WORDS || lm->kind == LSTM_TOK_SPACE) w = punct ? LSTM_W_PUNCT | LSTM_W_BOUND : LSTM_W_FIRST | LSTM_W_BOUND;
        else if (lm->kind == LSTM_TOK_BPE) {
            /* a bare U+2581 (n == 0) starts a word spelt by the pieces after it */
            if (f & LSTM_PIECE_WORD_START) w = LSTM_W_BOUND | (punct ? LSTM_W_PUNCT : LSTM_W_FIRST);
            else w = punct ? LSTM_W_BOUND | LSTM_W_PUNCT : LSTM_W_CONT;
        } else { /* chars */
            if (f & LSTM_PIECE_SPACE) w = LSTM_W_BOUND;
            else w = punct ? LSTM_W_BOUND | LSTM_W_PUNCT : LSTM_W_FIRST | LSTM_W_CONT;
        }
        lm->wf[id] = w;
    }
    lm->toff[lm->V] = (uint32_t)used;
    return 0;
}

int lstm_lm_open(lstm_lm *lm, const char *path)
{
    memset(lm, 0, sizeof *lm);
    int rc = lstm_modelfile_open(&lm->f, path);
    if (rc) return rc;
    lm->m = &lm->f.model;
    if ((rc = lstm_tokenizer_load(&lm->tok, lm->f.tokenizer, lm->f.tokenizer_len))) goto fail;
    rc = LSTM_E_VOCAB;
    if ((int)lstm_tokenizer_vocab_size(lm->tok) != lm->m->cfg.V) goto fail;
    lm->V = lm->m->cfg.V;
    if ((rc = lm_word_view(lm, lm->f.tokenizer, lm->f.tokenizer_len))) goto fail;
    /* Fault the mapped parameters in now (one read per page) rather than inside the first requests. */
    volatile float sink = 0;
    if (!lm->m->q_pending) /* a quantized export's are in memory already, and its fp32 copy is not for serving */
        for (size_t i = 0; i < lm->m->n_params; i += 1024) sink += lm->m->params[i];
    (void)sink;
    return 0;
fail:
    lstm_lm_close(lm);
    return rc;
}

int lstm_lm_open_tokenizer(lstm_lm *lm, const uint8_t *blob, size_t len)
{
    memset(lm, 0, sizeof *lm);
    int rc = lstm_tokenizer_load(&lm->tok, blob, len);
    if (rc) return rc;
    lm->V = (int)lstm_tokenizer_vocab_size(lm->tok);
    if ((rc = lm_word_view(lm, blob, len))) lstm_lm_close(lm);
    return rc;
}

const char *lstm_lm_weights_desc(const lstm_lm *lm, char *buf, size_t cap)
{
    if (lm->f.kind != LSTM_CK_KIND_MODEL) snprintf(buf, cap, "fp32 checkpoint");
    else if (lm->f.quant == LSTM_Q_NONE) snprintf(buf, cap, "fp32 export");
    else
        snprintf(buf, cap, "%s export (embedding, output layer%s; kernel %s)", lstm_quant_name(lm->f.quant),
                 lm->f.quant_recurrent ? " and recurrent weights" : "", lstm_quant_kernel());
    return buf;
}

int lstm_lm_open_shared(lstm_lm *lm, const lstm_lm *base)
{
    memset(lm, 0, sizeof *lm);
    if (!base->m || !base->tok) return LSTM_E_ARG;
    /* the read-only part: base's (the modelfile copied is a view: its pointers are into base's mapping) */
    lm->f = base->f;
    lm->m = base->m;
    lm->kind = base->kind;
    lm->keep_case = base->keep_case;
    lm->V = base->V;
    lm->S = base->S;
    lm->flags = base->flags;
    lm->wf = base->wf;
    lm->text = base->text;
    lm->toff = base->toff;
    lm->shared = 1;
    int rc = lstm_tokenizer_load(&lm->tok, base->f.tokenizer, base->f.tokenizer_len);
    if (!rc) {
        UErrorCode err = U_ZERO_ERROR;
        lm->brk = ubrk_open(UBRK_WORD, "", NULL, 0, &err);
        if (U_FAILURE(err)) lm->brk = NULL, rc = LSTM_E_ICU;
    }
    if (rc) lstm_lm_close(lm);
    return rc;
}

void lstm_lm_close(lstm_lm *lm)
{
    if (lm->tok) lstm_tokenizer_free(lm->tok);
    if (lm->brk) ubrk_close(lm->brk);
    if (!lm->shared) {
        if (lm->f.ck) lstm_modelfile_close(&lm->f);
        free(lm->flags);
        free(lm->wf);
        free(lm->text);
        free(lm->toff);
    }
    memset(lm, 0, sizeof *lm);
}

#define NGRAM_WHAT "an n-gram model (lstm-ngram)"

const char *lstm_lm_describe_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return "not a checkpoint";
    uint8_t b[512];
    ssize_t n = read(fd, b, sizeof b);
    const char *what = "not a checkpoint";
    lstm_ngram *ng = NULL;
    if (n == 0) what = "an empty file";
    /* lstm_ngram_load answers LSTM_E_MAGIC unless the bytes start with the n-gram magic */
    else if (n >= 8 && lstm_ngram_load(&ng, b, 8) != LSTM_E_MAGIC) what = NGRAM_WHAT;
    else if (n >= 4 && b[0] == 0x28 && b[1] == 0xB5 && b[2] == 0x2F && b[3] == 0xFD) {
        lseek(fd, 0, SEEK_SET);
        lstm_reader *r;
        what = "a compressed file";
        if (lstm_reader_open(&r, fd, 0) == 0) {
            uint32_t k = lstm_reader_kind(r);
            what = k == LSTM_KIND_WIND ? "a window stream (WIND)" : k == LSTM_KIND_TOKS ? "a token stream (TOKS)"
                 : k == LSTM_KIND_VOCB ? "a vocabulary file (VOCB)" : "another lstm stream";
            lstm_reader_free(r);
        }
    } else if (n > 0) {
        int text = 1;
        for (ssize_t i = 0; i < n; i++)
            if (b[i] == 0 || (b[i] < 32 && b[i] != '\n' && b[i] != '\r' && b[i] != '\t')) text = 0;
        if (text && lstm_utf8_valid_prefix((const char *)b, (size_t)n) + 4 >= (size_t)n) what = "a text file";
    }
    if (ng) lstm_ngram_free(ng);
    close(fd);
    return what;
}

/* "exported model" when path starts with lstm-export's magic (or its first bytes), else "checkpoint". */
static const char *container_name(const char *path)
{
    static const uint8_t model_magic[5] = {0x89, 'L', 'M', 'D', 'L'};
    uint8_t b[5];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0) close(fd);
    return n >= 2 && memcmp(b, model_magic, (size_t)n) == 0 ? "exported model" : "checkpoint";
}

const char *lstm_lm_open_message(int rc, const char *path, char *buf, size_t cap)
{
    if (rc == LSTM_E_IO) snprintf(buf, cap, "%s: %s", path, strerror(errno));
    else if (rc == LSTM_E_MAGIC) {
        const char *what = lstm_lm_describe_file(path);
        if (!strcmp(what, NGRAM_WHAT)) /* lstm-ngram samples nothing: it evaluates token streams */
            snprintf(buf, cap, "%s: %s, not an LSTM checkpoint: give -m the model written by lstm-train "
                     "(an n-gram model is evaluated with 'lstm-ngram eval -m %s TEST.tok')", path, what, path);
        else snprintf(buf, cap, "%s: not a checkpoint (%s): give -m the model written by lstm-train", path, what);
    }
    else if (rc == LSTM_E_TRUNCATED) snprintf(buf, cap, "%s: truncated %s (shorter than its header says)", path, container_name(path));
    else if (rc == LSTM_E_CORRUPT) snprintf(buf, cap, "%s: corrupted %s (checksum mismatch)", path, container_name(path));
    else if (rc == LSTM_E_NAN) snprintf(buf, cap, "%s: weights are NaN/Inf: the training that wrote it diverged", path);
    else snprintf(buf, cap, "%s: not a usable checkpoint: %s", path, lstm_strerror(rc));
    return buf;
}

const char *lstm_lm_open_error(const lstm_lm *lm, int rc, const char *path, char *buf, size_t cap)
{
    if (rc == LSTM_E_NAN && lm->f.bad_tensor[0]) {
        const char *t = lm->f.bad_tensor;
        const char *what = !strncmp(t, "optim.", 6) || !strncmp(t, "state.", 6) ? "training state is" : "weights are";
        snprintf(buf, cap, "%s: %s NaN/Inf (tensor %s): the training that wrote it diverged", path, what, t);
        return buf;
    }
    return lstm_lm_open_message(rc, path, buf, cap);
}

int lstm_lm_same_tokenizer(const lstm_lm *lm, const uint8_t *blob, size_t len)
{
    return blob && len == lm->f.tokenizer_len && !memcmp(blob, lm->f.tokenizer, len);
}

int lstm_lm_prompt(lstm_lm *lm, const char *speaker, const char *text, size_t len, lstm_ids *out)
{
    if (lm->S > 0) {
        if (!speaker) {
            size_t n;
            const char *tag = lstm_tokenizer_piece(lm->tok, LSTM_NUM_SPECIAL, &n);
            (void)tag;
            int rc = lstm_ids_push(out, LSTM_NUM_SPECIAL);
            if (!rc) rc = lstm_ids_push(out, LSTM_BOS_ID);
            if (!rc) rc = lstm_tokenizer_encode(lm->tok, text, len, out);
            return rc;
        }
        return lstm_tokenizer_encode_turn(lm->tok, speaker, text, len, out);
    }
    int rc = lstm_ids_push(out, LSTM_EOS_ID);
    return rc ? rc : lstm_tokenizer_encode(lm->tok, text, len, out);
}

/* Bytes of text looked at to find the word being typed: more than the longest word suggested. */
#define PARTIAL_WINDOW 600

static int is_space_byte(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* A word-break segment of letters, digits, kana or ideographs (not punctuation, symbols, emoji, space). */
static int wordlike(int32_t status) { return status >= UBRK_WORD_NONE_LIMIT; }

/* The one code point of the UTF-16 segment s[a, b), or -1 if it has more. */
static int32_t single_cp(const UChar *s, int32_t a, int32_t b)
{
    UChar32 c;
    U16_NEXT(s, a, b, c);
    return a == b ? c : -1;
}

int lstm_lm_partial_word(lstm_lm *lm, const char *text, size_t len, size_t *start)
{
    *start = len;
    /* Ending in whitespace: the next word is a new one (ICU would say the same, at no cost). */
    if (len == 0 || is_space_byte((unsigned char)text[len - 1])) return 0;
    /* Word boundaries always fall at ASCII whitespace, so the run after the last one is segmented
     * alone (at most PARTIAL_WINDOW bytes of it, from a character start). */
    size_t w = len;
    while (w > 0 && !is_space_byte((unsigned char)text[w - 1]) && len - w < PARTIAL_WINDOW) w--;
    while (w < len && ((unsigned char)text[w] & 0xC0) == 0x80) w++;
    /* (n16 <= len - w: a UTF-16 unit per byte at most, an invalid byte becoming one U+FFFD) */
    UChar u[PARTIAL_WINDOW];
    uint16_t off[PARTIAL_WINDOW + 1]; /* (n16 + 1) byte offset (from w) of each UTF-16 unit */
    int32_t n16 = 0;
    for (size_t i = w; i < len;) {
        uint32_t cp;
        size_t k = lstm_utf8_decode(text + i, len - i, &cp);
        if (!k) cp = 0xFFFD, k = 1; /* as the tokenizer reads invalid UTF-8 */
        off[n16] = (uint16_t)(i - w);
        if (cp > 0xFFFF) {
            u[n16++] = U16_LEAD(cp);
            off[n16] = (uint16_t)(i - w);
            u[n16++] = U16_TRAIL(cp);
        } else u[n16++] = (UChar)cp;
        i += k;
    }
    off[n16] = (uint16_t)(len - w);
    /* The segments of the run: starts a[], rule statuses st[]. */
    int32_t a[PARTIAL_WINDOW + 1], st[PARTIAL_WINDOW];
    int ns = 0;
    UErrorCode err = U_ZERO_ERROR;
    ubrk_setText(lm->brk, u, n16, &err);
    if (U_FAILURE(err)) return LSTM_E_ICU;
    for (int32_t p = ubrk_first(lm->brk), q = ubrk_next(lm->brk); q != UBRK_DONE; p = q, q = ubrk_next(lm->brk)) {
        a[ns] = p;
        st[ns++] = ubrk_getRuleStatus(lm->brk);
    }
    ubrk_setText(lm->brk, NULL, 0, &err); /* drop the pointer into our stack */
    if (ns == 0) return 0;
    a[ns] = n16;
    int last = ns - 1;
    /* "don'" is the start of "don't" (one segment once the next letter comes), not "don" + "'". */
    if (!wordlike(st[last]) && last > 0 && wordlike(st[last - 1])) {
        int32_t c = single_cp(u, a[last], a[last + 1]);
        if (c == '\'' || c == 0x2019 || (c == '-' && lm->kind != LSTM_TOK_WORDS)) last--;
        else return 0;
    } else if (!wordlike(st[last])) {
        return 0; /* punctuation, a symbol or an emoji: the next word is a new one */
    }
    int first = last;
    if (lm->kind != LSTM_TOK_WORDS) {
        /* BPE, character and space models spell "e-mail" and "don't" as one word (lstm_lm.wf): joined
         * segments are one partial word... */
        while (first >= 2 && wordlike(st[first - 2]) && !wordlike(st[first - 1])) {
            int32_t c = single_cp(u, a[first - 1], a[first]);
            if (c != '\'' && c != 0x2019 && c != '-') break;
            first -= 2;
        }
    }
    int32_t s16 = a[first];
    if (lm->kind != LSTM_TOK_WORDS) {
        /* ...and punctuation inside an ICU word ends theirs ("3.1", "a@b" -> "1", "b"). */
        for (int32_t i = s16; i < n16;) {
            UChar32 c;
            int32_t j = i;
            U16_NEXT(u, j, n16, c);
            if (is_punct_cp((uint32_t)c)) s16 = j;
            i = j;
        }
    }
    *start = w + off[s16];
    return 0;
}

const char *lstm_lm_speaker_names(const lstm_lm *lm, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap == 0) return buf;
    buf[0] = 0;
    for (int i = 0; i < lm->S; i++) {
        size_t n;
        const char *t = lstm_tokenizer_piece(lm->tok, LSTM_NUM_SPECIAL + (uint32_t)i, &n);
        if (!t) continue;
        if (n >= 2 && t[0] == '<' && t[n - 1] == '>') t++, n -= 2;
        /* room for this name and, after it, the count of the rest */
        char more[48];
        int nm = i + 1 < lm->S ? snprintf(more, sizeof more, ", ... (%d more)", lm->S - i - 1) : 0;
        if (used + (used ? 2 : 0) + n + (size_t)nm + 1 > cap) {
            snprintf(more, sizeof more, "%s... (%d more)", used ? ", " : "", lm->S - i);
            if (used + strlen(more) + 1 <= cap) memcpy(buf + used, more, strlen(more) + 1);
            return buf;
        }
        if (used) memcpy(buf + used, ", ", 2), used += 2;
        memcpy(buf + used, t, n);
        used += n;
        buf[used] = 0;
    }
    return buf;
}

int lstm_lm_normalize(const lstm_lm *lm, const char *s, size_t n, char *out, size_t cap, size_t *outn)
{
    UChar a[512], b[1024];
    int32_t na, nb, no;
    UErrorCode err = U_ZERO_ERROR;
    if (lm->kind == LSTM_TOK_SPACE) { /* no normalisation */
        if (n + 1 > cap) return LSTM_E_TOOBIG;
        memcpy(out, s, n);
        out[n] = 0;
        *outn = n;
        return 0;
    }
    if (n > 500) return LSTM_E_TOOBIG;
    u_strFromUTF8Lenient(a, 512, &na, s, (int32_t)n, &err);
    if (U_FAILURE(err)) return LSTM_E_ICU;
    const UNormalizer2 *nm = lm->keep_case ? unorm2_getNFKCInstance(&err) : unorm2_getNFKCCasefoldInstance(&err);
    if (U_FAILURE(err)) return LSTM_E_ICU;
    nb = unorm2_normalize(nm, a, na, b, 1024, &err);
    if (U_FAILURE(err)) return err == U_BUFFER_OVERFLOW_ERROR ? LSTM_E_TOOBIG : LSTM_E_ICU;
    u_strToUTF8(out, (int32_t)cap, &no, b, nb, &err);
    if (U_FAILURE(err) || (size_t)no + 1 > cap) return LSTM_E_TOOBIG;
    out[no] = 0;
    *outn = (size_t)no;
    return 0;
}

int lstm_lm_starts_word(const lstm_lm *lm, uint32_t prev, uint32_t id)
{
    if (id >= (uint32_t)lm->V) return 0;
    unsigned f = lm->flags[id], pf = prev < (uint32_t)lm->V ? lm->flags[prev] : LSTM_PIECE_SPECIAL;
    if (id != LSTM_UNK_ID && (f & (LSTM_PIECE_SPECIAL | LSTM_PIECE_SPEAKER))) return 0;
    if (f & LSTM_PIECE_SPACE) return 0;
    int after_boundary = (prev != LSTM_UNK_ID && (pf & (LSTM_PIECE_SPECIAL | LSTM_PIECE_SPEAKER))) || (pf & LSTM_PIECE_SPACE);
    switch (lm->kind) {
    case LSTM_TOK_SPACE: return 1;
    case LSTM_TOK_WORDS: return !(lm->wf[id] & LSTM_W_PUNCT) || after_boundary;
    case LSTM_TOK_BPE: return (f & LSTM_PIECE_WORD_START) || after_boundary;
    default: return after_boundary;
    }
}

/* ------------------------------------------------------------------ session */

int lstm_session_init(lstm_session *s, const lstm_lm *lm, size_t cap)
{
    memset(s, 0, sizeof *s);
    const lstm_model *m = lm->m;
    size_t LH = (size_t)m->cfg.L * m->cfg.H;
    int rc;
    s->lm = lm;
    s->cap = cap < 1 ? 1 : cap;
    if ((rc = lstm_infer_alloc(&s->inf, m, 1)) || (rc = lstm_infer_alloc(&s->seq, m, LSTM_SESSION_CHUNK)) ||
        (rc = lstm_state_alloc(&s->st, m, 1))) {
        lstm_session_free(s);
        return rc;
    }
    s->logits = malloc(sizeof *s->logits * (size_t)m->cfg.V);
    s->ids = malloc(sizeof *s->ids * s->cap);
    s->hs = malloc(sizeof *s->hs * s->cap * LH);
    s->cs = malloc(sizeof *s->cs * s->cap * LH);
    if (!s->logits || !s->ids || !s->hs || !s->cs) {
        lstm_session_free(s);
        return LSTM_E_NOMEM;
    }
    return 0;
}

void lstm_session_free(lstm_session *s)
{
    lstm_infer_free(&s->inf);
    lstm_infer_free(&s->seq);
    lstm_state_free(&s->st);
    free(s->logits);
    free(s->ids);
    free(s->hs);
    free(s->cs);
    memset(s, 0, sizeof *s);
}

void lstm_session_reset(lstm_session *s) { s->n = 0; }

static int session_feed(lstm_session *s, const uint32_t *ids, size_t n, int logits);

int lstm_session_feed(lstm_session *s, const uint32_t *ids, size_t n) { return session_feed(s, ids, n, 1); }

int lstm_session_feed_state(lstm_session *s, const uint32_t *ids, size_t n) { return session_feed(s, ids, n, 0); }

static int session_feed(lstm_session *s, const uint32_t *ids, size_t n, int logits)
{
    if (n == 0) return LSTM_E_ARG;
    if (n > s->cap) {
        ids += n - s->cap;
        n = s->cap;
    }
    size_t LH = (size_t)s->st.L * s->st.H, c = 0;
    while (c < n && c < s->n && s->ids[c] == ids[c]) c++;
    if (c == n) c--; /* the last id runs again: its logits were not kept */
    if (c == 0) lstm_state_zero(&s->st);
    else {
        memcpy(s->st.h, s->hs + (c - 1) * LH, LH * sizeof(float));
        memcpy(s->st.c, s->cs + (c - 1) * LH, LH * sizeof(float));
        /* the attention's memory: the top layer after each of the kept ids (they start from zero) */
        lstm_state_set_memory(&s->st, 0, s->hs + (size_t)(s->st.L - 1) * s->st.H, LH, (int)c);
    }
    s->n = c;
    for (size_t i = c; i < n;) {
        /* several new ids: layer by layer, the input projections of a chunk in one GEMM */
        size_t k = n - i < LSTM_SESSION_CHUNK ? n - i : LSTM_SESSION_CHUNK;
        float *lg = i + k == n && logits ? s->logits : NULL;
        int rc = k == 1 ? lstm_infer_step(&s->inf, &s->st, &ids[i], lg)
                        : lstm_infer_seq(&s->seq, &s->st, &ids[i], (int)k, s->hs + i * LH, s->cs + i * LH, lg);
        if (rc) return rc;
        if (k == 1) {
            memcpy(s->hs + i * LH, s->st.h, LH * sizeof(float));
            memcpy(s->cs + i * LH, s->st.c, LH * sizeof(float));
        }
        memcpy(s->ids + i, ids + i, k * sizeof *ids);
        i += k;
        s->n = i;
    }
    return 0;
}

/* ------------------------------------------------------------------ suggestions */

static const char *wtext(const lstm_lm *lm, uint32_t id, size_t *n)
{
    *n = lm->toff[id + 1] - lm->toff[id];
    return lm->text + lm->toff[id];
}

const char *lstm_lm_piece_text(const lstm_lm *lm, uint32_t id, size_t *n)
{
    if (id >= (uint32_t)lm->V) {
        *n = 0;
        return "";
    }
    return wtext(lm, id, n);
}

unsigned lstm_lm_piece_word_role(const lstm_lm *lm, uint32_t prev, uint32_t id)
{
    if (id >= (uint32_t)lm->V) return 0;
    unsigned w = lm->wf[id], f = lm->flags[id], r = 0;
    int prev_bound = prev == LSTM_PAD_ID || (prev < (uint32_t)lm->V && (lm->wf[prev] & LSTM_W_BOUND));
    if ((w & LSTM_W_CONT) && !(f & LSTM_PIECE_WORD_START)) r |= LSTM_LM_ROLE_CONT;
    /* (a bare U+2581 piece starts a word too: the one spelt by the pieces after it) */
    if ((w & LSTM_W_FIRST) && (lm->kind != LSTM_TOK_CHARS || prev_bound)) r |= LSTM_LM_ROLE_START;
    if (!(f & (LSTM_PIECE_SPECIAL | LSTM_PIECE_SPEAKER | LSTM_PIECE_SPACE)) && lm->toff[id + 1] > lm->toff[id])
        r |= LSTM_LM_ROLE_TEXT;
    if (w & LSTM_W_PUNCT) r |= LSTM_LM_ROLE_PUNCT;
    return r;
}

static int cmp_text(const void *a, const void *b, void *arg)
{
    const lstm_lm *lm = arg;
    size_t na, nb;
    const char *sa = wtext(lm, *(const uint32_t *)a, &na), *sb = wtext(lm, *(const uint32_t *)b, &nb);
    int c = memcmp(sa, sb, na < nb ? na : nb);
    if (c) return c;
    if (na != nb) return na < nb ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

int lstm_suggester_init(lstm_suggester *g, const lstm_lm *lm, int kmax, int W, const uint8_t *banned)
{
    memset(g, 0, sizeof *g);
    int word_model = lm->kind == LSTM_TOK_WORDS || lm->kind == LSTM_TOK_SPACE;
    if (kmax < 1 || W < 1 || (!lm->m && !word_model)) return LSTM_E_ARG; /* the beam runs the model */
    int V = lm->V, rc = LSTM_E_NOMEM;
    g->lm = lm;
    g->kmax = kmax;
    g->W = W;
    g->banned = banned;
    g->max_pieces = lm->kind == LSTM_TOK_CHARS ? 24 : 10;
    g->work = malloc(sizeof *g->work * (size_t)V);
    g->idx = malloc(sizeof *g->idx * (size_t)(V > 2 * W ? V : 2 * W));
    if (!g->work || !g->idx) goto fail;
    if (word_model && lm->m && lm->m->cfg.softmax == LSTM_SOFTMAX_ADAPTIVE) {
        g->lazy = malloc(sizeof *g->lazy * (size_t)V);
        g->ahead = malloc(sizeof *g->ahead * lstm_asm_row_scratch(&lm->m->as));
        if (!g->lazy || !g->ahead) goto fail;
    }
    if (word_model) {
        g->sorted = malloc(sizeof *g->sorted * (size_t)V);
        g->excl = malloc(sizeof *g->excl * (size_t)V);
        if (!g->sorted || !g->excl) goto fail;
        for (int id = 0; id < V; id++) {
            size_t n;
            wtext(lm, (uint32_t)id, &n);
            if ((lm->wf[id] & LSTM_W_FIRST) && !(banned && banned[id]) && n > 0 && n < LSTM_WORD_MAX)
                g->sorted[g->nsorted++] = (uint32_t)id;
            else g->excl[g->nexcl++] = (uint32_t)id;
        }
        qsort_r(g->sorted, g->nsorted, sizeof *g->sorted, cmp_text, (void *)lm);
    } else {
        g->capfound = W * g->max_pieces + 1;
        g->found = malloc(sizeof *g->found * (size_t)g->capfound);
        g->bound = malloc(sizeof *g->bound * (size_t)V);
        g->logits = malloc(sizeof *g->logits * (size_t)W * V);
        g->htext = malloc((size_t)W * LSTM_WORD_MAX);
        g->htext2 = malloc((size_t)W * LSTM_WORD_MAX);
        g->hlen = malloc(sizeof *g->hlen * (size_t)W);
        g->hlen2 = malloc(sizeof *g->hlen2 * (size_t)W);
        g->hlp = malloc(sizeof *g->hlp * (size_t)W);
        g->hlp2 = malloc(sizeof *g->hlp2 * (size_t)W);
        g->par = malloc(sizeof *g->par * (size_t)W);
        g->feed = malloc(sizeof *g->feed * (size_t)W);
        if (!g->found || !g->bound || !g->logits || !g->htext || !g->htext2 || !g->hlen || !g->hlen2 || !g->hlp ||
            !g->hlp2 || !g->par || !g->feed)
            goto fail;
        for (int id = 0; id < V; id++)
            if (lm->wf[id] & LSTM_W_BOUND) g->bound[g->nbound++] = (uint32_t)id;
        if ((rc = lstm_infer_alloc(&g->inf, lm->m, W)) || (rc = lstm_state_alloc(&g->st, lm->m, W)) ||
            (rc = lstm_state_alloc(&g->tmp, lm->m, W)))
            goto fail;
    }
    return 0;
fail:
    lstm_suggester_free(g);
    return rc;
}

void lstm_suggester_free(lstm_suggester *g)
{
    free(g->work);
    free(g->idx);
    free(g->lazy);
    free(g->ahead);
    free(g->topv);
    free(g->sorted);
    free(g->excl);
    free(g->found);
    free(g->bound);
    free(g->logits);
    free(g->htext);
    free(g->htext2);
    free(g->hlen);
    free(g->hlen2);
    free(g->hlp);
    free(g->hlp2);
    free(g->par);
    free(g->feed);
    for (size_t i = 0; i < g->nban; i++) free(g->ban[i]);
    free(g->ban);
    if (g->inf.block) lstm_infer_free(&g->inf);
    if (g->st.h) lstm_state_free(&g->st);
    if (g->tmp.h) lstm_state_free(&g->tmp);
    memset(g, 0, sizeof *g);
}

int lstm_suggester_ban_word(lstm_suggester *g, const char *w, size_t n)
{
    char **b = realloc(g->ban, sizeof *b * (g->nban + 1));
    if (!b) return LSTM_E_NOMEM;
    g->ban = b;
    if (!(b[g->nban] = malloc(n + 1))) return LSTM_E_NOMEM;
    memcpy(b[g->nban], w, n);
    b[g->nban][n] = 0;
    g->nban++;
    return 0;
}

static int is_banned_word(const lstm_suggester *g, const char *w, size_t n)
{
    for (size_t i = 0; i < g->nban; i++)
        if (strlen(g->ban[i]) == n && !memcmp(g->ban[i], w, n)) return 1;
    return 0;
}

int lstm_suggester_word_banned(const lstm_suggester *g, const uint32_t *ids, size_t n, size_t from)
{
    if (g->nban == 0 || n <= from) return 0;
    const uint8_t *wf = g->lm->wf;
    size_t j = n;
    while (j > 0 && (wf[ids[j - 1]] & LSTM_W_CONT)) j--;
    if (j > 0 && (wf[ids[j - 1]] & LSTM_W_FIRST) && !(wf[ids[j - 1]] & LSTM_W_CONT)) j--;
    if (j == n || !(wf[ids[j]] & LSTM_W_FIRST)) return 0;
    char w[LSTM_WORD_MAX];
    size_t len = 0;
    for (size_t i = j; i < n; i++) {
        size_t pn;
        const char *pt = wtext(g->lm, ids[i], &pn);
        if (len + pn >= sizeof w) return 0; /* longer than any word the suggester knows */
        memcpy(w + len, pt, pn);
        len += pn;
    }
    return is_banned_word(g, w, len);
}

/* -1 / 0 / 1: text sorts before the words extending prefix, extends it, sorts after them. */
static int cmp_prefix(const char *s, size_t n, const char *p, size_t pn)
{
    int c = memcmp(s, p, n < pn ? n : pn);
    if (c) return c < 0 ? -1 : 1;
    return n < pn ? -1 : 0;
}

/* [lo, hi) of sorted: the words extending prefix. */
static void prefix_range(const lstm_suggester *g, const char *p, size_t pn, uint32_t *lo, uint32_t *hi)
{
    uint32_t a = 0, b = g->nsorted;
    while (a < b) { /* first with cmp >= 0 */
        uint32_t mid = a + (b - a) / 2;
        size_t n;
        const char *s = wtext(g->lm, g->sorted[mid], &n);
        if (cmp_prefix(s, n, p, pn) < 0) a = mid + 1;
        else b = mid;
    }
    *lo = a;
    b = g->nsorted;
    while (a < b) { /* first with cmp > 0 */
        uint32_t mid = a + (b - a) / 2;
        size_t n;
        const char *s = wtext(g->lm, g->sorted[mid], &n);
        if (cmp_prefix(s, n, p, pn) <= 0) a = mid + 1;
        else b = mid;
    }
    *hi = a;
}

int lstm_suggest_lazy(const lstm_suggester *g) { return g->lazy != NULL; }

/* Cluster of id in the adaptive softmax s, -1 for the shortlist. */
static int asm_cluster_of(const lstm_asm_shape *s, uint32_t id)
{
    int c = -1;
    while (c + 1 < s->n && (uint32_t)s->cut[c + 1] <= id) c++;
    return c;
}

#define LAZY_MAX_WANT 64 /* more suggestions asked: every cluster is computed */

/* Keeps g->topv (g->ntopv of them, decreasing) the want (<= LAZY_MAX_WANT) largest of itself and
 * x[idx[0..n)] (decreasing). */
static void merge_top(lstm_suggester *g, const float *x, const int *idx, int n, int want)
{
    float m[LAZY_MAX_WANT];
    int a = 0, b = 0, k = 0;
    while (k < want && (a < g->ntopv || b < n))
        m[k++] = b >= n || (a < g->ntopv && g->topv[a] >= x[idx[b]]) ? g->topv[a++] : x[idx[b++]];
    memcpy(g->topv, m, (size_t)k * sizeof *m);
    g->ntopv = k;
}

/* The lazy distribution for suggest_words (see lstm_suggest): g->lazy (V) holds the exact
 * log-probabilities of the shortlist and of every cluster that can hold one of the want best eligible
 * words (no prefix) or a word of sorted[lo, hi) (a prefix), -INFINITY elsewhere. */
static const float *lazy_logprobs(lstm_suggester *g, const lstm_state *st, size_t plen, uint32_t lo, uint32_t hi,
                                  int want)
{
    const lstm_model *m = g->lm->m;
    const lstm_asm_shape *as = &m->as;
    lstm_asm_w w;
    lstm_model_asm_weights(m, &w);
    const float *x = lstm_state_out(st, 0); /* lane 0's output-layer input */
    float *lp = g->lazy, *head = g->ahead, *scr = g->ahead + as->head;
    int C0 = as->cut[0], need[LSTM_MAX_CLUSTERS] = {0};
    lstm_asm_head(as, &w, head, x);
    memcpy(lp, head, (size_t)C0 * sizeof *lp);
    for (int j = C0; j < as->V; j++) lp[j] = -INFINITY;
    if (plen) {
        for (uint32_t i = lo; i < hi; i++) {
            int c = asm_cluster_of(as, g->sorted[i]);
            if (c >= 0) need[c] = 1;
        }
    } else if (want > LAZY_MAX_WANT) {
        for (int i = 0; i < as->n; i++) need[i] = 1;
    } else {
        /* the want-th best eligible log-probability so far bounds what a cluster must beat: every word
         * of cluster i has log p <= head[C0 + i] (its in-cluster log-probability is <= 0) */
        if (!g->topv && !(g->topv = malloc(LAZY_MAX_WANT * sizeof *g->topv))) {
            for (int i = 0; i < as->n; i++) need[i] = 1;
            want = 0;
        }
        memcpy(g->work, lp, (size_t)C0 * sizeof *g->work);
        for (uint32_t i = 0; i < g->nexcl; i++)
            if (g->excl[i] < (uint32_t)C0) g->work[g->excl[i]] = -INFINITY;
        g->ntopv = 0;
        if (want > 0) merge_top(g, g->work, g->idx, lstm_topk(g->work, C0, want, g->idx), want);
        int order[LSTM_MAX_CLUSTERS];
        for (int i = 0; i < as->n; i++) order[i] = i;
        for (int i = 1; i < as->n; i++) /* by decreasing head probability: the likely clusters first */
            for (int j = i; j > 0 && head[C0 + order[j]] > head[C0 + order[j - 1]]; j--) {
                int t = order[j];
                order[j] = order[j - 1], order[j - 1] = t;
            }
        for (int r = 0; r < as->n && want > 0; r++) {
            int i = order[r], lo_id = as->cut[i], sz = as->cut[i + 1] - lo_id;
            /* 1e-5: a margin over the rounding of head + in-cluster log-probabilities */
            if (g->ntopv == want && head[C0 + i] + 1e-5f < g->topv[want - 1]) continue;
            lstm_asm_cluster(as, &w, i, lp + lo_id, x, head, scr);
            need[i] = 2;
            float *wk = g->work + lo_id;
            memcpy(wk, lp + lo_id, (size_t)sz * sizeof *wk);
            for (uint32_t e = 0; e < g->nexcl; e++)
                if (g->excl[e] >= (uint32_t)lo_id && g->excl[e] < (uint32_t)(lo_id + sz)) wk[g->excl[e] - lo_id] = -INFINITY;
            merge_top(g, wk, g->idx, lstm_topk(wk, sz, want, g->idx), want);
        }
    }
    for (int i = 0; i < as->n; i++)
        if (need[i] == 1) lstm_asm_cluster(as, &w, i, lp + as->cut[i], x, head, scr);
    return lp;
}

static int suggest_words(lstm_suggester *g, const lstm_state *st, const float *logits, const char *prefix,
                         size_t plen, int k, lstm_suggestion *out, double *mass)
{
    const lstm_lm *lm = g->lm;
    int V = lm->V, n = 0;
    uint32_t lo = 0, hi = g->nsorted;
    if (plen) prefix_range(g, prefix, plen, &lo, &hi);
    int want = k + (int)g->nban; /* banned words are dropped after selection */
    double lse = 0; /* the lazy log-probabilities are normalised */
    if (!logits) logits = lazy_logprobs(g, st, plen, lo, hi, want);
    else lse = lstm_logsumexp(logits, (size_t)V);
    int got;
    double m = 0;
    if (!plen) {
        memcpy(g->work, logits, sizeof *g->work * (size_t)V);
        for (uint32_t i = 0; i < g->nexcl; i++) g->work[g->excl[i]] = -INFINITY;
        got = lstm_topk(g->work, V, want, g->idx);
        m = 1;
    } else {
        uint32_t nr = hi - lo;
        for (uint32_t i = 0; i < nr; i++) {
            g->work[i] = logits[g->sorted[lo + i]];
            m += exp((double)g->work[i] - lse);
        }
        got = lstm_topk(g->work, (int)nr, want, g->idx);
        for (int i = 0; i < got; i++) g->idx[i] = (int)g->sorted[lo + (uint32_t)g->idx[i]];
    }
    for (int i = 0; i < got && n < k; i++) {
        size_t len;
        const char *s = wtext(lm, (uint32_t)g->idx[i], &len);
        if (is_banned_word(g, s, len)) continue;
        memcpy(out[n].word, s, len);
        out[n].word[len] = 0;
        out[n].len = len;
        out[n].p = exp((double)logits[g->idx[i]] - lse);
        if (plen) out[n].p = m > 0 ? out[n].p / m : 0;
        n++;
    }
    if (mass) *mass = m;
    return n;
}

int lstm_suggest_fill(lstm_suggester *g, const float *lf, const float *lb, const float *logprior, int k,
                      lstm_suggestion *out)
{
    if (!g->sorted || !lf || !lb || k < 1) return LSTM_E_ARG;
    const lstm_lm *lm = g->lm;
    int V = lm->V;
    double lsf = lstm_logsumexp(lf, (size_t)V), lsb = lstm_logsumexp(lb, (size_t)V), mx = -INFINITY;
    for (int i = 0; i < V; i++) g->work[i] = -INFINITY;
    for (uint32_t i = 0; i < g->nsorted; i++) {
        uint32_t id = g->sorted[i];
        size_t n;
        const char *s = wtext(lm, id, &n);
        if (g->nban && is_banned_word(g, s, n)) continue;
        double v = ((double)lf[id] - lsf) + ((double)lb[id] - lsb) - (logprior ? (double)logprior[id] : 0);
        g->work[id] = (float)v;
        if (v > mx) mx = v;
    }
    if (mx == -INFINITY) return 0;
    double z = 0; /* the normaliser over the candidates, in double */
    for (uint32_t i = 0; i < g->nsorted; i++) z += exp((double)g->work[g->sorted[i]] - mx);
    double lz = mx + log(z);
    int got = lstm_topk(g->work, V, k, g->idx), n = 0;
    for (int i = 0; i < got; i++) {
        uint32_t id = (uint32_t)g->idx[i];
        if (g->work[id] == -INFINITY) break;
        size_t len;
        const char *s = wtext(lm, id, &len);
        memcpy(out[n].word, s, len);
        out[n].word[len] = 0;
        out[n].len = len;
        out[n].p = exp((double)g->work[id] - lz);
        n++;
    }
    return n;
}

int lstm_suggest_rank(lstm_suggester *g, const float *logits, const char *prefix, size_t plen, uint32_t id, int limit)
{
    if (!g->sorted || id >= (uint32_t)g->lm->V) return limit;
    uint32_t lo = 0, hi = g->nsorted;
    if (plen) prefix_range(g, prefix, plen, &lo, &hi);
    size_t n;
    const char *s = wtext(g->lm, id, &n);
    if (!(g->lm->wf[id] & LSTM_W_FIRST) || (g->banned && g->banned[id]) || cmp_prefix(s, n, prefix, plen) != 0)
        return limit;
    float x = logits[id];
    int r = 0;
    for (uint32_t i = lo; i < hi && r < limit; i++) {
        uint32_t j = g->sorted[i];
        if (logits[j] > x || (logits[j] == x && j < id)) r++;
    }
    return r;
}

/* ---- beam over pieces ---- */

/* "help'" or "e-" is not a whole word: a joiner continues it. */
static int ends_with_joiner(const char *t, size_t n)
{
    size_t i = n - 1;
    while (i > 0 && ((unsigned char)t[i] & 0xC0) == 0x80) i--; /* back to the last code point's lead byte */
    uint32_t cp;
    return lstm_utf8_decode(t + i, n - i, &cp) && joiner(cp);
}

/* Consistent with the prefix: one of text, prefix extends the other. */
static int consistent(const char *t, size_t n, const char *p, size_t pn) { return !memcmp(t, p, n < pn ? n : pn); }

static void add_found(lstm_suggester *g, const char *t, size_t n, double lp)
{
    for (int i = 0; i < g->nfound; i++)
        if (g->found[i].len == n && !memcmp(g->found[i].word, t, n)) {
            g->found[i].p += exp(lp); /* another segmentation of the same word */
            return;
        }
    if (g->nfound == g->capfound) return;
    lstm_suggestion *f = &g->found[g->nfound++];
    memcpy(f->word, t, n);
    f->word[n] = 0;
    f->len = n;
    f->p = exp(lp);
}

static int cmp_sugg(const void *a, const void *b)
{
    const lstm_suggestion *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return strcmp(x->word, y->word);
}

/* k-th best finished probability so far (0 if fewer than k). */
static double kth_found(const lstm_suggester *g, int k)
{
    if (g->nfound < k) return 0;
    /* small lists: count how many are above each candidate */
    double best = 0;
    for (int i = 0; i < g->nfound; i++) {
        int above = 0;
        for (int j = 0; j < g->nfound; j++)
            if (g->found[j].p > g->found[i].p) above++;
        if (above < k && (best == 0 || g->found[i].p < best)) best = g->found[i].p;
    }
    return best;
}

static int suggest_beam(lstm_suggester *g, const lstm_state *st0, const float *logits0, const char *prefix,
                        size_t plen, int k, lstm_suggestion *out, double *mass)
{
    const lstm_lm *lm = g->lm;
    int V = lm->V, W = g->W, nlive = 1, rc;
    g->nfound = 0;
    lstm_state_zero(&g->st);
    lstm_state_copy_lane(&g->st, 0, st0, 0);
    memcpy(g->logits, logits0, sizeof *g->logits * (size_t)V);
    g->hlen[0] = 0;
    g->hlp[0] = 0;
    int want = k + (int)g->nban;
    for (int step = 0; step <= g->max_pieces && nlive > 0; step++) {
        /* candidates: (parent, piece, score), best W kept in g->par/feed/hlp2 via insertion */
        int nc = 0;
        for (int h = 0; h < nlive; h++) {
            const float *x = g->logits + (size_t)h * V;
            double lse = lstm_logsumexp(x, (size_t)V);
            const char *ht = g->htext + (size_t)h * LSTM_WORD_MAX;
            size_t hn = g->hlen[h];
            if (step > 0 && hn >= plen && hn > 0 && !ends_with_joiner(ht, hn)) { /* the word may end here */
                double pb = 0;
                for (uint32_t i = 0; i < g->nbound; i++) pb += exp((double)x[g->bound[i]] - lse);
                if (pb > 0 && !is_banned_word(g, ht, hn)) add_found(g, ht, hn, g->hlp[h] + log(pb));
            }
            if (step == g->max_pieces) continue;
            uint8_t need = step == 0 ? LSTM_W_FIRST : LSTM_W_CONT;
            for (int id = 0; id < V; id++) {
                float xv = x[id];
                g->work[id] = -INFINITY;
                if (!(lm->wf[id] & need) || (g->banned && g->banned[id])) continue;
                size_t pn;
                const char *pt = wtext(lm, (uint32_t)id, &pn);
                if ((pn == 0 && step > 0) || hn + pn >= LSTM_WORD_MAX) continue;
                if (plen > hn && !consistent(pt, pn, prefix + hn, plen - hn)) continue;
                g->work[id] = xv;
            }
            int kk = lstm_topk(g->work, V, W, g->idx);
            for (int i = 0; i < kk; i++) {
                double s = g->hlp[h] + ((double)g->work[g->idx[i]] - lse);
                /* insert into the W best (par, feed, hlp2), best first */
                int pos = nc < W ? nc : W;
                while (pos > 0 && g->hlp2[pos - 1] < s) pos--;
                if (pos >= W) continue;
                int last = nc < W ? nc : W - 1;
                for (int j = last; j > pos; j--) {
                    g->hlp2[j] = g->hlp2[j - 1];
                    g->par[j] = g->par[j - 1];
                    g->feed[j] = g->feed[j - 1];
                }
                g->hlp2[pos] = s;
                g->par[pos] = h;
                g->feed[pos] = (uint32_t)g->idx[i];
                if (nc < W) nc++;
            }
        }
        /* Words only get less likely as they grow: stop once no live hypothesis can beat the k-th. */
        double kth = kth_found(g, want);
        int keep = 0;
        for (int i = 0; i < nc; i++)
            if (exp(g->hlp2[i]) > kth) keep = i + 1;
        nlive = keep;
        if (nlive == 0) break;
        for (int i = 0; i < nlive; i++) {
            int h = g->par[i];
            size_t pn;
            const char *pt = wtext(lm, g->feed[i], &pn);
            char *d = g->htext2 + (size_t)i * LSTM_WORD_MAX;
            memcpy(d, g->htext + (size_t)h * LSTM_WORD_MAX, g->hlen[h]);
            memcpy(d + g->hlen[h], pt, pn);
            g->hlen2[i] = g->hlen[h] + pn;
            lstm_state_copy_lane(&g->tmp, i, &g->st, h);
        }
        for (int i = nlive; i < W; i++) g->feed[i] = 0;
        for (int i = 0; i < nlive; i++) {
            g->hlen[i] = g->hlen2[i];
            g->hlp[i] = g->hlp2[i];
        }
        char *tt = g->htext;
        g->htext = g->htext2;
        g->htext2 = tt;
        lstm_state ts = g->st;
        g->st = g->tmp;
        g->tmp = ts;
        if ((rc = lstm_infer_step(&g->inf, &g->st, g->feed, g->logits))) return rc;
    }
    qsort(g->found, (size_t)g->nfound, sizeof *g->found, cmp_sugg);
    double m = 0;
    for (int i = 0; i < g->nfound; i++) m += g->found[i].p;
    int n = g->nfound < k ? g->nfound : k;
    for (int i = 0; i < n; i++) {
        out[i] = g->found[i];
        if (plen && m > 0) out[i].p /= m;
    }
    if (mass) *mass = m;
    return n;
}

int lstm_suggest(lstm_suggester *g, const lstm_state *st, const float *logits, const char *prefix, size_t plen, int k,
                 lstm_suggestion *out, double *mass)
{
    if (k < 1) return 0;
    if (k > g->kmax) k = g->kmax;
    if (!logits && (!g->lazy || !st || st->B != 1)) return LSTM_E_ARG;
    if (g->sorted) return suggest_words(g, st, logits, prefix, plen, k, out, mass);
    return suggest_beam(g, st, logits, prefix, plen, k, out, mass);
}
