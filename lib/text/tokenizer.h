/* tokenizer.h: text <-> token ids. Word (ICU word boundaries), whitespace-split, character (ICU
 * grapheme clusters) and BPE (SentencePiece) tokenizers, their vocabulary, and the versioned blob
 * that carries a tokenizer in stream metadata and checkpoints (formats/tokens.md is normative).
 *
 * Ids: PAD=0, UNK=1, BOS=2, EOS=3, then one tag per speaker ("<user>", in order of first appearance),
 * then the vocabulary (words/space/chars: by descending count, ties in byte order; bpe: id =
 * 4 + speakers + SentencePiece id, SentencePiece's own <unk> mapped to UNK).
 *
 * Life cycle: create -> (count / speaker ... ) -> build -> encode / decode; or load a built one from
 * a blob or file. Library code: never prints, returns 0 or a negative LSTM_E_* code. One tokenizer
 * is not thread-safe (scratch buffers): give each thread its own (lstm_tokenizer_dup). */
#ifndef LSTM_TOKENIZER_H
#define LSTM_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "errors.h"
#include "stream.h"

#define LSTM_PAD_ID 0u
#define LSTM_UNK_ID 1u
#define LSTM_BOS_ID 2u
#define LSTM_EOS_ID 3u
#define LSTM_NUM_SPECIAL 4u

#define LSTM_TOKENIZER_VERSION 1u

enum lstm_tok_kind {
    LSTM_TOK_WORDS = 1, /* ICU word boundaries, NFKC (+ case folding), punctuation and emoji kept */
    LSTM_TOK_SPACE = 2, /* split on ASCII whitespace only, no normalisation (pre-tokenized corpora) */
    LSTM_TOK_BPE = 3,   /* SentencePiece BPE with byte fallback */
    LSTM_TOK_CHARS = 4  /* ICU grapheme clusters after NFKC (+ case folding), whitespace kept */
};

typedef struct lstm_tokenizer lstm_tokenizer;

typedef struct {
    int kind;              /* enum lstm_tok_kind; 0 = words */
    int keep_case;         /* words/chars/bpe training: no case folding */
    const char *unk_token; /* space: this input token maps to UNK (e.g. "<unk>"); NULL = none */
} lstm_tokenizer_opts;

/* A growable array of token ids. Zero-initialise, free with lstm_ids_free. */
typedef struct {
    uint32_t *v;
    size_t n, cap;
} lstm_ids;
int lstm_ids_push(lstm_ids *a, uint32_t id);
void lstm_ids_free(lstm_ids *a);

int lstm_tokenizer_create(lstm_tokenizer **out, const lstm_tokenizer_opts *opts);
void lstm_tokenizer_free(lstm_tokenizer *t);
/* An independent copy (own scratch buffers): for encoding on several threads. */
int lstm_tokenizer_dup(lstm_tokenizer **out, const lstm_tokenizer *t);

/* ---- building a vocabulary (before lstm_tokenizer_build) ----
 * count: tokenizes text and appends *temporary* ids to out (the specials keep their final ids);
 * build returns remap[tmp] = final id. Not available for bpe (LSTM_E_ARG). */
int lstm_tokenizer_count(lstm_tokenizer *t, const char *text, size_t len, lstm_ids *out);
/* Registers (before build) or looks up (after build: LSTM_E_NOTFOUND if unknown) the tag of a speaker
 * name and returns its temporary / final id. The tag is "<" + the NFKC case-folded name with
 * whitespace runs turned into '_' + ">". LSTM_E_ARG for an empty name. */
int lstm_tokenizer_speaker(lstm_tokenizer *t, const char *name, size_t len, uint32_t *id);

typedef struct {
    size_t vocab_size;  /* total ids (specials + speaker tags + vocabulary), 0 = no limit
                           (bpe: 0 = 8000; smaller inputs get as many pieces as they allow) */
    uint64_t min_count; /* words/space/chars: drop tokens seen fewer times (0 or 1 = keep all) */
    /* bpe training corpus (ignored when a model was given with lstm_tokenizer_set_bpe_model): */
    const char *const *sents; /* (nsents) */
    const size_t *lens;       /* (nsents) */
    size_t nsents;
    int threads;        /* SentencePiece training threads, 0 = 1 */
    char *msg;          /* optional: SentencePiece's error text on LSTM_E_SPM; bpe: on LSTM_E_RANGE,
                           the smallest vocab_size that works for this input, in decimal */
    size_t msgcap;
} lstm_tokenizer_build_opts;

/* Fixes the ids. remap (may be NULL) receives a malloc'ed table of *nremap entries mapping every
 * temporary id returned so far to its final id (tokens cut by vocab_size / min_count map to UNK).
 * LSTM_E_RANGE if vocab_size leaves no room for the vocabulary; LSTM_E_SPM if bpe training fails. */
int lstm_tokenizer_build(lstm_tokenizer *t, const lstm_tokenizer_build_opts *o, uint32_t **remap, size_t *nremap);
/* bpe: use an existing SentencePiece model (the bytes of a .model file) instead of training.
 * LSTM_E_SPM if the bytes are not a model. */
int lstm_tokenizer_set_bpe_model(lstm_tokenizer *t, const void *model, size_t len);
int lstm_tokenizer_is_built(const lstm_tokenizer *t);

/* ---- using a built tokenizer ---- */
/* Appends the ids of plain text (no BOS/EOS added). Invalid UTF-8 is replaced with U+FFFD. */
int lstm_tokenizer_encode(lstm_tokenizer *t, const char *text, size_t len, lstm_ids *out);
/* Appends one chat turn exactly as lstm-tok writes it, minus the final EOS:
 * "<speaker-tag> <BOS> tokens". speaker NULL: "<BOS> tokens". LSTM_E_NOTFOUND for an unknown speaker.
 * Training data is this followed by EOS; a prompt for the sampler is this as is. */
