//! The sink stage: appending JSON lines durably, and recovering after a crash.
//!
//! A [`Sink`] takes a batch of complete lines and returns only when they are durable
//! (fsynced for a file; acknowledged for a network sink). Lines are written with one
//! `write` of whole lines after any earlier partial write of this sink has been cut,
//! so a reader never sees half a record except for the instant of a crash, and that
//! torn tail is cut on restart ([`Sink::recover`]).
//!
//! [`FileSink`] (in [`mod@file`]) is the records output and the rejects file: locked for
//! the process's lifetime, and never cutting or padding bytes it did not write
//! itself. [`StdoutSink`] is `-`. `paths` holds what config validation asks of
//! the two files before anything is opened ([`check_paths`]) and the daemon's own
//! files the watcher skips ([`OwnFiles`]).

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod file;
mod recover;

pub use crate::paths::{check_paths, OwnFiles};
pub use file::FileSink;

/// Positions in the output files up to which everything is reflected in the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Committed {
    /// Byte offset in the file.
    pub offset: u64,
    /// (device, inode) of the file, to notice a replaced file.
    pub identity: Option<(u64, u64)>,
}

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
    /// Another process holds the file's lock: most likely a second daemon writing to
    /// the same file.
    #[error("output {path} is locked by another process (a second wirewatch writing to it?); stop that one or give this one another file")]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The path names something other than a regular file (a device such as
    /// `/dev/null`, a FIFO, a folder): it cannot be fsynced, so nothing written there
    /// could ever be committed.
    #[error("output {path} is {what}, not a regular file: records and rejects must go to a file that can be fsynced (or `-` for stdout)")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// The file system refuses to fsync the file.
    #[error("output {path} cannot be fsynced ({source}): records and rejects must go to a file system that supports fsync")]
    NoFsync {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A remote output (the NATS cluster) failed a request.
    #[error("output {target}: {source}")]
    Remote {
        /// What was addressed (`nats stream RECORDS (nats://…)`).
        target: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The reader of standard output has gone (broken pipe). Retrying cannot help.
    #[error("stdout was closed by its reader (broken pipe); stopping: files whose records were not delivered are processed again at the next start")]
    Closed,
}

impl SinkError {
    /// True when retrying cannot succeed and the daemon must stop.
    pub fn is_fatal(&self) -> bool {
        matches!(self, SinkError::Closed)
    }
}

/// Something that durably appends whole JSON lines.
pub trait Sink: Send {
    /// A name for logs.
    fn describe(&self) -> String;

    /// Appends `lines` (complete lines, each ending in `\n`) and makes them durable.
    /// Returns the position after them. On error nothing is assumed written; a later
    /// call first removes whatever part of this sink's failed batch reached the file.
    fn append(&mut self, lines: &[u8]) -> Result<Committed, SinkError>;

    /// After a start: cuts an incomplete last line, then hands `each` the complete
    /// lines past `committed` (written before a crash, not yet in the state), in
    /// order, one at a time, until it returns false.
    fn recover(
        &mut self,
        committed: Committed,
        each: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), SinkError>;

    /// Rotates the output when its policy says so. Called only after a commit;
    /// returns the new position when it moved to another file (rotated, or found
    /// its path naming another file).
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

    pub(crate) fn enabled(&self) -> bool {
        self.max_bytes > 0 || self.max_secs > 0
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
/// the consumer of stdout is gone too. A reader that has gone away (`EPIPE`; Rust
/// ignores `SIGPIPE`) is [`SinkError::Closed`], which stops the daemon.
#[derive(Debug, Default)]
pub struct StdoutSink {
    written: u64,
}

impl Sink for StdoutSink {
    fn describe(&self) -> String {
        "stdout".into()
    }

    fn append(&mut self, lines: &[u8]) -> Result<Committed, SinkError> {
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::BrokenPipe => SinkError::Closed,
            _ => SinkError::Io {
                path: "-".into(),
                source,
            },
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

    fn recover(
        &mut self,
        _committed: Committed,
        _each: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), SinkError> {
        Ok(())
    }
}
