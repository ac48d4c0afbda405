//! Typed errors: why a file was rejected, and why configuration is invalid.
//!
//! Every rejection carries a stable machine-readable [`RejectKind`] (written to the
//! rejects stream and to `check`'s stderr) and a message that tells a person what
//! happened and what to do.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an input file could not become a record. Stable names: consumers match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// Zero bytes.
    Empty,
    /// Only white space.
    Blank,
    /// Contains NUL bytes (binary or corrupt).
    NulBytes,
    /// Looks like binary data (many control characters).
    Binary,
    /// Larger than the configured size limit; not read.
    TooLarge,
    /// A single line longer than the configured line limit.
    LineTooLong,
    /// No lede line with text (e.g. only a dateline or only stamp lines).
    NoLede,
    /// The path vanished between the event and the read.
    NotFound,
    /// The daemon may not read the file.
    PermissionDenied,
    /// A directory, FIFO, socket or device where a regular file was expected.
    NotAFile,
    /// A symbolic link that leads outside the watched folder, or nowhere.
    Symlink,
    /// Any other I/O error.
    Io,
    /// Extraction ran past its time limit (`parse.max_extract_ms`).
    TooSlow,
}

impl RejectKind {
    /// The stable name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::Empty => "empty",
            RejectKind::Blank => "blank",
            RejectKind::NulBytes => "nul_bytes",
            RejectKind::Binary => "binary",
            RejectKind::TooLarge => "too_large",
            RejectKind::LineTooLong => "line_too_long",
            RejectKind::NoLede => "no_lede",
            RejectKind::NotFound => "not_found",
            RejectKind::PermissionDenied => "permission_denied",
            RejectKind::NotAFile => "not_a_file",
            RejectKind::Symlink => "symlink",
            RejectKind::Io => "io",
            RejectKind::TooSlow => "too_slow",
        }
    }

    /// Every kind, for metrics and docs.
    pub const ALL: [RejectKind; 13] = [
        RejectKind::Empty,
        RejectKind::Blank,
        RejectKind::NulBytes,
        RejectKind::Binary,
        RejectKind::TooLarge,
        RejectKind::LineTooLong,
        RejectKind::NoLede,
        RejectKind::NotFound,
        RejectKind::PermissionDenied,
        RejectKind::NotAFile,
        RejectKind::Symlink,
        RejectKind::Io,
        RejectKind::TooSlow,
    ];
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file that cannot be an article: the kind and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Reject {
    /// Machine-readable reason.
    pub kind: RejectKind,
    /// What happened, for a person.
    pub message: String,
}

impl Reject {
    /// Builds a rejection.
    pub fn new(kind: RejectKind, message: impl Into<String>) -> Reject {
        Reject {
            kind,
            message: message.into(),
        }
    }

    /// Maps an I/O error met while opening or reading `path`.
    pub fn from_io(err: &std::io::Error, what: &str) -> Reject {
        use std::io::ErrorKind as K;
        let kind = match err.kind() {
            K::NotFound => RejectKind::NotFound,
            K::PermissionDenied => RejectKind::PermissionDenied,
            K::IsADirectory => RejectKind::NotAFile,
            _ => RejectKind::Io,
        };
        let hint = match kind {
            RejectKind::NotFound => " (it was removed or renamed before it could be read)",
            RejectKind::PermissionDenied => {
                " (give the wirewatch user read permission, then touch the file to retry)"
            }
            _ => "",
        };
        Reject::new(kind, format!("cannot {what}: {err}{hint}"))
    }
}

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax error or unknown/mistyped key.
    #[error("invalid config {path}: {message}")]
    Syntax {
        /// The config path.
        path: String,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A key has a value outside its domain.
    #[error("invalid config {path}: key `{key}`: {message}")]
    Value {
        /// The config path.
        path: String,
        /// Dotted key, e.g. `parse.timezone`.
        key: String,
        /// Why the value is wrong and what is accepted.
        message: String,
    },
}
