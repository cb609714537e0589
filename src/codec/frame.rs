//! The streaming frame decoder: bytes arrive in arbitrary chunks (as TLS
//! records deliver them), complete packets come out, partial ones wait.

use super::header::{FixedHeader, parse_fixed_header};
use super::publish::Plain;
use super::{CodecError, Packet, PacketType, Version, decode_frame, decode_owned_frame, in_place};
use bytes::{Buf, Bytes, BytesMut};

/// Maximum packet size a [`FrameDecoder`] accepts unless told otherwise
/// (1 MiB; MQTT itself allows up to 268 435 460 bytes).
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1 << 20;

/// How far past the next packet a [`FrameDecoder`] checks frame headers as
/// they arrive (any TLS record or socket read fits). Headers further on are
/// checked when the reader gets there, with the same errors: scanning a
/// whole multi-megabyte buffer up front read every header from memory
/// twice, once to scan it and once, after it had left the cache, to
/// decode it.
const SCAN_AHEAD: usize = 64 * 1024;

/// One complete packet's bytes, as cut from the stream.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The whole packet, fixed header included.
    pub bytes: Bytes,
    /// Stream offset of its first byte.
    pub offset: usize,
    header: FixedHeader,
}

/// Turns a byte stream into packets.
///
/// - [`extend`](Self::extend) takes the next chunk, of any size. Frame
///   headers are checked as soon as they arrive (those up to 64 KiB past
///   the next packet; further ones as the reader reaches them): a packet
///   larger than the maximum packet size is rejected from its header, and
///   none of its bytes are kept (they are dropped within the same `extend`
///   call).
/// - [`next_packet`](Self::next_packet) returns the next complete packet,
///   `Ok(None)` if more bytes are needed, or the error. Packets before a
///   bad one are still delivered in order.
/// - After an error the stream is dead: every later call returns the same
///   error, since MQTT closes the connection on a malformed packet.
/// - Created with version `None` (a server before CONNECT), the first
///   packet must be a CONNECT and its protocol level sets the version.
/// - Error offsets count from the first byte the decoder was given.
///
/// ```
/// # #[cfg(not(feature = "loom"))] {
/// use mqtls_harness::codec::{FrameDecoder, Packet, Version};
///
/// let mut d = FrameDecoder::new(Some(Version::V311), 1024);
/// d.extend(&[0xc0]); // half a PINGREQ
/// assert_eq!(d.next_packet(), Ok(None));
/// d.extend(&[0x00, 0xd0]);
/// assert_eq!(d.next_packet(), Ok(Some(Packet::Pingreq)));
/// assert_eq!(d.next_packet(), Ok(None));
/// # }
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    /// Complete frames frozen off the front of `buf`, next in the stream:
    /// frames are cut from here, so one `BytesMut` split serves a run of
    /// them and each frame costs a cheap `Bytes` split instead.
    ready: Bytes,
    /// Bytes received after `ready`; those before `start` are consumed.
    buf: BytesMut,
    /// Offset in `buf` of the next frame. Frames decoded in place only move
    /// it; `buf` itself is advanced when frames are frozen or bytes arrive,
    /// so that stepping over a PUBACK costs an addition.
    start: usize,
    version: Option<Version>,
    max_packet_size: usize,
    /// Stream offset of the next frame (the first byte of `ready`, or of
    /// `buf[start..]` when `ready` is empty).
    base: usize,
    /// Offset in `buf` of the next frame header not yet size-checked (may
    /// lie past the end while a frame is incomplete).
    scanned: usize,
    /// Offset in `buf` where the frames that have fully arrived end.
    complete: usize,
    /// A header error found by `extend`, due once the frames before it are out.
    pending: Option<CodecError>,
    /// The error that killed the stream.
    failed: Option<CodecError>,
}

impl FrameDecoder {
    /// A decoder for `version` (None: learn it from CONNECT) that rejects
    /// packets larger than `max_packet_size` bytes (fixed header included).
    pub fn new(version: Option<Version>, max_packet_size: usize) -> Self {
        FrameDecoder {
            ready: Bytes::new(),
            buf: BytesMut::new(),
            start: 0,
            version,
            max_packet_size,
            base: 0,
            scanned: 0,
            complete: 0,
            pending: None,
            failed: None,
        }
    }

    /// The version in use, once known.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Sets the version (e.g. a client that sent CONNECT itself).
    pub fn set_version(&mut self, version: Version) {
        self.version = Some(version);
    }

    /// The maximum packet size.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Changes the maximum packet size (e.g. after CONNECT's Maximum Packet
    /// Size property). Applies to every packet not yet returned.
    pub fn set_max_packet_size(&mut self, max: usize) {
        self.max_packet_size = max;
    }

    /// Bytes received but not yet returned as packets.
    pub fn buffered(&self) -> usize {
        self.ready.len() + self.buf.len() - self.start
    }

