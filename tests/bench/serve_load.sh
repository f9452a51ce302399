#!/usr/bin/env bash
# serve_load.sh [MODEL.ckpt] [N]: lstm-sample --serve under load. N requests (default 100000) of every
# kind (plain-text suggest, partial words, JSON suggest/complete/beam, malformed JSON, unknown fields,
# invalid UTF-8, long lines) are streamed to one server; every reply must be one line of valid JSON,
# an object, an error exactly when the request was bad, one reply per request. RSS is read from
# /proc after the first 1000 replies and after the last one: the end may not exceed the start by more
# than 2 MB (no growth per request). Without MODEL a small chat model is trained from the fixtures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN:-$here/../../build/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=${1:-}
n=${2:-100000}
if [ -z "$model" ]; then
    fx=$here/../fixtures
    "$bin/lstm-tok" -q "$fx/eval_chat.csv" "$fx/chat_small.csv" | "$bin/lstm-window" -q -L 8 > "$tmp/chat.win"
    "$bin/lstm-train" -q --hidden 32 --layers 1 --epochs 3 --threads 1 -o "$tmp/chat.ckpt" "$tmp/chat.win"
    model=$tmp/chat.ckpt
fi
OPENBLAS_NUM_THREADS=1 python3 - "$bin/lstm-sample" "$model" "$n" <<'PY'
import json, subprocess, sys, threading, time
exe, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
# (request bytes, True if the reply must be an error)
kinds = [
    (b"hi, i need help with my ", False),
    (b"i need hel", False),
    (b"", False),
    (b"sure! what's the order", False),
    (b'{"text":"thanks for","k":3}', False),
    (b'{"text":"sure","mode":"complete","max_new":6,"temperature":0.8,"top_k":10,"top_p":0.9,"seed":7}', False),
    (b'{"text":"hello","mode":"complete","beam":3,"max_new":4}', False),
    (b'{"text":"my order","mode":"complete","greedy":true,"max_new":5,"repetition_penalty":1.3}', False),
    (b'{"text":"x","speaker":null}', False),
    (b'{"text": "bad json"', True),
    (b'[1,2,3]', True),
    (b'{"txt":"typo"}', True),
    (b'{"text":"a","k":0}', True),
    (b'{"text":"a","top_p":2}', True),
    (b'{"text":"a","mode":"shout"}', True),
    (b'{"text":"a","speaker":"nobody-here"}', True),
    (b'caf\xc3\xa9 na\xffive \xe2\x82', False),
    (b'word ' * 400, False),
]
p = subprocess.Popen([exe, "-m", model, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1 << 16)
sent = []
def writer():
    for i in range(n):
        req, bad = kinds[i % len(kinds)]
        p.stdin.write(req + b"\n")
    p.stdin.flush()
def rss():
    with open(f"/proc/{p.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1
t = threading.Thread(target=writer)
t0 = time.time()
t.start()
bad_replies = 0
rss_start = rss_end = None
for i in range(n):
    line = p.stdout.readline()
    req, want_err = kinds[i % len(kinds)]
    ok = line.endswith(b"\n") and line.count(b"\n") == 1
    try:
        obj = json.loads(line)
        ok = ok and isinstance(obj, dict) and (("error" in obj) == want_err) and (want_err or obj.get("mode") in ("suggest", "complete"))
    except ValueError:
        ok = False
    if not ok:
        bad_replies += 1
        if bad_replies <= 5:
            print(f"malformed reply {i} to {req[:60]!r}: {line[:200]!r}", file=sys.stderr)
    if i == 999:
        rss_start = rss()
    if i == n - 1:
        rss_end = rss()
t.join()
p.stdin.close()
rest = p.stdout.read()  # nothing may follow the last reply
rc = p.wait()
dt = time.time() - t0
print(f"serve_load: {n} requests in {dt:.1f} s ({n / dt:.0f}/s), {bad_replies} malformed replies, "
      f"{len(rest)} stray bytes, exit {rc}; RSS after 1000 replies {rss_start} kB, after {n} {rss_end} kB "
      f"(growth {rss_end - rss_start} kB)")
fail = bad_replies or rest or rc != 0 or rss_end - rss_start > 2048
sys.exit(1 if fail else 0)
PY
