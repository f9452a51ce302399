#!/usr/bin/env bats
# lstm-ngram: train, eval, train --eval, the model file, tokenizer checks, bad and truncated inputs.

bats_require_minimum_version 1.5.0

setup_file() {
    export T="$BATS_FILE_TMPDIR"
    export NG="$LSTM_BIN/lstm-ngram" TOK="$LSTM_BIN/lstm-tok" WIN="$LSTM_BIN/lstm-window"
    local fx="$BATS_TEST_DIRNAME/fixtures"
    "$TOK" --split space --vocab-out "$T/vocab" "$fx/ngram_train.txt" > "$T/train.tok"
    "$TOK" -m "$T/vocab" "$fx/ngram_test.txt" > "$T/test.tok"
    # the same test text with a tokenizer of its own: other ids
    "$TOK" --split space "$fx/ngram_test.txt" > "$T/other.tok"
    printf 'a b a b c\n' > "$T/abc.txt"
    "$TOK" --split space "$T/abc.txt" > "$T/abc.tok"
    # a long stream for truncation
    awk 'BEGIN { for (i = 0; i < 4000; i++) { for (j = 0; j < 12; j++) printf "w%d ", (i * 7 + j * 13) % 300; printf "\n" } }' > "$T/big.txt"
    "$TOK" --split space "$T/big.txt" > "$T/big.tok"
    "$NG" train -q -n 3 -o "$T/m3.ngram" "$T/train.tok"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

@test "--help shows both commands and an example; --version; usage errors" {
    run --separate-stderr "$NG" --help
    assert_success
    assert_output --partial 'Usage: lstm-ngram train [-n ORDER] [options] [TRAIN]'
    assert_output --partial 'lstm-ngram eval -m MODEL [options] [TEST...]'
    assert_output --partial 'lstm-ngram train -n 5 -o ptb5.ngram train.tok && lstm-ngram eval -m ptb5.ngram test.tok'
    run --separate-stderr "$NG" train --help
    assert_success
    assert_output --partial 'Usage: lstm-ngram'
    run --separate-stderr "$NG" --version
    assert_output 'lstm-ngram 1.0'
    run --separate-stderr "$NG"
    assert_failure 2
    run --separate-stderr "$NG" fit x.tok
    assert_failure 2
    assert_equal "$stderr" "lstm-ngram: unknown command 'fit': expected train or eval (see --help)"
    run --separate-stderr "$NG" train -n 0 "$T/train.tok"
    assert_failure 2
    assert_equal "$stderr" "lstm-ngram: -n: expected an integer from 1 to 10, got '0'"
    run --separate-stderr "$NG" train --bogus "$T/train.tok"
    assert_failure 2
    run --separate-stderr "$NG" eval "$T/test.tok"
    assert_failure 2
    assert_equal "$stderr" 'lstm-ngram: eval: -m MODEL is required'
    run --separate-stderr "$NG" train -o m.ngram "$T/train.tok" "$T/test.tok"
    assert_failure 2
}

@test "train writes a model; eval prints perplexity, NLL, tokens and top-1" {
    run --separate-stderr "$NG" train -n 3 -o m.ngram "$T/train.tok"
    assert_success
    assert_output ''
    [ -s m.ngram ]
    [ "$(head -c 6 m.ngram | tail -c 5)" = 'NGRAM' ]
    cp "$T/test.tok" test.tok
    run --separate-stderr "$NG" eval -m m.ngram test.tok
    assert_success
    # 36 words + 4 EOS; "lighthouse" is UNK and still scored
    assert_output --regexp '^test.tok: perplexity [0-9]+\.[0-9]{2} \(nll [0-9.]+, 40 tokens, 3-gram, per-document\) top-1 [0-9.]+%$'
    # the same model written twice is the same bytes
    "$NG" train -q -n 3 -o m2.ngram "$T/train.tok"
    cmp m.ngram m2.ngram
}

@test "a hand-computed bigram perplexity (a b a b c)" {
    # BOS a b a b c EOS. Count-of-counts: unigram continuation counts a 2, b c EOS 1 -> n1 3, n2 1:
    # Y = 3/5, D1 = 1 - 2(3/5)(1/3) = 0.6, D2 falls back to 1 (no n3). gamma numerator 0.6*3 + 1 = 2.8,
    # p1(a) = (2 - 1 + 2.8/5)/5 = 0.312, p1(b) = p1(c) = p1(EOS) = (1 - 0.6 + 0.56)/5 = 0.192.
    # Bigrams BOS a 1, a b 2, b a 1, b c 1, c EOS 1 -> n1 4, n2 1: D1 = 1 - 2(4/6)(1/4) = 2/3, D2 = 1.
    # p(a|BOS) = 1/3 + 2/3 * 0.312, p(b|a) = (1 + 0.192)/2, p(a|b) = (1/3 + 4/3 * 0.312)/2,
    # p(c|b) = (1/3 + 4/3 * 0.192)/2, p(EOS|c) = 1/3 + 2/3 * 0.192: mean NLL 0.77100212, ppl 2.1619317.
    run --separate-stderr "$NG" train -n 2 --json --eval "$T/abc.tok" "$T/abc.tok"
    assert_success
    assert_equal "$(jq -r '.tokens' <<< "$output")" 6
    assert_equal "$(jq -r '.nll * 1e8 | round' <<< "$output")" 77100212
    assert_equal "$(jq -r '.perplexity * 1e7 | round' <<< "$output")" 21619317
    # argmax is right everywhere but after b (a: 0.375 beats c: 0.295)
    assert_equal "$(jq -r '.top1 * 6 | round' <<< "$output")" 5
}

@test "train --eval gives what train -o then eval gives; --json; several test streams" {
    run --separate-stderr "$NG" train -q -n 3 --eval "$T/test.tok" --eval "$T/train.tok" "$T/train.tok"
    assert_success
    sep="$output"
    [ "$(wc -l <<< "$sep")" -eq 2 ]
    run --separate-stderr "$NG" eval -q -m "$T/m3.ngram" "$T/test.tok" "$T/train.tok"
    assert_equal "$output" "$sep"
    run --separate-stderr "$NG" eval --json -m "$T/m3.ngram" "$T/test.tok"
    assert_success
    assert_equal "$(jq -r '[.order, .tokens, .cross_docs, .input] | @tsv' <<< "$output")" $'3\t40\tfalse\t'"$T/test.tok"
    ppl=$(jq -r '.perplexity' <<< "$output")
    nll=$(jq -r '.nll' <<< "$output")
    awk -v p="$ppl" -v n="$nll" 'BEGIN { d = p - exp(n); exit !(d < 1e-6 && d > -1e-6) }'
    # a model reads from stdin too, and the test stream
    run --separate-stderr bash -c "'$NG' eval -m - '$T/test.tok' < '$T/m3.ngram'"
    assert_success
    run --separate-stderr bash -c "'$NG' eval -m '$T/m3.ngram' < '$T/test.tok'"
    assert_output --partial 'stdin: perplexity'
}

@test "higher orders fit the training text better; --cross-docs is stored and used" {
    p1=$("$NG" train -q -n 1 --json --eval "$T/train.tok" "$T/train.tok" | jq -r .perplexity)
    p3=$("$NG" train -q -n 3 --json --eval "$T/train.tok" "$T/train.tok" | jq -r .perplexity)
    awk -v a="$p1" -v b="$p3" 'BEGIN { exit !(b < a) }'
    "$NG" train -q -n 3 --cross-docs -o x.ngram "$T/train.tok"
    run --separate-stderr "$NG" eval --json -m x.ngram "$T/test.tok"
    assert_success
    assert_equal "$(jq -r '[.cross_docs, .tokens] | @tsv' <<< "$output")" $'true\t40'
    run --separate-stderr "$NG" eval -m x.ngram "$T/test.tok"
    assert_output --partial '3-gram, cross-docs'
}

@test "a test stream with another tokenizer is refused, in eval and in train --eval" {
    run --separate-stderr "$NG" eval -m "$T/m3.ngram" "$T/other.tok"
    assert_failure 1
    assert_equal "$stderr" "lstm-ngram: $T/other.tok: tokenizer does not match $T/m3.ngram's: tokenize it with lstm-tok -m (the training stream or its vocab)"
    run --separate-stderr "$NG" train -n 2 -o m.ngram --eval "$T/other.tok" "$T/train.tok"
    assert_failure 1
    assert_equal "$stderr" "lstm-ngram: $T/other.tok: tokenizer does not match $T/train.tok's: tokenize it with lstm-tok -m $T/train.tok"
    # refused before training: no model written
    [ -z "$(ls m.ngram* 2> /dev/null)" ]
}

@test "bad inputs: text, windows, empty, missing, a stream as the model" {
    run --separate-stderr "$NG" train -o m.ngram "$T/abc.txt"
    assert_failure 1
    assert_equal "$stderr" "lstm-ngram: $T/abc.txt: a text/CSV file, not a token stream: pipe it through lstm-tok (lstm-tok $T/abc.txt | lstm-ngram train ...)"
    "$WIN" -L 3 "$T/train.tok" > w.win
    run --separate-stderr "$NG" train -o m.ngram w.win
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: w.win: got windows (WIND), expected a token stream (TOKS): make one with lstm-tok'
    : > empty
    run --separate-stderr "$NG" train -o m.ngram empty
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: empty: empty input (no stream)'
    run --separate-stderr "$NG" train -o m.ngram missing.tok
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: missing.tok: No such file or directory'
    run --separate-stderr "$NG" eval -m "$T/train.tok" "$T/test.tok"
    assert_failure 1
    assert_equal "$stderr" "lstm-ngram: $T/train.tok: not an lstm-ngram model (wrong magic)"
    run --separate-stderr "$NG" eval -m nope.ngram "$T/test.tok"
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: nope.ngram: No such file or directory'
    [ ! -e m.ngram ]
}

@test "a truncated training stream fails and leaves no model behind" {
    size=$(stat -c %s "$T/big.tok")
    head -c $((size / 2)) "$T/big.tok" > cut.tok
    run --separate-stderr "$NG" train -n 3 -o out.ngram cut.tok
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: cut.tok: truncated stream (no end record)'
    [ -z "$(ls out.ngram* 2> /dev/null)" ]
    run --separate-stderr bash -c "head -c 2000 '$T/big.tok' | '$NG' train -n 3 > /dev/null"
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: stdin: truncated stream (no end record)'
    # a truncated test stream, too
    run --separate-stderr "$NG" train -n 2 --eval cut.tok "$T/big.tok"
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: cut.tok: truncated stream (no end record)'
}

@test "a truncated or bit-flipped model file is refused" {
    size=$(stat -c %s "$T/m3.ngram")
    head -c $((size - 1)) "$T/m3.ngram" > cut.ngram
    run --separate-stderr "$NG" eval -m cut.ngram "$T/test.tok"
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: cut.ngram: truncated model file'
    head -c 20 "$T/m3.ngram" > head.ngram
    run --separate-stderr "$NG" eval -m head.ngram "$T/test.tok"
    assert_equal "$stderr" 'lstm-ngram: head.ngram: truncated model file'
    cp "$T/m3.ngram" flip.ngram
    printf '\x55' | dd of=flip.ngram bs=1 seek=$((size / 2)) conv=notrunc 2> /dev/null
    run --separate-stderr "$NG" eval -m flip.ngram "$T/test.tok"
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: flip.ngram: corrupted model (checksum mismatch)'
    cp "$T/m3.ngram" ver.ngram
    printf '\x07' | dd of=ver.ngram bs=1 seek=8 conv=notrunc 2> /dev/null
    run --separate-stderr "$NG" eval -m ver.ngram "$T/test.tok"
    assert_equal "$stderr" 'lstm-ngram: ver.ngram: unsupported model version'
}

@test "a model of format version 1 (CRC-32, an older lstm-ngram) is refused with what to do" {
    # Version 1 is version 2 with a CRC-32 (4 bytes) where version 2 has an XXH64 (8 bytes): rewrite
    # a new model that way (the version field, file_len, the checksum) to get what the old writer wrote.
    python3 - "$T/m3.ngram" v1.ngram <<'EOF'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read()[:-8])
assert struct.unpack_from('<I', b, 8)[0] == 2
struct.pack_into('<I', b, 8, 1)
struct.pack_into('<Q', b, 40, len(b) + 4)
b += struct.pack('<I', zlib.crc32(b))
open(sys.argv[2], 'wb').write(b)
EOF
    assert_equal "$(stat -c %s v1.ngram)" "$(( $(stat -c %s "$T/m3.ngram") - 4 ))"
    msg='an n-gram model of format version 1, made by an older lstm-ngram: train it again with lstm-ngram train'
    run --separate-stderr "$NG" eval -m v1.ngram "$T/test.tok"
    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "lstm-ngram: v1.ngram: $msg"
    run --separate-stderr "$NG" eval -m - "$T/test.tok" < v1.ngram
    assert_failure 1
    assert_equal "$stderr" "lstm-ngram: stdin: $msg"
}

