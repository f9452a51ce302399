#!/usr/bin/env bats
# lstm-tok: every flag, the input formats and the bad inputs. Token counts are read from the -v
# summary line; the unit tests check the ids themselves.

bats_require_minimum_version 1.5.0

setup_file() {
    export FIX="$BATS_TEST_DIRNAME/fixtures"
    export T="$BATS_FILE_TMPDIR"
    export TOK="$LSTM_BIN/lstm-tok"
    # CRLF copy of the chat fixture
    sed 's/$/\r/' "$FIX/chat_small.csv" > "$T/chat_crlf.csv"
    # the same chat without a conversation column: one document per turn
    cut -d, -f3- "$FIX/chat_small.csv" | head -3 > "$T/chat_noconv.csv"
    printf 'speaker,text\nuser,"Hi, there\nuser,more\nagent,end\n' > "$T/chat_unterminated.csv"
    printf 'conversation_id,speaker,comment\nc1,user,hello\n' > "$T/chat_notext.csv"
    printf 'conversation_id,role,utterance\nc1,user,hello\nc1,agent\n' > "$T/chat_short.csv"
    printf 'speaker,message\n,hello\n' > "$T/chat_nospeaker.csv"
    printf 'speaker,text\nuser,bad \377 byte\nagent,cut \342\202 here and \300 there\n' > "$T/chat_badutf8.csv"
    printf 'a b\000c d\nnext line\n' > "$T/nul.txt"
    : > "$T/empty.txt"
    # one line of 200000 words (about 1.2 MB) plus a short one
    awk 'BEGIN { for (i = 0; i < 200000; i++) printf "w%d ", i % 1000; printf "\nend\n" }' > "$T/long.txt"
    # a SentencePiece model made by SentencePiece's own trainer
    for i in 1 2 3 4 5 6 7 8 9 10; do cat "$FIX/tok_small.txt" "$FIX/tok_paragraphs.txt"; done > "$T/spm_corpus.txt"
    spm_train --input="$T/spm_corpus.txt" --model_prefix="$T/spm" --model_type=bpe --vocab_size=400 \
        --hard_vocab_limit=false --byte_fallback=true --minloglevel=2 > /dev/null 2>&1
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    cd "$BATS_TEST_TMPDIR"
}

# ---- manners

@test "--help prints usage and an example pipeline on stdout" {
    run --separate-stderr "$TOK" --help
    assert_success
    assert_output --partial 'Usage: lstm-tok [options] [FILE...]'
    assert_output --partial 'cat chats.csv | lstm-tok | lstm-window -L 15 | lstm-train'
    [ -z "$stderr" ]
}

@test "--version" {
    run --separate-stderr "$TOK" --version
    assert_success
    assert_output 'lstm-tok 1.0'
}

@test "unknown options and missing arguments are usage errors" {
    run --separate-stderr "$TOK" --bogus
    assert_failure 2
    [ "$stderr" = "lstm-tok: unknown option '--bogus' (try 'lstm-tok --help')" ]
    run --separate-stderr "$TOK" -o
    assert_failure 2
    [ "$stderr" = "lstm-tok: option '-o' needs an argument (try 'lstm-tok --help')" ]
    run --separate-stderr "$TOK" --vocab-size 3
    assert_failure 2
    [ "$stderr" = "lstm-tok: --vocab-size: expected an integer from 5 to 268435456, got '3'" ]
    run --separate-stderr "$TOK" --format xml
    assert_failure 2
    [ "$stderr" = "lstm-tok: --format: expected text, csv, tsv or jsonl, got 'xml'" ]
    run --separate-stderr "$TOK" --split tabs
    assert_failure 2
    [ "$stderr" = "lstm-tok: --split: expected space, words, chars or bpe, got 'tabs'" ]
}

@test "conflicting flags are usage errors" {
    run --separate-stderr "$TOK" --words --bpe -o x.tok "$FIX/tok_small.txt"
    assert_failure 2
    [ "$stderr" = "lstm-tok: choose one of --words, --split, --bpe, --chars" ]
    run --separate-stderr "$TOK" --unk-token '<unk>' -o x.tok "$FIX/tok_small.txt"
    assert_failure 2
    [ "$stderr" = "lstm-tok: --unk-token needs --split space" ]
    run --separate-stderr "$TOK" -m whatever --vocab-size 100 -o x.tok "$FIX/tok_small.txt"
    assert_failure 2
    [ "$stderr" = "lstm-tok: -m reuses a tokenizer: --words, --split, --chars, --keep-case, --vocab-size and --min-count do not apply" ]
    run --separate-stderr "$TOK" --bpe --min-count 2 -o x.tok "$FIX/tok_small.txt"
    assert_failure 2
    [ "$stderr" = "lstm-tok: --min-count does not apply to --bpe" ]
    run --separate-stderr "$TOK" --paragraphs --format csv -o x.tok "$FIX/chat_small.csv"
    assert_failure 2
    [ "$stderr" = "lstm-tok: --paragraphs applies to text input, not --format csv" ]
    [ ! -e x.tok ]
}

