//! Helpers shared by the interop tests: finding the tools (skipping
//! without them unless CI is set), writing a PKI with `mqtls certs`, running
//! commands with a bound, and a mosquitto broker guarded by Drop.
// Each test crate includes this module and uses a different part of it.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Finds `name` on PATH or in the sbin directories (mosquitto lives in
/// /usr/sbin, which a non-root PATH may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The tools, or `None` after printing why the test is skipped; panics
/// under CI, where a missing tool means the install step broke.
pub fn tools<const N: usize>(names: [&str; N]) -> Option<[PathBuf; N]> {
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
pub fn write_pki() -> tempfile::TempDir {
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
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
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

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A mosquitto process, killed when dropped (also when a test panics).
pub struct Broker {
    pub child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The listeners the test broker opens.
pub struct Ports {
    /// Server authentication only.
    pub server_auth: u16,
    /// Client certificates required.
    pub mutual: u16,
    /// Serves the rogue server certificate.
    pub rogue: u16,
}

pub fn start_mosquitto(mosquitto: &Path, pki: &Path) -> (Broker, Ports) {
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
