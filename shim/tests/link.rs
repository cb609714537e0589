//! The shim linked into a C program the way a NanoNNG target links it
//! (`-Wl,--wrap=` every name of `wrapped.txt`, then `libmqtls_shim.a`), against a
//! stand-in for NanoNNG's core (`tests/c/fake_nng.c`). The program
//! (`tests/c/program.c`) makes NanoMQ 1766's ownership mistake on an
//! ordinary subscribe, or not: the report must say so at exit and on
//! SIGTERM, and the program must still die of the signal it was sent.
//!
//! Needs a C compiler (`cc`); says so and skips when there is none.

use mqtls_harness::report::shim::ShimReport;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The staticlib cargo built with this test: the lib target is compiled
/// once as rlib and staticlib, next to each other in `deps/` (only `cargo
/// build` copies the archive up to `target/<profile>/`), so it is the newest
/// `libmqtls_shim-<hash>.a` with an rlib of the same hash.
fn staticlib() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let mut archives: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(deps)
        .expect("deps directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("libmqtls_shim-")
                && name.ends_with(".a")
                && p.with_extension("rlib").exists()
        })
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    archives.sort();
    archives
        .pop()
        .map(|(_, p)| p)
        .expect("cargo built libmqtls_shim-<hash>.a next to its rlib")
}

/// Links the test program with the shim; `extra` are compiler flags.
/// `None`: no C compiler, or one that cannot build with `extra`.
fn link(name: &str, extra: &[&str]) -> Option<PathBuf> {
    if Command::new("cc").arg("--version").output().is_err() {
        eprintln!("SKIP: no C compiler (`cc`) to link the shim into a test program");
        return None;
    }
    let lib = staticlib();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shim-link");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let c = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c");
    let mut cmd = Command::new("cc");
    cmd.args(["-g", "-fno-omit-frame-pointer"])
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg(c.join("program.c"))
        .arg(c.join("fake_nng.c"));
    for name in mqtls_shim::wrapped() {
        cmd.arg(format!("-Wl,--wrap={name}"));
    }
    cmd.arg(&lib)
        .args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"]);
    let built = cmd.output().unwrap();
    if !built.status.success() && !extra.is_empty() {
        eprintln!(
            "SKIP: cc cannot build with {extra:?}: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        return None;
    }
    assert!(
        built.status.success(),
        "linking the shim failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(out)
}

/// The linked program, built once for all tests (None: no C compiler).
fn program() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| link("program", &[])).as_deref()
}

/// Runs the program with `args`; returns its exit status, stderr and report.
fn run(
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<(std::process::ExitStatus, String, Option<ShimReport>)> {
    let program = program()?;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(program)
        .args(args)
        .env("MQTLS_SHIM_REPORT", &report)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let parsed = std::fs::read_to_string(&report)
        .ok()
        .map(|j| ShimReport::parse(&j).unwrap());
    if let Some(r) = &parsed {
        assert!(
            dir.path().join("report.html").exists(),
            "no timeline page next to the report of {}",
            r.program
        );
    }
    Some((
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        parsed,
    ))
}

#[test]
fn the_1766_mistake_is_reported_at_exit_with_its_c_call_sites() {
    let Some((status, stderr, report)) = run(&["buggy", "exit"], &[]) else {
        return;
    };
    assert!(status.success(), "{status}: {stderr}");
    let r = report.expect("a report at exit");
    assert_eq!(r.trigger, "exit");
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f.kind, "FreedWhileInSlot");
    assert_eq!(f.subject, "msg #1 SUBSCRIBE");
    let sites = &f.sites;
    assert_eq!(
        sites.origin.as_ref().map(|s| s.function.as_str()),
        Some("main")
    );
    assert_eq!(sites.aliased[0].function, "main");
    assert_eq!(sites.released[0].function, "write_done");
    assert!(
        sites.released[0]
            .label
            .starts_with("write_done (program.c:"),
        "{:?}",
        sites.released[0]
    );
    for needle in [
        "allocated by `main (program.c:",
        "freed by `nng:task` at `write_done (program.c:",
        "then overwritten by `nng:task#2` at `suback_arrives (program.c:",
        "(op #1 SUBSCRIBE, in progress)",
    ] {
        assert!(
            f.diagnosis.contains(needle),
            "{needle:?} not in {}",
            f.diagnosis
        );
    }
    assert!(
        stderr.contains("mqtls-shim (exit): 1 finding(s) (1 FreedWhileInSlot)"),
        "{stderr}"
    );
    assert_eq!(r.stats.live, 0, "{:?}", r.stats);
}

#[test]
fn the_report_is_written_on_sigterm_and_the_program_still_dies_of_it() {
    use std::os::unix::process::ExitStatusExt;
    let Some((status, stderr, report)) = run(&["buggy", "term"], &[]) else {
        return;
    };
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}: {stderr}");
    let r = report.expect("a report on SIGTERM");
    assert_eq!(r.trigger, "signal 15");
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
}

#[test]
fn the_fixed_protocol_is_clean_and_the_shim_can_be_switched_off() {
    let Some((status, _, report)) = run(&["fixed", "exit"], &[]) else {
        return;
    };
    assert!(status.success());
    let r = report.expect("a report");
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.counters.messages, 2);

    let Some((status, stderr, report)) = run(&["buggy", "exit"], &[("MQTLS_SHIM", "off")]) else {
        return;
    };
    assert!(status.success());
    assert!(report.is_none(), "switched off, yet it wrote a report");
    assert!(!stderr.contains("mqtls-shim"), "{stderr}");
}

/// The shim keeps the target's pointers masked: LeakSanitizer still finds
/// a message and an aio the program lost, although the shim saw both.
#[test]
fn the_shim_hides_no_leak_from_leaksanitizer() {
    let Some(asan) = link("program-asan", &["-fsanitize=address"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(&asan)
        .arg("leak")
        .env("MQTLS_SHIM_REPORT", dir.path().join("r.json"))
        .env("ASAN_OPTIONS", "detect_leaks=1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR: LeakSanitizer: detected memory leaks"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nni_aio_alloc"),
        "the aio's leak is missing: {stderr}"
    );
    assert!(
        stderr.contains("nni_msg_alloc"),
        "the message's leak is missing: {stderr}"
    );
    // And none of the shim's own memory is taken for a leak.
    assert!(!stderr.contains("mqtls_shim"), "the shim leaks: {stderr}");
    let r =
        ShimReport::parse(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r.held_at_stop.len(), 1, "{:?}", r.held_at_stop);
}
