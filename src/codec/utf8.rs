//! A yes/no UTF-8 check for the short strings MQTT carries (topics of a few
//! dozen bytes, mostly non-ASCII when not ASCII at all): a table-driven
//! automaton, one load and one shift a byte, where `std::str::from_utf8` walks
//! a non-ASCII character in about ten. Where a string fails, the caller asks
//! `std::str::from_utf8` for the position, so errors are reported the same.
//!
//! The automaton accepts exactly the well-formed sequences of RFC 3629 /
//! Unicode Table 3-7 (no overlong forms, no surrogates U+D800..U+DFFF,
//! nothing above U+10FFFF), which `tests` checks against the standard
//! library on every sequence of up to three bytes and on four-byte ones.

/// The automaton's states, as the bit offset of their 6-bit slot in a
/// transition word.
const ACCEPT: u64 = 0;
const REJECT: u64 = 6;
/// One continuation byte (80..BF) to go.
const CONT1: u64 = 12;
/// Two to go.
const CONT2: u64 = 18;
/// Three to go.
const CONT3: u64 = 24;
/// After E0: A0..BF, then one more (no overlong three-byte form).
const AFTER_E0: u64 = 30;
/// After ED: 80..9F, then one more (no surrogates).
const AFTER_ED: u64 = 36;
/// After F0: 90..BF, then two more (no overlong four-byte form).
const AFTER_F0: u64 = 42;
/// After F4: 80..8F, then two more (nothing above U+10FFFF).
const AFTER_F4: u64 = 48;

/// The word for byte `b`: for each state's slot, the state after `b`.
const fn transitions(b: u8) -> u64 {
    const fn to(from: u64, next: u64) -> u64 {
        next << from
    }
    // Every state not named below goes to REJECT (REJECT stays there).
    const ALL_REJECT: u64 = to(ACCEPT, REJECT)
        | to(REJECT, REJECT)
        | to(CONT1, REJECT)
        | to(CONT2, REJECT)
        | to(CONT3, REJECT)
        | to(AFTER_E0, REJECT)
        | to(AFTER_ED, REJECT)
        | to(AFTER_F0, REJECT)
        | to(AFTER_F4, REJECT);
    const fn set(word: u64, from: u64, next: u64) -> u64 {
        (word & !(63 << from)) | to(from, next)
    }
    let mut w = ALL_REJECT;
    match b {
        0x00..=0x7f => w = set(w, ACCEPT, ACCEPT),
        0x80..=0xbf => {
            w = set(w, CONT1, ACCEPT);
            w = set(w, CONT2, CONT1);
            w = set(w, CONT3, CONT2);
            if b <= 0x8f {
                w = set(w, AFTER_F4, CONT2);
            }
            if b <= 0x9f {
                w = set(w, AFTER_ED, CONT1);
            } else {
                w = set(w, AFTER_E0, CONT1);
            }
            if b >= 0x90 {
                w = set(w, AFTER_F0, CONT2);
            }
        }
        0xc2..=0xdf => w = set(w, ACCEPT, CONT1),
        0xe0 => w = set(w, ACCEPT, AFTER_E0),
        0xed => w = set(w, ACCEPT, AFTER_ED),
        0xe1..=0xef => w = set(w, ACCEPT, CONT2),
        0xf0 => w = set(w, ACCEPT, AFTER_F0),
        0xf1..=0xf3 => w = set(w, ACCEPT, CONT3),
        0xf4 => w = set(w, ACCEPT, AFTER_F4),
        // C0, C1 (overlong two-byte forms) and F5..FF never occur.
        _ => {}
    }
    w
}

const TABLE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = transitions(b as u8);
        b += 1;
    }
    t
};

/// True if `s` is well-formed UTF-8.
#[inline]
pub(crate) fn is_well_formed(s: &[u8]) -> bool {
    // Only the low 6 bits of `state` are the state: a shift counts modulo
    // 64, so the higher ones (left over from the table word) need no
    // masking per byte, which leaves one shift on the chain from one byte
    // to the next.
    let mut state = ACCEPT;
    for &b in s {
        state = TABLE[usize::from(b)].wrapping_shr(state as u32);
    }
    state & 63 == ACCEPT
}

/// True if the `N` bytes of `s` are well-formed UTF-8, 8 at a time: the
/// counts are fixed, so the inner steps are unrolled and no loop exit
/// depends on the string (the caller pads a shorter one with ASCII).
#[inline]
pub(crate) fn is_well_formed_padded<const N: usize>(s: &[u8; N]) -> bool {
    let (words, tail) = s.as_chunks::<8>();
    let mut state = ACCEPT;
    for w in words {
        for &b in w {
            state = TABLE[usize::from(b)].wrapping_shr(state as u32);
        }
    }
    for &b in tail {
        state = TABLE[usize::from(b)].wrapping_shr(state as u32);
    }
    state & 63 == ACCEPT
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn std_says(s: &[u8]) -> bool {
        std::str::from_utf8(s).is_ok()
    }

    #[test]
    fn agrees_with_std_on_every_sequence_of_up_to_three_bytes() {
        assert!(is_well_formed(b""));
        for a in 0..=255u8 {
            assert_eq!(is_well_formed(&[a]), std_says(&[a]), "{a:02x}");
            for b in 0..=255u8 {
                assert_eq!(is_well_formed(&[a, b]), std_says(&[a, b]), "{a:02x}{b:02x}");
                // The third byte matters only after a lead byte of 3 or 4.
                if a >= 0xe0 || (a < 0x80 && b >= 0xc0) || (a >= 0xc0 && b < 0x80) {
                    for c in 0..=255u8 {
                        let s = [a, b, c];
                        assert_eq!(is_well_formed(&s), std_says(&s), "{}", hex::encode(s));
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_std_on_four_byte_sequences() {
        // Every lead byte from E0 up, every second and third byte on the
        // edges of the continuation ranges, and every fourth byte.
        const EDGES: &[u8] = &[
            0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xf4, 0xff,
        ];
        for a in 0xe0..=0xffu8 {
            for &b in EDGES {
                for &c in EDGES {
                    for d in 0..=255u8 {
                        let s = [a, b, c, d];
                        assert_eq!(is_well_formed(&s), std_says(&s), "{}", hex::encode(s));
                    }
                }
            }
        }
        for s in [
            "a/ü/日本/Ωμέγα/🚀",
            "данные",
            "\u{10ffff}",
            "\u{d7ff}\u{e000}",
        ] {
            assert!(is_well_formed(s.as_bytes()), "{s}");
            let b = s.as_bytes();
            for cut in 1..b.len() {
                assert_eq!(
                    is_well_formed(&b[..cut]),
                    std_says(&b[..cut]),
                    "{s} cut at {cut}"
                );
            }
        }
    }
}
