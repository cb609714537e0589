#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: the cargo-fuzz targets of fuzz/, each with
# its seed corpus (zipped) and the MQTT dictionary, into $OUT.
# Locally: SRC=/tmp/src OUT=/tmp/out bash .clusterfuzzlite/build.sh
# (with $SRC/mqtls-harness a checkout, cargo-fuzz and a nightly toolchain).
cd "$SRC/mqtls-harness/fuzz"
targets=(codec_decode codec_roundtrip broker_stream client_stream lifecycle_ops)
cargo +nightly fuzz build -O --debug-assertions
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
for t in "${targets[@]}"; do
    cp "target/$triple/release/$t" "$OUT/"
    cp mqtt.dict "$OUT/$t.dict"
    (cd "corpus/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
    # The kernel targets run with the faults off, as in CI; entropic off is
    # what fuzz/run.sh uses for them (see fuzz/README.md).
    case "$t" in
        broker_stream | client_stream | lifecycle_ops)
            printf '[libfuzzer]\nentropic = 0\n' > "$OUT/$t.options" ;;
        *) printf '[libfuzzer]\n' > "$OUT/$t.options" ;;
    esac
    printf 'dict = %s.dict\n' "$t" >> "$OUT/$t.options"
done
