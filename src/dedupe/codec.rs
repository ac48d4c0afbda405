//! How every value of the state is laid out in its redb table (layout version 2):
//! [postcard](https://docs.rs/postcard) for the structure, SHA-256 digests as their 32
//! bytes, and a [`Snapshot`] compressed with zstd when that makes it smaller. Also the
//! JSON encoding of layout version 1, which the migration at open reads
//! (`migrate.rs`).
//!
//! A snapshot value starts with one tag byte: [`SNAPSHOT_PLAIN`] (the postcard bytes
//! follow), [`SNAPSHOT_ZSTD`] (one zstd frame of them follows) or [`SNAPSHOT_DICT`]
//! (one zstd frame made with the state's [`SnapshotDict`], layout version 3). Every
//! other value is postcard bytes alone. Values are built before the write transaction
//! that stores them begins ([`Encoded`]), so the transaction only copies bytes.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

use super::{ArticleState, Committed, FileEntry, Pending};
use crate::diff::Snapshot;
use crate::record::Stamp;

/// zstd level of snapshots. On real snapshots (a few KB of text each) higher levels
/// shrink them by only 0.3 to 1.2 points more, for 1.2 to 3 times the committer's time.
pub const ZSTD_LEVEL: i32 = 1;
/// zstd level of snapshots compressed with the state's dictionary: level 3 finds
/// more of the dictionary's matches (about 15 % smaller than level 1 with the same
/// dictionary) at a cost that stays small beside the rest of a commit.
pub const DICT_LEVEL: i32 = 3;

/// Tag byte of a snapshot stored as plain postcard bytes.
pub const SNAPSHOT_PLAIN: u8 = 0;
/// Tag byte of a snapshot stored as a zstd frame of its postcard bytes.
pub const SNAPSHOT_ZSTD: u8 = 1;
/// Tag byte of a snapshot stored as a zstd frame made with the state's dictionary.
pub const SNAPSHOT_DICT: u8 = 2;

/// The most bytes a trained snapshot dictionary takes.
pub const DICT_MAX_BYTES: usize = 112 * 1024;

/// A zstd dictionary trained on a state's own snapshots (stored in its `meta` table
/// under `snapshot_dict`). A snapshot is a few KB of text, too little for zstd to
/// learn much from on its own; the words, names and turns of phrase that recur from
/// one article to the next are in the dictionary instead, which makes each snapshot
/// about a third smaller.
pub struct SnapshotDict {
    bytes: Vec<u8>,
    /// Tells this dictionary's per-thread contexts from another state's.
    key: u64,
}

