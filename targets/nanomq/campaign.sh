#!/usr/bin/env bash
# The NanoMQ campaign: builds nanomq_cli (and with --probe the nanomq broker)
# at each pinned state of targets/nanomq/states.tsv with sanitizers and TLS,
# runs `mqtls hostile-broker` against each client (and `mqtls probe` against
# each broker), and writes one table, scenario x state, with the comparison
# of each state with the one before it.
#
#   targets/nanomq/campaign.sh [options]
#
# Options:
#   --states "A B"     states to run, in order (default: every state of states.tsv)
#   --scenario NAME    a hostile-broker scenario (repeatable; default: all of them)
#   --repeat N         runs per scenario (default 10)
#   --timeout S        the client's time limit per run (default 15)
#   --suback-delay S   late-suback's delay, above nanomq_cli's 5 s subscribe timeout (default 7)
#   --probe            also probe each state's broker (mqtls probe --broker-cmd)
#   --expect FILE      check the table against an expected verdict; exit 1 when it fails
#   --out DIR          reports go to DIR/STATE, DIR/STATE-broker, DIR/table.md
#                      (default target/nanomq/campaign)
#   --mqtls PATH       the mqtls binary (default $MQTLS, else target/release/mqtls,
#                      else target/debug/mqtls, else built with cargo build --release)
#   --variant NAME     build variant (default asan; see build.sh)
#   --archives DIR | --git | --tree DIR
#                      where the sources come from (see build.sh; --tree with one state)
#
# Exit status: 0, or 1 when --expect is given and an expectation fails, or 2
# when something could not run. A state with findings is a result, not a
# failure: read the table.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
die() { echo "campaign.sh: $*" >&2; exit 2; }
say() { printf '\n=== %s ===\n' "$*"; }

states=""
scenarios=()
repeat=10
timeout=15
suback_delay=7
probe=0
expect=""
out="$root/target/nanomq/campaign"
mqtls="${MQTLS:-}"
build_opts=()

while [ $# -gt 0 ]; do
    case "$1" in
        --states) states="${2:?}"; shift 2 ;;
        --scenario) scenarios+=(--scenario "${2:?}"); shift 2 ;;
        --repeat) repeat="${2:?}"; shift 2 ;;
        --timeout) timeout="${2:?}"; shift 2 ;;
        --suback-delay) suback_delay="${2:?}"; shift 2 ;;
        --probe) probe=1; shift ;;
        --expect) expect="$(cd "$(dirname "${2:?}")" && pwd)/$(basename "$2")"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        --mqtls) mqtls="${2:?}"; shift 2 ;;
        --variant) build_opts+=(--variant "${2:?}"); shift 2 ;;
        --archives|--tree) build_opts+=("$1" "${2:?}"); shift 2 ;;
        --git) build_opts+=(--git); shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ -n "$states" ] || states="$(awk -F'\t' '!/^#/ && NF {printf "%s ", $1}' "$here/states.tsv")"
