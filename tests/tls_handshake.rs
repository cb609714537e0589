#![cfg(not(feature = "loom"))]
//! TLS handshakes over loopback: the good PKI succeeds, and each broken
//! certificate fails with its own error on the side that must reject it.

use certs_gen::{KeyType, Pki, PkiOptions};
use mqtls_harness::tls::{
    ClientTls, ClientTlsOptions, Role, ServerTls, ServerTlsOptions, TlsError, TlsVersions,
};
use rustls::{AlertDescription, ProtocolVersion};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(10);

/// What one side saw: the negotiated session, or the error it ended with.
#[derive(Debug)]
struct Session {
    version: Option<ProtocolVersion>,
    alpn: Option<Vec<u8>>,
    peer_cert: Option<Vec<u8>>,
}

/// Runs a handshake plus one ping/pong round trip, so that a rejection the
/// TLS 1.3 client only learns after its handshake (client certificates)
/// still shows up on the client side.
async fn exchange(
    server: &ServerTls,
    client: &ClientTls,
) -> (Result<Session, TlsError>, Result<Session, TlsError>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = server.clone();
    let server_side = tokio::spawn(async move {
        let (tcp, _) = timeout(STEP, listener.accept()).await.unwrap().unwrap();
        let mut tls = timeout(STEP, server.accept(tcp)).await.unwrap()?;
        let mut ping = [0u8; 4];
        timeout(STEP, tls.read_exact(&mut ping))
            .await
            .unwrap()
            .map_err(|e| server.explain(e))?;
        assert_eq!(&ping, b"ping");
        timeout(STEP, tls.write_all(b"pong"))
            .await
            .unwrap()
            .map_err(|e| server.explain(e))?;
        timeout(STEP, tls.flush())
            .await
            .unwrap()
            .map_err(|e| server.explain(e))?;
        let (_, conn) = tls.get_ref();
        let session = Session {
            version: conn.protocol_version(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            peer_cert: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec()),
        };
        // Let the client read the pong before the socket closes.
        let mut rest = Vec::new();
        let _ = timeout(STEP, tls.read_to_end(&mut rest)).await;
        Ok(session)
    });

    let client_result = async {
        let tcp = timeout(STEP, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        let mut tls = timeout(STEP, client.connect(tcp)).await.unwrap()?;
        timeout(STEP, tls.write_all(b"ping"))
            .await
            .unwrap()
            .map_err(|e| client.explain(e))?;
        timeout(STEP, tls.flush())
            .await
            .unwrap()
            .map_err(|e| client.explain(e))?;
        let mut pong = [0u8; 4];
        timeout(STEP, tls.read_exact(&mut pong))
            .await
            .unwrap()
            .map_err(|e| client.explain(e))?;
        assert_eq!(&pong, b"pong");
        let (_, conn) = tls.get_ref();
        let session = Session {
            version: conn.protocol_version(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            peer_cert: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec()),
        };
        tls.shutdown().await.ok();
        Ok(session)
    }
    .await;

    let server_result = timeout(STEP, server_side).await.unwrap().unwrap();
    (server_result, client_result)
}

fn pki() -> Pki {
    Pki::generate(&PkiOptions::default()).unwrap()
}

#[tokio::test]
async fn server_auth_succeeds_on_tls12_and_tls13_and_negotiates_alpn_mqtt() {
    let pki = pki();
    let server = ServerTlsOptions::from_pki(&pki).build().unwrap();
    for (versions, expected) in [
        (TlsVersions::Tls12Only, ProtocolVersion::TLSv1_2),
        (TlsVersions::Tls13Only, ProtocolVersion::TLSv1_3),
        (TlsVersions::Both, ProtocolVersion::TLSv1_3),
    ] {
        let client = ClientTlsOptions::from_pki(&pki)
            .with_versions(versions)
            .build()
            .unwrap();
        let (s, c) = exchange(&server, &client).await;
        let (s, c) = (s.unwrap(), c.unwrap());
        assert_eq!(c.version, Some(expected));
        assert_eq!(s.version, Some(expected));
        assert_eq!(c.alpn.as_deref(), Some(&b"mqtt"[..]));
        assert_eq!(c.peer_cert.as_deref(), Some(pki.server.cert_der().as_ref()));
        assert_eq!(s.peer_cert, None, "no client certificate was asked for");
    }
}

#[tokio::test]
async fn every_default_server_name_verifies() {
    let pki = pki();
    let server = ServerTlsOptions::from_pki(&pki).build().unwrap();
    for name in ["localhost", "127.0.0.1", "::1"] {
        let client = ClientTlsOptions::from_pki(&pki)
            .with_server_name(name)
            .build()
            .unwrap();
        let (s, c) = exchange(&server, &client).await;
        s.unwrap();
        c.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test]
async fn an_extra_san_verifies() {
    let pki = Pki::generate(&PkiOptions::default().with_extra_server_name("broker.test")).unwrap();
    let server = ServerTlsOptions::from_pki(&pki).build().unwrap();
    let client = ClientTlsOptions::from_pki(&pki)
        .with_server_name("broker.test")
        .build()
        .unwrap();
    let (s, c) = exchange(&server, &client).await;
    s.unwrap();
    c.unwrap();
}

#[tokio::test]
async fn rsa_and_ed25519_pkis_handshake_on_both_versions() {
    for key_type in [KeyType::Rsa2048, KeyType::Ed25519] {
        let pki = Pki::generate(&PkiOptions::default().with_key_type(key_type)).unwrap();
        let server = ServerTlsOptions::from_pki(&pki)
            .with_client_ca(certs_ca(&pki), true)
            .build()
            .unwrap();
        for versions in [TlsVersions::Tls12Only, TlsVersions::Tls13Only] {
            let client = ClientTlsOptions::from_pki(&pki)
                .with_client_identity("client", &pki.client)
                .with_versions(versions)
                .build()
                .unwrap();
            let (s, c) = exchange(&server, &client).await;
            s.unwrap_or_else(|e| panic!("{key_type:?} {versions:?} server: {e}"));
            c.unwrap_or_else(|e| panic!("{key_type:?} {versions:?} client: {e}"));
        }
    }
}

fn certs_ca(pki: &Pki) -> mqtls_harness::tls::PemSource {
    mqtls_harness::tls::PemSource::memory("ca.pem", pki.ca.cert_pem())
}

#[tokio::test]
async fn mutual_tls_succeeds_and_the_server_sees_the_client_certificate() {
    let pki = pki();
    let server = ServerTlsOptions::from_pki(&pki)
        .with_client_ca(certs_ca(&pki), true)
        .build()
        .unwrap();
    for versions in [TlsVersions::Tls12Only, TlsVersions::Tls13Only] {
        let client = ClientTlsOptions::from_pki(&pki)
            .with_client_identity("client", &pki.client)
            .with_versions(versions)
            .build()
            .unwrap();
        let (s, c) = exchange(&server, &client).await;
        let s = s.unwrap();
        c.unwrap();
        assert_eq!(s.peer_cert.as_deref(), Some(pki.client.cert_der().as_ref()));
    }
}

#[tokio::test]
async fn optional_client_certificate_may_be_absent() {
    let pki = pki();
    let server = ServerTlsOptions::from_pki(&pki)
        .with_client_ca(certs_ca(&pki), false)
        .build()
        .unwrap();
    let client = ClientTlsOptions::from_pki(&pki).build().unwrap();
    let (s, c) = exchange(&server, &client).await;
    assert_eq!(s.unwrap().peer_cert, None);
    c.unwrap();
}

/// Serves `name` from the broken set to a client trusting the good CA;
/// returns what each side ended with.
async fn serve_broken(
    pki: &Pki,
    name: &str,
    identity: &certs_gen::Identity,
) -> (TlsError, TlsError) {
    let server = ServerTlsOptions::from_identity(name, identity)
        .build()
        .unwrap();
    let client = ClientTlsOptions::from_pki(pki).build().unwrap();
    let (s, c) = exchange(&server, &client).await;
    (
        s.expect_err("server side should have failed"),
        c.expect_err("client side should have failed"),
    )
}

fn assert_server_saw_client_reject(err: &TlsError) {
    assert!(
        matches!(
            err,
            TlsError::RejectedByPeer {
                peer: Role::Client,
                ..
            }
        ),
        "server side: {err:?}"
    );
}

#[tokio::test]
async fn expired_server_certificate_is_rejected_by_the_client() {
    let pki = pki();
    let (s, c) = serve_broken(&pki, "broken/expired-server", &pki.broken.expired_server).await;
    assert!(
        matches!(
            &c,
            TlsError::Expired {
                cert_of: Role::Server,
                ..
            }
        ),
        "{c:?}"
    );
    // The broken certificate ended a day before it was generated.
    assert!(c.to_string().contains("has expired (24 hours ago)"), "{c}");
    assert_server_saw_client_reject(&s);
}

#[tokio::test]
async fn not_yet_valid_server_certificate_is_rejected_by_the_client() {
    let pki = pki();
    let (s, c) = serve_broken(
        &pki,
        "broken/not-yet-valid-server",
        &pki.broken.not_yet_valid_server,
    )
    .await;
    assert!(
        matches!(
            &c,
            TlsError::NotYetValid {
                cert_of: Role::Server,
                ..
            }
        ),
        "{c:?}"
    );
    assert_server_saw_client_reject(&s);
}

#[tokio::test]
async fn wrong_host_server_certificate_is_rejected_by_the_client() {
    let pki = pki();
    let (s, c) = serve_broken(
        &pki,
        "broken/wrong-host-server",
        &pki.broken.wrong_host_server,
    )
    .await;
    match &c {
        TlsError::WrongHost {
            expected,
            presented,
        } => {
            assert_eq!(expected, "localhost");
            assert!(presented.contains("wrong-host.invalid"), "{presented}");
        }
        other => panic!("{other:?}"),
    }
    assert!(c.to_string().contains("--san localhost"), "{c}");
    assert_server_saw_client_reject(&s);
}

#[tokio::test]
async fn server_certificate_without_server_auth_usage_is_rejected_by_the_client() {
    let pki = pki();
    let (s, c) = serve_broken(
        &pki,
        "broken/no-server-auth-server",
        &pki.broken.no_server_auth_server,
    )
    .await;
    assert!(matches!(&c, TlsError::MissingServerAuthUsage), "{c:?}");
    assert_server_saw_client_reject(&s);
}

#[tokio::test]
async fn rogue_server_certificate_is_rejected_by_the_client_naming_the_ca_file() {
    let pki = pki();
    let (s, c) = serve_broken(&pki, "broken/rogue-server", &pki.broken.rogue_server).await;
    match &c {
        TlsError::UnknownCa {
            cert_of: Role::Server,
            trusted,
        } => assert!(trusted.contains("ca.pem"), "{trusted}"),
        other => panic!("{other:?}"),
    }
    match &s {
        TlsError::RejectedByPeer {
            peer: Role::Client,
            alert,
        } => assert_eq!(*alert, AlertDescription::UnknownCA),
        other => panic!("{other:?}"),
    }
}

/// Connects with `client` to a server that requires client certificates;
/// returns what each side ended with, for both TLS versions.
async fn present_to_mutual_server(
    pki: &Pki,
    client: ClientTlsOptions,
) -> Vec<(TlsVersions, TlsError, TlsError)> {
    let server = ServerTlsOptions::from_pki(pki)
        .with_client_ca(certs_ca(pki), true)
        .build()
        .unwrap();
    let mut out = Vec::new();
    for versions in [TlsVersions::Tls12Only, TlsVersions::Tls13Only] {
        let client = client.clone().with_versions(versions).build().unwrap();
        let (s, c) = exchange(&server, &client).await;
        out.push((
            versions,
            s.expect_err("server side should have failed"),
            c.expect_err("client side should have failed"),
        ));
    }
    out
}

#[tokio::test]
async fn rogue_client_certificate_is_rejected_by_the_server() {
    let pki = pki();
    let client = ClientTlsOptions::from_pki(&pki)
        .with_client_identity("broken/rogue-client", &pki.broken.rogue_client);
    for (versions, s, c) in present_to_mutual_server(&pki, client).await {
        match &s {
            TlsError::UnknownCa {
                cert_of: Role::Client,
                trusted,
            } => assert!(trusted.contains("ca.pem"), "{trusted}"),
            other => panic!("{versions:?}: {other:?}"),
        }
        assert!(
            matches!(
                c,
                TlsError::RejectedByPeer {
                    peer: Role::Server,
                    alert: AlertDescription::UnknownCA
                }
            ),
            "{versions:?}: {c:?}"
        );
    }
}

#[tokio::test]
async fn missing_client_certificate_is_rejected_when_required() {
    let pki = pki();
    let client = ClientTlsOptions::from_pki(&pki);
    for (versions, s, c) in present_to_mutual_server(&pki, client).await {
        assert!(
            matches!(&s, TlsError::NoClientCertificate { client_ca } if client_ca.contains("ca.pem")),
            "{versions:?}: {s:?}"
        );
        assert!(
            matches!(
                &c,
                TlsError::RejectedByPeer {
                    peer: Role::Server,
                    ..
                }
            ),
            "{versions:?}: {c:?}"
        );
    }
}

#[tokio::test]
async fn server_certificate_used_as_client_certificate_is_rejected_by_the_server() {
    let pki = pki();
    let client = ClientTlsOptions::from_pki(&pki).with_client_identity("server", &pki.server);
    for (versions, s, _) in present_to_mutual_server(&pki, client).await {
        assert!(
            matches!(s, TlsError::MissingClientAuthUsage),
            "{versions:?}: {s:?}"
        );
    }
}

#[tokio::test]
async fn configurations_from_the_written_pem_files_handshake() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    pki.write_pem(dir.path(), false).unwrap();
    let d = dir.path();
    let server = ServerTlsOptions::from_files(d.join("server.pem"), d.join("server.key"))
        .with_client_ca(d.join("ca.pem"), true)
        .build()
        .unwrap();
    let client = ClientTlsOptions::from_files(d.join("ca.pem"), "127.0.0.1")
        .with_client_cert(d.join("client.pem"), d.join("client.key"))
        .build()
        .unwrap();
    let (s, c) = exchange(&server, &client).await;
    s.unwrap();
    c.unwrap();

    let rogue = ServerTlsOptions::from_files(
        d.join("broken/rogue-server.pem"),
        d.join("broken/rogue-server.key"),
    )
    .build()
    .unwrap();
    let (_, c) = exchange(&rogue, &client).await;
    match c {
        Err(TlsError::UnknownCa { trusted, .. }) => {
            assert_eq!(trusted, d.join("ca.pem").display().to_string());
        }
        other => panic!("{other:?}"),
    }
}
