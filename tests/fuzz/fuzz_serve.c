/* fuzz_serve: the request lines of lstm-sample --serve (formats/serve.md) through the library's
 * engine and protocol code (engine.h, serve_json.h: the code lstm-sample and any server run), on a
 * tiny model built from the fixtures by fuzz.mk. Each input is up to 8 request lines; every reply
 * must be one line of valid JSON, an object. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "serve_json.h"

static lstm_engine E;
static lstm_request D;
static lstm_serve_req Q;
static char *out;
static size_t outcap;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *m = getenv("LSTM_FUZZ_MODEL");
    lstm_set_threads(1);
    if (lstm_engine_open(&E, m ? m : "build-fuzz/serve-model.ckpt", 8)) abort(); /* fuzz.mk sets LSTM_FUZZ_MODEL */
    lstm_request_default(&D);
    return 0;
}

static void one(const char *line, size_t len)
{
    size_t n;
    if (lstm_serve_line(&E, &Q, &D, line, len, &out, &outcap, &n)) abort();
    if (n == 0 || out[0] != '{' || memchr(out, '\n', n)) abort();
    json_error_t err;
    json_t *back = json_loadb(out, n, JSON_ALLOW_NUL, &err); /* what we send must parse */
    if (!back || !json_is_object(back)) abort();
    json_decref(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* one request per line, as lstm-sample's serve loop reads them; at most 8 per input to keep runs fast */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    size_t start = 0;
    for (int n = 0; n < 8 && start <= size; n++) {
        char *nl = memchr(buf + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - buf) : size;
        size_t len = end - start;
        if (len && buf[start + len - 1] == '\r') len--;
        one(buf + start, len);
        if (!nl) break;
        start = end + 1;
    }
    free(buf);
    return 0;
}
