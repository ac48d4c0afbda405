//! Opening the store: creating the file and its tables, the layout version check
//! (a state of an earlier layout is migrated, see [`super::migrate`]), the note of a clean close
//! (`wirewatch.redb.closed`) that decides whether the integrity check runs, and the
//! close itself.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};

use redb::{Database, ReadableTable};
use serde::{Deserialize, Serialize};

use super::error::quietly;
use super::migrate::{self, Migrated};
use super::{Damage, StateError, STATE_VERSION};

use super::pack::{SNAPSHOT_CHUNKS, SNAPSHOT_INDEX, SNAPSHOT_LIVE};
use super::store::{
    Slot, Store, ARTICLES, CLOSED_NOTE, CONTENTS, CONTENT_EXPIRY, DB_FILE, EXPIRY, FILES, META,
};

impl Drop for Store {
    /// Closes the database, once a dictionary being trained is stored; after a clean
    /// close, notes the file's identity so that the next open can tell whether
    /// anything touched it since.
    fn drop(&mut self) {
        // A dictionary being trained is stored before the database closes.
        self.finish_training();
        let slot = std::mem::replace(
            self.slot.get_mut().unwrap_or_else(PoisonError::into_inner),
            Slot::Closed,
        );
        if let Slot::Open(db) = slot {
            let closed = quietly(|| drop(db)).is_ok();
            if closed && !self.reopen.load(Ordering::Acquire) {
                write_closed_note(&self.dir, &self.path);
            }
        }
    }
}

/// The identity of the database file after a clean close.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ClosedNote {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    dev: u64,
    ino: u64,
}

impl ClosedNote {
    fn of(path: &Path) -> Option<ClosedNote> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(ClosedNote {
            len: m.len(),
            mtime_ns: super::mtime_ns(&m),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

pub(super) fn write_closed_note(dir: &Path, path: &Path) {
    if let Some(note) = ClosedNote::of(path) {
        if let Ok(bytes) = serde_json::to_vec(&note) {
            // Only a hint: when it is lost, the next open verifies the file.
            let _ = std::fs::write(dir.join(CLOSED_NOTE), bytes);
        }
    }
}

/// True when the database file is as the last clean close left it. The note is
/// removed: the file changes from now on.
pub(super) fn closed_note_matches(dir: &Path, path: &Path) -> bool {
    let note_path = dir.join(CLOSED_NOTE);
    let note = std::fs::read(&note_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<ClosedNote>(&b).ok());
    let _ = std::fs::remove_file(&note_path);
    note.is_some() && note == ClosedNote::of(path)
}

pub(super) fn builder(cache_bytes: usize, repaired: &Arc<AtomicBool>) -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_cache_size(cache_bytes);
    let repaired = repaired.clone();
    // Called when redb recovers from an unclean shutdown; that recovery verifies
    // every page's checksum.
    builder.set_repair_callback(move |_| repaired.store(true, Ordering::Relaxed));
    builder
}

/// Opens the database file, with redb's panics and corruption reports as
/// [`StateError::Damaged`].
pub(super) fn open_db(
    dir: &Path,
    path: &Path,
    cache_bytes: usize,
    repaired: &Arc<AtomicBool>,
) -> Result<Database, StateError> {
    let damaged = |source| StateError::Damaged {
        path: path.to_owned(),
        dir: dir.to_owned(),
        source,
    };
    match quietly(|| builder(cache_bytes, repaired).open(path)) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => Err(StateError::Locked {
            path: path.to_owned(),
        }),
        Ok(Err(e)) => {
            let damage = match &e {
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => true,
                redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
                    io.kind() == std::io::ErrorKind::UnexpectedEof
                }
                _ => false,
            };
            if damage {
                Err(damaged(Damage::Redb(Box::new(e.into()))))
            } else {
                Err(StateError::Open {
                    path: path.to_owned(),
                    source: e,
                })
            }
        }
        Err(panic) => Err(damaged(Damage::Panic(panic))),
    }
}

/// Creates a brand-new database aside and renames it into place, so a crash while it
/// is being created never leaves a half-written file behind (write-tmp → fsync →
/// rename).
pub(super) fn create(dir: &Path, path: &Path, cache_bytes: usize) -> Result<(), StateError> {
    let tmp = dir.join(format!("{DB_FILE}.new"));
    let _ = std::fs::remove_file(&tmp);
    let db = builder(cache_bytes, &Arc::new(AtomicBool::new(false)))
        .create(&tmp)
        .map_err(|source| StateError::Open {
            path: tmp.clone(),
            source,
        })?;
    init(&db, &tmp)?;
    drop(db);
    let io = |source| StateError::Dir {
        path: dir.to_owned(),
        source,
    };
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

/// Checks the layout version (writing it into a new database), rewrites the values
/// of a layout-1 state ([`super::migrate`]) and creates the tables, in one write
/// transaction. Returns what was migrated, if anything: the caller then packs the
/// snapshots ([`migrate::pack_snapshots`]), which sets the current version.
pub(super) fn init(db: &Database, path: &Path) -> Result<Option<Migrated>, StateError> {
    let tx = db.begin_write()?;
    let mut migrated = None;
    {
        let found = tx
            .open_table(META)?
            .get("version")?
            .map(|v| u32::from_le_bytes(v.value().try_into().unwrap_or([0; 4])));
        let new = match found {
            Some(STATE_VERSION) => None,
            // Layout 3 only added a snapshot tag and the dictionary: the snapshots
            // of a layout-2 state are packed as they are, by the caller.
            Some(v @ (2 | 3)) => Some(v),
            Some(1) => {
                migrated = Some(migrate::from_v1(&tx)?);
                Some(3)
            }
            Some(v) => {
                return Err(StateError::Version {
                    path: path.to_owned(),
                    found: v,
                })
            }
            None => Some(STATE_VERSION),
        };
        if let Some(v) = new {
            tx.open_table(META)?
                .insert("version", v.to_le_bytes().as_slice())?;
        }
        if let Some(v @ (2 | 3)) = found {
            migrated = Some(Migrated {
                from: v,
                ..Migrated::default()
            });
        }
        tx.open_table(ARTICLES)?;
        tx.open_table(EXPIRY)?;
        tx.open_table(SNAPSHOT_INDEX)?;
        tx.open_table(SNAPSHOT_CHUNKS)?;
        tx.open_table(SNAPSHOT_LIVE)?;
        tx.open_table(FILES)?;
        tx.open_table(CONTENTS)?;
        tx.open_table(CONTENT_EXPIRY)?;
    }
    tx.commit()?;
    Ok(migrated)
}
