#!/usr/bin/env bats
# lstm-ngram: train, eval, train --eval, which targets are scored (the same as lstm-eval on the
# windows of the same text), keystroke savings (by hand, and the same words typed as lstm-eval types),
# the model file, tokenizer checks, bad and truncated inputs.

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
    # a sentence the trigram is sure of, 30 times; the test text is the same sentence twice
    for i in $(seq 30); do echo 'the cat sat on the mat .'; done > "$T/sure.txt"
    "$TOK" --split space --vocab-out "$T/sure.vocab" "$T/sure.txt" > "$T/sure.tok"
    printf 'the cat sat on the mat .\nthe cat sat on the mat .\n' | "$TOK" -m "$T/sure.vocab" > "$T/sure_test.tok"
    "$NG" train -q -n 3 -o "$T/sure.ngram" "$T/sure.tok"
    # chat: conversations k1-k3 train the vocabulary, the n-grams and a tiny LSTM; all five are the
    # test text (unknown words included); windows per conversation and across them
    local chat="$fx/ngram_chat.csv"
    head -14 "$chat" > "$T/chat_train.csv"
    "$TOK" -q --vocab-out "$T/chat.vocab" "$T/chat_train.csv" > "$T/chat_train.tok"
    "$TOK" -q -m "$T/chat.vocab" "$chat" > "$T/chat.tok"
    "$WIN" -q -L 6 "$T/chat_train.tok" > "$T/chat_train.win"
    "$WIN" -q -L 6 "$T/chat.tok" > "$T/chat.win"
    "$WIN" -q -L 6 --cross-docs "$T/chat.tok" > "$T/chat_x.win"
    "$LSTM_BIN/lstm-train" -q --hidden 8 --layers 1 --epochs 1 --threads 1 -o "$T/chat.ckpt" "$T/chat_train.win"
    "$NG" train -q -n 3 -o "$T/chat.ngram" "$T/chat_train.tok"
    "$NG" train -q -n 3 --cross-docs -o "$T/chat_x.ngram" "$T/chat_train.tok"
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
    # 36 words + 4 EOS but the first word of each line (no window has it as a target); "lighthouse"
    # is UNK and still scored
    assert_output --regexp '^test.tok: perplexity [0-9]+\.[0-9]{2} \(nll [0-9.]+, 36 tokens, 3-gram, per-document, targets docs\) top-1 [0-9.]+% top-5 [0-9.]+%$'
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
    # p(c|b) = (1/3 + 4/3 * 0.192)/2, p(EOS|c) = 1/3 + 2/3 * 0.192: mean NLL 0.77100212, ppl 2.1619317
    # over the 6 tokens (--targets all); without a (the default: a line's first token is no window's
    # target) 0.80245854 over 5, ppl 2.2310192.
    run --separate-stderr "$NG" train -n 2 --json --targets all --eval "$T/abc.tok" "$T/abc.tok"
    assert_success
    assert_equal "$(jq -r '.tokens' <<< "$output")" 6
    assert_equal "$(jq -r '.nll * 1e8 | round' <<< "$output")" 77100212
    assert_equal "$(jq -r '.perplexity * 1e7 | round' <<< "$output")" 21619317
    # argmax is right everywhere but after b (a: 0.375 beats c: 0.295); top-2 everywhere
    assert_equal "$(jq -r '.top1 * 6 | round' <<< "$output")" 5
    assert_equal "$(jq -r '[.k, .topk] | @tsv' <<< "$output")" $'5\t1'
    run --separate-stderr "$NG" train -n 2 --json -k 1 --eval "$T/abc.tok" "$T/abc.tok"
    assert_equal "$(jq -r '[.targets, .tokens, .skipped] | @tsv' <<< "$output")" $'docs\t5\t1'
    assert_equal "$(jq -r '.nll * 1e8 | round' <<< "$output")" 80245854
    assert_equal "$(jq -r '.perplexity * 1e7 | round' <<< "$output")" 22310192
    assert_equal "$(jq -r '[.top1 * 5, .topk * 5] | map(round) | @tsv' <<< "$output")" $'4\t4'
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
    assert_equal "$(jq -r '[.order, .tokens, .cross_docs, .input] | @tsv' <<< "$output")" $'3\t36\tfalse\t'"$T/test.tok"
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
    # the windows of a --cross-docs stream have every token but the stream's first as a target
    assert_equal "$(jq -r '[.cross_docs, .targets, .tokens] | @tsv' <<< "$output")" $'true\tstream\t39'
    run --separate-stderr "$NG" eval -m x.ngram "$T/test.tok"
    assert_output --partial '3-gram, cross-docs, targets stream'
}

