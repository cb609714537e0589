#![no_main]
//! `codec_differential`: any bytes, decoded as a 3.1.1 and as a 5.0 stream
//! by our codec and by rumqttc's; a disagreement that the allowlist does
//! not explain is a crash. The oracle is `tests/differential/`, shared with
//! `tests/codec_differential.rs`, which replays this target's regressions.

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/differential/mod.rs"]
mod differential;

fuzz_target!(|data: &[u8]| {
    if let Err(d) = differential::check(data) {
        panic!("{d}");
    }
});
