//! Snapshots packed into chunks (layout version 4): where a snapshot's bytes live and
//! how the space of replaced ones is won back.
//!
//! A snapshot is about 1.3 KB. Kept one per row of a redb table keyed by article, a
//! 4 KiB B-tree leaf holds two or three of them and is about 60 % full after the
//! random inserts that article ids make. Here the snapshots are appended to *chunks*
//! instead, values of up to [`CHUNK_BYTES`] keyed by a sequence number, one chunk per
//! leaf of 16 KiB (redb gives a leaf bigger than a page to a value that needs it),
//! which are full but for part of the last entry that did not fit:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `snapshot_index` | `article_id` | (chunk, offset, length) of its entry |
//! | `snapshot_chunks` | chunk number | entries: `[u32 id length][u32 value length][id][value]`, little-endian |
//! | `snapshot_live` | chunk number | bytes of its entries the index still points to |
//!
//! The chunk with the highest number is the *open* one: new entries are appended to
//! it until the next does not fit, then the next number is begun. A replaced or
//! expired snapshot leaves its entry where it is and takes its bytes off the chunk's
//! live count; a chunk other than the open one whose live bytes fall under three
//! quarters of [`CHUNK_BYTES`] is repacked in the same transaction: its live entries
//! are appended to the open chunk and it is deleted. So every chunk but the open one
//! is at least three-quarters live (but one whose few large entries are all live),
//! and each byte moved wins at least a third of a byte back. Every repack frees dead
//! bytes and moves only live ones, so a commit's repacking always ends.
//! Everything happens inside the caller's write transaction ([`Packer`]), so a crash
//! leaves the chunks as the last commit left them.

use std::collections::BTreeSet;

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use super::codec::CodecError;
use super::StateError;

/// Where each article's snapshot entry is: (chunk, offset, length of the entry).
pub(super) const SNAPSHOT_INDEX: TableDefinition<&str, Loc> =
    TableDefinition::new("snapshot_index");
/// The chunks of snapshot entries.
pub(super) const SNAPSHOT_CHUNKS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("snapshot_chunks");
/// Live bytes per chunk.
pub(super) const SNAPSHOT_LIVE: TableDefinition<u64, u32> = TableDefinition::new("snapshot_live");

/// The most bytes of entries in a chunk (but one whose single entry is larger): what
/// a redb leaf of four 4 KiB pages holds in one value, less the leaf's header (4
/// bytes), the value's length (4) and the key (8).
pub const CHUNK_BYTES: usize = 4 * 4096 - 16;

/// A chunk under this many live bytes (three quarters of [`CHUNK_BYTES`]) is
/// repacked.
const REPACK_UNDER: u32 = (CHUNK_BYTES * 3 / 4) as u32;

/// Bytes of an entry's header: the id's length and the value's, as u32.
const HEADER: usize = 8;

/// (chunk, offset, length) of one entry.
pub(super) type Loc = (u64, u32, u32);

/// Damage: an index entry or a chunk that is not what this program wrote.
fn bad(what: &'static str) -> StateError {
    StateError::Decode(CodecError::Chunk(what))
}

/// The value of the entry at `loc` in `chunk`, checked to be `id`'s.
pub(super) fn entry<'c>(chunk: &'c [u8], loc: Loc, id: &str) -> Result<&'c [u8], StateError> {
    let (_, off, len) = loc;
    let at = chunk
        .get(off as usize..off as usize + len as usize)
        .ok_or_else(|| bad("a snapshot entry past the end of its chunk"))?;
    match parse(at)? {
        (found, value, n) if found == id.as_bytes() && n == at.len() => Ok(value),
        _ => Err(bad("a snapshot entry that is not its article's")),
    }
}

/// The first entry of `bytes`: (id, value, length of the entry).
fn parse(bytes: &[u8]) -> Result<(&[u8], &[u8], usize), StateError> {
    let short = || bad("a truncated snapshot entry");
    let word = |i: usize| -> Result<usize, StateError> {
        let b: [u8; 4] = bytes
            .get(i..i + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(short)?;
        Ok(u32::from_le_bytes(b) as usize)
    };
    let (id_len, value_len) = (word(0)?, word(4)?);
    let end = HEADER
        .checked_add(id_len)
        .and_then(|n| n.checked_add(value_len))
        .ok_or_else(short)?;
    if end > bytes.len() {
        return Err(short());
    }
    Ok((
        &bytes[HEADER..HEADER + id_len],
        &bytes[HEADER + id_len..end],
        end,
    ))
}

/// One entry of a chunk.
pub(super) struct Entry<'c> {
    /// Where it starts in its chunk.
    pub off: u32,
    /// Its article id.
    pub id: &'c [u8],
    /// The snapshot's stored bytes.
    pub value: &'c [u8],
    /// Its length, header included.
    pub len: u32,
}

