#!/usr/bin/env bash
# The shim's verdict that .ci/run asserts: nanomq_cli at the first 1766 fix
# (fixed, NanoNNG c3b043d84) built with mqtls-shim (build.sh --variant shim,
# with the debug library cargo test already built), close-before-suback 3 times,
# checked against expected-shim-ci.tsv: the client recovers, AddressSanitizer
# says nothing, and the shim reports the SUBSCRIBE freed by the TLS write
# completion while the user aio still points at it, every time (the fix
# changed only the caller; the protocol still parks the SUBSCRIBE without a
# reference of its own). Then an ordinary subscribe on the same build
# (shim-subscribe.sh: the reference broker answers it normally): the same
# dangling slot reported, ASan silent.
# Skips (exit 0, with a message) when the archives are absent.
#
#   targets/nanomq/shim-ci.sh [--mqtls PATH] [--out DIR]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
archives="${NANOMQ_ARCHIVES:-$root/../shared/targets/nanomq}"
out="$root/target/nanomq/shim-ci"
mqtls="${MQTLS:-$root/target/debug/mqtls}"
while [ $# -gt 0 ]; do
    case "$1" in
        --mqtls) mqtls="${2:?}"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        *) echo "shim-ci.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ ! -d "$archives" ]; then
    echo "skipped: no NanoMQ source archives at $archives (set NANOMQ_ARCHIVES to run the shim's verdict)"
    exit 0
fi
rm -rf "$out"
# The archive `cargo test --workspace` left next to the shim's rlib: linking
# it costs nothing more, where `cargo build -p mqtls-shim` would compile the
# harness again with the features of a normal build.
if [ -z "${MQTLS_SHIM_LIB:-}" ]; then
    lib="$(ls -t "$root"/target/debug/deps/libmqtls_shim-*.a 2>/dev/null | head -1 || true)"
    [ -z "$lib" ] || export MQTLS_SHIM_LIB="$lib"
fi
MQTLS_SHIM_PROFILE="${MQTLS_SHIM_PROFILE:-debug}" "$here/campaign.sh" --states fixed --variant shim \
    --scenario close-before-suback --repeat 3 --timeout 10 --archives "$archives" \
    --mqtls "$mqtls" --out "$out" --expect "$here/expected-shim-ci.tsv"
"$here/shim-subscribe.sh" "$root/target/nanomq/fixed-shim/bin/nanomq_cli" --expect dangling \
    --mqtls "$mqtls" --out "$out/subscribe"
echo "shim-ci.sh: the verdict holds"
