//! The source: complete lines of a JSON-lines file, followed across rotation by
//! rename, copytruncate-style truncation and a file that does not exist yet
//! ([`FileTail`]).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::printer::warn;
use super::{TailError, CHUNK, MAX_LINE_BYTES};

/// A complete line read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the file it was read from (restarts at 1 after a
    /// rotation or truncation).
    pub number: u64,
    /// The bytes, without the `\n`.
    pub bytes: Vec<u8>,
}

/// The file currently being read.
#[derive(Debug)]
struct Opened {
    file: File,
    /// (device, inode): tells a new file at the path from this one.
    identity: (u64, u64),
    /// Bytes consumed from `file` (complete lines and `pending`).
    offset: u64,
    /// An incomplete last line, waiting for its `\n`.
    pending: Vec<u8>,
    /// Dropping an over-long line until its `\n`.
    discarding: bool,
    /// Lines handed out so far.
    lines: u64,
}

impl Opened {
    fn new(file: File, path: &Path) -> Result<Opened, TailError> {
        let meta = file.metadata().map_err(|source| TailError::Read {
            path: path.to_owned(),
            source,
        })?;
        if !meta.is_file() {
            return Err(TailError::NotAFile {
                path: path.to_owned(),
            });
        }
        Ok(Opened {
            file,
            identity: (meta.dev(), meta.ino()),
            offset: 0,
            pending: Vec::new(),
            discarding: false,
            lines: 0,
        })
    }

    /// Reads one chunk; appends its complete lines to `out`. Returns the bytes read
    /// (0 at the end of the file).
    fn read_chunk(
        &mut self,
        buf: &mut [u8],
        path: &Path,
        out: &mut Vec<Line>,
    ) -> Result<usize, TailError> {
        let n = loop {
            match self.file.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TailError::Read {
                        path: path.to_owned(),
                        source,
                    })
                }
            }
        };
        self.offset += n as u64;
        let mut rest = &buf[..n];
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            rest = &tail[1..];
            self.lines += 1;
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            let mut bytes = std::mem::take(&mut self.pending);
            bytes.extend_from_slice(head);
            out.push(Line {
                number: self.lines,
                bytes,
            });
        }
        if !self.discarding {
            self.pending.extend_from_slice(rest);
            if self.pending.len() > MAX_LINE_BYTES {
                warn(format_args!(
                    "{}:{}: skipping a line longer than {MAX_LINE_BYTES} bytes",
                    path.display(),
                    self.lines + 1
                ));
                self.pending = Vec::new();
                self.discarding = true;
            }
        }
        Ok(n)
    }

    /// Back to the start (the file was truncated).
    fn rewind(&mut self, path: &Path) -> Result<(), TailError> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|source| TailError::Read {
                path: path.to_owned(),
                source,
            })?;
        self.offset = 0;
        self.pending.clear();
        self.discarding = false;
        self.lines = 0;
        Ok(())
    }
}

/// Rotated siblings of `path` (`<name>.<suffix>` in the same folder) written after the
/// file `old` (found among them by identity) and other than `new`, oldest first by
/// modification time: the files a poll missed when the output rotated more than once
/// between two polls. Empty when `old` is not among the siblings (rotated elsewhere).
fn skipped_rotations(path: &Path, old: (u64, u64), new: (u64, u64)) -> Vec<PathBuf> {
    let mut siblings: Vec<(std::time::SystemTime, PathBuf, (u64, u64))> =
        crate::sink::rotated_siblings(path)
            .into_iter()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, e.path(), (m.dev(), m.ino())))
            })
            .collect();
    siblings.sort();
    let Some(at) = siblings.iter().position(|s| s.2 == old) else {
        return Vec::new();
    };
    siblings
        .into_iter()
        .skip(at + 1)
        .filter(|s| s.2 != new && s.2 != old)
        .map(|s| s.1)
        .collect()
}

