#!/usr/bin/env bash
# serve_http.sh [MODEL.ckpt]: lstm-serve under HTTP load, against the engine alone in the same run.
#  - lstm-serve -m MODEL --listen 127.0.0.1:0 --threads 2 (SERVE_THREADS), the port read from stderr;
#  - wrk (Debian's), WRK_THREADS threads (default 1: the machine has 2 cores and the server wants
#    both), 64 keep-alive connections (CONNS) for DURATION seconds (default 30) of typing-style
#    POST /v1/suggest (serve_http.lua: every prefix, a character at a time, of the lines of
#    serve_http.txt as {"text":"<prefix>","k":5}, each connection at its own place in them), after a
#    WARMUP-second run (default 3);
#  - requests/s, latency p50/p90/p99, errors (socket errors and non-2xx: any fails the run), the
#    server's VmRSS after the warm-up and at the end (more than MAXGROW_KB growth, default 4096,
#    fails the run), the CPU seconds the server and wrk used;
#  - then LAT_DURATION seconds (default DURATION / 3) at LAT_CONNS connections (default 2, the
#    workers): the latency of a request that does not queue behind 63 others. A closed loop of 64
#    connections always has 64 requests in flight, so its mean latency is 64 / (requests/s)
#    (Little's law): p50 <= 1 ms there would take 64,000 requests/s;
#  - the reference: the same requests, in the order the connections take turns, through
#    lstm-sample --serve on stdin (one thread, no HTTP): requests/s of the engine alone.
# Without MODEL: examples/ptb/out/small.ckpt when it is there, else a PTB "small"-sized model (2x200,
# V=10k) trained for TRAIN_SECS (default 60) seconds as sample.sh trains it (PTB= the corpus
# directory), else (no PTB) a model trained from tests/fixtures, which is said (its small vocabulary
# makes requests cheaper: its figures are not the goals' figures).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN:-$here/../../build/bin}
ptb=${PTB:-$here/../../../shared/data/ptb}
duration=${DURATION:-30} warmup=${WARMUP:-3} conns=${CONNS:-64} wt=${WRK_THREADS:-1}
latconns=${LAT_CONNS:-2} latdur=${LAT_DURATION:-$(( duration / 3 > 3 ? duration / 3 : 3 ))}
sthreads=${SERVE_THREADS:-2} maxgrow=${MAXGROW_KB:-4096} refn=${REF_N:-20000}
wrk=$(command -v wrk || true)
[ -n "$wrk" ] || { echo "serve_http: wrk is not installed (Debian package wrk; make bench installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
spid=
cleanup() {
    if [ -n "$spid" ]; then kill "$spid" 2> /dev/null || true; wait "$spid" 2> /dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

model=${1:-} what=
if [ -n "$model" ]; then
    what="$model"
elif [ -f "$here/../../examples/ptb/out/small.ckpt" ]; then
    model=$here/../../examples/ptb/out/small.ckpt what="PTB small (examples/ptb/out/small.ckpt)"
elif [ -f "$ptb/ptb.train.txt" ]; then
    echo "serve_http: training a PTB small-sized model (2x200, ${TRAIN_SECS:-60} s) on $ptb/ptb.train.txt" >&2
    "$bin/lstm-tok" -q --split space --unk-token '<unk>' "$ptb/ptb.train.txt" | "$bin/lstm-window" -q -L 20 --cross-docs > "$tmp/ptb.win"
    "$bin/lstm-train" -q --hidden 200 --layers 2 --epochs 1 --time-limit "${TRAIN_SECS:-60}" -o "$tmp/ptb_small.ckpt" "$tmp/ptb.win"
    model=$tmp/ptb_small.ckpt what="PTB small-sized (2x200, trained ${TRAIN_SECS:-60} s in this run)"
else
    echo "serve_http: no PTB at $ptb (PTB=DIR): a model trained from tests/fixtures instead; its vocabulary is" \
         "tiny, so these figures do not measure the goals" >&2
    fx=$here/../fixtures
    "$bin/lstm-tok" -q "$fx/eval_chat.csv" "$fx/chat_small.csv" | "$bin/lstm-window" -q -L 8 > "$tmp/chat.win"
    "$bin/lstm-train" -q --hidden 200 --layers 2 --epochs 2 --threads 1 -o "$tmp/chat.ckpt" "$tmp/chat.win"
    model=$tmp/chat.ckpt what="fixtures chat model (2x200, tiny vocabulary: NOT the goals' model)"
fi
sentences=$here/serve_http.txt

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
cpu() { awk '{ printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$1/stat"; } # user + system seconds

"$bin/lstm-serve" -m "$model" --listen 127.0.0.1:0 --threads "$sthreads" 2> "$tmp/serve.err" &
spid=$!
url=
for _ in $(seq 200); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$tmp/serve.err" || true)
    [ -n "$url" ] && break
    kill -0 "$spid" 2> /dev/null || break
    sleep 0.05
done
[ -n "$url" ] || { cat "$tmp/serve.err" >&2; echo "serve_http: lstm-serve did not start" >&2; exit 1; }
reply=$(curl -s -X POST --data-binary '{"text":"the company sa","k":5}' "${url}v1/suggest")
case $reply in '{"mode":"suggest","suggestions":['*) ;; *) echo "serve_http: unexpected reply: $reply" >&2; exit 1 ;; esac

run_wrk() { # seconds connections threads out -> wrk's done() lines, then its user + system CPU seconds
    ( "$wrk" -t "$3" -c "$2" -d "${1}s" --timeout 5s -s "$here/serve_http.lua" "$url" -- "$sentences" $(($2 / $3))
      times ) > "$4"
    grep -q '^errors ' "$4" || { cat "$4" >&2; echo "serve_http: wrk gave no figures" >&2; exit 1; }
}
alive() { # the server still runs, else its exit status and stderr, and the run fails
    kill -0 "$spid" 2> /dev/null && return 0
    local rc=0; wait "$spid" || rc=$?; spid=
    cat "$tmp/serve.err" >&2; echo "serve_http: lstm-serve died during the run (exit status $rc)" >&2; exit 1
}
get() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$2"; }
run_wrk "$warmup" "$conns" "$wt" "$tmp/warm.out"
alive
rss0=$(rss "$spid") cpu0=$(cpu "$spid")
run_wrk "$duration" "$conns" "$wt" "$tmp/wrk.out"
alive
rss1=$(rss "$spid") cpu1=$(cpu "$spid")
# latency unloaded: with 64 connections always waiting, p50 is about 64 / (requests/s) (Little's law)
run_wrk "$latdur" "$latconns" 1 "$tmp/lat.out"
alive
kill -TERM "$spid"
wait "$spid" || { echo "serve_http: lstm-serve did not exit 0 after SIGTERM" >&2; exit 1; }
spid=
read -r nreq < <(get requests "$tmp/wrk.out")
read -r dus < <(get duration_us "$tmp/wrk.out")
read -r p50 p90 p99 pmax pmean < <(get latency_us "$tmp/wrk.out")
read -r l50 l90 l99 lmax lmean < <(get latency_us "$tmp/lat.out")
read -r lnreq < <(get requests "$tmp/lat.out")
read -r ldus < <(get duration_us "$tmp/lat.out")
errors=0
for f in warm wrk lat; do
    read -r econn eread ewrite estatus etimeout < <(get errors "$tmp/$f.out")
    errors=$((errors + econn + eread + ewrite + estatus + etimeout))
    [ $f = wrk ] && errmain="connect $econn, read $eread, write $ewrite, non-2xx $estatus, timeout $etimeout"
done
# times: the shell's, then its children's (wrk) user and system time as XmY.YYYs
wcpu=$(tail -1 "$tmp/wrk.out" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] } printf "%.2f", s }')
rps=$(awk -v n="$nreq" -v d="$dus" 'BEGIN { printf "%.0f", n / d * 1e6 }')
lrps=$(awk -v n="$lnreq" -v d="$ldus" 'BEGIN { printf "%.0f", n / d * 1e6 }')

