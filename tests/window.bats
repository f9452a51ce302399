#!/usr/bin/env bats
# lstm-window (and lstm-dump as its reader): how windows are cut, flags, metadata, bad inputs.

bats_require_minimum_version 1.5.0

setup_file() {
    export T="$BATS_FILE_TMPDIR"
    export WIN="$LSTM_BIN/lstm-window" DUMP="$LSTM_BIN/lstm-dump" TOK="$LSTM_BIN/lstm-tok"
    # Two documents of known tokens; --split space keeps them exactly.
    printf 'a b c d e\nf g\nh\n' > "$T/docs.txt"
    "$TOK" --split space "$T/docs.txt" > "$T/docs.tok"
    # a long continuous text for truncation tests
    awk 'BEGIN { for (i = 0; i < 4000; i++) { for (j = 0; j < 12; j++) printf "w%d ", (i * 7 + j) % 300; printf "\n" } }' > "$T/big.txt"
    "$TOK" --split space "$T/big.txt" > "$T/big.tok"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

# The token strings of windows, one line per window: "flags | inputs -> targets".
windows() {
    "$DUMP" "$1" | awk '
        /^  W #/ { flags = ($5 == "" ? "-" : $5 ($6 == "" ? "" : " " $6)); n = 0; next }
        /^    in: / { n++; if (n == 2) { $1 = ""; ins = substr($0, 2) } next }
        /^    tgt: / { if (n == 2) { $1 = ""; print flags " | " ins " -> " substr($0, 2) } }'
}

@test "--help shows usage and an example; --version" {
    run --separate-stderr "$WIN" --help
    assert_success
    assert_output --partial 'Usage: lstm-window [options] [TOKENS]'
    assert_output --partial 'lstm-tok < chats.csv | lstm-window -L 15 | lstm-train -o chat.ckpt'
    run --separate-stderr "$WIN" --version
    assert_output 'lstm-window 1.0'
}

@test "next-token windows per document: padded tail, CONT within a document" {
    "$WIN" -L 3 "$T/docs.tok" > w.win
    run windows w.win
    assert_success
    # doc 1: a b c d e </s> -> 5 pairs; doc 2: f g </s> -> 2 pairs; doc 3: h </s> -> 1 pair
    assert_output "doc-start | a b c -> b c d
cont | d e <pad> -> e </s> <pad>
doc-start | f g <pad> -> g </s> <pad>
doc-start | h <pad> <pad> -> </s> <pad> <pad>"
}

@test "--cross-docs runs through documents; only the last window is padded" {
    "$WIN" -L 4 --cross-docs "$T/docs.tok" > w.win
    run windows w.win
    assert_output "doc-start | a b c d -> b c d e
cont | e </s> f g -> </s> f g </s>
cont | </s> h <pad> <pad> -> h </s> <pad> <pad>"
}

@test "--stride smaller than -L overlaps windows and never marks CONT" {
    "$WIN" -L 3 --stride 2 "$T/docs.tok" > w.win
    run windows w.win
    assert_line --index 0 "doc-start | a b c -> b c d"
    assert_line --index 1 "- | c d e -> d e </s>"
    refute_output --partial 'cont'
}

@test "--last: T inputs, one target, left-padded at a document start" {
    "$WIN" -L 3 --last "$T/docs.tok" > w.win
    run "$DUMP" w.win
    assert_output --partial 'window_targets: last'
    assert_output --partial '  W #1: T=3 K=1 doc-start'
    # targets of doc 1 are b c d e </s>: five windows, then g </s>, then </s>
    [ "$(grep -c '^  W #' <<< "$output")" -eq 8 ]
    run windows w.win
    assert_line --index 0 "doc-start | <pad> <pad> a -> b"
    assert_line --index 3 "- | b c d -> e"
    assert_line --index 4 "- | c d e -> </s>"
}

@test "metadata is passed through and the command line appended to the provenance" {
    "$WIN" -L 5 --cross-docs "$T/docs.tok" > w.win
    run "$DUMP" --header w.win
    assert_success
    assert_output --partial 'kind: WIND (windows), version 1'
    assert_output --partial 'window_length: 5'
    assert_output --partial 'window_stride: 5'
    assert_output --partial 'cross_docs: 1'
    assert_output --partial 'tokenizer: space,'
    assert_line --regexp '^  .*lstm-tok --split space .*docs.txt$'
    assert_line --regexp '^  .*lstm-window -L 5 --cross-docs .*docs.tok$'
}

@test "reads stdin, writes -o, refuses to overwrite without -f" {
    "$WIN" -L 3 -o out.win < "$T/docs.tok"
    run --separate-stderr "$WIN" -L 3 -o out.win "$T/docs.tok"
    assert_failure 1
    assert_equal "$stderr" 'lstm-window: out.win: file exists (use -f to overwrite)'
    run --separate-stderr "$WIN" -L 4 -f -o out.win "$T/docs.tok"
    assert_success
    run "$DUMP" --header out.win
    assert_output --partial 'window_length: 4'
}

@test "an output in a missing directory fails and leaves nothing behind" {
    run --separate-stderr "$WIN" -o nodir/out.win "$T/docs.tok"
    assert_failure 1
    assert_equal "$stderr" 'lstm-window: nodir/out.win: No such file or directory'
    [ ! -e nodir ]
}

@test "bad numbers are usage errors" {
    run --separate-stderr "$WIN" -L 0 "$T/docs.tok"
    assert_failure 2
    assert_equal "$stderr" "lstm-window: -L: expected an integer from 1 to 100000, got '0'"
    run --separate-stderr "$WIN" -L 99999999999 "$T/docs.tok"
    assert_failure 2
    run --separate-stderr "$WIN" -L -3 "$T/docs.tok"
    assert_failure 2
    run --separate-stderr "$WIN" -L 3 --stride 4 "$T/docs.tok"
    assert_failure 2
    assert_equal "$stderr" 'lstm-window: --stride 4 is larger than -L 3: tokens would be skipped'
    run --separate-stderr "$WIN" --bogus
    assert_failure 2
}

@test "a window stream is not a token stream" {
    "$WIN" -L 3 "$T/docs.tok" > w.win
    run --separate-stderr "$WIN" w.win
    assert_failure 1
    assert_equal "$stderr" 'lstm-window: w.win: got windows (WIND), expected a token stream (TOKS): make one with lstm-tok'
}

@test "text, empty and missing inputs" {
    run --separate-stderr "$WIN" "$T/docs.txt"
    assert_failure 1
    assert_equal "$stderr" "lstm-window: $T/docs.txt: a text/CSV file, not a token stream: pipe it through lstm-tok (lstm-tok $T/docs.txt | lstm-window ...)"
    : > empty
    run --separate-stderr "$WIN" empty
    assert_failure 1
    assert_equal "$stderr" 'lstm-window: empty: empty input (no stream)'
    run --separate-stderr "$WIN" missing.tok
    assert_failure 1
    assert_equal "$stderr" 'lstm-window: missing.tok: No such file or directory'
}

@test "an upstream stage that dies mid-stream is reported as truncated, and no output is kept" {
    size=$(stat -c %s "$T/big.tok")
    head -c $((size / 2)) "$T/big.tok" > cut.tok
    run --separate-stderr "$WIN" -L 10 -o out.win cut.tok
    assert_failure 1
    assert_equal "$stderr" 'lstm-window: cut.tok: truncated stream (no end record)'
    [ ! -e out.win ]
    [ -z "$(ls out.win* 2> /dev/null)" ] # no temp file either
    # through a pipe, too
    run --separate-stderr bash -c "head -c 2000 '$T/big.tok' | '$WIN' -L 10 > /dev/null"
    assert_failure 1
    assert_equal "$stderr" 'lstm-window: stdin: truncated stream (no end record)'
}

@test "a flipped byte is caught by the checksum" {
    cp "$T/big.tok" flip.tok
    printf '\x55' | dd of=flip.tok bs=1 seek=3000 conv=notrunc 2> /dev/null
    run --separate-stderr "$WIN" -L 10 flip.tok
    assert_failure 1
    assert_equal "$stderr" 'lstm-window: flip.tok: corrupted data (checksum mismatch)'
}

@test "binary output to a terminal is refused" {
    run script -qec "'$WIN' -L 3 '$T/docs.tok'" /dev/null
    assert_failure 2
    assert_output --partial 'lstm-window: refusing to write binary data to a terminal: use -o FILE or a pipe'
}

@test "every token lands in exactly one target (next-token, stride = length)" {
    "$WIN" -L 7 --cross-docs "$T/big.tok" > w.win
    tokens=$("$DUMP" --ids "$T/big.tok" | awk '/^    ids:/ { n += NF - 1 } END { print n }')
    targets=$("$DUMP" --ids w.win | awk '/^    tgt:/ { for (i = 2; i <= NF; i++) if ($i != 0) n++ } END { print n }')
    # every token but the first is a target once
    assert_equal "$targets" "$((tokens - 1))"
}

@test "lstm-dump: --text, --vocab, -n and a truncated stream" {
    run --separate-stderr "$DUMP" --text "$T/docs.tok"
    assert_success
    assert_output "a b c d e
f g
h"
    run --separate-stderr "$DUMP" --vocab "$T/docs.tok"
    assert_line --index 0 $'0\t<pad>'
    assert_line --index 3 $'3\t</s>'
    "$WIN" -L 3 "$T/docs.tok" > w.win
    run --separate-stderr "$DUMP" -n 1 w.win
    assert_output --partial '  W #1: T=3 K=3 doc-start'
    refute_output --partial 'W #2'
    assert_output --partial 'end: 4 records, whole'
    head -c 100 "$T/big.tok" > cut.tok
    run --separate-stderr "$DUMP" cut.tok
    assert_failure 1
    assert_equal "$stderr" 'lstm-dump: cut.tok: truncated stream (no end record)'
}

# ---- issue 18: outputs over inputs, closed standard fds, vocab_size, lstm-dump on pipes and full disks

# run captures stdout: these put the command's own stdout where the test needs it
closed_stdout() { "$@" >&-; }
closed_stdin() { "$@" <&-; }
to_full() { "$@" > /dev/full; }

# Rewrites the vocab_size value of a stream (decompressed, edited, recompressed) as as many 9s.
set_vocab_size() {
    zstd -q -dc "$1" | python3 -c '
import sys
d = sys.stdin.buffer.read()
i = d.index(b"\x0avocab_size") + 11
n = int.from_bytes(d[i:i + 4], "little")
sys.stdout.buffer.write(d[:i + 4] + b"9" * n + d[i + 4 + n:])' | zstd -q --check -c > "$2"
}

@test "-o naming the input is refused before any work" {
    cp "$T/docs.tok" in.tok
    run --separate-stderr "$WIN" -f -o in.tok in.tok
    assert_failure 2
    [ "$stderr" = "lstm-window: in.tok: -o names the input file" ]
    cmp in.tok "$T/docs.tok"
    ln -s in.tok link.tok
    run --separate-stderr "$WIN" -f -o link.tok in.tok
    assert_failure 2
    [ "$stderr" = "lstm-window: link.tok: -o names the input file" ]
}

@test "a closed stdin or stdout is an error; a closed stdin does not swallow the output" {
    run --separate-stderr closed_stdin "$WIN" -o out.win
    assert_failure 1
    [ "$stderr" = "lstm-window: stdin: Bad file descriptor" ]
    run --separate-stderr closed_stdout "$WIN" "$T/docs.tok"
    assert_failure 1
    [ "$stderr" = "lstm-window: stdout: Bad file descriptor" ]
    run --separate-stderr closed_stdin "$WIN" -L 2 -o out.win "$T/docs.tok"
    assert_success
    run --separate-stderr "$DUMP" out.win
    assert_success
    assert_line 'end: 5 records, whole'
    run --separate-stderr closed_stdout "$DUMP" out.win
    assert_failure 1
    [ "$stderr" = "lstm-dump: stdout: Bad file descriptor" ]
    run --separate-stderr closed_stdin "$DUMP"
    assert_failure 1
    [ "$stderr" = "lstm-dump: stdin: Bad file descriptor" ]
}

@test "a vocab_size that disagrees with the tokenizer is refused by lstm-window and by window readers" {
    set_vocab_size "$T/docs.tok" bad.tok
    run --separate-stderr "$WIN" -o out.win bad.tok
    assert_failure 1
    [ "$stderr" = "lstm-window: bad.tok: vocab_size 99 in the metadata differs from the tokenizer's 12 ids" ]
    [ ! -e out.win ]
    run --separate-stderr "$TOK" -m bad.tok -o again.tok "$T/docs.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: bad.tok: vocab_size in the metadata differs from the tokenizer's vocabulary" ]
    "$WIN" -L 2 "$T/docs.tok" > good.win
    set_vocab_size good.win bad.win
    run --separate-stderr "$LSTM_BIN/lstm-train" -q --hidden 4 --epochs 1 -o m.ckpt bad.win
    assert_failure 1
    [ "$stderr" = "lstm-train: bad.win: vocab_size 99 in the metadata differs from the tokenizer's 12 ids" ]
    [ ! -e m.ckpt ]
}

