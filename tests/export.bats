#!/usr/bin/env bats
# lstm-export: the inference-only model file (formats/model.md). --quantize none answers to the bit
# what the checkpoint answers (lstm-eval, lstm-sample --suggest and --serve, lstm-inspect); int8 and
# bf16 within a stated perplexity tolerance of fp32; file sizes as the format says; a flipped byte, a
# truncated file, an export given to lstm-train --resume or to lstm-export itself are refused with
# one line; the output rules (-f, /dev/null, stdout, a FIFO); lstm-serve answers from an export. Tiny
# models built once from tests/fixtures/eval_chat.csv (a word model, a BPE model, an untied one, a GRU).

bats_require_minimum_version 1.5.0

setup_file() {
    export FIX="$BATS_TEST_DIRNAME/fixtures"
    export T="$BATS_FILE_TMPDIR"
    export X="$LSTM_BIN/lstm-export"
    local B="$LSTM_BIN"
    "$B/lstm-tok" -q --vocab-out "$T/chat.vocab" -o "$T/chat.tok" "$FIX/eval_chat.csv"
    "$B/lstm-window" -q -L 8 "$T/chat.tok" > "$T/chat.win"
    "$B/lstm-train" --hidden 32 --epochs 40 --lr 0.01 -q -o "$T/chat.ckpt" "$T/chat.win"
    "$B/lstm-train" --hidden 24 --emb 16 --no-tie --epochs 3 -q -o "$T/untied.ckpt" "$T/chat.win"
    "$B/lstm-train" --cell gru --hidden 24 --epochs 5 -q -o "$T/gru.ckpt" "$T/chat.win"
    "$B/lstm-tok" -q --bpe --vocab-size 400 "$FIX/eval_chat.csv" | "$B/lstm-window" -q -L 12 > "$T/bpe.win"
    "$B/lstm-train" --hidden 32 --epochs 3 -q -o "$T/bpe.ckpt" "$T/bpe.win"
    for m in chat untied bpe gru; do
        for q in none int8 bf16; do "$X" -q -m "$T/$m.ckpt" -o "$T/$m.$q.lstm" --quantize "$q"; done
        for q in int8 bf16; do "$X" -q -m "$T/$m.ckpt" -o "$T/$m.${q}r.lstm" --quantize "$q" --quantize-recurrent; done
    done
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    load 'serve_helpers'
    cd "$BATS_TEST_TMPDIR"
    SPID=
}

teardown() { serve_stop; }

size() { stat -c %s "$1"; }

# weights FILE: lstm-dump's entries and text entries but the provenance (which names the command)
weights() { "$LSTM_BIN/lstm-dump" "$1" | sed '/^provenance:/,$d' | grep -v '^  provenance ' | tail -n +2; }

# ppl_json MODEL WINDOWS: lstm-eval's perplexity (full precision, from --json)
ppl_json() { "$LSTM_BIN/lstm-eval" --json -m "$1" "$2" | sed 's/.*"perplexity":\([^,}]*\).*/\1/'; }

@test "--help, --version and usage errors" {
    run --separate-stderr "$X" --help
    assert_success
    assert_output --partial "lstm-export -m chat.ckpt -o chat.lstm --quantize int8"
    assert_output --partial "--quantize Q"
    run --separate-stderr "$X" --version
    assert_output "lstm-export 1.0"
    run --separate-stderr "$X" -o m.lstm
    assert_failure 2
    assert_equal "$stderr" "lstm-export: no checkpoint: give -m MODEL.ckpt (see --help)"
    run --separate-stderr "$X" -m "$T/chat.ckpt"
    assert_failure 2
    assert_equal "$stderr" "lstm-export: no output: give -o FILE (see --help)"
    run --separate-stderr "$X" -m "$T/chat.ckpt" -o m.lstm --quantize int4
    assert_failure 2
    assert_equal "$stderr" "lstm-export: --quantize: expected none, int8 or bf16, got 'int4'"
    run --separate-stderr "$X" -m "$T/chat.ckpt" -o m.lstm extra
    assert_failure 2
    assert_equal "$stderr" "lstm-export: unexpected argument 'extra' (the checkpoint is -m FILE, see --help)"
    run --separate-stderr "$X" -m "$T/chat.ckpt" -o "$T/chat.ckpt" -f
    assert_failure 2
    assert_equal "$stderr" "lstm-export: -o names the checkpoint -m ($T/chat.ckpt): it would be overwritten"
    run --separate-stderr "$X" -m "$T/chat.ckpt" -o m.lstm --quantize-recurrent
    assert_failure 2
    assert_equal "$stderr" "lstm-export: --quantize-recurrent needs --quantize int8 or bf16"
    run --separate-stderr "$X" --bogus
    assert_failure 2
    [[ "$stderr" == "lstm-export: unknown option '--bogus'"* ]]
    [ ! -e m.lstm ]
}

