#!/bin/sh
# test_log.sh - qshim-log on hand-written audit logs (tests/integration/fixtures/):
# summary counts worked out by hand from the fixture, filter by each option, tail lines and
# tail -F on a file that grows, is rotated and truncated, the terminal plot against a
# reviewed snapshot, the SVG parsed and rendered, bad lines warned about once each, the
# default log path, stdin, rotated files, one run of each command under valgrind; and the
# summary of a log that four processes wrote through the shim against the mock's own counts.
. "$(dirname "$0")/lib.sh"
qs_setup
L=$QS_BUILD/qshim-log
FX=$QS_ROOT/tests/integration/fixtures
LOG=$FX/mixed.jsonl
CONF=$FX/log_limits.conf

# mixed.jsonl: 22 lines from three processes, interleaved and not in ts order
# (python3[101] and python3[102] and curl[200]), times 2026-11-23 18:04:00.000 to 18:05:15.000:
#   line  ts(+s)  who  event        model       region      status  wait  tokens (in+out|est)
#    1     0.0    101  config       -                                      (no model: counted apart)
#    2     0.1    101  request      qwen-plus   cn-beijing  200     0     40+10
#    3     1.0    102  request      qwen-turbo  intl        200     0     20+20
#    4     0.9    101  request      qwen-plus   cn-beijing  200     300   40+20
#    5     2.0    200  request      qwen-plus   cn-beijing  200     500   30+30
#    6     1.2    102  request      qwen-turbo  intl        200     0     20+20
#    7     1.5    101  throttled    qwen-plus   cn-beijing  429           (hidden)
#    8     1.8    102  request      qwen-turbo  intl        200     0     20+20
#    9     2.7    101  request      qwen-plus   cn-beijing  200     1200  40+30
#   10     5.0    102  throttled    qwen-turbo  intl        429           (hidden)
#   11     9.0    200  throttled    qwen-plus   cn-beijing  429           (hidden)
#   12     9.0    200  fallback     qwen-plus   cn-beijing  429           qwen-plus -> qwen-turbo
#   13     8.0    102  request      qwen-turbo  intl        429     5000  ~30  (passed on)
#   14    12.0    200  request      qwen-turbo  cn-beijing  200     1000  25+25 (after the fallback)
#   15    malformed (a missing comma)
#   16    30.0    101  request      qwen-plus   cn-beijing  200     100   100+50
#   17    50.0    102  passthrough  -
#   18    60.0    200  error        -
#   19    70.0    200  request      qwen-plus   cn-beijing  503     9000  ~40  (ModelServingError: passed on)
#   20    71.0    200  request      qwen-plus   cn-beijing  400     0     ~35  (not a throttle)
#   21    75.0    101  request      qwen-plus   cn-beijing  200     0     10+5
#   22    truncated, no end of line
# So 20 records, 2 lines skipped. qwen-turbo was used in two regions: two budgets, two rows.
# The limits: qwen-plus 60 rpm / 6000 tpm from log_limits.conf; qwen-turbo 240 / 100000 from
# the intl table and 1200 / 5000000 from the cn-beijing table (config/limits/*.conf).

# ==== summary

"$L" -c "$CONF" -f "$LOG" summary --json >"$WORK/sum.json" 2>"$WORK/sum.err"
rc=$?
check "summary --json: exit 0" test $rc = 0
check "summary --json: one JSON document" sh -c "$PY -c 'import json,sys; json.load(sys.stdin)' <'$WORK/sum.json'"

# sj EXPR: EXPR over the summary document d; m(NAME, REGION, KEY...) and p(NAME, KEY...) give
# a model's or a program's values joined by spaces ("wait_ms.p50" reaches inside).
sj() {
    $PY - "$WORK/sum.json" "$1" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
def get(g, k):
    for part in k.split("."):
        g = g[part]
    return g
def pick(gs, ok, keys):
    hit = [g for g in gs if ok(g)]
    return "missing" if len(hit) != 1 else " ".join(str(get(hit[0], k)) for k in keys)
def m(name, region, *keys):
    return pick(d["models"], lambda g: g["name"] == name and g["region"] == region, keys)
def p(name, *keys):
    return pick(d["programs"], lambda g: g["name"] == name, keys)
print(eval(sys.argv[2]))
PYEOF
}
# same "description" EXPR WANT: passes when sj EXPR prints WANT
same() {
    got=$(sj "$2" 2>&1)
    if [ "$got" = "$3" ]; then ok "$1"; else fail "$1" "expected: $3
got:      $got"; fi
}
COUNTS="'requests', 'ok', 'throttles_hidden', 'throttles_passed', 'fallbacks'"
WAITS="'wait_ms.p50', 'wait_ms.p95', 'wait_ms.max'"
PEAKS="'input_tokens', 'output_tokens', 'peak_rpm', 'peak_rpm_at', 'peak_tpm', 'peak_tpm_at'"

