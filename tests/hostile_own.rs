#![cfg(not(feature = "loom"))]
//! The hostile peers against our own pair: every hostile-broker scenario
//! against `mqtls sub` (which must survive each one with a clean ledger),
//! and the probe against `mqtls broker` (which must keep serving and audit
//! clean when it stops).

mod common;

use common::{free_port, run, text, write_pki};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn report(dir: &std::path::Path, name: &str) -> Value {
    let raw = std::fs::read_to_string(dir.join(name)).unwrap();
    serde_json::from_str(&raw).unwrap()
}

#[test]
fn mqtls_sub_survives_every_hostile_broker_scenario() {
    let reports = tempfile::tempdir().unwrap();
    let sub = format!(
        "{} sub -h {{host}} -p {{port}} -t mqtls/hostile --cafile {{cafile}} -s -C 1 --timeout 2",
        env!("CARGO_BIN_EXE_mqtls")
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtls"));
    cmd.args([
        "hostile-broker",
        "--all",
        "--timeout",
        "6",
        "--suback-delay",
        "3",
        "--flood",
        "200",
        "--client-cmd",
        &sub,
        "--report-dir",
    ])
    .arg(reports.path());
    let out = run(&mut cmd, Duration::from_secs(180));
    let json = report(reports.path(), "hostile-broker.json");
    let scenarios = json["runs"].as_array().unwrap();
    assert!(scenarios.len() >= 15, "{json:#}");
    for s in scenarios {
        let name = s["scenario"].as_str().unwrap();
        let run = &s["runs"][0];
        let outcome = run["outcome"]["kind"].as_str().unwrap();
        // A correct client recovers (receives the message after the
        // misbehaviour) or gives up with an error; a ledger violation in our
        // client is a sanitizer finding, and so would a hang or a crash be.
        assert!(
            outcome == "recovered" || outcome == "gave-up",
            "mqtls sub in {name}: {outcome}: {s:#}"
        );
        assert_eq!(
            run["findings"],
            serde_json::json!([]),
            "mqtls sub in {name}: {s:#}"
        );
    }
    // Scenarios that misbehave after a grant end with the message delivered.
    let dup = scenarios
        .iter()
        .find(|s| s["scenario"] == "duplicate-suback")
        .unwrap();
    assert_eq!(dup["runs"][0]["delivered"], true, "{dup:#}");
    assert_eq!(json["findings"], serde_json::json!([]), "{json:#}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn mqtls_broker_keeps_serving_through_the_probe_and_audits_clean() {
    let pki = write_pki();
    let port = free_port();
    let mut broker = Command::new(env!("CARGO_BIN_EXE_mqtls"))
        .args(["broker", "--bind", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .arg("--cert")
        .arg(pki.path().join("server.pem"))
        .arg("--key")
        .arg(pki.path().join("server.key"))
        .args(["--duration", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Its log (a line per connection, hundreds during the probe) goes
        // to a file: an undrained pipe would fill and stall the broker.
        .stderr(std::fs::File::create(pki.path().join("broker.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mqtls broker did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let reports = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtls"));
    cmd.args(["probe", "-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .arg("--cafile")
        .arg(pki.path().join("ca.pem"))
        .args([
            "--timeout",
            "2",
            "--handshakes",
            "20",
            "--half-open",
            "40",
            "--report-dir",
        ])
        .arg(reports.path());
    let out = run(&mut cmd, Duration::from_secs(120));
    let alive = broker.try_wait().unwrap().is_none();
    // Ctrl-C: the broker stops, audits its ledger and exits 0 only when clean.
    unsafe { libc::kill(broker.id() as i32, libc::SIGINT) };
    let stopped = broker.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(alive, "mqtls broker exited during the probe");
    let json = report(reports.path(), "probe.json");
    assert_eq!(json["stopped_serving"], 0, "{json:#}");
    // Our broker breaks no rule the probe checks: no finding at all.
    assert_eq!(json["findings"], serde_json::json!([]), "{json:#}");
    for s in json["runs"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        if name.starts_with("malformed/") {
            assert_eq!(s["verdict"], "as-specified", "{name}: {s:#}");
        }
    }
    assert_eq!(
        stopped.status.code(),
        Some(0),
        "broker audit: {}\nlog: {}",
        text(&stopped),
        std::fs::read_to_string(pki.path().join("broker.log")).unwrap_or_default()
    );
}
