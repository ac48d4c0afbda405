//! Which records to show: the `--since`, `--person`, `--place` and `--org` conditions
//! of `wirewatch tail`, the same for `GET /events` (one implementation for both), on a
//! record as a [`serde_json::Value`] (tolerant of fields it does not know).

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value;

use crate::fold::match_key;
use crate::record::Stamp;

/// Which records to show. Every condition must hold (AND); an empty filter passes
/// everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    since: Option<Timestamp>,
    people: Vec<String>,
    places: Vec<String>,
    orgs: Vec<String>,
}

impl Filter {
    /// A filter from `--since` (already resolved) and the name needles, which are
    /// folded here (case, accents, runs of white space).
    pub fn new(
        since: Option<Timestamp>,
        people: &[String],
        places: &[String],
        orgs: &[String],
    ) -> Filter {
        let fold_all = |v: &[String]| v.iter().map(|s| match_key(s)).collect();
        Filter {
            since,
            people: fold_all(people),
            places: fold_all(places),
            orgs: fold_all(orgs),
        }
    }

    /// True when there is no condition: every record passes.
    pub fn is_empty(&self) -> bool {
        self.since.is_none()
            && self.people.is_empty()
            && self.places.is_empty()
            && self.orgs.is_empty()
    }

    /// True when the record passes every condition.
    ///
    /// `--since`: the record's `updated_at`, else `posted_at`, must be at or after the
    /// bound; a record with neither does not pass. A date-only stamp is a whole day
    /// in the record's `timezone` (UTC when unknown) and passes when any part of that
    /// day is at or after the bound.
    ///
    /// Names: each needle must be a substring of the folded `name` of some entry (or
    /// of its `aliases`, or an organization's `acronym`).
    pub fn matches(&self, record: &Value) -> bool {
        if let Some(since) = self.since {
            if !stamp_at_or_after(record, since) {
                return false;
            }
        }
        let all = |needles: &[String], key: &str, extra: &[&str]| {
            needles
                .iter()
                .all(|n| entity_names(record, key, extra).any(|name| match_key(&name).contains(n)))
        };
        all(&self.people, "people", &["aliases"])
            && all(&self.places, "places", &["aliases"])
            && all(&self.orgs, "organizations", &["acronym", "aliases"])
    }
}

/// Every name of the entries of `record[key]`: the `name` of each object (or the
/// entry itself when it is a string), plus the `extra` fields (string or array of
/// strings) of each object.
fn entity_names<'a>(
    record: &'a Value,
    key: &str,
    extra: &'a [&'a str],
) -> impl Iterator<Item = String> + 'a {
    record
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(move |entry| {
            let mut names = Vec::new();
            match entry {
                Value::String(s) => names.push(s.clone()),
                Value::Object(o) => {
                    for field in std::iter::once(&"name").chain(extra) {
                        match o.get(*field) {
                            Some(Value::String(s)) => names.push(s.clone()),
                            Some(Value::Array(a)) => {
                                names.extend(a.iter().filter_map(Value::as_str).map(str::to_owned))
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
            names
        })
}

/// The stamp a record is placed in time by: `updated_at`, else `posted_at`.
pub(crate) fn record_stamp(record: &Value) -> Option<Stamp> {
    ["updated_at", "posted_at"]
        .iter()
        .filter_map(|k| record.get(*k).and_then(Value::as_str))
        .find_map(Stamp::parse)
}

fn stamp_at_or_after(record: &Value, since: Timestamp) -> bool {
    match record_stamp(record) {
        Some(Stamp::At { ts, .. }) => ts >= since,
        Some(Stamp::Day(day)) => {
            let tz = record
                .get("timezone")
                .and_then(Value::as_str)
                .and_then(|name| TimeZone::get(name).ok())
                .unwrap_or(TimeZone::UTC);
            // The day's end (the next midnight) must be after the bound.
            match day.tomorrow().and_then(|d| d.to_zoned(tz)) {
                Ok(end) => end.timestamp() > since,
                Err(_) => true,
            }
        }
        None => false,
    }
}
