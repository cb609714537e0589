#![cfg(not(feature = "loom"))]
//! `mqtls broker` as an operator sees it, on 127.0.0.1: with no
//! certificate it serves a generated PKI and prints the mosquitto_sub line
//! that works; its log has a line per refused handshake (with the reason),
//! per connection opened and closed (with the reason code), and the shutdown
//! audit, as text or one JSON object a line; `-v` and `RUST_LOG` add
//! detail; `mqtls sub -W` stops by itself.

mod common;

use common::{text, write_pki};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn mqtls() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mqtls"))
}

/// A running `mqtls broker`, its stdout and stderr drained by threads (so
/// that its log can never fill a pipe and stall it); killed on drop.
struct Broker {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<Vec<String>>>,
    /// Everything printed on stdout before the listening lines were seen.
    banner: Vec<String>,
    tls: u16,
    tcp: Option<u16>,
}

impl Broker {
    /// Starts it on 127.0.0.1, TLS on any free port, plus `args`; returns
    /// once it printed the ports it listens on.
    fn start(args: &[String], env: &[(&str, &str)], plain: bool) -> Broker {
        let mut cmd = mqtls();
        cmd.args([
            "broker",
            "--bind",
            "127.0.0.1",
            "-p",
            "0",
            "--duration",
            "60",
        ])
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if plain {
            cmd.args(["--tcp-port", "0"]);
        }
        let mut child = cmd.spawn().unwrap();
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let stderr = Some(std::thread::spawn(move || {
            BufReader::new(err).lines().map_while(Result::ok).collect()
        }));
        let mut b = Broker {
            child,
            stdout,
            stderr,
            banner: Vec::new(),
            tls: 0,
            tcp: None,
        };
        let port = |line: &str| line.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while b.tls == 0 || (plain && b.tcp.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = b
                .stdout
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("mqtls broker did not print its ports: {:?}", b.banner));
            if line.starts_with("mqtls broker: TLS on ") {
                b.tls = port(&line);
            } else if line.starts_with("mqtls broker: plain TCP on ") {
                b.tcp = Some(port(&line));
            }
            b.banner.push(line);
        }
        b
    }

    /// The stdout lines printed so far (after the ports), waiting up to
    /// `limit` for at least `n` of them.
    fn more_stdout(&mut self, n: usize, limit: Duration) -> &[String] {
        let deadline = Instant::now() + limit;
        while self.banner.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => self.banner.push(line),
                Err(_) => break,
            }
        }
        &self.banner
    }

    /// Ctrl-C, then the exit status and every log line (bounded).
    fn stop(mut self) -> (Option<i32>, Vec<String>) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                panic!("mqtls broker did not stop within 20 s of Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = self.stderr.take().unwrap().join().unwrap();
        (status, log)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn run(cmd: &mut Command) -> Output {
    common::run(cmd, Duration::from_secs(30))
}

fn ca(pki: &Path) -> PathBuf {
    pki.join("ca.pem")
}

/// `--cert DIR/server.pem --key DIR/server.key`.
fn identity(pki: &Path) -> Vec<String> {
    let file = |name: &str| pki.join(name).display().to_string();
    vec![
        "--cert".into(),
        file("server.pem"),
        "--key".into(),
        file("server.key"),
    ]
}

/// An MQTT 3.1.1 CONNECT (clean session) for `client_id` (a few bytes).
fn connect_packet(client_id: &str, keep_alive: u16) -> Vec<u8> {
    let id = client_id.as_bytes();
    let mut p = vec![
        0x10,
        12 + id.len() as u8,
        0x00,
        0x04,
        b'M',
        b'Q',
        b'T',
        b'T',
        0x04,
        0x02,
    ];
    p.extend(keep_alive.to_be_bytes());
    p.extend((id.len() as u16).to_be_bytes());
    p.extend(id);
    p
}

/// A plain connection that sent `connect_packet`.
fn plain_session(port: u16, client_id: &str, keep_alive: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&connect_packet(client_id, keep_alive)).unwrap();
    s
}

/// Everything `s` receives until the broker closes it (bounded).
fn until_closed(mut s: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

/// Reads the 4-byte CONNACK of a 3.1.1 session.
fn connack(s: &mut TcpStream) {
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
}

fn json_lines(log: &[String]) -> Vec<serde_json::Value> {
    log.iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn find<'a>(events: &'a [serde_json::Value], message_start: &str) -> Vec<&'a serde_json::Value> {
    events
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message_start))
        })
        .collect()
}

