#!/bin/sh
# Instruction counts of the codec bench, ours against rumqttc, per mix:
# immune to machine load, unlike the criterion timings. Needs valgrind.
# Usage: benches/codec-instructions.sh [mix filter, e.g. v5/ or puback]
# Each side decodes and encodes the mix's stream twice (the first pass
# warms the allocator); "per pk" is instructions per packet, both passes.
set -eu
filter="${1:-}"
bin=$(cargo bench --bench codec --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*codec-[^"]*\)".*/\1/p' | tail -n 1)
out=$(mktemp -d)
trap 'rm -r "$out"' EXIT
printf '%-5s %-14s %9s %9s %7s   %9s %9s %7s   (instructions per packet)\n' \
    ver mix "dec ours" "dec theirs" ratio "enc ours" "enc theirs" ratio
CODEC_BENCH_LIST=1 "$bin" | while read -r mix packets; do
    case "$mix" in *"$filter"*) ;; *) continue ;; esac
    CODEC_BENCH_ONCE="$mix" valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" >/dev/null 2>&1
    callgrind_annotate --inclusive=yes "$out/cg" 2>/dev/null | awk -v mix="$mix" -v n="$packets" '
        function num(s) { gsub(",", "", s); return s + 0 }
        /codec::ours_decode/ { od = num($1) }
        /codec::theirs_decode/ { td = num($1) }
        /codec::ours_encode/ { oe = num($1) }
        /codec::theirs_encode/ { te = num($1) }
        END {
            split(mix, p, "/")
            n *= 2
            printf "%-5s %-14s %9.1f %9.1f %6.2fx   %9.1f %9.1f %6.2fx\n", p[1], p[2], od / n, td / n, td / od, oe / n, te / n, te / oe
        }'
done
