#!/usr/bin/env bash
# RUSTC_WRAPPER for a fuzz build whose coverage counts mqtls-harness only:
# every other crate (bytes, libfuzzer-sys, the target's own few lines) is
# compiled without the `sancov-module` pass, still with ASan. In codec_decode
# those crates were a quarter of the edges an execution hits, each a feature
# libFuzzer looks up after every run, and none of them is code under test.
# fuzz/run.sh sets this for codec_decode; see fuzz/README.md.
rustc="$1"
shift
name=""
prev=""
for a in "$@"; do
    [ "$prev" = "--crate-name" ] && name="$a"
    prev="$a"
done
if [ "$name" = "mqtls_harness" ]; then
    exec "$rustc" "$@"
fi
args=()
for a in "$@"; do
    [ "$a" = "-Cpasses=sancov-module" ] || args+=("$a")
done
exec "$rustc" "${args[@]}"
