#![cfg(not(feature = "loom"))]
//! Interop over TLS: mosquitto_sub/mosquitto_pub against our broker (server
//! authentication and mutual TLS), and our `mqtls sub`/`mqtls pub` against
//! mosquitto, including the seed's command line
//! (`sub -h 127.0.0.1 -p PORT -t topic3 --cafile ca.pem -s`).
//!
//! Skipped with a message when mosquitto is not installed, unless CI is set.

mod common;

use common::{run, start_mosquitto, text, tools, write_pki};
use mqtls_harness::e2e::{Env, Tls};
use mqtls_harness::faults::FaultSet;
use mqtls_harness::tls::ServerTlsOptions;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts `sub` (which must exit after one message), then runs `publish`
/// every 200 ms until the subscriber exits (it may not have subscribed yet
/// when the first publish goes out). Bounded by 15 s.
fn deliver_once(mut sub: Command, mut publish: impl FnMut() -> Output) -> Output {
    let mut child = sub
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!(
                "{sub:?} received nothing in 15 s: {:?}",
                child.wait_with_output()
            );
        }
        let out = publish();
        assert!(out.status.success(), "publisher: {}", text(&out));
        sleep(Duration::from_millis(200));
    }
    child.wait_with_output().unwrap()
}

fn mqtls(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mqtls"));
    c.current_dir(dir).args(args);
    c
}

#[test]
fn mosquitto_clients_against_our_broker() {
    let Some([sub, publ]) = tools(["mosquitto_sub", "mosquitto_pub"]) else {
        return;
    };
    let dir = write_pki();
    let d = dir.path();
    let rt = runtime();
    let tls = Tls::from_dir(d).unwrap();
    let mutual_tls = ServerTlsOptions::from_files(d.join("server.pem"), d.join("server.key"))
        .with_client_ca(d.join("ca.pem"), true)
        .build()
        .unwrap();
    let plain = rt.block_on(Env::start(&tls, FaultSet::NONE)).unwrap();
    let mutual = rt
        .block_on(Env::start_with(&tls, FaultSet::NONE, |o| {
            if let Some((_, addr)) = o.tls.take() {
                o.tls = Some((mutual_tls, addr));
            }
        }))
        .unwrap();
    let limit = Duration::from_secs(15);
    let with = |tool: &Path, port: u16, extra: &[&str]| {
        let mut c = Command::new(tool);
        c.current_dir(d)
            .args([
                "-h",
                "localhost",
                "-p",
                &port.to_string(),
                "--cafile",
                "ca.pem",
            ])
            .args(extra);
        c
    };
    for (env, cert) in [
        (&plain, &[][..]),
        (
            &mutual,
            &["--cert", "client.pem", "--key", "client.key"][..],
        ),
    ] {
        let port = env.port();
        let out = run(
            with(&publ, port, cert).args([
                "-t",
                "interop/r",
                "-m",
                "retained hello",
                "-r",
                "-q",
                "1",
            ]),
            limit,
        );
        assert!(out.status.success(), "mosquitto_pub: {}", text(&out));
        let out = run(
            with(&sub, port, cert).args(["-t", "interop/r", "-C", "1", "-W", "10"]),
            limit,
        );
        assert!(out.status.success(), "mosquitto_sub: {}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "retained hello"
        );
        for (v, qos) in [("mqttv311", "0"), ("mqttv5", "2")] {
            let mut s = with(&sub, port, cert);
            s.args([
                "-t",
                "interop/live",
                "-C",
                "1",
                "-W",
                "12",
                "-V",
                v,
                "-q",
                qos,
            ]);
            let out = deliver_once(s, || {
                run(
                    with(&publ, port, cert).args([
                        "-t",
                        "interop/live",
                        "-m",
                        "live",
                        "-V",
                        v,
                        "-q",
                        qos,
                    ]),
                    limit,
                )
            });
            assert!(out.status.success(), "mosquitto_sub {v}: {}", text(&out));
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "live");
        }
    }
    // Mutual TLS refuses a client without a certificate.
    let out = run(
        with(&sub, mutual.port(), &[]).args(["-t", "x", "-C", "1", "-W", "5"]),
        limit,
    );
    assert!(
        !out.status.success(),
        "connected without a certificate: {}",
        text(&out)
    );

    for env in [plain, mutual] {
        let audit = rt.block_on(env.finish());
        assert!(audit.is_clean(), "{:?}", audit.violations);
    }
}

#[test]
fn seed_command_line_against_our_broker_and_mosquitto() {
    let dir = write_pki();
    let d = dir.path().to_path_buf();
    let rt = runtime();
    let tls = Tls::from_dir(&d).unwrap();
    let ours = rt.block_on(Env::start(&tls, FaultSet::NONE)).unwrap();
    let limit = Duration::from_secs(15);
    let seed = |port: u16, extra: &[&str]| {
        let mut c = mqtls(
            &d,
            &[
                "sub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "topic3",
                "--cafile",
                "ca.pem",
                "-s",
                "-C",
                "1",
            ],
        );
        c.args(extra);
        c
    };
    let publish = |port: u16, extra: &[&str]| {
        let mut c = mqtls(
            &d,
            &[
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "topic3",
                "-m",
                "seed message",
                "--cafile",
                "ca.pem",
                "-s",
                "-q",
                "1",
            ],
        );
        c.args(extra);
        run(&mut c, limit)
    };

    let out = deliver_once(seed(ours.port(), &[]), || publish(ours.port(), &[]));
    assert!(
        out.status.success(),
        "mqtls sub vs our broker: {}",
        text(&out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "seed message");
    let audit = rt.block_on(ours.finish());
    assert!(audit.is_clean(), "{:?}", audit.violations);

    let Some([mosquitto]) = tools(["mosquitto"]) else {
        return;
    };
    let (_broker, ports) = start_mosquitto(&mosquitto, &d);
    let out = deliver_once(seed(ports.server_auth, &[]), || {
        publish(ports.server_auth, &[])
    });
    assert!(
        out.status.success(),
        "mqtls sub vs mosquitto: {}",
        text(&out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "seed message");

    let cert = ["--cert", "client.pem", "--key", "client.key", "-V", "5"];
    let out = deliver_once(seed(ports.mutual, &cert), || publish(ports.mutual, &cert));
    assert!(
        out.status.success(),
        "mqtls sub vs mosquitto (mutual TLS, v5): {}",
        text(&out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "seed message");
}
