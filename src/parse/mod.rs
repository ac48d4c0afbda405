//! The parse stage: one file's bytes to one [`Record`].
//!
//! It owns everything that can be known from the file alone: decoding
//! ([`decode`]), the layout of lede, dateline, stamp lines, headings and paragraphs
//! ([`layout`]), opening a file safely beneath the watched folder ([`open`]), the
//! `Posted`/`Updated` stamps resolved against the capture moment ([`stamp`]), the
//! story's identity and content hash ([`id`]) and the body language (`lang`);
//! `swar` holds the eight-bytes-at-a-time tests that decoding, layout, the word
//! count and the extract stage's tokeniser use. Extraction of people, places and
//! quotes happens later, in [`crate::extract`].

pub mod decode;
pub mod id;
mod lang;
pub mod layout;
pub mod open;
pub mod stamp;
pub(crate) mod swar;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::error::{Reject, RejectKind};
use crate::record::{Record, Source, Stamp, TitleSource, SCHEMA_VERSION};

pub use decode::Limits;
pub use open::{open_beneath, OpenError};

/// Settings the parser needs.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Zone the stamps are written in.
    pub timezone: TimeZone,
    /// Name of that zone, echoed in records.
    pub timezone_name: String,
    /// Size limits.
    pub limits: Limits,
    /// How long the extract stage may take over one file before it is rejected
    /// (`too_slow`): `parse.max_extract_ms`.
    pub max_extract: Duration,
}

/// The default of [`ParseOptions::max_extract`], in milliseconds.
pub const DEFAULT_MAX_EXTRACT_MS: u64 = 2000;

impl ParseOptions {
    /// Options for a named IANA zone, with default limits.
    pub fn new(tz_name: &str) -> Result<ParseOptions, jiff::Error> {
        Ok(ParseOptions {
            timezone: TimeZone::get(tz_name)?,
            timezone_name: tz_name.to_owned(),
            limits: Limits::default(),
            max_extract: Duration::from_millis(DEFAULT_MAX_EXTRACT_MS),
        })
    }
}

/// The bytes of one input file and what is known of it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its content.
    pub bytes: Vec<u8>,
    /// Its modification time.
    pub modified: Option<Timestamp>,
}

/// Reads a regular file named by the user (`check`), refusing non-files and files
/// over the size limit before reading them whole. The daemon's readers open files
/// with [`open_beneath`] and read them with [`read_opened`] instead.
pub fn read_file(path: &Path, limits: &Limits) -> Result<SourceFile, Reject> {
    // O_NONBLOCK: should the path be a FIFO, opening it must not hang the reader.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| Reject::from_io(&e, "open the file"))?
    };
    read_opened(&file, path, limits).map_err(|e| match e {
        OpenError::Reject(r) => r,
        OpenError::Transient(e) => Reject::from_io(&e, "read the file"),
    })
}

/// Reads an opened file from its start: refuses what is not a regular file and
/// what is over the size limit (told by `fstat`, before reading), and never reads
/// past the limit should the file grow meanwhile.
pub fn read_opened(file: &File, path: &Path, limits: &Limits) -> Result<SourceFile, OpenError> {
    let meta = file.metadata().map_err(|e| io_error(e, "stat the file"))?;
    read_opened_as(file, &meta, path, limits)
}

/// An I/O error of a read: transient (retry) or the file's reject.
fn io_error(e: std::io::Error, what: &str) -> OpenError {
    if open::is_transient(&e) {
        OpenError::Transient(e)
    } else {
        OpenError::Reject(Reject::from_io(&e, what))
    }
}

/// [`read_opened`] with the file's `fstat` already in hand (`meta`, taken of this
/// descriptor): the bytes are read with positioned reads from offset 0, as one
/// `pread` when the file is the size `meta` says.
pub fn read_opened_as(
    file: &File,
    meta: &std::fs::Metadata,
    path: &Path,
    limits: &Limits,
) -> Result<SourceFile, OpenError> {
    use std::os::unix::fs::FileExt;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (FIFO, socket or device)"
        };
        return Err(OpenError::Reject(Reject::new(
            RejectKind::NotAFile,
            format!("the path is {what}, not an article file"),
        )));
    }
    if meta.len() > limits.max_bytes {
        return Err(OpenError::Reject(decode::too_large(
            meta.len(),
            limits.max_bytes,
        )));
    }
    // One byte more than the size: a read that fills it means the file grew.
    let cap = limits.max_bytes.saturating_add(1);
    let mut bytes = vec![0u8; (meta.len() + 1).min(cap) as usize];
    let mut filled = 0usize;
    loop {
        if filled == bytes.len() {
            if bytes.len() as u64 >= cap {
                break;
            }
            let grown = (bytes.len() * 2).min(cap as usize);
            bytes.resize(grown, 0);
        }
        match file.read_at(&mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                // Short of the size fstat gave: the file may have been cut; ask again.
                // At the size exactly: done (a change meanwhile shows in the second
                // fstat the reader makes).
                if filled as u64 == meta.len() && filled < bytes.len() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e, "read the file")),
        }
    }
    bytes.truncate(filled);
    if bytes.len() as u64 > limits.max_bytes {
        return Err(OpenError::Reject(decode::too_large(
            bytes.len() as u64,
            limits.max_bytes,
        )));
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok());
    Ok(SourceFile {
        path: path.to_owned(),
        bytes,
        modified,
    })
}

