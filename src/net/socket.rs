//! The socket options of every MQTT connection of the shell, on both
//! ends.

use tokio::net::TcpStream;

/// Turns Nagle's algorithm off (`TCP_NODELAY`): MQTT packets are small and
/// each write is a whole batch already, so holding one back only adds
/// latency. With Nagle on, a small write sent while the previous one is
/// unacknowledged waits for the peer's delayed ACK (about 40 ms on Linux),
/// so a SUBACK followed by a delivery, or two deliveries written by two
/// turns of the writer loop, stall each other. A failure to set it is
/// harmless (the connection still works, only slower) and not reported.
pub fn prepare(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
}
