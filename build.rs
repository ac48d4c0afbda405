//! Build script: records the git commit the binary is built from in
//! `WIREWATCH_COMMIT` (12 hex digits, or `unknown` outside a git checkout), for
//! `wirewatch --version` and `wirewatch_build_info`. It asks `git rev-parse`, and
//! where git is missing or refuses the checkout (another owner), reads `.git/HEAD`
//! and the ref it names itself.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A commit id cut to 12 hex digits, if `id` is one.
fn short(id: &str) -> Option<String> {
    let id = id.trim();
    (id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id[..12].to_owned())
}

/// The commit of `HEAD` read from the git folder `dir` (loose or packed ref).
fn read_head(dir: &Path) -> Option<String> {
    let head = std::fs::read_to_string(dir.join("HEAD")).ok()?;
    let Some(name) = head.trim().strip_prefix("ref: ") else {
        return short(&head);
    };
    if let Ok(id) = std::fs::read_to_string(dir.join(name)) {
        return short(&id);
    }
    let packed = std::fs::read_to_string(dir.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (id, r) = l.split_once(' ')?;
        (r == name).then(|| short(id)).flatten()
    })
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = git(&["rev-parse", "--git-dir"])
        .map(|d| manifest.join(d))
        .unwrap_or_else(|| manifest.join(".git"));
    let commit = git(&["rev-parse", "HEAD"])
        .and_then(|id| short(&id))
        .or_else(|| read_head(&dir))
        .unwrap_or_else(|| "unknown".to_owned());
    // Build again when HEAD moves: a checkout (HEAD), a commit on the branch (its
    // ref file) or a `git gc` that packs the refs.
    if dir.is_dir() {
        let watch = |p: &Path| println!("cargo:rerun-if-changed={}", p.display());
        watch(&dir.join("HEAD"));
        watch(&dir.join("packed-refs"));
        let head = std::fs::read_to_string(dir.join("HEAD")).unwrap_or_default();
        if let Some(name) = head.trim().strip_prefix("ref: ") {
            watch(&dir.join(name));
        }
    }
    println!("cargo:rustc-env=WIREWATCH_COMMIT={commit}");
}
