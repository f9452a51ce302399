/* lstm-serve: next-word suggestions and completions over HTTP/1.1 (libmicrohttpd), the protocol of
 * formats/serve.md: POST /v1/suggest and /v1/complete answer one request each with lib/lm's engine
 * and serve_json (the same parse and format as lstm-sample --serve), POST /v1/events appends what a
 * person did with the suggestions to --log, GET /v1/stats sums that log as lstm-eval --keystrokes
 * counts keystrokes, GET /healthz and GET /metrics (Prometheus text) watch it, GET /v1/model describes
 * it, and GET / is a page (page.html, in the binary) that shows the suggestions as a person types and
 * reports what they do with them. A fixed pool of libmicrohttpd threads, each with its own engine;
 * the engines share one copy of the model (lstm_engine_open_shared: engine.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "prior.h"
#include "fileio.h"
#include "json.h"
#include "serve_json.h"
#include "tool.h"

#define PROG "lstm-serve"
#define die tool_die

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " -m MODEL [options]\n"
            "Serve next-word suggestions and completions from a model of lstm-train over HTTP: the JSON\n"
            "requests and replies of lstm-sample --serve (formats/serve.md), one per POST.\n"
            "\n"
            "  -m, --model FILE          checkpoint (required)\n"
            "  -l, --listen HOST:PORT    address to listen on (default 127.0.0.1:8080; port 0: any free port;\n"
            "                            [::1]:PORT for IPv6); the URL is printed on stderr\n"
            "  -j, --threads N           worker threads, each with its own buffers, sharing the model (default 2)\n"
            "      --log FILE            append the events of POST /v1/events to FILE, one JSON line each\n"
            "                            (read back at start: GET /v1/stats counts them all)\n"
            "      --max-body BYTES      larger request bodies are refused with 413 (default 65536)\n"
            "      --timeout S           close a connection idle or stalled for S seconds (default 10)\n"
            "      --max-connections N   connections beyond N are answered 503 and closed (default 1024)\n"
            "      --cors ORIGIN         allow browser pages from ORIGIN (CORS headers; default: none)\n"
            "      --beam-words N        BPE and character models: the beam that assembles words (default 8)\n"
            "      --cache N             mix a continuous cache of the conversation's last N (state, next token)\n"
            "                            pairs into the predictions, as lstm-sample --cache (default 0: off)\n"
            "      --cache-theta T       the match's sharpness, >= 0 (default 0.3)\n"
            "      --cache-lambda L      the cache's weight, 0 to 1 (default 0.1)\n"
            "      --backward FILE       the right-to-left model (lstm-window --reverse windows, the same vocabulary)\n"
            "                            that POST /v1/fill reads the text after the gap with\n"
            "      --prior TOKENS        fill: divide the score by p(w), the word's frequency in TOKENS (the\n"
            "                            training tokens), as lstm-sample --prior (word models)\n"
            "  -q, --quiet               no warnings\n"
            "  -v, --verbose             the model, and the requests served at exit, on stderr\n"
            "  -h, --help                this help\n"
            "  -V, --version             version\n"
            "\n"
            "Endpoints: POST /v1/suggest, POST /v1/complete, POST /v1/fill (with --backward), POST /v1/events,\n"
            "GET /v1/stats, GET /v1/model,\n"
            "GET /healthz, GET /metrics; GET / is a page to try the model in a browser (open the URL printed).\n"
            "SIGINT or SIGTERM: stop accepting, finish the requests in flight, exit 0.\n"
            "\n"
            "Examples:\n"
            "  lstm-tok < chats.csv | lstm-window -L 15 | lstm-train -o chat.ckpt\n"
            "  " PROG " -m chat.ckpt --log events.jsonl &\n"
            "  curl -s localhost:8080/v1/suggest -d '{\"text\":\"hi, i need help with my \",\"k\":3}'\n"
            "  curl -s localhost:8080/v1/complete -d '{\"text\":\"sure, please\",\"speaker\":\"agent\"}'\n"
            "  " PROG " -m chat.ckpt --cache 200 --cache-theta 0.3 --cache-lambda 0.2   (the conversation's words)\n"
            "  " PROG " -m chat.ckpt --backward chat-bwd.ckpt &\n"
            "  curl -s localhost:8080/v1/fill -d '{\"text\":\"i want to ___ my order\",\"k\":3}'\n");
}

/* ---- endpoints and their counters ---- */
enum { EP_SUGGEST, EP_COMPLETE, EP_FILL, EP_EVENTS, EP_STATS, EP_HEALTHZ, EP_METRICS, EP_MODEL, EP_PAGE, EP_OTHER, EP_N };
static const char *const ep_path[EP_N] = {"/v1/suggest", "/v1/complete", "/v1/fill",  "/v1/events", "/v1/stats",
                                          "/healthz",    "/metrics",     "/v1/model", "/",          "other"};
#define N_MODEL_EP 3 /* the endpoints that answer with the model: suggest, complete, fill (their modes) */