int lstm_tokenizer_encode_turn(lstm_tokenizer *t, const char *speaker, const char *text, size_t len, lstm_ids *out);
/* Text as a person would write it (malloc'ed, NUL-terminated): words and space tokens joined with
 * single spaces, except none before closing/other punctuation and none after opening punctuation;
 * chars concatenated; bpe pieces joined by SentencePiece. PAD and BOS are omitted, EOS ends a line,
 * a speaker tag is written as "<tag> ", UNK as the unk token ("<unk>" by default). Ids out of range
 * give LSTM_E_RANGE. */
int lstm_tokenizer_decode(lstm_tokenizer *t, const uint32_t *ids, size_t n, char **text, size_t *len);

uint32_t lstm_tokenizer_vocab_size(const lstm_tokenizer *t); /* total ids; 0 before build */
uint32_t lstm_tokenizer_num_speakers(const lstm_tokenizer *t);
int lstm_tokenizer_kind(const lstm_tokenizer *t);
const char *lstm_tokenizer_kind_name(int kind); /* "words", "space", "bpe", "chars" */
/* The token string of id ("<pad>", "<unk>", "<s>", "</s>", "<user>", "the", "▁the", ...): NULL if out
 * of range. Valid as long as t. */
const char *lstm_tokenizer_piece(const lstm_tokenizer *t, uint32_t id, size_t *len);
/* Final id of a speaker name ("User" -> id of "<user>"), or a negative code. */
int64_t lstm_tokenizer_speaker_id(lstm_tokenizer *t, const char *name);
/* Invalid UTF-8 sequences replaced so far by count/encode/encode_turn. */
uint64_t lstm_tokenizer_replaced(const lstm_tokenizer *t);

/* Word-level view, for assembling whole-word suggestions from subword / character pieces. */
#define LSTM_PIECE_SPECIAL 1u    /* PAD, UNK, BOS, EOS */
#define LSTM_PIECE_SPEAKER 2u    /* a speaker tag */
#define LSTM_PIECE_WORD_START 4u /* a new word starts with this piece (every words/space token; bpe
                                    pieces starting with U+2581; chars: first grapheme after a space) */
#define LSTM_PIECE_SPACE 8u      /* the piece is whitespace (chars): it ends the current word */
#define LSTM_PIECE_PUNCT 16u     /* starts with punctuation */
/* Flags of id (0 if out of range). For chars, WORD_START cannot be known from one piece: the caller
 * starts a word after a SPACE piece. */
unsigned lstm_tokenizer_piece_flags(const lstm_tokenizer *t, uint32_t id);

/* ---- the blob (formats/tokens.md "Tokenizer blob") ---- */
int lstm_tokenizer_serialize(const lstm_tokenizer *t, uint8_t **blob, size_t *len); /* malloc'ed */
/* Bounds-checked: LSTM_E_MAGIC, LSTM_E_VERSION, LSTM_E_FORMAT (or LSTM_E_SPM for a bad model). */
int lstm_tokenizer_load(lstm_tokenizer **out, const uint8_t *blob, size_t len);
/* The verdict every reader gives a blob (lstm_tokenizer_load): 0 if it would be accepted, else the
 * code it would be refused with. Writers call it before writing a blob (lstm-tok, lstm-window when it
 * copies its input's tokenizer, lstm-train), so that nothing is written that a reader rejects. */
int lstm_tokenizer_blob_check(const uint8_t *blob, size_t len);
/* The total ids a blob declares, from its header only (LSTM_E_MAGIC, LSTM_E_VERSION, LSTM_E_FORMAT). */
int lstm_tokenizer_blob_vocab_size(const uint8_t *blob, size_t len, uint32_t *V);
/* Stream metadata: LSTM_E_VOCAB if "vocab_size" is not a number or differs from the ids the
 * "tokenizer" blob declares (*meta_V and *tok_V, either may be NULL, receive both), LSTM_E_NOTFOUND
 * if there is no "tokenizer", the blob's header error, else 0. The blob's body is not checked here. */
int lstm_tokenizer_meta_check(const lstm_meta *m, uint64_t *meta_V, uint32_t *tok_V);
/* 1 if a and b give the same ids for every input (same blob), 0 if not. */
int lstm_tokenizer_equal(const lstm_tokenizer *a, const lstm_tokenizer *b);

/* Sets "tokenizer" (the blob), "tokenizer_kind", "vocab_size", "pad_id", "unk_id", "bos_id", "eos_id". */
int lstm_tokenizer_meta_set(const lstm_tokenizer *t, lstm_meta *m);
/* Loads the tokenizer from stream metadata (LSTM_E_NOTFOUND if there is no "tokenizer" key,
 * LSTM_E_VOCAB if "vocab_size" disagrees with it: see lstm_tokenizer_meta_check). */
int lstm_tokenizer_from_meta(lstm_tokenizer **out, const lstm_meta *m);
/* Writes a vocab file (a VOCB stream: lstm_tokenizer_meta_set keys + extra, no records) to fd. */
int lstm_tokenizer_write_vocab(const lstm_tokenizer *t, int fd, const lstm_meta *extra);
/* Loads a tokenizer from a vocab file or from the metadata of any stream (TOKS, WIND, ...), reading
 * the stream through to its end record: a truncated, unfinished or concatenated stream is refused
 * with the reader's code (LSTM_E_TRUNCATED, LSTM_E_FORMAT, ...), as every other reader refuses it.
 * A file that is not a zstd stream gives LSTM_E_MAGIC (hook: checkpoints are recognised here later). */
int lstm_tokenizer_load_file(lstm_tokenizer **out, const char *path);

#endif