/// Parses one file into a record. `reference` overrides the capture moment (by
/// default the file's modification time, or now when that is unknown).
pub fn parse(
    file: &SourceFile,
    reference: Option<Timestamp>,
    opts: &ParseOptions,
) -> Result<Record, Reject> {
    let (text, encoding) = decode::decode(&file.bytes, &opts.limits)?;
    let layout = layout::split(&text).ok_or_else(|| {
        Reject::new(
            RejectKind::NoLede,
            "no lede: the first line with text is missing or holds only a dateline or stamps",
        )
    })?;
    let capture_ts = reference.or(file.modified).unwrap_or_else(Timestamp::now);
    let capture = capture_ts.to_zoned(opts.timezone.clone());
    let mut warnings = Vec::new();
    let mut posted: Option<stamp::Resolved> = None;
    let mut updated: Option<stamp::Resolved> = None;
    for (kind, line) in &layout.stamps {
        let slot = match kind {
            stamp::StampKind::Posted => &mut posted,
            stamp::StampKind::Updated => &mut updated,
        };
        if slot.is_some() {
            warnings.push(format!("extra stamp line ignored: {line:?}"));
            continue;
        }
        let resolved = stamp::classify(line)
            .and_then(|(_, rest)| stamp::read(rest))
            .and_then(|raw| stamp::resolve(&raw, &capture));
        match resolved {
            Some(r) => *slot = Some(r),
            None => warnings.push(format!("unreadable stamp line: {line:?}")),
        }
    }
    order_stamps(&mut posted, &mut updated, capture_ts, &opts.timezone);
    let posted_at = posted.map(|r| r.stamp);
    let updated_at = updated.map(|r| r.stamp);

    let (title, title_source) = title_of(&layout.lede);
    let word_count = count_words(&layout.lede)
        + layout
            .sections
            .iter()
            .map(|s| {
                s.heading.as_deref().map_or(0, count_words)
                    + s.paragraphs.iter().map(|p| count_words(p)).sum::<usize>()
            })
            .sum::<usize>();
    let reading_time_min = u32::try_from(word_count.div_ceil(230))
        .unwrap_or(u32::MAX)
        .max(1);
    let language = lang::detect(&layout);
    let content_hash = id::content_hash(layout.dateline.as_deref(), &layout.lede, &layout.sections);
    let article_id = id::article_id(layout.dateline.as_deref(), posted_at.as_ref(), &layout.lede);

    let (path, path_hex) = crate::paths::to_strings(&file.path);
    Ok(Record {
        schema: SCHEMA_VERSION,
        article_id,
        source: Source {
            path,
            path_hex,
            bytes: file.bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&file.bytes)),
            modified: file.modified.map(|t| t.to_string()),
        },
        encoding,
        dateline: layout.dateline,
        title,
        title_source,
        lede: layout.lede,
        posted_at,
        updated_at,
        capture_time: crate::record::format_instant(capture_ts, &opts.timezone),
        timezone: opts.timezone_name.clone(),
        sections: layout.sections,
        word_count,
        reading_time_min,
        language,
        content_hash,
        people: Vec::new(),
        places: Vec::new(),
        organizations: Vec::new(),
        quotes: Vec::new(),
        dates: Vec::new(),
        keywords: Vec::new(),
        revision: None,
        supersedes: None,
        changes: None,
        warnings,
        emitted_at: None,
    })
}

/// `Updated` is never earlier than `Posted`: when a naive reading says so, the update
/// crossed midnight (move it a day later, if that is not after the capture) or the
/// post was the evening before (move it a day earlier). Only inferred days move.
fn order_stamps(
    posted: &mut Option<stamp::Resolved>,
    updated: &mut Option<stamp::Resolved>,
    capture: Timestamp,
    tz: &TimeZone,
) {
    let (Some(p), Some(u)) = (posted.as_mut(), updated.as_mut()) else {
        return;
    };
    if u.stamp >= p.stamp {
        return;
    }
    if !u.day_given {
        if let Some(later) = stamp::shift_days(&u.stamp, 1, tz) {
            let fits = match &later {
                Stamp::At { ts, .. } => *ts <= capture,
                Stamp::Day(_) => true,
            };
            if fits && later >= p.stamp {
                u.stamp = later;
                return;
            }
        }
    }
    if !p.day_given {
        if let Some(earlier) = stamp::shift_days(&p.stamp, -1, tz) {
            if earlier <= u.stamp {
                p.stamp = earlier;
            }
        }
    }
}

