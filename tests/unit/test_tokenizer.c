/* test_tokenizer.c: word / space / char / BPE tokenizers, vocabulary order, speakers, decoding,
 * the blob (round trip, every truncation, bit flips) and vocab files. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "tokenizer.h"

static lstm_tokenizer *make(int kind, int keep_case, const char *unk)
{
    lstm_tokenizer_opts o = {kind, keep_case, unk};
    lstm_tokenizer *t = NULL;
    CHECK_EQ_INT(lstm_tokenizer_create(&t, &o), 0);
    return t;
}

/* Counts texts, builds with the given limits and returns the tokenizer. */
static lstm_tokenizer *built(int kind, int keep_case, const char *unk, const char *const *texts, size_t vs, uint64_t mc)
{
    lstm_tokenizer *t = make(kind, keep_case, unk);
    lstm_ids ids = {0};
    lstm_tokenizer_build_opts bo = {0};
    for (; *texts; texts++) CHECK_EQ_INT(lstm_tokenizer_count(t, *texts, strlen(*texts), &ids), 0);
    bo.vocab_size = vs;
    bo.min_count = mc;
    CHECK_EQ_INT(lstm_tokenizer_build(t, &bo, NULL, NULL), 0);
    lstm_ids_free(&ids);
    return t;
}

/* Encodes text and renders the pieces joined by '|'. */
static void pieces(lstm_tokenizer *t, const char *text, size_t len, char *out, size_t cap)
{
    lstm_ids ids = {0};
    size_t o = 0;
    out[0] = '\0';
    CHECK_EQ_INT(lstm_tokenizer_encode(t, text, len, &ids), 0);
    for (size_t i = 0; i < ids.n; i++) {
        size_t n;
        const char *p = lstm_tokenizer_piece(t, ids.v[i], &n);
        CHECK(p != NULL);
        if (p && o + n + 2 < cap) {
            if (i) out[o++] = '|';
            memcpy(out + o, p, n);
            o += n;
            out[o] = '\0';
        }
    }
    lstm_ids_free(&ids);
}

#define EXPECT_PIECES(t, text, want)                                       \
    do {                                                                   \
        char got_[1024];                                                   \
        pieces(t, text, strlen(text), got_, sizeof got_);                  \
        if (strcmp(got_, want)) fprintf(stderr, "got '%s'\n", got_);       \
        CHECK(strcmp(got_, want) == 0);                                    \
    } while (0)

static void expect_decode(lstm_tokenizer *t, const char *text, const char *want)
{
    lstm_ids ids = {0};
    char *s;
    size_t n;
    CHECK_EQ_INT(lstm_tokenizer_encode(t, text, strlen(text), &ids), 0);
    CHECK_EQ_INT(lstm_tokenizer_decode(t, ids.v, ids.n, &s, &n), 0);
    if (strcmp(s, want)) fprintf(stderr, "decoded '%s', want '%s'\n", s, want);
    CHECK(strcmp(s, want) == 0);
    CHECK_EQ_INT(n, strlen(want));
    free(s);
    lstm_ids_free(&ids);
}

