//! The dedupe stage and the persistent state it keeps.
//!
//! Owns the decision for every parsed article version — emit it (with its
//! `revision` and `supersedes`), or drop it as a `duplicate` (same stamp as the newest
//! emitted version) or `stale` (older) — and the embedded ACID store (redb) that makes
//! those decisions survive restarts:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `articles` | `article_id` | [`ArticleState`]: newest emitted stamp, revision, what a later diff needs |
//! | `expiry` | (last-touched second, `article_id`) | — : lets expiry find old articles without a scan |
//! | `snapshot_index` | `article_id` | where its [`Snapshot`] (what the `changes` diff of the next revision needs) is packed |
//! | `snapshot_chunks` | chunk number | snapshots, packed (`pack.rs`) |
//! | `snapshot_live` | chunk number | bytes of the chunk still in use |
//! | `files` | raw path bytes | [`FileEntry`]: size, mtime, SHA-256 of a processed file |
//! | `contents` | SHA-256 of a judged file | second last seen: the same bytes again are a `duplicate` |
//! | `content_expiry` | (that second, SHA-256) | — : expires `contents` with the articles |
//! | `meta` | name | layout version; committed output / rejects positions and file identities; the snapshot dictionary |
//!
//! Values are stored in a compact binary encoding, snapshots compressed ([`codec`]),
//! with a zstd dictionary trained on the state's own first snapshots (`dict.rs`), and
//! packed into chunks that fill redb's pages (`pack.rs`); a state of an earlier
//! layout is migrated at open (`migrate.rs`).
//!
//! State is written only by the committer (see [`crate::pipeline`]), one
//! transaction per batch, *after* the batch's lines are durable in the output; the
//! workers only read (`files`, to skip unchanged files). The store itself, and what it
//! does about a damaged file or a full disk, is in [`store`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::diff::Snapshot;
use crate::record::{Record, Stamp};

pub mod codec;
mod dict;
mod error;
mod migrate;
mod open;
mod pack;
mod stats;
pub mod store;

pub use error::{Damage, StateError};
pub use stats::TableStats;
pub use store::{Store, STATE_VERSION};

/// What the state remembers of an article: its newest emitted version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleState {
    /// Stamp of the newest emitted version (`updated_at`, else `posted_at`).
    pub stamp: Option<Stamp>,
    /// Its revision number.
    pub revision: u32,
    /// Its content hash.
    pub content_hash: String,
    /// Second (Unix) it was last emitted or adopted; drives expiry.
    pub touched: i64,
}

/// A processed file, so that it is not processed again until it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Size in bytes when processed.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// SHA-256 of the content, when it was read.
    pub sha256: Option<String>,
}

/// A file's modification time in nanoseconds since the epoch, as [`FileEntry`] keeps it.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// The dedupe verdict on one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Newer than every emitted version (or the first): emit it.
    Emit {
        /// 1 for the first version, then 2, 3, …
        revision: u32,
        /// Stamp of the version it replaces.
        supersedes: Option<Stamp>,
    },
    /// Same stamp as the newest emitted version.
    Duplicate,
    /// Older than the newest emitted version.
    Stale,
}

/// Judges a version against the newest emitted one. A version with no stamp at all
/// orders before any stamped version.
pub fn judge(prev: Option<&ArticleState>, stamp: Option<&Stamp>) -> Verdict {
    let Some(prev) = prev else {
        return Verdict::Emit {
            revision: 1,
            supersedes: None,
        };
    };
    match stamp.cmp(&prev.stamp.as_ref()) {
        std::cmp::Ordering::Greater => Verdict::Emit {
            revision: prev.revision + 1,
            supersedes: prev.stamp.clone(),
        },
        std::cmp::Ordering::Equal => Verdict::Duplicate,
        std::cmp::Ordering::Less => Verdict::Stale,
    }
}

impl ArticleState {
    /// The state an emitted record leaves.
    pub fn of(record: &Record, revision: u32, touched: i64) -> ArticleState {
        ArticleState {
            stamp: record.version_stamp().cloned(),
            revision,
            content_hash: record.content_hash.clone(),
            touched,
        }
    }
}

