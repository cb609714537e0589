//! Where encoded bytes go: a real buffer, or a counter that measures a
//! packet before it is written (one code path for both, so the Remaining
//! Length always matches what is written).

use super::header::MAX_VARINT;
use super::string::{MAX_STRING_LEN, MqttString};
use super::{CodecError, PacketType};
use bytes::{BufMut, Bytes, BytesMut};

/// A destination for encoded bytes.
pub(crate) trait Sink {
    /// Appends bytes.
    fn put(&mut self, b: &[u8]);

    /// Appends one byte.
    #[inline]
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    /// Appends a big-endian u16.
    #[inline]
    fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    /// Appends a big-endian u32.
    #[inline]
    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    /// Appends a Variable Byte Integer in minimal form.
    fn varint(
        &mut self,
        v: u32,
        packet_type: PacketType,
        what: &'static str,
    ) -> Result<(), CodecError> {
        if v > MAX_VARINT {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type,
                what,
                why: "exceeds 268435455, the largest Variable Byte Integer",
            });
        }
        let mut x = v;
        loop {
            let b = (x & 0x7f) as u8;
            x >>= 7;
            if x == 0 {
                self.u8(b);
                return Ok(());
            }
            self.u8(b | 0x80);
        }
    }

    /// Appends a UTF-8 Encoded String (already checked by its type).
    #[inline]
    fn string(&mut self, s: &MqttString) {
        self.u16(s.len() as u16);
        self.put(s.as_bytes());
    }

    /// Appends Binary Data, failing if it is longer than 65 535 bytes.
    fn binary(&mut self, b: &Bytes, what: &'static str) -> Result<(), CodecError> {
        let len = u16::try_from(b.len()).map_err(|_| CodecError::TooLong {
            offset: 0,
            what,
            len: b.len(),
            max: MAX_STRING_LEN,
        })?;
        self.u16(len);
        self.put(b);
        Ok(())
    }
}

/// Appends `v` (at most [`MAX_VARINT`]) as a minimal Variable Byte Integer,
/// a byte at a time (a slice of computed length would be a `memcpy` call).
#[inline]
pub(crate) fn put_varint(out: &mut BytesMut, v: u32) {
    let mut x = v;
    loop {
        let b = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.put_u8(b);
            return;
        }
        out.put_u8(b | 0x80);
    }
}

/// Counts bytes instead of writing them.
#[derive(Default)]
pub(crate) struct Counter(pub usize);

impl Sink for Counter {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
}

impl Sink for BytesMut {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.put_slice(b);
    }
}
