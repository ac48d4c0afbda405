//! Cluster-wide dedupe: the newest claimed version of every article in a replicated
//! JetStream key-value bucket, changed only by compare-and-set.
//!
//! Key: `article_id`. Value: a JSON [`LedgerEntry`] — the [`ArticleState`] of the
//! newest claimed version (stamp, revision, content hash, …), the stamp it
//! superseded, whether it is known to be in the stream (`published`), the stream
//! sequence of the newest version known to be there (`seq`), and its
//! [`Snapshot`], so that whichever host emits the next version computes its
//! `changes` even when another host emitted this one.
//!
//! A claim ([`Claims::claim`]) reads the entry and judges the version against it
//! exactly like the local store ([`crate::dedupe::judge`]):
//!
//! * newer (or first): write the new entry with `create` (no entry) or
//!   `update(key, value, revision)` (compare-and-set on the revision read); a
//!   conflict means another daemon claimed in between: read again and judge again.
//!   Exactly one daemon wins each stamp, and a later claim never goes backwards.
//! * same stamp, same content, **not** `published`: a claim whose publish may not
//!   have happened (its daemon crashed, or is publishing right now): emit it again.
//!   The stream keeps one message (same `Nats-Msg-Id`, same fence; see
//!   [`super::sink`]).
//! * same stamp otherwise: duplicate; older: stale.
//!
//! After the sink's acknowledgements, [`Claims::mark_published`] sets `published`
//! and `seq` (again by compare-and-set; losing that race is harmless).
//!
//! Every call waits for the cluster: errors are retried with backoff for ever, so
//! while the cluster is away the committer blocks and the pipeline stops taking
//! files (backpressure), and it resumes by itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::dedupe::{judge, ArticleState, Ledger, StateError, Verdict};
use crate::diff::Snapshot;
use crate::record::{Record, Stamp};

use super::health::Reporter;
use super::{classify, msg_id, Setup};
use crate::config::nats::DedupeConfig;

/// The value stored under an `article_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The newest claimed version, as the local store keeps it.
    #[serde(flatten)]
    pub state: ArticleState,
    /// The stamp that version superseded (its record's `supersedes`).
    #[serde(default)]
    pub prev_stamp: Option<Stamp>,
    /// True once a daemon saw the stream acknowledge this version.
    #[serde(default)]
    pub published: bool,
    /// Stream sequence of the newest version known to be in the stream (0: none).
    #[serde(default)]
    pub seq: u64,
    /// Who claimed it (host and process), for people reading the bucket.
    #[serde(default)]
    pub by: String,
    /// What the `changes` diff of the next version needs of this one, so that a
    /// host that did not emit it still reports what changed (a few KB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
}

/// A claim this process made and has not yet seen published.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Revision of the bucket entry that holds the claim.
    pub kv_revision: u64,
    /// The entry as written.
    pub entry: LedgerEntry,
    /// Stream sequence the publish expects as the subject's last message
    /// (`Nats-Expected-Last-Subject-Sequence`): a version older than this one.
    pub fence: u64,
}

/// The bucket plus the claims in flight, shared by the ledger (which claims) and the
/// sink (which publishes and marks).
pub struct Claims {
    kv: kv::Store,
    claims: Mutex<HashMap<String, Claim>>,
    by: String,
    reporter: Reporter,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims").field("by", &self.by).finish()
    }
}

/// What a judgement asks the bucket to do.
enum Decision {
    /// Claim: write this entry.
    Write(Box<LedgerEntry>),
    /// Emit again the claimed, unpublished version (no write).
    Republish,
    /// Drop (duplicate or stale).
    Drop,
}

fn decide(prev: Option<&LedgerEntry>, record: &Record, now: i64, by: &str) -> (Verdict, Decision) {
    let stamp = record.version_stamp();
    let verdict = judge(prev.map(|p| &p.state), stamp);
    match (&verdict, prev) {
        (Verdict::Emit { revision, .. }, p) => {
            let entry = LedgerEntry {
                state: ArticleState::of(record, *revision, now),
                prev_stamp: p.and_then(|p| p.state.stamp.clone()),
                published: false,
                seq: p.map_or(0, |p| p.seq),
                by: by.to_owned(),
                snapshot: Some(Snapshot::of(record)),
            };
            (verdict, Decision::Write(Box::new(entry)))
        }
        (Verdict::Duplicate, Some(p))
            if !p.published && p.state.content_hash == record.content_hash =>
        {
            (
                Verdict::Emit {
                    revision: p.state.revision,
                    supersedes: p.prev_stamp.clone(),
                },
                Decision::Republish,
            )
        }
        _ => (verdict, Decision::Drop),
    }
}

