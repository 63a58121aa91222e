"""clients.py - drive one real HTTP client against a DashScope endpoint, unmodified.

Usage: clients.py CLIENT BASE_URL SCENARIO [N]
  CLIENT   requests | urllib | httpx | httpx-async | aiohttp
  SCENARIO compat | compat-stream | native | native-stream | big-request |
           big-response | keepalive | concurrent | burst-<one of the first four>
           (burst-*: N requests at once, default 20, one connection each)
Prints one line per request, in request order: "<i> <status> <len> <sha256 of the body>",
so two runs (with and without the shim) can be compared byte for byte. The client is
used exactly as an application would use it; nothing here knows about qshim.
"""
import asyncio
import hashlib
import json
import ssl
import sys
import threading
import urllib.request

CLIENT, BASE, SCENARIO = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
BURST = SCENARIO.startswith("burst-")
if BURST:
    SCENARIO = SCENARIO[len("burst-"):]
N = int(sys.argv[4]) if len(sys.argv) > 4 else 0
CA = ssl.get_default_verify_paths().openssl_cafile  # overridden by SSL_CERT_FILE
import os
CA = os.environ.get("SSL_CERT_FILE", CA)
KEY = "Bearer sk-test-0000"


def request_for(i):
    """(path, headers, body) of request i of the scenario."""
    text = "hello %d " % i + "你好" * (i % 3)
    compat = {"messages": [{"role": "user", "content": text}], "model": "qwen-plus"}
    native = {"model": "qwen-turbo", "input": {"messages": [{"role": "user", "content": text}]},
              "parameters": {"max_tokens": 20 + i}}
    hdr = {"Authorization": KEY, "Content-Type": "application/json"}
    if SCENARIO in ("compat", "keepalive", "concurrent"):
        return "/compatible-mode/v1/chat/completions", hdr, compat
    if SCENARIO == "compat-stream":
        compat.update(stream=True, stream_options={"include_usage": True})
        return "/compatible-mode/v1/chat/completions", hdr, compat
    if SCENARIO == "native":
        return "/api/v1/services/aigc/text-generation/generation", hdr, native
    if SCENARIO == "native-stream":
        return ("/api/v1/services/aigc/text-generation/generation",
                dict(hdr, **{"X-DashScope-SSE": "enable", "Accept": "text/event-stream"}), native)
    if SCENARIO == "big-request":  # "model" after ~5 MB of messages, as openai-python orders it
        big = {"messages": [{"role": "user", "content": ("x%d " % i) * 1300000}], "model": "qwen-long"}
        return "/compatible-mode/v1/chat/completions", hdr, big
    if SCENARIO == "big-response":
        compat["max_tokens"] = 600000
        return "/compatible-mode/v1/chat/completions", hdr, compat
    raise SystemExit("unknown scenario " + SCENARIO)


COUNT = 20 if BURST else {"keepalive": 20, "concurrent": 50}.get(SCENARIO, 2)
CONCURRENT = BURST or SCENARIO == "concurrent"
if N:
    COUNT = N


def line(i, status, body):
    return "%d %d %d %s" % (i, status, len(body), hashlib.sha256(body).hexdigest())


def run_requests():
    import requests
    s = requests.Session()
    def one(i, sess):
        path, hdr, body = request_for(i)
        r = sess.post(BASE + path, data=json.dumps(body), headers=hdr, verify=CA, stream=True)
        data = b"".join(r.iter_content(8192))  # decoded, as the program sees it
        return line(i, r.status_code, data)
    if CONCURRENT:
        return threaded(lambda i: one(i, requests.Session()))
    return [one(i, s) for i in range(COUNT)]


def run_urllib():
    ctx = ssl.create_default_context(cafile=CA)
    def one(i):
        path, hdr, body = request_for(i)
        req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), headers=hdr)
        try:
            with urllib.request.urlopen(req, context=ctx) as r:
                return line(i, r.status, r.read())
        except urllib.error.HTTPError as e:
            return line(i, e.code, e.read())
    if CONCURRENT:
        return threaded(one)
    return [one(i) for i in range(COUNT)]


def run_httpx():
    import httpx
    with httpx.Client(verify=CA, timeout=120) as c:
        def one(i):
            path, hdr, body = request_for(i)
            with c.stream("POST", BASE + path, json=body, headers=hdr) as r:
                return line(i, r.status_code, b"".join(r.iter_bytes()))
        if CONCURRENT:
            return threaded(one)
        return [one(i) for i in range(COUNT)]


def run_httpx_async():
    import httpx
    async def main():
        limits = httpx.Limits(max_connections=COUNT)
        async with httpx.AsyncClient(verify=CA, timeout=120, limits=limits) as c:
            async def one(i):
                path, hdr, body = request_for(i)
                async with c.stream("POST", BASE + path, json=body, headers=hdr) as r:
                    data = b"".join([b async for b in r.aiter_bytes()])
                    return line(i, r.status_code, data)
            if CONCURRENT:
                return await asyncio.gather(*[one(i) for i in range(COUNT)])
            return [await one(i) for i in range(COUNT)]
    return asyncio.run(main())


def run_aiohttp():
    import aiohttp
    async def main():
        ctx = ssl.create_default_context(cafile=CA)
        conn = aiohttp.TCPConnector(limit=COUNT, ssl=ctx)
        async with aiohttp.ClientSession(connector=conn) as s:
            async def one(i):
                path, hdr, body = request_for(i)
                async with s.post(BASE + path, data=json.dumps(body), headers=hdr) as r:
                    return line(i, r.status, await r.read())
            if CONCURRENT:
                return await asyncio.gather(*[one(i) for i in range(COUNT)])
            return [await one(i) for i in range(COUNT)]
    return asyncio.run(main())


def threaded(fn):
    out = [None] * COUNT
    def work(i):
        try:
            out[i] = fn(i)
        except Exception as e:  # reported in the output, so a comparison fails visibly
            out[i] = "%d error %s" % (i, type(e).__name__)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(COUNT)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


RUN = {"requests": run_requests, "urllib": run_urllib, "httpx": run_httpx,
       "httpx-async": run_httpx_async, "aiohttp": run_aiohttp}
for l in RUN[CLIENT]():
    print(l)
