#!/usr/bin/env bats
# lstm-serve: every endpoint over loopback with curl, replies equal to lstm-sample --serve's for the
# same request lines, every error status, the event log and /v1/stats against a hand count, clients
# in parallel, clients that stall or leave mid-body, and SIGTERM. Each test starts its own server on
# a port the kernel picks (--listen 127.0.0.1:0, the URL read from stderr), stopped in teardown.

bats_require_minimum_version 1.5.0

setup_file() {
    export FIX="$BATS_TEST_DIRNAME/fixtures"
    export T="$BATS_FILE_TMPDIR"
    export SRV="$LSTM_BIN/lstm-serve" S="$LSTM_BIN/lstm-sample"
    local B="$LSTM_BIN"
    "$B/lstm-tok" -q -o "$T/chat.tok" "$FIX/chat_small.csv" "$FIX/eval_chat.csv"
    "$B/lstm-window" -q -L 8 "$T/chat.tok" > "$T/chat.win"
    "$B/lstm-train" -q --hidden 32 --epochs 2 --threads 1 -o "$T/chat.ckpt" "$T/chat.win"
}

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    load 'serve_helpers'
    cd "$BATS_TEST_TMPDIR"
    SPID=
}

teardown() { serve_stop; }

# start [flags...]: a server on a free port; $U is its URL (ends in /), $SPID its pid, serve.err its stderr
start() { serve_start "$T/chat.ckpt" "$@"; }

# post PATH BODY: the reply body in $output, the status in $status_code
post() {
    output=$(curl -s -o body.out -w '%{http_code}' -X POST --data-binary "$2" "$U${1#/}")
    status_code=$output
    output=$(cat body.out)
}

no_took() { sed 's/,"took_us":[0-9]*}$/}/'; }

@test "--help, --version, usage errors" {
    run --separate-stderr "$SRV" --help
    assert_success
    assert_output --partial "curl -s localhost:8080/v1/suggest -d"
    run --separate-stderr "$SRV" --version
    assert_output "lstm-serve 1.0"
    run --separate-stderr "$SRV"
    assert_failure 2
    assert_equal "$stderr" "lstm-serve: no model: give -m MODEL.ckpt (see --help)"
    run --separate-stderr "$SRV" -m "$T/chat.ckpt" --listen nowhere
    assert_failure 2
    assert_equal "$stderr" "lstm-serve: --listen: expected HOST:PORT, got 'nowhere'"
    run --separate-stderr "$SRV" -m "$T/chat.ckpt" --listen 127.0.0.1:99999
    assert_failure 2
    assert_equal "$stderr" "lstm-serve: --listen: expected a port from 0 to 65535, got '99999'"
    run --separate-stderr "$SRV" -m "$T/chat.win"
    assert_failure 1
    [[ "$stderr" == "lstm-serve: $T/chat.win: "* ]]
    # --log appends: never to the model, never to a file that is not text
    cp "$T/chat.ckpt" m.ckpt
    run --separate-stderr "$SRV" -m m.ckpt --log m.ckpt
    assert_failure 2
    assert_equal "$stderr" "lstm-serve: --log m.ckpt is the model: give the event log its own file"
    run --separate-stderr "$SRV" -m m.ckpt --log "$T/chat.win"
    assert_failure 1
    [[ "$stderr" =~ ^"lstm-serve: $T/chat.win: line "[0-9]+": not an event log (a NUL byte): --log appends JSON lines to it"$ ]]
    cmp m.ckpt "$T/chat.ckpt"
}

