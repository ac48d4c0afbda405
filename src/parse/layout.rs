//! Lines to structure: lede and dateline, stamp lines, headings and paragraphs.

use crate::record::Section;

use super::stamp::{self, StampKind};
use super::swar;

/// The parts of an article file, as text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    /// The dateline without parentheses, e.g. `Washington`.
    pub dateline: Option<String>,
    /// The lede without the dateline.
    pub lede: String,
    /// Stamp lines found after the lede, in file order.
    pub stamps: Vec<(StampKind, String)>,
    /// Body sections.
    pub sections: Vec<Section>,
}

/// Collapses every run of white space (including no-break spaces) to one space,
/// drops zero-width characters, and trims.
pub fn clean_line(line: &str) -> String {
    if is_clean(line.as_bytes()) {
        return line.to_owned();
    }
    let mut out = String::with_capacity(line.len());
    for word in line.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| {
            !matches!(
                c,
                '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
            )
        }));
    }
    out
}

/// Fast path: single-spaced text with no tab, CR, no-break or zero-width character
/// needs no work. Multi-byte characters are checked exactly (typographic quotes and
/// dashes, common in copy, are fine); only the white-space and invisible ones —
/// U+00A0, U+1680, U+180E, U+2000–U+200D, U+2028/2029, U+202F, U+205F, U+2060,
/// U+3000, U+FEFF — send the line to the slow path.
fn is_clean(b: &[u8]) -> bool {
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return false;
    }
    let mut prev_space = false;
    let mut i = 0;
    while i < b.len() {
        // Eight bytes at a time while they are plain ASCII (no control byte, nothing
        // multi-byte): most of a line of copy.
        if let Some(x) = swar::word_at(b, i) {
            if !swar::any_below(x, 0x20) && x & swar::HIGH == 0 {
                let spaces = swar::eq_mask(x, b' ');
                if spaces & (spaces << 8) != 0 || (prev_space && spaces & 0x80 != 0) {
                    return false;
                }
                prev_space = spaces >> 63 != 0;
                i += 8;
                continue;
            }
        }
        let c = b[i];
        let dirty = match c {
            b' ' => prev_space,
            b'\t' | b'\r' | b'\x0B' | b'\x0C' => true,
            0xC2 => b.get(i + 1) == Some(&0xA0),
            0xE1 => matches!(
                (b.get(i + 1), b.get(i + 2)),
                (Some(0x9A), Some(0x80)) | (Some(0xA0), Some(0x8E))
            ),
            0xE2 => match (b.get(i + 1), b.get(i + 2)) {
                (Some(0x80), Some(x)) => matches!(x, 0x80..=0x8D | 0xA8 | 0xA9 | 0xAF),
                (Some(0x81), Some(x)) => matches!(x, 0x9F | 0xA0),
                _ => false,
            },
            0xE3 => b.get(i + 1) == Some(&0x80) && b.get(i + 2) == Some(&0x80),
            0xEF => b.get(i + 1) == Some(&0xBB) && b.get(i + 2) == Some(&0xBF),
            _ => false,
        };
        if dirty {
            return false;
        }
        prev_space = c == b' ';
        i += 1;
    }
    true
}

/// Splits a leading `(Dateline)` off a lede line.
pub fn split_dateline(lede: &str) -> (Option<String>, &str) {
    let Some(rest) = lede.strip_prefix('(') else {
        return (None, lede);
    };
    let Some(close) = rest.find(')') else {
        return (None, lede);
    };
    let inner = rest[..close].trim();
    let words = inner.split_whitespace().count();
    let plausible = !inner.is_empty()
        && inner.len() <= 80
        && words <= 8
        && inner.chars().next().is_some_and(char::is_uppercase)
        && !inner.contains(['(', '“', '"', '«']);
    if !plausible {
        return (None, lede);
    }
    (Some(inner.to_owned()), rest[close + 1..].trim_start())
}

