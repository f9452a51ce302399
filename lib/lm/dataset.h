/* dataset.h: window streams as training / evaluation batches.
 *
 * A dataset is the windows of one window stream, held in memory or, for a regular file larger than a
 * memory budget, re-read from the file. Batches put B lanes side by side; with state carried (truncated
 * BPTT), lane b walks a contiguous segment of the windows, so consecutive windows of a text stay on one
 * lane and the recurrent state flows from one to the next (as PyTorch's batchify does). In streaming
 * mode each lane has its own reader positioned at its segment: batches are identical in both modes. */
#ifndef LSTM_DATASET_H
#define LSTM_DATASET_H
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

typedef struct lstm_dataset lstm_dataset;

/* path NULL or "-" = stdin (always loaded). mem_budget: bytes of window data above which a regular
 * file is streamed instead of loaded (0 = no limit). *kind receives the stream's kind (for the
 * message on LSTM_E_KIND). Errors: the stream's codes, LSTM_E_TEXT (a text or CSV file, not a
 * stream), LSTM_E_KIND (not windows), LSTM_E_FORMAT (windows of varying length, ids out of range),
 * LSTM_E_VOCAB (vocab_size in the metadata differs from the tokenizer's), LSTM_E_NOMEM. */
int lstm_dataset_open(lstm_dataset **out, const char *path, size_t mem_budget, uint32_t *kind /* found */);
/* The same, but a regular file is only counted (and streamed) until lstm_dataset_keep loads the share
 * a caller needs: a rank of a run split over processes never holds the whole file. stdin is loaded. */
int lstm_dataset_open_lazy(lstm_dataset **out, const char *path, size_t mem_budget, uint32_t *kind);
void lstm_dataset_free(lstm_dataset *d);
/* The one-line message (without the program name) for lstm_dataset_open's error rc on name, with a hint
 * for a stream of the wrong kind (token stream: "pipe it through lstm-window") or for text (LSTM_E_TEXT:
 * a CSV or text file; tools add the pipeline that makes windows of it); errno for LSTM_E_IO. */
const char *lstm_dataset_open_message(int rc, uint32_t kind, const char *name, char *buf, size_t cap);
const lstm_meta *lstm_dataset_meta(const lstm_dataset *d);
uint64_t lstm_dataset_count(const lstm_dataset *d); /* windows */
uint32_t lstm_dataset_T(const lstm_dataset *d);
uint32_t lstm_dataset_K(const lstm_dataset *d);     /* targets per window: T or 1 */
uint32_t lstm_dataset_vocab(const lstm_dataset *d);
int lstm_dataset_streaming(const lstm_dataset *d);
uint64_t lstm_dataset_held(const lstm_dataset *d); /* windows in memory (0 when streaming) */

/* ---- shares: a process that trains some of the lanes holds only their windows ----
 * Ranges are nr (lo, hi) pairs of window indices, in any order; they are clipped to the count,
 * sorted and merged. A window that is not held is an LSTM_E_ARG from lstm_batcher_get. */
/* Hold only the windows of the ranges. Held windows: the others are dropped (LSTM_E_ARG if one asked
 * for is not held). Streamed: the file is read once for them, unless they are above the memory budget
 * too (then it stays streamed, which serves every window). */
int lstm_dataset_keep(lstm_dataset *d, const uint64_t *ranges, int nr);
/* Everything but the windows (metadata, T, K, V, count) as bytes, and a dataset made of them that
 * holds no windows: the receiving end of lstm_dataset_pack / unpack. */
int lstm_dataset_header(const lstm_dataset *d, uint8_t **out, size_t *len);
int lstm_dataset_from_header(lstm_dataset **out, const uint8_t *p, size_t len);
/* The held windows of the ranges as bytes (this machine's byte order), and a dataset made to hold
 * exactly them (its earlier windows dropped; ids checked against the vocabulary). */
int lstm_dataset_pack(const lstm_dataset *d, const uint64_t *ranges, int nr, uint8_t **out, size_t *len);
int lstm_dataset_unpack(lstm_dataset *d, const uint64_t *ranges, int nr, const uint8_t *p, size_t len);

typedef struct {
    lstm_dataset *d;
    uint64_t begin, end; /* window range used */
    int B;               /* lanes filled here: global lanes lane0, lane0 + lane_step, ... of Bg */
    int Bg, lane0, lane_step; /* the whole batch's lanes and this batcher's share (lanes of one rank) */
    int stateful;        /* lanes walk contiguous segments and carry state across CONT windows */
    uint64_t seg;        /* windows per lane (stateful) */
    uint64_t steps;      /* batches per epoch */
    uint64_t *perm;      /* stateless shuffled order, or NULL */
    uint64_t next_step;  /* streaming: the step the lane readers are positioned at */
    void *lanes;         /* streaming: per-lane readers */
    uint32_t *win_in, *win_tg; /* (T) scratch */
} lstm_batcher;

/* Batches over windows [begin, end). stateful: see above; else batch s holds windows s*B .. s*B+B-1 of
 * the order, shuffled with shuffle_seed unless it is 0 (in-memory only; streaming keeps file order). */
int lstm_batcher_init(lstm_batcher *b, lstm_dataset *d, uint64_t begin, uint64_t end, int B, int stateful,
                      uint64_t shuffle_seed);
/* The same batches of Bg lanes, of which only lanes lane0, lane0 + lane_step, ... (below Bg) are
 * filled, as local lanes 0, 1, ... (lstm_batcher_lanes of them): one rank's share of a batch split
 * over lane_step ranks. Segments, order and reset flags are those of the whole batch. LSTM_E_ARG
 * when the share is empty. */
int lstm_batcher_init_lanes(lstm_batcher *b, lstm_dataset *d, uint64_t begin, uint64_t end, int Bg, int lane0,
                            int lane_step, int stateful, uint64_t shuffle_seed);
/* Lanes lane0, lane0 + lane_step, ... below Bg: how many. */
int lstm_batcher_lanes(int Bg, int lane0, int lane_step);
void lstm_batcher_free(lstm_batcher *b);
/* Batch `step` (0 <= step < steps): inputs and targets (B,T) by lane, PAD where a lane has no window;
 * for K = 1 windows the target sits at position T-1 and the rest are PAD. reset[b] = 1 when lane b
 * must start from a zero state. In streaming mode steps must come in increasing order. Returns the
 * number of target tokens (not PAD) or a negative error. */
long lstm_batcher_get(lstm_batcher *b, uint64_t step, uint32_t *inputs /* (B,T) */, uint32_t *targets /* (B,T) */,
                      uint8_t *reset /* (B) */);

#endif
