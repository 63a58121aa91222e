#!/bin/sh
# mock_selftest.sh - checks qshim-mock itself, with curl and Python's ssl, before any test
# trusts it as the reference DashScope: envelopes, streaming, gzip, limits, stats, HTTP/1.1
# framing (keep-alive, pipelining, chunked bodies, Expect), determinism, clean shutdown
# under valgrind.
# Usage: tests/integration/test_mock.sh [BUILD_DIR] (default $QS_BUILD, then build)
# SPDX-License-Identifier: MIT
set -u

B=${1:-${QS_BUILD:-build}}
MOCK=$B/qshim-mock
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/mock_selftest.XXXXXX")
MPID=
# An aborted run must not leave a mock behind; a normal one stops it with SIGTERM in stop().
trap '[ -n "$MPID" ] && kill -KILL "$MPID" 2>/dev/null; rm -rf "$T"' EXIT INT TERM

# The self-signed certificate every integration test uses (DashScope names, localhost, 127.0.0.1):
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=dashscope.aliyuncs.com -addext "subjectAltName=DNS:dashscope.aliyuncs.com,DNS:*.dashscope.aliyuncs.com,DNS:dashscope-intl.aliyuncs.com,DNS:localhost,IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null ||
    { echo "openssl cannot make a certificate"; echo "mock_selftest: 0 passed, 1 failed"; exit 1; }

