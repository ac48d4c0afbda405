//! [`FileSink`]: the records output and the rejects file.
//!
//! The file is locked (`flock`, exclusive, through [`File::try_lock`]) for as long as
//! the sink holds it, so a second daemon on the same file is refused at start
//! ([`SinkError::Locked`]). Only regular files are accepted: a device, a FIFO or a
//! folder cannot be fsynced ([`SinkError::NotAFile`]).
//!
//! Other processes may still act on the file, and before every append the sink
//! looks at what is really there instead of assuming its own count of bytes:
//!
//! * the path names another file or nothing (rotated away or deleted by someone
//!   else): a warning, and the sink opens (or creates) the file now at the path and
//!   carries on there;
//! * the file is shorter than written (truncated, logrotate's `copytruncate`): a
//!   warning, and the next lines go at its real end — the file is never extended
//!   and never padded with NUL bytes;
//! * the file is longer (someone else appended): a warning, and the next lines go
//!   after those bytes, which are never cut.
//!
//! When such a change leaves the file ending in the middle of a line, the next batch
//! starts with a newline, so every record stays a line of its own. The only bytes the
//! sink ever cuts while running are those of its own write that failed (it remembers
//! the length before it). The position it returns is the real end of its last batch
//! in the file it holds (identity and offset), which is what recovery reads from.

use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::Committed;
use super::{rotated_siblings, Rotation, Sink, SinkError};
use crate::paths::kind_of;

/// Appends to a file; fsyncs every batch.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    /// End of the last durable batch.
    end: u64,
    identity: (u64, u64),
    rotation: Rotation,
    opened: Instant,
    /// This sink's last write or fsync failed: what may be cut before the next one.
    failed: Option<Failed>,
}

/// A failed write of this sink.
#[derive(Debug, Clone, Copy)]
struct Failed {
    /// The file's length before it.
    before: u64,
    /// The file's length right after it, when it could be read: bytes past that
    /// were written by someone else since, and are not cut.
    after: Option<u64>,
}

