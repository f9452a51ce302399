/* test_engine.c: the suggestion engine (lib/lm/engine.h) and the serve protocol (serve_json.h) on
 * small random models it writes itself (a chat model with two speakers and a plain text one):
 *  - context turns are read exactly as lstm-tok encodes a conversation: the engine's answer equals
 *    lstm_suggest after a session fed the ids built by hand, and differs from the answer without them;
 *  - id echo (string, number, on errors), context validation with its exact messages;
 *  - two engines on two threads give byte-identical replies to one engine answering the same lists
 *    one at a time, and they really run at once: no call takes lstm_gemm's pool lock, and two
 *    single-threaded lstm_gemm calls were seen running at the same moment (a count, not a clock);
 *  - engines sharing one model (lstm_engine_open_shared), for a words and a chars model (its
 *    suggester's beam): replies byte-identical to an engine opened on the checkpoint, one after the
 *    other and with the base and two shared engines on three threads at once.
 *  - the adaptive softmax's lazy suggestions (lstm_suggest with NULL logits) are the full distribution's (also for a model whose output layer reads the attention's h*).
 * Also a helper for tests/sample.bats: `test_engine suggest MODEL K ID...` feeds the ids to a fresh
 * session and prints the K suggestions as "word<TAB>p" (p with 17 digits). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cells.h"
#include "check.h"
#include "engine.h"
#include "fill.h"
#include "gemm.h"
#include "modelfile.h"
#include "serve_json.h"

static char dir[] = "/tmp/test_engineXXXXXX";
static char chat_path[256], plain_path[256], chars_path[256];

static const char *const corpus[] = {
    "hi, i need help with my order", "sure! what is your order number?", "it is 4512",
    "thanks. your order will arrive tomorrow", "i was charged twice for my booking",
    "sorry about that. can you send the receipt?", "can you reset my password please",
    "of course, please check your email", NULL};

/* A random model over a tokenizer of the corpus (words or chars; with speakers user and agent when chat;
 * an adaptive softmax when adaptive). */
static void make_model_ex(const char *path, int chat, int kind, int adaptive, int attention)
{
    lstm_tokenizer *t;
    lstm_tokenizer_opts to = {kind, 0, NULL};
    CHECK_EQ_INT(lstm_tokenizer_create(&t, &to), 0);
    uint32_t sid;
    if (chat) {
        CHECK_EQ_INT(lstm_tokenizer_speaker(t, "user", 4, &sid), 0);
        CHECK_EQ_INT(lstm_tokenizer_speaker(t, "agent", 5, &sid), 0);
    }
    lstm_ids ids = {0};
    for (const char *const *p = corpus; *p; p++) CHECK_EQ_INT(lstm_tokenizer_count(t, *p, strlen(*p), &ids), 0);
    lstm_tokenizer_build_opts bo = {0};
    CHECK_EQ_INT(lstm_tokenizer_build(t, &bo, NULL, NULL), 0);
    uint8_t *blob;
    size_t blen;
    CHECK_EQ_INT(lstm_tokenizer_serialize(t, &blob, &blen), 0);
    lstm_model_config c;
    lstm_model_config_default(&c);
    c.V = (int)lstm_tokenizer_vocab_size(t), c.E = 16, c.H = 24, c.L = 2, c.init_scale = 0.6f;
    if (adaptive) {
        c.softmax = LSTM_SOFTMAX_ADAPTIVE, c.n_cutoffs = 2, c.cutoffs[0] = 20, c.cutoffs[1] = 32, c.div = 2.0f;
        c.init_scale = 1.2f;
    }
    c.attention = attention;
    lstm_model m;
    CHECK_EQ_INT(lstm_model_create(&m, &c), 0);
    lstm_rng rng;
    lstm_rng_seed(&rng, chat ? 11 : 12);
    lstm_model_init_params(&m, &rng);
    if (adaptive) { /* one cluster likely, the other not: both branches of the bound */
        float *hb = m.params + m.tensors[lstm_model_find_tensor(&m, "head.b")].offset;
        hb[20] = 1.0f, hb[21] = -1.5f;
    }
    lstm_modelfile_save_args a = {&m, blob, blen, NULL, NULL, NULL, NULL};
    CHECK_EQ_INT(lstm_modelfile_save(path, 1, &a), 0);
    lstm_model_free(&m);
    free(blob);
    lstm_ids_free(&ids);
    lstm_tokenizer_free(t);
}

static void make_model(const char *path, int chat, int kind) { make_model_ex(path, chat, kind, 0, 0); }

static lstm_request defaults; /* formats/serve.md's: set in main */

/* One protocol line answered by e, as a malloc'ed string. */
static char *serve(lstm_engine *e, const char *line)
{
    lstm_serve_req q;
    memset(&q, 0, sizeof q);
    char *out = NULL;
    size_t cap = 0, n = 0;
    CHECK_EQ_INT(lstm_serve_line(e, &q, &defaults, line, strlen(line), &out, &cap, &n), 0);
    lstm_serve_req_free(&q);
    char *s = strndup(out ? out : "", n);
    free(out);
    return s;
}

static void expect(lstm_engine *e, const char *line, const char *want)
{
    char *got = serve(e, line);
    if (strcmp(got, want)) fprintf(stderr, "request %s\n  got  %s\n  want %s\n", line, got, want);
    CHECK(strcmp(got, want) == 0);
    free(got);
}

