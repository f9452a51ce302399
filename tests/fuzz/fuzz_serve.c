/* fuzz_serve: lstm-sample --serve request handling (formats/serve.md) on a tiny model built from the
 * fixtures by fuzz.mk. The request code lives in tools/sample/lstm-sample.c; rather than move it,
 * the harness compiles that file with its main renamed and drives the same functions serve() calls.
 * Each input is up to 8 request lines; every reply must be one line of valid JSON, an object. */
#define main lstm_sample_main
#include "../../tools/sample/lstm-sample.c"
#undef main

static engine E;
static opts_t O;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memset(&O, 0, sizeof O);
    O.d.k = 5;
    O.d.max_new = 30;
    O.d.alpha = 1.0f;
    O.d.seed = 1;
    O.beam_words = 8;
    lstm_sampler_opts_default(&O.d.so);
    const char *m = getenv("LSTM_FUZZ_MODEL");
    O.model = m ? m : "build-fuzz/serve-model.ckpt"; /* fuzz.mk sets LSTM_FUZZ_MODEL */
    lstm_set_threads(1);
    engine_init(&E, &O);
    return 0;
}

static void one(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    req_t d = O.d;
    json_t *res = i < len && (line[i] == '{' || line[i] == '[') ? handle_json(&E, &O.d, line, len)
                                                              : reply_suggest(&E, &d, line, len);
    if (!res) res = json_pack("{s:s}", "error", "output is not valid UTF-8");
    if (!res || !json_is_object(res)) abort();
    char *s = json_dumps(res, JSON_COMPACT);
    if (!s || strchr(s, '\n')) abort();
    json_error_t err;
    json_t *back = json_loads(s, JSON_ALLOW_NUL, &err); /* what we send must parse */
    if (!back) abort();
    json_decref(back);
    free(s);
    json_decref(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* one request per line, as serve() reads them; at most 8 per input to keep runs fast */
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