impl std::fmt::Debug for SnapshotDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotDict")
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl SnapshotDict {
    /// A dictionary from its stored bytes (as [`SnapshotDict::bytes`] gave them).
    pub fn from_bytes(bytes: Vec<u8>) -> SnapshotDict {
        // Never 0, the key of "no dictionary".
        let key = crate::hash::fnv1a_bytes(bytes.iter().copied()) | 1;
        SnapshotDict { bytes, key }
    }

    /// Trains a dictionary on stored snapshot values (any tag). Values that do not
    /// decode are damage, as anywhere else.
    pub fn train<'v>(
        values: impl IntoIterator<Item = &'v [u8]>,
    ) -> Result<SnapshotDict, CodecError> {
        let mut samples = Vec::new();
        for v in values {
            samples.push(snapshot_plain(v, None)?);
        }
        let bytes = zstd::dict::from_samples(&samples, DICT_MAX_BYTES).map_err(CodecError::Zstd)?;
        Ok(SnapshotDict::from_bytes(bytes))
    }

    /// The stored bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A stored value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The postcard layer failed (a value that does not decode: not what this
    /// program wrote).
    #[error("postcard: {0}")]
    Postcard(#[source] postcard::Error),
    /// zstd failed to compress or decompress a snapshot.
    #[error("zstd: {0}")]
    Zstd(#[source] std::io::Error),
    /// A snapshot value is empty or starts with an unknown tag byte.
    #[error("snapshot value with unknown tag {0:?}")]
    Tag(Option<u8>),
    /// A snapshot was made with a dictionary the state does not hold.
    #[error("snapshot made with a dictionary the state does not hold")]
    NoDict,
    /// A packed snapshot entry, or the index entry that points to it, is not what
    /// this program wrote (`pack.rs`).
    #[error("snapshot chunk: {0}")]
    Chunk(&'static str),
    /// A value of a layout-version-1 state is not the JSON that version wrote.
    #[error("layout-1 value: {0}")]
    Json(#[source] serde_json::Error),
}

impl From<postcard::Error> for CodecError {
    fn from(e: postcard::Error) -> Self {
        CodecError::Postcard(e)
    }
}

/// A SHA-256 in lowercase hex as its 32 bytes; any other text as it is, so that
/// decoding gives back exactly the string that was encoded.
#[derive(Serialize, Deserialize)]
enum Digest<S> {
    Raw([u8; 32]),
    Text(S),
}

impl<'a> Digest<&'a str> {
    fn of(s: &'a str) -> Digest<&'a str> {
        let mut raw = [0u8; 32];
        let lower_hex = s.len() == 64
            && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && hex::decode_to_slice(s, &mut raw).is_ok();
        if lower_hex {
            Digest::Raw(raw)
        } else {
            Digest::Text(s)
        }
    }
}

impl Digest<String> {
    fn into_text(self) -> String {
        match self {
            Digest::Raw(raw) => hex::encode(raw),
            Digest::Text(s) => s,
        }
    }
}

#[derive(Serialize)]
struct ArticleOut<'a> {
    stamp: &'a Option<Stamp>,
    revision: u32,
    content_hash: Digest<&'a str>,
    touched: i64,
}

#[derive(Deserialize)]
struct ArticleIn {
    stamp: Option<Stamp>,
    revision: u32,
    content_hash: Digest<String>,
    touched: i64,
}

#[derive(Serialize)]
struct FileOut<'a> {
    size: u64,
    mtime_ns: i128,
    sha256: Option<Digest<&'a str>>,
}

#[derive(Deserialize)]
struct FileIn {
    size: u64,
    mtime_ns: i128,
    sha256: Option<Digest<String>>,
}

/// The stored bytes of an [`ArticleState`].
pub fn encode_article(a: &ArticleState) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_allocvec(&ArticleOut {
        stamp: &a.stamp,
        revision: a.revision,
        content_hash: Digest::of(&a.content_hash),
        touched: a.touched,
    })?)
}

/// The [`ArticleState`] of stored bytes.
pub fn decode_article(bytes: &[u8]) -> Result<ArticleState, CodecError> {
    let a: ArticleIn = postcard::from_bytes(bytes)?;
    Ok(ArticleState {
        stamp: a.stamp,
        revision: a.revision,
        content_hash: a.content_hash.into_text(),
        touched: a.touched,
    })
}

/// The stored bytes of a [`FileEntry`].
pub fn encode_file(f: &FileEntry) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_allocvec(&FileOut {
        size: f.size,
        mtime_ns: f.mtime_ns,
        sha256: f.sha256.as_deref().map(Digest::of),
    })?)
}

/// The [`FileEntry`] of stored bytes.
pub fn decode_file(bytes: &[u8]) -> Result<FileEntry, CodecError> {
    let f: FileIn = postcard::from_bytes(bytes)?;
    Ok(FileEntry {
        size: f.size,
        mtime_ns: f.mtime_ns,
        sha256: f.sha256.map(Digest::into_text),
    })
}

/// The stored bytes of a committed output position.
pub fn encode_committed(c: &Committed) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_allocvec(c)?)
}

/// The committed output position of stored bytes.
pub fn decode_committed(bytes: &[u8]) -> Result<Committed, CodecError> {
    Ok(postcard::from_bytes(bytes)?)
}