const CLOSING: &[char] = &[
    '.', '!', '?', ':', ';', ',', '…', '"', '”', '»', '’', '\'', '—', '–', '-', ')', ']',
];
const OPENING_QUOTES: &[char] = &['“', '"', '«', '‘', '„'];

/// A line that could be a heading: short, capitalized, no closing punctuation, not a quote.
pub fn heading_shape(line: &str) -> bool {
    // Cheapest tests first: most paragraphs end with punctuation.
    if line.len() > 90 * 4 || line.ends_with(CLOSING) || line.starts_with(OPENING_QUOTES) {
        return false;
    }
    let Some(first) = line.chars().next() else {
        return false;
    };
    if !(first.is_uppercase() || first.is_ascii_digit()) {
        return false;
    }
    let words = line.split(' ').count();
    words <= 10 && line.chars().count() <= 90
}

/// Tracks whether a quotation is open at the end of each paragraph.
#[derive(Default)]
struct QuoteState {
    open: bool,
}

impl QuoteState {
    fn feed(&mut self, line: &str) {
        // On the UTF-8 bytes: `"` is 22, `“`/`”` are E2 80 9C/9D, `«`/`»` are C2 AB/BB
        // (a continuation byte never starts a character, so no false match).
        // Only those three lead bytes matter: `memchr3` finds them without a look at
        // every byte in between.
        let b = line.as_bytes();
        for i in memchr::memchr3_iter(b'"', 0xE2, 0xC2, b) {
            match (b[i], b.get(i + 1), b.get(i + 2)) {
                (b'"', _, _) => self.open = !self.open,
                (0xE2, Some(0x80), Some(0x9C)) | (0xC2, Some(0xAB), _) => self.open = true,
                (0xE2, Some(0x80), Some(0x9D)) | (0xC2, Some(0xBB), _) => self.open = false,
                _ => {}
            }
        }
    }
}