    /// Drops the first `n` bytes of `buf` (consumed or frozen).
    fn drop_front(&mut self, n: usize) {
        self.buf.advance(n);
        self.scanned = self.scanned.saturating_sub(n);
        self.complete = self.complete.saturating_sub(n);
        self.start = self.start.saturating_sub(n);
    }

    /// The error that ended the stream, if any.
    pub fn error(&self) -> Option<&CodecError> {
        self.failed.as_ref()
    }

    /// Takes the next chunk of the stream.
    pub fn extend(&mut self, chunk: &[u8]) {
        if self.failed.is_some() || self.pending.is_some() {
            return;
        }
        self.drop_front(self.start);
        self.buf.extend_from_slice(chunk);
        self.scan();
    }

    /// Takes the next chunk as an owned buffer: when nothing is buffered it
    /// is adopted without copying (a reader that reads into a `BytesMut`).
    pub fn extend_owned(&mut self, chunk: BytesMut) {
        if self.failed.is_some() || self.pending.is_some() {
            return;
        }
        self.drop_front(self.start);
        if self.buf.is_empty() {
            self.buf = chunk;
        } else {
            self.buf.extend_from_slice(&chunk);
        }
        self.scan();
    }

    /// Walks the frame headers that have arrived, up to [`SCAN_AHEAD`]
    /// bytes past the next packet, stopping (and dropping the rest) at the
    /// first oversize or malformed one.
    fn scan(&mut self) {
        // Frames the reader has stepped past were checked as it reached
        // them (`complete_header`); both offsets are frame boundaries.
        self.scanned = self.scanned.max(self.start);
        let horizon = self.start + SCAN_AHEAD;
        loop {
            if self.scanned <= self.buf.len() {
                self.complete = self.scanned;
            }
            if self.scanned >= horizon {
                return;
            }
            let Some(rest) = self.buf.get(self.scanned..).filter(|r| !r.is_empty()) else {
                return;
            };
            // Most frames are small: a one-byte Remaining Length needs no
            // varint loop.
            if let [_, rl, ..] = *rest
                && rl < 0x80
                && 2 + usize::from(rl) <= self.max_packet_size
            {
                self.scanned += 2 + usize::from(rl);
                continue;
            }
            let at = self.base + self.ready.len() + self.scanned.saturating_sub(self.start);
            let bad = match parse_fixed_header(rest) {
                Ok(None) => return,
                Ok(Some(h)) if h.frame_len() > self.max_packet_size => CodecError::PacketTooLarge {
                    offset: at,
                    size: h.frame_len(),
                    max: self.max_packet_size,
                },
                Ok(Some(h)) => {
                    self.scanned += h.frame_len();
                    continue;
                }
                Err(e) => e.shifted(at),
            };
            self.buf.truncate(self.scanned);
            self.pending = Some(bad);
            return;
        }
    }

    fn fail(&mut self, e: CodecError) -> CodecError {
        self.ready = Bytes::new();
        self.buf = BytesMut::new();
        self.start = 0;
        self.scanned = 0;
        self.complete = 0;
        self.failed = Some(e.clone());
        e
    }

    /// The bytes from the next frame on that are at hand: `ready`, or the
    /// unconsumed part of `buf` when `ready` is empty.
    #[inline]
    fn next_bytes(&self) -> &[u8] {
        if self.ready.is_empty() {
            self.buf.get(self.start..).unwrap_or_default()
        } else {
            &self.ready
        }
    }

    /// The next complete packet, `Ok(None)` if more bytes are needed.
    #[inline]
    pub fn next_packet(&mut self) -> Result<Option<Packet>, CodecError> {
        // The common ping or acknowledgement, with a one-byte Remaining
        // Length, read straight from the bytes at hand (a dead stream has
        // none, so its error still comes from `complete_header`).
        if let Some(v) = self.version
            && let Some((p, len)) = in_place::decode_short(self.next_bytes(), v)
            && len <= self.max_packet_size
        {
            self.step_over(len);
            return Ok(Some(p));
        }
        let Some(h) = self.complete_header()? else {
            return Ok(None);
        };
        let len = h.frame_len();
        let publish = h.byte1 >> 4 == PacketType::Publish as u8;
        if let Some(v) = self.version {
            // Pings and acknowledgements hold none of their bytes once
            // decoded: read them where they lie and step over them.
            if !publish
                && let Some(p) = self
                    .next_bytes()
                    .get(..len)
                    .and_then(|f| in_place::decode(f, &h, v))
            {
                self.step_over(len);
                return Ok(Some(p));
            }
            // The common PUBLISH shares the frame's reference.
            // Its fields are found in the frozen run before the frame is
            // cut, so that the topic check can read past the frame's end.
            if publish {
                let offset = self.base;
                self.freeze_next(len);
                let plain = Plain::parse(&self.ready, len, h.header_len, h.flags(), v);
                let frame = self.take_frozen(len);
                return match plain {
                    Some(p) => Ok(Some(Packet::Publish(p.publish(frame)))),
                    None => match decode_frame(&frame, &h, Some(v)) {
                        Ok((p, _)) => Ok(Some(p)),
                        Err(e) => Err(self.fail(e.shifted(offset))),
                    },
                };
            }
        }
        let frame = self.cut(h);
        self.decode_owned_frame(frame).map(Some)
    }