@test "refuses to write binary data to a terminal" {
    run script -qec "'$TOK' < '$FIX/tok_small.txt'" /dev/null
    assert_failure 2
    assert_output --partial 'lstm-tok: refusing to write binary data to a terminal: use -o FILE or a pipe'
}

@test "-o does not overwrite without -f" {
    echo keep > out.tok
    run --separate-stderr "$TOK" -o out.tok "$FIX/tok_small.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: out.tok: file exists (use -f to overwrite)" ]
    [ "$(cat out.tok)" = keep ]
    run --separate-stderr "$TOK" -f -o out.tok "$FIX/tok_small.txt"
    assert_success
    [ "$(head -c 4 out.tok | od -An -tx1 | tr -d ' ')" = 28b52ffd ]
}

@test "a missing input file is a runtime error" {
    run --separate-stderr "$TOK" -o out.tok nope.txt
    assert_failure 1
    [ "$stderr" = "lstm-tok: nope.txt: No such file or directory" ]
    [ ! -e out.tok ]
}

@test "-q is silent, -v prints the summary" {
    run --separate-stderr "$TOK" -q -o out.tok "$T/chat_badutf8.csv"
    assert_success
    [ -z "$stderr" ]
    run --separate-stderr "$TOK" -v -o out2.tok "$FIX/tok_small.txt"
    [ "$stderr" = "lstm-tok: 3 documents, 28 tokens, vocabulary 26 (words)" ]
}

# ---- tokenizers

@test "--words is the default: punctuation and emoji kept, case folded" {
    run --separate-stderr "$TOK" -v -o a.tok "$FIX/tok_small.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 3 documents, 28 tokens, vocabulary 26 (words)" ]
    run --separate-stderr "$TOK" --words -v -o b.tok "$FIX/tok_small.txt"
    [ "$stderr" = "lstm-tok: 3 documents, 28 tokens, vocabulary 26 (words)" ]
}

@test "--keep-case keeps The and the apart" {
    run --separate-stderr "$TOK" --keep-case -v -o out.tok "$FIX/tok_small.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 3 documents, 28 tokens, vocabulary 27 (words)" ]
}

@test "--split space --unk-token: pre-tokenized text, blank lines give no document" {
    run --separate-stderr "$TOK" --split space --unk-token '<unk>' -v -o out.tok "$FIX/tok_pretok.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 3 documents, 20 tokens, vocabulary 15 (space)" ]
    # without --unk-token, "<unk>" is an ordinary word
    run --separate-stderr "$TOK" --split space -v -o out2.tok "$FIX/tok_pretok.txt"
    [ "$stderr" = "lstm-tok: 3 documents, 20 tokens, vocabulary 16 (space)" ]
}

@test "--vocab-size and --min-count cut the vocabulary" {
    run --separate-stderr "$TOK" --vocab-size 10 -v -o a.tok "$FIX/tok_small.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 3 documents, 28 tokens, vocabulary 10 (words)" ]
    run --separate-stderr "$TOK" --min-count 2 -v -o b.tok "$FIX/tok_small.txt"
    [ "$stderr" = "lstm-tok: 3 documents, 28 tokens, vocabulary 6 (words)" ]
}

@test "--vocab-size too small for the speaker tags" {
    run --separate-stderr "$TOK" --vocab-size 6 -o out.tok "$FIX/chat_small.csv"
    assert_failure 1
    [ "$stderr" = "lstm-tok: --vocab-size 6 leaves no room for a vocabulary after the special ids and speaker tags" ]
    [ ! -e out.tok ]
}

@test "--chars: grapheme clusters, spaces included" {
    run --separate-stderr "$TOK" --chars -v -o out.tok "$FIX/tok_small.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 3 documents, 85 tokens, vocabulary 29 (chars)" ]
}

