#!/usr/bin/env bats
# lstm-eval: metrics on a tiny chat model built once from tests/fixtures/eval_chat.csv, cross-checked
# against lstm-train's own validation loss, the modes, keystroke savings and the bad inputs.

bats_require_minimum_version 1.5.0

setup_file() {
    export FIX="$BATS_TEST_DIRNAME/fixtures"
    export T="$BATS_FILE_TMPDIR"
    export EVAL="$LSTM_BIN/lstm-eval"
    local B="$LSTM_BIN"
    "$B/lstm-tok" -q --vocab-out "$T/chat.vocab" "$FIX/eval_chat.csv" > /dev/null
    head -41 "$FIX/eval_chat.csv" > "$T/train.csv"
    { head -1 "$FIX/eval_chat.csv"; tail -8 "$FIX/eval_chat.csv"; } > "$T/valid.csv"
    "$B/lstm-tok" -q -m "$T/chat.vocab" "$T/train.csv" | "$B/lstm-window" -q -L 8 > "$T/train.win"
    "$B/lstm-tok" -q -m "$T/chat.vocab" "$T/valid.csv" | "$B/lstm-window" -q -L 8 > "$T/valid.win"
    "$B/lstm-tok" -q -m "$T/chat.vocab" "$T/valid.csv" > "$T/valid.tok"
    "$B/lstm-train" --hidden 32 --epochs 3 --batch 20 --valid "$T/valid.win" -o "$T/chat.ckpt" "$T/train.win" 2> "$T/train.log"
    # the same text with another tokenizer, and a character model for keystrokes
    "$B/lstm-tok" -q --chars "$T/valid.csv" | "$B/lstm-window" -q -L 8 > "$T/other.win"
    "$B/lstm-tok" -q --chars "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 16 > "$T/chars.win"
    "$B/lstm-train" --hidden 32 --epochs 2 -q -o "$T/chars.ckpt" "$T/chars.win"
    "$B/lstm-tok" -q -m "$T/chat.vocab" "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 8 --last > "$T/last.win"
    echo "just some text" > "$T/notes.txt"
    head -c 5000 "$T/chat.ckpt" > "$T/cut.ckpt"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

# value of field $2 in the JSON object in $1
jget() { python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(v)' "$1" "$2"; }

@test "--help and --version" {
    run --separate-stderr "$EVAL" --help
    assert_success
    assert_output --partial "lstm-tok -m chat.ckpt < test.csv | lstm-window -L 15 | lstm-eval -m chat.ckpt"
    assert_output --partial "keystrokes"
    run --separate-stderr "$EVAL" --version
    assert_success
    assert_output "lstm-eval 1.0"
}

@test "usage errors exit 2" {
    run --separate-stderr "$EVAL" "$T/valid.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-eval: no model: give -m MODEL.ckpt (see --help)"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" -k 0 "$T/valid.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-eval: -k: expected an integer from 1 to 100000, got '0'"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --bogus
    assert_failure 2
}

@test "text output: perplexity is exp of the printed nll, mode and batch stated" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" "$T/valid.win"
    assert_success
    assert_line --index 0 --regexp '^perplexity [0-9.]+ \(nll [0-9.]+, [0-9]+ tokens, stateful, batch 10\) top-1 [0-9.]+% top-5 [0-9.]+%$'
    assert_line --index 1 --regexp '^per-word perplexity [0-9.]+ \([0-9]+ words, words tokenizer\)$'
    ppl=$(echo "$output" | sed -n '1s/^perplexity \([0-9.]*\) (nll \([0-9.]*\),.*/\1 \2/p')
    run python3 -c 'import math,sys; p,n=map(float,sys.argv[1:]); assert abs(math.exp(n)-p) < 0.01*p+0.01, (p, n)' $ppl
    assert_success
}

@test "stateful evaluation with the trainer's batch reproduces lstm-train's validation perplexity" {
    best=$(sed -n 's/.*best valid ppl \([0-9.]*\) .*/\1/p' "$T/train.log")
    [ -n "$best" ]
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 20 "$T/valid.win"
    assert_success
    assert_output --partial "perplexity $best (nll"
}

@test "--json fields, and they agree with each other; -k changes top-k only" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --json -k 3 "$T/valid.win"
    assert_success
    j="$output"
    run python3 - "$j" <<'PY'
import json, math, sys
o = json.loads(sys.argv[1])
for k in ("model", "input", "tokenizer", "mode", "batch", "tokens", "nll", "perplexity", "top1", "k", "topk", "words", "word_perplexity"):
    assert k in o, k
assert o["mode"] == "stateful" and o["batch"] == 10 and o["k"] == 3 and o["tokenizer"] == "words"
assert abs(math.exp(o["nll"]) - o["perplexity"]) < 1e-6 * o["perplexity"]
assert 0 <= o["top1"] <= o["topk"] <= 1
assert 0 < o["words"] <= o["tokens"]
assert abs(math.exp(o["nll"] * o["tokens"] / o["words"]) - o["word_perplexity"]) < 1e-6 * o["word_perplexity"]
PY
    assert_success
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --json -k 1 "$T/valid.win"
    [ "$(jget "$output" top1)" = "$(jget "$output" topk)" ]
}

