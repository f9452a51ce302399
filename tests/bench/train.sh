#!/usr/bin/env bash
# train.sh PTB_DIR: lstm-train tokens/s against PyTorch 1.13 on the same model and batch shape, in the
# same run, at H=200 and H=650 (V=10k from PTB, 2 layers, B=20, T=35), with achieved GFLOP/s beside
# OpenBLAS sgemm's and lstm_gemm's (lib/nn/gemm.c) GFLOP/s on the step's shapes (alternating rounds, best
# round of each). BIN holds the tools; SECS (default 40) per measurement.
set -euo pipefail
ptb=${1:?usage: train.sh PTB_DIR}
bin=${BIN:-build/bin}
secs=${SECS:-40}
py=${TORCH_PY:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin/lstm-tok" -q --split space --unk-token '<unk>' "$ptb/ptb.train.txt" | "$bin/lstm-window" -L 35 --cross-docs > "$tmp/train.win"
V=$("$bin/lstm-dump" --header "$tmp/train.win" | sed -n 's/^  vocab_size: //p')
cc -O2 -march=native -I"$here/../../lib/nn" -I"$here/../../lib/common" -o "$tmp/sgemm" "$here/sgemm.c" "$here/../../lib/nn/gemm.c" $(pkg-config --cflags --libs openblas) -lpthread -lm

printf '%-28s %10s %10s %8s %12s %32s %32s\n' "config (V=$V, L=2, B=20, T=35)" "ours tok/s" "torch best" "ratio" "ours GFLOP/s" \
    "OpenBLAS GFLOP/s out/dW/dX/proj/rec" "lstm_gemm out/dW/dX/proj/rec"
for H in 200 650; do
    E=$H
    # lstm-train: untied, no dropout, SGD, as the PyTorch reference; tokens/s from its epoch log
    "$bin/lstm-train" -q -f --hidden $H --emb $E --layers 2 --no-tie --dropout 0 --optim sgd --lr 1 --clip 0.25 \
        --batch 20 --valid-frac 0 --epochs 1 --time-limit "$secs" --log "$tmp/log.tsv" -o "$tmp/m.ckpt" "$tmp/train.win"
    ours=$(awk -F'\t' '$1 == "epoch" { printf "%.0f", $12 }' "$tmp/log.tsv")
    # PyTorch at 2 threads (its best on a quiet machine) and 1 (its best when the other core is busy): the faster counts
    t2=$(OPENBLAS_NUM_THREADS=1 TORCH_THREADS=2 "$py" "$here/train_ref.py" "$V" $E $H 2 20 35 "$secs")
    t1=$(OPENBLAS_NUM_THREADS=1 TORCH_THREADS=1 "$py" "$here/train_ref.py" "$V" $E $H 2 20 35 "$secs")
    torch=$(( t2 > t1 ? t2 : t1 ))
    # forward + backward ~ 3x forward: per token, 2 layers of 2*4H*(In+H) and the output 2*V*H
    flops=$(awk -v V="$V" -v E=$E -v H=$H 'BEGIN { print 3 * (2 * 4 * H * (E + H) + 2 * 4 * H * (H + H) + 2 * V * H) }')
    gf=$(awk -v f="$flops" -v r="$ours" 'BEGIN { printf "%.1f", f * r / 1e9 }')
    read -r sg lg < <("$tmp/sgemm" "$V" $E $H 20 35 10)
    ratio=$(awk -v a="$ours" -v b="$torch" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-28s %10s %10s %8s %12s %32s %32s\n' "E=H=$H" "$ours" "$torch" "$ratio" "$gf" "$sg" "$lg"
done
