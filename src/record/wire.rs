//! The record's JSON form: every stored field of [`Record`] in order, with the UTC
//! form and precision of each local stamp derived beside it at serialization time,
//! so that the derived fields can never disagree with the stamps they restate.

use jiff::Timestamp;
use serde::ser::Error as _;
use serde::{Serialize, Serializer};

use super::{
    format_utc, Changes, DateMention, Encoding, Organization, Person, Place, Precision, Quote,
    Record, Section, Source, Stamp, TitleSource,
};

/// A borrowed view of a record as it is written; field order is the line's order.
#[derive(Serialize)]
struct Wire<'a> {
    schema: u32,
    article_id: &'a str,
    source: &'a Source,
    encoding: Encoding,
    dateline: Option<&'a str>,
    title: &'a str,
    title_source: TitleSource,
    lede: &'a str,
    posted_at: Option<&'a Stamp>,
    posted_at_utc: Option<String>,
    posted_precision: Option<Precision>,
    updated_at: Option<&'a Stamp>,
    updated_at_utc: Option<String>,
    updated_precision: Option<Precision>,
    capture_time: &'a str,
    capture_time_utc: String,
    timezone: &'a str,
    sections: &'a [Section],
    word_count: usize,
    reading_time_min: u32,
    language: &'a str,
    content_hash: &'a str,
    people: &'a [Person],
    places: &'a [Place],
    organizations: &'a [Organization],
    quotes: &'a [Quote],
    dates: &'a [DateMention],
    keywords: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supersedes: Option<Option<&'a Stamp>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supersedes_utc: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supersedes_precision: Option<Option<Precision>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Option<&'a Changes>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    emitted_at: Option<&'a str>,
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Destructured without `..`: a field added to `Record` must be placed here.
        let Record {
            schema,
            article_id,
            source,
            encoding,
            dateline,
            title,
            title_source,
            lede,
            posted_at,
            updated_at,
            capture_time,
            timezone,
            sections,
            word_count,
            reading_time_min,
            language,
            content_hash,
            people,
            places,
            organizations,
            quotes,
            dates,
            keywords,
            revision,
            supersedes,
            changes,
            warnings,
            emitted_at,
        } = self;
        let capture_time_utc = capture_time
            .parse::<Timestamp>()
            .map(format_utc)
            .map_err(|e| {
                S::Error::custom(format!(
                    "capture_time {capture_time:?} is not an RFC 3339 time with an offset: {e}"
                ))
            })?;
        Wire {
            schema: *schema,
            article_id,
            source,
            encoding: *encoding,
            dateline: dateline.as_deref(),
            title,
            title_source: *title_source,
            lede,
            posted_at: posted_at.as_ref(),
            posted_at_utc: posted_at.as_ref().and_then(Stamp::utc),
            posted_precision: posted_at.as_ref().map(Stamp::precision),
            updated_at: updated_at.as_ref(),
            updated_at_utc: updated_at.as_ref().and_then(Stamp::utc),
            updated_precision: updated_at.as_ref().map(Stamp::precision),
            capture_time,
            capture_time_utc,
            timezone,
            sections,
            word_count: *word_count,
            reading_time_min: *reading_time_min,
            language,
            content_hash,
            people,
            places,
            organizations,
            quotes,
            dates,
            keywords,
            revision: *revision,
            supersedes: supersedes.as_ref().map(Option::as_ref),
            supersedes_utc: supersedes.as_ref().map(|s| s.as_ref().and_then(Stamp::utc)),
            supersedes_precision: supersedes
                .as_ref()
                .map(|s| s.as_ref().map(Stamp::precision)),
            changes: changes.as_ref().map(Option::as_ref),
            warnings,
            emitted_at: emitted_at.as_deref(),
        }
        .serialize(s)
    }
}
