//! The fixed header: packet type, flags and the Remaining Length, a
//! Variable Byte Integer of at most four bytes. MQTT 5 also requires its
//! minimal form [MQTT-1.5.5-1]; MQTT 3.1.1 does not (§2.2.3 only limits it
//! to four bytes), so the header is framed either way and decoding a 5.0
//! packet checks [`FixedHeader::is_minimal`].

use super::{CodecError, PacketType, Version};

/// The largest value a Variable Byte Integer can hold (4 bytes).
pub const MAX_VARINT: u32 = 268_435_455;

/// Why a Variable Byte Integer could not be read.
pub(crate) enum VarIntError {
    /// The bytes end before the integer does.
    Incomplete,
    /// Continues past the fourth byte.
    TooLong,
    /// Not the shortest encoding.
    NotMinimal,
}

/// Reads a Variable Byte Integer from the front of `s`: (value, bytes
/// used), in the minimal form MQTT 5 requires.
#[inline]
pub(crate) fn parse_varint(s: &[u8]) -> Result<(u32, usize), VarIntError> {
    let (value, n) = parse_varint_any_form(s)?;
    if n != varint_len(value) {
        return Err(VarIntError::NotMinimal);
    }
    Ok((value, n))
}

/// Reads a Variable Byte Integer of at most four bytes from the front of
/// `s`, in any form: (value, bytes used). Never `NotMinimal`.
#[inline]
fn parse_varint_any_form(s: &[u8]) -> Result<(u32, usize), VarIntError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let b = *s.get(i).ok_or(VarIntError::Incomplete)?;
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(VarIntError::TooLong)
}

/// The number of bytes `v` takes as a Variable Byte Integer.
#[inline]
pub(crate) fn varint_len(v: u32) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// A parsed fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The first byte (type nibble and flags nibble).
    pub byte1: u8,
    /// The Remaining Length.
    pub remaining_length: u32,
    /// Bytes used by the fixed header (2 to 5).
    pub header_len: usize,
}

impl FixedHeader {
    /// Bytes of the whole packet: fixed header plus Remaining Length.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.remaining_length as usize
    }

    /// True if the Remaining Length is in its minimal form, which MQTT 5
    /// requires [MQTT-1.5.5-1] and MQTT 3.1.1 does not.
    #[inline]
    pub fn is_minimal(&self) -> bool {
        self.header_len == 1 + varint_len(self.remaining_length)
    }

    /// The flags nibble.
    pub fn flags(&self) -> u8 {
        self.byte1 & 0x0f
    }

    /// The packet type, or the error for a reserved type nibble.
    pub fn packet_type(&self, version: Version) -> Result<PacketType, CodecError> {
        let code = self.byte1 >> 4;
        match PacketType::from_u8(code) {
            Some(PacketType::Auth) if version == Version::V311 => None,
            t => t,
        }
        .ok_or(CodecError::ReservedPacketType {
            offset: 0,
            type_code: code,
            version,
        })
    }
}

/// Parses the fixed header at the front of `s`. `Ok(None)` means more bytes
/// are needed to know the Remaining Length. A Remaining Length longer than
/// needed is accepted here, as MQTT 3.1.1 frames it; the 5.0 decoder
/// rejects it (see [`FixedHeader::is_minimal`]).
#[inline]
pub fn parse_fixed_header(s: &[u8]) -> Result<Option<FixedHeader>, CodecError> {
    let Some((&byte1, rest)) = s.split_first() else {
        return Ok(None);
    };
    match parse_varint_any_form(rest) {
        Ok((remaining_length, n)) => Ok(Some(FixedHeader {
            byte1,
            remaining_length,
            header_len: 1 + n,
        })),
        Err(VarIntError::Incomplete) => Ok(None),
        Err(VarIntError::TooLong) => Err(CodecError::VarIntTooLong {
            offset: 1,
            what: "remaining length",
        }),
        Err(VarIntError::NotMinimal) => Err(not_minimal_remaining_length()),
    }
}

/// The MQTT 5 error for a Remaining Length not in its minimal form.
pub(crate) fn not_minimal_remaining_length() -> CodecError {
    CodecError::VarIntNotMinimal {
        offset: 1,
        what: "remaining length",
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries() {
        for (v, enc) in [
            (0u32, &[0x00u8][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xff, 0xff, 0x7f]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (MAX_VARINT, &[0xff, 0xff, 0xff, 0x7f]),
        ] {
            assert!(matches!(parse_varint(enc), Ok((x, n)) if x == v && n == enc.len()));
            assert_eq!(varint_len(v), enc.len());
        }
        assert!(matches!(
            parse_varint(&[0x80, 0x00]),
            Err(VarIntError::NotMinimal)
        ));
        assert!(matches!(
            parse_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(VarIntError::TooLong)
        ));
        assert!(matches!(
            parse_varint(&[0x80]),
            Err(VarIntError::Incomplete)
        ));
    }

    /// MQTT 3.1.1 §2.2.3 only limits the Remaining Length to four bytes, so
    /// the framer accepts a longer form than needed and says it is not
    /// minimal; MQTT-1.5.5-1 (5.0 only) is the decoder's to apply.
    #[test]
    fn framing_accepts_a_remaining_length_in_any_form_of_up_to_four_bytes() {
        for (enc, value) in [
            (&[0xc0u8, 0x80, 0x00][..], 0u32),
            (&[0xc0, 0x80, 0x80, 0x80, 0x00], 0),
            (&[0x30, 0x85, 0x80, 0x00], 5),
        ] {
            let h = parse_fixed_header(enc).unwrap().unwrap();
            assert_eq!(h.remaining_length, value);
            assert_eq!(h.header_len, enc.len());
            assert!(!h.is_minimal());
        }
        assert!(
            parse_fixed_header(&[0xc0, 0x00])
                .unwrap()
                .unwrap()
                .is_minimal()
        );
        assert_eq!(
            parse_fixed_header(&[0xc0, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(CodecError::VarIntTooLong {
                offset: 1,
                what: "remaining length"
            })
        );
    }
}
