//! Reject lines on the cluster: with the NATS sink, every line of the rejects file
//! is also published to `nats.rejects_subject` (default `<subject_prefix>-rejects`),
//! held by its own stream `nats.rejects_stream` (default `<stream>_REJECTS`).
//!
//! [`RejectsSink`] wraps the local rejects file: a batch's lines are published and
//! acknowledged first, then appended to the file. A publish that fails is sent again
//! with backoff; past the attempt's time the append fails and the committer retries
//! the whole batch (the daemon takes no new files meanwhile), so a reject line is
//! never written locally without being on the cluster, and never dropped. A line
//! published before a crash and published again after it carries the same
//! `Nats-Msg-Id` (`reject:<sha-256 of the line>`), which the stream's duplicate
//! window drops.

use std::time::{Duration, Instant};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::health::Reporter;
use super::{classify, error, Setup};
use crate::config::nats::NatsConfig;
use crate::sink::{Committed, Sink, SinkError};

/// The configuration of the rejects stream wirewatch creates.
pub fn stream_config(cfg: &NatsConfig) -> stream::Config {
    stream::Config {
        name: cfg.rejects_stream(),
        description: Some("wirewatch reject lines, one message per rejected file".into()),
        subjects: vec![cfg.rejects_subject()],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        max_age: Duration::from_secs(u64::from(cfg.max_age_days) * 86_400),
        duplicate_window: Duration::from_secs(cfg.duplicate_window_s),
        allow_direct: true,
        ..Default::default()
    }
}

/// True when the subject filter `pattern` (with `*` and `>`) matches `subject`.
fn covers(pattern: &str, subject: &str) -> bool {
    let mut want = subject.split('.');
    for p in pattern.split('.') {
        match (p, want.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    want.next().is_none()
}

/// Gets the rejects stream, creating it when missing; an existing stream that does
/// not hold the rejects subject has it added.
pub async fn ensure_stream(js: &jetstream::Context, cfg: &NatsConfig) -> Result<(), Setup> {
    let name = cfg.rejects_stream();
    let subject = cfg.rejects_subject();
    let target = format!("stream {name}");
    match js.get_stream(&name).await {
        Ok(mut s) => {
            let info = s
                .info()
                .await
                .map_err(|e| Setup::Retry(error(&target, e)))?;
            if info.config.subjects.iter().any(|p| covers(p, &subject)) {
                return Ok(());
            }
            let mut config = info.config.clone();
            config.subjects.push(subject.clone());
            tracing::info!(stream = %name, subject = %subject, "adding the rejects subject to the existing stream");
            js.update_stream(config)
                .await
                .map(|_| ())
                .map_err(|e| classify(&target, e))
        }
        Err(e) if super::stream_not_found(&e) => {
            let want = stream_config(cfg);
            tracing::info!(stream = %name, subject = %subject, replicas = want.num_replicas, "creating the rejects stream");
            js.get_or_create_stream(want)
                .await
                .map(|_| ())
                .map_err(|e| classify(&target, e))
        }
        Err(e) => Err(classify(&target, e)),
    }
}

/// The `Nats-Msg-Id` of a reject line.
pub fn msg_id(line: &[u8]) -> String {
    let digest = Sha256::digest(line);
    format!("reject:{}", hex::encode(&digest[..16]))
}

/// The rejects file, with every batch published to the cluster before it is
/// appended. See the module docs.
pub struct RejectsSink {
    js: jetstream::Context,
    subject: String,
    target: String,
    file: Box<dyn Sink>,
    handle: Handle,
    give_up: Duration,
    reporter: Reporter,
}

impl std::fmt::Debug for RejectsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RejectsSink")
            .field("target", &self.target)
            .finish()
    }
}