impl FileSink {
    /// Opens (creating the folder and file as needed) for appending, and locks the
    /// file. Refuses a path that is not a regular file, a file another process has
    /// locked, and a file that cannot be fsynced.
    pub fn open(path: &Path) -> Result<FileSink, SinkError> {
        let io = |source| SinkError::Io {
            path: path.to_owned(),
            source,
        };
        let not_a_file = |m: &std::fs::Metadata| -> Result<(), SinkError> {
            match kind_of(m.file_type()) {
                None => Ok(()),
                Some(what) => Err(SinkError::NotAFile {
                    path: path.to_owned(),
                    what,
                }),
            }
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // Before opening: a folder cannot be opened for writing at all.
        if let Ok(m) = std::fs::metadata(path) {
            not_a_file(&m)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        not_a_file(&meta)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SinkError::Locked {
                    path: path.to_owned(),
                })
            }
            Err(std::fs::TryLockError::Error(e))
                if matches!(e.raw_os_error(), Some(libc::ENOLCK | libc::EOPNOTSUPP)) =>
            {
                tracing::warn!(path = %path.display(), error = %e, "the file system cannot lock the output; a second daemon on it would not be refused");
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.sync_data()
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EINVAL | libc::EOPNOTSUPP | libc::EROFS) => SinkError::NoFsync {
                    path: path.to_owned(),
                    source,
                },
                _ => io(source),
            })?;
        Ok(FileSink {
            path: path.to_owned(),
            file,
            end: meta.len(),
            identity: (meta.dev(), meta.ino()),
            rotation: Rotation::default(),
            opened: Instant::now(),
            failed: None,
        })
    }

    /// Sets the rotation policy.
    pub fn with_rotation(mut self, rotation: Rotation) -> FileSink {
        self.rotation = rotation;
        self
    }

    /// Continues in `fresh` (a newly opened file at the same path).
    fn switch_to(&mut self, fresh: FileSink) {
        self.file = fresh.file;
        self.end = fresh.end;
        self.identity = fresh.identity;
        self.opened = Instant::now();
        self.failed = None;
    }

    /// Renames the file to `<name>.<UTC time>` and starts a new one; deletes the
    /// oldest rotated files beyond `keep`.
    pub fn rotate(&mut self) -> Result<Committed, SinkError> {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%S%.3fZ")
            .to_string();
        let mut target = PathBuf::from(format!("{}.{stamp}", self.path.display()));
        let mut n = 1;
        while target.exists() {
            target = PathBuf::from(format!("{}.{stamp}-{n}", self.path.display()));
            n += 1;
        }
        std::fs::rename(&self.path, &target).map_err(|e| self.io(e))?;
        let fresh = FileSink::open(&self.path)?;
        self.switch_to(fresh);
        tracing::info!(path = %self.path.display(), rotated = %target.display(), "output rotated");
        if self.rotation.keep > 0 {
            self.prune();
        }
        Ok(self.position())
    }

    fn prune(&self) {
        let mut rotated: Vec<PathBuf> = rotated_siblings(&self.path)
            .into_iter()
            .map(|e| e.path())
            .collect();
        rotated.sort();
        let excess = rotated.len().saturating_sub(self.rotation.keep);
        for old in rotated.into_iter().take(excess) {
            if let Err(e) = std::fs::remove_file(&old) {
                tracing::warn!(path = %old.display(), error = %e, "cannot delete an old rotated output");
            }
        }
    }

    fn io(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Position after the last durable batch.
    pub fn position(&self) -> Committed {
        Committed {
            offset: self.end,
            identity: Some(self.identity),
        }
    }

    /// The bytes of this sink's failed write, if `len` (the file's length now) says
    /// they are still the last ones: the length to cut the file back to.
    fn own_failed_tail(&self, len: u64) -> Option<u64> {
        let f = self.failed?;
        (len > f.before && f.after.is_none_or(|a| a == len)).then_some(f.before)
    }

    /// Makes sure the file held is the one at the path: when the path names another
    /// file or nothing, continues in the file at the path (creating it). True when it
    /// switched.
    fn follow_path(&mut self) -> Result<bool, SinkError> {
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.identity => return Ok(false),
            Ok(_) => tracing::warn!(
                path = %self.path.display(),
                "the output path now names another file (rotated or replaced by another process); continuing in the file at the path"
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => tracing::warn!(
                path = %self.path.display(),
                "the output file is no longer at its path (deleted or moved by another process); creating it again"
            ),
            Err(e) => return Err(self.io(e)),
        }
        // A failed write of ours left in the file we leave is ours to cut.
        if let Ok(len) = self.file.metadata().map(|m| m.len()) {
            if let Some(cut) = self.own_failed_tail(len) {
                let _ = self.file.set_len(cut);
            }
        }
        let fresh = FileSink::open(&self.path)?;
        self.switch_to(fresh);
        Ok(true)
    }

    /// Before a write: follows the path, cuts this sink's own failed write, and takes
    /// the file's real length as the end when someone else changed it. True when the
    /// file now ends in the middle of a line (the next batch starts with a newline).
    fn reconcile(&mut self) -> Result<bool, SinkError> {
        let switched = self.follow_path()?;
        let len = self.file.metadata().map_err(|e| self.io(e))?.len();
        let mut check_tail = switched && len > 0;
        if let Some(cut) = self.own_failed_tail(len) {
            tracing::info!(path = %self.path.display(), bytes = len - cut, "cutting what a failed write left");
            self.file.set_len(cut).map_err(|e| self.io(e))?;
            self.end = cut;
            check_tail = cut > 0;
        } else if len != self.end && !switched {
            if len < self.end {
                tracing::warn!(
                    path = %self.path.display(),
                    expected = self.end,
                    found = len,
                    "the output file is shorter than what was written (truncated by another process, e.g. logrotate copytruncate); appending at its real end"
                );
            } else {
                tracing::warn!(
                    path = %self.path.display(),
                    bytes = len - self.end,
                    "the output file grew by bytes this daemon did not write; appending after them"
                );
            }
            self.end = len;
            check_tail = len > 0;
        }
        self.failed = None;
        if !check_tail {
            return Ok(false);
        }
        let mut last = [0u8; 1];
        self.file
            .read_exact_at(&mut last, self.end - 1)
            .map_err(|e| self.io(e))?;
        Ok(last[0] != b'\n')
    }
}

impl Sink for FileSink {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn append(&mut self, lines: &[u8]) -> Result<Committed, SinkError> {
        let mid_line = self.reconcile()?;
        if lines.is_empty() {
            return Ok(self.position());
        }
        let joined;
        let bytes = if mid_line {
            joined = [&b"\n"[..], lines].concat();
            &joined[..]
        } else {
            lines
        };
        let before = self.end;
        let written = (|| {
            self.file.write_all(bytes)?;
            self.file.sync_data()?;
            // O_APPEND: the offset is now the end of this write, wherever it landed.
            self.file.stream_position()
        })();
        match written {
            Ok(end) => {
                self.end = end;
                Ok(self.position())
            }
            Err(e) => {
                self.failed = Some(Failed {
                    before,
                    after: self.file.metadata().ok().map(|m| m.len()),
                });
                Err(self.io(e))
            }
        }
    }

