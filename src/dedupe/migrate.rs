//! Migration at open of a state of an earlier layout to the current one.
//!
//! - Layout 1, where every value was JSON ([`from_v1`]): every value of `articles`,
//!   `snapshots`, `files` and `meta` is read, decoded as layout 1 and written again in
//!   the binary encoding of [`super::codec`]. The other tables hold no encoded values
//!   and are kept as they are. A layout-1 value that does not decode is damage, as it
//!   is for any stored value.
//! - Layouts 1 to 3, one snapshot per row of `snapshots` ([`pack_snapshots`]): every
//!   row is moved, its bytes as they are, into the chunks of `pack.rs`, and the old
//!   table is deleted.
//!
//! The layout-1 rewrite runs in the write transaction that opening runs
//! ([`super::open::init`]), which sets the version to 3: a stop or a crash before its
//! commit leaves the layout-1 state as it was, and the next start migrates it again.
//! Its rows are read a chunk at a time. The packing then runs in steps of its own
//! transactions, each moving rows out of the old table and into chunks at once, the
//! last one setting the version to 4: a stop between two steps leaves a state of
//! layout 3 whose remaining rows the next start packs. Afterwards the file is
//! compacted once ([`compact`]), giving back the space the old values held.

use std::ops::Bound;

use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};

use super::codec::{self, v1, CodecError};
use super::error::quietly;
use super::pack::Packer;
use super::store::{ARTICLES, FILES, META, SNAPSHOTS};
use super::{ArticleState, Committed, FileEntry, StateError, STATE_VERSION};
use crate::diff::Snapshot;

/// Rows read (and rewritten) per step.
const CHUNK: usize = 512;

/// What a migration rewrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Migrated {
    /// The layout version migrated from.
    pub from: u32,
    /// `articles` rows.
    pub articles: u64,
    /// `snapshots` rows.
    pub snapshots: u64,
    /// `files` rows.
    pub files: u64,
}

/// Rewrites every value of a layout-1 state in the binary encoding, inside `tx` (whose
/// caller sets the version to 3; nothing is committed here).
pub(super) fn from_v1(tx: &WriteTransaction) -> Result<Migrated, StateError> {
    let articles = rewrite_str(tx, ARTICLES, &[], |b| {
        codec::encode_article(&v1::decode::<ArticleState>(b)?)
    })?;
    let snapshots = rewrite_str(tx, SNAPSHOTS, &[], |b| {
        codec::encode_snapshot(&v1::decode::<Snapshot>(b)?, None)
    })?;
    // The version is a little-endian u32, the same in both layouts (and set by the
    // caller); the other names are committed output positions.
    rewrite_str(tx, META, &["version"], |b| {
        codec::encode_committed(&v1::decode::<Committed>(b)?)
    })?;
    let files = rewrite_bytes(tx, FILES, |b| {
        codec::encode_file(&v1::decode::<FileEntry>(b)?)
    })?;
    Ok(Migrated {
        from: 1,
        articles,
        snapshots,
        files,
    })
}

/// Rows moved per write transaction of [`pack_snapshots`]: redb keeps a
/// transaction's pages in memory until it commits, so the step bounds the memory
/// the migration takes (about 30 MiB), whatever the state's size.
const PACK_STEP: usize = if cfg!(test) { 100 } else { 4096 };

/// Moves every row of the `snapshots` table of layouts 1 to 3 (its values already in
/// the binary encoding, moved as they are) into packed chunks, [`PACK_STEP`] rows per
/// write transaction, each row removed from the old table in the transaction that
/// packs it; the last one deletes the table and sets the version. Returns how many
/// rows were moved.
pub(super) fn pack_snapshots(db: &Database) -> Result<u64, StateError> {
    let mut n = 0;
    loop {
        let moved = pack_step(db)?;
        n += moved as u64;
        if moved == 0 {
            return Ok(n);
        }
    }
}

