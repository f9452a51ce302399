#!/usr/bin/env bash
# mpi.sh PTB_DIR: lstm-train on this machine's cores two ways with the same global batch (B=20, T=35,
# V=10k from PTB, 2 layers, untied, SGD, no dropout): 1 process x 2 threads against 2 ranks x 1 thread
# under mpirun (the gradient reduction overlapped with backward, and not), at H=200 and H=650;
# tokens/s from each run's epoch row, the bytes each rank reduces per step and the time it waits for
# the reduction after backward (lstm-train -v), and the compute time per step of 1 process x 1 thread
# (the input of the scaling model in the README). BIN holds the tools; SECS (default 30) per run.
set -euo pipefail
ptb=${1:?usage: mpi.sh PTB_DIR}
bin=${BIN:-build/bin}
secs=${SECS:-30}
mpirun=${MPIRUN:-mpirun --oversubscribe --allow-run-as-root}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin/lstm-tok" -q --split space --unk-token '<unk>' "$ptb/ptb.train.txt" | "$bin/lstm-window" -L 35 --cross-docs > "$tmp/train.win"

# run NAME LAUNCH... -- FLAGS: one time-limited epoch; prints "tok/s bytes/step wait_ms/step"
run() {
    local launch=() flags=()
    while [ "$1" != -- ]; do launch+=("$1"); shift; done
    shift
    "${launch[@]}" "$bin/lstm-train" -v -f --layers 2 --no-tie --dropout 0 --optim sgd --lr 1 --clip 0.25 --batch 20 \
        --valid-frac 0 --epochs 1 --time-limit "$secs" --log "$tmp/log.tsv" -o "$tmp/m.ckpt" "$@" "$tmp/train.win" \
        2> "$tmp/err" > /dev/null
    local tok bytes wait
    tok=$(awk -F'\t' '$1 == "epoch" { printf "%.0f", $12 }' "$tmp/log.tsv")
    bytes=$(sed -n 's/^lstm-train: allreduce: \([0-9]*\) bytes per step, \([0-9.]*\) ms .*/\1/p' "$tmp/err")
    wait=$(sed -n 's/^lstm-train: allreduce: \([0-9]*\) bytes per step, \([0-9.]*\) ms .*/\2/p' "$tmp/err")
    echo "$tok ${bytes:--} ${wait:--}"
}

printf '%-8s %14s %14s %22s %22s %14s %16s\n' "E=H" "1x1 tok/s" "1x2 tok/s" "2x1 tok/s (overlap)" "2x1 tok/s (whole)" \
    "bytes/step" "wait ms/step"
for H in 200 650; do
    read -r t11 _ _ < <(run env -- --hidden $H --emb $H --threads 1)
    read -r t12 _ _ < <(run env -- --hidden $H --emb $H --threads 2)
    read -r t21 b21 w21 < <(run $mpirun -np 2 -- --hidden $H --emb $H --threads 1)
    read -r t21n b21n w21n < <(run $mpirun -np 2 -- --hidden $H --emb $H --threads 1 --no-overlap)
    ms=$(awk -v r="$t11" 'BEGIN { printf "%.1f", 700 / r * 1000 }') # 20 x 35 tokens per step
    printf '%-8s %14s %14s %22s %22s %14s %16s\n' "$H" "$t11 ($ms ms)" "$t12" \
        "$t21 ($(awk -v a="$t21" -v b="$t12" 'BEGIN { printf "%.2fx", a / b }'))" \
        "$t21n ($(awk -v a="$t21n" -v b="$t12" 'BEGIN { printf "%.2fx", a / b }'))" "$b21" "$w21 / $w21n"
done
