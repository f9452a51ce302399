/* json.h: small helpers around jansson shared by the tools that read JSON. */
#ifndef LSTM_JSON_H
#define LSTM_JSON_H
#include <stddef.h>
#include <jansson.h>

/* jansson's parse error in the project's words, "malformed JSON: ...": its texts for some errors name
 * its own flags ("without JSON_ALLOW_NUL"), which mean nothing to a user. "near '...'" is kept: it
 * shows where. */
void lstm_json_error_message(const json_error_t *jerr, char *buf, size_t cap);

#endif
