//! The byte grammar of the kernel targets' inputs: a cursor that reads
//! operands (and never fails: past the end every read is 0), and a writer
//! that emits the same encoding, for the seed corpora and tests.
//!
//! Encodings are deliberately plain so that libFuzzer's byte mutations and
//! the dictionary move one operand at a time: a choice among `n` is one
//! byte modulo `n`, a flag set is one byte, a blob is a length byte
//! (modulo its cap plus one) followed by that many bytes.

use arbitrary::Unstructured;

/// Reads operands from an input.
#[derive(Debug)]
pub struct Script<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Script<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Script { data, pos: 0 }
    }

    /// True once every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    /// A choice among `n` (`n` > 0).
    pub fn pick(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// A blob of at most `max` bytes (fewer if the input ends).
    pub fn blob(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.byte()) % (max + 1);
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        self.data.get(start..end).unwrap_or_default()
    }

    /// Runs `f` on an [`Unstructured`] over the next blob of at most `max`
    /// bytes (arbitrary takes lengths from the end of its data, so it gets
    /// a bounded slice of its own).
    pub fn arbitrary<T>(&mut self, max: usize, f: impl FnOnce(&mut Unstructured<'a>) -> T) -> T {
        let blob = self.blob(max);
        f(&mut Unstructured::new(blob))
    }
}

/// Writes operands in the encoding [`Script`] reads.
#[derive(Debug, Default, Clone)]
pub struct ScriptWriter {
    out: Vec<u8>,
}

impl ScriptWriter {
    /// A script whose byte 0 (the fault selector) is `fault_byte`.
    pub fn new(fault_byte: u8) -> Self {
        ScriptWriter {
            out: vec![fault_byte],
        }
    }

    /// A bare writer (no fault byte), for nested operands.
    pub fn bare() -> Self {
        ScriptWriter::default()
    }

    /// One byte.
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.out.push(b);
        self
    }

    /// Choice `i` (the reader takes it modulo its `n`).
    pub fn pick(&mut self, i: usize) -> &mut Self {
        self.byte(u8::try_from(i).unwrap_or(u8::MAX))
    }

    /// A big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A blob (at most 255 bytes; longer input is cut).
    pub fn blob(&mut self, b: &[u8]) -> &mut Self {
        let b = b.get(..b.len().min(255)).unwrap_or_default();
        self.byte(u8::try_from(b.len()).unwrap_or(u8::MAX));
        self.out.extend_from_slice(b);
        self
    }

    /// The bytes written.
    pub fn finish(&self) -> Vec<u8> {
        self.out.clone()
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree() {
        let mut w = ScriptWriter::bare();
        w.pick(3).u16(0x1234).blob(b"abc").byte(9);
        let bytes = w.finish();
        let mut s = Script::new(&bytes);
        assert_eq!(s.pick(5), 3);
        assert_eq!(s.u16(), 0x1234);
        assert_eq!(s.blob(8), b"abc");
        assert_eq!(s.byte(), 9);
        assert!(s.is_empty());
        assert_eq!(s.byte(), 0, "past the end reads 0");
        assert_eq!(s.blob(8), b"");
    }

    #[test]
    fn blob_is_capped_and_cut_at_the_end() {
        let mut s = Script::new(&[200, 1, 2]);
        // 200 % (16 + 1) = 13 bytes wanted, 2 there.
        assert_eq!(s.blob(16), &[1, 2]);
        assert!(s.is_empty());
    }
}
