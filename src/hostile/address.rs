//! Which addresses the hostile peers may talk to: loopback only, unless the
//! user says the remote machine is theirs.

use super::HostileError;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `host:port` and checks every address is loopback (unless
/// `allow_remote`); returns the first.
pub fn resolve(host: &str, port: u16, allow_remote: bool) -> Result<SocketAddr, HostileError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|source| HostileError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let remote = addrs.iter().find(|a| !a.ip().is_loopback());
    if let (false, Some(bad)) = (allow_remote, remote) {
        return Err(HostileError::NotLoopback {
            host: host.to_owned(),
            addr: bad.ip(),
        });
    }
    addrs.first().copied().ok_or_else(|| HostileError::Resolve {
        host: host.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
    })
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_allowed() {
        assert!(resolve("127.0.0.1", 1, false).is_ok());
        assert!(resolve("::1", 1, false).is_ok());
        let err = resolve("192.0.2.1", 1, false).unwrap_err();
        assert!(err.to_string().contains("--allow-remote"), "{err}");
        assert!(resolve("192.0.2.1", 1, true).is_ok());
    }
}
