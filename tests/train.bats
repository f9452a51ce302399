#!/usr/bin/env bats
# lstm-train: learning, checkpoints, exact resume, faults (SIGINT, NaN), streaming, logs, bad inputs.

bats_require_minimum_version 1.5.0

setup_file() {
    export T="$BATS_FILE_TMPDIR"
    export TRAIN="$LSTM_BIN/lstm-train" DUMP="$LSTM_BIN/lstm-dump" TOK="$LSTM_BIN/lstm-tok" WIN="$LSTM_BIN/lstm-window"
    # A learnable language: runs of consecutive words w<s>, w<s+1>, ... (mod 20) of random length.
    awk 'BEGIN { srand(3); for (i = 0; i < 600; i++) { n = 5 + int(rand() * 8); s = int(rand() * 20);
                 for (j = 0; j < n; j++) printf "w%d ", (s + j) % 20; printf "\n" } }' > "$T/cyc.txt"
    "$TOK" --split space --vocab-out "$T/cyc.vocab" "$T/cyc.txt" | "$WIN" -L 10 > "$T/cyc.win"
    "$TOK" -m "$T/cyc.vocab" "$T/cyc.txt" | "$WIN" -L 10 --last > "$T/cyc_last.win"
    # The same text under another vocabulary (different tokenizer).
    "$TOK" --words "$T/cyc.txt" | "$WIN" -L 10 > "$T/other.win"
    # A larger stream: about 3 MB of window data, for streaming and interruption.
    awk 'BEGIN { srand(5); for (i = 0; i < 12000; i++) { n = 5 + int(rand() * 8); s = int(rand() * 50);
                 for (j = 0; j < n; j++) printf "w%d ", (s + j) % 50; printf "\n" } }' > "$T/big.txt"
    "$TOK" --split space "$T/big.txt" | "$WIN" -L 10 > "$T/big.win"
    # Validation text in the cyc language, under cyc's vocabulary: a small set, and a large one with a
    # tiny training set (validation takes most of each epoch, for interrupting it).
    awk 'BEGIN { srand(4); for (i = 0; i < 100; i++) { n = 5 + int(rand() * 8); s = int(rand() * 20);
                 for (j = 0; j < n; j++) printf "w%d ", (s + j) % 20; printf "\n" } }' |
        "$TOK" -m "$T/cyc.vocab" | "$WIN" -L 10 > "$T/valid.win"
    awk 'BEGIN { srand(6); for (i = 0; i < 30000; i++) { n = 5 + int(rand() * 8); s = int(rand() * 20);
                 for (j = 0; j < n; j++) printf "w%d ", (s + j) % 20; printf "\n" } }' |
        "$TOK" -m "$T/cyc.vocab" | "$WIN" -L 10 > "$T/bigvalid.win"
    head -60 "$T/cyc.txt" | "$TOK" -m "$T/cyc.vocab" | "$WIN" -L 10 > "$T/tiny.win"
    export SMALL="--hidden 16 --emb 16 --layers 2 --threads 1"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

# The checksum of the parameters in a checkpoint.
params_sum() { "$DUMP" "$1" | awk '$1 == "params" { print $NF }'; }

# Passes when log $1 has $2 epochs and the last one's train loss is well below the first's.
learned() { awk -F'\t' -v n="$2" '$1 == "epoch" { l[++k] = $7 } END { exit !(k == n && l[n] < 0.6 * l[1]) }' "$1"; }

# Passes when model $1 suggests w3 first after "w0 w1 w2 " (the cyc language's next word).
suggests_w3() {
    run --separate-stderr "$LSTM_BIN/lstm-sample" -m "$1" --suggest 1 "w0 w1 w2 "
    assert_success
    assert_output --regexp $'^w3\t'
}

@test "--help shows every flag family and an example; --version" {
    run --separate-stderr "$TRAIN" --help
    assert_success
    assert_output --partial 'lstm-tok < chats.csv | lstm-window -L 15 | lstm-train'
    for f in --valid --valid-frac --cell --layers --hidden --emb --tie --dropout --optim --lr --lr-decay \
             --decay-after --clip --batch --epochs --patience --seed --threads --init-scale --resume --log \
             --dropout-in --dropout-hidden --locked-dropout --no-locked-dropout --dropout-words --weight-drop --ar --tar; do
        assert_output --partial -- "$f"
    done
    run "$TRAIN" --version
    assert_output 'lstm-train 1.0'
}

@test "learns a learnable language: held-out perplexity far below the vocabulary size" {
    run --separate-stderr "$TRAIN" $SMALL --hidden 32 --emb 32 --epochs 30 --lr 0.01 --dropout 0 --patience 0 "$T/cyc.win"
    assert_success
    # vocabulary 24: a model that learned nothing has perplexity near 20
    ppl=$(sed -n 's/.*best valid ppl \([0-9.]*\) (epoch.*/\1/p' <<< "$stderr")
    [ -n "$ppl" ]
    awk -v p="$ppl" 'BEGIN { exit !(p < 1.6) }'
    [[ "$stderr" == *"saved to model.ckpt"* ]]
    [ -f model.ckpt ]
    [ -f model.ckpt.last ]
}

@test "the default output is not overwritten without -f" {
    "$TRAIN" -q $SMALL --epochs 1 "$T/cyc.win"
    run --separate-stderr "$TRAIN" -q $SMALL --epochs 1 "$T/cyc.win"
    assert_failure 1
    assert_equal "$stderr" 'lstm-train: model.ckpt: file exists (use -f to overwrite, or -o another file)'
    run "$TRAIN" -q -f $SMALL --epochs 1 "$T/cyc.win"
    assert_success
}

@test "reads stdin; gru, rnn, --reset-state and --last windows train too" {
    for cell in gru rnn; do
        "$TRAIN" -q $SMALL --cell $cell --epochs 2 -o $cell.ckpt < "$T/cyc.win"
        run "$DUMP" $cell.ckpt
        assert_output --partial "cell=$cell"
    done
    "$TRAIN" -q $SMALL --reset-state --epochs 1 -o r.ckpt "$T/cyc.win"
    run --separate-stderr "$TRAIN" $SMALL --epochs 1 -o l.ckpt "$T/cyc_last.win"
    assert_success
    [[ "$stderr" == *"windows of 10 (last-token)"* ]]
}