@test "--targets: docs, stream or all, whatever the model's history; errors" {
    for r in docs:36 stream:39 all:40; do
        run --separate-stderr "$NG" eval --json --targets "${r%%:*}" -m "$T/m3.ngram" "$T/test.tok"
        assert_success
        assert_equal "$(jq -r '[.targets, .tokens, .skipped] | @tsv' <<< "$output")" "${r%%:*}"$'\t'"${r##*:}"$'\t'"$((40 - ${r##*:}))"
    done
    # all: the published setup (every word and </s>), what the model scored before the rules existed
    a=$("$NG" eval --json --targets all -m "$T/m3.ngram" "$T/test.tok" | jq -r .nll)
    d=$("$NG" eval --json -m "$T/m3.ngram" "$T/test.tok" | jq -r .nll)
    [ "$a" != "$d" ]
    run --separate-stderr "$NG" eval --targets every -m "$T/m3.ngram" "$T/test.tok"
    assert_failure 2
    assert_equal "$stderr" "lstm-ngram: --targets: expected docs, stream or all, got 'every'"
    run --separate-stderr "$NG" train -n 2 --targets all -o m.ngram "$T/train.tok"
    assert_failure 2
    assert_equal "$stderr" 'lstm-ngram: train: --targets applies to the evaluations: give the test streams with --eval TEST'
    [ ! -e m.ngram ]
}

@test "lstm-ngram scores exactly the targets lstm-eval scores on the windows of the same chat text" {
    # chat.tok: 5 conversations of 22 turns (tag BOS words EOS each). The windows' targets are every
    # token but a conversation's first; neither tool scores BOS.
    total=$("$LSTM_BIN/lstm-dump" "$T/chat.tok" | awk '/^  D #/ { n += $3 } END { print n }')
    assert_equal "$("$LSTM_BIN/lstm-dump" "$T/chat.tok" | grep -c '^  D #')" 5
    want=$((total - 5 - 22))
    e=$("$LSTM_BIN/lstm-eval" -m "$T/chat.ckpt" --json "$T/chat.win" | jq -r .tokens)
    n=$("$NG" eval -m "$T/chat.ngram" --json "$T/chat.tok" | jq -r .tokens)
    assert_equal "$e" "$want"
    assert_equal "$n" "$want"
    # across conversations (lstm-window --cross-docs): every token but the stream's first, BOS aside;
    # a --cross-docs n-gram scores them by default, a per-conversation one with --targets stream
    want=$((total - 1 - 22))
    e=$("$LSTM_BIN/lstm-eval" -m "$T/chat.ckpt" --json "$T/chat_x.win" | jq -r .tokens)
    x=$("$NG" eval -m "$T/chat_x.ngram" --json "$T/chat.tok" | jq -r .tokens)
    s=$("$NG" eval -m "$T/chat.ngram" --json --targets stream "$T/chat.tok" | jq -r .tokens)
    assert_equal "$e $x $s" "$want $want $want"
}

@test "--keystrokes types the words lstm-eval types, in the same order, costing the same without suggestions" {
    for w in chat_x.win:chat_x.ngram chat.win:chat.ngram; do
        e=$("$LSTM_BIN/lstm-eval" -m "$T/chat.ckpt" --json --keystrokes -k 3 --keystrokes-trace "e.${w%%:*}.trace" "$T/${w%%:*}")
        n=$("$NG" eval -m "$T/${w##*:}" --json --keystrokes -k 3 --keystrokes-trace "n.${w%%:*}.trace" "$T/chat.tok")
        assert_equal "$(jq -r '[.typed_words, .keystrokes_without] | @tsv' <<< "$n")" \
            "$(jq -r '[.typed_words, .keystrokes_without] | @tsv' <<< "$e")"
        [ "$(jq -r .typed_words <<< "$n")" -gt 50 ]
        # word by word: the same words, of the same lengths (<unk> typed as 5 characters by both)
        assert_equal "$(cut -f1,2 "n.${w%%:*}.trace")" "$(cut -f1,2 "e.${w%%:*}.trace")"
        grep -q $'^<unk>\t5\t6\t-$' "n.${w%%:*}.trace"
    done
}

