#!/usr/bin/env bash
# quant.sh [MODEL.ckpt]: what lstm-export's quantization buys and costs, in one run:
#  - the output-layer GEMV (10000 x 200) in microseconds: fp32 cblas_sgemv, int8 and bf16 with the
#    scalar reference and with the AVX2 kernel (build/tests/test_quant bench);
#  - the checkpoint and its none / int8 / bf16 exports (the last two also with --quantize-recurrent,
#    "+rec") side by side: file size, PTB test perplexity
#    (lstm-eval), and lstm-sample --suggest 5 server-side microseconds per request (--serve --timing,
#    median and p99 of the second of two passes) for typing prompts (each extends the previous one by a
#    word) and distinct 1-12-word prompts, 2000 each, and the resident size of a one-shot --suggest
#    (GNU time's maximum RSS; 0 without /usr/bin/time).
# Without MODEL, a PTB "small"-sized model (2x200, V=10k, untied) is trained for SECS seconds (default 60).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN:-$here/../../build/bin}
testbin=${TESTBIN:-$bin/../tests}
ptb=${PTB:-$here/../../../shared/data/ptb}
secs=${SECS:-60}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$testbin/test_quant" ]; then
    echo "quant.sh: $testbin/test_quant is not built (make build/tests/test_quant)" >&2
    exit 1
fi
"$testbin/test_quant" bench
echo

model=${1:-}
"$bin/lstm-tok" -q --split space --unk-token '<unk>' --vocab-out "$tmp/ptb.vocab" "$ptb/ptb.train.txt" |
    "$bin/lstm-window" -q -L 20 --cross-docs > "$tmp/train.win"
if [ -z "$model" ]; then
    echo "training a 2x200 PTB model for ${secs}s: lstm-train --optim sgd --lr 20 --clip 0.25 --hidden 200 --layers 2 --no-tie --dropout 0 --init-scale 0.1 --batch 20 --time-limit $secs"
    "$bin/lstm-train" -q --optim sgd --lr 20 --clip 0.25 --hidden 200 --layers 2 --no-tie --dropout 0 --init-scale 0.1 \
        --batch 20 --epochs 1 --time-limit "$secs" -o "$tmp/ptb.ckpt" "$tmp/train.win"
    model=$tmp/ptb.ckpt
    tok=(-m "$tmp/ptb.vocab")
else
    tok=(-m "$model")
fi
"$bin/lstm-tok" -q "${tok[@]}" "$ptb/ptb.test.txt" | "$bin/lstm-window" -q -L 20 --cross-docs > "$tmp/test.win"
for q in none int8 bf16; do "$bin/lstm-export" -q -m "$model" -o "$tmp/m.$q.lstm" --quantize "$q"; done
for q in int8 bf16; do "$bin/lstm-export" -q -m "$model" -o "$tmp/m.$q+rec.lstm" --quantize "$q" --quantize-recurrent; done

awk '{ s = ""; for (i = 1; i <= NF && i <= 12; i++) { s = s $i " "; print s; if (++c == 2000) exit } }' "$ptb/ptb.test.txt" > "$tmp/typing.txt"
awk '{ n = 1 + NR % 12; s = ""; for (i = 1; i <= NF && i <= n; i++) s = s $i " "; print s; if (NR == 2000) exit }' "$ptb/ptb.test.txt" > "$tmp/distinct.txt"
stats() { sort -n | awk '{ a[NR] = $1 } END { printf "%.0f / %.0f", a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.5)] }'; }

printf '%-16s %11s %10s %9s %22s %24s %8s\n' model bytes "test ppl" "vs fp32" "typing us (p50 / p99)" "distinct us (p50 / p99)" "RSS MB"
p0=
for m in "$model" "$tmp/m.none.lstm" "$tmp/m.int8.lstm" "$tmp/m.bf16.lstm" "$tmp/m.int8+rec.lstm" "$tmp/m.bf16+rec.lstm"; do
    case $m in
    "$model") name="checkpoint" ;;
    *) name="export ${m##*/m.}"; name=${name%.lstm} ;;
    esac
    ppl=$("$bin/lstm-eval" --json -m "$m" "$tmp/test.win" | sed 's/.*"perplexity":\([^,}]*\).*/\1/')
    [ -n "$p0" ] || p0=$ppl
    rel=$(awk -v a="$ppl" -v b="$p0" 'BEGIN { printf "%+.3f%%", (a / b - 1) * 100 }')
    lat=()
    for kind in typing distinct; do
        cat "$tmp/$kind.txt" "$tmp/$kind.txt" | "$bin/lstm-sample" -m "$m" --serve --timing 2> "$tmp/t.txt" > /dev/null
        lat+=("$(tail -n 2000 "$tmp/t.txt" | stats)")
    done
    rss=0
    if [ -x /usr/bin/time ]; then
        rss=$( { /usr/bin/time -f %M "$bin/lstm-sample" -m "$m" --suggest 5 "the company said " > /dev/null; } 2>&1 | tail -n 1)
    fi
    printf '%-16s %11s %10.2f %9s %22s %24s %8.1f\n' "$name" "$(stat -c %s "$m")" "$ppl" "$rel" "${lat[0]}" "${lat[1]}" \
        "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
done
"$bin/lstm-sample" -v -m "$tmp/m.int8+rec.lstm" --suggest 1 "the " 2>&1 > /dev/null | sed -n 1p
