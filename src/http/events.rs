//! `GET /events`: the stream of outcomes (emitted records, and on request the
//! duplicates, stale versions and rejects), filtered, replayed from the output file
//! when asked.
//!
//! Each client has a subscriber task between the broadcast channel the committer
//! sends to and the client's response body. The task ends, and the
//! `wirewatch_events_subscribers` gauge goes down, as soon as the client goes away
//! (its connection closed: the body is dropped), whether or not a record matched
//! since.
//!
//! A server-sent stream opens with `retry:` ([`RETRY_MS`]); every record carries
//! `id:`, its position in the output ([`crate::pipeline::Position`]); 15 s without
//! a chunk sends a `: keep-alive` comment line. With `Last-Event-ID` or `since`, the
//! task subscribes to the broadcast first, together with the position the broadcast
//! has reached ([`crate::pipeline::Shared::subscribe`]), replays the output file up
//! to exactly that position ([`super::replay`]), then goes on with the broadcast:
//! no record is missed or sent twice at the hand-over.
//!
//! The task takes every event from the broadcast at once, and hands the
//! matching ones to the connection as fast as the client reads: at most
//! [`SENDING_BYTES`] (or one record) sit in the body's queue, the rest wait in the
//! task. When more than [`MAX_RECORDS`] records, or more than [`MAX_BYTES`] bytes of
//! two records or more, wait for a client (in the task and the body's queue, not
//! counting what the connection already holds), or when the task itself falls
//! [`MAX_RECORDS`] records behind the broadcast (also while it replays), the client
//! is disconnected: its connection is cut (see [`super::conn`]) and the
//! disconnection counts in `wirewatch_events_lagged_total`. A record's chunk is
//! built once and shared by every client it is sent to.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, Notify};

use super::batch::{Batch, Rate};
use super::brief::brief;
use super::conn::Hangup;
use super::query::{EventFilter, EventQuery, Outcomes, Since};
use super::replay::{captured_since, Replay};
use super::AppState;
use crate::metrics::Metrics;
use crate::pipeline::{sse_chunk, Event, EventKind, Position};

/// The comment line sent after [`keepalive`] of silence.
const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// Records that may wait for one client (and how far behind the broadcast its
/// subscriber may fall) before the client is disconnected.
pub const MAX_RECORDS: usize = 1024;

/// Bytes that may wait for one client before it is disconnected (a single record
/// larger than this is still sent).
pub const MAX_BYTES: usize = 16 << 20;

/// Bytes handed to a client's body ahead of what the connection has taken (a
/// single larger record is still handed over once the queue is empty).
pub const SENDING_BYTES: usize = 1 << 20;

/// `retry:` sent at the start of a server-sent stream: how long a client waits
/// before reconnecting, in milliseconds.
pub const RETRY_MS: u64 = 3000;

