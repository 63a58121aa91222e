#!/bin/sh
# test_retry.sh - throttles the pacer cannot prevent (the server's limit is below the
# configured one) are hidden and replayed: programs see only successes, byte-identical
# to an unthrottled run; what must not be retried reaches the program at once.
. "$(dirname "$0")/lib.sh"
qs_setup
# fast backoff so the suite stays quick; generous attempts so a burst always gets through
cat >"$QSHIM_CONFIG" <<'CONF'
hosts = [ "localhost", "dashscope.aliyuncs.com" ];
retry = { max_attempts = 40; base_ms = 100; max_ms = 1000; max_total_ms = 60000; };
# far above the mock's 10/s, so that the pacer (even slowed 16 times by the throttles it
# learns from, qs_pace_throttled) lets every burst through and the server must throttle it
limits = ( { model = "qwen-*"; rpm = 1e6; tpm = 1e10; } );
CONF
start_mock                                   # unlimited: the reference answers
FREE=$MOCK_PORT
start_mock --limit qwen-plus=600/10000000 --limit qwen-turbo=600/10000000   # 10 requests/s
TIGHT=$MOCK_PORT
C=$QS_ROOT/tests/integration/clients.py

# burst CLIENT SCENARIO: 20 requests at once against 10/s; all succeed, same bytes
burst() {
    $PY "$C" "$1" "https://localhost:$FREE" "burst-$2" >"$WORK/a" 2>&1
    mock_reset $TIGHT
    : >"$QSHIM_LOG"
    with_shim $PY "$C" "$1" "https://localhost:$TIGHT" "burst-$2" >"$WORK/b" 2>"$WORK/b.err"
    hidden=$(mock_stats $TIGHT | $PY -c "import json,sys; print(json.load(sys.stdin)['totals']['throttled'])")
    if ! cmp -s "$WORK/a" "$WORK/b"; then
        fail "$1 burst $2: answers differ from the unthrottled run" "$(diff "$WORK/a" "$WORK/b" | head -n 6; head -n 5 "$WORK/b.err")"
    elif [ "${hidden:-0}" -eq 0 ]; then
        fail "$1 burst $2: the server throttled nothing, so nothing was tested"
    elif [ "$(log_json "sum(r['event']=='throttled' for r in recs)")" != "$hidden" ]; then
        fail "$1 burst $2: $hidden throttles at the server but $(log_json "sum(r['event']=='throttled' for r in recs)") logged as hidden"
    else
        ok "$1 burst $2: 20 answers identical to an unthrottled run, $hidden throttles hidden"
    fi
}
for c in requests httpx httpx-async aiohttp; do
    for s in compat compat-stream native native-stream; do burst $c $s; done
done


# urllib sends "Connection: close" with every request, so a throttled answer ends the
# connection and cannot be replayed on it: the program gets the 429 unchanged.
: >"$QSHIM_LOG"
mock_reset $TIGHT
with_shim $PY "$C" urllib "https://localhost:$TIGHT" burst-compat >"$WORK/b" 2>&1
check "urllib (Connection: close): throttles reach it unchanged, logged with the reason" \
    test "$(log_json "all(r.get('reason')=='the server closed the connection' for r in recs if r['status']==429 and r['event']=='request') and any(r['status']==429 for r in recs)")" = True

# curl: 12 processes at once, each one request
H=dashscope.aliyuncs.com
REQ='{"messages":[{"role":"user","content":"hi"}],"model":"qwen-plus"}'
curl_one() { # PORT -> answer on stdout
    curl -sS --resolve $H:$1:127.0.0.1 --cacert "$CA" "https://$H:$1/compatible-mode/v1/chat/completions" -d "$REQ"
}
curl_one $FREE >"$WORK/ref"
mock_reset $TIGHT
pids=""
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
    (with_shim sh -c "$(command -v curl) -sS --resolve $H:$TIGHT:127.0.0.1 --cacert $CA https://$H:$TIGHT/compatible-mode/v1/chat/completions -d '$REQ'" >"$WORK/c$i" 2>&1) &
    pids="$pids $!"