/* Suggestions after ids from a fresh session: the hand-built reference of a prompt. */
static int suggest_ids(const char *path, const uint32_t *ids, size_t n, int k, lstm_suggestion *out)
{
    lstm_lm lm;
    lstm_session s;
    lstm_suggester g;
    if (lstm_lm_open(&lm, path)) return -1;
    int got = -1;
    if (!lstm_session_init(&s, &lm, LSTM_ENGINE_CTX_CAP)) {
        if (!lstm_suggester_init(&g, &lm, LSTM_ENGINE_MAX_K, 8, NULL)) {
            if (!lstm_session_feed(&s, ids, n)) got = lstm_suggest(&g, &s.st, s.logits, "", 0, k, out, NULL);
            lstm_suggester_free(&g);
        }
        lstm_session_free(&s);
    }
    lstm_lm_close(&lm);
    return got;
}

static void same_suggestions(const lstm_reply *r, const lstm_suggestion *want, int n)
{
    CHECK(r->error == NULL);
    CHECK_EQ_INT(r->n, n);
    for (int i = 0; i < n && i < r->n; i++) {
        CHECK(strcmp(r->sg[i].word, want[i].word) == 0);
        CHECK(r->sg[i].p == want[i].p); /* exactly: the same ids through the same kernels */
    }
}

static void test_context(void)
{
    static lstm_suggestion want[8];
    lstm_engine e;
    CHECK_EQ_INT(lstm_engine_open(&e, chat_path, 8), 0);
    lstm_turn turns[2] = {{"user", corpus[0], strlen(corpus[0])}, {"agent", corpus[1], strlen(corpus[1])}};
    lstm_request r;
    lstm_request_default(&r);
    r.text = "it is ";
    r.len = 6;
    r.speaker = "user";
    r.k = 8;
    r.context = turns;
    r.ncontext = 2;
    lstm_reply rep;
    CHECK_EQ_INT(lstm_engine_run(&e, &r, &rep), 0);

    /* "<user> <s> hi , i ... </s> <agent> <s> sure ! ... </s> <user> <s> it is", as lstm-tok writes it */
    lstm_ids ids = {0};
    CHECK_EQ_INT(lstm_tokenizer_encode_turn(e.lm.tok, "user", corpus[0], strlen(corpus[0]), &ids), 0);
    CHECK_EQ_INT(lstm_ids_push(&ids, LSTM_EOS_ID), 0);
    CHECK_EQ_INT(lstm_tokenizer_encode_turn(e.lm.tok, "agent", corpus[1], strlen(corpus[1]), &ids), 0);
    CHECK_EQ_INT(lstm_ids_push(&ids, LSTM_EOS_ID), 0);
    CHECK_EQ_INT(lstm_tokenizer_encode_turn(e.lm.tok, "user", "it is ", 6, &ids), 0);
    CHECK_EQ_INT(ids.n, (2 + 8 + 1) + (2 + 8 + 1) + (2 + 2)); /* tag, <s>, the words and punctuation, </s> */
    CHECK_EQ_INT(suggest_ids(chat_path, ids.v, ids.n, 8, want), 8);
    lstm_engine_reset(&e);
    CHECK_EQ_INT(lstm_engine_run(&e, &r, &rep), 0);
    same_suggestions(&rep, want, 8);

    /* without the context the answer differs */
    r.ncontext = 0;
    lstm_engine_reset(&e);
    CHECK_EQ_INT(lstm_engine_run(&e, &r, &rep), 0);
    int differs = 0;
    for (int i = 0; i < rep.n; i++) differs |= rep.sg[i].p != want[i].p;
    CHECK(differs);

    /* a speaker of NULL is the first one (user), in the context as in the prompt */
    turns[0].speaker = NULL;
    r.ncontext = 2;
    r.speaker = NULL;
    lstm_engine_reset(&e);
    CHECK_EQ_INT(lstm_engine_run(&e, &r, &rep), 0);
    same_suggestions(&rep, want, 8);

    /* completion with context: the text continues the prompt only */
    r.mode = LSTM_MODE_COMPLETE;
    r.so.temperature = 0;
    r.max_new = 6;
    CHECK_EQ_INT(lstm_engine_run(&e, &r, &rep), 0);
    CHECK(rep.error == NULL && rep.tokens <= 6 && strstr(rep.completion, "order number") == NULL);

    /* an unknown speaker in a turn names the turn */
    turns[1].speaker = "bob";
    CHECK_EQ_INT(lstm_engine_run(&e, &r, &rep), -1);
    CHECK(rep.error && strcmp(rep.error, "context[1]: unknown speaker 'bob' (speakers: user, agent)") == 0);
    lstm_ids_free(&ids);
    lstm_engine_close(&e);

    /* plain text model: each turn a document "tokens </s>" after the prompt's leading "</s>"; an empty
     * turn is no document (lstm-tok writes none) */
    CHECK_EQ_INT(lstm_engine_open(&e, plain_path, 8), 0);
    lstm_turn docs[3] = {{NULL, corpus[2], strlen(corpus[2])}, {"anyone", "", 0}, {NULL, corpus[3], strlen(corpus[3])}};
    lstm_request_default(&r);
    r.text = "can you ";
    r.len = 8;
    r.k = 6;
    r.context = docs;
    r.ncontext = 3;
    CHECK_EQ_INT(lstm_engine_run(&e, &r, &rep), 0);
    ids.n = 0;
    CHECK_EQ_INT(lstm_ids_push(&ids, LSTM_EOS_ID), 0);
    CHECK_EQ_INT(lstm_tokenizer_encode(e.lm.tok, corpus[2], strlen(corpus[2]), &ids), 0);
    CHECK_EQ_INT(lstm_ids_push(&ids, LSTM_EOS_ID), 0);
    CHECK_EQ_INT(lstm_tokenizer_encode(e.lm.tok, corpus[3], strlen(corpus[3]), &ids), 0);
    CHECK_EQ_INT(lstm_ids_push(&ids, LSTM_EOS_ID), 0);
    CHECK_EQ_INT(lstm_tokenizer_encode(e.lm.tok, "can you ", 8, &ids), 0);
    CHECK_EQ_INT(suggest_ids(plain_path, ids.v, ids.n, 6, want), 6);
    same_suggestions(&rep, want, 6);
    lstm_ids_free(&ids);
    lstm_engine_close(&e);
}

