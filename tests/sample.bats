#!/usr/bin/env bats
# lstm-sample: suggestions (next word, completing a typed word as ICU segments words, whole words from
# character pieces), completion (greedy, sampling, beam), chat speakers (and lstm-dump naming them),
# bans, the JSON server and the bad inputs (an n-gram model too), on tiny models built once from
# tests/fixtures/eval_chat.csv.

bats_require_minimum_version 1.5.0

setup_file() {
    export FIX="$BATS_TEST_DIRNAME/fixtures"
    export T="$BATS_FILE_TMPDIR"
    export S="$LSTM_BIN/lstm-sample"
    local B="$LSTM_BIN"
    "$B/lstm-tok" -q --vocab-out "$T/chat.vocab" -o "$T/chat.tok" "$FIX/eval_chat.csv"
    "$B/lstm-window" -q -L 8 "$T/chat.tok" > "$T/chat.win"
    "$B/lstm-train" --hidden 32 --epochs 3 -q -o "$T/chat.ckpt" "$T/chat.win"
    "$B/lstm-tok" -q --chars "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 16 > "$T/chars.win"
    "$B/lstm-train" --hidden 32 --epochs 2 -q -o "$T/chars.ckpt" "$T/chars.win"
    "$B/lstm-tok" -q --bpe --vocab-size 400 "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 12 > "$T/bpe.win"
    "$B/lstm-train" --hidden 32 --epochs 3 -q -o "$T/bpe.ckpt" "$T/bpe.win"
    # a plain text model (no speakers)
    sed -n '2,$p' "$FIX/eval_chat.csv" | cut -d, -f3- | tr -d '"' > "$T/plain.txt"
    "$B/lstm-tok" -q "$T/plain.txt" | "$B/lstm-window" -q -L 8 --cross-docs > "$T/plain.win"
    "$B/lstm-train" --hidden 32 --epochs 2 -q -o "$T/plain.ckpt" "$T/plain.win"
    # an n-gram model of the same tokens (not a checkpoint)
    "$B/lstm-ngram" train -q -n 3 -o "$T/chat.ngram" "$T/chat.tok"
    echo "just some text" > "$T/notes.txt"
    head -c 5000 "$T/chat.ckpt" > "$T/cut.ckpt"
    # the same model with NaN / Inf weights and a valid checksum (what a diverged training leaves)
    local TB="${LSTM_TESTBIN:-$BATS_TEST_DIRNAME/../build/tests}"
    "$TB/test_modelfile" poison "$T/chat.ckpt" "$T/nan.ckpt" all nan
    "$TB/test_modelfile" poison "$T/chat.ckpt" "$T/inf.ckpt" l0.b_hh inf
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

# probabilities (2nd column) are sorted, in [0, 1], and sum to at most 1 (+ rounding)
check_probs() {
    printf '%s\n' "$1" | awk -F'\t' 'NF != 2 || $2 < 0 || $2 > 1 || (NR > 1 && $2 > prev + 1e-9) { bad = 1 }
        { s += $2; prev = $2 } END { exit bad || s > 1.00001 }'
}

@test "--help and --version" {
    run --separate-stderr "$S" --help
    assert_success
    # next-word examples end the prompt with a space (without one they complete "my")
    assert_output --partial "echo 'hi, i need help with my ' | lstm-sample -m chat.ckpt --suggest 5"
    assert_output --partial "lstm-sample -m chat.ckpt --suggest 5 'i was charged twice for my '   (the next word)"
    refute_output --partial "help with my' |"
    assert_output --partial "--serve"
    run --separate-stderr "$S" --version
    assert_output "lstm-sample 1.0"
}

@test "usage errors exit 2" {
    run --separate-stderr "$S" --suggest 3 hello
    assert_failure 2
    assert_equal "$stderr" "lstm-sample: no model: give -m MODEL.ckpt (see --help)"
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 0 hello
    assert_failure 2
    assert_equal "$stderr" "lstm-sample: --suggest: expected an integer from 1 to 1000, got '0'"
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 3 --complete hello
    assert_failure 2
    assert_equal "$stderr" "lstm-sample: --suggest and --complete exclude each other"
    run --separate-stderr "$S" -m "$T/chat.ckpt" --complete --beam 2 --top-p 0.5 hello
    assert_failure 2
    assert_equal "$stderr" "lstm-sample: --beam excludes --greedy, --top-k and --top-p"
    run --separate-stderr "$S" -m "$T/chat.ckpt" --speaker nobody hello
    assert_failure 2
    assert_equal "$stderr" "lstm-sample: --speaker: 'nobody' is not a speaker of this model (speakers: user, agent)"
}

@test "--suggest K: K next words, sorted, probabilities sum to at most 1" {
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 4 "hi i need help with my "
    assert_success
    [ "${#lines[@]}" -eq 4 ]
    check_probs "$output"
    # TEXT from stdin gives the same answer
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 4 <<< "hi i need help with my "
    assert_success
    [ "${#lines[@]}" -eq 4 ]
}

@test "completing a typed word: only words extending it, renormalised, and said so" {
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 5 "i need hel"
    assert_success
    assert_equal "$stderr" "lstm-sample: completing 'hel': probabilities renormalised over the words that extend it"
    [ "${#lines[@]}" -eq 2 ]
    assert_line --regexp '^help	'
    assert_line --regexp '^hello	'
    sum=$(printf '%s\n' "$output" | awk -F'\t' '{ s += $2 } END { printf "%.4f", s }')
    assert_equal "$sum" "1.0000"
    # case folded like the tokenizer
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 5 -q "I need HEL"
    assert_line --regexp '^help	'
    # no word extends it: no suggestions, still success
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 5 "i need zzq"
    assert_success
    assert_output ""
    assert_equal "$stderr" "lstm-sample: no suggestions: no known word starts with 'zzq'"
}

@test "k larger than the vocabulary, empty prompt, only unknown words" {
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 1000 ""
    assert_success
    n=${#lines[@]}
    [ "$n" -gt 10 ]
    [ "$n" -lt 200 ]
    check_probs "$output"
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 3 "qwxz blorf zzyzx "
    assert_success
    [ "${#lines[@]}" -eq 3 ]
    run --separate-stderr "$S" -m "$T/chat.ckpt" --complete "qwxz blorf"
    assert_success
    run --separate-stderr "$S" -m "$T/plain.ckpt" --suggest 3 ""
    assert_success
    [ "${#lines[@]}" -eq 3 ]
}

@test "character model: whole words assembled from pieces, prefix respected" {
    run --separate-stderr "$S" -m "$T/chars.ckpt" --suggest 5 -q "i need he"
    assert_success
    [ "${#lines[@]}" -ge 1 ]
    printf '%s\n' "$output" | cut -f1 | while read -r w; do [[ "$w" == he* ]]; done
    run --separate-stderr "$S" -m "$T/chars.ckpt" --suggest 5 "i need help with my "
    assert_success
    check_probs "$output"
    printf '%s\n' "$output" | cut -f1 | while read -r w; do [[ "$w" != *" "* && -n "$w" ]]; done
    # --beam-words: a one-hypothesis beam still gives whole words extending the prefix; a wider one
    # finds no fewer words
    run --separate-stderr "$S" -m "$T/chars.ckpt" --suggest 10 -q --beam-words 1 "i need he"
    assert_success
    n1=${#lines[@]}
    [ "$n1" -ge 1 ]
    printf '%s\n' "$output" | cut -f1 | while read -r w; do [[ "$w" == he* ]]; done
    run --separate-stderr "$S" -m "$T/chars.ckpt" --suggest 10 -q --beam-words 16 "i need he"
    assert_success
    [ "${#lines[@]}" -ge "$n1" ]
    run --separate-stderr "$S" -m "$T/chars.ckpt" --beam-words 0 "i need he"
    assert_failure 2
    assert_equal "$stderr" "lstm-sample: --beam-words: expected an integer from 1 to 64, got '0'"
}

@test "BPE model: whole words from pieces, joined output, unknown text as bytes, bans of several pieces" {
    run --separate-stderr "$S" -m "$T/bpe.ckpt" --suggest 8 -q "i need hel"
    assert_success
    [ "${#lines[@]}" -ge 2 ]
    assert_line --regexp '^help	'
    # words extending the prefix, with no space, piece marker or trailing joiner
    printf '%s\n' "$output" | cut -f1 | while read -r w; do [[ "$w" == hel* && "$w" != *" "* && "$w" != *"▁"* && "$w" != *[\'-] ]]; done
    run --separate-stderr "$S" -m "$T/bpe.ckpt" --complete --greedy "zqxj wibble ☃"
    assert_success
    run --separate-stderr "$S" -m "$T/bpe.ckpt" --complete --seed 2 --max-new 30 "hi"
    assert_success
    [[ "$output" != *"▁"* && "$output" != *"<unk>"* && "$output" != *"<0x"* ]]
    # every word generated with seeds 1..8 and beams 1..8 banned: none comes back in the same runs
    # (a completion continues the prompt: "hi" + "ve" is the word "hive")
    for s in 1 2 3 4 5 6 7 8; do
        echo "hi$("$S" -m "$T/bpe.ckpt" --complete --seed $s --max-new 30 "hi")"
        echo "hi$("$S" -m "$T/bpe.ckpt" --complete --beam $s --max-new 30 "hi")"
    done > gen.txt
    # words: space-separated, trailing punctuation dropped; "a.b" is not one word
    words() { tr -s ' ' '\n' | sed 's/[.,?!:;"]*$//' | grep -v -e '^$' -e '[.,?!:;"]' | sort -u; }
    # (not the prompt word "hi"; an undertrained model also emits byte pieces that are not UTF-8,
    # shown as U+FFFD: not words)
    words < gen.txt | grep -v -x -e hi -e $'.*\xEF\xBF\xBD.*' > ban.txt
    [ "$(wc -l < ban.txt)" -ge 5 ]
    # some of them take several pieces
    "$LSTM_BIN/lstm-tok" -q -m "$T/bpe.ckpt" --format text ban.txt | "$LSTM_BIN/lstm-dump" --ids | awk '$4 == "tokens" && $3 > 2 { m++ } END { exit m < 2 }'
    for s in 1 2 3 4 5 6 7 8; do
        echo "hi$("$S" -m "$T/bpe.ckpt" --complete --seed $s --max-new 30 --ban ban.txt "hi")"
        echo "hi$("$S" -m "$T/bpe.ckpt" --complete --beam $s --max-new 30 --ban ban.txt "hi")"
    done > gen2.txt
    [ "$(cat gen2.txt | wc -w)" -ge 20 ]
    assert_equal "$(words < gen2.txt | comm -12 - ban.txt)" ""
    # beam search with nothing to generate
    run --separate-stderr "$S" -m "$T/bpe.ckpt" --complete --beam 3 --max-new 0 "hi"
    assert_success
    assert_output ""
}

@test "--ban: banned words are never suggested nor generated" {
    "$S" -m "$T/chat.ckpt" --suggest 3 "hi i need help with my " | cut -f1 > top.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 3 --ban top.txt "hi i need help with my "
    assert_success
    [ "${#lines[@]}" -eq 3 ]
    for w in $(cat top.txt); do refute_line --regexp "^$w	"; done
    # the words of three sampled completions, banned: the same three runs then avoid all of them
    words() { tr -s ' ' '\n' | sed 's/[.,?!:;]*$//' | grep -v -e '^$' -e '^[.,?!:;]' | sort -u; }
    for s in 1 2 3; do "$S" -m "$T/chat.ckpt" --complete --max-new 20 --seed $s "hi"; done | words > gen.txt
    [ "$(wc -l < gen.txt)" -ge 10 ]
    for s in 1 2 3; do "$S" -m "$T/chat.ckpt" --complete --ban gen.txt --max-new 20 --seed $s "hi"; done > gen2.txt
    [ "$(wc -w < gen2.txt)" -ge 10 ]
    assert_equal "$(words < gen2.txt | comm -12 - gen.txt)" ""
    run --separate-stderr "$S" -m "$T/chat.ckpt" --ban missing.txt hello
    assert_failure 1
    assert_equal "$stderr" "lstm-sample: missing.txt: No such file or directory"
}

@test "--complete: --seed determinism, defaults fixed, greedy, temperature 0, beam 1 == greedy" {
    a=$("$S" -m "$T/chat.ckpt" --complete --seed 7 "hi i need")
    b=$("$S" -m "$T/chat.ckpt" --complete --seed 7 "hi i need")
    [ "$a" = "$b" ]
    c=$("$S" -m "$T/chat.ckpt" --complete "hi i need")
    d=$("$S" -m "$T/chat.ckpt" --complete "hi i need")
    [ "$c" = "$d" ]
    g=$("$S" -m "$T/chat.ckpt" --complete --greedy "hi i need")
    [ "$g" = "$("$S" -m "$T/chat.ckpt" --complete --temperature 0 "hi i need")" ]
    [ "$g" = "$("$S" -m "$T/chat.ckpt" --complete --beam 1 "hi i need")" ]
    [ "$g" = "$("$S" -m "$T/chat.ckpt" --complete --top-k 1 --seed 99 "hi i need")" ]
    run --separate-stderr "$S" -m "$T/chat.ckpt" --complete --beam 4 --length-alpha 0.7 --max-new 10 "hi i need"
    assert_success
    run --separate-stderr "$S" -m "$T/chat.ckpt" --complete --top-p 0.9 --temperature 0.8 --repetition-penalty 1.3 --max-new 5 "hi"
    assert_success
    [ "$(printf '%s' "$output" | wc -w)" -le 5 ]
    run --separate-stderr "$S" -m "$T/chat.ckpt" --complete --max-new 0 "hi"
    assert_success
    assert_output ""
}

@test "--speaker: the prompt is a turn of that speaker; default is the first speaker" {
    u=$("$S" -m "$T/chat.ckpt" --suggest 5 --json "")
    d=$("$S" -m "$T/chat.ckpt" --speaker user --suggest 5 --json "")
    a=$("$S" -m "$T/chat.ckpt" --speaker Agent --suggest 5 --json "")
    [ "$u" = "$d" ]
    [ "$u" != "$a" ]
    run --separate-stderr "$S" -m "$T/chat.ckpt" --speaker agent --complete ""
    assert_success
    # a plain text model ignores speakers
    run --separate-stderr "$S" -m "$T/plain.ckpt" --speaker agent --suggest 2 "hi "
    assert_success
}

@test "a prompt ending in non-ASCII punctuation or an emoji asks for the next word after it" {
    for p in "thanks…" "great 👍" "hi 🙂" "sure‼" "thanks!"; do
        run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 3 "$p"
        assert_success
        assert_equal "$stderr" ""
        assert_equal "${#lines[@]}" 3
        check_probs "$output"
        # the same words as after the text and a space (the tokens are the same)
        assert_equal "$output" "$("$S" -m "$T/chat.ckpt" --suggest 3 "$p ")"
    done
    # BPE and character models too: next words, no typed prefix
    for m in bpe chars; do
        for p in "thanks…" "great 👍"; do
            run --separate-stderr "$S" -m "$T/$m.ckpt" --suggest 3 --json "$p"
            assert_success
            refute_output --partial '"prefix"'
            assert_output --regexp '^\{"mode":"suggest","suggestions":\[\{"word":'
        done
    done
    # --serve decides the same way
    printf '%s\n' 'thanks…' '{"text":"great 👍","k":2}' > req.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve < req.txt
    assert_success
    assert_equal "${#lines[@]}" 2
    refute_output --partial '"prefix"'
    assert_line --index 1 --regexp '^\{"mode":"suggest","suggestions":\[\{"word":"[^"]*","p":[0-9.e-]*\},\{"word":'
}

@test "the word being typed is the last ICU word segment: digits, e-mail addresses, a trailing apostrophe" {
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 3 "it is 45"
    assert_success
    assert_equal "$stderr" "lstm-sample: completing '45': probabilities renormalised over the words that extend it"
    assert_line --regexp '^4512	'
    # ICU keeps an address in one segment, as the word tokenizer does
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 3 "send it to anna@exa"
    assert_success
    assert_equal "$stderr" "lstm-sample: completing 'anna@exa': probabilities renormalised over the words that extend it"
    assert_output "anna@example.com	1.000000"
    # "don'" is typed on the way to "don't"; BPE words run through a hyphen and stop at a full stop
    printf '%s\n' "{\"text\":\"i don'\"}" '{"text":"i don’"}' > req.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve < req.txt
    assert_success
    assert_line --index 0 '{"mode":"suggest","suggestions":[],"prefix":"don'"'"'","renormalized":true}'
    assert_line --index 1 '{"mode":"suggest","suggestions":[],"prefix":"don’","renormalized":true}'
    printf '%s\n' '{"text":"my e-ma","k":1}' '{"text":"it is 3.4","k":1}' > req.txt
    run --separate-stderr "$S" -m "$T/bpe.ckpt" --serve < req.txt
    assert_success
    assert_line --index 0 --regexp '"prefix":"e-ma","renormalized":true\}$'
    assert_line --index 1 --regexp '"prefix":"4","renormalized":true\}$'
}

@test "an unknown speaker: the error names the model's speakers; lstm-dump lists them for every kind of file" {
    run --separate-stderr "$S" -m "$T/chat.ckpt" --speaker bob --suggest 3 "hi "
    assert_failure 2
    assert_output ""
    assert_equal "$stderr" "lstm-sample: --speaker: 'bob' is not a speaker of this model (speakers: user, agent)"
    # --serve: the name as given, cut to 100 bytes at a character boundary (the reply stays UTF-8)
    long="x$(printf 'é%.0s' $(seq 100))"
    cut="x$(printf 'é%.0s' $(seq 49))"
    printf '%s\n' '{"text":"x ","speaker":"bob"}' "{\"text\":\"x \",\"speaker\":\"$long\"}" > req.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve < req.txt
    assert_success
    assert_line --index 0 '{"error":"unknown speaker '"'"'bob'"'"' (speakers: user, agent)"}'
    assert_line --index 1 '{"error":"unknown speaker '"'"''"$cut"'...'"'"' (speakers: user, agent)"}'
    # a name lstm-dump prints is one --speaker takes
    for f in chat.ckpt chat.win chat.tok chat.vocab; do
        run --separate-stderr "$LSTM_BIN/lstm-dump" --header "$T/$f"
        assert_success
        assert_line "speakers: user, agent"
    done
    run --separate-stderr "$S" -m "$T/chat.ckpt" --speaker agent --suggest 2 "hi "
    assert_success
    # a plain text model has none
    run --separate-stderr "$LSTM_BIN/lstm-dump" "$T/plain.ckpt"
    assert_success
    refute_line --regexp '^speakers:'
}

@test "--json one-shot reply" {
    run --separate-stderr "$S" -m "$T/chat.ckpt" --json --suggest 3 "i need hel"
    assert_success
    run python3 -c '
import json, sys
o = json.loads(sys.argv[1])
assert o["mode"] == "suggest" and o["prefix"] == "hel" and o["renormalized"] is True
assert [s["word"] for s in o["suggestions"]][:1] in (["help"], ["hello"])' "$output"
    assert_success
}

@test "--serve: one JSON line per request, errors keep the server going" {
    printf '%s\n' 'i need hel' \
        '{"text":"hi i need","mode":"complete","max_new":5,"seed":3}' \
        '{bad json' \
        '{"text":"x","k":0}' \
        '{"text":"x","colour":"red"}' \
        '[1,2]' \
        '{"k":2}' \
        '{"text":"hi i need","mode":"complete","max_new":5,"seed":3}' \
        '{"text":"","k":3,"speaker":"agent"}' \
        '{"text":"x ","speaker":"nobody"}' \
        '{"text":"hi ","mode":"complete","temperature":0.5,"top_k":3,"top_p":0.9,"greedy":false,"beam":0,"repetition_penalty":1.2}' \
        '' \
        '{"text":"hi ","mode":"complete","beam":2,"top_p":0.9}' \
        '{"text":"hi ","mode":"complete","beam":2,"max_new":0}' > req.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve < req.txt
    assert_success
    [ "${#lines[@]}" -eq 14 ]
    run python3 - "$output" <<'PY'
import json, sys
r = [json.loads(l) for l in sys.argv[1].split("\n")]
assert r[0]["prefix"] == "hel" and set(s["word"] for s in r[0]["suggestions"]) == {"help", "hello"}
assert r[1]["mode"] == "complete" and r[1]["tokens"] <= 5
assert r[2]["error"].startswith("malformed JSON")
assert r[3] == {"error": "k must be from 1 to 1000"}
assert r[4] == {"error": 'unknown field "colour"'}
assert r[5] == {"error": "a request is a JSON object or a line of plain text"} and r[6] == {"error": 'missing field "text"'}
assert r[7] == r[1]                         # same seed, same text
assert len(r[8]["suggestions"]) == 3
assert r[9]["error"].startswith("unknown speaker")
assert r[10]["mode"] == "complete"
assert r[11]["mode"] == "suggest" and len(r[11]["suggestions"]) == 5
assert r[12] == {"error": "beam excludes greedy, top_k and top_p"}
assert r[13] == {"mode": "complete", "completion": "", "tokens": 0}
ps = [s["p"] for s in r[11]["suggestions"]]
assert ps == sorted(ps, reverse=True) and sum(ps) <= 1 + 1e-9
PY
    assert_success
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve hello
    assert_failure 2
}

@test "--serve --timing writes microseconds per request on stderr" {
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve --timing <<< $'hello\nhi '
    assert_success
    [ "${#lines[@]}" -eq 2 ]
    [ "$(printf '%s\n' "$stderr" | grep -cE '^[0-9]+\.[0-9]$')" -eq 2 ]
}

@test "-m given something that is not a checkpoint: one line, exit 1" {
    run --separate-stderr "$S" -m "$T/notes.txt" hello
    assert_failure 1
    assert_equal "$stderr" "lstm-sample: $T/notes.txt: not a checkpoint (a text file): give -m the model written by lstm-train"
    run --separate-stderr "$S" -m "$T/chat.win" hello
    assert_failure 1
    assert_equal "$stderr" "lstm-sample: $T/chat.win: not a checkpoint (a window stream (WIND)): give -m the model written by lstm-train"
    run --separate-stderr "$S" -m "$T/cut.ckpt" hello
    assert_failure 1
    assert_equal "$stderr" "lstm-sample: $T/cut.ckpt: truncated checkpoint (shorter than its header says)"
}

@test "-m given an n-gram model: lstm-sample and lstm-eval say what it is and what evaluates it" {
    msg="$T/chat.ngram: an n-gram model (lstm-ngram), not an LSTM checkpoint: give -m the model written by lstm-train (an n-gram model is evaluated with 'lstm-ngram eval -m $T/chat.ngram TEST.tok')"
    run --separate-stderr "$S" -m "$T/chat.ngram" --suggest 3 "hi "
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "lstm-sample: $msg"
    run --separate-stderr "$LSTM_BIN/lstm-eval" -m "$T/chat.ngram" "$T/chat.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: $msg"
    # and the command it names works
    run --separate-stderr "$LSTM_BIN/lstm-ngram" eval -q -m "$T/chat.ngram" "$T/chat.tok"
    assert_success
}

@test "a checkpoint with NaN or Inf weights (valid checksum) is refused at load, naming the tensor" {
    run --separate-stderr "$S" -m "$T/nan.ckpt" --complete hello
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "lstm-sample: $T/nan.ckpt: weights are NaN/Inf (tensor emb): the training that wrote it diverged"
    run --separate-stderr "$S" -m "$T/inf.ckpt" --serve <<< 'hello'
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "lstm-sample: $T/inf.ckpt: weights are NaN/Inf (tensor l0.b_hh): the training that wrote it diverged"
}

@test "temperatures below 1e-4 are greedy (1e-40 used to overflow 1/T), on the command line and in --serve" {
    run --separate-stderr "$S" --help
    assert_output --partial "sampling temperature (default 1; 0 or below 1e-4 = greedy)"
    # (this tiny model's greedy choice is to end the turn at once; 1e-40 used to pick the last id, always)
    g=$("$S" -m "$T/chat.ckpt" --complete --greedy --max-new 8 "hi i need")
    for t in 1e-40 1e-38 0.00005; do
        run --separate-stderr "$S" -m "$T/chat.ckpt" --complete --temperature $t --max-new 8 --seed 5 "hi i need"
        assert_success
        assert_output "$g"
    done
    printf '%s\n' '{"text":"hi i need","mode":"complete","max_new":8,"greedy":true}' \
        '{"text":"hi i need","mode":"complete","max_new":8,"temperature":1e-40,"seed":5}' \
        '{"text":"hi i need","mode":"complete","max_new":8,"temperature":1e-30,"seed":6}' > req.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve < req.txt
    assert_success
    [ "${#lines[@]}" -eq 3 ]
    assert_equal "${lines[1]}" "${lines[0]}"
    assert_equal "${lines[2]}" "${lines[0]}"
}

@test "--ban refuses a file that is not text, naming the line" {
    run --separate-stderr "$S" -m "$T/chat.ckpt" --ban "$T/chat.ckpt" hello
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "lstm-sample: $T/chat.ckpt: line 1: not a text file (invalid UTF-8): --ban takes words, one per line"
    printf 'help\nmy\0word\n' > nul.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --ban nul.txt hello
    assert_failure 1
    assert_equal "$stderr" "lstm-sample: nul.txt: line 2: not a text file (a NUL byte): --ban takes words, one per line"
    printf 'help\ncafé\ncaf\xe9\n' > latin1.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --ban latin1.txt hello
    assert_failure 1
    assert_equal "$stderr" "lstm-sample: latin1.txt: line 3: not a text file (invalid UTF-8): --ban takes words, one per line"
    # UTF-8 text with a byte order mark is text: the first word is banned without it
    top=$("$S" -m "$T/chat.ckpt" --suggest 1 "hi i need help with my " | cut -f1)
    printf '\xef\xbb\xbf%s\n' "$top" > bom.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --suggest 3 --ban bom.txt "hi i need help with my "
    assert_success
    refute_line --regexp "^$top	"
}

@test "--serve: a field given twice is an error; errors do not name jansson's flags; a BOM before the first line is skipped" {
    printf '\xef\xbb\xbf{"text":"hi i need","k":2}\n' > req.txt
    printf '%s\n' '{"text":"hi i need","k":2,"k":3}' \
        '{"text":"hi","text":"i need","k":2}' \
        '{"text":"a\u0000b"}' \
        '{"text":"hi i need","k":2}' >> req.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve < req.txt
    assert_success
    [ "${#lines[@]}" -eq 5 ]
    assert_equal "${lines[1]}" '{"error":"malformed JSON: duplicate field near '"'"'\"k\"'"'"'"}'
    assert_equal "${lines[2]}" '{"error":"malformed JSON: duplicate field near '"'"'\"text\"'"'"'"}'
    assert_equal "${lines[3]}" '{"error":"malformed JSON: \\u0000 is not allowed in a string near '"'"'\"a\\u0000b\"'"'"'"}'
    refute_output --partial "JSON_"
    assert_equal "${lines[0]}" "${lines[4]}"
    assert_line --index 0 --regexp '^\{"mode":"suggest","suggestions":\[\{"word":'
}

@test "closed standard streams: stdin reads as empty, stdout as /dev/null, never one of our files" {
    run --separate-stderr bash -c '"$S" -m "$T/chat.ckpt" --suggest 2 --ban /dev/null <&-'
    assert_success
    [ "${#lines[@]}" -eq 2 ]
    run --separate-stderr bash -c '"$S" -m "$T/chat.ckpt" --suggest 2 hello >&-'
    assert_success
    assert_equal "$stderr" "lstm-sample: completing 'hello': probabilities renormalised over the words that extend it"
}

@test "a checkpoint through a pipe is read into memory: the same suggestions as from the file" {
    want=$("$LSTM_BIN/lstm-sample" -m "$T/chat.ckpt" --suggest 3 "i need help with my ")
    [ -n "$want" ]
    run --separate-stderr "$LSTM_BIN/lstm-sample" -m <(cat "$T/chat.ckpt") --suggest 3 "i need help with my "
    assert_success
    assert_equal "$output" "$want"
}

@test "--serve: an id (a string or a number) is echoed first in the reply, error replies included" {
    # each request in a fresh server: a prompt read again reuses state, which can move the last digits
    plain=$(printf '%s\n' '{"text":"i need hel","k":2}' | "$S" -m "$T/chat.ckpt" --serve)
    [[ "$plain" == '{"mode":"suggest",'* ]]
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve <<< '{"id":"req-1 é","text":"i need hel","k":2}'
    assert_success
    assert_output "{\"id\":\"req-1 é\",${plain#\{}"
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve <<< '{"text":"i need hel","id":42,"k":2}'
    assert_output "{\"id\":42,${plain#\{}"
    printf '%s\n' '{"id":-7.5,"text":"x","k":0}' '{"id":"a","text":"x ","speaker":"bob"}' '{"id":"b","k":2}' \
        '{"id":{"n":1},"text":"x"}' '{"id":null,"text":"x"}' '{"id":1,"id":2,"text":"x"}' \
        '{"id":7,"text":"hi","mode":"complete","max_new":0}' > req.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve < req.txt
    assert_success
    assert_equal "${#lines[@]}" 7
    assert_line --index 0 '{"id":-7.5,"error":"k must be from 1 to 1000"}'
    assert_line --index 1 '{"id":"a","error":"unknown speaker '"'"'bob'"'"' (speakers: user, agent)"}'
    assert_line --index 2 '{"id":"b","error":"missing field \"text\""}'
    assert_line --index 3 '{"error":"id must be a string or a number"}'
    assert_line --index 4 '{"error":"id must be a string or a number"}'
    assert_line --index 5 '{"error":"malformed JSON: duplicate field near '"'"'\"id\"'"'"'"}'
    assert_line --index 6 '{"id":7,"mode":"complete","completion":"","tokens":0}'
}

# The ids lstm-tok writes for a file, all documents joined, as one line.
tok_ids() { "$LSTM_BIN/lstm-tok" -q -m "$1" "${@:2}" | "$LSTM_BIN/lstm-dump" --ids | sed -n 's/^ *ids: *//p' | tr '\n' ' '; }

# The reply's suggestions (line 1 of $1) are exactly the helper's (file $2): same words, same p.
same_suggestions() {
    python3 - "$1" "$2" <<'PY'
import json, sys
got = [(s["word"], s["p"]) for s in json.loads(sys.argv[1].split("\n")[0])["suggestions"]]
want = [(w, float(p)) for w, p in (l.split("\t") for l in open(sys.argv[2]).read().splitlines())]
assert got == want and len(got) >= 3, (got, want)
PY
}

@test "--serve: context turns are read before the prompt exactly as lstm-tok encodes the conversation" {
    local TB="${LSTM_TESTBIN:-$BATS_TEST_DIRNAME/../build/tests}"
    ctx='[{"speaker":"user","text":"hi, i need help with my order"},{"speaker":"agent","text":"sure! what is your order number?"}]'
    # chat model: the conversation through lstm-tok; the last turn is the prompt, without its </s>
    printf '%s\n' 'conversation_id,speaker,text' '1,user,"hi, i need help with my order"' \
        '1,agent,sure! what is your order number?' '1,user,it is ' > conv.csv
    read -r -a ids <<< "$(tok_ids "$T/chat.ckpt" conv.csv)"
    assert_equal "${ids[*]:0:2}" "4 2"       # <user> <s>
    assert_equal "${ids[-1]}" 3              # </s>
    "$TB/test_engine" suggest "$T/chat.ckpt" 5 "${ids[@]:0:${#ids[@]}-1}" > want.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve <<< "{\"text\":\"it is \",\"speaker\":\"user\",\"context\":$ctx}"
    assert_success
    with="$output"
    run same_suggestions "$with" want.txt
    assert_success
    # without the context the model answers otherwise
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve <<< '{"text":"it is ","speaker":"user"}'
    assert_success
    [ "$output" != "$with" ]
    # a turn without a speaker is the first speaker's, as the prompt is
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve <<< "{\"text\":\"it is \",\"context\":${ctx/\"speaker\":\"user\",/}}"
    assert_output "$with"
    # plain text model: every turn a document ("tokens </s>"), after the </s> every prompt starts with
    printf '%s\n' 'hi, i need help with my order' 'sure! what is your order number?' 'it is ' > conv.txt
    read -r -a ids <<< "3 $(tok_ids "$T/plain.ckpt" --format text conv.txt)"
    "$TB/test_engine" suggest "$T/plain.ckpt" 5 "${ids[@]:0:${#ids[@]}-1}" > want.txt
    run --separate-stderr "$S" -m "$T/plain.ckpt" --serve <<< "{\"text\":\"it is \",\"context\":$ctx}"
    assert_success
    run same_suggestions "$output" want.txt
    assert_success
    # completions continue the prompt only, never the context's text
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve <<< "{\"text\":\"sure\",\"mode\":\"complete\",\"speaker\":\"agent\",\"max_new\":0,\"context\":$ctx}"
    assert_output '{"mode":"complete","completion":"","tokens":0}'
}

@test "--serve: bad context is an error with a clear message" {
    turns=$(printf '{"text":"hi"},%.0s' $(seq 256))
    long=$(head -c 65537 /dev/zero | tr '\0' a)
    printf '%s\n' '{"text":"x","context":{"text":"hi"}}' \
        '{"text":"x","context":[{"text":"hi"},"hello"]}' \
        '{"text":"x","context":[{"speaker":"user"}]}' \
        '{"text":"x","context":[{"text":["hi"]}]}' \
        '{"text":"x","context":[{"text":"hi","speaker":1}]}' \
        '{"text":"x","context":[{"text":"hi","role":"user"}]}' \
        '{"text":"x ","context":[{"text":"hi","speaker":"agent"},{"text":"ho","speaker":"bob"}]}' \
        "{\"text\":\"x\",\"context\":[${turns}{\"text\":\"hi\"}]}" \
        "{\"text\":\"x\",\"context\":[{\"text\":\"$long\"}]}" \
        "{\"text\":\"x \",\"k\":1,\"context\":[${turns%,}]}" \
        '{"text":"x ","k":1,"context":[]}' > req.txt
    run --separate-stderr "$S" -m "$T/chat.ckpt" --serve < req.txt
    assert_success
    assert_equal "${#lines[@]}" 11
    assert_line --index 0 '{"error":"context must be an array of turns ({\"speaker\":..,\"text\":..})"}'
    assert_line --index 1 '{"error":"context[1] must be an object ({\"speaker\":..,\"text\":..})"}'
    assert_line --index 2 '{"error":"context[0]: missing field \"text\""}'
    assert_line --index 3 '{"error":"context[0]: text must be a string"}'
    assert_line --index 4 '{"error":"context[0]: speaker must be a string"}'
    assert_line --index 5 '{"error":"context[0]: unknown field \"role\""}'
    assert_line --index 6 '{"error":"context[1]: unknown speaker '"'"'bob'"'"' (speakers: user, agent)"}'
    assert_line --index 7 '{"error":"context: at most 256 turns"}'
    assert_line --index 8 '{"error":"context: more than 65536 bytes of text"}'
    # 256 turns is allowed, and so is none
    assert_line --index 9 --regexp '^\{"mode":"suggest","suggestions":\[\{"word":"[^"]*","p":[0-9.e-]*\}\]\}$'
    assert_line --index 10 --regexp '^\{"mode":"suggest","suggestions":\[\{"word":"[^"]*","p":[0-9.e-]*\}\]\}$'
}
