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
//! | `snapshots` | `article_id` | [`Snapshot`]: what the `changes` diff of the next revision needs |
//! | `files` | raw path bytes | [`FileEntry`]: size, mtime, SHA-256 of a processed file |
//! | `meta` | name | committed output / rejects positions and file identities |
//!
//! State is written only by the committer (see [`crate::pipeline`]), one
//! transaction per batch, *after* the batch's lines are durable in the output; the
//! workers only read (`files`, to skip unchanged files).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::diff::Snapshot;
use crate::record::{Record, Stamp};

const ARTICLES: TableDefinition<&str, &[u8]> = TableDefinition::new("articles");
const EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("expiry");
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Version of the on-disk state layout. A state written by another version is
/// refused with a message rather than misread.
pub const STATE_VERSION: u32 = 1;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state folder could not be created.
    #[error("cannot create state folder {path}: {source}")]
    Dir {
        /// Folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Another process holds the database.
    #[error("state {path} is in use by another wirewatch process; stop it or give this one another --state folder")]
    Locked {
        /// Database file.
        path: PathBuf,
    },
    /// The state was written by an incompatible version.
    #[error("state {path} has layout version {found}, this wirewatch reads {STATE_VERSION}; move the folder away to start afresh")]
    Version {
        /// Database file.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
    /// Any database error.
    #[error("state database error: {0}")]
    Db(String),
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StateError {
            fn from(e: $t) -> Self {
                StateError::Db(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);

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

/// Positions in the output files up to which everything is reflected in the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Committed {
    /// Byte offset in the file.
    pub offset: u64,
    /// (device, inode) of the file, to notice a replaced file.
    pub identity: Option<(u64, u64)>,
}

/// Everything one batch changes, written in one transaction.
#[derive(Debug, Default)]
pub struct Changes {
    /// Articles emitted or adopted.
    pub articles: HashMap<String, ArticleState>,
    /// Snapshots of the versions in `articles`.
    pub snapshots: HashMap<String, Snapshot>,
    /// Files processed (any outcome).
    pub files: Vec<(Vec<u8>, FileEntry)>,
    /// Files whose entry must go (e.g. deleted before they could be read).
    pub forget_files: Vec<Vec<u8>>,
    /// New committed position of the records output.
    pub output: Option<Committed>,
    /// New committed position of the rejects output.
    pub rejects: Option<Committed>,
}

impl Changes {
    /// True when nothing would be written.
    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
            && self.files.is_empty()
            && self.forget_files.is_empty()
            && self.output.is_none()
            && self.rejects.is_none()
    }
}

/// The persistent store (one redb file in the state folder).
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) `dir/wirewatch.redb`. `cache_bytes` bounds redb's page cache.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Store, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("wirewatch.redb");
        let db_err = |path: &Path, e: redb::DatabaseError| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StateError::Locked {
                path: path.to_owned(),
            },
            other => StateError::Db(format!("{}: {other}", path.display())),
        };
        let mut builder = redb::Builder::new();
        builder.set_cache_size(cache_bytes);
        if !path.exists() {
            // A brand-new database is built aside and renamed into place, so a crash
            // while it is being created never leaves a half-written file behind
            // (write-tmp → fsync → rename).
            let tmp = dir.join("wirewatch.redb.new");
            let _ = std::fs::remove_file(&tmp);
            let fresh = Store {
                db: builder.create(&tmp).map_err(|e| db_err(&tmp, e))?,
                path: tmp.clone(),
            };
            fresh.init()?;
            drop(fresh);
            let io = |source| StateError::Dir {
                path: dir.to_owned(),
                source,
            };
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        let db = builder.open(&path).map_err(|e| db_err(&path, e))?;
        let store = Store { db, path };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<(), StateError> {
        let tx = self.db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta
                .get("version")?
                .map(|v| u32::from_le_bytes(v.value().try_into().unwrap_or([0; 4])));
            match found {
                Some(v) if v != STATE_VERSION => {
                    return Err(StateError::Version {
                        path: self.path.clone(),
                        found: v,
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert("version", STATE_VERSION.to_le_bytes().as_slice())?;
                }
            }
            tx.open_table(ARTICLES)?;
            tx.open_table(EXPIRY)?;
            tx.open_table(SNAPSHOTS)?;
            tx.open_table(FILES)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The newest emitted version of an article, if any.
    pub fn article(&self, id: &str) -> Result<Option<ArticleState>, StateError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(ARTICLES)?;
        let v = t.get(id)?;
        match v {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// The snapshot of an article's newest emitted version.
    pub fn snapshot(&self, id: &str) -> Result<Option<Snapshot>, StateError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(SNAPSHOTS)?;
        let v = t.get(id)?;
        match v {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// What is remembered of a processed file.
    pub fn file(&self, path: &[u8]) -> Result<Option<FileEntry>, StateError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(FILES)?;
        let v = t.get(path)?;
        match v {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// The committed position of an output (`"output"` or `"rejects"`).
    pub fn committed(&self, which: &str) -> Result<Committed, StateError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        let v = t.get(which)?;
        match v {
            Some(v) => Ok(serde_json::from_slice(v.value())?),
            None => Ok(Committed::default()),
        }
    }

    /// Writes one batch's changes in one durable transaction.
    pub fn commit(&self, changes: &Changes) -> Result<(), StateError> {
        let tx = self.db.begin_write()?;
        {
            let mut articles = tx.open_table(ARTICLES)?;
            let mut expiry = tx.open_table(EXPIRY)?;
            for (id, st) in &changes.articles {
                let old = articles
                    .insert(id.as_str(), serde_json::to_vec(st)?.as_slice())?
                    .map(|v| serde_json::from_slice::<ArticleState>(v.value()));
                if let Some(Ok(old)) = old {
                    expiry.remove((old.touched, id.as_str()))?;
                }
                expiry.insert((st.touched, id.as_str()), ())?;
            }
            let mut snapshots = tx.open_table(SNAPSHOTS)?;
            for (id, snap) in &changes.snapshots {
                snapshots.insert(id.as_str(), serde_json::to_vec(snap)?.as_slice())?;
            }
            let mut files = tx.open_table(FILES)?;
            for (path, entry) in &changes.files {
                files.insert(path.as_slice(), serde_json::to_vec(entry)?.as_slice())?;
            }
            for path in &changes.forget_files {
                files.remove(path.as_slice())?;
            }
            let mut meta = tx.open_table(META)?;
            if let Some(c) = &changes.output {
                meta.insert("output", serde_json::to_vec(c)?.as_slice())?;
            }
            if let Some(c) = &changes.rejects {
                meta.insert("rejects", serde_json::to_vec(c)?.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets articles last touched before `cutoff` (Unix seconds). Returns how many.
    pub fn expire(&self, cutoff: i64) -> Result<usize, StateError> {
        let tx = self.db.begin_write()?;
        let mut n = 0;
        {
            let mut expiry = tx.open_table(EXPIRY)?;
            let mut articles = tx.open_table(ARTICLES)?;
            let mut snapshots = tx.open_table(SNAPSHOTS)?;
            let old: Vec<(i64, String)> = expiry
                .range((i64::MIN, "")..(cutoff, ""))?
                .filter_map(Result::ok)
                .map(|(k, _)| {
                    let (t, id) = k.value();
                    (t, id.to_owned())
                })
                .collect();
            for (t, id) in old {
                expiry.remove((t, id.as_str()))?;
                articles.remove(id.as_str())?;
                snapshots.remove(id.as_str())?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Forgets processed-file entries for which `keep` says no (files gone from the
    /// watched folder). Returns how many.
    pub fn retain_files(&self, keep: impl Fn(&[u8]) -> bool) -> Result<usize, StateError> {
        let tx = self.db.begin_write()?;
        let mut n = 0;
        {
            let mut files = tx.open_table(FILES)?;
            let gone: Vec<Vec<u8>> = files
                .iter()?
                .filter_map(Result::ok)
                .map(|(k, _)| k.value().to_vec())
                .filter(|k| !keep(k))
                .collect();
            for k in gone {
                files.remove(k.as_slice())?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Number of (articles, files) remembered.
    pub fn counts(&self) -> Result<(u64, u64), StateError> {
        let tx = self.db.begin_read()?;
        Ok((
            tx.open_table(ARTICLES)?.len()?,
            tx.open_table(FILES)?.len()?,
        ))
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
    pending: Changes,
    ledger: Option<Box<dyn Ledger>>,
}

impl Dedupe {
    /// Wraps a store.
    pub fn new(store: std::sync::Arc<Store>) -> Dedupe {
        Dedupe {
            store,
            pending: Changes::default(),
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

    /// True when the pending batch already holds this file entry.
    pub fn pending_files_contains(&self, key: &[u8], entry: &FileEntry) -> bool {
        self.pending
            .files
            .iter()
            .any(|(k, e)| k == key && e == entry)
    }

    /// The batch being assembled.
    pub fn pending_mut(&mut self) -> &mut Changes {
        &mut self.pending
    }

    /// Commits the pending batch; on error the batch is kept for a retry.
    pub fn commit(&mut self) -> Result<(), StateError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.store.commit(&self.pending)?;
        self.pending = Changes::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str, rev: u32) -> ArticleState {
        ArticleState {
            stamp: Stamp::parse(s),
            revision: rev,
            content_hash: String::new(),
            touched: 0,
        }
    }

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

    #[test]
    fn store_round_trip_expiry_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(
            Store::open(dir.path(), 1 << 20),
            Err(StateError::Locked { .. })
        ));
        let mut ch = Changes::default();
        let mut a = st("2022-10-02T22:23:00-04:00", 1);
        a.touched = 100;
        ch.articles.insert("a".into(), a.clone());
        let mut b = st("2022-10-02", 1);
        b.touched = 200;
        ch.articles.insert("b".into(), b);
        ch.files.push((
            b"/x".to_vec(),
            FileEntry {
                size: 1,
                mtime_ns: 2,
                sha256: None,
            },
        ));
        ch.output = Some(Committed {
            offset: 42,
            identity: Some((1, 2)),
        });
        store.commit(&ch).unwrap();
        assert_eq!(store.article("a").unwrap(), Some(a));
        assert_eq!(store.file(b"/x").unwrap().unwrap().size, 1);
        assert_eq!(store.committed("output").unwrap().offset, 42);
        assert_eq!(store.committed("rejects").unwrap(), Committed::default());
        assert_eq!(store.expire(150).unwrap(), 1);
        assert!(store.article("a").unwrap().is_none());
        assert!(store.article("b").unwrap().is_some());
        assert_eq!(store.retain_files(|_| false).unwrap(), 1);
        assert_eq!(store.counts().unwrap(), (1, 0));
        drop(store);
        // Reopens after the first handle is gone.
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(store.article("b").unwrap().is_some());
    }
}