static void test_words(void)
{
    static const char *const corpus[] = {
        "Hello, WORLD! Ｈｅｌｌｏ ﬁne café",            /* fullwidth and the fi ligature: NFKC */
        "I ❤️ pizza 🍕 and 👍🏽 (really).",
        "don't stop: the end...",
        "bad \xff byte and \xe2\x82 cut",
        NULL};
    lstm_tokenizer *t = built(LSTM_TOK_WORDS, 0, NULL, corpus, 0, 0);
    char *s;
    size_t n;
    EXPECT_PIECES(t, "Hello, WORLD! Ｈｅｌｌｏ ﬁne café", "hello|,|world|!|hello|fine|café");
    /* NFKC_Casefold drops the variation selector of ❤️ (a default ignorable); skin tones stay */
    EXPECT_PIECES(t, "I ❤️ pizza 🍕 and 👍🏽 (really).", "i|❤|pizza|🍕|and|👍🏽|(|really|)|.");
    EXPECT_PIECES(t, "don't stop: the end...", "don't|stop|:|the|end|.|.|.");
    EXPECT_PIECES(t, "unseen words", "<unk>|<unk>");
    EXPECT_PIECES(t, "  \t\n ", "");
    EXPECT_PIECES(t, "bad \xff byte", "bad|\xEF\xBF\xBD|byte");
    CHECK_EQ_INT(lstm_tokenizer_replaced(t), 2 + 1); /* counting saw two ("\xe2\x82" is one), encoding one */
    CHECK_EQ_INT(lstm_tokenizer_kind(t), LSTM_TOK_WORDS);
    /* "." (4 times) is the most frequent token: the first vocabulary id */
    CHECK(strcmp(lstm_tokenizer_piece(t, LSTM_NUM_SPECIAL, &n), ".") == 0);
    CHECK(strcmp(lstm_tokenizer_piece(t, LSTM_PAD_ID, &n), "<pad>") == 0);
    CHECK(strcmp(lstm_tokenizer_piece(t, LSTM_EOS_ID, &n), "</s>") == 0);
    CHECK(lstm_tokenizer_piece(t, lstm_tokenizer_vocab_size(t), &n) == NULL);
    expect_decode(t, "Hello, WORLD! (really) the end...", "hello, world! (really) the end...");
    expect_decode(t, "I ❤️ pizza", "i ❤ pizza");
    {
        uint32_t ids[] = {LSTM_BOS_ID, LSTM_NUM_SPECIAL, LSTM_EOS_ID, LSTM_PAD_ID, LSTM_UNK_ID};
        CHECK_EQ_INT(lstm_tokenizer_decode(t, ids, 5, &s, &n), 0);
        CHECK(strcmp(s, ".\n<unk>") == 0);
        free(s);
        ids[0] = 1u << 30;
        CHECK_EQ_INT(lstm_tokenizer_decode(t, ids, 5, &s, &n), LSTM_E_RANGE);
    }
    CHECK(lstm_tokenizer_piece_flags(t, LSTM_NUM_SPECIAL) & LSTM_PIECE_WORD_START);
    CHECK(lstm_tokenizer_piece_flags(t, LSTM_EOS_ID) == LSTM_PIECE_SPECIAL);
    lstm_tokenizer_free(t);

    /* --keep-case: NFKC only */
    static const char *const c2[] = {"Hello hello HELLO Ｈｉ", NULL};
    t = built(LSTM_TOK_WORDS, 1, NULL, c2, 0, 0);
    EXPECT_PIECES(t, "Hello hello HELLO Ｈｉ", "Hello|hello|HELLO|Hi");
    CHECK_EQ_INT(lstm_tokenizer_vocab_size(t), LSTM_NUM_SPECIAL + 4);
    lstm_tokenizer_free(t);

    /* NUL bytes do not truncate */
    t = make(LSTM_TOK_WORDS, 0, NULL);
    {
        lstm_ids ids = {0};
        CHECK_EQ_INT(lstm_tokenizer_count(t, "ab\0cd ef", 8, &ids), 0);
        CHECK_EQ_INT(ids.n, 3);
        lstm_ids_free(&ids);
    }
    lstm_tokenizer_free(t);
}

/* Times and dates are split by ICU ("6" ":" "30") and written back whole; a colon after a word is not. */
static void test_numbers(void)
{
    static const char *const corpus[] = {"at 6:30 pm on 3/5, note: 10 / 2 ok", NULL};
    lstm_tokenizer *t = built(LSTM_TOK_WORDS, 0, NULL, corpus, 0, 0);
    expect_decode(t, "at 6:30 pm on 3/5, note: 10 / 2 ok", "at 6:30 pm on 3/5, note: 10/2 ok");
    expect_decode(t, "note: 6 : 30", "note: 6:30");
    expect_decode(t, "ok: 30", "ok: 30");
    lstm_tokenizer_free(t);
}

