/* test_eval.c: the library's log-sum-exp (lib/nn/mathx.h) against its double twin and at its edges,
 * and the evaluator (lib/lm/eval.h): the NLL-only pass over caller buffers equals the full pass, the
 * counts are consistent, the stateful pass differs from the reset one, BOS targets are not scored
 * (against a one-token-at-a-time pass), and the keystroke simulator of a word model books every typed
 * word through its callback. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dataset.h"
#include "eval.h"
#include "lm.h"
#include "mathx.h"
#include "modelfile.h"
#include "stream.h"
#include "tokenizer.h"
#include "windows.h"

static char dir[] = "/tmp/test_evalXXXXXX";

static void path_of(char *buf, const char *name) { snprintf(buf, 512, "%s/%s", dir, name); }

static void test_logsumexp(void)
{
    float x[1000];
    unsigned s = 1;
    for (int i = 0; i < 1000; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) % 20000) / 1000.0f - 10.0f;
    }
    const size_t ns[] = {1, 7, 15, 16, 17, 255, 256, 257, 1000};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        double a = lstm_logsumexp(x, ns[k]), b = lstm_logsumexp_ref(x, ns[k]);
        CHECK(fabs(a - b) < 1e-6 * fabs(b) + 1e-6);
    }
    /* one element: itself; -inf entries count for nothing; all -inf or none: -inf */
    CHECK(lstm_logsumexp(x, 1) == (double)x[0]);
    float y[3] = {2.0f, -INFINITY, 2.0f};
    CHECK(fabs(lstm_logsumexp(y, 3) - (2.0 + log(2.0))) < 1e-7);
    float z[2] = {-INFINITY, -INFINITY};
    CHECK(lstm_logsumexp(z, 2) == -INFINITY);
    CHECK(lstm_logsumexp(z, 0) == -INFINITY);
    CHECK(lstm_logsumexp_ref(z, 2) == -INFINITY);
    /* large logits do not overflow */
    float big[2] = {1e30f, 1e30f};
    CHECK(isfinite(lstm_logsumexp(big, 2)));
}

/* A space tokenizer over w0..w11, windows of T tokens over one text, and an untrained model. */
static int make_inputs(const char *win, const char *ckpt, int nwin, int T)
{
    lstm_tokenizer *tok = test_space_tokenizer("w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 , .");
    if (!tok) return -1;
    uint32_t V = lstm_tokenizer_vocab_size(tok);
    size_t n = (size_t)nwin * T + 1;
    uint32_t *seq = malloc(sizeof *seq * n);
    for (size_t i = 0; i < n; i++) seq[i] = i % 9 == 8 ? LSTM_EOS_ID : 4 + (uint32_t)((i * 7) % (V - 4));
    int rc = test_write_windows(win, tok, seq, nwin, T);
    free(seq);
    lstm_model_config c;
    lstm_model_config_default(&c);
    c.E = c.H = 8, c.L = 1, c.tie = 1, c.init_scale = 0.5f;
    if (!rc) rc = test_write_model(ckpt, tok, c, 5);
    lstm_tokenizer_free(tok);
    return rc;
}

typedef struct {
    long words, bad;
    double saved; /* keystrokes saved: chars + 1 - keys, summed */
} words_t;

static int on_word(void *ctx, const char *w, size_t n, size_t chars, long keys, long typed)
{
    words_t *c = ctx;
    c->words++;
    c->saved += (double)chars + 1 - (double)keys;
    if (n == 0 || chars == 0 || keys < 1 || keys > (long)chars + 1 || typed >= (long)chars || (typed >= 0 && keys != typed + 1) ||
        w[0] != 'w')
        c->bad++;
    return 0;
}

