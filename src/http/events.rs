//! `GET /events`: the live stream of emitted records, filtered.
//!
//! Each client has a subscriber task between the broadcast channel the committer
//! sends to and the client's response body. The task ends, and the
//! `wirewatch_events_subscribers` gauge goes down, as soon as the client goes away
//! (its connection closed: the body is dropped), whether or not a record matched
//! since.
//!
//! The task takes every emitted record from the broadcast at once, and hands the
//! matching ones to the connection as fast as the client reads: at most
//! [`SENDING_BYTES`] (or one record) sit in the body's queue, the rest wait in the
//! task. When more than [`MAX_RECORDS`] records, or more than [`MAX_BYTES`] bytes of
//! two records or more, wait for a client (in the task and the body's queue, not
//! counting what the connection already holds), or when the task itself falls
//! [`MAX_RECORDS`] records behind the broadcast, the client is disconnected: its
//! connection is cut (see [`super::conn`]) and the disconnection counts in
//! `wirewatch_events_lagged_total`. A record's chunk is built once and shared by
//! every client it is sent to.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::gauge::Gauge;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, Notify};

use super::conn::Hangup;
use super::AppState;
use crate::filter::Filter;
use crate::fold::match_key;
use crate::metrics::Metrics;
use crate::pipeline::Event;

/// Records that may wait for one client (and how far behind the broadcast its
/// subscriber may fall) before the client is disconnected.
pub const MAX_RECORDS: usize = 1024;

/// Bytes that may wait for one client before it is disconnected (a single record
/// larger than this is still sent).
pub const MAX_BYTES: usize = 16 << 20;

/// Bytes handed to a client's body ahead of what the connection has taken (a
/// single larger record is still handed over once the queue is empty).
pub const SENDING_BYTES: usize = 1 << 20;

/// Query parameters of `/events`.
#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    /// Substring of a person's name or alias.
    pub person: Option<String>,
    /// Substring of a place's name.
    pub place: Option<String>,
    /// Substring of an organization's name or acronym.
    pub org: Option<String>,
    /// Substring of the dateline.
    pub dateline: Option<String>,
    /// Words that must all appear in the text.
    pub q: Option<String>,
}

/// The `/events` filter.
#[derive(Debug, Clone)]
pub struct EventFilter {
    names: Filter,
    dateline: Option<String>,
    words: Vec<String>,
}

impl EventFilter {
    /// Builds the filter from query parameters.
    pub fn new(q: &EventQuery) -> EventFilter {
        let one = |v: &Option<String>| {
            v.iter()
                .filter(|s| !s.trim().is_empty())
                .cloned()
                .collect::<Vec<_>>()
        };
        EventFilter {
            names: Filter::new(None, &one(&q.person), &one(&q.place), &one(&q.org)),
            dateline: q
                .dateline
                .as_deref()
                .map(match_key)
                .filter(|s| !s.is_empty()),
            words: q
                .q
                .as_deref()
                .map(match_key)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        }
    }

