#!/usr/bin/env bash
# An ordinary subscribe, answered normally, seen by mqtls-shim and by
# AddressSanitizer in the same run: `nanomq_cli sub -t topic3` over TLS
# against the reference broker (`mqtls broker`), a PUBLISH on topic3 until
# the client prints it (so the SUBACK arrived and the subscription works),
# then SIGTERM. Prints the shim's summary line, each finding's diagnosis and
# timeline, and what ASan said.
#
#   targets/nanomq/shim-subscribe.sh NANOMQ_CLI [options]
#
# NANOMQ_CLI is a client built with `build.sh STATE --variant shim`.
#
# Options:
#   --expect WHAT   check the run: `dangling` (the shim reports the 1766 slot,
#                   the SUBSCRIBE freed by the TLS write completion while the
#                   user aio holds it, and ASan reports nothing) or `clean`
#                   (no shim finding, no ASan report); exit 1 when it fails
#   --out DIR       the run's files (default target/nanomq/shim-subscribe)
#   --mqtls BIN     the mqtls binary (default $MQTLS, else target/release/mqtls,
#                   else target/debug/mqtls)
#
# Exit status: 0, 1 when --expect fails, 2 when something could not run.
set -euo pipefail

die() { echo "shim-subscribe.sh: $*" >&2; exit 2; }

root="$(cd "$(dirname "$0")/../.." && pwd)"
[ $# -ge 1 ] || die "usage: shim-subscribe.sh NANOMQ_CLI [--expect dangling|clean] [--out DIR] [--mqtls BIN]"
case "$1" in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
cli="$1"; shift
expect=""
out="$root/target/nanomq/shim-subscribe"
mqtls="${MQTLS:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --expect) expect="${2:?}"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        --mqtls) mqtls="${2:?}"; shift 2 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
case "$expect" in ""|dangling|clean) ;; *) die "--expect dangling or clean, not $expect" ;; esac
if [ -z "$mqtls" ]; then
    for m in "$root/target/release/mqtls" "$root/target/debug/mqtls"; do
        [ -x "$m" ] && { mqtls="$m"; break; }
    done
fi
[ -x "$cli" ] || die "$cli is not an executable (build it with build.sh STATE --variant shim)"
[ -x "${mqtls:-}" ] || die "no mqtls binary (cargo build, or --mqtls BIN)"
command -v jq >/dev/null 2>&1 || die "jq is not installed (apt-get install jq)"

rm -rf "$out"; mkdir -p "$out"
out="$(cd "$out" && pwd)"
"$mqtls" certs --out "$out/pki" >/dev/null || die "mqtls certs failed"

broker_pid=""; cli_pid=""
cleanup() {
    [ -z "$cli_pid" ] || kill -KILL "$cli_pid" 2>/dev/null || true
    [ -z "$broker_pid" ] || kill "$broker_pid" 2>/dev/null || true
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
"$mqtls" broker --bind 127.0.0.1 -p "$port" --cert "$out/pki/server.pem" --key "$out/pki/server.key" \
    --duration 60 >"$out/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do
    grep -q "TLS on" "$out/broker.log" 2>/dev/null && break
    kill -0 "$broker_pid" 2>/dev/null || { cat "$out/broker.log" >&2; die "mqtls broker did not start"; }
    sleep 0.1
done

MQTLS_SHIM_REPORT="$out/shim.json" "$cli" sub -h 127.0.0.1 -p "$port" -t topic3 -s --cafile "$out/pki/ca.pem" \
    >"$out/client.out" 2>"$out/client.err" &
cli_pid=$!
started=$SECONDS
received=0
while [ $((SECONDS - started)) -lt 30 ]; do
    kill -0 "$cli_pid" 2>/dev/null || break
    "$mqtls" pub -h 127.0.0.1 -p "$port" --cafile "$out/pki/ca.pem" -t topic3 -m hello-from-mqtls >/dev/null 2>&1 || true
    if grep -q hello-from-mqtls "$out/client.out"; then received=1; break; fi
    sleep 0.5
done
kill -TERM "$cli_pid" 2>/dev/null || true
wait "$cli_pid" 2>/dev/null || true
cli_pid=""
kill "$broker_pid" 2>/dev/null || true
wait "$broker_pid" 2>/dev/null || true
broker_pid=""

echo "client: $cli sub -t topic3 (report $out/shim.json)"
if [ "$received" = 1 ]; then
    echo "subscribe: answered, a PUBLISH on topic3 reached the client after $((SECONDS - started)) s"
else
    echo "subscribe: no PUBLISH reached the client in 30 s (see $out/client.out, $out/client.err)"
fi
grep '^mqtls-shim' "$out/client.err" || echo "mqtls-shim: no summary line (is $cli built with --variant shim?)"
[ -f "$out/shim.json" ] || die "the shim wrote no report at $out/shim.json"
findings="$(jq '.findings | length' "$out/shim.json")"
jq -r '.findings[] | "\n\(.kind): \(.diagnosis)\n\(.timeline)"' "$out/shim.json"
jq -r '(.suppressed // [])[] | "suppressed \(.finding.kind) (\(.rule)): \(.reason)"' "$out/shim.json"
asan="$(grep -c 'ERROR: AddressSanitizer' "$out/client.err" || true)"
if [ "$asan" = 0 ]; then
    echo "AddressSanitizer: nothing reported"
else
    echo "AddressSanitizer: $asan report(s):"
    grep -A3 'ERROR: AddressSanitizer' "$out/client.err"
fi

[ -n "$expect" ] || exit 0
[ "$received" = 1 ] || { echo "expected an answered subscribe: FAILED"; exit 1; }
if [ "$expect" = dangling ]; then
    # The 1766 slot: SUBSCRIBE from nng_mqtt_subscribe, freed by the TLS
    # write completion while the user aio still pointed at it.
    hit="$(jq '[.findings[] | select(.kind == "FreedWhileInSlot" and (.subject | endswith(" SUBSCRIBE"))
        and .sites.origin.function == "nng_mqtt_subscribe"
        and any(.sites.released[]; .function == "mqtts_tcptran_pipe_send_cb"))] | length' "$out/shim.json")"
    [ "$hit" -ge 1 ] && [ "$asan" = 0 ] || { echo "expected the 1766 slot and ASan silent: FAILED"; exit 1; }
    echo "expected the 1766 slot and ASan silent: ok"
else
    [ "$findings" = 0 ] && [ "$asan" = 0 ] || { echo "expected a clean run: FAILED"; exit 1; }
    echo "expected a clean run: ok"
fi
