/* serve_json.c: formats/serve.md's request and reply lines over jansson (serve_json.h). */
#include "serve_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "json.h"
#include "utf8.h"

void lstm_serve_req_free(lstm_serve_req *q)
{
    json_decref(q->json);
    free(q->turns);
    free(q->id);
    memset(q, 0, sizeof *q);
}

/* An integer field's value as an int, clamped to [lo - 1, hi + 1] (out of range stays out of range
 * for lstm_request_check, without an overflowing conversion). */
static int clamp_int(double x, int lo, int hi)
{
    return x > hi ? hi + 1 : x < lo ? lo - 1 : (int)x;
}

/* "context": [{"speaker":..,"text":..}, ...] into q->turns. NULL or the message (in q->msg). */
static const char *parse_context(lstm_serve_req *q, json_t *v)
{
    if (!json_is_array(v)) return "context must be an array of turns ({\"speaker\":..,\"text\":..})";
    size_t n = json_array_size(v), bytes = 0;
    if (n > LSTM_ENGINE_MAX_TURNS) return "context: at most 256 turns";
    if (!q->turns && !(q->turns = malloc(sizeof *q->turns * LSTM_ENGINE_MAX_TURNS))) return "out of memory";
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(v, i), *f;
        const char *key;
        if (!json_is_object(t)) {
            snprintf(q->msg, sizeof q->msg, "context[%zu] must be an object ({\"speaker\":..,\"text\":..})", i);
            return q->msg;
        }
        lstm_turn *u = &q->turns[i];
        u->speaker = u->text = NULL;
        u->len = 0;
        json_object_foreach(t, key, f) {
            if (!strcmp(key, "text")) {
                if (!json_is_string(f)) break;
                u->text = json_string_value(f);
                u->len = json_string_length(f);
            } else if (!strcmp(key, "speaker")) {
                if (!json_is_string(f) && !json_is_null(f)) break;
                u->speaker = json_string_value(f); /* NULL for null */
            } else {
                break;
            }
        }
        if (key) { /* the loop stopped at a bad field */
            if (!strcmp(key, "text") || !strcmp(key, "speaker"))
                snprintf(q->msg, sizeof q->msg, "context[%zu]: %s must be a string", i, key);
            else
                snprintf(q->msg, sizeof q->msg, "context[%zu]: unknown field \"%.*s\"", i,
                         (int)lstm_utf8_valid_prefix(key, strnlen(key, 100)), key);
            return q->msg;
        }
        if (!u->text) {
            snprintf(q->msg, sizeof q->msg, "context[%zu]: missing field \"text\"", i);
            return q->msg;
        }
        bytes += u->len;
    }
    if (bytes > LSTM_ENGINE_MAX_CONTEXT) return "context: more than 65536 bytes of text";
    q->req.context = q->turns;
    q->req.ncontext = n;
    return NULL;
}

/* A JSON request object: fields override the defaults already in q->req. NULL or the message. */
static const char *parse_fields(lstm_serve_req *q, json_t *j)
{
    lstm_request *r = &q->req;
    const char *key, *text = NULL;
    json_t *v;
    size_t tlen = 0;
    int sampling = 0; /* the request names greedy, top_k or top_p */
    json_object_foreach(j, key, v) {
        int isnum = json_is_number(v), isint = json_is_integer(v);
        double x = isnum ? json_number_value(v) : 0;
        const char *bad = NULL;
        if (!strcmp(key, "text")) {
            if (!json_is_string(v)) return "text must be a string";
            text = json_string_value(v);
            tlen = json_string_length(v);
        } else if (!strcmp(key, "id")) {
            /* read first (an error reply echoes it) */
        } else if (!strcmp(key, "context")) {
            if ((bad = parse_context(q, v))) return bad;
        } else if (!strcmp(key, "mode")) {
            const char *m = json_is_string(v) ? json_string_value(v) : "";
            if (!strcmp(m, "suggest")) r->mode = LSTM_MODE_SUGGEST;
            else if (!strcmp(m, "complete")) r->mode = LSTM_MODE_COMPLETE;
            else if (!strcmp(m, "fill")) r->mode = LSTM_MODE_FILL;
            else return "mode must be \"suggest\", \"complete\" or \"fill\"";
        } else if (!strcmp(key, "speaker")) {
            if (json_is_null(v)) r->speaker = NULL;
            else if (!json_is_string(v)) return "speaker must be a string";
            else r->speaker = json_string_value(v);
        } else if (!strcmp(key, "k")) {
            if (!isint) return "k must be an integer";
            r->k = clamp_int(x, 1, LSTM_ENGINE_MAX_K);
        } else if (!strcmp(key, "max_new")) {
            if (!isint) return "max_new must be an integer";
            r->max_new = clamp_int(x, 0, LSTM_ENGINE_MAX_NEW);
        } else if (!strcmp(key, "top_k")) {
            if (!isint) return "top_k must be an integer";
            r->so.top_k = x > 1e9 ? 1000000000 : clamp_int(x, 0, 1000000000);
            sampling = 1;
        } else if (!strcmp(key, "beam")) {
            if (!isint) return "beam must be an integer";
            r->beam = clamp_int(x, 0, 1000);
        } else if (!strcmp(key, "seed")) {
            if (!isint || x < 0) return "seed must be a non-negative integer";
            r->seed = (unsigned long long)json_integer_value(v);
        } else if (!strcmp(key, "temperature")) {
            if (!isnum) return "temperature must be a number";
            r->so.temperature = (float)x;
        } else if (!strcmp(key, "top_p")) {
            if (!isnum) return "top_p must be a number";
            r->so.top_p = (float)x;
            sampling = 1;
        } else if (!strcmp(key, "repetition_penalty")) {
            if (!isnum) return "repetition_penalty must be a number";
            r->so.repetition_penalty = (float)x;
        } else if (!strcmp(key, "greedy")) {
            if (!json_is_boolean(v)) return "greedy must be true or false";
            if (json_is_true(v)) r->so.temperature = 0, sampling = 1;
        } else {
            /* (cut at a character boundary: the reply must stay UTF-8) */
            snprintf(q->msg, sizeof q->msg, "unknown field \"%.*s\"", (int)lstm_utf8_valid_prefix(key, strnlen(key, 100)), key);
            return q->msg;
        }
    }
    if (!text) return "missing field \"text\"";
    if (r->beam > 0 && sampling) return "beam excludes greedy, top_k and top_p";
    const char *bad = lstm_request_check(r);
    if (bad) return bad;
    if (r->so.temperature < LSTM_TEMP_MIN) r->so.temperature = 0; /* greedy, as --temperature */
    r->text = text;
    r->len = tlen;
    return NULL;
}