/// Words in a cleaned line (single ASCII spaces between words): tokens with a letter
/// or digit; a lone dash or bullet is not a word.
fn count_words(s: &str) -> usize {
    // Eight bytes at a time: a word starts after a space (or at the start) with a
    // letter, a digit or a multi-byte character. The rare run that starts with ASCII
    // punctuation (`(Washington`, `"We`, a lone `-`) is looked at byte by byte.
    let b = s.as_bytes();
    let has_word = |from: usize| {
        b[from..]
            .iter()
            .take_while(|&&c| c != b' ')
            .any(|&c| c.is_ascii_alphanumeric() || c >= 0x80)
    };
    let mut count = 0;
    let mut after_space = true;
    let mut i = 0;
    while let Some(x) = swar::word_at(b, i) {
        let space = swar::eq_mask(x, b' ');
        let wordy = swar::wordy_mask(x);
        let starts = space << 8 | if after_space { 0x80 } else { 0 };
        count += (starts & wordy).count_ones() as usize;
        let mut odd = starts & !wordy & !space;
        while odd != 0 {
            let at = i + odd.trailing_zeros() as usize / 8;
            count += usize::from(has_word(at));
            odd &= odd - 1;
        }
        after_space = space >> 63 != 0;
        i += 8;
    }
    for (k, &c) in b.iter().enumerate().skip(i) {
        if after_space && c != b' ' && has_word(k) {
            count += 1;
        }
        after_space = c == b' ';
    }
    count
}

const TITLE_MAX_CHARS: usize = 200;

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "gov", "sen", "rep", "gen", "col", "lt",
    "sgt", "capt", "prof", "rev", "hon", "inc", "corp", "co", "ltd", "no", "vs", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.n", "e.g",
    "i.e", "mme", "mlle", "m", "pres", "ave", "blvd", "rd", "ft", "ga", "ala", "fla", "calif",
    "tex",
];

/// The lede's first sentence (cut at a word boundary past 200 characters).
pub fn title_of(lede: &str) -> (String, TitleSource) {
    let sentence = first_sentence(lede);
    let trimmed = sentence.trim_end_matches(['.', ' ']);
    let sentence = if trimmed.is_empty() {
        sentence
    } else {
        trimmed
    };
    if sentence.chars().count() <= TITLE_MAX_CHARS {
        return (sentence.to_owned(), TitleSource::LedeFirstSentence);
    }
    let mut cut = String::new();
    for word in sentence.split_whitespace() {
        if cut.chars().count() + word.chars().count() + 1 > TITLE_MAX_CHARS {
            break;
        }
        if !cut.is_empty() {
            cut.push(' ');
        }
        cut.push_str(word);
    }
    let cut = cut.trim_end_matches([',', ';', ':', ' ']).to_owned();
    (format!("{cut}…"), TitleSource::LedeFirstSentenceTruncated)
}

