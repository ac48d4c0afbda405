//! The record model: what one article version becomes on the output stream.
//!
//! A [`Record`] is built by the parse stage (layout, time stamps, identity),
//! enriched by the extract stage (people, places, quotes, ...), and stamped by
//! the dedupe stage (revision, supersedes) before a sink writes it as one JSON
//! line. Field names are part of the public contract: consumers parse them.

use std::cmp::Ordering;
use std::fmt;

use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod changes;
mod schema;
mod wire;

pub use changes::{Changes, Delta, Edit, ParagraphChanges, QuoteChanges};
pub use schema::RECORD_SCHEMA;

/// Version of the record layout; bumped when a field changes meaning or the set of
/// fields the JSON Schema ([`RECORD_SCHEMA`]) requires changes.
pub const SCHEMA_VERSION: u32 = 2;

/// One article version, as emitted on the output stream.
///
/// Serialized, a record also carries fields derived from the ones below, never
/// stored: beside each local stamp its UTC form and precision (`posted_at_utc`,
/// `posted_precision`, `updated_at_utc`, `updated_precision`, `capture_time_utc`,
/// `supersedes_utc`, `supersedes_precision`); reading a line back ignores them.
/// Serializing fails when `capture_time` is not an RFC 3339 time with an offset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    /// Layout version of this record (see [`SCHEMA_VERSION`]).
    pub schema: u32,
    /// Identity of the story: equal for every version of one article.
    pub article_id: String,
    /// Where the bytes came from.
    pub source: Source,
    /// How the bytes were decoded.
    pub encoding: Encoding,
    /// The place in parentheses that opens the lede, e.g. `Washington`.
    pub dateline: Option<String>,
    /// A headline derived from the lede (the files carry none).
    pub title: String,
    /// How `title` was derived.
    pub title_source: TitleSource,
    /// The lede paragraph without its dateline.
    pub lede: String,
    /// First publication, resolved against the capture moment.
    pub posted_at: Option<Stamp>,
    /// Latest revision, resolved against the capture moment.
    pub updated_at: Option<Stamp>,
    /// The moment the page was captured (file mtime unless given).
    pub capture_time: String,
    /// IANA time zone the stamps were read in.
    pub timezone: String,
    /// Body text: paragraphs grouped under their headings.
    pub sections: Vec<Section>,
    /// Words in lede, headings and paragraphs.
    pub word_count: usize,
    /// Estimated reading time at 230 words per minute, at least 1.
    pub reading_time_min: u32,
    /// ISO 639-1 code of the body language (`und` when unsure).
    pub language: String,
    /// SHA-256 of the normalized text, blind to stamp lines and white space.
    pub content_hash: String,
    /// People named in the text (filled by the extract stage).
    #[serde(default)]
    pub people: Vec<Person>,
    /// Places named in the text (filled by the extract stage).
    #[serde(default)]
    pub places: Vec<Place>,
    /// Organizations named in the text (filled by the extract stage).
    #[serde(default)]
    pub organizations: Vec<Organization>,
    /// Quotations and their speakers (filled by the extract stage).
    #[serde(default)]
    pub quotes: Vec<Quote>,
    /// Dates the text mentions, resolved (filled by the extract stage).
    #[serde(default)]
    pub dates: Vec<DateMention>,
    /// Key phrases (filled by the extract stage).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Revision number of this version of the article (set by dedupe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// Stamp of the version this one replaces (set by dedupe; `null` on revision 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<Option<Stamp>>,
    /// What changed against the previous emitted version (set by dedupe; `null` on
    /// revision 1). See [`crate::diff`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Option<Changes>>,
    /// Things the parser noticed but could work around (unreadable stamp, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// When the committer wrote this line to the output: UTC, RFC 3339 to the second
    /// (`2022-10-03T02:55:01Z`). `None` (`null`) until then, as in `wirewatch check`.
    #[serde(default)]
    pub emitted_at: Option<String>,
}

impl Record {
    /// The stamp dedupe orders versions by: `updated_at`, else `posted_at`.
    pub fn version_stamp(&self) -> Option<&Stamp> {
        self.updated_at.as_ref().or(self.posted_at.as_ref())
    }

