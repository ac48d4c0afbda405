//! The records of a brief server-sent stream (`/events?view=brief` with
//! `Accept: text/event-stream`) sent together ([`Batch`]): one `event: records`
//! whose `data:` is a JSON array of briefs, at most [`BATCH_MS`] after its first
//! record, so that a busy wire costs the daemon and the browser one event per
//! batch, not one per record. The event's `id:` is its last record's.
//!
//! With `max_rate=R` ([`Rate`]) a batch sends at most what the client's allowance
//! holds (R records a second, past a first burst of [`BURST_SECS`] × R): its newest
//! records, after an `event: skipped` whose `data:` counts the others
//! (`{"records":K}`). Briefs are made when a batch goes, so a skipped record costs
//! no brief.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;

use crate::pipeline::{Event, Position};

/// How long a record may wait for others to go with it.
pub const BATCH_MS: u64 = 200;

/// Records, or bytes of the records' lines, after which a batch goes at once.
const MAX_RECORDS: usize = 256;
const MAX_LINE_BYTES: usize = 8 << 20;

/// The first burst of `max_rate=R`: this many seconds' worth of records.
pub const BURST_SECS: f64 = 5.0;

/// A record waiting in a batch, its brief not made yet.
#[derive(Debug)]
enum Held {
    /// A live record.
    Live(Arc<Event>),
    /// A record replayed from the output file: its line.
    Replayed(String),
}

/// Records waiting to go as one `event: records`.
#[derive(Debug, Default)]
pub struct Batch {
    held: Vec<Held>,
    line_bytes: usize,
    last: Option<Position>,
    due: Option<Instant>,
}

impl Batch {
    /// Adds a live record event.
    pub fn add_live(&mut self, ev: Arc<Event>) {
        let id = ev.id;
        self.line_bytes += ev.line().len();
        self.hold(id, Held::Live(ev));
    }

    /// Adds the line of the record replayed from `id`.
    pub fn add_replayed(&mut self, id: Position, line: String) {
        self.line_bytes += line.len();
        self.hold(Some(id), Held::Replayed(line));
    }

    fn hold(&mut self, id: Option<Position>, held: Held) {
        if self.held.is_empty() {
            self.due = Some(Instant::now() + Duration::from_millis(BATCH_MS));
        }
        self.held.push(held);
        if id.is_some() {
            self.last = id;
        }
    }

    /// When the batch must go (none when empty).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// True when it must go now, without waiting for its time.
    pub fn full(&self) -> bool {
        self.held.len() >= MAX_RECORDS || self.line_bytes >= MAX_LINE_BYTES
    }

    /// Records in it.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// The event of the records so far, the newest `keep` of them as their briefs
    /// (`brief` makes one from a record's line) and the others counted in an
    /// `event: skipped` (none when the batch is empty); the batch is empty after.
    pub fn take(&mut self, keep: usize, brief: fn(&str) -> String) -> Option<Bytes> {
        if self.held.is_empty() {
            return None;
        }
        let skipped = self.held.len().saturating_sub(keep);
        let id = self.last.map(|p| format!("id: {p}\n")).unwrap_or_default();
        let mut chunk = String::new();
        if skipped > 0 {
            // The id goes with the last event of the chunk: a reconnect resumes after
            // every record of the batch, shown or skipped.
            let skipped_id = if skipped == self.held.len() {
                id.as_str()
            } else {
                ""
            };
            chunk.push_str(&format!(
                "{skipped_id}event: skipped\ndata: {{\"records\":{skipped}}}\n\n"
            ));
        }
        if skipped < self.held.len() {
            chunk.push_str(&id);
            chunk.push_str("event: records\ndata: [");
            for (i, held) in self.held[skipped..].iter().enumerate() {
                if i > 0 {
                    chunk.push(',');
                }
                match held {
                    Held::Live(ev) => chunk.push_str(ev.brief_line(brief).unwrap_or("{}")),
                    Held::Replayed(line) => chunk.push_str(&brief(line)),
                }
            }
            chunk.push_str("]\n\n");
        }
        self.held.clear();
        self.line_bytes = 0;
        self.last = None;
        self.due = None;
        Some(chunk.into())
    }
}

