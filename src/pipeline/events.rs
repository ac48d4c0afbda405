//! What the HTTP side shares with the pipeline ([`Shared`]): the counters, the health
//! and the live feed of outcomes ([`Event`]: emitted records, with their position in
//! the output file, and the files dropped or rejected), with the position the feed
//! has reached ([`Feed`]), so that `/events` can replay the output file up to
//! exactly where the live broadcast takes over.

use super::Health;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::metrics::Metrics;

/// What the HTTP endpoints and the signal handlers share with the pipeline.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Liveness of the stages.
    pub health: Arc<Health>,
    /// Outcomes, for live subscribers (`GET /events`). Sending never waits.
    pub events: broadcast::Sender<Arc<Event>>,
    /// Where the broadcast stands in the records output.
    pub feed: Arc<Feed>,
    /// Settings that SIGHUP may change: parse options and batch sizes.
    pub reload: watch::Receiver<Arc<Config>>,
}

impl Shared {
    /// A context for a pipeline that nobody else watches (tests, `--once`).
    pub fn new(cfg: &Config) -> (Shared, watch::Sender<Arc<Config>>) {
        let (tx, rx) = watch::channel(Arc::new(cfg.clone()));
        let file = cfg.sink.kind == crate::nats::SinkKind::File && cfg.output.path != "-";
        let shared = Shared {
            metrics: Metrics::shared_for(cfg.sink.kind == crate::nats::SinkKind::Nats),
            health: Arc::new(Health::default()),
            events: broadcast::channel(1024).0,
            feed: Arc::new(Feed {
                path: file.then(|| PathBuf::from(&cfg.output.path)),
                rejects: cfg.output.rejects.clone(),
                position: Mutex::new(None),
            }),
            reload: rx,
        };
        (shared, tx)
    }

    /// Subscribes to the live broadcast and returns, with the receiver, the position
    /// in the records output up to which everything was broadcast before it: every
    /// record after that position reaches the receiver, none before it does.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Event>>, Option<Position>) {
        let pos = self.feed.lock();
        (self.events.subscribe(), *pos)
    }

    /// Broadcasts `events` and moves the feed's position to `end` (the end of the
    /// batch in the records output), as one step for [`Shared::subscribe`]. `late`
    /// builds the events of a batch that had no subscriber when it was judged, for
    /// one that subscribed since (so that it misses no record).
    pub fn publish(
        &self,
        events: Vec<Event>,
        end: Option<Position>,
        late: impl FnOnce() -> Vec<Event>,
    ) {
        let mut pos = self.feed.lock();
        let events = if events.is_empty() && self.events.receiver_count() > 0 {
            late()
        } else {
            events
        };
        for e in events {
            // No subscriber, or a lagging one: never waits.
            let _ = self.events.send(Arc::new(e));
        }
        if end.is_some() {
            *pos = end;
        }
    }
}

/// The records output as the live feed sees it.
#[derive(Debug)]
pub struct Feed {
    /// The records output file, when records go to a file (not stdout, not NATS):
    /// what `/events` replays from.
    pub path: Option<PathBuf>,
    /// The rejects file (`output.rejects`): what `/api/rejects` reads.
    pub rejects: PathBuf,
    /// The end of the last batch broadcast (none before the first position is known,
    /// or without a file).
    position: Mutex<Option<Position>>,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Position>> {
        self.position.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A position in the records output: the file (device and inode, which stay the
/// same when the file is rotated by rename) and a byte offset in it. An emitted
/// record's position is the offset just after its line; it is the record's event id
/// on `/events`, written `<device hex>-<inode hex>-<offset>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Byte offset in the file.
    pub offset: u64,
}

impl Position {
    /// True when `self` is in the same file as `other` and not after it.
    pub fn not_after(&self, other: &Position) -> bool {
        self.dev == other.dev && self.ino == other.ino && self.offset <= other.offset
    }

    /// True when both are in the same file.
    pub fn same_file(&self, other: &Position) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}-{:x}-{}", self.dev, self.ino, self.offset)
    }
}

impl std::str::FromStr for Position {
    type Err = ();

    fn from_str(s: &str) -> Result<Position, ()> {
        let mut parts = s.trim().splitn(3, '-');
        let mut next = |radix| {
            parts
                .next()
                .and_then(|p| u64::from_str_radix(p, radix).ok())
                .ok_or(())
        };
        Ok(Position {
            dev: next(16)?,
            ino: next(16)?,
            offset: next(10)?,
        })
    }
}

/// What an event on `/events` is about: its `event:` type in a server-sent stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An emitted record.
    Record,
    /// A version dropped as a duplicate.
    Duplicate,
    /// A version dropped as stale.
    Stale,
    /// A rejected file.
    Rejected,
}

impl EventKind {
    /// The `event:` type.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Record => "record",
            EventKind::Duplicate => "duplicate",
            EventKind::Stale => "stale",
            EventKind::Rejected => "rejected",
        }
    }
}