fn is_conflict_update(e: &kv::UpdateError) -> bool {
    e.kind() == kv::UpdateErrorKind::WrongLastRevision
}

fn is_conflict_create(e: &kv::CreateError) -> bool {
    e.kind() == kv::CreateErrorKind::AlreadyExists
}

impl Claims {
    /// Wraps a bucket.
    pub fn new(kv: kv::Store) -> Claims {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        Claims {
            kv,
            claims: Mutex::new(HashMap::new()),
            by: format!("{host}:{}", std::process::id()),
            reporter: Reporter::default(),
        }
    }

    /// Tells `reporter` of failed bucket reads and writes and of the claims made.
    pub fn with_reporter(mut self, reporter: Reporter) -> Claims {
        self.reporter = reporter;
        self
    }

    /// The bucket.
    pub fn store(&self) -> &kv::Store {
        &self.kv
    }

    /// Reads an entry: (entry if a live one, revision of the key's last operation or 0).
    async fn read(&self, id: &str) -> Result<(Option<LedgerEntry>, u64), kv::EntryError> {
        match self.kv.entry(id).await? {
            Some(e) if e.operation == kv::Operation::Put => {
                match serde_json::from_slice::<LedgerEntry>(&e.value) {
                    Ok(v) => Ok((Some(v), e.revision)),
                    Err(err) => {
                        tracing::warn!(id, error = %err, "unreadable dedupe entry; it is replaced");
                        Ok((None, e.revision))
                    }
                }
            }
            Some(e) => Ok((None, e.revision)),
            None => Ok((None, 0)),
        }
    }

    /// Judges `record` against the bucket and claims it on `Emit` (see the module
    /// docs). Returns the verdict and, on a new claim, the entry it superseded.
    /// Retries cluster errors for ever.
    pub async fn claim(&self, record: &Record, now: i64) -> (Verdict, Option<LedgerEntry>) {
        let id = record.article_id.as_str();
        let mut backoff =
            crate::retry::Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let reporter = &self.reporter;
        let mut wait = |e: &dyn std::fmt::Display, what: &str| {
            reporter.failed(&format!("dedupe bucket {what} of {id}"), e);
            let d = backoff.wait();
            tracing::warn!(id, error = %e, retry_in_ms = d.as_millis() as u64, "dedupe bucket {what} failed; not taking new files until it succeeds");
            d
        };
        loop {
            let (prev, rev) = match self.read(id).await {
                Ok(x) => x,
                Err(e) => {
                    let d = wait(&e, "read");
                    tokio::time::sleep(d).await;
                    continue;
                }
            };
            let (verdict, decision) = decide(prev.as_ref(), record, now, &self.by);
            tracing::debug!(id, stamp = ?record.version_stamp(), kv_revision = rev, prev = ?prev, ?verdict, "judged against the bucket");
            let key = msg_id(id, record.version_stamp());
            match decision {
                Decision::Drop => {
                    reporter.succeeded();
                    return (verdict, None);
                }
                Decision::Republish => {
                    let p = prev.expect("republish has an entry");
                    tracing::info!(id, "claimed earlier but not known to be published: publishing again (the stream keeps one copy)");
                    self.claims.lock().expect("claims").insert(
                        key,
                        Claim {
                            kv_revision: rev,
                            entry: p.clone(),
                            fence: p.seq,
                        },
                    );
                    // The entry is this very version: the one before it is not kept.
                    reporter.succeeded();
                    return (verdict, None);
                }
                Decision::Write(entry) => {
                    let bytes = match serde_json::to_vec(&entry) {
                        Ok(b) => bytes::Bytes::from(b),
                        Err(e) => {
                            // Cannot happen for these types; do not spin on it.
                            tracing::error!(id, error = %e, "cannot encode a dedupe entry");
                            return (Verdict::Duplicate, None);
                        }
                    };
                    let written = if rev == 0 {
                        self.kv.create(id, bytes).await.map_err(|e| {
                            let c = is_conflict_create(&e);
                            (c, e.to_string())
                        })
                    } else {
                        self.kv.update(id, bytes, rev).await.map_err(|e| {
                            let c = is_conflict_update(&e);
                            (c, e.to_string())
                        })
                    };
                    match written {
                        Ok(kv_revision) => {
                            let fence = prev.as_ref().map_or(0, |p| p.seq);
                            self.claims.lock().expect("claims").insert(
                                key,
                                Claim {
                                    kv_revision,
                                    entry: *entry,
                                    fence,
                                },
                            );
                            reporter.succeeded();
                            return (verdict, prev);
                        }
                        Err((true, _)) => {
                            tracing::debug!(
                                id,
                                "another daemon claimed this article first; judging again"
                            );
                        }
                        Err((false, e)) => {
                            // The write may or may not have happened: read again.
                            let d = wait(&e, "write");
                            tokio::time::sleep(d).await;
                        }
                    }
                }
            }
        }
    }

