//! What the HTTP side shares with the pipeline ([`Shared`]): the counters, the health
//! and the live feed of committed records ([`Event`]).

use super::Health;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::Metrics;

/// What the HTTP endpoints and the signal handlers share with the pipeline.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Liveness of the stages.
    pub health: Arc<Health>,
    /// Emitted records, for live subscribers (`GET /events`). Sending never waits.
    pub events: tokio::sync::broadcast::Sender<Arc<Event>>,
    /// Settings that SIGHUP may change: parse options and batch sizes.
    pub reload: watch::Receiver<Arc<Config>>,
}

impl Shared {
    /// A context for a pipeline that nobody else watches (tests, `--once`).
    pub fn new(cfg: &Config) -> (Shared, watch::Sender<Arc<Config>>) {
        let (tx, rx) = watch::channel(Arc::new(cfg.clone()));
        let shared = Shared {
            metrics: Metrics::shared_for(cfg.sink.kind == crate::nats::SinkKind::Nats),
            health: Arc::new(Health::default()),
            events: tokio::sync::broadcast::channel(1024).0,
            reload: rx,
        };
        (shared, tx)
    }
}

/// One emitted record, for live subscribers. The chunks sent to them are built
/// once and shared by every subscriber.
#[derive(Debug)]
pub struct Event {
    /// The JSON line as written to the output, with its newline (the NDJSON chunk).
    ndjson: bytes::Bytes,
    /// The server-sent event chunk, built for the first subscriber that wants it.
    sse: std::sync::OnceLock<bytes::Bytes>,
    /// The same record as a JSON value, for filters.
    pub value: serde_json::Value,
}

impl Event {
    /// An event for the JSON line `line` (without its newline) of the record `value`.
    pub fn new(line: String, value: serde_json::Value) -> Event {
        let mut ndjson = line.into_bytes();
        ndjson.push(b'\n');
        Event {
            ndjson: ndjson.into(),
            sse: std::sync::OnceLock::new(),
            value,
        }
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

    /// The server-sent event chunk: `event: record`, `data: <line>`, a blank line.
    pub fn sse(&self) -> bytes::Bytes {
        self.sse
            .get_or_init(|| format!("event: record\ndata: {}\n\n", self.line()).into())
            .clone()
    }
}