/// One step of [`pack_snapshots`]: moves up to [`PACK_STEP`] rows and commits, or,
/// when none is left, deletes the table, sets the version and commits. Returns how
/// many rows it moved.
fn pack_step(db: &Database) -> Result<usize, StateError> {
    let tx = db.begin_write()?;
    let moved = {
        let mut table = tx.open_table(SNAPSHOTS)?;
        let mut rows: Vec<(String, Vec<u8>)> = Vec::with_capacity(PACK_STEP);
        for row in table.iter()?.take(PACK_STEP) {
            let (k, v) = row?;
            rows.push((k.value().to_owned(), v.value().to_vec()));
        }
        if !rows.is_empty() {
            let mut packer = Packer::new(&tx)?;
            for (k, v) in &rows {
                packer.put(k, v)?;
                table.remove(k.as_str())?;
            }
            packer.finish()?;
        }
        rows.len()
    };
    if moved == 0 {
        tx.delete_table(SNAPSHOTS)?;
        tx.open_table(META)?
            .insert("version", STATE_VERSION.to_le_bytes().as_slice())?;
    }
    tx.commit()?;
    Ok(moved)
}

type Recode = fn(&[u8]) -> Result<Vec<u8>, CodecError>;

/// Rewrites the values of a table keyed by text, but those of the keys in `keep`.
fn rewrite_str(
    tx: &WriteTransaction,
    def: TableDefinition<&str, &[u8]>,
    keep: &[&str],
    recode: Recode,
) -> Result<u64, StateError> {
    let mut table = tx.open_table(def)?;
    let mut after: Option<String> = None;
    let mut n = 0;
    loop {
        let from = match &after {
            Some(k) => Bound::Excluded(k.as_str()),
            None => Bound::Unbounded,
        };
        let mut chunk: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(CHUNK);
        for row in table.range::<&str>((from, Bound::Unbounded))?.take(CHUNK) {
            let (k, v) = row?;
            let k = k.value();
            let new = if keep.contains(&k) {
                None
            } else {
                Some(recode(v.value()).map_err(StateError::Decode)?)
            };
            chunk.push((k.to_owned(), new));
        }
        let Some((last, _)) = chunk.last() else {
            return Ok(n);
        };
        let last = last.clone();
        for (k, v) in &chunk {
            if let Some(v) = v {
                table.insert(k.as_str(), v.as_slice())?;
                n += 1;
            }
        }
        after = Some(last);
    }
}

/// Rewrites every value of a table keyed by bytes.
fn rewrite_bytes(
    tx: &WriteTransaction,
    def: TableDefinition<&[u8], &[u8]>,
    recode: Recode,
) -> Result<u64, StateError> {
    let mut table = tx.open_table(def)?;
    let mut after: Option<Vec<u8>> = None;
    let mut n = 0;
    loop {
        let from = match &after {
            Some(k) => Bound::Excluded(k.as_slice()),
            None => Bound::Unbounded,
        };
        let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(CHUNK);
        for row in table.range::<&[u8]>((from, Bound::Unbounded))?.take(CHUNK) {
            let (k, v) = row?;
            let new = recode(v.value()).map_err(StateError::Decode)?;
            chunk.push((k.value().to_vec(), new));
        }
        let Some((last, _)) = chunk.last() else {
            return Ok(n);
        };
        let last = last.clone();
        for (k, v) in &chunk {
            table.insert(k.as_slice(), v.as_slice())?;
            n += 1;
        }
        after = Some(last);
    }
}