/* The page (GET /): tools/serve/page.html, assembled into the binary as it is (no copy, no escaping). */
__asm__(".section .rodata\n"
        ".balign 16\n"
        "lstm_serve_page:\n"
        ".incbin \"tools/serve/page.html\"\n"
        "lstm_serve_page_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char lstm_serve_page[], lstm_serve_page_end[];
static int ep_post(int ep) { return ep <= EP_EVENTS; }

/* Latency buckets of the model endpoints, in seconds. */
static const double lat_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define NLE (sizeof lat_le / sizeof lat_le[0])

typedef struct {
    lstm_engine e;
    lstm_serve_req q;
    char *out;
    size_t outcap;
} worker_t;

/* What a person did with the suggestions (the events of formats/serve.md), summed as lstm-eval
 * --keystrokes sums its simulated user. */
typedef struct {
    long events, shown, accepted, ignored, typed_words;
    double keys_with, keys_without;
    double *lat; /* (nlat) latency_ms of shown events, in arrival order */
    size_t nlat, latcap;
} stats_t;

static struct {
    const char *model;
    lstm_request d;
    size_t max_body;
    unsigned max_conn, timeout;
    const char *cors;
    int V;
    const char *tok_kind, *cell;
    char *model_json; /* GET /v1/model */
    worker_t *w;
    int nw, next_w;
    pthread_mutex_t w_mu;
    /* --log and the stats, under log_mu */
    int log_fd;
    pthread_mutex_t log_mu;
    stats_t st;
    atomic_int draining; /* after the signal: every reply closes its connection */
    atomic_uint conns;
    atomic_int inflight;
    atomic_ullong req[EP_N], err[EP_N];
    atomic_ullong lat_bucket[N_MODEL_EP][NLE + 1], lat_sum_ns[N_MODEL_EP]; /* suggest, complete, fill */
} S = {.w_mu = PTHREAD_MUTEX_INITIALIZER, .log_mu = PTHREAD_MUTEX_INITIALIZER, .log_fd = -1};

static __thread worker_t *tw; /* this thread's engine, taken from S.w at its first request */

static worker_t *my_worker(void)
{
    if (!tw) {
        pthread_mutex_lock(&S.w_mu);
        if (S.next_w < S.nw) tw = &S.w[S.next_w++];
        pthread_mutex_unlock(&S.w_mu);
    }
    return tw;
}

/* ---- one request's state across the handler's calls ---- */
typedef struct {
    int ep;
    double t0;
    char *body;
    size_t len, cap;
    int too_big;  /* the body went over --max-body: the rest is dropped, the answer is 413 */
    int answered; /* a response was queued */
} req_t;

static void add_cors(struct MHD_Response *resp)
{
    if (!S.cors) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", S.cors);
    MHD_add_response_header(resp, "Vary", "Origin");
}

static enum MHD_Result respond(struct MHD_Connection *c, req_t *r, unsigned status, const char *type, const char *body,
                               size_t len, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE || atomic_load(&S.draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    add_cors(resp);
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    r->answered = 1;
    atomic_fetch_add_explicit(&S.req[r->ep], 1, memory_order_relaxed);
    if (status >= 400) atomic_fetch_add_explicit(&S.err[r->ep], 1, memory_order_relaxed);
    return ok;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, req_t *r, unsigned status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(j);
    if (!s) return respond(c, r, 500, "application/json", "{\"error\":\"out of memory\"}", 25, NULL);
    enum MHD_Result ok = respond(c, r, status, "application/json", s, strlen(s), NULL);
    free(s);
    return ok;
}

static enum MHD_Result respond_error(struct MHD_Connection *c, req_t *r, unsigned status, const char *msg,
                                     const char *allow)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return respond(c, r, status, "application/json", "{\"error\":\"bad request\"}", 23, allow);
    enum MHD_Result ok = respond(c, r, status, "application/json", s, strlen(s), allow);
    free(s);
    return ok;
}

/* The page, from memory as it is in the binary. Its script and style are inline and it talks to
 * this server only: the policy allows nothing else (no other origin, no frame, no form target). */
static enum MHD_Result page_request(struct MHD_Connection *c, req_t *r)
{
    size_t len = (size_t)(lstm_serve_page_end - lstm_serve_page);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)lstm_serve_page, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                            "frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (atomic_load(&S.draining)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    r->answered = 1;
    atomic_fetch_add_explicit(&S.req[r->ep], 1, memory_order_relaxed);
    return ok;
}

/* GET /v1/model: what the page shows and needs (the speakers for its selector), made once at start. */
static char *model_info(const lstm_engine *e, const char *path)
{
    const lstm_lm *lm = &e->lm;
    const char *base = strrchr(path, '/');
    json_t *sp = json_array();
    for (int i = 0; sp && i < lm->S; i++) {
        size_t n;
        const char *t = lstm_tokenizer_piece(lm->tok, LSTM_NUM_SPECIAL + (uint32_t)i, &n);
        if (!t) continue;
        if (n >= 2 && t[0] == '<' && t[n - 1] == '>') t++, n -= 2;
        json_array_append_new(sp, json_stringn(t, n));
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:o}", "model", base ? base + 1 : path, "tokenizer",
                          S.tok_kind, "cell", S.cell, "layers", lm->m->cfg.L, "hidden", lm->m->cfg.H, "vocab_size",
                          S.V, "speakers", sp);
    /* what changes the answers beyond the cell: peepholes, the adaptive softmax, the continuous cache */
    const lstm_model_config *mc = &lm->m->cfg;
    if (o && mc->peephole) json_object_set_new(o, "peephole", json_true());
    if (o && mc->softmax == LSTM_SOFTMAX_ADAPTIVE) {
        json_t *cut = json_array();
        for (int i = 0; cut && i < mc->n_cutoffs; i++) json_array_append_new(cut, json_integer(mc->cutoffs[i]));
        json_object_set_new(o, "softmax", json_pack("{s:s, s:o, s:f}", "kind", "adaptive", "cutoffs", cut, "div",
                                                    (double)mc->div));
    }
    if (o && e->bwd) json_object_set_new(o, "fill", json_true()); /* POST /v1/fill answers */
    if (o && e->cache_opts.N > 0)
        json_object_set_new(o, "cache", json_pack("{s:i, s:f, s:f}", "n", e->cache_opts.N, "theta",
                                                  (double)e->cache_opts.theta, "lambda", (double)e->cache_opts.lambda));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* ---- the model endpoints ---- */