@test "--bpe trains SentencePiece in-process; --split bpe is the same" {
    run --separate-stderr "$TOK" --bpe --vocab-size 400 -v -o a.tok "$T/spm_corpus.txt"
    assert_success
    [[ "$stderr" =~ ^"lstm-tok: 70 documents, "[0-9]+" tokens, vocabulary "[0-9]+" (bpe)"$ ]]
    run --separate-stderr "$TOK" --split bpe --vocab-size 400 --threads 1 -v -o b.tok "$T/spm_corpus.txt"
    assert_success
    [[ "$stderr" =~ "(bpe)" ]]
}

@test "--bpe with a vocabulary too small for the characters names the smallest size that works" {
    run --separate-stderr "$TOK" --bpe --vocab-size 20 -o out.tok "$FIX/tok_small.txt"
    assert_failure 1
    [[ "$stderr" =~ ^"lstm-tok: --vocab-size 20 is too small for --bpe on this input: the smallest that works is "([0-9]+)" (the special ids and speaker tags, 256 byte-fallback pieces and the input's characters)"$ ]]
    min=${BASH_REMATCH[1]}
    [[ "$stderr" != *character_coverage* ]]
    [ ! -e out.tok ]
    # the size it names works, one less does not
    run --separate-stderr "$TOK" --bpe --vocab-size "$min" -o out.tok "$FIX/tok_small.txt"
    assert_success
    [ -s out.tok ]
    run --separate-stderr "$TOK" --bpe --vocab-size $((min - 1)) -o out2.tok "$FIX/tok_small.txt"
    assert_failure 1
    [[ "$stderr" == *"the smallest that works is $min "* ]]
    # a size below the special ids is told the same
    run --separate-stderr "$TOK" --bpe --vocab-size 5 -o out.tok -f "$FIX/chat_small.csv"
    assert_failure 1
    [[ "$stderr" =~ ^"lstm-tok: --vocab-size 5 is too small for --bpe on this input: the smallest that works is "[0-9]+" " ]]
}

@test "--bpe on empty input has nothing to train on" {
    run --separate-stderr "$TOK" --bpe -o out.tok "$T/empty.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: --bpe: no text to train on" ]
}

@test "-m FILE.model encodes with an existing SentencePiece model, on 1 or 2 threads alike" {
    [ -s "$T/spm.model" ]
    run --separate-stderr "$TOK" -m "$T/spm.model" -v -o a.tok --threads 1 "$T/spm_corpus.txt"
    assert_success
    [[ "$stderr" =~ " (bpe)"$ ]]
    one="$stderr"
    run --separate-stderr "$TOK" -m "$T/spm.model" --bpe -v -o b.tok "$T/spm_corpus.txt"
    assert_success
    [ "$stderr" = "$one" ]
    # chat input adds speaker tags to the model's pieces
    run --separate-stderr "$TOK" -m "$T/spm.model" -v -o c.tok "$FIX/chat_small.csv"
    assert_success
}

@test "--vocab-out then -m: a vocab file or any token stream gives the same ids" {
    run --separate-stderr "$TOK" --vocab-out train.vocab -v -o train.tok "$FIX/chat_small.csv"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 40 tokens, vocabulary 28 (words)" ]
    [ -s train.vocab ]
    run --separate-stderr "$TOK" -m train.vocab -v -o again.tok "$T/chat_crlf.csv"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 40 tokens, vocabulary 28 (words)" ]
    run --separate-stderr "$TOK" -m train.tok -v -o again2.tok "$FIX/chat_small.csv"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 40 tokens, vocabulary 28 (words)" ]
    # new words become UNK, the vocabulary stays
    run --separate-stderr "$TOK" -m train.vocab -v -o other.tok "$FIX/tok_small.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 3 documents, 28 tokens, vocabulary 28 (words)" ]
}

@test "--vocab-out does not overwrite without -f" {
    echo keep > v.vocab
    run --separate-stderr "$TOK" --vocab-out v.vocab -o out.tok "$FIX/tok_small.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: v.vocab: file exists (use -f to overwrite)" ]
    [ ! -e out.tok ]
    run --separate-stderr "$TOK" -f --vocab-out v.vocab -o out.tok "$FIX/tok_small.txt"
    assert_success
}

