#![cfg(not(feature = "loom"))]
//! The hostile broker's verdict end to end, with stand-in clients whose
//! behaviour is known: one that dies with the AddressSanitizer report of
//! NanoMQ issue 1766 (the buggy build), our own `mqtls sub` (a correct
//! client), and a real AddressSanitizer program that leaks and never exits
//! (LeakSanitizer must report it on the stop signal). The reports they give
//! must compare as the issue's fix does: fixed one way, new the other.

mod common;

use common::{run, text};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The 1766 report as NanoNNG 87253717b's nanomq_cli prints it (trimmed).
const ASAN_1766: &str = "\
=================================================================
==19835==ERROR: AddressSanitizer: heap-use-after-free on address 0x60f00001073c at pc 0x55f5a90ea415 bp 0x7fc100df6860 sp 0x7fc100df6858
WRITE of size 4 at 0x60f00001073c thread T9
    #0 0x55f5a90ea414 in nni_atomic_dec_nv /src/nng/src/platform/posix/posix_atomic.c:120
    #1 0x55f5a90ba736 in nni_msg_free /src/nng/src/core/message.c:457
    #2 0x55f5a9094250 in nng_msg_free /src/nng/src/nng.c:1522
    #3 0x55f5a914e12d in nng_mqtt_subscribe /src/nng/src/supplemental/mqtt/mqtt_public.c:986
    #4 0x55f5a906b787 in connect_cb /src/nanomq_cli/client.c:1433
    #5 0x55f5a90dcd82 in nni_taskq_thread /src/nng/src/core/taskq.c:50

freed by thread T7 here:
    #0 0x7fc1078b76a8 in __interceptor_free ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:52
    #1 0x55f5a90e9103 in nni_free /src/nng/src/platform/posix/posix_alloc.c:33
    #2 0x55f5a90ba9ec in nni_msg_free /src/nng/src/core/message.c:465
    #3 0x55f5a92944cf in mqtts_tcptran_pipe_send_cb /src/nng/src/mqtt/transport/tls/mqtt_tls.c:515
    #4 0x55f5a90dcd82 in nni_taskq_thread /src/nng/src/core/taskq.c:50

previously allocated by thread T9 here:
    #0 0x7fc1078b83b7 in __interceptor_calloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:77
    #1 0x55f5a914df14 in nng_mqtt_subscribe /src/nng/src/supplemental/mqtt/mqtt_public.c:966

SUMMARY: AddressSanitizer: heap-use-after-free /src/nng/src/platform/posix/posix_atomic.c:120 in nni_atomic_dec_nv
Shadow bytes around the buggy address:
==19835==ABORTING
";

const UAF: &str = "SANITIZER heap-use-after-free | access: nng_mqtt_subscribe > connect_cb | freed: mqtts_tcptran_pipe_send_cb > nni_taskq_thread";

fn hostile(client: &str, extra: &[&str], dir: &Path) -> (Option<i32>, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtls"));
    cmd.args([
        "hostile-broker",
        "--scenario",
        "close-before-suback",
        "--timeout",
        "4",
    ])
    .args(extra)
    .args(["--client-cmd", client, "--report-dir"])
    .arg(dir);
    let out = run(&mut cmd, Duration::from_secs(120));
    let raw = std::fs::read_to_string(dir.join("hostile-broker.json"))
        .unwrap_or_else(|e| panic!("no report ({e}): {}", text(&out)));
    (out.status.code(), serde_json::from_str(&raw).unwrap())
}

fn compare(baseline: &Path, candidate: &Path, dir: &Path) -> (Option<i32>, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtls"));
    cmd.arg("compare")
        .arg(baseline)
        .arg(candidate)
        .arg("--report-dir")
        .arg(dir);
    let out = run(&mut cmd, Duration::from_secs(30));
    let raw = std::fs::read_to_string(dir.join("compare.json")).unwrap();
    (out.status.code(), serde_json::from_str(&raw).unwrap())
}

