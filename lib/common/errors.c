/* errors.c: text for the LSTM_E_* codes. */
#include "errors.h"

const char *lstm_strerror(int err)
{
    switch (err) {
    case LSTM_OK: return "success";
    case LSTM_E_NOMEM: return "out of memory";
    case LSTM_E_IO: return "i/o error";
    case LSTM_E_MAGIC: return "not an lstm stream (wrong magic)";
    case LSTM_E_VERSION: return "unsupported format version";
    case LSTM_E_KIND: return "wrong stream kind";
    case LSTM_E_TRUNCATED: return "truncated stream (no end record)";
    case LSTM_E_CORRUPT: return "corrupted data (checksum mismatch)";
    case LSTM_E_FORMAT: return "malformed data";
    case LSTM_E_ARG: return "invalid argument";
    case LSTM_E_CSV: return "malformed CSV";
    case LSTM_E_ICU: return "ICU error";
    case LSTM_E_SPM: return "SentencePiece error";
    case LSTM_E_VOCAB: return "tokenizer does not match";
    case LSTM_E_RANGE: return "value out of range";
    case LSTM_E_NAN: return "NaN or Inf encountered";
    case LSTM_E_EMPTY: return "no data";
    case LSTM_E_NOTFOUND: return "not found";
    case LSTM_E_TOOBIG: return "size exceeds limit";
    case LSTM_E_INTERNAL: return "internal error";
    case LSTM_E_EXISTS: return "file exists (use -f to overwrite)";
    case LSTM_E_BUSY: return "in use by another process";
    case LSTM_E_TEXT: return "text, not an lstm stream (tokenize it with lstm-tok)";
    }
    return "unknown error";
}