/* Engine errors that are not the request's fault. */
static int server_error(const char *msg)
{
    return !strcmp(msg, "out of memory") || msg == lstm_strerror(LSTM_E_NOMEM) || msg == lstm_strerror(LSTM_E_ICU);
}

static enum MHD_Result model_request(struct MHD_Connection *c, req_t *r)
{
    worker_t *w = my_worker();
    if (!w) return respond_error(c, r, 500, "no engine for this thread", NULL);
    static const int ep_mode[N_MODEL_EP] = {LSTM_MODE_SUGGEST, LSTM_MODE_COMPLETE, LSTM_MODE_FILL};
    static const char *const mode_name[N_MODEL_EP] = {"suggest", "complete", "fill"};
    int mode = ep_mode[r->ep];
    double t0 = tool_now();
    size_t i = 0;
    while (i < r->len && strchr(" \t\r\n", r->body[i])) i++;
    /* lstm_serve_parse takes a line that is not JSON as plain text; over HTTP the body is JSON */
    if (i == r->len || r->body[i] != '{')
        return respond_error(c, r, 400, "malformed JSON: the body must be a JSON object (formats/serve.md)", NULL);
    lstm_request d = S.d;
    d.mode = mode;
    const char *err = NULL;
    char msg[160];
    lstm_reply rep;
    unsigned status = 200;
    if (lstm_serve_parse(&w->q, &d, r->body, r->len, &err)) {
        status = 400;
    } else if (w->q.req.mode != mode) {
        int q = w->q.req.mode;
        snprintf(msg, sizeof msg, "mode \"%s\" contradicts the path %s", q >= 0 && q < N_MODEL_EP ? mode_name[q] : "?",
                 ep_path[r->ep]);
        err = msg;
        status = 400;
    } else if (lstm_engine_run(&w->e, &w->q.req, &rep)) {
        status = server_error(rep.error) ? 500 : 400;
    }
    if (err) { /* the error reply of formats/serve.md: the id echoed when it was valid */
        memset(&rep, 0, sizeof rep);
        rep.error = err;
        rep.id = w->q.req.id;
        rep.id_len = w->q.req.id_len;
    }
    size_t n;
    if (lstm_serve_format(&rep, &w->out, &w->outcap, &n)) return respond_error(c, r, 500, "out of memory", NULL);
    if (n + 40 > w->outcap) {
        char *t = realloc(w->out, n + 40);
        if (!t) return respond_error(c, r, 500, "out of memory", NULL);
        w->out = t, w->outcap = n + 40;
    }
    w->out[n] = 0;
    /* a reply that is not valid UTF-8 was formatted as an error (a quote inside a word is escaped) */
    if (status == 200 && !strstr(w->out, "\"mode\":\"")) status = 500;
    if (status == 200) { /* the reply's last field: the time taken */
        long us = lrint((tool_now() - t0) * 1e6);
        n--; /* the closing brace */
        n += (size_t)snprintf(w->out + n, w->outcap - n, ",\"took_us\":%ld}", us);
        double sec = tool_now() - r->t0;
        int m = r->ep;
        size_t b = 0;
        while (b < NLE && sec > lat_le[b]) b++;
        atomic_fetch_add_explicit(&S.lat_bucket[m][b], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&S.lat_sum_ns[m], (unsigned long long)(sec * 1e9), memory_order_relaxed);
    }
    return respond(c, r, status, "application/json", w->out, n, NULL);
}

/* ---- events ---- */

static size_t cp_count(const char *s)
{
    size_t c = 0;
    for (; *s; s++) c += ((unsigned char)*s & 0xC0) != 0x80;
    return c;
}

enum { EV_SHOWN, EV_ACCEPTED, EV_IGNORED, EV_TYPED };
static const char *const ev_name[] = {"shown", "accepted", "ignored", "typed"};

/* An array of at most LSTM_ENGINE_MAX_K strings. */
static int word_list(const json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) > LSTM_ENGINE_MAX_K) return 0;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!json_is_string(x)) return 0;
    return 1;
}

