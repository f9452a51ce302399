#!/usr/bin/env bats
# lstm-train against hostile use: hangs (the thread pool), signals, locks on -o, stale temps, the log's
# overwrite and write-error rules, outputs that cannot hold a checkpoint, padding-only data, huge --batch.

bats_require_minimum_version 1.5.0

setup_file() {
    export T="$BATS_FILE_TMPDIR"
    export TRAIN="$LSTM_BIN/lstm-train" EVAL="$LSTM_BIN/lstm-eval" TOK="$LSTM_BIN/lstm-tok" WIN="$LSTM_BIN/lstm-window"
    # 1,000 distinct words: the output layer of a 32-unit model is then large enough that its GEMMs are
    # split across the thread pool (the path that hung).
    awk 'BEGIN { srand(11); for (i = 0; i < 400; i++) { n = 5 + int(rand() * 10);
                 for (j = 0; j < n; j++) printf "w%d ", int(rand() * 1000); printf "\n" } }' > "$T/wide.txt"
    "$TOK" --split space --vocab-size 2000 "$T/wide.txt" | "$WIN" -L 10 > "$T/wide.win"
    awk 'BEGIN { srand(5); for (i = 0; i < 12000; i++) { n = 5 + int(rand() * 8); s = int(rand() * 50);
                 for (j = 0; j < n; j++) printf "w%d ", (s + j) % 50; printf "\n" } }' > "$T/big.txt"
    "$TOK" --split space "$T/big.txt" | "$WIN" -L 10 > "$T/big.win"
    "$TRAIN" -q --hidden 32 --layers 1 --epochs 1 --threads 1 -o "$T/wide.ckpt" "$T/wide.win"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

@test "200 short lstm-train runs (default threads and --threads 2..16) and 50 lstm-eval runs: none hangs" {
    # Under the sanitizers a run is ~10x slower: 40 and 10 runs there (test_pool covers the pool itself).
    nt=200 ne=50
    [ "${LSTM_SAN:-}" = 1 ] && nt=40 ne=10
    hung=0 failed=0
    for i in $(seq 1 $nt); do
        th=""
        [ $((i % 2)) = 0 ] && th="--threads $((2 + i % 15))"
        rc=0
        timeout -k 1 60 "$TRAIN" -q --hidden 32 --layers 1 --epochs 1 $th -f -o x.ckpt "$T/wide.win" 2>err || rc=$?
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then hung=$((hung + 1)); elif [ "$rc" != 0 ]; then failed=$((failed + 1)); cat err; fi
    done
    for i in $(seq 1 $ne); do
        rc=0
        timeout -k 1 60 "$EVAL" -m "$T/wide.ckpt" --threads $((2 + i % 7)) "$T/wide.win" >/dev/null 2>err || rc=$?
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then hung=$((hung + 1)); elif [ "$rc" != 0 ]; then failed=$((failed + 1)); cat err; fi
    done
    echo "# hung $hung, failed $failed of $((nt + ne)) runs" >&3
    [ "$hung" = 0 ]
    [ "$failed" = 0 ]
}

@test "--log: an existing file needs -f; naming the input, -o or its .last is refused; a write error exits 1" {
    cp "$T/wide.win" in.win
    sum=$(md5sum < in.win)
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 --log in.win -o a.ckpt in.win
    assert_failure 2
    assert_equal "$stderr" "lstm-train: --log names the training input (in.win): it would be overwritten"
    assert_equal "$(md5sum < in.win)" "$sum"
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 --log a.ckpt -o a.ckpt in.win
    assert_failure 2
    assert_equal "$stderr" "lstm-train: -o and --log name the same file (a.ckpt)"
    echo keep > old.tsv
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 --log old.tsv -o a.ckpt in.win
    assert_failure 1
    assert_equal "$stderr" "lstm-train: old.tsv: file exists (use -f to overwrite, or --log another file)"
    assert_equal "$(cat old.tsv)" "keep"
    [ ! -e a.ckpt ]
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 -f --log old.tsv -o a.ckpt in.win
    assert_success
    [ "$(head -c 4 old.tsv)" = kind ]
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 --log /dev/full -o b.ckpt in.win
    assert_failure 1
    assert_equal "$stderr" "lstm-train: /dev/full: No space left on device"
}