# the reference: the same request lines in the order the connections take turns, on one engine
awk -v conns="$conns" -v total="$refn" '
    { for (p = 1; p <= length($0); p++) req[n++] = "{\"text\":\"" substr($0, 1, p) "\",\"k\":5}" }
    END { for (g = 0; g < conns; g++) pos[g] = (g * 7919) % n
          for (i = 0; i < total; i++) { g = i % conns; print req[pos[g]]; pos[g] = (pos[g] + 1) % n } }' "$sentences" > "$tmp/ref.jsonl"
s=$(date +%s.%N)
OPENBLAS_NUM_THREADS=1 "$bin/lstm-sample" -m "$model" --serve < "$tmp/ref.jsonl" > "$tmp/ref.out"
e=$(date +%s.%N)
nref=$(grep -c '"suggestions":' "$tmp/ref.out" || true)
[ "$nref" = "$refn" ] || { echo "serve_http: lstm-sample --serve answered $nref of $refn reference requests" >&2; exit 1; }
ref=$(awk -v n="$refn" -v s="$s" -v e="$e" 'BEGIN { printf "%.0f", n / (e - s) }')

ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
met() { awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN { ok = op == ">=" ? a >= b : a <= b; printf ok ? "met" : "NOT met" }'; }
echo "model: $what"
echo "lstm-serve --threads $sthreads, wrk -t $wt -c $conns (keep-alive) -d ${duration}s after a ${warmup}s warm-up, typing-style POST /v1/suggest k=5 ($(wc -l < "$sentences") sentences, $(awk '{ n += length($0) } END { print n }' "$sentences") prefixes)"
printf '  %-28s %s\n' "requests/s" "$rps ($nreq requests in $(awk -v d="$dus" 'BEGIN { printf "%.1f", d / 1e6 }') s)" \
    "latency p50 / p90 / p99" "$(ms "$p50") / $(ms "$p90") / $(ms "$p99") (mean $(ms "$pmean"), max $(ms "$pmax"))" \
    "errors" "$errors in all three runs (this one: $errmain)" \
    "server VmRSS" "$rss0 kB after the warm-up, $rss1 kB at the end (growth $((rss1 - rss0)) kB, at most $maxgrow)" \
    "CPU seconds in the run" "server $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.1f", b - a }'), wrk $wcpu (2 cores: $((2 * duration)) available)"
