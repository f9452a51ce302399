#!/usr/bin/env bats
# The adaptive softmax end to end (lstm-train --cutoffs): what the checkpoint holds, the window path
# (training loss, lstm-eval) against the one-token path (the exact full distribution inference uses),
# suggestions, export, resume, serving, and the refusals. The kernels' gradients and the comparison
# with PyTorch's nn.AdaptiveLogSoftmaxWithLoss are in test_grad and tests/model.bats.

bats_require_minimum_version 1.5.0

setup_file() {
    export FIX="$BATS_TEST_DIRNAME/fixtures"
    export T="$BATS_FILE_TMPDIR"
    local B="$LSTM_BIN"
    load chat_split
    chat_split "$T"
    "$B/lstm-train" --hidden 32 --epochs 4 --threads 1 --cutoffs 20,50 --div 2 --valid "$T/valid.win" \
        -o "$T/asm.ckpt" "$T/train.win" 2> "$T/train.log"
    # a BPE model: lstm-eval --keystrokes scores each piece through the one-token inference path
    "$B/lstm-tok" -q --bpe --vocab-size 320 --threads 1 --vocab-out "$T/bpe.vocab" "$FIX/eval_chat.csv" > /dev/null
    "$B/lstm-tok" -q -m "$T/bpe.vocab" "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 16 > "$T/bpe.win"
    "$B/lstm-tok" -q -m "$T/bpe.vocab" "$T/valid.csv" | "$B/lstm-window" -q -L 8 > "$T/bpe_valid.win"
    "$B/lstm-train" --hidden 32 --epochs 6 --threads 1 -q --cutoffs 60,150,250 --div 2 -o "$T/bpe.ckpt" "$T/bpe.win"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    load 'serve_helpers'
    cd "$BATS_TEST_TMPDIR"
    B="$LSTM_BIN"
    SPID=
}

teardown() { serve_stop; }

@test "--cutoffs trains an adaptive softmax: the start line, the config and the tensors say so" {
    run grep -c "adaptive softmax 20,50 div 2" "$T/train.log"
    assert_output 1
    run grep -E "best valid ppl [0-9.]+ \(epoch [0-9]+\) saved" "$T/train.log"
    assert_success
    run --separate-stderr "$B/lstm-dump" "$T/asm.ckpt"
    assert_success
    assert_output --partial "softmax=adaptive"
    assert_output --partial "cutoffs=20,50"
    # head: shortlist 20 + 2 clusters; clusters [20,50) and [50,V) projected to 32/2 and 32/4
    assert_line --regexp '^  head\.w +f32 \(22x32\)'
    assert_line --regexp '^  tail0\.proj +f32 \(16x32\)'
    assert_line --regexp '^  tail0\.out +f32 \(30x16\)'
    assert_line --regexp '^  tail1\.proj +f32 \(8x32\)'
    refute_output --partial "out.w"
}

@test "the window path and the one-token path give the same perplexity (BPE, --keystrokes)" {
    # one lane, as the keystroke simulation reads the text
    a=$("$B/lstm-eval" -m "$T/bpe.ckpt" --json --batch 1 -k 3 "$T/bpe_valid.win")
    k=$("$B/lstm-eval" -m "$T/bpe.ckpt" --json --keystrokes -k 3 "$T/bpe_valid.win")
    run python3 - "$a" "$k" <<'PY'
import json, sys
a, k = (json.loads(x) for x in sys.argv[1:])
assert a["tokens"] == k["tokens"] > 100, (a["tokens"], k["tokens"])
# window forward: head + the target's cluster only; one-token path: all V log-probabilities
assert abs(a["nll"] - k["nll"]) < 1e-6 * a["nll"], (a["nll"], k["nll"])
assert a["top1"] == k["top1"] and a["topk"] == k["topk"], (a, k)
assert 1 < a["perplexity"] < 320
PY
    assert_success
}

@test "lstm-eval's loss of an adaptive model is the trainer's validation loss" {
    v=$(sed -n 's/.*valid loss \([0-9.]*\) ppl.*\*.*/\1/p' "$T/train.log" | tail -1)
    run --separate-stderr "$B/lstm-eval" -m "$T/asm.ckpt" --json "$T/valid.win"
    assert_success
    run python3 -c 'import json, sys; o = json.loads(sys.argv[1]); v = float(sys.argv[2]); assert abs(o["nll"] - v) < 1e-4, (o["nll"], v)' "$output" "$v"
    assert_success
}

