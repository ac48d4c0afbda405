//! Where the state's bytes go: entries and B-tree pages per table, as redb counts
//! them ([`Store::table_stats`]); `cargo run --release --example state_stats` prints them.

use redb::{ReadableTableMetadata, TableDefinition, TableHandle};

use super::pack::{SNAPSHOT_CHUNKS, SNAPSHOT_INDEX, SNAPSHOT_LIVE};
use super::store::{ARTICLES, CONTENTS, CONTENT_EXPIRY, EXPIRY, FILES, META};
use super::{StateError, Store};

/// One table of the state, as redb counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    /// The table's name (`articles`, `snapshot_chunks`, `files`, ...).
    pub name: &'static str,
    /// Entries.
    pub entries: u64,
    /// Leaf and branch pages of its B-tree (a page may span several 4 KiB ones: a
    /// leaf holding a value larger than one).
    pub pages: u64,
    /// Bytes of the pages: stored, metadata and fragmented bytes together.
    pub page_bytes: u64,
    /// Bytes of keys and values stored.
    pub stored_bytes: u64,
    /// Bytes of its pages that hold neither data nor metadata.
    pub fragmented_bytes: u64,
}

fn one<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &redb::ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<TableStats, StateError> {
    let name = match def.name() {
        "articles" => "articles",
        "expiry" => "expiry",
        "snapshot_index" => "snapshot_index",
        "snapshot_chunks" => "snapshot_chunks",
        "snapshot_live" => "snapshot_live",
        "files" => "files",
        "meta" => "meta",
        "contents" => "contents",
        _ => "content_expiry",
    };
    let t = tx.open_table(def)?;
    let s = t.stats()?;
    let pages = s.leaf_pages() + s.branch_pages();
    Ok(TableStats {
        name,
        entries: t.len()?,
        pages,
        page_bytes: s.stored_bytes() + s.metadata_bytes() + s.fragmented_bytes(),
        stored_bytes: s.stored_bytes(),
        fragmented_bytes: s.fragmented_bytes(),
    })
}

impl Store {
    /// Entries and pages of every table, in one read.
    pub fn table_stats(&self) -> Result<Vec<TableStats>, StateError> {
        self.with_db(false, |db| {
            let tx = db.begin_read()?;
            Ok(vec![
                one(&tx, ARTICLES)?,
                one(&tx, SNAPSHOT_INDEX)?,
                one(&tx, SNAPSHOT_CHUNKS)?,
                one(&tx, SNAPSHOT_LIVE)?,
                one(&tx, EXPIRY)?,
                one(&tx, FILES)?,
                one(&tx, CONTENTS)?,
                one(&tx, CONTENT_EXPIRY)?,
                one(&tx, META)?,
            ])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{st, FileEntry, Pending};
    use super::*;

    #[test]
    fn every_table_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let mut ch = Pending::default();
        for i in 0..3 {
            ch.articles.insert(format!("a{i}"), st("2022-10-02", 1));
            ch.files.push((
                format!("/x{i}").into_bytes(),
                FileEntry {
                    size: 1,
                    mtime_ns: 2,
                    sha256: None,
                },
            ));
        }
        store.commit(&ch).unwrap();
        let stats = store.table_stats().unwrap();
        let names: Vec<&str> = stats.iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "articles",
                "snapshot_index",
                "snapshot_chunks",
                "snapshot_live",
                "expiry",
                "files",
                "contents",
                "content_expiry",
                "meta"
            ]
        );
        let by = |n: &str| stats.iter().find(|t| t.name == n).unwrap().clone();
        assert_eq!(by("articles").entries, 3);
        assert_eq!(by("files").entries, 3);
        assert!(by("files").stored_bytes >= 3 * 3);
        assert!(by("files").page_bytes >= 4096);
    }
}