/// Reads the layout of decoded text. Returns `None` when there is no lede.
pub fn split(text: &str) -> Option<Layout> {
    let mut lines: Vec<String> = text
        .split('\n')
        .map(clean_line)
        .filter(|l| !l.is_empty())
        .collect();
    let mut idx = 0;
    let mut stamps = Vec::new();
    // Tolerate stamp lines placed before the lede.
    while let Some(line) = lines.get(idx) {
        match stamp::classify(line) {
            Some((kind, _)) => stamps.push((kind, line.clone())),
            None => break,
        }
        idx += 1;
    }
    let lede_line = lines.get(idx)?;
    idx += 1;
    let (dateline, lede) = split_dateline(lede_line);
    if !lede.chars().any(char::is_alphanumeric) {
        return None;
    }
    while let Some(line) = lines.get(idx) {
        match stamp::classify(line) {
            Some((kind, _)) if stamps.len() < 4 => stamps.push((kind, line.clone())),
            _ => break,
        }
        idx += 1;
    }
    let lede = lede.to_owned();
    let body = &mut lines[idx..];
    let mut sections = vec![Section {
        heading: None,
        paragraphs: Vec::new(),
    }];
    let mut quotes = QuoteState::default();
    let shapes: Vec<bool> = body.iter().map(|l| heading_shape(l)).collect();
    // Each line is moved into its section, not copied.
    for (i, line) in body.iter_mut().enumerate() {
        let line = std::mem::take(line);
        let followed_by_paragraph = shapes.get(i + 1).is_some_and(|next| !next);
        if !quotes.open && shapes[i] && followed_by_paragraph {
            sections.push(Section {
                heading: Some(line),
                paragraphs: Vec::new(),
            });
        } else {
            quotes.feed(&line);
            if let Some(s) = sections.last_mut() {
                s.paragraphs.push(line);
            }
        }
    }
    if sections.len() > 1 && sections[0].paragraphs.is_empty() {
        sections.remove(0);
    }
    if sections.len() == 1 && sections[0].paragraphs.is_empty() {
        sections.clear();
    }
    Some(Layout {
        dateline,
        lede,
        stamps,
        sections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dateline_variants() {
        assert_eq!(
            split_dateline("(Washington) US"),
            (Some("Washington".into()), "US")
        );
        assert_eq!(
            split_dateline("(Paris et Montréal) Le"),
            (Some("Paris et Montréal".into()), "Le")
        );
        assert_eq!(
            split_dateline("No dateline here"),
            (None, "No dateline here")
        );
        assert_eq!(split_dateline("(he said) it"), (None, "(he said) it"));
    }

    #[test]
    fn headings_and_paragraphs() {
        let text = "(Ottawa) Lede here.\nPosted at 1:00 p.m.\n\nFirst para.\nA Heading\nSecond para.\n“Quote opens\nNot a heading\ncloses.”\nLast line";
        let l = split(text).unwrap();
        assert_eq!(l.dateline.as_deref(), Some("Ottawa"));
        assert_eq!(l.stamps.len(), 1);
        assert_eq!(l.sections.len(), 2);
        assert_eq!(l.sections[0].heading, None);
        assert_eq!(l.sections[0].paragraphs, vec!["First para."]);
        assert_eq!(l.sections[1].heading.as_deref(), Some("A Heading"));
        assert_eq!(
            l.sections[1].paragraphs,
            vec![
                "Second para.",
                "“Quote opens",
                "Not a heading",
                "closes.”",
                "Last line"
            ]
        );
    }

    #[test]
    fn no_lede() {
        assert!(split("(Washington)\n").is_none());
        assert!(split("Posted at 1:00 p.m.\n").is_none());
        assert!(split("\n\n  \n").is_none());
    }

    #[test]
    fn nbsp_and_spaces_collapse() {
        assert_eq!(clean_line("plain text"), "plain text");
        assert!(is_clean("“quoted” — dashes… fine".as_bytes()));
        assert!(!is_clean(b"eight by  tes, two spaces in a chunk"));
        assert!(!is_clean(b"eight by tes,  two spaces across chunks"));
        assert!(!is_clean(b"exactly8 next chunk\tholds a tab"));
        assert!(!is_clean("no\u{a0}break".as_bytes()));
        assert!(!is_clean("narrow\u{202f}nbsp".as_bytes()));
        assert!(!is_clean("zero\u{200b}width".as_bytes()));
        assert_eq!(clean_line("two  spaces\tthere "), "two spaces there");
        assert_eq!(
            clean_line("zero\u{200b}width \u{3000}ideographic"),
            "zerowidth ideographic"
        );
        assert_eq!(
            clean_line("  Publié\u{a0}à 22\u{202f}h\u{a0}23  "),
            "Publié à 22 h 23"
        );
    }

    /// The byte-at-a-time reading of [`is_clean`], the reference for its fast path.
    fn is_clean_slow(b: &[u8]) -> bool {
        if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
            return false;
        }
        let text = String::from_utf8_lossy(b);
        !text.contains("  ")
            && !text.chars().any(|c| {
                matches!(
                    c,
                    '\t' | '\r' | '\x0B' | '\x0C' | '\u{A0}' | '\u{1680}' | '\u{180E}' | '\u{2000}'
                        ..='\u{200D}'
                            | '\u{2028}'
                            | '\u{2029}'
                            | '\u{202F}'
                            | '\u{205F}'
                            | '\u{2060}'
                            | '\u{3000}'
                            | '\u{FEFF}'
                )
            })
    }

    proptest::proptest! {
        /// The eight-byte fast path agrees with the byte-at-a-time reading.
        #[test]
        fn is_clean_matches_the_slow_reading(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["a", "b", "Z", " ", "  ", "\t", "\r", "é", "\u{a0}", "\u{2009}", "“", "—", "\u{feff}", "x.", "\u{7f}"]),
                0..40,
            )
        ) {
            let line: String = parts.concat();
            proptest::prop_assert_eq!(is_clean(line.as_bytes()), is_clean_slow(line.as_bytes()), "{:?}", line);
        }

    }
}
