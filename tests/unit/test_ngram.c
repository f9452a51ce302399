/* test_ngram.c: the Kneser-Ney n-gram model: discounts, hand-computed probabilities, normalisation
 * of every context for orders 1..4, the top-1 search against brute force, the full distribution of
 * the scorer against the probabilities, which targets each rule scores, the keystroke simulator
 * (lib/lm/eval.h) run on an n-gram by hand, the model file round trip and its rejection of truncated
 * and bit-flipped files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "eval.h"
#include "hash.h"
#include "lm.h"
#include "ngram.h"
#include "stream.h"
#include "tokenizer.h"
#include "windows.h"

#define A 4u /* ids of the tiny vocabulary "a b c" */
#define B 5u
#define C 6u
#define EOS LSTM_EOS_ID
#define BOS LSTM_BOS_ID
#define UNK LSTM_UNK_ID

static int near(double x, double y, double tol) { return fabs(x - y) <= tol; }

static lstm_ngram *build(unsigned order, uint32_t V, int cross, const uint32_t *const *docs, const size_t *lens,
                         size_t ndocs, const lstm_ngram_opts *opts)
{
    lstm_ngram_counter *c;
    lstm_ngram *m = NULL;
    CHECK(lstm_ngram_counter_new(&c, order, V, cross) == 0);
    for (size_t d = 0; d < ndocs; d++) CHECK(lstm_ngram_counter_add(c, docs[d], lens[d]) == 0);
    static const uint8_t blob[] = "tok";
    CHECK(lstm_ngram_estimate(&m, c, opts, blob, sizeof blob) == 0);
    lstm_ngram_counter_free(c);
    return m;
}

static double P(const lstm_ngram *m, const uint32_t *h, size_t nh, uint32_t w)
{
    double p = -1;
    CHECK(lstm_ngram_prob(m, h, nh, w, &p) == 0);
    return p;
}

static void test_discounts(void)
{
    /* n1..n4 = 100 40 20 10: Y = 100/180 = 5/9, D1 = 1 - 2(5/9)(40/100) = 5/9,
     * D2 = 2 - 3(5/9)(20/40) = 7/6, D3+ = 3 - 4(5/9)(10/20) = 17/9. */
    uint64_t n[4] = {100, 40, 20, 10};
    double D[3];
    int fb = 0;
    lstm_ngram_discounts(n, D, &fb);
    CHECK(fb == 0);
    CHECK(near(D[0], 5.0 / 9, 1e-12) && near(D[1], 7.0 / 6, 1e-12) && near(D[2], 17.0 / 9, 1e-12));
    /* no n3: D2 and D3+ cannot be estimated and fall back to 1.0 and 1.5 */
    uint64_t z[4] = {10, 4, 0, 0};
    fb = 0;
    lstm_ngram_discounts(z, D, &fb);
    CHECK(fb == 1);
    CHECK(near(D[0], 1 - 2 * (10.0 / 18) * 0.4, 1e-12) && D[1] == 1.0 && D[2] == 1.5);
}

/* One document "a b a b c" (+ EOS), fixed discounts D1 = 0.5, D2 = 1.0, D3+ = 1.5 at every order.
 * Sequence with its start context: BOS a b a b c EOS. Predictable ids: UNK EOS a b c (V - 2 = 5).
 *
 * Unigram continuation counts N1+(. w): a {BOS, b} = 2, b {a} = 1, c {b} = 1, EOS {c} = 1; total 5.
 * gamma numerator = D1 * 3 (b, c, EOS) + D2 * 1 (a) = 2.5; uniform = 1/5.
 *   p1(a) = (2 - 1.0 + 2.5/5) / 5 = 0.3     p1(b) = p1(c) = p1(EOS) = (1 - 0.5 + 0.5) / 5 = 0.2
 *   p1(UNK) = 0.5 / 5 = 0.1                  (sum 1)
 * Bigram (highest order, raw counts): BOS a 1, a b 2, b a 1, b c 1, c EOS 1.
 *   context a: c(a.) = 2, one follower with count 2: gamma = D2 / 2 = 0.5
 *     p(b|a) = (2 - 1.0) / 2 + 0.5 * 0.2 = 0.6     p(a|a) = 0.5 * 0.3 = 0.15    p(UNK|a) = 0.05
 *   context b: c(b.) = 2, two followers with count 1: gamma = 2 * D1 / 2 = 0.5
 *     p(a|b) = 0.5/2 + 0.5 * 0.3 = 0.4    p(c|b) = 0.25 + 0.1 = 0.35
 *   context BOS: p(a|BOS) = (1 - 0.5) / 1 + 0.5 * 0.3 = 0.65
 * Trigram: the bigrams' counts become continuation counts except BOS a (nothing precedes it: raw 1):
 *   a b <- {BOS, b} = 2, b a 1, b c 1, c EOS 1 — the same numbers as above here, so
 *   p(c | a b) = (1 - 0.5) / 2 + (2 * 0.5 / 2) * p(c|b) = 0.25 + 0.5 * 0.35 = 0.425
 *   p(b | BOS a) = (1 - 0.5) / 1 + 0.5 * p(b|a) = 0.5 + 0.5 * 0.6 = 0.8 */
