/* fuzz_tokenize: lstm_tokenizer_encode / encode_turn / decode on arbitrary bytes, with tokenizers
 * built once (words, chars, space, and BPE trained in-process on a tiny corpus). Input byte 0 picks
 * the tokenizer and whether the text is a chat turn; ids that come out must be in range and decode. */
#include "fuzz_common.h"

#include <string.h>

#include "tokenizer.h"

static lstm_tokenizer *tok[4];

static const char *const CORPUS[] = {
    "The cat sat on the mat.", "The dog, however, did not sit!", "Emoji are tokens too 🙂 (see?)",
    "Hi, I need help with my order.", "Sure! What's the \"order number\"?", "It's 12345.\nThanks",
    "Жук ползёт по листу", "naïve café résumé", "東京は大きい都市です", "tabs\tand  spaces   here",
};
#define NC (sizeof CORPUS / sizeof *CORPUS)

static lstm_tokenizer *build(int kind)
{
    lstm_tokenizer_opts o = {kind, 0, kind == LSTM_TOK_SPACE ? "<unk>" : NULL};
    lstm_tokenizer *t;
    if (lstm_tokenizer_create(&t, &o)) abort();
    uint32_t spk;
    if (lstm_tokenizer_speaker(t, "User", 4, &spk) || lstm_tokenizer_speaker(t, "Agent", 5, &spk)) abort();
    lstm_tokenizer_build_opts bo = {0};
    const char *sents[NC * 8];
    size_t lens[NC * 8];
    if (kind == LSTM_TOK_BPE) {
        for (size_t i = 0; i < NC * 8; i++) {
            sents[i] = CORPUS[i % NC];
            lens[i] = strlen(sents[i]);
        }
        bo.sents = sents;
        bo.lens = lens;
        bo.nsents = NC * 8;
        bo.vocab_size = 400; /* byte fallback alone takes 256 */
    } else {
        lstm_ids ids = {0};
        for (size_t i = 0; i < NC; i++)
            if (lstm_tokenizer_count(t, CORPUS[i], strlen(CORPUS[i]), &ids)) abort();
        lstm_ids_free(&ids);
    }
    uint32_t *remap = NULL;
    size_t nremap;
    char msg[256];
    bo.msg = msg;
    bo.msgcap = sizeof msg;
    if (lstm_tokenizer_build(t, &bo, &remap, &nremap)) {
        fprintf(stderr, "fuzz_tokenize: building kind %d failed: %s\n", kind, msg);
        abort();
    }
    free(remap);
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tok[0] = build(LSTM_TOK_WORDS);
    tok[1] = build(LSTM_TOK_CHARS);
    tok[2] = build(LSTM_TOK_SPACE);
    tok[3] = build(LSTM_TOK_BPE);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    lstm_tokenizer *t = tok[data[0] & 3];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    lstm_ids ids = {0};
    int rc = (data[0] & 4) ? lstm_tokenizer_encode_turn(t, (data[0] & 8) ? "user" : NULL, text, len, &ids)
                           : lstm_tokenizer_encode(t, text, len, &ids);
    if (rc == 0) {
        uint32_t V = lstm_tokenizer_vocab_size(t);
        for (size_t i = 0; i < ids.n; i++) {
            if (ids.v[i] >= V) abort();
            if (!lstm_tokenizer_piece(t, ids.v[i], NULL)) abort();
            (void)lstm_tokenizer_piece_flags(t, ids.v[i]);
        }
        char *s = NULL;
        size_t n;
        if (lstm_tokenizer_decode(t, ids.v, ids.n, &s, &n)) abort();
        if (s[n] != 0) abort();
        free(s);
    }
    /* Raw input bytes read as ids: out of range must be refused, not read. */
    if (len >= 4) {
        char *s = NULL;
        size_t n;
        uint32_t raw[64];
        size_t k = len / 4 < 64 ? len / 4 : 64;
        memcpy(raw, text, 4 * k);
        if (lstm_tokenizer_decode(t, raw, k, &s, &n) == 0) free(s);
    }
    lstm_ids_free(&ids);
    return 0;
}
