"""rawserver.py - a TLS server that answers DashScope paths with scripted broken bytes.

Usage: rawserver.py CERT KEY   (prints PORT=<n>, serves until killed)
The case is the query parameter ?case=...:
  truncated  Content-Length 1000, 10 bytes, close
  garbage    a status line that is not HTTP, then close
  reset      chunked answer cut mid-chunk by a TCP reset
  untilclose no length: body until the connection closes (valid HTTP/1.1)
  bigheader  a 100 KB header line, then a valid answer
  idle429    a keep-alive 429 (Retry-After: 1), then the idle connection closed after 0.3 s
"""
import socket
import ssl
import struct
import sys
import threading
import time

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print("PORT=%d" % srv.getsockname()[1], flush=True)

BODY = b'{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}'


def read_request(c):
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(65536)
        if not d:
            return None
        data += d
    head, rest = data.split(b"\r\n\r\n", 1)
    n = 0
    for l in head.split(b"\r\n")[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(rest) < n:
        rest += c.recv(65536)
    return head.split(b" ")[1].decode()


def serve(raw):
    try:
        c = ctx.wrap_socket(raw, server_side=True)
        path = read_request(c)
        case = path.split("case=")[-1] if path and "case=" in path else ""
        if case == "truncated":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + BODY[:10])
        elif case == "garbage":
            c.sendall(b"HTXP/9 what is this\r\n\r\nnonsense")
        elif case == "reset":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"40\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"par")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
            return
        elif case == "untilclose":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + BODY)
        elif case == "idle429":
            err = b'{"error":{"message":"Requests rate limit exceeded","type":"limit_requests","code":"limit_requests"}}'
            c.sendall(b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(err) + err)
            time.sleep(0.3)
        elif case == "bigheader":
            c.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 100000 + b"\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
        c.close()
    except (OSError, ssl.SSLError):
        pass


while True:
    s, _ = srv.accept()
    threading.Thread(target=serve, args=(s,), daemon=True).start()
