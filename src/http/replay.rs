//! Replay for `/events` and `/api/story`: the records of the daemon's own output
//! file (and its rotated copies) after a position, since a time or from the start,
//! up to the position where the live broadcast takes over ([`Replay`]).
//!
//! The files are found from the configured output path only (never a path from a
//! request): the file at the path and its rotated siblings (`<name>.*`), in the
//! order they were written (modification time, then name), each told apart by its
//! device and inode, which a rotation by rename keeps. They are all opened when the
//! replay is planned, so a rotation during the replay changes nothing.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use jiff::Timestamp;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};

use super::backward::lines_back;
use super::query::Since;
use crate::pipeline::Position;

/// The record field a time `since` compares with: a record is replayed when this
/// moment is at or after the time.
pub const TIME_FIELD: &str = "capture_time";

/// A record's moment for a time `since` (none when it has no [`TIME_FIELD`]).
pub fn record_time(record: &Value) -> Option<Timestamp> {
    record.get(TIME_FIELD)?.as_str()?.parse().ok()
}

/// True when the record's moment is at or after `t` (a record without one is not).
pub fn captured_since(record: &Value, t: Timestamp) -> bool {
    record_time(record).is_some_and(|r| r >= t)
}

/// The note of a replay whose hand-over file is gone.
const GONE: &str = "the output file the live stream continues from is gone; nothing to replay";

/// One output file to read, opened.
#[derive(Debug)]
struct Part {
    file: File,
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// Where to start.
    from: u64,
    /// Where to stop (the live hand-over), or the end of the file.
    to: Option<u64>,
}

/// What a replay reads: the parts of the output files between the start and the
/// hand-over, in order.
#[derive(Debug)]
pub struct Replay {
    /// Records found already ([`Replay::last`]), handed out first.
    ready: VecDeque<(Position, String, Value)>,
    parts: std::vec::IntoIter<Part>,
    current: Option<Current>,
    /// Records before this moment are skipped (a time `since`).
    after: Option<Timestamp>,
    /// Why the replay starts earlier or ends sooner than asked, for a comment line.
    pub note: Option<String>,
}

#[derive(Debug)]
struct Current {
    reader: BufReader<tokio::io::Take<tokio::fs::File>>,
    path: PathBuf,
    dev: u64,
    ino: u64,
    offset: u64,
}

/// An output file found on disk, opened.
struct Found {
    file: File,
    path: PathBuf,
    dev: u64,
    ino: u64,
    mtime: SystemTime,
}

/// The output at `path` and its rotated copies that can be opened, oldest first.
fn files(path: &Path) -> Vec<Found> {
    let open = |p: PathBuf| -> Option<Found> {
        let file = File::open(&p).ok()?;
        let m = file.metadata().ok()?;
        m.is_file().then(|| Found {
            mtime: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            dev: m.dev(),
            ino: m.ino(),
            file,
            path: p,
        })
    };
    let mut rotated: Vec<Found> = crate::sink::rotated_siblings(path)
        .into_iter()
        .filter_map(|e| open(e.path()))
        .collect();
    rotated.sort_by(|a, b| (a.mtime, &a.path).cmp(&(b.mtime, &b.path)));
    rotated.extend(open(path.to_owned()));
    let mut seen = std::collections::HashSet::new();
    rotated.retain(|f| seen.insert((f.dev, f.ino)));
    rotated
}

