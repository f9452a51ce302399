#!/usr/bin/env bats
# Bad inputs, one table per tool: every row is an exit status, the exact stderr (or, after "~", an
# extended regex for messages with machine-dependent numbers) and a command run under `timeout 20` in a
# directory of fixtures. No row may crash, hang (124) or print anything else on stderr.

bats_require_minimum_version 1.5.0

setup_file() {
    export D="$BATS_FILE_TMPDIR/d"
    mkdir -p "$D/adir"
    cd "$D"
    local B="$LSTM_BIN"
    export PATH="$B:$PATH" OPENBLAS_NUM_THREADS=1
    awk 'BEGIN { srand(5); for (i = 0; i < 400; i++) { n = 5 + int(rand() * 8); s = int(rand() * 30);
                 for (j = 0; j < n; j++) printf "w%d ", (s + j) % 30; printf "\n" } }' > text.txt
    lstm-tok --split space text.txt > text.tok
    lstm-window -L 8 text.tok > text.win
    lstm-tok --words text.txt | lstm-window -L 8 > other.win              # another tokenizer
    lstm-train -q --hidden 8 --layers 1 --epochs 1 --threads 1 -o m.ckpt text.win
    printf 'ab\xff\xfecd\n' > badutf8.txt
    printf 'a\0b c\n' > nul.txt
    head -c 10000000 /dev/zero | tr '\0' 'a' > long.txt                   # one 10 MB line
    : > empty.txt
    printf 'speaker,text\nuser,"hello\nagent,bye\n' > unbalanced.csv
    printf 'speaker,message_x\nuser,hi\n' > notext.csv
    lstm-tok empty.txt > empty.tok
    lstm-window -L 5 empty.tok > empty.win
    lstm-tok -m m.ckpt empty.txt | lstm-window -L 8 > empty_m.win
    printf 'three words here\nand more\n' | lstm-tok > few.tok
    lstm-window -L 100000 few.tok > hugeL.win
    # a stream from the future: version 2 in an otherwise valid token stream
    zstd -qdc text.tok | { head -c 8; printf '\x02\x00\x00\x00'; tail -c +13; } | zstd -qc > future.tok
    printf 'w1 w2 w3 w\n' > prompt.txt
    printf 'speaker,text\nuser,hello there\nagent,hi\n' > chats.csv
    lstm-tok --split space --vocab-out text.vocab text.txt > /dev/null
    lstm-ngram train -q -n 2 -o m.ngram text.tok
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$D"
}

