//! `MqttString`: a UTF-8 Encoded String as MQTT defines it, backed by
//! `Bytes` so decoded strings share the packet's buffer.

use super::{CodecError, Version, utf8};
use bytes::Bytes;
use serde::{Serialize, Serializer};
use std::fmt;
use std::ops::Deref;

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
    // Strings on the wire are nearly always ASCII and NUL-free, which one
    // scan settles; UTF-8 validation and the position of a NUL only when
    // it finds otherwise.
    let found = scan::<false>(b);
    if found.non_ascii
        && !utf8::is_well_formed(b)
        && let Err(e) = std::str::from_utf8(b)
    {
        return Some(Flaw::IllFormed(e.valid_up_to()));
    }
    found
        .flawed
        .then(|| memchr::memchr(0, b))
        .flatten()
        .map(Flaw::Null)
}

/// Bytes 0x01 in every lane.
const LANES_01: u64 = u64::from_ne_bytes([0x01; 8]);
/// Bytes 0x80 in every lane.
const LANES_80: u64 = u64::from_ne_bytes([0x80; 8]);

/// Bytes 0x08 and 0x23 in every lane.
const LANES_08: u64 = u64::from_ne_bytes([0x08; 8]);
const LANES_23: u64 = u64::from_ne_bytes([0x23; 8]);

/// Where a byte of `w` is NUL (or, with `WILD`, `+` or `#`), the high bit
/// of some lane of the result is set once masked with `LANES_80` (the
/// caller masks once, after OR-ing the words: masking distributes over OR).
/// `(x - 1) & !x` sets a lane's high bit where the lane is 0, and a borrow,
/// the only way another lane gets it, starts at a lane that is 0, so the
/// answer is exact. `+` (0x2B) and `#` (0x23) differ in bit 3 alone: with
/// it cleared, both and only they read 0x23.
#[inline(always)]
fn flaws_unmasked<const WILD: bool>(w: u64) -> u64 {
    let nul = w.wrapping_sub(LANES_01) & !w;
    if !WILD {
        return nul;
    }
    let wild = (w & !LANES_08) ^ LANES_23;
    nul | (wild.wrapping_sub(LANES_01) & !wild)
}

/// Bytes 0x7F in every lane.
const LANES_7F: u64 = u64::from_ne_bytes([0x7f; 8]);

/// The high bit set in exactly the lanes of `w` that are `+` or `#`, and no
/// other bit (for their positions: no borrow crosses lanes here, unlike
/// [`flaws_unmasked`]). `+` and `#` read 0x23 with bit 3 cleared, so the
/// lanes wanted are those of `x` that are 0: `(lane & 0x7F) + 0x7F` has
/// the high bit unless the lane's low bits are all 0, and OR-ing the lane
/// covers its own high bit.
#[inline(always)]
pub(super) fn wildcard_lanes(w: u64) -> u64 {
    let x = (w & !LANES_08) ^ LANES_23;
    !(((x & LANES_7F) + LANES_7F) | x | LANES_7F)
}

/// What one pass over a string found.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Scan {
    /// Holds NUL; with `WILD`, also empty or holding `+` or `#` (not a
    /// topic name): for the full checks to report.
    flawed: bool,
    /// Holds a byte of 0x80 or more (whose UTF-8 the caller checks).
    non_ascii: bool,
}