/* The type of event ev, or -1 with msg set. from_log: the "ts" the server adds is allowed. */
static int event_check(json_t *ev, int from_log, char *msg, size_t cap)
{
    if (!json_is_object(ev)) return snprintf(msg, cap, "an event is a JSON object"), -1;
    json_t *ty = json_object_get(ev, "type");
    if (!ty) return snprintf(msg, cap, "event: missing field \"type\""), -1;
    int t = -1;
    for (int i = 0; i < 4; i++)
        if (json_is_string(ty) && !strcmp(json_string_value(ty), ev_name[i])) t = i;
    if (t < 0) return snprintf(msg, cap, "event: type must be \"shown\", \"accepted\", \"ignored\" or \"typed\""), -1;
    const char *tn = ev_name[t];
    const char *key;
    json_t *v;
    json_object_foreach(ev, key, v) {
        int ok;
        if (!strcmp(key, "type")) continue;
        else if (!strcmp(key, "session")) ok = json_is_string(v) && json_string_length(v) <= 256;
        else if (!strcmp(key, "id")) ok = json_is_string(v) || json_is_integer(v) || json_is_real(v);
        else if (!strcmp(key, "t")) ok = json_is_number(v) && json_number_value(v) >= 0;
        else if (!strcmp(key, "ts") && from_log) ok = json_is_number(v);
        else if (!strcmp(key, "words") && (t == EV_SHOWN || t == EV_IGNORED)) ok = word_list(v);
        else if (!strcmp(key, "prefix") && t == EV_SHOWN) ok = json_is_string(v);
        else if (!strcmp(key, "latency_ms") && t == EV_SHOWN)
            ok = json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 3.6e6;
        else if (!strcmp(key, "rank") && t == EV_ACCEPTED)
            ok = json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= LSTM_ENGINE_MAX_K;
        else if (!strcmp(key, "word") && (t == EV_ACCEPTED || t == EV_TYPED))
            ok = json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 4 * LSTM_WORD_MAX &&
                 !memchr(json_string_value(v), 0, json_string_length(v));
        else if (!strcmp(key, "typed") && t == EV_ACCEPTED) ok = json_is_integer(v) && json_integer_value(v) >= 0;
        else return snprintf(msg, cap, "event %s: unknown field \"%.40s\"", tn, key), -1;
        if (!ok) return snprintf(msg, cap, "event %s: bad value for \"%s\" (formats/serve.md)", tn, key), -1;
    }
    if (t == EV_SHOWN && !json_object_get(ev, "words")) return snprintf(msg, cap, "event shown: missing field \"words\""), -1;
    if (t == EV_ACCEPTED || t == EV_TYPED) {
        json_t *word = json_object_get(ev, "word");
        if (!word) return snprintf(msg, cap, "event %s: missing field \"word\"", tn), -1;
        if (t == EV_ACCEPTED) {
            json_t *typed = json_object_get(ev, "typed");
            if (!json_object_get(ev, "rank")) return snprintf(msg, cap, "event accepted: missing field \"rank\""), -1;
            if (!typed) return snprintf(msg, cap, "event accepted: missing field \"typed\""), -1;
            if ((size_t)json_integer_value(typed) > cp_count(json_string_value(word)))
                return snprintf(msg, cap, "event accepted: typed is more than the word's characters"), -1;
        }
    }
    return t;
}

/* Adds a checked event to the stats (under log_mu). 0 or LSTM_E_NOMEM. */
static int book_event(stats_t *s, json_t *ev, int t)
{
    s->events++;
    if (t == EV_SHOWN) {
        s->shown++;
        json_t *l = json_object_get(ev, "latency_ms");
        if (l) {
            if (s->nlat == s->latcap) {
                size_t cap = s->latcap ? 2 * s->latcap : 1024;
                double *p = realloc(s->lat, cap * sizeof *p);
                if (!p) return LSTM_E_NOMEM;
                s->lat = p, s->latcap = cap;
            }
            s->lat[s->nlat++] = json_number_value(l);
        }
    } else if (t == EV_IGNORED) {
        s->ignored++;
    } else { /* a word of n characters costs n + 1 keys typed, n + 1 - (n - j) accepted after j */
        double n = (double)cp_count(json_string_value(json_object_get(ev, "word")));
        s->typed_words++;
        s->keys_without += n + 1;
        if (t == EV_ACCEPTED) {
            s->accepted++;
            s->keys_with += (double)json_integer_value(json_object_get(ev, "typed")) + 1;
        } else {
            s->keys_with += n + 1;
        }
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k, n -= (size_t)k;
    }
    return 0;
}

static enum MHD_Result events_request(struct MHD_Connection *c, req_t *r)
{
    json_error_t jerr;
    char msg[300];
    json_t *ev = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!ev) {
        lstm_json_error_message(&jerr, msg, sizeof msg);
        return respond_error(c, r, 400, msg, NULL);
    }
    int t = event_check(ev, 0, msg, sizeof msg);
    if (t < 0) {
        json_decref(ev);
        return respond_error(c, r, 400, msg, NULL);
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json_t *line = json_pack("{s:f}", "ts", (double)now.tv_sec + now.tv_nsec / 1e9);
    char *s = NULL;
    if (line && !json_object_update(line, ev)) s = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(line);
    size_t n = s ? strlen(s) : 0;
    char *t2 = s ? realloc(s, n + 2) : NULL;
    if (!t2) {
        free(s);
        json_decref(ev);
        return respond_error(c, r, 500, "out of memory", NULL);
    }
    s = t2;
    s[n++] = '\n';
    s[n] = 0;
    int rc = 0, werr = 0;
    pthread_mutex_lock(&S.log_mu);
    /* one write(2) per event: a crash can tear the last line only, which the start-up read skips */
    if (S.log_fd >= 0 && write_all(S.log_fd, s, n)) werr = errno ? errno : EIO;
    if (!werr) rc = book_event(&S.st, ev, t);
    pthread_mutex_unlock(&S.log_mu);
    free(s);
    json_decref(ev);
    if (werr) {
        snprintf(msg, sizeof msg, "the event log cannot be written: %s", strerror(werr));
        return respond_error(c, r, 500, msg, NULL);
    }
    if (rc) return respond_error(c, r, 500, "out of memory", NULL);
    return respond(c, r, 200, "application/json", "{\"ok\":true}", 11, NULL);
}

