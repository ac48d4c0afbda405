//! The state's snapshot dictionary ([`SnapshotDict`]): loaded at open from `meta`
//! (`snapshot_dict`), and trained once, the first time the state holds
//! [`TRAIN_AT`] snapshots, on those snapshots. Snapshots written before it stay as
//! they were (plain zstd); every later one is compressed with it. It is never
//! replaced, so every snapshot the state holds decodes with the one dictionary it has.

use std::sync::atomic::Ordering;
use std::time::Instant;

use redb::{ReadableTable, ReadableTableMetadata};

use super::codec::SnapshotDict;
use super::pack::{entries, SNAPSHOT_CHUNKS, SNAPSHOT_INDEX};
use super::store::{Store, META};
use super::StateError;

/// How many snapshots the state holds when its dictionary is trained, on that many:
/// about a hundred times the dictionary's size in samples, as zstd advises.
pub const TRAIN_AT: u64 = 2_000;

/// The `meta` name of the dictionary.
pub(super) const DICT_KEY: &str = "snapshot_dict";

/// How many snapshots trigger the training: [`TRAIN_AT`]. A test build (feature
/// `fault-injection`) takes `WIREWATCH_DICT_TRAIN_AT` from the environment instead,
/// so that the crash test trains a dictionary between its kills.
pub(super) fn train_at() -> u64 {
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
        self.snapshots_bound.store(snapshots, Ordering::Relaxed);
        if let Some(d) = dict {
            let _ = self.dict.set(d);
        }
        Ok(())
    }

    /// The state's dictionary, if it has one.
    pub(super) fn dict(&self) -> Option<&SnapshotDict> {
        self.dict.get()
    }

    /// After a commit that wrote `written` snapshot rows: trains and stores the
    /// dictionary when the state has none yet and holds enough snapshots. The rows
    /// are counted only once the bound (the count at open plus every row written
    /// since, overwrites included) reaches the threshold, so a commit costs no read
    /// until then. A failure is logged and not tried again until the next start; the
    /// state works the same without a dictionary, only larger.
    pub(super) fn train_dict_when_due(&self, written: u64) {
        if self.dict.get().is_some() || self.dict_failed.load(Ordering::Relaxed) {
            return;
        }
        let bound = self.snapshots_bound.fetch_add(written, Ordering::Relaxed) + written;
        if bound < self.train_at {
            return;
        }
        match self.train_dict() {
            Ok(None) => {}
            Ok(Some(d)) => {
                let _ = self.dict.set(d);
            }
            Err(e) => {
                self.dict_failed.store(true, Ordering::Relaxed);
                tracing::warn!(path = %self.path.display(), error = %e, "could not train the snapshot dictionary; snapshots are compressed without one until the next start");
            }
        }
    }

    fn train_dict(&self) -> Result<Option<SnapshotDict>, StateError> {
        let at = self.train_at;
        let started = Instant::now();
        let samples: Option<Vec<Vec<u8>>> = self.with_db(false, |db| {
            let tx = db.begin_read()?;
            let rows = tx.open_table(SNAPSHOT_INDEX)?.len()?;
            if rows < at {
                // Overwrites and expiry: the bound was high; start again from the count.
                self.snapshots_bound.store(rows, Ordering::Relaxed);
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
        })?;
        let Some(samples) = samples else {
            return Ok(None);
        };
        let dict =
            SnapshotDict::train(samples.iter().map(Vec::as_slice)).map_err(StateError::Encode)?;
        self.with_db(true, |db| {
            let tx = db.begin_write()?;
            tx.open_table(META)?.insert(DICT_KEY, dict.bytes())?;
            tx.commit()?;
            Ok(())
        })?;
        tracing::info!(
            samples = samples.len(),
            bytes = dict.bytes().len(),
            ms = started.elapsed().as_millis() as u64,
            "trained the snapshot dictionary"
        );
        Ok(Some(dict))
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
            store.train_at = 200;
            commit(&store, &first[..150]);
            assert!(store.dict().is_none(), "trained before 200 snapshots");
            commit(&store, &first[150..]);
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
    fn a_snapshot_without_its_dictionary_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let all = snapshots();
        {
            let mut store = Store::open(dir.path(), 1 << 20).unwrap();
            store.train_at = 200;
            commit(&store, &all[..200]);
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