static void test_hand(void)
{
    static const uint32_t doc[] = {A, B, A, B, C, EOS};
    const uint32_t *docs[] = {doc};
    size_t lens[] = {6};
    lstm_ngram_opts o = {1, {0.5, 1.0, 1.5}};
    lstm_ngram *m2 = build(2, 7, 0, docs, lens, 1, &o);
    lstm_ngram *m3 = build(3, 7, 0, docs, lens, 1, &o);
    if (!m2 || !m3) return;
    const double t = 1e-12;
    CHECK(near(P(m2, NULL, 0, A), 0.3, t));
    CHECK(near(P(m2, NULL, 0, B), 0.2, t));
    CHECK(near(P(m2, NULL, 0, EOS), 0.2, t));
    CHECK(near(P(m2, NULL, 0, UNK), 0.1, t));
    CHECK(P(m2, NULL, 0, BOS) == 0 && P(m2, NULL, 0, LSTM_PAD_ID) == 0);
    uint32_t h[2] = {A, 0};
    CHECK(near(P(m2, h, 1, B), 0.6, t));
    CHECK(near(P(m2, h, 1, A), 0.15, t));
    CHECK(near(P(m2, h, 1, UNK), 0.05, t));
    h[0] = B;
    CHECK(near(P(m2, h, 1, A), 0.4, t));
    CHECK(near(P(m2, h, 1, C), 0.35, t));
    h[0] = BOS;
    CHECK(near(P(m2, h, 1, A), 0.65, t));
    h[0] = UNK; /* an unseen context: the unigram distribution */
    CHECK(near(P(m2, h, 1, A), 0.3, t));
    uint32_t ab[2] = {A, B}, sa[2] = {BOS, A};
    CHECK(near(P(m3, ab, 2, C), 0.425, t));
    CHECK(near(P(m3, sa, 2, B), 0.8, t));
    /* the history is cut to order - 1 tokens */
    uint32_t xab[3] = {C, A, B};
    CHECK(P(m3, xab, 3, C) == P(m3, ab, 2, C));

    /* the scorer walks the same sequence, every token a target (ALL): NLL = -sum ln p over
     * a b a b c EOS (bigram) */
    lstm_ngram_scorer *s;
    CHECK(lstm_ngram_scorer_new(&s, m2, 1) == 0);
    CHECK(lstm_ngram_scorer_targets(s, LSTM_NGRAM_TARGETS_ALL) == 0);
    CHECK(lstm_ngram_scorer_add(s, doc, 6) == 0);
    lstm_ngram_stats st;
    lstm_ngram_scorer_stats(s, &st);
    double want = -log(0.65) - log(0.6) - log(0.4) - log(0.6) - log(0.35) - log(P(m2, (uint32_t[]){C}, 1, EOS));
    CHECK_EQ_INT(st.tokens, 6);
    CHECK(near(st.nll, want, 1e-12));
    /* argmax after BOS: a (0.65); after a: b (0.6); after b: a (0.4) beats c (0.35); after c: EOS
     * ((1 - 0.5) / 1 + 0.5 * 0.2 = 0.6): all right but c|b */
    CHECK_EQ_INT(st.top1, 5);
    CHECK(lstm_ngram_scorer_targets(s, LSTM_NGRAM_TARGETS_DOCS) == LSTM_E_ARG); /* a document was read */
    lstm_ngram_scorer_free(s);
    /* The default of a per-document model (DOCS): the targets of the document's windows, all but its
     * first token (a, 0.65 after BOS); every document's. STREAM: the stream's first token only. */
    CHECK(lstm_ngram_default_targets(m2) == LSTM_NGRAM_TARGETS_DOCS);
    CHECK(lstm_ngram_scorer_new(&s, m2, 1) == 0);
    CHECK(lstm_ngram_scorer_add(s, doc, 6) == 0 && lstm_ngram_scorer_add(s, doc, 6) == 0);
    lstm_ngram_scorer_stats(s, &st);
    CHECK_EQ_INT(st.tokens, 10);
    CHECK_EQ_INT(st.skipped, 2);
    CHECK(near(st.nll, 2 * (want + log(0.65)), 1e-12));
    CHECK_EQ_INT(st.top1, 8);
    lstm_ngram_scorer_free(s);
    CHECK(lstm_ngram_scorer_new(&s, m2, 1) == 0);
    CHECK(lstm_ngram_scorer_targets(s, LSTM_NGRAM_TARGETS_STREAM) == 0);
    CHECK(lstm_ngram_scorer_add(s, doc, 6) == 0 && lstm_ngram_scorer_add(s, doc, 6) == 0);
    lstm_ngram_scorer_stats(s, &st);
    CHECK_EQ_INT(st.tokens, 11);
    CHECK(near(st.nll, 2 * want + log(0.65), 1e-12));
    CHECK(lstm_ngram_scorer_targets(s, 3) == LSTM_E_ARG);
    lstm_ngram_scorer_free(s);
    /* BOS and PAD are never targets, even inside a document (a chat turn: tag BOS tokens EOS) */
    static const uint32_t chat[] = {A, BOS, B, LSTM_PAD_ID, C, EOS};
    CHECK(lstm_ngram_scorer_new(&s, m2, 0) == 0);
    CHECK(lstm_ngram_scorer_add(s, chat, 6) == 0);
    lstm_ngram_scorer_stats(s, &st);
    CHECK_EQ_INT(st.tokens, 3); /* b, c, EOS: not a (the first), BOS, PAD */
    CHECK_EQ_INT(st.skipped, 3);
    lstm_ngram_scorer_free(s);
    CHECK(lstm_ngram_targets_parse("docs") == LSTM_NGRAM_TARGETS_DOCS &&
          lstm_ngram_targets_parse("stream") == LSTM_NGRAM_TARGETS_STREAM &&
          lstm_ngram_targets_parse("all") == LSTM_NGRAM_TARGETS_ALL && lstm_ngram_targets_parse("every") == -1);
    CHECK(!strcmp(lstm_ngram_targets_name(LSTM_NGRAM_TARGETS_STREAM), "stream"));
    lstm_ngram_free(m2);
    lstm_ngram_free(m3);
}