static void test_vocab_order(void)
{
    static const char *const corpus[] = {"b a c a b a d e", "zz yy", NULL};
    uint32_t *remap;
    size_t nremap;
    size_t n;
    lstm_tokenizer *t = make(LSTM_TOK_SPACE, 0, NULL);
    lstm_ids ids = {0};
    lstm_tokenizer_build_opts bo = {0};
    for (const char *const *p = corpus; *p; p++) CHECK_EQ_INT(lstm_tokenizer_count(t, *p, strlen(*p), &ids), 0);
    bo.vocab_size = LSTM_NUM_SPECIAL + 5;
    CHECK_EQ_INT(lstm_tokenizer_build(t, &bo, &remap, &nremap), 0);
    /* counts: a3 b2 then c d e yy zz (1 each) in byte order; cut after 5 */
    CHECK_EQ_INT(lstm_tokenizer_vocab_size(t), 9);
    CHECK(strcmp(lstm_tokenizer_piece(t, 4, &n), "a") == 0);
    CHECK(strcmp(lstm_tokenizer_piece(t, 5, &n), "b") == 0);
    CHECK(strcmp(lstm_tokenizer_piece(t, 6, &n), "c") == 0);
    CHECK(strcmp(lstm_tokenizer_piece(t, 7, &n), "d") == 0);
    CHECK(strcmp(lstm_tokenizer_piece(t, 8, &n), "e") == 0);
    CHECK_EQ_INT(ids.n, 10);
    CHECK_EQ_INT(remap[ids.v[0]], 5);           /* b */
    CHECK_EQ_INT(remap[ids.v[8]], LSTM_UNK_ID); /* zz was cut */
    CHECK_EQ_INT(lstm_tokenizer_count(t, "x", 1, &ids), LSTM_E_ARG); /* after build */
    free(remap);
    lstm_ids_free(&ids);
    lstm_tokenizer_free(t);

    /* min_count */
    t = built(LSTM_TOK_SPACE, 0, NULL, corpus, 0, 2);
    CHECK_EQ_INT(lstm_tokenizer_vocab_size(t), LSTM_NUM_SPECIAL + 2);
    lstm_tokenizer_free(t);

    /* a vocab_size with no room left */
    t = make(LSTM_TOK_SPACE, 0, NULL);
    bo.vocab_size = LSTM_NUM_SPECIAL;
    CHECK_EQ_INT(lstm_tokenizer_build(t, &bo, NULL, NULL), LSTM_E_RANGE);
    lstm_tokenizer_free(t);

    /* empty input builds the specials only */
    t = make(LSTM_TOK_WORDS, 0, NULL);
    CHECK_EQ_INT(lstm_tokenizer_build(t, NULL, NULL, NULL), 0);
    CHECK_EQ_INT(lstm_tokenizer_vocab_size(t), LSTM_NUM_SPECIAL);
    lstm_tokenizer_free(t);
}

static void test_space(void)
{
    static const char *const corpus[] = {" the <unk> cat\tsat <unk>\n", "The cat, <s> <user>", NULL};
    lstm_tokenizer *t = built(LSTM_TOK_SPACE, 0, "<unk>", corpus, 0, 0);
    lstm_ids ids = {0};
    /* no normalisation, no case folding; the unk token is UNK; "<s>" in text is a word, not BOS */
    EXPECT_PIECES(t, "the <unk> The cat, <s>", "the|<unk>|The|cat,|<s>");
    CHECK_EQ_INT(lstm_tokenizer_encode(t, "<unk> <s>", 9, &ids), 0);
    CHECK_EQ_INT(ids.v[0], LSTM_UNK_ID);
    CHECK(ids.v[1] >= LSTM_NUM_SPECIAL);
    CHECK_EQ_INT(lstm_tokenizer_vocab_size(t), LSTM_NUM_SPECIAL + 7); /* the cat sat The cat, <s> <user> */
    expect_decode(t, "the cat sat", "the cat sat");
    lstm_ids_free(&ids);
    lstm_tokenizer_free(t);
}