@test "a token stream is refused with a hint" {
    "$TOK" --split space "$T/cyc.txt" > cyc.tok
    run --separate-stderr "$TRAIN" cyc.tok
    assert_failure 1
    assert_equal "$stderr" 'lstm-train: cyc.tok: got a token stream (TOKS), expected windows (WIND): pipe it through lstm-window'
    run --separate-stderr bash -c "'$TRAIN' < cyc.tok"
    assert_equal "$stderr" 'lstm-train: stdin: got a token stream (TOKS), expected windows (WIND): pipe it through lstm-window'
}

@test "a truncated window stream is refused before training" {
    head -c 3000 "$T/big.win" > cut.win
    run --separate-stderr "$TRAIN" -q $SMALL cut.win
    assert_failure 1
    assert_equal "$stderr" 'lstm-train: cut.win: truncated stream (no end record)'
    [ ! -e model.ckpt ]
}

@test "bad flags are usage errors" {
    run --separate-stderr "$TRAIN" --cell lstmx "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --cell: expected lstm, gru, rnn, cifg or lnlstm, got 'lstmx'"
    run --separate-stderr "$TRAIN" --hidden 32 --emb 16 --tie "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" 'lstm-train: --tie needs --emb equal to --hidden (16 vs 32)'
    run --separate-stderr "$TRAIN" --dropout 1.5 "$T/cyc.win"
    assert_failure 2
    run --separate-stderr "$TRAIN" --batch 0 "$T/cyc.win"
    assert_failure 2
    run --separate-stderr "$TRAIN" --valid "$T/cyc.win" --valid-frac 0.1 "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" 'lstm-train: --valid and --valid-frac exclude each other'
    for f in --dropout-in --dropout-hidden --dropout-words --weight-drop; do
        run --separate-stderr "$TRAIN" $f 1 "$T/cyc.win"
        assert_failure 2
        assert_equal "$stderr" "lstm-train: $f: expected a number from 0 to 0.95, got '1'"
    done
    run --separate-stderr "$TRAIN" --ar -1 "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --ar: expected a number from 0 to 1e+06, got '-1'"
    run --separate-stderr "$TRAIN" --tar x "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --tar: expected a number from 0 to 1e+06, got 'x'"
}

