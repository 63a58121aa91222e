#!/bin/sh
# test_status.sh - `qshim status`: the shared pacing table as processes fill it. Two
# shm_hammer processes reserve slots on one key of a named table; status shows the key with
# token counts above 0 and within the limit, the limits of the config, and, once they are
# done, exactly the tokens they reserved in the 60 s window. A 429 seen by curl under the shim
# shows as a cooldown in the table the shim uses ($QSHIM_SHM). No table: said so, exit 0.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
qs_setup
QSHIM=$QS_BUILD/qshim
HAMMER=$QS_BUILD/tests/shm_hammer
NAME=/qshim-test-status-$$
trap 'qs_cleanup; rm -f "/dev/shm$NAME" "/dev/shm$NAME-none"' EXIT
[ -x "$HAMMER" ] || { echo "$HAMMER missing: make test builds it"; echo "$T_NAME: 0 passed, 1 failed"; exit 1; }

# field JSONFILE PYEXPR: evaluates PYEXPR over the status JSON `s` and the key `k` below
KEY=cn-beijing/status-model
field() {
    $PY - "$1" "$KEY" "$2" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
ks = [k for k in s["keys"] if k["key"] == sys.argv[2]]
k = ks[0] if ks else None
print(eval(sys.argv[3]))
PYEOF
}

# ---- no table -------------------------------------------------------------------------
"$QSHIM" status --shm "$NAME-none" >"$WORK/none" 2>&1
rc=$?
check "no table: said plainly, exit 0" sh -c "test $rc = 0 && grep -q '^no shared pacing table $NAME-none' '$WORK/none'"
check "no table: status did not create one" test ! -e "/dev/shm$NAME-none"
"$QSHIM" status --json --shm "$NAME-none" >"$WORK/none.json"
check "no table, --json: exists false, no keys" \
    test "$($PY -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['exists'], s['keys'])" "$WORK/none.json")" = "False []"

# ---- two processes pacing one key -------------------------------------------------------
# 6,000 requests and 600,000 tokens per minute: 100 requests and 10,000 tokens a second
cat >"$WORK/limits.conf" <<'EOF'
headroom = 1.0;
limits = ( { model = "status-model"; rpm = 6000; tpm = 600000; } );
EOF
"$HAMMER" "$NAME" "$KEY" 6000 600000 150 "$WORK/slots.1" 2>"$WORK/err.1" &
h1=$!
"$HAMMER" "$NAME" "$KEY" 6000 600000 150 "$WORK/slots.2" 2>"$WORK/err.2" &
h2=$!
sleep 1
"$QSHIM" status --shm "$NAME" -c "$WORK/limits.conf" --json >"$WORK/mid.json" 2>&1
"$QSHIM" status --shm "$NAME" -c "$WORK/limits.conf" >"$WORK/mid.txt" 2>&1
wait $h1
r1=$?
wait $h2
r2=$?
check "the two hammers ran (300 slots)" test "$r1$r2/$(cat "$WORK"/slots.* | wc -l | tr -d ' ')" = "00/300"
check "mid-run: status shows the key, with the config's limits" \
    test "$(field "$WORK/mid.json" "(k['limit_source'].startswith('config '), k['tokens_1s']['limit'], k['tokens_60s']['limit'], k['requests_1s']['limit'], k['requests_60s']['limit'])")" = \
    "(True, 10000, 600000, 100, 6000)"
check "mid-run: tokens in the last second and minute are > 0 and within the limit" \
    test "$(field "$WORK/mid.json" "0 < k['tokens_1s']['used'] <= 10000 and 0 < k['tokens_60s']['used'] <= 600000")" = True
check "mid-run: requests in the last second and minute are > 0 and within the limit" \
    test "$(field "$WORK/mid.json" "0 < k['requests_1s']['used'] <= 100 and 0 < k['requests_60s']['used'] <= 6000")" = True
check "mid-run: the table names the key with tokens/limit and requests/limit" \
    grep -qE "^$KEY +[1-9][0-9]*/10000 +[1-9][0-9]*/600000 +[1-9][0-9]*/100 +[1-9][0-9]*/6000 " "$WORK/mid.txt"

"$QSHIM" status --shm "$NAME" -c "$WORK/limits.conf" --json >"$WORK/end.json"
sum=$(cat "$WORK"/slots.* | awk '{ s += $2 } END { print s }')
check "after the run: the 60 s window holds exactly the $sum tokens and 300 requests reserved, nothing ahead, no cooldown" \
    test "$(field "$WORK/end.json" "(k['tokens_60s']['used'], k['requests_60s']['used'], k['tokens_ahead'], k['cooldown_ms'])")" = "($sum, 300, 0, 0.0)"

