# chat_split DIR: the eval_chat fixture's words tokenizer (DIR/chat.vocab) and its split into 40 training
# and 8 validation turns, as CSV (DIR/train.csv, DIR/valid.csv) and windows of 8 (DIR/train.win,
# DIR/valid.win): the small chat data of eval.bats, cache.bats and adaptive.bats.
chat_split() {
    local d=$1 fix="$BATS_TEST_DIRNAME/fixtures/eval_chat.csv" B="$LSTM_BIN"
    "$B/lstm-tok" -q --vocab-out "$d/chat.vocab" "$fix" > /dev/null
    head -41 "$fix" > "$d/train.csv"
    { head -1 "$fix"; tail -8 "$fix"; } > "$d/valid.csv"
    "$B/lstm-tok" -q -m "$d/chat.vocab" "$d/train.csv" | "$B/lstm-window" -q -L 8 > "$d/train.win"
    "$B/lstm-tok" -q -m "$d/chat.vocab" "$d/valid.csv" | "$B/lstm-window" -q -L 8 > "$d/valid.win"
}
