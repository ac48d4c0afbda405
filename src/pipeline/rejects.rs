//! The rejects file: one JSON line per rejected input file, its path, size, time and
//! reason ([`RejectLine`]), read back on start to rebuild what was rejected.

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::dedupe::FileEntry;
use crate::error::{Reject, RejectKind};

/// The JSON Schema (draft 2020-12) of one [`RejectLine`], `docs/schema/reject.schema.json`
/// embedded in the binary; `wirewatch schema reject` prints it.
pub const REJECT_SCHEMA: &str = include_str!("../../docs/schema/reject.schema.json");

/// One line of the rejects file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectLine {
    /// Path of the file (lossy UTF-8).
    pub path: String,
    /// Raw path bytes in hex, when the name is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// Kind and message.
    pub error: RejectError,
    /// File size when seen.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Modification time (RFC 3339, UTC) when seen.
    #[serde(default)]
    pub modified: Option<String>,
    /// SHA-256 of the content, when it was read.
    #[serde(default)]
    pub sha256: Option<String>,
    /// When it was rejected.
    pub rejected_at: String,
}

impl RejectLine {
    /// The line for `path`, rejected for `reject` at `at`, with what was seen of the
    /// file (`None` when it vanished before it could be looked at).
    pub fn new(path: &Path, reject: Reject, file: Option<&FileEntry>, at: Timestamp) -> RejectLine {
        let (path, path_hex) = crate::paths::to_strings(path);
        RejectLine {
            path,
            path_hex,
            error: RejectError {
                kind: reject.kind,
                message: reject.message,
            },
            bytes: file.map(|f| f.size),
            modified: file
                .and_then(|f| Timestamp::from_nanosecond(f.mtime_ns).ok())
                .map(|t| t.to_string()),
            sha256: file.and_then(|f| f.sha256.clone()),
            rejected_at: at.to_string(),
        }
    }
}

/// The `error` object of a reject line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectError {
    /// Stable kind.
    pub kind: RejectKind,
    /// Message for a person.
    pub message: String,
}

/// A time stamp in RFC 3339 as nanoseconds (0 when absent or unreadable).
pub(super) fn ts_ns(t: Option<&str>) -> i128 {
    t.and_then(|s| s.parse::<Timestamp>().ok())
        .map_or(0, |t| t.as_nanosecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_every_reject_kind_and_every_field() {
        let schema: serde_json::Value = serde_json::from_str(REJECT_SCHEMA).expect("JSON");
        let kinds: Vec<&str> = schema["properties"]["error"]["properties"]["kind"]["enum"]
            .as_array()
            .expect("enum")
            .iter()
            .filter_map(|k| k.as_str())
            .collect();
        let all: Vec<&str> = RejectKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, all);
        let line = RejectLine::new(
            Path::new("a.txt"),
            Reject::new(RejectKind::Empty, "empty"),
            None,
            Timestamp::UNIX_EPOCH,
        );
        let v = serde_json::to_value(&line).expect("serializes");
        let props = schema["properties"].as_object().expect("properties");
        for key in v.as_object().expect("object").keys() {
            assert!(props.contains_key(key), "schema lacks {key}");
        }
    }
}