@test "outputs: no overwrite without -f, missing directory, binary to a terminal" {
    "$NG" train -q -n 2 -o m.ngram "$T/train.tok"
    run --separate-stderr "$NG" train -n 2 -o m.ngram "$T/train.tok"
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: m.ngram: file exists (use -f to overwrite)'
    run --separate-stderr "$NG" train -q -n 3 -f -o m.ngram "$T/train.tok"
    assert_success
    cmp m.ngram "$T/m3.ngram"
    run --separate-stderr "$NG" train -n 2 -o nodir/m.ngram "$T/train.tok"
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: nodir/m.ngram: No such file or directory'
    run script -qec "'$NG' train -n 2 '$T/train.tok'" /dev/null
    assert_failure 2
    assert_output --partial 'lstm-ngram: refusing to write binary data to a terminal: use -o FILE or a pipe'
    # to a pipe it is fine, and the piped model evaluates like the file
    "$NG" train -q -n 3 "$T/train.tok" | cmp - "$T/m3.ngram"
}

@test "pipeline: lstm-tok | lstm-ngram train from stdin, then eval" {
    "$TOK" --split space "$BATS_TEST_DIRNAME/fixtures/ngram_train.txt" | "$NG" train -q -n 4 -o p.ngram
    "$TOK" --split space "$BATS_TEST_DIRNAME/fixtures/ngram_train.txt" > tr.tok
    run --separate-stderr bash -c "'$TOK' -m tr.tok '$BATS_TEST_DIRNAME/fixtures/ngram_test.txt' | '$NG' eval -m p.ngram"
    assert_success
    assert_output --regexp '^stdin: perplexity .* 40 tokens, 4-gram, per-document'
}

