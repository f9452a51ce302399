#!/usr/bin/env bats
# lstm-serve's page (GET /) in a real browser: Debian's chromium, headless, through chromedriver and
# python3-selenium (tests/page_test.py types into the page key by key and checks what it shows and
# what the server counted). The server is started here on a port the kernel picks, with --log.

bats_require_minimum_version 1.5.0

setup_file() {
    export FIX="$BATS_TEST_DIRNAME/fixtures"
    export T="$BATS_FILE_TMPDIR"
    local B="$LSTM_BIN"
    "$B/lstm-tok" -q -o "$T/chat.tok" "$FIX/chat_small.csv" "$FIX/eval_chat.csv"
    "$B/lstm-window" -q -L 8 "$T/chat.tok" > "$T/chat.win"
    # trained to recite the fixtures (no held-out windows, a constant rate): its greedy completions
    # go on past the end of a word, so the page has a grey completion to show
    "$B/lstm-train" -q --hidden 64 --epochs 40 --valid-frac 0 --schedule const --lr 0.01 --threads 1 \
        -o "$T/chat.ckpt" "$T/chat.win"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    load 'serve_helpers'
    cd "$BATS_TEST_TMPDIR"
    SPID=
}

teardown() { serve_stop; }

start() { serve_start "$T/chat.ckpt" "$@"; }

@test "the page in headless chromium: chips as one types, Tab, 1-5, Esc, the grey completion, Enter, stale replies dropped; /v1/stats counts it" {
    start --log ev.jsonl
    run /usr/bin/python3 "$BATS_TEST_DIRNAME/page_test.py" "$U" --screenshot shot.png
    echo "$output"
    assert_success
    w=$(sed -n "s/^ok: Tab put '\([^']*\)' into.*/\1/p" <<< "$output")
    [ -n "$w" ]
    assert_line "ok: Tab put '$w' into the input: 'hi, i need help with my $w '"
    assert_line --partial "ok: keystrokes 24 with"
    assert_line --partial "ok: the late reply to 'thank' was dropped"
    # every event the page sent is a line of the log, and the server's count is the log's
    n=$(wc -l < ev.jsonl)
    [ "$n" -gt 20 ]
    run curl -s "${U}v1/stats"
    assert_output --partial "\"events\":$n,"
    run grep -c '"type":"accepted"' ev.jsonl
    assert_output 2
    # the screenshot is a PNG of the page's viewport: the window's width, its height less the browser's own
    run /usr/bin/python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(32); assert d[:8]==b"\x89PNG\r\n\x1a\n"; w,h=struct.unpack(">II", d[16:24]); print(w, 500 <= h <= 860)' shot.png
    assert_success
    assert_output "1180 True"
}

@test "the page with a plain text model: no speaker selector, chips, Tab, Enter, the turns as context" {
    "$LSTM_BIN/lstm-tok" -q "$FIX/ngram_train.txt" | "$LSTM_BIN/lstm-window" -q -L 8 > text.win
    "$LSTM_BIN/lstm-train" -q --hidden 32 --epochs 5 --threads 1 -o text.ckpt text.win
    serve_start text.ckpt
    run /usr/bin/python3 "$BATS_TEST_DIRNAME/page_test.py" "$U" --plain "the boat left the "
    echo "$output"
    assert_success
    assert_line --partial "ok: Enter sent the turn, no speaker named"
    run curl -s "${U}v1/stats"
    assert_output --partial '"accepted":1,'
}
