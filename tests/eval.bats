#!/usr/bin/env bats
# lstm-eval: metrics on a tiny chat model built once from tests/fixtures/eval_chat.csv, cross-checked
# against lstm-train's own validation loss, the modes, keystroke savings (word, BPE and character
# models, replayed through lstm-sample --suggest) and the bad inputs.

bats_require_minimum_version 1.5.0

setup_file() {
    export FIX="$BATS_TEST_DIRNAME/fixtures"
    export T="$BATS_FILE_TMPDIR"
    export EVAL="$LSTM_BIN/lstm-eval"
    local B="$LSTM_BIN"
    load chat_split
    chat_split "$T"
    "$B/lstm-tok" -q -m "$T/chat.vocab" "$T/valid.csv" > "$T/valid.tok"
    "$B/lstm-train" --hidden 32 --epochs 3 --batch 20 --valid "$T/valid.win" -o "$T/chat.ckpt" "$T/train.win" 2> "$T/train.log"
    # the same text with another tokenizer, and a character model for keystrokes
    "$B/lstm-tok" -q --chars "$T/valid.csv" | "$B/lstm-window" -q -L 8 > "$T/other.win"
    "$B/lstm-tok" -q --chars "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 16 > "$T/chars.win"
    "$B/lstm-train" --hidden 32 --epochs 2 -q -o "$T/chars.ckpt" "$T/chars.win"
    # a BPE model of the whole fixture (SentencePiece needs ~310 ids here: 256 byte pieces + characters)
    "$B/lstm-tok" -q --bpe --vocab-size 320 --threads 1 --vocab-out "$T/bpe.vocab" "$FIX/eval_chat.csv" > /dev/null
    "$B/lstm-tok" -q -m "$T/bpe.vocab" "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 16 > "$T/bpe.win"
    "$B/lstm-tok" -q -m "$T/bpe.vocab" "$T/valid.csv" | "$B/lstm-window" -q -L 8 > "$T/bpe_valid.win"
    "$B/lstm-train" --hidden 32 --epochs 10 --threads 1 -q -o "$T/bpe.ckpt" "$T/bpe.win"
    "$B/lstm-tok" -q -m "$T/chat.vocab" "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 8 --last > "$T/last.win"
    echo "just some text" > "$T/notes.txt"
    head -c 5000 "$T/chat.ckpt" > "$T/cut.ckpt"
    # the same model with NaN / Inf weights and a valid checksum (what a diverged training leaves)
    local TB="${LSTM_TESTBIN:-$BATS_TEST_DIRNAME/../build/tests}"
    "$TB/test_modelfile" poison "$T/chat.ckpt" "$T/nan.ckpt" all nan
    "$TB/test_modelfile" poison "$T/chat.ckpt" "$T/inf.ckpt" l0.w_hh inf
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
    assert_output --partial "so its real length is unknown"
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

@test "BPE model: per-word perplexity over the word model's words; keystrokes typed over the same words" {
    w=$("$EVAL" -m "$T/chat.ckpt" --json --keystrokes -k 5 "$T/valid.win")
    b=$("$EVAL" -m "$T/bpe.ckpt" --json "$T/bpe_valid.win")
    k=$("$EVAL" -m "$T/bpe.ckpt" --json --keystrokes -k 5 "$T/bpe_valid.win")
    run python3 - "$w" "$b" "$k" <<'PY'
import json, math, sys
w, b, k = (json.loads(x) for x in sys.argv[1:])
assert b["tokenizer"] == "bpe" and b["tokens"] > w["tokens"]
assert b["words"] == w["words"] == k["words"], (b["words"], w["words"])
assert abs(math.exp(b["nll"] * b["tokens"] / b["words"]) - b["word_perplexity"]) < 1e-6 * b["word_perplexity"]
# the same words are typed ("▁ n e e d" is one word too), whatever the tokenizer
assert k["typed_words"] == w["typed_words"] and k["keystrokes_without"] == w["keystrokes_without"], (k, w)
assert 0 < k["keystrokes_saved"] < 1 and 0 < k["acceptance_rate"] <= 1, k
assert abs(k["keystrokes_saved"] - (1 - k["keystrokes_with"] / k["keystrokes_without"])) < 1e-9
PY
    assert_success
}

@test "--beam-words: no effect on word models; for BPE and character models width 8 saves no less than 1" {
    a=$("$EVAL" -m "$T/chat.ckpt" --json --keystrokes -k 3 "$T/valid.win")
    b=$("$EVAL" -m "$T/chat.ckpt" --json --keystrokes -k 3 --beam-words 1 "$T/valid.win")
    assert_equal "$b" "$a"
    for m in bpe chars; do
        one=$("$EVAL" -m "$T/$m.ckpt" --json --keystrokes -k 5 --beam-words 1 "$T/$m.win")
        eight=$("$EVAL" -m "$T/$m.ckpt" --json --keystrokes -k 5 --beam-words 8 "$T/$m.win")
        run python3 -c '
import json, sys
a, b = (json.loads(x) for x in sys.argv[1:])
assert a["keystrokes_without"] == b["keystrokes_without"]
assert b["keystrokes_with"] <= a["keystrokes_with"], (a["keystrokes_with"], b["keystrokes_with"])' "$one" "$eight"
        assert_success
    done
}

@test "--threads 1 and --threads 2 give identical results" {
    for args in "chat.ckpt valid.win" "chat.ckpt --keystrokes valid.win" "bpe.ckpt --keystrokes bpe.win" "chars.ckpt --keystrokes chars.win"; do
        set -- $args
        a=$(cd "$T" && "$EVAL" --json --threads 1 -m "$@")
        b=$(cd "$T" && "$EVAL" --json --threads 2 -m "$@")
        assert_equal "$b" "$a"
    done
}

@test "--keystrokes-trace: one line per typed word, adding up to the totals; an existing file is refused" {
    for m in chat:valid bpe:bpe chars:chars; do
        j=$("$EVAL" -m "$T/${m%%:*}.ckpt" --json -k 3 --keystrokes-trace "${m%%:*}.trace" "$T/${m##*:}.win")
        run python3 - "$j" "${m%%:*}.trace" <<'PY'
import json, sys
o = json.loads(sys.argv[1])
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
assert len(rows) == o["typed_words"] > 0, (len(rows), o["typed_words"])
saved = 0
for w, n, k, acc in rows:
    n, k = int(n), int(k)
    assert k == (int(acc) + 1 if acc != "-" else n + 1) and (acc == "-" or int(acc) < n), (w, n, k, acc)
    saved += n + 1 - k
# punctuation costs the same with and without suggestions: the words account for all the savings
assert saved == o["keystrokes_without"] - o["keystrokes_with"], (saved, o)
assert sum(acc != "-" for *_, acc in rows) == round(o["acceptance_rate"] * len(rows))
PY
        assert_success
    done
    echo keep > kept.trace
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --keystrokes-trace kept.trace "$T/valid.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: kept.trace: file exists (remove it or give another file)"
    assert_equal "$(cat kept.trace)" "keep"
}

@test "BPE and character keystrokes: what lstm-sample --suggest 3 shows for each typed prefix" {
    # Replays the first turn ("hi, i need help with my order") through lstm-sample, one call per typed
    # prefix, and checks each word is accepted after as many characters as lstm-eval's trace says.
    for m in bpe chars; do
        "$EVAL" -m "$T/$m.ckpt" -k 3 --keystrokes-trace "$m.trace" "$T/$m.win" > /dev/null
        run python3 - "$LSTM_BIN/lstm-sample" "$T/$m.ckpt" "$m.trace" <<'PY'
import subprocess, sys
sample, ckpt, trace = sys.argv[1:]
text = "hi, i need help with my order"
rows = [l.rstrip("\n").split("\t") for l in open(trace)][:7]
assert [r[0] for r in rows] == ["hi", "i", "need", "help", "with", "my", "order"], rows
pos, bad, hits = 0, [], 0
for w, n, keys, acc in rows:
    i = text.index(w, pos)
    ctx, pos = text[:i], i + len(w)
    got = "-"
    for j in range(len(w)):
        out = subprocess.run([sample, "-m", ckpt, "-q", "--suggest", "3", "--", ctx + w[:j]],
                             capture_output=True, text=True, check=True).stdout
        if w in [l.split("\t")[0] for l in out.splitlines()]:
            got = str(j)
            break
    hits += got != "-"
    if got != acc: bad.append((w, "eval", acc, "sample", got))
assert not bad, bad
assert hits > 0, "no word accepted: the replay would check nothing"
PY
        assert_success
    done
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

@test "a checkpoint with NaN or Inf weights (valid checksum) is refused, naming the tensor" {
    run --separate-stderr "$EVAL" -m "$T/nan.ckpt" "$T/valid.win"
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "lstm-eval: $T/nan.ckpt: weights are NaN/Inf (tensor emb): the training that wrote it diverged"
    run --separate-stderr "$EVAL" -m "$T/inf.ckpt" --json "$T/valid.win"
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "lstm-eval: $T/inf.ckpt: weights are NaN/Inf (tensor l0.w_hh): the training that wrote it diverged"
}

@test "closed standard streams: a closed stdin reads as empty, a closed stdout as /dev/null" {
    run --separate-stderr bash -c '"$EVAL" -m "$T/chat.ckpt" <&-'
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: stdin: empty input (no stream)"
    run --separate-stderr bash -c '"$EVAL" -m "$T/chat.ckpt" "$T/valid.win" >&-'
    assert_success
    assert_equal "$stderr" ""
}

@test "progress on stderr only when it is a terminal: a \\r line with the percent done, cleared at the end" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" "$T/valid.win"
    assert_success
    assert_equal "$stderr" ""
    # script(1) gives the tool a terminal (stdout and stderr both go to it)
    run script -qec '"$EVAL" -m "$T/chat.ckpt" "$T/valid.win"' /dev/null
    assert_success
    assert_output --partial $'\r'"lstm-eval: $T/valid.win:   0% (0 of "
    assert_output --regexp $'batches\\) *\r +\rperplexity [0-9.]+ \\(nll'
}
