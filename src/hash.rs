//! Stable hashing: FNV-1a, the same on every build, host and version (unlike `std`'s
//! hasher), for ids and stored hashes (the lede sketch, `changes`' quote hashes).

/// FNV-1a, 64-bit: stable across builds, hosts and versions, cheap for short strings.
/// (`scripts/build_gazetteer.py` orders the data file's words by it too, which only
/// makes the file diff well.)
pub fn fnv1a(s: &str) -> u64 {
    fnv1a_bytes(s.bytes())
}

/// FNV-1a, 64-bit, of a sequence of bytes.
pub fn fnv1a_bytes(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes
        .into_iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// FNV-1a's 64-bit offset basis.
pub const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a's 64-bit prime.
pub const PRIME: u64 = 0x0000_0100_0000_01b3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
