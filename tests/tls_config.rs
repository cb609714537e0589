#![cfg(not(feature = "loom"))]
//! Building TLS configurations: each loading problem is its own error,
//! naming the file.

use certs_gen::{Pki, PkiOptions};
use mqtls_harness::tls::{ClientTlsOptions, PemSource, ServerTlsOptions, TlsError};
use std::path::Path;

fn written_pki() -> (Pki, tempfile::TempDir) {
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write_pem(dir.path(), false).unwrap();
    (pki, dir)
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn missing_file_names_the_path_and_what_it_should_hold() {
    let (_pki, dir) = written_pki();
    let missing = dir.path().join("nope.pem");
    let err = ServerTlsOptions::from_files(missing.clone(), dir.path().join("server.key"))
        .build()
        .unwrap_err();
    match &err {
        TlsError::Read { what, path, .. } => {
            assert_eq!(*what, "server certificate");
            assert_eq!(path, &missing);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&shown(&missing)), "{err}");

    let err = ClientTlsOptions::from_files(missing.clone(), "localhost")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::Read {
                what: "CA certificate",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn key_given_as_certificate_and_certificate_given_as_key() {
    let (_pki, dir) = written_pki();
    let (pem, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));

    let err = ServerTlsOptions::from_files(key.clone(), key.clone())
        .build()
        .unwrap_err();
    match &err {
        TlsError::NoCertificate { source_name, .. } => assert_eq!(source_name, &shown(&key)),
        other => panic!("{other:?}"),
    }

    let err = ServerTlsOptions::from_files(pem.clone(), pem.clone())
        .build()
        .unwrap_err();
    match &err {
        TlsError::NoPrivateKey { source_name } => assert_eq!(source_name, &shown(&pem)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreadable_key_is_reported_as_bad_pem_or_unsupported() {
    let (_pki, dir) = written_pki();
    let broken_pem = dir.path().join("truncated.key");
    std::fs::write(&broken_pem, "-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap();
    let err = ServerTlsOptions::from_files(dir.path().join("server.pem"), broken_pem.clone())
        .build()
        .unwrap_err();
    match &err {
        TlsError::BadPem { source_name, .. } => assert_eq!(source_name, &shown(&broken_pem)),
        other => panic!("{other:?}"),
    }

    let not_a_key = dir.path().join("garbage.key");
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nAAECAwQFBgcICQ==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = ServerTlsOptions::from_files(dir.path().join("server.pem"), not_a_key.clone())
        .build()
        .unwrap_err();
    match &err {
        TlsError::UnsupportedKey { source_name, .. } => assert_eq!(source_name, &shown(&not_a_key)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn certificate_that_does_not_match_its_key_names_both_files() {
    let (_pki, dir) = written_pki();
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("client.key"));
    let err = ServerTlsOptions::from_files(cert.clone(), key.clone())
        .build()
        .unwrap_err();
    match &err {
        TlsError::KeyMismatch { cert: c, key: k } => {
            assert_eq!(c, &shown(&cert));
            assert_eq!(k, &shown(&key));
        }
        other => panic!("{other:?}"),
    }

    let err = ClientTlsOptions::from_files(dir.path().join("ca.pem"), "localhost")
        .with_client_cert(dir.path().join("client.pem"), dir.path().join("server.key"))
        .build()
        .unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
}

#[test]
fn in_memory_sources_are_named_in_errors() {
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let err = ServerTlsOptions::from_files(
        PemSource::memory("server.pem", pki.server.cert_pem()),
        PemSource::memory("client.key", pki.client.key_pem()),
    )
    .build()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the certificate in server.pem (in memory) does not match the private key in \
         client.key (in memory): pass the key generated together with this certificate \
         (`mqtls certs --out DIR` writes a matching test set)"
    );
}

#[test]
fn required_client_certificates_need_a_client_ca() {
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let mut options = ServerTlsOptions::from_pki(&pki);
    options.require_client_cert = true;
    assert!(matches!(options.build(), Err(TlsError::ClientCaMissing)));
}

#[test]
fn invalid_server_name_is_refused() {
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let err = ClientTlsOptions::from_pki(&pki)
        .with_server_name("not a name")
        .build()
        .unwrap_err();
    assert!(matches!(err, TlsError::InvalidServerName { name } if name == "not a name"));
}

#[test]
fn configs_offer_alpn_mqtt_and_both_tls_versions() {
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let server = ServerTlsOptions::from_pki(&pki).server_config().unwrap();
    assert_eq!(server.alpn_protocols, vec![b"mqtt".to_vec()]);
    let client = ClientTlsOptions::from_pki(&pki).client_config().unwrap();
    assert_eq!(client.alpn_protocols, vec![b"mqtt".to_vec()]);
}