static void test_chars(void)
{
    static const char *const corpus[] = {"e\xCC\x81x 👍🏽!\r\n", NULL}; /* e + combining acute */
    lstm_tokenizer *t = built(LSTM_TOK_CHARS, 0, NULL, corpus, 0, 0);
    EXPECT_PIECES(t, "E\xCC\x81x 👍🏽!\r\n", "é|x| |👍🏽|!|\r\n");
    expect_decode(t, "éx 👍🏽!", "éx 👍🏽!");
    {
        lstm_ids ids = {0};
        CHECK_EQ_INT(lstm_tokenizer_encode(t, " ", 1, &ids), 0);
        CHECK_EQ_INT(ids.n, 1);
        CHECK(lstm_tokenizer_piece_flags(t, ids.v[0]) & LSTM_PIECE_SPACE);
        lstm_ids_free(&ids);
    }
    lstm_tokenizer_free(t);
}

static void test_speakers(void)
{
    lstm_tokenizer *t = make(LSTM_TOK_WORDS, 0, NULL);
    lstm_ids ids = {0};
    uint32_t u, a, u2, *remap;
    size_t nremap, n;
    char *s;
    CHECK_EQ_INT(lstm_tokenizer_speaker(t, "USER", 4, &u), 0);
    CHECK_EQ_INT(lstm_tokenizer_count(t, "hi there", 8, &ids), 0);
    CHECK_EQ_INT(lstm_tokenizer_speaker(t, " Support  Agent ", 16, &a), 0);
    CHECK_EQ_INT(lstm_tokenizer_speaker(t, "user", 4, &u2), 0);
    CHECK_EQ_INT(u, u2);
    CHECK_EQ_INT(lstm_tokenizer_speaker(t, "  ", 2, &u2), LSTM_E_ARG);
    CHECK_EQ_INT(lstm_tokenizer_build(t, NULL, &remap, &nremap), 0);
    CHECK_EQ_INT(remap[u], 4);
    CHECK_EQ_INT(remap[a], 5);
    CHECK_EQ_INT(lstm_tokenizer_num_speakers(t), 2);
    CHECK(strcmp(lstm_tokenizer_piece(t, 4, &n), "<user>") == 0);
    CHECK(strcmp(lstm_tokenizer_piece(t, 5, &n), "<support_agent>") == 0);
    CHECK_EQ_INT(lstm_tokenizer_speaker_id(t, "User"), 4);
    CHECK_EQ_INT(lstm_tokenizer_speaker_id(t, "support agent"), 5);
    CHECK(lstm_tokenizer_speaker_id(t, "bob") == LSTM_E_NOTFOUND);
    CHECK(lstm_tokenizer_piece_flags(t, 4) == LSTM_PIECE_SPEAKER);
    ids.n = 0;
    CHECK_EQ_INT(lstm_tokenizer_encode_turn(t, "user", "Hi there", 8, &ids), 0);
    CHECK_EQ_INT(ids.n, 4);
    CHECK_EQ_INT(ids.v[0], 4);
    CHECK_EQ_INT(ids.v[1], LSTM_BOS_ID);
    CHECK_EQ_INT(lstm_tokenizer_encode_turn(t, "bob", "x", 1, &ids), LSTM_E_NOTFOUND);
    lstm_ids_push(&ids, LSTM_EOS_ID);
    lstm_ids_push(&ids, 5);
    lstm_ids_push(&ids, LSTM_BOS_ID);
    lstm_ids_push(&ids, 6);
    CHECK_EQ_INT(lstm_tokenizer_decode(t, ids.v, ids.n, &s, &n), 0);
    CHECK(strcmp(s, "<user> hi there\n<support_agent> hi") == 0);
    free(s);
    free(remap);
    lstm_ids_free(&ids);
    lstm_tokenizer_free(t);
}

