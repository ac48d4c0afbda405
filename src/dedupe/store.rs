//! The persistent store: one redb file, `wirewatch.redb`, in the state folder (its
//! tables are listed in [`crate::dedupe`]).
//!
//! Two kinds of trouble are dealt with here, so that no caller has to:
//!
//! - **A damaged file** (truncated, overwritten, bytes flipped). redb reports some
//!   damage as `Corrupted` and trips an internal assertion (a panic) on other damage.
//!   Every call into redb runs under `catch_unwind`, with the panic kept out of the log;
//!   a corruption report, a panic, or a stored value that no longer decodes becomes
//!   [`StateError::Damaged`], whose message names the file and says what to do: move
//!   the state folder aside and start again (the next start adopts the output into a
//!   new state, so nothing is emitted twice). After a panic the database is left
//!   alone: every later call reports the same damage. Damage is also looked for at
//!   open: redb verifies every page's checksum when it recovers from an unclean
//!   shutdown, and when the file may have changed since this program last closed it
//!   (its size, times or inode differ from those noted at the clean close, in
//!   `wirewatch.redb.closed`) the same check (`check_integrity`) runs at open. It reads
//!   the whole file, so it is skipped when the file is as it was left. A change made
//!   within the same clock tick as the close can go unnoticed there; it is still caught
//!   by the first call that trips over it.
//! - **An I/O error** (a full disk). redb refuses every later operation of a database
//!   that met one ("Previous I/O error occurred. Please close and re-open the
//!   database"). The next write (the committer retrying its batch) closes the database
//!   and opens it again, which rolls back what the failed transaction left and repairs
//!   the file; until that succeeds, reads fail with [`StateError::Closed`] and
//!   writes with the reason the reopening failed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::codec::{self, Encoded};
use super::error::{is_damage, quietly};
use super::pack::{self, Packer, SNAPSHOT_CHUNKS, SNAPSHOT_INDEX};
use super::{ArticleState, Committed, Damage, FileEntry, Pending, StateError};
use crate::diff::Snapshot;

use super::open::{closed_note_matches, create, init, open_db};

pub(super) const ARTICLES: TableDefinition<&str, &[u8]> = TableDefinition::new("articles");
pub(super) const EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("expiry");
/// The snapshots of layouts 1 to 3, one row per article; only the migration at open
/// reads it, into the chunks of `pack.rs`.
pub(super) const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
pub(super) const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(super) const CONTENTS: TableDefinition<&[u8], i64> = TableDefinition::new("contents");
pub(super) const CONTENT_EXPIRY: TableDefinition<(i64, &[u8]), ()> =
    TableDefinition::new("content_expiry");

/// Name of the database file in the state folder.
pub(super) const DB_FILE: &str = "wirewatch.redb";
/// Name of the note written next to it at a clean close.
pub(super) const CLOSED_NOTE: &str = "wirewatch.redb.closed";

/// Version of the on-disk state layout: 4 is the compact binary encoding of
/// [`codec`], snapshots compressed with the state's dictionary (`dict.rs`) and packed
/// into chunks (`pack.rs`). A state of layout 3 or 2 (one snapshot per row, with or
/// without a dictionary) has its snapshots packed at open, and one of layout 1 (JSON
/// values) is migrated in place first (`migrate.rs`); one of any other version is
/// refused with a message rather than misread.
pub const STATE_VERSION: u32 = 4;

pub(super) enum Slot {
    Open(Database),
    /// Closed after an I/O error; opened again by the next write.
    Closed,
    /// A call panicked inside redb (the message): the database is not used again.
    Damaged(String),
}