/* A small skewed corpus: 40 documents over 14 ids (some never seen), with UNK and EOS. */
#define SV 14u
static uint32_t corpus[40][30];
static size_t corpus_len[40];

static void make_corpus(void)
{
    uint64_t x = 12345;
    for (int d = 0; d < 40; d++) {
        size_t n = 3 + (size_t)(d * 7 % 23);
        for (size_t i = 0; i < n - 1; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(x >> 11) / 9007199254740992.0;
            uint32_t id = 4 + (uint32_t)(8 * u * u); /* ids 4..11, skewed to small ones; 12, 13 unseen */
            if (u > 0.97) id = UNK;
            corpus[d][i] = id;
        }
        corpus[d][n - 1] = EOS;
        corpus_len[d] = n;
    }
}

/* Histories to test: every history of the corpus under the model's sequence rules, plus some unseen. */
static void check_all_contexts(const lstm_ngram *m, lstm_ngram_scorer *s, unsigned order, int cross, int *nctx)
{
    uint32_t seq[40 * 31 + 1];
    size_t n = 0;
    double worst = 0, worst_arg = 0;
    for (int d = 0; d < 40; d++) {
        if (!cross || d == 0) seq[n++] = BOS;
        size_t start = n;
        memcpy(seq + n, corpus[d], corpus_len[d] * sizeof *seq);
        n += corpus_len[d];
        for (size_t i = start; i <= n; i++) {
            size_t lo = cross ? 0 : start - 1;
            size_t nh = i - lo < order - 1 ? i - lo : order - 1;
            const uint32_t *h = seq + i - nh;
            double sum = 0, best = -1;
            uint32_t bw = 0;
            for (uint32_t w = 0; w < SV; w++) {
                double p = P(m, h, nh, w);
                CHECK(p >= 0);
                sum += p;
                if (p > best) best = p, bw = w;
            }
            if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
            uint32_t aw;
            double ap;
            CHECK(lstm_ngram_scorer_argmax(s, h, nh, &aw, &ap) == 0);
            if (fabs(ap - best) > worst_arg) worst_arg = fabs(ap - best);
            CHECK(aw == bw || fabs(P(m, h, nh, aw) - best) < 1e-15);
            (*nctx)++;
        }
    }
    /* unseen histories, including never-seen ids and a BOS in the middle */
    static const uint32_t odd[][3] = {{12, 13, 12}, {BOS, 13, 4}, {4, BOS, 5}, {UNK, UNK, UNK}, {EOS, EOS, 4}};
    for (size_t j = 0; j < sizeof odd / sizeof odd[0]; j++) {
        double sum = 0;
        for (uint32_t w = 0; w < SV; w++) sum += P(m, odd[j], 3, w);
        if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
    }
    if (worst > 1e-9) fprintf(stderr, "order %u cross %d: worst |sum - 1| = %g\n", order, cross, worst);
    CHECK(worst <= 1e-9);
    CHECK(worst_arg <= 1e-12);
}

