#!/usr/bin/env bats
# lstm-inspect: gate activations, hidden-state collapse, repetition rates.

bats_require_minimum_version 1.5.0

setup_file() {
    export T="$BATS_FILE_TMPDIR"
    export INSPECT="$LSTM_BIN/lstm-inspect"
    awk 'BEGIN { srand(3); for (i = 0; i < 400; i++) { n = 5 + int(rand() * 8); s = int(rand() * 20);
                 for (j = 0; j < n; j++) printf "w%d ", (s + j) % 20; printf "\n" } }' > "$T/cyc.txt"
    "$LSTM_BIN/lstm-tok" --split space "$T/cyc.txt" | "$LSTM_BIN/lstm-window" -L 10 > "$T/cyc.win"
    "$LSTM_BIN/lstm-train" -q --hidden 16 --threads 1 --epochs 8 --lr 0.01 --dropout 0 -o "$T/m.ckpt" "$T/cyc.win"
    "$LSTM_BIN/lstm-train" -q --hidden 16 --threads 1 --cell gru --epochs 1 -o "$T/gru.ckpt" "$T/cyc.win"
    "$LSTM_BIN/lstm-train" -q --hidden 16 --threads 1 --cell rnn --epochs 1 -o "$T/rnn.ckpt" "$T/cyc.win"
    # all weights zero: every input ends in the same (zero) state
    "$LSTM_BIN/lstm-train" -q --hidden 16 --threads 1 --init-scale 0 --optim sgd --lr 1e-12 --epochs 1 -o "$T/flat.ckpt" "$T/cyc.win"
    printf 'w1 w2 w3\nw7 w8\nw15 w16 w17 w18\nw4\n' > "$T/prompts.txt"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

@test "--help and usage errors" {
    run "$INSPECT" --help
    assert_success
    assert_output --partial 'Usage: lstm-inspect gates  -m MODEL'
    run --separate-stderr "$INSPECT" frobnicate
    assert_failure 2
    assert_equal "$stderr" "lstm-inspect: unknown command 'frobnicate' (gates, states or repeat)"
    run --separate-stderr "$INSPECT" gates "w1 w2"
    assert_failure 2
    assert_equal "$stderr" 'lstm-inspect: -m MODEL is required'
}

@test "gates: one row per token, in, forget and out gates per layer, all in [0, 1]" {
    run --separate-stderr "$INSPECT" gates -m "$T/m.ckpt" --tsv "w3 w4 w5 w6"
    assert_success
    assert_line --index 0 $'pos\ttoken\tl0.in\tl0.forget\tl0.out\tl1.in\tl1.forget\tl1.out'
    # the prompt of a plain-text model starts with </s> (the end of a previous document)
    assert_line --index 1 --regexp $'^0\t</s>\t'
    assert_line --index 5 --regexp $'^4\tw6\t'
    [ "${#lines[@]}" -eq 6 ]
    awk -F'\t' 'NR > 1 { for (i = 3; i <= NF; i++) if ($i < 0 || $i > 1) exit 1 }' <<< "$output"
    run "$INSPECT" gates -m "$T/gru.ckpt" "w1 w2"
    assert_line --index 0 --regexp '^token +l0.reset +l0.update +l1.reset +l1.update$'
    run --separate-stderr "$INSPECT" gates -m "$T/rnn.ckpt" "w1 w2"
    assert_failure 1
    assert_equal "$stderr" 'lstm-inspect: a plain RNN cell has no gates'
}

@test "states: a trained model's states depend on the input; an all-zero model's collapse" {
    run --separate-stderr "$INSPECT" states -m "$T/m.ckpt" "$T/prompts.txt"
    assert_success
    assert_line 'prompts 4, top layer 16 units'
    assert_line 'verdict: states depend on the input'
    run --separate-stderr "$INSPECT" states -m "$T/flat.ckpt" < "$T/prompts.txt"
    assert_success
    assert_line 'mean pairwise cosine similarity 1.0000'
    assert_line 'verdict: collapsed: final states barely depend on the input'
    run --separate-stderr "$INSPECT" states -m "$T/m.ckpt" <<< "w1"
    assert_failure 1
    assert_equal "$stderr" 'lstm-inspect: need at least two prompts (one per line)'
}

@test "repeat: shares of repeated n-grams within each text" {
    run --separate-stderr "$INSPECT" repeat -n 2 <<< "a b a b a b"
    assert_success
    assert_line 'texts 1'
    assert_line '1-grams 6, repeated within their text 66.7%'
    assert_line '2-grams 5, repeated within their text 60.0%'
    run "$INSPECT" repeat <<< $'one two three four\nfive six seven'
    assert_line '1-grams 7, repeated within their text 0.0%'
}

@test "a file that is not a checkpoint" {
    run --separate-stderr "$INSPECT" gates -m "$T/cyc.txt" "w1"
    assert_failure 1
    [[ "$stderr" == "lstm-inspect: $T/cyc.txt: "* ]]
}
