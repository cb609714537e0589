//! How binary fields look in JSON: `{"utf8": "..."}` when the bytes are
//! UTF-8, `{"hex": "..."}` otherwise, so payloads stay readable and exact.

use bytes::Bytes;
use serde::Serializer;
use serde::ser::SerializeMap;

/// Serialises `b` as `{"utf8": s}` or `{"hex": h}`.
pub(crate) fn bytes<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(1))?;
    match std::str::from_utf8(b) {
        Ok(text) => m.serialize_entry("utf8", text)?,
        Err(_) => m.serialize_entry("hex", &hex::encode(b))?,
    }
    m.end()
}

/// [`bytes`] for optional fields (`null` when absent).
pub(crate) fn opt_bytes<S: Serializer>(b: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => bytes(b, s),
        None => s.serialize_none(),
    }
}
