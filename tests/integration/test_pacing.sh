#!/bin/sh
# test_pacing.sh - unmodified programs fire bursts far over a model's limit; with the shim
# the mock (configured with the same limits) never answers 429, and the work still goes
# through at close to the limit. The scenarios use one model each and run at the same time,
# so that the whole file takes about as long as its slowest scenario (~60 s).
. "$(dirname "$0")/lib.sh"
qs_setup
L=$(dirname "$0")/load.py
RPM=120
# the same limits in the mock and in the shim; headroom 1.0, the tightest setting
start_mock --latency-ms 20 \
    --limit "pace-requests=$RPM/1000000" --limit "pace-httpx=$RPM/1000000" --limit "pace-curl=$RPM/1000000" \
    --limit "pace-procs=$RPM/1000000" --limit "pace-tpm=600/60000" \
    --limit "pace-async=$RPM/1000000" --limit "pace-aiohttp=$RPM/1000000" --limit "pace-observe=60/1000000" \
    --limit "pace-learn=$RPM/1000000" --limit "pace-sig-requests=60/1000000" --limit "pace-sig-httpx=60/1000000" \
    --limit "pace-int=60/1000000"
# pace-learn: configured at twice the mock's limit (a table out of date), so the pacer must
# learn the real one from the 429s it hides
cat >>"$QSHIM_CONFIG" <<EOF
headroom = 1.0;
limits = ( { model = "pace-tpm"; rpm = 600; tpm = 60000; },
           { model = "pace-observe"; rpm = 60; tpm = 1000000; },
           { model = "pace-sig-*"; rpm = 60; tpm = 1000000; },
           { model = "pace-int"; rpm = 60; tpm = 1000000; },
           { model = "pace-learn"; rpm = $((2 * RPM)); tpm = 1000000; },
           { model = "pace-*"; rpm = $RPM; tpm = 1000000; } );
EOF
BASE=https://localhost:$MOCK_PORT
O=$WORK/out
mkdir -p "$O"

# curl: 8 shell workers, each a loop of separate curl processes (so this is also a
# many-process budget), 120 requests in all
curl_worker() {
    i=0
    while [ $i -lt 15 ]; do
        with_shim curl -s -o /dev/null -w '%{http_code}\n' --cacert "$CA" -H 'Authorization: Bearer sk-test-curl' \
            -H 'Content-Type: application/json' \
            -d "{\"model\":\"pace-curl\",\"messages\":[{\"role\":\"user\",\"content\":\"curl $1 $i\"}]}" \
            "$BASE/compatible-mode/v1/chat/completions"
        i=$((i + 1))
    done >"$O/curl.$1"
}

T0=$(date +%s)
with_shim $PY "$L" requests "$BASE" 8 120 pace-requests >"$O/requests" 2>&1 &
P="$!"
with_shim $PY "$L" httpx "$BASE" 8 120 pace-httpx >"$O/httpx" 2>&1 &
P="$P $!"
for w in 1 2 3 4 5 6 7 8; do curl_worker $w & P="$P $!"; done
for p in 1 2 3 4; do with_shim $PY "$L" requests "$BASE" 2 30 pace-procs >"$O/procs.$p" 2>&1 & P="$P $!"; done
# TPM-bound: ~2,400-character prompts + max_tokens 100 = ~705 tokens a request against
# 60,000 TPM (1,000 a second): the token budget, not the request count, is the limit
with_shim $PY "$L" requests "$BASE" 8 30 pace-tpm 2400 100 >"$O/tpm" 2>&1 &
P="$P $!"
# asyncio clients: their event loop waits inside the SSL call (see README)
with_shim $PY "$L" httpx-async "$BASE" 8 20 pace-async >"$O/async" 2>&1 &
P="$P $!"
with_shim $PY "$L" aiohttp "$BASE" 8 20 pace-aiohttp >"$O/aiohttp" 2>&1 &
P="$P $!"
wait $P   # not a bare wait: the mock runs in the background too
T1=$(date +%s)
echo "paced scenarios took $((T1 - T0)) s"

STATS=$WORK/stats.json
mock_stats >"$STATS"

# program_saw FILE N: the program's own counts: N answers, all 200, all complete
program_saw() {
    $PY - "$1" "$2" <<'EOF'
import json, sys
runs = [json.loads(l) for f in sys.argv[1].split() for l in open(f) if l.startswith("{")]
tot = {k: sum(r[k] for r in runs) for k in ("requests", "ok", "throttled", "other", "bad")}
print(tot)
assert tot["requests"] == int(sys.argv[2]) and tot["ok"] == tot["requests"], tot
assert tot["throttled"] == 0 and tot["bad"] == 0, tot
EOF
}