pub use crate::sink::Committed;

/// Everything one batch changes, written in one transaction.
#[derive(Debug, Default)]
pub struct Pending {
    /// Articles emitted or adopted.
    pub articles: HashMap<String, ArticleState>,
    /// Snapshots of the versions in `articles`.
    pub snapshots: HashMap<String, Snapshot>,
    /// Files processed (any outcome).
    pub files: Vec<(Vec<u8>, FileEntry)>,
    /// Files whose entry must go (e.g. deleted before they could be read).
    pub forget_files: Vec<Vec<u8>>,
    /// Contents judged (raw SHA-256, second): the same bytes again are a duplicate,
    /// whatever their path or modification time.
    pub contents: Vec<([u8; 32], i64)>,
    /// New committed position of the records output.
    pub output: Option<Committed>,
    /// New committed position of the rejects output.
    pub rejects: Option<Committed>,
}

impl Pending {
    /// True when nothing would be written.
    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
            && self.files.is_empty()
            && self.forget_files.is_empty()
            && self.contents.is_empty()
            && self.output.is_none()
            && self.rejects.is_none()
    }
}

/// Dedupe decisions kept beyond this process (e.g. the NATS key-value ledger,
/// [`crate::nats::ledger::KvLedger`]): judges a version against the newest one
/// emitted anywhere and, on `Emit`, claims it there. Returns the verdict and the
/// state it was judged against.
pub trait Ledger: Send + std::fmt::Debug {
    /// Judges and claims one version. On `Emit`, also returns the [`Snapshot`] of
    /// the version it supersedes when the ledger keeps one (another host may have
    /// emitted that version), for the `changes` diff; `None` falls back to the
    /// local state.
    fn claim(
        &mut self,
        record: &Record,
        now: i64,
    ) -> Result<(Verdict, Option<Snapshot>), StateError>;
}

/// The committer's view: the store plus the batch being assembled, so that two
/// versions of one article in one batch are judged against each other.
#[derive(Debug)]
pub struct Dedupe {
    store: std::sync::Arc<Store>,
    pending: Pending,
    ledger: Option<Box<dyn Ledger>>,
}

impl Dedupe {
    /// Wraps a store.
    pub fn new(store: std::sync::Arc<Store>) -> Dedupe {
        Dedupe {
            store,
            pending: Pending::default(),
            ledger: None,
        }
    }

    /// Judges against `ledger` instead of the local store from now on.
    pub fn set_ledger(&mut self, ledger: Box<dyn Ledger>) {
        self.ledger = Some(ledger);
    }

    /// The store.
    pub fn store(&self) -> &std::sync::Arc<Store> {
        &self.store
    }

    /// The newest emitted version of an article, pending batch included.
    pub fn current(&self, id: &str) -> Result<Option<ArticleState>, StateError> {
        match self.pending.articles.get(id) {
            Some(st) => Ok(Some(st.clone())),
            None => self.store.article(id),
        }
    }

    /// Judges a record; on `Emit`, stamps it with `revision`, `supersedes` and
    /// `changes` (against the previous version's snapshot), and records it as the
    /// newest version in the pending batch.
    pub fn judge(&mut self, record: &mut Record, now: i64) -> Result<Verdict, StateError> {
        let (verdict, ledger_prev) = match self.ledger.as_mut() {
            Some(ledger) => ledger.claim(record, now)?,
            None => {
                let prev = self.current(&record.article_id)?;
                (judge(prev.as_ref(), record.version_stamp()), None)
            }
        };
        if let Verdict::Emit {
            revision,
            supersedes,
        } = &verdict
        {
            record.revision = Some(*revision);
            record.supersedes = Some(supersedes.clone());
            let snap = Snapshot::of(record);
            let changes = if *revision > 1 {
                let prev = match ledger_prev {
                    Some(p) => Some(p),
                    None => self.snapshot(&record.article_id)?,
                };
                prev.map(|prev| crate::diff::changes_with(&prev, &snap, record))
            } else {
                None
            };
            record.changes = Some(changes);
            self.remember_with(record, snap, *revision, now);
        }
        Ok(verdict)
    }