static void test_normalised(void)
{
    const uint32_t *docs[40];
    for (int d = 0; d < 40; d++) docs[d] = corpus[d];
    for (int cross = 0; cross <= 1; cross++) {
        for (unsigned order = 1; order <= 4; order++) {
            lstm_ngram *m = build(order, SV, cross, docs, corpus_len, 40, NULL);
            if (!m) continue;
            lstm_ngram_scorer *s;
            CHECK(lstm_ngram_scorer_new(&s, m, 1) == 0);
            int nctx = 0;
            check_all_contexts(m, s, order, cross, &nctx);
            CHECK(nctx > 400);
            /* computed discounts lie in (0, k] */
            for (unsigned k = 1; k <= order; k++) {
                double D[3];
                CHECK(lstm_ngram_level(m, k, NULL, NULL, D, NULL) == 0);
                CHECK(D[0] > 0 && D[0] <= 1 && D[1] > 0 && D[1] <= 2 && D[2] > 0 && D[2] <= 3);
            }
            lstm_ngram_scorer_free(s);
            lstm_ngram_free(m);
        }
    }
}

/* lstm_ngram_scorer_dist at every target of the corpus (ALL, per document: the history of position i
 * is BOS and the document's first i tokens) against lstm_ngram_prob for every id. */
typedef struct {
    const lstm_ngram *m;
    const uint32_t *doc;
    size_t i;
    unsigned order;
    double worst, sum_worst;
    long calls, bad;
    long top1, top3; /* by brute force over lstm_ngram_prob */
} dist_ctx;

static int dist_check(void *ctx, lstm_ngram_scorer *s, uint32_t prev, uint32_t y)
{
    dist_ctx *c = ctx;
    float lp[SV];
    uint32_t h[32];
    h[0] = BOS;
    memcpy(h + 1, c->doc, c->i * sizeof *h);
    size_t nh = c->i + 1, k = nh < c->order - 1 ? nh : c->order - 1;
    c->bad += lstm_ngram_scorer_dist(s, lp) != 0 || prev != h[nh - 1] || y != c->doc[c->i];
    double sum = 0;
    for (uint32_t w = 0; w < SV; w++) {
        double p = P(c->m, h + nh - k, k, w);
        if (p == 0) {
            c->bad += !(isinf(lp[w]) && lp[w] < 0);
            continue;
        }
        double d = fabs(lp[w] - log(p)) / (fabs(log(p)) + 1);
        if (d > c->worst) c->worst = d;
        sum += exp((double)lp[w]);
    }
    if (fabs(sum - 1) > c->sum_worst) c->sum_worst = fabs(sum - 1);
    double py = P(c->m, h + nh - k, k, y);
    int above = 0;
    for (uint32_t w = 0; w < SV; w++) {
        double p = P(c->m, h + nh - k, k, w);
        above += p > py || (p == py && w < y);
    }
    c->top1 += above < 1;
    c->top3 += above < 3;
    c->calls++;
    c->i++;
    return 0;
}