@test "--quantize none: lstm-eval, lstm-sample --suggest and lstm-inspect answer to the bit as the checkpoint" {
    for m in chat bpe untied gru; do
        win="$T/chat.win"
        [ "$m" = bpe ] && win="$T/bpe.win"
        run --separate-stderr "$LSTM_BIN/lstm-eval" --json -m "$T/$m.ckpt" "$win"
        assert_success
        want=$(printf '%s' "$output" | sed 's/"model":"[^"]*",//')
        [[ "$want" == *'"perplexity":'* ]]
        run --separate-stderr "$LSTM_BIN/lstm-eval" --json -m "$T/$m.none.lstm" "$win"
        assert_success
        assert_equal "$(printf '%s' "$output" | sed 's/"model":"[^"]*",//')" "$want"
        for text in "i need help with my " "can you reset my pa" "thanks"; do
            a=$("$LSTM_BIN/lstm-sample" -m "$T/$m.ckpt" --suggest 5 "$text")
            b=$("$LSTM_BIN/lstm-sample" -m "$T/$m.none.lstm" --suggest 5 "$text")
            [ -n "$a" ]
            assert_equal "$b" "$a"
        done
    done
    a=$("$LSTM_BIN/lstm-sample" -m "$T/chat.ckpt" --complete --greedy "hi, i need")
    b=$("$LSTM_BIN/lstm-sample" -m "$T/chat.none.lstm" --complete --greedy "hi, i need")
    assert_equal "$b" "$a"
    a=$("$LSTM_BIN/lstm-inspect" gates -m "$T/chat.ckpt" "hello there")
    b=$("$LSTM_BIN/lstm-inspect" gates -m "$T/chat.none.lstm" "hello there")
    [[ "$a" == *l0.forget* ]]
    assert_equal "$b" "$a"
}

@test "--quantize int8 and bf16 (and --quantize-recurrent): lstm-eval perplexity within 0.5% of fp32, suggestions close to fp32's" {
    for m in chat untied bpe gru; do
        win="$T/chat.win"
        [ "$m" = bpe ] && win="$T/bpe.win"
        p0=$(ppl_json "$T/$m.ckpt" "$win")
        for q in int8 bf16 int8r bf16r; do
            p=$(ppl_json "$T/$m.$q.lstm" "$win")
            echo "$m $q: perplexity $p against fp32 $p0"
            awk -v a="$p" -v b="$p0" 'BEGIN { d = a / b - 1; exit !(d < 0.005 && d > -0.005 && b > 1) }'
        done
    done
    # the top suggestion's probability moves by quantization only (a few percent at most here)
    for q in int8 bf16 int8r bf16r; do
        a=$("$LSTM_BIN/lstm-sample" -m "$T/chat.ckpt" --suggest 1 "i need help with my " | cut -f2)
        b=$("$LSTM_BIN/lstm-sample" -m "$T/chat.$q.lstm" --suggest 1 "i need help with my " | cut -f2)
        echo "$q: top probability $b against fp32 $a"
        awk -v a="$a" -v b="$b" 'BEGIN { d = b / a - 1; exit !(d < 0.05 && d > -0.05 && a > 0) }'
    done
}

@test "export sizes: the fp32 export less 3 bytes per int8 weight (plus a scale per row) or 2 per bf16 weight" {
    # Adam's two moments are not exported: the fp32 export is about a third of the checkpoint
    c=$(size "$T/chat.ckpt") n=$(size "$T/chat.none.lstm")
    echo "checkpoint $c, fp32 export $n bytes"
    [ $((n * 5 / 2)) -lt "$c" ]
    for m in chat untied; do
        n=$(size "$T/$m.none.lstm")
        # the weight matrices of the fp32 export: the embedding and output weight, then the recurrent ones
        read -r q rows qr rowsr < <("$LSTM_BIN/lstm-dump" "$T/$m.none.lstm" | awk '
            /^  (emb|out\.w) +f32 \([0-9]+x[0-9]+\)/ { split(substr($3, 2), d, /[x)]/); q += d[1] * d[2]; r += d[1] }
            /^  l[0-9]+\.w_(ih|hh) +f32 \([0-9]+x[0-9]+\)/ { split(substr($3, 2), d, /[x)]/); qr += d[1] * d[2]; rr += d[1] }
            END { print q, r, qr, rr }')
        [ "$q" -gt 0 ]
        [ "$qr" -gt 0 ]
        for v in int8 bf16 int8r bf16r; do
            got=$(size "$T/$m.$v.lstm")
            case $v in
            int8) want=$((n - 3 * q + 4 * rows)) ;;
            bf16) want=$((n - 2 * q)) ;;
            int8r) want=$((n - 3 * (q + qr) + 4 * (rows + rowsr))) ;;
            bf16r) want=$((n - 2 * (q + qr))) ;;
            esac
            echo "$m $v: $got bytes, expected $want (fp32 export $n, checkpoint $(size "$T/$m.ckpt"))"
            # within the 64-byte alignment of each entry and the longer entry table
            [ $((got - want)) -lt 2048 ]
            [ $((want - got)) -lt 2048 ]
        done
        [ "$(size "$T/$m.int8r.lstm")" -lt "$(size "$T/$m.int8.lstm")" ]
        [ "$(size "$T/$m.int8.lstm")" -lt "$(size "$T/$m.bf16.lstm")" ]
        [ "$(size "$T/$m.bf16.lstm")" -lt "$n" ]
    done
    run --separate-stderr "$LSTM_BIN/lstm-dump" "$T/untied.int8.lstm"
    assert_success
    assert_line --index 0 "model (lstm-export): $T/untied.int8.lstm"
    assert_output --regexp "  emb +i8 \\([0-9]+x16\\)"
    assert_output --regexp "  out.w +i8 \\([0-9]+x24\\)"
    assert_output --regexp "  out.w.scale +f32"
    assert_output --regexp "  l0.w_ih +f32 \\(96x16\\)"
    assert_output --partial "  quantize=int8"
    assert_output --partial "  recurrent=0"
    assert_output --partial "lstm-export -q -m $T/untied.ckpt -o $T/untied.int8.lstm --quantize int8"
    refute_output --partial "optim.m"
    refute_output --partial "train:"
    run --separate-stderr "$LSTM_BIN/lstm-dump" "$T/untied.int8r.lstm"
    assert_output --regexp "  l0.w_ih +i8 \\(96x16\\)"
    assert_output --regexp "  l1.w_hh +i8 \\(96x24\\)"
    assert_output --regexp "  l1.w_hh.scale +f32 \\(96\\)"
    assert_output --regexp "  l1.b_hh +f32 \\(96\\)"
    assert_output --partial "  recurrent=1"
    run --separate-stderr "$LSTM_BIN/lstm-dump" "$T/chat.bf16.lstm"
    assert_output --regexp "  emb +bf16 \\([0-9]+x32\\)"
    refute_output --partial "out.w"
}

