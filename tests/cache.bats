#!/usr/bin/env bats
# The continuous cache (lib/lm/cache.h) through the tools: lstm-eval --cache / --cache-search,
# lstm-sample --cache (suggest, complete, --serve), lstm-serve --cache, the bad values, and the
# PyTorch cross-check of the mixed log-probabilities; on tiny models built once from
# tests/fixtures/eval_chat.csv.

bats_require_minimum_version 1.5.0

setup_file() {
    export FIX="$BATS_TEST_DIRNAME/fixtures"
    export T="$BATS_FILE_TMPDIR"
    export EVAL="$LSTM_BIN/lstm-eval" S="$LSTM_BIN/lstm-sample"
    export TESTBIN="${LSTM_TESTBIN:-$BATS_TEST_DIRNAME/../build/tests}"
    local B="$LSTM_BIN"
    load chat_split
    chat_split "$T"
    "$B/lstm-train" --hidden 32 --epochs 6 --threads 1 -q -o "$T/chat.ckpt" "$T/train.win"
    # a BPE model for the piece-by-piece keystroke path
    "$B/lstm-tok" -q --bpe --vocab-size 320 --threads 1 --vocab-out "$T/bpe.vocab" "$FIX/eval_chat.csv" > /dev/null
    "$B/lstm-tok" -q -m "$T/bpe.vocab" "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 16 > "$T/bpe.win"
    "$B/lstm-train" --hidden 32 --epochs 4 --threads 1 -q -o "$T/bpe.ckpt" "$T/bpe.win"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    load 'serve_helpers'
    cd "$BATS_TEST_TMPDIR"
}

teardown() { serve_stop; }

# the perplexity (first number) of lstm-eval's first line
ppl_of() { printf '%s\n' "$1" | sed -n '1s/^perplexity \([0-9.]*\).*/\1/p'; }

# the probability of word $2 in lstm-sample's 'word<TAB>p' lines $1, or 0
p_of() { printf '%s\n' "$1" | awk -F'\t' -v w="$2" '$1 == w { print $2; f = 1 } END { if (!f) print 0 }'; }

@test "--help of lstm-eval, lstm-sample and lstm-serve names the cache flags with an example" {
    run --separate-stderr "$EVAL" --help
    assert_success
    assert_output --partial "--cache N"
    assert_output --partial "--cache-search"
    assert_output --partial "lstm-eval -m ptb.ckpt --batch 1 --cache 500 --cache-search valid.win"
    run --separate-stderr "$S" --help
    assert_success
    assert_output --partial "--cache-lambda L"
    assert_output --partial "lstm-sample -m chat.ckpt --cache 200 --cache-lambda 0.2 --suggest 3"
    run --separate-stderr "$LSTM_BIN/lstm-serve" --help
    assert_success
    assert_output --partial "--cache-theta T"
    assert_output --partial "lstm-serve -m chat.ckpt --cache 200"
}

@test "bad cache values are usage errors with one line" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --cache -1 "$T/valid.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-eval: --cache: expected an integer from 0 to 100000, got '-1'"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --cache 10 --cache-lambda 1.5 "$T/valid.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-eval: --cache-lambda: expected a number from 0 to 1, got '1.5'"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --cache 10 --cache-theta -0.5 "$T/valid.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-eval: --cache-theta: expected a number from 0 to 1e+06, got '-0.5'"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --cache-search "$T/valid.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-eval: --cache-search: give the cache size with --cache N (N >= 1)"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --cache 10 --cache-search --cache-theta 0.2 "$T/valid.win"
    assert_failure 2
    assert_output ""
    assert_equal "$stderr" "lstm-eval: --cache-search tries a grid of theta and lambda: give it with --cache-thetas / --cache-lambdas, not --cache-theta / --cache-lambda"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --cache 10 --cache-search --keystrokes "$T/valid.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-eval: --cache-search excludes --keystrokes"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --cache 10 --cache-thetas 0.1,,2 "$T/valid.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-eval: --cache-thetas: expected numbers separated by commas, got '0.1,,2'"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --cache 10 --cache-lambdas 0.1,2 "$T/valid.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-eval: --cache-lambdas: expected a number from 0 to 1, got '2'"
    run --separate-stderr "$S" -m "$T/chat.ckpt" --cache 10 --cache-lambda -0.1 --suggest 3 "hi "
    assert_failure 2
    assert_equal "$stderr" "lstm-sample: --cache-lambda: expected a number from 0 to 1, got '-0.1'"
    run --separate-stderr "$S" -m "$T/chat.ckpt" --cache -5 --suggest 3 "hi "
    assert_failure 2
    assert_equal "$stderr" "lstm-sample: --cache: expected an integer from 0 to 100000, got '-5'"
    run --separate-stderr "$LSTM_BIN/lstm-serve" -m "$T/chat.ckpt" --cache 10 --cache-theta x
    assert_failure 2
    assert_equal "$stderr" "lstm-serve: --cache-theta: expected a number from 0 to 1e+06, got 'x'"
}

