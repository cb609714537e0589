//! The `certs-gen` binary: what it prints and how it exits.

use std::process::Command;

fn certs_gen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_certs-gen"))
}

#[test]
fn writes_lists_and_refuses_a_second_run_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");

    let run = certs_gen().arg("--out").arg(&out).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let listing = String::from_utf8(run.stdout).unwrap();
    for name in [
        "ca.pem",
        "server.key",
        "broken/wrong-host-server.pem",
        "broken/rogue-ca.pem",
    ] {
        let path = out.join(name);
        assert!(path.is_file(), "{name} missing");
        assert!(
            listing.contains(&format!("wrote {}", path.display())),
            "{listing}"
        );
    }

    let again = certs_gen().arg("--out").arg(&out).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("refusing to overwrite") && stderr.contains("--force"),
        "{stderr}"
    );

    let forced = certs_gen()
        .args([
            "--force",
            "--key-type",
            "ed25519",
            "--san",
            "broker.test",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
}