/* The smallest latency with at least p of them at or below it (nearest rank); NaN without any. */
static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0) return NAN;
    size_t r = (size_t)ceil(p * (double)n);
    return sorted[r ? r - 1 : 0];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static json_t *num_or_null(double x) { return isnan(x) ? json_null() : json_real(x); }

static enum MHD_Result stats_request(struct MHD_Connection *c, req_t *r)
{
    pthread_mutex_lock(&S.log_mu);
    stats_t s = S.st;
    double *lat = s.nlat ? malloc(s.nlat * sizeof *lat) : NULL;
    if (lat) memcpy(lat, S.st.lat, s.nlat * sizeof *lat);
    pthread_mutex_unlock(&S.log_mu);
    if (s.nlat && !lat) return respond_error(c, r, 500, "out of memory", NULL);
    if (s.nlat) qsort(lat, s.nlat, sizeof *lat, cmp_double);
    json_t *o = json_object(), *l = json_object();
    json_object_set_new(o, "events", json_integer(s.events));
    json_object_set_new(o, "suggestions_shown", json_integer(s.shown));
    json_object_set_new(o, "accepted", json_integer(s.accepted));
    json_object_set_new(o, "ignored", json_integer(s.ignored));
    json_object_set_new(o, "typed_words", json_integer(s.typed_words));
    json_object_set_new(o, "acceptance_rate", json_real(s.typed_words ? (double)s.accepted / (double)s.typed_words : 0));
    json_object_set_new(o, "keystrokes_with", json_real(s.keys_with));
    json_object_set_new(o, "keystrokes_without", json_real(s.keys_without));
    json_object_set_new(o, "keystrokes_saved", json_real(s.keys_without > 0 ? 1 - s.keys_with / s.keys_without : 0));
    json_object_set_new(l, "n", json_integer((json_int_t)s.nlat));
    json_object_set_new(l, "p50", num_or_null(percentile(lat, s.nlat, 0.50)));
    json_object_set_new(l, "p90", num_or_null(percentile(lat, s.nlat, 0.90)));
    json_object_set_new(l, "p99", num_or_null(percentile(lat, s.nlat, 0.99)));
    json_object_set_new(o, "latency_ms", l);
    free(lat);
    return respond_json(c, r, 200, o);
}

/* ---- /metrics ---- */

static void put_label(char **p, size_t *left, const char *s)
{
    for (; *s && *left > 2; s++) {
        if (*s == '"' || *s == '\\' || *s == '\n') {
            *(*p)++ = '\\', (*left)--;
            *(*p)++ = *s == '\n' ? 'n' : *s, (*left)--;
        } else {
            *(*p)++ = *s, (*left)--;
        }
    }
    **p = 0;
}

static enum MHD_Result metrics_request(struct MHD_Connection *c, req_t *r)
{
    size_t cap = 16384, left = cap;
    char *buf = malloc(cap), *p = buf;
    if (!buf) return respond_error(c, r, 500, "out of memory", NULL);
#define OUT(...) do { int k_ = snprintf(p, left, __VA_ARGS__); if (k_ > 0 && (size_t)k_ < left) p += k_, left -= (size_t)k_; } while (0)
    /* this request counts itself: it is answered by the time the text is read */
    atomic_fetch_add_explicit(&S.req[EP_METRICS], 1, memory_order_relaxed);
    OUT("# HELP lstm_serve_requests_total Requests answered, by endpoint (\"other\": unknown paths).\n"
        "# TYPE lstm_serve_requests_total counter\n");
    for (int e = 0; e < EP_N; e++) OUT("lstm_serve_requests_total{endpoint=\"%s\"} %llu\n", ep_path[e], S.req[e] + 0ULL);
    OUT("# HELP lstm_serve_errors_total Requests answered with a status of 400 or more, by endpoint.\n"
        "# TYPE lstm_serve_errors_total counter\n");
    for (int e = 0; e < EP_N; e++) OUT("lstm_serve_errors_total{endpoint=\"%s\"} %llu\n", ep_path[e], S.err[e] + 0ULL);
    OUT("# HELP lstm_serve_request_duration_seconds Answered suggest, complete and fill requests, headers read to reply queued.\n"
        "# TYPE lstm_serve_request_duration_seconds histogram\n");
    for (int m = 0; m < N_MODEL_EP; m++) {
        unsigned long long acc = 0;
        for (size_t b = 0; b <= NLE; b++) {
            acc += S.lat_bucket[m][b];
            if (b < NLE) OUT("lstm_serve_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n", ep_path[m], lat_le[b], acc);
            else OUT("lstm_serve_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n", ep_path[m], acc);
        }
        OUT("lstm_serve_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n", ep_path[m], (double)S.lat_sum_ns[m] / 1e9);
        OUT("lstm_serve_request_duration_seconds_count{endpoint=\"%s\"} %llu\n", ep_path[m], acc);
    }
    OUT("# HELP lstm_serve_model_info The model served.\n# TYPE lstm_serve_model_info gauge\nlstm_serve_model_info{model=\"");
    put_label(&p, &left, S.model);
    OUT("\",tokenizer=\"%s\",cell=\"%s\"} 1\n", S.tok_kind, S.cell);
    OUT("# HELP lstm_serve_vocab_size Ids in the model's vocabulary.\n# TYPE lstm_serve_vocab_size gauge\n"
        "lstm_serve_vocab_size %d\n", S.V);
    OUT("# HELP lstm_serve_threads Worker threads.\n# TYPE lstm_serve_threads gauge\nlstm_serve_threads %d\n", S.nw);
    OUT("# HELP lstm_serve_connections Open connections.\n# TYPE lstm_serve_connections gauge\n"
        "lstm_serve_connections %u\n", (unsigned)S.conns);
#undef OUT
    enum MHD_Result ok = respond(c, r, 200, "text/plain; version=0.0.4; charset=utf-8", buf, (size_t)(p - buf), NULL);
    atomic_fetch_sub_explicit(&S.req[EP_METRICS], 1, memory_order_relaxed); /* respond counted it again */
    free(buf);
    return ok;
}