static void test_dist(void)
{
    const uint32_t *docs[40];
    for (int d = 0; d < 40; d++) docs[d] = corpus[d];
    for (unsigned order = 1; order <= 4; order++) {
        lstm_ngram *m = build(order, SV, 0, docs, corpus_len, 40, NULL);
        if (!m) continue;
        lstm_ngram_scorer *s;
        CHECK(lstm_ngram_scorer_new(&s, m, order % 2) == 0); /* with and without the ranks */
        CHECK(lstm_ngram_scorer_targets(s, LSTM_NGRAM_TARGETS_ALL) == 0);
        CHECK(lstm_ngram_scorer_topk(s, 3) == 0 && lstm_ngram_scorer_topk(s, 0) == LSTM_E_ARG);
        dist_ctx c = {m, NULL, 0, order, 0, 0, 0, 0, 0, 0};
        lstm_ngram_scorer_on_target(s, dist_check, &c);
        long n = 0;
        for (int d = 0; d < 40; d++) {
            c.doc = corpus[d];
            c.i = 0;
            CHECK(lstm_ngram_scorer_add(s, corpus[d], corpus_len[d]) == 0);
            n += (long)corpus_len[d];
        }
        CHECK(c.calls == n);
        CHECK_EQ_INT(c.bad, 0);
        CHECK(c.worst < 1e-6);   /* float log-probabilities of the exact distribution */
        CHECK(c.sum_worst < 1e-5);
        /* top-1 and top-3 over the whole distribution, as a brute force ranks every id */
        lstm_ngram_stats st;
        lstm_ngram_scorer_stats(s, &st);
        if (order % 2) {
            CHECK_EQ_INT(st.top1, c.top1);
            CHECK_EQ_INT(st.topk, c.top3);
            CHECK(c.top1 < c.top3 && c.top3 < n); /* the ranks are not all alike */
        } else {
            CHECK(st.top1 == 0 && st.topk == 0);
        }
        lstm_ngram_scorer_free(s);
        lstm_ngram_free(m);
    }
    /* a --cross-docs model's windows run through documents: only the stream's first token is skipped */
    lstm_ngram *x = build(2, SV, 1, docs, corpus_len, 40, NULL);
    if (x) CHECK(lstm_ngram_default_targets(x) == LSTM_NGRAM_TARGETS_STREAM);
    lstm_ngram_free(x);
}

/* The keystroke simulator (eval.h) on an n-gram: every typed word booked as by hand. */
typedef struct {
    char words[16][16];
    long typed[16];
    int n;
} typed_log;

static int log_word(void *ctx, const char *w, size_t n, size_t chars, long keys, long typed)
{
    typed_log *l = ctx;
    (void)chars, (void)keys;
    if (l->n < 16 && n < 16) {
        memcpy(l->words[l->n], w, n);
        l->words[l->n][n] = 0;
        l->typed[l->n++] = typed;
    }
    return 0;
}