same "summary: 20 records, 2 lines skipped, first and last ts" \
    "' '.join(str(d[k]) for k in ('records', 'skipped_lines', 'first_ts', 'last_ts'))" \
    "20 2 2026-11-23T18:04:00.000Z 2026-11-23T18:05:15.000Z"
same "summary: three model rows (qwen-turbo in two regions), two programs" \
    "' '.join(g['name'] + '@' + g['region'] for g in d['models']) + ' ' + ' '.join(g['name'] for g in d['programs'])" \
    "qwen-plus@cn-beijing qwen-turbo@intl qwen-turbo@cn-beijing python3 curl"
# qwen-plus: requests on lines 2 4 5 9 16 19 20 21 (8); ok all but 19 and 20 (6); hidden 7 11;
# passed on 19 (503 ModelServingError; the 400 is not a throttle); fallback 12.
same "summary qwen-plus: requests 8, ok 6, hidden 2, passed on 1, fallbacks 1" \
    "m('qwen-plus', 'cn-beijing', $COUNTS)" "8 6 2 1 1"
# waits sorted 0 0 0 100 300 500 1200 9000: p50 = 4th (100), p95 = ceil(7.6) = 8th (9000)
same "summary qwen-plus: wait p50 100, p95 9000, max 9000" "m('qwen-plus', 'cn-beijing', $WAITS)" "100 9000 9000"
# tokens in 40+40+30+40+100+10, out 10+20+30+30+50+5; the busiest minute starts at 0.1 s:
# 0.1 0.9 2.0 2.7 30.0 (5 requests; 70.0 is past 60.1), tokens 50+60+60+70+150 = 390
same "summary qwen-plus: tokens 260/145, peak 5 rpm and 390 tpm from 18:04:00.100" \
    "m('qwen-plus', 'cn-beijing', $PEAKS)" \
    "260 145 5 2026-11-23T18:04:00.100Z 390 2026-11-23T18:04:00.100Z"
same "summary qwen-plus: limit 60 rpm / 6000 tpm from the config" \
    "m('qwen-plus', 'cn-beijing', 'limit.rpm', 'limit.tpm') + ' ' + m('qwen-plus', 'cn-beijing', 'limit.source').split('/')[-1]" \
    "60 6000 log_limits.conf:3"
# qwen-turbo in intl: requests 3 6 8 13; 13 is a 429 passed on; hidden 10. Waits 0 0 0 5000:
# p50 = 2nd (0), p95 = 4th. Tokens 40+40+40+30 (13 has only its estimate) in one minute.
same "summary qwen-turbo intl: requests 4, ok 3, hidden 1, passed on 1, fallbacks 0" \
    "m('qwen-turbo', 'intl', $COUNTS)" "4 3 1 1 0"
same "summary qwen-turbo intl: wait 0/5000/5000" "m('qwen-turbo', 'intl', $WAITS)" "0 5000 5000"
same "summary qwen-turbo intl: tokens 60/60, peak 4 rpm, 150 tpm from 18:04:01" \
    "m('qwen-turbo', 'intl', $PEAKS)" "60 60 4 2026-11-23T18:04:01.000Z 150 2026-11-23T18:04:01.000Z"
expected=$("$QS_BUILD/qshim" limits --region intl qwen-turbo | awk '$1 == "qwen-turbo" { print $2, $3 }')
same "summary qwen-turbo intl: the intl table's limit, as qshim limits prints it ($expected)" \
    "m('qwen-turbo', 'intl', 'limit.rpm', 'limit.tpm', 'limit.source')" "$expected table intl"
