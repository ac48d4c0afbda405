//! The JetStream sink: every record a message, `append` returns once all are acked.
//!
//! A batch is published pipelined: every message is sent, then every
//! acknowledgement awaited; whatever failed (time-out, no leader during an election,
//! connection lost) is sent again with backoff, until it is acknowledged or the
//! attempt runs out of time (then `append` fails and the committer retries the whole
//! batch: what was already stored comes back as a duplicate and is not stored
//! twice). Two versions of one article in one batch are sent in two rounds, the older
//! one acknowledged first, so a retry can never put an older version after a newer one.
//!
//! Each message carries:
//!
//! * `Nats-Msg-Id: <article_id>:<stamp>`: the stream drops a second message with
//!   the same id within its duplicate window (a re-publish after a crash between
//!   the acknowledgement and the local commit);
//! * with the cluster-wide ledger only, `Nats-Expected-Last-Subject-Sequence: F`,
//!   where the subject is per article and F is the sequence of a version known to be
//!   older (0: the subject must be empty). The stream refuses the message when
//!   anything else was stored on the subject since; the sink then reads the
//!   subject's last message: its own id means already stored; a newer or equal stamp
//!   means this version was overtaken (it is dropped: an older version never follows
//!   a newer one); an older one becomes the new F and the message is sent again.
//!   This fence holds even past the duplicate window and across daemons. After the
//!   acknowledgement, [`keep_in_order`] checks that nothing at least as new was
//!   stored on the subject between the fence and the message (a leader change can
//!   commit a message past its fence) and deletes the message if so.
//!
//! With a daemon's metrics (`wirewatch_nats_*`), each publish failure is counted by
//! kind, each message sent again as a retry, each acknowledgement that says
//! `duplicate` as a duplicate, and each acknowledged batch's time in a histogram.
//!
//! Test-only fault hook, in builds with the `fault-injection` feature only: with
//! `WIREWATCH_FAULT=kill_after_publish` in the environment when the sink is built, the process aborts right after the first
//! batch is acknowledged, before the ledger marks and before the local commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use serde::Deserialize;
use tokio::runtime::Handle;

use crate::metrics::NatsErrorKind;
use crate::record::Stamp;
use crate::sink::Committed;
use crate::sink::{Sink, SinkError};

use super::health::Reporter;
use super::ledger::Claims;
use super::{error, msg_id, stamp_of_msg_id, subject};
use crate::config::nats::NatsConfig;

/// The fields of a record line the sink needs.
#[derive(Deserialize)]
struct Head {
    article_id: String,
    #[serde(default)]
    dateline: Option<String>,
    #[serde(default)]
    posted_at: Option<Stamp>,
    #[serde(default)]
    updated_at: Option<Stamp>,
}

/// One message of a batch.
#[derive(Debug)]
struct Out {
    subject: String,
    msg_id: String,
    stamp: Option<Stamp>,
    payload: Bytes,
    /// 0 for the first version of its article in the batch, 1 for the second, …
    round: usize,
    /// Expected last sequence on the subject (ledger mode).
    fence: Option<u64>,
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pending,
    /// In the stream at this sequence (`true`: it was already there).
    Stored(u64, bool),
    /// A newer version reached the stream first; not published.
    Overtaken,
}

/// Publishes records to a JetStream stream. See the module docs.
pub struct JetStreamSink {
    js: jetstream::Context,
    stream: stream::Stream,
    handle: Handle,
    prefix: String,
    target: String,
    ledger: Option<Arc<Claims>>,
    /// Highest stream sequence acknowledged so far: the "position".
    last_seq: u64,
    give_up: Duration,
    kill_after_publish: bool,
    reporter: Reporter,
}

impl std::fmt::Debug for JetStreamSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSink")
            .field("target", &self.target)
            .finish()
    }
}

impl JetStreamSink {
    /// Must be called inside the tokio runtime (its handle drives the publishes).
    pub fn new(
        js: jetstream::Context,
        stream: stream::Stream,
        cfg: &NatsConfig,
        ledger: Option<Arc<Claims>>,
    ) -> JetStreamSink {
        let kill_after_publish = cfg!(feature = "fault-injection")
            && std::env::var("WIREWATCH_FAULT").is_ok_and(|v| v == "kill_after_publish");
        if kill_after_publish {
            tracing::warn!("test fault hook armed: aborting after the first acknowledged publish");
        }
        JetStreamSink {
            js,
            stream,
            handle: Handle::current(),
            prefix: cfg.subject_prefix.clone(),
            target: format!("nats stream {} ({})", cfg.stream, cfg.urls.join(",")),
            ledger,
            last_seq: 0,
            give_up: Duration::from_millis(cfg.request_timeout_ms * 3).max(Duration::from_secs(10)),
            kill_after_publish,
            reporter: Reporter::default(),
        }
    }