impl Replay {
    /// Plans the replay of the output at `path` from `since` up to `upto` (the
    /// position the live broadcast starts after).
    pub fn plan(path: &Path, since: Since, upto: Position) -> Replay {
        let found = files(path);
        let index = |p: &Position| found.iter().position(|f| f.dev == p.dev && f.ino == p.ino);
        let mut note = None;
        let Some(last) = index(&upto) else {
            return Replay {
                ready: VecDeque::new(),
                parts: Vec::new().into_iter(),
                current: None,
                after: None,
                note: Some(GONE.into()),
            };
        };
        let (first, from, after) = match since {
            Since::Id(p) => match index(&p) {
                Some(i) if i <= last => (i, p.offset, None),
                Some(_) => (last + 1, 0, None),
                None => {
                    note = Some(format!(
                        "the output file of event {p} is gone (rotated away and deleted?); replaying from the oldest output still there"
                    ));
                    (0, 0, None)
                }
            },
            Since::Time(t) => (0, 0, Some(t)),
            // Everything (`Replay::last` reads the last ones from the end).
            Since::Last(_) => (0, 0, None),
        };
        let mut parts = Vec::new();
        for (i, f) in found.into_iter().enumerate().take(last + 1).skip(first) {
            // A file last written before the time holds no record captured after it.
            if let Some(t) = after {
                if i < last && Timestamp::try_from(f.mtime).is_ok_and(|m| m < t) {
                    continue;
                }
            }
            parts.push(Part {
                from: if i == first { from } else { 0 },
                to: (i == last).then_some(upto.offset),
                file: f.file,
                path: f.path,
                dev: f.dev,
                ino: f.ino,
            });
        }
        Replay {
            ready: VecDeque::new(),
            parts: parts.into_iter(),
            current: None,
            after,
            note,
        }
    }

