//! Byte tests on eight bytes at once (SWAR: SIMD within a register): the fast paths
//! of `decode`'s scan and the clean-line test, which skip runs of plain bytes, of the
//! word count, and of the extract stage's tokeniser.

/// The high bit of every byte.
pub const HIGH: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

/// The eight bytes of `b` from `i` as a little-endian word (`None` when fewer
/// than eight are left).
pub fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let chunk = b.get(i..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*chunk))
}

/// Whether some byte of `x` is below `n` (`n` at most 0x80; bytes of 0x80 and
/// above never count).
pub fn any_below(x: u64, n: u8) -> bool {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0
}

/// The high bit set in exactly the bytes of `x` equal to `b`.
pub fn eq_mask(x: u64, b: u8) -> u64 {
    let t = x ^ (ONES * u64::from(b));
    !(((t & !HIGH).wrapping_add(!HIGH)) | t) & HIGH
}

/// The high bit set in the bytes of `x` whose low seven bits are at least `c` (`c` at
/// most 0x80): for ASCII bytes, those `>= c`. No borrow crosses a byte, because each
/// byte has its high bit set before `c` is taken off.
pub fn ge_mask(x: u64, c: u8) -> u64 {
    (x | HIGH).wrapping_sub(ONES * u64::from(c)) & HIGH
}

/// The high bit set in the bytes of `x` in `lo..=hi`, for ASCII bytes (`hi` below
/// 0x80; a byte of 0x80 and above may or may not be marked).
pub fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    ge_mask(x, lo) & !ge_mask(x, hi + 1)
}

/// The high bit set in the bytes of `x` that are an ASCII letter or digit.
pub fn ascii_alnum_mask(x: u64) -> u64 {
    // Setting bit 5 lower-cases a capital and maps no other byte into `a..=z`.
    let letter = in_range(x | (ONES * 0x20), b'a', b'z');
    (in_range(x, b'0', b'9') | letter) & !(x & HIGH)
}

/// The high bit set in the bytes of `x` that are an ASCII letter or digit, or not
/// ASCII at all (part of a multi-byte character).
pub fn wordy_mask(x: u64) -> u64 {
    ascii_alnum_mask(x) | (x & HIGH)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The SWAR byte tests agree with byte-by-byte ones.
        #[test]
        fn swar_tests_match_bytes(x: u64, b: u8, n in 0u8..=0x80) {
            let bytes = x.to_le_bytes();
            let eq = bytes
                .iter()
                .enumerate()
                .fold(0u64, |m, (i, &v)| if v == b { m | 0x80 << (8 * i) } else { m });
            proptest::prop_assert_eq!(eq_mask(x, b), eq);
            proptest::prop_assert_eq!(any_below(x, n), bytes.iter().any(|&v| v < n));
            let wordy = bytes.iter().enumerate().fold(0u64, |m, (i, &v)| {
                if v.is_ascii_alphanumeric() || v >= 0x80 { m | 0x80 << (8 * i) } else { m }
            });
            proptest::prop_assert_eq!(wordy_mask(x), wordy);
            let alnum = bytes.iter().enumerate().fold(0u64, |m, (i, &v)| {
                if v.is_ascii_alphanumeric() { m | 0x80 << (8 * i) } else { m }
            });
            proptest::prop_assert_eq!(ascii_alnum_mask(x), alnum);
        }
    }
}