/// Reads complete lines from a file by path; with `follow`, across rotation by
/// rename, truncation, and a file that does not exist yet.
///
/// Rotation: when the path names a new file, the old one is read to its end through
/// the handle still open (records written just before the rename are not lost), then
/// the new one from offset 0. While the path is missing (renamed away, new file not
/// yet created) the old handle keeps being read. When the output rotated more than
/// once between two polls, the files in between are found among the rotated
/// siblings (`<name>.*`, ordered by modification time) and read too. Limit: a
/// copytruncate that is refilled past the old size before a poll sees the shrink
/// cannot be detected.
#[derive(Debug)]
pub struct FileTail {
    path: PathBuf,
    follow: bool,
    current: Option<Opened>,
    told_waiting: bool,
    /// Read buffer, reused across polls.
    buf: Vec<u8>,
}

impl FileTail {
    /// A reader of `path`; nothing is opened until the first [`FileTail::poll`].
    pub fn new(path: PathBuf, follow: bool) -> FileTail {
        FileTail {
            path,
            follow,
            current: None,
            told_waiting: false,
            buf: vec![0; CHUNK],
        }
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what is available (at most a chunk, or the rest of a rotated file) and
    /// appends the complete lines to `out`. Returns `true` when it made progress
    /// (read bytes or switched files), `false` when there is nothing new for now;
    /// without `follow`, `false` means the end of the file.
    pub fn poll(&mut self, out: &mut Vec<Line>) -> Result<bool, TailError> {
        let path = self.path.clone();
        let FileTail {
            follow,
            current,
            buf,
            ..
        } = self;
        let Some(cur) = current.as_mut() else {
            return self.open_first();
        };
        let len = cur
            .file
            .metadata()
            .map_err(|source| TailError::Read {
                path: path.clone(),
                source,
            })?
            .len();
        if len < cur.offset {
            warn(format_args!(
                "{}: file truncated; reading it from the start",
                path.display()
            ));
            cur.rewind(&path)?;
        }
        if cur.read_chunk(buf, &path, out)? > 0 {
            return Ok(true);
        }
        if !*follow {
            return Ok(false);
        }
        // At the end of the open file: has the path moved on to a new file?
        let now_at_path = match std::fs::metadata(&path) {
            Ok(m) => (m.dev(), m.ino()),
            // Renamed away and not re-created yet, or momentarily unreadable: keep
            // reading the old handle.
            Err(_) => return Ok(false),
        };
        if now_at_path == cur.identity {
            return Ok(false);
        }
        // Hold the new file first, so that it cannot be rotated away while the old
        // one is drained.
        let new = match File::open(&path) {
            Ok(f) => Opened::new(f, &path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(TailError::Read { path, source }),
        };
        while cur.read_chunk(buf, &path, out)? > 0 {}
        if !cur.pending.is_empty() {
            warn(format_args!(
                "{}: the replaced file ended in an incomplete line ({} bytes); skipped",
                path.display(),
                cur.pending.len()
            ));
        }
        // Files rotated in and out between two polls: read them too, oldest first.
        for skipped in skipped_rotations(&path, cur.identity, new.identity) {
            if let Ok(f) = File::open(&skipped) {
                let mut o = Opened::new(f, &skipped)?;
                while o.read_chunk(buf, &skipped, out)? > 0 {}
                warn(format_args!(
                    "{}: read {} rotated in and out between two polls",
                    path.display(),
                    skipped.display()
                ));
            }
        }
        warn(format_args!(
            "{}: file replaced (rotated); following the new file",
            path.display()
        ));
        *current = Some(new);
        Ok(true)
    }

    fn open_first(&mut self) -> Result<bool, TailError> {
        match File::open(&self.path) {
            Ok(f) => {
                self.current = Some(Opened::new(f, &self.path)?);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !self.follow {
                    return Err(TailError::Missing {
                        path: self.path.clone(),
                    });
                }
                if !std::mem::replace(&mut self.told_waiting, true) {
                    warn(format_args!(
                        "{}: does not exist yet; waiting for it",
                        self.path.display()
                    ));
                }
                Ok(false)
            }
            Err(source) => Err(TailError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Bytes of an incomplete last line, if any (reported at the end of a
    /// non-following read).
    pub fn pending_bytes(&self) -> usize {
        self.current.as_ref().map_or(0, |c| c.pending.len())
    }
}