    fn rotate_if_due(&mut self) -> Result<Option<Committed>, SinkError> {
        // A path that names another file now: continue there (and commit that).
        let switched = self.follow_path()?;
        let r = self.rotation;
        if !r.enabled() || self.end == 0 {
            return Ok(switched.then(|| self.position()));
        }
        let by_size = r.max_bytes > 0 && self.end >= r.max_bytes;
        let by_age = r.max_secs > 0 && self.opened.elapsed().as_secs() >= r.max_secs;
        if by_size || by_age {
            return self.rotate().map(Some);
        }
        Ok(switched.then(|| self.position()))
    }

    fn recover(
        &mut self,
        committed: Committed,
        each: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), SinkError> {
        let same_file = committed.identity.is_none_or(|id| id == self.identity);
        let start = if same_file && committed.offset <= self.end {
            committed.offset
        } else {
            // The file was replaced or truncated behind our back: everything in it is
            // new to the state. Adopting it is safe: dedupe only moves forward.
            tracing::warn!(
                path = %self.path.display(),
                "output file is not the one the state last committed to; re-reading it from the start"
            );
            0
        };
        if start == self.end {
            return Ok(());
        }
        let complete =
            super::recover::last_line_end(&self.file, start, self.end).map_err(|e| self.io(e))?;
        if complete < self.end {
            tracing::warn!(
                path = %self.path.display(),
                bytes = self.end - complete,
                "cutting an incomplete last line left by a crash"
            );
            self.file.set_len(complete).map_err(|e| self.io(e))?;
            self.file.sync_data().map_err(|e| self.io(e))?;
            self.end = complete;
        }
        super::recover::each_line(&self.file, start, complete, each).map_err(|e| self.io(e))
    }
}
#[cfg(test)]
mod tests {
    use super::super::recover::recovered;
    use super::*;

