#!/usr/bin/env bash
# compare.sh OLD_BIN NEW_BIN [PTB_DIR]: two builds of the tools side by side, for a change that must not
# cost speed (a refactor): lstm-train tokens/s (PTB, 2x200, B=20, T=35, SECS seconds per run, default
# 25) and lstm-sample --serve --suggest 5 server-side median and p99 (typing and distinct prompts on
# one model, and the CPU time of the whole 4000-request run from perf stat's task-clock, which a shared
# machine disturbs far less than latencies), in alternating rounds (old, new, old, new: ROUNDS,
# default 2) so that the machine's drift falls on both (CPU: perf, Debian's linux-perf); the best round of each counts.
#   tests/bench/compare.sh /tmp/old/build/bin build/bin
set -euo pipefail
old=${1:?usage: compare.sh OLD_BIN NEW_BIN [PTB_DIR]} new=${2:?usage: compare.sh OLD_BIN NEW_BIN [PTB_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
ptb=${3:-$here/../../../shared/data/ptb}
secs=${SECS:-25} rounds=${ROUNDS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$new/lstm-tok" -q --split space --unk-token '<unk>' "$ptb/ptb.train.txt" | "$new/lstm-window" -q -L 35 --cross-docs > "$tmp/train.win"
"$new/lstm-train" -q --hidden 200 --layers 2 --epochs 1 --time-limit 30 -o "$tmp/m.ckpt" "$tmp/train.win"
awk '{ s = ""; for (i = 1; i <= NF && i <= 12; i++) { s = s $i " "; print s; if (++c == 2000) exit } }' "$ptb/ptb.test.txt" > "$tmp/typing.txt"
awk '{ n = 1 + NR % 12; s = ""; for (i = 1; i <= NF && i <= n; i++) s = s $i " "; print s; if (NR == 2000) exit }' "$ptb/ptb.test.txt" > "$tmp/distinct.txt"
stats() { sort -n | awk '{ a[NR] = $1 } END { printf "%.1f %.1f", a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.5)] }'; }

train() { # bin -> tokens/s of one timed epoch
    "$1/lstm-train" -q -f --hidden 200 --layers 2 --no-tie --dropout 0 --optim sgd --lr 1 --clip 0.25 --batch 20 \
        --valid-frac 0 --epochs 1 --time-limit "$secs" --log "$tmp/log.tsv" -o "$tmp/t.ckpt" "$tmp/train.win"
    awk -F'\t' '$1 == "epoch" { printf "%.0f", $12 }' "$tmp/log.tsv"
}
serve() { # bin kind -> median p99 (us) of the second pass, CPU ms of the run
    cat "$tmp/$2.txt" "$tmp/$2.txt" > "$tmp/in.txt"
    local run=(); command -v perf > /dev/null && run=(perf stat -x, -e task-clock -o "$tmp/perf.txt") || echo "-,task-clock" > "$tmp/perf.txt"
    "${run[@]}" "$1/lstm-sample" -m "$tmp/m.ckpt" --serve --timing < "$tmp/in.txt" 2> "$tmp/t.txt" > /dev/null
    printf '%s %s' "$(tail -n 2000 "$tmp/t.txt" | stats)" "$(awk -F, '/task-clock/ { printf ($1 == "-" ? "-" : "%.0f"), $1 }' "$tmp/perf.txt")"
}
best_max() { tr ' ' '\n' | sort -n | tail -1; }
best_min() { sort -n -k1,1 | head -1 | cut -d' ' -f1,2; }
best_cpu() { awk 'NF { print $3 }' | sort -n | head -1; }

declare -A tr sv
for r in $(seq "$rounds"); do
    for b in old new; do
        bin=${!b}
        tr[$b]="${tr[$b]:-} $(train "$bin")"
        for k in typing distinct; do sv[$b.$k]="${sv[$b.$k]:-}$(serve "$bin" $k)"$'\n'; done
    done
done
to=$(echo ${tr[old]} | best_max) tn=$(echo ${tr[new]} | best_max)
printf '%-40s %16s %16s %8s\n' "best of $rounds rounds" "old" "new" "new/old"
printf '%-40s %16s %16s %8s\n' "lstm-train tok/s (2x200, B=20, T=35)" "$to" "$tn" "$(awk -v a="$tn" -v b="$to" 'BEGIN { printf "%.3f", a / b }')"
for k in typing distinct; do
    o=$(printf '%s' "${sv[old.$k]}" | best_min) n=$(printf '%s' "${sv[new.$k]}" | best_min)
    printf '%-40s %16s %16s %8s\n' "--suggest 5 $k (us, median p99)" "$o" "$n" "$(awk -v a="${n%% *}" -v b="${o%% *}" 'BEGIN { printf "%.3f", a / b }')"
    o=$(printf '%s' "${sv[old.$k]}" | best_cpu) n=$(printf '%s' "${sv[new.$k]}" | best_cpu)
    printf '%-40s %16s %16s %8s\n' "  CPU ms for the 4000 requests" "$o" "$n" "$(awk -v a="$n" -v b="$o" 'BEGIN { printf "%.3f", a / b }')"
done
echo "all rounds: train old${tr[old]} / new${tr[new]}"