fn texts(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["signature"]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_buggy_client_and_a_correct_one_compare_as_fixed_and_new() {
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("asan.txt");
    std::fs::write(&report, ASAN_1766).unwrap();
    let buggy_dir = work.path().join("buggy");
    let fixed_dir = work.path().join("fixed");

    // The buggy client dies of the report in every run: CRASHED 3/3, the
    // report counted once with its rate, quoted whole.
    let buggy = format!("cat '{}' >&2; exit 1", report.display());
    let (code, json) = hostile(&buggy, &["--repeat", "3"], &buggy_dir);
    assert_eq!(code, Some(1), "{json:#}");
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json:#}");
    assert_eq!(findings[0]["signature"]["text"], UAF);
    assert_eq!(findings[0]["seen"][0]["runs"], 3);
    assert_eq!(findings[0]["seen"][0]["of"], 3);
    assert_eq!(findings[0]["stacks"][1]["role"], "freed");
    assert!(
        findings[0]["report"]
            .as_str()
            .unwrap()
            .ends_with("in nni_atomic_dec_nv")
    );
    let scenario = &json["scenarios"][0];
    assert_eq!(scenario["outcomes"][0]["label"], "CRASHED");
    assert_eq!(scenario["outcomes"][0]["count"], 3);
    let md = std::fs::read_to_string(buggy_dir.join("hostile-broker.md")).unwrap();
    assert!(md.contains("3/3 SANITIZER heap-use-after-free"), "{md}");
    assert!(
        md.contains("previously allocated by thread T9 here:"),
        "{md}"
    );

    // Our own client gets past the close and passes.
    let correct = format!(
        "{} sub -h {{host}} -p {{port}} -t t --cafile {{cafile}} -C 1 --timeout 2",
        env!("CARGO_BIN_EXE_mqtls")
    );
    let (code, json) = hostile(&correct, &[], &fixed_dir);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["findings"], serde_json::json!([]));

    let (code, c) = compare(&buggy_dir, &fixed_dir, &work.path().join("c1"));
    assert_eq!(code, Some(0), "{c:#}");
    assert_eq!(texts(&c["fixed"]), [UAF]);
    assert!(texts(&c["new"]).is_empty());
    let (code, c) = compare(&fixed_dir, &buggy_dir, &work.path().join("c2"));
    assert_eq!(code, Some(1), "{c:#}");
    assert_eq!(texts(&c["new"]), [UAF]);
}

/// A program built with AddressSanitizer that leaks and then waits forever,
/// as `nanomq_cli sub` does.
const LEAKER: &str = r#"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void *keep;
__attribute__((noinline)) static void leak_a_subscription(void) {
    char *p = malloc(456);
    memset(p, 1, 456);
    keep = p;
    keep = NULL; /* the only reference is gone */
}
int main(void) {
    leak_a_subscription();
    for (;;) pause();
}
"#;

#[test]
fn a_client_that_never_exits_reports_its_leak_on_the_stop_signal() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("leaker.c");
    let bin = work.path().join("leaker");
    std::fs::write(&src, LEAKER).unwrap();
    let built = Command::new("cc")
        .args([
            "-fsanitize=address",
            "-fno-omit-frame-pointer",
            "-g",
            "-O0",
            "-o",
        ])
        .arg(&bin)
        .arg(&src)
        .output();
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    match built {
        Ok(o) if o.status.success() => {}
        other => {
            assert!(
                !ci,
                "CI is set but cc cannot build with AddressSanitizer: {other:?}"
            );
            eprintln!("skipped: cc cannot build with -fsanitize=address: {other:?}");
            return;
        }
    }
    let client = bin.display().to_string();
    // Without the helper the stop signal kills it before any leak check.
    let (_, plain) = hostile(&client, &["--grace", "2"], &work.path().join("plain"));
    assert_eq!(
        plain["scenarios"][0]["outcomes"][0]["label"], "STUCK",
        "{plain:#}"
    );
    let kinds: Vec<&str> = plain["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["stuck"], "{plain:#}");
    // With it, LeakSanitizer runs on SIGTERM: a LEAK with its allocation stack.
    let (code, json) = hostile(
        &client,
        &["--grace", "5", "--leak-check-on-stop"],
        &work.path().join("checked"),
    );
    assert_eq!(code, Some(1));
    let leak = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "leak")
        .unwrap_or_else(|| panic!("no leak finding: {json:#}"));
    assert_eq!(
        leak["signature"]["text"],
        "LEAK direct-leak | allocated: leak_a_subscription > main"
    );
    assert!(
        leak["title"]
            .as_str()
            .unwrap()
            .starts_with("Direct leak of 456 byte(s)")
    );
    // It was stopped by the signal, not killed after the grace period.
    let client = &json["runs"][0]["runs"][0]["client"];
    assert_eq!(client["killed"], false, "{client:#}");
    assert_eq!(client["exit"]["name"], "SIGTERM", "{client:#}");
}