    #[test]
    fn append_recover_and_cut_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/a.jsonl");
        let mut s = FileSink::open(&path).unwrap();
        let c1 = s.append(b"{\"a\":1}\n").unwrap();
        assert_eq!(c1.offset, 8);
        s.append(b"{\"a\":2}\n").unwrap();
        drop(s);
        // A crash left a torn line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"a\":3").unwrap();
        let mut s = FileSink::open(&path).unwrap();
        let lines = recovered(&mut s, c1);
        assert_eq!(lines, vec!["{\"a\":2}"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n{\"a\":2}\n");
        let c = s.append(b"{\"a\":4}\n").unwrap();
        assert_eq!(c.offset, 24);
        // Nothing past the end: nothing to adopt.
        assert!(recovered(&mut s, c).is_empty());
    }

    #[test]
    fn rotation_by_size_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut s = FileSink::open(&path).unwrap().with_rotation(Rotation {
            max_bytes: 10,
            max_secs: 0,
            keep: 2,
        });
        for i in 0..5 {
            s.append(format!("{{\"n\":{i}}}\n").as_bytes()).unwrap();
            let rotated = s.rotate_if_due().unwrap();
            assert!(rotated.is_none_or(|c| c.offset == 0));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("a.jsonl."))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn replaced_file_is_read_from_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, b"x\ny\n").unwrap();
        let mut s = FileSink::open(&path).unwrap();
        let lines = recovered(
            &mut s,
            Committed {
                offset: 100,
                identity: Some((0, 0)),
            },
        );
        assert_eq!(lines, vec!["x", "y"]);
    }

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    fn identity_of(path: &Path) -> (u64, u64) {
        let m = std::fs::metadata(path).unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn a_locked_file_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let s = FileSink::open(&path).unwrap();
        let e = FileSink::open(&path).unwrap_err();
        assert!(matches!(e, SinkError::Locked { .. }), "{e}");
        assert!(e.to_string().contains("a.jsonl"), "{e}");
        drop(s);
        FileSink::open(&path).unwrap();
    }

    #[test]
    fn non_regular_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (path, what) in [
            (Path::new("/dev/null"), "a character device"),
            (dir.path(), "a folder"),
            (fifo.as_path(), "a FIFO"),
        ] {
            match FileSink::open(path) {
                Err(SinkError::NotAFile { what: w, .. }) => assert_eq!(w, what),
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }

    #[test]
    fn truncated_by_someone_else_appends_at_the_real_end_without_nuls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut s = FileSink::open(&path).unwrap();
        s.append(b"{\"a\":1}\n{\"a\":2}\n").unwrap();
        // copytruncate: to 0.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let c = s.append(b"{\"a\":3}\n").unwrap();
        assert_eq!(read(&path), b"{\"a\":3}\n");
        assert_eq!(c.offset, 8);
        // Truncated in the middle of a line: the next line starts on a line of its own.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(3)
            .unwrap();
        let c = s.append(b"{\"a\":4}\n").unwrap();
        assert_eq!(read(&path), b"{\"a\n{\"a\":4}\n");
        assert_eq!(c.offset, read(&path).len() as u64);
        assert_eq!(c.identity, Some(identity_of(&path)));
        // Recovery from that position finds nothing to adopt.
        drop(s);
        let mut s = FileSink::open(&path).unwrap();
        assert!(recovered(&mut s, c).is_empty());
    }

    #[test]
    fn bytes_appended_by_someone_else_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut s = FileSink::open(&path).unwrap();
        s.append(b"{\"a\":1}\n").unwrap();
        let mut other = OpenOptions::new().append(true).open(&path).unwrap();
        other.write_all(b"theirs").unwrap();
        let c = s.append(b"{\"a\":2}\n").unwrap();
        assert_eq!(read(&path), b"{\"a\":1}\ntheirs\n{\"a\":2}\n");
        assert_eq!(c.offset, read(&path).len() as u64);
        // A whole line of theirs: nothing added before ours.
        other.write_all(b"more\n").unwrap();
        s.append(b"{\"a\":3}\n").unwrap();
        assert!(read(&path).ends_with(b"\nmore\n{\"a\":3}\n"));
    }

    #[test]
    fn a_deleted_file_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut s = FileSink::open(&path).unwrap();
        s.append(b"{\"a\":1}\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        let c = s.append(b"{\"a\":2}\n").unwrap();
        assert_eq!(read(&path), b"{\"a\":2}\n");
        assert_eq!(c.offset, 8);
        assert_eq!(c.identity, Some(identity_of(&path)));
        // The new file is locked as well.
        assert!(matches!(
            FileSink::open(&path),
            Err(SinkError::Locked { .. })
        ));
    }

    #[test]
    fn a_file_rotated_away_by_someone_else_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let moved = dir.path().join("a.jsonl.1");
        let mut s = FileSink::open(&path).unwrap();
        s.append(b"{\"a\":1}\n").unwrap();
        std::fs::rename(&path, &moved).unwrap();
        std::fs::write(&path, b"x\n").unwrap();
        let c = s.append(b"{\"a\":2}\n").unwrap();
        assert_eq!(read(&moved), b"{\"a\":1}\n");
        assert_eq!(read(&path), b"x\n{\"a\":2}\n");
        assert_eq!(c.offset, 10);
        assert_eq!(c.identity, Some(identity_of(&path)));
        // Deleted between a commit and the rotation check: followed, not an error.
        std::fs::remove_file(&path).unwrap();
        let c = s.rotate_if_due().unwrap().expect("moved to a new file");
        assert_eq!((c.offset, c.identity), (0, Some(identity_of(&path))));
    }

    /// Pretends a write failed after `partial` reached the file.
    fn fail_after(s: &mut FileSink, partial: &[u8]) {
        let before = s.end;
        s.file.write_all(partial).unwrap();
        s.failed = Some(Failed {
            before,
            after: Some(s.file.metadata().unwrap().len()),
        });
    }

    #[test]
    fn only_the_sinks_own_failed_write_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut s = FileSink::open(&path).unwrap();
        s.append(b"{\"a\":1}\n").unwrap();
        fail_after(&mut s, b"{\"a\":");
        let c = s.append(b"{\"a\":2}\n").unwrap();
        assert_eq!(read(&path), b"{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(c.offset, 16);
        // Someone appended after the failed part: their bytes stay (and so does the
        // part they were written after).
        fail_after(&mut s, b"{\"b\":");
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"theirs\n")
            .unwrap();
        let c = s.append(b"{\"a\":3}\n").unwrap();
        assert_eq!(
            read(&path),
            b"{\"a\":1}\n{\"a\":2}\n{\"b\":theirs\n{\"a\":3}\n"
        );
        assert_eq!(c.offset, read(&path).len() as u64);
    }
}
