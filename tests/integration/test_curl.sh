#!/bin/sh
# test_curl.sh - curl (libcurl, non-blocking sockets, h2 offered by default) through the
# shim: identical output, HTTP/1.1 forced on DashScope hosts, Expect: 100-continue,
# keep-alive, huge request bodies, and other hosts left alone.
. "$(dirname "$0")/lib.sh"
qs_setup
start_mock --alpn-h2
H=dashscope.aliyuncs.com
CURL="curl -sS --resolve $H:$MOCK_PORT:127.0.0.1 --cacert $CA -H Authorization:Bearer_sk-test"
URL=https://$H:$MOCK_PORT
COMPAT='{"messages":[{"role":"user","content":"hi there"}],"model":"qwen-plus"}'
STREAM='{"messages":[{"role":"user","content":"hi there"}],"model":"qwen-plus","stream":true,"stream_options":{"include_usage":true}}'
NATIVE='{"model":"qwen-turbo","input":{"messages":[{"role":"user","content":"hi"}]},"parameters":{"max_tokens":30}}'

# same CMD...: output without the shim (forced to HTTP/1.1) equals output through it (default flags)
same() {
    desc=$1
    shift
    : >"$QSHIM_LOG"
    "$@" --http1.1 >"$WORK/a" 2>&1
    with_shim "$@" >"$WORK/b" 2>&1
    if cmp -s "$WORK/a" "$WORK/b" && [ -s "$WORK/a" ]; then ok "$desc"; else fail "$desc" "$(diff "$WORK/a" "$WORK/b" | head -n 8)"; fi
}

same "compat non-stream" $CURL $URL/compatible-mode/v1/chat/completions -d "$COMPAT"
check "compat non-stream logged with model and status" \
    test "$(log_json "[(r['model'],r['status'],r['prog']) for r in recs]")" = "[('qwen-plus', 200, 'curl')]"
same "compat stream" $CURL -N $URL/compatible-mode/v1/chat/completions -d "$STREAM"
check "compat stream logged with usage" \
    test "$(log_json "[(r['stream'],r['status'],r['input_tokens'] is not None,r['output_tokens']) for r in recs]")" = "[(True, 200, True, 16)]"
same "native non-stream, --compressed" $CURL --compressed $URL/api/v1/services/aigc/text-generation/generation -d "$NATIVE"
same "native stream" $CURL -N -H X-DashScope-SSE:enable $URL/api/v1/services/aigc/text-generation/generation -d "$NATIVE"
check "native stream logged as stream with cumulative usage" \
    test "$(log_json "[(r['model'],r['stream'],r['output_tokens']) for r in recs]")" = "[('qwen-turbo', True, 30)]"

# ALPN: curl offers h2 and the mock would pick it; through the shim it speaks HTTP/1.1
mock_reset
with_shim $CURL $URL/compatible-mode/v1/chat/completions -d "$COMPAT" >/dev/null 2>&1
check "h2 offered by curl is removed for DashScope hosts" \
    $PY -c "import json,sys; a=json.load(sys.stdin)['alpn']; sys.exit(0 if a.get('h2',0)==0 and a.get('http/1.1',0)==2 else str(a))" <<EOF2
$(mock_stats)
EOF2
# and without the shim the same command does negotiate h2 (so the check above means something)
mock_reset
$CURL $URL/compatible-mode/v1/chat/completions -d "$COMPAT" >/dev/null 2>&1
check "without the shim curl negotiates h2 with this mock" \
    $PY -c "import json,sys; a=json.load(sys.stdin)['alpn']; sys.exit(0 if a.get('h2',0)==1 else str(a))" <<EOF2
$(mock_stats)
EOF2

# keep-alive: three requests in one curl run share one connection through the shim
mock_reset
: >"$QSHIM_LOG"
with_shim $CURL $URL/compatible-mode/v1/chat/completions -d "$COMPAT" --next $CURL $URL/compatible-mode/v1/chat/completions -d "$COMPAT" \
    --next $CURL $URL/api/v1/services/aigc/text-generation/generation -d "$NATIVE" >/dev/null 2>&1
check "keep-alive: 3 requests, 1 connection, 3 log records" \
    test "$(mock_stats | $PY -c "import json,sys; s=json.load(sys.stdin); print(s['connections'])") $(log_json "len(recs)")" = "2 3"

# Expect: 100-continue (curl adds it to bodies over 1 MiB): no deadlock, no 1 s stall
$PY -c "import json; print(json.dumps({'messages':[{'role':'user','content':'y'*1500000}],'model':'qwen-plus'}))" >"$WORK/big.json"
start=$(date +%s%N)
same "2 MB body with Expect: 100-continue" $CURL $URL/compatible-mode/v1/chat/completions -H 'Expect: 100-continue' --data-binary @"$WORK/big.json"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "Expect: 100-continue answered without waiting for curl's 1 s timeout (both runs: ${ms} ms)" test "$ms" -lt 1800

# 100 MB request body: over the buffer limit, so it streams through unpaced, once logged
$PY -c "
import sys
sys.stdout.write('{\"model\":\"qwen-long\",\"messages\":[{\"role\":\"user\",\"content\":\"')
chunk = 'z' * (1 << 20)
for _ in range(100): sys.stdout.write(chunk)
sys.stdout.write('\"}]}')" >"$WORK/huge.json"
: >"$QSHIM_LOG"
$CURL $URL/compatible-mode/v1/chat/completions --http1.1 --data-binary @"$WORK/huge.json" >"$WORK/a" 2>&1
with_shim $CURL $URL/compatible-mode/v1/chat/completions --data-binary @"$WORK/huge.json" >"$WORK/b" 2>"$WORK/b.err"
check "100 MB body: same answer with the shim" cmp "$WORK/a" "$WORK/b"
check "100 MB body: one diagnostic line" test "$(grep -c 'over' "$WORK/b.err")" = 1
check "100 MB body: logged as passthrough" \
    test "$(log_json "[(r['event'],r['model'],r['status']) for r in recs]")" = "[('passthrough', 'qwen-long', 200)]"
rm -f "$WORK/huge.json"

# a host that is not DashScope: untouched and not logged
: >"$QSHIM_LOG"
$CURL --http1.1 "https://127.0.0.1:$MOCK_PORT/bulk?bytes=1000000" | sha256sum >"$WORK/a"
with_shim $CURL --http1.1 "https://127.0.0.1:$MOCK_PORT/bulk?bytes=1000000" | sha256sum >"$WORK/b"
check "other host: same bytes" cmp "$WORK/a" "$WORK/b"
check "other host: nothing logged" test ! -s "$QSHIM_LOG"
qs_done