static void test_keystrokes(void)
{
    lstm_tokenizer *tok = test_space_tokenizer("the cat sat on the mat . cow");
    uint8_t *blob = NULL;
    size_t bl = 0;
    CHECK(tok && lstm_tokenizer_serialize(tok, &blob, &bl) == 0);
    lstm_lm lm;
    CHECK(blob && lstm_lm_open_tokenizer(&lm, blob, bl) == 0);
    if (!blob || !lm.tok) return;
    CHECK(lm.m == NULL && lm.V == (int)lstm_tokenizer_vocab_size(tok) && lm.kind == LSTM_TOK_SPACE);
    uint32_t the, cat, sat, on, mat, dot, cow;
    lstm_ids ids = {0};
    CHECK(lstm_tokenizer_encode(tok, "the cat sat on mat . cow", 24, &ids) == 0 && ids.n >= 7);
    if (ids.n < 7) return;
    the = ids.v[0], cat = ids.v[1], sat = ids.v[2], on = ids.v[3], mat = ids.v[4], dot = ids.v[5], cow = ids.v[6];
    lstm_ids_free(&ids);
    /* "the cat sat on the mat ." 20 times: the trigram is sure of every next word */
    uint32_t sent[] = {the, cat, sat, on, the, mat, dot, EOS};
    const uint32_t *docs[24];
    size_t lens[24];
    for (int d = 0; d < 20; d++) docs[d] = sent, lens[d] = 8;
    lstm_ngram *m = build(3, (uint32_t)lm.V, 0, docs, lens, 20, NULL);
    lstm_eval_result r;
    memset(&r, 0, sizeof r);
    lstm_keys ks;
    typed_log tl = {{{0}}, {0}, 0};
    CHECK(lstm_keys_init(&ks, &lm, 1, 1, &r, &tl, log_word) == 0);
    lstm_ngram_scorer *s;
    CHECK(m && lstm_ngram_scorer_new(&s, m, 0) == 0);
    if (!m) return;
    lstm_ngram_scorer_on_target(s, lstm_keys_ngram_target, &ks);
    /* not the first "the" (no window predicts it); cat sat on the mat each taken before a character is
     * typed: 1 keystroke instead of 4, 4, 3, 4, 4; "." typed (1); EOS costs nothing */
    CHECK(lstm_ngram_scorer_add(s, sent, 8) == 0);
    CHECK(r.keys_without == 20 && r.keys_with == 6);
    CHECK(r.typed_words == 5 && r.accepted == 5 && r.shown == 5);
    CHECK(tl.n == 5 && !strcmp(tl.words[0], "cat") && !strcmp(tl.words[4], "mat") && tl.typed[0] == 0 && tl.typed[4] == 0);
    lstm_ngram_scorer_free(s);
    lstm_ngram_free(m);
    /* 3 x "the cat sat", 1 x "the cow sat": after "the", cat is first; cow is shown (k = 1) once "co" is
     * typed: 3 keystrokes instead of 4. An unknown word: 5 characters and the space, typed. */
    uint32_t a[] = {the, cat, sat, EOS}, b[] = {the, cow, sat, EOS}, u[] = {the, UNK, EOS};
    docs[0] = docs[1] = docs[2] = a, docs[3] = b;
    lens[0] = lens[1] = lens[2] = lens[3] = 4;
    m = build(3, (uint32_t)lm.V, 0, docs, lens, 4, NULL);
    memset(&r, 0, sizeof r);
    tl.n = 0;
    CHECK(m && lstm_ngram_scorer_new(&s, m, 1) == 0);
    if (!m) return;
    lstm_ngram_scorer_on_target(s, lstm_keys_ngram_target, &ks);
    CHECK(lstm_ngram_scorer_add(s, b, 4) == 0 && lstm_ngram_scorer_add(s, u, 3) == 0);
    CHECK(r.keys_without == 4 + 4 + 6 && r.keys_with == 3 + 1 + 6);
    CHECK(r.typed_words == 3 && r.accepted == 2 && r.shown == 3 + 1);
    CHECK(tl.n == 3 && !strcmp(tl.words[0], "cow") && tl.typed[0] == 2 && tl.typed[1] == 0 && tl.typed[2] == -1);
    CHECK(lstm_keys_ranks(&ks, the, cow) && !lstm_keys_ranks(&ks, mat, dot) && !lstm_keys_ranks(&ks, the, UNK) &&
          !lstm_keys_ranks(&ks, dot, EOS));
    lstm_ngram_scorer_free(s);
    lstm_ngram_free(m);
    lstm_keys_free(&ks);
    lstm_lm_close(&lm);
    free(blob);
    lstm_tokenizer_free(tok);
    /* a character tokenizer's words come from a beam over a network's states: no simulator without one */
    lstm_tokenizer_opts co = {LSTM_TOK_CHARS, 0, NULL};
    lstm_tokenizer_build_opts bo = {0};
    CHECK(lstm_tokenizer_create(&tok, &co) == 0);
    CHECK(lstm_tokenizer_count(tok, "abc", 3, &ids) == 0 && lstm_tokenizer_build(tok, &bo, NULL, NULL) == 0);
    lstm_ids_free(&ids);
    CHECK(lstm_tokenizer_serialize(tok, &blob, &bl) == 0);
    CHECK(lstm_lm_open_tokenizer(&lm, blob, bl) == 0);
    CHECK(lstm_keys_init(&ks, &lm, 3, 8, &r, NULL, NULL) == LSTM_E_ARG);
    lstm_lm_close(&lm);
    free(blob);
    lstm_tokenizer_free(tok);
}