@test "lambda 0 is exactly the model's report; lambda > 0 changes it and says so" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 "$T/valid.win"
    assert_success
    local plain=$output
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 --cache 100 --cache-lambda 0 "$T/valid.win"
    assert_success
    assert_equal "$output" "$plain"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 --json "$T/valid.win"
    local pj=$output
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 --json --cache 100 --cache-lambda 0 "$T/valid.win"
    assert_equal "$output" "$pj"
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 --cache 100 --cache-theta 0.3 --cache-lambda 0.2 "$T/valid.win"
    assert_success
    assert_line --index 2 "cache 100 pairs per lane, theta 0.3, lambda 0.2: the figures are of the mixed distribution"
    [ "$(ppl_of "$output")" != "$(ppl_of "$plain")" ]
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 --json --cache 100 --cache-theta 0.3 --cache-lambda 0.2 "$T/valid.win"
    assert_success
    run python3 -c 'import json,sys; o=json.loads(sys.argv[1]); c=o["cache"]; assert (c["size"], c["theta"], c["lambda"]) == (100, 0.3, 0.2); print("ok")' "$output"
    assert_output "ok"
}

@test "--cache-search prints the grid and a best pair that lstm-eval --cache reproduces" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 "$T/valid.win"
    local plain
    plain=$(ppl_of "$output")
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 --cache 50 --cache-thetas 0,0.5,2 --cache-lambdas 0.05,0.3 "$T/valid.win"
    assert_success
    assert_line --index 0 --partial "cache search on $T/valid.win: "
    assert_line --index 0 --partial ", 50 pairs per lane; perplexity without the cache $plain"
    assert_line --index 1 --regexp '^theta\\lambda +0.05 +0.3$'
    assert_line --index 2 --regexp '^0 +[0-9.]+ +[0-9.]+$'
    assert_line --index 4 --regexp '^2 +[0-9.]+ +[0-9.]+$'
    # the best line's flags, run as they are, give the best line's perplexity
    local best flags want gain
    best=${lines[5]}
    [[ $best =~ ^best:\ (--cache\ 50\ --cache-theta\ [0-9.]+\ --cache-lambda\ [0-9.]+):\ perplexity\ ([0-9.]+)\ \(([-+][0-9.]+)%\)$ ]]
    flags=${BASH_REMATCH[1]}
    want=${BASH_REMATCH[2]}
    gain=${BASH_REMATCH[3]}
    # a last line says so when no pair beats the model alone
    if [[ $gain == -* ]]; then
        assert_equal "${#lines[@]}" 6
    else
        assert_equal "${#lines[@]}" 7
        assert_line --index 6 "no pair of the grid beats the model alone (perplexity $plain): leave the cache off"
    fi
    # shellcheck disable=SC2086
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 $flags "$T/valid.win"
    assert_success
    assert_equal "$(ppl_of "$output")" "$want"
    # and it is the smallest of the table
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --batch 1 --cache 50 --cache-thetas 0,0.5,2 --cache-lambdas 0.05,0.3 --json "$T/valid.win"
    assert_success
    run python3 -c 'import json,sys; o=json.loads(sys.argv[1]); t=o["cache_perplexity"]; m=min(min(r) for r in t)
assert abs(o["best"]["perplexity"] - m) < 1e-9 and len(t) == 3 and len(t[0]) == 2; print("%.2f" % m)' "$output"
    assert_output "$want"
}

