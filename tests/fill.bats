#!/usr/bin/env bats
# Fill-in-the-middle: lstm-window --reverse (documents read backwards), right-to-left models
# (reverse=docs|turns in the checkpoint, refused where a left-to-right one is wanted and the other way round),
# lstm-sample --fill, the engine's "mode":"fill" over lstm-sample --serve and lstm-serve, and
# lstm-eval --fill. The fixture language makes the gap's word a function of what follows it: in
# "go <a> k<n> end<n> ." the k word is a guess for a left-to-right model (1 of 4) and certain for one
# that has read "end<n>".

bats_require_minimum_version 1.5.0

setup_file() {
    export T="$BATS_FILE_TMPDIR"
    export B="$LSTM_BIN"
    awk 'BEGIN { srand(7); for (i = 0; i < 2000; i++) { k = int(rand() * 4); a = int(rand() * 3);
                 printf "go %s k%d end%d .\n", (a == 0 ? "now" : (a == 1 ? "please" : "again")), k, k } }' > "$T/train.txt"
    "$B/lstm-tok" -q --split space --vocab-out "$T/v.vocab" -o "$T/train.tok" "$T/train.txt"
    "$B/lstm-window" -q -L 5 --cross-docs -o "$T/f.win" "$T/train.tok"
    "$B/lstm-window" -q -L 5 --cross-docs --reverse -o "$T/b.win" "$T/train.tok"
    for d in f b; do
        "$B/lstm-train" -q --hidden 32 --emb 16 --epochs 20 --optim adam --lr 0.01 --batch 20 --threads 1 \
            -o "$T/$d.ckpt" "$T/$d.win"
    done
    # held-out lines of the same language
    awk 'BEGIN { srand(8); for (i = 0; i < 300; i++) { k = int(rand() * 4); a = int(rand() * 3);
                 printf "go %s k%d end%d .\n", (a == 0 ? "now" : (a == 1 ? "please" : "again")), k, k } }' > "$T/test.txt"
    "$B/lstm-tok" -q -m "$T/v.vocab" -o "$T/test.tok" "$T/test.txt"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    load 'serve_helpers'
    cd "$BATS_TEST_TMPDIR"
    SPID=
}

teardown() { serve_stop; }

# The records of a window stream as "in: ..." token lines.
ins() { "$B/lstm-dump" "$1" | awk '$1 == "in:" && $2 !~ /^[0-9]+$/ { $1 = ""; sub(/^ /, ""); print }'; }

@test "lstm-window --reverse: lines and chat turns read backwards, the speaker tag and <s> in front, EOS at the end" {
    printf 'a b c\nd e\n' > two.txt
    "$B/lstm-tok" -q --split space -o two.tok two.txt
    "$B/lstm-window" -q -L 3 --reverse -o r.win two.tok
    run ins r.win
    assert_output $'c b a\ne d <pad>'
    # the documents stay in order; --cross-docs reverses the stream: the last line first
    "$B/lstm-window" -q -L 7 --reverse --cross-docs -o rc.win two.tok
    run ins rc.win
    assert_output 'e d </s> c b a <pad>'
    run "$B/lstm-dump" --header r.win
    assert_output --partial 'reverse: docs'
    run "$B/lstm-dump" --header two.tok
    refute_output --partial 'reverse'
    # a conversation: its turns in reverse order, each turn's words reversed behind "<tag> <s>"
    printf 'conversation,speaker,text\n1,user,hi there you\n1,agent,ok then\n' > c.csv
    "$B/lstm-tok" -q -o c.tok c.csv
    "$B/lstm-window" -q -L 13 --reverse -o cr.win c.tok
    run ins cr.win
    assert_output '<agent> <s> then ok </s> <user> <s> you there hi <pad> <pad> <pad>'
    # --reverse-turns: the turns keep their order, each read backwards
    "$B/lstm-window" -q -L 13 --reverse-turns -o ct.win c.tok
    run ins ct.win
    assert_output '<user> <s> you there hi </s> <agent> <s> then ok <pad> <pad> <pad>'
    run "$B/lstm-dump" --header ct.win
    assert_output --partial 'reverse: turns'
    run -2 "$B/lstm-window" --reverse --reverse-turns c.tok
    assert_output --partial 'exclude each other'
    run "$B/lstm-window" --help
    assert_output --partial '--reverse-turns'
}