/// Scans `s` in one pass, without a byte-by-byte loop: short strings as
/// one or two (overlapping) 8-byte words, longer ones 16 bytes at a time
/// with an overlapping last block. A few instructions per word or block,
/// where `is_ascii` plus `memchr3` cost ~100 instructions for a typical
/// 46-byte topic (and `memchr` alone ~60 for a 15-byte filter). `WILD`
/// makes `+`, `#` and emptiness flaws too (the topic-name rules).
#[inline(always)]
fn scan<const WILD: bool>(s: &[u8]) -> Scan {
    let word = |b: &[u8; 8]| u64::from_le_bytes(*b);
    let (flaws, high) = match s.len() {
        0 => {
            return Scan {
                flawed: WILD,
                non_ascii: false,
            };
        }
        1..=3 => {
            // Every byte of a 1-3 byte string is among these three; the
            // padding is a harmless 'a'.
            let at = |i: usize| s.get(i).copied().unwrap_or(b'a');
            let w = word(&[
                at(0),
                at(s.len() / 2),
                at(s.len() - 1),
                b'a',
                b'a',
                b'a',
                b'a',
                b'a',
            ]);
            (flaws_unmasked::<WILD>(w), w)
        }
        4..=7 => {
            let (lo, hi) = (s.first_chunk::<4>(), s.last_chunk::<4>());
            let (lo, hi) = (
                lo.copied().unwrap_or_default(),
                hi.copied().unwrap_or_default(),
            );
            let w = u64::from(u32::from_le_bytes(lo)) | (u64::from(u32::from_le_bytes(hi)) << 32);
            (flaws_unmasked::<WILD>(w), w)
        }
        8..=16 => {
            let (lo, hi) = (s.first_chunk::<8>(), s.last_chunk::<8>());
            let (lo, hi) = (
                word(&lo.copied().unwrap_or_default()),
                word(&hi.copied().unwrap_or_default()),
            );
            (
                flaws_unmasked::<WILD>(lo) | flaws_unmasked::<WILD>(hi),
                lo | hi,
            )
        }
        _ => return blocks::scan::<WILD>(s),
    };
    Scan {
        flawed: flaws & LANES_80 != 0,
        non_ascii: high & LANES_80 != 0,
    }
}

/// [`scan`] for strings of more than 16 bytes, 16 at a time.
mod blocks {
    use super::Scan;

    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(super) fn scan<const WILD: bool>(s: &[u8]) -> Scan {
        // SAFETY: SSE2 is part of the x86_64 baseline, so every x86_64 CPU
        // has it (no run-time detection needed).
        unsafe { scan_sse2::<WILD>(s) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    #[inline]
    fn scan_sse2<const WILD: bool>(s: &[u8]) -> Scan {
        use std::arch::x86_64::{_mm_movemask_epi8, _mm_or_si128, _mm_setzero_si128};
        let (mut bad, mut high) = (_mm_setzero_si128(), _mm_setzero_si128());
        let (blocks, tail) = s.as_chunks::<16>();
        for b in blocks {
            let (f, v) = block::<WILD>(b);
            bad = _mm_or_si128(bad, f);
            high = _mm_or_si128(high, v);
        }
        if !tail.is_empty()
            && let Some(last) = s.last_chunk::<16>()
        {
            let (f, v) = block::<WILD>(last);
            bad = _mm_or_si128(bad, f);
            high = _mm_or_si128(high, v);
        }
        Scan {
            flawed: _mm_movemask_epi8(bad) != 0,
            non_ascii: _mm_movemask_epi8(high) != 0,
        }
    }

    /// The 16 bytes of `b`, and a mask of those that are NUL (or, with
    /// `WILD`, `+` or `#`: both read 0x23 with bit 3 cleared).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    #[inline]
    fn block<const WILD: bool>(
        b: &[u8; 16],
    ) -> (std::arch::x86_64::__m128i, std::arch::x86_64::__m128i) {
        use std::arch::x86_64::{
            _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_or_si128, _mm_set1_epi8,
            _mm_setzero_si128,
        };
        // SAFETY: `b` is 16 readable bytes, and the load has no alignment
        // requirement.
        let v = unsafe { _mm_loadu_si128(b.as_ptr().cast()) };
        let nul = _mm_cmpeq_epi8(v, _mm_setzero_si128());
        if !WILD {
            return (nul, v);
        }
        let wild = _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8(!0x08)), _mm_set1_epi8(0x23));
        (_mm_or_si128(nul, wild), v)
    }