/* ---- the access handler ---- */

static int endpoint(const char *url)
{
    for (int e = 0; e < EP_OTHER; e++)
        if (!strcmp(url, ep_path[e])) return e;
    return EP_OTHER;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)cls, (void)version;
    req_t *r = *con_cls;
    if (!r) { /* the headers: answer now what needs no body */
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *con_cls = r;
        atomic_fetch_add(&S.inflight, 1);
        r->t0 = tool_now();
        r->ep = endpoint(url);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci && ci->socket_context)
            return respond_error(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "too many connections: try again later", NULL);
        if (r->ep == EP_OTHER) return respond_error(c, r, MHD_HTTP_NOT_FOUND, "not found (formats/serve.md lists the endpoints)", NULL);
        int post = ep_post(r->ep);
        const char *want = post ? "POST" : "GET";
        if (S.cors && !strcmp(method, "OPTIONS")) { /* a browser's preflight */
            struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (!resp) return MHD_NO;
            add_cors(resp);
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", post ? "POST, OPTIONS" : "GET, HEAD, OPTIONS");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Content-Type");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
            enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
            MHD_destroy_response(resp);
            r->answered = 1;
            atomic_fetch_add_explicit(&S.req[r->ep], 1, memory_order_relaxed);
            return ok;
        }
        if (strcmp(method, want) && (post || strcmp(method, "HEAD"))) {
            char msg[80];
            snprintf(msg, sizeof msg, "method not allowed: %s takes %s", ep_path[r->ep], want);
            const char *allow = post ? (S.cors ? "POST, OPTIONS" : "POST") : (S.cors ? "GET, HEAD, OPTIONS" : "GET, HEAD");
            return respond_error(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, msg, allow);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > S.max_body) r->too_big = 1;
        if (r->too_big) goto too_big; /* before reading any of it (curl's Expect: 100-continue gets no 100) */
        return MHD_YES;
    }
    if (*upload_data_size) { /* a piece of the body */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->answered || r->too_big) return MHD_YES;
        if (r->len + n > S.max_body) { /* no Content-Length (chunked): dropped from here on */
            r->too_big = 1;
            free(r->body);
            r->body = NULL;
            r->len = 0;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 1024;
            while (cap < r->len + n + 1) cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b) return MHD_NO;
            r->body = b, r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    if (r->answered) return MHD_YES;
    if (r->too_big) {
    too_big:;
        char msg[80];
        snprintf(msg, sizeof msg, "the body is larger than %zu bytes (--max-body)", S.max_body);
        return respond_error(c, r, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL);
    }
    switch (r->ep) {
    case EP_SUGGEST:
    case EP_COMPLETE:
    case EP_FILL: return model_request(c, r);
    case EP_EVENTS: return events_request(c, r);
    case EP_STATS: return stats_request(c, r);
    case EP_HEALTHZ: return respond(c, r, 200, "application/json", "{\"ok\":true}", 11, NULL);
    case EP_MODEL: return respond(c, r, 200, "application/json", S.model_json, strlen(S.model_json), NULL);
    case EP_PAGE: return page_request(c, r);
    default: return metrics_request(c, r);
    }
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    req_t *r = *con_cls;
    if (!r) return;
    free(r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&S.inflight, 1);
}

/* Connections past --max-connections are marked (a non-NULL socket context): their first request
 * gets 503 and the connection is closed. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code)
{
    (void)cls, (void)c;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        unsigned n = atomic_fetch_add(&S.conns, 1) + 1;
        *socket_context = n > S.max_conn ? (void *)1 : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        atomic_fetch_sub(&S.conns, 1);
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (tool_verbosity < TOOL_VERBOSE) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    tool_msg("libmicrohttpd: %s", msg);
}

/* ---- start-up ---- */

/* --log: the events already there are counted; a last line without its newline (a crash while
 * writing it) is ended so the next event starts a line, and skipped like any line that is not an event. */
