//! Bytes to text: size and content checks, BOM, UTF-8 or Windows-1252, line ends.

use super::swar;
use crate::error::{Reject, RejectKind};
use crate::record::Encoding;

/// Limits applied before and while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Longest line accepted, in bytes.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 * 1024 * 1024,
            max_line_bytes: 256 * 1024,
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Checks raw bytes and decodes them to text with `\n` line ends.
///
/// Rejects empty files, NUL bytes, binary-looking data, over-long lines and text that
/// is only white space. Invalid UTF-8 is decoded as Windows-1252.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<(String, Encoding), Reject> {
    if bytes.is_empty() {
        return Err(Reject::new(
            RejectKind::Empty,
            "the file is empty (0 bytes)",
        ));
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(too_large(bytes.len() as u64, limits.max_bytes));
    }
    let (controls, longest) = scan(bytes).map_err(|pos| {
        Reject::new(
            RejectKind::NulBytes,
            format!(
                "the file contains a NUL byte at offset {pos}: binary or corrupt, not an article"
            ),
        )
    })?;
    if longest > limits.max_line_bytes {
        return Err(Reject::new(
            RejectKind::LineTooLong,
            format!(
                "a line is {longest} bytes, over the {}-byte limit: not article text; raise parse.max_line_bytes if this is real copy",
                limits.max_line_bytes
            ),
        ));
    }
    if controls * 50 > bytes.len() {
        return Err(Reject::new(
            RejectKind::Binary,
            format!(
                "{controls} of {} bytes are control characters: binary data, not an article",
                bytes.len()
            ),
        ));
    }
    let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let (text, encoding) = match std::str::from_utf8(body) {
        Ok(s) => (s.to_owned(), Encoding::Utf8),
        Err(_) => {
            let (cow, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(body);
            (cow.into_owned(), Encoding::Windows1252)
        }
    };
    if text.trim().is_empty() {
        return Err(Reject::new(
            RejectKind::Blank,
            "the file holds only white space",
        ));
    }
    Ok((normalize_line_ends(text), encoding))
}

/// The rejection for a file over the size limit.
pub fn too_large(size: u64, max: u64) -> Reject {
    Reject::new(
        RejectKind::TooLarge,
        format!(
            "the file is {size} bytes, over the {max}-byte limit; raise parse.max_bytes if articles can be this long"
        ),
    )
}

/// One pass over the bytes: the number of C0 control bytes (other than white space)
/// and DEL, and the longest line in bytes; or the offset of the first NUL byte.
fn scan(bytes: &[u8]) -> Result<(usize, usize), usize> {
    let (mut controls, mut line_len, mut longest) = (0usize, 0usize, 0usize);
    let mut pos = 0;
    while pos < bytes.len() {
        // Eight bytes at a time while none is below 0x20 or 0x7F: most of a text.
        if let Some(x) = swar::word_at(bytes, pos) {
            if !swar::any_below(x, 0x20) && swar::eq_mask(x, 0x7F) == 0 {
                line_len += 8;
                pos += 8;
                continue;
            }
        }
        match bytes[pos] {
            0 => return Err(pos),
            b'\n' => {
                longest = longest.max(line_len);
                line_len = 0;
                pos += 1;
                continue;
            }
            b'\r' | b'\t' | 0x0B | 0x0C => {}
            0x01..=0x1F | 0x7F => controls += 1,
            _ => {}
        }
        line_len += 1;
        pos += 1;
    }
    Ok((controls, longest.max(line_len)))
}

fn normalize_line_ends(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(bytes: &[u8]) -> RejectKind {
        decode(bytes, &Limits::default()).unwrap_err().kind
    }

    #[test]
    fn rejects_empty_blank_nul_binary() {
        assert_eq!(kind(b""), RejectKind::Empty);
        assert_eq!(kind(b"  \n\t\r\n "), RejectKind::Blank);
        assert_eq!(kind(b"abc\0def"), RejectKind::NulBytes);
        let bin: Vec<u8> = (1u8..=255).cycle().take(4000).collect();
        assert_eq!(kind(&bin), RejectKind::Binary);
    }

    #[test]
    fn rejects_long_lines_and_large_files() {
        let limits = Limits {
            max_bytes: 100,
            max_line_bytes: 10,
        };
        assert_eq!(
            decode(b"short\n0123456789ab\n", &limits).unwrap_err().kind,
            RejectKind::LineTooLong
        );
        assert_eq!(
            decode(&[b'a'; 101], &limits).unwrap_err().kind,
            RejectKind::TooLarge
        );
    }

    #[test]
    fn drops_bom_and_crlf() {
        let (t, e) = decode(b"\xEF\xBB\xBFhello\r\nworld\r\n", &Limits::default()).unwrap();
        assert_eq!(t, "hello\nworld\n");
        assert_eq!(e, Encoding::Utf8);
    }

    #[test]
    fn invalid_utf8_is_windows_1252() {
        let (t, e) = decode(b"Qu\xe9bec \x93quoted\x94", &Limits::default()).unwrap();
        assert_eq!(t, "Québec “quoted”");
        assert_eq!(e, Encoding::Windows1252);
    }

    /// The byte-at-a-time reading of [`scan`], the reference for its fast path.
    fn scan_slow(bytes: &[u8]) -> Result<(usize, usize), usize> {
        if let Some(pos) = bytes.iter().position(|&b| b == 0) {
            return Err(pos);
        }
        let controls = bytes
            .iter()
            .filter(|&&b| matches!(b, 0x01..=0x08 | 0x0E..=0x1F | 0x7F))
            .count();
        let longest = bytes
            .split(|&b| b == b'\n')
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        Ok((controls, longest))
    }

    proptest::proptest! {
        /// The eight-byte fast path agrees with the byte-at-a-time reading.
        #[test]
        fn scan_matches_the_slow_reading(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'a', b'a', b' ', b'\n', 0u8, 1, 0x7F, b'\t', b'\r', 0xC3, 0xA9, 0x1F]),
                0..80,
            )
        ) {
            proptest::prop_assert_eq!(scan(&bytes), scan_slow(&bytes));
        }
    }
}
