#!/bin/sh
# test_log_hygiene.sh - the audit log as a real program under the shim leaves it: by default
# under $XDG_STATE_HOME/qshim/ with directories 0700 and the file 0600; no API key and no
# body text in it; and a log that cannot be written costs the program nothing but one line
# on stderr (same output, same exit status). Rotation is tested in tests/unit/test_audit.c.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
qs_setup
start_mock
URL=https://localhost:$MOCK_PORT/compatible-mode/v1/chat/completions
BODY='{"model":"qwen-plus","messages":[{"role":"user","content":"SECRET-BODY-TEXT-4711"}]}'
req() { # req [CURL ARGS...]: one chat request (two with --next ...), answer on stdout
    curl -sS --cacert "$CA" -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-test-hygiene-0123456789' \
        -d "$BODY" "$URL" "$@"
}

# The default path: QSHIM_LOG unset, XDG_STATE_HOME pointing at directories not made yet.
(
    unset QSHIM_LOG
    umask 022
    XDG_STATE_HOME=$WORK/xdg/state with_shim curl -sS -o /dev/null --cacert "$CA" -H 'Content-Type: application/json' \
        -H 'Authorization: Bearer sk-test-hygiene-0123456789' -d "$BODY" "$URL"
)
LOG=$WORK/xdg/state/qshim/audit.jsonl
check "default log: \$XDG_STATE_HOME/qshim/audit.jsonl, with the request in it" \
    grep -q '"event":"request".*"model":"qwen-plus"' "$LOG"
check "default log: directories made 0700, the file 0600 (under umask 022)" \
    test "$(stat -c %a "$WORK/xdg/state" "$WORK/xdg/state/qshim" "$LOG" | tr '\n' ' ')" = "700 700 600 "
check "no API key and no body text in the log (only the 8-hex fingerprint)" \
    sh -c "! grep -qE 'sk-test-hygiene|0123456789|SECRET-BODY' '$LOG' && grep -qE '\"key\":\"[0-9a-f]{8}\"' '$LOG'"

# A log that cannot be written: its parent is a regular file (root or not, nothing can make it).
: >"$WORK/notadir"
req -o "$WORK/plain.out" --next --cacert "$CA" -H 'Content-Type: application/json' -d "$BODY" "$URL" \
    >"$WORK/plain" 2>&1
plain_rc=$?
QSHIM_LOG=$WORK/notadir/qshim/audit.jsonl with_shim sh -c \
    "curl -sS --cacert '$CA' -H 'Content-Type: application/json' -d '$BODY' '$URL' -o '$WORK/shim.out' \
     --next --cacert '$CA' -H 'Content-Type: application/json' -d '$BODY' '$URL'" >"$WORK/shim" 2>"$WORK/shim.err"
shim_rc=$?
check "unwritable log: the program's output and exit status are unchanged" \
    sh -c "test $plain_rc = 0 && test $shim_rc = $plain_rc && cmp -s '$WORK/plain' '$WORK/shim' && cmp -s '$WORK/plain.out' '$WORK/shim.out'"
check "unwritable log: exactly one line on stderr for two requests, naming the log" \
    sh -c "test \$(wc -l <'$WORK/shim.err') = 1 && grep -q 'notadir/qshim/audit.jsonl' '$WORK/shim.err'"
qs_done
