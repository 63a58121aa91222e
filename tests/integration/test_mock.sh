#!/bin/sh
# mock_selftest.sh - checks qshim-mock itself, with curl and Python's ssl, before any test
# trusts it as the reference DashScope: envelopes, streaming, gzip, limits, scripted error
# answers (POST /mock/script), stats, HTTP/1.1 framing (keep-alive, pipelining, chunked
# bodies, Expect), determinism, clean shutdown under valgrind.
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
check "no retry-after-ms without --retry-after-ms" sh -c "! grep -qi '^retry-after' '$T/h'"
# --close-on-429 covers scripted 429s too, and only 429s.
$CURL --http1.1 "$U/mock/script" -o /dev/null -d '{"model":"s","kind":"generic"}'
$CURL --http1.1 "$U/mock/script" -o /dev/null -d '{"model":"s","kind":"capacity"}'
$CURL --http1.1 "$U$CHAT" -D "$T/h1" -o /dev/null -d '{"model":"s"}'
$CURL --http1.1 "$U$CHAT" -D "$T/h2" -o /dev/null -d '{"model":"s"}'
check "--close-on-429: a scripted 429 closes, a 503 does not" sh -c "grep -qi '^connection: close' '$T/h1' && grep -q '^HTTP/1.1 503' '$T/h2' && ! grep -qi '^connection:' '$T/h2'"
stats
jcheck "stats: closed_after_429" "$T/stats.json" 'd["closed_after_429"] == 2 and d["models"]["s"]["last_statuses"] == [429, 503]'
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

# ---- Run 4: scripted answers (POST /mock/script), --retry-after-ms ----------------------
# The expected bodies are written out here from SPEC §6 and dashscope-wire.md §3.2-3.3, not
# taken from the mock, and compared byte for byte (key order included).
cat >"$T/script.py" <<'EOF'
import gzip, http.client, json, socket, ssl, sys

PORT, CA, TEST = int(sys.argv[1]), sys.argv[2], sys.argv[3]
CTX = ssl.create_default_context(cafile=CA)
C = http.client.HTTPSConnection("localhost", PORT, context=CTX)
CHAT = "/compatible-mode/v1/chat/completions"
GEN = "/api/v1/services/aigc/text-generation/generation"
LINK = "https://help.aliyun.com/zh/model-studio/error-code#"
BURST = "Request rate increased too quickly. To ensure system stability, please adjust your client logic to scale requests more smoothly over time."
CAP = "Too many requests. Your requests are being throttled due to system capacity limits. Please try again later."
ARR = "Access denied, please make sure your account is in good standing."
FT = 'The free tier of the model has been exhausted. If you wish to continue access the model on a paid basis, please disable the "use free tier only" mode in the management console.'


def env(msg, code):
    return {"error": {"message": msg, "type": code, "param": None, "code": code}}


# kind: (HTTP status, native code, native message, compatible body without its ids)
KINDS = {
    "rpm": (429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.",
            {"error": {"message": "You have exceeded your current request limit. For details, see: " + LINK + "rate-limit", "type": "limit_requests", "param": None, "code": "limit_requests"}}),
    "tpm": (429, "Throttling.AllocationQuota", "Allocated quota exceeded, please increase your quota limit.",
            {"error": {"code": "insufficient_quota", "message": "You exceeded your current quota, please check your plan and billing details. For details, see: " + LINK + "token-limit", "param": None, "type": "insufficient_quota"}}),
    "burst": (429, "Throttling.BurstRate", BURST, env(BURST, "limit_burst_rate")),
    "generic": (429, "Throttling", "Requests throttling triggered.", env("Requests throttling triggered.", "Throttling")),
    "free_quota": (429, "Throttling.AllocationQuota", "Free allocated quota exceeded.",
                   {"error": {"code": "insufficient_quota", "message": "Free allocated quota exceeded.", "param": None, "type": "insufficient_quota"}}),
    "capacity": (503, "ModelServingError", CAP, env(CAP, "ModelServingError")),
    "unavailable": (503, "ModelUnavailable", "Model is unavailable, try again later.", env("Model is unavailable, try again later.", "ModelUnavailable")),
    "arrearage": (400, "Arrearage", ARR, env(ARR + " For details, see: " + LINK + "overdue-payment", "Arrearage")),
    "commodity": (429, "CommodityNotPurchased", "Commodity has not purchased yet.", env("Commodity has not purchased yet.", "CommodityNotPurchased")),
    "prepaid": (429, "PrepaidBillOverdue", "The prepaid bill is overdue.", env("The prepaid bill is overdue.", "PrepaidBillOverdue")),
    "postpaid": (429, "PostpaidBillOverdue", "The postpaid bill is overdue.", env("The postpaid bill is overdue.", "PostpaidBillOverdue")),
    "free_tier_only": (403, "AllocationQuota.FreeTierOnly", FT, env(FT, "AllocationQuota.FreeTierOnly")),
}


def dumps(o):
    return json.dumps(o, separators=(",", ":")).encode()


def call(method, path, body=None, headers=None):
    C.request(method, path, body=None if body is None else json.dumps(body), headers=headers or {})
    r = C.getresponse()
    return r, r.read()