static void open_log(const char *path)
{
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) die(1, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb)) die(1, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) die(1, "%s: is a directory", path);
    struct stat mb;
    if (!stat(S.model, &mb) && mb.st_dev == sb.st_dev && mb.st_ino == sb.st_ino)
        die(2, "--log %s is the model: give the event log its own file", path);
    long lines = 0, skipped = 0;
    if (S_ISREG(sb.st_mode) && sb.st_size > 0) {
        FILE *f = fdopen(dup(fd), "r");
        if (!f) die(1, "%s: %s", path, strerror(errno));
        char *line = NULL, msg[300];
        size_t cap = 0;
        ssize_t n;
        int torn = 0;
        while ((n = getline(&line, &cap, f)) >= 0) {
            lines++;
            if (memchr(line, 0, (size_t)n)) /* never append events to a file that is not ours */
                die(1, "%s: line %ld: not an event log (a NUL byte): --log appends JSON lines to it", path, lines);
            if (line[n - 1] != '\n') { /* the last line, cut */
                torn = 1;
                skipped++;
                break;
            }
            json_t *ev = json_loadb(line, (size_t)n - 1, JSON_REJECT_DUPLICATES, NULL);
            int t = ev ? event_check(ev, 1, msg, sizeof msg) : -1;
            if (t < 0) skipped++;
            else if (book_event(&S.st, ev, t)) die(1, "out of memory");
            json_decref(ev);
        }
        if (ferror(f)) die(1, "%s: %s", path, strerror(errno));
        free(line);
        fclose(f);
        if (torn && write_all(fd, "\n", 1)) die(1, "%s: %s", path, strerror(errno));
        if (skipped) tool_warn("%s: %ld of %ld lines skipped (a torn last line, or not an event)", path, skipped, lines);
    }
    S.log_fd = fd;
}

/* A listening socket on HOST:PORT ([IPV6]:PORT); *url gets http://HOST:PORT/ with the real port. */
static int listen_on(const char *spec, char *url, size_t cap, int *loopback)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || strlen(spec) >= sizeof host) die(2, "--listen: expected HOST:PORT, got '%s'", spec);
    size_t hl = (size_t)(colon - spec);
    const char *h = spec;
    if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') h++, hl -= 2;
    memcpy(host, h, hl);
    host[hl] = 0;
    const char *port = colon + 1;
    if (!*port || strspn(port, "0123456789") != strlen(port) || atol(port) > 65535)
        die(2, "--listen: expected a port from 0 to 65535, got '%s'", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) die(2, "--listen: %s: %s", host, gai_strerror(rc));
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) die(1, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) die(1, "--listen %s: %s", spec, strerror(errno));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char addr[INET6_ADDRSTRLEN];
    unsigned p;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
        p = ntohs(s6->sin6_port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
        snprintf(url, cap, "http://[%s]:%u/", addr, p);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
        p = ntohs(s4->sin_port);
        *loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
        snprintf(url, cap, "http://%s:%u/", addr, p);
    }
    freeaddrinfo(ai);
    return fd;
}

