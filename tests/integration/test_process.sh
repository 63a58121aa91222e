#!/bin/sh
# test_process.sh - processes as programs really run: threads sharing a client, fork
# (the child re-initialises), exec (the child decides for itself), many processes
# appending to one audit log.
. "$(dirname "$0")/lib.sh"
qs_setup
start_mock
URL=https://localhost:$MOCK_PORT/compatible-mode/v1/chat/completions
REQ='{"messages":[{"role":"user","content":"hi"}],"model":"qwen-plus"}'

cat >"$WORK/fork.py" <<PYEOF
import os, sys, requests
def call():
    r = requests.post("$URL", data='$REQ', verify="$CA")
    assert r.status_code == 200 and b"chat.completion" in r.content, r.content
s = requests.Session()
s.post("$URL", data='$REQ', verify="$CA")          # the parent has a live connection at fork
pids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        call(); call(); call()                          # new connections in the child
        os._exit(0)
    pids.append(pid)
ok = all(os.waitpid(p, 0)[1] == 0 for p in pids)
call()
print("forks ok" if ok else "a child failed")
PYEOF
: >"$QSHIM_LOG"
with_shim $PY "$WORK/fork.py" >"$WORK/out" 2>&1
check "fork: parent and children all got their answers" grep -q "forks ok" "$WORK/out"
check "fork: 11 requests logged by 4 distinct pids" \
    test "$(log_json "(len(recs), len(set(r['pid'] for r in recs)), all(r['status']==200 for r in recs))")" = "(11, 4, True)"

cat >"$WORK/exec.py" <<PYEOF
import os, requests
requests.post("$URL", data='$REQ', verify="$CA")
os.execvp("curl", ["curl", "-sS", "--cacert", "$CA", "$URL", "-d", '$REQ'])
PYEOF
: >"$QSHIM_LOG"
with_shim $PY "$WORK/exec.py" >"$WORK/out" 2>&1
check "exec: python then the curl it became are both logged, under their own names" \
    test "$(log_json "sorted(r['prog'] for r in recs)")" = "['curl', 'python3']"

# 8 processes x 10 requests appending to one log: every line whole
: >"$QSHIM_LOG"
pids=""
for i in 1 2 3 4 5 6 7 8; do
    with_shim $PY "$QS_ROOT/tests/integration/clients.py" requests "https://localhost:$MOCK_PORT" keepalive 10 >/dev/null 2>&1 &
    pids="$pids $!"
done
for p in $pids; do wait "$p"; done
check "8 processes share one log: 80 whole JSON lines" test "$(log_json "len(recs)")" = 80

# A libssl look-alike that exports only the classic calls (no SSL_write_ex, SSL_is_server,
# ...): the shim cannot work and must only pass the program's calls through, not call the
# functions it could not find.
mkdir -p "$WORK/stub"
cat >"$WORK/stub/stub.c" <<'CEOF'
typedef struct ssl_st SSL;
int SSL_connect(SSL *s) { (void)s; return 1; }
int SSL_write(SSL *s, const void *b, int n) { (void)s; (void)b; return n; }
int SSL_read(SSL *s, void *b, int n) { (void)s; (void)b; (void)n; return 0; }
void SSL_free(SSL *s) { (void)s; }
const char *SSL_get_servername(const SSL *s, int t) { (void)s; (void)t; return "dashscope.aliyuncs.com"; }
CEOF
cat >"$WORK/stub/prog.c" <<'CEOF'
#include <stdio.h>
#include <string.h>
typedef struct ssl_st SSL;
int SSL_connect(SSL *s);
int SSL_write(SSL *s, const void *b, int n);
void SSL_free(SSL *s);
int main(void)
{
    char obj[64];
    const char *req = "POST /compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: dashscope.aliyuncs.com\r\n"
                      "Content-Length: 2\r\n\r\n{}";
    SSL_connect((SSL *)obj);
    printf("SSL_write -> %d of %d\n", SSL_write((SSL *)obj, req, (int)strlen(req)), (int)strlen(req));
    SSL_free((SSL *)obj);
    return 0;
}
CEOF
if cc -shared -fPIC -o "$WORK/stub/libstubssl.so" "$WORK/stub/stub.c" &&
    cc -o "$WORK/stub/prog" "$WORK/stub/prog.c" -L"$WORK/stub" -lstubssl -Wl,-rpath,"$WORK/stub"; then
    "$WORK/stub/prog" >"$WORK/stub/plain" 2>&1
    with_shim "$WORK/stub/prog" >"$WORK/stub/shim" 2>"$WORK/stub/err"
    check "an OpenSSL look-alike missing functions: the program runs as without the shim" \
        cmp -s "$WORK/stub/plain" "$WORK/stub/shim"
    check "... and the shim says once that it stays inactive" \
        test "$(grep -c 'stays inactive' "$WORK/stub/err")" = 1
