#!/usr/bin/env bash
# Runs one fuzz target with the dictionary and the committed seed corpus:
#   fuzz/run.sh <target> [libFuzzer flags...]      e.g. -max_total_time=60 -jobs=2
# New inputs go to a scratch corpus (fuzz/target/corpus/<target>, or
# $MQTLS_FUZZ_WORK/<target>) so the committed fuzz/corpus/<target>/ stays
# small; crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?usage: fuzz/run.sh <target> [libFuzzer flags...]}"
shift
here="$PWD"
# Safe Rust cannot return a pointer to a dead stack frame, and the fake
# stacks that detection needs cost about a quarter of the exec/s.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=0}"
work="${MQTLS_FUZZ_WORK:-$here/target/corpus}/$target"
# codec_differential reads the same raw packets as codec_decode: it seeds
# from that corpus instead of keeping a copy.
seeds="$here/corpus/$target"
case "$target" in
    codec_differential) seeds="$here/corpus/codec_decode" ;;
esac
mkdir -p "$work" "$seeds"
# The kernel targets hit tens of thousands of features per input, where the
# entropic schedule's bookkeeping costs more than it finds: without it
# broker_stream runs ~1.5x the execs and reaches more coverage in the same
# time. A later -entropic=1 on the command line overrides this.
defaults=(-dict="$here/mqtt.dict")
build=()
case "$target" in
    broker_stream | client_stream | lifecycle_ops) defaults+=(-entropic=0) ;;
    # codec_decode spends nearly all its time in libFuzzer's bookkeeping and
    # in hooks, not in the codec. rustc runs the sancov pass after ASan, so
    # 93% of the 1-byte comparison hooks are ASan's own shadow checks, which
    # feed nothing without -use_value_profile; and the edges of crates other
    # than ours were a quarter of the features looked up after every run.
    # Without both: ~1.5x the exec/s at similar coverage (fuzz/README.md).
    # A build of its own, so the other targets keep theirs.
    codec_decode)
        build=(--no-trace-compares --target-dir "$here/target/codec_decode")
        export RUSTC_WRAPPER="${RUSTC_WRAPPER:-$here/harness-only-coverage.sh}"
        ;;
esac
exec cargo +nightly fuzz run "${build[@]}" "$target" "$work" "$seeds" -- "${defaults[@]}" "$@"