/// The text up to the first sentence end (`.`, `!`, `?`, optionally followed by a
/// closing quote) that is followed by a space and a capital or a quote, skipping
/// common abbreviations and initials.
pub fn first_sentence(text: &str) -> &str {
    for (i, c) in text.char_indices() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let mut end = i + 1;
        let rest = &text[end..];
        let rest_trim = rest.trim_start_matches(['”', '"', '’', '»', ')']);
        end += rest.len() - rest_trim.len();
        if !rest_trim.starts_with(' ') {
            continue;
        }
        let next = rest_trim[1..].chars().next();
        if !next.is_some_and(|n| n.is_uppercase() || matches!(n, '“' | '"' | '«' | '‘')) {
            continue;
        }
        if c == '.' {
            let word_start = text[..i].rfind([' ', '(']).map_or(0, |p| p + 1);
            let word = text[word_start..i].to_lowercase();
            let word = word.trim_start_matches(['“', '"', '«']);
            let initial = word.chars().count() == 1;
            if initial || ABBREVIATIONS.contains(&word) {
                continue;
            }
        }
        return text[..end].trim_end();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_file_holds_whatever_fstat_said() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        let limits = Limits {
            max_bytes: 64,
            max_line_bytes: 64,
        };
        for (at_stat, now) in [(0, 0), (5, 5), (5, 20), (20, 5), (10, 64), (10, 65)] {
            std::fs::write(&p, vec![b'x'; at_stat]).unwrap();
            let f = File::open(&p).unwrap();
            let meta = f.metadata().unwrap();
            let mut w = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            w.set_len(0).unwrap();
            w.write_all(&vec![b'y'; now]).unwrap();
            match read_opened_as(&f, &meta, &p, &limits) {
                Ok(src) => assert_eq!(src.bytes, vec![b'y'; now], "{at_stat} then {now}"),
                Err(OpenError::Reject(r)) => {
                    assert!(now > 64, "{at_stat} then {now}: {r:?}");
                    assert_eq!(r.kind, RejectKind::TooLarge);
                }
                Err(OpenError::Transient(e)) => panic!("{e}"),
            }
        }
    }

    proptest::proptest! {
        /// The eight-bytes-at-a-time word count agrees with splitting on spaces.
        #[test]
        fn word_count_is_the_split_count(s in "[ a-zA-Z0-9.,—é(\"'@\\[`{~-]{0,80}") {
            let by_split = s
                .split(' ')
                .filter(|w| w.bytes().any(|b| b.is_ascii_alphanumeric() || b >= 0x80))
                .count();
            proptest::prop_assert_eq!(count_words(&s), by_split);
        }
    }

    #[test]
    fn titles() {
        assert_eq!(
            first_sentence("Mr. Blinken went. Then he left."),
            "Mr. Blinken went."
        );
        assert_eq!(
            first_sentence("The U.S. envoy J. M. Smith spoke. Later."),
            "The U.S. envoy J. M. Smith spoke."
        );
        assert_eq!(first_sentence("“It is over.” He said so."), "“It is over.”");
        assert_eq!(first_sentence("no end"), "no end");
        let (t, s) = title_of("One two three. Four.");
        assert_eq!(
            (t.as_str(), s),
            ("One two three", TitleSource::LedeFirstSentence)
        );
        let long = "word ".repeat(100);
        let (t, s) = title_of(&long);
        assert!(t.ends_with('…') && t.chars().count() <= TITLE_MAX_CHARS + 1);
        assert_eq!(s, TitleSource::LedeFirstSentenceTruncated);
    }

    fn opts() -> ParseOptions {
        ParseOptions::new("America/Toronto").unwrap()
    }

    fn parse_text(text: &str, reference: &str) -> Record {
        let file = SourceFile {
            path: "x.txt".into(),
            bytes: text.as_bytes().to_vec(),
            modified: None,
        };
        parse(&file, Some(reference.parse().unwrap()), &opts()).unwrap()
    }

    #[test]
    fn update_after_midnight() {
        // Captured 01:00 on Oct 3: posted 11:30 p.m. (Oct 2), updated 12:40 a.m. (Oct 3).
        let r = parse_text(
            "(A) Lede text.\nPosted at 11:30 p.m.\nUpdated at 12:40 a.m.\nBody.",
            "2022-10-03T05:00:00Z",
        );
        assert_eq!(
            r.posted_at.unwrap().to_string(),
            "2022-10-02T23:30:00-04:00"
        );
        assert_eq!(
            r.updated_at.unwrap().to_string(),
            "2022-10-03T00:40:00-04:00"
        );
        // Captured 23:50 on Oct 3: the same stamps mean the post was the evening before.
        let r = parse_text(
            "(A) Lede text.\nPosted at 11:30 p.m.\nUpdated at 12:40 a.m.\nBody.",
            "2022-10-04T03:50:00Z",
        );
        assert_eq!(
            r.posted_at.unwrap().to_string(),
            "2022-10-02T23:30:00-04:00"
        );
        assert_eq!(
            r.updated_at.unwrap().to_string(),
            "2022-10-03T00:40:00-04:00"
        );
    }

    #[test]
    fn content_hash_ignores_stamps_and_spacing() {
        let a = parse_text(
            "(A) Lede  text.\nPosted at 1:00 p.m.\nUpdated at 2:00 p.m.\nBody one.\n\nBody two.",
            "2022-10-03T05:00:00Z",
        );
        let b = parse_text("(A) Lede text.\r\nPosted at 1:00 p.m.\r\nUpdated at 3:00 p.m.\r\nBody\u{a0}one.\r\nBody two.  ", "2022-10-03T05:00:00Z");
        assert_eq!(a.content_hash, b.content_hash);
        assert_eq!(a.article_id, b.article_id);
        assert_ne!(a.updated_at, b.updated_at);
    }

    #[test]
    fn unreadable_stamp_is_a_warning() {
        let r = parse_text(
            "(A) Lede text.\nPosted at sometime\nBody.",
            "2022-10-03T05:00:00Z",
        );
        assert!(r.posted_at.is_none());
        assert_eq!(r.warnings.len(), 1);
    }
}