same "summary qwen-turbo cn-beijing: the request after the fallback, its own budget" \
    "m('qwen-turbo', 'cn-beijing', $COUNTS, $WAITS, 'peak_rpm', 'limit.rpm', 'limit.source')" \
    "1 1 0 0 0 1000 1000 1000 1 1200 table cn-beijing"
# python3 (pids 101 and 102 together): requests 2 3 4 6 8 9 13 16 21; the busiest minute from
# 0.1 s holds all but 21 (8), tokens 50+60+40+40+40+70+30+150 = 480. Waits sorted
# 0 0 0 0 0 100 300 1200 5000: p50 = 5th, p95 = ceil(8.55) = 9th.
same "summary python3: 9 requests, 8 ok, 2 hidden, 1 passed on, no fallback" "p('python3', $COUNTS)" "9 8 2 1 0"
same "summary python3: wait 0/5000/5000, peak 8 rpm, 480 tpm" \
    "p('python3', $WAITS, 'peak_rpm', 'peak_tpm')" "0 5000 5000 8 480"
# curl: requests 5 14 19 20; from 12.0 s: 14 19 20 (3 requests, 50+40+35 = 125 tokens)
same "summary curl: 4 requests, 2 ok, 1 hidden, 1 passed on, 1 fallback" "p('curl', $COUNTS)" "4 2 1 1 1"
same "summary curl: wait 500/9000/9000, peak 3 rpm and 125 tpm from 18:04:12" \
    "p('curl', $WAITS, 'peak_rpm', 'peak_rpm_at', 'peak_tpm')" "500 9000 9000 3 2026-11-23T18:04:12.000Z 125"
same "summary: other events 1 passthrough, 1 config, 1 error" \
    "' '.join(str(d['events'][k]) for k in ('passthrough', 'config', 'error', 'other'))" "1 1 1 0"

check "summary: the malformed line and the truncated one, one warning each, by file:line" sh -c "
    test \$(wc -l <'$WORK/sum.err') -eq 2 &&
    sed -n 1p '$WORK/sum.err' | grep -q 'mixed.jsonl:15: malformed record' &&
    sed -n 2p '$WORK/sum.err' | grep -q 'mixed.jsonl:22: truncated record'"

# The same records from two files given late part first (two machines' logs, say): the
# minute windows are found after sorting by ts, so every number is the same.
sed -n '16,$p' "$LOG" >"$WORK/late.jsonl"
sed -n '1,15p' "$LOG" >"$WORK/early.jsonl"
"$L" -c "$CONF" -f "$WORK/late.jsonl" -f "$WORK/early.jsonl" summary --json >"$WORK/sum2.json" 2>/dev/null
check "summary: the same from two files read out of order" $PY -c "
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
for k in ('models', 'programs'):
    a[k].sort(key=lambda g: (g['name'], g.get('region', '')))
    b[k].sort(key=lambda g: (g['name'], g.get('region', '')))
assert a == b, (a, b)" "$WORK/sum.json" "$WORK/sum2.json"

"$L" -c "$CONF" -f "$LOG" summary >"$WORK/sum.txt" 2>/dev/null
check "summary (tables): the qwen-plus row says 8 6 2 1 1" \
    awk '$1 == "qwen-plus" && $2 == "cn-beijing" && $3 == 8 { f = ($4 == 6 && $5 == 2 && $6 == 1 && $7 == 1) } END { exit !f }' \
    "$WORK/sum.txt"
check "summary (tables): peaks against limits (5/60 rpm, 390/6000 tpm)" \
    awk '$1 == "qwen-plus" && $3 == "100/9000/9000" && $5 == "5/60" && $6 == "390/6000" { f = 1 } END { exit !f }' "$WORK/sum.txt"
check "summary (tables): the python3 row says 9 8 2 1 0" \
    awk '$1 == "python3" && NF == 6 && $2 == 9 && $3 == 8 && $4 == 2 && $5 == 1 && $6 == 0 { f = 1 } END { exit !f }' \
    "$WORK/sum.txt"

# A log whose only flaw is a truncated last line: exactly one warning, the rest is read.
head -n 3 "$LOG" >"$WORK/trunc.jsonl"
printf '{"ts":"2026-11-23T18:05:20.000Z","pid":102,"prog":"pyth' >>"$WORK/trunc.jsonl"
"$L" -f "$WORK/trunc.jsonl" summary --json >"$WORK/t.json" 2>"$WORK/t.err"
rc=$?
check "truncated last line: exit 0, the 3 whole records read" sh -c \
    "test $rc = 0 && $PY -c 'import json,sys; assert json.load(sys.stdin)[\"records\"] == 3' <'$WORK/t.json'"