@test "-m with a speaker the tokenizer does not know" {
    "$TOK" -o train.tok "$FIX/chat_small.csv"
    printf 'speaker,text\nuser,hi\nbot,hello\n' > new.csv
    run --separate-stderr "$TOK" -m train.tok -o out.tok new.csv
    assert_failure 1
    [ "$stderr" = "lstm-tok: new.csv:3: speaker 'bot' is not in the tokenizer given with -m" ]
    [ ! -e out.tok ]
}

@test "-m with bad files" {
    run --separate-stderr "$TOK" -m nope.vocab -o out.tok "$FIX/tok_small.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: nope.vocab: No such file or directory" ]
    run --separate-stderr "$TOK" -m "$FIX/tok_small.txt" -o out.tok "$FIX/tok_small.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: $FIX/tok_small.txt: not a vocab file, an lstm stream or a SentencePiece model" ]
    "$TOK" -o good.tok "$FIX/tok_small.txt"
    head -c 100 good.tok > cut.tok
    run --separate-stderr "$TOK" -m cut.tok -o out.tok "$FIX/tok_small.txt"
    assert_failure 1
    [[ "$stderr" =~ ^"lstm-tok: cut.tok: " ]]
    [ ! -e out.tok ]
}

# ---- input formats

@test "chat CSV is detected from its header, turns grouped by conversation" {
    run --separate-stderr "$TOK" -v -o out.tok "$FIX/chat_small.csv"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 40 tokens, vocabulary 28 (words)" ]
}

@test "a filter: stdin to stdout" {
    run --separate-stderr bash -c "cat '$FIX/chat_small.csv' | '$TOK' -v | wc -c"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 40 tokens, vocabulary 28 (words)" ]
    [ "$output" -gt 100 ]
}

@test "CRLF CSV gives the same counts" {
    run --separate-stderr "$TOK" -v -o out.tok "$T/chat_crlf.csv"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 40 tokens, vocabulary 28 (words)" ]
}

@test "CSV without a conversation column: one document per turn" {
    run --separate-stderr "$TOK" -v -o out.tok "$T/chat_noconv.csv"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 24 tokens, vocabulary 22 (words)" ]
}

@test "auto-detection needs two known column names in the first line" {
    printf 'text, as they say, is king\nhello\n' > prose.txt
    run --separate-stderr "$TOK" -v -o out.tok prose.txt
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 11 tokens, vocabulary 12 (words)" ]
}

@test "--format text reads a CSV as lines; --format csv forces CSV" {
    run --separate-stderr "$TOK" --format text -v -o a.tok "$FIX/chat_small.csv"
    assert_success
    [[ "$stderr" =~ ^"lstm-tok: 7 documents, " ]]
    run --separate-stderr "$TOK" --format csv -o b.tok "$FIX/tok_small.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: $FIX/tok_small.txt:1: no text column in the CSV header (columns: The cat sat on the mat.): expected text, utterance, message or content, or name it with --text-col" ]
}

@test "--paragraphs: blank-line separated documents" {
    run --separate-stderr "$TOK" --paragraphs -v -o a.tok "$FIX/tok_paragraphs.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 3 documents, 19 tokens, vocabulary 14 (words)" ]
    run --separate-stderr "$TOK" -v -o b.tok "$FIX/tok_paragraphs.txt"
    [ "$stderr" = "lstm-tok: 4 documents, 20 tokens, vocabulary 14 (words)" ]
}

@test "several input files, each in its own format" {
    run --separate-stderr "$TOK" -v -o out.tok "$FIX/tok_small.txt" "$FIX/chat_small.csv"
    assert_success
    [ "$stderr" = "lstm-tok: 5 documents, 68 tokens, vocabulary 45 (words)" ]
}

# ---- bad input

@test "an unterminated quoted field names its line; nothing is left behind" {
    mkdir o
    run --separate-stderr "$TOK" -o o/out.tok --vocab-out o/out.vocab "$T/chat_unterminated.csv"
    assert_failure 1
    [ "$stderr" = "lstm-tok: $T/chat_unterminated.csv:2: unterminated quoted field" ]
    [ -z "$(ls -A o)" ]
    run --separate-stderr bash -c "'$TOK' < '$T/chat_unterminated.csv' > /dev/null"
    [ "$stderr" = "lstm-tok: stdin:2: unterminated quoted field" ]
}