int lstm_serve_parse(lstm_serve_req *q, const lstm_request *defaults, const char *line, size_t len, const char **err)
{
    json_decref(q->json);
    q->json = NULL;
    q->req = *defaults;
    q->req.id = NULL;
    q->req.id_len = 0;
    q->req.context = NULL;
    q->req.ncontext = 0;
    *err = NULL;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i == len || (line[i] != '{' && line[i] != '[')) { /* plain text: suggest, with the defaults */
        q->req.mode = LSTM_MODE_SUGGEST;
        q->req.text = line;
        q->req.len = len;
        return 0;
    }
    json_error_t jerr;
    /* A field given twice is an error (jansson would keep the last one), like an unknown field. */
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        lstm_json_error_message(&jerr, q->msg, sizeof q->msg);
        *err = q->msg;
        return -1;
    }
    q->json = j;
    if (!json_is_object(j)) {
        *err = "a request is a JSON object or a line of plain text";
        return -1;
    }
    json_t *id = json_object_get(j, "id");
    if (id) {
        if (!json_is_string(id) && !json_is_number(id)) {
            *err = "id must be a string or a number";
            return -1;
        }
        free(q->id);
        q->id = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!q->id) {
            *err = "out of memory";
            return -1;
        }
        q->req.id = q->id;
        q->req.id_len = strlen(q->id);
    }
    *err = parse_fields(q, j);
    return *err ? -1 : 0;
}

/* The reply without its id, as a jansson value (NULL: a string in it is not valid UTF-8). */
static json_t *reply_value(const lstm_reply *r)
{
    if (r->error) return json_pack("{s:s}", "error", r->error);
    if (r->mode == LSTM_MODE_COMPLETE)
        return json_pack("{s:s,s:s,s:i}", "mode", "complete", "completion", r->completion, "tokens", r->tokens);
    json_t *arr = json_array();
    for (int i = 0; i < r->n; i++)
        json_array_append_new(arr, json_pack("{s:s%,s:f}", "word", r->sg[i].word, r->sg[i].len, "p", r->sg[i].p));
    json_t *o = json_pack("{s:s,s:o}", "mode", r->mode == LSTM_MODE_FILL ? "fill" : "suggest", "suggestions", arr);
    if (o && r->plen) {
        json_object_set_new(o, "prefix", json_stringn(r->prefix, r->plen));
        json_object_set_new(o, "renormalized", json_true());
    }
    return o;
}

static int reserve(char **buf, size_t *cap, size_t n)
{
    if (n <= *cap) return 0;
    size_t c = *cap ? *cap : 1 << 12;
    while (c < n) c *= 2;
    char *b = realloc(*buf, c);
    if (!b) return LSTM_E_NOMEM;
    *buf = b;
    *cap = c;
    return 0;
}

int lstm_serve_format(const lstm_reply *r, char **buf, size_t *cap, size_t *len)
{
    json_t *o = reply_value(r);
    if (!o) o = json_pack("{s:s}", "error", "output is not valid UTF-8");
    if (!o) return LSTM_E_NOMEM;
    /* "id" goes first, as the request gave it: {"id":ID, + the rest after its '{' */
    size_t head = r->id ? 6 + r->id_len + 1 : 0;
    int rc = reserve(buf, cap, head + 256);
    size_t m = rc ? 0 : json_dumpb(o, *buf + head, *cap - head, JSON_COMPACT);
    if (!rc && m > *cap - head && !(rc = reserve(buf, cap, head + m))) m = json_dumpb(o, *buf + head, *cap - head, JSON_COMPACT);
    json_decref(o);
    if (rc) return rc;
    if (m == 0 || m > *cap - head) return LSTM_E_NOMEM;
    if (r->id) {
        memcpy(*buf, "{\"id\":", 6);
        memcpy(*buf + 6, r->id, r->id_len);
        (*buf)[head - 1] = ','; /* over the rest's '{' */
        memmove(*buf + head, *buf + head + 1, m - 1);
        m = head + m - 1;
    }
    *len = m;
    return 0;
}

int lstm_serve_line(lstm_engine *e, lstm_serve_req *q, const lstm_request *defaults, const char *line, size_t len,
                    char **buf, size_t *cap, size_t *outlen)
{
    const char *err;
    lstm_reply rep;
    if (lstm_serve_parse(q, defaults, line, len, &err)) {
        memset(&rep, 0, sizeof rep);
        rep.error = err;
        rep.id = q->req.id;
        rep.id_len = q->req.id_len;
    } else {
        lstm_engine_run(e, &q->req, &rep);
    }
    return lstm_serve_format(&rep, buf, cap, outlen);
}