check "truncated last line: exactly one warning, naming trunc.jsonl:4" sh -c \
    "test \$(wc -l <'$WORK/t.err') -eq 1 && grep -q 'trunc.jsonl:4: truncated record' '$WORK/t.err'"

# Garbage (seeded random bytes, NULs and huge lines included) around one request: no crash.
$PY -c "
import random, sys
r = random.Random(6)
out = bytes(r.randrange(256) for _ in range(300000)) + b'\n' + open(sys.argv[1], 'rb').readlines()[1] + b'{' * 5000 + b'\n'
sys.stdout.buffer.write(out)" "$LOG" >"$WORK/garbage.jsonl"
for cmd in "summary --json" "tail" "filter" "plot"; do
    # shellcheck disable=SC2086
    "$L" -f "$WORK/garbage.jsonl" $cmd >"$WORK/g.out" 2>"$WORK/g.err"
    rc=$?
    check "garbage: $cmd exits 0 and warns" sh -c "test $rc = 0 && test -s '$WORK/g.err'"
done
"$L" -f "$WORK/garbage.jsonl" filter 2>/dev/null >"$WORK/g.out"
sed -n 2p "$LOG" >"$WORK/first.jsonl"
check "garbage: filter prints the one record, nothing else" cmp "$WORK/g.out" "$WORK/first.jsonl"

# ==== filter

# nf ARGS...: how many lines filter prints
nf() { "$L" -f "$LOG" filter "$@" 2>/dev/null | wc -l; }
check "filter, nothing: every record (20), never a bad line" test "$(nf)" -eq 20
check "filter --model qwen-turbo: lines 3 6 8 10 13 14" test "$(nf --model qwen-turbo)" -eq 6
check "filter --model 'qwen-*': every record with a model (11 + 6)" test "$(nf --model 'qwen-*')" -eq 17
check "filter --status 429: lines 7 10 11 12 13" test "$(nf --status 429)" -eq 5
check "filter --status 5xx: line 19" test "$(nf --status 5xx)" -eq 1
check "filter --status 200,400: 10 + 1" test "$(nf --status 200,400)" -eq 11
check "filter --status -: the records without a status (1 17 18)" test "$(nf --status -)" -eq 3
check "filter --event throttled: lines 7 10 11" test "$(nf --event throttled)" -eq 3
check "filter --event passthrough,error: lines 17 18" test "$(nf --event passthrough,error)" -eq 2
check "filter --prog curl: lines 5 11 12 14 18 19 20" test "$(nf --prog curl)" -eq 7
check "filter --since 18:04:30 (inclusive): lines 16 to 21" test "$(nf --since 2026-11-23T18:04:30.000Z)" -eq 6
check "filter --until 18:04:01 (exclusive): lines 1 2 4" test "$(nf --until '2026-11-23 18:04:01')" -eq 3
check "filter, every condition at once: python3's 200 requests from 18:04:01 (3 6 8 9 16 21)" \
    test "$(nf --prog 'py*' --event request --status 200 --since 2026-11-23T18:04:01Z --until 2026-11-23T18:06Z)" -eq 6
"$L" -f "$LOG" filter --model qwen-turbo >"$WORK/f.out" 2>/dev/null
grep '"model":"qwen-turbo"' "$LOG" >"$WORK/f.want"
check "filter: the lines as they are in the log, in the log's order" cmp "$WORK/f.out" "$WORK/f.want"
"$L" -f "$LOG" --model x filter >/dev/null 2>&1
check "filter: an option before the command is a usage error" test $? -eq 2
"$L" -f "$LOG" filter --status ok >/dev/null 2>&1
check "filter --status ok: usage error (exit 2)" test $? -eq 2
"$L" -f "$LOG" filter --since yesterday >/dev/null 2>&1
check "filter --since yesterday: usage error (exit 2)" test $? -eq 2
# relative times: one record 20 minutes old, one 5 minutes old
for ago in 20 5; do
    printf '{"ts":"%s","pid":1,"prog":"p%s","event":"request","model":"m"}\n' \
        "$(date -u -d "-$ago min" +%Y-%m-%dT%H:%M:%S.000Z)" "$ago"