@test "CSV header without a speaker or text column, short rows, empty speakers" {
    run --separate-stderr "$TOK" -o out.tok "$T/chat_notext.csv"
    assert_failure 1
    [ "$stderr" = "lstm-tok: $T/chat_notext.csv:1: no text column in the CSV header (columns: conversation_id, speaker, comment): expected text, utterance, message or content, or name it with --text-col" ]
    printf 'speaker,text\n' > nospk.csv
    run --separate-stderr "$TOK" --format csv -o out.tok nospk.csv
    assert_success
    printf 'name,text\nx,y\n' > nospk2.csv
    run --separate-stderr "$TOK" --format csv -o out1.tok nospk2.csv
    assert_success
    [ "$("$LSTM_BIN/lstm-dump" --text out1.tok)" = "y" ] # no speakers: the rows are text documents
    run --separate-stderr "$TOK" -o out2.tok "$T/chat_short.csv"
    assert_failure 1
    [ "$stderr" = "lstm-tok: $T/chat_short.csv:3: 2 fields, the header has 3" ]
    run --separate-stderr "$TOK" -o out3.tok "$T/chat_nospeaker.csv"
    assert_failure 1
    [ "$stderr" = "lstm-tok: $T/chat_nospeaker.csv:2: empty speaker name" ]
    [ ! -e out2.tok ]
    [ ! -e out3.tok ]
}

@test "invalid UTF-8 is replaced, counted, and warned about once" {
    run --separate-stderr "$TOK" -v -o out.tok "$T/chat_badutf8.csv"
    assert_success
    [ "$stderr" = "lstm-tok: warning: 3 invalid UTF-8 sequences replaced with U+FFFD
lstm-tok: 2 documents, 15 tokens, vocabulary 13 (words)" ]
}

@test "empty input is a valid empty stream that carries the tokenizer" {
    run --separate-stderr "$TOK" -v -o out.tok "$T/empty.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 0 documents, 0 tokens, vocabulary 4 (words)" ]
    run --separate-stderr bash -c "'$TOK' -v < /dev/null > empty2.tok"
    assert_success
    run --separate-stderr "$TOK" -m empty2.tok -v -o again.tok "$FIX/tok_small.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 3 documents, 28 tokens, vocabulary 4 (words)" ]
}

@test "NUL bytes do not cut a line" {
    run --separate-stderr "$TOK" --split space -v -o out.tok "$T/nul.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 8 tokens, vocabulary 10 (space)" ]
    run --separate-stderr "$TOK" -v -o out2.tok "$T/nul.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 8 tokens, vocabulary 10 (words)" ]
}

@test "a megabyte-long line is one document, nothing truncated" {
    run --separate-stderr "$TOK" --split space -v -o out.tok "$T/long.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 200003 tokens, vocabulary 1005 (space)" ]
    run --separate-stderr "$TOK" -v -o out2.tok "$T/long.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 200003 tokens, vocabulary 1005 (words)" ]
}

@test "SIGINT removes the partial output and exits 130" {
    mkfifo in.fifo
    "$TOK" -o out.tok --vocab-out out.vocab in.fifo &
    pid=$!
    exec 7> in.fifo
    printf 'some text\n' >&7
    sleep 0.5
    kill -INT "$pid"
    status=0
    wait "$pid" || status=$?
    exec 7>&-
    [ "$status" -eq 130 ]
    [ "$(ls -A)" = in.fifo ]
}

# ---- issue 18: outputs over outputs or inputs, closed standard fds, NUL, -m verdicts

# run captures stdout: these put the command's own stdout where the test needs it
closed_stdout() { "$@" >&-; }
closed_stdin() { "$@" <&-; }
to_full() { "$@" > /dev/full; }

@test "two outputs naming one file, or an output naming an input, are refused before any work" {
    printf 'hello world\n' > in.txt
    run --separate-stderr "$TOK" --vocab-out X -o X in.txt
    assert_failure 2
    [ "$stderr" = "lstm-tok: X: -o and --vocab-out name the same file" ]
    [ ! -e X ]
    run --separate-stderr "$TOK" -f -o in.txt in.txt
    assert_failure 2
    [ "$stderr" = "lstm-tok: in.txt: -o names an input file" ]
    [ "$(cat in.txt)" = "hello world" ]
    ln in.txt hard.txt
    run --separate-stderr "$TOK" -f --vocab-out hard.txt -o out.tok in.txt
    assert_failure 2
    [ "$stderr" = "lstm-tok: hard.txt: --vocab-out names an input file" ]
    "$TOK" --vocab-out v.vocab -o /dev/null in.txt
    run --separate-stderr "$TOK" -f -m v.vocab -o v.vocab in.txt
    assert_failure 2
    [ "$stderr" = "lstm-tok: v.vocab: -o names the input given with -m" ]
    [ ! -e out.tok ]
}