done
for p in $pids; do wait "$p"; done
same=0
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do cmp -s "$WORK/ref" "$WORK/c$i" && same=$((same + 1)); done
hidden=$(mock_stats $TIGHT | $PY -c "import json,sys; print(json.load(sys.stdin)['totals']['throttled'])")
check "curl x12 at once: all 12 answers identical to the unthrottled one ($hidden throttles hidden)" \
    test "$same $([ "$hidden" -gt 0 ] && echo y)" = "12 y"

# --- scripted answers (POST /mock/script) ---
MOCK_PORT=$FREE
script() { curl -s --http1.1 --cacert "$CA" "https://localhost:$FREE/mock/script" -d "$1" >/dev/null; }
req_py() { # SCRIPT-NAME: one requests call, prints status, elapsed ms, body
    cat >"$WORK/r.py" <<PYEOF
import sys, time, requests
t = time.monotonic()
r = requests.post("https://localhost:$FREE/compatible-mode/v1/chat/completions", verify="$CA",
                  data='$REQ', headers={"Authorization": "Bearer sk-test-1"})
print(r.status_code, int((time.monotonic() - t) * 1000), r.text)
PYEOF
    with_shim $PY "$WORK/r.py"
}

: >"$QSHIM_LOG"
script '{"model":"qwen-turbo","count":1,"kind":"rpm"}'
out=$(with_shim curl -sS -N --cacert "$CA" -H X-DashScope-SSE:enable "https://localhost:$FREE/api/v1/services/aigc/text-generation/generation" \
    -d '{"model":"qwen-turbo","input":{"messages":[{"role":"user","content":"hi"}]}}')
ref=$(curl -sS -N --cacert "$CA" -H X-DashScope-SSE:enable "https://localhost:$FREE/api/v1/services/aigc/text-generation/generation" \
    -d '{"model":"qwen-turbo","input":{"messages":[{"role":"user","content":"hi"}]}}')
check "native stream opening with a 429 event: hidden, replayed, same stream" test "$out" = "$ref"
check "  ... logged: one throttled (Throttling.RateQuota), then the request with attempts 2" \
    test "$(log_json "[(r['event'],r['status'],r['code'],r['attempts']) for r in recs]")" = \
    "[('throttled', 429, 'Throttling.RateQuota', 1), ('request', 200, None, 2)]"

for kind in free_quota arrearage commodity prepaid free_tier_only; do
    : >"$QSHIM_LOG"
    script "{\"model\":\"qwen-plus\",\"count\":1,\"kind\":\"$kind\"}"
    set -- $(req_py)
    check "$kind: reaches the program at once (status $1, ${2} ms)" test "$1" != 200 -a "$2" -lt 1000
    check "$kind: not retried (attempts 1, nothing hidden)" \
        test "$(log_json "[(r['event'],r['attempts']) for r in recs]")" = "[('request', 1)]"
done

: >"$QSHIM_LOG"
script '{"model":"qwen-plus","count":1,"kind":"capacity"}'
set -- $(req_py)
check "503 ModelServingError (capacity): hidden and replayed" test "$1" = 200
script '{"model":"qwen-plus","count":1,"kind":"tpm","close":true}'
set -- $(req_py)
check "429 with Connection: close: the program gets the 429, no hang" test "$1" = 429 -a "$2" -lt 5000

script '{"model":"qwen-plus","count":1,"kind":"rpm","retry_after_ms":1500}'
set -- $(req_py)
check "retry-after-ms 1500 honoured: success after ${2} ms" test "$1" = 200 -a "$2" -ge 1500
script '{"model":"qwen-plus","count":1,"kind":"rpm","retry_after_s":2}'
set -- $(req_py)
check "Retry-After: 2 honoured: success after ${2} ms" test "$1" = 200 -a "$2" -ge 2000

# max_total_ms: every answer a throttle with retry-after 700 ms, budget 2 s
printf 'hosts = [ "localhost" ];\nretry = { max_attempts = 40; base_ms = 100; max_ms = 1000; max_total_ms = 2000; };\n' >"$WORK/short.conf"
script '{"model":"qwen-plus","count":50,"kind":"rpm","retry_after_ms":700}'
: >"$QSHIM_LOG"
set -- $(QSHIM_CONFIG=$WORK/short.conf req_py)
check "max_total_ms 2000: the program gets the last 429 after ${2} ms" test "$1" = 429 -a "$2" -ge 1300 -a "$2" -lt 3000
curl -s --http1.1 --cacert "$CA" -X DELETE "https://localhost:$FREE/mock/script" >/dev/null

