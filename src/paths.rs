//! The paths of the daemon's own files.
//!
//! [`check_paths`] is what config validation checks about the two output files
//! before anything is opened: records and rejects go to different files (also when
//! two spellings, or a symbolic link, name the same one), and each path, when it
//! exists, is a regular file (a device such as `/dev/null`, a FIFO or a folder cannot
//! be fsynced). [`OwnFiles`] is what the watcher skips: the outputs and the state
//! are never input, even inside the watched folder.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// Checks the records output (`None` when records do not go to a file) and the
/// rejects file. On error: the config key at fault and the reason.
pub fn check_paths(records: Option<&Path>, rejects: &Path) -> Result<(), (&'static str, String)> {
    if rejects.as_os_str().is_empty() {
        return Err(("output.rejects", "must be a file path".into()));
    }
    for (key, path) in [("output.path", records), ("output.rejects", Some(rejects))] {
        let Some(path) = path else { continue };
        if let Some(what) = std::fs::metadata(path)
            .ok()
            .and_then(|m| kind_of(m.file_type()))
        {
            return Err((
                key,
                format!(
                    "{} is {what}, not a regular file: records and rejects must go to a file that can be fsynced{}",
                    path.display(),
                    if key == "output.path" { " (or \"-\" for stdout)" } else { "" }
                ),
            ));
        }
    }
    if let Some(records) = records {
        if same_file(records, rejects) {
            return Err((
                "output.rejects",
                format!(
                    "{} is the same file as output.path {}: records and rejects must go to different files",
                    rejects.display(),
                    records.display()
                ),
            ));
        }
    }
    Ok(())
}

/// True when `a` and `b` name the same file: the same inode when both exist, else
/// the same path once made absolute, `.` and `..` resolved and the symbolic links of
/// the part that exists followed.
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return (ma.dev(), ma.ino()) == (mb.dev(), mb.ino());
    }
    normalized(a) == normalized(b)
}

/// `path` made absolute, with each existing prefix canonicalized (symbolic links
/// followed) and `.` and `..` resolved.
fn normalized(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            // `out` has no symbolic links left in the part that exists, so going up
            // by name is going up on disk.
            Component::ParentDir => {
                out.pop();
            }
            other => {
                out.push(other);
                if let Ok(canon) = std::fs::canonicalize(&out) {
                    out = canon;
                }
            }
        }
    }
    out
}

/// The daemon's own files, by canonical path: the records output and its rotated
/// copies (`<name>.<anything>`), the rejects file, and the state folder with
/// everything in it. Never input, even when they sit inside the watched folder.
#[derive(Debug, Clone, Default)]
pub struct OwnFiles {
    /// Files, each with whether its `<name>.<suffix>` siblings count as well.
    files: Vec<(PathBuf, bool)>,
    /// Folders, with everything under them.
    dirs: Vec<PathBuf>,
}

impl OwnFiles {
    /// The records output (`None` when records do not go to a file), the rejects
    /// file and the state folder; resolved once they exist.
    pub fn new(records: Option<&Path>, rejects: &Path, state: &Path) -> OwnFiles {
        let mut own = OwnFiles::default();
        for (path, rotated) in records
            .map(|r| (r, true))
            .into_iter()
            .chain([(rejects, false)])
        {
            for p in spellings(path) {
                own.files.push((p, rotated));
            }
        }
        own.dirs = spellings(state);
        own
    }

    /// True when `path` (under the canonical watched folder) is one of them.
    pub fn contains(&self, path: &Path) -> bool {
        self.dirs.iter().any(|d| path.starts_with(d))
            || self.files.iter().any(|(f, rotated)| {
                path == f
                    || (*rotated
                        && path.parent() == f.parent()
                        && f.file_name().zip(path.file_name()).is_some_and(|(f, p)| {
                            let (f, p) = (f.as_encoded_bytes(), p.as_encoded_bytes());
                            p.len() > f.len() + 1 && p.starts_with(f) && p[f.len()] == b'.'
                        }))
            })
    }
}