"$QSHIM" status --shm "$NAME" -c "$WORK/limits.conf" -w 0.2 -n 3 >"$WORK/watch.txt" 2>&1
check "-w 0.2 -n 3: three refreshes" test "$(grep -c '^# pacing table' "$WORK/watch.txt")" = 3
"$QSHIM" status --shm "$NAME" --json -w 0.1 -n 2 >"$WORK/watch.json"
check "-w with --json: one JSON object per refresh" \
    $PY -c "import json,sys; ls=open(sys.argv[1]).read().splitlines(); sys.exit(0 if len(ls)==2 and all(json.loads(l)['exists'] for l in ls) else 1)" "$WORK/watch.json"

# ---- the shim's own table: a 429 puts the model in cooldown -----------------------------
start_mock
curl -s --cacert "$CA" "https://localhost:$MOCK_PORT/mock/script" \
    -d '{"model":"status-cool","kind":"rpm","count":1,"retry_after_ms":3000}' >"$WORK/script.out"
with_shim curl -s -o "$WORK/cool.out" -w '%{http_code}' --cacert "$CA" -H 'Content-Type: application/json' \
    -d '{"model":"status-cool","messages":[{"role":"user","content":"hi"}]}' \
    "https://localhost:$MOCK_PORT/compatible-mode/v1/chat/completions" >"$WORK/cool.code" 2>&1 &
cpid=$!
KEY=cn-beijing/status-cool
seen=""
i=0
while [ $i -lt 25 ] && [ -z "$seen" ]; do
    sleep 0.1
    "$QSHIM" status --json >"$WORK/cool.json" 2>&1   # QSHIM_SHM (from lib.sh) names the shim's table
    [ "$(field "$WORK/cool.json" "k is not None and k['cooldown_ms'] > 1000")" = True ] && seen=yes
    i=$((i + 1))
done
wait $cpid
check "a 429 under the shim shows as a cooldown of the key in status" test "$seen" = yes
check "and the request then went through (200)" test "$(cat "$WORK/cool.code")" = 200
# the hidden 429 also widened the model's spacing: nothing else of ours was in its window, so
# by half, held for a minute from its slot
widened=$(field "$WORK/cool.json" "abs(k['request_interval_ms'] / k['configured_interval_ms'] - 1.5) < 0.01 and 50000 < k['widened_for_ms'] <= 60100")
check "and widened the spacing x1.5 for about a minute" test "$widened" = True
"$QSHIM" status >"$WORK/cool.txt"
check "the table shows the widened spacing and its factor" grep -q "^$KEY .* x1\.50, [0-9.]* s" "$WORK/cool.txt"
# a capacity 503 (the server's state, not the account's limit) is hidden too, but does not
# widen the spacing
curl -s --cacert "$CA" "https://localhost:$MOCK_PORT/mock/script" \
    -d '{"model":"status-busy","kind":"capacity","count":1}' >/dev/null
code=$(with_shim curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -H 'Content-Type: application/json' \
    -d '{"model":"status-busy","messages":[{"role":"user","content":"hi"}]}' \
    "https://localhost:$MOCK_PORT/compatible-mode/v1/chat/completions")
"$QSHIM" status --json >"$WORK/busy.json" 2>&1
KEY=cn-beijing/status-busy
check "a capacity 503 is hidden (the program got $code) and leaves the spacing as configured" \
    test "$code:$(field "$WORK/busy.json" "k['request_interval_ms'] == k['configured_interval_ms'] and k['widened_for_ms'] == 0")" = 200:True
check "status without --shm reads \$QSHIM_SHM, the table the shim used" grep -q "^# pacing table $QSHIM_SHM:" "$WORK/cool.txt"
check "without \$QSHIM_SHM the name is the shim's per-user default" \
    sh -c "env -u QSHIM_SHM '$QSHIM' status --json | grep -qE '\"shm\":\"/qshim-$(id -u)-v[0-9]+\"'"

"$QSHIM" status -w 0 >/dev/null 2>&1
rc=$?
check "-w 0 is a usage error (2)" test $rc = 2
"$QSHIM" status --bogus >/dev/null 2>&1
rc=$?
check "an unknown option is a usage error (2)" test $rc = 2
qs_done
