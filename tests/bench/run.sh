#!/bin/sh
# run.sh BUILD_DIR - `make bench`: what libqshim costs a process, measured against qshim-mock.
# Every figure is taken with and without the shim in the same run, interleaved over several
# rounds (alternating which goes first); the table gives the medians and the median of the
# per-round ratios or differences. The machine is shared and noisy, so the figures are printed
# next to their targets and never asserted; callgrind instruction counts give a noise-free view.
# QS_BENCH_VERBOSE=1 also prints every sample.
# SPDX-License-Identifier: MIT
set -u
B=$(cd "${1:-build}" && pwd)
SHIM=$B/libqshim.so
CLIENT=$B/tests/bench_client
PY=/usr/bin/python3 # Debian's python, which has python3-requests
BULK=$((1024 * 1024 * 1024))
NREQ=2000
NPY=200
BULK_ROUNDS=7
REQ_ROUNDS=7

for f in "$SHIM" "$CLIENT" "$B/qshim-mock"; do
    [ -f "$f" ] || { echo "bench: $f missing; run make bench" >&2; exit 1; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qshim-bench.XXXXXX")
MOCK_PID=
cleanup() {
    [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/mock.sh"
bench_mock "$WORK"

# Two configs. The client always connects as localhost: "ds" makes that a DashScope host (every
# request recognised, parsed and logged; limits far above what the bench sends, so nothing is
# paced), "pt" does not (pass-through: the per-call cost of a foreign connection).
printf 'hosts = [ "localhost" ];\nlimits = ( { model = "qwen-plus"; rpm = 1e9; tpm = 1e11; } );\n' \
    >"$WORK/ds.conf"
printf 'hosts = [ "dashscope.aliyuncs.com" ];\n' >"$WORK/pt.conf"
URL=https://localhost:$PORT
CHAT=/compatible-mode/v1/chat/completions
BODY='{"model":"qwen-plus","messages":[{"role":"user","content":"Say hello in one word."}],"max_tokens":16}'

# shim CONF CMD...: runs CMD with the shim preloaded under config CONF, logging to $WORK/audit.jsonl
shim() {
    conf=$1
    shift
    LD_PRELOAD=$SHIM QSHIM_CONFIG=$WORK/$conf.conf QSHIM_LOG=$WORK/audit.jsonl "$@"
}
# plain CONF CMD...: runs CMD as it is (CONF ignored; same shape as shim)
plain() {
    shift
    "$@"
}
# field KEY: the value of KEY=... in the output on stdin
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
# record NAME VALUE: appends VALUE to the sample file of NAME, "-" for a failed run so that
# line N stays round N
record() { echo "${2:--}" >>"$WORK/s.$1"; }
# median NAME: the median of the numbers in the sample file of NAME
median() {
    grep -E '^[-+]?[0-9.]+$' "$WORK/s.$1" 2>/dev/null | sort -n |
        awk '{v[NR] = $1} END {if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
now_ns() { date +%s%N; }
# each ROUND: "plain shim" on odd rounds, "shim plain" on even ones
order() { if [ $(($1 % 2)) -eq 1 ]; then echo "plain shim"; else echo "shim plain"; fi; }
# recognised: how many requests the shim logged as recognised since the last call
recognised() {
    n=$(grep -c '"event":"request"' "$WORK/audit.jsonl" 2>/dev/null)
    rm -f "$WORK/audit.jsonl"
    echo "${n:-0}"
}
# fail WHAT OUTPUT: notes a failed run, with the last line of its output
fail() { echo "$1: $(printf '%s\n' "$2" | tail -n 1)" >>"$WORK/notes"; }

cat >"$WORK/py.py" <<'EOF'
# verify= on each call: a REQUESTS_CA_BUNDLE in the environment beats Session.verify
import sys, requests
url, ca, body, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with requests.Session() as s:
    for _ in range(n):
        r = s.post(url, data=body, headers={"Content-Type": "application/json"}, verify=ca)
        r.raise_for_status()
        r.content
with open("/proc/self/status") as f:
    print(" ".join("rss vmhwm_kb=" + l.split()[1] for l in f if l.startswith("VmHWM:")))
EOF

echo "qshim bench: mock on port $PORT; $BULK_ROUNDS rounds of $BULK bytes, $REQ_ROUNDS of $NREQ requests"
r=1
while [ $r -le $BULK_ROUNDS ]; do
    for m in $(order $r); do
        o=$($m pt "$CLIENT" -c "$CA" bulk localhost "$PORT" $BULK 2>&1) || fail "bulk ($m)" "$o"
        record "bulk.$m" "$(echo "$o" | field mb_s)"
        record "bulkcpu.$m" "$(echo "$o" | field cpu_s)"
        o=$($m pt curl -sS --cacert "$CA" -o /dev/null -w ' speed=%{speed_download}\n' \
            "$URL/bulk?bytes=$BULK" 2>&1) || fail "curl bulk ($m)" "$o"
        record "curlbulk.$m" "$(echo "$o" | field speed | awk '{printf "%.1f", $1 / 1e6}')"
    done
    printf '.'
    r=$((r + 1))
done
[ "$(recognised)" -eq 0 ] || fail "pass-through config" "a /bulk request was recognised"

r=1
while [ $r -le $REQ_ROUNDS ]; do
    for m in $(order $r); do
        o=$($m ds "$CLIENT" -c "$CA" requests localhost "$PORT" $NREQ 2>&1) || fail "requests ($m)" "$o"
        record "req50.$m" "$(echo "$o" | field p50_us)"
        record "req99.$m" "$(echo "$o" | field p99_us)"
        record "reqcpu.$m" "$(echo "$o" | field cpu_us)"
        record "rss.$m" "$(echo "$o" | field vmhwm_kb)"
        t0=$(now_ns)
        o=$($m ds curl -sS --cacert "$CA" -H 'Content-Type: application/json' -d "$BODY" \
            "$URL$CHAT?i=[1-$NREQ]" 2>&1 >/dev/null) || fail "curl requests ($m)" "$o"
        record "curlreq.$m" "$((($(now_ns) - t0) / NREQ / 1000))"
        if [ $r -le 3 ]; then
            o=$($m ds "$PY" "$WORK/py.py" "$URL$CHAT" "$CA" "$BODY" $NPY 2>&1) || fail "python ($m)" "$o"
            record "pyrss.$m" "$(echo "$o" | field vmhwm_kb)"
        fi
        if [ "$m" = shim ]; then
            n=$(recognised)
            want=$((2 * NREQ + (r <= 3 ? NPY : 0)))
            [ "$n" -eq "$want" ] || fail "round $r" "the shim recognised $n of $want requests"
        fi
    done
    printf '.'
    r=$((r + 1))
done

# Instructions under callgrind: unlike the timings, independent of the load on the machine.
# The difference between a long and a short run cancels start-up, the handshake and the shim's
# set-up. "pt" requests show what the shim costs a connection it passes through.
instr() { # MODE CONF WHAT N: instructions the client executed for N requests or bulk bytes
    $1 "$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$CLIENT" -c "$CA" "$3" \
        localhost "$PORT" "$4" 2>&1 | sed -n 's/.*Collected : //p'
}
# instr_diff NAME MODE CONF WHAT N1 N2 PER: records (instructions(N2) - instructions(N1)) / PER
instr_diff() {
    a=$(instr "$2" "$3" "$4" "$5")
    b=$(instr "$2" "$3" "$4" "$6")
    if [ -n "$a" ] && [ -n "$b" ]; then record "$1" $(((b - a) / $7)); else fail "callgrind $1" "no count"; fi
    printf '.'
}
if command -v valgrind >/dev/null; then
    MIB=$((1024 * 1024))
    instr_diff irbulk.plain plain pt bulk $((4 * MIB)) $((20 * MIB)) 16
    instr_diff irbulk.shim shim pt bulk $((4 * MIB)) $((20 * MIB)) 16
    instr_diff ir.ds.plain plain ds requests 100 1100 1000
    instr_diff ir.ds.shim shim ds requests 100 1100 1000
    instr_diff ir.pt.shim shim pt requests 100 1100 1000
    cp "$WORK/s.ir.ds.plain" "$WORK/s.ir.pt.plain" 2>/dev/null
    recognised >/dev/null
fi
echo

# row METRIC SAMPLE KIND TARGET: one table line from the medians of SAMPLE.plain and SAMPLE.shim,
# and the median over rounds of each round's with/without ("ratio") or with-without ("diff"):
# pairing the samples of a round cancels the slow drifts of a shared machine.
row() {
    a=$(median "$2.plain")
    b=$(median "$2.shim")
    paste "$WORK/s.$2.plain" "$WORK/s.$2.shim" 2>/dev/null |
        awk -v k="$3" '$1 > 0 && $2 != "-" {print (k == "ratio") ? $2 / $1 : $2 - $1}' >"$WORK/s.$2.pair"
    c=$(median "$2.pair" | awk -v k="$3" '$1 != "" {
        if (k == "ratio") printf "%.3f", $1
        else if ($1 == int($1)) printf "%+d", $1
        else printf "%+.2f", $1 }')
    printf '%-44s %10s %10s %10s  %s\n' "$1" "${a:--}" "${b:--}" "${c:--}" "$4"
}
printf '%-44s %10s %10s %10s  %s\n' "metric (medians)" without with "ratio/diff" target
row "(a) bulk 1 GiB pass-through, bench MB/s" bulk ratio ">= 0.99"
row "(a) bulk 1 GiB pass-through, curl MB/s" curlbulk ratio ">= 0.99"
row "(a) bulk 1 GiB, bench client CPU s" bulkcpu ratio "-"
row "(a) bulk instructions/MiB (callgrind)" irbulk ratio "<= 1.01"
row "(a) pass-through instructions/request" ir.pt diff "-"
row "(b) request p50 us, bench (2000/round)" req50 diff "<= +50"
row "(b) request p99 us, bench" req99 diff "-"
row "(b) request CPU us (user+sys), bench" reqcpu diff "-"
row "(b) instructions/request, bench (callgrind)" ir.ds diff "-"
row "(b) request us, curl total/N (2000 URLs)" curlreq diff "<= +50"
row "(c) VmHWM KiB, bench after 2000 requests" rss diff "<= +1024"
row "(c) VmHWM KiB, python3 requests x200" pyrss diff "<= +1024"
if [ -n "${QS_BENCH_VERBOSE:-}" ]; then
    echo "samples, in round order:"
    for f in "$WORK"/s.*; do
        case $f in *.pair) continue ;; esac
        printf '  %-16s %s\n' "${f#"$WORK"/s.}" "$(tr '\n' ' ' <"$f")"
    done
fi
if [ -f "$WORK/notes" ]; then
    echo "problems during the run (figures above may be incomplete):"
    sed 's/^/  /' "$WORK/notes"
fi
exit 0
