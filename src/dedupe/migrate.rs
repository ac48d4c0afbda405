//! Migration at open of a state of layout version 1, where every value was JSON, to
//! the current layout ([`super::codec`]).
//!
//! Every value of `articles`, `snapshots`, `files` and `meta` is read, decoded as
//! layout 1 and written again in the current layout, and the version is set, all in
//! the one write transaction that opening runs ([`super::open::init`]): a stop or a
//! crash before its commit leaves the layout-1 state as it was, and the next start
//! migrates it again. The other tables hold no encoded values and are kept as they
//! are. A layout-1 value that does not decode is damage, as it is for any stored
//! value. Rows are rewritten a chunk at a time, so memory stays bounded whatever the
//! state's size. Afterwards the file is compacted once ([`compact`]), giving back
//! the space the old values held.

use std::ops::Bound;

use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};

use super::codec::{self, v1, CodecError};
use super::error::quietly;
use super::store::{ARTICLES, FILES, META, SNAPSHOTS};
use super::{ArticleState, Committed, FileEntry, StateError};
use crate::diff::Snapshot;

/// Rows read (and rewritten) per step.
const CHUNK: usize = 512;

/// What a migration rewrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Migrated {
    /// `articles` rows.
    pub articles: u64,
    /// `snapshots` rows.
    pub snapshots: u64,
    /// `files` rows.
    pub files: u64,
}

/// Rewrites every value of a layout-1 state in the current layout, inside `tx` (which
/// also sets the version; nothing is committed here).
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
        articles,
        snapshots,
        files,
    })
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
        let snaps = tx.open_table(SNAPSHOTS).unwrap();
        let (id1, _) = article(n - 1);
        let raw = snaps.get(id1.as_str()).unwrap().unwrap();
        assert_eq!(raw.value()[0], codec::SNAPSHOT_ZSTD);
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
                .insert("version", 4u32.to_le_bytes().as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let e = Store::open(dir.path(), 1 << 20).unwrap_err();
        assert!(matches!(e, StateError::Version { found: 4, .. }), "{e}");
        assert!(e.to_string().contains("move the folder away"), "{e}");
    }
}