thread_local! {
    /// One zstd context per thread (the committer's), reused for every snapshot, with
    /// the key of the dictionary loaded into it (0: none).
    static COMPRESSOR: RefCell<Option<(u64, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// One zstd decoding context per thread that reads snapshots (making one costs
    /// more than decoding a snapshot of a few KB), with its dictionary's key.
    static DECOMPRESSOR: RefCell<Option<(u64, zstd::bulk::Decompressor<'static>)>> =
        const { RefCell::new(None) };
}

/// The largest decoded size a snapshot frame may declare to be decoded in one buffer
/// of that size; a frame that declares more (or no size) is decoded as a stream, so
/// a damaged size field cannot make the reader allocate it.
const MAX_DECLARED: u64 = 64 << 20;

/// The bytes to load into a zstd context: the dictionary's, or none (an empty
/// dictionary is zstd's "no dictionary").
fn dict_bytes(dict: Option<&SnapshotDict>) -> &[u8] {
    dict.map_or(&[], |d| d.bytes.as_slice())
}

/// Runs `f` on this thread's zstd context in `cell`, made by `make` when the cell
/// holds none yet, or one loaded with another dictionary than `dict`.
fn with_context<C, T>(
    cell: &'static std::thread::LocalKey<RefCell<Option<(u64, C)>>>,
    dict: Option<&SnapshotDict>,
    make: impl FnOnce() -> std::io::Result<C>,
    f: impl FnOnce(&mut C) -> std::io::Result<T>,
) -> Result<T, CodecError> {
    let key = dict.map_or(0, |d| d.key);
    cell.with(|c| {
        let mut c = c.borrow_mut();
        let ctx = match &mut *c {
            Some((k, ctx)) if *k == key => ctx,
            slot => &mut slot.insert((key, make().map_err(CodecError::Zstd)?)).1,
        };
        f(ctx).map_err(CodecError::Zstd)
    })
}

fn compress(plain: &[u8], dict: Option<&SnapshotDict>) -> Result<Vec<u8>, CodecError> {
    let level = if dict.is_some() {
        DICT_LEVEL
    } else {
        ZSTD_LEVEL
    };
    with_context(
        &COMPRESSOR,
        dict,
        || zstd::bulk::Compressor::with_dictionary(level, dict_bytes(dict)),
        |c| c.compress(plain),
    )
}

fn decompress(body: &[u8], dict: Option<&SnapshotDict>) -> Result<Vec<u8>, CodecError> {
    match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(n)) if n <= MAX_DECLARED => with_context(
            &DECOMPRESSOR,
            dict,
            || zstd::bulk::Decompressor::with_dictionary(dict_bytes(dict)),
            |d| d.decompress(body, n as usize),
        ),
        _ => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::with_dictionary(body, dict_bytes(dict))
                .and_then(|mut d| std::io::copy(&mut d, &mut out))
                .map_err(CodecError::Zstd)?;
            Ok(out)
        }
    }
}

/// The stored bytes of a [`Snapshot`]: its postcard bytes behind a tag byte,
/// compressed with zstd (with `dict`, when the state has one) when that makes them
/// smaller.
pub fn encode_snapshot(s: &Snapshot, dict: Option<&SnapshotDict>) -> Result<Vec<u8>, CodecError> {
    let plain = postcard::to_allocvec(s)?;
    let packed = compress(&plain, dict)?;
    let (tag, body) = if packed.len() >= plain.len() {
        (SNAPSHOT_PLAIN, plain.as_slice())
    } else if dict.is_some() {
        (SNAPSHOT_DICT, packed.as_slice())
    } else {
        (SNAPSHOT_ZSTD, packed.as_slice())
    };
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(tag);
    out.extend_from_slice(body);
    Ok(out)
}

/// The postcard bytes of a stored snapshot.
fn snapshot_plain(bytes: &[u8], dict: Option<&SnapshotDict>) -> Result<Vec<u8>, CodecError> {
    match bytes.split_first() {
        Some((&SNAPSHOT_PLAIN, body)) => Ok(body.to_vec()),
        Some((&SNAPSHOT_ZSTD, body)) => decompress(body, None),
        Some((&SNAPSHOT_DICT, body)) => match dict {
            Some(d) => decompress(body, Some(d)),
            None => Err(CodecError::NoDict),
        },
        Some((&tag, _)) => Err(CodecError::Tag(Some(tag))),
        None => Err(CodecError::Tag(None)),
    }
}

/// The [`Snapshot`] of stored bytes; `dict` is the state's dictionary, if it has one.
pub fn decode_snapshot(bytes: &[u8], dict: Option<&SnapshotDict>) -> Result<Snapshot, CodecError> {
    match bytes.split_first() {
        Some((&SNAPSHOT_PLAIN, body)) => Ok(postcard::from_bytes(body)?),
        _ => Ok(postcard::from_bytes(&snapshot_plain(bytes, dict)?)?),
    }
}

/// The decoding of layout version 1, where every value was the JSON of its type
/// (`serde_json`). Only the migration at open reads it.
pub mod v1 {
    use super::CodecError;
    use serde::Deserialize;