/* Every truncation of a blob is rejected; bit flips are rejected or load something consistent. */
static void check_blob(lstm_tokenizer *t)
{
    uint8_t *b, *b2;
    size_t n, n2;
    lstm_tokenizer *u = NULL;
    CHECK_EQ_INT(lstm_tokenizer_serialize(t, &b, &n), 0);
    CHECK_EQ_INT(lstm_tokenizer_load(&u, b, n), 0);
    CHECK(u && lstm_tokenizer_equal(t, u));
    CHECK_EQ_INT(lstm_tokenizer_serialize(u, &b2, &n2), 0);
    CHECK(n == n2 && memcmp(b, b2, n) == 0);
    free(b2);
    lstm_tokenizer_free(u);
    for (size_t k = 0; k < n; k += (n > 4000 && k > 64 ? 997 : 1)) {
        u = (lstm_tokenizer *)1;
        CHECK(lstm_tokenizer_load(&u, b, k) < 0);
        CHECK(u == NULL);
    }
    for (size_t k = 0; k < n && k < 400; k++) {
        uint8_t save = b[k];
        b[k] ^= (uint8_t)(1u << (k % 8));
        if (lstm_tokenizer_load(&u, b, n) == 0) { /* e.g. a flipped letter inside a piece */
            CHECK(lstm_tokenizer_vocab_size(u) == lstm_tokenizer_vocab_size(t) || k < 28);
            lstm_tokenizer_free(u);
        }
        b[k] = save;
    }
    b[4] = 9; /* version */
    CHECK_EQ_INT(lstm_tokenizer_load(&u, b, n), LSTM_E_VERSION);
    b[0] = 'X';
    CHECK_EQ_INT(lstm_tokenizer_load(&u, b, n), LSTM_E_MAGIC);
    free(b);
}

static void test_blob_and_files(void)
{
    static const char *const corpus[] = {"one two two three three three", NULL};
    static const char *const corpus2[] = {"one two two three three four", NULL};
    lstm_tokenizer *t = built(LSTM_TOK_WORDS, 0, NULL, corpus, 0, 0), *t2, *u;
    lstm_tokenizer *s = built(LSTM_TOK_SPACE, 1, "<unk>", corpus, 0, 0);
    char path[] = "/tmp/test_tokenizer_XXXXXX";
    int fd;
    check_blob(t);
    check_blob(s);
    t2 = built(LSTM_TOK_WORDS, 0, NULL, corpus2, 0, 0);
    CHECK(!lstm_tokenizer_equal(t, t2));
    CHECK(!lstm_tokenizer_equal(t, s));
    CHECK_EQ_INT(lstm_tokenizer_dup(&u, t), 0);
    CHECK(lstm_tokenizer_equal(t, u));
    lstm_tokenizer_free(u);

    /* vocab file round trip; a non-stream file is LSTM_E_MAGIC; a missing one LSTM_E_NOTFOUND */
    fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_EQ_INT(lstm_tokenizer_write_vocab(t, fd, NULL), 0);
    close(fd);
    u = NULL;
    CHECK_EQ_INT(lstm_tokenizer_load_file(&u, path), 0);
    CHECK(u && lstm_tokenizer_equal(t, u));
    lstm_tokenizer_free(u);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, "hello world\n", 12) == 12);
    close(fd);
    CHECK_EQ_INT(lstm_tokenizer_load_file(&u, path), LSTM_E_MAGIC);
    unlink(path);
    CHECK_EQ_INT(lstm_tokenizer_load_file(&u, path), LSTM_E_NOTFOUND);

    /* stream metadata */
    {
        lstm_meta m;
        uint64_t v;
        lstm_meta_init(&m);
        CHECK_EQ_INT(lstm_tokenizer_from_meta(&u, &m), LSTM_E_NOTFOUND);
        CHECK_EQ_INT(lstm_tokenizer_meta_set(t, &m), 0);
        CHECK_EQ_INT(lstm_meta_get_u64(&m, "vocab_size", &v), 0);
        CHECK_EQ_INT(v, lstm_tokenizer_vocab_size(t));
        CHECK_EQ_INT(lstm_meta_get_u64(&m, "eos_id", &v), 0);
        CHECK_EQ_INT(v, LSTM_EOS_ID);
        CHECK_EQ_INT(lstm_tokenizer_from_meta(&u, &m), 0);
        CHECK(lstm_tokenizer_equal(t, u));
        lstm_tokenizer_free(u);
        lstm_meta_free(&m);
    }
    lstm_tokenizer_free(t);
    lstm_tokenizer_free(t2);
    lstm_tokenizer_free(s);
}