#[test]
fn the_default_log_has_a_line_per_connection_event_and_the_audit_in_json() {
    let pki = write_pki();
    let mut args = identity(pki.path());
    args.extend(["--log-format".into(), "json".into()]);
    let b = Broker::start(&args, &[], true);
    let (tls, tcp) = (b.tls.to_string(), b.tcp.unwrap().to_string());

    // A good publish over TLS.
    let out = run(mqtls()
        .args(["pub", "-h", "127.0.0.1", "-p", &tls, "--cafile"])
        .arg(ca(pki.path()))
        .args(["-i", "good-pub", "-t", "t", "-m", "hello"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A client that does not trust the broker's CA.
    let out = run(mqtls()
        .args(["pub", "-h", "127.0.0.1", "-p", &tls, "--cafile"])
        .arg(pki.path().join("broken/rogue-ca.pem"))
        .args(["-t", "t", "-m", "x"]));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));

    // Plain MQTT on the TLS port: a TLS alert comes back, not MQTT.
    let answer = until_closed(plain_session(b.tls, "x", 60));
    assert_eq!(answer.first(), Some(&0x15), "{answer:02x?}");

    // TLS on the plain port, by `mqtls sub -s`.
    let out = run(mqtls()
        .args(["sub", "-h", "127.0.0.1", "-p", &tcp, "-s", "--cafile"])
        .arg(ca(pki.path()))
        .args(["-t", "t", "-C", "1", "--timeout", "5"]));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    // The client's own log stays off stdout.
    assert!(out.stdout.is_empty(), "{}", text(&out));

    // A silent client (keep-alive 1 s) and a session taken over.
    let mut silent = plain_session(b.tcp.unwrap(), "silent", 1);
    connack(&mut silent);
    let mut first = plain_session(b.tcp.unwrap(), "twin", 60);
    connack(&mut first);
    let mut second = plain_session(b.tcp.unwrap(), "twin", 60);
    connack(&mut second);
    until_closed(first);
    second.write_all(&[0xe0, 0x00]).unwrap();
    until_closed(second);
    until_closed(silent);

    let (status, log) = b.stop();
    assert_eq!(status, Some(0), "{log:#?}");
    let events = json_lines(&log);
    assert!(
        events
            .iter()
            .all(|e| e["level"] != "DEBUG" && e["level"] != "TRACE"),
        "{log:#?}"
    );

    let refused = find(&events, "refused a connection: ");
    assert_eq!(refused.len(), 3, "{log:#?}");
    let says = |needle: &str| {
        refused
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains(needle))
    };
    assert!(
        says("TLS handshake failed: the client aborted the handshake with alert"),
        "{log:#?}"
    );
    assert!(
        says(&format!(
            "a plain MQTT CONNECT on the TLS port {tls}: the client must use TLS"
        )),
        "{log:#?}"
    );
    assert!(
        says(&format!(
            "a TLS handshake on the plain TCP port {tcp}: the client must drop TLS"
        )),
        "{log:#?}"
    );
    assert!(
        refused.iter().all(|e| e["peer"].as_str().is_some()),
        "{log:#?}"
    );

    let opened = find(&events, "connection opened over TLS");
    assert_eq!(opened.len(), 1, "{log:#?}");
    let conn = opened[0]["conn"].clone();
    let connected = find(&events, "client connected: MQTT 3.1.1");
    assert_eq!(connected.len(), 4, "{log:#?}");
    assert_eq!(connected[0]["client"], "good-pub", "{log:#?}");
    assert_eq!(connected[0]["conn"], conn, "{log:#?}");
    let closed = find(&events, "connection closed: ");
    assert_eq!(closed.len(), 4, "{log:#?}");
    let closed_for = |client: &str, why: &str, code: u8| {
        assert!(
            closed.iter().any(|e| e["client"] == client
                && e["message"].as_str().unwrap().contains(why)
                && e["reason_code"] == code),
            "no close of {client} with {why} ({code:#04x}): {log:#?}"
        );
    };
    closed_for("good-pub", "client sent DISCONNECT (0x00 Success)", 0x00);
    closed_for("twin", "another connection took over the session", 0x8e);
    closed_for("twin", "client sent DISCONNECT", 0x00);
    closed_for("silent", "keep-alive expired", 0x8d);

    let audit = find(&events, "shutdown audit: clean");
    assert_eq!(audit.len(), 1, "{log:#?}");
    assert_eq!(audit[0]["refused"], 3, "{log:#?}");
    assert_eq!(audit[0]["connections"], 4, "{log:#?}");
    assert_eq!(audit[0]["violations"], 0, "{log:#?}");
    assert_eq!(audit[0]["live"], 0, "{log:#?}");
}

