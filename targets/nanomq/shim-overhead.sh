#!/usr/bin/env bash
# What the shim costs the client: `nanomq_cli pub` sending N QoS 1
# PUBLISHes over TLS to the reference broker (each one parked until its
# PUBACK, 1 ms apart), then exiting; without and with the shim, runs
# interleaved (A B A B ...) so that both see the same machine.
#
#   targets/nanomq/shim-overhead.sh WITHOUT_BIN WITH_BIN [options]
#
# WITHOUT_BIN and WITH_BIN are two nanomq_cli builds of one tree that
# differ only by the shim (e.g. target/nanomq/recent-asan/bin/nanomq_cli and
# target/nanomq/recent-shim/bin/nanomq_cli).
#
# Options:
#   --messages N   PUBLISHes per run (default 2000)
#   --rounds R     runs of each binary (default 5)
#   --mqtls BIN    the mqtls binary (default: target/release/mqtls)
#
# Per run it measures the client's run time (wall, start to exit) and its
# CPU time (user + system). The shim's report goes to a scratch file; its
# summary line is shown once.
set -euo pipefail

die() { echo "shim-overhead.sh: $*" >&2; exit 2; }

[ $# -ge 2 ] || die "usage: shim-overhead.sh WITHOUT_BIN WITH_BIN [--messages N] [--rounds R] [--mqtls BIN]"
without="$1"; with="$2"; shift 2
root="$(cd "$(dirname "$0")/../.." && pwd)"
messages=2000
rounds=5
mqtls="$root/target/release/mqtls"
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) messages="${2:?}"; shift 2 ;;
        --rounds) rounds="${2:?}"; shift 2 ;;
        --mqtls) mqtls="${2:?}"; shift 2 ;;
        *) die "unknown option $1" ;;
    esac
done
for b in "$without" "$with" "$mqtls"; do
    [ -x "$b" ] || die "$b is not an executable (build it first)"
done

work="$(mktemp -d)"
broker_pid=""
cleanup() {
    [ -z "$broker_pid" ] || kill "$broker_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$mqtls" certs --out "$work/pki" >/dev/null
port=$((20000 + RANDOM % 20000))
"$mqtls" broker --bind 127.0.0.1 -p "$port" --cert "$work/pki/server.pem" \
    --key "$work/pki/server.key" >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 50); do
    grep -q "$port" "$work/broker.log" 2>/dev/null && break
    sleep 0.1
done

# One run: prints "cpu_seconds wall_seconds".
run() {
    local bin="$1" t0 t1 cpu
    t0=$(date +%s.%N)
    # nanomq_cli pub exits 1 after its last publish: the status says nothing.
    cpu=$( { TIMEFORMAT='%U %S'; time (MQTLS_SHIM_REPORT="$work/shim.json" "$bin" pub \
        -h 127.0.0.1 -p "$port" -t bench -m hello -q 1 -L "$messages" -I 1 -s \
        --cafile "$work/pki/ca.pem" >"$work/pub.out" 2>"$work/pub.err" || true); } 2>&1 | tail -1)
    t1=$(date +%s.%N)
    grep -q "connect result: 0" "$work/pub.out" || die "$bin did not connect: $(tail -3 "$work/pub.out" "$work/pub.err")"
    echo "$(echo "$cpu" | awk '{ printf "%.3f", $1 + $2 }') $(echo "$t1 - $t0" | bc)"
}

echo "nanomq_cli pub, $messages QoS 1 PUBLISHes over TLS 1 ms apart per run, $rounds runs each, interleaved"
printf "%-8s %-8s %10s %10s\n" round binary cpu_s wall_s
sum_a_cpu=0; sum_b_cpu=0; sum_a_wall=0; sum_b_wall=0
for r in $(seq "$rounds"); do
    read -r a_cpu a_wall < <(run "$without")
    printf "%-8s %-8s %10s %10.3f\n" "$r" without "$a_cpu" "$a_wall"
    read -r b_cpu b_wall < <(run "$with")
    printf "%-8s %-8s %10s %10.3f\n" "$r" with "$b_cpu" "$b_wall"
    sum_a_cpu=$(echo "$sum_a_cpu + $a_cpu" | bc); sum_b_cpu=$(echo "$sum_b_cpu + $b_cpu" | bc)
    sum_a_wall=$(echo "$sum_a_wall + $a_wall" | bc); sum_b_wall=$(echo "$sum_b_wall + $b_wall" | bc)
done
grep -h '^mqtls-shim' "$work/pub.err" | tail -1 || true
echo "client CPU time, with / without the shim: $(echo "scale=2; $sum_b_cpu / $sum_a_cpu" | bc)x ($sum_b_cpu s / $sum_a_cpu s)"
echo "client run time, with / without:          $(echo "scale=2; $sum_b_wall / $sum_a_wall" | bc)x ($sum_b_wall s / $sum_a_wall s)"