/// A client's allowance under `max_rate=R`: R records a second, at most
/// [`BURST_SECS`] × R at once (a token bucket, full at the start).
#[derive(Debug, Clone)]
pub struct Rate {
    per_sec: f64,
    allow: f64,
    at: Instant,
}

impl Rate {
    /// An allowance of `per_sec` records a second, full.
    pub fn new(per_sec: u32) -> Rate {
        let per_sec = f64::from(per_sec);
        Rate {
            per_sec,
            allow: per_sec * BURST_SECS,
            at: Instant::now(),
        }
    }

    /// How many of `n` records may go now; those are taken from the allowance.
    pub fn take(&mut self, n: usize) -> usize {
        self.take_at(n, Instant::now())
    }

    fn take_at(&mut self, n: usize, now: Instant) -> usize {
        let burst = self.per_sec * BURST_SECS;
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.allow = (self.allow + dt * self.per_sec).min(burst);
        self.at = now;
        let room = (self.allow.floor().max(0.0) as usize).min(n);
        self.allow -= room as f64;
        room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(offset: u64) -> Position {
        Position {
            dev: 1,
            ino: 2,
            offset,
        }
    }

    fn upper(line: &str) -> String {
        line.to_uppercase()
    }

    #[test]
    fn a_batch_is_one_event_of_an_array_with_the_last_id() {
        let mut b = Batch::default();
        assert!(b.take(usize::MAX, upper).is_none() && b.due().is_none());
        b.add_replayed(p(10), r#"{"a":1}"#.into());
        assert!(b.due().is_some());
        let mut ev = Event::new(r#"{"b":2}"#.into());
        ev.id = Some(p(20));
        b.add_live(Arc::new(ev));
        assert_eq!(b.len(), 2);
        let chunk = b.take(usize::MAX, upper).unwrap();
        assert_eq!(
            std::str::from_utf8(&chunk).unwrap(),
            "id: 1-2-20\nevent: records\ndata: [{\"A\":1},{\"B\":2}]\n\n"
        );
        assert!(b.len() == 0 && b.due().is_none() && b.take(1, upper).is_none());
        for _ in 0..MAX_RECORDS {
            assert!(!b.full());
            b.add_live(Arc::new(Event::new("{}".into())));
        }
        assert!(b.full());
        assert!(b
            .take(usize::MAX, upper)
            .unwrap()
            .starts_with(b"event: records\ndata: [{},{}"));
    }

    #[test]
    fn a_thinned_batch_sends_its_newest_and_counts_the_others() {
        let mut b = Batch::default();
        for i in 1..=5 {
            b.add_replayed(p(i * 10), format!("{{\"n\":{i}}}"));
        }
        let chunk = b.take(2, upper).unwrap();
        assert_eq!(
            std::str::from_utf8(&chunk).unwrap(),
            "event: skipped\ndata: {\"records\":3}\n\nid: 1-2-50\nevent: records\ndata: [{\"N\":4},{\"N\":5}]\n\n"
        );
        // Nothing allowed: the count alone, with the id (a reconnect resumes after).
        b.add_replayed(p(60), "{}".into());
        let chunk = b.take(0, upper).unwrap();
        assert_eq!(
            std::str::from_utf8(&chunk).unwrap(),
            "id: 1-2-60\nevent: skipped\ndata: {\"records\":1}\n\n"
        );
    }

    #[test]
    fn the_allowance_is_a_burst_then_the_rate() {
        let t = Instant::now();
        let mut r = Rate {
            per_sec: 10.0,
            allow: 50.0,
            at: t,
        };
        assert_eq!(r.take_at(30, t), 30);
        assert_eq!(r.take_at(30, t), 20);
        assert_eq!(r.take_at(30, t), 0);
        // 0.5 s later: 5 more.
        assert_eq!(r.take_at(30, t + Duration::from_millis(500)), 5);
        // Never more than the burst, however long the client was quiet.
        assert_eq!(r.take_at(1000, t + Duration::from_secs(3600)), 50);
    }
}
