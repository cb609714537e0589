//! Telling TLS from plain MQTT by a connection's first bytes: how each end
//! recognises the two port mix-ups (a plain client on the TLS port, a TLS
//! client on a plain port) and says so instead of misreading the bytes.
//!
//! A TLS record starts with its content type (0x14 change-cipher-spec, 0x15
//! alert, 0x16 handshake, 0x17 application data) and the version `03 0x`.
//! As MQTT, 0x14..=0x17 would be a CONNECT with reserved flags set, which no
//! client sends and no broker answers with, so the two never overlap.

use super::TlsError;

/// What the first bytes of a connection are, as far as they tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBytes {
    /// A TLS handshake record (a ClientHello or ServerHello).
    TlsHandshake,
    /// A TLS alert record (a TLS server refusing what it read).
    TlsAlert,
    /// Another TLS record.
    TlsOther,
    /// An MQTT CONNECT (first byte 0x10).
    MqttConnect,
    /// Something else; the first byte.
    Other(u8),
}

impl FirstBytes {
    /// Classifies the first bytes read (`None` when there are none).
    pub fn of(bytes: &[u8]) -> Option<FirstBytes> {
        let first = *bytes.first()?;
        // With only the first byte there, its content type decides; the
        // version byte confirms when it has arrived.
        let version_ok = bytes.get(1).is_none_or(|v| *v == 0x03)
            && bytes.get(2).is_none_or(|minor| *minor <= 0x04);
        Some(match first {
            0x16 if version_ok => FirstBytes::TlsHandshake,
            0x15 if version_ok => FirstBytes::TlsAlert,
            0x14 | 0x17 if version_ok => FirstBytes::TlsOther,
            0x10 => FirstBytes::MqttConnect,
            b => FirstBytes::Other(b),
        })
    }

    /// True for any TLS record.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            FirstBytes::TlsHandshake | FirstBytes::TlsAlert | FirstBytes::TlsOther
        )
    }

    /// What they are, in words: "a TLS alert", "a plain MQTT CONNECT",
    /// "plain bytes (first byte 0x47 'G')".
    pub fn describe(self) -> String {
        match self {
            FirstBytes::TlsHandshake => "a TLS handshake".into(),
            FirstBytes::TlsAlert => "a TLS alert".into(),
            FirstBytes::TlsOther => "a TLS record".into(),
            FirstBytes::MqttConnect => "a plain MQTT CONNECT".into(),
            FirstBytes::Other(b) if b.is_ascii_graphic() => {
                format!("plain bytes (first byte {b:#04x} '{}')", char::from(b))
            }
            FirstBytes::Other(b) => format!("plain bytes (first byte {b:#04x})"),
        }
    }
}

/// When a client's TLS handshake failed the way it does against a port
/// that does not speak TLS (closed or reset without a TLS answer, or
/// answered with bytes that are not TLS), what happened; `None` for a TLS
/// refusal (an alert, a certificate check).
pub fn no_tls_answer(err: &TlsError) -> Option<String> {
    use std::io::ErrorKind;
    match err {
        TlsError::Io { source } => match source.kind() {
            ErrorKind::UnexpectedEof => Some("connection closed by the broker".into()),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                Some("connection reset by the broker".into())
            }
            _ => None,
        },
        TlsError::Handshake {
            source: rustls::Error::InvalidMessage(m),
        } => Some(format!("the broker's answer is not TLS: {m:?}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::FirstBytes;

    #[test]
    fn tls_records_and_mqtt_packets_are_told_apart() {
        // A rustls ClientHello and the alert a TLS server answers plain
        // bytes with.
        assert_eq!(
            FirstBytes::of(&[0x16, 0x03, 0x01, 0x00, 0xc4]),
            Some(FirstBytes::TlsHandshake)
        );
        assert_eq!(
            FirstBytes::of(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]),
            Some(FirstBytes::TlsAlert)
        );
        assert_eq!(FirstBytes::of(&[0x16]), Some(FirstBytes::TlsHandshake));
        assert_eq!(
            FirstBytes::of(&[0x10, 0x0c, 0x00, 0x04]),
            Some(FirstBytes::MqttConnect)
        );
        // 0x16 followed by anything but a TLS version is not TLS.
        assert_eq!(FirstBytes::of(&[0x16, 0x41]), Some(FirstBytes::Other(0x16)));
        assert_eq!(FirstBytes::of(b"GET /"), Some(FirstBytes::Other(b'G')));
        assert_eq!(FirstBytes::of(&[]), None);
        assert!(FirstBytes::TlsAlert.is_tls());
        assert!(!FirstBytes::MqttConnect.is_tls());
        assert_eq!(
            FirstBytes::Other(b'G').describe(),
            "plain bytes (first byte 0x47 'G')"
        );
    }
}