impl RejectsSink {
    /// Publishes to `cfg`'s rejects subject through `js`, then appends to `file`.
    /// Must be called inside the tokio runtime (its handle drives the publishes).
    pub fn new(
        js: jetstream::Context,
        cfg: &NatsConfig,
        file: Box<dyn Sink>,
        reporter: Reporter,
    ) -> RejectsSink {
        RejectsSink {
            js,
            subject: cfg.rejects_subject(),
            target: format!(
                "nats subject {} in stream {} ({})",
                cfg.rejects_subject(),
                cfg.rejects_stream(),
                cfg.urls.join(",")
            ),
            file,
            handle: Handle::current(),
            give_up: Duration::from_millis(cfg.request_timeout_ms * 3).max(Duration::from_secs(10)),
            reporter,
        }
    }

    /// Publishes every line of `lines`, retrying what is not acknowledged.
    async fn publish(&self, lines: &[u8]) -> Result<(), SinkError> {
        let start = Instant::now();
        let mut backoff =
            crate::retry::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut pending: Vec<&[u8]> = lines
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        while !pending.is_empty() {
            let mut acks = Vec::with_capacity(pending.len());
            let mut failed = Vec::new();
            let mut last_error = String::new();
            for &line in &pending {
                let mut h = HeaderMap::new();
                h.insert(NATS_MESSAGE_ID, msg_id(line).as_str());
                match self
                    .js
                    .publish_with_headers(self.subject.clone(), h, Bytes::copy_from_slice(line))
                    .await
                {
                    Ok(ack) => acks.push((line, ack)),
                    Err(e) => {
                        last_error = e.to_string();
                        failed.push(line);
                    }
                }
            }
            let results = futures::future::join_all(
                acks.into_iter()
                    .map(|(line, ack)| async move { (line, ack.await) }),
            )
            .await;
            for (line, r) in results {
                match r {
                    Ok(ack) => {
                        tracing::debug!(subject = %self.subject, seq = ack.sequence, duplicate = ack.duplicate, "reject line stored")
                    }
                    Err(e) => {
                        last_error = e.to_string();
                        failed.push(line);
                    }
                }
            }
            pending = failed;
            if pending.is_empty() {
                break;
            }
            self.reporter.failed(
                &format!(
                    "publishing {} reject lines to {}",
                    pending.len(),
                    self.target
                ),
                &last_error,
            );
            if start.elapsed() > self.give_up {
                return Err(error(
                    &self.target,
                    format!(
                        "{} reject lines not acknowledged: {last_error}",
                        pending.len()
                    ),
                ));
            }
            let wait = backoff.wait();
            tracing::warn!(lines = pending.len(), error = %last_error, retry_in_ms = wait.as_millis() as u64, "reject publish not acknowledged; retrying");
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

impl Sink for RejectsSink {
    fn describe(&self) -> String {
        format!("{} and {}", self.file.describe(), self.target)
    }

    fn append(&mut self, lines: &[u8]) -> Result<Committed, SinkError> {
        if !lines.is_empty() {
            let handle = self.handle.clone();
            handle.block_on(self.publish(lines))?;
            self.reporter.succeeded();
        }
        self.file.append(lines)
    }

    fn recover(
        &mut self,
        committed: Committed,
        each: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), SinkError> {
        // Lines past the committed position reached the file after their publish was
        // acknowledged: nothing to send again.
        self.file.recover(committed, each)
    }

    fn rotate_if_due(&mut self) -> Result<Option<Committed>, SinkError> {
        self.file.rotate_if_due()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_filters() {
        assert!(covers("articles-rejects", "articles-rejects"));
        assert!(covers(">", "articles-rejects"));
        assert!(covers("a.*", "a.b"));
        assert!(covers("a.>", "a.b.c"));
        assert!(!covers("a.>", "a"));
        assert!(!covers("a.*", "a.b.c"));
        assert!(!covers("articles.>", "articles-rejects"));
    }

    #[test]
    fn msg_ids_follow_the_line() {
        let a = msg_id(b"{\"path\":\"a\"}");
        assert_eq!(a, msg_id(b"{\"path\":\"a\"}"));
        assert_ne!(a, msg_id(b"{\"path\":\"b\"}"));
        assert!(a.starts_with("reject:") && a.len() == 7 + 32);
    }
}