# fallback chain: qwen3-max keeps being throttled; after 300 ms the replay asks qwen-plus
cat >"$WORK/fb.conf" <<'CONF'
hosts = [ "localhost" ];
retry = { max_attempts = 40; base_ms = 100; max_ms = 200; max_total_ms = 20000; };
fallback = ( { model = "qwen3-max"; to = [ "qwen-plus" ]; after_ms = 300; } );
CONF
script '{"model":"qwen3-max","count":100,"kind":"tpm"}'
: >"$QSHIM_LOG"
out=$(QSHIM_CONFIG=$WORK/fb.conf with_shim $PY -c "
import requests
r = requests.post('https://localhost:$FREE/compatible-mode/v1/chat/completions', verify='$CA',
                  json={'messages': [{'role': 'user', 'content': 'hi'}], 'model': 'qwen3-max'})
print(r.status_code, r.json()['model'])")
check "fallback: qwen3-max throttled for 300 ms, answered by qwen-plus ($out)" test "$out" = "200 qwen-plus"
check "fallback: logged as fallback qwen3-max -> qwen-plus, request under qwen-plus" \
    test "$(log_json "[r.get('reason') for r in recs if r['event']=='fallback'] + [r['model'] for r in recs if r['event']=='request']")" = \
    "['qwen3-max -> qwen-plus', 'qwen-plus']"
curl -s --http1.1 --cacert "$CA" -X DELETE "https://localhost:$FREE/mock/script" >/dev/null

# SIGINT during a 30 s backoff: the program stops promptly. (A background job of a
# non-interactive shell starts with SIGINT ignored; a program at a terminal has the
# default handler, so the script puts Python's back first.)
script '{"model":"qwen-plus","count":1,"kind":"rpm","retry_after_ms":30000}'
cat >"$WORK/int.py" <<PYEOF
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
open("$WORK/int.pid", "w").write(str(os.getpid()))
try:
    exec(open("$WORK/r.py").read())
except KeyboardInterrupt:
    print("interrupted")
PYEOF
sigint_after 1.5 "$WORK/int.pid" "$WORK/int.out" $PY "$WORK/int.py"
check "SIGINT during a 30 s backoff: python stops in ${INT_MS} ms with KeyboardInterrupt" \
    sh -c "test $INT_MS -lt 2000 && grep -q interrupted '$WORK/int.out'"

# A signal whose handler returns (a 50 ms timer) during a 1.5 s backoff: Python is handed
# WANT_WRITE from its read, runs the handler and reads again; the wait resumes, and the
# program still sees only the success.
: >"$QSHIM_LOG"
script '{"model":"qwen-max","count":1,"kind":"rpm","retry_after_ms":1500}'
cat >"$WORK/tick.py" <<PYEOF
import signal, time, requests
ticks = [0]
signal.signal(signal.SIGALRM, lambda s, f: ticks.__setitem__(0, ticks[0] + 1))
signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
t = time.monotonic()
r = requests.post("https://localhost:$FREE/compatible-mode/v1/chat/completions", verify="$CA",
                  json={"model": "qwen-max", "messages": [{"role": "user", "content": "tick"}]})
print(r.status_code, int((time.monotonic() - t) * 1000))
signal.setitimer(signal.ITIMER_REAL, 0)
print("ticks", ticks[0])
PYEOF
with_shim $PY "$WORK/tick.py" >"$WORK/tick.out" 2>&1
set -- $(head -n 1 "$WORK/tick.out")
check "a 50 ms timer signal during a 1.5 s backoff: the program gets 200 after the wait ($1, $2 ms, $(tail -n 1 "$WORK/tick.out"))" \
    test "$1" = 200 -a "$2" -ge 1500 -a "$2" -lt 5000
check "  ... logged: the 429 hidden, the request answered on attempt 2" \
    test "$(log_json "[(r['event'],r['status'],r['attempts']) for r in recs]")" = "[('throttled', 429, 1), ('request', 200, 2)]"
qs_done