@test "train: -o naming the training stream or an --eval stream is refused; a closed stdin is an error" {
    cp "$T/train.tok" in.tok
    run --separate-stderr "$NG" train -f -o in.tok in.tok
    assert_failure 2
    [ "$stderr" = "lstm-ngram: in.tok: -o names the training stream" ]
    cmp in.tok "$T/train.tok"
    cp "$T/test.tok" t.tok
    run --separate-stderr "$NG" train -f -o t.tok --eval t.tok in.tok
    assert_failure 2
    [ "$stderr" = "lstm-ngram: t.tok: -o names a stream given with --eval" ]
    cmp t.tok "$T/test.tok"
    closed_stdin() { "$@" <&-; }
    run --separate-stderr closed_stdin "$NG" train -o m.ngram
    assert_failure 1
    [ "$stderr" = "lstm-ngram: stdin: Bad file descriptor" ]
    [ ! -e m.ngram ]
}

@test "lstm-dump given an n-gram model says what it is and what reads it" {
    "$NG" train -q -n 2 -o m.ngram "$T/train.tok"
    run --separate-stderr "$LSTM_BIN/lstm-dump" m.ngram
    assert_failure 1
    [ "$stderr" = "lstm-dump: m.ngram: an n-gram model (lstm-ngram), not an lstm stream or checkpoint: evaluate it with 'lstm-ngram eval -m m.ngram TEST.tok'" ]
    run --separate-stderr bash -c "'$LSTM_BIN/lstm-dump' < m.ngram"
    assert_failure 1
    [ "$stderr" = "lstm-dump: stdin: an n-gram model (lstm-ngram), not an lstm stream or checkpoint: evaluate it with 'lstm-ngram eval -m - TEST.tok'" ]
}
