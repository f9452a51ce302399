# What the bats files that start lstm-serve share (load 'serve_helpers' in setup).

# serve_start MODEL [flags...]: lstm-serve on a free loopback port; $U is its URL (ends in /), $SPID
# its pid, serve.err its stderr. Fails, showing serve.err, when it exits or prints no URL in 5 s.
serve_start() {
    local model=$1
    shift
    "$LSTM_BIN/lstm-serve" -m "$model" --listen 127.0.0.1:0 "$@" 2> serve.err 3>&- &
    SPID=$!
    for _ in $(seq 100); do
        U=$(grep -o 'http://127.0.0.1:[0-9]*/' serve.err) && return 0
        kill -0 "$SPID" 2> /dev/null || break
        sleep 0.05
    done
    cat serve.err >&2
    false
}

# For teardown: the server a test left running is stopped.
serve_stop() {
    if [ -n "${SPID:-}" ]; then
        kill "$SPID" 2> /dev/null || true
        wait "$SPID" 2> /dev/null || true
    fi
}