@test "--reset-state differs from stateful evaluation and says so; --batch is stated" {
    a=$("$EVAL" -m "$T/chat.ckpt" --json --batch 1 "$T/valid.win")
    b=$("$EVAL" -m "$T/chat.ckpt" --json --batch 1 --reset-state "$T/valid.win")
    c=$("$EVAL" -m "$T/chat.ckpt" --json --batch 1 "$T/valid.win")
    [ "$(jget "$b" mode)" = "reset-state" ]
    [ "$(jget "$a" tokens)" = "$(jget "$b" tokens)" ]
    [ "$(jget "$a" nll)" != "$(jget "$b" nll)" ]
    [ "$(jget "$c" batch)" = "1" ]
    # reset-state does not depend on the batch
    d=$("$EVAL" -m "$T/chat.ckpt" --json --reset-state --batch 3 "$T/valid.win")
    python3 -c 'import json,sys; a,b=(json.loads(x) for x in sys.argv[1:]); assert abs(a["nll"]-b["nll"]) < 1e-5' "$b" "$d"
}

@test "stdin input; last-token windows are evaluated per window" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" < "$T/valid.win"
    assert_success
    assert_output --partial "stateful, batch 10"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" "$T/last.win"
    assert_success
    assert_output --partial "reset-state"
}

@test "--keystrokes: savings and acceptance in range, word model" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --keystrokes -k 3 --json "$T/valid.win"
    assert_success
    run python3 -c '
import json, sys
o = json.loads(sys.argv[1])
assert 0 <= o["keystrokes_saved"] < 1 and 0 <= o["acceptance_rate"] <= 1
assert abs(o["keystrokes_saved"] - (1 - o["keystrokes_with"] / o["keystrokes_without"])) < 1e-9
assert o["keystrokes_with"] <= o["keystrokes_without"] and o["typed_words"] > 0' "$output"
    assert_success
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --keystrokes "$T/valid.win"
    assert_success
    assert_line --index 2 --regexp '^keystrokes saved [0-9.]+% \([0-9]+ instead of [0-9]+, 5 suggestions shown\) acceptance [0-9.]+% \([0-9]+ of [0-9]+ words\)$'
}

@test "--keystrokes with a character model (words assembled by the beam); more suggestions save no less" {
    a=$("$EVAL" -m "$T/chars.ckpt" --keystrokes -k 1 --json "$T/chars.win")
    b=$("$EVAL" -m "$T/chars.ckpt" --keystrokes -k 8 --json "$T/chars.win")
    python3 -c '
import json, sys
a, b = (json.loads(x) for x in sys.argv[1:])
assert a["tokenizer"] == "chars" and a["typed_words"] > 0
assert b["keystrokes_saved"] >= a["keystrokes_saved"]' "$a" "$b"
}

@test "a stream from another tokenizer is refused" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" "$T/other.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: $T/other.win: tokenizer does not match $T/chat.ckpt's: tokenize it with lstm-tok -m $T/chat.ckpt"
}

@test "a token stream instead of windows" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" "$T/valid.tok"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: $T/valid.tok: got a token stream (TOKS), expected windows (WIND): pipe it through lstm-window"
}

@test "-m given something that is not a checkpoint: one line, exit 1" {
    run --separate-stderr "$EVAL" -m "$T/notes.txt" "$T/valid.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: $T/notes.txt: not a checkpoint (a text file): give -m the model written by lstm-train"
    run --separate-stderr "$EVAL" -m "$T/valid.win" "$T/valid.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: $T/valid.win: not a checkpoint (a window stream (WIND)): give -m the model written by lstm-train"
    run --separate-stderr "$EVAL" -m "$T/cut.ckpt" "$T/valid.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: $T/cut.ckpt: truncated checkpoint (shorter than its header says)"
    run --separate-stderr "$EVAL" -m "$T/missing.ckpt" "$T/valid.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: $T/missing.ckpt: No such file or directory"
}

@test "empty input" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" < /dev/null
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: stdin: empty input (no stream)"
}