@test "lstm-dump reads a pipe once: streams and checkpoints through <(...) and FIFOs" {
    run --separate-stderr "$DUMP" <(cat "$T/docs.tok")
    assert_success
    assert_line 'end: 3 records, whole'
    mkfifo f.fifo
    cat "$T/docs.tok" > f.fifo &
    run --separate-stderr "$DUMP" --text f.fifo
    assert_success
    assert_output $'a b c d e\nf g\nh'
    "$WIN" -L 2 "$T/docs.tok" > d.win
    "$LSTM_BIN/lstm-train" -q --hidden 4 --threads 1 --epochs 1 -o m.ckpt d.win
    "$DUMP" m.ckpt > want.txt
    run --separate-stderr "$DUMP" <(cat m.ckpt)
    assert_success
    [ "$(sed 1d want.txt)" = "$(echo "$output" | sed 1d)" ]
    run --separate-stderr "$DUMP" --vocab < m.ckpt
    assert_success
    assert_line --index 4 $'4\ta'
    cat m.ckpt | "$DUMP" --vocab > piped.txt
    [ "$(cat piped.txt)" = "$output" ]
}

@test "lstm-dump: a cut checkpoint is called a truncated checkpoint" {
    "$WIN" -L 2 "$T/docs.tok" > d.win
    "$LSTM_BIN/lstm-train" -q --hidden 4 --threads 1 --epochs 1 -o m.ckpt d.win
    head -c 200 m.ckpt > cut.ckpt
    run --separate-stderr "$DUMP" cut.ckpt
    assert_failure 1
    [ "$stderr" = "lstm-dump: cut.ckpt: truncated checkpoint (shorter than its header says)" ]
}