def script(**rule):
    r, b = call("POST", "/mock/script", rule)
    assert r.status == 200, (r.status, b)
    return json.loads(b)


def ask(model, native=False, sse=False, headers=None):
    h = dict(headers or {})
    if sse:
        h["X-DashScope-SSE"] = "enable"
    return call("POST", GEN if native else CHAT, {"model": model, "input": {}} if native else {"model": model, "messages": []}, h)


def stats():
    return json.loads(call("GET", "/mock/stats")[1])


def code(raw):
    d = json.loads(raw)
    return d["error"]["code"] if "error" in d else d.get("code")


def check_compat(kind, r, raw):
    st, _, _, body = KINDS[kind]
    rid = json.loads(raw)["request_id"]
    want = dict(body, **({"id": "chatcmpl-" + rid} if kind == "free_tier_only" else {}), request_id=rid)
    assert r.status == st and len(rid) == 36 and raw == dumps(want), (kind, r.status, raw)


def native_body(kind, rid):
    return dumps({"code": KINDS[kind][1], "message": KINDS[kind][2], "request_id": rid})


def check_native(kind, r, raw):
    rid = json.loads(raw)["request_id"]
    assert r.status == KINDS[kind][0] and raw == native_body(kind, rid), (kind, r.status, raw)


def check_sse(kind, r, raw, status=None):
    head, data = raw.split(b"\ndata:", 1)
    rid = json.loads(data)["request_id"]
    want = b"id:1\nevent:error\n:HTTP_STATUS/%d\ndata:%s\n\n" % (status or KINDS[kind][0], native_body(kind, rid))
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream") and raw == want, (kind, raw)


def t_bodies():
    """Every kind, three times: compatible, native, native SSE; no retry headers unless asked."""
    for kind in KINDS:
        assert script(model="k-" + kind, kind=kind, count=3) == {"queued": 3, "pending": 3}
        for native, sse, chk in ((False, False, check_compat), (True, False, check_native), (True, True, check_sse)):
            r, raw = ask("k-" + kind, native, sse)
            chk(kind, r, raw)
            assert r.getheader("retry-after-ms") is None and r.getheader("Retry-After") is None
            assert r.getheader("Connection") is None, kind
        assert ask("k-" + kind)[0].status == 200, kind


def t_stats():
    """Per model: scripted, attempts_seen, codes of both envelopes, last_statuses."""
    d = stats()
    for kind, (st, ncode, _, body) in KINDS.items():
        m = d["models"]["k-" + kind]
        ccode = body["error"]["code"]
        assert m["scripted"] == 3 and m["attempts_seen"] == 4 and m["requests"] == m["ok"] == 1, (kind, m)
        assert m["throttled"] == 0 and m["scripted_pending"] == 0 and m["last_statuses"] == [st, st, st, 200], (kind, m)
        bc = m["throttled_by_code"]
        assert (bc[ncode] == 3) if ncode == ccode else (bc[ncode] == 2 and bc[ccode] == 1), (kind, bc)
    t = d["totals"]
    assert t["attempts_seen"] == t["requests"] + t["scripted"] and t["scripted"] == 3 * len(KINDS)


def t_headers():
    """retry_after_ms and retry_after_s become headers, in every form; gzip like any answer."""
    script(model="h", kind="tpm", count=3, retry_after_ms=1500, retry_after_s=2)
    script(model="h", kind="burst", retry_after_s=7)
    for native, sse, chk in ((False, False, check_compat), (True, False, check_native), (True, True, check_sse)):
        r, raw = ask("h", native, sse)
        chk("tpm", r, raw)
        assert r.getheader("retry-after-ms") == "1500" and r.getheader("Retry-After") == "2", r.getheaders()
    r, raw = ask("h", headers={"Accept-Encoding": "gzip"})
    assert r.getheader("Content-Encoding") == "gzip" and r.getheader("Retry-After") == "7" and r.getheader("retry-after-ms") is None
    check_compat("burst", r, gzip.decompress(raw))


def raw_request(s, body):
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (CHAT.encode(), len(body), body))


def t_close():
    """"close": Connection: close, then EOF; the close is counted (429 only); status overrides."""
    script(model="c", kind="rpm", close=True)
    script(model="c", kind="capacity", status=500, close=True)
    for st in (429, 500):
        s = CTX.wrap_socket(socket.create_connection(("127.0.0.1", PORT)), server_hostname="localhost")
        s.settimeout(10)
        raw_request(s, b'{"model":"c"}')
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 %d" % st) and b"\r\nconnection: close" in head, data
    d = stats()
    assert d["closed_after_429"] == 1 and d["models"]["c"]["last_statuses"] == [429, 500], d["models"]["c"]


