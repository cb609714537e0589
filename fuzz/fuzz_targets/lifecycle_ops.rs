#![no_main]
//! `lifecycle_ops`: see `mqtls_harness::fuzzing::lifecycle_ops_with`. Faults follow
//! `MQTLS_FUZZ_FAULTS` (off when unset; see fuzz/README.md).

use libfuzzer_sys::fuzz_target;
use mqtls_harness::fuzzing::{FaultPolicy, Target};
use std::sync::LazyLock;

static POLICY: LazyLock<FaultPolicy> =
    LazyLock::new(|| FaultPolicy::from_env().unwrap_or_else(|e| panic!("MQTLS_FUZZ_FAULTS: {e}")));

fuzz_target!(|data: &[u8]| {
    if let Err(finding) = Target::LifecycleOps.run_with(data, &POLICY) {
        panic!("{finding}");
    }
});