static void test_protocol(void)
{
    lstm_engine e;
    CHECK_EQ_INT(lstm_engine_open(&e, chat_path, 8), 0);
    char *a = serve(&e, "{\"text\":\"i need \",\"k\":2}"); /* from a fresh session */
    CHECK(strncmp(a, "{\"mode\":\"suggest\",\"suggestions\":[{\"word\":", 41) == 0);
    /* the id goes first, as given; the rest is the reply without it */
    char want[4096];
    lstm_engine_reset(&e); /* (a reused prefix can change the last digits) */
    char *b = serve(&e, "{\"id\":\"req-7 \\u00e9\",\"text\":\"i need \",\"k\":2}");
    snprintf(want, sizeof want, "{\"id\":\"req-7 \xc3\xa9\",%s", a + 1);
    if (strcmp(b, want)) fprintf(stderr, "got  %s\nwant %s\n", b, want);
    CHECK(strcmp(b, want) == 0);
    free(b);
    lstm_engine_reset(&e);
    b = serve(&e, "{\"text\":\"i need \",\"id\":-12,\"k\":2}");
    snprintf(want, sizeof want, "{\"id\":-12,%s", a + 1);
    CHECK(strcmp(b, want) == 0);
    free(b);
    free(a);
    expect(&e, "{\"id\":2.5,\"text\":\"x\",\"k\":0}", "{\"id\":2.5,\"error\":\"k must be from 1 to 1000\"}");
    expect(&e, "{\"text\":\"x\",\"colour\":1,\"id\":\"z\"}", "{\"id\":\"z\",\"error\":\"unknown field \\\"colour\\\"\"}");
    expect(&e, "{\"id\":[1],\"text\":\"x\"}", "{\"error\":\"id must be a string or a number\"}");
    expect(&e, "{\"id\":null,\"text\":\"x\"}", "{\"error\":\"id must be a string or a number\"}");
    expect(&e, "{\"id\":1,\"id\":2,\"text\":\"x\"}", "{\"error\":\"malformed JSON: duplicate field near '\\\"id\\\"'\"}");
    /* context validation */
    expect(&e, "{\"text\":\"x\",\"context\":\"hi\"}",
           "{\"error\":\"context must be an array of turns ({\\\"speaker\\\":..,\\\"text\\\":..})\"}");
    expect(&e, "{\"text\":\"x\",\"context\":[{\"text\":\"a\"},7]}",
           "{\"error\":\"context[1] must be an object ({\\\"speaker\\\":..,\\\"text\\\":..})\"}");
    expect(&e, "{\"text\":\"x\",\"context\":[{\"speaker\":\"user\"}]}", "{\"error\":\"context[0]: missing field \\\"text\\\"\"}");
    expect(&e, "{\"text\":\"x\",\"context\":[{\"text\":1}]}", "{\"error\":\"context[0]: text must be a string\"}");
    expect(&e, "{\"text\":\"x\",\"context\":[{\"text\":\"a\",\"speaker\":true}]}", "{\"error\":\"context[0]: speaker must be a string\"}");
    expect(&e, "{\"text\":\"x\",\"context\":[{\"text\":\"a\",\"role\":\"user\"}]}", "{\"error\":\"context[0]: unknown field \\\"role\\\"\"}");
    expect(&e, "{\"text\":\"x\",\"context\":[{\"text\":\"a\",\"text\":\"b\"}]}",
           "{\"error\":\"malformed JSON: duplicate field near '\\\"text\\\"'\"}");
    expect(&e, "{\"id\":1,\"text\":\"x \",\"context\":[{\"speaker\":\"agent\",\"text\":\"a\"},{\"speaker\":\"Bob\",\"text\":\"b\"}]}",
           "{\"id\":1,\"error\":\"context[1]: unknown speaker 'Bob' (speakers: user, agent)\"}");
    /* limits: 256 turns, 65536 bytes of text */
    size_t cap = 300 * 24 + 70000;
    char *big = malloc(cap), *p = big;
    p += sprintf(p, "{\"text\":\"x \",\"k\":1,\"context\":[");
    for (int i = 0; i < 256; i++) p += sprintf(p, "%s{\"text\":\"hi\"}", i ? "," : "");
    strcpy(p, "]}");
    char *r = serve(&e, big);
    CHECK(strncmp(r, "{\"mode\":\"suggest\"", 17) == 0);
    free(r);
    strcpy(p, ",{\"text\":\"hi\"}]}");
    expect(&e, big, "{\"error\":\"context: at most 256 turns\"}");
    p = big + sprintf(big, "{\"text\":\"x \",\"context\":[{\"text\":\"");
    memset(p, 'a', 65536);
    p += 65536;
    strcpy(p, "\"},{\"text\":\"\"}]}");
    r = serve(&e, big);
    CHECK(strncmp(r, "{\"mode\":\"suggest\"", 17) == 0);
    free(r);
    strcpy(p, "\"},{\"text\":\"b\"}]}");
    expect(&e, big, "{\"error\":\"context: more than 65536 bytes of text\"}");
    free(big);
    lstm_engine_close(&e);
}

