/* utf8.h: UTF-8 validation and repair, so every later stage can assume well-formed text. */
#ifndef LSTM_UTF8_H
#define LSTM_UTF8_H
#include <stddef.h>
#include <stdint.h>

/* Length of the longest well-formed UTF-8 prefix of s (== len when all of s is valid). */
size_t lstm_utf8_valid_prefix(const char *s, size_t len);

/* Copies s into out, replacing every maximal ill-formed subsequence (Unicode "maximal subpart"
 * practice, as ICU and WHATWG do) with U+FFFD. out must hold 3 * len bytes. Returns the bytes
 * written; *nbad (if not NULL) is increased by the number of replacements. */
size_t lstm_utf8_sanitize(const char *s, size_t len, char *out, size_t *nbad);

/* Decodes the well-formed sequence at s: returns its length (1..4) and sets *cp, or 0 if the bytes at s
 * are not a well-formed sequence (or len == 0). */
size_t lstm_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Encodes cp (< 0x110000, not a surrogate) into out (4 bytes); returns the length. */
size_t lstm_utf8_encode(uint32_t cp, char *out);

#endif