@test "a closed stdin or stdout is an error, never an empty input or a lost stream" {
    run --separate-stderr closed_stdin "$TOK" -o x.tok
    assert_failure 1
    [ "$stderr" = "lstm-tok: stdin: Bad file descriptor" ]
    [ ! -e x.tok ]
    run --separate-stderr closed_stdout "$TOK" "$FIX/tok_small.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: stdout: Bad file descriptor" ]
    # a file input with stdin closed: the output's temp must not become fd 0
    run --separate-stderr closed_stdin "$TOK" -v -o y.tok "$FIX/tok_small.txt"
    assert_success
    [ "$stderr" = "lstm-tok: 3 documents, 28 tokens, vocabulary 26 (words)" ]
}

@test "NUL never reaches a vocabulary entry: every reader accepts the tokenizer written" {
    # NUL inside a space token; NUL + a combining mark for words and chars; UTF-16 text
    printf 'a\000b c\n\000\314\201d\n' > nulmark.txt
    printf 'hello world\n' | iconv -t UTF-16 > u16.txt
    for mode in "--split space" --words --chars; do
        for f in nulmark.txt u16.txt; do
            "$TOK" -q $mode -f -o out.tok --vocab-out out.vocab "$f"
            run --separate-stderr "$LSTM_BIN/lstm-dump" --vocab out.tok
            assert_success
            [ -z "$stderr" ]
            run --separate-stderr "$TOK" -m out.vocab -o again.tok -f "$f"
            assert_success
            [ "$("$LSTM_BIN/lstm-dump" --ids out.tok | grep ids:)" = "$("$LSTM_BIN/lstm-dump" --ids again.tok | grep ids:)" ]
        done
    done
    "$TOK" -q --split space -f -o sp.tok nulmark.txt
    run "$LSTM_BIN/lstm-dump" --vocab sp.tok
    assert_line --index 4 $'4\ta'
    assert_line --index 5 $'5\tb'
}

@test "-m gives a stream the same verdict as every other reader: whole, one stream, nothing after it" {
    "$TOK" --vocab-out v.vocab -o whole.tok "$FIX/tok_small.txt"
    size=$(stat -c %s v.vocab)
    head -c $((size - 4)) v.vocab > cut.vocab
    cat whole.tok whole.tok > two.tok
    { cat whole.tok; printf 'junk'; } > trail.tok
    run --separate-stderr "$TOK" -m cut.vocab -o out.tok "$FIX/tok_small.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: cut.vocab: truncated stream (no end record)" ]
    run --separate-stderr "$TOK" -m two.tok -o out.tok "$FIX/tok_small.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: two.tok: malformed data" ]
    run --separate-stderr "$TOK" -m trail.tok -o out.tok "$FIX/tok_small.txt"
    assert_failure 1
    [ "$stderr" = "lstm-tok: trail.tok: corrupted data (checksum mismatch)" ]
    [ ! -e out.tok ]
    run --separate-stderr "$TOK" -m whole.tok -o out.tok "$FIX/tok_small.txt"
    assert_success
}

# ---- chat input people actually have

# The chat fixture rewritten in other layouts (python's csv and json modules write them).
make_layouts() {
    /usr/bin/python3 - "$FIX/chat_small.csv" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline='')))
def w(name, header, cols, delim=',', head=True):
    with open(name, 'w', newline='') as f:
        out = csv.writer(f, delimiter=delim, lineterminator='\n')
        if head: out.writerow(header)
        for r in rows: out.writerow([r[c] for c in cols])
w('chat.tsv', ['conversation_id', 'turn', 'speaker', 'text'], ['conversation_id', 'turn', 'speaker', 'text'], '\t')
w('renamed.csv', ['body', 'who', 'n', 'thread'], ['text', 'speaker', 'turn', 'conversation_id'])
w('roles.csv', ['conversation', 'role', 'content'], ['conversation_id', 'speaker', 'text'])
w('nohead.csv', [], ['text', 'conversation_id', 'speaker'], ';', False)
with open('chat.jsonl', 'w') as f:
    convs = {}
    for r in rows: convs.setdefault(r['conversation_id'], []).append({'role': r['speaker'], 'content': r['text']})
    for c in convs.values(): f.write(json.dumps({'messages': c}) + '\n')
