#!/bin/sh
# test_help.sh - every qshim subcommand answers --help (and -h, and `qshim help CMD`) with
# its man-style usage on stdout and exit 0, and `qshim --help` lists them all.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
QSHIM=$QS_BUILD/qshim
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qshim-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$QSHIM" --help >"$WORK/top" 2>&1
rc=$?
check "qshim --help: exit 0" test $rc = 0
for c in run config limits doctor status help; do
    check "qshim --help lists '$c'" grep -qE "^  $c +[a-z]" "$WORK/top"
    "$QSHIM" $c --help >"$WORK/$c.long" 2>"$WORK/$c.err"
    rc=$?
    check "qshim $c --help: exit 0, usage on stdout, nothing on stderr" \
        sh -c "test $rc = 0 && head -n 1 '$WORK/$c.long' | grep -q '^usage: qshim $c' && test ! -s '$WORK/$c.err'"
    "$QSHIM" $c -h >"$WORK/$c.short" 2>&1
    "$QSHIM" help $c >"$WORK/$c.help" 2>&1
    check "qshim $c -h and qshim help $c say the same" \
        sh -c "cmp -s '$WORK/$c.long' '$WORK/$c.short' && cmp -s '$WORK/$c.long' '$WORK/$c.help'"
    check "qshim $c --help explains itself (more than the usage line, an exit status or options)" \
        sh -c "test \$(wc -l <'$WORK/$c.long') -ge 3"
done
"$QSHIM" config check --help >"$WORK/cc" 2>&1
check "qshim config check --help: the config usage" cmp -s "$WORK/cc" "$WORK/config.long"
for c in run config limits doctor status; do
    check "qshim $c --help documents its exit status" grep -qi "exit status" "$WORK/$c.long"
done
"$QSHIM" nosuch --help >/dev/null 2>&1
rc=$?
check "an unknown command is a usage error (2)" test $rc = 2
qs_done