    fn snapshot(&self, id: &str) -> Result<Option<Snapshot>, StateError> {
        match self.pending.snapshots.get(id) {
            Some(s) => Ok(Some(s.clone())),
            None => self.store.snapshot(id),
        }
    }

    fn remember(&mut self, record: &Record, revision: u32, now: i64) {
        self.remember_with(record, Snapshot::of(record), revision, now);
    }

    fn remember_with(&mut self, record: &Record, snap: Snapshot, revision: u32, now: i64) {
        let id = record.article_id.clone();
        self.pending.snapshots.insert(id.clone(), snap);
        self.pending
            .articles
            .insert(id, ArticleState::of(record, revision, now));
    }

    /// Adopts an emitted record found in the output past the committed point (after a
    /// crash): the state catches up with what readers may already have seen.
    pub fn adopt(&mut self, record: &Record, now: i64) -> Result<(), StateError> {
        let prev = self.current(&record.article_id)?;
        let newer = prev
            .as_ref()
            .is_none_or(|p| record.version_stamp() > p.stamp.as_ref());
        if newer {
            self.remember(record, record.revision.unwrap_or(1), now);
        }
        Ok(())
    }

    /// True when a file with these bytes (`sha256` in hex, as in `source.sha256`)
    /// was judged before, in this batch or a committed one. The same bytes
    /// delivered again under another name or time are then a duplicate, even where
    /// a time-only stamp would resolve against another capture day.
    pub fn content_seen(&self, sha256: &str) -> Result<bool, StateError> {
        let Some(raw) = raw_sha(sha256) else {
            return Ok(false);
        };
        if self.pending.contents.iter().any(|(s, _)| *s == raw) {
            return Ok(true);
        }
        self.store.content_seen(&raw)
    }

    /// Remembers that a file with these bytes was judged (see [`Dedupe::content_seen`]).
    pub fn remember_content(&mut self, sha256: &str, now: i64) {
        if let Some(raw) = raw_sha(sha256) {
            self.pending.contents.push((raw, now));
        }
    }

    /// True when the pending batch already holds this file entry.
    pub fn pending_files_contains(&self, key: &[u8], entry: &FileEntry) -> bool {
        self.pending
            .files
            .iter()
            .any(|(k, e)| k == key && e == entry)
    }

    /// The batch being assembled.
    pub fn pending_mut(&mut self) -> &mut Pending {
        &mut self.pending
    }

    /// Commits the pending batch; on error the batch is kept for a retry.
    pub fn commit(&mut self) -> Result<(), StateError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.store.commit(&self.pending)?;
        self.pending = Pending::default();
        Ok(())
    }
}

/// A SHA-256 in hex as its 32 bytes (None when it is not one).
fn raw_sha(hex_sha: &str) -> Option<[u8; 32]> {
    let mut raw = [0u8; 32];
    hex::decode_to_slice(hex_sha, &mut raw).ok()?;
    Some(raw)
}

/// An article state with stamp `s` and revision `rev`, for the tests of this module
/// and of the store.
#[cfg(test)]
pub(crate) fn st(s: &str, rev: u32) -> ArticleState {
    ArticleState {
        stamp: Stamp::parse(s),
        revision: rev,
        content_hash: String::new(),
        touched: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let a = Stamp::parse("2022-10-02T22:23:00-04:00");
        let b = Stamp::parse("2022-10-02T22:53:00-04:00");
        assert_eq!(
            judge(None, a.as_ref()),
            Verdict::Emit {
                revision: 1,
                supersedes: None
            }
        );
        let prev = st("2022-10-02T22:23:00-04:00", 1);
        assert_eq!(
            judge(Some(&prev), b.as_ref()),
            Verdict::Emit {
                revision: 2,
                supersedes: a.clone()
            }
        );
        assert_eq!(judge(Some(&prev), a.as_ref()), Verdict::Duplicate);
        let newer = st("2022-10-02T22:53:00-04:00", 2);
        assert_eq!(judge(Some(&newer), a.as_ref()), Verdict::Stale);
        assert_eq!(judge(Some(&newer), None), Verdict::Stale);
    }
}