@test "AWD regularization: trains, is recorded in the checkpoint, kept on resume and changed as --dropout is, and leaves evaluation alone" {
    local AWD="--locked-dropout --dropout 0.3 --dropout-in 0.4 --dropout-hidden 0.2 --dropout-words 0.1 --weight-drop 0.5 --ar 2 --tar 1"
    local desc="dropout 0.3 locked (in 0.4, hidden 0.2), words 0.1, weight drop 0.5, AR 2, TAR 1, "
    run --separate-stderr "$TRAIN" $SMALL --epochs 1 $AWD --valid "$T/valid.win" -o awd.ckpt "$T/cyc.win"
    assert_success
    [[ "${stderr_lines[0]}" == *"$desc"* ]]
    run "$DUMP" awd.ckpt.last
    for kv in dropout=0.300000012 dropout_in=0.400000006 dropout_hidden=0.200000003 locked_dropout=1 \
              dropout_words=0.100000001 weight_drop=0.5 ar=2 tar=1; do
        assert_line "  $kv"
    done
    # they change what training does: plain --dropout 0.3 reaches other weights
    "$TRAIN" -q $SMALL --epochs 1 --dropout 0.3 --valid "$T/valid.win" -o plain.ckpt "$T/cyc.win"
    [ "$(params_sum awd.ckpt.last)" != "$(params_sum plain.ckpt.last)" ]
    # resumed without the flags, the run keeps them: 1 epoch + resume 1 = 2 epochs, bit for bit
    "$TRAIN" -q $SMALL --epochs 2 $AWD --valid "$T/valid.win" -o two.ckpt "$T/cyc.win"
    run --separate-stderr "$TRAIN" --resume awd.ckpt.last --epochs 2 "$T/cyc.win"
    assert_success
    [[ "${stderr_lines[0]}" == *"$desc"* ]]
    assert_equal "$(params_sum awd.ckpt.last)" "$(params_sum two.ckpt.last)"
    # given again, each takes the new value
    run --separate-stderr "$TRAIN" --resume awd.ckpt.last --epochs 3 --weight-drop 0.2 --no-locked-dropout --ar 0 \
        --dropout-in 0.1 "$T/cyc.win"
    assert_success
    [[ "${stderr_lines[0]}" == *"dropout 0.3 (in 0.1, hidden 0.2), words 0.1, weight drop 0.2, TAR 1, "* ]]
    best=$(sed -n 's/.*best valid ppl \([0-9.]*\) (epoch.*/\1/p' <<< "$stderr")
    run "$DUMP" awd.ckpt.last
    assert_line "  weight_drop=0.200000003"
    assert_line "  dropout_in=0.100000001"
    assert_line "  tar=1"
    refute_line "  locked_dropout=1"
    refute_line --regexp '^  ar='
    # evaluation is the weights' alone: the same report, to the byte, as those weights with no
    # regularizer in their config, and the perplexity of the trainer's validation (its 20 lanes)
    [ -n "$best" ]
    "${LSTM_TESTBIN:-$BATS_TEST_DIRNAME/../build/tests}/test_modelfile" plain awd.ckpt none.ckpt
    run "$DUMP" none.ckpt
    assert_line "  dropout=0"
    refute_output --partial "weight_drop"
    for args in "--json -k 3" "--batch 20"; do
        run --separate-stderr "$LSTM_BIN/lstm-eval" -m awd.ckpt $args "$T/valid.win"
        assert_success
        a=${output//awd.ckpt/M}
        run --separate-stderr "$LSTM_BIN/lstm-eval" -m none.ckpt $args "$T/valid.win"
        assert_equal "$a" "${output//none.ckpt/M}"
    done
    assert_line --regexp "^perplexity $best \\(nll .*, stateful, batch 20\\)"
    assert_equal "$("$LSTM_BIN/lstm-sample" -m awd.ckpt --suggest 3 'w3 w4 ')" "$("$LSTM_BIN/lstm-sample" -m none.ckpt --suggest 3 'w3 w4 ')"
}

@test "--valid with another tokenizer is refused" {
    run --separate-stderr "$TRAIN" -q $SMALL --valid "$T/other.win" "$T/cyc.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-train: $T/other.win: tokenizer does not match $T/cyc.win's: tokenize it with lstm-tok -m <vocab or checkpoint>"
}

@test "resume: 2 epochs equal 1 epoch + resume 1, bit for bit" {
    "$TRAIN" -q $SMALL --epochs 2 -o full.ckpt "$T/cyc.win"
    "$TRAIN" -q $SMALL --epochs 1 -o half.ckpt "$T/cyc.win"
    one=$(params_sum half.ckpt.last)
    "$TRAIN" -q --resume half.ckpt.last --epochs 2 --threads 1 "$T/cyc.win"
    a=$(params_sum full.ckpt.last) b=$(params_sum half.ckpt.last)
    [ -n "$a" ]
    assert_equal "$b" "$a"
    # optimizer moments too
    assert_equal "$("$DUMP" half.ckpt.last | awk '$1 == "optim.v" { print $NF }')" \
                 "$("$DUMP" full.ckpt.last | awk '$1 == "optim.v" { print $NF }')"
    # and the resumed epoch did train: the weights moved from the one-epoch state
    [ "$one" != "$a" ]
}

@test "resume refuses windows made with another tokenizer" {
    "$TRAIN" -q $SMALL --epochs 1 -o m.ckpt "$T/cyc.win"
    run --separate-stderr "$TRAIN" -q --resume m.ckpt.last "$T/other.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-train: $T/other.win: tokenizer does not match the checkpoint m.ckpt.last's: tokenize with lstm-tok -m m.ckpt.last"
}

@test "SIGINT mid-epoch saves the state, exits 130, and the resumed run equals an uninterrupted one" {
    "$TRAIN" -q $SMALL --epochs 1 --batch 4 --valid-frac 0 -o straight.ckpt "$T/big.win"
    "$TRAIN" -q $SMALL --epochs 1 --batch 4 --valid-frac 0 -o cut.ckpt --log cut.tsv --log-every 1 "$T/big.win" &
    pid=$!
    # wait until some steps are done (the log has rows), then interrupt
    for i in $(seq 1 200); do [ "$(grep -c '^step' cut.tsv 2> /dev/null)" -ge 20 ] && break; sleep 0.05; done
    kill -INT $pid
    status=0
    wait $pid || status=$?
    assert_equal "$status" 130
    [ -f cut.ckpt.last ]
    [ ! -e cut.ckpt ]
    run "$DUMP" cut.ckpt.last
    assert_output --partial 'state.h'
    refute_output --regexp 'step=0$'
    "$TRAIN" -q --resume cut.ckpt.last --threads 1 "$T/big.win"
    assert_equal "$(params_sum cut.ckpt)" "$(params_sum straight.ckpt)"
}

@test "a NaN loss stops training with a clear message and keeps the last good checkpoint" {
    "$TRAIN" -q $SMALL --optim sgd --lr 1 --epochs 1 -o good.ckpt "$T/cyc.win"
    before=$(params_sum good.ckpt)
    run --separate-stderr "$TRAIN" -q --resume good.ckpt.last --lr 1e30 --clip 0 --epochs 3 "$T/cyc.win"
    assert_failure 1
    [[ "$stderr" == *"is NaN/Inf at epoch 2"*"stopping; good.ckpt kept the last good model (try a lower --lr or --clip)" ]]
    assert_equal "$(params_sum good.ckpt)" "$before"
    run "$DUMP" good.ckpt
    assert_success
}

@test "an input above the memory budget is streamed each epoch, with the same result as in memory" {
    "$TRAIN" -q $SMALL --epochs 2 --batch 8 -o mem.ckpt "$T/big.win"
    run --separate-stderr "$TRAIN" $SMALL --epochs 2 --batch 8 --mem-budget 1 -o str.ckpt "$T/big.win"
    assert_success
    [[ "$stderr" == *"(next-token, streamed)"* ]]
    assert_equal "$(params_sum str.ckpt.last)" "$(params_sum mem.ckpt.last)"
}

@test "--log writes a TSV with per-step and per-epoch rows and per-tensor gradient norms" {
    "$TRAIN" -q $SMALL --epochs 3 --log run.tsv --log-every 10 "$T/cyc.win"
    head -1 run.tsv | grep -q $'^kind\tepoch\tstep\ttokens\telapsed_s\tlr\tloss\tppl\tvalid_loss\tvalid_ppl\tgrad_norm\ttok_per_s\tgn:emb\tgn:l0.w_ih'
    assert_equal "$(grep -c '^epoch' run.tsv)" 3
    [ "$(grep -c '^step' run.tsv)" -ge 3 ]
    # every step row has finite numbers for loss and the gradient norms
    awk -F'\t' '$1 == "step" { if ($7 + 0 <= 0 || $13 + 0 <= 0) bad = 1 } END { exit bad }' run.tsv
}

@test "--time-limit stops training early and still saves" {
    run --separate-stderr "$TRAIN" $SMALL --epochs 1000 --time-limit 0.5 "$T/big.win"
    assert_success
    [[ "$stderr" == *"time limit reached"* ]]
    [ -f model.ckpt ]
}

@test "--seed makes runs reproducible and different seeds differ" {
    "$TRAIN" -q $SMALL --epochs 1 --seed 7 -o a.ckpt "$T/cyc.win"
    "$TRAIN" -q $SMALL --epochs 1 --seed 7 -o b.ckpt "$T/cyc.win"
    "$TRAIN" -q $SMALL --epochs 1 --seed 8 -o c.ckpt "$T/cyc.win"
    assert_equal "$(params_sum a.ckpt)" "$(params_sum b.ckpt)"
    [ "$(params_sum a.ckpt)" != "$(params_sum c.ckpt)" ]
}

@test "a checkpoint with one flipped bit is rejected" {
    "$TRAIN" -q $SMALL --epochs 1 -o m.ckpt "$T/cyc.win"
    cp m.ckpt.last flip.ckpt
    printf '\x01' | dd of=flip.ckpt bs=1 seek=5000 conv=notrunc 2> /dev/null
    run --separate-stderr "$TRAIN" --resume flip.ckpt -o x.ckpt "$T/cyc.win"
    assert_failure 1
    assert_equal "$stderr" 'lstm-train: flip.ckpt: corrupted data (checksum mismatch)'
}

@test "lstm-tok -m model.ckpt reuses the checkpoint's vocabulary" {
    "$TRAIN" -q $SMALL --epochs 1 -o m.ckpt "$T/cyc.win"
    "$TOK" -m m.ckpt "$T/cyc.txt" | "$WIN" -L 10 > again.win
    diff <("$DUMP" --ids again.win | sed -n '/^records:/,$p') <("$DUMP" --ids "$T/cyc.win" | sed -n '/^records:/,$p')
    # and the windows resume training on that checkpoint
    run "$TRAIN" -q --resume m.ckpt.last --epochs 2 again.win
    assert_success
}

# Prints the values of one tensor of a checkpoint (formats/checkpoint.md), one per line.
tensor_values() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
n, off = struct.unpack_from("<I", d, 24)[0], struct.unpack_from("<Q", d, 32)[0]
for _ in range(n):
    typ, nl = d[off], d[off + 1]
    name = d[off + 2:off + 2 + nl].decode(); off += 2 + nl
    nd = d[off]; off += 1 + 8 * nd
    o, nb = struct.unpack_from("<QQ", d, off); off += 16
    if name == sys.argv[2]:
        print("\n".join("%.9g" % v for v in struct.unpack_from("<%df" % (nb // 4), d, o)))
PY
}

@test "--schedule cosine with --warmup, --schedule step, --forget-bias and --weight-decay reach the model" {
    # cosine: a linear warm-up to lr over 5 steps, then down to 0 at the end of the last epoch
    "$TRAIN" -q $SMALL --optim sgd --lr 2 --schedule cosine --warmup 5 --epochs 2 --log-every 1 --log cos.tsv "$T/cyc.win"
    awk -F'\t' '$1 == "step" { n++; lr[n] = $6 } END {
        if (n < 20 || lr[1] != 0.4 || lr[5] != 2) exit 1            # steps 0..4: 2 * (s + 1) / 5
        for (i = 6; i <= n; i++) if (lr[i] > lr[i - 1]) exit 1       # then never rises
        if (lr[n] > 0.01 || lr[int(n / 2) + 3] > 1.2 || lr[int(n / 2) + 3] < 0.8) exit 1 }' cos.tsv
    # step: constant through --decay-after epochs, then divided by --lr-decay each epoch
    "$TRAIN" -q $SMALL --optim sgd --lr 1 --decay-after 1 --lr-decay 4 --epochs 3 --log-every 1 --log step.tsv -f "$T/cyc.win"
    assert_equal "$(awk -F'\t' '$1 == "step" { print $2, $6 }' step.tsv | sort -u | tr '\n' ' ')" "1 1 2 0.25 3 0.0625 "
    # the forget-gate block of b_ih (rows H..2H-1 of i, f, g, o) starts at --forget-bias; the others at 0
    "$TRAIN" -q $SMALL --optim sgd --lr 1e-12 --forget-bias 3 --epochs 1 -f -o fb.ckpt "$T/cyc.win"
    # (an lr of 1e-12 moves them by less than 1e-6)
    tensor_values fb.ckpt l1.b_ih | awk '{ x = $1 + 0; printf "%.6f\n", (x > -1e-6 && x < 1e-6) ? 0 : x }' > fb.txt
    assert_equal "$(awk 'NR > 16 && NR <= 32' fb.txt | sort -u)" "3.000000"
    assert_equal "$(awk 'NR <= 16 || NR > 32' fb.txt | sort -u)" "0.000000"
    assert_equal "$(wc -l < fb.txt)" 64
    # weight decay pulls the weights toward 0
    "$TRAIN" -q $SMALL --optim adamw --epochs 1 -f -o wd0.ckpt "$T/cyc.win"
    "$TRAIN" -q $SMALL --optim adamw --weight-decay 5 --epochs 1 -f -o wd5.ckpt "$T/cyc.win"
    n0=$(tensor_values wd0.ckpt l0.w_hh | awk '{ s += $1 * $1 } END { print s }')
    n5=$(tensor_values wd5.ckpt l0.w_hh | awk '{ s += $1 * $1 } END { print s }')
    awk -v a="$n0" -v b="$n5" 'BEGIN { exit !(b < 0.9 * a) }'
}

@test "resume without --valid reopens the saved validation file and keeps the best model" {
    cp "$T/valid.win" v.win
    "$TRAIN" -q $SMALL --epochs 2 --lr 0.01 --valid v.win -o m.ckpt "$T/cyc.win"
    best=$(params_sum m.ckpt)
    # saved absolute, so a resume from another directory finds it
    assert_equal "$("$DUMP" m.ckpt.last | sed -n 's/^ *valid=//p')" "$(realpath v.win)"
    mkdir sub
    # a huge lr makes the next epochs worse: without validation data, -o would take them
    run --separate-stderr bash -c "cd sub && '$TRAIN' --resume ../m.ckpt.last --lr 1 --schedule const --epochs 4 \
        --patience 0 --threads 1 '$T/cyc.win'"
    assert_success
    [[ "$stderr" != *"no validation data"* ]]
    [[ "$stderr" == *"epoch 3/4: train loss"*"| valid loss"*"epoch 4/4: train loss"*"| valid loss"* ]]
    [[ "$stderr" == *"best valid ppl "*" (epoch 2) saved to ../m.ckpt; "* ]]
    assert_equal "$(params_sum m.ckpt)" "$best"
    # a file that no longer opens is a clear error
    abs=$(realpath v.win)
    rm v.win
    run --separate-stderr "$TRAIN" -q --resume m.ckpt.last --epochs 5 "$T/cyc.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-train: $abs: No such file or directory (the validation windows of m.ckpt.last: give --valid FILE or --valid-frac F)"
    # ...and --valid-frac instead replaces it; a checkpoint without --valid has no such key
    run --separate-stderr "$TRAIN" --resume m.ckpt.last --valid-frac 0.1 --epochs 5 "$T/cyc.win"
    assert_success
    [[ "$stderr" == *"cyc.win: 689 windows of 10"*"epoch 5/5: "*"| valid loss"* ]]
    assert_equal "$("$DUMP" m.ckpt.last | grep -c '^ *valid=')" 0
}

@test "resume: model-shape flags, --init-scale, --forget-bias and --seed cannot change" {
    "$TRAIN" -q $SMALL --epochs 1 -o m.ckpt "$T/cyc.win"
    shape="(the checkpoint's model is lstm 2x16, emb 16, tied)"
    for args in "--hidden 32:--hidden" "--hid 32:--hidden" "--layers 3:--layers" "--cell gru:--cell" \
                "--no-tie:--no-tie" "--emb 8 --hidden 16:--emb"; do
        run --separate-stderr "$TRAIN" -q --resume m.ckpt.last ${args%%:*} --epochs 2 "$T/cyc.win"
        assert_failure 2
        assert_equal "$stderr" "lstm-train: ${args##*:} cannot change when resuming $shape"
    done
    run --separate-stderr "$TRAIN" -q --resume m.ckpt.last --init-scale 0.5 "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --init-scale cannot change when resuming (the checkpoint's model was initialised with --init-scale 0.1)"
    run --separate-stderr "$TRAIN" -q --resume m.ckpt.last --forget-bias 2 "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --forget-bias cannot change when resuming (the checkpoint's model was initialised with --forget-bias 1)"
    run --separate-stderr "$TRAIN" -q --resume m.ckpt.last --seed 9 "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --seed cannot change when resuming (the checkpoint continues the random stream of --seed 1)"
    # the same values again are fine (the same command line plus --resume)
    run --separate-stderr "$TRAIN" -q --resume m.ckpt.last $SMALL --tie --cell lstm --init-scale 0.1 --forget-bias 1 \
        --seed 1 --epochs 2 "$T/cyc.win"
    assert_success
}

@test "resume: --warmup, --dropout, --reset-state and --valid-frac given again take the new value" {
    "$TRAIN" -q $SMALL --epochs 1 -o m.ckpt "$T/cyc.win"
    g=$("$DUMP" m.ckpt.last | sed -n 's/^ *global_step=//p')
    run --separate-stderr "$TRAIN" --resume m.ckpt.last --warmup 100 --dropout 0.5 --reset-state --valid-frac 0.5 \
        --epochs 2 --log-every 1 --log w.tsv "$T/cyc.win"
    assert_success
    # half of the 765 windows held out, and the new dropout
    [[ "$stderr" == *"cyc.win: 383 windows of 10"*"dropout 0.5,"* ]]
    # the warm-up counts global steps: the first resumed step (global step g) runs at lr * (g + 1) / 100
    assert_equal "$(awk -F'\t' '$1 == "step" { print $6; exit }' w.tsv)" "$(awk -v g="$g" 'BEGIN { printf "%.6g", 0.002 * (g + 1) / 100 }')"
    run "$DUMP" m.ckpt.last
    assert_output --partial 'dropout=0.5'
    assert_output --partial 'reset_state=1'
    assert_output --partial 'warmup=100'
    assert_output --partial 'valid_frac=0.5'
}

@test "a NaN stop names the lr of the failing step" {
    "$TRAIN" -q $SMALL --optim sgd --lr 1 --epochs 1 -o good.ckpt "$T/cyc.win"
    g=$("$DUMP" good.ckpt.last | sed -n 's/^ *global_step=//p')
    # with a warm-up the lr changes every step, so the previous step's lr would show
    run --separate-stderr "$TRAIN" -q --resume good.ckpt.last --lr 1e30 --clip 0 --warmup 1000 --epochs 3 "$T/cyc.win"
    assert_failure 1
    step=$(sed -n 's/.* is NaN\/Inf at epoch 2 step \([0-9]*\) (lr .*/\1/p' <<< "$stderr")
    [ -n "$step" ]
    lr=$(awk -v s="$((g + step))" 'BEGIN { printf "%g", 1e30 * (s + 1) / 1000 }')
    [[ "$stderr" == *" at epoch 2 step $step (lr $lr): stopping; good.ckpt kept the last good model (try a lower --lr or --clip)" ]]
}

@test "a NaN validation loss at the end of an epoch stops without saving over the good checkpoints" {
    "$TRAIN" -q $SMALL --epochs 1 -o m.ckpt "$T/cyc.win"
    # one step per epoch at a huge lr: the step's own loss is finite, its update is not
    "$TRAIN" -q --resume m.ckpt.last --batch 1000 --lr 1e30 --clip 0 --schedule const --epochs 2 "$T/cyc.win"
    best=$(params_sum m.ckpt) last=$(params_sum m.ckpt.last)
    run --separate-stderr "$TRAIN" -q --resume m.ckpt.last --epochs 3 "$T/cyc.win"
    assert_failure 1
    assert_equal "$stderr" 'lstm-train: validation loss is NaN/Inf at the end of epoch 3 (lr 1e+30): stopping; m.ckpt kept the last good model (try a lower --lr or --clip)'
    assert_equal "$(params_sum m.ckpt)" "$best"
    assert_equal "$(params_sum m.ckpt.last)" "$last"
}

@test "SIGINT during validation exits 130 with the state saved, and the resumed run equals an uninterrupted one" {
    t0=$(date +%s.%N)
    "$TRAIN" -q $SMALL --batch 1 --epochs 2 --valid "$T/bigvalid.win" -o straight.ckpt "$T/tiny.win"
    # an epoch's steps take milliseconds and its validation the rest: the uninterrupted run's time sets
    # the waits (a sanitizer build is ten times slower)
    epoch=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", (b - a) / 2 }')
    "$TRAIN" -q $SMALL --batch 1 --epochs 2 --valid "$T/bigvalid.win" -o cut.ckpt "$T/tiny.win" 2> cut.err &
    pid=$!
    # epoch 1 is saved (.last is written after -o); then a quarter into epoch 2's validation
    n=$(awk -v e="$epoch" 'BEGIN { printf "%d", 50 * (4 * e + 10) }')
    for i in $(seq 1 "$n"); do [ -f cut.ckpt.last ] && break; sleep 0.02; done
    [ -f cut.ckpt.last ]
    sleep "$(awk -v e="$epoch" 'BEGIN { printf "%.3f", e / 4 }')"
    kill -INT $pid
    status=0
    wait $pid || status=$?
    assert_equal "$status" 130
    grep -Eq '^lstm-train: interrupted (at|after) epoch 2.*: state saved to cut.ckpt.last \(continue with --resume cut.ckpt.last\)$' cut.err
    "$TRAIN" -q --resume cut.ckpt.last --threads 1 "$T/tiny.win"
    assert_equal "$(params_sum cut.ckpt.last)" "$(params_sum straight.ckpt.last)"
    assert_equal "$(params_sum cut.ckpt)" "$(params_sum straight.ckpt)"
}

@test "--patience stops early and -o keeps the epoch with the best validation loss" {
    "$TRAIN" -q $SMALL --epochs 2 --lr 0.01 -o m.ckpt "$T/cyc.win"
    best=$(params_sum m.ckpt)
    # a huge lr makes every later epoch worse on the held-out windows
    run --separate-stderr "$TRAIN" --resume m.ckpt.last --lr 1 --schedule const --epochs 10 --patience 2 --threads 1 \
        --log e.tsv "$T/cyc.win"
    assert_success
    [[ "$stderr" == *"no validation improvement for 2 epochs: stopping early"*"best valid ppl "*" (epoch 2) saved to m.ckpt; "* ]]
    assert_equal "$(awk -F'\t' '$1 == "epoch" { printf "%s ", $2 }' e.tsv)" "3 4 "
    assert_equal "$(params_sum m.ckpt)" "$best"
    run "$DUMP" m.ckpt.last
    assert_output --partial 'best_epoch=2'
    assert_output --partial 'epoch=5'
    # resumed into another -o that no epoch improves on: said so, and no file claimed
    run --separate-stderr "$TRAIN" --resume m.ckpt.last --lr 1 --schedule const --epochs 7 --patience 0 --threads 1 \
        -o other.ckpt "$T/cyc.win"
    assert_success
    [[ "$stderr" == *"best valid ppl "*" (epoch 2, before the resume) not beaten: other.ckpt not written; "* ]]
    [ ! -e other.ckpt ]
    [ -f other.ckpt.last ]
}

@test "--no-tie writes an out.w tensor, --tie none" {
    "$TRAIN" -q $SMALL --no-tie --epochs 1 -o untied.ckpt "$T/cyc.win"
    "$TRAIN" -q $SMALL --tie --epochs 1 -o tied.ckpt "$T/cyc.win"
    run "$DUMP" untied.ckpt
    assert_output --regexp $'\n  out\\.w +f32 \\(24x16\\)'
    assert_output --partial 'tie=0'
    run "$DUMP" tied.ckpt
    refute_output --partial 'out.w'
    assert_output --partial 'tie=1'
}

@test "gru and rnn learn the cyc language" {
    for cell in gru rnn; do
        "$TRAIN" -q $SMALL --cell $cell --epochs 3 --lr 0.01 --dropout 0 -o $cell.ckpt --log $cell.tsv "$T/cyc.win"
        # the last epoch's train loss well below the first's (about 2.8 -> 1.1 for gru, 0.6 for rnn)
        learned $cell.tsv 3
    done
}

@test "cifg: learns the cyc language with a quarter fewer recurrent weights; eval, sample and inspect read it" {
    "$TRAIN" -q $SMALL --cell cifg --epochs 3 --lr 0.01 --dropout 0 -o cifg.ckpt --log cifg.tsv "$T/cyc.win"
    learned cifg.tsv 3
    run "$DUMP" cifg.ckpt
    assert_output --partial 'cell=cifg'
    assert_output --regexp $'\n  l0\.w_ih +f32 \(48x16\)'
    assert_output --regexp $'\n  l1\.w_hh +f32 \(48x16\)'
    # w3 follows w2 in the cyc language: the model has learned it
    suggests_w3 cifg.ckpt
    run --separate-stderr "$LSTM_BIN/lstm-eval" -m cifg.ckpt "$T/cyc.win"
    assert_success
    assert_output --regexp '^perplexity [0-9.]+ '
    run --separate-stderr "$LSTM_BIN/lstm-inspect" gates -m cifg.ckpt --tsv "w3 w4 w5"
    assert_success
    assert_line --index 0 $'pos\ttoken\tl0.forget\tl0.out\tl1.forget\tl1.out'
}

@test "lnlstm: learns the cyc language; l<k>.ln saved, resumed, exported; eval, sample, inspect and the one-step path read it" {
    "$TRAIN" -q $SMALL --cell lnlstm --epochs 3 --lr 0.01 --dropout 0 -o ln.ckpt --log ln.tsv "$T/cyc.win"
    learned ln.tsv 3
    run "$DUMP" ln.ckpt
    assert_output --partial 'cell=lnlstm'
    # gains g_x, g_h (4H each), g_c and shift b_c (H each): 10 x 16
    assert_output --regexp $'\n  l0\.ln +f32 \(160\)'
    assert_output --regexp $'\n  l1\.ln +f32 \(160\)'
    suggests_w3 ln.ckpt
    # lstm-eval reads it: a perplexity between 1 and 3 (runs of consecutive words, each run ends at random)
    a=$("$LSTM_BIN/lstm-eval" --json -m ln.ckpt --batch 1 "$T/cyc.win")
    run python3 -c 'import json, sys; a = json.loads(sys.argv[1]); assert 1.0 < a["perplexity"] < 3.0, a' "$a"
    assert_success
    run --separate-stderr "$LSTM_BIN/lstm-inspect" gates -m ln.ckpt --tsv "w3 w4 w5"
    assert_success
    assert_line --index 0 $'pos\ttoken\tl0.in\tl0.forget\tl0.out\tl1.in\tl1.forget\tl1.out'
    # an int8 export (recurrent weights too) keeps the LayerNorm parameters in fp32: within 1%
    "$LSTM_BIN/lstm-export" -q -m ln.ckpt -o ln.lstm --quantize int8 --quantize-recurrent
    b=$("$LSTM_BIN/lstm-eval" --json -m ln.lstm --batch 1 "$T/cyc.win")
    run python3 -c 'import json, sys; a, b = (json.loads(x) for x in sys.argv[1:]); assert abs(b["perplexity"] / a["perplexity"] - 1) < 0.01, (a, b)' "$a" "$b"
    assert_success
    run --separate-stderr "$TRAIN" -q --threads 1 --resume ln.ckpt --epochs 4 -o ln2.ckpt "$T/cyc.win"
    assert_success
    run "$DUMP" ln2.ckpt
    assert_output --partial 'cell=lnlstm'
    run --separate-stderr "$TRAIN" --cell lnlstm --peephole "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --peephole: only with --cell lstm (got --cell lnlstm)"
}

@test "--peephole: learns the cyc language; the peepholes are saved, resumed, exported and read back" {
    "$TRAIN" -q $SMALL --peephole --epochs 3 --lr 0.01 --dropout 0 -o peep.ckpt --log peep.tsv "$T/cyc.win"
    learned peep.tsv 3
    run "$DUMP" peep.ckpt
    assert_output --partial 'peephole=1'
    assert_output --regexp $'\n  l0\.peep +f32 \(48\)'
    assert_output --regexp $'\n  l1\.peep +f32 \(48\)'
    suggests_w3 peep.ckpt
    # an export with every matrix quantized keeps the peepholes (fp32) beside the layers it maps
    "$LSTM_BIN/lstm-export" -q -m peep.ckpt -o peep.lstm --quantize int8 --quantize-recurrent
    a=$("$LSTM_BIN/lstm-eval" --json -m peep.ckpt "$T/cyc.win")
    b=$("$LSTM_BIN/lstm-eval" --json -m peep.lstm "$T/cyc.win")
    run python3 -c 'import json, sys; a, b = (json.loads(x) for x in sys.argv[1:]); assert abs(b["perplexity"] / a["perplexity"] - 1) < 0.01, (a, b)' "$a" "$b"
    assert_success
    run --separate-stderr "$TRAIN" -q --threads 1 --resume peep.ckpt --epochs 4 -o peep2.ckpt "$T/cyc.win"
    assert_success
    run "$DUMP" peep2.ckpt
    assert_output --partial 'peephole=1'
    run --separate-stderr "$TRAIN" -q $SMALL --epochs 1 -o plain.ckpt "$T/cyc.win"
    run --separate-stderr "$TRAIN" -q --resume plain.ckpt --peephole -o x.ckpt "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --peephole cannot change when resuming (the checkpoint's model is lstm 2x16, emb 16, tied, without peepholes)"
    run --separate-stderr "$TRAIN" --cell gru --peephole "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --peephole: only with --cell lstm (got --cell gru)"
}

@test "--attention: learns the cyc language; att.* and the carried memory are saved, resumed mid-epoch, exported and read back" {
    # (5 epochs: at init h* = tanh(W^r r + W^x h) is a small projection of h, a slower start than the LSTM's 3)
    "$TRAIN" -q $SMALL --attention 5 --epochs 5 --lr 0.01 --dropout 0 -o att.ckpt --log att.tsv "$T/cyc.win"
    learned att.tsv 5
    run "$DUMP" att.ckpt
    assert_output --partial 'attention=5'
    assert_output --regexp $'\n  att\.wy +f32 \(16x16\)'
    assert_output --regexp $'\n  att\.w +f32 \(16\)'
    assert_output --regexp $'\n  att\.wx +f32 \(16x16\)'
    suggests_w3 att.ckpt
    run --separate-stderr "$LSTM_BIN/lstm-sample" -m att.ckpt --complete 3 --temperature 0 "w5 w6 "
    assert_success
    assert_output --regexp '^w7 w8 '
    a=$("$LSTM_BIN/lstm-eval" --json -m att.ckpt --batch 1 "$T/cyc.win")
    run python3 -c 'import json, sys; a = json.loads(sys.argv[1]); assert 1.0 < a["perplexity"] < 3.0, a' "$a"
    assert_success
    # an int8 export keeps the attention in fp32: within 1%
    "$LSTM_BIN/lstm-export" -q -m att.ckpt -o att.lstm --quantize int8 --quantize-recurrent
    b=$("$LSTM_BIN/lstm-eval" --json -m att.lstm --batch 1 "$T/cyc.win")
    run python3 -c 'import json, sys; a, b = (json.loads(x) for x in sys.argv[1:]); assert abs(b["perplexity"] / a["perplexity"] - 1) < 0.01, (a, b)' "$a" "$b"
    assert_success
    # stopped mid-epoch, the memory is part of the saved state, and the resumed run equals an uninterrupted one
    "$TRAIN" -q $SMALL --attention 5 --epochs 1 --batch 4 --valid-frac 0 -o straight.ckpt "$T/big.win"
    "$TRAIN" -q $SMALL --attention 5 --epochs 1 --batch 4 --valid-frac 0 -o cut.ckpt --log cut.tsv --log-every 1 "$T/big.win" &
    pid=$!
    for i in $(seq 1 200); do [ "$(grep -c '^step' cut.tsv 2> /dev/null)" -ge 20 ] && break; sleep 0.05; done
    kill -INT $pid
    status=0
    wait $pid || status=$?
    assert_equal "$status" 130
    run "$DUMP" cut.ckpt.last
    assert_output --partial 'state.mem'
    assert_output --partial 'state.mlen'
    "$TRAIN" -q --resume cut.ckpt.last --threads 1 "$T/big.win"
    assert_equal "$(params_sum cut.ckpt)" "$(params_sum straight.ckpt)"
    run --separate-stderr "$TRAIN" -q --resume att.ckpt --attention 4 --epochs 6 -o x.ckpt "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --attention cannot change when resuming (the checkpoint's model is lstm 2x16, emb 16, tied, --attention 5)"
    run --separate-stderr "$TRAIN" $SMALL --attention 65 "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --attention: expected an integer from 0 to 64, got '65'"
    run --separate-stderr "$TRAIN" $SMALL --attention -1 "$T/cyc.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --attention: expected an integer from 0 to 64, got '-1'"
}

@test "the per-epoch line has train and valid loss and ppl, lr, tok/s and the elapsed time" {
    run --separate-stderr "$TRAIN" $SMALL --epochs 2 "$T/cyc.win"
    assert_success
    n='[0-9]+\.[0-9]'
    [[ "$(sed -n 2p <<< "$stderr")" =~ ^lstm-train:\ epoch\ 1/2:\ train\ loss\ ${n}{4}\ ppl\ ${n}{2}\ \|\ valid\ loss\ ${n}{4}\ ppl\ ${n}{2}(\ \*)?\ \|\ lr\ 0\.002\ \|\ [0-9]+\ tok/s\ \|\ ${n}s$ ]]
    [[ "$(sed -n 3p <<< "$stderr")" =~ ^lstm-train:\ epoch\ 2/2:\ train\ loss ]]
    run --separate-stderr "$TRAIN" $SMALL --epochs 1 --valid-frac 0 -o nv.ckpt "$T/cyc.win"
    [[ "$(sed -n 2p <<< "$stderr")" =~ ^lstm-train:\ epoch\ 1/1:\ train\ loss\ ${n}{4}\ ppl\ ${n}{2}\ \|\ lr\ 0\.002\ \|\ [0-9]+\ tok/s\ \|\ ${n}s$ ]]
}

@test "a progress line with the ETA appears only when stderr is a terminal" {
    run script -qec "'$TRAIN' $SMALL --epochs 1 -o p.ckpt '$T/cyc.win'" /dev/null
    assert_success
    assert_output --regexp $'\rlstm-train: epoch 1/1 +[0-9.]+% loss [0-9.]+ ppl [0-9.]+ lr 0.002 [0-9]+ tok/s ETA [0-9.]+s'
    run --separate-stderr "$TRAIN" $SMALL --epochs 1 -f -o p.ckpt "$T/cyc.win"
    [[ "$stderr" != *ETA* ]]
}

# Ink (a pixel darker than light grey) within 3 pixels of the edge of each PNG: a label cut at the
# figure's edge (a cut can fall between two letters, hence the band). Prints "FILE: x X y Y" per figure
# with any; a minimal PNG decoder (8-bit RGB or RGBA, not interlaced, as pngcairo writes), so that the
# test needs nothing beyond python3.
png_edge_ink() {
    python3 - "$@" <<'PYEOF'
import struct, sys, zlib
for path in sys.argv[1:]:
    d = open(path, 'rb').read()
    assert d[:8] == b'\x89PNG\r\n\x1a\n', path
    pos, idat = 8, []
    while pos < len(d):
        n, t = struct.unpack('>I4s', d[pos:pos + 8])
        if t == b'IHDR': w, h, bd, ct, _, _, il = struct.unpack('>IIBBBBB', d[pos + 8:pos + 21])
        if t == b'IDAT': idat.append(d[pos + 8:pos + 8 + n])
        pos += 12 + n
    assert bd == 8 and il == 0 and ct in (2, 6), (path, bd, ct, il)
    bpp = 3 if ct == 2 else 4
    raw, stride, prev, hit = zlib.decompress(b''.join(idat)), w * bpp, bytearray(w * bpp), None
    for y in range(h):
        o = y * (stride + 1)
        f, line = raw[o], bytearray(raw[o + 1:o + 1 + stride])
        for i in range(stride):  # undo the row filter (PNG spec, section 9)
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in (range(w) if y < 3 or y >= h - 3 else (0, 1, 2, w - 3, w - 2, w - 1)):
            px = line[x * bpp:x * bpp + bpp]
            if hit is None and min(px[:3]) < 160 and (bpp == 3 or px[3] > 64): hit = (x, y)
        prev = line
    if hit: print(f"{path}: x {hit[0]} y {hit[1]}")
PYEOF
}

# The title of a gnuplot SVG: the text that starts with $2.
svg_title() { grep -o ">$2[^<]*" "$1" | sed 's/^>//'; }

@test "figures: plot_curves.gp and plot_gates.gp title the run, not a path, and no label is cut at the edge" {
    local EX="$BATS_TEST_DIRNAME/../examples"
    command -v gnuplot > /dev/null || "$EX/need-gnuplot.sh"
    mkdir -p logs/run.d
    "$TRAIN" -q $SMALL --epochs 3 --valid-frac 0.1 --log-every 10 --log logs/run.d/cyc-adam.tsv -o m.ckpt "$T/cyc.win"
    # the run defaults to the log's file name without directory and extension
    gnuplot -e "log='logs/run.d/cyc-adam.tsv'; out='curves'" "$EX/plot_curves.gp"
    assert_equal "$(svg_title curves.svg 'training curves')" 'training curves: cyc-adam'
    gnuplot -e "log='logs/run.d/cyc-adam.tsv'; out='named'; run='cyc, Adam (2x16)'" "$EX/plot_curves.gp"
    assert_equal "$(svg_title named.svg 'training curves')" 'training curves: cyc, Adam (2x16)'
    # a run in the millions of tokens, with a long matrix name in the key: labels still inside
    awk -F'\t' 'BEGIN { OFS = "\t" } NR == 1 { print $0, "gn:l10.w_hh_of_a_long_name"; next } { $4 *= 950; print $0, $13 }' \
        logs/run.d/cyc-adam.tsv > big.tsv
    gnuplot -e "log='big.tsv'; out='big'" "$EX/plot_curves.gp"
    "$LSTM_BIN/lstm-inspect" gates -m m.ckpt --tsv "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15" > logs/run.d/gates-cyc.tsv
    gnuplot -e "tsv='logs/run.d/gates-cyc.tsv'; out='gates'" "$EX/plot_gates.gp"
    assert_equal "$(svg_title gates.svg 'gate activations')" 'gate activations per token: gates-cyc'
    # long tokens, the first one hanging left of the heat map (and an underscore, not a subscript)
    awk -F'\t' 'BEGIN { OFS = "\t" } NR == 2 { $2 = "<a_speaker_with_a_rather_long_name>" } NR == 4 { $2 = "internationalization" } { print }' \
        logs/run.d/gates-cyc.tsv > long.tsv
    gnuplot -e "tsv='long.tsv'; out='long'; run='cyc'" "$EX/plot_gates.gp"
    assert_equal "$(svg_title long.svg 'gate activations')" 'gate activations per token: cyc'
    grep -q '<text>&lt;a_speaker_with_a_rather_long_name></text>' long.svg
    run png_edge_ink curves.png named.png big.png gates.png long.png
    assert_success
    assert_output ''
}
