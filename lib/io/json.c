/* json.c: see json.h. */
#include "json.h"
#include <stdio.h>
#include <string.h>

void lstm_json_error_message(const json_error_t *jerr, char *buf, size_t cap)
{
    const char *near = strstr(jerr->text, " near ");
    const char *what = NULL;
    switch (json_error_code(jerr)) {
    case json_error_duplicate_key: what = "duplicate field"; break;
    case json_error_null_character: what = "\\u0000 is not allowed in a string"; break;
    default: what = strstr(jerr->text, "JSON_") ? "invalid JSON" : NULL;
    }
    if (what) snprintf(buf, cap, "malformed JSON: %s%s", what, near ? near : "");
    else snprintf(buf, cap, "malformed JSON: %s", jerr->text);
}
