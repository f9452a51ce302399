#!/usr/bin/env bash
# adaptive.sh SGD_DIR: the adaptive softmax (lstm-train --cutoffs) against the full softmax, ours and
# PyTorch 1.13's (nn.Linear + cross-entropy, nn.AdaptiveLogSoftmaxWithLoss), in the same run, on two large
# vocabularies: the SGD dialogue corpus at its full vocabulary (train.csv, validation dev.csv) and a
# synthetic Zipf corpus of 50,000 word types (zipf_corpus.py, 3M tokens, the last 5% of windows held
# out). Model 2x200 untied, B=20, T=35, cutoffs CUTOFFS (default 2000,10000), div 4.
#   1. tokens/s for SECS seconds each (default 40): SGD lr 1 as train.sh; PyTorch trains on the same ids
#      (IDS=, as B contiguous lanes), at 1 and 2 threads, the faster counts.
#   2. validation perplexity after QSECS seconds of training (default 300; 0 skips it), full vs adaptive, Adam.
# BIN holds the tools.
set -euo pipefail
sgd=${1:?usage: adaptive.sh SGD_DIR}
bin=${BIN:-build/bin}
secs=${SECS:-40}
qsecs=${QSECS:-300}
cut=${CUTOFFS:-2000,10000}
py=${TORCH_PY:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin/lstm-tok" -q < "$sgd/train.csv" > "$tmp/sgd.tok"
"$bin/lstm-tok" -q -m "$tmp/sgd.tok" < "$sgd/dev.csv" | "$bin/lstm-window" -L 35 --cross-docs > "$tmp/sgd-valid.win"
"$py" "$here/zipf_corpus.py" 50000 3000000 1 | "$bin/lstm-tok" -q --split space > "$tmp/zipf.tok"
for c in sgd zipf; do
    "$bin/lstm-window" -L 35 --cross-docs < "$tmp/$c.tok" > "$tmp/$c.win"
    "$bin/lstm-dump" --ids "$tmp/$c.tok" > "$tmp/$c.ids"
done

vocab() { "$bin/lstm-dump" --header "$1" | sed -n 's/^  vocab_size: //p'; }
ours() { # ours WIN ARGS...: tokens/s of lstm-train's epoch log
    local win=$1
    shift
    "$bin/lstm-train" -q -f --hidden 200 --layers 2 --no-tie --dropout 0 --optim sgd --lr 1 --clip 0.25 --batch 20 \
        --valid-frac 0 --epochs 1 --time-limit "$secs" --log "$tmp/log.tsv" -o "$tmp/m.ckpt" "$@" "$win"
    awk -F'\t' '$1 == "epoch" { printf "%.0f", $12 }' "$tmp/log.tsv"
}
torch() { # torch IDS V [CUTOFFS]: the faster of 1 and 2 threads
    local a b
    a=$(OPENBLAS_NUM_THREADS=1 TORCH_THREADS=2 IDS=$1 ADAPTIVE=${3:-} "$py" "$here/train_ref.py" "$2" 200 200 2 20 35 "$secs")
    b=$(OPENBLAS_NUM_THREADS=1 TORCH_THREADS=1 IDS=$1 ADAPTIVE=${3:-} "$py" "$here/train_ref.py" "$2" 200 200 2 20 35 "$secs")
    echo $(( a > b ? a : b ))
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

echo "tokens/s, 2x200 untied, B=20, T=35, adaptive cutoffs $cut div 4 (${secs} s each)"
printf '%-22s %10s %10s %12s %12s %14s %14s %14s\n' corpus "ours full" "ours adapt" "torch full" "torch adapt" \
    "adapt/ours" "adapt/t.full" "adapt/t.adapt"
for c in sgd zipf; do
    V=$(vocab "$tmp/$c.win")
    of=$(ours "$tmp/$c.win")
    oa=$(ours "$tmp/$c.win" --cutoffs "$cut")
    tf=$(torch "$tmp/$c.ids" "$V")
    ta=$(torch "$tmp/$c.ids" "$V" "$cut")
    printf '%-22s %10s %10s %12s %12s %14s %14s %14s\n' "$c (V=$V)" "$of" "$oa" "$tf" "$ta" "$(ratio "$oa" "$of")" \
        "$(ratio "$oa" "$tf")" "$(ratio "$oa" "$ta")"
done

[ "$qsecs" = 0 ] && exit 0
echo
echo "validation perplexity after ${qsecs} s of training (Adam lr 0.002, clip 0.25, dropout 0, 2x200 untied, B=20)"
printf '%-22s %14s %14s %16s %16s\n' corpus "full ppl" "adaptive ppl" "full tokens" "adaptive tokens"
for c in sgd zipf; do
    V=$(vocab "$tmp/$c.win")
    valid=(--valid-frac 0.05)
    [ "$c" = sgd ] && valid=(--valid "$tmp/sgd-valid.win")
    row=()
    for a in "" "--cutoffs $cut"; do
        # shellcheck disable=SC2086
        "$bin/lstm-train" -q -f --hidden 200 --layers 2 --no-tie --dropout 0 --batch 20 "${valid[@]}" --epochs 1000 \
            --patience 0 --time-limit "$qsecs" --log "$tmp/q.tsv" -o "$tmp/q.ckpt" $a "$tmp/$c.win"
        # the last epoch row's valid ppl (column 10, measured when the time ran out), the tokens trained (column 4)
        row+=("$(awk -F'\t' '$1 == "epoch" { p = $10 } END { printf "%.2f", p }' "$tmp/q.tsv")")
        row+=("$(awk -F'\t' '$1 == "epoch" { n += $4 } END { printf "%.0f", n }' "$tmp/q.tsv")")
    done
    printf '%-22s %14s %14s %16s %16s\n' "$c (V=$V)" "${row[0]}" "${row[2]}" "${row[1]}" "${row[3]}"
done
