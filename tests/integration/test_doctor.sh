#!/bin/sh
# test_doctor.sh - `qshim doctor CMD`: the verdict for curl (links libssl.so.3), python3
# (loads it with dlopen), a static binary built here, a setuid copy of curl, scripts whose #!
# leads to python3, and a missing command; the self-test against qshim-mock for curl and
# python3, and that it fails when the preloaded library is not qshim.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
qs_setup
QSHIM=$QS_BUILD/qshim

# doctor ARGS...: runs qshim doctor; stdout in $WORK/out, stderr in $WORK/err, status in $RC
doctor() {
    "$QSHIM" doctor "$@" >"$WORK/out" 2>"$WORK/err"
    RC=$?
}

# verdict DESC RC PATTERN...: the last doctor run exited RC and printed every (grep -E) PATTERN
verdict() {
    desc=$1 want=$2
    shift 2
    miss=""
    for p in "$@"; do
        grep -qE -- "$p" "$WORK/out" || miss="$miss [$p]"
    done
    if [ "$RC" = "$want" ] && [ -z "$miss" ]; then
        ok "$desc"
    else
        fail "$desc" "exit $RC (want $want), missing:$miss
$(cat "$WORK/out" "$WORK/err")"
    fi
}

doctor --no-self-test curl
verdict "curl: dynamic, links libssl.so.3 => can act" 0 "dynamically linked" \
    "TLS library +libssl.so.3 \(OpenSSL 3\)" "^verdict: can act: curl calls OpenSSL 3" "self-test: not run"

doctor curl
verdict "curl: the self-test's request went through the shim and was logged" 0 \
    "^self-test: passed: curl .*event request, model qwen-plus, status 200"

doctor --no-self-test /usr/bin/python3
verdict "python3: loads libssl.so.3 at run time through _ssl => can act" 0 \
    "_ssl +/.*_ssl.*\.so \(loaded at run time with dlopen\)" "needed by _ssl" \
    "^verdict: can act: Python loads OpenSSL 3"

doctor /usr/bin/python3
verdict "python3: the self-test's request went through the shim and was logged" 0 \
    "^self-test: passed: python3.* status 200"

# The self-test must notice a preload that is not qshim: the request succeeds, nothing is logged.
QSHIM_LIB=$(ls /lib/x86_64-linux-gnu/libz.so.1 /usr/lib/x86_64-linux-gnu/libz.so.1 2>/dev/null | head -n 1)
export QSHIM_LIB
doctor curl
unset QSHIM_LIB
verdict "self-test fails (exit 1) when the preloaded library is not qshim" 1 \
    "^verdict: can act" "^self-test: FAILED: .*did not record it"

# A static program, built here: with the static libc if there is one, else with no libc at all.
printf '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n' >"$WORK/hello.c"
if ! cc -static -o "$WORK/hello-static" "$WORK/hello.c" 2>/dev/null; then
    printf 'void _start(void) { __asm__ volatile("mov $60, %%eax\\n xor %%edi, %%edi\\n syscall"); }\n' \
        >"$WORK/tiny.c"
    cc -static -nostdlib -o "$WORK/hello-static" "$WORK/tiny.c"
fi
doctor "$WORK/hello-static"
verdict "a static binary => cannot act (no loader, LD_PRELOAD never read)" 1 "statically linked" \
    "^verdict: cannot act: statically linked: no dynamic loader runs"
cc -o "$WORK/hello-dynamic" "$WORK/hello.c"
doctor "$WORK/hello-dynamic"
verdict "the same program linked dynamically, no TLS => cannot act (links no TLS library)" 1 \
    "dynamically linked" "^verdict: cannot act: it links no TLS library"

cp "$(command -v curl)" "$WORK/curl-setuid"
chmod u+s "$WORK/curl-setuid"
doctor "$WORK/curl-setuid"
verdict "a setuid copy of curl => cannot act: setuid (and no self-test)" 1 "setuid +yes" \
    "^verdict: cannot act: setuid: the loader .* ignores LD_PRELOAD"
check "no self-test is run for a program qshim cannot act in" sh -c "! grep -q self-test '$WORK/out'"
cp "$(command -v curl)" "$WORK/curl-setgid"
chmod g+s "$WORK/curl-setgid"
doctor "$WORK/curl-setgid"
verdict "a setgid copy of curl => cannot act: setgid" 1 "^verdict: cannot act: setgid"

printf '#!/usr/bin/python3 -u\nprint("hi")\n' >"$WORK/script.py"
chmod +x "$WORK/script.py"
doctor --no-self-test "$WORK/script.py"
verdict "a #! script for python3 is judged by its interpreter => can act" 0 \
    "script +run by /usr/bin/python3 -u" "is a script; its interpreter:" "^verdict: can act: Python"
printf '#!/usr/bin/env python3\nprint("hi")\n' >"$WORK/script-env.py"
chmod +x "$WORK/script-env.py"
PATH=/usr/bin:/bin doctor --no-self-test "$WORK/script-env.py"
verdict "#!/usr/bin/env python3 is followed through PATH" 0 "interpreter +/usr/bin/python3 \(found in PATH by env\)" \
    "^verdict: can act: Python"
mkdir "$WORK/bin"
printf '#!/bin/sh\necho hi\n' >"$WORK/bin/runme"
chmod +x "$WORK/bin/runme"
PATH=$WORK/bin:$PATH doctor runme
verdict "a shell script found in PATH: qshim acts in what it runs" 0 "file +$WORK/bin/runme" \
    "^verdict: can act: .* the programs it runs inherit LD_PRELOAD" "self-test: skipped"

doctor no-such-command-qshim
check "a command not in PATH is an error (exit 2) with a message" \
    sh -c "test $RC = 2 && grep -q 'no-such-command-qshim: command not found in PATH' '$WORK/err'"
printf 'just text\n' >"$WORK/text"
chmod +x "$WORK/text"
doctor "$WORK/text"
check "a file that is neither ELF nor a script is an error (exit 2)" \
    sh -c "test $RC = 2 && grep -q 'neither an ELF program nor a #! script' '$WORK/err'"
doctor "$(ls /lib/x86_64-linux-gnu/libssl.so.3 /usr/lib/x86_64-linux-gnu/libssl.so.3 2>/dev/null | head -n 1)"
check "a shared library is not a program (exit 2)" sh -c "test $RC = 2 && grep -q 'shared library' '$WORK/err'"
doctor
check "no command is a usage error (exit 2)" test "$RC" = 2

# Programs of the machine that qshim cannot reach, when they are there (not counted otherwise).
if command -v wget >/dev/null && ldd "$(command -v wget)" | grep -q libgnutls; then
    doctor wget
    verdict "wget (GnuTLS) => cannot act" 1 "^verdict: cannot act: its TLS library is GnuTLS"
else
    echo "skip - wget with GnuTLS is not installed"
fi
if command -v node >/dev/null; then
    doctor node
    verdict "node (bundled OpenSSL) => cannot act" 1 "^verdict: cannot act: Node.js bundles its own OpenSSL"
else
    echo "skip - node is not installed"
fi
qs_done
