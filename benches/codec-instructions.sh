#!/bin/sh
# Instruction counts of the codec bench, ours against rumqttc, per mix:
# immune to machine load, unlike the criterion timings. Needs valgrind.
# Usage: benches/codec-instructions.sh [mix filter, e.g. v5/publish]
set -eu
filter="${1:-}"
bin=$(cargo bench --bench codec --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*codec-[^"]*\)".*/\1/p' | tail -n 1)
out=$(mktemp -d)
printf '%-5s %-14s %12s %12s %7s   %12s %12s %7s\n' ver mix "dec ours" "dec rumqttc" ratio "enc ours" "enc rumqttc" ratio
for mix in v311/publish_16B v311/publish_1KiB v311/publish_64KiB v311/control \
    v5/publish_16B v5/publish_1KiB v5/publish_64KiB v5/control; do
    case "$mix" in *"$filter"*) ;; *) continue ;; esac
    CODEC_BENCH_ONCE="$mix" valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" >/dev/null 2>&1
    callgrind_annotate --inclusive=yes "$out/cg" 2>/dev/null | awk -v mix="$mix" '
        function num(s) { gsub(",", "", s); return s + 0 }
        /codec::ours_decode/ { od = num($1) }
        /codec::theirs_decode/ { td = num($1) }
        /codec::ours_encode/ { oe = num($1) }
        /codec::theirs_encode/ { te = num($1) }
        END {
            split(mix, p, "/")
            printf "%-5s %-14s %12d %12d %6.2fx   %12d %12d %6.2fx\n", p[1], p[2], od, td, td / od, oe, te, te / oe
        }'
done
rm -r "$out"