# mock_saw MODEL N RPS RPM [TPS TPM]: the mock answered N requests of MODEL, none with 429,
# and no 1 s or 60 s window it counted went over the limits
mock_saw() {
    $PY - "$STATS" "$@" <<'EOF'
import json, sys
st, model, n, rps, rpm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
m = json.load(open(st))["models"][model]
print({k: m[k] for k in ("requests", "ok", "throttled", "max_req_1s", "max_req_60s", "max_tok_1s", "max_tok_60s")})
assert m["throttled"] == 0 and m["ok"] == n and m["attempts_seen"] == n, "429s or replays at the mock"
assert m["max_req_1s"] <= rps and m["max_req_60s"] <= rpm, "request windows over the limit"
if len(sys.argv) > 6:
    assert m["max_tok_1s"] <= int(sys.argv[6]) and m["max_tok_60s"] <= int(sys.argv[7]), "token windows over"
EOF
}

check "requests, 8 threads x 120 requests: every answer 200, none lost" program_saw "$O/requests" 120
check "requests: the mock saw no 429 and no window over 2/s, 120/min" mock_saw pace-requests 120 2 120
check "httpx, 8 threads x 120 requests: every answer 200" program_saw "$O/httpx" 120
check "httpx: the mock saw no 429 and no window over the limit" mock_saw pace-httpx 120 2 120
check "curl, 8 workers x 15 processes: 120 answers, all 200" \
    sh -c "cat $O/curl.* | sort | uniq -c | grep -qx ' *120 200'"
check "curl: the mock saw no 429 and no window over the limit" mock_saw pace-curl 120 2 120
check "4 processes at once, one budget: every answer 200" program_saw "$O/procs.1 $O/procs.2 $O/procs.3 $O/procs.4" 120
check "4 processes: the mock's per-second counts never exceed RPS" mock_saw pace-procs 120 2 120
check "TPM-bound run: every answer 200" program_saw "$O/tpm" 30
check "TPM-bound run: no 429, no token window over 1,000/s or 60,000/min" mock_saw pace-tpm 30 10 600 1000 60000
check "httpx AsyncClient, 8 tasks: every answer 200" program_saw "$O/async" 20
# httpx's AsyncClient (anyio) yields to the event loop between SSLObject.write and the socket
# send, so a request written before another task's wait leaves after it: the server may see
# two at once and answer 429, which the retry layer hides (README, "asyncio"). Reported here,
# not asserted; aiohttp (asyncio's own SSL protocol) sends at once and is held to zero.
echo "httpx AsyncClient: $($PY -c "import json; m=json.load(open('$STATS'))['models']['pace-async']; print(m['throttled'], 'hidden 429s at the mock, max', m['max_req_1s'], 'requests in 1 s')")"
check "aiohttp, 8 tasks: every answer 200" program_saw "$O/aiohttp" 20
check "aiohttp: the mock saw no 429" mock_saw pace-aiohttp 20 2 120
# Close to the limit, not just under it: 120 requests at 2/s need 59.5 s at best; a
# pacer that wastes a third of the budget would need 90 s. (A bound for gross waste,
# not a timing assertion: the precise goodput is a `make bench` figure.)
check "the 120-request runs finished at close to the limit (< 90 s)" \
    $PY -c "import json; r=json.load(open('$O/requests')); assert r['wall_s'] < 90, r"

# the log: one request record per answer with the wait it had
check "audit log: 120 pace-requests records, status 200, waits recorded" log_json \
    "(lambda rs: len(rs) == 120 and all(r['status'] == 200 for r in rs) and max(r['paced_ms'] for r in rs) > 1000 \
      or exit(str([(r['status'], r['paced_ms']) for r in rs][:5])))([r for r in recs if r['model'] == 'pace-requests' and r['event'] == 'request'])"
check "audit log: usage reconciled (input and output tokens of the TPM-bound run)" log_json \
    "all(r['input_tokens'] > 500 and r['output_tokens'] == 100 and r['est_tokens'] > 600 \
      for r in recs if r['model'] == 'pace-tpm' and r['event'] == 'request') or exit(1)"

