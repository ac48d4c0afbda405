//! Helpers shared by the integration tests: fixture paths, the corpus manifest, and
//! copying fixtures into a temp dir with their capture times as mtimes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// One row of `tests/fixtures/dev/manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub file: String,
    pub group: String,
    pub role: String,
    pub dateline: Option<String>,
    pub reference_time: String,
    pub posted: Option<String>,
    pub updated: Option<String>,
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn seed() -> PathBuf {
    fixtures().join("seed/000_fbc3d1cb8b5383ef.txt")
}

pub fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(fixtures().join("dev/manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}

/// Seconds since the epoch of an RFC 3339 time.
pub fn system_time(rfc3339: &str) -> SystemTime {
    let ts: jiff::Timestamp = rfc3339.parse().expect("rfc3339");
    SystemTime::UNIX_EPOCH + Duration::from_secs(ts.as_second() as u64)
}

/// Copies a dev fixture to `dir/name`, setting its mtime to the manifest's capture time.
pub fn copy_with_mtime(entry: &Entry, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(fixtures().join("dev").join(&entry.file), &dst).expect("copy fixture");
    set_mtime(&dst, system_time(&entry.reference_time));
    dst
}

pub fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open for mtime");
    f.set_modified(t).expect("set mtime");
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wirewatch"))
}