    /// The claim this process holds for a `Nats-Msg-Id`, if any.
    pub fn claim_for(&self, msg_id: &str) -> Option<Claim> {
        self.claims.lock().expect("claims").get(msg_id).cloned()
    }

    /// Forgets a claim whose version will not be published (a newer one reached the
    /// stream first).
    pub fn abandon(&self, msg_id: &str) {
        self.claims.lock().expect("claims").remove(msg_id);
    }

    /// Marks versions as in the stream at the given sequences. Best effort: a failure
    /// only means a later duplicate publishes again (and the stream drops it).
    pub async fn mark_published(&self, done: &[(String, u64)]) {
        let claims: Vec<(String, u64, Claim)> = {
            let mut map = self.claims.lock().expect("claims");
            done.iter()
                .filter_map(|(id, seq)| map.remove(id).map(|c| (id.clone(), *seq, c)))
                .collect()
        };
        let marks = claims.into_iter().map(|(mid, seq, c)| async move {
            let key = mid.split(':').next().unwrap_or_default().to_owned();
            let mut rev = c.kv_revision;
            for _ in 0..3 {
                let mut entry = c.entry.clone();
                entry.published = true;
                entry.seq = entry.seq.max(seq);
                let Ok(bytes) = serde_json::to_vec(&entry) else {
                    return;
                };
                match self.kv.update(&key, bytes.into(), rev).await {
                    Ok(_) => return,
                    Err(e) if is_conflict_update(&e) => match self.read(&key).await {
                        // Still this version, unmarked (another daemon re-published it
                        // and rewrote nothing, or marked it): mark on the new revision.
                        Ok((Some(now), r))
                            if now.state.stamp == c.entry.state.stamp
                                && now.state.content_hash == c.entry.state.content_hash
                                && !now.published =>
                        {
                            rev = r;
                        }
                        _ => return,
                    },
                    Err(e) => {
                        tracing::debug!(id = %key, error = %e, "could not mark a version published");
                        return;
                    }
                }
            }
        });
        futures::future::join_all(marks).await;
    }
}

/// Gets the dedupe bucket, creating it when missing (`history` 1, entries expire
/// `expire_days` after their last write, like the local state).
pub async fn ensure_bucket(
    js: &jetstream::Context,
    cfg: &DedupeConfig,
    expire_days: u32,
) -> Result<kv::Store, Setup> {
    let target = format!("bucket {}", cfg.kv_bucket);
    match js.get_key_value(&cfg.kv_bucket).await {
        Ok(kv) => Ok(kv),
        Err(e)
            if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket
                && super::stream_not_found(&e) =>
        {
            tracing::info!(bucket = %cfg.kv_bucket, replicas = cfg.kv_replicas, "creating the dedupe bucket");
            js.create_key_value(kv::Config {
                bucket: cfg.kv_bucket.clone(),
                description: "wirewatch cluster-wide dedupe: newest claimed version per article_id"
                    .into(),
                history: 1,
                max_age: Duration::from_secs(u64::from(expire_days) * 86_400),
                num_replicas: cfg.kv_replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| classify(&target, e))
        }
        Err(e) => Err(classify(&target, e)),
    }
}

/// The [`Ledger`] the committer calls: blocks its (blocking-pool) thread on the
/// runtime captured at construction.
#[derive(Debug)]
pub struct KvLedger {
    shared: Arc<Claims>,
    handle: Handle,
}

impl KvLedger {
    /// Must be called inside the tokio runtime.
    pub fn new(shared: Arc<Claims>) -> KvLedger {
        KvLedger {
            shared,
            handle: Handle::current(),
        }
    }
}

impl Ledger for KvLedger {
    fn claim(
        &mut self,
        record: &Record,
        now: i64,
    ) -> Result<(Verdict, Option<Snapshot>), StateError> {
        let (verdict, prev) = self.handle.block_on(self.shared.claim(record, now));
        Ok((verdict, prev.and_then(|p| p.snapshot)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keeps_article_state_fields_flat() {
        let e = LedgerEntry {
            state: ArticleState {
                stamp: Stamp::parse("2022-10-02T22:53:00-04:00"),
                revision: 2,
                content_hash: "ab".into(),
                touched: 5,
            },
            prev_stamp: Stamp::parse("2022-10-02"),
            published: true,
            seq: 42,
            by: "h:1".into(),
            snapshot: None,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["stamp"], "2022-10-02T22:53:00-04:00");
        assert_eq!(v["revision"], 2);
        assert_eq!(v["seq"], 42);
        let back: LedgerEntry = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