@test "chat: a --reverse-turns backward model reads the conversation before the turn, then the turn from its end" {
    awk 'BEGIN { srand(3); print "conversation,speaker,text"; for (i = 0; i < 600; i++) { k = int(rand() * 4);
                 printf "c%d,user,i want k%d for end%d\nc%d,agent,ok k%d it is\n", i, k, k, i, k } }' > chat.csv
    "$B/lstm-tok" -q --vocab-out c.vocab -o chat.tok chat.csv
    "$B/lstm-window" -q -L 8 -o cf.win chat.tok
    "$B/lstm-window" -q -L 8 --reverse-turns -o cb.win chat.tok
    for d in f b; do
        "$B/lstm-train" -q --hidden 32 --emb 16 --epochs 20 --optim adam --lr 0.01 --batch 20 --threads 1 -o c$d.ckpt c$d.win
    done
    run "$B/lstm-dump" cb.ckpt
    assert_output --partial 'reverse=turns'
    for k in 0 3; do
        run "$B/lstm-sample" -m cf.ckpt --backward cb.ckpt --speaker user --fill "i want ___ for end$k"
        [ "$(head -1 <<< "$output" | cut -f1)" = "k$k" ]
    done
    # the agent's turn after a user turn: the context turn is read first, each turn from its end
    run "$B/lstm-sample" -m cf.ckpt --backward cb.ckpt --serve <<< \
        '{"mode":"fill","speaker":"agent","context":[{"speaker":"user","text":"i want k2 for end2"}],"text":"ok ___ it is"}'
    assert_output --regexp '^\{"mode":"fill","suggestions":\[\{"word":"k2","p":0\.9'
    run --separate-stderr "$B/lstm-eval" -m cf.ckpt --backward cb.ckpt --fill --json chat.tok
    /usr/bin/python3 - "$output" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
assert r["blanks"] == 1200, r          # one per turn
assert r["fill_top1"] >= r["forward_top1"] and r["fill_top1"] > 0.8, r
EOF
}

@test "a model trained on reversed windows says so; lstm-eval and lstm-train --resume refuse the other direction" {
    run "$B/lstm-dump" "$T/b.ckpt"
    assert_output --partial 'reverse=docs'
    run "$B/lstm-dump" "$T/f.ckpt"
    refute_output --partial 'reverse'
    run "$B/lstm-eval" -m "$T/f.ckpt" "$T/f.win"
    assert_success
    run "$B/lstm-eval" -m "$T/b.ckpt" "$T/b.win"
    assert_success
    run -1 "$B/lstm-eval" -m "$T/f.ckpt" "$T/b.win"
    assert_output --partial 'windows of documents read backwards (lstm-window --reverse), but'
    assert_output --partial 'was trained on documents read forwards: cut the windows without --reverse'
    run -1 "$B/lstm-eval" -m "$T/b.ckpt" "$T/f.win"
    assert_output --partial 'was trained on documents read backwards (lstm-window --reverse): cut the windows with lstm-window --reverse'
    run -1 "$B/lstm-train" -q --resume "$T/b.ckpt" --epochs 11 -o x.ckpt "$T/f.win"
    assert_output --partial 'documents read forwards, but'
    run -1 "$B/lstm-train" -q --hidden 8 --epochs 1 --valid "$T/f.win" -o y.ckpt "$T/b.win"
    assert_output --partial 'cut both the same way'
}