PY
}

@test "one chat as CSV, TSV, named or numbered columns, headerless, role/content and JSON Lines: the same tokens" {
    make_layouts
    "$TOK" -o ref.tok "$FIX/chat_small.csv"
    "$LSTM_BIN/lstm-dump" --text ref.tok > ref.txt
    [ "$(grep -c . ref.txt)" -ge 3 ]
    check() { # $1 = name, rest = lstm-tok arguments
        local name=$1; shift
        run --separate-stderr "$TOK" -o "$name.tok" "$@"
        assert_success
        [ -z "$stderr" ]
        "$LSTM_BIN/lstm-dump" --text "$name.tok" > "$name.txt"
        diff ref.txt "$name.txt"
    }
    check tsv-sniffed chat.tsv
    check tsv-format --format tsv chat.tsv
    check tsv-delim --delimiter tab chat.tsv
    check renamed --text-col body --speaker-col who --conv-col thread renamed.csv
    check numbered --text-col 1 --speaker-col 2 --conv-col 4 renamed.csv
    check roles roles.csv
    check nohead --no-header --delimiter ';' --text-col 1 --conv-col 2 --speaker-col 3 nohead.csv
    check jsonl-sniffed chat.jsonl
    check jsonl-format --format jsonl chat.jsonl
    cat chat.jsonl | check jsonl-stdin
}

@test "the header of a CSV with unknown columns gets a warning naming them, and how to read it" {
    printf 'id,user,body\n1,ann,hello there\n2,bob,hi ann\n' > odd.csv
    run --separate-stderr "$TOK" -o out.tok odd.csv
    assert_success
    [ "$stderr" = "lstm-tok: warning: odd.csv:1 looks like the header of a CSV file with columns id, user, body, none of them a known text column: reading it as plain text; name the columns with --text-col (and --speaker-col, --conv-col), or say --format text" ]
    printf 'id\tuser\tbody\n1\tann\thello there\n' > odd.tsv
    run --separate-stderr "$TOK" -o out2.tok odd.tsv
    assert_success
    [[ "$stderr" == *"odd.tsv:1 looks like the header of a TSV file with columns id, user, body,"* ]]
    # said -q or --format text, no warning; prose with commas is not a header
    run --separate-stderr "$TOK" -q -o out3.tok odd.csv
    [ -z "$stderr" ]
    run --separate-stderr "$TOK" --format text -o out4.tok odd.csv
    [ -z "$stderr" ]
    printf 'well, thanks,bye\nsee you\n' > prose.txt
    run --separate-stderr "$TOK" -o out5.tok prose.txt
    assert_success
    [ -z "$stderr" ]
    # the columns named, the same file is chat
    run --separate-stderr "$TOK" -v --text-col body --speaker-col user -o chat.tok odd.csv
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 10 tokens, vocabulary 10 (words)" ]
    [ "$("$LSTM_BIN/lstm-dump" --text chat.tok)" = "$(printf '<ann> hello there\n<bob> hi ann')" ]
}

@test "a CSV with a text column and no speaker column: each row is a text document" {
    printf 'id,text,stars\n1,great little shop,5\n2,"slow, but fine",3\n' > reviews.csv
    run --separate-stderr "$TOK" -v -o out.tok reviews.csv
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 9 tokens, vocabulary 11 (words)" ]
    [ "$("$LSTM_BIN/lstm-dump" --text out.tok)" = "$(printf 'great little shop\nslow, but fine')" ]
    # a conversation column without speakers has no turns to group
    run --separate-stderr "$TOK" --conv-col id --text-col text -o out2.tok reviews.csv
    assert_failure 1
    [ "$stderr" = "lstm-tok: reviews.csv:1: a conversation column needs a speaker column (expected speaker, role or author, or name it with --speaker-col)" ]
}