/// Silence after which a server-sent stream gets a `: keep-alive` comment line:
/// 15 s, or `WIREWATCH_EVENTS_KEEPALIVE_MS` (for tests).
fn keepalive() -> Duration {
    static EVERY: OnceLock<Duration> = OnceLock::new();
    *EVERY.get_or_init(|| {
        let ms = std::env::var("WIREWATCH_EVENTS_KEEPALIVE_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .unwrap_or(15_000);
        Duration::from_millis(ms)
    })
}

/// A plain-text error response.
fn refuse(status: StatusCode, message: String) -> Response {
    (status, format!("{message}\n")).into_response()
}

pub(super) async fn events(
    State(st): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let last_event_id = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "Last-Event-ID is not text: send back the `id:` of an event this stream sent"
                    .into(),
            )
        }
    };
    let tz = TimeZone::get(&st.shared.reload.borrow().parse.timezone).unwrap_or(TimeZone::UTC);
    let q = match EventQuery::parse(&pairs, last_event_id, Timestamp::now(), &tz) {
        Ok(q) => q,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    if q.max_rate.is_some() && !sse {
        return refuse(
            StatusCode::BAD_REQUEST,
            "max_rate thins a server-sent stream (Accept: text/event-stream); an NDJSON reader gets every record".into(),
        );
    }
    // Subscribed first: every record after `upto` comes from the broadcast, every
    // record up to it is in the output file.
    let (rx, upto) = st.shared.subscribe();
    let replay = match q.since {
        None => None,
        Some(_) if !q.outcomes.emitted => None,
        Some(since) => {
            let Some(path) = st.shared.feed.path.clone() else {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "replay (since= or Last-Event-ID) needs the records output in a file, and this daemon writes its records to stdout (output.path = \"-\") or to NATS (read that back with `wirewatch tail --nats`); connect without them for the live stream".into(),
                );
            };
            let Some(upto) = upto else {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is starting and its output position is not known yet; try again in a moment".into(),
                );
            };
            let filter = q.filter.clone();
            let plan = move || match since {
                Since::Last(n) => Replay::last(&path, upto, n, |r| filter.matches(r)),
                since => Replay::plan(&path, since, upto),
            };
            match tokio::task::spawn_blocking(plan).await {
                Ok(r) => Some(r),
                Err(e) => {
                    return refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("internal error: planning the replay failed: {e}"),
                    )
                }
            }
        }
    };
    let (tx, mut body_rx) = mpsc::channel::<Bytes>(MAX_RECORDS);
    let queue = Arc::new(Queue::default());
    let sub = Subscriber {
        rx,
        tx,
        filter: q.filter,
        outcomes: q.outcomes,
        captured_since: match q.since {
            Some(Since::Time(t)) => Some(t),
            _ => None,
        },
        sse,
        brief: q.brief,
        batch: Batch::default(),
        rate: q.max_rate.map(Rate::new),
        queue: queue.clone(),
        waiting: VecDeque::new(),
        waiting_bytes: 0,
        last_sent: Instant::now(),
        replayed: None,
        hangup: extensions.get::<ConnectInfo<Hangup>>().map(|c| c.0.clone()),
        metrics: st.shared.metrics.clone(),
        _live: Live::new(&st.shared.metrics.events_subscribers),
    };
    tokio::spawn(sub.run(replay));
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
    outcomes: Outcomes,
    /// A time `since`: live records captured before it are not sent either.
    captured_since: Option<Timestamp>,
    sse: bool,
    /// `view=brief`: records go as their brief.
    brief: bool,
    /// Briefs waiting to go together (`view=brief`, server-sent).
    batch: Batch,
    /// `max_rate=R`: the client's allowance of records.
    rate: Option<Rate>,
    queue: Arc<Queue>,
    /// Matching records not yet handed to the body.
    waiting: VecDeque<Bytes>,
    waiting_bytes: usize,
    /// When a chunk was last handed to the body (for keep-alives).
    last_sent: Instant,
    /// The last record replayed from the file: live records up to it are not sent.
    replayed: Option<Position>,
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
    async fn run(mut self, replay: Option<Replay>) {
        if self.sse {
            self.push(format!("retry: {RETRY_MS}\n\n").into());
        }
        if let Some(r) = replay {
            if let Err(end) = self.replay(r).await {
                match end {
                    End::Gone => {}
                    End::Behind(why) => self.disconnect(&why),
                }
                return;
            }
        }
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
            let quiet_until = tokio::time::Instant::from_std(self.last_sent + keepalive());
            let batch_due = self.batch.due().map(tokio::time::Instant::from_std);
            let ev = tokio::select! {
                biased;
                // The body was dropped: the client went away.
                () = self.tx.closed() => return End::Gone,
                // The connection took a chunk: room to hand over more.
                () = self.queue.taken.notified(), if !self.waiting.is_empty() => continue,
                // The briefs waiting together go.
                () = sleep_until_some(batch_due), if batch_due.is_some() => {
                    self.send_batch();
                    continue;
                }
                ev = self.rx.recv() => ev,
                () = tokio::time::sleep_until(quiet_until), if self.sse => {
                    self.push(Bytes::from_static(KEEPALIVE));
                    continue;
                }
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
            if !self.outcomes.wants(ev.kind)
                || (!self.filter.is_empty() && !self.filter.matches(ev.value()))
            {
                continue;
            }
            if let (Some(t), EventKind::Record) = (self.captured_since, ev.kind) {
                if !captured_since(ev.value(), t) {
                    continue;
                }
            }
            // Already replayed from the file (the hand-over keeps this from
            // happening; checked all the same).
            if let (Some(id), Some(last)) = (ev.id, self.replayed) {
                if id.not_after(&last) {
                    continue;
                }
            }
            match (self.brief, self.sse) {
                (true, true) if ev.kind == EventKind::Record => {
                    self.batch.add_live(ev);
                    if self.batch.full() {
                        self.send_batch();
                    }
                }
                (true, true) => {
                    // In order: the briefs before it go first.
                    self.send_batch();
                    self.push(ev.sse());
                }
                (true, false) => self.push(ev.brief(brief)),
                (false, true) => self.push(ev.sse()),
                (false, false) => self.push(ev.ndjson()),
            }
            let records = self.waiting.len() + self.queued_records() + self.batch.len();
            let bytes = self.waiting_bytes + self.queue.bytes.load(Ordering::Acquire);
            if records > MAX_RECORDS || (bytes > MAX_BYTES && records > 1) {
                return End::Behind(format!("{records} records, {bytes} bytes waiting for it"));
            }
        }
    }

    /// Queues the batch's event, if it holds any record: all of it, or under
    /// `max_rate` what the client's allowance holds.
    fn send_batch(&mut self) {
        let keep = match &mut self.rate {
            Some(rate) => rate.take(self.batch.len()),
            None => usize::MAX,
        };
        if let Some(chunk) = self.batch.take(keep, brief) {
            self.push(chunk);
        }
    }

    /// Queues a chunk for the body.
    fn push(&mut self, chunk: Bytes) {
        self.waiting_bytes += chunk.len();
        self.waiting.push_back(chunk);
    }

    /// Sends the records of the output file from the replay's start up to the live
    /// hand-over, at the pace the client reads them (at most [`SENDING_BYTES`] in
    /// the body's queue).
    async fn replay(&mut self, mut replay: Replay) -> Result<(), End> {
        if let (Some(note), true) = (replay.note.take(), self.sse) {
            tracing::info!("/events replay: {note}");
            self.push(format!(": {note}\n\n").into());
        }
        loop {
            self.hand_over()?;
            // Room in the body's queue before reading on.
            while !self.waiting.is_empty() {
                tokio::select! {
                    biased;
                    () = self.tx.closed() => return Err(End::Gone),
                    () = self.queue.taken.notified() => {}
                }
                self.hand_over()?;
            }
            let next = replay.next().await.map_err(|e| {
                tracing::warn!("/events replay stopped: cannot read the output ({e})");
                End::Gone
            })?;
            let Some((pos, line, value)) = next else {
                // The recent past goes at once.
                self.send_batch();
                self.hand_over()?;
                return Ok(());
            };
            if !self.filter.matches(&value) {
                if self.sse && self.last_sent.elapsed() >= keepalive() {
                    self.push(Bytes::from_static(KEEPALIVE));
                }
                continue;
            }
            self.send_replayed(pos, line);
        }
    }

    /// Queues a replayed record.
    fn send_replayed(&mut self, pos: Position, line: String) {
        self.replayed = Some(pos);
        if self.brief && self.sse {
            self.batch.add_replayed(pos, line);
            if self.batch.full() {
                self.send_batch();
            }
            return;
        }
        let brief_line;
        let line = if self.brief {
            brief_line = brief(&line);
            &brief_line
        } else {
            &line
        };
        self.push(if self.sse {
            sse_chunk(Some(pos), EventKind::Record, line)
        } else {
            format!("{line}\n").into()
        });
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
                Ok(()) => {
                    self.waiting_bytes -= len;
                    self.last_sent = Instant::now();
                }
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

/// Sleeps until `t` (forever without one; the caller's guard keeps that from
/// being polled).
async fn sleep_until_some(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_chunks_are_the_line_as_ndjson_and_as_a_server_sent_event() {
        let ev = Event::new(r#"{"a":1}"#.to_owned());
        assert_eq!(ev.value(), &serde_json::json!({"a": 1}));
        assert_eq!(ev.line(), r#"{"a":1}"#);
        assert_eq!(&ev.ndjson()[..], b"{\"a\":1}\n");
        assert_eq!(&ev.sse()[..], b"event: record\ndata: {\"a\":1}\n\n");
        // Built once, shared.
        assert_eq!(ev.sse().as_ptr(), ev.sse().as_ptr());
        assert_eq!(ev.ndjson().as_ptr(), ev.ndjson().as_ptr());
    }
}
