"""demo_burst.py - the burst `make demo` fires: W worker threads, N requests in all,
each a plain `requests` call as an application would make it (no retry logic).

Usage: demo_burst.py BASE_URL CA_FILE WORKERS TOTAL MODEL
Prints one JSON object: requests, ok, throttled (429s the program saw), wall_s.
"""
import json
import sys
import threading
import time

import requests

base, ca, workers, total, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
url = base.rstrip("/") + "/compatible-mode/v1/chat/completions"
lock = threading.Lock()
counts = {"requests": 0, "ok": 0, "throttled": 0, "other": 0}
todo = list(range(total))


def worker():
    s = requests.Session()
    while True:
        with lock:
            if not todo:
                return
            i = todo.pop()
        body = {"messages": [{"role": "user", "content": "question %d" % i}], "model": model}
        r = s.post(url, json=body, headers={"Authorization": "Bearer sk-test-demo"}, verify=ca)
        with lock:
            counts["requests"] += 1
            key = "ok" if r.status_code == 200 else "throttled" if r.status_code == 429 else "other"
            counts[key] += 1


start = time.monotonic()
threads = [threading.Thread(target=worker) for _ in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
counts["wall_s"] = round(time.monotonic() - start, 2)
print(json.dumps(counts))
