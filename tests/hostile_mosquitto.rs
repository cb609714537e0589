#![cfg(not(feature = "loom"))]
//! The hostile peers against mosquitto: every hostile-broker scenario
//! against `mosquitto_sub`, and `mqtls probe` against the mosquitto broker.
//!
//! mosquitto's client is expected to survive every scenario, but a crash
//! or hang is a finding for the report, not a failure here: the tests check
//! that each scenario ran its misbehaviour against the real client and that
//! the reports say what happened. The probe must leave mosquitto serving.
//!
//! Without the tools the tests print "skipped: ... not installed" and pass,
//! except under CI (`CI` set), where a missing tool is a failure.

mod common;

use common::{run, start_mosquitto, text, tools, write_pki};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn report(dir: &std::path::Path, name: &str) -> Value {
    let raw = std::fs::read_to_string(dir.join(name)).unwrap();
    serde_json::from_str(&raw).unwrap()
}

#[test]
fn every_hostile_broker_scenario_runs_against_mosquitto_sub() {
    let Some([_sub]) = tools(["mosquitto_sub"]) else {
        return;
    };
    let reports = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtls"));
    cmd.args([
        "hostile-broker",
        "--all",
        "--timeout",
        "4",
        "--suback-delay",
        "1",
        "--flood",
        "200",
        "--client-cmd",
        "mosquitto_sub -h {host} -p {port} -t mqtls/hostile --cafile {cafile} -C 1",
        "--report-dir",
    ])
    .arg(reports.path());
    let out = run(&mut cmd, Duration::from_secs(120));
    // 1 means findings in mosquitto_sub: reported, not a test failure.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "mqtls hostile-broker failed: {}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| scenario | outcome | findings |"),
        "{stdout}"
    );

    let json = report(reports.path(), "hostile-broker.json");
    let scenarios = json["runs"].as_array().unwrap();
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    for expected in [
        "close-before-suback",
        "cut-mid-record",
        "reset-after-subscribe",
        "late-suback",
        "suback-unknown-id",
        "duplicate-suback",
        "connack-truncated",
        "connack-bad-length",
        "suback-truncated",
        "suback-bad-length",
        "zoo-1505-bytes",
        "suback-bad-codes",
        "publish-flood",
        "trickle",
        "refuse-then-accept",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for s in scenarios {
        let name = s["scenario"].as_str().unwrap();
        // mosquitto_sub connects and subscribes in every scenario, so the
        // broker must have got as far as its misbehaviour.
        let run = &s["runs"][0];
        let conns = run["server"]["connections"].as_array().unwrap();
        assert!(
            conns.iter().any(|c| c["misbehaved"] == true),
            "{name}: the broker never misbehaved: {s:#}"
        );
        let kind = run["outcome"]["kind"].as_str().unwrap();
        assert!(
            ["recovered", "gave-up", "stuck", "crashed"].contains(&kind),
            "{name}: {kind}"
        );
        if run["findings"] != serde_json::json!([]) {
            eprintln!(
                "finding: mosquitto_sub {kind} in {name}: {:#}",
                run["findings"]
            );
        }
    }
    // The seed's path: the client connected again after the close and was
    // served by the plain broker.
    let seed = scenarios
        .iter()
        .find(|s| s["scenario"] == "close-before-suback")
        .unwrap();
    let events = seed["runs"][0]["server"]["connections"][0]["events"].to_string();
    assert!(events.contains("read SUBSCRIBE"), "{events}");
    assert!(events.contains("close_notify"), "{events}");
    // The refusals happened.
    let storm = scenarios
        .iter()
        .find(|s| s["scenario"] == "refuse-then-accept")
        .unwrap();
    assert!(
        storm["runs"][0]["server"]["connections"][0]["events"]
            .to_string()
            .contains("sent CONNACK"),
        "{storm:#}"
    );
    let md = std::fs::read_to_string(reports.path().join("hostile-broker.md")).unwrap();
    assert!(md.contains("| close-before-suback |"), "{md}");
}

#[test]
fn mosquitto_keeps_serving_through_the_probe() {
    let Some([mosquitto]) = tools(["mosquitto"]) else {
        return;
    };
    let pki = write_pki();
    let (mut broker, ports) = start_mosquitto(&mosquitto, pki.path());
    let reports = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtls"));
    cmd.args(["probe", "-h", "127.0.0.1", "-p"])
        .arg(ports.server_auth.to_string())
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
    let out = run(&mut cmd, Duration::from_secs(90));
    // 1 means findings: mosquitto deviates from a rule or two the probe
    // checks (reported as PROTOCOL findings), which is a result, not a
    // failure of the probe.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "mqtls probe failed: {}",
        text(&out)
    );
    assert!(
        broker.child.try_wait().unwrap().is_none(),
        "mosquitto exited during the probe"
    );

    let json = report(reports.path(), "probe.json");
    assert_eq!(json["stopped_serving"], 0, "{json:#}");
    // Every finding is a protocol deviation naming its rule: mosquitto kept
    // serving, and the probe read no sanitizer output (it did not start it).
    for f in json["findings"].as_array().unwrap() {
        assert_eq!(f["kind"], "protocol", "{f:#}");
        assert!(
            f["rule"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("MQTT")),
            "{f:#}"
        );
    }
    let scenarios = json["runs"].as_array().unwrap();
    let verdict = |name: &str| {
        scenarios
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))["verdict"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // mosquitto closes on the ZOO.md SUBSCRIBE, as MQTT-4.8.0-1 requires.
    assert_eq!(verdict("malformed/zoo-1505"), "as-specified");
    assert_eq!(verdict("half-open-handshakes"), "as-specified");
    for name in [
        "subscribe-then-reset",
        "qos2-subscriber-cut-after-pubrel",
        "broken-cert-handshakes",
        "oversize-publish",
    ] {
        assert_ne!(verdict(name), "stopped-serving", "{name}");
    }
    assert!(
        std::fs::read_to_string(reports.path().join("probe.md"))
            .unwrap()
            .contains("| malformed/zoo-1505 | as specified |")
    );
}