@test "lstm-sample --fill: the word the right context decides, with the probabilities of the normalised product" {
    run --separate-stderr "$B/lstm-sample" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill "go now ___ end2 ."
    assert_success
    [ "$(head -1 <<< "$output" | cut -f1)" = k2 ]
    awk -F'\t' 'NR == 1 && $2 > 0.9 { ok = 1 } END { exit !ok }' <<< "$output"
    # the forward model alone cannot know it: its best k word is far from certain
    run "$B/lstm-sample" -m "$T/f.ckpt" --suggest 4 "go now "
    awk -F'\t' '$1 ~ /^k/ && $2 > 0.6 { bad = 1 } END { exit bad }' <<< "$output"
    # p_fill(w) = p_fwd(w | left) p_bwd(w | right) / sum over the words: from the two models' own
    # suggestions (the backward prompt is the right context read backwards)
    "$B/lstm-sample" -m "$T/f.ckpt" --suggest 1000 "go now " > fwd.tsv
    "$B/lstm-sample" -m "$T/b.ckpt" --suggest 1000 ". end2 " > bwd.tsv
    "$B/lstm-sample" -q -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill --suggest 1000 "go now ___ end2 ." > fill.tsv
    [ "$(wc -l < fill.tsv)" -eq "$(wc -l < fwd.tsv)" ]
    run awk -F'\t' 'FILENAME == ARGV[1] { f[$1] = $2; next } FILENAME == ARGV[2] { b[$1] = $2; z += f[$1] * $2; next }
                   { want = f[$1] * b[$1] / z; d = $2 - want; if (d < 0) d = -d; if (d > m) m = d; n++ }
                   END { printf "%d words, max diff %.2e\n", n, m; exit !(n > 5 && m < 2e-5) }' fwd.tsv bwd.tsv fill.tsv
    assert_success
    run "$B/lstm-sample" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill "go please k1 ___ ."
    [ "$(head -1 <<< "$output" | cut -f1)" = end1 ]
    # --prior TOKENS: the product divided by p(w) = (count + 1) / (total + V), the training text's counts
    "$B/lstm-sample" -q -m "$T/f.ckpt" --backward "$T/b.ckpt" --prior "$T/train.tok" --fill --suggest 1000 \
        "go now ___ end2 ." > prior.tsv
    run awk -F'\t' 'FILENAME == ARGV[1] { for (i = 1; i <= NF; i++) c[$i]++; next }
                   FILENAME == ARGV[2] { f[$1] = $2; next }
                   FILENAME == ARGV[3] { q[$1] = f[$1] * $2 / (c[$1] + 1); z += q[$1]; next }
                   { d = $2 - q[$1] / z; if (d < 0) d = -d; if (d > m) m = d; n++ }
                   END { printf "%d words, max diff %.2e\n", n, m; exit !(n > 5 && m < 2e-5) }' \
        FS=' ' "$T/train.txt" FS='\t' fwd.tsv bwd.tsv prior.tsv
    assert_success
    run -2 "$B/lstm-sample" -m "$T/f.ckpt" --prior "$T/train.tok" --suggest 3 "go "
    assert_output --partial '--prior is for fill-in-the-middle'
    run -1 "$B/lstm-sample" -m "$T/f.ckpt" --backward "$T/b.ckpt" --prior "$T/f.win" --fill "go ___ end2"
    assert_output --partial 'expected the training tokens'
}

@test "lstm-sample --fill: usage errors and the models it refuses" {
    run -2 "$B/lstm-sample" -m "$T/f.ckpt" --fill "go ___ end2"
    assert_output --partial 'give --backward FILE'
    run -2 "$B/lstm-sample" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill --complete "go ___"
    assert_output --partial '--fill and --complete exclude each other'
    run -1 "$B/lstm-sample" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill "go now k2 end2"
    assert_output --partial 'the text has no gap: mark the missing word with ___'
    run -1 "$B/lstm-sample" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill "___ now ___"
    assert_output --partial 'more than one gap'
    run -1 "$B/lstm-sample" -m "$T/f.ckpt" --backward "$T/f.ckpt" --fill "go ___ end2"
    assert_output --partial 'a left-to-right model: train the backward model on lstm-window --reverse windows'
    run -1 "$B/lstm-sample" -m "$T/b.ckpt" --backward "$T/b.ckpt" --fill "go ___ end2"
    assert_output --partial 'the forward model is a right-to-left one'
    # another vocabulary
    "$B/lstm-tok" -q --split space -o o.tok "$T/test.txt"
    "$B/lstm-window" -q -L 5 --reverse --cross-docs o.tok | "$B/lstm-train" -q --hidden 8 --epochs 1 --threads 1 -o o.ckpt
    run -1 "$B/lstm-sample" -m "$T/f.ckpt" --backward o.ckpt --fill "go ___ end2"
    assert_output --partial 'its tokenizer differs from the forward model'
}