static void test_bpe(void)
{
    static const char *const words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and",
                                        "then", "runs", "away", "from", "hunter", "who", "never", "sleeps",
                                        "Quickly", "Browned", "foxes", "jumping", "dogs", ",", "."};
    enum { NS = 200 };
    char *sents[NS];
    size_t lens[NS];
    unsigned x = 12345;
    lstm_tokenizer *t = make(LSTM_TOK_BPE, 0, NULL), *u;
    lstm_tokenizer_build_opts bo = {0};
    lstm_ids ids = {0};
    uint32_t spk, *remap;
    size_t nremap, n;
    char msg[256], *s;
    for (int i = 0; i < NS; i++) {
        size_t o = 0;
        sents[i] = malloc(256);
        for (int w = 0; w < 8; w++) {
            x = x * 1103515245u + 12345u;
            o += (size_t)snprintf(sents[i] + o, 256 - o, "%s%s", w ? " " : "", words[(x >> 16) % 24]);
        }
        lens[i] = o;
    }
    CHECK_EQ_INT(lstm_tokenizer_count(t, "x", 1, &ids), LSTM_E_ARG);
    CHECK_EQ_INT(lstm_tokenizer_speaker(t, "agent", 5, &spk), 0);
    bo.sents = (const char *const *)sents;
    bo.lens = lens;
    bo.nsents = NS;
    bo.vocab_size = 400;
    bo.msg = msg;
    bo.msgcap = sizeof msg;
    CHECK_EQ_INT(lstm_tokenizer_build(t, &bo, &remap, &nremap), 0);
    CHECK_EQ_INT(remap[spk], 4);
    CHECK(lstm_tokenizer_vocab_size(t) <= 400);
    CHECK(lstm_tokenizer_vocab_size(t) > 300);
    CHECK_EQ_INT(lstm_tokenizer_kind(t), LSTM_TOK_BPE);
    /* round trip (case folded), unseen characters through byte fallback: never UNK */
    {
        const char *in = "The quick brown fox jumps over the lazy dog, then sleeps. Жук 🐞";
        CHECK_EQ_INT(lstm_tokenizer_encode(t, in, strlen(in), &ids), 0);
        for (size_t i = 0; i < ids.n; i++) CHECK(ids.v[i] >= 5 && ids.v[i] < lstm_tokenizer_vocab_size(t));
        CHECK_EQ_INT(lstm_tokenizer_decode(t, ids.v, ids.n, &s, &n), 0);
        CHECK(strcmp(s, "the quick brown fox jumps over the lazy dog, then sleeps. жук 🐞") == 0);
        free(s);
        /* the first piece starts a word */
        CHECK(lstm_tokenizer_piece_flags(t, ids.v[0]) & LSTM_PIECE_WORD_START);
        {
            size_t words = 0;
            for (size_t i = 0; i < ids.n; i++) words += !!(lstm_tokenizer_piece_flags(t, ids.v[i]) & LSTM_PIECE_WORD_START);
            CHECK_EQ_INT(words, 13);
        }
    }
    /* a chat turn */
    ids.n = 0;
    CHECK_EQ_INT(lstm_tokenizer_encode_turn(t, "Agent", "the dog", 7, &ids), 0);
    CHECK_EQ_INT(ids.v[0], 4);
    CHECK_EQ_INT(ids.v[1], LSTM_BOS_ID);
    lstm_ids_push(&ids, LSTM_EOS_ID);
    CHECK_EQ_INT(lstm_tokenizer_decode(t, ids.v, ids.n, &s, &n), 0);
    CHECK(strcmp(s, "<agent> the dog\n") == 0);
    free(s);
    check_blob(t);
    /* the same model loaded from a blob encodes the same */
    {
        uint8_t *b;
        size_t bn;
        lstm_ids ids2 = {0};
        CHECK_EQ_INT(lstm_tokenizer_serialize(t, &b, &bn), 0);
        CHECK_EQ_INT(lstm_tokenizer_load(&u, b, bn), 0);
        ids.n = 0;
        CHECK_EQ_INT(lstm_tokenizer_encode(t, sents[3], lens[3], &ids), 0);
        CHECK_EQ_INT(lstm_tokenizer_encode(u, sents[3], lens[3], &ids2), 0);
        CHECK(ids.n == ids2.n && memcmp(ids.v, ids2.v, ids.n * 4) == 0);
        lstm_tokenizer_free(u);
        lstm_ids_free(&ids2);
        free(b);
    }
    /* the word cache (on after 256 texts checked both ways) gives what whole-text encoding gives:
     * a fresh copy encodes its first text directly */
    for (int i = 0; i < NS + 100; i++) {
        char buf[600];
        int k = snprintf(buf, sizeof buf, "%s  %s\tx%d, Жук  ", sents[i % NS], sents[(i * 7) % NS], i);
        lstm_ids a = {0}, b = {0};
        CHECK_EQ_INT(lstm_tokenizer_encode(t, buf, (size_t)k, &a), 0);
        if (i >= 256) {
            CHECK_EQ_INT(lstm_tokenizer_dup(&u, t), 0);
            CHECK_EQ_INT(lstm_tokenizer_encode(u, buf, (size_t)k, &b), 0);
            CHECK(a.n == b.n && memcmp(a.v, b.v, a.n * 4) == 0);
            lstm_tokenizer_free(u);
        }
        lstm_ids_free(&a);
        lstm_ids_free(&b);
    }
    lstm_tokenizer_free(t);
    free(remap);

    /* too small a vocabulary: the smallest size that works comes back in msg, and works */
    t = make(LSTM_TOK_BPE, 0, NULL);
    bo.vocab_size = 40;
    CHECK_EQ_INT(lstm_tokenizer_build(t, &bo, NULL, NULL), LSTM_E_RANGE);
    {
        size_t need = strtoul(msg, NULL, 10);
        CHECK(need > 256 + LSTM_NUM_SPECIAL);
        lstm_tokenizer_free(t);
        t = make(LSTM_TOK_BPE, 0, NULL);
        bo.vocab_size = need - 1;
        CHECK_EQ_INT(lstm_tokenizer_build(t, &bo, NULL, NULL), LSTM_E_RANGE);
        CHECK_EQ_INT(strtoul(msg, NULL, 10), need);
        lstm_tokenizer_free(t);
        t = make(LSTM_TOK_BPE, 0, NULL);
        bo.vocab_size = need;
        CHECK_EQ_INT(lstm_tokenizer_build(t, &bo, NULL, NULL), 0);
    }
    lstm_tokenizer_free(t);
    /* not a model */
    t = make(LSTM_TOK_BPE, 0, NULL);
    CHECK_EQ_INT(lstm_tokenizer_set_bpe_model(t, "garbage", 7), LSTM_E_SPM);
    bo.nsents = 0;
    bo.vocab_size = 0;
    CHECK_EQ_INT(lstm_tokenizer_build(t, &bo, NULL, NULL), LSTM_E_EMPTY);
    lstm_tokenizer_free(t);
    for (int i = 0; i < NS; i++) free(sents[i]);
    lstm_ids_free(&ids);
}

int main(void)
{
    test_words();
    test_numbers();
    test_vocab_order();
    test_space();
    test_chars();
    test_speakers();
    test_blob_and_files();
    test_bpe();
    CHECK_DONE("test_tokenizer");
}
