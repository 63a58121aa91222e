#!/bin/sh
# test_badinput.sh - broken answers, broken configs and switches: the program behaves
# exactly as it would without the shim, and the shim says what it did once.
. "$(dirname "$0")/lib.sh"
qs_setup

# --- malformed, truncated and reset answers (scripted TLS server) ---
$PY "$QS_ROOT/tests/integration/rawserver.py" "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/raw.out" 2>&1 &
RAW_PID=$!
touch "$WORK/raw.out"
MOCK_PIDS="$MOCK_PIDS $RAW_PID"
for i in 1 2 3 4 5 6 7 8 9 10; do grep -q PORT= "$WORK/raw.out" && break; sleep 0.1; done
RAW=$(sed -n 's/^PORT=//p' "$WORK/raw.out")
REQ='{"messages":[{"role":"user","content":"hi"}],"model":"qwen-plus"}'
cat >"$WORK/req.py" <<PYEOF
import sys, requests
try:
    r = requests.post("https://localhost:$RAW/compatible-mode/v1/chat/completions?case=" + sys.argv[1],
                      data='$REQ', verify="$CA", timeout=10)
    print(r.status_code, r.content)
except Exception as e:
    print(type(e).__name__)
PYEOF
# idle429: a throttle the shim holds and replays, but the server closes the idle connection
# during the wait: the program gets the 429 (SPEC section 6), as without the shim
for case in truncated garbage reset untilclose bigheader idle429; do
    $PY "$WORK/req.py" $case >"$WORK/a" 2>&1
    with_shim $PY "$WORK/req.py" $case >"$WORK/b" 2>"$WORK/b.err"
    check "requests, $case answer: same outcome with the shim ($(head -c 60 "$WORK/a"))" cmp "$WORK/a" "$WORK/b"
    curl -sS --cacert "$CA" "https://localhost:$RAW/compatible-mode/v1/chat/completions?case=$case" -d "$REQ" >"$WORK/a" 2>"$WORK/a.err"
    echo "exit $?" >>"$WORK/a"
    cat "$WORK/a.err" >>"$WORK/a"
    with_shim curl -sS --cacert "$CA" "https://localhost:$RAW/compatible-mode/v1/chat/completions?case=$case" -d "$REQ" >"$WORK/b" 2>"$WORK/b.err"
    echo "exit $?" >>"$WORK/b"
    grep -v '^qshim\[' "$WORK/b.err" >>"$WORK/b"
    check "curl, $case answer: same output and exit code ($(tail -n 1 "$WORK/a"))" cmp "$WORK/a" "$WORK/b"
    check "curl, $case answer: at most one diagnostic" test "$(grep -c '^qshim\[' "$WORK/b.err")" -le 1
done
: >"$QSHIM_LOG"
with_shim $PY "$WORK/req.py" idle429 >/dev/null 2>&1
check "idle429: the shim did replay (2 attempts) and then gave the program the 429" \
    test "$(log_json "[(r['event'], r['status'], r['attempts'], 'replay' in (r.get('reason') or '')) for r in recs]")" = \
    "[('request', 429, 2, True)]"
: >"$QSHIM_LOG"
with_shim $PY "$WORK/req.py" truncated >/dev/null 2>&1
check "truncated answer is logged with its status and a reason" \
    test "$(log_json "[(r['status'], 'reason' in r) for r in recs]")" = "[(200, True)]"

# --- configuration and switches ---
start_mock
URL=https://localhost:$MOCK_PORT/compatible-mode/v1/chat/completions
run_curl() { with_shim curl -sS --cacert "$CA" "$URL" -d "$REQ"; }

printf 'enabled = true;\nmode = = "enforce";\nhosts = [ "localhost" ];\n' >"$WORK/broken.conf"
: >"$QSHIM_LOG"
QSHIM_CONFIG=$WORK/broken.conf run_curl >"$WORK/b" 2>"$WORK/b.err"
check "broken config: the program still gets its answer" grep -q chat.completion "$WORK/b"
check "broken config: one stderr line naming file and line" \
    sh -c "test \$(wc -l <'$WORK/b.err') = 1 && grep -q 'broken.conf:2' '$WORK/b.err'"
check "broken config: passes through (nothing logged)" test ! -s "$QSHIM_LOG"

printf 'hosts = [ "localhost" ];\nprograms = [ "python3*" ];\n' >"$WORK/py-only.conf"
QSHIM_CONFIG=$WORK/py-only.conf run_curl >/dev/null 2>&1
check "programs filter: curl not enabled, nothing logged" test ! -s "$QSHIM_LOG"
printf 'hosts = [ "localhost" ];\nexclude = [ "cur*" ];\n' >"$WORK/ex.conf"
QSHIM_CONFIG=$WORK/ex.conf run_curl >/dev/null 2>&1
check "exclude glob: curl not enabled" test ! -s "$QSHIM_LOG"
QSHIM_CONFIG=$WORK/py-only.conf with_shim $PY -c "
import requests; requests.post('$URL', data='$REQ', verify='$CA')" >/dev/null 2>&1
check "programs filter: python3 enabled and logged" test "$(log_json "len(recs)")" = 1
: >"$QSHIM_LOG"
QSHIM_DISABLE=1 run_curl >/dev/null 2>&1
check "QSHIM_DISABLE=1 wins over the config" test ! -s "$QSHIM_LOG"
printf 'enabled = false;\nhosts = [ "localhost" ];\n' >"$WORK/off.conf"
QSHIM_CONFIG=$WORK/off.conf run_curl >/dev/null 2>&1
check "enabled = false: nothing logged" test ! -s "$QSHIM_LOG"

# --- the launcher ---
"$QS_BUILD/qshim" run -c "$QSHIM_CONFIG" -- curl -sS --cacert "$CA" "$URL" -d "$REQ" >"$WORK/b" 2>&1
check "qshim run: answer delivered and logged" \
    sh -c "grep -q chat.completion '$WORK/b' && test \"\$(wc -l <'$QSHIM_LOG')\" = 1"
"$QS_BUILD/qshim" run -- /nonexistent-cmd >/dev/null 2>&1
check "qshim run: missing command exits 127" test $? = 127

# --- an unwritable log never harms the program ---
QSHIM_LOG=/proc/nonexistent/audit.jsonl run_curl >"$WORK/b" 2>"$WORK/b.err"
check "unwritable log: answer still delivered" grep -q chat.completion "$WORK/b"
check "unwritable log: one diagnostic" test "$(grep -c 'audit log' "$WORK/b.err")" = 1
qs_done