/* Writes m to a temp file and reads it back into memory. */
static uint8_t *to_bytes(const lstm_ngram *m, size_t *len)
{
    char path[] = "/tmp/test_ngram_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return NULL;
    unlink(path);
    CHECK(lstm_ngram_write(m, fd) == 0);
    off_t n = lseek(fd, 0, SEEK_END);
    uint8_t *buf = malloc((size_t)n);
    CHECK(pread(fd, buf, (size_t)n, 0) == n);
    close(fd);
    *len = (size_t)n;
    return buf;
}

static void test_file(void)
{
    const uint32_t *docs[40];
    for (int d = 0; d < 40; d++) docs[d] = corpus[d];
    lstm_ngram *m = build(3, SV, 1, docs, corpus_len, 40, NULL);
    if (!m) return;
    size_t len;
    uint8_t *buf = to_bytes(m, &len);
    lstm_ngram *r = NULL;
    CHECK(lstm_ngram_load(&r, buf, len) == 0);
    if (r) {
        CHECK(lstm_ngram_order(r) == 3 && lstm_ngram_vocab(r) == SV && lstm_ngram_cross_docs(r) == 1);
        CHECK(lstm_ngram_train_tokens(r) == lstm_ngram_train_tokens(m));
        size_t tl;
        const uint8_t *tb = lstm_ngram_tokenizer(r, &tl);
        CHECK(tl == 4 && memcmp(tb, "tok", 4) == 0);
        /* bit-identical probabilities for every history of length 0..2 over the vocabulary */
        int same = 1;
        for (uint32_t a = 0; a < SV; a++)
            for (uint32_t b = 0; b < SV; b++)
                for (uint32_t w = 0; w < SV; w++) {
                    uint32_t h[2] = {a, b};
                    same &= P(m, h, 2, w) == P(r, h, 2, w) && P(m, h + 1, 1, w) == P(r, h + 1, 1, w) &&
                            P(m, NULL, 0, w) == P(r, NULL, 0, w);
                }
        CHECK(same);
        /* writing the loaded model gives the same bytes */
        size_t len2;
        uint8_t *buf2 = to_bytes(r, &len2);
        CHECK(len2 == len && buf2 && memcmp(buf, buf2, len) == 0);
        free(buf2);
        lstm_ngram_free(r);
    }
    /* every truncation is rejected: a prefix of the magic as truncated, the rest by the length */
    for (size_t cut = 0; cut < len; cut += cut < 80 ? 1 : 97) {
        r = NULL;
        int rc = lstm_ngram_load(&r, buf, cut);
        CHECK(r == NULL && (rc == LSTM_E_TRUNCATED || (cut == 0 && rc == LSTM_E_MAGIC)));
    }
    /* version 2: the file ends with the XXH64 (seed 0) of every byte before it */
    CHECK(len > 72 && lstm_get_u32(buf + 8) == 2 && lstm_get_u64(buf + 40) == len);
    CHECK(lstm_get_u64(buf + len - 8) == lstm_xxh64(buf, len - 8, 0));
    /* every flipped byte is rejected; past the header only the checksum can see it */
    int bad = 0;
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x10;
        r = NULL;
        int rc = lstm_ngram_load(&r, buf, len);
        if (r || rc == 0) bad++;
        if (i >= 64 && rc != LSTM_E_CORRUPT) bad++;
        if (i < 8) CHECK(rc == LSTM_E_MAGIC);
        buf[i] ^= 0x10;
    }
    CHECK_EQ_INT(bad, 0);
    /* trailing bytes and another version */
    uint8_t *big = malloc(len + 1);
    memcpy(big, buf, len);
    big[len] = 0;
    CHECK(lstm_ngram_load(&r, big, len + 1) == LSTM_E_FORMAT);
    big[8] = 3;
    CHECK(lstm_ngram_load(&r, big, len) == LSTM_E_VERSION);
    big[8] = 1; /* version 1 (a CRC-32 checksum) is no longer read */
    CHECK(lstm_ngram_load(&r, big, len) == LSTM_E_VERSION);
    /* lstm_ngram_read tells which version a refused file declares (0: none) */
    static const struct { uint8_t v; int rc; uint32_t seen; size_t n; } rd[] = {
        {2, 0, 2, 0}, {1, LSTM_E_VERSION, 1, 0}, {7, LSTM_E_VERSION, 7, 0}, {2, LSTM_E_TRUNCATED, 2, 20},
        {2, LSTM_E_TRUNCATED, 0, 11}};
    for (size_t i = 0; i < sizeof rd / sizeof rd[0]; i++) {
        char path[] = "/tmp/test_ngram_XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        if (fd < 0) break;
        unlink(path);
        big[8] = rd[i].v;
        size_t n = rd[i].n ? rd[i].n : len;
        CHECK(write(fd, big, n) == (ssize_t)n && lseek(fd, 0, SEEK_SET) == 0);
        uint32_t seen = 99;
        r = NULL;
        CHECK_EQ_INT(lstm_ngram_read(&r, fd, &seen), rd[i].rc);
        CHECK_EQ_INT(seen, rd[i].seen);
        CHECK((r != NULL) == (rd[i].rc == 0));
        lstm_ngram_free(r);
        CHECK(lseek(fd, 0, SEEK_SET) == 0 && write(fd, "not a model", 11) == 11 && ftruncate(fd, 11) == 0 &&
              lseek(fd, 0, SEEK_SET) == 0);
        CHECK(lstm_ngram_read(&r, fd, &seen) == LSTM_E_MAGIC && seen == 0 && r == NULL);
        close(fd);
    }
    free(big);
    free(buf);
    lstm_ngram_free(m);
}

