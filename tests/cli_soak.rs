#![cfg(not(feature = "loom"))]
//! `mqtls soak` end to end on 127.0.0.1, against our broker only (so that it
//! does not depend on mosquitto being installed): a QoS 1 subscriber stops
//! reading while a publisher floods, and the report must show what issue 19
//! asks of it: the drops our broker counted, its queue-limit log line, RSS
//! read over time, a probe that lost nothing and a clean ledger audit. The
//! run is given an RSS limit no broker can meet, so that it also shows a
//! failed limit turning into exit status 1 (what the nightly job relies on).

mod common;

use common::{run, text};
use std::process::Command;
use std::time::Duration;

#[test]
fn a_stopped_qos1_subscriber_is_reported_with_its_drops_log_rss_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let report_dir = dir.path().join("report");
    // Small limits and 32 KiB payloads: the stopped subscriber's socket
    // buffers, its 20 in flight and its 20 queued fill within the first few
    // hundred publishes, so drops are certain even on a slow debug build.
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_mqtls"))
            .args([
                "soak",
                "--scenario",
                "stopped-qos1",
                "--against",
                "ours",
                "--duration",
                "2",
                "--baseline",
                "0",
                "--settle",
                "1",
                "--payload",
                "32768",
                "--max-queued-messages",
                "20",
                "--max-inflight",
                "20",
                "--max-rss",
                "1M",
            ])
            .arg("--report-dir")
            .arg(&report_dir)
            .env_remove("RUST_LOG"),
        Duration::from_secs(120),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failures: Vec<&str> = stderr.lines().filter(|l| l.contains("FAILED")).collect();
    assert_eq!(failures.len(), 1, "only the RSS limit may fail: {all}");
    assert!(
        failures[0].contains("peak RSS") && failures[0].contains("--max-rss 1.0 MiB"),
        "{all}"
    );

    let json = std::fs::read_to_string(report_dir.join("soak.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ours = &report["runs"][0];
    assert_eq!(ours["target"], "ours", "{json}");
    assert_eq!(report["runs"].as_array().map(Vec::len), Some(1), "{json}");

    let drops = &ours["drops"];
    let over_limit =
        drops["queue_messages"].as_u64().unwrap() + drops["queue_bytes"].as_u64().unwrap();
    assert!(
        over_limit > 0,
        "no delivery dropped for a queue limit: {json}"
    );
    assert_eq!(drops["offline_qos0"], 0, "{json}");

    let audit = &ours["audit"];
    assert_eq!(audit["violations"], 0, "{json}");
    assert_eq!(audit["live"], 0, "{json}");
    assert_eq!(audit["allocated"], audit["freed"], "{json}");
    // Every publish and every dropped delivery went through the ledger.
    assert!(
        audit["allocated"].as_u64().unwrap() >= ours["publishers"]["messages"].as_u64().unwrap()
    );

    let log = &ours["broker_log"];
    assert!(log["over_limit"].as_u64().unwrap() >= 1, "{json}");
    let log_file = std::fs::read_to_string(report_dir.join("soak-ours.log")).unwrap();
    assert!(log_file.contains("queue limit reached"), "{log_file}");
    assert!(
        log_file.contains("shutdown: deliveries dropped by the queue limits"),
        "{log_file}"
    );

    let rss = ours["rss"].as_array().unwrap();
    assert!(rss.len() >= 4, "RSS is read every 250 ms: {json}");
    assert!(ours["rss_peak_kib"].as_u64().unwrap() > 1024, "{json}");
    assert!(ours["rss_settled_kib"].as_u64().is_some(), "{json}");

    let sent = ours["probe_sent"].as_u64().unwrap();
    assert!(sent > 0, "{json}");
    assert_eq!(ours["probe_received"].as_u64(), Some(sent), "{json}");

    let md = std::fs::read_to_string(report_dir.join("soak.md")).unwrap();
    assert!(md.contains("RSS over time"), "{md}");
    assert!(md.contains("queue limit reached"), "{md}");
}