echo "the same with wrk -t 1 -c $latconns for ${latdur}s (unloaded latency):"
printf '  %-28s %s\n' "requests/s" "$lrps" "latency p50 / p90 / p99" "$(ms "$l50") / $(ms "$l90") / $(ms "$l99") (mean $(ms "$lmean"), max $(ms "$lmax"))"
echo "reference: lstm-sample --serve on stdin, one thread, the same $refn requests in the same turns: $ref requests/s"
awk -v h="$rps" -v r="$ref" -v t="$sthreads" 'BEGIN { printf "  HTTP, %d workers / the engine alone: %.2fx (%.2fx per worker)\n", t, h / r, h / r / t }'
echo "goals (2 cores, wrk on the same machine with $wt thread(s)): >= 3,000 req/s $(met "$rps" 3000 '>='); at $conns connections p50 <= 1 ms $(met "$p50" 1000 '<='), p99 <= 5 ms $(met "$p99" 5000 '<='); at $latconns connections p50 <= 1 ms $(met "$l50" 1000 '<='), p99 <= 5 ms $(met "$l99" 5000 '<=')"
fail=0
[ "$errors" -eq 0 ] || { echo "serve_http: FAIL: $errors errors" >&2; fail=1; }
[ $((rss1 - rss0)) -le "$maxgrow" ] || { echo "serve_http: FAIL: VmRSS grew by $((rss1 - rss0)) kB (more than $maxgrow)" >&2; fail=1; }
exit $fail
