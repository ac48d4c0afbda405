//! The query of `GET /events`: which parameters it takes ([`EventQuery::parse`]:
//! an unknown one is refused by name, a repeated filter is one more condition), the
//! record filter they make ([`EventFilter`], on top of the one [`Filter`] that
//! `wirewatch tail` uses), where a replay starts ([`Since`]) and which outcomes are
//! sent ([`Outcomes`]).

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value;

use crate::filter::Filter;
use crate::fold::match_key;
use crate::pipeline::{EventKind, Position};

/// The parameters `/events` takes (`token` is the access token, read by
/// [`super::auth`]).
pub const PARAMETERS: &[&str] = &[
    "person", "place", "org", "dateline", "q", "since", "last", "outcome", "view", "max_rate",
    "token",
];

/// The most records `last=N` replays (the records a client may have waiting,
/// [`super::events::MAX_RECORDS`]).
pub const MAX_LAST: usize = super::events::MAX_RECORDS;

/// Where a replay of the output starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// After the record whose event id this is.
    Id(Position),
    /// The records captured at or after this moment (see
    /// [`super::replay::TIME_FIELD`]).
    Time(Timestamp),
    /// The last this many records that pass the filter (`last=N`).
    Last(usize),
}

/// Which outcomes a client is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    /// Emitted records.
    pub emitted: bool,
    /// Versions dropped as duplicates.
    pub duplicate: bool,
    /// Versions dropped as stale.
    pub stale: bool,
    /// Rejected files.
    pub rejected: bool,
}

impl Default for Outcomes {
    fn default() -> Outcomes {
        Outcomes {
            emitted: true,
            duplicate: false,
            stale: false,
            rejected: false,
        }
    }
}

impl Outcomes {
    /// True when events of `kind` are sent.
    pub fn wants(&self, kind: EventKind) -> bool {
        match kind {
            EventKind::Record => self.emitted,
            EventKind::Duplicate => self.duplicate,
            EventKind::Stale => self.stale,
            EventKind::Rejected => self.rejected,
        }
    }