@test "column flags: unknown names list the header, numbers past it, --no-header needs numbers, CSV flags need CSV" {
    printf 'id,user,body\n1,ann,hello\n' > odd.csv
    run --separate-stderr "$TOK" --text-col text -o out.tok odd.csv
    assert_failure 1
    [ "$stderr" = "lstm-tok: odd.csv:1: --text-col: no column 'text' in the header (columns: id, user, body)" ]
    run --separate-stderr "$TOK" --text-col 3 --speaker-col 4 -o out.tok odd.csv
    assert_failure 1
    [ "$stderr" = "lstm-tok: odd.csv:1: --speaker-col 4: the header has 3 columns (id, user, body)" ]
    [ ! -e out.tok ]
    run --separate-stderr "$TOK" --text-col 3 --speaker-col 3 -o out.tok odd.csv
    assert_failure 1
    [ "$stderr" = "lstm-tok: the text, speaker and conversation columns must be different columns" ]
    run --separate-stderr "$TOK" --no-header --text-col body -o out.tok odd.csv
    assert_failure 2
    [ "$stderr" = "lstm-tok: --no-header: name the columns by number (--text-col N, and --speaker-col, --conv-col)" ]
    run --separate-stderr "$TOK" --format text --text-col 2 -o out.tok odd.csv
    assert_failure 2
    [ "$stderr" = "lstm-tok: --delimiter, --text-col, --speaker-col, --conv-col and --no-header apply to CSV input, not --format text" ]
    run --separate-stderr "$TOK" --text-col 0 -o out.tok odd.csv
    assert_failure 2
    [ "$stderr" = "lstm-tok: --text-col: columns are numbered from 1, got '0'" ]
    run --separate-stderr "$TOK" --delimiter ab -o out.tok odd.csv
    assert_failure 2
    [ "$stderr" = "lstm-tok: --delimiter: expected one ASCII character other than a quote, or 'tab', got 'ab'" ]
    # headerless rows shorter than the columns named
    printf 'hello;ann\nbye\n' > short.csv
    run --separate-stderr "$TOK" --no-header --delimiter ';' --text-col 1 --speaker-col 2 -o out.tok short.csv
    assert_failure 1
    [ "$stderr" = "lstm-tok: short.csv:2: 1 field, the columns named need 2" ]
}

@test "JSON Lines: bad lines are reported with their line number; null content and multi-part content" {
    printf '%s\n' '{"messages":[{"role":"user","content":"hi there"},{"role":"assistant","content":[{"type":"text","text":"hello"},{"type":"image_url","image_url":{"url":"x"}}]},{"role":"tool","content":null}]}' \
        '' '{"conversations":[{"from":"human","value":"ok bye"}]}' > good.jsonl
    run --separate-stderr "$TOK" -v -o out.tok good.jsonl
    assert_success
    [ "$stderr" = "lstm-tok: 2 documents, 14 tokens, vocabulary 12 (words)" ]
    [ "$("$LSTM_BIN/lstm-dump" --text out.tok)" = "$(printf '<user> hi there\n<assistant> hello\n<human> ok bye')" ]
    printf '%s\n' '{"messages":[{"role":"user","content":"hi"}]}' '{"messages": [ {"role":"user",' > cut.jsonl
    run --separate-stderr "$TOK" --format jsonl -o out2.tok cut.jsonl
    assert_failure 1
    [[ "$stderr" =~ ^"lstm-tok: cut.jsonl:2: malformed JSON: ".*" (column "[0-9]+")"$ ]]
    [[ "$stderr" != *JSON_* ]]
    [ ! -e out2.tok ]
    printf '%s\n' '{"messages":[{"role":"user","content":"hi"}]}' '{"messages":[{"content":"no role"}]}' > norole.jsonl
    run --separate-stderr "$TOK" -o out2.tok norole.jsonl
    assert_failure 1
    [ "$stderr" = 'lstm-tok: norole.jsonl:2: message 1: "role" must be a non-empty string' ]
    printf '%s\n' '{"messages":[{"role":"user","content":7}]}' > badcontent.jsonl
    run --separate-stderr "$TOK" --format jsonl -o out2.tok badcontent.jsonl
    assert_failure 1
    [ "$stderr" = 'lstm-tok: badcontent.jsonl:1: message 1: "content" must be a string, null or an array of text parts' ]
    printf '%s\n' '{"messages":[]}' '[1, 2]' > notobj.jsonl
    run --separate-stderr "$TOK" --format jsonl -o out2.tok notobj.jsonl
    assert_failure 1
    [ "$stderr" = 'lstm-tok: notobj.jsonl:2: expected an object with a "messages" array of {"role", "content"} objects' ]
    printf '%s\n' '{"messages":[{"role":"user","content":"a","content":"b"}]}' > dup.jsonl
    run --separate-stderr "$TOK" --format jsonl -o out2.tok dup.jsonl
    assert_failure 1
    [[ "$stderr" == "lstm-tok: dup.jsonl:1: malformed JSON: duplicate field"* ]]
}
