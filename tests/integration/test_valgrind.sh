#!/bin/sh
# test_valgrind.sh - memcheck over real clients running through the shim: no invalid
# access, no uninitialised use, no definite leak (our state is freed in SSL_free).
. "$(dirname "$0")/lib.sh"
qs_setup
start_mock
H=dashscope.aliyuncs.com
URL=https://$H:$MOCK_PORT
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --suppressions=$QS_ROOT/tests/valgrind.supp"
COMPAT='{"messages":[{"role":"user","content":"hi"}],"model":"qwen-plus"}'
STREAM='{"messages":[{"role":"user","content":"hi"}],"model":"qwen-plus","stream":true}'
NATIVE='{"model":"qwen-turbo","input":{"messages":[{"role":"user","content":"hi"}]}}'

: >"$QSHIM_LOG"
LD_PRELOAD=$SHIM $VG curl -sS --resolve $H:$MOCK_PORT:127.0.0.1 --cacert "$CA" \
    $URL/compatible-mode/v1/chat/completions -d "$COMPAT" \
    --next --resolve $H:$MOCK_PORT:127.0.0.1 --cacert "$CA" -N $URL/compatible-mode/v1/chat/completions -d "$STREAM" \
    --next --resolve $H:$MOCK_PORT:127.0.0.1 --cacert "$CA" -N -H X-DashScope-SSE:enable \
    $URL/api/v1/services/aigc/text-generation/generation -d "$NATIVE" >"$WORK/out" 2>"$WORK/vg"
rc=$?
check "curl under memcheck through the shim: exit 0, no errors" sh -c "test $rc = 0 || { cat '$WORK/vg'; exit 1; }"
check "curl under memcheck: all 3 requests logged" test "$(log_json "len(recs)")" = 3

: >"$QSHIM_LOG"
PYTHONMALLOC=malloc LD_PRELOAD=$SHIM $VG $PY "$QS_ROOT/tests/integration/clients.py" requests \
    "https://localhost:$MOCK_PORT" compat-stream 3 >"$WORK/out" 2>"$WORK/vg"
rc=$?
check "python requests under memcheck through the shim: no errors" sh -c "test $rc = 0 || { tail -n 40 '$WORK/vg'; exit 1; }"
check "python requests under memcheck: 3 requests logged" test "$(log_json "len(recs)")" = 3
qs_done