/* ---- two engines, two threads ---- */

#define NREQ 12
static const char *const list_a[NREQ] = {
    "i need hel", "{\"text\":\"hi, i need help with my \",\"k\":5}",
    "{\"text\":\"sure\",\"mode\":\"complete\",\"speaker\":\"agent\",\"max_new\":12,\"seed\":3}",
    "{\"id\":\"a4\",\"text\":\"it is \",\"context\":[{\"speaker\":\"user\",\"text\":\"hi, i need help with my order\"},"
    "{\"speaker\":\"agent\",\"text\":\"sure! what is your order number?\"}]}",
    "{\"text\":\"can you\",\"mode\":\"complete\",\"beam\":3,\"max_new\":8}",
    "{\"text\":\"thanks. your \",\"k\":20}", "{\"text\":\"x\",\"k\":0}",
    "{\"text\":\"of course\",\"mode\":\"complete\",\"top_p\":0.8,\"temperature\":0.7,\"max_new\":20,\"seed\":9}",
    "{\"text\":\"i was charged twice for my \",\"speaker\":\"agent\"}", "can you reset my pa",
    "{\"text\":\"sorry\",\"mode\":\"complete\",\"repetition_penalty\":1.3,\"top_k\":4,\"max_new\":15}",
    "{\"text\":\"hi\",\"context\":[{\"text\":\"of course, please check your email\"}],\"k\":3}"};
static const char *const list_b[NREQ] = {
    "{\"text\":\"your order will \",\"k\":7}", "{\"text\":\"please\",\"mode\":\"complete\",\"greedy\":true,\"max_new\":10}",
    "thanks", "{\"text\":\"send the \",\"speaker\":\"agent\",\"k\":4}",
    "{\"text\":\"it is 45\",\"id\":9}", "{\"text\":\"i\",\"mode\":\"complete\",\"beam\":2,\"max_new\":6,\"speaker\":\"agent\"}",
    "{\"text\":\"hi\",\"mode\":\"complete\",\"seed\":4,\"max_new\":25,\"context\":[{\"text\":\"sorry about that\"}]}",
    "{bad", "{\"text\":\"can you send the receipt\",\"k\":1000}",
    "{\"text\":\"my booking\",\"mode\":\"complete\",\"temperature\":1.5,\"max_new\":30,\"seed\":77}",
    "{\"text\":\"\",\"speaker\":\"agent\"}", "{\"text\":\"arrive tom\",\"k\":2}"};

#define ROUNDS 3
#define GM 64
#define GN 256
#define GK 256 /* 2^22 multiply-adds: a product the pool would split, run on the caller at 1 thread */

typedef struct {
    lstm_engine *e;
    const char *const *list;
    char *replies[ROUNDS * NREQ];
    const float *A, *B, *want;
    float *C;
    int gemm_mismatch, gemm_calls;
} job;

/* A lstm_gemm on this thread, checked bit for bit against the product computed before. */
static void one_gemm(job *j)
{
    lstm_gemm(0, 1, GM, GN, GK, 1.0f, j->A, GK, j->B, GK, 0.0f, j->C, GN);
    j->gemm_mismatch += memcmp(j->C, j->want, sizeof(float) * GM * GN) != 0;
    j->gemm_calls++;
}

static void *run_job(void *arg)
{
    job *j = arg;
    for (int r = 0; r < ROUNDS; r++) {
        lstm_engine_reset(j->e);
        for (int i = 0; i < NREQ; i++) {
            j->replies[r * NREQ + i] = serve(j->e, j->list[i]);
            if (j->A) one_gemm(j);
        }
    }
    if (j->A) { /* until both threads have been inside lstm_gemm at the same moment (bounded) */
        lstm_gemm_stats s;
        for (int i = 0; i < 20000; i++) {
            lstm_gemm_get_stats(&s);
            if (s.direct_peak >= 2) break;
            one_gemm(j);
        }
    }
    return NULL;
}