/// A malformed packet: its close is logged with the reason code by
/// default; `-v` or `RUST_LOG` add the kernel's debug detail.
#[test]
fn verbose_flags_and_rust_log_add_detail_to_the_text_log() {
    let pki = write_pki();
    for (extra, env, debug) in [
        (None, None, false),
        (Some("-v"), None, true),
        (None, Some(("RUST_LOG", "mqtls_harness=debug")), true),
    ] {
        let mut args = identity(pki.path());
        args.extend(extra.map(String::from));
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let b = Broker::start(&args, &env, true);
        // A CONNECT with reserved flags set (0x12): malformed.
        let mut s = TcpStream::connect(("127.0.0.1", b.tcp.unwrap())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&[0x12, 0x00]).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
        let (status, log) = b.stop();
        assert_eq!(status, Some(0), "{log:#?}");
        let closed: Vec<&String> = log
            .iter()
            .filter(|l| l.contains(" INFO ") && l.contains("connection closed: "))
            .collect();
        assert_eq!(closed.len(), 1, "{extra:?} {env:?}: {log:#?}");
        assert!(closed[0].contains("(0x81 MalformedPacket)"), "{log:#?}");
        assert_eq!(
            log.iter().any(|l| l.contains(" DEBUG ")),
            debug,
            "{extra:?} {env:?}: {log:#?}"
        );
        assert!(
            log.iter().any(|l| l.contains("shutdown audit: clean")),
            "{log:#?}"
        );
    }
}

/// The "Done when": `mqtls broker` with no certificate prints a
/// mosquitto_sub line, and that line receives what `mqtls pub` sends. The
/// generated PKI goes away with the broker.
#[test]
fn with_no_certificate_the_printed_mosquitto_sub_line_receives_a_publish() {
    let Some([_sub]) = common::tools(["mosquitto_sub"]) else {
        return;
    };
    let mut b = Broker::start(&[], &[], false);
    let lines = b.more_stdout(8, Duration::from_secs(10)).to_vec();
    let line = |start: &str| {
        lines
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no `{start}` line in {lines:#?}"))
            .to_string()
    };
    let sub_line = line("mosquitto_sub ");
    assert!(sub_line.contains(&format!("-p {}", b.tls)), "{sub_line}");
    let pki_dir = sub_line
        .split_whitespace()
        .skip_while(|w| *w != "--cafile")
        .nth(1)
        .map(|ca| PathBuf::from(ca).parent().unwrap().to_path_buf())
        .unwrap();
    assert!(pki_dir.join("ca.pem").is_file(), "{sub_line}");

    // The printed line as a user pastes it, bounded by -C and -W.
    let mut sub = Command::new("sh")
        .arg("-c")
        .arg(format!("{sub_line} -C 1 -W 20"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Publish with the printed `mqtls pub` line until the subscriber has
    // it (it may subscribe after the first publish).
    let pub_line = line("mqtls pub ");
    let pub_args: Vec<&str> = pub_line.split_whitespace().skip(1).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sub.try_wait().unwrap().is_none() && Instant::now() < deadline {
        let out = run(mqtls().args(&pub_args));
        assert_eq!(out.status.code(), Some(0), "{pub_line}: {}", text(&out));
        std::thread::sleep(Duration::from_millis(200));
    }
    sub.kill().ok();
    let got = sub.wait_with_output().unwrap();
    assert_eq!(got.status.code(), Some(0), "{sub_line}: {}", text(&got));
    assert_eq!(String::from_utf8_lossy(&got.stdout), "test/hello hi\n");

    let (status, log) = b.stop();
    assert_eq!(status, Some(0), "{log:#?}");
    assert!(
        !pki_dir.exists(),
        "the throwaway PKI {pki_dir:?} outlived the broker"
    );
}

#[test]
fn sub_stops_after_minus_w_seconds_with_mosquittos_status() {
    let pki = write_pki();
    let b = Broker::start(&identity(pki.path()), &[], false);
    let started = Instant::now();
    let out = run(mqtls()
        .args([
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &b.tls.to_string(),
            "--cafile",
        ])
        .arg(ca(pki.path()))
        .args(["-t", "nothing/here", "-W", "1"]));
    assert_eq!(out.status.code(), Some(27), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let (status, _) = b.stop();
    assert_eq!(status, Some(0));
}