    /// Tells `reporter` of failed publishes and of the batches acknowledged.
    pub fn with_reporter(mut self, reporter: Reporter) -> JetStreamSink {
        self.reporter = reporter;
        self
    }

    /// Counts a failed publish of `kind`.
    fn count_error(&self, kind: NatsErrorKind) {
        if let Some(m) = self.reporter.metrics() {
            m.error(kind);
        }
    }

    fn position(&self) -> Committed {
        Committed {
            offset: self.last_seq,
            identity: None,
        }
    }

    fn messages(&self, lines: &[u8]) -> Result<Vec<Out>, SinkError> {
        let text = std::str::from_utf8(lines).map_err(|e| error(&self.target, e))?;
        let mut rounds: HashMap<String, usize> = HashMap::new();
        let mut outs = Vec::new();
        let max_payload = self.js.client().server_info().max_payload;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let head: Head = serde_json::from_str(line)
                .map_err(|e| error(&self.target, format!("not a record line: {e}")))?;
            if max_payload > 0 && line.len() + 256 > max_payload {
                // Retrying cannot help, and stalling every later file would be worse.
                tracing::error!(
                    article_id = %head.article_id,
                    bytes = line.len(),
                    max_payload,
                    "record larger than the servers' max_payload: NOT published (raise max_payload on the servers or lower parse.max_bytes)"
                );
                continue;
            }
            let stamp = head.updated_at.or(head.posted_at);
            let id = msg_id(&head.article_id, stamp.as_ref());
            let round = rounds.entry(head.article_id.clone()).or_default();
            let fence = self
                .ledger
                .as_ref()
                .and_then(|l| l.claim_for(&id))
                .map(|c| c.fence);
            outs.push(Out {
                subject: subject(&self.prefix, head.dateline.as_deref(), &head.article_id),
                msg_id: id,
                stamp,
                payload: Bytes::copy_from_slice(line.as_bytes()),
                round: *round,
                fence,
            });
            *round += 1;
        }
        Ok(outs)
    }

    /// After a refused fence: decides from the subject's last message.
    async fn resolve(&self, out: &mut Out) -> Result<Option<Fate>, String> {
        match self
            .stream
            .get_last_raw_message_by_subject(&out.subject)
            .await
        {
            Ok(m) => {
                let theirs = m
                    .headers
                    .get(NATS_MESSAGE_ID)
                    .map(|v| v.as_str().to_owned());
                if theirs.as_deref() == Some(out.msg_id.as_str()) {
                    return Ok(Some(Fate::Stored(m.sequence, true)));
                }
                match theirs.as_deref().and_then(stamp_of_msg_id) {
                    Some(stamp) if stamp >= out.stamp => Ok(Some(Fate::Overtaken)),
                    _ => {
                        out.fence = Some(m.sequence);
                        Ok(None)
                    }
                }
            }
            Err(e)
                if e.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                out.fence = Some(0);
                Ok(None)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Ledger mode: [`keep_in_order`] for a stored message.
    async fn verify(&self, out: &Out, seq: u64) -> Result<Fate, String> {
        let Some(fence) = out.fence else {
            return Ok(Fate::Stored(seq, false));
        };
        let kept = keep_in_order(
            &self.stream,
            &out.subject,
            &out.msg_id,
            out.stamp.as_ref(),
            fence,
            seq,
        )
        .await?;
        Ok(if kept {
            Fate::Stored(seq, false)
        } else {
            Fate::Overtaken
        })
    }

    /// Publishes every message, round by round; returns their fates.
    async fn publish_all(&self, outs: &mut [Out]) -> Result<Vec<Fate>, SinkError> {
        let start = Instant::now();
        let mut fates = vec![Fate::Pending; outs.len()];
        let rounds = outs.iter().map(|o| o.round).max().map_or(0, |r| r + 1);
        // Sequences stored by this batch, per subject: the fence of a later round.
        let mut stored_on: HashMap<String, u64> = HashMap::new();
        for round in 0..rounds {
            let mut pending: Vec<usize> = (0..outs.len())
                .filter(|&i| outs[i].round == round)
                .collect();
            if round > 0 {
                for &i in &pending {
                    if let (Some(_), Some(&seq)) = (outs[i].fence, stored_on.get(&outs[i].subject))
                    {
                        outs[i].fence = Some(seq);
                    }
                }
            }
            let mut backoff =
                crate::retry::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
            while !pending.is_empty() {
                let mut acks = Vec::with_capacity(pending.len());
                let mut failed = Vec::new();
                let mut last_error = String::new();
                for &i in &pending {
                    let o = &outs[i];
                    let mut h = HeaderMap::new();
                    h.insert(NATS_MESSAGE_ID, o.msg_id.as_str());
                    if let Some(f) = o.fence {
                        h.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, f.to_string().as_str());
                    }
                    match self
                        .js
                        .publish_with_headers(o.subject.clone(), h, o.payload.clone())
                        .await
                    {
                        Ok(ack) => acks.push((i, ack)),
                        Err(e) => {
                            self.count_error(error_kind(e.kind()));
                            last_error = e.to_string();
                            failed.push(i);
                        }
                    }
                }
                let results = futures::future::join_all(
                    acks.into_iter()
                        .map(|(i, ack)| async move { (i, ack.await) }),
                )
                .await;
                for (i, r) in results {
                    match r {
                        Ok(ack) => {
                            tracing::debug!(msg_id = %outs[i].msg_id, subject = %outs[i].subject, fence = ?outs[i].fence, seq = ack.sequence, duplicate = ack.duplicate, "stored");
                            fates[i] = Fate::Stored(ack.sequence, ack.duplicate)
                        }
                        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                            self.count_error(NatsErrorKind::WrongLastSequence);
                            let fence = outs[i].fence;
                            let resolved = self.resolve(&mut outs[i]).await;
                            tracing::debug!(msg_id = %outs[i].msg_id, ?fence, ?resolved, new_fence = ?outs[i].fence, "fence refused");
                            match resolved {
                                Ok(Some(f)) => fates[i] = f,
                                // New fence: send again at once.
                                Ok(None) => failed.push(i),
                                Err(e) => {
                                    self.count_error(NatsErrorKind::Other);
                                    last_error = e;
                                    failed.push(i);
                                }
                            }
                        }
                        Err(e) => {
                            self.count_error(error_kind(e.kind()));
                            last_error = e.to_string();
                            failed.push(i);
                        }
                    }
                }
                if self.ledger.is_some() {
                    let stored: Vec<(usize, u64, bool)> = pending
                        .iter()
                        .filter_map(|&i| match fates[i] {
                            Fate::Stored(seq, dup) => Some((i, seq, dup)),
                            _ => None,
                        })
                        .collect();
                    let outs_ref: &[Out] = outs;
                    let checks =
                        futures::future::join_all(stored.iter().map(|&(i, seq, _)| async move {
                            (i, self.verify(&outs_ref[i], seq).await)
                        }))
                        .await;
                    for ((i, r), &(_, seq, dup)) in checks.into_iter().zip(&stored) {
                        match r {
                            Ok(Fate::Stored(..)) => fates[i] = Fate::Stored(seq, dup),
                            Ok(f) => fates[i] = f,
                            Err(e) => {
                                // Not known to be in order yet: send again (the stream
                                // answers "duplicate") and check again.
                                self.count_error(NatsErrorKind::Other);
                                last_error = e;
                                fates[i] = Fate::Pending;
                                failed.push(i);
                            }
                        }
                    }
                }
                for &i in &pending {
                    if let Fate::Stored(seq, _) = fates[i] {
                        stored_on.insert(outs[i].subject.clone(), seq);
                    }
                }
                failed.sort_unstable();
                let transient = !last_error.is_empty();
                pending = failed;
                if pending.is_empty() {
                    break;
                }
                if let Some(m) = self.reporter.metrics() {
                    m.retries.inc_by(pending.len() as u64);
                }
                if transient {
                    self.reporter.failed(
                        &format!("publishing {} records to {}", pending.len(), self.target),
                        &last_error,
                    );
                    if start.elapsed() > self.give_up {
                        self.count_error(NatsErrorKind::GaveUp);
                        return Err(error(
                            &self.target,
                            format!(
                                "{} of {} records not acknowledged: {last_error}",
                                pending.len(),
                                outs.len()
                            ),
                        ));
                    }
                    let wait = backoff.wait();
                    tracing::warn!(records = pending.len(), error = %last_error, retry_in_ms = wait.as_millis() as u64, "publish not acknowledged; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Ok(fates)
    }
}

impl Sink for JetStreamSink {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn append(&mut self, lines: &[u8]) -> Result<Committed, SinkError> {
        if lines.is_empty() {
            return Ok(self.position());
        }
        let mut outs = self.messages(lines)?;
        let handle = self.handle.clone();
        let started = Instant::now();
        let fates = handle.block_on(self.publish_all(&mut outs))?;
        self.reporter.succeeded();
        if let Some(m) = self.reporter.metrics() {
            m.publish_seconds.observe(started.elapsed().as_secs_f64());
        }
        let mut done = Vec::with_capacity(outs.len());
        let (mut dups, mut overtaken) = (0, 0);
        for (o, f) in outs.iter().zip(&fates) {
            match *f {
                Fate::Stored(seq, dup) => {
                    self.last_seq = self.last_seq.max(seq);
                    if dup {
                        dups += 1;
                        tracing::info!(msg_id = %o.msg_id, seq, "already in the stream (re-publish dropped by the stream)");
                    }
                    done.push((o.msg_id.clone(), seq));
                }
                Fate::Overtaken => {
                    overtaken += 1;
                    tracing::info!(msg_id = %o.msg_id, "overtaken: a newer version of this article reached the stream first; not published");
                    if let Some(l) = &self.ledger {
                        l.abandon(&o.msg_id);
                    }
                }
                Fate::Pending => {}
            }
        }
        if let Some(m) = self.reporter.metrics() {
            m.duplicates.inc_by(dups);
        }
        tracing::debug!(
            records = outs.len(),
            duplicates = dups,
            overtaken,
            last_seq = self.last_seq,
            "batch acknowledged"
        );
        if self.kill_after_publish {
            eprintln!("wirewatch: WIREWATCH_FAULT=kill_after_publish: aborting after the publish ack, before the commit");
            std::process::abort();
        }
        if let Some(l) = &self.ledger {
            handle.block_on(l.mark_published(&done));
        }
        Ok(self.position())
    }

    fn recover(
        &mut self,
        _committed: Committed,
        _each: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), SinkError> {
        // Nothing to adopt: a batch that was not committed is read again from its
        // files and re-published; the stream's duplicate window (and, with the
        // ledger, the subject fence) keeps one copy.
        Ok(())
    }
}

/// The metrics' kind of a publish error.
fn error_kind(kind: PublishErrorKind) -> NatsErrorKind {
    match kind {
        PublishErrorKind::TimedOut => NatsErrorKind::Timeout,
        PublishErrorKind::BrokenPipe => NatsErrorKind::BrokenPipe,
        PublishErrorKind::StreamNotFound => NatsErrorKind::StreamNotFound,
        PublishErrorKind::WrongLastSequence => NatsErrorKind::WrongLastSequence,
        PublishErrorKind::MaxAckPending => NatsErrorKind::MaxAckPending,
        PublishErrorKind::WrongLastMessageId | PublishErrorKind::Other => NatsErrorKind::Other,
    }
}

/// After the stream stored version `msg_id` (stamp `stamp`) of an article at `seq` on
/// `subject`, published behind fence `fence` (`Nats-Expected-Last-Subject-Sequence`):
/// checks that no version at least as new was stored on the subject between the
/// fence and `seq`, and if one was, deletes `seq` from the stream. Returns whether
/// the message was kept.
///
/// The stream checks the fence when it accepts a message, but a message accepted by
/// a stream leader that died before replying can, it seems, still be committed by
/// the next leader after a fenced message that leader accepted before applying it
/// (the likely cause of an older version stored after a newer one, seen once in the
/// test that kills the stream leader). This check does not depend on the cause: it
/// looks at what the stream holds. When that put an older version behind a
/// newer one, the older one is removed here, one round trip after its
/// acknowledgement: readers from then on never see it; a reader following the
/// stream live may have seen it in between (docs/scaling-out.md).
pub async fn keep_in_order(
    stream: &stream::Stream,
    subject: &str,
    msg_id: &str,
    stamp: Option<&Stamp>,
    fence: u64,
    seq: u64,
) -> Result<bool, String> {
    use async_nats::jetstream::stream::{DeleteMessageErrorKind, LastRawMessageErrorKind};
    let mut from = fence + 1;
    while from < seq {
        let m = match stream
            .raw_message_builder()
            .sequence(from)
            .next_by_subject(subject.to_owned())
            .send()
            .await
        {
            Ok(m) if m.sequence < seq => m,
            Ok(_) => break,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => break,
            Err(e) => return Err(e.to_string()),
        };
        let theirs = m
            .headers
            .get(NATS_MESSAGE_ID)
            .and_then(|v| stamp_of_msg_id(v.as_str()));
        match theirs {
            Some(t) if t.as_ref() >= stamp => {
                tracing::warn!(msg_id, seq, newer_seq = m.sequence, "the stream stored this version after one at least as new (a leader change let it past its fence): deleting it from the stream");
                return match stream.delete_message(seq).await {
                    Ok(_) => Ok(false),
                    Err(e) => match e.kind() {
                        // Already deleted (a re-publish after an earlier repair).
                        DeleteMessageErrorKind::JetStream(j)
                            if j.error_code()
                                == async_nats::jetstream::ErrorCode::NO_MESSAGE_FOUND
                                || j.error_code()
                                    == async_nats::jetstream::ErrorCode::SEQUENCE_NOT_FOUND =>
                        {
                            Ok(false)
                        }
                        _ => Err(e.to_string()),
                    },
                };
            }
            _ => from = m.sequence + 1,
        }
    }
    Ok(true)
}