@test "--keystrokes on a sentence the trigram is sure of: the savings by hand" {
    # Each line but its first word (no window's target): cat sat on the mat, each shown before a
    # character is typed (1 keystroke instead of 4, 4, 3, 4, 4), and "." typed (1 either way):
    # 6 instead of 20 per line, 12 of 40 for the two lines.
    run --separate-stderr "$NG" eval -m "$T/sure.ngram" --keystrokes -k 1 --keystrokes-trace s.trace "$T/sure_test.tok"
    assert_success
    assert_line --index 0 --regexp '^.*sure_test.tok: perplexity 1\.[0-9]{2} \(nll [0-9.]+, 14 tokens, 3-gram, per-document, targets docs\) top-1 100\.0% top-1 100\.0%$'
    assert_line --index 1 'keystrokes saved 70.0% (12 instead of 40, 1 suggestions shown) acceptance 100.0% (10 of 10 words)'
    assert_equal "$(head -5 s.trace)" $'cat\t3\t1\t0\nsat\t3\t1\t0\non\t2\t1\t0\nthe\t3\t1\t0\nmat\t3\t1\t0'
    assert_equal "$(wc -l < s.trace)" 10
    # --targets all types each line's first "the" too (sure after BOS): 14 of 48
    run --separate-stderr "$NG" eval -m "$T/sure.ngram" --json --keystrokes -k 1 --targets all "$T/sure_test.tok"
    assert_equal "$(jq -r '[.keystrokes_with, .keystrokes_without, .typed_words, .acceptance_rate] | @tsv' <<< "$output")" $'14\t48\t12\t1'
    assert_equal "$(jq -r '.keystrokes_saved * 1e6 | round' <<< "$output")" 708333
}

@test "--keystrokes: more suggestions save no less; train --eval does the same; errors" {
    a=$("$NG" eval -m "$T/chat.ngram" --json --keystrokes -k 1 "$T/chat.tok")
    b=$("$NG" eval -m "$T/chat.ngram" --json --keystrokes -k 5 "$T/chat.tok")
    python3 -c '
import json, sys
a, b = (json.loads(x) for x in sys.argv[1:])
assert a["keystrokes_without"] == b["keystrokes_without"] and a["typed_words"] == b["typed_words"]
assert 0 < a["keystrokes_saved"] <= b["keystrokes_saved"] < 1, (a, b)
assert 0 < a["acceptance_rate"] <= b["acceptance_rate"] <= 1
assert abs(b["keystrokes_saved"] - (1 - b["keystrokes_with"] / b["keystrokes_without"])) < 1e-9' "$a" "$b"
    run --separate-stderr "$NG" train -q -n 3 --json --keystrokes -k 5 --eval "$T/chat.tok" "$T/chat_train.tok"
    assert_success
    assert_equal "$output" "$(sed 's|"model":"[^"]*"|"model":"'"$T/chat_train.tok"'"|' <<< "$b")"
    # errors: a character model (its words need lstm-eval's beam), before training; -k; the trace
    "$TOK" -q --chars "$T/abc.txt" > c.tok
    run --separate-stderr "$NG" train -n 2 --keystrokes --eval c.tok c.tok
    assert_failure 1
    assert_equal "$stderr" "lstm-ngram: c.tok: --keystrokes needs a word model (lstm-tok --words or --split space), not a character model: its words are assembled by a beam that runs an LSTM (lstm-eval --keystrokes)"
    run --separate-stderr "$NG" eval -m "$T/chat.ngram" --keystrokes -k 0 "$T/chat.tok"
    assert_failure 2
    assert_equal "$stderr" "lstm-ngram: -k: expected an integer from 1 to 100000, got '0'"
    echo keep > kept.trace
    run --separate-stderr "$NG" eval -m "$T/chat.ngram" --keystrokes-trace kept.trace "$T/chat.tok"
    assert_failure 1
    assert_equal "$stderr" 'lstm-ngram: kept.trace: file exists (remove it or give another file)'
    assert_equal "$(cat kept.trace)" keep
    run --separate-stderr "$NG" eval -m "$T/chat.ngram" --keystrokes-trace new.trace "$T/chat.tok" "$T/chat.tok"
    assert_failure 2
    assert_equal "$stderr" 'lstm-ngram: --keystrokes-trace: one test stream at a time (got 2)'
    [ ! -e new.trace ]
    run --separate-stderr "$NG" train -n 2 --keystrokes -o m.ngram "$T/train.tok"
    assert_failure 2
    assert_equal "$stderr" 'lstm-ngram: train: --keystrokes applies to the evaluations: give the test streams with --eval TEST'
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
    assert_output --regexp '^stdin: perplexity .* 36 tokens, 4-gram, per-document, targets docs'
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
