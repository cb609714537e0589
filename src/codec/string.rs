//! `MqttString`: a UTF-8 Encoded String as MQTT defines it, backed by
//! `Bytes` so decoded strings share the packet's buffer.

use super::{CodecError, Version};
use bytes::Bytes;
use serde::{Serialize, Serializer};
use std::fmt;
use std::ops::{Deref, Range};

/// The longest string (or binary field) the 16-bit length prefix allows.
pub const MAX_STRING_LEN: usize = 65_535;

/// A UTF-8 Encoded String: well-formed UTF-8 (so no surrogates), no U+0000,
/// at most 65 535 bytes. Every constructor checks this, so encoding never
/// has to. Cloning is cheap (a reference count), and strings decoded from a
/// packet point into that packet's buffer.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MqttString(Bytes);

/// Which normative statements the string rules have in each version.
fn utf8_spec(version: Version) -> (&'static str, &'static str) {
    match version {
        Version::V311 => ("MQTT-1.5.3-1", "MQTT-1.5.3-2"),
        Version::V5 => ("MQTT-1.5.4-1", "MQTT-1.5.4-2"),
    }
}

/// The first way a byte string breaks the UTF-8 Encoded String rules.
enum Flaw {
    /// Not well-formed UTF-8 from this index.
    IllFormed(usize),
    /// U+0000 at this index.
    Null(usize),
}

impl Flaw {
    fn error(self, offset: usize, what: &'static str, version: Version) -> CodecError {
        let (ill_formed, null) = utf8_spec(version);
        match self {
            Flaw::IllFormed(i) => CodecError::InvalidUtf8 {
                offset: offset + i,
                what,
                spec: ill_formed,
            },
            Flaw::Null(i) => CodecError::NullCharacter {
                offset: offset + i,
                what,
                spec: null,
            },
        }
    }
}

/// Checks UTF-8 first, then U+0000 (the order errors are reported in).
#[inline]
fn find_flaw(b: &[u8]) -> Option<Flaw> {
    // Strings on the wire are nearly always ASCII, and `is_ascii` is a
    // cheaper scan than full UTF-8 validation.
    if !b.is_ascii()
        && let Err(e) = std::str::from_utf8(b)
    {
        return Some(Flaw::IllFormed(e.valid_up_to()));
    }
    memchr::memchr(0, b).map(Flaw::Null)
}

/// True if `s` is non-empty, at most [`MAX_STRING_LEN`] bytes, ASCII (so
/// well-formed UTF-8) and free of NUL, `+` and `#`: certainly a valid
/// string and topic name. One pass, 16 bytes at a time; the fixed-size
/// blocks let the compiler turn each into a few vector compares, where
/// `is_ascii` followed by `memchr3` cost ~100 instructions for a typical
/// 46-byte topic.
#[inline]
fn is_plain_topic_name(s: &[u8]) -> bool {
    if s.is_empty() || s.len() > MAX_STRING_LEN {
        return false;
    }
    let (blocks, tail) = s.as_chunks::<16>();
    let mut flaws = [0u8; 16];
    for block in blocks {
        mark_flaws(&mut flaws, block);
    }
    if !tail.is_empty() {
        // Re-check an overlapping last block rather than a short tail;
        // short strings are padded with a harmless byte.
        let last = match s.last_chunk::<16>() {
            Some(last) => *last,
            None => std::array::from_fn(|i| tail.get(i).copied().unwrap_or(b'a')),
        };
        mark_flaws(&mut flaws, &last);
    }
    u128::from_ne_bytes(flaws) == 0
}

/// Marks, lane by lane, the bytes of `block` that are non-ASCII, NUL, `+`
/// or `#`. Kept out of line: on its own the loop compiles to a handful of
/// 16-byte vector ops, while inlined into the loop over blocks the
/// vectorizer turned it into byte gathers across blocks (kilobytes of code).
#[inline(never)]
fn mark_flaws(flaws: &mut [u8; 16], block: &[u8; 16]) {
    for (f, &b) in flaws.iter_mut().zip(block) {
        *f |= u8::from((b == 0) | (b == b'+') | (b == b'#') | (b >= 0x80));
    }
}

