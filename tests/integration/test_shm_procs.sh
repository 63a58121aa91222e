#!/bin/sh
# test_shm_procs.sh - one pacing budget shared by processes through shared memory, at a
# compressed scale (800 requests and 80,000 tokens per second) so that it runs in seconds:
# five shm_hammer processes reserve slots on one key and sleep until them for real, one of
# them is SIGKILLed from outside mid-run and another kills itself while holding the key's
# lock. The merged schedule must stay within every 1 s window, run at the shared rate (not
# five times it), and the survivors must finish without falling back to private tables.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qshim-test.XXXXXX")
NAME=/qshim-test-procs-$$
HAMMER=$QS_BUILD/tests/shm_hammer
trap 'rm -rf "$WORK"; rm -f "/dev/shm${NAME}"' EXIT
trap 'exit 130' INT TERM
RPM=48000
TPM=4800000
KEY=cn-beijing/qwen-plus
[ -x "$HAMMER" ] || { echo "$HAMMER missing: make test builds it"; echo "$T_NAME: 0 passed, 1 failed"; exit 1; }

start=$(date +%s%N)
pids=""
for i in 1 2 3 4; do
    "$HAMMER" "$NAME" "$KEY" $RPM $TPM 500 "$WORK/slots.$i" 2>"$WORK/err.$i" &
    pids="$pids $!"
done
"$HAMMER" "$NAME" "$KEY" $RPM $TPM 500 "$WORK/slots.5" 100 2>"$WORK/err.5" &
p5=$!
sleep 1
p4=$(echo $pids | cut -d' ' -f4)
kill -KILL "$p4"
n=1
for p in $pids; do
    wait "$p"
    echo $? >"$WORK/rc.$n"
    n=$((n + 1))
done
wait "$p5"
echo $? >"$WORK/rc.5"
secs=$((($(date +%s%N) - start) / 1000000000))

lines() { wc -l <"$WORK/slots.$1" | tr -d ' '; }
check "3 untouched processes finished their 500 slots" \
    test "$(cat "$WORK/rc.1" "$WORK/rc.2" "$WORK/rc.3" | tr -d '\n')/$(lines 1)/$(lines 2)/$(lines 3)" = "000/500/500/500"
check "the process SIGKILLed from outside died mid-run ($(lines 4) slots)" \
    sh -c "test $(cat "$WORK/rc.4") = 137 && test $(lines 4) -lt 500"
check "the process killed holding the key's lock died there (100 slots)" \
    test "$(cat "$WORK/rc.5")/$(lines 5)" = "137/100"
check "nobody fell back to a private table (the dead holder's lock was recovered)" \
    sh -c "! cat '$WORK'/err.* | grep ."
check "run took less than 15 s ($secs s)" test "$secs" -lt 15
check "the shared object is the user's, mode 0600" \
    test "$(stat -c '%a %u' "/dev/shm$NAME")" = "600 $(id -u)"

cat "$WORK"/slots.* >"$WORK/all"
check "merged schedule: every 1 s and 60 s window within 800 requests / 80,000 tokens, at the shared rate" \
    $PY - "$WORK/all" $RPM $TPM <<'PYEOF'
import sys
ev = sorted(tuple(map(int, l.split())) for l in open(sys.argv[1]))
rpm, tpm = int(sys.argv[2]), int(sys.argv[3])
bad = []
for span, rmax, tmax in ((10**9, rpm // 60, tpm // 60), (60 * 10**9, rpm, tpm)):
    i = s = 0
    for k, (t, c) in enumerate(ev):
        s += c
        while ev[i][0] + span <= t:   # windows (t - span, t], as DashScope and qshim-mock count
            s -= ev[i][1]
            i += 1
        if k - i + 1 > rmax or (k > i and s > tmax):
            bad.append((span, t, k - i + 1, s))
rate = (len(ev) - 1) / ((ev[-1][0] - ev[0][0]) / 1e9)
print("%d slots, %.0f requests/s over the run, %d windows over" % (len(ev), rate, len(bad)), bad[:3])
sys.exit(0 if not bad and 0.9 * rpm / 60 <= rate <= rpm / 60 else 1)
PYEOF
qs_done