/// Every entry of a chunk, live or not.
pub(super) fn entries(chunk: &[u8]) -> impl Iterator<Item = Result<Entry<'_>, StateError>> + '_ {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off >= chunk.len() {
            return None;
        }
        let item = parse(&chunk[off..]).map(|(id, value, n)| {
            let at = off;
            off += n;
            Entry {
                off: at as u32,
                id,
                value,
                len: n as u32,
            }
        });
        if item.is_err() {
            off = chunk.len();
        }
        Some(item)
    })
}

/// Writes snapshot entries inside one write transaction: [`Packer::put`] and
/// [`Packer::remove`] as often as needed, then [`Packer::finish`], which repacks the
/// chunks that fell under their live threshold and writes the open chunk once.
pub(super) struct Packer<'t> {
    index: Table<'t, &'static str, Loc>,
    chunks: Table<'t, u64, &'static [u8]>,
    live: Table<'t, u64, u32>,
    /// Number of the open chunk.
    open: u64,
    /// Its bytes as they stand.
    buf: Vec<u8>,
    /// Its live bytes.
    buf_live: u32,
    /// It changed since it was read.
    dirty: bool,
    /// Chunks under the threshold, to repack.
    sparse: BTreeSet<u64>,
    /// The chunk being repacked (its entries' releases are not counted).
    repacking: Option<u64>,
}