@test "BPE and character models: the forward beam's words, rescored by the backward model's pieces read backwards" {
    "$B/lstm-tok" -q --bpe --vocab-size 300 --vocab-out bpe.vocab -o bpe.tok "$T/train.txt"
    "$B/lstm-window" -q -L 12 --cross-docs -o bf.win bpe.tok
    "$B/lstm-window" -q -L 12 --cross-docs --reverse -o bb.win bpe.tok
    for d in bf bb; do
        "$B/lstm-train" -q --hidden 64 --emb 32 --epochs 20 --optim adam --lr 0.01 --schedule const --batch 10 \
            --threads 1 -o $d.ckpt $d.win
    done
    for k in 0 3; do
        run "$B/lstm-sample" -m bf.ckpt --backward bb.ckpt --fill "go now ___ end$k ."
        assert_success
        [ "$(head -1 <<< "$output" | cut -f1)" = "k$k" ]
        awk -F'\t' '{ s += $2 } NR == 1 && $2 < 0.6 { bad = 1 } END { exit bad || s > 1.000001 }' <<< "$output"
    done
    # lstm-eval --fill ranks the whole vocabulary: word models only
    "$B/lstm-tok" -q -m bpe.vocab -o bt.tok "$T/test.txt"
    run -1 "$B/lstm-eval" -m bf.ckpt --backward bb.ckpt --fill bt.tok
    assert_output --partial 'needs word models'
    # characters: the boundary before the word ends it when read backwards; the path answers
    "$B/lstm-tok" -q --chars --vocab-out ch.vocab -o ch.tok "$T/test.txt"
    "$B/lstm-window" -q -L 20 --cross-docs ch.tok | "$B/lstm-train" -q --hidden 16 --epochs 1 --threads 1 -o cf.ckpt
    "$B/lstm-window" -q -L 20 --cross-docs --reverse ch.tok | "$B/lstm-train" -q --hidden 16 --epochs 1 --threads 1 -o cb.ckpt
    run "$B/lstm-sample" -m cf.ckpt --backward cb.ckpt --fill --json "go now ___ end1 ."
    assert_success
    assert_output --regexp '^\{"mode":"fill","suggestions":\[\{"word":"[^"]+","p":'
}

@test "fill requests: lstm-sample --serve and lstm-serve POST /v1/fill give the same words, errors as JSON" {
    printf '%s\n' '{"mode":"fill","text":"go again ___ end3 .","k":2,"id":7}' '{"mode":"fill","text":"go again k3 end3"}' \
        '{"text":"go again "}' > req.jsonl
    run "$B/lstm-sample" -m "$T/f.ckpt" --backward "$T/b.ckpt" --serve < req.jsonl
    assert_success
    assert_line --index 0 --regexp '^\{"id":7,"mode":"fill","suggestions":\[\{"word":"k3","p":0\.9[0-9]*\},\{"word":"k[0-9]","p":'
    assert_line --index 1 '{"error":"fill: the text has no gap: mark the missing word with ___"}'
    assert_line --index 2 --regexp '^\{"mode":"suggest","suggestions":'
    first=${lines[0]}
    run "$B/lstm-sample" -m "$T/f.ckpt" --serve <<< '{"mode":"fill","text":"go ___ end3"}'
    assert_output '{"error":"fill needs a right-to-left model: give --backward FILE"}'
    serve_start "$T/f.ckpt" --backward "$T/b.ckpt"
    run curl -s -X POST --data-binary '{"mode":"fill","text":"go again ___ end3 .","k":2,"id":7}' "${U}v1/fill"
    [ "$(sed 's/,"took_us":[0-9]*}$/}/' <<< "$output")" = "$first" ]
    run curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '{"mode":"suggest","text":"go ___"}' "${U}v1/fill"
    assert_output 400
    run curl -s "${U}v1/model"
    assert_output --partial '"fill":true'
    run curl -s "${U}metrics"
    assert_output --partial 'lstm_serve_requests_total{endpoint="/v1/fill"} 2'
    assert_output --partial 'lstm_serve_request_duration_seconds_bucket{endpoint="/v1/fill",le="+Inf"} 1'
    serve_stop
    # --prior: two workers, each with the prior, answer as lstm-sample --serve --prior
    want=$("$B/lstm-sample" -m "$T/f.ckpt" --backward "$T/b.ckpt" --prior "$T/train.tok" --serve <<< '{"mode":"fill","text":"go ___ k1 end1 .","k":3}')
    serve_start "$T/f.ckpt" --backward "$T/b.ckpt" --prior "$T/train.tok" --threads 2
    for i in 1 2 3 4; do curl -s -X POST --data-binary '{"text":"go ___ k1 end1 .","k":3}' "${U}v1/fill"; echo; done > got.jsonl
    # (a worker reusing the prompt it read last may differ in the last digits: formats/serve.md)
    /usr/bin/python3 - "$want" got.jsonl <<'EOF'
import json, sys
want = json.loads(sys.argv[1])["suggestions"]
for line in open(sys.argv[2]):
    got = json.loads(line)["suggestions"]
    assert [g["word"] for g in got] == [w["word"] for w in want], (got, want)
    assert all(abs(g["p"] - w["p"]) < 1e-6 for g, w in zip(got, want)), (got, want)
EOF
    serve_stop
    serve_start "$T/f.ckpt"
    run curl -s -X POST --data-binary '{"text":"go ___ end3"}' "${U}v1/fill"
    assert_output '{"error":"fill needs a right-to-left model: give --backward FILE"}'
    run curl -s "${U}v1/model"
    refute_output --partial '"fill"'
}

