#!/bin/sh
# test_limits_seed.sh - `qshim limits` against the source of its tables: for (model, region)
# pairs from every family, the numbers printed must be the numbers of that model's row in
# the seed text itself (seeds/004_*.txt, the flattened DashScope rate-limit page), not in a
# copy. Also: a config override is shown as such, an unknown region is a usage error.
. "$(dirname "$0")/lib.sh"

SEED=$(ls "$QS_ROOT"/../shared/seeds/004_*.txt 2>/dev/null | head -n 1)
if [ -z "$SEED" ]; then
    echo "skipped: the seed ($QS_ROOT/../shared/seeds/004_*.txt) is not here, nothing to compare with"
    qs_done
    exit
fi
qs_setup

# seed_numbers FAMILY REGION MODEL: the numbers of MODEL's row in the seed, looked for after
# the first line FAMILY, then the first line REGION after it ("" when the section has no region
# heading), and before the next region heading. The numbers are the cells after the name, with
# thousands separators dropped ("2 per second" gives 2); a row with none of its own shares the
# merged cell of the nearest row above that has some, as the page's tables do.
seed_numbers() {
    awk -v fam="$1" -v reg="$2" -v model="$3" '
        { sub(/\r$/, ""); sub(/^[ \t]+/, ""); sub(/[ \t]+$/, "") }
        $0 == "" { next }
        state == 0 { if ($0 == fam) state = (reg == "" ? 2 : 1); next }
        state == 1 { if ($0 == reg) state = 2; next }
        /^[0-9][0-9,]*$/ || /^[0-9]+ per (minute|second)$/ {
            n = $0; sub(/ .*/, "", n); gsub(/,/, "", n); cur = cur " " n; next
        }
        /^No limit for sync API/ || /^\(/ { next }   # a cell without a number; an alias
        found { exit }
        $0 == "Global" || $0 == "International" || $0 == "US" || $0 == "Chinese Mainland" ||
        $0 == "China (Hong Kong)" || $0 == "EU" { exit }
        # any other line starts a row (or is a label, a row without numbers)
        { if (cur != "") last = cur; cur = "" }
        $0 == model { found = 1 }
        END { if (found) print (cur != "" ? cur : last) }
    ' "$SEED"
}

# printed_numbers REGION MODEL: the number columns (rpm tpm rps tps concurrency) of MODEL's
# row in `qshim limits --region REGION MODEL`, "-" (not limited) left out.
printed_numbers() {
    "$QS_BUILD/qshim" limits --region "$1" "$2" | awk -v m="$2" '$1 == m {
        for (i = 2; i <= 6; i++) if ($i != "-") printf " %s", $i; print "" }'
}

# check_row FAMILY SEED_REGION REGION MODEL: every number of the seed row is printed.
check_row() {
    want=$(seed_numbers "$1" "$2" "$4")
    got=$(printed_numbers "$3" "$4")
    ok_row=1
    [ -n "$want" ] || ok_row=0
    for n in $want; do
        case " $got " in *" $n "*) ;; *) ok_row=0 ;; esac
    done
    if [ $ok_row -eq 1 ]; then
        ok "$3 $4: seed row ($want ) is printed ($got )"
    else
        fail "$3 $4: seed row ($want ) is not what is printed ($got )" \
            "$("$QS_BUILD/qshim" limits --region "$3" "$4" 2>&1)"
    fi
}

unset XDG_CONFIG_HOME
# qs_setup's config has no limits of its own, so every row comes from the tables.
check_row "Text generation - Qwen" "Chinese Mainland" cn-beijing qwen-plus
check_row "Text generation - Qwen" "International" intl qwen-plus-2025-09-11      # lone "120"
check_row "Text generation - Qwen" "Global" global qwen-plus-2025-07-28           # merged cell
check_row "Text generation - Qwen" "US" us qwen-flash-2025-07-28-us               # merged cell
check_row "Text generation - Qwen" "China (Hong Kong)" cn-hongkong qwen3.5-flash
check_row "Text generation - Qwen" "EU" eu qwen3.5-flash
check_row "Qwen-VL (visual understanding / image-to-text)" "Chinese Mainland" cn-beijing qvq-plus-latest
check_row "Qwen-VL (visual understanding / image-to-text)" "US" us qwen3-vl-flash-2025-10-15-us
check_row "Qwen-Omni-Realtime (real-time omni-modality)" "International" intl qwen-omni-turbo-realtime
check_row "Qwen-Coder" "Chinese Mainland" cn-beijing qwen-coder-plus-2024-11-06
check_row "Text generation - Qwen - Open source" "Chinese Mainland" cn-beijing qwen3-32b
check_row "DeepSeek" "Chinese Mainland" cn-beijing deepseek-r1-distill-qwen-32b
check_row "Qwen-Image" "International" intl qwen-image-plus                      # "2 per second"
check_row "Qwen-Image" "Chinese Mainland" cn-beijing qwen-image-max               # "2 per minute"
check_row "Wan" "Chinese Mainland" cn-beijing wan2.5-t2i-preview                  # ambiguous "5"
check_row "Video generation" "International" intl wan2.2-i2v-plus
check_row "Video generation" "US" us wan2.6-i2v-us
check_row "CosyVoice speech synthesis" "Chinese Mainland" cn-beijing cosyvoice-v2
check_row "Qwen audio file recognition" "International" intl qwen3-asr-flash-2025-09-08
check_row "Paraformer speech recognition" "" cn-beijing paraformer-8k-v2
check_row "Text embedding" "Chinese Mainland" cn-beijing text-embedding-v4
check_row "Text embedding" "China (Hong Kong)" cn-hongkong text-embedding-v4
check_row "Text rerank" "" cn-beijing gte-rerank-v2
check_row "Retired on August 20, 2025" "" global qwen1.5-7b-chat

# The whole table: one row per model of the region, then default_limit.
n_conf=$(grep -c 'model = "' "$QS_ROOT/config/limits/eu.conf")
n_out=$("$QS_BUILD/qshim" limits --region eu | grep -c ' table eu')
check "whole eu table printed ($n_out of $n_conf models)" test "$n_out" -eq "$n_conf"

# A config override beats the table and says where it comes from.
cat >"$WORK/over.conf" <<'EOF'
region = "intl";
limits = ( { model = "qwen-plus*"; rpm = 7; tpm = 700; } );
EOF
out=$("$QS_BUILD/qshim" limits -c "$WORK/over.conf" qwen-plus-latest)
check "config glob overrides the table" sh -c 'printf "%s\n" "$1" |
    grep -Eq "^qwen-plus-latest +7 +700 .*config .*over.conf:2 \(qwen-plus\*\)"' sh "$out"
out=$("$QS_BUILD/qshim" limits -c "$WORK/over.conf")
check "whole table marks the overrides" sh -c 'printf "%s\n" "$1" |
    grep -Eq "^qwen-plus +7 +700 .*over.conf:2, over the table"' sh "$out"

# An unknown region is a usage error that lists the valid ones.
"$QS_BUILD/qshim" limits --region mars qwen-plus >"$WORK/o" 2>"$WORK/e"
rc=$?
check "unknown region: exit 2" test $rc -eq 2
check "unknown region: the valid ones are listed" \
    grep -q "valid: cn-beijing, cn-hongkong, eu, global, intl, us" "$WORK/e"

qs_done