# observe mode: nothing waits (the burst hits the mock's 1/s limit) but the log says
# how long each request would have waited
mock_reset
OBS_LOG=$WORK/observe.jsonl
QSHIM_MODE=observe QSHIM_LOG=$OBS_LOG with_shim $PY "$L" requests "$BASE" 10 10 pace-observe >"$O/observe" 2>&1
check "observe mode: no waiting (the program sees the mock's 429s)" \
    $PY -c "import json; r=json.load(open('$O/observe')); assert r['throttled'] > 0 and r['wall_s'] < 5, r"
check "observe mode: paced_ms says the 10th request would have waited ~9 s" \
    $PY -c "
import json
w = sorted(json.loads(l)['paced_ms'] for l in open('$OBS_LOG') if '\"request\"' in l)
assert len(w) == 10 and w[0] == 0 and 8000 <= w[-1] <= 10000, w"

# Signals during pacing waits (Python). A handler that returns (a timer, a watchdog) must
# not cut the wait short: the request would leave early and be throttled. Python's ssl
# module is handed WANT_WRITE, runs the handler, and calls again (PEP 475). A handler that
# raises (Ctrl-C) stops the program at once.
cat >"$WORK/ticker.py" <<PYEOF
import signal, sys, json
ticks = [0]
def tick(signum, frame):
    ticks[0] += 1
signal.signal(signal.SIGALRM, tick)
signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
client, model = sys.argv[1], sys.argv[2]
body = {"model": model, "messages": [{"role": "user", "content": "tick"}]}
url = "$BASE/compatible-mode/v1/chat/completions"
if client == "httpx":
    import httpx
    c = httpx.Client(verify="$CA", timeout=30)
    codes = [c.post(url, json=body).status_code for _ in range(4)]
else:
    import requests
    s = requests.Session()
    codes = [s.post(url, json=body, verify="$CA").status_code for _ in range(4)]
signal.setitimer(signal.ITIMER_REAL, 0)
print(json.dumps({"codes": codes, "ticks": ticks[0]}))
PYEOF
mock_reset
# (run after the main scenarios, not with them: the 2-core machine then has fewer processes
# to wake on time, and the main scenarios' zero-429 checks stay within the jitter guard)
with_shim $PY "$L" requests "$BASE" 4 40 pace-learn >"$O/learn" 2>&1 &
p0=$!
with_shim $PY "$WORK/ticker.py" requests pace-sig-requests >"$O/sig.requests" 2>&1 &
p1=$!
with_shim $PY "$WORK/ticker.py" httpx pace-sig-httpx >"$O/sig.httpx" 2>&1 &
p2=$!
wait $p0 $p1 $p2
mock_stats >"$STATS"
# The limit configured twice too high: the first hidden 429 shows the real window (2 per
# second), and only the requests already queued at the believed rate (about one per thread)
# are throttled with it; spacing by half again per throttle would take several rounds, and
# not learning at all throttles every second request (~40).
check "configured limit twice the real one: every answer 200" program_saw "$O/learn" 40
check "... the pacer learns it: at most 8 hidden 429s for 40 requests" $PY -c "
import json
m = json.load(open('$STATS'))['models']['pace-learn']
print({k: m[k] for k in ('ok', 'throttled', 'max_req_1s')})
assert m['ok'] == 40 and m['throttled'] <= 8, m"

for c in requests httpx; do
    check "$c with a 50 ms timer signal: 4 answers 200 after paced waits ($(cat "$O/sig.$c"))" $PY -c "
import json; r = json.load(open('$O/sig.$c')); assert r['codes'] == [200] * 4 and r['ticks'] > 20, r"
    check "$c with a 50 ms timer signal: the mock saw no 429 (no request left early)" $PY -c "
import json; m = json.load(open('$STATS'))['models']['pace-sig-$c']
print({k: m[k] for k in ('ok', 'throttled', 'max_req_1s')}); assert m['throttled'] == 0 and m['max_req_1s'] <= 1, m"
done
cat >"$WORK/int.py" <<PYEOF
import os, signal, requests
signal.signal(signal.SIGINT, signal.default_int_handler)
open("$WORK/int.pid", "w").write(str(os.getpid()))
s = requests.Session()
try:
    for _ in range(10):
        s.post("$BASE/compatible-mode/v1/chat/completions", verify="$CA",
               json={"model": "pace-int", "messages": [{"role": "user", "content": "x"}]})
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
PYEOF
sigint_after 2.5 "$WORK/int.pid" "$O/int" $PY "$WORK/int.py"
check "SIGINT during a pacing wait: python stops in ${INT_MS} ms with KeyboardInterrupt" \
    sh -c "test $INT_MS -lt 1000 && grep -q '^interrupted' '$O/int'"

qs_done