static void test_threads(void)
{
    CHECK_EQ_INT(lstm_gemm_set_threads(1), 0);
    float *A = malloc(sizeof(float) * GM * GK), *B = malloc(sizeof(float) * GN * GK);
    float *want = malloc(sizeof(float) * GM * GN), *C1 = malloc(sizeof(float) * GM * GN), *C2 = malloc(sizeof(float) * GM * GN);
    lstm_rng rng;
    lstm_rng_seed(&rng, 5);
    for (int i = 0; i < GM * GK; i++) A[i] = lstm_rng_uniform(&rng) - 0.5f;
    for (int i = 0; i < GN * GK; i++) B[i] = lstm_rng_uniform(&rng) - 0.5f;
    lstm_gemm(0, 1, GM, GN, GK, 1.0f, A, GK, B, GK, 0.0f, want, GN);

    /* one engine, the lists one after the other (each round from a reset session, as the threads do) */
    lstm_engine one;
    CHECK_EQ_INT(lstm_engine_open(&one, chat_path, 8), 0);
    job ra = {&one, list_a, {0}, NULL, NULL, NULL, NULL, 0, 0}, rb = {&one, list_b, {0}, NULL, NULL, NULL, NULL, 0, 0};
    run_job(&ra);
    run_job(&rb);
    lstm_engine_close(&one);

    /* two engines of the same checkpoint on two threads, each also running lstm_gemm between requests */
    lstm_engine e1, e2;
    CHECK_EQ_INT(lstm_engine_open(&e1, chat_path, 8), 0);
    CHECK_EQ_INT(lstm_engine_open(&e2, chat_path, 8), 0);
    job ja = {&e1, list_a, {0}, A, B, want, C1, 0, 0}, jb = {&e2, list_b, {0}, A, B, want, C2, 0, 0};
    lstm_gemm_stats s0, s1;
    lstm_gemm_get_stats(&s0);
    pthread_t ta, tb;
    CHECK_EQ_INT(pthread_create(&ta, NULL, run_job, &ja), 0);
    CHECK_EQ_INT(pthread_create(&tb, NULL, run_job, &jb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    lstm_gemm_get_stats(&s1);
    int same = 0;
    for (int i = 0; i < ROUNDS * NREQ; i++) {
        same += strcmp(ja.replies[i], ra.replies[i]) == 0;
        same += strcmp(jb.replies[i], rb.replies[i]) == 0;
        if (strcmp(ja.replies[i], ra.replies[i])) fprintf(stderr, "a %d: %s\n vs %s\n", i, ja.replies[i], ra.replies[i]);
        if (strcmp(jb.replies[i], rb.replies[i])) fprintf(stderr, "b %d: %s\n vs %s\n", i, jb.replies[i], rb.replies[i]);
    }
    CHECK_EQ_INT(same, 2 * ROUNDS * NREQ);
    /* the rounds of one list agree too (a reset session answers as a fresh one) */
    for (int i = 0; i < NREQ; i++) CHECK(strcmp(ra.replies[i], ra.replies[(ROUNDS - 1) * NREQ + i]) == 0);
    CHECK(strstr(ja.replies[3], "{\"id\":\"a4\",\"mode\":\"suggest\"") == ja.replies[3]);
    CHECK(strstr(jb.replies[7], "{\"error\":\"malformed JSON") == jb.replies[7]);
    CHECK_EQ_INT(ja.gemm_mismatch + jb.gemm_mismatch, 0);
    /* neither thread entered the pool's lock, and both were inside lstm_gemm at the same moment */
    CHECK_EQ_INT(s1.pooled, s0.pooled);
    CHECK(s1.direct - s0.direct == (unsigned long long)(ja.gemm_calls + jb.gemm_calls));
    CHECK(s1.direct_peak >= 2);
    printf("test_engine: threads: %d replies each, %d + %d gemm calls, %llu pooled, peak %d at once\n",
           ROUNDS * NREQ, ja.gemm_calls, jb.gemm_calls, s1.pooled - s0.pooled, s1.direct_peak);

    /* the same product split over a pool of 2 takes the pool (and gives the same bits) */
    CHECK_EQ_INT(lstm_gemm_set_threads(2), 0);
    lstm_gemm(0, 1, GM, GN, GK, 1.0f, A, GK, B, GK, 0.0f, C1, GN);
    lstm_gemm_get_stats(&s0);
    CHECK_EQ_INT(s0.pooled, s1.pooled + 1);
    CHECK(memcmp(C1, want, sizeof(float) * GM * GN) == 0);
    CHECK_EQ_INT(lstm_gemm_set_threads(1), 0);

    for (int i = 0; i < ROUNDS * NREQ; i++) free(ja.replies[i]), free(jb.replies[i]), free(ra.replies[i]), free(rb.replies[i]);
    lstm_engine_close(&e1);
    lstm_engine_close(&e2);
    free(A), free(B), free(want), free(C1), free(C2);
}

/* ---- engines sharing one model ---- */

/* The lists' replies from e, ROUNDS times from a reset session (as run_job answers them). */
static void answer_all(lstm_engine *e, const char *const *list, char **replies)
{
    for (int r = 0; r < ROUNDS; r++) {
        lstm_engine_reset(e);
        for (int i = 0; i < NREQ; i++) replies[r * NREQ + i] = serve(e, list[i]);
    }
}

static int same_replies(char **got, char **want, const char *what)
{
    int same = 0;
    for (int i = 0; i < ROUNDS * NREQ; i++) {
        same += strcmp(got[i], want[i]) == 0;
        if (strcmp(got[i], want[i])) fprintf(stderr, "%s %d: %s\n vs %s\n", what, i, got[i], want[i]);
    }
    return same;
}

static void free_replies(char **r)
{
    for (int i = 0; i < ROUNDS * NREQ; i++) free(r[i]);
}

#define SH_REPS 20 /* times each thread answers its list's rounds */

typedef struct {
    lstm_engine *e;
    const char *const *list;
    char **want;               /* (ROUNDS * NREQ) */
    pthread_barrier_t *start;
    int mismatches, answered;
} share_job;

static atomic_int sh_inside, sh_peak; /* threads inside a request at once */

static void *run_share(void *arg)
{
    share_job *j = arg;
    pthread_barrier_wait(j->start);
    for (int rep = 0; rep < SH_REPS; rep++)
        for (int r = 0; r < ROUNDS; r++) {
            lstm_engine_reset(j->e);
            for (int i = 0; i < NREQ; i++) {
                int n = atomic_fetch_add(&sh_inside, 1) + 1, p = atomic_load(&sh_peak);
                while (n > p && !atomic_compare_exchange_weak(&sh_peak, &p, n)) {}
                char *got = serve(j->e, j->list[i]);
                atomic_fetch_sub(&sh_inside, 1);
                if (strcmp(got, j->want[r * NREQ + i])) {
                    if (j->mismatches++ < 3) fprintf(stderr, "shared, thread: %s\n vs %s\n", got, j->want[r * NREQ + i]);
                }
                j->answered++;
                free(got);
            }
        }
    return NULL;
}

/* lstm_engine_open_shared: engines on one base's model answer byte for byte as engines opened on
 * the checkpoint do, one after the other and on three threads at once (base and two shared ones),
 * share the mapping and the tables (not the tokenizer), and the base outlives a closed shared one. */
static void test_shared(const char *path)
{
    /* the reference: an engine of its own, both lists one after the other */
    lstm_engine ind;
    CHECK_EQ_INT(lstm_engine_open(&ind, path, 8), 0);
    char *ref_a[ROUNDS * NREQ], *ref_b[ROUNDS * NREQ];
    answer_all(&ind, list_a, ref_a);
    answer_all(&ind, list_b, ref_b);

    lstm_engine base, sh1, sh2;
    CHECK_EQ_INT(lstm_engine_open(&base, path, 8), 0);
    CHECK_EQ_INT(lstm_engine_open_shared(&sh1, &base, 8), 0);
    CHECK_EQ_INT(lstm_engine_open_shared(&sh2, &base, 8), 0);
    CHECK(sh1.lm.m == base.lm.m && sh1.lm.m->params == base.lm.m->params);
    CHECK(sh1.lm.f.ck == base.lm.f.ck && sh1.lm.flags == base.lm.flags && sh1.lm.wf == base.lm.wf);
    CHECK(sh1.lm.text == base.lm.text && sh1.lm.toff == base.lm.toff);
    CHECK(sh1.lm.tok != base.lm.tok && sh1.lm.tok != sh2.lm.tok && sh1.lm.brk != base.lm.brk);
    CHECK(sh1.sess.ids != base.sess.ids && sh1.sug.work != base.sug.work);

    /* one after the other: a shared engine answers as the independent one */
    char *seq[ROUNDS * NREQ];
    answer_all(&sh1, list_a, seq);
    CHECK_EQ_INT(same_replies(seq, ref_a, "shared, list a"), ROUNDS * NREQ);
    free_replies(seq);

    /* three threads at once: the base and a shared engine on list a, the other shared one on list b,
     * started together, each request checked against the reference */
    pthread_barrier_t start;
    CHECK_EQ_INT(pthread_barrier_init(&start, NULL, 3), 0);
    share_job j[3] = {{&base, list_a, ref_a, &start, 0, 0}, {&sh1, list_a, ref_a, &start, 0, 0},
                      {&sh2, list_b, ref_b, &start, 0, 0}};
    atomic_store(&sh_inside, 0);
    atomic_store(&sh_peak, 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(pthread_create(&t[i], NULL, run_share, &j[i]), 0);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(j[i].mismatches, 0);
        CHECK_EQ_INT(j[i].answered, SH_REPS * ROUNDS * NREQ);
    }
    CHECK(atomic_load(&sh_peak) >= 2); /* requests of different engines were in flight at the same moment */

    /* closing a shared engine leaves the base whole; bans are each engine's own */
    lstm_engine_close(&sh1);
    char *after[ROUNDS * NREQ];
    answer_all(&base, list_b, after);
    CHECK_EQ_INT(same_replies(after, ref_b, "base after a shared one closed"), ROUNDS * NREQ);
    free_replies(after);
    char *w = serve(&sh2, "{\"text\":\"i need \",\"k\":1}");
    const char *q = strstr(w, "\"word\":\"");
    char word[64] = "";
    if (q) sscanf(q + 8, "%63[^\"]", word);
    CHECK(word[0] != 0);
    unsigned long line;
    const char *why;
    CHECK_EQ_INT(lstm_engine_ban_list(&sh2, word, strlen(word), &line, &why), 0);
    char *banned = serve(&sh2, "{\"text\":\"i need \",\"k\":1}"), *kept = serve(&base, "{\"text\":\"i need \",\"k\":1}");
    CHECK(strcmp(banned, w) != 0);
    CHECK(strcmp(kept, w) == 0);
    free(w), free(banned), free(kept);

    /* what cannot be shared */
    lstm_engine closed, e;
    memset(&closed, 0, sizeof closed);
    CHECK_EQ_INT(lstm_engine_open_shared(&e, &closed, 8), LSTM_E_ARG);
    CHECK_EQ_INT(lstm_engine_open_shared(&e, &base, 0), LSTM_E_ARG);
    lstm_engine_close(&e); /* harmless after a failed open */

    lstm_engine_close(&sh2);
    lstm_engine_close(&base);
    lstm_engine_close(&ind);
    free_replies(ref_a);
    free_replies(ref_b);
    printf("test_engine: shared (%s): %d replies on each of 3 threads as an engine of its own, %d in flight at once\n",
           strrchr(path, '/') + 1, SH_REPS * ROUNDS * NREQ, atomic_load(&sh_peak));
}

static void test_open_errors(void)
{
    lstm_engine e;
    char msg[512], p[300];
    snprintf(p, sizeof p, "%s/missing.ckpt", dir);
    int rc = lstm_engine_open(&e, p, 8);
    CHECK(rc != 0);
    snprintf(msg, sizeof msg, "%s: No such file or directory", p);
    char got[512];
    CHECK(strcmp(lstm_engine_open_error(&e, rc, p, got, sizeof got), msg) == 0);
    CHECK_EQ_INT(lstm_engine_open(&e, chat_path, 0), LSTM_E_ARG);
    lstm_engine_close(&e); /* harmless on an engine that failed to open */
    /* a ban list that is not text is refused whole, naming the line */
    CHECK_EQ_INT(lstm_engine_open(&e, chat_path, 8), 0);
    unsigned long line = 0;
    const char *why = NULL;
    CHECK_EQ_INT(lstm_engine_ban_list(&e, "help\nmy\0x\n", 10, &line, &why), LSTM_E_FORMAT);
    CHECK_EQ_INT(line, 2);
    CHECK(why && strcmp(why, "a NUL byte") == 0);
    CHECK_EQ_INT(lstm_engine_ban_list(&e, "help\ncaf\xe9\n", 10, &line, &why), LSTM_E_FORMAT);
    CHECK(line == 2 && strcmp(why, "invalid UTF-8") == 0);
    /* a banned word is never suggested (a byte order mark and spaces around it are not the word) */
    char *before = serve(&e, "{\"text\":\"i need \",\"k\":1}");
    const char *w = strstr(before, "\"word\":\"");
    CHECK(w != NULL);
    char word[64] = "";
    if (w) sscanf(w + 8, "%63[^\"]", word);
    char list[100];
    snprintf(list, sizeof list, "\xEF\xBB\xBF  %s \r\nzzz\n", word);
    CHECK_EQ_INT(lstm_engine_ban_list(&e, list, strlen(list), &line, &why), 0);
    char *after = serve(&e, "{\"text\":\"i need \",\"k\":1}");
    char quoted[80];
    snprintf(quoted, sizeof quoted, "\"word\":\"%s\"", word);
    CHECK(strstr(after, quoted) == NULL);
    free(before);
    free(after);
    lstm_engine_close(&e);
}

/* test_engine suggest MODEL K ID...: the suggestions after those ids, from a fresh session. */
static int helper_suggest(int argc, char **argv)
{
    if (argc < 5) return 2;
    int k = atoi(argv[3]), n = argc - 4;
    uint32_t *ids = malloc(sizeof *ids * (size_t)n);
    static lstm_suggestion out[LSTM_ENGINE_MAX_K];
    for (int i = 0; i < n; i++) ids[i] = (uint32_t)strtoul(argv[4 + i], NULL, 10);
    lstm_set_threads(1);
    int got = k >= 1 && k <= LSTM_ENGINE_MAX_K ? suggest_ids(argv[2], ids, (size_t)n, k, out) : -1;
    free(ids);
    if (got < 0) return 1;
    for (int i = 0; i < got; i++) printf("%s\t%.17g\n", out[i].word, out[i].p);
    return 0;
}

/* lstm_suggest with NULL logits on an adaptive word model (only the clusters that can hold a
 * suggestion) against the full distribution: the same words in the same order, the same probabilities
 * up to rounding, for prompts, k, prefixes and a banned word; and clusters really were skipped. */
static void test_lazy(const char *path)
{
    lstm_lm lm;
    CHECK_EQ_INT(lstm_lm_open(&lm, path), 0);
    lstm_session s;
    lstm_suggester g;
    CHECK_EQ_INT(lstm_session_init(&s, &lm, LSTM_ENGINE_CTX_CAP), 0);
    CHECK_EQ_INT(lstm_suggester_init(&g, &lm, LSTM_ENGINE_MAX_K, 8, NULL), 0);
    CHECK(lstm_suggest_lazy(&g));
    CHECK_EQ_INT(lstm_suggester_ban_word(&g, "order", 5), 0);
    static const char *prefixes[] = {"", "", "o", "th", "y", "c", "it", "a"};
    static const int ks[] = {1, 2, 3, 1, 5, 20};
    lstm_rng rng;
    lstm_rng_seed(&rng, 5);
    int skipped = 0, cases = 0, tail_top = 0, V = lm.V;
    for (int trial = 0; trial < 60; trial++) {
        uint32_t ids[6];
        int n = 1 + (int)lstm_rng_below(&rng, 6);
        for (int i = 0; i < n; i++) ids[i] = 4 + lstm_rng_below(&rng, (uint32_t)V - 4);
        const char *pf = prefixes[trial % 8];
        int k = ks[trial % 6];
        lstm_suggestion a[32], b[32];
        double ma = -1, mb = -1;
        CHECK_EQ_INT(lstm_session_feed(&s, ids, (size_t)n), 0);
        int na = lstm_suggest(&g, &s.st, s.logits, pf, strlen(pf), k, a, &ma);
        CHECK_EQ_INT(lstm_session_feed_state(&s, ids, (size_t)n), 0);
        int nb = lstm_suggest(&g, &s.st, NULL, pf, strlen(pf), k, b, &mb);
        CHECK_EQ_INT(nb, na);
        CHECK(fabs(ma - mb) <= 1e-5 * ma); /* the full path's log-normaliser is 0 up to rounding */
        for (int i = 0; i < na && i < nb; i++) {
            CHECK(strcmp(a[i].word, b[i].word) == 0);
            CHECK(fabs(a[i].p - b[i].p) <= 1e-5 * a[i].p);
        }
        int sk = 0;
        for (int j = 0; j < V; j++) sk |= g.lazy[j] == -INFINITY;
        skipped += sk && !*pf;
        cases += na > 0;
        /* a suggestion from a tail cluster (id >= 20): the bound was tested where it matters */
        for (int i = 0; i < na && !*pf; i++) {
            uint32_t id;
            lstm_ids one = {0};
            if (lstm_lm_prompt(&lm, NULL, a[i].word, a[i].len, &one) == 0 && one.n > 0) {
                id = one.v[one.n - 1];
                tail_top += id >= 20;
            }
            lstm_ids_free(&one);
        }
    }
    CHECK(cases >= 50);
    CHECK(skipped >= 5);   /* the point of it: next-word requests skip a cluster */
    CHECK(tail_top >= 10); /* and others need one */
    CHECK_EQ_INT(lstm_suggest(&g, &s.st, NULL, "", 0, 1, (lstm_suggestion[1]){0}, NULL), 1);
    lstm_suggester_free(&g);
    lstm_session_free(&s);
    lstm_lm_close(&lm);
}

/* lstm_doc_reverse: the documents of formats/windows.md read backwards, the position map, and that
 * reading twice gives a document that ends with EOS back (random documents of lines and turns). */
static void test_doc_reverse(void)
{
    const uint32_t chat[] = {4, 2, 10, 11, 12, 3, 5, 2, 13, 3, 4, 2, 3};
    const uint32_t want[] = {4, 2, 3, 5, 2, 13, 3, 4, 2, 12, 11, 10, 3};
    uint32_t out[64], back[64];
    size_t pos[64];
    lstm_doc_reverse(chat, 13, LSTM_REVERSE_DOCS, out, pos);
    CHECK(memcmp(out, want, sizeof want) == 0);
    for (size_t i = 0; i < 13; i++) CHECK(out[pos[i]] == chat[i]);
    const uint32_t text[] = {7, 8, 9, 3, 6, 3, 7, 8}; /* the last line without its EOS */
    const uint32_t twant[] = {8, 7, 6, 3, 9, 8, 7, 3};
    lstm_doc_reverse(text, 8, LSTM_REVERSE_DOCS, out, NULL);
    CHECK(memcmp(out, twant, sizeof twant) == 0);
    /* --reverse-turns: the turns in their order, each read backwards */
    const uint32_t turns[] = {4, 2, 12, 11, 10, 3, 5, 2, 13, 3, 4, 2, 3};
    lstm_doc_reverse(chat, 13, LSTM_REVERSE_TURNS, out, pos);
    CHECK(memcmp(out, turns, sizeof turns) == 0);
    for (size_t i = 0; i < 13; i++) CHECK(out[pos[i]] == chat[i]);
    lstm_rng r;
    lstm_rng_seed(&r, 11);
    for (int k = 0; k < 200; k++) {
        size_t n = 1 + lstm_rng_below(&r, 60);
        uint32_t d[64];
        for (size_t i = 0; i < n; i++) d[i] = lstm_rng_below(&r, 4) == 0 ? 3 : 4 + lstm_rng_below(&r, 6);
        for (size_t i = 0; i + 1 < n; i++) /* some turns start "tag BOS" */
            if ((i == 0 || d[i - 1] == 3) && lstm_rng_below(&r, 2)) d[i + 1] = 2;
        d[n - 1] = 3; /* as lstm-tok ends every document */
        for (int mode = LSTM_REVERSE_DOCS; mode <= LSTM_REVERSE_TURNS; mode++) {
            lstm_doc_reverse(d, n, mode, out, pos);
            lstm_doc_reverse(out, n, mode, back, NULL);
            CHECK(memcmp(back, d, n * sizeof *d) == 0);
            for (size_t i = 0; i < n; i++) CHECK(out[pos[i]] == d[i]);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "suggest")) return helper_suggest(argc, argv);
    if (!mkdtemp(dir)) return 1;
    snprintf(chat_path, sizeof chat_path, "%s/chat.ckpt", dir);
    snprintf(plain_path, sizeof plain_path, "%s/plain.ckpt", dir);
    snprintf(chars_path, sizeof chars_path, "%s/chars.ckpt", dir);
    lstm_set_threads(1);
    lstm_request_default(&defaults);
    test_doc_reverse();
    make_model(chat_path, 1, LSTM_TOK_WORDS);
    make_model(plain_path, 0, LSTM_TOK_WORDS);
    make_model(chars_path, 1, LSTM_TOK_CHARS);
    char asm_path[256];
    snprintf(asm_path, sizeof asm_path, "%s/asm.ckpt", dir);
    make_model_ex(asm_path, 1, LSTM_TOK_WORDS, 1, 0);
    test_lazy(asm_path);
    make_model_ex(asm_path, 1, LSTM_TOK_WORDS, 1, 3); /* the output layer reads the attention's h* */
    test_lazy(asm_path);
    unlink(asm_path);
    test_context();
    test_protocol();
    test_open_errors();
    test_threads();
    test_shared(chat_path);
    test_shared(chars_path);
    unlink(chat_path);
    unlink(plain_path);
    unlink(chars_path);
    rmdir(dir);
    CHECK_DONE("test_engine");
}
