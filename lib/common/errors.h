/* errors.h: the error codes every lib/ function returns (0 = ok, negative = failure). */
#ifndef LSTM_ERRORS_H
#define LSTM_ERRORS_H

enum {
    LSTM_OK = 0,
    LSTM_E_NOMEM = -1,      /* allocation failed */
    LSTM_E_IO = -2,         /* read or write failed (errno holds the cause) */
    LSTM_E_MAGIC = -3,      /* not a stream / checkpoint of ours (wrong magic, not zstd) */
    LSTM_E_VERSION = -4,    /* format version this build does not know */
    LSTM_E_KIND = -5,       /* stream of another kind than expected */
    LSTM_E_TRUNCATED = -6,  /* input ended before the end record / expected size */
    LSTM_E_CORRUPT = -7,    /* checksum mismatch or undecodable compressed data */
    LSTM_E_FORMAT = -8,     /* structurally invalid content (bad length, bad tag, out of range id) */
    LSTM_E_ARG = -9,        /* invalid argument from the caller */
    LSTM_E_CSV = -10,       /* malformed CSV (see the parser's line number) */
    LSTM_E_ICU = -11,       /* an ICU call failed */
    LSTM_E_SPM = -12,       /* a SentencePiece call failed */
    LSTM_E_VOCAB = -13,     /* vocabulary / tokenizer does not match */
    LSTM_E_RANGE = -14,     /* value out of the accepted range */
    LSTM_E_NAN = -15,       /* NaN or Inf appeared in a loss or gradient */
    LSTM_E_EMPTY = -16,     /* no data where some is required */
    LSTM_E_NOTFOUND = -17,  /* named item (file, key, tensor) does not exist */
    LSTM_E_TOOBIG = -18,    /* a size exceeds a hard limit */
    LSTM_E_INTERNAL = -19,  /* a bug: an invariant did not hold */
    LSTM_E_EXISTS = -20,    /* output file exists and overwriting was not asked for */
    LSTM_E_BUSY = -21,      /* another process holds the lock on an output */
    LSTM_E_TEXT = -22       /* text (a CSV or text file) where a stream is expected: see lstm_reader_open_sniff */
};

/* A static, lower-case, one-phrase description ("truncated stream (no end record)"). */
const char *lstm_strerror(int err);

#endif