@test "a repeated rare word comes back: higher probability with the cache, in suggestions and in --serve" {
    local prompt="my order is 7731 . where is order "
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 1000 "$prompt"
    assert_success
    local p0 p1
    p0=$(p_of "$output" 7731)
    run --separate-stderr "$S" -m "$T/chat.ckpt" --cache 100 --cache-lambda 0.3 --suggest 1000 "$prompt"
    assert_success
    p1=$(p_of "$output" 7731)
    python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(0 if b > 2 * a > 0 else 1)' "$p0" "$p1"
    # the earlier turns of a --serve request are the cache too
    run --separate-stderr "$S" -m "$T/chat.ckpt" --cache 100 --cache-lambda 0.3 --serve <<< '{"text":"where is order ","k":1000,"context":[{"speaker":"user","text":"my order is 7731"}]}'
    assert_success
    local p2
    p2=$(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print([s["p"] for s in o["suggestions"] if s["word"] == "7731"][0])' "$output")
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve <<< '{"text":"where is order ","k":1000,"context":[{"speaker":"user","text":"my order is 7731"}]}'
    local p3
    p3=$(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print([s["p"] for s in o["suggestions"] if s["word"] == "7731"][0])' "$output")
    python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(0 if b > 2 * a > 0 else 1)' "$p3" "$p2"
}

@test "complete: each generated token joins the cache (lambda 1, theta 0: the most frequent next token)" {
    run --separate-stderr "$S" -m "$T/chat.ckpt" --cache 100 --cache-theta 0 --cache-lambda 1 --complete --greedy -n 5 "thanks thanks thanks thanks"
    assert_success
    assert_output "thanks thanks thanks thanks thanks"
    # beam search mixes its first step
    run --separate-stderr "$S" -m "$T/chat.ckpt" --cache 100 --cache-theta 0 --cache-lambda 1 --complete --beam 2 -n 1 "thanks thanks thanks thanks"
    assert_success
    assert_output "thanks"
}

@test "lstm-serve --cache answers as lstm-sample --serve --cache" {
    local req='{"text":"where is order ","k":5,"context":[{"speaker":"user","text":"my order is 7731"}]}'
    run --separate-stderr "$S" -m "$T/chat.ckpt" --cache 100 --cache-lambda 0.3 --serve <<< "$req"
    assert_success
    local want=$output
    serve_start "$T/chat.ckpt" --cache 100 --cache-lambda 0.3 --threads 2
    run curl -sS "${U}v1/suggest" -d "$req"
    assert_success
    # the HTTP reply adds took_us
    run python3 -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); b.pop("took_us"); print(a == b)' "$want" "$output"
    assert_output "True"
    # GET /v1/model says which cache the answers mix in (theta at its default)
    run curl -sS "${U}v1/model"
    assert_success
    run python3 -c 'import json,sys; print(json.loads(sys.argv[1])["cache"])' "$output"
    assert_output "{'n': 100, 'theta': 0.3, 'lambda': 0.3}"
}

@test "keystrokes with the cache: word and BPE models, the figures of the mixed distribution" {
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --keystrokes -k 3 "$T/valid.win"
    assert_success
    local plain=$output
    run --separate-stderr "$EVAL" -m "$T/chat.ckpt" --keystrokes -k 3 --cache 100 --cache-lambda 0.3 "$T/valid.win"
    assert_success
    assert_line --index 2 --partial "cache 100 pairs per lane"
    assert_line --index 3 --regexp '^keystrokes saved [0-9.]+% '
    [ "$output" != "$plain" ]
    run --separate-stderr "$EVAL" -m "$T/bpe.ckpt" --keystrokes -k 3 --cache 100 --cache-lambda 0.3 "$T/bpe.win"
    assert_success
    assert_line --index 3 --regexp '^keystrokes saved [0-9.]+% '
    local mixed=$output
    run --separate-stderr "$EVAL" -m "$T/bpe.ckpt" --keystrokes -k 3 "$T/bpe.win"
    assert_success
    [ "$(ppl_of "$output")" != "$(ppl_of "$mixed")" ]
}

@test "the mixed log-probabilities match a PyTorch computation" {
    run --separate-stderr "$TESTBIN/test_cache" dump case.txt
    assert_success
    run --separate-stderr "${TORCH_PY:-/usr/bin/python3}" "$BATS_TEST_DIRNAME/cache_crosscheck.py" case.txt
    assert_success
    assert_output --regexp '^cache cross-check: H=16 V=50 N=24 pairs=30 words in the cache=[1-9][0-9]* max \|C - torch\| = [0-9.e-]+$'
    # a case whose lambda is not the one the C side mixed with is caught
    sed '1s/^\([0-9]* [0-9]* [0-9]* [^ ]*\) [^ ]*/\1 0.3/' case.txt > bad.txt
    run --separate-stderr "${TORCH_PY:-/usr/bin/python3}" "$BATS_TEST_DIRNAME/cache_crosscheck.py" bad.txt
    assert_failure 1
    assert_line --index 1 "cache cross-check: FAILED (tolerance 1e-05)"
}

@test "test_cache passes" {
    run --separate-stderr "$TESTBIN/test_cache"
    assert_success
    assert_output "test_cache: ok"
}