/// The persistent store (one redb file in the state folder). Safe to share between
/// threads; see the module documentation for damage and I/O errors.
pub struct Store {
    pub(super) slot: RwLock<Slot>,
    /// An operation met an I/O error: the next write closes and reopens the database.
    pub(super) reopen: AtomicBool,
    pub(super) path: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) cache_bytes: usize,
    /// The snapshot dictionary and its training (`dict.rs`).
    pub(super) dict: super::dict::Dict,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) `dir/wirewatch.redb`. `cache_bytes` bounds redb's page cache.
    /// A damaged file is [`StateError::Damaged`].
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Store, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let path = dir.join(DB_FILE);
        if !path.exists() {
            create(&dir, &path, cache_bytes)?;
        }
        let unchanged = closed_note_matches(&dir, &path);
        let repaired = Arc::new(AtomicBool::new(false));
        let mut db = open_db(&dir, &path, cache_bytes, &repaired)?;
        if !unchanged && !repaired.load(Ordering::Relaxed) {
            // Changed since the last clean close (or never closed by this version):
            // verify every page now rather than trip over a bad one later.
            let damaged = |source| StateError::Damaged {
                path: path.clone(),
                dir: dir.clone(),
                source,
            };
            match quietly(|| db.check_integrity()) {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => tracing::warn!(
                    path = %path.display(),
                    "the state database was damaged and redb repaired it (back to its last intact commit); output lines past that point are adopted"
                ),
                Ok(Err(e)) => {
                    let e = Box::new(redb::Error::from(e));
                    if is_damage(&e) {
                        return Err(damaged(Damage::Redb(e)));
                    }
                    return Err(StateError::Db(e));
                }
                Err(panic) => {
                    // redb's own structures may be inconsistent now: do not run its
                    // clean-up on them.
                    std::mem::forget(db);
                    return Err(damaged(Damage::Panic(panic)));
                }
            }
        }
        let mut store = Store {
            slot: RwLock::new(Slot::Open(db)),
            reopen: AtomicBool::new(false),
            path,
            dir,
            cache_bytes,
            dict: super::dict::Dict::new(),
        };
        let mut migrated = store.with_db(true, |db| init(db, &store.path))?;
        if let Some(m) = &mut migrated {
            m.snapshots = store.with_db(true, super::migrate::pack_snapshots)?;
        }
        store.load_dict()?;
        if let Some(m) = migrated {
            tracing::info!(
                path = %store.path.display(),
                from = m.from,
                articles = m.articles,
                snapshots = m.snapshots,
                files = m.files,
                "state migrated from layout version {} to {STATE_VERSION}",
                m.from
            );
            let slot = store.slot.get_mut().unwrap_or_else(PoisonError::into_inner);
            if let Slot::Open(db) = slot {
                if let Err(panic) = super::migrate::compact(db, &store.path) {
                    if let Slot::Open(db) = std::mem::replace(slot, Slot::Damaged(panic.clone())) {
                        std::mem::forget(db);
                    }
                    return Err(store.damaged(Damage::Panic(panic)));
                }
            }
        }
        Ok(store)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` on the database: reopens it first for a write after an I/O error,
    /// turns redb's panics and corruption reports into [`StateError::Damaged`], and
    /// notes I/O errors for the next write to reopen.
    pub(super) fn with_db<T>(
        &self,
        write: bool,
        op: impl FnOnce(&Database) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        if write && self.reopen.load(Ordering::Acquire) {
            self.reopen()?;
        }
        let outcome = {
            let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
            match &*slot {
                Slot::Open(db) => quietly(|| op(db)),
                Slot::Closed => {
                    return Err(StateError::Closed {
                        path: self.path.clone(),
                    })
                }
                Slot::Damaged(panic) => return Err(self.damaged(Damage::Panic(panic.clone()))),
            }
        };
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(e)),
            Err(panic) => {
                let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
                if let Slot::Open(db) = std::mem::replace(&mut *slot, Slot::Damaged(panic.clone()))
                {
                    std::mem::forget(db);
                }
                Err(self.damaged(Damage::Panic(panic)))
            }
        }
    }

    fn damaged(&self, source: Damage) -> StateError {
        StateError::Damaged {
            path: self.path.clone(),
            dir: self.dir.clone(),
            source,
        }
    }

    fn classify(&self, e: StateError) -> StateError {
        match e {
            StateError::Decode(e) => self.damaged(Damage::Value(e)),
            StateError::Db(e) if is_damage(&e) => self.damaged(Damage::Redb(e)),
            e => {
                if e.is_io() {
                    self.reopen.store(true, Ordering::Release);
                }
                e
            }
        }
    }

    /// Closes the database and opens it again (after an I/O error): redb repairs it
    /// and forgets the error.
    fn reopen(&self) -> Result<(), StateError> {
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        if !self.reopen.load(Ordering::Acquire) {
            return Ok(()); // another thread did it
        }
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Open(db) => {
                // The file lock is released when the database is dropped.
                let _ = quietly(|| drop(db));
            }
            Slot::Damaged(panic) => {
                *slot = Slot::Damaged(panic.clone());
                return Err(self.damaged(Damage::Panic(panic)));
            }
            Slot::Closed => {}
        }
        match open_db(
            &self.dir,
            &self.path,
            self.cache_bytes,
            &Arc::new(AtomicBool::new(false)),
        ) {
            Ok(db) => {
                *slot = Slot::Open(db);
                self.reopen.store(false, Ordering::Release);
                tracing::info!(path = %self.path.display(), "state database opened again after an I/O error");
                Ok(())
            }
            Err(e @ StateError::Damaged { .. }) => {
                if let StateError::Damaged {
                    source: Damage::Panic(p),
                    ..
                } = &e
                {
                    *slot = Slot::Damaged(p.clone());
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The newest emitted version of an article, if any.
    pub fn article(&self, id: &str) -> Result<Option<ArticleState>, StateError> {
        self.with_db(false, |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(ARTICLES)?;
            let v = t.get(id)?;
            v.map(|v| codec::decode_article(v.value()).map_err(StateError::Decode))
                .transpose()
        })
    }

    /// The snapshot of an article's newest emitted version.
    pub fn snapshot(&self, id: &str) -> Result<Option<Snapshot>, StateError> {
        self.with_db(false, |db| {
            let tx = db.begin_read()?;
            let Some(loc) = tx.open_table(SNAPSHOT_INDEX)?.get(id)?.map(|g| g.value()) else {
                return Ok(None);
            };
            let chunk = tx
                .open_table(SNAPSHOT_CHUNKS)?
                .get(loc.0)?
                .ok_or(StateError::Decode(codec::CodecError::Chunk(
                    "an index entry whose chunk is missing",
                )))?;
            let value = pack::entry(chunk.value(), loc, id)?;
            codec::decode_snapshot(value, self.dict())
                .map(Some)
                .map_err(StateError::Decode)
        })
    }

    /// What is remembered of a processed file.
    pub fn file(&self, path: &[u8]) -> Result<Option<FileEntry>, StateError> {
        self.with_db(false, |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(FILES)?;
            let v = t.get(path)?;
            v.map(|v| codec::decode_file(v.value()).map_err(StateError::Decode))
                .transpose()
        })
    }

    /// What is remembered of each of `paths`, in one read (the watcher's scan asks
    /// for a batch of the walk at a time).
    pub fn files(&self, paths: &[&[u8]]) -> Result<Vec<Option<FileEntry>>, StateError> {
        self.with_db(false, |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(FILES)?;
            let mut out = Vec::with_capacity(paths.len());
            for p in paths {
                out.push(match t.get(*p)? {
                    Some(v) => Some(codec::decode_file(v.value()).map_err(StateError::Decode)?),
                    None => None,
                });
            }
            Ok(out)
        })
    }

    /// True when a file with this content (raw SHA-256) was judged before.
    pub fn content_seen(&self, sha256: &[u8; 32]) -> Result<bool, StateError> {
        self.with_db(false, |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(CONTENTS)?;
            Ok(t.get(sha256.as_slice())?.is_some())
        })
    }

    /// The committed position of an output (`"output"` or `"rejects"`).
    pub fn committed(&self, which: &str) -> Result<Committed, StateError> {
        self.with_db(false, |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(META)?;
            let v = t.get(which)?;
            match v {
                Some(v) => codec::decode_committed(v.value()).map_err(StateError::Decode),
                None => Ok(Committed::default()),
            }
        })
    }

    /// Writes one batch's changes in one durable transaction. Every value is encoded
    /// before the transaction begins; each table is opened once. After an I/O error
    /// the database is closed and opened again first, so a retry of the same batch
    /// can succeed once the cause is gone.
    pub fn commit(&self, changes: &Pending) -> Result<(), StateError> {
        let dict = self.dict_for_commit(changes.snapshots.len() as u64);
        let enc = Encoded::of(changes, dict).map_err(StateError::Encode)?;
        self.with_db(true, |db| {
            let tx = db.begin_write()?;
            {
                let mut articles = tx.open_table(ARTICLES)?;
                let mut expiry = tx.open_table(EXPIRY)?;
                for (id, bytes, touched) in &enc.articles {
                    let old = articles
                        .insert(*id, bytes.as_slice())?
                        .map(|v| codec::decode_article(v.value()))
                        .transpose()
                        .map_err(StateError::Decode)?;
                    if let Some(old) = old {
                        expiry.remove((old.touched, *id))?;
                    }
                    expiry.insert((*touched, *id), ())?;
                }
                let mut snapshots = Packer::new(&tx)?;
                for (id, bytes) in &enc.snapshots {
                    snapshots.put(id, bytes)?;
                }
                snapshots.finish()?;
                let mut files = tx.open_table(FILES)?;
                for (path, bytes) in &enc.files {
                    files.insert(*path, bytes.as_slice())?;
                }
                for path in &changes.forget_files {
                    files.remove(path.as_slice())?;
                }
                let mut contents = tx.open_table(CONTENTS)?;
                let mut content_expiry = tx.open_table(CONTENT_EXPIRY)?;
                for (sha, touched) in &enc.contents {
                    let old = contents
                        .insert(sha.as_slice(), *touched)?
                        .map(|v| v.value());
                    if let Some(old) = old {
                        content_expiry.remove((old, sha.as_slice()))?;
                    }
                    content_expiry.insert((*touched, sha.as_slice()), ())?;
                }
                let mut meta = tx.open_table(META)?;
                if let Some(bytes) = &enc.output {
                    meta.insert("output", bytes.as_slice())?;
                }
                if let Some(bytes) = &enc.rejects {
                    meta.insert("rejects", bytes.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })?;
        self.train_dict_when_due(changes.snapshots.len() as u64);
        Ok(())
    }

    /// Forgets articles last touched before `cutoff` (Unix seconds). Returns how many.
    pub fn expire(&self, cutoff: i64) -> Result<usize, StateError> {
        self.with_db(true, |db| {
            let tx = db.begin_write()?;
            let mut n = 0;
            {
                let mut expiry = tx.open_table(EXPIRY)?;
                let mut articles = tx.open_table(ARTICLES)?;
                let mut snapshots = Packer::new(&tx)?;
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
                snapshots.finish()?;
                let mut content_expiry = tx.open_table(CONTENT_EXPIRY)?;
                let mut contents = tx.open_table(CONTENTS)?;
                let old: Vec<(i64, Vec<u8>)> = content_expiry
                    .range((i64::MIN, &[][..])..(cutoff, &[][..]))?
                    .filter_map(Result::ok)
                    .map(|(k, _)| {
                        let (t, sha) = k.value();
                        (t, sha.to_vec())
                    })
                    .collect();
                for (t, sha) in old {
                    content_expiry.remove((t, sha.as_slice()))?;
                    contents.remove(sha.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    /// Forgets processed-file entries for which `keep` says no (files gone from the
    /// watched folder). Returns how many.
    pub fn retain_files(&self, keep: impl Fn(&[u8]) -> bool) -> Result<usize, StateError> {
        self.with_db(true, |db| {
            let tx = db.begin_write()?;
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
        })
    }

    /// Number of (articles, files) remembered.
    pub fn counts(&self) -> Result<(u64, u64), StateError> {
        self.with_db(false, |db| {
            let tx = db.begin_read()?;
            Ok((
                tx.open_table(ARTICLES)?.len()?,
                tx.open_table(FILES)?.len()?,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::st;
    use super::*;

    #[test]
    fn store_round_trip_expiry_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(
            Store::open(dir.path(), 1 << 20),
            Err(StateError::Locked { .. })
        ));
        let mut ch = Pending::default();
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

    #[test]
    fn a_clean_close_is_noted_and_any_change_after_it_voids_the_note() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), 1 << 20).unwrap());
        let db = dir.path().join(DB_FILE);
        assert!(dir.path().join(CLOSED_NOTE).exists());
        assert!(closed_note_matches(dir.path(), &db));
        // Consumed by the open that read it.
        assert!(!dir.path().join(CLOSED_NOTE).exists());
        drop(Store::open(dir.path(), 1 << 20).unwrap());
        let len = std::fs::metadata(&db).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .unwrap()
            .set_len(len + 4096)
            .unwrap();
        assert!(!closed_note_matches(dir.path(), &db));
    }

    #[test]
    fn a_panic_inside_is_damage_and_stays_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let e = store
            .with_db(false, |_| -> Result<(), StateError> { panic!("bad page") })
            .unwrap_err();
        assert!(
            matches!(&e, StateError::Damaged { source: Damage::Panic(m), .. } if m.contains("bad page")),
            "{e}"
        );
        assert!(e.to_string().contains("move the state folder aside"), "{e}");
        assert!(matches!(
            store.article("a"),
            Err(StateError::Damaged { .. })
        ));
    }

    #[test]
    fn contents_are_remembered_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let mut ch = Pending::default();
        ch.contents.push((old, 100));
        ch.contents.push((new, 300));
        store.commit(&ch).unwrap();
        assert!(store.content_seen(&old).unwrap());
        assert!(store.content_seen(&new).unwrap());
        assert!(!store.content_seen(&[3u8; 32]).unwrap());
        // Seen again later: its time moves, so it outlives the first cutoff.
        let mut ch = Pending::default();
        ch.contents.push((old, 400));
        store.commit(&ch).unwrap();
        store.expire(350).unwrap();
        assert!(store.content_seen(&old).unwrap());
        assert!(!store.content_seen(&new).unwrap());
        store.expire(500).unwrap();
        assert!(!store.content_seen(&old).unwrap());
    }
}
