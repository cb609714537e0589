#!/usr/bin/env bash
# The buggy-vs-fixed verdict that .ci/run asserts: nanomq_cli at the parent
# of the NanoMQ 1766 fix (old) and at the fix (fixed), built from the
# archives, close-before-suback 10 times each, checked against
# expected-ci.tsv; then the comparison both ways:
#   - fixed against old: the 1766 signature is fixed; the one new finding
#     is the aio leak the fix introduced, accepted by name: exit 0;
#   - old against fixed: the 1766 signature is new: exit 1.
# Skips (exit 0, with a message) when the archives are absent.
#
#   targets/nanomq/ci.sh [--mqtls PATH] [--out DIR]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
archives="${NANOMQ_ARCHIVES:-$root/../shared/targets/nanomq}"
out="$root/target/nanomq/ci"
mqtls="${MQTLS:-$root/target/debug/mqtls}"
while [ $# -gt 0 ]; do
    case "$1" in
        --mqtls) mqtls="${2:?}"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        *) echo "ci.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ ! -d "$archives" ]; then
    echo "skipped: no NanoMQ source archives at $archives (set NANOMQ_ARCHIVES to run the buggy-vs-fixed verdict)"
    exit 0
fi
for tool in cmake ninja cc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "ci.sh: $tool is missing (apt-get install cmake ninja-build gcc libmbedtls-dev)" >&2; exit 2; }
done

uaf='SANITIZER heap-use-after-free | access: nng_mqtt_subscribe > connect_cb | freed: mqtts_tcptran_pipe_send_cb > nni_taskq_thread'
leak='LEAK direct-leak | allocated: nng_mqtt_subscribe > connect_cb'
rm -rf "$out"
"$here/campaign.sh" --states "old fixed" --scenario close-before-suback --repeat 10 \
    --timeout 10 --archives "$archives" --mqtls "$mqtls" --out "$out" \
    --expect "$here/expected-ci.tsv"

# The lines of a section ("New", "Fixed", ...) of a compare.md.
section() { awk -v s="## $2" 'index($0, s) == 1 {f = 1; next} /^## / {f = 0} f' "$1/compare.md"; }
fail() { echo "ci.sh: FAILED: $*" >&2; exit 1; }

printf '\n=== verdict: fixed against old ===\n'
status=0
"$mqtls" compare "$out/old" "$out/fixed" --accept "$leak" --report-dir "$out/verdict-fixed" >/dev/null || status=$?
[ "$status" -eq 0 ] || fail "comparing fixed with old exits $status, expected 0 (read $out/verdict-fixed/compare.md)"
section "$out/verdict-fixed" Fixed | grep -qF "${uaf//|/\\|}" || fail "the 1766 signature is not listed as fixed"
section "$out/verdict-fixed" "New but accepted" | grep -qF "${leak//|/\\|}" || fail "the aio leak is not the accepted new finding"
grep -E '^\*\*' "$out/verdict-fixed/compare.md"

printf '\n=== verdict: old against fixed ===\n'
status=0
"$mqtls" compare "$out/fixed" "$out/old" --report-dir "$out/verdict-old" >/dev/null || status=$?
[ "$status" -eq 1 ] || fail "comparing old with fixed exits $status, expected 1 (a new finding)"
section "$out/verdict-old" New | grep -qF "${uaf//|/\\|}" || fail "the 1766 signature is not listed as new"
grep -E '^\*\*' "$out/verdict-old/compare.md"
echo "ci.sh: the verdict holds"