done >"$WORK/recent.jsonl"
check "filter --since 10m: the record of 5 minutes ago only" \
    sh -c "test \"\$('$L' -f '$WORK/recent.jsonl' filter --since 10m | grep -c '\"p5\"')\" = 1 &&
           test \"\$('$L' -f '$WORK/recent.jsonl' filter --since 10m | wc -l)\" = 1"
check "filter --until 1h: nothing; --until 10m: the older one" \
    sh -c "test \"\$('$L' -f '$WORK/recent.jsonl' filter --until 1h | wc -l)\" = 0 &&
           '$L' -f '$WORK/recent.jsonl' filter --until 10m | grep -q '\"p20\"'"

# ==== tail

"$L" -f "$LOG" tail -n 3 >"$WORK/tail.out" 2>/dev/null
cat >"$WORK/tail.want" <<'EOF'
2026-11-23 18:05:10.000 curl[200]          request     qwen-plus        503 x8 wait 0+9000ms tok ~40 9800ms code=ModelServingError (retry.max_total_ms reached)
2026-11-23 18:05:11.000 curl[200]          request     qwen-plus        400 x1 wait 0+0ms tok ~35 90ms code=InvalidParameter
2026-11-23 18:05:15.000 python3[101]       request     qwen-plus        200 x1 wait 0+0ms tok 10+5 700ms
EOF
check "tail -n 3: the last three records, one readable line each" diff "$WORK/tail.want" "$WORK/tail.out"
"$L" -f "$LOG" tail >"$WORK/tail.out" 2>/dev/null
check "tail: 10 lines by default, from line 11 (curl's hidden throttle) on" sh -c "
    test \$(wc -l <'$WORK/tail.out') -eq 10 &&
    head -n 1 '$WORK/tail.out' | grep -q '^2026-11-23 18:04:09.000 curl\[200\] *throttled *qwen-plus *429 x1 .*code=Throttling.RateQuota$'"
"$L" -f "$LOG" tail -n 25 >"$WORK/tail.out" 2>/dev/null
check "tail: interleaved records in the log's order (18:04:01.000 before 18:04:00.900)" sh -c "
    test \$(wc -l <'$WORK/tail.out') -eq 20 &&
    sed -n 3p '$WORK/tail.out' | grep -q '^2026-11-23 18:04:01.000 python3\[102\] ' &&
    sed -n 4p '$WORK/tail.out' | grep -q '^2026-11-23 18:04:00.900 python3\[101\] '"
check "tail -n 0: nothing" test -z "$("$L" -f "$LOG" tail -n 0 2>/dev/null)"

