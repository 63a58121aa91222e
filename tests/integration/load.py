"""load.py - a batch job as a user writes it: W workers send N chat requests in all to
one model with a real HTTP client, no retry logic of its own.

Usage: load.py CLIENT BASE_URL WORKERS TOTAL MODEL [PROMPT_CHARS [MAX_TOKENS]]
  CLIENT  requests | httpx (threads, one session each) | httpx-async | aiohttp (tasks)
          requests-retry: requests with the retry a careful program adds itself (urllib3
          Retry on 429/500/503, honouring Retry-After, exponential backoff), for comparison
Prints one JSON object: requests, ok, throttled (429s the program saw), other, bad (answers
that are not a complete chat completion), wall_s, and per_s: the program's requests per
second of wall time.
"""
import asyncio
import json
import os
import sys
import threading
import time

CLIENT, BASE = sys.argv[1], sys.argv[2].rstrip("/")
WORKERS, TOTAL, MODEL = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
PROMPT = int(sys.argv[6]) if len(sys.argv) > 6 else 0
MAX_TOKENS = int(sys.argv[7]) if len(sys.argv) > 7 else 0
CA = os.environ["SSL_CERT_FILE"]
URL = BASE + "/compatible-mode/v1/chat/completions"
HDR = {"Authorization": "Bearer sk-test-load", "Content-Type": "application/json"}
counts = {"requests": 0, "ok": 0, "throttled": 0, "other": 0, "bad": 0}
lock = threading.Lock()


def body(i):
    text = "question %d " % i + "x" * PROMPT
    b = {"messages": [{"role": "user", "content": text}], "model": MODEL}
    if MAX_TOKENS:
        b["max_tokens"] = MAX_TOKENS
    return b


def tally(status, data):
    with lock:
        counts["requests"] += 1
        key = "ok" if status == 200 else "throttled" if status == 429 else "other"
        counts[key] += 1
        if status == 200:
            try:
                ans = json.loads(data)
                ans["choices"][0]["message"]["content"]
                ans["usage"]["total_tokens"]
            except (ValueError, KeyError, IndexError, TypeError):
                counts["bad"] += 1


def threads(make_session, post):
    todo = list(range(TOTAL))
    def worker():
        s = make_session()
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop(0)
            tally(*post(s, i))
    ts = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def run_requests():
    import requests
    threads(requests.Session,
            lambda s, i: (lambda r: (r.status_code, r.content))(s.post(URL, json=body(i), headers=HDR, verify=CA)))


def run_requests_retry():
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry
    def session():
        s = requests.Session()
        retry = Retry(total=10, backoff_factor=0.5, status_forcelist=[429, 500, 503],
                      allowed_methods=None, respect_retry_after_header=True, raise_on_status=False)
        s.mount("https://", HTTPAdapter(max_retries=retry))
        return s
    threads(session,
            lambda s, i: (lambda r: (r.status_code, r.content))(s.post(URL, json=body(i), headers=HDR, verify=CA)))


def run_httpx():
    import httpx
    threads(lambda: httpx.Client(verify=CA, timeout=300),
            lambda s, i: (lambda r: (r.status_code, r.content))(s.post(URL, json=body(i), headers=HDR)))


async def tasks(post):
    todo = list(range(TOTAL))
    async def worker():
        while todo:
            i = todo.pop(0)
            tally(*await post(i))
    await asyncio.gather(*[worker() for _ in range(WORKERS)])


def run_httpx_async():
    import httpx
    async def main():
        async with httpx.AsyncClient(verify=CA, timeout=300) as c:
            async def post(i):
                r = await c.post(URL, json=body(i), headers=HDR)
                return r.status_code, r.content
            await tasks(post)
    asyncio.run(main())


def run_aiohttp():
    import aiohttp
    import ssl
    async def main():
        conn = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=CA))
        async with aiohttp.ClientSession(connector=conn) as s:
            async def post(i):
                async with s.post(URL, json=body(i), headers=HDR) as r:
                    return r.status, await r.read()
            await tasks(post)
    asyncio.run(main())


start = time.monotonic()
{"requests": run_requests, "requests-retry": run_requests_retry, "httpx": run_httpx, "httpx-async": run_httpx_async, "aiohttp": run_aiohttp}[CLIENT]()
counts["wall_s"] = round(time.monotonic() - start, 3)
counts["per_s"] = round(counts["requests"] / counts["wall_s"], 3)
print(json.dumps(counts))