    /// Elsewhere, two 8-byte words per block.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    pub(super) fn scan<const WILD: bool>(s: &[u8]) -> Scan {
        use super::{LANES_80, flaws_unmasked};
        let (mut flaws, mut high) = (0u64, 0u64);
        let (words, tail) = s.as_chunks::<8>();
        for w in words.iter().map(|w| u64::from_le_bytes(*w)) {
            flaws |= flaws_unmasked::<WILD>(w);
            high |= w;
        }
        if !tail.is_empty()
            && let Some(last) = s.last_chunk::<8>()
        {
            let w = u64::from_le_bytes(*last);
            flaws |= flaws_unmasked::<WILD>(w);
            high |= w;
        }
        Scan {
            flawed: flaws & LANES_80 != 0,
            non_ascii: high & LANES_80 != 0,
        }
    }
}

/// True if `s` is certainly a valid string and topic name: non-empty, at
/// most [`MAX_STRING_LEN`] bytes, well-formed UTF-8, free of NUL, `+` and
/// `#`. `false` means "not known": the caller runs the full checks, which
/// report what is wrong.
#[inline]
fn is_valid_topic_name(s: &[u8]) -> bool {
    let scan = scan::<true>(s);
    s.len() <= MAX_STRING_LEN && !scan.flawed && (!scan.non_ascii || utf8::is_well_formed(s))
}

/// A topic name checked in place by [`valid_topic_name_in`]: where it
/// lies in the window it was checked in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckedTopic {
    start: usize,
    end: usize,
}

/// [`is_valid_topic_name`] for the `len` bytes at `start` in `window`, which
/// may go on past them (the rest of the stream buffer). A name of up to 32
/// (or 64) bytes with as many bytes of window from its start is checked
/// without a branch on its length or its bytes: on streams of mixed topics
/// the length-class dispatch and the UTF-8 loop's exit were mispredicted two
/// to three times a PUBLISH, which cost more than all the checking does.
#[inline]
pub(crate) fn valid_topic_name_in(window: &[u8], start: usize, len: usize) -> Option<CheckedTopic> {
    let end = start.checked_add(len)?;
    let rest = window.get(start..).unwrap_or_default();
    let ok = match (rest.first_chunk::<32>(), rest.first_chunk::<64>()) {
        (Some(block), _) if len <= 32 => short::is_valid_topic_name(block, len),
        (_, Some(block)) if len <= 64 => short::is_valid_topic_name(block, len),
        _ => is_valid_topic_name(window.get(start..end)?),
    };
    ok.then_some(CheckedTopic { start, end })
}

