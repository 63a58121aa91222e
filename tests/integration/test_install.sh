#!/bin/sh
# test_install.sh - `make install DESTDIR=... PREFIX=/usr` lays out the library, the programs,
# the limit tables and the example config; the installed `qshim run` preloads the installed
# library (found from its own location, bin/../lib/qshim/), and the installed `qshim doctor`
# finds the installed qshim-mock for its self-test.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
qs_setup
D=$WORK/dest
P=$D/usr
unset QSHIM_LIB

make -s -C "$QS_ROOT" B="$QS_BUILD" install DESTDIR="$D" PREFIX=/usr >"$WORK/make.out" 2>&1
rc=$?
check "make install DESTDIR=... PREFIX=/usr succeeds" sh -c "test $rc = 0 || { cat '$WORK/make.out'; exit 1; }"

mode() { stat -c %a "$1" 2>/dev/null; }
check "libqshim.so in PREFIX/lib/qshim/, mode 644" test "$(mode "$P/lib/qshim/libqshim.so")" = 644
check "qshim and qshim-mock in PREFIX/bin/, mode 755" \
    test "$(mode "$P/bin/qshim") $(mode "$P/bin/qshim-mock")" = "755 755"
if [ -x "$QS_BUILD/qshim-log" ]; then
    check "qshim-log in PREFIX/bin/, mode 755" test "$(mode "$P/bin/qshim-log")" = 755
fi
nlim=$(ls "$QS_ROOT"/config/limits/*.conf | wc -l | tr -d ' ')
check "every config/limits/*.conf ($nlim) in PREFIX/share/qshim/limits/, identical" \
    sh -c "test \$(ls '$P'/share/qshim/limits/*.conf | wc -l) = $nlim && \
           for f in '$QS_ROOT'/config/limits/*.conf; do cmp -s \"\$f\" '$P'/share/qshim/limits/\$(basename \"\$f\") || exit 1; done"
check "the example config in PREFIX/share/qshim/, and it passes config check" \
    sh -c "cmp -s '$QS_ROOT/config/qshim.conf' '$P/share/qshim/qshim.conf.example' && \
           '$P/bin/qshim' config check '$P/share/qshim/qshim.conf.example' >/dev/null"
check "nothing is installed outside PREFIX" test "$(ls -A "$D")" = usr

# The installed qshim must take the installed library, not the build tree's.
want=$(cd "$P/lib/qshim" && pwd -P)/libqshim.so
"$P/bin/qshim" run -- true
rc=$?
check "installed 'qshim run -- true' exits 0" test $rc = 0
got=$("$P/bin/qshim" run -- sh -c 'echo "$LD_PRELOAD"')
check "installed 'qshim run' preloads PREFIX/lib/qshim/libqshim.so (from bin/../lib/qshim)" test "$got" = "$want"
got=$(LD_PRELOAD=/nonexistent-other.so "$P/bin/qshim" run -- sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
check "an existing LD_PRELOAD is kept after it" test "$got" = "$want:/nonexistent-other.so"
mv "$P/lib/qshim/libqshim.so" "$P/lib/qshim/moved.so"
"$P/bin/qshim" run -- true 2>"$WORK/nolib.err"
rc=$?
check "without the installed library 'qshim run' fails (125) and says where it looked" \
    sh -c "test $rc = 125 && grep -q 'cannot find libqshim.so' '$WORK/nolib.err'"
mv "$P/lib/qshim/moved.so" "$P/lib/qshim/libqshim.so"

"$P/bin/qshim" doctor curl >"$WORK/doctor.out" 2>&1
rc=$?
check "installed 'qshim doctor curl' runs its self-test with the installed mock and library" \
    sh -c "test $rc = 0 && grep -q '^self-test: passed' '$WORK/doctor.out'"
qs_done
