//! The state's snapshot dictionary ([`SnapshotDict`]): loaded at open from `meta`
//! (`snapshot_dict`), and trained once, the first time the state holds
//! [`TRAIN_AT`] snapshots, on those snapshots. Snapshots written before it stay as
//! they were (plain zstd); every later one is compressed with it. It is never
//! replaced, so every snapshot the state holds decodes with the one dictionary it has.
//!
//! Training takes about a third of a second of CPU, so it runs on a thread of its own
//! ([`Dict`]): the commit that reaches the threshold takes the samples and starts it,
//! small commits (live files) go on with plain zstd meanwhile, a large one (a
//! backlog's batch) waits for it, and the first commit after it has finished stores
//! the dictionary in `meta` (its own transaction, durable) before any snapshot is
//! compressed with it. Closing the store waits for a training under way and stores
//! its dictionary.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use redb::{ReadableTable, ReadableTableMetadata};

use super::codec::{CodecError, SnapshotDict};
use super::pack::{entries, SNAPSHOT_CHUNKS, SNAPSHOT_INDEX};
use super::store::{Store, META};
use super::StateError;

/// How many snapshots the state holds when its dictionary is trained, on that many:
/// about 4.5 MB of samples, forty times the dictionary's size. Twice as many samples
/// take twice the training time for a dictionary under one percent better
/// (`examples/dict_gain`), and every snapshot written before the training goes
/// without it.
pub const TRAIN_AT: u64 = 1_000;

/// A commit that writes at least this many snapshots (a backlog's batch) waits for a
/// training under way, so that a backlog writes no more snapshots without the
/// dictionary than it must; smaller ones (a trickle of live files) go on without it.
const WAIT_FOR_TRAINING_AT: u64 = 32;

/// The `meta` name of the dictionary.
pub(super) const DICT_KEY: &str = "snapshot_dict";