@test "-o - and -o /dev/null are refused (a checkpoint and its .last need real files); no file named -.last" {
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 -o - "$T/wide.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: -o -: a checkpoint and its .last training state need real files (give -o FILE)"
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 -o /dev/null "$T/wide.win"
    assert_failure 2
    assert_equal "$stderr" "lstm-train: /dev/null: a checkpoint and its .last training state need real files (give -o FILE)"
    [ ! -e ./-.last ]
    [ ! -e /dev/null.last ]
    [ -c /dev/null ]
}

@test "two trainers on one -o: the second is refused naming the first's pid; the first finishes and saves" {
    "$TRAIN" -q --hidden 32 --layers 1 --epochs 2 --threads 1 -o same.ckpt "$T/big.win" 2>first.err &
    pid=$!
    for _ in $(seq 100); do [ -s same.ckpt.lock ] && break; sleep 0.05; done
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 -f -o same.ckpt "$T/wide.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-train: same.ckpt: another process (pid $pid) is training into it"
    wait "$pid"
    [ -s same.ckpt ]
    [ -s same.ckpt.last ]
    [ ! -e same.ckpt.lock ]
    [ ! -s first.err ]
}

@test "stale temps: one whose writer is gone is removed, one a live process holds is kept" {
    echo partial > s.ckpt.tmp.AAAAAA
    echo partial > s.ckpt.tmp.BBBBBB
    flock s.ckpt.tmp.BBBBBB sleep 20 &
    holder=$!
    sleep 0.3
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 -o s.ckpt "$T/wide.win"
    assert_success
    [ ! -e s.ckpt.tmp.AAAAAA ]
    [ -e s.ckpt.tmp.BBBBBB ]
    kill "$holder"
}

@test "SIGHUP stops like SIGTERM: the state is saved and the run exits 130" {
    "$TRAIN" --hidden 64 --layers 1 --epochs 50 --threads 1 -o h.ckpt "$T/big.win" 2>err &
    pid=$!
    for _ in $(seq 200); do grep -q "epoch 1/50:" err && break; sleep 0.05; done
    kill -HUP "$pid"
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" = 130 ]
    grep -q "state saved to h.ckpt.last" err
    run "$LSTM_BIN/lstm-dump" h.ckpt.last
    assert_success
}

@test "a stop that outlasts the grace period (LSTM_STOP_GRACE) leaves with a message and no temp" {
    # One step of this model takes seconds: the signal arrives inside it and the grace of 1 s runs out.
    LSTM_STOP_GRACE=1 "$TRAIN" -q --hidden 1536 --layers 1 --batch 400 --epochs 1 --threads 1 --dropout 0 \
        -o g.ckpt "$T/big.win" 2>err &
    pid=$!
    sleep 3
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    cat err
    [ "$rc" = 130 ]
    grep -q "did not stop within the grace period after the signal: leaving now, without saving" err
    [ -z "$(ls g.ckpt* 2>/dev/null | grep -v '\.lock$')" ]
}

@test "windows whose targets are all padding: an error and no model saved" {
    # Documents of one word: each window's only target is </s> (id 3); set it to PAD, as a corrupted or
    # hand-made stream may have it.
    printf 'a\nb\nc\n' > one.txt
    "$TOK" --split space one.txt | "$WIN" -L 4 | zstd -dcq | python3 -c '
import sys; d = sys.stdin.buffer.read(); z = b"\0" * 12
assert d.count(z + b"\3\0\0\0" + z) == 3
sys.stdout.buffer.write(d.replace(z + b"\3\0\0\0" + z, z + b"\0\0\0\0" + z))' | zstd -q --check > pad.win
    run --separate-stderr "$TRAIN" -q --hidden 8 --layers 1 --epochs 1 --valid-frac 0 -o p.ckpt pad.win
    assert_failure 1
    assert_equal "$stderr" "lstm-train: pad.win: every target of the training windows is padding: nothing to train on, no model saved"
    [ ! -e p.ckpt ]
}

@test "--batch larger than the windows is capped, with a note" {
    n=$("$LSTM_BIN/lstm-dump" "$T/wide.win" | awk '$1 == "windows" { print $2; exit }')
    run --separate-stderr "$TRAIN" --hidden 8 --layers 1 --epochs 1 --valid-frac 0 --batch 65536 -o c.ckpt "$T/wide.win"
    assert_success
    echo "$stderr" | grep -q "lstm-train: --batch 65536 is more than the [0-9]* training windows: using [0-9]*"
}
