//! What the ledger costs per reference: one retain plus one release of a
//! live message, in counting mode and full mode, next to a plain
//! `std::sync::Arc` clone plus drop (the cost the C code pays for
//! `nni_msg_clone` + `nni_msg_free`). One thread, uncontended.
//!
//! Targets (DESIGN.md section 2): counting mode within 3x of `Arc`, full
//! mode within 10x. Run with `cargo bench --bench ledger`.

#[cfg(not(feature = "loom"))]
mod bench {
    use criterion::{BenchmarkId, Criterion, Throughput};
    use mqtls_harness::ledger::{self, Ledger, Mode, MsgKind};
    use mqtls_harness::sync::StdArc;
    use std::hint::black_box;

    fn retain_release(c: &mut Criterion) {
        // Full mode stamps the actor on every event; name it as the shell
        // would, so the figure is the one a real run pays.
        ledger::set_actor("bench");
        let mut g = c.benchmark_group("ledger_retain_release");
        g.throughput(Throughput::Elements(1));

        let reference = StdArc::new(bytes::Bytes::from_static(b"payload"));
        g.bench_function(BenchmarkId::new("pair", "std_arc"), |b| {
            b.iter(|| {
                let extra = StdArc::clone(black_box(&reference));
                drop(black_box(extra));
            })
        });

        for (name, mode) in [
            ("off", Mode::Off),
            ("counting", Mode::Counting),
            ("full", Mode::Full),
        ] {
            let l = Ledger::new(mode);
            let m = l.alloc(MsgKind::Publish, "payload".into(), "bench::alloc");
            g.bench_function(BenchmarkId::new("pair", name), |b| {
                b.iter(|| {
                    let extra = black_box(&m).retain("bench::retain");
                    black_box(&extra);
                    extra.release("bench::release");
                })
            });
            m.release("bench::free");
            // A bench that leaves violations behind measured a broken path.
            let audit = l.audit();
            assert!(
                audit.is_clean(),
                "bench workload misused the ledger: {:?}",
                audit.violations
            );
        }
        g.finish();
    }

    pub fn main() {
        let mut c = Criterion::default().configure_from_args();
        retain_release(&mut c);
        c.final_summary();
    }
}

#[cfg(not(feature = "loom"))]
fn main() {
    bench::main();
}

// loom's primitives panic outside a model; under the feature there is
// nothing meaningful to measure.
#[cfg(feature = "loom")]
fn main() {}
