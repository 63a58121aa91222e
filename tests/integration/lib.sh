# lib.sh - shared helpers for the integration scripts (POSIX sh, sourced).
# Each script: . lib.sh; qs_setup; check "what" cmd...; ...; qs_done
# Everything runs on loopback against qshim-mock; nothing reaches the network.

: "${QS_BUILD:?run through tests/run.sh or set QS_BUILD}"
: "${QS_ROOT:?}"
PY=/usr/bin/python3   # Debian's python, where python3-requests/httpx/aiohttp live
SHIM=$QS_BUILD/libqshim.so
T_PASS=0
T_FAIL=0
T_NAME=$(basename "$0" .sh)

qs_setup() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/qshim-test.XXXXXX")
    trap qs_cleanup EXIT INT TERM
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 2 \
        -subj "/CN=dashscope.aliyuncs.com" \
        -addext "subjectAltName=DNS:dashscope.aliyuncs.com,DNS:*.dashscope.aliyuncs.com,DNS:dashscope-intl.aliyuncs.com,DNS:localhost,IP:127.0.0.1" \
        >/dev/null 2>&1 || { echo "cannot make a test certificate"; exit 1; }
    CA=$WORK/cert.pem
    export SSL_CERT_FILE=$CA   # python's default verify paths (urllib, aiohttp)
    export QSHIM_LOG=$WORK/audit.jsonl
    unset QSHIM_DISABLE QSHIM_DEBUG QSHIM_MODE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE
    # the test's own config: the mock is reached as localhost and as the real host names
    printf 'hosts = [ "localhost", "dashscope.aliyuncs.com", "*.dashscope.aliyuncs.com" ];\n' >"$WORK/qshim.conf"
    export QSHIM_CONFIG=$WORK/qshim.conf
    # a pacing budget of the test's own, so that no other run's reservations delay it
    export QSHIM_SHM=/qshim-test-$(basename "$WORK")
    MOCK_PIDS=""
}

qs_cleanup() {
    for p in $MOCK_PIDS; do kill "$p" 2>/dev/null; done
    for p in $MOCK_PIDS; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
    rm -f "/dev/shm/${QSHIM_SHM#/}"
}

# start_mock [ARGS...]: starts qshim-mock, sets MOCK_PORT and MOCK_PID.
start_mock() {
    fifo=$WORK/mock.out.$$.$(date +%s%N)
    "$QS_BUILD/qshim-mock" --cert "$WORK/cert.pem" --key "$WORK/key.pem" --port 0 "$@" >"$fifo" 2>"$fifo.err" &
    MOCK_PID=$!
    MOCK_PIDS="$MOCK_PIDS $MOCK_PID"
    i=0
    while [ $i -lt 100 ]; do
        MOCK_PORT=$(sed -n 's/^PORT=//p' "$fifo" 2>/dev/null)
        [ -n "$MOCK_PORT" ] && return 0
        sleep 0.05
        i=$((i + 1))
    done
    echo "qshim-mock did not start:"; cat "$fifo.err"
    exit 1
}

stop_mock() {
    kill "$MOCK_PID" 2>/dev/null
    wait "$MOCK_PID" 2>/dev/null
}

# mock_stats [PORT]: the mock's /mock/stats JSON on stdout (never through the shim)
mock_stats() {
    curl -s --http1.1 --cacert "$CA" "https://localhost:${1:-$MOCK_PORT}/mock/stats"
}

mock_reset() {
    curl -s --http1.1 --cacert "$CA" -X POST "https://localhost:${1:-$MOCK_PORT}/mock/reset" >/dev/null
}

# with_shim CMD...: runs CMD with the shim preloaded
with_shim() {
    LD_PRELOAD=$SHIM${LD_PRELOAD:+:$LD_PRELOAD} "$@"
}

# sigint_after SECS PIDFILE OUT CMD...: runs CMD under the shim in the background (CMD writes
# its pid to PIDFILE), sends that pid SIGINT after SECS and waits for CMD, its output in OUT;
# sets INT_MS to the milliseconds from the signal to CMD's end
sigint_after() {
    si_secs=$1
    si_pid=$2
    si_out=$3
    shift 3
    rm -f "$si_pid"
    with_shim "$@" >"$si_out" 2>&1 &
    si_job=$!
    sleep "$si_secs"
    si_t0=$(date +%s%N)
    kill -INT "$(cat "$si_pid")"
    wait $si_job
    INT_MS=$(( ($(date +%s%N) - si_t0) / 1000000 ))
}

ok() { T_PASS=$((T_PASS + 1)); echo "ok - $1"; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL - $1"; [ -n "$2" ] && printf '%s\n' "$2" | sed 's/^/    /' | head -n 20; }

# check "description" CMD...: passes when CMD exits 0; its output is shown on failure
check() {
    desc=$1
    shift
    if o=$("$@" 2>&1); then ok "$desc"; else fail "$desc" "$o"; fi
}

# log_json PYEXPR: evaluates a python expression over the audit log records (list `recs`)
log_json() {
    $PY - "$QSHIM_LOG" "$1" <<'PYEOF'
import json, sys
recs = []
try:
    with open(sys.argv[1]) as f:
        recs = [json.loads(l) for l in f if l.strip()]
except FileNotFoundError:
    pass
print(eval(sys.argv[2]))
PYEOF
}

# Every audit log a test wrote (any *.jsonl* under $WORK, rotated ones too) must hold no key
# and no body text: only 8-hex fingerprints, and none of what the clients sent.
logs_clean() {
    logs=$(find "$WORK" -name '*.jsonl*' -type f 2>/dev/null)
    [ -z "$logs" ] && return 0
    # shellcheck disable=SC2086
    ! grep -nE 'sk-[a-z]|Bearer|"messages"|"content"|"role"|"input":|hello [0-9]|question [0-9]|SECRET' $logs
}

qs_done() {
    if [ -n "$(find "$WORK" -name '*.jsonl*' -type f 2>/dev/null)" ]; then
        check "every audit log of this test: no key, no body text" logs_clean
    fi
    echo "$T_NAME: $T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ]
}