/// The canonical path of `path`, and its canonical folder joined with its own name
/// (not the same when `path` is a symbolic link).
fn spellings(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(c) = std::fs::canonicalize(path) {
        out.push(c);
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let (Ok(dir), Some(name)) = (
        std::fs::canonicalize(parent.unwrap_or(Path::new("."))),
        path.file_name(),
    ) {
        let p = dir.join(name);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// What a path names when it is not a regular file.
pub fn kind_of(ft: std::fs::FileType) -> Option<&'static str> {
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("a folder")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// The raw bytes of a path (how the state keys files).
pub fn to_bytes(path: &Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes()
}

/// The path whose raw bytes are `bytes`.
pub fn from_bytes(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

/// The path as a string, plus its raw bytes in hex when it is not valid UTF-8 (how
/// records and rejects carry it).
pub fn to_strings(path: &Path) -> (String, Option<String>) {
    match path.to_str() {
        Some(s) => (s.to_owned(), None),
        None => (
            path.to_string_lossy().into_owned(),
            Some(hex::encode(to_bytes(path))),
        ),
    }
}

/// The path [`to_strings`] wrote: from the hex bytes when present and valid, else the
/// string.
pub fn from_strings(path: &str, hex_path: Option<&str>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    match hex_path.and_then(|h| hex::decode(h).ok()) {
        Some(b) => PathBuf::from(std::ffi::OsString::from_vec(b)),
        None => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_is_found_through_any_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("out")).unwrap();
        // Neither exists yet.
        assert!(same_file(&d.join("out/a.jsonl"), &d.join("out/./a.jsonl")));
        assert!(same_file(
            &d.join("out/a.jsonl"),
            &d.join("out/new/../a.jsonl")
        ));
        assert!(!same_file(&d.join("out/a.jsonl"), &d.join("out/b.jsonl")));
        // Through a symbolic link to the folder.
        std::os::unix::fs::symlink(d.join("out"), d.join("link")).unwrap();
        assert!(same_file(&d.join("out/a.jsonl"), &d.join("link/a.jsonl")));
        // Both exist: one inode, two names.
        std::fs::write(d.join("out/a.jsonl"), b"").unwrap();
        std::fs::hard_link(d.join("out/a.jsonl"), d.join("out/hard.jsonl")).unwrap();
        assert!(same_file(&d.join("out/a.jsonl"), &d.join("out/hard.jsonl")));
        // Relative to the working directory.
        let cwd = std::env::current_dir().unwrap();
        assert!(same_file(Path::new("x.jsonl"), &cwd.join("x.jsonl")));
    }

    #[test]
    fn check_names_both_keys_and_refuses_non_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let (key, msg) = check_paths(Some(&a), &dir.path().join("./a.jsonl")).unwrap_err();
        assert_eq!(key, "output.rejects");
        assert!(msg.contains("output.path"), "{msg}");
        check_paths(Some(&a), &dir.path().join("b.jsonl")).unwrap();
        // Records elsewhere (stdout, NATS): only the rejects file is checked.
        check_paths(None, &a).unwrap();
        let (key, msg) = check_paths(Some(Path::new("/dev/null")), &a).unwrap_err();
        assert_eq!(key, "output.path");
        assert!(msg.contains("character device"), "{msg}");
        let (key, msg) = check_paths(None, dir.path()).unwrap_err();
        assert_eq!(key, "output.rejects");
        assert!(msg.contains("folder"), "{msg}");
    }

    #[test]
    fn own_files_and_rotated_outputs_are_recognised() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::create_dir(root.join("state")).expect("mkdir");
        std::fs::write(root.join("out.jsonl"), b"").expect("write");
        std::os::unix::fs::symlink(root.join("out.jsonl"), root.join("link.jsonl"))
            .expect("symlink");
        let own = OwnFiles::new(
            Some(&root.join("link.jsonl")),
            &root.join("rej.jsonl"),
            &root.join("state"),
        );
        for p in [
            "out.jsonl",
            "link.jsonl",
            "link.jsonl.20240101T000000.000Z",
            "out.jsonl.20240101T000000.000Z-1",
            "rej.jsonl",
            "state",
            "state/wirewatch.redb",
        ] {
            assert!(own.contains(&root.join(p)), "{p}");
        }
        for p in [
            "out.jsonlx",
            "out.jsonl.",
            "rej.jsonl.1",
            "a.txt",
            "sub/out.jsonl",
            "statex",
        ] {
            assert!(!own.contains(&root.join(p)), "{p}");
        }
    }
}
