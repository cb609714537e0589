//! What the client under test's sanitizers are told, and the
//! LeakSanitizer-on-signal helper (`lsan_on_signal.c`), built with `cc` on
//! demand and preloaded into the client.
//!
//! A long-running client (`nanomq_cli sub`) never exits by itself: the
//! harness stops it with a signal, which kills it before LeakSanitizer's
//! check at exit can run. Preloaded, the helper runs that check when the
//! stop signal arrives, then lets the signal kill the process as before;
//! its report becomes a LEAK finding like any other.

use super::HostileError;
use std::path::PathBuf;
use std::process::Command;

/// The helper's source, compiled into the binary so that it is always the
/// one this harness was built with.
pub const SOURCE: &str = include_str!("lsan_on_signal.c");

/// The built helper, in a temporary directory removed when this is dropped.
#[derive(Debug)]
pub struct LeakCheck {
    /// The shared library to preload.
    pub library: PathBuf,
    _dir: tempfile::TempDir,
}

impl LeakCheck {
    /// Compiles the helper with `$CC` (default `cc`).
    pub fn build() -> Result<LeakCheck, HostileError> {
        let dir = super::temp_dir("mqtls-leak-check-")?;
        let source = dir.path().join("lsan_on_signal.c");
        let library = dir.path().join("lsan_on_signal.so");
        std::fs::write(&source, SOURCE).map_err(|source_err| HostileError::File {
            path: source.clone(),
            source: source_err,
        })?;
        let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
        let out = Command::new(&compiler)
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&library)
            .arg(&source)
            .arg("-lpthread")
            .output()
            .map_err(|e| HostileError::LeakCheckBuild {
                compiler: compiler.clone(),
                reason: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(HostileError::LeakCheckBuild {
                compiler,
                reason: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(LeakCheck { library, _dir: dir })
    }
}

/// The environment of the client under test: UBSan prints the stack of
/// each report (the signature needs it) unless `UBSAN_OPTIONS` says
/// otherwise, and with `leak` the helper is preloaded for `stop_signal`
/// (ASan must then not insist on being first in the library list).
pub fn environment(leak: Option<&LeakCheck>, stop_signal: i32) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if std::env::var_os("UBSAN_OPTIONS").is_none() {
        env.push(("UBSAN_OPTIONS".to_owned(), "print_stacktrace=1".to_owned()));
    }
    if let Some(leak) = leak {
        let lib = leak.library.display().to_string();
        let preload = match std::env::var("LD_PRELOAD") {
            Ok(old) if !old.is_empty() => format!("{old}:{lib}"),
            _ => lib,
        };
        let asan = match std::env::var("ASAN_OPTIONS") {
            Ok(old) if !old.is_empty() => format!("{old}:verify_asan_link_order=0"),
            _ => "verify_asan_link_order=0".to_owned(),
        };
        env.push(("LD_PRELOAD".to_owned(), preload));
        env.push(("ASAN_OPTIONS".to_owned(), asan));
        env.push(("MQTLS_LSAN_SIGNAL".to_owned(), stop_signal.to_string()));
    }
    env
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn the_helper_builds_and_does_nothing_but_stop_in_a_plain_process() {
        let Ok(helper) = LeakCheck::build() else {
            // No C compiler: the option reports that error to its user.
            eprintln!("skipped: no C compiler");
            return;
        };
        assert!(helper.library.exists());
        // Without a sanitizer runtime the helper re-raises the signal, so
        // the process still dies of SIGTERM (and says nothing).
        let out = Command::new("sh")
            .arg("-c")
            .arg("sleep 5 >/dev/null 2>&1 & kill -TERM $$; wait")
            .env("LD_PRELOAD", &helper.library)
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{out:?}");
        let env = environment(Some(&helper), libc::SIGTERM);
        assert!(
            env.iter()
                .any(|(k, v)| k == "MQTLS_LSAN_SIGNAL" && v == "15")
        );
    }
}
