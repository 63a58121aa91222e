#!/bin/sh
# test_clients.sh - real clients, unmodified, get byte-identical answers with and
# without the shim, and every request lands in the audit log with model, path, status.
. "$(dirname "$0")/lib.sh"
qs_setup
# This file is about bytes, not pacing (test_pacing.sh): limits far above what it sends, so
# that its 5 MB requests (~1.3 M tokens, over qwen-long's TPM) are not each held a minute.
printf 'limits = ( { model = "*"; rpm = 1e6; tpm = 1e10; } );\n' >>"$QSHIM_CONFIG"
start_mock
BASE=https://localhost:$MOCK_PORT

# compare CLIENT SCENARIO MODEL PATH: baseline run, shim run, same output, log complete
compare() {
    client=$1 scen=$2 model=$3 path=$4
    : >"$QSHIM_LOG"
    if ! $PY "$QS_ROOT/tests/integration/clients.py" "$client" "$BASE" "$scen" >"$WORK/a" 2>"$WORK/a.err"; then
        fail "$client $scen: baseline run failed" "$(cat "$WORK/a.err")"
        return
    fi
    if [ -s "$QSHIM_LOG" ]; then
        fail "$client $scen: the run without the shim wrote a log"
        return
    fi
    if ! with_shim $PY "$QS_ROOT/tests/integration/clients.py" "$client" "$BASE" "$scen" >"$WORK/b" 2>"$WORK/b.err"; then
        fail "$client $scen: run through the shim failed" "$(cat "$WORK/b.err")"
        return
    fi
    if ! cmp -s "$WORK/a" "$WORK/b"; then
        fail "$client $scen: answers differ with the shim" "$(diff "$WORK/a" "$WORK/b" | head -n 10)"
        return
    fi
    n=$(wc -l <"$WORK/a")
    got=$(log_json "sum(1 for r in recs if r['event']=='request' and r['status']==200 and r['model']=='$model' and r['path']=='$path' and r['prog'].startswith('python'))")
    if [ "$got" != "$n" ]; then
        fail "$client $scen: $n requests but $got matching log records" "$(head -c 600 "$QSHIM_LOG")"
        return
    fi
    ok "$client $scen: $n answers identical, $n log records"
}

COMPAT=/compatible-mode/v1/chat/completions
NATIVE=/api/v1/services/aigc/text-generation/generation
for c in requests urllib httpx httpx-async aiohttp; do
    compare $c compat qwen-plus $COMPAT
    compare $c compat-stream qwen-plus $COMPAT
    compare $c native qwen-turbo $NATIVE
    compare $c native-stream qwen-turbo $NATIVE
    compare $c keepalive qwen-plus $COMPAT
    compare $c big-request qwen-long $COMPAT
    compare $c big-response qwen-plus $COMPAT
done
for c in requests httpx httpx-async aiohttp; do
    compare $c concurrent qwen-plus $COMPAT
done

# keep-alive really reuses connections through the shim
mock_reset
with_shim $PY "$QS_ROOT/tests/integration/clients.py" httpx "$BASE" keepalive >/dev/null 2>&1
check "httpx keepalive: 20 requests over one connection" \
    $PY -c "import json,sys; s=json.load(sys.stdin); c=s['connections']-1; sys.exit(0 if c==1 else 'connections=%d'%c)" <<EOF2
$(mock_stats)
EOF2
qs_done