    /// A value of a layout-1 state.
    pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(CodecError::Json)
    }
}

/// One batch's values, encoded before the write transaction begins: keys borrowed
/// from the [`Pending`] batch, values as their stored bytes.
#[derive(Debug)]
pub struct Encoded<'a> {
    /// `articles` rows with each one's `touched` second (for `expiry`).
    pub articles: Vec<(&'a str, Vec<u8>, i64)>,
    /// `snapshots` rows.
    pub snapshots: Vec<(&'a str, Vec<u8>)>,
    /// `files` rows.
    pub files: Vec<(&'a [u8], Vec<u8>)>,
    /// `contents` rows: raw SHA-256 and the second it was judged.
    pub contents: Vec<&'a ([u8; 32], i64)>,
    /// The records output's committed position.
    pub output: Option<Vec<u8>>,
    /// The rejects output's committed position.
    pub rejects: Option<Vec<u8>>,
}

impl<'a> Encoded<'a> {
    /// Encodes every value of a batch (snapshots with the state's dictionary, when
    /// it has one), each table's rows in key order: the transaction then inserts
    /// consecutive keys, which land on the same B-tree leaf while it is still in
    /// cache, instead of a hash map's random order. `files` and `contents` sort
    /// stably, so rows of one path or one digest keep their order and the last still
    /// wins.
    pub fn of(p: &'a Pending, dict: Option<&SnapshotDict>) -> Result<Encoded<'a>, CodecError> {
        let mut enc = Encoded {
            articles: p
                .articles
                .iter()
                .map(|(id, st)| Ok((id.as_str(), encode_article(st)?, st.touched)))
                .collect::<Result<_, CodecError>>()?,
            snapshots: p
                .snapshots
                .iter()
                .map(|(id, s)| Ok((id.as_str(), encode_snapshot(s, dict)?)))
                .collect::<Result<_, CodecError>>()?,
            files: p
                .files
                .iter()
                .map(|(path, e)| Ok((path.as_slice(), encode_file(e)?)))
                .collect::<Result<_, CodecError>>()?,
            contents: p.contents.iter().collect(),
            output: p.output.as_ref().map(encode_committed).transpose()?,
            rejects: p.rejects.as_ref().map(encode_committed).transpose()?,
        };
        enc.articles.sort_unstable_by(|a, b| a.0.cmp(b.0));
        enc.snapshots.sort_unstable_by(|a, b| a.0.cmp(b.0));
        enc.files.sort_by(|a, b| a.0.cmp(b.0));
        enc.contents.sort_by_key(|c| c.0);
        Ok(enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            lede: "Le maire a annoncé lundi un plan de 12 M$ pour le port.".into(),
            headings: vec!["Réactions".into()],
            paragraphs: (0..8)
                .map(|i| {
                    format!(
                        "Paragraph {i} of the story, with “quotes” and été: the council met again."
                    )
                })
                .collect(),
            people: vec!["Valérie Plante".into()],
            places: vec!["Montréal".into(), "Québec".into()],
            organizations: vec![],
            quotes: vec![0, 1, u64::MAX, 0x9e37_79b9_7f4a_7c15],
            word_count: 123,
        }
    }

    #[test]
    fn every_value_round_trips() {
        let a = ArticleState {
            stamp: Stamp::parse("2022-10-02T22:23:00-04:00"),
            revision: 3,
            content_hash: "ab".repeat(32),
            touched: -5,
        };
        assert_eq!(decode_article(&encode_article(&a).unwrap()).unwrap(), a);
        // Not lowercase hex: kept as text, given back as it was.
        for odd in ["AB".repeat(32), "xyz".into(), String::new()] {
            let b = ArticleState {
                content_hash: odd,
                stamp: Stamp::parse("2022-10-02"),
                ..a.clone()
            };
            assert_eq!(decode_article(&encode_article(&b).unwrap()).unwrap(), b);
        }
        for sha in [Some("0f".repeat(32)), Some("not hex".into()), None] {
            let f = FileEntry {
                size: u64::MAX,
                mtime_ns: -1_234_567_890_123_456_789,
                sha256: sha,
            };
            assert_eq!(decode_file(&encode_file(&f).unwrap()).unwrap(), f);
        }
        let c = Committed {
            offset: 1 << 40,
            identity: Some((64769, 12345)),
        };
        assert_eq!(decode_committed(&encode_committed(&c).unwrap()).unwrap(), c);
        let s = snapshot();
        let bytes = encode_snapshot(&s, None).unwrap();
        assert_eq!(bytes[0], SNAPSHOT_ZSTD);
        assert_eq!(decode_snapshot(&bytes, None).unwrap(), s);
        // Too short to gain from zstd: stored plain.
        let tiny = Snapshot::default();
        let bytes = encode_snapshot(&tiny, None).unwrap();
        assert_eq!(bytes[0], SNAPSHOT_PLAIN);
        assert_eq!(decode_snapshot(&bytes, None).unwrap(), tiny);
    }

    #[test]
    fn a_batch_is_encoded_in_key_order_and_a_path_keeps_its_order() {
        let entry = |size| FileEntry {
            size,
            mtime_ns: 0,
            sha256: None,
        };
        let article = |touched| ArticleState {
            stamp: None,
            revision: 1,
            content_hash: "00".repeat(32),
            touched,
        };
        let mut p = Pending::default();
        for (id, touched) in [("c", 3), ("a", 1), ("b", 2)] {
            p.articles.insert(id.into(), article(touched));
            p.snapshots.insert(id.into(), snapshot());
        }
        p.files = vec![
            (b"b".to_vec(), entry(1)),
            (b"a".to_vec(), entry(2)),
            (b"b".to_vec(), entry(3)),
        ];
        let enc = Encoded::of(&p, None).unwrap();
        let ids: Vec<&str> = enc.articles.iter().map(|a| a.0).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(enc.articles[2].2, 3);
        let ids: Vec<&str> = enc.snapshots.iter().map(|s| s.0).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let files: Vec<(&[u8], u64)> = enc
            .files
            .iter()
            .map(|(k, v)| (*k, decode_file(v).unwrap().size))
            .collect();
        let want: [(&[u8], u64); 3] = [(b"a", 2), (b"b", 1), (b"b", 3)];
        assert_eq!(files, want);
        p.contents = vec![([2; 32], 1), ([1; 32], 2), ([2; 32], 3)];
        let enc = Encoded::of(&p, None).unwrap();
        let contents: Vec<([u8; 32], i64)> = enc.contents.iter().map(|c| **c).collect();
        assert_eq!(contents, [([1; 32], 2), ([2; 32], 1), ([2; 32], 3)]);
    }

    #[test]
    fn a_frame_without_a_declared_size_decodes_as_a_stream() {
        let s = snapshot();
        let plain = postcard::to_allocvec(&s).unwrap();
        // A streaming encoder, not told the size, does not write it in the frame.
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).unwrap();
        for part in plain.chunks(7) {
            std::io::Write::write_all(&mut enc, part).unwrap();
        }
        let frame = enc.finish().unwrap();
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&frame),
            Ok(None)
        ));
        let mut bytes = vec![SNAPSHOT_ZSTD];
        bytes.extend_from_slice(&frame);
        // The thread's context is reused across both kinds of frame.
        let sized = encode_snapshot(&s, None).unwrap();
        for _ in 0..3 {
            assert_eq!(decode_snapshot(&bytes, None).unwrap(), s);
            assert_eq!(decode_snapshot(&sized, None).unwrap(), s);
        }
    }

    #[test]
    fn a_bad_value_is_an_error_not_a_panic() {
        assert!(matches!(
            decode_snapshot(&[], None),
            Err(CodecError::Tag(None))
        ));
        assert!(matches!(
            decode_snapshot(&[7, 1], None),
            Err(CodecError::Tag(Some(7)))
        ));
        assert!(matches!(
            decode_snapshot(&[SNAPSHOT_ZSTD, 1, 2, 3], None),
            Err(CodecError::Zstd(_))
        ));
        let mut bytes = encode_snapshot(&snapshot(), None).unwrap();
        bytes.truncate(bytes.len() / 2);
        assert!(decode_snapshot(&bytes, None).is_err());
        assert!(decode_article(&[0xff; 3]).is_err());
        assert!(decode_file(&[]).is_err());
        assert!(matches!(
            v1::decode::<Committed>(b"{"),
            Err(CodecError::Json(_))
        ));
    }
}