impl MqttString {
    /// Checks `s` and wraps it. Fails on U+0000 or more than 65 535 bytes.
    pub fn new(s: impl Into<String>) -> Result<Self, CodecError> {
        let s: String = s.into();
        Self::from_bytes(Bytes::from(s.into_bytes()), 0, "string", Version::V5)
    }

    /// Checks `bytes` (which start at `offset` in the packet) and wraps them;
    /// errors name `what` and the statements of `version`.
    pub(crate) fn from_bytes(
        bytes: Bytes,
        offset: usize,
        what: &'static str,
        version: Version,
    ) -> Result<Self, CodecError> {
        if bytes.len() > MAX_STRING_LEN {
            return Err(CodecError::TooLong {
                offset,
                what,
                len: bytes.len(),
                max: MAX_STRING_LEN,
            });
        }
        match find_flaw(&bytes) {
            None => Ok(MqttString(bytes)),
            Some(flaw) => Err(flaw.error(offset, what, version)),
        }
    }

    /// Like [`from_bytes`](Self::from_bytes), and also tells whether the
    /// string is certainly a valid topic name (non-empty, no wildcards), so
    /// that PUBLISH, the hot path, scans its topic once. `false` means "not
    /// known": the caller runs the full topic check.
    pub(crate) fn from_bytes_topic(
        bytes: Bytes,
        offset: usize,
        what: &'static str,
        version: Version,
    ) -> Result<(Self, bool), CodecError> {
        // Every ASCII byte sequence is well-formed UTF-8, so for ASCII one
        // search for NUL and the two wildcards settles both checks.
        if is_plain_topic_name(&bytes) {
            return Ok((MqttString(bytes), true));
        }
        Self::from_bytes(bytes, offset, what, version).map(|s| (s, false))
    }

    /// `buf[range]` as a topic name if it is ASCII, non-empty and free of
    /// NUL and wildcards (so certainly a valid string and topic name), else
    /// `None` (not necessarily invalid: the caller runs the full checks).
    /// The one scan of the PUBLISH fast path.
    #[inline]
    pub(crate) fn plain_topic_name(buf: &Bytes, range: Range<usize>) -> Option<Self> {
        is_plain_topic_name(buf.get(range.clone())?).then(|| MqttString(buf.slice(range)))
    }

    /// True if the string is certainly a valid topic name (non-empty, ASCII,
    /// no wildcards); `false` means "run the full topic check".
    #[inline]
    pub(crate) fn is_plain_topic_name(&self) -> bool {
        is_plain_topic_name(&self.0)
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor (`from_bytes`, the only one that builds the
        // tuple) has checked that the bytes are UTF-8, and `Bytes` is immutable.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes (shared, not copied).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for MqttString {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl TryFrom<&str> for MqttString {
    type Error = CodecError;
    fn try_from(s: &str) -> Result<Self, CodecError> {
        MqttString::new(s)
    }
}

impl TryFrom<String> for MqttString {
    type Error = CodecError;
    fn try_from(s: String) -> Result<Self, CodecError> {
        MqttString::new(s)
    }
}

impl PartialEq<str> for MqttString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MqttString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MqttString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// The plain-topic scan against the obvious byte-by-byte rule, for every
    /// length around the block size and every position of a bad byte.
    #[test]
    fn plain_topic_scan_matches_the_byte_rule() {
        let rule = |s: &[u8]| {
            !s.is_empty()
                && s.iter()
                    .all(|&b| b != 0 && b != b'+' && b != b'#' && b.is_ascii())
        };
        assert!(!is_plain_topic_name(b""));
        for len in 1..=50 {
            let good: Vec<u8> = (0..len).map(|i| b"sensor/7-"[i % 9]).collect();
            assert!(is_plain_topic_name(&good), "{len}");
            for at in 0..len {
                for bad in [0u8, b'+', b'#', 0x80, 0xc3, 0xff] {
                    let mut s = good.clone();
                    s[at] = bad;
                    assert_eq!(
                        is_plain_topic_name(&s),
                        rule(&s),
                        "len {len} at {at} byte {bad:#x}"
                    );
                    assert!(!is_plain_topic_name(&s));
                }
            }
        }
        let long = vec![b'a'; MAX_STRING_LEN + 1];
        assert!(!is_plain_topic_name(&long));
        assert!(is_plain_topic_name(&long[..MAX_STRING_LEN]));
    }
}