impl<'t> Packer<'t> {
    /// Opens the three tables in `tx` and reads the open chunk.
    pub(super) fn new(tx: &'t WriteTransaction) -> Result<Packer<'t>, StateError> {
        let index = tx.open_table(SNAPSHOT_INDEX)?;
        let chunks = tx.open_table(SNAPSHOT_CHUNKS)?;
        let live = tx.open_table(SNAPSHOT_LIVE)?;
        let last = chunks.last()?.map(|(k, v)| (k.value(), v.value().to_vec()));
        let (open, buf, buf_live) = match last {
            Some((n, bytes)) if bytes.len() < CHUNK_BYTES => {
                let l = live
                    .get(n)?
                    .map(|g| g.value())
                    .ok_or_else(|| bad("a snapshot chunk without its live count"))?;
                (n, bytes, l)
            }
            Some((n, _)) => (n + 1, Vec::new(), 0),
            None => (0, Vec::new(), 0),
        };
        Ok(Packer {
            index,
            chunks,
            live,
            open,
            buf,
            buf_live,
            dirty: false,
            sparse: BTreeSet::new(),
            repacking: None,
        })
    }

    /// Stores `value` as `id`'s snapshot, in place of any it had.
    pub(super) fn put(&mut self, id: &str, value: &[u8]) -> Result<(), StateError> {
        let len = HEADER + id.len() + value.len();
        let too_long = || bad("a snapshot of 4 GiB or more");
        let (id_len, value_len) = (
            u32::try_from(id.len()).map_err(|_| too_long())?,
            u32::try_from(value.len()).map_err(|_| too_long())?,
        );
        let len32 = u32::try_from(len).map_err(|_| too_long())?;
        if self.buf_live == 0 {
            // Nothing the index points to: start the chunk over.
            self.buf.clear();
        } else if self.buf.len() + len > CHUNK_BYTES {
            self.seal()?;
        }
        let off = u32::try_from(self.buf.len()).map_err(|_| too_long())?;
        self.buf.extend_from_slice(&id_len.to_le_bytes());
        self.buf.extend_from_slice(&value_len.to_le_bytes());
        self.buf.extend_from_slice(id.as_bytes());
        self.buf.extend_from_slice(value);
        self.buf_live += len32;
        self.dirty = true;
        let old = self
            .index
            .insert(id, (self.open, off, len32))?
            .map(|g| g.value());
        if let Some(old) = old {
            self.release(old)?;
        }
        Ok(())
    }

    /// Forgets `id`'s snapshot, if it has one.
    pub(super) fn remove(&mut self, id: &str) -> Result<(), StateError> {
        let old = self.index.remove(id)?.map(|g| g.value());
        if let Some(old) = old {
            self.release(old)?;
        }
        Ok(())
    }

    /// Takes a dead entry's bytes off its chunk's live count.
    fn release(&mut self, (chunk, _, len): Loc) -> Result<(), StateError> {
        if chunk == self.open {
            self.buf_live = self.buf_live.saturating_sub(len);
            return Ok(());
        }
        if self.repacking == Some(chunk) {
            return Ok(());
        }
        let was = self
            .live
            .get(chunk)?
            .map(|g| g.value())
            .ok_or_else(|| bad("a snapshot chunk without its live count"))?;
        let now = was.saturating_sub(len);
        self.live.insert(chunk, now)?;
        if now < REPACK_UNDER {
            self.sparse.insert(chunk);
        }
        Ok(())
    }

    /// Writes the open chunk and begins the next.
    fn seal(&mut self) -> Result<(), StateError> {
        self.write_open()?;
        // Only a chunk with dead entries gains from a repack: one whose entries are
        // all live (a few large ones that leave no room for the next) stays as it
        // is, or it would be repacked into another like it, for ever.
        if self.buf_live < REPACK_UNDER && (self.buf_live as usize) < self.buf.len() {
            self.sparse.insert(self.open);
        }
        self.open += 1;
        self.buf.clear();
        self.buf_live = 0;
        self.dirty = false;
        Ok(())
    }

    fn write_open(&mut self) -> Result<(), StateError> {
        if !self.dirty {
            return Ok(());
        }
        if self.buf_live == 0 {
            self.chunks.remove(self.open)?;
            self.live.remove(self.open)?;
        } else {
            self.chunks.insert(self.open, self.buf.as_slice())?;
            self.live.insert(self.open, self.buf_live)?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Repacks the chunks that fell under the threshold and writes the open chunk.
    pub(super) fn finish(mut self) -> Result<(), StateError> {
        while let Some(c) = self.sparse.pop_first() {
            if c == self.open {
                continue;
            }
            let Some(bytes) = self.chunks.get(c)?.map(|g| g.value().to_vec()) else {
                continue;
            };
            self.repacking = Some(c);
            for e in entries(&bytes) {
                let e = e?;
                let id = std::str::from_utf8(e.id).map_err(|_| bad("a snapshot entry's id"))?;
                let at = self.index.get(id)?.map(|g| g.value());
                if at == Some((c, e.off, e.len)) {
                    self.put(id, e.value)?;
                }
            }
            self.repacking = None;
            self.chunks.remove(c)?;
            self.live.remove(c)?;
        }
        self.write_open()
    }
}

/// The stored bytes of `id`'s snapshot, read in `tx`; `None` when it has none (tests
/// look at what was written with it).
#[cfg(test)]
pub(super) fn stored(tx: &redb::ReadTransaction, id: &str) -> Option<Vec<u8>> {
    let loc = tx.open_table(SNAPSHOT_INDEX).ok()?.get(id).ok()??.value();
    let chunk = tx.open_table(SNAPSHOT_CHUNKS).ok()?.get(loc.0).ok()??;
    entry(chunk.value(), loc, id).ok().map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, ReadableTableMetadata};

    fn value(id: usize, round: usize, len: usize) -> Vec<u8> {
        let mut v = format!("{id}/{round}:").into_bytes();
        v.resize(len, b'a' + (id % 26) as u8);
        v
    }

    /// Every id's entry, read back through the index.
    fn read_all(db: &Database) -> Vec<(String, Vec<u8>)> {
        let tx = db.begin_read().unwrap();
        let index = tx.open_table(SNAPSHOT_INDEX).unwrap();
        let ids: Vec<String> = index
            .iter()
            .unwrap()
            .map(|r| r.unwrap().0.value().to_owned())
            .collect();
        ids.into_iter()
            .map(|k| {
                let v = stored(&tx, &k).expect("every indexed entry reads");
                (k, v)
            })
            .collect()
    }

    /// Chunks, and the live counts checked against the index.
    fn check_counts(db: &Database) -> (u64, u64) {
        let tx = db.begin_read().unwrap();
        let index = tx.open_table(SNAPSHOT_INDEX).unwrap();
        let chunks = tx.open_table(SNAPSHOT_CHUNKS).unwrap();
        let live = tx.open_table(SNAPSHOT_LIVE).unwrap();
        let mut want = std::collections::BTreeMap::<u64, u32>::new();
        for r in index.iter().unwrap() {
            let (c, _, len) = r.unwrap().1.value();
            *want.entry(c).or_default() += len;
        }
        let got: std::collections::BTreeMap<u64, u32> = live
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), v.value())
            })
            .collect();
        assert_eq!(got, want, "live counts");
        let mut bytes = 0;
        for r in chunks.iter().unwrap() {
            bytes += r.unwrap().1.value().len() as u64;
        }
        (chunks.len().unwrap(), bytes)
    }

    fn commit(db: &Database, f: impl FnOnce(&mut Packer<'_>)) {
        let tx = db.begin_write().unwrap();
        {
            let mut p = Packer::new(&tx).unwrap();
            f(&mut p);
            p.finish().unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn entries_are_packed_replaced_removed_and_the_space_won_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let n = 200;
        let mut want = std::collections::BTreeMap::new();
        for round in 0..30 {
            commit(&db, |p| {
                // Each round rewrites a different third of the ids, some twice in the
                // same transaction, and removes a few.
                for id in (0..n).filter(|i| (i + round) % 3 == 0) {
                    let v = value(id, round, 900 + (id * 37 + round * 11) % 900);
                    p.put(&format!("a{id:04}"), &v).unwrap();
                    want.insert(format!("a{id:04}"), v);
                }
                for id in (0..n).filter(|i| (i + round) % 17 == 0) {
                    let v = value(id, round + 1000, 1200);
                    p.put(&format!("a{id:04}"), &v).unwrap();
                    want.insert(format!("a{id:04}"), v);
                }
                for id in (0..n).filter(|i| (i * 7 + round) % 41 == 0) {
                    p.remove(&format!("a{id:04}")).unwrap();
                    want.remove(&format!("a{id:04}"));
                }
            });
            let got: std::collections::BTreeMap<String, Vec<u8>> =
                read_all(&db).into_iter().collect();
            assert_eq!(got, want, "round {round}");
            let (chunks, bytes) = check_counts(&db);
            let live: usize = want.iter().map(|(k, v)| HEADER + k.len() + v.len()).sum();
            // Every chunk but the open one is at least three-quarters live.
            assert!(
                (bytes as usize) <= live * 4 / 3 + CHUNK_BYTES,
                "round {round}: {bytes} bytes in chunks for {live} live"
            );
            assert!(
                chunks as usize <= live / REPACK_UNDER as usize + 2,
                "{chunks}"
            );
        }
    }

    #[test]
    fn entries_of_more_than_half_a_chunk_are_not_repacked_for_ever() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        // Each entry fills a chunk past half (no two fit) and under the repack
        // threshold, so no chunk is ever three-quarters live.
        let len = CHUNK_BYTES * 5 / 8;
        let mut want = std::collections::BTreeMap::new();
        for round in 0..4 {
            commit(&db, |p| {
                for id in 0..12 {
                    if (id + round) % 3 == 0 || round == 0 {
                        let v = value(id, round, len);
                        p.put(&format!("b{id:02}"), &v).unwrap();
                        want.insert(format!("b{id:02}"), v);
                    }
                }
                if round == 3 {
                    p.remove("b01").unwrap();
                    want.remove("b01");
                }
            });
            let got: std::collections::BTreeMap<String, Vec<u8>> =
                read_all(&db).into_iter().collect();
            assert_eq!(got, want, "round {round}");
            let (chunks, _) = check_counts(&db);
            assert_eq!(chunks as usize, want.len(), "one chunk per entry");
        }
    }

    #[test]
    fn an_entry_larger_than_a_chunk_has_one_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let big = value(1, 0, CHUNK_BYTES * 2);
        commit(&db, |p| {
            p.put("small0", &value(0, 0, 100)).unwrap();
            p.put("big", &big).unwrap();
            p.put("small2", &value(2, 0, 100)).unwrap();
        });
        // The big entry in a chunk of its own, between the two small ones' (the
        // chunk sealed when the big one came holds no dead entry: not repacked).
        assert_eq!(check_counts(&db).0, 3);
        let got: std::collections::BTreeMap<String, Vec<u8>> = read_all(&db).into_iter().collect();
        assert_eq!(got["big"], big);
        commit(&db, |p| p.remove("big").unwrap());
        assert_eq!(check_counts(&db).0, 2, "the big entry's chunk is gone");
        assert_eq!(read_all(&db).len(), 2);
    }

    #[test]
    fn a_damaged_entry_or_index_is_an_error_not_a_panic() {
        let mut chunk = Vec::new();
        chunk.extend_from_slice(&3u32.to_le_bytes());
        chunk.extend_from_slice(&2u32.to_le_bytes());
        chunk.extend_from_slice(b"abcxy");
        assert_eq!(entry(&chunk, (0, 0, 13), "abc").unwrap(), b"xy");
        assert!(entry(&chunk, (0, 0, 13), "abd").is_err());
        assert!(entry(&chunk, (0, 0, 12), "abc").is_err());
        assert!(entry(&chunk, (0, 4, 13), "abc").is_err());
        assert!(entry(&chunk, (0, u32::MAX, u32::MAX), "abc").is_err());
        let mut bad = chunk.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(entry(&bad, (0, 0, 13), "abc").is_err());
        let all: Vec<_> = entries(&bad).collect();
        assert_eq!(all.len(), 1);
        assert!(all[0].is_err());
    }
}
