#![no_main]
//! `codec_roundtrip`: see `mqtls_harness::fuzzing::codec_roundtrip`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(finding) = mqtls_harness::fuzzing::codec_roundtrip(data) {
        panic!("{finding}");
    }
});