    /// The next complete frame, not yet decoded, `Ok(None)` if more bytes
    /// are needed. A receiver that owns each packet's bytes before parsing
    /// them (as the broker's reader does, so that a decode error path has a
    /// message to mishandle) takes frames and then calls
    /// [`decode_frame`](Self::decode_frame).
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CodecError> {
        Ok(self.complete_header()?.map(|h| self.cut(h)))
    }

    /// The header of the next frame once all of it has arrived.
    #[inline]
    fn complete_header(&mut self) -> Result<Option<FixedHeader>, CodecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let rest = self.next_bytes();
        let h = match parse_fixed_header(rest) {
            Ok(Some(h)) => h,
            Ok(None) => {
                // `scan` cut the buffer where the bad frame starts.
                let empty = rest.is_empty();
                return match self.pending.take() {
                    Some(e) if empty => Err(self.fail(e)),
                    pending => {
                        self.pending = pending;
                        Ok(None)
                    }
                };
            }
            Err(e) => return Err(self.fail(e.shifted(self.base))),
        };
        let len = h.frame_len();
        if len > self.max_packet_size {
            let e = CodecError::PacketTooLarge {
                offset: self.base,
                size: len,
                max: self.max_packet_size,
            };
            return Err(self.fail(e));
        }
        Ok((rest.len() >= len).then_some(h))
    }

    /// Steps over the next `len` bytes, a complete frame decoded in place.
    #[inline]
    fn step_over(&mut self, len: usize) {
        if self.ready.is_empty() {
            self.start += len;
        } else {
            self.ready.advance(len);
        }
        self.base += len;
    }

    /// Cuts the complete frame whose header is `h` off the buffer.
    #[inline]
    fn cut(&mut self, h: FixedHeader) -> Frame {
        let offset = self.base;
        Frame {
            bytes: self.cut_bytes(h.frame_len()),
            offset,
            header: h,
        }
    }

    /// Cuts the next `len` bytes, a complete frame, off the buffer. With
    /// nothing frozen yet, the frames that have fully arrived are frozen
    /// first, in one split.
    #[inline]
    fn cut_bytes(&mut self, len: usize) -> Bytes {
        self.freeze_next(len);
        self.take_frozen(len)
    }

    /// Makes `ready` start with the next frame, `len` bytes that have all
    /// arrived: with nothing frozen yet, freezes the frames that have.
    #[inline]
    fn freeze_next(&mut self, len: usize) {
        if self.ready.is_empty() {
            self.drop_front(self.start);
            if self.complete < len {
                // Frames past the horizon when they arrived: scanned now,
                // so that one split still freezes a run of them.
                self.scan();
            }
            let run = self.complete.max(len).min(self.buf.len());
            self.ready = self.buf.split_to(run).freeze();
            self.scanned = self.scanned.saturating_sub(run);
            self.complete = self.complete.saturating_sub(run);
        }
    }

    /// Cuts the next `len` bytes, a frame [`freeze_next`](Self::freeze_next)
    /// put at the front of `ready`.
    #[inline]
    fn take_frozen(&mut self, len: usize) -> Bytes {
        // Only now: `scan` reads `base` as the offset of this frame.
        self.base += len;
        if len == self.ready.len() {
            std::mem::take(&mut self.ready)
        } else {
            self.ready.split_to(len)
        }
    }

    /// Decodes a frame returned by [`next_frame`](Self::next_frame),
    /// learning the version from CONNECT. An error kills the stream.
    pub fn decode_frame(&mut self, frame: &Frame) -> Result<Packet, CodecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match decode_frame(&frame.bytes, &frame.header, self.version) {
            Ok((packet, version)) => {
                self.version = Some(version);
                Ok(packet)
            }
            Err(e) => Err(self.fail(e.shifted(frame.offset))),
        }
    }

    /// [`decode_frame`](Self::decode_frame) for a frame nobody else needs.
    #[inline]
    fn decode_owned_frame(&mut self, frame: Frame) -> Result<Packet, CodecError> {
        match decode_owned_frame(frame.bytes, &frame.header, self.version) {
            Ok((packet, version)) => {
                self.version = Some(version);
                Ok(packet)
            }
            Err(e) => Err(self.fail(e.shifted(frame.offset))),
        }
    }

    /// Call at the end of the stream: fails if a packet was cut short, or
    /// if an error is pending.
    pub fn finish(&mut self) -> Result<(), CodecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Some(e) = self.pending.take() {
            return Err(self.fail(e));
        }
        if self.buffered() != 0 {
            let e = CodecError::IncompletePacket {
                offset: self.base,
                buffered: self.buffered(),
            };
            return Err(self.fail(e));
        }
        Ok(())
    }
}