/// A name of at most `N` (32 or 64) bytes at the front of an `N`-byte block.
mod short {
    /// True if the first `len` (at most `N`) bytes of `block` are a valid
    /// topic name; the bytes after them do not matter.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(super) fn is_valid_topic_name<const N: usize>(block: &[u8; N], len: usize) -> bool {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { sse2(block, len) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    #[inline]
    fn sse2<const N: usize>(block: &[u8; N], len: usize) -> bool {
        use std::arch::x86_64::{
            _mm_add_epi8, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8,
            _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_setr_epi8,
            _mm_setzero_si128, _mm_storeu_si128,
        };
        // Bytes past the name become 'a': not a flaw, ASCII, and, run
        // through the UTF-8 automaton after the name, they keep it accepting
        // if the name ends on a character boundary and rejecting if not.
        let n = _mm_set1_epi8(len.min(N) as i8);
        let lanes = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let pad = _mm_set1_epi8(b'a' as i8);
        let (mut flaws, mut high) = (_mm_setzero_si128(), _mm_setzero_si128());
        let mut bytes = [0u8; N];
        let (from, _) = block.as_chunks::<16>();
        let (to, _) = bytes.as_chunks_mut::<16>();
        for (k, (from, to)) in from.iter().zip(to).enumerate() {
            // SAFETY: `from` is 16 readable bytes; no alignment needed.
            let v = unsafe { _mm_loadu_si128(from.as_ptr().cast()) };
            let index = _mm_add_epi8(lanes, _mm_set1_epi8((16 * k) as i8));
            let inside = _mm_cmpgt_epi8(n, index);
            let v = _mm_or_si128(_mm_and_si128(inside, v), _mm_andnot_si128(inside, pad));
            // NUL, '+' or '#' ('+' and '#' read 0x23 with bit 3 cleared).
            let wild = _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8(!0x08)), _mm_set1_epi8(0x23));
            flaws = _mm_or_si128(flaws, _mm_cmpeq_epi8(v, _mm_setzero_si128()));
            flaws = _mm_or_si128(flaws, wild);
            high = _mm_or_si128(high, v);
            // SAFETY: `to` is 16 writable bytes; no alignment needed.
            unsafe { _mm_storeu_si128(to.as_mut_ptr().cast(), v) };
        }
        if len == 0 || _mm_movemask_epi8(flaws) != 0 {
            return false;
        }
        _mm_movemask_epi8(high) == 0 || super::utf8::is_well_formed_padded(&bytes)
    }

    /// Elsewhere, the general check.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    pub(super) fn is_valid_topic_name<const N: usize>(block: &[u8; N], len: usize) -> bool {
        block.get(..len).is_some_and(super::is_valid_topic_name)
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
        if is_valid_topic_name(&bytes) {
            return Ok((MqttString(bytes), true));
        }
        Self::from_bytes(bytes, offset, what, version).map(|s| (s, false))
    }

    /// The topic name `checked` found in the window whose first
    /// `frame.len()` bytes are `frame` (the same bytes, so the check holds
    /// for them).
    #[inline]
    pub(crate) fn from_checked(frame: &Bytes, checked: CheckedTopic) -> Self {
        let s = frame.slice(checked.start..checked.end);
        debug_assert!(std::str::from_utf8(&s).is_ok_and(|t| t.bytes().all(|b| b != 0)));
        MqttString(s)
    }

    /// True if the string is certainly a valid topic name (non-empty, no
    /// wildcards); `false` means "run the full topic check".
    #[inline]
    pub(crate) fn is_valid_topic_name(&self) -> bool {
        // Already well-formed and NUL-free: the scan settles the rest.
        !scan::<true>(&self.0).flawed
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

    /// The string scan against the obvious rule (the UTF-8 error first,
    /// then the first NUL), for every length around the word and block
    /// sizes and every position of a NUL or a bad byte.
    #[test]
    fn string_flaws_match_the_byte_rule() {
        let rule = |s: &[u8]| match std::str::from_utf8(s) {
            Err(e) => Some(("utf8", e.valid_up_to())),
            Ok(_) => s.iter().position(|&b| b == 0).map(|i| ("nul", i)),
        };
        let found = |s: &[u8]| {
            find_flaw(s).map(|f| match f {
                Flaw::IllFormed(i) => ("utf8", i),
                Flaw::Null(i) => ("nul", i),
            })
        };
        for len in 0..=50 {
            // Wildcards are fine in a string (they are flaws only in names).
            let good: Vec<u8> = (0..len).map(|i| b"a/+#b-"[i % 6]).collect();
            assert_eq!(found(&good), None, "{len}");
            for at in 0..len {
                for bad in [0u8, 0x80, 0xc3, 0xff, 0x01, 0x7f] {
                    let mut s = good.clone();
                    s[at] = bad;
                    assert_eq!(found(&s), rule(&s), "len {len} at {at} byte {bad:#x}");
                    if at + 1 < len {
                        s[at + 1] = 0;
                        assert_eq!(found(&s), rule(&s), "len {len} at {at} byte {bad:#x}, NUL");
                    }
                }
            }
        }
    }

    /// The topic scan against the obvious rule, for every length around
    /// the word size and every position of a bad or non-ASCII byte.
    #[test]
    fn topic_scan_matches_the_byte_rule() {
        let rule = |s: &[u8]| {
            !s.is_empty()
                && s.len() <= MAX_STRING_LEN
                && std::str::from_utf8(s).is_ok()
                && s.iter().all(|&b| b != 0 && b != b'+' && b != b'#')
        };
        assert!(!is_valid_topic_name(b""));
        for len in 1..=50 {
            let good: Vec<u8> = (0..len).map(|i| b"sensor/7-"[i % 9]).collect();
            assert!(is_valid_topic_name(&good), "{len}");
            for at in 0..len {
                for bad in [0u8, b'+', b'#', 0x80, 0xc3, 0xff, 0x01, 0x7f, 0x2a, 0x2c] {
                    let mut s = good.clone();
                    s[at] = bad;
                    assert_eq!(
                        is_valid_topic_name(&s),
                        rule(&s),
                        "len {len} at {at} byte {bad:#x}"
                    );
                }
                // A well-formed two-byte character ("é") at every position.
                if at + 1 < len {
                    let mut s = good.clone();
                    s[at..at + 2].copy_from_slice("é".as_bytes());
                    assert!(is_valid_topic_name(&s), "len {len} at {at}");
                    s[at + 1] = b'#';
                    assert!(!is_valid_topic_name(&s), "len {len} at {at}");
                }
            }
        }
        let long = vec![b'a'; MAX_STRING_LEN + 1];
        assert!(!is_valid_topic_name(&long));
        assert!(is_valid_topic_name(&long[..MAX_STRING_LEN]));
    }

    /// The in-window check against the plain one, for every name length up
    /// to past the 32-byte block, at several starts, with every kind of byte
    /// after the name: what follows never changes the answer (a character
    /// cut at the name's end and completed after it included).
    #[test]
    fn topic_check_in_a_window_ignores_what_follows() {
        let names: Vec<Vec<u8>> = (0..=72)
            .flat_map(|len| {
                let plain: Vec<u8> = (0..len).map(|i| b"sensor/7-"[i % 9]).collect();
                let mut variants = vec![plain.clone()];
                for bad in [0u8, b'+', b'#', 0x80, 0xc3, 0xe6, 0xf0, 0xff] {
                    for at in [0, len / 2, len.saturating_sub(1)] {
                        if at < len {
                            let mut s = plain.clone();
                            s[at] = bad;
                            variants.push(s);
                        }
                    }
                }
                // Well-formed multi-byte characters, whole or cut at the end.
                for c in ["é", "日", "🚀"] {
                    let mut s: Vec<u8> =
                        plain.iter().copied().take(len.saturating_sub(4)).collect();
                    s.extend_from_slice(c.as_bytes());
                    s.truncate(len);
                    variants.push(s);
                }
                variants
            })
            .collect();
        let tails: [&[u8]; 5] = [
            b"",
            b"\xa9\xa9\xa9\xa9",
            b"\0\0\0",
            b"+#",
            "é日🚀".as_bytes(),
        ];
        for name in &names {
            let expected = is_valid_topic_name(name);
            for start in [0, 3] {
                for tail in tails {
                    for fill in [0usize, 80] {
                        let mut window = vec![b'x'; start];
                        window.extend_from_slice(name);
                        window.extend_from_slice(tail);
                        window.extend(std::iter::repeat_n(b'z', fill));
                        let got = valid_topic_name_in(&window, start, name.len());
                        assert_eq!(
                            got.is_some(),
                            expected,
                            "{} then {}",
                            hex::encode(name),
                            hex::encode(tail)
                        );
                    }
                }
            }
            // A name running past the window is never valid.
            assert!(valid_topic_name_in(name, 0, name.len() + 1).is_none());
        }
    }
}
