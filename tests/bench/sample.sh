#!/usr/bin/env bash
# sample.sh [MODEL.ckpt]: lstm-sample latency and throughput against PyTorch, measured in the same run.
#  - --suggest 5 requests in --serve mode, 2000 requests: "typing" (each line extends the previous one by
#    a word, as an editor sends them: the server reuses the state of the common prefix) and "distinct"
#    (unrelated prompts of 1..12 words: the whole prompt runs). Server-side time per request from
#    --timing (line read to reply flushed, tokenizing and JSON included) and client round trip.
#  - cold start (exec to first answer), with hyperfine when installed;
#  - --complete --greedy tokens/s.
# Without MODEL, a PTB "small"-sized model (2x200, V=10k) is trained for 60 s first (quality does not matter).
# PyTorch (tests/bench/sample_ref.py, /usr/bin/python3, OPENBLAS_NUM_THREADS=1, 2 torch threads) loads the
# same weights and does the same work per request.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN:-$here/../../build/bin}
ptb=${PTB:-$here/../../../shared/data/ptb}
py=${TORCH_PY:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=${1:-}
if [ -z "$model" ]; then
    "$bin/lstm-tok" -q --split space --unk-token '<unk>' "$ptb/ptb.train.txt" | "$bin/lstm-window" -q -L 20 --cross-docs > "$tmp/ptb.win"
    "$bin/lstm-train" -q --hidden 200 --layers 2 --epochs 1 --time-limit 60 -o "$tmp/ptb_small.ckpt" "$tmp/ptb.win"
    model=$tmp/ptb_small.ckpt
fi
# typing: 2000 prefixes of test sentences growing word by word; distinct: 2000 sentence heads
awk '{ s = ""; for (i = 1; i <= NF && i <= 12; i++) { s = s $i " "; print s; if (++c == 2000) exit } }' "$ptb/ptb.test.txt" > "$tmp/typing.txt"
awk '{ n = 1 + NR % 12; s = ""; for (i = 1; i <= NF && i <= n; i++) s = s $i " "; print s; if (NR == 2000) exit }' "$ptb/ptb.test.txt" > "$tmp/distinct.txt"

stats() { sort -n | awk '{ a[NR] = $1 } END { printf "%.1f %.1f", a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.5)] }'; }

# client round trip: one request at a time through pipes
cat > "$tmp/client.py" <<'PY'
import subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
lines = open(sys.stdin.fileno()).read().splitlines()
t = []
for l in lines + lines:
    t0 = time.perf_counter()
    p.stdin.write((l + "\n").encode()); p.stdin.flush()
    p.stdout.readline()
    t.append((time.perf_counter() - t0) * 1e6)
p.stdin.close(); p.wait()
t = sorted(t[len(lines):])
print("%.1f %.1f" % (t[len(t) // 2], t[int(len(t) * 0.99)]))
PY

printf '%-34s %18s %18s %18s %8s\n' "--suggest 5 (us, median p99)" "ours (server)" "ours (round trip)" "pytorch" "ratio"
for kind in typing distinct; do
    # server-side: the second pass over the prompts (the first warms up)
    cat "$tmp/$kind.txt" "$tmp/$kind.txt" | "$bin/lstm-sample" -m "$model" --serve --timing 2> "$tmp/t.txt" > /dev/null
    ours=$(tail -n 2000 "$tmp/t.txt" | stats)
    rt=$("$py" "$tmp/client.py" "$bin/lstm-sample" -m "$model" --serve < "$tmp/$kind.txt")
    mode=full; [ $kind = typing ] && mode=step
    ref=$(OPENBLAS_NUM_THREADS=1 "$py" "$here/sample_ref.py" "$model" "$tmp/$kind.txt" $mode)
    ratio=$(awk -v a="${ours%% *}" -v b="${ref%% *}" 'BEGIN { printf "%.1fx", b / a }')
    printf '%-34s %18s %18s %18s %8s\n' "$kind prompts" "$ours" "$rt" "$ref" "$ratio"
done

# cold start: exec to first answer
if command -v hyperfine > /dev/null; then
    hyperfine -N -w 3 -r 30 --export-json "$tmp/h.json" "$bin/lstm-sample -m $model --suggest 5 'the company said '" > /dev/null 2>&1
    cold=$("$py" -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f ms (median %.1f, min %.1f)" % (r["mean"]*1e3, r["median"]*1e3, r["min"]*1e3))' "$tmp/h.json")
else
    s=$(date +%s.%N); for i in $(seq 20); do "$bin/lstm-sample" -m "$model" --suggest 5 'the company said ' > /dev/null; done
    cold=$(awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f ms (mean of 20)", (e - s) * 50 }')
fi
echo "cold start (exec to first answer): $cold"

# greedy generation: 100 tokens from each of 100 prompts (EOS allowed: tokens counted from the replies)
sed -n 1,100p "$tmp/distinct.txt" | awk '{ printf "{\"text\":\"%s\",\"mode\":\"complete\",\"greedy\":true,\"max_new\":100}\n", $0 }' > "$tmp/gen.jsonl"
"$bin/lstm-sample" -m "$model" --serve --timing < "$tmp/gen.jsonl" 2> "$tmp/gt.txt" > "$tmp/gen.out"
ours=$(paste -d' ' "$tmp/gt.txt" <(sed 's/.*"tokens":\([0-9]*\).*/\1/' "$tmp/gen.out") | awk '{ us += $1; n += $2 } END { printf "%.0f", n / us * 1e6 }')
sed -n 1,100p "$tmp/distinct.txt" > "$tmp/gen.txt"
ref=$(OPENBLAS_NUM_THREADS=1 "$py" "$here/sample_ref.py" "$model" "$tmp/gen.txt" greedy)
echo "--complete --greedy: ours $ours tokens/s, pytorch $ref tokens/s, ratio $(awk -v a="$ours" -v b="$ref" 'BEGIN { printf "%.1fx", a / b }')"