@test "a port in use is one line, exit 1" {
    start
    port=${U##*:}
    port=${port%/}
    run --separate-stderr "$SRV" -m "$T/chat.ckpt" --listen "127.0.0.1:$port"
    assert_failure 1
    assert_equal "$stderr" "lstm-serve: --listen 127.0.0.1:$port: Address already in use"
}

@test "suggest and complete: the replies of lstm-sample --serve to the same lines, plus took_us" {
    ctx='[{"speaker":"user","text":"hi, i need help with my order"},{"speaker":"agent","text":"sure! what is your order number?"}]'
    printf '%s\n' \
        '{"id":1,"text":"hi, i need help with my ","mode":"suggest"}' \
        '{"id":"b","text":"i need hel","k":2,"mode":"suggest"}' \
        "{\"id\":3,\"text\":\"it is \",\"speaker\":\"user\",\"mode\":\"suggest\",\"context\":$ctx}" \
        '{"id":4,"text":"it is ","speaker":"user","mode":"suggest"}' \
        '{"text":"sure","mode":"complete","speaker":"agent","seed":2,"max_new":8}' \
        '{"id":6,"text":"thanks","mode":"complete","greedy":true,"max_new":5}' \
        '{"id":7,"text":"a","k":0,"mode":"suggest"}' \
        '{"id":8,"text":"a","speaker":"bob","mode":"suggest"}' \
        '{"id":9,"text":"a","colour":1,"mode":"suggest"}' \
        '{"id":10,"text": "bad json","mode":"suggest"' > req.txt
    # one worker thread: its engine reads the same prompts in the same order as lstm-sample's
    "$S" -m "$T/chat.ckpt" --serve < req.txt > want.txt
    start --threads 1
    : > got.txt
    while IFS= read -r line; do
        mode=$(jq -r .mode <<< "$line" 2> /dev/null || echo suggest)
        post "/v1/$mode" "$line"
        printf '%s\n' "$output" | no_took >> got.txt
        printf '%s\n' "$status_code" >> codes.txt
    done < req.txt
    diff want.txt got.txt
    assert_equal "$(tr '\n' ' ' < codes.txt)" "200 200 200 200 200 200 400 400 400 400 "
    # the answers carry took_us, a whole number of microseconds, as their last field
    post /v1/suggest '{"text":"hi "}'
    [[ "$output" =~ ,\"took_us\":[0-9]+\}$ ]]
    # the context changes the answer
    [ "$(sed -n 3p got.txt | jq -c .suggestions)" != "$(sed -n 4p got.txt | jq -c .suggestions)" ]
    # the id comes first, echoed as given, errors included
    assert_equal "$(sed -n 2p got.txt | cut -c1-13)" '{"id":"b","mo'
    assert_equal "$(sed -n 7p got.txt)" '{"id":7,"error":"k must be from 1 to 1000"}'
    assert_equal "$(sed -n 9p got.txt)" '{"id":9,"error":"unknown field \"colour\""}'
}

@test "the mode is the path's: a body that contradicts it, a body that is not a JSON object, are 400" {
    start
    post /v1/suggest '{"text":"hi","mode":"complete"}'
    assert_equal "$status_code" 400
    assert_equal "$output" '{"error":"mode \"complete\" contradicts the path /v1/suggest"}'
    post /v1/complete '{"id":"x","text":"hi","mode":"suggest"}'
    assert_equal "$status_code" 400
    assert_equal "$output" '{"id":"x","error":"mode \"suggest\" contradicts the path /v1/complete"}'
    post /v1/complete '{"text":"sure","max_new":3}'
    assert_equal "$status_code" 200
    [[ "$output" == '{"mode":"complete","completion":'* ]]
    post /v1/suggest 'hi, i need help with my '
    assert_equal "$status_code" 400
    assert_equal "$output" '{"error":"malformed JSON: the body must be a JSON object (formats/serve.md)"}'
    post /v1/suggest '[1,2]'
    assert_equal "$status_code" 400
    post /v1/suggest '{"text":"a","text":"b"}'
    assert_equal "$status_code" 400
    assert_output --partial '"error":"malformed JSON: duplicate field'
    post /v1/suggest ''
    assert_equal "$status_code" 400
}

@test "404 for an unknown path, 405 with Allow for a wrong method, /healthz, HEAD" {
    start
    run curl -s -o body.out -w '%{http_code}' "${U}v1/nothing"
    assert_output 404
    assert_equal "$(cat body.out)" '{"error":"not found (formats/serve.md lists the endpoints)"}'
    run curl -s -o body.out -w '%{http_code}' "${U}etc/passwd"
    assert_output 404
    run curl -s -o body.out -w '%{http_code}' "${U}../../etc/passwd" --path-as-is
    assert_output 404
    run curl -s -i "${U}v1/suggest"
    assert_output --partial "HTTP/1.1 405 Method Not Allowed"
    assert_output --partial "Allow: POST"
    assert_output --partial '{"error":"method not allowed: /v1/suggest takes POST"}'
    run curl -s -i -X POST -d x "${U}healthz"
    assert_output --partial "HTTP/1.1 405"
    assert_output --partial "Allow: GET, HEAD"
    run curl -s -w ' %{http_code}' "${U}healthz"
    assert_output '{"ok":true} 200'
    run curl -s -I "${U}healthz"
    assert_output --partial "HTTP/1.1 200 OK"
    refute_output --partial "Access-Control"
}

@test "GET / is the page in the binary, with a policy that lets it talk to this server only; GET /v1/model" {
    start
    run curl -s -i "$U"
    assert_output --partial "HTTP/1.1 200 OK"
    assert_output --partial "Content-Type: text/html; charset=utf-8"
    assert_output --partial "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self';"
    assert_output --partial "X-Content-Type-Options: nosniff"
    # the body is tools/serve/page.html byte for byte (no other file is ever served)
    curl -s -o page.out "$U"
    cmp page.out "$BATS_TEST_DIRNAME/../tools/serve/page.html"
    run grep -cE '(src|href)="(https?:)?//' page.out
    assert_output 0
    run curl -s -I "$U"
    assert_output --partial "HTTP/1.1 200 OK"
    assert_output --partial "Content-Length: $(wc -c < page.out)"
    run curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$U"
    assert_output 405
    for p in index.html page.html favicon.ico tools/serve/page.html; do
        run curl -s -o /dev/null -w '%{http_code}' "$U$p"
        assert_output 404
    done
    run curl -s "${U}v1/model"
    assert_output '{"model":"chat.ckpt","tokenizer":"words","cell":"lstm","layers":2,"hidden":32,"vocab_size":'"$("$LSTM_BIN/lstm-dump" "$T/chat.ckpt" | sed -n 's/^tokenizer: words, \([0-9]*\) ids.*/\1/p')"',"speakers":["user","agent"]}'
    run curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "${U}v1/model"
    assert_output 405
}

@test "a body over --max-body is 413 before it is read (Content-Length) or as it goes over (chunked)" {
    start --max-body 100
    body="{\"text\":\"$(printf 'a%.0s' $(seq 200))\"}"
    post /v1/suggest "$body"
    assert_equal "$status_code" 413
    assert_equal "$output" '{"error":"the body is larger than 100 bytes (--max-body)"}'
    # a 100 MB body is refused at once: the server never waits for it
    run bash -c "head -c 100000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' -H 'Content-Length: 100000000' --data-binary @- '${U}v1/suggest'"
    assert_output 413
    run curl -s -o body.out -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary "$body" "${U}v1/events"
    assert_output 413
    post /v1/suggest '{"text":"hi "}'
    assert_equal "$status_code" 200
    # the default is 64 KiB
    kill "$SPID"; wait "$SPID"; SPID=
    start
    post /v1/suggest "{\"text\":\"$(head -c 70000 /dev/zero | tr '\0' a)\"}"
    assert_equal "$status_code" 413
    assert_equal "$output" '{"error":"the body is larger than 65536 bytes (--max-body)"}'
}

@test "--timeout closes a stalled client; a client that leaves mid-body; others are answered" {
    start --timeout 1 --threads 1
    port=${U##*:}
    port=${port%/}
    exec 5<> "/dev/tcp/127.0.0.1/$port"
    printf 'POST /v1/suggest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"text":' >&5
    # the one worker thread is not held by it
    post /v1/suggest '{"text":"hi "}'
    assert_equal "$status_code" 200
    # the server closes it after about a second: reading sees the end
    SECONDS=0
    run timeout 5 cat <&5
    exec 5<&-
    [ "$SECONDS" -le 3 ]
    # a client that sends half a body and goes
    exec 6<> "/dev/tcp/127.0.0.1/$port"
    printf 'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"type":"sh' >&6
    exec 6<&-
    post /v1/events '{"type":"ignored"}'
    assert_equal "$status_code" 200
    run curl -s "${U}v1/stats"
    [ "$(jq .events <<< "$output")" = 1 ]
}

@test "--max-connections: the connections past it are answered 503 and closed" {
    start --max-connections 2 --threads 1
    port=${U##*:}
    port=${port%/}
    exec 5<> "/dev/tcp/127.0.0.1/$port"
    exec 6<> "/dev/tcp/127.0.0.1/$port"
    sleep 0.2
    run curl -s -i "${U}healthz"
    assert_output --partial "HTTP/1.1 503 Service Unavailable"
    assert_output --partial "Retry-After: 1"
    assert_output --partial '{"error":"too many connections: try again later"}'
    exec 5<&- 6<&-
    sleep 0.2
    run curl -s -w ' %{http_code}' "${U}healthz"
    assert_output '{"ok":true} 200'
}

@test "--cors ORIGIN: the headers and the preflight; without it, none" {
    start
    run curl -s -i -X OPTIONS "${U}v1/suggest"
    assert_output --partial "HTTP/1.1 405"
    kill "$SPID"; wait "$SPID"; SPID=
    start --cors http://localhost:3000
    run curl -s -i -d '{"text":"hi "}' "${U}v1/suggest"
    assert_output --partial "Access-Control-Allow-Origin: http://localhost:3000"
    run curl -s -i -X OPTIONS -H 'Origin: http://localhost:3000' -H 'Access-Control-Request-Method: POST' "${U}v1/suggest"
    assert_output --partial "HTTP/1.1 204 No Content"
    assert_output --partial "Access-Control-Allow-Methods: POST, OPTIONS"
    assert_output --partial "Access-Control-Allow-Headers: Content-Type"
    assert_output --partial "Access-Control-Allow-Origin: http://localhost:3000"
}

@test "events: validated, logged one JSON line each; /v1/stats is the hand count; a restart reads the log back, a torn last line skipped" {
    start --log ev.jsonl
    post /v1/events '{"type":"shown","words":["help","hello"],"prefix":"hel","latency_ms":4,"session":"s1","id":1}'
    assert_equal "$status_code" 200
    assert_equal "$output" '{"ok":true}'
    for l in 10 2 8 6 3 9 1 7 5; do post /v1/events "{\"type\":\"shown\",\"words\":[\"a\"],\"latency_ms\":$l}"; done
    post /v1/events '{"type":"shown","words":[]}'                       # no latency measured
    post /v1/events '{"type":"accepted","word":"help","typed":2,"rank":1}'
    post /v1/events '{"type":"accepted","word":"été","typed":0,"rank":3}' # characters, not bytes
    post /v1/events '{"type":"typed","word":"order"}'
    post /v1/events '{"type":"ignored","words":["x"]}'
    post /v1/events '{"type":"ignored"}'
    assert_equal "$status_code" 200
    # bad events: 400 and not logged
    post /v1/events '{"type":"clicked"}'
    assert_equal "$status_code" 400
    assert_equal "$output" '{"error":"event: type must be \"shown\", \"accepted\", \"ignored\" or \"typed\""}'
    post /v1/events '{"words":[]}'
    assert_equal "$output" '{"error":"event: missing field \"type\""}'
    post /v1/events '{"type":"accepted","word":"help","rank":1}'
    assert_equal "$output" '{"error":"event accepted: missing field \"typed\""}'
    post /v1/events '{"type":"accepted","word":"help","typed":5,"rank":1}'
    assert_equal "$output" '{"error":"event accepted: typed is more than the word'"'"'s characters"}'
    post /v1/events '{"type":"typed","word":"help","rank":1}'
    assert_equal "$output" '{"error":"event typed: unknown field \"rank\""}'
    post /v1/events '{"type":"shown","words":"help"}'
    assert_equal "$output" '{"error":"event shown: bad value for \"words\" (formats/serve.md)"}'
    post /v1/events '{"type":"typed","word":"a","ts":1}'
    assert_equal "$status_code" 400
    post /v1/events '{"type":"typed",'
    assert_equal "$status_code" 400
    assert_output --partial '"error":"malformed JSON'
    [ "$(wc -l < ev.jsonl)" -eq 16 ]
    jq -e -s 'length == 16 and all(.[]; (.ts | type) == "number")' ev.jsonl
    assert_equal "$(head -1 ev.jsonl | jq -c 'del(.ts)')" '{"type":"shown","words":["help","hello"],"prefix":"hel","latency_ms":4,"session":"s1","id":1}'
    # by hand: words help (4 chars, accepted after 2), été (3, after 0), order (5, typed):
    # without 5 + 4 + 6 = 15 keys, with 3 + 1 + 6 = 10; 2 of 3 words accepted; latencies 1..10,
    # nearest rank: p50 5, p90 9, p99 10
    want='{"events":16,"suggestions_shown":11,"accepted":2,"ignored":2,"typed_words":3,"acceptance_rate":0.66666666666666663,"keystrokes_with":10.0,"keystrokes_without":15.0,"keystrokes_saved":0.33333333333333337,"latency_ms":{"n":10,"p50":5.0,"p90":9.0,"p99":10.0}}'
    run curl -s "${U}v1/stats"
    assert_output "$want"
    # stopped, a torn line added (a crash mid-write), restarted: the same counts, the line skipped
    kill -TERM "$SPID"; wait "$SPID"; SPID=
    printf '{"ts":1,"type":"typed","wo' >> ev.jsonl
    start --log ev.jsonl
    assert_equal "$(cat serve.err | head -1)" "lstm-serve: warning: ev.jsonl: 1 of 17 lines skipped (a torn last line, or not an event)"
    run curl -s "${U}v1/stats"
    assert_output "$want"
    # the next event starts its own line
    post /v1/events '{"type":"typed","word":"ok"}'
    [ "$(tail -1 ev.jsonl | jq -r .word)" = ok ]
    run curl -s "${U}v1/stats"
    [ "$(jq .typed_words <<< "$output")" = 4 ]
    # without --log the stats count the events since the start
    kill "$SPID"; wait "$SPID"; SPID=
    start
    run curl -s "${U}v1/stats"
    assert_output '{"events":0,"suggestions_shown":0,"accepted":0,"ignored":0,"typed_words":0,"acceptance_rate":0.0,"keystrokes_with":0.0,"keystrokes_without":0.0,"keystrokes_saved":0.0,"latency_ms":{"n":0,"p50":null,"p90":null,"p99":null}}'
}

@test "/metrics: requests and errors by endpoint, a latency histogram, the model and its vocabulary" {
    start
    post /v1/suggest '{"text":"hi "}'
    post /v1/suggest '{"text":"hi ","k":0}'
    post /v1/complete '{"text":"hi","max_new":2}'
    curl -s "${U}nope" > /dev/null
    run curl -s -i "${U}metrics"
    assert_output --partial "Content-Type: text/plain; version=0.0.4"
    assert_output --partial 'lstm_serve_requests_total{endpoint="/v1/suggest"} 2'
    assert_output --partial 'lstm_serve_errors_total{endpoint="/v1/suggest"} 1'
    assert_output --partial 'lstm_serve_requests_total{endpoint="/v1/complete"} 1'
    assert_output --partial 'lstm_serve_requests_total{endpoint="other"} 1'
    assert_output --partial 'lstm_serve_errors_total{endpoint="other"} 1'
    assert_output --partial 'lstm_serve_requests_total{endpoint="/metrics"} 1'
    assert_output --partial 'lstm_serve_request_duration_seconds_bucket{endpoint="/v1/suggest",le="+Inf"} 1'
    assert_output --partial 'lstm_serve_request_duration_seconds_count{endpoint="/v1/complete"} 1'
    assert_output --partial "lstm_serve_model_info{model=\"$T/chat.ckpt\",tokenizer=\"words\",cell=\"lstm\"} 1"
    V=$("$LSTM_BIN/lstm-dump" "$T/chat.ckpt" | sed -n 's/^  vocab=//p')
    [ -n "$V" ]
    assert_output --partial "lstm_serve_vocab_size $V"
}

@test "8 clients in parallel, 50 requests each: every reply is the one its request asks for" {
    start --threads 2
    texts=("hi, i need help with my " "i was charged " "sure! what is " "thanks for " "can you reset my pa")
    : > req.txt
    for t in "${texts[@]}"; do printf '{"text":"%s","k":3}\n' "$t" >> req.txt; done
    # each request alone in a fresh lstm-sample: the words, by rank, that each must get
    while IFS= read -r l; do "$S" -m "$T/chat.ckpt" --serve <<< "$l" | jq -c '[.suggestions[].word]'; done < req.txt > want.txt
    run python3 - "$U" req.txt want.txt <<'PY'
import http.client, json, sys, threading, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
reqs = [json.loads(l) for l in open(sys.argv[2])]
want = [json.loads(l) for l in open(sys.argv[3])]
bad = []
def client(c):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)  # keep-alive
    for i in range(50):
        n = (c * 50 + i) % len(reqs)
        body = dict(reqs[n], id="%d-%d" % (c, i))
        conn.request("POST", "/v1/suggest", json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        rep = json.loads(r.read())
        if r.status != 200 or rep.get("id") != body["id"] or [s["word"] for s in rep["suggestions"]] != want[n]:
            bad.append((r.status, body, rep))
ts = [threading.Thread(target=client, args=(c,)) for c in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
print(len(bad), bad[:2])
PY
    assert_success
    assert_output "0 []"
}

@test "SIGTERM: stops accepting, answers what is in flight, exits 0 with every acknowledged event in the log" {
    start --log ev.jsonl --threads 2 -v
    python3 - "$U" > acked.txt 2> client.err 3>&- <<'PY' &
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
n = 0
try:
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    while True:
        conn.request("POST", "/v1/events", '{"type":"typed","word":"w%d"}' % n)
        r = conn.getresponse()
        if r.read() != b'{"ok":true}':
            break
        n += 1
        print(n, flush=True)
except Exception:
    pass
PY
    cpid=$!
    sleep 1
    kill -TERM "$SPID"
    rc=0
    wait "$SPID" || rc=$?                   # not 'run wait': run's subshell has no children
    SPID=
    assert_equal "$rc" 0
    wait "$cpid" || true
    acked=$(tail -1 acked.txt)
    [ "$acked" -gt 10 ]
    [[ "$(tail -1 serve.err)" =~ ^"lstm-serve: SIGTERM: "[0-9]+" requests answered, "[0-9]+" events logged, stopped"$ ]]
    # the log is whole: one event per line, every one acknowledged there, in order
    [ "$(tail -c 1 ev.jsonl | od -An -c | tr -d ' ')" = '\n' ]
    jq -e -s "length >= $acked and ([.[].word] | .[:$acked]) == [range($acked) | \"w\\(.)\"]" ev.jsonl
}

@test "SIGTERM drains: a request in flight when the signal comes is answered, new connections are refused" {
    start --log ev.jsonl --threads 1
    port=${U##*:}
    port=${port%/}
    body='{"type":"typed","word":"late"}'
    exec 5<> "/dev/tcp/127.0.0.1/$port"
    printf 'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "${body:0:10}" >&5
    sleep 0.2
    kill -TERM "$SPID"
    sleep 0.3
    kill -0 "$SPID"                         # still there: a request is in flight
    run curl -s -o /dev/null -w '%{http_code}' "${U}healthz"
    assert_output 000                       # no longer accepting
    printf '%s' "${body:10}" >&5
    run timeout 5 cat <&5
    exec 5<&-
    assert_output --partial "HTTP/1.1 200 OK"
    assert_output --partial "Connection: close"     # a keep-alive client is told to go
    assert_output --partial '{"ok":true}'
    rc=0
    wait "$SPID" || rc=$?                   # not 'run wait': run's subshell has no children
    SPID=
    assert_equal "$rc" 0
    assert_equal "$(jq -c 'del(.ts)' ev.jsonl)" '{"type":"typed","word":"late"}'
}

@test "500 idle connections and 1,000 malformed requests do not stop a normal client" {
    start --threads 2
    run python3 - "$U" <<'PY'
import http.client, json, socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
idle = [socket.create_connection((u.hostname, u.port)) for _ in range(500)]
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
codes = {}
for i in range(1000):
    body = ['{"text":', '{"text":"a","k":"x"}', '[]', '\xff\xfe', '{"txt":1}'][i % 5]
    conn.request("POST", "/v1/suggest", body.encode("latin-1"))
    r = conn.getresponse()
    rep = json.loads(r.read())
    codes[r.status] = codes.get(r.status, 0) + 1
    assert "error" in rep, rep
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
conn.request("POST", "/v1/suggest", '{"text":"hi, i need help with my "}')
r = conn.getresponse()
rep = json.loads(r.read())
print(codes, r.status, len(rep["suggestions"]))
PY
    assert_success
    assert_output "{400: 1000} 200 5"
}

@test "a ulimit -n too small for --max-connections: fewer connections, said once" {
    (ulimit -n 100; exec "$SRV" -m "$T/chat.ckpt" --listen 127.0.0.1:0) 2> serve.err 3>&- &
    SPID=$!
    for _ in $(seq 100); do grep -q listening serve.err && break; sleep 0.05; done
    assert_equal "$(head -1 serve.err)" "lstm-serve: warning: --max-connections 1024: only 100 descriptors (ulimit -n): at most 28 connections"
}
