//! Generation options, the file layout and the overwrite rules.

use certs_gen::{CertsError, KeyType, Pki, PkiOptions};
use std::fs;
use std::path::Path;

#[test]
fn default_pki_has_distinct_pem_material_for_every_file() {
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let files = pki.pem_files();
    assert_eq!(files.len(), 18);
    for f in &files {
        let label = if f.secret {
            "PRIVATE KEY"
        } else {
            "CERTIFICATE"
        };
        assert!(
            f.contents.starts_with(&format!("-----BEGIN {label}-----")),
            "{} does not hold a {label}",
            f.relative_path
        );
    }
    let mut contents: Vec<&str> = files.iter().map(|f| f.contents).collect();
    contents.sort_unstable();
    contents.dedup();
    assert_eq!(
        contents.len(),
        files.len(),
        "two files share their contents"
    );
    assert_ne!(pki.ca.cert_der(), pki.broken.rogue_ca.cert_der());
}

#[test]
fn every_key_type_generates() {
    for key_type in [KeyType::EcdsaP256, KeyType::Ed25519, KeyType::Rsa2048] {
        let pki = Pki::generate(&PkiOptions::default().with_key_type(key_type)).unwrap();
        assert_eq!(pki.key_type, key_type);
        assert!(!pki.server.key_pem().is_empty());
    }
}

#[test]
fn bad_names_and_validity_are_refused() {
    let bad_name = PkiOptions::default().with_extra_server_name("not a host name");
    assert!(matches!(
        Pki::generate(&bad_name),
        Err(CertsError::InvalidName { name, .. }) if name == "not a host name"
    ));
    let mut collides = PkiOptions::default();
    collides.wrong_host_name = "localhost".into();
    assert!(matches!(
        Pki::generate(&collides),
        Err(CertsError::WrongHostIsServerName { .. })
    ));
    assert!(matches!(
        Pki::generate(&PkiOptions::default().with_validity_days(0)),
        Err(CertsError::InvalidValidity { days: 0 })
    ));
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn write_refuses_to_overwrite_then_force_replaces_with_private_keys_0600() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let first = Pki::generate(&PkiOptions::default()).unwrap();
    let written = first.write_pem(&out, false).unwrap();
    assert_eq!(written.len(), 18);
    assert_eq!(written[0].path, out.join("ca.pem"));
    assert!(out.join("broken/rogue-client.key").is_file());
    assert_eq!(mode(&out.join("server.key")), 0o600);
    assert_eq!(mode(&out.join("broken/expired-server.key")), 0o600);

    // A key made world-readable by hand must come back 0600 on --force.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(out.join("client.key"), fs::Permissions::from_mode(0o644)).unwrap();

    let second = Pki::generate(&PkiOptions::default()).unwrap();
    let err = second.write_pem(&out, false).unwrap_err();
    assert!(matches!(&err, CertsError::WouldOverwrite { paths } if paths.len() == 18));
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(
        fs::read_to_string(out.join("ca.pem")).unwrap(),
        first.ca.cert_pem(),
        "a refused write changed a file"
    );

    second.write_pem(&out, true).unwrap();
    assert_eq!(
        fs::read_to_string(out.join("ca.pem")).unwrap(),
        second.ca.cert_pem()
    );
    assert_eq!(mode(&out.join("client.key")), 0o600);
}

#[test]
fn refusal_lists_only_the_files_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("server.key"), "old").unwrap();
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    match pki.write_pem(dir.path(), false) {
        Err(CertsError::WouldOverwrite { paths }) => {
            assert_eq!(paths, vec![dir.path().join("server.key")]);
        }
        other => panic!("expected WouldOverwrite, got {other:?}"),
    }
    assert!(
        !dir.path().join("ca.pem").exists(),
        "wrote despite refusing"
    );
}

#[test]
fn a_directory_where_a_file_goes_is_an_error_even_with_force() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("ca.pem")).unwrap();
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    assert!(matches!(
        pki.write_pem(dir.path(), true),
        Err(CertsError::NotAFile { path }) if path == dir.path().join("ca.pem")
    ));
}
