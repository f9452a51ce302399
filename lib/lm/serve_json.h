/* serve_json.h: the JSON lines of formats/serve.md: one request line -> an lstm_request (a line of
 * plain text, or a JSON object whose fields override the defaults), and an lstm_reply -> one line of
 * compact JSON. lstm-sample --serve, its --json output, the fuzz harness and any server share these,
 * so every front-end speaks the same protocol with the same error messages. */
#ifndef LSTM_SERVE_JSON_H
#define LSTM_SERVE_JSON_H
#include <stddef.h>

#include "engine.h"

struct json_t;

/* A parsed request and what its pointers point into. Zero-initialise; free with lstm_serve_req_free. */
typedef struct {
    lstm_request req;
    struct json_t *json;  /* the request line's JSON: req.text, req.speaker and the turns point into it */
    lstm_turn *turns;     /* (LSTM_ENGINE_MAX_TURNS) */
    char *id;             /* req.id: the "id" value as compact JSON */
    char msg[300];        /* the error message when it names a field */
} lstm_serve_req;

void lstm_serve_req_free(lstm_serve_req *q);

/* One request line (without its line end): a line whose first character after spaces and tabs is
 * '{' or '[' is JSON, anything else plain text to suggest the next words for with the defaults.
 * Fills q->req from defaults and the fields. Returns 0, or -1 with *err set to the message the reply
 * carries (q->req.id is set when the request had a valid "id", so the error reply echoes it). */
int lstm_serve_parse(lstm_serve_req *q, const lstm_request *defaults, const char *line, size_t len, const char **err);

/* r as one line of compact JSON, without a newline, into *buf (malloc'ed, grown as needed; *cap its
 * size), its length in *len: {"id":..,"mode":"suggest","suggestions":[{"word":..,"p":..},..],
 * "prefix":..,"renormalized":true}, {"id":..,"mode":"complete","completion":..,"tokens":N} or
 * {"id":..,"error":..} ("id" only when the request had one). A reply whose text is not valid UTF-8
 * becomes the error "output is not valid UTF-8". 0 or LSTM_E_NOMEM. */
int lstm_serve_format(const lstm_reply *r, char **buf, size_t *cap, size_t *len);

/* The whole of one request line: parse, answer with e, format the reply (or the error) into *buf as
 * lstm_serve_format does. 0 or LSTM_E_NOMEM. */
int lstm_serve_line(lstm_engine *e, lstm_serve_req *q, const lstm_request *defaults, const char *line, size_t len,
                    char **buf, size_t *cap, size_t *outlen);

#endif