[ ${#scenarios[@]} -gt 0 ] || scenarios=(--all)
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if [ -z "$mqtls" ]; then
    for m in "$root/target/release/mqtls" "$root/target/debug/mqtls"; do
        [ -x "$m" ] && { mqtls="$m"; break; }
    done
fi
if [ -z "$mqtls" ]; then
    say "building mqtls (cargo build --release)"
    (cd "$root" && cargo build --release --quiet)
    mqtls="$root/target/release/mqtls"
fi
[ -x "$mqtls" ] || die "no mqtls binary at $mqtls"

# A client stuck at the limit: where each of its threads waits is the evidence.
stuck_opts=()
if command -v gdb >/dev/null 2>&1; then
    stuck_opts=(--on-stuck "gdb -p {pid} -batch -ex 'thread apply all bt 16'")
fi

targets="nanomq_cli"
[ "$probe" = 1 ] && targets="nanomq_cli nanomq"
# A target built with the shim (--variant shim) reads its suppressions: the
# NanoMQ idioms explained in shim.supp. The clients and brokers inherit it.
export MQTLS_SHIM_SUPPRESSIONS="${MQTLS_SHIM_SUPPRESSIONS:-$here/shim.supp}"
started=$SECONDS
columns=()
previous=""
for state in $states; do
    say "$state: building $targets"
    bin="$("$here/build.sh" "$state" --targets "$targets" "${build_opts[@]}" | tail -1)"
    [ -x "$bin/nanomq_cli" ] || die "build.sh did not produce $bin/nanomq_cli"

    say "$state: hostile-broker against nanomq_cli sub (${scenarios[*]}, $repeat run(s) each)"
    # 1 means findings: a result, read from the report.
    "$mqtls" hostile-broker "${scenarios[@]}" --repeat "$repeat" \
        --timeout "$timeout" --suback-delay "$suback_delay" --leak-check-on-stop "${stuck_opts[@]}" \
        --client-cmd "$bin/nanomq_cli sub -h {host} -p {port} -t topic3 -s --cafile {cafile}" \
        --report-dir "$out/$state" >"$out/$state.log" 2>&1 \
        || [ $? -eq 1 ] || { tail -20 "$out/$state.log" >&2; die "hostile-broker failed for $state (log: $out/$state.log)"; }
    grep -E '^\| [a-z0-9-]+ \|' "$out/$state/hostile-broker.md" | cut -c1-160 || true
    columns+=("$state=$out/$state")

    if [ "$probe" = 1 ]; then
        say "$state: probe against the nanomq broker"
        pki="$out/pki"
        [ -f "$pki/ca.pem" ] || "$mqtls" certs --out "$pki" >/dev/null
        port=$((20000 + RANDOM % 20000))
        conf="$out/$state-broker.conf"
        # Every listener on loopback ports of its own: recent nanomq always
        # starts a wss listener (on 8086 unless told), which fails the start
        # when anything else holds that port.
        cat >"$conf" <<EOF
mqtt {
    max_packet_size = 1MB
}
listeners.tcp {
    bind = "127.0.0.1:$((port + 1))"
}
listeners.wss {
    bind = "127.0.0.1:$((port + 2))"
}
listeners.ssl {
    bind = "127.0.0.1:$port"
    keyfile = "$pki/server.key"
    certfile = "$pki/server.pem"
    cacertfile = "$pki/ca.pem"
    verify_peer = false
    fail_if_no_peer_cert = false
}
log {
    to = [console]
    level = warn
}
auth {
    allow_anonymous = true
}
EOF
        "$mqtls" probe -h 127.0.0.1 -p "$port" --cafile "$pki/ca.pem" --timeout 2 \
            --broker-cmd "$bin/nanomq start --conf $conf" --leak-check-on-stop \
            --report-dir "$out/$state-broker" >"$out/$state-broker.log" 2>&1 \
            || [ $? -eq 1 ] || { tail -20 "$out/$state-broker.log" >&2; die "probe failed for $state (log: $out/$state-broker.log)"; }
        grep -E '^(Broker under test|\| malformed)' "$out/$state-broker/probe.md" | cut -c1-160 || true
        columns+=("$state-broker=$out/$state-broker")
    fi

    if [ -n "$previous" ]; then
        say "$previous -> $state: what changed"
        "$mqtls" compare "$out/$previous" "$out/$state" --report-dir "$out/compare-$previous-$state" \
            | grep -E '^\*\*|^## |^\| `' | cut -c1-160 || true
    fi
    previous="$state"
done

say "the table (scenario x state)"
status=0
if [ -n "$expect" ]; then
    "$mqtls" compare --table "${columns[@]}" --expect "$expect" --report-dir "$out" || status=$?
else
    "$mqtls" compare --table "${columns[@]}" --report-dir "$out" || status=$?
fi
echo "campaign.sh: done in $((SECONDS - started)) s; reports in $out"
exit "$status"
