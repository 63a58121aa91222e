# mock.sh - sourced by the bench scripts: a certificate and a running qshim-mock.
# bench_mock WORK ARGS...: makes WORK/cert.pem (CN localhost and dashscope.aliyuncs.com),
# starts $B/qshim-mock with ARGS on a free port, sets CA, PORT and MOCK_PID; exits on failure.
bench_mock() {
    bm_w=$1
    shift
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$bm_w/key.pem" -out "$bm_w/cert.pem" -days 2 \
        -subj "/CN=dashscope.aliyuncs.com" \
        -addext "subjectAltName=DNS:dashscope.aliyuncs.com,DNS:localhost,IP:127.0.0.1" >/dev/null 2>&1 ||
        { echo "bench: cannot make a certificate" >&2; exit 1; }
    CA=$bm_w/cert.pem
    "$B/qshim-mock" --cert "$CA" --key "$bm_w/key.pem" --port 0 "$@" >"$bm_w/mock.out" 2>"$bm_w/mock.err" &
    MOCK_PID=$!
    PORT=
    bm_i=0
    while [ -z "$PORT" ] && [ $bm_i -lt 100 ]; do
        sleep 0.05
        PORT=$(sed -n 's/^PORT=//p' "$bm_w/mock.out")
        bm_i=$((bm_i + 1))
    done
    [ -n "$PORT" ] || { echo "bench: qshim-mock did not start:" >&2; cat "$bm_w/mock.err" >&2; exit 1; }
}