    /// Adds the comma-separated outcomes of `value`.
    fn add(&mut self, value: &str) -> Result<(), String> {
        for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            match v {
                "emitted" => self.emitted = true,
                "duplicate" => self.duplicate = true,
                "stale" => self.stale = true,
                "rejected" => self.rejected = true,
                "all" => {
                    *self = Outcomes {
                        emitted: true,
                        duplicate: true,
                        stale: true,
                        rejected: true,
                    }
                }
                other => {
                    return Err(format!(
                        "outcome={other:?} is not an outcome: use emitted, duplicate, stale, rejected or all (comma-separated or repeated)"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A parsed `/events` query.
#[derive(Debug, Clone)]
pub struct EventQuery {
    /// Which records pass.
    pub filter: EventFilter,
    /// Where to replay from (`Last-Event-ID`, else `since`).
    pub since: Option<Since>,
    /// Which outcomes are sent.
    pub outcomes: Outcomes,
    /// `view=brief`: records are sent as their brief ([`super::brief`]).
    pub brief: bool,
    /// `max_rate=R`: at most R briefs a second past a first burst, the others
    /// counted ([`super::batch::Rate`]).
    pub max_rate: Option<u32>,
}

impl EventQuery {
    /// Reads the query's `pairs` and the `Last-Event-ID` header. Filters repeat to
    /// add conditions (all must hold, as `wirewatch tail`'s repeated flags);
    /// `outcome` repeats to add outcomes; `since` or `last` may appear once.
    /// `Last-Event-ID` wins over both (a reconnecting client sends them too). `tz` reads a
    /// date-only `since`; `now` a duration. The error is the 400's message.
    pub fn parse(
        pairs: &[(String, String)],
        last_event_id: Option<&str>,
        now: Timestamp,
        tz: &TimeZone,
    ) -> Result<EventQuery, String> {
        let (mut people, mut places, mut orgs) = (Vec::new(), Vec::new(), Vec::new());
        let mut datelines = Vec::new();
        let mut words = Vec::new();
        let mut since = None;
        let mut outcomes = None::<Outcomes>;
        let mut brief = false;
        let mut max_rate = None;
        for (key, value) in pairs {
            let needle = || Some(value.clone()).filter(|v| !v.trim().is_empty());
            match key.as_str() {
                "person" => people.extend(needle()),
                "place" => places.extend(needle()),
                "org" => orgs.extend(needle()),
                "dateline" => datelines.extend(Some(match_key(value)).filter(|s| !s.is_empty())),
                "q" => words.extend(match_key(value).split_whitespace().map(str::to_owned)),
                "since" if since.is_some() => {
                    return Err(
                        "give since or last once, not both (one place to replay from)".into(),
                    )
                }
                "since" => since = Some(parse_since(value, now, tz)?),
                // Checked by the auth layer before the handler runs.
                super::auth::PARAMETER => {}
                "last" if since.is_some() => {
                    return Err(
                        "give since or last once, not both (one place to replay from)".into(),
                    )
                }
                "last" => since = Some(parse_last(value)?),
                "view" => {
                    brief = match value.as_str() {
                        "brief" => true,
                        "full" => false,
                        other => return Err(format!(
                            "view={other:?}: use view=brief (what a wire shows of each record) or view=full (the records whole, the default)"
                        )),
                    }
                }
                "max_rate" => max_rate = Some(parse_max_rate(value)?),
                "outcome" => outcomes
                    .get_or_insert(Outcomes {
                        emitted: false,
                        ..Outcomes::default()
                    })
                    .add(value)?,
                other => {
                    return Err(format!(
                        "unknown query parameter {other:?}: /events takes {}",
                        PARAMETERS.join(", ")
                    ))
                }
            }
        }
        if max_rate.is_some() && !brief {
            return Err("max_rate thins the brief wire: give it with view=brief".into());
        }
        if let Some(id) = last_event_id {
            since = Some(Since::Id(id.parse().map_err(|()| {
                format!("Last-Event-ID {id:?} is not an event id of this stream (the `id:` of an event it sent)")
            })?));
        }
        Ok(EventQuery {
            filter: EventFilter {
                names: Filter::new(None, &people, &places, &orgs),
                datelines,
                words,
            },
            since,
            outcomes: outcomes.unwrap_or_default(),
            brief,
            max_rate,
        })
    }
}

/// The highest `max_rate`.
pub const MAX_RATE: u32 = 10_000;

/// `max_rate=R`: records a second, 1 to [`MAX_RATE`].
fn parse_max_rate(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|r| (1..=MAX_RATE).contains(r))
        .ok_or_else(|| {
            format!("max_rate={value:?}: give the most records a second to send, 1 to {MAX_RATE}")
        })
}

/// `last=N`: a count from 1 to [`MAX_LAST`].
fn parse_last(value: &str) -> Result<Since, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_LAST).contains(&n) => Ok(Since::Last(n)),
        _ => Err(format!(
            "last={value:?}: give how many of the latest records to replay, 1 to {MAX_LAST}"
        )),
    }
}

/// `since=`: an event id, else a time as `wirewatch tail --since` reads it.
fn parse_since(value: &str, now: Timestamp, tz: &TimeZone) -> Result<Since, String> {
    if let Ok(id) = value.parse::<Position>() {
        return Ok(Since::Id(id));
    }
    match crate::tail::parse_since(value, now, tz) {
        Ok(t) => Ok(Since::Time(t)),
        Err(crate::tail::TailError::Since { reason, .. }) => Err(format!(
            "since={value:?}: not an event id (the `id:` of an event), and {reason}"
        )),
        Err(e) => Err(format!("since={value:?}: {e}")),
    }
}

/// The `/events` filter: the names through [`Filter`] (shared with `wirewatch
/// tail`), the datelines and the words. Every condition must hold.
#[derive(Debug, Clone)]
pub struct EventFilter {
    names: Filter,
    /// Folded substrings the dateline must all contain.
    datelines: Vec<String>,
    /// Folded words the text must all contain.
    words: Vec<String>,
}

impl EventFilter {
    /// True when it lets every record through (no filter given): a caller need not
    /// look at the record.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.datelines.is_empty() && self.words.is_empty()
    }

    /// True when the record (or outcome) passes.
    pub fn matches(&self, r: &Value) -> bool {
        if !self.names.matches(r) {
            return false;
        }
        if !self.datelines.is_empty() {
            let Some(dateline) = r["dateline"].as_str().map(match_key) else {
                return false;
            };
            if !self.datelines.iter().all(|d| dateline.contains(d.as_str())) {
                return false;
            }
        }
        if !self.words.is_empty() {
            let mut text = String::new();
            for key in ["title", "lede", "dateline"] {
                text.push_str(r[key].as_str().unwrap_or(""));
                text.push(' ');
            }
            for s in r["sections"].as_array().into_iter().flatten() {
                text.push_str(s["heading"].as_str().unwrap_or(""));
                text.push(' ');
                for p in s["paragraphs"].as_array().into_iter().flatten() {
                    text.push_str(p.as_str().unwrap_or(""));
                    text.push(' ');
                }
            }
            let text = match_key(&text);
            if !self.words.iter().all(|w| text.contains(w.as_str())) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)], last: Option<&str>) -> Result<EventQuery, String> {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        EventQuery::parse(&pairs, last, Timestamp::UNIX_EPOCH, &TimeZone::UTC)
    }