    /// True when the record passes.
    pub fn matches(&self, r: &Value) -> bool {
        if !self.names.matches(r) {
            return false;
        }
        if let Some(d) = &self.dateline {
            if !r["dateline"]
                .as_str()
                .is_some_and(|x| match_key(x).contains(d.as_str()))
            {
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

pub(super) async fn events(
    State(st): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(q): Query<EventQuery>,
) -> Response {
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let (tx, mut body_rx) = mpsc::channel::<Bytes>(MAX_RECORDS);
    let queue = Arc::new(Queue::default());
    let sub = Subscriber {
        rx: st.shared.events.subscribe(),
        tx,
        filter: EventFilter::new(&q),
        sse,
        queue: queue.clone(),
        waiting: VecDeque::new(),
        waiting_bytes: 0,
        hangup: extensions.get::<ConnectInfo<Hangup>>().map(|c| c.0.clone()),
        metrics: st.shared.metrics.clone(),
        _live: Live::new(&st.shared.metrics.events_subscribers),
    };
    tokio::spawn(sub.run());
    // Ends with an error when the client fell behind: an error from the body ends
    // the connection (where no Hangup is there to cut it).
    let stream = futures::stream::poll_fn(move |cx| {
        body_rx.poll_recv(cx).map(|chunk| match chunk {
            Some(c) => {
                queue.bytes.fetch_sub(c.len(), Ordering::AcqRel);
                queue.taken.notify_one();
                Some(Ok(c))
            }
            None if queue.lagged.swap(false, Ordering::AcqRel) => {
                Some(Err(std::io::Error::other("fell behind")))
            }
            None => None,
        })
    });
    let ctype = if sse {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    Response::builder()
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A client's body queue, shared by its subscriber and its body.
#[derive(Debug, Default)]
struct Queue {
    /// Bytes in the queue (handed to the body, not yet taken by the connection).
    bytes: AtomicUsize,
    /// Signalled each time the connection takes a chunk.
    taken: Notify,
    /// The client fell behind: the body ends with an error.
    lagged: AtomicBool,
}

/// Counts a live subscriber in a gauge for as long as it lives.
#[derive(Debug)]
struct Live(Gauge);

impl Live {
    fn new(g: &Gauge) -> Live {
        g.inc();
        Live(g.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One client's task: broadcast → filter → what waits → the client's body.
struct Subscriber {
    rx: broadcast::Receiver<Arc<Event>>,
    tx: mpsc::Sender<Bytes>,
    filter: EventFilter,
    sse: bool,
    queue: Arc<Queue>,
    /// Matching records not yet handed to the body.
    waiting: VecDeque<Bytes>,
    waiting_bytes: usize,
    hangup: Option<Hangup>,
    metrics: Arc<Metrics>,
    _live: Live,
}

/// Why a subscriber ends.
enum End {
    /// The client went away, or the daemon is stopping.
    Gone,
    /// The client fell behind (the reason, for the log).
    Behind(String),
}

impl Subscriber {
    async fn run(mut self) {
        match self.follow().await {
            End::Gone => {}
            End::Behind(why) => self.disconnect(&why),
        }
    }

    async fn follow(&mut self) -> End {
        loop {
            if let Err(end) = self.hand_over() {
                return end;
            }
            let ev = tokio::select! {
                biased;
                // The body was dropped: the client went away.
                () = self.tx.closed() => return End::Gone,
                // The connection took a chunk: room to hand over more.
                () = self.queue.taken.notified(), if !self.waiting.is_empty() => continue,
                ev = self.rx.recv() => ev,
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    return End::Behind(format!(
                        "{n} records emitted while its subscriber was not keeping up"
                    ))
                }
                Err(RecvError::Closed) => return End::Gone,
            };
            if !self.filter.matches(&ev.value) {
                continue;
            }
            let chunk = if self.sse { ev.sse() } else { ev.ndjson() };
            self.waiting_bytes += chunk.len();
            self.waiting.push_back(chunk);
            let records = self.waiting.len() + self.queued_records();
            let bytes = self.waiting_bytes + self.queue.bytes.load(Ordering::Acquire);
            if records > MAX_RECORDS || (bytes > MAX_BYTES && records > 1) {
                return End::Behind(format!("{records} records, {bytes} bytes waiting for it"));
            }
        }
    }

    /// Records in the body's queue.
    fn queued_records(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Hands waiting records to the body while its queue has room.
    fn hand_over(&mut self) -> Result<(), End> {
        while let Some(len) = self.waiting.front().map(Bytes::len) {
            let queued = self.queue.bytes.load(Ordering::Acquire);
            if queued > 0 && queued + len > SENDING_BYTES {
                return Ok(());
            }
            let Some(chunk) = self.waiting.pop_front() else {
                return Ok(());
            };
            // Counted before the send: the body may take it at once.
            self.queue.bytes.fetch_add(len, Ordering::AcqRel);
            match self.tx.try_send(chunk) {
                Ok(()) => self.waiting_bytes -= len,
                Err(e) => {
                    self.queue.bytes.fetch_sub(len, Ordering::AcqRel);
                    match e {
                        mpsc::error::TrySendError::Full(chunk) => {
                            self.waiting.push_front(chunk);
                            return Ok(());
                        }
                        mpsc::error::TrySendError::Closed(_) => return Err(End::Gone),
                    }
                }
            }
        }
        Ok(())
    }

    /// Disconnects a client that fell behind.
    fn disconnect(self, why: &str) {
        tracing::warn!(
            "an /events client fell behind ({why}); disconnecting it (at most {MAX_RECORDS} records or {MAX_BYTES} bytes may wait for a client)"
        );
        self.metrics.events_lagged.inc();
        self.queue.lagged.store(true, Ordering::Release);
        if let Some(h) = &self.hangup {
            h.hang_up();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_chunks_are_the_line_as_ndjson_and_as_a_server_sent_event() {
        let ev = Event::new(r#"{"a":1}"#.to_owned(), serde_json::json!({"a": 1}));
        assert_eq!(ev.line(), r#"{"a":1}"#);
        assert_eq!(&ev.ndjson()[..], b"{\"a\":1}\n");
        assert_eq!(&ev.sse()[..], b"event: record\ndata: {\"a\":1}\n\n");
        // Built once, shared.
        assert_eq!(ev.sse().as_ptr(), ev.sse().as_ptr());
        assert_eq!(ev.ndjson().as_ptr(), ev.ndjson().as_ptr());
    }
}