static void test_evaluator(void)
{
    char win[512], ckpt[512];
    path_of(win, "e.win");
    path_of(ckpt, "e.ckpt");
    int T = 5;
    CHECK_EQ_INT(make_inputs(win, ckpt, 40, T), 0);
    lstm_lm lm;
    CHECK_EQ_INT(lstm_lm_open(&lm, ckpt), 0);
    lstm_dataset *d;
    uint32_t kind;
    CHECK_EQ_INT(lstm_dataset_open(&d, win, 0, &kind), 0);
    if (check_failures) return;
    uint64_t nw = lstm_dataset_count(d);

    /* the full pass */
    lstm_eval_opts o = {0};
    o.k = 3;
    lstm_evaluator *e;
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 4, T, &o), 0);
    lstm_eval_result a, b, r;
    memset(&a, 0, sizeof a);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &a), 0);
    CHECK_EQ_INT(a.tokens, (long)nw * T);
    CHECK(a.nll > 0 && isfinite(a.nll));
    CHECK(0 <= a.top1 && a.top1 <= a.topk && a.topk <= a.tokens);
    CHECK(a.words > 0 && a.words <= a.tokens);
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 0, &r), 0); /* zero state at every window */
    CHECK_EQ_INT(r.tokens, a.tokens);
    CHECK(r.nll != a.nll);
    lstm_evaluator_free(e);

    /* NLL only, over the caller's buffers: the same bits */
    lstm_model *m = (lstm_model *)lm.m;
    lstm_acts acts;
    lstm_state st;
    CHECK_EQ_INT(lstm_acts_alloc(&acts, m, 4, T), 0);
    CHECK_EQ_INT(lstm_state_alloc(&st, m, 4), 0);
    uint32_t in[4 * 5], tg[4 * 5];
    uint8_t rs[4];
    CHECK_EQ_INT(lstm_evaluator_create_over(&e, m, &acts, &st, in, tg, rs, 4, T, &o), 0);
    memset(&b, 0, sizeof b);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &b), 0);
    CHECK(b.nll == a.nll && b.tokens == a.tokens && b.top1 == 0 && b.words == 0);
    /* a stop flag ends the pass early */
    volatile sig_atomic_t stop = 1;
    lstm_evaluator_free(e);
    o.stop = &stop;
    CHECK_EQ_INT(lstm_evaluator_create_over(&e, m, &acts, &st, in, tg, rs, 4, T, &o), 0);
    memset(&b, 0, sizeof b);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &b), 0);
    CHECK_EQ_INT(b.tokens, 0);
    lstm_evaluator_free(e);
    CHECK_EQ_INT(lstm_evaluator_create_over(&e, m, &acts, &st, in, tg, rs, 8, T, &o), LSTM_E_ARG);
    lstm_acts_free(&acts);
    lstm_state_free(&st);
    o.stop = NULL;

    /* keystrokes (one lane): every typed word through the callback, adding up to the totals */
    words_t w = {0};
    o.keystrokes = 1;
    o.beam_words = 4;
    o.ctx = &w;
    o.on_word = on_word;
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 4, T, &o), LSTM_E_ARG);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), 0);
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, nw, 1, &r), 0);
    CHECK_EQ_INT(r.tokens, a.tokens);
    CHECK(r.typed_words > 0 && r.typed_words == w.words && w.bad == 0);
    /* punctuation costs the same with and without suggestions: the words account for all the savings */
    CHECK(r.keys_with <= r.keys_without && r.keys_without - r.keys_with == w.saved);
    CHECK(r.accepted <= r.typed_words);
    lstm_evaluator_free(e);
    CHECK(lstm_eval_ppl(1.0) == exp(1.0) && lstm_eval_ppl(1000) == INFINITY);

    lstm_dataset_free(d);
    lstm_lm_close(&lm);
}

/* Windows whose targets hold BOS (a chat turn's, after its speaker tag): the evaluator scores every
 * other target, as lstm-ngram does; its NLL is that of a one-token-at-a-time pass summing the others. */
static void test_bos_not_scored(void)
{
    char win[512], ckpt[512];
    path_of(win, "b.win");
    path_of(ckpt, "b.ckpt");
    enum { NW = 12, T = 6 };
    lstm_tokenizer *tok = test_space_tokenizer("w0 w1 w2 w3 w4 w5 .");
    if (!tok) {
        CHECK(tok != NULL);
        return;
    }
    uint32_t V = lstm_tokenizer_vocab_size(tok), seq[NW * T + 1];
    long nbos = 0;
    for (size_t i = 0; i < NW * T + 1; i++) {
        seq[i] = i % 7 == 3 ? LSTM_BOS_ID : i % 7 == 6 ? LSTM_EOS_ID : 4 + (uint32_t)((i * 5) % (V - 4));
        nbos += i > 0 && seq[i] == LSTM_BOS_ID; /* seq[0] is an input only */
    }
    CHECK(nbos > 5);
    int rc = test_write_windows(win, tok, seq, NW, T);
    lstm_model_config c;
    lstm_model_config_default(&c);
    c.E = c.H = 8, c.L = 1, c.tie = 1, c.init_scale = 0.5f;
    if (!rc) rc = test_write_model(ckpt, tok, c, 9);
    lstm_tokenizer_free(tok);
    CHECK_EQ_INT(rc, 0);
    lstm_lm lm;
    lstm_dataset *d;
    uint32_t kind;
    CHECK_EQ_INT(lstm_lm_open(&lm, ckpt), 0);
    CHECK_EQ_INT(lstm_dataset_open(&d, win, 0, &kind), 0);
    if (check_failures) return;
    lstm_eval_opts o = {0};
    o.k = 1;
    lstm_evaluator *e;
    lstm_eval_result r;
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(lstm_evaluator_create(&e, &lm, 1, T, &o), 0);
    CHECK_EQ_INT(lstm_evaluator_run(e, d, 0, lstm_dataset_count(d), 1, &r), 0);
    CHECK_EQ_INT(r.tokens, NW * T - nbos);
    lstm_infer inf;
    lstm_state st;
    float lg[64];
    CHECK(lm.V <= 64);
    CHECK_EQ_INT(lstm_infer_alloc(&inf, lm.m, 1), 0);
    CHECK_EQ_INT(lstm_state_alloc(&st, lm.m, 1), 0);
    lstm_state_zero(&st);
    double nll = 0;
    for (size_t t = 0; t < NW * T; t++) {
        CHECK_EQ_INT(lstm_infer_step(&inf, &st, &seq[t], lg), 0);
        if (seq[t + 1] != LSTM_BOS_ID) nll += lstm_logsumexp_ref(lg, (size_t)lm.V) - lg[seq[t + 1]];
    }
    CHECK(fabs(r.nll - nll) < 1e-5 * nll);
    lstm_infer_free(&inf);
    lstm_state_free(&st);
    lstm_evaluator_free(e);
    lstm_dataset_free(d);
    lstm_lm_close(&lm);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_logsumexp();
    test_evaluator();
    test_bos_not_scored();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    CHECK_DONE("test_eval");
}
