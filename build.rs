//! Build script: records the git commit the binary is built from in
//! `WIREWATCH_COMMIT` (12 hex digits, or `unknown` outside a git checkout or
//! without git), for `wirewatch --version` and `wirewatch_build_info`.

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

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|c| c.len() >= 7 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    // Build again when HEAD moves: a checkout (HEAD), a commit on the branch (its
    // ref file) or a `git gc` that packs the refs.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = PathBuf::from(dir);
        let watch = |p: &Path| println!("cargo:rerun-if-changed={}", p.display());
        watch(&dir.join("HEAD"));
        watch(&dir.join("packed-refs"));
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(&dir.join(r));
        }
    }
    println!("cargo:rustc-env=WIREWATCH_COMMIT={commit}");
}