/// Compacts the database file after a migration, so that the space of the layout-1
/// values goes back to the file system. Only an optimisation: an error is logged
/// and the state is used as it is; a panic inside redb (its message) is returned, as
/// the database must not be used after it.
pub(super) fn compact(db: &mut Database, path: &std::path::Path) -> Result<(), String> {
    let before = std::fs::metadata(path).map(|m| m.len()).ok();
    match quietly(|| db.compact())? {
        Ok(_) => tracing::info!(
            path = %path.display(),
            bytes_before = before,
            bytes_after = std::fs::metadata(path).map(|m| m.len()).ok(),
            "state database compacted after the migration"
        ),
        Err(e) => tracing::warn!(
            path = %path.display(),
            error = %e,
            "the state database could not be compacted after the migration; it is used as it is"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::store::{Store, CONTENTS, CONTENT_EXPIRY, DB_FILE, EXPIRY};
    use crate::dedupe::{Pending, STATE_VERSION};
    use crate::record::Stamp;

    fn snapshot(n: usize) -> Snapshot {
        Snapshot {
            lede: format!("(Halifax) Harbour authority {n} approved a dredging plan today."),
            headings: vec!["Réactions".into()],
            paragraphs: (0..6)
                .map(|i| format!("Paragraph {i} of story {n}: « été », the council met again."))
                .collect(),
            people: vec![format!("Person {n}")],
            places: vec!["Halifax".into()],
            organizations: vec!["Port Authority".into()],
            quotes: vec![n as u64, u64::MAX],
            word_count: 40 + n,
        }
    }

    /// A layout-1 state as the previous release wrote it: its tables, the version
    /// as a little-endian u32, and every value as `serde_json::to_vec` of its type
    /// (that release's `encode`).
    fn write_v1(dir: &std::path::Path, n: usize) {
        let db = Database::create(dir.join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            meta.insert("version", 1u32.to_le_bytes().as_slice())
                .unwrap();
            let out = Committed {
                offset: 4242,
                identity: Some((2049, 77)),
            };
            meta.insert("output", json(&out).as_slice()).unwrap();
            meta.insert("rejects", json(&Committed::default()).as_slice())
                .unwrap();
            let mut articles = tx.open_table(ARTICLES).unwrap();
            let mut expiry = tx.open_table(EXPIRY).unwrap();
            let mut snapshots = tx.open_table(SNAPSHOTS).unwrap();
            let mut files = tx.open_table(FILES).unwrap();
            let mut contents = tx.open_table(CONTENTS).unwrap();
            let mut content_expiry = tx.open_table(CONTENT_EXPIRY).unwrap();
            for i in 0..n {
                let (id, st) = article(i);
                articles.insert(id.as_str(), json(&st).as_slice()).unwrap();
                expiry.insert((st.touched, id.as_str()), ()).unwrap();
                snapshots
                    .insert(id.as_str(), json(&snapshot(i)).as_slice())
                    .unwrap();
                let (path, entry) = file(i);
                files
                    .insert(path.as_slice(), json(&entry).as_slice())
                    .unwrap();
                let sha = [i as u8; 32];
                contents.insert(sha.as_slice(), st.touched).unwrap();
                content_expiry
                    .insert((st.touched, sha.as_slice()), ())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }

    /// A value as layout 1 stored it: that release's `encode` was `serde_json::to_vec`.
    fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    fn article(i: usize) -> (String, ArticleState) {
        let stamp = if i.is_multiple_of(3) {
            Stamp::parse("2022-10-02")
        } else {
            Stamp::parse(&format!("2022-10-02T22:{:02}:00-04:00", i % 60))
        };
        let st = ArticleState {
            stamp,
            revision: 1 + (i % 4) as u32,
            content_hash: format!("{:064x}", i * 7919),
            touched: 1_000 + i as i64,
        };
        (format!("{i:016x}"), st)
    }

    fn file(i: usize) -> (Vec<u8>, FileEntry) {
        let entry = FileEntry {
            size: 4096 + i as u64,
            mtime_ns: 1_664_764_980_123_456_789 + i as i128,
            sha256: (!i.is_multiple_of(5)).then(|| format!("{:064x}", i * 31)),
        };
        (format!("/inbox/{i:05}-été.txt").into_bytes(), entry)
    }

    #[test]
    fn a_v1_state_is_migrated_in_place_with_every_value() {
        let dir = tempfile::tempdir().unwrap();
        // More rows than one chunk, so the chunked rewrite is exercised.
        let n = CHUNK * 2 + 37;
        write_v1(dir.path(), n);
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        for i in 0..n {
            let (id, st) = article(i);
            assert_eq!(store.article(&id).unwrap(), Some(st), "article {i}");
            assert_eq!(
                store.snapshot(&id).unwrap(),
                Some(snapshot(i)),
                "snapshot {i}"
            );
            let (path, entry) = file(i);
            assert_eq!(store.file(&path).unwrap(), Some(entry), "file {i}");
            assert!(store.content_seen(&[i as u8; 32]).unwrap());
        }
        assert_eq!(store.committed("output").unwrap().offset, 4242);
        assert_eq!(
            store.committed("output").unwrap().identity,
            Some((2049, 77))
        );
        assert_eq!(store.committed("rejects").unwrap(), Committed::default());
        assert_eq!(store.counts().unwrap(), (n as u64, n as u64));
        // The expiry index still works on migrated rows, and a commit over a migrated
        // article moves its expiry entry.
        let (id0, mut st0) = article(0);
        st0.touched = 1_000_000;
        let mut ch = Pending::default();
        ch.articles.insert(id0.clone(), st0.clone());
        store.commit(&ch).unwrap();
        assert_eq!(store.expire(1_000 + 10).unwrap(), 9);
        assert_eq!(store.article(&id0).unwrap(), Some(st0));
        drop(store);
        // The version is the current one now: the next open does not migrate again.
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = db.begin_read().unwrap();
        let meta = tx.open_table(META).unwrap();
        let v = meta.get("version").unwrap().unwrap();
        assert_eq!(v.value(), STATE_VERSION.to_le_bytes().as_slice());
        let (id1, _) = article(n - 1);
        let stored = crate::dedupe::pack::stored(&tx, &id1).unwrap();
        assert_eq!(stored[0], codec::SNAPSHOT_ZSTD);
        assert!(
            tx.open_table(SNAPSHOTS).is_err(),
            "the one-row-per-snapshot table is left"
        );
    }

    /// Takes a state of the current layout back to layout `v` (2 or 3): one row per
    /// snapshot in `snapshots`, its stored bytes as they are, and no chunks.
    fn unpack_to(dir: &std::path::Path, v: u32) {
        use crate::dedupe::pack::{entry, SNAPSHOT_CHUNKS, SNAPSHOT_INDEX, SNAPSHOT_LIVE};
        let _ = std::fs::remove_file(dir.join("wirewatch.redb.closed"));
        let db = Database::open(dir.join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let index = tx.open_table(SNAPSHOT_INDEX).unwrap();
            let chunks = tx.open_table(SNAPSHOT_CHUNKS).unwrap();
            let mut old = tx.open_table(SNAPSHOTS).unwrap();
            for r in index.iter().unwrap() {
                let (k, loc) = r.unwrap();
                let chunk = chunks.get(loc.value().0).unwrap().unwrap();
                let value = entry(chunk.value(), loc.value(), k.value()).unwrap();
                old.insert(k.value(), value).unwrap();
            }
            tx.open_table(META)
                .unwrap()
                .insert("version", v.to_le_bytes().as_slice())
                .unwrap();
        }
        tx.delete_table(SNAPSHOT_INDEX).unwrap();
        tx.delete_table(SNAPSHOT_CHUNKS).unwrap();
        tx.delete_table(SNAPSHOT_LIVE).unwrap();
        tx.commit().unwrap();
    }

    /// A state of layout `v` (2 or 3) holding `n` articles and their snapshots.
    fn layout_2_or_3(dir: &std::path::Path, n: usize, v: u32) {
        {
            let store = Store::open(dir, 1 << 20).unwrap();
            let mut ch = Pending::default();
            for i in 0..n {
                let (id, st) = article(i);
                ch.articles.insert(id.clone(), st);
                ch.snapshots.insert(id, snapshot(i));
            }
            store.commit(&ch).unwrap();
        }
        unpack_to(dir, v);
    }

    #[test]
    fn a_layout_2_or_3_state_has_its_snapshots_packed_at_open() {
        for v in [2, 3] {
            let dir = tempfile::tempdir().unwrap();
            let n = CHUNK * 2 + 37;
            layout_2_or_3(dir.path(), n, v);
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            for i in 0..n {
                let (id, _) = article(i);
                assert_eq!(store.snapshot(&id).unwrap(), Some(snapshot(i)), "{v}: {i}");
            }
            // Packed: far fewer chunks than snapshots, and the old table is gone.
            let stats = store.table_stats().unwrap();
            let by = |name: &str| stats.iter().find(|t| t.name == name).unwrap().clone();
            assert_eq!(by("snapshot_index").entries, n as u64);
            assert!(by("snapshot_chunks").entries * 4 < n as u64, "{stats:?}");
            drop(store);
            let db = Database::open(dir.path().join(DB_FILE)).unwrap();
            let tx = db.begin_read().unwrap();
            let meta = tx.open_table(META).unwrap();
            let got = meta.get("version").unwrap().unwrap();
            assert_eq!(got.value(), STATE_VERSION.to_le_bytes().as_slice());
            assert!(tx.open_table(SNAPSHOTS).is_err(), "{v}: old table left");
        }
    }

    #[test]
    fn a_packing_stopped_between_steps_is_finished_at_the_next_open() {
        use redb::ReadableTableMetadata;
        let dir = tempfile::tempdir().unwrap();
        let n = PACK_STEP * 3 + 7;
        layout_2_or_3(dir.path(), n, 3);
        {
            // One step, then a stop: some rows packed, the rest still in the old
            // table, the layout still 3.
            let db = Database::open(dir.path().join(DB_FILE)).unwrap();
            assert_eq!(pack_step(&db).unwrap(), PACK_STEP);
            let tx = db.begin_read().unwrap();
            let old = tx.open_table(SNAPSHOTS).unwrap();
            assert_eq!(old.len().unwrap(), (n - PACK_STEP) as u64);
            let meta = tx.open_table(META).unwrap();
            let v = meta.get("version").unwrap().unwrap();
            assert_eq!(v.value(), 3u32.to_le_bytes().as_slice());
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        for i in 0..n {
            let (id, _) = article(i);
            assert_eq!(store.snapshot(&id).unwrap(), Some(snapshot(i)), "{i}");
        }
        let stats = store.table_stats().unwrap();
        let index = stats.iter().find(|t| t.name == "snapshot_index").unwrap();
        assert_eq!(index.entries, n as u64);
    }

    #[test]
    fn a_v1_value_that_is_not_json_is_damage_and_the_v1_state_is_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        write_v1(dir.path(), 3);
        {
            let db = Database::open(dir.path().join(DB_FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(SNAPSHOTS)
                .unwrap()
                .insert(article(1).0.as_str(), b"{\"lede\":".as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let e = Store::open(dir.path(), 1 << 20).unwrap_err();
        assert!(matches!(e, StateError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("move the state folder aside"), "{e}");
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = db.begin_read().unwrap();
        let meta = tx.open_table(META).unwrap();
        let v = meta.get("version").unwrap().unwrap();
        assert_eq!(v.value(), 1u32.to_le_bytes().as_slice());
        let articles = tx.open_table(ARTICLES).unwrap();
        let raw = articles.get(article(0).0.as_str()).unwrap().unwrap();
        assert_eq!(raw.value(), serde_json::to_vec(&article(0).1).unwrap());
    }

    #[test]
    fn a_state_of_a_later_layout_is_refused_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(DB_FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("version", 5u32.to_le_bytes().as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let e = Store::open(dir.path(), 1 << 20).unwrap_err();
        assert!(matches!(e, StateError::Version { found: 5, .. }), "{e}");
        assert!(e.to_string().contains("move the folder away"), "{e}");
    }
}
