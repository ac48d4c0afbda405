//! The sink stage: appending JSON lines durably, and recovering after a crash.
//!
//! A [`Sink`] takes a batch of complete lines and returns only when they are durable
//! (fsynced for a file; acknowledged for a network sink). Lines are written with one
//! `write` of whole lines after any earlier partial write has been cut, so a reader
//! never sees half a record except for the instant of a crash, and that torn tail
//! is cut on restart ([`Sink::recover`]).
//!
//! [`FileSink`] is the records output and the rejects file; [`StdoutSink`] is `-`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::dedupe::Committed;

/// Errors of a sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// An I/O error on the output file (disk full, permissions, ...).
    #[error("output {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Something that durably appends whole JSON lines.
pub trait Sink: Send {
    /// A name for logs.
    fn describe(&self) -> String;

    /// Appends `lines` (complete lines, each ending in `\n`) and makes them durable.
    /// Returns the position after them. On error nothing is assumed written; a later
    /// call first removes whatever part of a failed batch reached the file.
    fn append(&mut self, lines: &[u8]) -> Result<Committed, SinkError>;

    /// After a start: returns the complete lines past `committed` (written before a
    /// crash, not yet in the state) and cuts an incomplete last line.
    fn recover(&mut self, committed: Committed) -> Result<Vec<String>, SinkError>;

    /// Rotates the output when its policy says so. Called only after a commit;
    /// returns the new position when it rotated.
    fn rotate_if_due(&mut self) -> Result<Option<Committed>, SinkError> {
        Ok(None)
    }
}

/// When to rotate a file output: by size, by age, or both (0 = off), and how many
/// rotated files to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the file reaches this many bytes.
    pub max_bytes: u64,
    /// Rotate once the file has been written to for this many seconds.
    pub max_secs: u64,
    /// Rotated files to keep (oldest deleted first); 0 keeps all.
    pub keep: usize,
}

impl Rotation {
    /// The policy of `[output]`.
    pub fn from_config(c: &crate::config::OutputConfig) -> Rotation {
        Rotation {
            max_bytes: c.rotate_bytes,
            max_secs: c.rotate_secs,
            keep: c.rotate_keep,
        }
    }

    fn enabled(&self) -> bool {
        self.max_bytes > 0 || self.max_secs > 0
    }
}

/// Appends to a file; fsyncs every batch.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    /// End of the last durable batch.
    end: u64,
    identity: (u64, u64),
    rotation: Rotation,
    opened: std::time::Instant,
}

impl FileSink {
    /// Opens (creating the folder and file as needed) for appending.
    pub fn open(path: &Path) -> Result<FileSink, SinkError> {
        let io = |source| SinkError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        Ok(FileSink {
            path: path.to_owned(),
            file,
            end: meta.len(),
            identity: (meta.dev(), meta.ino()),
            rotation: Rotation::default(),
            opened: std::time::Instant::now(),
        })
    }

    /// Sets the rotation policy.
    pub fn with_rotation(mut self, rotation: Rotation) -> FileSink {
        self.rotation = rotation;
        self
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
        self.file = fresh.file;
        self.end = fresh.end;
        self.identity = fresh.identity;
        self.opened = std::time::Instant::now();
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
}

impl Sink for FileSink {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn append(&mut self, lines: &[u8]) -> Result<Committed, SinkError> {
        if lines.is_empty() {
            return Ok(self.position());
        }
        // A failed earlier attempt may have left part of a batch: cut it.
        let len = self.file.metadata().map_err(|e| self.io(e))?.len();
        if len != self.end {
            self.file.set_len(self.end).map_err(|e| self.io(e))?;
        }
        self.file.write_all(lines).map_err(|e| self.io(e))?;
        self.file.sync_data().map_err(|e| self.io(e))?;
        self.end += lines.len() as u64;
        Ok(self.position())
    }

    fn rotate_if_due(&mut self) -> Result<Option<Committed>, SinkError> {
        let r = self.rotation;
        if !r.enabled() || self.end == 0 {
            return Ok(None);
        }
        let by_size = r.max_bytes > 0 && self.end >= r.max_bytes;
        let by_age = r.max_secs > 0 && self.opened.elapsed().as_secs() >= r.max_secs;
        if by_size || by_age {
            return self.rotate().map(Some);
        }
        Ok(None)
    }

    fn recover(&mut self, committed: Committed) -> Result<Vec<String>, SinkError> {
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
            return Ok(Vec::new());
        }
        self.file
            .seek(SeekFrom::Start(start))
            .map_err(|e| self.io(e))?;
        let mut buf = Vec::with_capacity((self.end - start) as usize);
        (&self.file)
            .take(self.end - start)
            .read_to_end(&mut buf)
            .map_err(|e| self.io(e))?;
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        if complete < buf.len() {
            let cut = start + complete as u64;
            tracing::warn!(
                path = %self.path.display(),
                bytes = buf.len() - complete,
                "cutting an incomplete last line left by a crash"
            );
            self.file.set_len(cut).map_err(|e| self.io(e))?;
            self.file.sync_data().map_err(|e| self.io(e))?;
            self.end = cut;
        }
        Ok(String::from_utf8_lossy(&buf[..complete])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// Entries of the folder of `path` named `<name>.<suffix>`: the rotated outputs of
/// the file at `path` (empty when the folder cannot be read).
pub fn rotated_siblings(path: &Path) -> Vec<std::fs::DirEntry> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect()
}

/// Writes to standard output; flushes every batch. Nothing to recover: after a crash
/// the consumer of stdout is gone too.
#[derive(Debug, Default)]
pub struct StdoutSink {
    written: u64,
}

impl Sink for StdoutSink {
    fn describe(&self) -> String {
        "stdout".into()
    }

    fn append(&mut self, lines: &[u8]) -> Result<Committed, SinkError> {
        let io = |source| SinkError::Io {
            path: "-".into(),
            source,
        };
        let mut out = std::io::stdout().lock();
        out.write_all(lines).map_err(io)?;
        out.flush().map_err(io)?;
        self.written += lines.len() as u64;
        Ok(Committed {
            offset: self.written,
            identity: None,
        })
    }

    fn recover(&mut self, _committed: Committed) -> Result<Vec<String>, SinkError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
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
        let lines = s.recover(c1).unwrap();
        assert_eq!(lines, vec!["{\"a\":2}"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n{\"a\":2}\n");
        let c = s.append(b"{\"a\":4}\n").unwrap();
        assert_eq!(c.offset, 24);
        // Nothing past the end: nothing to adopt.
        assert!(s.recover(c).unwrap().is_empty());
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
        let lines = s
            .recover(Committed {
                offset: 100,
                identity: Some((0, 0)),
            })
            .unwrap();
        assert_eq!(lines, vec!["x", "y"]);
    }
}