@test "a flipped byte, a truncated file, a cut magic: refused by every reader with one line" {
    f="$T/chat.int8.lstm"
    n=$(size "$f")
    cp "$f" flip.lstm
    printf '\xff' | dd of=flip.lstm bs=1 seek=$((n / 2)) conv=notrunc status=none
    run cmp -s "$f" flip.lstm
    assert_failure
    run --separate-stderr "$LSTM_BIN/lstm-eval" -m flip.lstm "$T/chat.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: flip.lstm: corrupted exported model (checksum mismatch)"
    run --separate-stderr "$LSTM_BIN/lstm-sample" -m flip.lstm --suggest 3 "hi "
    assert_failure 1
    assert_equal "$stderr" "lstm-sample: flip.lstm: corrupted exported model (checksum mismatch)"
    head -c $((n - 100)) "$f" > cut.lstm
    run --separate-stderr "$LSTM_BIN/lstm-sample" -m cut.lstm --suggest 3 "hi "
    assert_failure 1
    assert_equal "$stderr" "lstm-sample: cut.lstm: truncated exported model (shorter than its header says)"
    head -c 5 "$f" > magic.lstm
    run --separate-stderr "$LSTM_BIN/lstm-eval" -m magic.lstm "$T/chat.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-eval: magic.lstm: truncated exported model (shorter than its header says)"
    run --separate-stderr "$LSTM_BIN/lstm-dump" flip.lstm
    assert_failure 1
    assert_equal "$stderr" "lstm-dump: flip.lstm: corrupted exported model (checksum mismatch)"
    run --separate-stderr "$LSTM_BIN/lstm-dump" cut.lstm
    assert_failure 1
    assert_equal "$stderr" "lstm-dump: cut.lstm: truncated exported model (shorter than its header says)"
}

