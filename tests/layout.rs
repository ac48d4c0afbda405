//! The shape of `src/`: the modules form no import cycle, every file opens with a
//! `//!` comment saying what it owns, and no file outside the data tables grows past
//! the size one concern takes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files that are data tables, not logic: exempt from the size limit.
const DATA_TABLES: &[&str] = &["extract/lexicon.rs"];

/// Lines a source file may have (tests included).
const MAX_LINES: usize = 620;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src() -> (PathBuf, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    assert!(files.len() > 20, "no sources under {}", root.display());
    (root, files)
}

/// The top-level module a file belongs to (`pipeline/reader.rs` → `pipeline`).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// `crate::x` references outside comments, by top-level module.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let (root, files) = src();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let m = module_of(&root, f);
        if m == "lib" || m == "main" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != m {
                    edges.entry(m.clone()).or_default().insert(name);
                }
            }
        }
    }
    edges
}

/// A cycle through `start`, if any (depth-first search).
fn cycle_from(
    edges: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in edges.get(at).into_iter().flatten() {
        if next == start {
            let mut c = path.clone();
            c.push(start.to_owned());
            return Some(c);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(c) = cycle_from(edges, start, next, path, seen) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn modules_form_no_import_cycle() {
    let edges = graph();
    assert!(edges.contains_key("pipeline"), "{edges:?}");
    for m in edges.keys() {
        let mut path = vec![m.clone()];
        let found = cycle_from(&edges, m, m, &mut path, &mut BTreeSet::new());
        assert!(
            found.is_none(),
            "import cycle: {}",
            found.unwrap().join(" → ")
        );
    }
}

#[test]
fn every_file_says_what_it_owns_and_stays_small() {
    let (root, files) = src();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.starts_with("//!"),
            "{rel}: does not open with a //! comment saying what it owns"
        );
        let lines = text.lines().count();
        if !DATA_TABLES.contains(&rel.as_str()) {
            assert!(
                lines <= MAX_LINES,
                "{rel}: {lines} lines; split it by concern"
            );
        }
    }
}
