#![cfg(not(feature = "loom"))]
//! The written PEM files work with OpenSSL-based programs: `openssl verify`
//! accepts the good chain and rejects the rogue one, and mosquitto serves
//! TLS with them to `mosquitto_sub`/`mosquitto_pub` and to our rustls client.
//!
//! Without the tools the tests print "skipped: ... not installed" and pass,
//! except under CI (`CI` set), where a missing tool is a failure: .ci/run
//! installs them.

mod common;

use common::{run, start_mosquitto, text, tools, write_pki};
use mqtls_harness::tls::{ClientTlsOptions, TlsError};
use std::process::Command;
use std::time::Duration;

#[test]
fn openssl_accepts_the_good_chain_and_rejects_the_rogue_one() {
    let Some([openssl]) = tools(["openssl"]) else {
        return;
    };
    let dir = write_pki();
    let d = dir.path();
    let verify = |ca: &str, certs: &[&str]| {
        let mut cmd = Command::new(&openssl);
        cmd.current_dir(d)
            .args(["verify", "-CAfile", ca])
            .args(certs);
        run(&mut cmd, Duration::from_secs(20))
    };

    let good = verify("ca.pem", &["server.pem", "client.pem"]);
    assert!(good.status.success(), "{}", text(&good));
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        stdout.contains("server.pem: OK") && stdout.contains("client.pem: OK"),
        "{stdout}"
    );

    for rogue in ["broken/rogue-server.pem", "broken/rogue-client.pem"] {
        let out = verify("ca.pem", &[rogue]);
        assert!(!out.status.success(), "{rogue} verified: {}", text(&out));
        // Rejected for its issuer only: its own CA accepts it.
        let own = verify("broken/rogue-ca.pem", &[rogue]);
        assert!(own.status.success(), "{rogue}: {}", text(&own));
    }
    for expired in [
        "broken/expired-server.pem",
        "broken/not-yet-valid-server.pem",
    ] {
        let out = verify("ca.pem", &[expired]);
        assert!(!out.status.success(), "{expired} verified: {}", text(&out));
    }
}

#[test]
fn mosquitto_serves_tls_with_the_generated_files() {
    let Some([mosquitto, sub, publ]) = tools(["mosquitto", "mosquitto_sub", "mosquitto_pub"])
    else {
        return;
    };
    let dir = write_pki();
    let d = dir.path();
    let (_broker, ports) = start_mosquitto(&mosquitto, d);
    let limit = Duration::from_secs(20);
    let client_args = |cmd: &mut Command, port: u16| {
        cmd.current_dir(d).args([
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "--cafile",
            "ca.pem",
        ]);
    };

    // A retained message, so that the subscriber gets it at once.
    let mut pub_cmd = Command::new(&publ);
    client_args(&mut pub_cmd, ports.server_auth);
    pub_cmd.args([
        "-t",
        "mqtls/interop",
        "-m",
        "hello over tls",
        "-r",
        "-q",
        "1",
    ]);
    let out = run(&mut pub_cmd, limit);
    assert!(out.status.success(), "mosquitto_pub: {}", text(&out));

    let mut sub_cmd = Command::new(&sub);
    client_args(&mut sub_cmd, ports.server_auth);
    sub_cmd.args(["-t", "mqtls/interop", "-C", "1", "-W", "10"]);
    let out = run(&mut sub_cmd, limit);
    assert!(out.status.success(), "mosquitto_sub: {}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello over tls"
    );

    // Mutual TLS: accepted with the client certificate, refused without.
    let mut with_cert = Command::new(&sub);
    client_args(&mut with_cert, ports.mutual);
    with_cert.args(["--cert", "client.pem", "--key", "client.key"]);
    with_cert.args(["-t", "mqtls/interop", "-C", "1", "-W", "10"]);
    let out = run(&mut with_cert, limit);
    assert!(out.status.success(), "mutual mosquitto_sub: {}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello over tls"
    );

    let mut without_cert = Command::new(&sub);
    client_args(&mut without_cert, ports.mutual);
    without_cert.args(["-t", "mqtls/interop", "-C", "1", "-W", "5"]);
    let out = run(&mut without_cert, limit);
    assert!(
        !out.status.success(),
        "connected without a client certificate: {}",
        text(&out)
    );

    // A broker with the rogue certificate is refused by a client trusting ca.pem.
    let mut rogue = Command::new(&sub);
    client_args(&mut rogue, ports.rogue);
    rogue.args(["-t", "mqtls/interop", "-C", "1", "-W", "5"]);
    let out = run(&mut rogue, limit);
    assert!(
        !out.status.success(),
        "trusted the rogue broker: {}",
        text(&out)
    );

    // Our rustls client against the OpenSSL server, both ways.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let step = Duration::from_secs(10);
        let client = ClientTlsOptions::from_files(d.join("ca.pem"), "localhost")
            .with_client_cert(d.join("client.pem"), d.join("client.key"))
            .build()
            .unwrap();
        let tcp = tokio::time::timeout(
            step,
            tokio::net::TcpStream::connect(("127.0.0.1", ports.mutual)),
        )
        .await
        .unwrap()
        .unwrap();
        tokio::time::timeout(step, client.connect(tcp))
            .await
            .unwrap()
            .unwrap();

        let tcp = tokio::time::timeout(
            step,
            tokio::net::TcpStream::connect(("127.0.0.1", ports.rogue)),
        )
        .await
        .unwrap()
        .unwrap();
        let err = tokio::time::timeout(step, client.connect(tcp))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, TlsError::UnknownCa { .. }), "{err:?}");
    });
}