pass=0
fail=0
summary() { echo "mock_selftest: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
# check NAME CMD...: the command's exit status is the verdict.
check() { name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# jcheck NAME FILE EXPR: EXPR is Python over d, the JSON document in FILE.
jcheck() {
    check "$1" "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3"
}

# start [WRAPPER...] -- [MOCK OPTIONS...]: starts the mock, sets MPID, PORT, U, CURL and OPTS
# (curl's options again, for after --next).
start() {
    wrap=
    while [ "$1" != -- ]; do wrap="$wrap $1"; shift; done
    shift
    rm -f "$T/out"
    $wrap "$MOCK" --cert "$T/cert.pem" --key "$T/key.pem" --log "$T/mock.log" "$@" >"$T/out" 2>"$T/err" &
    MPID=$!
    i=0
    while ! grep -q '^PORT=' "$T/out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 300 ] || ! kill -0 "$MPID" 2>/dev/null; then
            cat "$T/err"; bad "the mock starts"; summary; exit 1
        fi
        sleep 0.1
    done
    PORT=$(sed -n 's/^PORT=//p' "$T/out")
    U=https://dashscope.aliyuncs.com:$PORT
    OPTS="-sS --resolve dashscope.aliyuncs.com:$PORT:127.0.0.1 --cacert $T/cert.pem"
    CURL="curl $OPTS"
}
# stop: SIGTERM, and the mock must exit 0.
stop() {
    kill -TERM "$MPID"
    wait "$MPID"
    rc=$?
    MPID=
    check "exit status 0 after SIGTERM" [ "$rc" -eq 0 ]
}
stats() { $CURL --http1.1 "$U/mock/stats" -o "$T/stats.json"; }
reset() { $CURL --http1.1 -X POST "$U/mock/reset" -o /dev/null; }
CHAT=/compatible-mode/v1/chat/completions
GEN=/api/v1/services/aigc/text-generation/generation
MMGEN=/api/v1/services/aigc/multimodal-generation/generation

# ---- Run 1: defaults, with limits -------------------------------------------------------
start -- --limit qwen-plus=60/100000 --limit qwen-rpm=60/100000 --limit qwen-long=6000/600 \
    --limit qwen-tpm=6000/600 --free-quota-model qwen-free
check "prints PORT=<n>" [ "$PORT" -gt 0 ]

# Compatible, non-stream.
code=$($CURL "$U$CHAT" -w '%{http_code}' -o "$T/c1" -d '{"messages":[{"role":"user","content":"hello there"}],"model":"qwen-turbo"}')
check "compat: 200" [ "$code" = 200 ]
jcheck "compat: chat.completion envelope" "$T/c1" 'd["object"] == "chat.completion" and d["model"] == "qwen-turbo" and d["id"].startswith("chatcmpl-") and d["created"] == 1700000000 and d["choices"][0]["finish_reason"] == "stop" and d["choices"][0]["message"]["role"] == "assistant"'
jcheck "compat: 16 words by default, usage adds up" "$T/c1" 'len(d["choices"][0]["message"]["content"].split()) == 16 == d["usage"]["completion_tokens"] and d["usage"]["total_tokens"] == d["usage"]["prompt_tokens"] + 16 and d["usage"]["prompt_tokens"] == 7'
$CURL "$U$CHAT" -o "$T/c2" -d '{"model":"qwen-turbo","max_tokens":300,"messages":[]}'
jcheck "compat: max_tokens words" "$T/c2" 'len(d["choices"][0]["message"]["content"].split()) == 300 == d["usage"]["completion_tokens"]'
$CURL "$U/compatible-mode/v1/embeddings" -o "$T/e1" -d '{"model":"text-embedding-v3","input":["a","b"],"dimensions":8}'
jcheck "compat: embeddings list" "$T/e1" 'd["object"] == "list" and len(d["data"]) == 2 and len(d["data"][1]["embedding"]) == 8 and "prompt_tokens" in d["usage"]'

# Native, non-stream; CJK characters count one token each.
$CURL "$U$GEN" -o "$T/n1" -d '{"model":"qwen-max","input":{"messages":[{"role":"user","content":"你好世界"}]},"parameters":{"max_tokens":5}}'
jcheck "native: envelope and usage" "$T/n1" 'd["output"]["choices"][0]["finish_reason"] == "stop" and len(d["output"]["choices"][0]["message"]["content"].split()) == 5 and d["usage"] == {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12} and len(d["request_id"]) == 36'
$CURL "$U$MMGEN" -o "$T/n2" -d '{"model":"qwen-vl-plus","input":{"messages":[]}}'
jcheck "native multimodal: content is [{text}]" "$T/n2" 'isinstance(d["output"]["choices"][0]["message"]["content"][0]["text"], str)'

# Compatible stream with include_usage.
$CURL "$U$CHAT" -o "$T/s1" -d '{"model":"qwen-turbo","stream":true,"max_tokens":100,"stream_options":{"include_usage":true}}'
check "compat stream: chunks, stop, usage, [DONE]" "$PY" -c 'import json, sys
ev = open(sys.argv[1]).read().split("\n\n")
assert ev[-1] == "" and ev[-2] == "data: [DONE]", ev[-2:]
ch = [json.loads(e[6:]) for e in ev[:-2]]
assert all(e.startswith("data: ") for e in ev[:-1])
text = "".join(c["choices"][0]["delta"].get("content", "") for c in ch if c["choices"])
assert len(ch) == 64 + 2 and len(text.split()) == 100
assert ch[0]["choices"][0]["delta"]["role"] == "assistant" and ch[0]["object"] == "chat.completion.chunk"
assert ch[-2]["choices"][0]["finish_reason"] == "stop" and ch[-3]["choices"][0]["finish_reason"] is None
assert ch[-1]["choices"] == [] and ch[-1]["usage"]["completion_tokens"] == 100' "$T/s1"

# Native stream: cumulative usage and text, finish_reason "null" until the last, no [DONE].
$CURL "$U$GEN" -H 'X-DashScope-SSE: enable' -o "$T/s2" -d '{"model":"qwen-max2","input":{"prompt":"hi"},"parameters":{"max_tokens":3}}'
$CURL "$U$GEN" -H 'X-DashScope-SSE: enable' -o "$T/s3" -d '{"model":"qwen-max2","input":{"prompt":"hi"},"parameters":{"max_tokens":3,"incremental_output":true}}'
check "native stream: events" "$PY" -c 'import json, sys
for f, inc in ((sys.argv[1], False), (sys.argv[2], True)):
    ev = open(f).read().split("\n\n")
    assert ev[-1] == "" and len(ev) == 4, ev
    prev = ""
    for i, e in enumerate(ev[:-1]):
        l = e.split("\n")
        assert l[:3] == ["id:%d" % (i + 1), "event:result", ":HTTP_STATUS/200"] and l[3].startswith("data:"), l
        d = json.loads(l[3][5:])
        c = d["output"]["choices"][0]
        assert c["finish_reason"] == ("stop" if i == 2 else "null")
        assert d["usage"]["output_tokens"] == i + 1
        t = c["message"]["content"]
        assert len((prev + t if inc else t).split()) == i + 1
        prev += t' "$T/s2" "$T/s3"

# gzip: same bytes once decoded, plain and SSE; identity and absent stay plain.
$CURL "$U$CHAT" -D "$T/h" -o "$T/g1" --compressed -d '{"model":"qwen-turbo","messages":[]}'
$CURL "$U$CHAT" -o "$T/g0" -d '{"model":"qwen-turbo","messages":[]}'
check "gzip: Content-Encoding with --compressed" grep -qi '^content-encoding: gzip' "$T/h"
check "gzip: decodes to the plain answer" cmp -s "$T/g0" "$T/g1"
$CURL "$U$CHAT" -H 'Accept-Encoding: identity' -D "$T/h" -o /dev/null -d '{"model":"qwen-turbo","messages":[]}'
check "identity: no Content-Encoding" sh -c "! grep -qi '^content-encoding' '$T/h'"
$CURL "$U$GEN" -H 'X-DashScope-SSE: enable' -D "$T/h" --compressed -o "$T/s2z" -d '{"model":"qwen-max2","input":{"prompt":"hi"},"parameters":{"max_tokens":3}}'
check "gzip: SSE decodes to the plain stream" cmp -s "$T/s2" "$T/s2z"
check "gzip: SSE is chunked" grep -qi '^transfer-encoding: chunked' "$T/h"

# Determinism: same request bytes, same response bytes (head included); other body, other id.
for i in 1 2; do $CURL "$U$CHAT" -D - -o "$T/d$i.body" -d '{"model":"qwen-turbo","messages":[{"role":"user","content":"same"}]}' >"$T/d$i.head"; done
check "determinism: identical heads" cmp -s "$T/d1.head" "$T/d2.head"
check "determinism: identical bodies" cmp -s "$T/d1.body" "$T/d2.body"
check "determinism: no Date header" sh -c "! grep -qi '^date:' '$T/d1.head'"
$CURL "$U$CHAT" -o "$T/d3.body" -d '{"model":"qwen-turbo","messages":[{"role":"user","content":"other"}]}'
check "determinism: another body, another answer" sh -c "! cmp -s '$T/d1.body' '$T/d3.body'"

# Limits: RPM 60 means 1 per second; the 2nd quick request is a 429 with the exact envelope.
codes=
for i in 1 2 3; do
    codes="$codes $($CURL "$U$CHAT" -w '%{http_code}' -o "$T/l$i" -d '{"model":"qwen-plus","messages":[]}')"
done
check "RPM: 200 then 429 ($codes)" [ "$codes" = " 200 429 429" ]
check "RPM compat body" "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
rid = d.pop("request_id")
assert len(rid) == 36 and d == {"error": {"message": "You have exceeded your current request limit. For details, see: https://help.aliyun.com/zh/model-studio/error-code#rate-limit", "type": "limit_requests", "param": None, "code": "limit_requests"}}' "$T/l2"
for i in 1 2; do code=$($CURL "$U$GEN" -w '%{http_code}' -o "$T/m$i" -d '{"model":"qwen-rpm","input":{}}'); done
check "RPM native: 429" [ "$code" = 429 ]
jcheck "RPM native body" "$T/m2" 'd["code"] == "Throttling.RateQuota" and d["message"] == "Requests rate limit exceeded, please try again later." and len(d) == 3'
# TPM 600 = 10 per second: a 50-token request passes an idle budget, the next one does not.
for i in 1 2; do code=$($CURL "$U$CHAT" -w '%{http_code}' -o "$T/t$i" -d '{"model":"qwen-long","max_tokens":50}'); done
check "TPM: idle budget admits a big request" grep -q chat.completion "$T/t1"
check "TPM compat: 429" [ "$code" = 429 ]
jcheck "TPM compat body" "$T/t2" 'd["error"] == {"code": "insufficient_quota", "message": "You exceeded your current quota, please check your plan and billing details. For details, see: https://help.aliyun.com/zh/model-studio/error-code#token-limit", "param": None, "type": "insufficient_quota"}'
for i in 1 2; do $CURL "$U$GEN" -o "$T/u$i" -d '{"model":"qwen-tpm","parameters":{"max_tokens":50}}'; done
jcheck "TPM native body" "$T/u2" 'd["code"] == "Throttling.AllocationQuota" and d["message"] == "Allocated quota exceeded, please increase your quota limit."'
code=$($CURL "$U$CHAT" -w '%{http_code}' -o "$T/f1" -d '{"model":"qwen-free"}')
jcheck "free quota: 429 insufficient_quota, not retryable text" "$T/f1" '"'"$code"'" == "429" and d["error"]["code"] == "insufficient_quota" and d["error"]["message"] == "Free allocated quota exceeded."'
$CURL "$U$GEN" -H 'X-DashScope-SSE: enable' -D "$T/h" -o "$T/f2" -d '{"model":"qwen-free","input":{}}'
check "native SSE throttle: HTTP 200 with an error event" "$PY" -c 'import json, sys
h = open(sys.argv[1]).read()
assert h.startswith("HTTP/1.1 200") and "text/event-stream" in h
l = open(sys.argv[2]).read().split("\n")
assert l[:3] == ["id:1", "event:error", ":HTTP_STATUS/429"] and l[4:] == ["", ""], l
d = json.loads(l[3][5:])
assert d["code"] == "Throttling.AllocationQuota" and d["message"] == "Free allocated quota exceeded."' "$T/h" "$T/f2"

# Stats so far.
stats
jcheck "stats: totals" "$T/stats.json" 'd["totals"]["throttled"] == 7 and d["totals"]["requests"] == d["totals"]["ok"] + d["totals"]["throttled"] + d["totals"]["errors"]'
jcheck "stats: per model and code" "$T/stats.json" '(m := d["models"]["qwen-plus"]) and m["requests"] == 3 and m["ok"] == 1 and m["throttled_by_code"]["limit_requests"] == 2 and m["throttled_by_reason"]["rpm"] == 2 and m["limit"] == {"rpm": 60, "tpm": 100000} and m["max_req_1s"] == 3 and m["ok_max_req_1s"] == 1'
jcheck "stats: free quota and native codes" "$T/stats.json" 'd["models"]["qwen-free"]["throttled_by_reason"]["free_quota"] == 2 and d["models"]["qwen-free"]["free_quota"] and d["totals"]["throttled_by_code"]["Throttling.RateQuota"] == 1 and d["totals"]["throttled_by_code"]["Throttling.AllocationQuota"] == 2 and d["totals"]["throttled_by_code"]["insufficient_quota"] == 2'
jcheck "stats: windows count tokens" "$T/stats.json" '(m := d["models"]["qwen-long"]) and m["ok_max_tok_1s"] == m["ok_max_tok_60s"] == 53 and m["max_tok_1s"] == 106'
jcheck "stats: Accept-Encoding, SNI, ALPN" "$T/stats.json" 'd["accept_encoding"]["gzip"] == 2 and d["accept_encoding"]["identity"] == 1 and d["sni"]["dashscope.aliyuncs.com"] == d["connections"] and d["alpn"]["http/1.1"] == d["connections"]'

# Keep-alive: several requests and the stats in one curl invocation use one connection.
reset
# shellcheck disable=SC2086 # $OPTS is a list of options
$CURL "$U$CHAT" -d '{"model":"ka"}' -o "$T/k1" --next $OPTS "$U$GEN" -d '{"model":"ka","input":{}}' -o "$T/k2" \
    --next $OPTS "$U/bulk?bytes=10" -o /dev/null --next $OPTS "$U/mock/stats" -o "$T/stats.json"
jcheck "keep-alive: one connection, reset worked" "$T/stats.json" 'd["connections"] == 1 and d["totals"]["requests"] == 2 and d["other_requests"] == 1 and list(d["models"])[:5] == ["qwen-plus", "qwen-rpm", "qwen-long", "qwen-tpm", "qwen-free"] and d["models"]["qwen-plus"]["requests"] == 0'

# Chunked request body, with "model" after 300 kB of messages (openai-python's order).
reset
"$PY" -c 'import json; print(json.dumps({"messages": [{"role": "user", "content": "x" * 300000}], "model": "qwen-chunked"}))' >"$T/big.json"
$CURL "$U$CHAT" -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.json" -o "$T/ch"
jcheck "chunked body: model found after the prompt" "$T/ch" 'd["model"] == "qwen-chunked" and d["usage"]["prompt_tokens"] == (300000 + len("user") + len("qwen-chunked") + 3) // 4'
# Expect: 100-continue is answered before the body is read.
$CURL -v "$U$CHAT" -H 'Expect: 100-continue' --data-binary @"$T/big.json" -o "$T/ex" 2>"$T/ex.v"
check "Expect: 100 Continue sent" grep -q '^< HTTP/1.1 100 Continue' "$T/ex.v"
jcheck "Expect: then the answer" "$T/ex" 'd["model"] == "qwen-chunked"'
stats
jcheck "stats: chunked and Expect counted" "$T/stats.json" 'd["chunked_bodies"] == 1 and d["expect_continue"] == 1'

# Pipelining: three requests in one write, answered in order on one connection.
check "pipelining: answers in order" "$PY" -c 'import os, socket, ssl, sys, json
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="dashscope.aliyuncs.com")
req = b""
for n in (1, 2, 3):
    body = b"{\"model\":\"pipe\",\"max_tokens\":%d}" % n
    req += b"POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
s.sendall(req + b"GET /mock/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
parts = data.split(b"HTTP/1.1 200 OK\r\n")[1:]
assert len(parts) == 4, data
for n, p in zip((1, 2, 3), parts):
    assert json.loads(p.split(b"\r\n\r\n", 1)[1])["usage"]["completion_tokens"] == n
assert json.loads(parts[3].split(b"\r\n\r\n", 1)[1])["pipelined"] == 3' "$PORT" "$T/cert.pem"

# Bulk and 404.
$CURL "$U/bulk?bytes=3000000" -D "$T/h" -o "$T/b1"
$CURL "$U/bulk?bytes=3000000" -o "$T/b2"
check "bulk: N bytes with Content-Length" sh -c "[ \$(wc -c <'$T/b1') -eq 3000000 ] && grep -qi '^content-length: 3000000' '$T/h'"
check "bulk: deterministic" cmp -s "$T/b1" "$T/b2"
code=$($CURL "$U/nope" -w '%{http_code}' -o "$T/nf")
jcheck "404 with a JSON body" "$T/nf" '"'"$code"'" == "404" and d["error"]["code"] == "not_found"'
code=$($CURL "$U$CHAT" -w '%{http_code}' -o "$T/bad" -d '{"model":')
jcheck "400 on invalid JSON" "$T/bad" '"'"$code"'" == "400" and d["error"]["code"] == "invalid_parameter_error"'
check "log: one line per request" grep -q 'model=qwen-plus status=429 code=limit_requests POST /compatible-mode/v1/chat/completions' "$T/mock.log"
stop

# ---- Run 2: h2 ALPN, --chunked, --close-on-429, latency, concurrency --------------------
start -- --alpn-h2 --chunked --close-on-429 --latency-ms 300 --stream-delay-ms 50 --limit qwen-plus=60/100000
$CURL "$U$CHAT" -d '{"model":"h2"}' -o /dev/null 2>/dev/null
stats
jcheck "--alpn-h2: h2 selected, preface counted, connection closed" "$T/stats.json" 'd["alpn"]["h2"] == 1 and d["h2_preface"] == 1 and d["totals"]["requests"] == 0'
$CURL --http1.1 "$U$CHAT" -D "$T/h" -o "$T/k" -w '%{time_total}' -d '{"model":"lat"}' >"$T/time"
check "--chunked: Transfer-Encoding: chunked" grep -qi '^transfer-encoding: chunked' "$T/h"
jcheck "--chunked: body intact" "$T/k" 'd["model"] == "lat"'
check "--latency-ms: answer delayed" "$PY" -c 'import sys; sys.exit(float(open(sys.argv[1]).read()) < 0.3)' "$T/time"
$CURL --http1.1 "$U$CHAT" -o /dev/null -w '%{time_total}' -d '{"model":"lat","stream":true,"max_tokens":4}' >"$T/time"
check "--stream-delay-ms: 5 gaps of 50 ms" "$PY" -c 'import sys; sys.exit(float(open(sys.argv[1]).read()) < 0.55)' "$T/time"
# shellcheck disable=SC2086
$CURL --http1.1 "$U$CHAT" -d '{"model":"qwen-plus"}' -o /dev/null --next $OPTS --http1.1 -D "$T/h" "$U$CHAT" -d '{"model":"qwen-plus"}' -o /dev/null
check "--close-on-429: Connection: close" sh -c "grep -q '^HTTP/1.1 429' '$T/h' && grep -qi '^connection: close' '$T/h'"
check "100 concurrent connections are served in parallel" "$PY" -c 'import socket, ssl, sys, threading, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
ok = []
def one(i):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
    body = b"{\"model\":\"conc%d\"}" % (i % 4)
    s.sendall(b"POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    ok.append(data.startswith(b"HTTP/1.1 200"))
t0 = time.time()
ts = [threading.Thread(target=one, args=(i,)) for i in range(100)]
[t.start() for t in ts]
[t.join() for t in ts]
assert sum(ok) == 100 and time.time() - t0 < 5, (sum(ok), time.time() - t0)' "$PORT" "$T/cert.pem"
stop

# ---- Run 3: valgrind over a few requests and SIGTERM ------------------------------------
if command -v valgrind >/dev/null 2>&1; then
    start valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --log-file="$T/vg" -- \
        --limit qwen-plus=60/100000 --stream-delay-ms 1
    # shellcheck disable=SC2086
    $CURL "$U$CHAT" --compressed -d '{"model":"qwen-plus","stream":true}' -o /dev/null --next $OPTS "$U$CHAT" -d '{"model":"qwen-plus"}' -o /dev/null
    $CURL "$U$GEN" -H 'X-DashScope-SSE: enable' --compressed -d '{"model":"v"}' -o /dev/null
    $CURL "$U$CHAT" -H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue' --data-binary @"$T/big.json" -o /dev/null
    # shellcheck disable=SC2086
    $CURL -X POST "$U/mock/reset" -o /dev/null --next $OPTS "$U/mock/stats" -o /dev/null --next $OPTS "$U/bulk?bytes=100000" -o /dev/null
    # One connection stays open and idle across the shutdown.
    "$PY" -c 'import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
time.sleep(30)' "$PORT" "$T/cert.pem" &
    IDLE=$!
    sleep 1
    stop
    kill "$IDLE" 2>/dev/null
    check "valgrind: no errors, no definite leaks" grep -q 'ERROR SUMMARY: 0 errors' "$T/vg"
else
    echo "skip valgrind: not installed"
fi

summary