else
    fail "cannot build the libssl look-alike (cc)"
fi

# An OpenSSL 1.1-style libssl (soname libssl.so.1.1) loaded RTLD_LOCAL by a module, as
# Python's _ssl loads its libssl: the shim must find it among the loaded objects and pass
# the calls through (before, it looked only for libssl.so.3 and answered ENOSYS).
cat >"$WORK/stub/ssl11.c" <<'CEOF'
typedef struct ssl_st SSL;
#define F(ret, name, args, body) ret name args { body }
F(int, SSL_write, (SSL *s, const void *b, int n), (void)s; (void)b; return n;)
F(int, SSL_write_ex, (SSL *s, const void *b, unsigned long n, unsigned long *w), (void)s; (void)b; *w = n; return 1;)
F(int, SSL_read, (SSL *s, void *b, int n), (void)s; (void)b; (void)n; return 0;)
F(int, SSL_read_ex, (SSL *s, void *b, unsigned long n, unsigned long *r), (void)s; (void)b; (void)n; *r = 0; return 0;)
F(void, SSL_free, (SSL *s), (void)s;)
F(int, SSL_connect, (SSL *s), (void)s; return 1;)
F(int, SSL_do_handshake, (SSL *s), (void)s; return 1;)
F(int, SSL_pending, (const SSL *s), (void)s; return 0;)
F(int, SSL_has_pending, (const SSL *s), (void)s; return 0;)
F(int, SSL_get_error, (const SSL *s, int r), (void)s; (void)r; return 6;)
F(const char *, SSL_get_servername, (const SSL *s, int t), (void)s; (void)t; return 0;)
F(int, SSL_set_alpn_protos, (SSL *s, const unsigned char *p, unsigned int n), (void)s; (void)p; (void)n; return 0;)
F(void, SSL_get0_alpn_selected, (const SSL *s, const unsigned char **p, unsigned int *n), (void)s; *p = 0; *n = 0;)
F(int, SSL_is_init_finished, (const SSL *s), (void)s; return 1;)
F(int, SSL_is_server, (const SSL *s), (void)s; return 0;)
F(int, SSL_get_fd, (const SSL *s), (void)s; return -1;)
CEOF
cat >"$WORK/stub/mod.c" <<'CEOF'
#include <stdio.h>
#include <string.h>
typedef struct ssl_st SSL;
int SSL_connect(SSL *s);
int SSL_write(SSL *s, const void *b, int n);
int SSL_read(SSL *s, void *b, int n);
int SSL_get_error(const SSL *s, int r);
void SSL_free(SSL *s);
void run(void)
{
    char obj[64], buf[16];
    const char *req = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    int c = SSL_connect((SSL *)obj), w = SSL_write((SSL *)obj, req, (int)strlen(req));
    int r = SSL_read((SSL *)obj, buf, sizeof buf);
    printf("connect %d write %d read %d error %d\n", c, w, r, SSL_get_error((SSL *)obj, r));
    SSL_free((SSL *)obj);
}
CEOF
cat >"$WORK/stub/load.c" <<'CEOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    void *m = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    void (*run)(void) = m ? (void (*)(void))dlsym(m, "run") : NULL;
    if (run == NULL) {
        printf("%s\n", dlerror());
        return 1;
    }
    run();
    return argc > 2;
}
CEOF
if cc -shared -fPIC -Wl,-soname,libssl.so.1.1 -o "$WORK/stub/libssl.so.1.1" "$WORK/stub/ssl11.c" &&
    cc -shared -fPIC -o "$WORK/stub/mod.so" "$WORK/stub/mod.c" "$WORK/stub/libssl.so.1.1" -Wl,-rpath,"$WORK/stub" &&
    cc -o "$WORK/stub/load" "$WORK/stub/load.c" -ldl; then
    "$WORK/stub/load" "$WORK/stub/mod.so" >"$WORK/stub/plain11" 2>&1
    with_shim "$WORK/stub/load" "$WORK/stub/mod.so" >"$WORK/stub/shim11" 2>"$WORK/stub/err11"
    check "a libssl.so.1.1 loaded RTLD_LOCAL: calls pass through as without the shim ($(cat "$WORK/stub/shim11"))" \
        cmp -s "$WORK/stub/plain11" "$WORK/stub/shim11"
else
    fail "cannot build the libssl 1.1 look-alike (cc)"
fi
qs_done