@test "lstm-eval --fill: one blank per line; the backward model lifts the k words the forward one can only guess" {
    run --separate-stderr "$B/lstm-eval" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill --prior "$T/train.tok" --json "$T/test.tok"
    assert_success
    /usr/bin/python3 - "$output" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
assert r["blanks"] == 300, r
# A line "go <a> k<n> end<n> ." blanks one of its 4 words (and "."): go and end<n> are certain from
# the left, <a> is a 1-in-3 guess either way, k<n> is certain only from the right.
assert r["fill_top1"] > r["forward_top1"] + 0.2, r
assert r["fill_top1"] > 0.7 and r["forward_top1"] < 0.55, r
assert r["fill_top5"] >= r["forward_top5"], r
assert r["fill_perplexity"] < r["forward_perplexity"], r
# this language's words are nearly equally frequent: the prior changes little here
assert abs(r["prior_top1"] - r["fill_top1"]) < 0.1 and r["prior_perplexity"] < r["forward_perplexity"], r
EOF
    # the same seed blanks the same words; another seed others
    run "$B/lstm-eval" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill "$T/test.tok"
    assert_line --index 0 --partial '300 blanks (one word per line or turn, seed 1), 300 documents'
    assert_line --index 1 --regexp '^fill \(forward \+ backward\)  top-1 +[0-9.]+%  top-5 +[0-9.]+%  perplexity [0-9.]+$'
    a=$output
    run "$B/lstm-eval" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill "$T/test.tok"
    assert_equal "$output" "$a"
    run "$B/lstm-eval" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill --seed 2 "$T/test.tok"
    assert_line --index 0 --partial 'seed 2'
    # usage errors
    run -2 "$B/lstm-eval" -m "$T/f.ckpt" --fill "$T/test.tok"
    assert_output --partial '--fill needs the right-to-left model: give --backward FILE'
    run -2 "$B/lstm-eval" -m "$T/f.ckpt" --backward "$T/b.ckpt" "$T/test.tok"
    assert_output --partial '--backward is for --fill'
    run -2 "$B/lstm-eval" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill --keystrokes "$T/test.tok"
    assert_output --partial '--fill excludes'
    run -1 "$B/lstm-eval" -m "$T/f.ckpt" --backward "$T/b.ckpt" --fill "$T/f.win"
    assert_output --partial '--fill reads the token stream'
    run -1 "$B/lstm-eval" -m "$T/b.ckpt" --backward "$T/f.ckpt" --fill "$T/test.tok"
    assert_output --partial 'a right-to-left model (trained on --reverse windows): give it as --backward'
}