    /// The replay of the last `n` records up to `upto` that `keep` accepts, found by
    /// reading the output at `path` (and then its rotated copies) from the end, so
    /// that the cost follows `n` and how many records `keep` turns down, not the
    /// size of the output.
    pub fn last(
        path: &Path,
        upto: Position,
        n: usize,
        mut keep: impl FnMut(&Value) -> bool,
    ) -> Replay {
        let mut ready = VecDeque::new();
        let read = back_through(path, upto, |pos, line| {
            let Ok(value) = serde_json::from_slice::<Value>(line) else {
                return ControlFlow::Continue(());
            };
            if !keep(&value) {
                return ControlFlow::Continue(());
            }
            let line = String::from_utf8_lossy(line).into_owned();
            ready.push_front((pos, line, value));
            if ready.len() >= n {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let note = match read {
            Ok(true) => None,
            Ok(false) => Some(GONE.into()),
            Err(e) => Some(format!("{e}; replaying the later records only")),
        };
        Replay {
            ready,
            parts: Vec::new().into_iter(),
            current: None,
            after: None,
            note,
        }
    }

    /// Plans the replay of every record of the output at `path` up to `upto`.
    #[cfg(test)]
    pub fn from_start(path: &Path, upto: Position) -> Replay {
        Replay::plan(path, Since::Last(usize::MAX), upto)
    }

    /// The next record to replay: its position (the offset past its line) and its
    /// line, parsed. Lines that are not JSON are skipped, and so are records before
    /// a time `since`. `None` at the hand-over.
    pub async fn next(&mut self) -> Result<Option<(Position, String, Value)>, String> {
        if let Some(r) = self.ready.pop_front() {
            return Ok(Some(r));
        }
        let mut buf = Vec::new();
        loop {
            let Some(cur) = self.current.as_mut() else {
                let Some(part) = self.parts.next() else {
                    return Ok(None);
                };
                let mut file = tokio::fs::File::from_std(part.file);
                let io = |e: std::io::Error| format!("{}: {e}", part.path.display());
                file.seek(std::io::SeekFrom::Start(part.from))
                    .await
                    .map_err(io)?;
                let limit = part.to.map_or(u64::MAX, |to| to.saturating_sub(part.from));
                self.current = Some(Current {
                    reader: BufReader::with_capacity(1 << 16, file.take(limit)),
                    path: part.path,
                    dev: part.dev,
                    ino: part.ino,
                    offset: part.from,
                });
                continue;
            };
            buf.clear();
            let n = cur
                .reader
                .read_until(b'\n', &mut buf)
                .await
                .map_err(|e| format!("{}: {e}", cur.path.display()))?;
            if n == 0 || buf.last() != Some(&b'\n') {
                // The end of this part (an incomplete last line is not a record).
                self.current = None;
                continue;
            }
            cur.offset += n as u64;
            let pos = Position {
                dev: cur.dev,
                ino: cur.ino,
                offset: cur.offset,
            };
            let line = &buf[..n - 1];
            let Ok(value) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            if let Some(t) = self.after {
                if !captured_since(&value, t) {
                    continue;
                }
            }
            return Ok(Some((
                pos,
                String::from_utf8_lossy(line).into_owned(),
                value,
            )));
        }
    }
}

/// Every version of story `article_id` in the output and its rotated copies up to
/// `upto`, oldest first, with its position: read from the end back (skipping
/// without parsing the lines that do not hold the id), and only as far as the
/// story's first version (`revision` 1), so that a recent story costs the records
/// after it, not the whole output. A file that cannot be read ends the search: an
/// error when no version was found before it.
pub fn story(path: &Path, upto: Position, article_id: &str) -> io::Result<Vec<(Position, Value)>> {
    let needle = format!("\"article_id\":\"{article_id}\"");
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let mut versions = VecDeque::new();
    let read = back_through(path, upto, |pos, line| {
        if finder.find(line).is_none() {
            return ControlFlow::Continue(());
        }
        let Ok(record) = serde_json::from_slice::<Value>(line) else {
            return ControlFlow::Continue(());
        };
        if record["article_id"].as_str() != Some(article_id) {
            return ControlFlow::Continue(());
        }
        let first = record["revision"].as_u64() == Some(1);
        versions.push_front((pos, record));
        if first {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    match read {
        Ok(_) => {}
        // Nothing read at all: an error; some versions found: those.
        Err(e) if versions.is_empty() => return Err(io::Error::other(e)),
        Err(e) => {
            tracing::warn!("/api/story: {e}; the older versions are left out");
        }
    }
    Ok(versions.into())
}

/// Calls `each` with every complete line of the output at `path` up to `upto`, then
/// of its rotated copies, newest first, with the line's position (the offset past
/// it), until `each` breaks. `Ok(false)` when the file of `upto` is gone (nothing
/// read); the error names the file that could not be read (the newer ones were).
fn back_through(
    path: &Path,
    upto: Position,
    mut each: impl FnMut(Position, &[u8]) -> ControlFlow<()>,
) -> Result<bool, String> {
    let found = files(path);
    let Some(last) = found
        .iter()
        .position(|f| f.dev == upto.dev && f.ino == upto.ino)
    else {
        return Ok(false);
    };
    for (i, f) in found.iter().enumerate().take(last + 1).rev() {
        let to = if i == last {
            upto.offset
        } else {
            f.file.metadata().map_or(0, |m| m.len())
        };
        let read = lines_back(&f.file, 0, to, |past, line| {
            let pos = Position {
                dev: f.dev,
                ino: f.ino,
                offset: past,
            };
            each(pos, line)
        });
        match read {
            Ok(ControlFlow::Break(())) => break,
            Ok(ControlFlow::Continue(())) => {}
            Err(e) => return Err(format!("cannot read {} ({e})", f.path.display())),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(path: &Path, offset: u64) -> Position {
        let m = std::fs::metadata(path).unwrap();
        Position {
            dev: m.dev(),
            ino: m.ino(),
            offset,
        }
    }

    async fn all(mut r: Replay) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        while let Some((p, line, _)) = r.next().await.unwrap() {
            out.push((p.offset, line));
        }
        out
    }

    #[tokio::test]
    async fn replays_after_a_position_up_to_the_hand_over_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("articles.jsonl");
        let rotated = dir.path().join("articles.jsonl.20260101T000000.000Z");
        std::fs::write(&out, "{\"n\":1}\n{\"n\":2}\nnot json\n{\"n\":3}\n").unwrap();
        let after_first = id(&out, 8);
        std::fs::rename(&out, &rotated).unwrap();
        std::fs::write(&out, "{\"n\":4}\n{\"n\":5}\n{\"n\":6}\n").unwrap();
        let upto = id(&out, 16);
        let got = all(Replay::plan(&out, Since::Id(after_first), upto)).await;
        let lines: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(lines, ["{\"n\":2}", "{\"n\":3}", "{\"n\":4}", "{\"n\":5}"]);
        assert_eq!(got[0].0, 16);
        assert_eq!(got[3].0, 16);
        // From the hand-over itself: nothing.
        assert!(all(Replay::plan(&out, Since::Id(upto), upto))
            .await
            .is_empty());
        // A position whose file is gone: everything still there, with a note.
        let gone = Position {
            ino: 1,
            dev: 1,
            offset: 0,
        };
        let r = Replay::plan(&out, Since::Id(gone), upto);
        assert!(r.note.is_some());
        assert_eq!(all(r).await.len(), 5);
    }

    #[tokio::test]
    async fn the_last_matching_records_are_read_from_the_end_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("articles.jsonl");
        let rotated = dir.path().join("articles.jsonl.20260101T000000.000Z");
        // A rotated copy cut in the middle of a line: that line is not a record.
        std::fs::write(
            &rotated,
            "{\"n\":1,\"k\":1}\n{\"n\":2}\n{\"n\":3,\"k\":1}\n{\"n\":9",
        )
        .unwrap();
        let text = "{\"n\":4}\nnot json\n{\"n\":5,\"k\":1}\n{\"n\":6}\n";
        std::fs::write(&out, text).unwrap();
        // The hand-over before the last line: it is not replayed.
        let upto = id(&out, (text.len() - "{\"n\":6}\n".len()) as u64);
        let keyed = |v: &Value| v.get("k").is_some();
        let ns = |r: Replay| -> Vec<u64> {
            r.ready
                .iter()
                .map(|(_, _, v)| v["n"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(ns(Replay::last(&out, upto, 2, keyed)), [3, 5]);
        assert_eq!(ns(Replay::last(&out, upto, 10, keyed)), [1, 3, 5]);
        assert_eq!(ns(Replay::last(&out, upto, 3, |_| true)), [3, 4, 5]);
        // Positions are those a replay from the start gives.
        let want = all(Replay::from_start(&out, upto)).await;
        let got = all(Replay::last(&out, upto, 10, |_| true)).await;
        assert_eq!(got, want);
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn a_story_is_read_back_to_its_first_version_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("articles.jsonl");
        let rotated = dir.path().join("articles.jsonl.20260101T000000.000Z");
        // An older run of the same id (before its state expired), then its first
        // version; another story; a text that names the id without being it.
        std::fs::write(
            &rotated,
            "{\"article_id\":\"a1\",\"revision\":2,\"n\":0}\n{\"article_id\":\"a1\",\"revision\":1,\"n\":1}\n{\"article_id\":\"b2\",\"revision\":1}\n",
        )
        .unwrap();
        let text = "{\"article_id\":\"b2\",\"lede\":\"\\\"article_id\\\":\\\"a1\\\"\",\"revision\":2}\n{\"article_id\":\"a1\",\"revision\":2,\"n\":2}\nnot json\n{\"article_id\":\"a1\",\"revision\":3,\"n\":3}\n";
        std::fs::write(&out, text).unwrap();
        let end = id(&out, text.len() as u64);
        let ns = |v: Vec<(Position, Value)>| -> Vec<u64> {
            v.iter().map(|(_, r)| r["n"].as_u64().unwrap()).collect()
        };
        assert_eq!(ns(story(&out, end, "a1").unwrap()), [1, 2, 3]);
        // Up to the hand-over only.
        let before_last = id(
            &out,
            (text.len() - "{\"article_id\":\"a1\",\"revision\":3,\"n\":3}\n".len()) as u64,
        );
        assert_eq!(ns(story(&out, before_last, "a1").unwrap()), [1, 2]);
        // Positions are those of /events.
        let v = story(&out, end, "a1").unwrap();
        assert_eq!(v[2].0, end);
        assert_eq!(story(&out, end, "b2").unwrap().len(), 2);
        assert!(story(&out, end, "zz").unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_time_replays_the_records_captured_since() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("articles.jsonl");
        let text = "{\"capture_time\":\"2022-01-01T00:00:00Z\"}\n{\"capture_time\":\"2023-01-01T00:00:00-05:00\"}\n{}\n";
        std::fs::write(&out, text).unwrap();
        let upto = id(&out, text.len() as u64);
        let t = "2022-06-01T00:00:00Z".parse().unwrap();
        let got = all(Replay::plan(&out, Since::Time(t), upto)).await;
        assert_eq!(got.len(), 1);
        assert!(got[0].1.contains("2023"));
    }
}