/// One outcome, for live subscribers. The chunks sent to them are built once and
/// shared by every subscriber.
#[derive(Debug)]
pub struct Event {
    /// What it is about.
    pub kind: EventKind,
    /// A record's position in the output (its event id); none for the others.
    pub id: Option<Position>,
    /// The JSON line (the record as written to the output, or the outcome), with its
    /// newline (the NDJSON chunk).
    ndjson: bytes::Bytes,
    /// The server-sent event chunk, built for the first subscriber that wants it.
    sse: std::sync::OnceLock<bytes::Bytes>,
    /// A record's brief line and its chunks ([`Event::brief`]).
    brief: std::sync::OnceLock<String>,
    brief_ndjson: std::sync::OnceLock<bytes::Bytes>,
    /// What filters look at: the record (also the dropped version's, for a duplicate
    /// or a stale one), or the outcome line of a reject. A record's is parsed from
    /// its line by the first subscriber that looks ([`Event::value`]), not by the
    /// committer.
    value: std::sync::OnceLock<serde_json::Value>,
}

impl Event {
    /// An event for the JSON line `line` (without its newline) of a record.
    pub fn new(line: String) -> Event {
        Event::lazy(EventKind::Record, line, std::sync::OnceLock::new())
    }

    /// An event of `kind` whose line is `line` (without its newline) and whose
    /// filters look at `value`.
    pub fn of(kind: EventKind, line: String, value: serde_json::Value) -> Event {
        Event::lazy(kind, line, std::sync::OnceLock::from(value))
    }

    fn lazy(kind: EventKind, line: String, value: std::sync::OnceLock<serde_json::Value>) -> Event {
        let mut ndjson = line.into_bytes();
        ndjson.push(b'\n');
        Event {
            kind,
            id: None,
            ndjson: ndjson.into(),
            sse: std::sync::OnceLock::new(),
            brief: std::sync::OnceLock::new(),
            brief_ndjson: std::sync::OnceLock::new(),
            value,
        }
    }

    /// A dropped version or a rejected file: `{"outcome":…,"path":…,…,"reason":…}`.
    pub fn outcome(
        kind: EventKind,
        fields: serde_json::Value,
        filter_on: Option<serde_json::Value>,
    ) -> Event {
        let mut line = serde_json::json!({ "outcome": kind.name() });
        if let (Some(l), serde_json::Value::Object(f)) = (line.as_object_mut(), fields) {
            l.extend(f);
        }
        let text = line.to_string();
        Event::of(kind, text, filter_on.unwrap_or(line))
    }

    /// What filters look at (see the field): for a record, its line parsed (`null`
    /// if it is not JSON, which the committer never writes).
    pub fn value(&self) -> &serde_json::Value {
        self.value
            .get_or_init(|| serde_json::from_str(self.line()).unwrap_or_default())
    }

    /// The JSON line, without its newline.
    pub fn line(&self) -> &str {
        let line = self.ndjson.strip_suffix(b"\n").unwrap_or(&self.ndjson);
        std::str::from_utf8(line).unwrap_or_default()
    }

    /// The NDJSON chunk: the line and its newline.
    pub fn ndjson(&self) -> bytes::Bytes {
        self.ndjson.clone()
    }

    /// A record's brief line, made once by `make` from the record's line and shared
    /// by every subscriber that wants it (none for the other outcomes).
    pub fn brief_line(&self, make: fn(&str) -> String) -> Option<&str> {
        (self.kind == EventKind::Record)
            .then(|| self.brief.get_or_init(|| make(self.line())).as_str())
    }

    /// The NDJSON chunk of a record's brief view (the other outcomes whole).
    pub fn brief(&self, make: fn(&str) -> String) -> bytes::Bytes {
        match self.brief_line(make) {
            Some(line) => self
                .brief_ndjson
                .get_or_init(|| format!("{line}\n").into())
                .clone(),
            None => self.ndjson(),
        }
    }

    /// The server-sent event chunk: `id: <position>` (records), `event: <kind>`,
    /// `data: <line>`, a blank line.
    pub fn sse(&self) -> bytes::Bytes {
        self.sse
            .get_or_init(|| sse_chunk(self.id, self.kind, self.line()))
            .clone()
    }
}

/// A server-sent event: `id:` (when given), `event:`, `data:`, a blank line.
pub fn sse_chunk(id: Option<Position>, kind: EventKind, line: &str) -> bytes::Bytes {
    let id = id.map(|p| format!("id: {p}\n")).unwrap_or_default();
    format!("{id}event: {}\ndata: {line}\n\n", kind.name()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_print_and_parse_back() {
        let p = Position {
            dev: 0x803,
            ino: 0x1f2e,
            offset: 40961,
        };
        assert_eq!(p.to_string(), "803-1f2e-40961");
        assert_eq!("803-1f2e-40961".parse::<Position>(), Ok(p));
        for bad in [
            "",
            "803-1f2e",
            "803-1f2e-x",
            "2022-10-02T00:00:00Z",
            "a-b-1-2",
        ] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
        let later = Position { offset: 50000, ..p };
        assert!(p.not_after(&later) && !later.not_after(&p));
        assert!(!p.not_after(&Position { ino: 1, ..later }));
    }

    #[test]
    fn an_outcome_is_one_json_line_with_its_kind() {
        let e = Event::outcome(
            EventKind::Rejected,
            serde_json::json!({"path": "inbox/a.txt", "kind": "empty", "reason": "the file is empty"}),
            None,
        );
        let line: serde_json::Value = serde_json::from_str(e.line()).unwrap();
        assert_eq!(line["outcome"], "rejected");
        assert_eq!(line["path"], "inbox/a.txt");
        assert_eq!(line["reason"], "the file is empty");
        assert!(!e.line().contains('\n'));
        assert_eq!(e.value()["kind"], "empty");
        assert!(e.sse().starts_with(b"event: rejected\ndata: {"));
    }
}
