/* utf8.c: UTF-8 validation and repair (Unicode Table 3-7 well-formed byte sequences). */
#include "utf8.h"
#include <string.h>

/* Returns the length of a well-formed sequence at s, or 0; *sub gets the length of the maximal
 * subpart (>= 1) to skip when the sequence is ill-formed. */
static size_t seq_len(const unsigned char *s, size_t len, size_t *sub, uint32_t *cp)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    uint32_t v;
    *sub = 1;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        unsigned b;
        if (i >= len) return 0;
        b = s[i];
        if (b < lo || b > hi) return 0;
        lo = 0x80;
        hi = 0xBF;
        v = v << 6 | (b & 0x3F);
        *sub = i + 1;
    }
    *cp = v;
    return need;
}

size_t lstm_utf8_valid_prefix(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, sub;
    uint32_t cp;
    while (i < len) {
        size_t n;
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= len) break;
        n = seq_len(p + i, len - i, &sub, &cp);
        if (!n) return i;
        i += n;
    }
    return len;
}

size_t lstm_utf8_sanitize(const char *s, size_t len, char *out, size_t *nbad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0, bad = 0;
    while (i < len) {
        size_t ok = lstm_utf8_valid_prefix(s + i, len - i), sub;
        uint32_t cp;
        memcpy(out + o, s + i, ok);
        o += ok;
        i += ok;
        if (i >= len) break;
        (void)seq_len(p + i, len - i, &sub, &cp);
        i += sub;
        out[o++] = (char)0xEF;
        out[o++] = (char)0xBF;
        out[o++] = (char)0xBD;
        bad++;
    }
    if (nbad) *nbad += bad;
    return o;
}

size_t lstm_utf8_decode(const char *s, size_t len, uint32_t *cp)
{
    size_t sub;
    if (!len) return 0;
    return seq_len((const unsigned char *)s, len, &sub, cp);
}

size_t lstm_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