@test "lstm-dump: every mode reports a write error on a full disk" {
    "$WIN" -L 2 "$T/docs.tok" > d.win
    "$LSTM_BIN/lstm-train" -q --hidden 4 --threads 1 --epochs 1 -o m.ckpt d.win
    for args in "" "--text" "--vocab" "--ids" "--header" "-n 1"; do
        for f in "$T/docs.tok" d.win m.ckpt; do
            run --separate-stderr "$DUMP" $args "$f"
            assert_success
            run --separate-stderr to_full "$DUMP" $args "$f"
            assert_failure 1
            [ "$stderr" = "lstm-dump: stdout: No space left on device" ]
        done
    done
}

@test "lstm-window and lstm-dump with no file on a terminal refuse instead of waiting for binary input" {
    run script -qec "$LSTM_BIN/lstm-window -L 5 -o $BATS_TEST_TMPDIR/x.win" /dev/null < /dev/null
    assert_failure 2
    assert_output --partial "lstm-window: reading a token stream from a terminal: give a file or a pipe (see --help)"
    run script -qec "$LSTM_BIN/lstm-dump" /dev/null < /dev/null
    assert_failure 2
    assert_output --partial "lstm-dump: reading a stream or checkpoint from a terminal: give a file or a pipe (see --help)"
}
