#![cfg(not(feature = "loom"))]
//! Hostile input to the running broker over TLS: the malicious SUBSCRIBE
//! from ZOO.md and other malformed packets get a clean close (with the
//! reason code in MQTT 5); failed, plain-TCP and stalled handshakes never
//! stop the listener; the broker still serves and the ledger is clean.

use mqtls_harness::codec::{QoS, Version};
use mqtls_harness::e2e::malformed::{
    MALICIOUS_SUBSCRIBE, cases, connect_bytes, disconnect_reason, send_raw,
};
use mqtls_harness::e2e::{Env, Tls};
use mqtls_harness::faults::FaultSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn tls() -> Tls {
    Tls::from_pki(&certs_gen::Pki::generate(&Default::default()).unwrap()).unwrap()
}

async fn still_serves(env: &Env) {
    let mut c = env.connect("still-serving", Version::V311).await.unwrap();
    c.subscribe(&[("t", QoS::AtLeastOnce)]).await.unwrap();
    c.publish("t", "ok", QoS::AtLeastOnce, false).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), c.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.payload, "ok");
    c.disconnect().await.unwrap();
}

#[test]
fn malicious_subscribe_and_malformed_packets_get_a_clean_close() {
    let tls = tls();
    runtime().block_on(async {
        let env = Env::start(&tls, FaultSet::NONE).await.unwrap();
        // The seed's bytes exactly, after a 3.1.1 CONNECT: CONNACK, then close.
        let got = send_raw(
            &env,
            &[
                connect_bytes("z", Version::V311),
                MALICIOUS_SUBSCRIBE.to_vec(),
            ]
            .concat(),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
        assert_eq!(
            got,
            [0x20, 0x02, 0x00, 0x00],
            "only the CONNACK, then a close"
        );
        for case in cases() {
            let got = send_raw(&env, &case.bytes, Duration::from_secs(3))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            if let Some(code) = case.reason {
                assert_eq!(
                    disconnect_reason(&got),
                    Some(code as u8),
                    "{}: {got:02x?}",
                    case.name
                );
            }
            still_serves(&env).await;
        }
        let stats = env.server.broker().stats();
        assert!(stats.protocol_errors >= cases().len() as u64, "{stats:?}");
        let audit = env.finish().await;
        assert!(audit.is_clean(), "{:?}", audit.violations);
    });
}

#[test]
fn bad_handshakes_never_stop_the_listener() {
    let tls = tls();
    runtime().block_on(async {
        let env = Env::start_with(&tls, FaultSet::NONE, |o| {
            o.handshake_timeout = Duration::from_millis(300)
        })
        .await
        .unwrap();
        let port = env.port();
        // A client that never finishes its handshake, held open throughout.
        let stalled = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // Plain MQTT on the TLS port: refused, connection closed.
        let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        plain
            .write_all(&connect_bytes("plain", Version::V311))
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(3), plain.read(&mut buf))
            .await
            .unwrap();
        assert!(
            !matches!(n, Ok(n) if n > 0 && buf[0] == 0x20),
            "a plain client got a CONNACK"
        );
        // A client that distrusts the server's CA fails its handshake.
        let rogue = certs_gen::Pki::generate(&Default::default()).unwrap();
        let other = mqtls_harness::tls::ClientTlsOptions::from_pki(&rogue)
            .build()
            .unwrap();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        assert!(other.connect(tcp).await.is_err());
        // Meanwhile, and after the stalled handshake timed out, others are served.
        still_serves(&env).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut stalled = stalled;
        let n = tokio::time::timeout(Duration::from_secs(2), stalled.read(&mut buf))
            .await
            .unwrap();
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "the stalled handshake was not dropped: {n:?}"
        );
        still_serves(&env).await;
        let audit = env.finish().await;
        assert!(audit.is_clean(), "{:?}", audit.violations);
    });
}
