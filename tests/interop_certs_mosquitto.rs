#![cfg(not(feature = "loom"))]
//! The written PEM files work with OpenSSL-based programs: `openssl verify`
//! accepts the good chain and rejects the rogue one, and mosquitto serves
//! TLS with them to `mosquitto_sub`/`mosquitto_pub` and to our rustls client.
//!
//! Without the tools the tests print "skipped: ... not installed" and pass,
//! except under CI (`CI` set), where a missing tool is a failure: .ci/run
//! installs them.

use mqtls_harness::tls::{ClientTlsOptions, TlsError};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Finds `name` on PATH or in the sbin directories (mosquitto lives in
/// /usr/sbin, which a non-root PATH may lack).
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The tools, or `None` after printing why the test is skipped; panics
/// under CI, where a missing tool means the install step broke.
fn tools<const N: usize>(names: [&str; N]) -> Option<[PathBuf; N]> {
    let found = names.map(find_tool);
    let missing: Vec<&str> = names
        .iter()
        .zip(&found)
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        return Some(found.map(|p| p.unwrap()));
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "CI is set but {} not installed: .ci/run must apt-install mosquitto, mosquitto-clients and openssl",
        missing.join(", ")
    );
    eprintln!("skipped: {} not installed", missing.join(", "));
    None
}

/// Writes a fresh PKI with `mqtls certs` (the same library code as the
/// `certs-gen` binary) and returns its directory.
fn write_pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mqtls"))
        .arg("certs")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Runs a command to completion, killing it after `limit`.
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            let out = child.wait_with_output().unwrap();
            panic!("{cmd:?} ran longer than {limit:?}: {out:?}");
        }
        sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

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

/// A mosquitto process, killed when dropped (also when a test panics).
struct Broker {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The listeners the test broker opens.
struct Ports {
    server_auth: u16,
    mutual: u16,
    rogue: u16,
}

fn start_mosquitto(mosquitto: &Path, pki: &Path) -> (Broker, Ports) {
    let ports = Ports {
        server_auth: free_port(),
        mutual: free_port(),
        rogue: free_port(),
    };
    let p = |name: &str| pki.join(name).display().to_string();
    let listener = |port: u16, cert: &str, key: &str, require: bool| {
        format!(
            "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require}\n",
            p("ca.pem"),
            p(cert),
            p(key),
        )
    };
    // `user root`: otherwise mosquitto drops to user mosquitto, which cannot
    // read the 0600 keys written by root.
    let config = format!(
        "user root\nallow_anonymous true\npersistence false\nlog_dest stderr\n{}{}{}",
        listener(ports.server_auth, "server.pem", "server.key", false),
        listener(ports.mutual, "server.pem", "server.key", true),
        listener(
            ports.rogue,
            "broken/rogue-server.pem",
            "broken/rogue-server.key",
            false
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, config).unwrap();
    let child = Command::new(mosquitto)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut broker = Broker { child, _dir: dir };

    let deadline = Instant::now() + Duration::from_secs(10);
    for port in [ports.server_auth, ports.mutual, ports.rogue] {
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Some(status) = broker.child.try_wait().unwrap() {
                let mut log = String::new();
                if let Some(mut err) = broker.child.stderr.take() {
                    std::io::Read::read_to_string(&mut err, &mut log).ok();
                }
                panic!("mosquitto exited with {status} before listening on {port}: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port} within 10 s"
            );
            sleep(Duration::from_millis(50));
        }
    }
    (broker, ports)
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