# wait_for FILE PATTERN [TENTHS]: until FILE has a line matching PATTERN (grep -E)
wait_for() {
    i=0
    while [ $i -lt "${3:-50}" ]; do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
rec() { # rec PROG MODEL: one record line
    printf '{"ts":"2026-11-23T19:00:00.000Z","pid":9,"prog":"%s","event":"request","model":"%s","status":200}\n' "$1" "$2"
}
LIVE=$WORK/live.jsonl
{ rec first m1; rec second m1; } >"$LIVE"
"$L" -f "$LIVE" tail -F -s 0.05 -n 1 >"$WORK/follow.out" 2>"$WORK/follow.err" &
TPID=$!
check "tail -F: starts with the last record" wait_for "$WORK/follow.out" ' second\[9\] '
rec appended m2 >>"$LIVE"
check "tail -F: picks up a line appended to the file" wait_for "$WORK/follow.out" ' appended\[9\] +request +m2 '
mv "$LIVE" "$LIVE.1"
rec late m3 >>"$LIVE.1"
{ rec rotated m4; rec rotated2 m4; } >"$LIVE"
check "tail -F: after a rotation, what the old file still got, then the new file" \
    wait_for "$WORK/follow.out" ' rotated2\[9\] '
check "tail -F: ... in that order" sh -c "grep -E ' (late|rotated|rotated2)\[' '$WORK/follow.out' |
    cut -d' ' -f3 | tr '\n' ' ' | grep -q '^late\[9\] rotated\[9\] rotated2\[9\] $'"
: >"$LIVE"
rec short x >>"$LIVE"
check "tail -F: a truncated file is read again from its start" wait_for "$WORK/follow.out" ' short\[9\] '
kill "$TPID" 2>/dev/null
wait "$TPID" 2>/dev/null
check "tail -F: every line shown once" test "$(wc -l <"$WORK/follow.out")" -eq 6

# ==== plot

"$L" -c "$CONF" -f "$LOG" plot >"$WORK/plot.out" 2>"$WORK/plot.err"
rc=$?
check "plot: exit 0" test $rc = 0
check "plot: the terminal charts are the reviewed snapshot (fixtures/plot.txt)" diff "$FX/plot.txt" "$WORK/plot.out"
check "plot: no line wider than 80 columns, ASCII only" sh -c "
    awk 'length(\$0) > 80 { exit 1 }' '$WORK/plot.out' && ! LC_ALL=C grep -q '[^ -~]' '$WORK/plot.out'"
"$L" -c "$CONF" -f "$LOG" plot --width 50 >"$WORK/plot50.out" 2>/dev/null
check "plot --width 50: fits in 50 columns" awk 'length($0) > 50 { exit 1 } END { exit NR < 60 }' "$WORK/plot50.out"
"$L" -c "$CONF" -f "$LOG" plot --per minute --model qwen-plus >"$WORK/plotm.out" 2>/dev/null
check "plot --per minute --model qwen-plus: requests per minute against 60 rpm, no other model" sh -c "
    grep -q '^qwen-plus (cn-beijing): requests per minute' '$WORK/plotm.out' &&
    grep -q 'limit 60 req/min' '$WORK/plotm.out' && ! grep -q qwen-turbo '$WORK/plotm.out'"
# per minute: 5 requests in 18:04, 3 in 18:05, so the scale tops at 5 and 60 rpm is more than
# 4 x the peak: left off the chart. 71 columns for 2 bins: bars 34 wide with a gap; the top row
# (5) has the first bar only, the row of 2.5 both.
check "plot --per minute: bars of 5 and 3 requests, the limit above the chart" sh -c "
    grep -q 'limit 60 req/min is above the chart' '$WORK/plotm.out' &&
    test \$(grep -m 1 '^     5 |' '$WORK/plotm.out' | tr -cd '#' | wc -c) = 34 &&
    test \$(grep -m 1 '^   2.5 |' '$WORK/plotm.out' | tr -cd '#' | wc -c) = 68"
"$L" -c "$CONF" -f "$LOG" plot --model nothing >/dev/null 2>"$WORK/err"
check "plot --model nothing: exit 1, said why" sh -c "test $? = 1 && grep -q 'no requests' '$WORK/err'"

"$L" -c "$CONF" -f "$LOG" plot --svg "$WORK/plot.svg" 2>"$WORK/svg.err"
rc=$?
check "plot --svg: exit 0" test $rc = 0
$PY - "$WORK/plot.svg" >"$WORK/svg.check" 2>&1 <<'PYEOF'
import sys, xml.etree.ElementTree as ET
NS = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == NS + "svg", root.tag
def cls(e): return e.get("class", "").split()
every = list(root.iter())
charts = [e for e in every if "chart" in cls(e)]
inside = [e for c in charts for e in c.iter()]  # the legend has a marker of each kind too
limits = [e for e in inside if "limit" in cls(e)]
hidden = [e for e in inside if "throttle" in cls(e) and "hidden" in cls(e)]
passed = [e for e in inside if "throttle" in cls(e) and "passed" in cls(e)]
bars = [e for e in inside if "bar" in cls(e)]
print("charts", len(charts), "limits", len(limits), "hidden", len(hidden), "passed", len(passed))
assert len(charts) == 6, "3 models x (requests, tokens)"
# limits within 4x the peak are drawn: qwen-plus 1 req/s and 100 tok/s, qwen-turbo intl 4 req/s
assert len(limits) == 3 and all(l.tag == NS + "line" and l.get("stroke-dasharray") for l in limits)
# hidden throttles: qwen-plus 18:04:01 and :09, qwen-turbo intl :05, marked on both charts of a model;
# passed on: qwen-plus 18:05:10 (503), qwen-turbo intl 18:04:08 (429)
assert len(hidden) == 6 and len(passed) == 4
assert len(bars) > 0 and root.find(NS + "title").text
# the limit is drawn at its height: qwen-plus's 1 req/s line lies on the axis label "1"
c0 = charts[0]
one = [t for t in c0.iter(NS + "text") if t.text == "1" and t.get("text-anchor") == "end"]
line = [e for e in c0.iter() if "limit" in cls(e)][0]
assert len(one) == 1 and abs(float(one[0].get("y")) - 4 - float(line.get("y1"))) < 0.01, (one, line.attrib)
texts = " ".join(t.text or "" for t in root.iter(NS + "text"))
for want in ("qwen-plus (cn-beijing): requests per second", "18:04:00", "req/s", "tok/s",
             "limit 1 req/s", "429 retried unseen by qshim", "429 passed on to the program"):
    assert want in texts, want
assert any("legend" in cls(e) for e in every)
print("ok")
PYEOF
check "plot --svg: well-formed XML with 6 charts, 3 dashed limit lines, 6 + 4 throttle markers, legend" \
    sh -c "tail -n 1 '$WORK/svg.check' | grep -qx ok || { cat '$WORK/svg.check'; exit 1; }"
rsvg-convert -o "$WORK/plot.png" "$WORK/plot.svg" 2>"$WORK/rsvg.err"
rc=$?
check "plot --svg: rsvg-convert renders it to a PNG of 960 pixels wide" sh -c "test $rc = 0 || { cat '$WORK/rsvg.err'; exit 1; }
    $PY -c '
import struct, sys
b = open(sys.argv[1], \"rb\").read()
assert b[:8] == b\"\\x89PNG\\r\\n\\x1a\\n\" and len(b) > 10000, len(b)
w, h = struct.unpack(\">II\", b[16:24])
assert w == 960 and h > 1000, (w, h)' '$WORK/plot.png'"

# ==== where the log comes from

n_records() { $PY -c 'import json,sys; print(json.load(sys.stdin)["records"])' 2>/dev/null; }
check "default path: \$QSHIM_LOG" test "$(QSHIM_LOG=$LOG "$L" summary --json 2>/dev/null | n_records)" = 20
mkdir -p "$WORK/state/qshim"
cp "$LOG" "$WORK/state/qshim/audit.jsonl"
check "default path: \$XDG_STATE_HOME/qshim/audit.jsonl" \
    test "$(env -u QSHIM_LOG XDG_STATE_HOME="$WORK/state" "$L" summary --json 2>/dev/null | n_records)" = 20
head -n 5 "$LOG" >"$WORK/cfglog.jsonl"
printf 'log = { path = "%s"; };\n' "$WORK/cfglog.jsonl" >"$WORK/log.conf"
check "default path: the config's log.path" \
    test "$(env -u QSHIM_LOG QSHIM_CONFIG="$WORK/log.conf" "$L" summary --json 2>/dev/null | n_records)" = 5
check "-f -: stdin, warnings name it" sh -c "
    test \"\$('$L' -f - summary --json <'$LOG' 2>'$WORK/stdin.err' | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"records\"])')\" = 20 &&
    grep -q '^qshim-log: stdin:15: malformed record' '$WORK/stdin.err'"
check "-f twice: both files" test "$("$L" -f "$LOG" -f "$WORK/cfglog.jsonl" summary --json 2>/dev/null | n_records)" = 25
rec r2 m >"$WORK/rot.jsonl.2"
rec r1 m >"$WORK/rot.jsonl.1"
rec r0 m >"$WORK/rot.jsonl"
check "--rotated: FILE.2, FILE.1, FILE in that order" sh -c "
    test \"\$('$L' --rotated -f '$WORK/rot.jsonl' filter | cut -d'\"' -f10 | tr '\n' ' ')\" = 'r2 r1 r0 '"
check "without --rotated: FILE only" test "$("$L" -f "$WORK/rot.jsonl" filter | wc -l)" = 1
"$L" -f "$WORK/nonexistent.jsonl" summary >/dev/null 2>"$WORK/err"
check "a file that cannot be opened: exit 1, said" sh -c "test $? = 1 && grep -q 'cannot open .*nonexistent.jsonl' '$WORK/err'"

# ==== a log written by a real run: 4 processes at once through the shim, against a mock
# that allows 10 requests/s while the config says 20 (so the shim paces, and still meets
# throttles to hide); the summary must count what the mock saw

cat >"$WORK/real.conf" <<'CONF'
hosts = [ "localhost" ];
limits = ( { model = "qwen-plus"; rpm = 1200; tpm = 10000000; } );
retry = { max_attempts = 40; base_ms = 100; max_ms = 1000; max_total_ms = 60000; };
CONF
start_mock --limit qwen-plus=600/10000000
: >"$WORK/real.jsonl"
pids=""
for i in 1 2 3 4; do
    QSHIM_CONFIG=$WORK/real.conf QSHIM_LOG=$WORK/real.jsonl with_shim \
        $PY "$QS_ROOT/tests/integration/clients.py" requests "https://localhost:$MOCK_PORT" burst-compat 10 \
        >"$WORK/real.$i" 2>&1 &
    pids="$pids $!"
done
for p in $pids; do wait "$p"; done
mock_stats >"$WORK/mock.json"
"$L" -c "$WORK/real.conf" -f "$WORK/real.jsonl" summary --json >"$WORK/real.sum" 2>"$WORK/real.err"
check "real run: 40 answers of 200 to the programs" test "$(cat "$WORK"/real.[1-4] | grep -c ' 200 ')" -eq 40
check "real run: no line of the shared log skipped" test ! -s "$WORK/real.err"
# the mock counts every request it received: each logical request's final one, plus each
# throttle the shim hid and replayed
check "real run: requests, ok, hidden throttles and tokens equal the mock's own counts" $PY -c "
import json, sys
s = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2]))['models']['qwen-plus']
g = [g for g in s['models'] if g['name'] == 'qwen-plus']
assert len(g) == 1, s['models']
g = g[0]
got = (g['requests'], g['ok'], g['requests'] + g['throttles_hidden'], g['throttles_hidden'],
       g['input_tokens'], g['output_tokens'])