def t_order():
    """Rules of a model play in order; other models' rules stay out of the way."""
    script(model="o2", kind="capacity")
    script(model="o", kind="rpm", count=2)
    script(model="o", kind="capacity")
    assert script(model="o", kind="burst") == {"queued": 1, "pending": 4}
    got = [ask("o") for _ in range(5)]
    assert [r.status for r, _ in got] == [429, 429, 503, 429, 200]
    assert [code(b) for _, b in got[:4]] == ["limit_requests", "limit_requests", "ModelServingError", "limit_burst_rate"]
    m = stats()["models"]
    assert m["o"]["last_statuses"] == [429, 429, 503, 429, 200] and m["o"]["scripted_pending"] == 0
    assert m["o2"]["scripted_pending"] == 1 and ask("o2")[0].status == 503


def t_precedence():
    """Scripts come before limits and the free-quota model, and do not fill the limit windows."""
    script(model="qwen-plus", kind="generic", count=3)
    for _ in range(3):
        r, raw = ask("qwen-plus")
        check_compat("generic", r, raw)
    assert ask("qwen-plus")[0].status == 200  # RPM 60: the scripted three took no slot
    r, raw = ask("qwen-plus")
    check_compat("rpm", r, raw)  # the limit's own 429, with --retry-after-ms
    assert r.getheader("retry-after-ms") == "250" and r.getheader("Retry-After") is None
    script(model="qwen-plus", kind="capacity")
    check_compat("capacity", *ask("qwen-plus"))
    script(model="qwen-free", kind="rpm")
    check_compat("rpm", *ask("qwen-free"))
    r, raw = ask("qwen-free")
    check_compat("free_quota", r, raw)
    assert r.getheader("retry-after-ms") is None  # a quota error says nothing about when
    m = stats()["models"]["qwen-plus"]
    assert m["attempts_seen"] == 6 and m["scripted"] == 4 and m["requests"] == 2 and m["ok"] == 1 and m["throttled"] == 1, m
    assert m["ok_max_req_1s"] == 1 and m["max_req_1s"] == 6 and m["last_statuses"] == [429, 429, 429, 200, 429, 503], m
    assert m["throttled_by_code"]["Throttling"] == 3 and m["throttled_by_code"]["limit_requests"] == 1, m


def t_clear():
    """DELETE /mock/script and POST /mock/reset drop every rule."""
    script(model="x", kind="rpm", count=2)
    script(model="y", kind="capacity", count=3)
    r, raw = call("DELETE", "/mock/script")
    assert r.status == 200 and json.loads(raw) == {"cleared": 5}, raw
    assert ask("x")[0].status == ask("y")[0].status == 200
    script(model="x", kind="rpm", count=2)
    assert call("POST", "/mock/reset")[0].status == 200
    assert ask("x")[0].status == 200
    m = stats()["models"]["x"]
    assert m["scripted_pending"] == 0 and m["last_statuses"] == [200] and m["scripted"] == 0, m


def t_bad():
    """A wrong rule is refused with the field named, and queues nothing."""
    for rule, field in (({"model": "b", "kind": "nope"}, "kind"), ({"model": "b", "kind": "rpm", "retry_after": 1}, "retry_after"),
                        ({"model": "b", "kind": "rpm", "count": 0}, "count"), ({"model": "b", "kind": "rpm", "status": 200}, "status"),
                        ({"model": "b", "kind": "rpm", "close": 1}, "close"), ({"model": ["b"], "kind": "rpm"}, "model"),
                        ({"kind": "rpm"}, None), ({"model": "b"}, None)):
        r, raw = call("POST", "/mock/script", rule)
        d = json.loads(raw)
        assert r.status == 400 and d.get("field") == field, (rule, raw)
    C.request("POST", "/mock/script", body='{"model":"b",')
    r = C.getresponse()
    assert r.status == 400 and b"not valid JSON" in r.read()
    assert ask("b")[0].status == 200


def t_last32():
    """last_statuses keeps the newest 32, oldest first."""
    script(model="l", kind="unavailable")
    for _ in range(32):
        ask("l")
    assert stats()["models"]["l"]["last_statuses"] == [503] + [200] * 31
    ask("l")
    assert stats()["models"]["l"]["last_statuses"] == [200] * 32


globals()["t_" + TEST]()
EOF
start -- --limit qwen-plus=60/100000 --free-quota-model qwen-free --retry-after-ms 250
for t in bodies stats headers close order precedence clear bad last32; do
    check "script: $t" "$PY" "$T/script.py" "$PORT" "$T/cert.pem" "$t"
done
check "log: scripted answers logged with their code" grep -q 'model=k-capacity status=503 code=ModelServingError POST /api/v1' "$T/mock.log"
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
    # Scripts: a bad rule, a cleared one, one played, and one left queued at the shutdown.
    # shellcheck disable=SC2086
    $CURL "$U/mock/script" -d '{"model":"v","kind":"x"}' -o /dev/null --next $OPTS "$U/mock/script" -d '{"model":"v","kind":"rpm"}' -o /dev/null \
        --next $OPTS -X DELETE "$U/mock/script" -o /dev/null --next $OPTS "$U/mock/script" -d '{"model":"v","kind":"capacity","count":3,"retry_after_ms":5,"close":true}' -o /dev/null
    $CURL "$U$GEN" -H 'X-DashScope-SSE: enable' --compressed -d '{"model":"v"}' -o /dev/null
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