int main(int argc, char **argv)
{
    lstm_reserve_std_fds(NULL);
    tool_init(PROG);
    const char *listen_spec = "127.0.0.1:8080", *log_path = NULL;
    int threads = 2, beam_words = 8;
    lstm_cache_opts cache;
    lstm_cache_opts_default(&cache);
    S.max_body = 65536;
    S.timeout = 10;
    S.max_conn = 1024;
    lstm_request_default(&S.d);
    enum { O_LOG = 256, O_MAXBODY, O_TIMEOUT, O_MAXCONN, O_CORS, O_BEAMW, O_CACHE, O_CTHETA, O_CLAMBDA, O_BACKWARD, O_PRIOR };
    const char *backward = NULL, *prior = NULL;
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"listen", required_argument, 0, 'l'},
        {"threads", required_argument, 0, 'j'}, {"log", required_argument, 0, O_LOG},
        {"max-body", required_argument, 0, O_MAXBODY}, {"timeout", required_argument, 0, O_TIMEOUT},
        {"max-connections", required_argument, 0, O_MAXCONN}, {"cors", required_argument, 0, O_CORS},
        {"beam-words", required_argument, 0, O_BEAMW}, {"cache", required_argument, 0, O_CACHE},
        {"cache-theta", required_argument, 0, O_CTHETA}, {"cache-lambda", required_argument, 0, O_CLAMBDA},
        {"backward", required_argument, 0, O_BACKWARD}, {"prior", required_argument, 0, O_PRIOR}, {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":m:l:j:qvhV", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': S.model = optarg; break;
        case 'l': listen_spec = optarg; break;
        case 'j': threads = (int)tool_parse_long(optarg, "--threads", 1, 64); break;
        case O_LOG: log_path = optarg; break;
        case O_MAXBODY: S.max_body = (size_t)tool_parse_long(optarg, "--max-body", 1, 1L << 30); break;
        case O_TIMEOUT: S.timeout = (unsigned)tool_parse_long(optarg, "--timeout", 1, 86400); break;
        case O_MAXCONN: S.max_conn = (unsigned)tool_parse_long(optarg, "--max-connections", 1, 100000); break;
        case O_CORS: S.cors = optarg; break;
        case O_BEAMW: beam_words = (int)tool_parse_long(optarg, "--beam-words", 1, 64); break;
        case O_CACHE: cache.N = (int)tool_parse_long(optarg, "--cache", 0, LSTM_CACHE_MAX_N); break;
        case O_CTHETA: cache.theta = tool_parse_double(optarg, "--cache-theta", 0, 1e6); break;
        case O_CLAMBDA: cache.lambda = tool_parse_double(optarg, "--cache-lambda", 0, 1); break;
        case O_BACKWARD: backward = optarg; break;
        case O_PRIOR: prior = optarg; break;
        case 'q': tool_verbosity = TOOL_QUIET; break;
        case 'v': tool_verbosity = TOOL_VERBOSE; break;
        case 'h': usage(stdout); return 0;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    if (!S.model) die(2, "no model: give -m MODEL.ckpt (see --help)");
    if (prior && !backward) die(2, "--prior is for fill-in-the-middle: give --backward FILE");
    if (optind < argc) die(2, "unexpected argument '%s' (see --help)", argv[optind]);
    if (S.cors && (!*S.cors || strpbrk(S.cors, "\r\n"))) die(2, "--cors: expected an origin such as http://localhost:3000");

    double t0 = tool_now();
    lstm_set_threads(1); /* a request is a chain of small gemv calls: one thread each */
    /* One engine per worker thread: the first maps the checkpoint, the others share its model
     * (mapped once, the weights count once in the resident size) and own only their buffers. */
    if (!(S.w = calloc((size_t)threads, sizeof *S.w))) die(1, "out of memory");
    for (int i = 0; i < threads; i++) {
        int rc = i ? lstm_engine_open_shared(&S.w[i].e, &S.w[0].e, beam_words)
                   : lstm_engine_open(&S.w[i].e, S.model, beam_words);
        if (rc) {
            char msg[1024];
            die(1, "%s", i ? lstm_strerror(rc) : lstm_engine_open_error(&S.w[i].e, rc, S.model, msg, sizeof msg));
        }
        const char *why;
        if (i == 0 && backward && lstm_engine_set_backward(&S.w[0].e, backward, &why)) die(1, "--backward: %s", why);
        if (i == 0 && prior) tool_fill_prior(&S.w[0].e, prior, S.model);
        if ((rc = lstm_engine_set_cache(&S.w[i].e, &cache))) die(1, "--cache %d: %s", cache.N, lstm_strerror(rc));
    }
    S.nw = threads;
    S.V = S.w[0].e.lm.V;
    S.tok_kind = lstm_tokenizer_kind_name(S.w[0].e.lm.kind);
    S.cell = lstm_cell_name(S.w[0].e.lm.m->cfg.cell);
    if (!(S.model_json = model_info(&S.w[0].e, S.model))) die(1, "out of memory");
    if (log_path) open_log(log_path);

    char url[128];
    int loopback;
    int lfd = listen_on(listen_spec, url, sizeof url, &loopback);
    if (!loopback) tool_warn("listening on %s, not loopback: anyone who can reach it can use the model", url);

    /* Signals go to the main thread's sigwait only: the pool threads start with them blocked. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* Past --max-connections, connections are still accepted (to be told 503) up to a hard bound. */
    unsigned hard = S.max_conn * 2 + 16;
    /* A descriptor per connection, plus the model, the log, epoll and ITC fds per thread: raise the
     * soft limit as far as the hard one allows, and accept fewer connections if it is still short. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rlim_t want = (rlim_t)hard + 64 + 4 * (rlim_t)threads;
        if (rl.rlim_cur < want) {
            rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur < want) {
            rlim_t room = rl.rlim_cur > 64 + 4 * (rlim_t)threads + 16 ? rl.rlim_cur - 64 - 4 * (rlim_t)threads : 16;
            hard = (unsigned)room;
            if (S.max_conn > hard) {
                tool_warn("--max-connections %u: only %u descriptors (ulimit -n): at most %u connections", S.max_conn,
                          (unsigned)rl.rlim_cur, hard);
                S.max_conn = hard;
            }
        }
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, lfd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, hard, MHD_OPTION_CONNECTION_TIMEOUT, S.timeout,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_END);
    if (!d) die(1, "libmicrohttpd did not start (try -v)");
    if (tool_verbosity >= TOOL_VERBOSE) {
        char wd[128];
        tool_msg("%s: %s tokenizer, %d ids, %d x %d %s, %s, %d engines loaded in %.1f ms", S.model, S.tok_kind, S.V,
                 S.w[0].e.lm.m->cfg.L, S.w[0].e.lm.m->cfg.H, S.cell, lstm_lm_weights_desc(&S.w[0].e.lm, wd, sizeof wd),
                 threads, (tool_now() - t0) * 1e3);
    }
    tool_msg("listening on %s (%d threads)", url, threads); /* always: with port 0 it is how to find us */

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {}
    /* Stop accepting, let the requests in flight finish (a stalled one ends at --timeout), a second
     * signal ends the wait. */
    atomic_store(&S.draining, 1);
    MHD_socket l = MHD_quiesce_daemon(d);
    if (l != MHD_INVALID_SOCKET) close(l);
    struct timespec tick = {0, 10 * 1000 * 1000};
    double until = tool_now() + S.timeout + 1;
    while (atomic_load(&S.inflight) > 0 && tool_now() < until) {
        siginfo_t si;
        if (sigtimedwait(&sigs, &si, &tick) > 0) break;
    }
    MHD_stop_daemon(d);
    if (S.log_fd >= 0 && close(S.log_fd)) die(1, "%s: %s", log_path, strerror(errno));
    if (tool_verbosity >= TOOL_VERBOSE) {
        unsigned long long n = 0;
        for (int e = 0; e < EP_N; e++) n += S.req[e];
        tool_msg("%s: %llu requests answered, %ld events logged, stopped", sig == SIGINT ? "SIGINT" : "SIGTERM", n,
                 S.st.events);
    }
    for (int i = threads - 1; i >= 0; i--) { /* the first engine last: the others share its model */
        lstm_serve_req_free(&S.w[i].q);
        free(S.w[i].out);
        lstm_engine_close(&S.w[i].e);
    }
    free(S.w);
    free(S.st.lat);
    free(S.model_json);
    return 0;
}