@test "lstm-train --resume and lstm-export refuse an export; lstm-tok -m reads its vocabulary" {
    cp "$T/chat.int8.lstm" m.lstm
    run --separate-stderr "$LSTM_BIN/lstm-train" -q --resume m.lstm "$T/chat.win"
    assert_failure 1
    assert_equal "$stderr" "lstm-train: m.lstm: an exported model (lstm-export), not a checkpoint: --resume needs the checkpoint lstm-train wrote"
    run cmp m.lstm "$T/chat.int8.lstm"
    assert_success
    run --separate-stderr "$X" -m m.lstm -o again.lstm
    assert_failure 1
    assert_equal "$stderr" "lstm-export: m.lstm: already an exported model (int8): export the checkpoint lstm-train wrote"
    [ ! -e again.lstm ]
    "$LSTM_BIN/lstm-tok" -q -m "$T/chat.bf16.lstm" -o a.tok "$FIX/eval_chat.csv"
    "$LSTM_BIN/lstm-tok" -q -m "$T/chat.ckpt" -o b.tok "$FIX/eval_chat.csv"
    assert_equal "$("$LSTM_BIN/lstm-dump" --text a.tok)" "$("$LSTM_BIN/lstm-dump" --text b.tok)"
}

@test "outputs: an existing file needs -f; /dev/null, stdout and a FIFO are written in place" {
    run --separate-stderr "$X" -m "$T/chat.ckpt" -o /dev/null --quantize int8
    assert_success
    assert_equal "$stderr" ""
    "$X" -m "$T/chat.ckpt" -o a.lstm --quantize int8
    run --separate-stderr "$X" -m "$T/chat.ckpt" -o a.lstm --quantize bf16
    assert_failure 1
    assert_equal "$stderr" "lstm-export: a.lstm: file exists (use -f to overwrite, or -o another file)"
    want=$(weights "$T/chat.int8.lstm")
    [[ "$want" == *"emb          i8"* ]]
    assert_equal "$(weights a.lstm)" "$want"
    "$X" -f -m "$T/chat.ckpt" -o a.lstm --quantize bf16
    assert_equal "$(weights a.lstm)" "$(weights "$T/chat.bf16.lstm")"
    "$X" -m "$T/chat.ckpt" -o - --quantize int8 > out.lstm
    assert_equal "$(weights out.lstm)" "$want"
    mkfifo f.fifo
    cat f.fifo > fifo.lstm &
    "$X" -m "$T/chat.ckpt" -o f.fifo --quantize int8
    wait
    assert_equal "$(weights fifo.lstm)" "$want"
    [ -p f.fifo ]
    # no temp file is left beside the outputs
    run ls
    refute_output --partial ".tmp"
}

