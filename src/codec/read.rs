//! A bounds-checked cursor over one packet's bytes. Every read either
//! returns the value or a located `Truncated` error: no indexing, no panics.

use super::header::{VarIntError, parse_varint};
use super::string::MqttString;
use super::{CodecError, PacketType, Version};
use bytes::Bytes;

/// Reads fields from `buf[pos..end]`; offsets are positions in `buf`, whose
/// first byte is the packet's first byte.
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
    /// The version whose rules (and statement numbers) apply.
    pub version: Version,
}

impl<'a> Reader<'a> {
    /// A reader over `buf[pos..end]` (`end` is clamped to the buffer).
    pub fn new(buf: &'a Bytes, pos: usize, end: usize, version: Version) -> Self {
        let end = end.min(buf.len());
        Reader {
            buf,
            pos: pos.min(end),
            end,
            version,
        }
    }

    /// Offset of the next byte.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// True when nothing is left.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    #[inline]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        let buf: &'a Bytes = self.buf;
        let s =
            buf.get(self.pos..self.end)
                .and_then(|s| s.get(..n))
                .ok_or(CodecError::Truncated {
                    offset: self.pos,
                    what,
                    needed: n,
                    available: self.remaining(),
                })?;
        self.pos += n;
        Ok(s)
    }

    /// One byte.
    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        let s = self.take(1, what)?;
        Ok(s.first().copied().unwrap_or_default())
    }

    /// A big-endian u16.
    #[inline]
    pub fn u16(&mut self, what: &'static str) -> Result<u16, CodecError> {
        let s = self.take(2, what)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(s);
        Ok(u16::from_be_bytes(a))
    }

    /// A big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        let s = self.take(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(s);
        Ok(u32::from_be_bytes(a))
    }

    /// A Variable Byte Integer.
    pub fn varint(&mut self, what: &'static str) -> Result<u32, CodecError> {
        let offset = self.pos;
        let rest = self.buf.get(self.pos..self.end).unwrap_or_default();
        match parse_varint(rest) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(VarIntError::Incomplete) => Err(CodecError::Truncated {
                offset,
                what,
                needed: rest.len() + 1,
                available: rest.len(),
            }),
            Err(VarIntError::TooLong) => Err(CodecError::VarIntTooLong { offset, what }),
            Err(VarIntError::NotMinimal) => Err(CodecError::VarIntNotMinimal { offset, what }),
        }
    }

    /// `n` bytes, shared with the packet buffer.
    #[inline]
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, CodecError> {
        if n > self.remaining() {
            return Err(CodecError::Truncated {
                offset: self.pos,
                what,
                needed: n,
                available: self.remaining(),
            });
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// Binary Data: a u16 length, then that many bytes.
    #[inline]
    pub fn binary(&mut self, what: &'static str) -> Result<Bytes, CodecError> {
        let start = self.pos;
        let n = usize::from(self.u16(what)?);
        self.bytes(n, what).map_err(|e| match e {
            CodecError::Truncated {
                needed, available, ..
            } => CodecError::Truncated {
                offset: start,
                what,
                needed,
                available,
            },
            other => other,
        })
    }

    /// A UTF-8 Encoded String, checked.
    #[inline]
    pub fn string(&mut self, what: &'static str) -> Result<MqttString, CodecError> {
        let b = self.binary(what)?;
        let at = self.pos - b.len();
        MqttString::from_bytes(b, at, what, self.version)
    }

    /// A UTF-8 Encoded String meant as a topic name, checked as a string;
    /// true if it is also certainly a valid topic name (see
    /// [`MqttString::from_bytes_topic`]).
    #[inline]
    pub fn topic_string(&mut self, what: &'static str) -> Result<(MqttString, bool), CodecError> {
        let b = self.binary(what)?;
        let at = self.pos - b.len();
        MqttString::from_bytes_topic(b, at, what, self.version)
    }

    /// Everything left, shared with the packet buffer.
    pub fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..self.end);
        self.pos = self.end;
        b
    }

    /// A reader over the next `n` bytes (a property block); this reader
    /// moves past them.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, CodecError> {
        if n > self.remaining() {
            return Err(CodecError::Truncated {
                offset: self.pos,
                what,
                needed: n,
                available: self.remaining(),
            });
        }
        let r = Reader {
            buf: self.buf,
            pos: self.pos,
            end: self.pos + n,
            version: self.version,
        };
        self.pos += n;
        Ok(r)
    }

    /// Fails if bytes are left over.
    pub fn finish(&self, packet_type: PacketType) -> Result<(), CodecError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes {
                offset: self.pos,
                packet_type,
                extra: self.remaining(),
            })
        }
    }
}