/// How many snapshots trigger the training: [`TRAIN_AT`]. A test build (feature
/// `fault-injection`) takes `WIREWATCH_DICT_TRAIN_AT` from the environment instead,
/// so that the crash test trains a dictionary between its kills.
fn train_at() -> u64 {
    #[cfg(feature = "fault-injection")]
    if let Some(n) = std::env::var("WIREWATCH_DICT_TRAIN_AT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    TRAIN_AT
}

/// A store's dictionary, and its training while it has none.
#[derive(Debug)]
pub(super) struct Dict {
    /// The dictionary, once stored in the state.
    ready: OnceLock<SnapshotDict>,
    /// Training failed: not tried again until the next start.
    failed: AtomicBool,
    /// At least as many as the snapshot rows, while there is no dictionary.
    bound: AtomicU64,
    /// How many snapshots the state holds when the dictionary is trained.
    pub(super) train_at: u64,
    /// The training under way, if any.
    training: Mutex<Option<Training>>,
}

/// A training thread and what it was given.
#[derive(Debug)]
struct Training {
    thread: JoinHandle<Result<SnapshotDict, CodecError>>,
    samples: usize,
    started: Instant,
}

impl Dict {
    /// The training under way, if any (locked).
    fn training(&self) -> MutexGuard<'_, Option<Training>> {
        self.training.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// No dictionary yet, none training.
    pub(super) fn new() -> Dict {
        Dict {
            ready: OnceLock::new(),
            failed: AtomicBool::new(false),
            bound: AtomicU64::new(0),
            train_at: train_at(),
            training: Mutex::new(None),
        }
    }
}

impl Store {
    /// Loads the dictionary stored in `meta`, if the state has one; else counts the
    /// snapshots, the bound [`Store::train_dict_when_due`] starts from.
    pub(super) fn load_dict(&self) -> Result<(), StateError> {
        let (dict, snapshots) = self.with_db(false, |db| {
            let tx = db.begin_read()?;
            let stored = tx.open_table(META)?.get(DICT_KEY)?;
            match stored {
                Some(v) => Ok((Some(SnapshotDict::from_bytes(v.value().to_vec())), 0)),
                None => Ok((None, tx.open_table(SNAPSHOT_INDEX)?.len()?)),
            }
        })?;
        self.dict.bound.store(snapshots, Ordering::Relaxed);
        if let Some(d) = dict {
            let _ = self.dict.ready.set(d);
        }
        Ok(())
    }

    /// The state's dictionary, if it has one.
    pub(super) fn dict(&self) -> Option<&SnapshotDict> {
        self.dict.ready.get()
    }

    /// The dictionary a commit that writes `writing` snapshot rows compresses them
    /// with: first stores the dictionary of a finished training, or, for a commit of
    /// at least [`WAIT_FOR_TRAINING_AT`] rows, of a training under way (waiting for it).
    pub(super) fn dict_for_commit(&self, writing: u64) -> Option<&SnapshotDict> {
        if self.dict.ready.get().is_none() {
            let mut training = self.dict.training();
            if let Some(t) = training.take() {
                if t.thread.is_finished() || writing >= WAIT_FOR_TRAINING_AT {
                    self.adopt_trained(t);
                } else {
                    *training = Some(t);
                }
            }
        }
        self.dict()
    }

    /// After a commit that wrote `written` snapshot rows: starts training the
    /// dictionary when the state has none, no training is under way, and it holds
    /// enough snapshots. The rows are counted only once the bound (the count at
    /// open plus every row written since, overwrites included) reaches the
    /// threshold, so a commit costs no read until then. A failure is logged and not
    /// tried again until the next start; the state works the same without a
    /// dictionary, only larger.
    pub(super) fn train_dict_when_due(&self, written: u64) {
        if self.dict.ready.get().is_some() || self.dict.failed.load(Ordering::Relaxed) {
            return;
        }
        let mut training = self.dict.training();
        if training.is_some() {
            return;
        }
        let bound = self.dict.bound.fetch_add(written, Ordering::Relaxed) + written;
        if bound < self.dict.train_at {
            return;
        }
        let samples = match self.dict_samples() {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => return self.dict_failed(&e),
        };
        let n = samples.len();
        let spawned = std::thread::Builder::new()
            .name("wirewatch-dict".into())
            .spawn(move || SnapshotDict::train(samples.iter().map(Vec::as_slice)));
        match spawned {
            Ok(thread) => {
                *training = Some(Training {
                    thread,
                    samples: n,
                    started: Instant::now(),
                });
            }
            Err(e) => self.dict_failed(&e),
        }
    }

    /// Waits for a training under way, if any, and stores its dictionary (on close).
    pub(super) fn finish_training(&self) {
        let t = self.dict.training().take();
        if let Some(t) = t {
            self.adopt_trained(t);
        }
    }

    /// Joins a training thread; stores its dictionary in `meta`, then uses it.
    fn adopt_trained(&self, t: Training) {
        let dict = match t.thread.join() {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return self.dict_failed(&e),
            Err(_) => return self.dict_failed(&"the training thread panicked"),
        };
        let stored = self.with_db(true, |db| {
            let tx = db.begin_write()?;
            tx.open_table(META)?.insert(DICT_KEY, dict.bytes())?;
            tx.commit()?;
            Ok(())
        });
        if let Err(e) = stored {
            return self.dict_failed(&e);
        }
        tracing::info!(
            samples = t.samples,
            bytes = dict.bytes().len(),
            ms = t.started.elapsed().as_millis() as u64,
            "trained the snapshot dictionary"
        );
        let _ = self.dict.ready.set(dict);
    }

    fn dict_failed(&self, e: &dyn std::fmt::Display) {
        self.dict.failed.store(true, Ordering::Relaxed);
        tracing::warn!(path = %self.path.display(), error = %e, "could not train the snapshot dictionary; snapshots are compressed without one until the next start");
    }

    /// The first [`Dict::train_at`] snapshots, in the order they were written, or
    /// `None` if the state holds fewer (the bound is then set to the count).
    fn dict_samples(&self) -> Result<Option<Vec<Vec<u8>>>, StateError> {
        let at = self.dict.train_at;
        self.with_db(false, |db| {
            let tx = db.begin_read()?;
            let rows = tx.open_table(SNAPSHOT_INDEX)?.len()?;
            if rows < at {
                // Overwrites and expiry: the bound was high; start again from the count.
                self.dict.bound.store(rows, Ordering::Relaxed);
                return Ok(None);
            }
            // The first `at` entries of the chunks, in the order they were written
            // (one replaced since may be among them: as good a sample of the text).
            let mut out = Vec::new();
            for row in tx.open_table(SNAPSHOT_CHUNKS)?.iter()? {
                let (_, chunk) = row?;
                for e in entries(chunk.value()) {
                    if out.len() as u64 == at {
                        return Ok(Some(out));
                    }
                    out.push(e?.value.to_vec());
                }
            }
            Ok(Some(out))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::codec::{DICT_MAX_BYTES, SNAPSHOT_DICT, SNAPSHOT_ZSTD};
    use crate::dedupe::store::DB_FILE;
    use crate::dedupe::{ArticleState, Pending};
    use crate::diff::Snapshot;
    use redb::Database;

    /// Snapshots made of the fixture articles' text, line by line: real text, as
    /// varied as the articles.
    fn snapshots() -> Vec<(String, Snapshot)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dev");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        paths.sort();
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let text = std::fs::read_to_string(p).unwrap();
                let mut lines = text.lines().filter(|l| !l.trim().is_empty());
                let s = Snapshot {
                    lede: lines.next().unwrap_or_default().to_owned(),
                    paragraphs: lines.map(str::to_owned).collect(),
                    people: vec![format!("Person {i}")],
                    word_count: text.split_whitespace().count(),
                    ..Snapshot::default()
                };
                (format!("{i:016x}"), s)
            })
            .collect()
    }

    fn commit(store: &Store, batch: &[(String, Snapshot)]) {
        let mut p = Pending::default();
        for (id, s) in batch {
            p.articles.insert(
                id.clone(),
                ArticleState {
                    stamp: None,
                    revision: 1,
                    content_hash: "ab".repeat(32),
                    touched: 1_000,
                },
            );
            p.snapshots.insert(id.clone(), s.clone());
        }
        store.commit(&p).unwrap();
    }

    fn tag(dir: &std::path::Path, id: &str) -> u8 {
        let db = Database::open(dir.join(DB_FILE)).unwrap();
        let tx = db.begin_read().unwrap();
        crate::dedupe::pack::stored(&tx, id).unwrap()[0]
    }

    #[test]
    fn the_dictionary_is_trained_once_enough_snapshots_are_stored_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let all = snapshots();
        assert!(all.len() >= 300, "fixtures: {}", all.len());
        let (first, rest) = all.split_at(200);
        {
            let mut store = Store::open(dir.path(), 1 << 20).unwrap();
            store.dict.train_at = 200;
            commit(&store, &first[..150]);
            assert!(store.dict().is_none(), "trained before 200 snapshots");
            commit(&store, &first[150..]);
            // Trained on a thread of its own; closing the store would wait for it.
            store.finish_training();
            let d = store.dict().expect("trained at 200 snapshots");
            assert!(d.bytes().len() <= DICT_MAX_BYTES);
            commit(&store, rest);
            for (id, s) in &all {
                assert_eq!(store.snapshot(id).unwrap().as_ref(), Some(s), "{id}");
            }
        }
        // Those written before the dictionary keep plain zstd; the later ones use it,
        // and take less room.
        assert_eq!(tag(dir.path(), &first[0].0), SNAPSHOT_ZSTD);
        assert_eq!(tag(dir.path(), &rest[0].0), SNAPSHOT_DICT);
        let size = |batch: &[(String, Snapshot)], d: Option<&SnapshotDict>| -> usize {
            batch
                .iter()
                .map(|(_, s)| crate::dedupe::codec::encode_snapshot(s, d).unwrap().len())
                .sum()
        };
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let d = store.dict().expect("loaded at open");
        let (plain, with) = (size(rest, None), size(rest, Some(d)));
        assert!(
            with * 10 < plain * 9,
            "{with} B with the dictionary, {plain} without"
        );
        for (id, s) in &all {
            assert_eq!(store.snapshot(id).unwrap().as_ref(), Some(s), "{id}");
        }
    }

    #[test]
    fn a_large_commit_waits_for_the_training_and_uses_the_dictionary() {
        let dir = tempfile::tempdir().unwrap();
        let all = snapshots();
        {
            let mut store = Store::open(dir.path(), 1 << 20).unwrap();
            store.dict.train_at = 200;
            // Starts the training, on its own thread.
            commit(&store, &all[..200]);
            // 40 snapshots: a backlog's batch, which waits for the dictionary.
            commit(&store, &all[200..240]);
            assert!(store.dict().is_some());
        }
        assert_eq!(tag(dir.path(), &all[199].0), SNAPSHOT_ZSTD);
        assert_eq!(tag(dir.path(), &all[200].0), SNAPSHOT_DICT);
    }

    #[test]
    fn a_snapshot_without_its_dictionary_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let all = snapshots();
        {
            let mut store = Store::open(dir.path(), 1 << 20).unwrap();
            store.dict.train_at = 200;
            commit(&store, &all[..200]);
            store.finish_training();
            commit(&store, &all[200..210]);
        }
        {
            let db = Database::open(dir.path().join(DB_FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(META).unwrap().remove(DICT_KEY).unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let e = store.snapshot(&all[205].0).unwrap_err();
        assert!(matches!(e, StateError::Damaged { .. }), "{e}");
        // The ones from before the dictionary still read.
        assert_eq!(store.snapshot(&all[0].0).unwrap().as_ref(), Some(&all[0].1));
    }
}