    /// Every paragraph of the body in order, across sections.
    pub fn paragraphs(&self) -> impl Iterator<Item = &str> {
        self.sections
            .iter()
            .flat_map(|s| s.paragraphs.iter().map(String::as_str))
    }

    /// Every heading in order.
    pub fn headings(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().filter_map(|s| s.heading.as_deref())
    }
}

/// Where a record's bytes came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Path of the file as seen by wirewatch (lossy UTF-8 when the name is not UTF-8).
    pub path: String,
    /// The raw bytes of the path, hex-encoded, present only when the name is not valid
    /// UTF-8, so that the file can always be found again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// File modification time, RFC 3339 UTC (null when unknown).
    pub modified: Option<String>,
}

/// How a file's bytes were turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// Valid UTF-8 (a byte-order mark, if any, was dropped).
    #[serde(rename = "utf-8")]
    Utf8,
    /// Not valid UTF-8: decoded as Windows-1252 (a superset of Latin-1).
    #[serde(rename = "windows-1252")]
    Windows1252,
}

/// Where the title came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TitleSource {
    /// The lede's first sentence, whole.
    LedeFirstSentence,
    /// The lede's first sentence, cut at a word boundary because it was too long.
    LedeFirstSentenceTruncated,
}

/// A run of paragraphs under one heading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// The heading line; `None` for text before the first heading.
    pub heading: Option<String>,
    /// Paragraphs, one per input line.
    pub paragraphs: Vec<String>,
}

/// A person named in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// The fullest form of the name seen.
    pub name: String,
    /// Other forms seen (`Mr. Blinken`, `Blinken`).
    pub aliases: Vec<String>,
    /// How many times the person is named.
    pub mentions: u32,
    /// Titles seen with the name (`US Secretary of State`).
    pub roles: Vec<String>,
}

/// A place named in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// Canonical name.
    pub name: String,
    /// Other forms the text used (`U.S.`, `Fla.`, `N. Y.`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// How many times the place is named.
    pub mentions: u32,
    /// `country`, `city`, `region`, `continent`, ...
    pub kind: String,
    /// ISO 3166-1 alpha-2 code of the country, when known.
    pub country: Option<String>,
}

/// An organization named in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    /// Full name.
    pub name: String,
    /// Acronym, when defined or known.
    pub acronym: Option<String>,
    /// Other forms the text used (`U.N.`, `City Council's Finance Committee`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// How many times it is named (full name or acronym).
    pub mentions: u32,
}

/// A quotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// Quoted text, without the quote marks.
    pub text: String,
    /// A `name` from `people`, or null when it cannot be told.
    pub speaker: Option<String>,
    /// Index of the paragraph the quote opens in: 0 = the lede, then the body paragraphs
    /// numbered 1.. in order across sections (headings are not counted).
    pub paragraph: usize,
}

/// A date mentioned in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateMention {
    /// The words as written.
    pub text: String,
    /// `YYYY-MM-DD`, or `YYYY-MM` for a month.
    pub date: String,
    /// `date`, `weekday`, `month`, `relative`, ...
    pub kind: String,
}

/// How much of a moment a stamp gives: the `*_precision` fields of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// A time of day, to the minute (the articles' stamps carry no seconds).
    Minute,
    /// A day with no time of day: there is no instant, so no UTC form.
    Date,
}

/// A resolved time stamp: an instant with the zone's offset, or a bare day when the
/// stamp gave no time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// A moment, kept with the UTC offset it had in the article's zone.
    At {
        /// The instant.
        ts: Timestamp,
        /// UTC offset of the zone at that instant.
        offset: Offset,
    },
    /// A day with no time of day.
    Day(Date),
}

impl Stamp {
    /// Builds a stamp for an instant in a zone.
    pub fn at(ts: Timestamp, tz: &TimeZone) -> Stamp {
        Stamp::At {
            ts,
            offset: tz.to_offset(ts),
        }
    }

    /// The civil date of the stamp in its own zone.
    pub fn date(&self) -> Date {
        match self {
            Stamp::At { ts, offset } => offset.to_datetime(*ts).date(),
            Stamp::Day(d) => *d,
        }
    }