# Reads rows "status|stderr|command" from stdin (blank lines and # comments skipped); the argument, if
# any, is another separator, for messages that contain '|'.
check_table() {
    local n=0 bad=0 st want cmd got sep="${1:-|}"
    while IFS="$sep" read -r st want cmd; do
        [[ -z "$st" || "$st" == \#* ]] && continue
        n=$((n + 1))
        run --separate-stderr timeout 20 bash -c "$cmd" < /dev/null # rows must not eat the table
        got="$stderr"
        if [ "$status" -ne "$st" ]; then
            echo "row $n: '$cmd': status $status, expected $st; stderr: $got"; bad=$((bad + 1)); continue
        fi
        if [[ "$want" == \~* ]]; then
            [[ "$got" =~ ${want#\~} ]] || { echo "row $n: '$cmd': stderr '$got' !~ '${want#\~}'"; bad=$((bad + 1)); }
        elif [ "$got" != "$want" ]; then
            echo "row $n: '$cmd': stderr '$got', expected '$want'"; bad=$((bad + 1))
        fi
    done
    echo "# $n rows" >&3
    [ "$bad" -eq 0 ]
}

@test "lstm-tok: bad text and CSV, files, flags" {
    check_table <<'EOF'
0|lstm-tok: warning: 2 invalid UTF-8 sequences replaced with U+FFFD|lstm-tok badutf8.txt > o.tok
0||lstm-tok nul.txt > o.tok && lstm-dump --text o.tok > /dev/null
0||lstm-tok long.txt > o.tok
0||lstm-tok empty.txt > o.tok
0||lstm-tok < /dev/null > o.tok
1|lstm-tok: unbalanced.csv:2: unterminated quoted field|lstm-tok unbalanced.csv > o.tok
1|lstm-tok: notext.csv:1: no text column in the CSV header (columns: speaker, message_x): expected text, utterance, message or content, or name it with --text-col|lstm-tok --format csv notext.csv > o.tok
1|lstm-tok: missing.txt: No such file or directory|lstm-tok missing.txt > o.tok
1|lstm-tok: adir: Is a directory|lstm-tok adir > o.tok
1|lstm-tok: nodir/o.tok: No such file or directory|lstm-tok -o nodir/o.tok text.txt
1|lstm-tok: badutf8.txt: not a vocab file, an lstm stream or a SentencePiece model|lstm-tok -m badutf8.txt text.txt > o.tok
2|lstm-tok: --vocab-size: expected an integer from 5 to 268435456, got '-1'|lstm-tok --vocab-size -1 text.txt > o.tok
2|lstm-tok: --vocab-size: expected an integer from 5 to 268435456, got '1e99'|lstm-tok --vocab-size 1e99 text.txt > o.tok
2|lstm-tok: --min-count: expected an integer from 1 to 1099511627776, got '0'|lstm-tok --min-count 0 text.txt > o.tok
2|lstm-tok: --threads: expected an integer from 1 to 16, got '0'|lstm-tok --threads 0 text.txt > o.tok
EOF
}

@test "lstm-window: wrong kind, future version, empty, -L limits, files" {
    check_table <<'EOF'
1|lstm-window: text.win: got windows (WIND), expected a token stream (TOKS): make one with lstm-tok|lstm-window text.win > o.win
1|lstm-window: future.tok: unsupported format version|lstm-window future.tok > o.win
1|lstm-window: empty.txt: empty input (no stream)|lstm-window empty.txt > o.win
1|lstm-window: stdin: empty input (no stream)|lstm-window < /dev/null > o.win
1|lstm-window: m.ckpt: not an lstm stream (wrong magic)|lstm-window m.ckpt > o.win
0||lstm-window empty.tok > o.win
0||lstm-window -L 100000 text.tok > o.win
2|lstm-window: -L: expected an integer from 1 to 100000, got '0'|lstm-window -L 0 text.tok > o.win
2|lstm-window: -L: expected an integer from 1 to 100000, got '100001'|lstm-window -L 100001 text.tok > o.win
2|lstm-window: -L: expected an integer from 1 to 100000, got '1e99'|lstm-window -L 1e99 text.tok > o.win
2|lstm-window: --stride: expected an integer from 1 to 100000, got '-1'|lstm-window --stride -1 text.tok > o.win
2|lstm-window: --stride 9 is larger than -L 8: tokens would be skipped|lstm-window -L 8 --stride 9 text.tok > o.win
1|lstm-window: missing.tok: No such file or directory|lstm-window missing.tok > o.win
1|lstm-window: adir: Is a directory|lstm-window adir > o.win
1|lstm-window: nodir/o.win: No such file or directory|lstm-window -o nodir/o.win text.tok
EOF
}

@test "text or CSV where a stream is expected: every reader names the tools that make one (file and stdin)" {
    check_table '@' <<'EOF'
1@lstm-window: chats.csv: a text/CSV file, not a token stream: pipe it through lstm-tok (lstm-tok chats.csv | lstm-window ...)@lstm-window -L 8 chats.csv > o.win
1@lstm-window: stdin: text/CSV, not a token stream: pipe it through lstm-tok (... | lstm-tok | lstm-window ...)@cat chats.csv | lstm-window > o.win
1@lstm-window: text.txt: a text/CSV file, not a token stream: pipe it through lstm-tok (lstm-tok text.txt | lstm-window ...)@lstm-window text.txt > o.win
# text in a legacy 8-bit encoding is still text (lstm-tok reads it with a warning)
1@lstm-window: badutf8.txt: a text/CSV file, not a token stream: pipe it through lstm-tok (lstm-tok badutf8.txt | lstm-window ...)@lstm-window badutf8.txt > o.win
# shorter than a stream's magic, and in pieces through a pipe
1@lstm-window: stdin: text/CSV, not a token stream: pipe it through lstm-tok (... | lstm-tok | lstm-window ...)@printf 'hi\n' | lstm-window > o.win
1@lstm-window: stdin: text/CSV, not a token stream: pipe it through lstm-tok (... | lstm-tok | lstm-window ...)@{ printf s; sleep 0.2; printf 'peaker,text\n'; } | lstm-window > o.win
# not text: a NUL, a stream cut inside zstd's magic (its first byte is '(')
1@lstm-window: stdin: not an lstm stream (wrong magic)@lstm-window < nul.txt > o.win
1@lstm-window: stdin: truncated stream (no end record)@head -c 1 text.tok | lstm-window > o.win
1@lstm-train: chats.csv: a text/CSV file, not windows: tokenize it and cut it into windows (lstm-tok chats.csv | lstm-window -L 15 | lstm-train ...)@lstm-train -o x.ckpt chats.csv
1@lstm-train: stdin: text/CSV, not windows: tokenize it and cut it into windows (... | lstm-tok | lstm-window -L 15 | lstm-train ...)@cat chats.csv | lstm-train -o x.ckpt
1@lstm-train: chats.csv: a text/CSV file, not windows: tokenize it like the training data and cut it into windows (lstm-tok -m text.win chats.csv | lstm-window -L 8 > valid.win)@lstm-train -o x.ckpt --valid chats.csv text.win
1@lstm-train: chats.csv: a text/CSV file, not windows: tokenize it like the training data and cut it into windows (lstm-tok -m <vocab or checkpoint> chats.csv | lstm-window -L 8 > valid.win)@lstm-train -o x.ckpt --valid chats.csv < text.win
1@lstm-eval: chats.csv: a text/CSV file, not windows: tokenize it with the model's tokenizer and cut it into windows (lstm-tok -m m.ckpt chats.csv | lstm-window -L 15 | lstm-eval -m m.ckpt)@lstm-eval -m m.ckpt chats.csv
1@lstm-eval: stdin: text/CSV, not windows: tokenize it with the model's tokenizer and cut it into windows (... | lstm-tok -m m.ckpt | lstm-window -L 15 | lstm-eval -m m.ckpt)@cat chats.csv | lstm-eval -m m.ckpt
1@lstm-ngram: chats.csv: a text/CSV file, not a token stream: pipe it through lstm-tok (lstm-tok chats.csv | lstm-ngram train ...)@lstm-ngram train -o x.ngram chats.csv
1@lstm-ngram: stdin: text/CSV, not a token stream: pipe it through lstm-tok (... | lstm-tok | lstm-ngram train ...)@cat chats.csv | lstm-ngram train -o x.ngram
1@lstm-ngram: chats.csv: a text/CSV file, not a token stream: tokenize it like the training stream (lstm-tok -m text.tok chats.csv > test.tok)@lstm-ngram train -o x.ngram --eval chats.csv text.tok
1@lstm-ngram: chats.csv: a text/CSV file, not a token stream: tokenize it like the training stream (lstm-tok -m <training stream or its vocab> chats.csv | lstm-ngram eval -m m.ngram)@lstm-ngram eval -m m.ngram chats.csv
1@lstm-ngram: stdin: text/CSV, not a token stream: tokenize it like the training stream (... | lstm-tok -m <training stream or its vocab> | lstm-ngram eval -m m.ngram)@cat chats.csv | lstm-ngram eval -m m.ngram
# a stream of the wrong kind names the tool that makes the right one
1@lstm-train: text.vocab: got a vocabulary file (VOCB), expected windows (WIND): make windows with lstm-tok | lstm-window@lstm-train -o x.ckpt text.vocab
1@lstm-eval: text.vocab: got a vocabulary file (VOCB), expected windows (WIND): make windows with lstm-tok | lstm-window@lstm-eval -m m.ckpt text.vocab
1@lstm-train: stdin: got a token stream (TOKS), expected windows (WIND): pipe it through lstm-window@lstm-train -o x.ckpt < text.tok
1@lstm-window: stdin: got windows (WIND), expected a token stream (TOKS): make one with lstm-tok@lstm-window < text.win > o.win
1@lstm-ngram: text.win: got windows (WIND), expected a token stream (TOKS): make one with lstm-tok@lstm-ngram train -o x.ngram text.win
EOF
    run ls x.ckpt x.ckpt.last x.ngram
    assert_failure
}

@test "lstm-train: absurd flags, wrong inputs, vocabulary mismatch, sizes beyond the machine" {
    check_table <<'EOF'
2|lstm-train: --batch: expected an integer from 1 to 65536, got '-1'|lstm-train --batch -1 -o x.ckpt text.win
2|lstm-train: --hidden: expected an integer from 1 to 16384, got '0'|lstm-train --hidden 0 -o x.ckpt text.win
2|lstm-train: --epochs: expected an integer from 1 to 1000000, got '1e99'|lstm-train --epochs 1e99 -o x.ckpt text.win
2|lstm-train: --lr: expected a number from 1e-12 to 1e+30, got 'nan'|lstm-train --lr nan -o x.ckpt text.win
2|lstm-train: --lr: expected a number from 1e-12 to 1e+30, got '-1'|lstm-train --lr -1 -o x.ckpt text.win
2|lstm-train: --dropout: expected a number from 0 to 0.95, got 'nan'|lstm-train --dropout nan -o x.ckpt text.win
2|lstm-train: --clip: expected a number from 0 to 1e+09, got 'inf'|lstm-train --clip inf -o x.ckpt text.win
2|lstm-train: --threads: expected an integer from 1 to 1024, got '0'|lstm-train --threads 0 -o x.ckpt text.win
2|lstm-train: --valid-frac: expected a number from 0 to 0.9, got '2'|lstm-train --valid-frac 2 -o x.ckpt text.win
1|lstm-train: text.tok: got a token stream (TOKS), expected windows (WIND): pipe it through lstm-window|lstm-train -o x.ckpt text.tok
1|lstm-train: future.tok: unsupported format version|lstm-train -o x.ckpt future.tok
1|lstm-train: empty.txt: empty input (no stream)|lstm-train -o x.ckpt empty.txt
1|lstm-train: empty.win: no windows to train on|lstm-train -o x.ckpt empty.win
1|lstm-train: missing.win: No such file or directory|lstm-train -o x.ckpt missing.win
1|lstm-train: adir: Is a directory|lstm-train -o x.ckpt adir
1|lstm-train: nodir/x.ckpt: No such file or directory|lstm-train -o nodir/x.ckpt text.win
1|lstm-train: other.win: tokenizer does not match the checkpoint m.ckpt's: tokenize with lstm-tok -m m.ckpt|lstm-train --resume m.ckpt -o x.ckpt other.win
1|~^lstm-train: activations for batch 2 x 100000 need about [0-9]+ MB, more than this machine's [0-9]+ MB allow: lower --batch or make shorter windows \(lstm-window -L\)$|lstm-train -q --batch 1000 --layers 1 --hidden 4096 -o x.ckpt hugeL.win
1|~^lstm-train: the model's parameters, gradients and optimizer state need about [0-9]+ MB, more than this machine's [0-9]+ MB allow: lower --hidden, --emb or --layers$|lstm-train -q --hidden 16384 --layers 8 -o x.ckpt text.win
EOF
    [ ! -e x.ckpt ]
    [ ! -e x.ckpt.last ]
}

@test "lstm-eval: flags, wrong kind, vocabulary mismatch, bad models" {
    check_table <<'EOF'
2|lstm-eval: -k: expected an integer from 1 to 100000, got '0'|lstm-eval -m m.ckpt -k 0 text.win
2|lstm-eval: --batch: expected an integer from 1 to 100000, got '-1'|lstm-eval -m m.ckpt --batch -1 text.win
2|lstm-eval: -k: expected an integer from 1 to 100000, got '1e99'|lstm-eval -m m.ckpt -k 1e99 text.win
2|lstm-eval: no model: give -m MODEL.ckpt (see --help)|lstm-eval text.win
1|lstm-eval: other.win: tokenizer does not match m.ckpt's: tokenize it with lstm-tok -m m.ckpt|lstm-eval -m m.ckpt other.win
1|lstm-eval: text.tok: got a token stream (TOKS), expected windows (WIND): pipe it through lstm-window|lstm-eval -m m.ckpt text.tok
1|lstm-eval: stdin: no windows to evaluate|lstm-eval -m m.ckpt < empty_m.win
1|lstm-eval: text.win: not a checkpoint (a window stream (WIND)): give -m the model written by lstm-train|lstm-eval -m text.win text.win
1|lstm-eval: missing.ckpt: No such file or directory|lstm-eval -m missing.ckpt text.win
1|lstm-eval: adir: Is a directory|lstm-eval -m adir text.win
1|lstm-eval: empty.txt: not a usable checkpoint: no data|lstm-eval -m empty.txt text.win
EOF
}

@test "lstm-sample: sampling flags, bad models, bad prompts" {
    check_table <<'EOF'
2|lstm-sample: --suggest: expected an integer from 1 to 1000, got '0'|lstm-sample -m m.ckpt -s 0 w1
2|lstm-sample: --top-p: expected a number from 1e-06 to 1, got '2'|lstm-sample -m m.ckpt --complete --top-p 2 w1
2|lstm-sample: --top-p: expected a number from 1e-06 to 1, got 'nan'|lstm-sample -m m.ckpt --complete --top-p nan w1
2|lstm-sample: --temperature: expected a number from 0 to 100, got '-1'|lstm-sample -m m.ckpt --complete -t -1 w1
2|lstm-sample: --top-k: expected an integer from 0 to 1000000000, got '-1'|lstm-sample -m m.ckpt --complete --top-k -1 w1
2|lstm-sample: --beam: expected an integer from 1 to 64, got '0'|lstm-sample -m m.ckpt --complete --beam 0 w1
2|lstm-sample: --max-new: expected an integer from 0 to 10000, got '1e99'|lstm-sample -m m.ckpt --complete -n 1e99 w1
2|lstm-sample: --repetition-penalty: expected a number from 0.001 to 100, got '0'|lstm-sample -m m.ckpt --complete --repetition-penalty 0 w1
2|lstm-sample: no model: give -m MODEL.ckpt (see --help)|lstm-sample w1
1|lstm-sample: text.win: not a checkpoint (a window stream (WIND)): give -m the model written by lstm-train|lstm-sample -m text.win w1
1|lstm-sample: missing.ckpt: No such file or directory|lstm-sample -m missing.ckpt w1
1|lstm-sample: adir: Is a directory|lstm-sample -m adir w1
1|lstm-sample: missing.txt: No such file or directory|lstm-sample -m m.ckpt --ban missing.txt w1
0|lstm-sample: no suggestions: no known word starts with 'c'|lstm-sample -m m.ckpt < nul.txt
1|lstm-sample: the word being typed is too long|lstm-sample -m m.ckpt < long.txt
0||lstm-sample -m m.ckpt --complete < long.txt > /dev/null
0||lstm-sample -m m.ckpt --serve < long.txt | grep -q '^{"error":"the word being typed is too long"}$'
0||lstm-sample -m m.ckpt --complete < badutf8.txt > /dev/null
EOF
}

@test "lstm-dump: files and flags; an unreadable file (as nobody when root)" {
    check_table <<'EOF'
1|lstm-dump: missing: No such file or directory|lstm-dump missing
1|lstm-dump: adir: Is a directory|lstm-dump adir
1|lstm-dump: empty.txt: empty input (no stream)|lstm-dump empty.txt
1|lstm-dump: badutf8.txt: a text/CSV file, not an lstm stream or checkpoint: lstm-dump shows what lstm-tok and the other tools write|lstm-dump badutf8.txt
1|lstm-dump: future.tok: unsupported format version|lstm-dump future.tok
2|lstm-dump: -n: expected a non-negative integer, got '-1'|lstm-dump -n -1 text.win
EOF
    # Permissions: root reads anything, so drop to nobody for the unreadable case.
    local u=/tmp/lstm-badinput.$$
    mkdir -p "$u" && chmod 755 "$u"
    cp text.tok "$u/locked.tok" && chmod 000 "$u/locked.tok"
    local as=()
    [ "$(id -u)" -ne 0 ] || as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    run --separate-stderr timeout 20 "${as[@]}" "$LSTM_BIN/lstm-window" -o "$u/out.win" "$u/locked.tok"
    rm -rf "$u"
    assert_failure 1
    assert_equal "$stderr" "lstm-window: $u/locked.tok: Permission denied"
}

# Outputs that are not regular files are written in place, never renamed over or unlinked; a symlink
# is followed and its target replaced. The device tests need root to be able to fail (as a user,
# rename over /dev/null is refused by permissions anyway).
@test "output paths: /dev/null, /dev/stdout, a FIFO and a symlink, for lstm-tok, lstm-window and lstm-ngram" {
    cd "$BATS_TEST_TMPDIR"
    for cmd in "lstm-tok --split space -f -o /dev/null $D/text.txt" "lstm-tok --split space -o /dev/null $D/text.txt" \
               "lstm-window -L 8 -f -o /dev/null $D/text.tok" "lstm-window -L 8 -o /dev/null $D/text.tok" \
               "lstm-ngram train -n 2 -o /dev/null $D/text.tok"; do
        run --separate-stderr $cmd
        assert_success
        [ -c /dev/null ] || { echo "/dev/null replaced by: $cmd"; ls -l /dev/null; return 1; }
    done
    ls /dev/ | grep -q 'null\.tmp' && { echo "temp left in /dev"; return 1; }
    # /dev/stdout into a pipe, and into a regular file the shell opened (the file is not replaced)
    same_tokens() {
        local got
        got=$(lstm-dump --text "$1")
        [ -n "$got" ]
        [ "$got" = "$(lstm-dump --text "$D/text.tok")" ]
    }
    lstm-tok --split space -o /dev/stdout "$D/text.txt" | cat > piped.tok
    same_tokens piped.tok
    : > redirected.tok
    ino=$(stat -c %i redirected.tok)
    lstm-tok --split space -o /dev/stdout "$D/text.txt" > redirected.tok
    [ "$(stat -c %i redirected.tok)" = "$ino" ]
    same_tokens redirected.tok
    # a FIFO: written in place, still a FIFO afterwards
    mkfifo pipe.tok
    cat pipe.tok > fromfifo.tok &
    lstm-tok --split space -o pipe.tok "$D/text.txt"
    wait
    [ -p pipe.tok ]
    same_tokens fromfifo.tok
    # a symlink: the target is replaced (with -f, as it exists), the link stays a link
    echo old > target.tok
    ln -s target.tok link.tok
    run --separate-stderr lstm-tok --split space -o link.tok "$D/text.txt"
    assert_failure 1
    lstm-tok --split space -f -o link.tok "$D/text.txt"
    [ -L link.tok ]
    same_tokens target.tok
    # a dangling symlink: its target is created
    ln -s made.win dangling.win
    lstm-window -L 8 -o dangling.win "$D/text.tok"
    [ -L dangling.win ]
    [ -f made.win ]
}