static void test_errors(void)
{
    lstm_ngram_counter *c;
    lstm_ngram *m = NULL;
    CHECK(lstm_ngram_counter_new(&c, 0, 10, 0) == LSTM_E_ARG);
    CHECK(lstm_ngram_counter_new(&c, LSTM_NGRAM_MAX_ORDER + 1, 10, 0) == LSTM_E_ARG);
    CHECK(lstm_ngram_counter_new(&c, 3, 4, 0) == LSTM_E_ARG);
    CHECK(lstm_ngram_counter_new(&c, 3, 10, 0) == 0);
    CHECK(lstm_ngram_estimate(&m, c, NULL, NULL, 0) == LSTM_E_EMPTY && m == NULL);
    uint32_t bad[2] = {4, 10};
    CHECK(lstm_ngram_counter_add(c, bad, 2) == LSTM_E_RANGE);
    CHECK(lstm_ngram_counter_tokens(c) == 0);
    /* a document of BOS / PAD only predicts nothing */
    uint32_t specials[2] = {BOS, LSTM_PAD_ID};
    CHECK(lstm_ngram_counter_add(c, specials, 2) == 0);
    CHECK(lstm_ngram_counter_tokens(c) == 0);
    lstm_ngram_opts o = {1, {0.5, 2.5, 1.5}}; /* D2 > 2 */
    uint32_t ok[2] = {4, EOS};
    CHECK(lstm_ngram_counter_add(c, ok, 2) == 0);
    CHECK(lstm_ngram_estimate(&m, c, &o, NULL, 0) == LSTM_E_ARG);
    CHECK(lstm_ngram_estimate(&m, c, NULL, NULL, 0) == 0);
    double p;
    CHECK(lstm_ngram_prob(m, NULL, 0, 10, &p) == LSTM_E_RANGE);
    CHECK(lstm_ngram_prob(m, bad, 2, 4, &p) == LSTM_E_RANGE);
    lstm_ngram_free(m);
    lstm_ngram_counter_free(c);
}

int main(void)
{
    make_corpus();
    test_discounts();
    test_hand();
    test_normalised();
    test_dist();
    test_keystrokes();
    test_file();
    test_errors();
    CHECK_DONE("test_ngram");
}