    /// The instant, or `None` for a bare day.
    pub fn instant(&self) -> Option<Timestamp> {
        match self {
            Stamp::At { ts, .. } => Some(*ts),
            Stamp::Day(_) => None,
        }
    }

    /// The instant in UTC, RFC 3339 with `Z` (`2022-10-03T02:23:00Z`), or `None` for a
    /// bare day.
    pub fn utc(&self) -> Option<String> {
        self.instant().map(format_utc)
    }

    /// Whether the stamp has a time of day or only a date.
    pub fn precision(&self) -> Precision {
        match self {
            Stamp::At { .. } => Precision::Minute,
            Stamp::Day(_) => Precision::Date,
        }
    }

    /// A key that orders stamps: instants by time; a bare day as its local midnight.
    /// Used by dedupe; stamps of one article share a zone, so this is consistent.
    pub fn order_key(&self) -> i64 {
        match self {
            Stamp::At { ts, offset } => ts.as_second() + i64::from(offset.seconds()),
            Stamp::Day(d) => {
                let dt = d.to_datetime(jiff::civil::Time::midnight());
                dt.to_zoned(TimeZone::UTC)
                    .map(|z| z.timestamp().as_second())
                    .unwrap_or(0)
            }
        }
    }

    /// Parses the text form written by [`fmt::Display`].
    pub fn parse(s: &str) -> Option<Stamp> {
        if s.len() == 10 {
            return s.parse::<Date>().ok().map(Stamp::Day);
        }
        let ts: Timestamp = s.parse().ok()?;
        let offset = if s.ends_with('Z') || s.ends_with('z') {
            Offset::UTC
        } else {
            let tail = s.get(s.len().checked_sub(6)?..)?;
            let sign: i32 = match tail.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i32 = tail.get(1..3)?.parse().ok()?;
            let m: i32 = tail.get(4..6)?.parse().ok()?;
            Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()?
        };
        Some(Stamp::At { ts, offset })
    }
}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Stamp::At { ts: a, .. }, Stamp::At { ts: b, .. }) => a.cmp(b),
            _ => self.order_key().cmp(&other.order_key()),
        }
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stamp::At { ts, offset } => {
                let dt = offset.to_datetime(*ts);
                let secs = offset.seconds();
                let sign = if secs < 0 { '-' } else { '+' };
                let abs = secs.unsigned_abs();
                write!(
                    f,
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
                    dt.year(),
                    dt.month(),
                    dt.day(),
                    dt.hour(),
                    dt.minute(),
                    dt.second(),
                    sign,
                    abs / 3600,
                    (abs % 3600) / 60
                )
            }
            Stamp::Day(d) => write!(f, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        }
    }
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Stamp::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("bad stamp {s:?}")))
    }
}

/// Formats an instant as RFC 3339 in a zone, e.g. `2022-10-02T22:55:00-04:00`.
pub fn format_instant(ts: Timestamp, tz: &TimeZone) -> String {
    Stamp::at(ts, tz).to_string()
}

/// Formats an instant as RFC 3339 in UTC to the second, e.g. `2022-10-03T02:55:00Z`
/// (the form `jq`'s `fromdateiso8601` reads: no fraction, `Z`).
pub fn format_utc(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_through_text() {
        for s in [
            "2022-10-02T22:23:00-04:00",
            "2022-10-02",
            "2022-01-05T03:00:00+05:30",
        ] {
            let st = Stamp::parse(s).unwrap();
            assert_eq!(st.to_string(), s);
        }
        assert!(Stamp::parse("not a stamp").is_none());
    }

    #[test]
    fn stamps_order_by_instant_and_day() {
        let a = Stamp::parse("2022-10-02T22:23:00-04:00").unwrap();
        let b = Stamp::parse("2022-10-02T22:53:00-04:00").unwrap();
        let d = Stamp::parse("2022-10-02").unwrap();
        let e = Stamp::parse("2022-10-03").unwrap();
        assert!(a < b);
        assert!(d < a);
        assert!(b < e);
        assert_eq!(d.cmp(&d.clone()), Ordering::Equal);
    }
}