@test "-v: lstm-export, lstm-sample and lstm-eval say what the weights are and which kernel runs" {
    run --separate-stderr "$X" -v -m "$T/chat.ckpt" -o m.lstm --quantize int8
    assert_success
    [[ "$stderr" =~ "lstm-export: $T/chat.ckpt -> m.lstm: int8 embedding and output layer, "[0-9]+" ids, 2 x 32 lstm (tied), "[0-9]+" -> "[0-9]+" bytes ("[0-9.]+"x smaller) in "[0-9.]+" ms" ]]
    [[ "$stderr" =~ "lstm-export: quantized kernels on this CPU: "(avx2\+fma|scalar)$ ]]
    run --separate-stderr "$LSTM_BIN/lstm-sample" -v -m m.lstm --suggest 2 "hi "
    assert_success
    [[ "$stderr" == *", int8 export (embedding, output layer; kernel "*")"* ]]
    run --separate-stderr "$LSTM_BIN/lstm-sample" -v -m "$T/chat.int8r.lstm" --suggest 2 "hi "
    [[ "$stderr" == *", int8 export (embedding, output layer and recurrent weights; kernel "*")"* ]]
    run --separate-stderr "$LSTM_BIN/lstm-sample" -v -m "$T/chat.none.lstm" --suggest 2 "hi "
    [[ "$stderr" == *", fp32 export, loaded in "* ]]
    run --separate-stderr "$LSTM_BIN/lstm-eval" -v -m "$T/chat.bf16.lstm" "$T/chat.win"
    assert_success
    [[ "$stderr" =~ "tok/s), bf16 export (embedding, output layer; kernel "(avx2\+fma|scalar)")"$ ]]
    # the scalar reference answers too (the kernel is forced by the environment)
    a=$(LSTM_KERNEL=scalar "$LSTM_BIN/lstm-sample" -v -m m.lstm --suggest 3 "i need help with my " 2> err)
    grep -q "kernel scalar" err
    b=$("$LSTM_BIN/lstm-sample" -m m.lstm --suggest 3 "i need help with my ")
    assert_equal "$(printf '%s\n' "$a" | cut -f1)" "$(printf '%s\n' "$b" | cut -f1)"
}

@test "lstm-sample --serve and lstm-serve answer from an export" {
    lines='{"id":1,"text":"hi, i need help with my ","mode":"suggest"}
{"id":2,"text":"sure, please","mode":"complete","greedy":true}'
    a=$(printf '%s\n' "$lines" | "$LSTM_BIN/lstm-sample" --serve -m "$T/chat.ckpt")
    b=$(printf '%s\n' "$lines" | "$LSTM_BIN/lstm-sample" --serve -m "$T/chat.none.lstm")
    [[ "$a" == *'"suggestions"'* ]]
    assert_equal "$b" "$a"
    serve_start "$T/chat.int8.lstm"
    code=$(curl -s -o body.out -w '%{http_code}' -X POST --data-binary '{"text":"hi, i need help with my ","k":3}' "${U}v1/suggest")
    assert_equal "$code" 200
    run cat body.out
    assert_output --regexp '"suggestions":\[\{"word":"[^"]+","p":[0-9.e-]+\}(,\{"word":"[^"]+","p":[0-9.e-]+\}){2}\]'
    # the words lstm-sample gives from the same export
    want=$("$LSTM_BIN/lstm-sample" -m "$T/chat.int8.lstm" --suggest 3 "hi, i need help with my " | cut -f1 | tr '\n' ' ')
    got=$(grep -o '"word":"[^"]*"' body.out | sed 's/"word":"//; s/"$//' | tr '\n' ' ')
    assert_equal "$got" "$want"
}