    #[test]
    fn an_unknown_parameter_is_refused_by_name() {
        let e = parse(&[("place", "x"), ("since0", "1")], None).unwrap_err();
        assert!(e.contains("\"since0\""), "{e}");
        assert!(e.contains("person, place"), "{e}");
    }

    #[test]
    fn repeated_filters_all_hold() {
        let q = parse(
            &[
                ("person", "blinken"),
                ("person", "lula"),
                ("dateline", "wash"),
                ("dateline", "ton"),
            ],
            None,
        )
        .unwrap();
        let both = serde_json::json!({"dateline": "Washington", "people": [{"name": "Antony Blinken"}, {"name": "Lula"}]});
        let one =
            serde_json::json!({"dateline": "Washington", "people": [{"name": "Antony Blinken"}]});
        assert!(q.filter.matches(&both));
        assert!(!q.filter.matches(&one));
        let q = parse(&[("dateline", "wash"), ("dateline", "paris")], None).unwrap();
        assert!(!q.filter.matches(&both));
    }

    #[test]
    fn since_is_an_id_or_a_time_and_last_event_id_wins() {
        let q = parse(&[("since", "2022-10-02T00:00:00Z")], None).unwrap();
        assert_eq!(
            q.since,
            Some(Since::Time("2022-10-02T00:00:00Z".parse().unwrap()))
        );
        let id = Position {
            dev: 1,
            ino: 2,
            offset: 3,
        };
        assert_eq!(
            parse(&[("since", "1-2-3")], None).unwrap().since,
            Some(Since::Id(id))
        );
        let q = parse(&[("since", "2022-10-02T00:00:00Z")], Some("1-2-3")).unwrap();
        assert_eq!(q.since, Some(Since::Id(id)));
        assert!(parse(&[("since", "soon")], None)
            .unwrap_err()
            .contains("since=\"soon\""));
        assert!(parse(&[("since", "1h"), ("since", "2h")], None).is_err());
        assert!(parse(&[], Some("nope"))
            .unwrap_err()
            .contains("Last-Event-ID"));
    }

    #[test]
    fn max_rate_goes_with_the_brief_view_and_is_bounded() {
        let q = parse(&[("view", "brief"), ("max_rate", "100")], None).unwrap();
        assert_eq!(q.max_rate, Some(100));
        assert_eq!(parse(&[("view", "brief")], None).unwrap().max_rate, None);
        assert!(parse(&[("max_rate", "100")], None)
            .unwrap_err()
            .contains("view=brief"));
        for bad in ["0", "-1", "10001", "x", ""] {
            let e = parse(&[("view", "brief"), ("max_rate", bad)], None).unwrap_err();
            assert!(e.contains("1 to 10000"), "{bad}: {e}");
        }
    }

    #[test]
    fn last_is_a_bounded_count_and_excludes_since() {
        assert_eq!(
            parse(&[("last", "50")], None).unwrap().since,
            Some(Since::Last(50))
        );
        for bad in ["0", "-1", "many", "1025"] {
            let e = parse(&[("last", bad)], None).unwrap_err();
            assert!(e.contains("1 to 1024"), "{e}");
        }
        assert!(parse(&[("last", "5"), ("since", "1h")], None).is_err());
        assert!(parse(&[("since", "1h"), ("last", "5")], None).is_err());
        // A reconnecting client resumes after its last event instead.
        let q = parse(&[("last", "5")], Some("1-2-3")).unwrap();
        assert!(matches!(q.since, Some(Since::Id(_))));
    }

    #[test]
    fn outcomes_default_to_emitted_and_add_up() {
        assert_eq!(parse(&[], None).unwrap().outcomes, Outcomes::default());
        let o = parse(&[("outcome", "rejected,stale")], None)
            .unwrap()
            .outcomes;
        assert!(o.rejected && o.stale && !o.emitted && !o.duplicate);
        let o = parse(&[("outcome", "duplicate"), ("outcome", "emitted")], None)
            .unwrap()
            .outcomes;
        assert!(o.duplicate && o.emitted && !o.rejected);
        let o = parse(&[("outcome", "all")], None).unwrap().outcomes;
        assert!(o.wants(EventKind::Rejected) && o.wants(EventKind::Record));
        assert!(parse(&[("outcome", "lost")], None)
            .unwrap_err()
            .contains("\"lost\""));
    }
}
