#!/bin/sh
# demo.sh BUILD_DIR - `make demo`: qshim-mock with a tight limit, the same burst of concurrent
# requests without and with the shim side by side, then what qshim-log makes of the log:
# the summary, a terminal plot, and an SVG chart left in BUILD_DIR/demo.svg.
set -eu
B=$(cd "${1:-build}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/qshim-demo.XXXXXX")
MOCK=""
export QSHIM_SHM=/qshim-demo-$$
trap '[ -n "$MOCK" ] && kill "$MOCK" 2>/dev/null; rm -rf "$W"; rm -f "/dev/shm$QSHIM_SHM"' EXIT INT TERM

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" -days 1 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >/dev/null 2>&1
RPM=120
N=60
"$B/qshim-mock" --cert "$W/cert.pem" --key "$W/key.pem" --port 0 --limit "qwen-plus=$RPM/1000000" \
    --latency-ms 50 >"$W/mock.out" 2>&1 &
MOCK=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do grep -q PORT= "$W/mock.out" && break; sleep 0.1; done
PORT=$(sed -n 's/^PORT=//p' "$W/mock.out")
# the same limit as the mock's: the shim must keep the burst under it
cat >"$W/qshim.conf" <<EOF
hosts = [ "localhost" ];
limits = ( { model = "qwen-plus"; rpm = $RPM; tpm = 1000000; } );
log = { path = "$W/audit.jsonl"; };
EOF

echo "qshim demo: qshim-mock limits qwen-plus to $RPM requests/minute ($((RPM / 60))/s)."
echo "8 worker threads fire $N requests at it with plain python-requests, no retry logic."
echo
echo "without qshim ..."
$PY "$ROOT/tools/demo_burst.py" "https://localhost:$PORT" "$W/cert.pem" 8 $N qwen-plus >"$W/without"
curl -s --http1.1 --cacert "$W/cert.pem" -X POST "https://localhost:$PORT/mock/reset" >/dev/null
echo "with qshim (qshim run -c qshim.conf -- python3 demo_burst.py ...) ..."
"$B/qshim" run -c "$W/qshim.conf" -- \
    $PY "$ROOT/tools/demo_burst.py" "https://localhost:$PORT" "$W/cert.pem" 8 $N qwen-plus >"$W/with"
echo
$PY - "$W/without" "$W/with" "$RPM" <<'EOF'
import json, sys
a, b, rpm = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
def goodput(r):
    return "%.2f" % (r["ok"] * 60 / r["wall_s"] / rpm)
rows = [("requests made", "requests"), ("answered 200", "ok"), ("429s the program saw", "throttled"),
        ("wall time, s", "wall_s")]
print("%-34s %14s %14s" % ("", "without qshim", "with qshim"))
for name, k in rows:
    print("%-34s %14s %14s" % (name, a[k], b[k]))
print("%-34s %14s %14s" % ("requests lost", a["requests"] - a["ok"], b["requests"] - b["ok"]))
print("%-34s %14s %14s" % ("goodput (200s per minute / limit)", "-", goodput(b)))
print()
print("Without qshim the program loses every request the server throttles (or must carry its")
print("own retry code). With it, every request succeeds: the shim spaces them at the limit")
print("(95% of it by default: headroom = 0.95).")
EOF
echo
echo "qshim-log summary:"
"$B/qshim-log" -c "$W/qshim.conf" -f "$W/audit.jsonl" summary
echo
echo "qshim-log plot:"
"$B/qshim-log" -c "$W/qshim.conf" -f "$W/audit.jsonl" plot --height 6
"$B/qshim-log" -c "$W/qshim.conf" -f "$W/audit.jsonl" plot --svg "$B/demo.svg"
echo
echo "SVG chart written to $B/demo.svg"
