#![no_main]
//! `codec_decode`: see `mqtls_harness::fuzzing::codec_decode`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(finding) = mqtls_harness::fuzzing::codec_decode(data) {
        panic!("{finding}");
    }
});
