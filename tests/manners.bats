#!/usr/bin/env bats
# What every tool shares (tools/common): -q and -v, --version, getopt errors in the tools' words,
# numeric flag errors.

bats_require_minimum_version 1.5.0

setup_file() {
    export T="$BATS_FILE_TMPDIR" B="$LSTM_BIN"
    "$B/lstm-tok" -o "$T/chat.tok" "$BATS_TEST_DIRNAME/fixtures/chat_small.csv"
    "$B/lstm-window" -L 8 -o "$T/chat.win" "$T/chat.tok"
    "$B/lstm-train" -q --hidden 16 --epochs 1 --valid-frac 0 -o "$T/m.ckpt" "$T/chat.win"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

@test "every tool: --version, -q and -v are options, an unknown option and a missing argument are one line" {
    for t in lstm-tok lstm-window lstm-train lstm-eval lstm-sample lstm-dump lstm-ngram lstm-inspect lstm-serve; do
        run --separate-stderr "$B/$t" --version
        assert_success
        [ "$output" = "$t 1.0" ]
        run --separate-stderr "$B/$t" --help
        assert_success
        [[ "$output" == *"-q, --quiet"* ]] || { echo "$t --help has no -q"; false; }
        [[ "$output" == *"-v, --verbose"* ]] || { echo "$t --help has no -v"; false; }
    done
    for t in lstm-tok lstm-window lstm-train lstm-eval lstm-sample lstm-dump lstm-serve; do
        run --separate-stderr "$B/$t" --bogus
        assert_failure 2
        [ "$stderr" = "$t: unknown option '--bogus' (try '$t --help')" ]
    done
    run --separate-stderr "$B/lstm-ngram" eval --bogus
    assert_failure 2
    [ "$stderr" = "lstm-ngram: unknown option '--bogus' (try 'lstm-ngram --help')" ]
    run --separate-stderr "$B/lstm-inspect" repeat -x
    assert_failure 2
    [ "$stderr" = "lstm-inspect: unknown option '-x' (try 'lstm-inspect --help')" ]
    run --separate-stderr "$B/lstm-window" -L
    assert_failure 2
    [ "$stderr" = "lstm-window: option '-L' needs an argument (try 'lstm-window --help')" ]
    run --separate-stderr "$B/lstm-eval" -m "$T/m.ckpt" -k 0
    assert_failure 2
    [ "$stderr" = "lstm-eval: -k: expected an integer from 1 to 100000, got '0'" ]
}

@test "-v: lstm-train prints progress lines into a file, lstm-eval a timing line, lstm-dump and lstm-inspect a summary" {
    run --separate-stderr "$B/lstm-train" -v --hidden 16 --epochs 1 --valid-frac 0 -o m2.ckpt "$T/chat.win"
    assert_success
    [[ "$stderr" =~ "lstm-train: epoch 1/1 "[\ 0-9.]+"% loss "[0-9.]+" ppl "[0-9.]+" lr ".*" tok/s ETA " ]]
    [[ "$stderr" =~ "lstm-train: kernels: "(avx512\ 14x32|avx2\ 6x16|scalar\ 4x4)", picked for this CPU at run time" ]]
    # asked for by LSTM_KERNEL (scalar runs everywhere)
    run --separate-stderr env LSTM_KERNEL=scalar "$B/lstm-train" -v --hidden 16 --epochs 1 --valid-frac 0 -o m4.ckpt "$T/chat.win"
    assert_success
    [[ "$stderr" == *"lstm-train: kernels: scalar 4x4, picked"* ]]
    [[ "$stderr" != *$'\r'* ]]
    run --separate-stderr "$B/lstm-train" --hidden 16 --epochs 1 --valid-frac 0 -o m3.ckpt "$T/chat.win"
    [[ "$stderr" != *"% loss"* ]]
    run --separate-stderr "$B/lstm-eval" -v -m "$T/m.ckpt" "$T/chat.win"
    assert_success
    [[ "$stderr" =~ ^"lstm-eval: $T/chat.win: "[0-9]+" target tokens in "[0-9.]+"s ("[0-9]+" tok/s), fp32 checkpoint"$ ]]
    run --separate-stderr "$B/lstm-eval" -m "$T/m.ckpt" "$T/chat.win"
    [ -z "$stderr" ]
    run --separate-stderr "$B/lstm-dump" -v "$T/chat.tok"
    assert_success
    [[ "$stderr" =~ ^"lstm-dump: $T/chat.tok: "[0-9]+" records, end record verified"$ ]]
    run --separate-stderr "$B/lstm-dump" -v "$T/m.ckpt"
    [[ "$stderr" =~ ^"lstm-dump: $T/m.ckpt: checkpoint, "[0-9]+" entries, checksum verified"$ ]]
    run --separate-stderr "$B/lstm-dump" "$T/m.ckpt"
    [ -z "$stderr" ]
    printf 'a b a b\n' > gen.txt
    run --separate-stderr "$B/lstm-inspect" repeat -v gen.txt
    assert_success
    [[ "$stderr" =~ ^"lstm-inspect: repeat: done in "[0-9.]+"s"$ ]]
}

@test "-q: lstm-tok drops its warnings, lstm-eval its progress line on a terminal" {
    printf 'bad \377 byte\n' > bad.txt
    run --separate-stderr "$B/lstm-tok" -o a.tok bad.txt
    [ "$stderr" = "lstm-tok: warning: 1 invalid UTF-8 sequence replaced with U+FFFD" ]
    run --separate-stderr "$B/lstm-tok" -q -o b.tok bad.txt
    assert_success
    [ -z "$stderr" ]
    # on a terminal (script(1) gives one) the progress line shows unless -q
    script -qec "'$B/lstm-eval' -m '$T/m.ckpt' '$T/chat.win' > /dev/null" /dev/null > tty.out
    grep -q "batches)" tty.out
    script -qec "'$B/lstm-eval' -q -m '$T/m.ckpt' '$T/chat.win' > /dev/null" /dev/null > tty.q
    run grep -c "batches)" tty.q
    assert_output "0"
}