want = (40, m['ok'], m['requests'], m['throttled'], m['input_tokens'], m['output_tokens'])
assert got == want, (got, want)
assert m['throttled'] > 0, 'the mock throttled nothing: nothing hidden was tested'

p = s['programs']
assert [(x['name'], x['requests']) for x in p] == [('python3', 40)], p
" "$WORK/real.sum" "$WORK/mock.json"
stop_mock

# ==== help and usage

for c in summary tail filter plot; do
    check "$c --help: man-style usage, exit 0" sh -c "'$L' $c --help | head -n 1 | grep -q '^usage: qshim-log .*$c'"
done
check "help plot: the same text" sh -c "test \"\$('$L' help plot)\" = \"\$('$L' plot --help)\""
"$L" frobnicate >/dev/null 2>&1
check "unknown command: exit 2" test $? = 2
"$L" tail -n lots >/dev/null 2>&1
check "tail -n lots: exit 2" test $? = 2

# ==== valgrind: each command once over the fixture with its bad lines; tail -F until TERM

VG="valgrind -q --error-exitcode=1 --leak-check=full"
set -f # the glob in the filter below is qshim-log's, not the shell's
for cmd in "summary" "summary --json" "tail -n 5" "filter --model qwen-* --status 2xx --since 2026-11-23T18:04:01Z" \
    "plot" "plot --per minute" "plot --svg $WORK/vg.svg"; do
    # shellcheck disable=SC2086
    $VG "$L" -c "$CONF" -f "$LOG" $cmd >/dev/null 2>"$WORK/vg.err"
    rc=$?
    check "valgrind: $cmd" sh -c "test $rc = 0 || { grep -v 'mixed.jsonl:' '$WORK/vg.err'; exit 1; }"
done
set +f
{ rec first m1; } >"$LIVE"
$VG "$L" -f "$LIVE" tail -F -s 0.05 >"$WORK/vgf.out" 2>"$WORK/vgf.err" &
TPID=$!
wait_for "$WORK/vgf.out" ' first\[9\] ' 200
rec second m1 >>"$LIVE"
wait_for "$WORK/vgf.out" ' second\[9\] ' 100
kill -TERM "$TPID"
wait "$TPID"
rc=$?
check "valgrind: tail -F, following until SIGTERM" sh -c "test $rc = 0 && grep -q ' second\[9\] ' '$WORK/vgf.out' ||
    { echo rc $rc; cat '$WORK/vgf.err'; exit 1; }"

qs_done
