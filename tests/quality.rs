//! Extraction quality against hand-annotated articles: `wirewatch check` on the 30
//! annotated dev articles (`tests/fixtures/dev/`), scored with the project's scorer
//! (`tests/fixtures/gold/score_entities.py`, the annotation rules in `GUIDE.md` beside
//! it). Prints precision, recall and F1 per type and the quote speakers right, and fails
//! if any falls below the floor the extract stage has reached: a guard against
//! regressions, not a timing test. Needs `python3` (the standard library only).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The lowest F1 each type may score: (type as the scorer names it, floor).
const F1_FLOORS: &[(&str, f64)] = &[("people", 0.88), ("places", 0.92), ("organizations", 0.84)];

/// The fewest quotes (of those with a speaker in the gold) that must get that speaker.
const SPEAKERS_FLOOR: u32 = 23;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The scorer's summary line: `people P 0.92 R 0.87 F1 0.89; …; quote speakers 24/31`.
fn score() -> String {
    let gold = fixtures().join("gold");
    let mut articles: Vec<PathBuf> = std::fs::read_dir(&gold)
        .expect("read tests/fixtures/gold")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let article = name.strip_suffix(".gold.json")?.to_owned();
            Some(fixtures().join("dev").join(article))
        })
        .collect();
    articles.sort();
    assert_eq!(articles.len(), 30, "30 annotated articles");
    let out = Command::new(common::bin())
        .arg("check")
        .args(&articles)
        .output()
        .expect("run wirewatch check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let records = dir.path().join("records.jsonl");
    std::fs::write(&records, &out.stdout).expect("write records");
    let scored = Command::new("python3")
        .arg(gold.join("score_entities.py"))
        .arg(&records)
        .arg(&gold)
        .arg("--per-file")
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to score the extraction: {e}"));
    let text = String::from_utf8_lossy(&scored.stdout).into_owned();
    assert!(
        scored.status.success(),
        "scorer failed: {}{}",
        text,
        String::from_utf8_lossy(&scored.stderr)
    );
    println!("{text}");
    text.lines().last().unwrap_or("").to_owned()
}

/// The number after `key` in the part of `summary` about `kind`.
fn figure(summary: &str, kind: &str, key: &str) -> f64 {
    let part = summary
        .split("; ")
        .find(|p| p.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} in {summary:?}"));
    let words: Vec<&str> = part.split(' ').collect();
    let at = words
        .iter()
        .position(|w| *w == key)
        .unwrap_or_else(|| panic!("no {key} in {part:?}"));
    words[at + 1]
        .parse()
        .unwrap_or_else(|_| panic!("bad figure in {part:?}"))
}

#[test]
fn extraction_scores_at_least_its_floors_on_the_gold() {
    let summary = score();
    eprintln!("{summary}");
    for &(kind, floor) in F1_FLOORS {
        let f1 = figure(&summary, kind, "F1");
        assert!(f1 >= floor, "{kind} F1 {f1} fell below {floor}: {summary}");
    }
    let speakers = summary
        .rsplit("quote speakers ")
        .next()
        .and_then(|s| s.split('/').next())
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no quote speakers in {summary:?}"));
    assert!(
        speakers >= SPEAKERS_FLOOR,
        "{speakers} quote speakers right, fewer than {SPEAKERS_FLOOR}: {summary}"
    );
}