@test "suggestions from an adaptive model: 5 words, probabilities decreasing and summing to at most 1" {
    run --separate-stderr "$B/lstm-sample" -m "$T/asm.ckpt" --suggest 5 "hi, i need help with my "
    assert_success
    run python3 -c '
import sys
rows = [l.split("\t") for l in sys.argv[1].splitlines()]
assert len(rows) == 5, rows
p = [float(r[1]) for r in rows]
assert all(x > 0 for x in p) and p == sorted(p, reverse=True) and sum(p) <= 1 + 1e-6, p' "$output"
    assert_success
}

@test "an int8 export of an adaptive model evaluates within 0.5% of the checkpoint" {
    "$B/lstm-export" -q -m "$T/asm.ckpt" -o "$T/asm.lstm" --quantize int8
    a=$("$B/lstm-eval" -m "$T/asm.ckpt" --json "$T/valid.win")
    b=$("$B/lstm-eval" -m "$T/asm.lstm" --json "$T/valid.win")
    run python3 -c 'import json, sys; a, b = (json.loads(x) for x in sys.argv[1:]); assert abs(b["perplexity"] / a["perplexity"] - 1) < 0.005, (a, b)' "$a" "$b"
    assert_success
}

@test "resuming keeps the adaptive softmax and refuses other cutoffs" {
    run --separate-stderr "$B/lstm-train" -q --threads 1 --resume "$T/asm.ckpt" --epochs 5 -o "$T/more.ckpt" "$T/train.win"
    assert_success
    run --separate-stderr "$B/lstm-dump" "$T/more.ckpt"
    assert_output --partial "cutoffs=20,50"
    run --separate-stderr "$B/lstm-train" -q --resume "$T/asm.ckpt" --cutoffs 20,51 -o "$T/x.ckpt" "$T/train.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --softmax, --cutoffs and --div cannot change when resuming (the checkpoint's model has an adaptive softmax, --cutoffs 20,50 --div 2)"
}

@test "lstm-serve answers /v1/suggest from an adaptive model" {
    serve_start "$T/asm.ckpt"
    run curl -sS -X POST --data '{"text":"hi, i need help with my ","k":3}' "${U}v1/suggest"
    assert_success
    run python3 -c 'import json, sys; o = json.loads(sys.argv[1]); s = o["suggestions"]; assert len(s) == 3 and all(x["p"] > 0 for x in s), o' "$output"
    assert_success
    # GET /v1/model names the softmax; no cache is on
    run curl -sS "${U}v1/model"
    assert_success
    run python3 -c 'import json, sys; o = json.loads(sys.argv[1]); print(o["softmax"], "cache" in o)' "$output"
    assert_output "{'kind': 'adaptive', 'cutoffs': [20, 50], 'div': 2.0} False"
}

@test "refusals: --tie, cutoffs out of order or past the vocabulary, --div too large, adaptive without cutoffs" {
    run --separate-stderr "$B/lstm-train" --cutoffs 20,50 --tie "$T/train.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --tie: the adaptive softmax has no single output matrix to share with the embedding"
    run --separate-stderr "$B/lstm-train" --cutoffs 50,20 "$T/train.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --cutoffs: each cutoff must be above the one before, got '50,20'"
    run --separate-stderr "$B/lstm-train" --cutoffs 20,x "$T/train.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --cutoffs: expected 1 to 4 comma-separated ids such as 2000,10000, got '20,x'"
    run --separate-stderr "$B/lstm-train" -q --cutoffs 20,5000 -o "$T/y.ckpt" "$T/train.win"
    assert_failure 2
    assert_regex "$stderr" "^lstm-train: --cutoffs 20,5000: every cutoff must be below the vocabulary size, [0-9]+ ids in .*train.win$"
    run --separate-stderr "$B/lstm-train" --hidden 32 --cutoffs 20,50 --div 8 "$T/train.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --div 8: cluster 2 would be projected to less than 1 of --hidden 32 dimensions"
    run --separate-stderr "$B/lstm-train" --softmax adaptive "$T/train.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --softmax adaptive needs --cutoffs, e.g. --cutoffs 2000,10000"
    run --separate-stderr "$B/lstm-train" --softmax full --div 2 "$T/train.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --div: only with --softmax adaptive"
    run test -e "$T/y.ckpt"
    assert_failure
}
