//! `wirewatch check` on real files: the seed, the whole dev corpus (stamps, datelines,
//! story identity), bad files, and the CLI contract (stdout, stderr, exit status).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

fn check(args: &[&str]) -> (i32, Vec<Value>, Vec<Value>) {
    let out = Command::new(common::bin())
        .arg("check")
        .args(args)
        .output()
        .expect("run wirewatch");
    let parse = |b: &[u8]| -> Vec<Value> {
        String::from_utf8_lossy(b)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    };
    (
        out.status.code().unwrap_or(-1),
        parse(&out.stdout),
        parse(&out.stderr),
    )
}

#[test]
fn seed_record() {
    let seed = common::seed();
    let (code, out, err) = check(&[
        "--reference-time",
        "2022-10-03T02:55:00Z",
        seed.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err:?}");
    let r = &out[0];
    assert_eq!(r["dateline"], "Washington");
    assert_eq!(r["posted_at"], "2022-10-02T22:23:00-04:00");
    assert_eq!(r["updated_at"], "2022-10-02T22:53:00-04:00");
    assert_eq!(r["capture_time"], "2022-10-02T22:55:00-04:00");
    assert_eq!(r["language"], "en");
    assert_eq!(r["encoding"], "utf-8");
    let headings: Vec<&Value> = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["heading"])
        .collect();
    assert_eq!(
        headings,
        vec![
            &Value::Null,
            &Value::from("Drug Enforcement"),
            &Value::from("The voice of the OAS")
        ]
    );
    let paragraphs: usize = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["paragraphs"].as_array().unwrap().len())
        .sum();
    assert_eq!(paragraphs, 15);
    assert!(r["lede"]
        .as_str()
        .unwrap()
        .starts_with("US Secretary of State Antony Blinken kicks off"));
    assert!(r["title"]
        .as_str()
        .unwrap()
        .starts_with("US Secretary of State Antony Blinken"));
    assert_eq!(r["source"]["bytes"], 3997);
    assert_eq!(r["article_id"].as_str().unwrap().len(), 16);
    assert!(r["word_count"].as_u64().unwrap() > 500);
}

#[test]
fn timezone_flag_changes_offsets() {
    let seed = common::seed();
    let (code, out, _) = check(&[
        "--reference-time",
        "2022-10-03T02:55:00Z",
        "--timezone",
        "Europe/Paris",
        seed.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    // 02:55Z is 04:55 in Paris, so "10:23 p.m." is the evening before.
    assert_eq!(out[0]["posted_at"], "2022-10-02T22:23:00+02:00");
    let out = Command::new(common::bin())
        .args([
            "check",
            "--timezone",
            "Mars/Olympus",
            seed.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mars/Olympus"));
}

/// Every dev file, with its capture time as the file's mtime (the default reference),
/// in one `check` run: stamps and datelines as the manifest says, and article_id
/// partitions the files exactly as `group` does.
#[test]
fn dev_corpus_stamps_and_identity() {
    let manifest = common::manifest();
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for e in &manifest {
        paths.push(
            common::copy_with_mtime(e, dir.path(), &e.file)
                .to_string_lossy()
                .into_owned(),
        );
    }
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (code, out, err) = check(&args);
    assert_eq!(code, 0, "{err:?}");
    assert_eq!(out.len(), manifest.len());
    let mut by_group: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut by_id: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (e, r) in manifest.iter().zip(&out) {
        assert!(r["source"]["path"].as_str().unwrap().ends_with(&e.file));
        let want = (
            e.posted.as_deref(),
            e.updated.as_deref(),
            e.dateline.as_deref(),
        );
        let got = (
            r["posted_at"].as_str(),
            r["updated_at"].as_str(),
            r["dateline"].as_str(),
        );
        if want != got {
            wrong.push(format!("{}: want {want:?} got {got:?}", e.file));
        }
        let id = r["article_id"].as_str().unwrap().to_owned();
        by_group.entry(&e.group).or_default().insert(id.clone());
        by_id.entry(id).or_default().insert(&e.group);
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let split: Vec<_> = by_group.iter().filter(|(_, ids)| ids.len() > 1).collect();
    let merged: Vec<_> = by_id.iter().filter(|(_, gs)| gs.len() > 1).collect();
    assert!(split.is_empty(), "groups split across ids: {split:?}");
    assert!(merged.is_empty(), "groups merged into one id: {merged:?}");
}

#[test]
fn bad_files_go_to_stderr_and_others_still_print() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("empty.txt"), b"").unwrap();
    std::fs::write(p("blank.txt"), b" \n\n\t \r\n").unwrap();
    std::fs::write(p("nul.txt"), b"(Paris) Hello\0world\n").unwrap();
    std::fs::write(p("nolede.txt"), b"(Paris)\nPosted at 1:00 p.m.\n").unwrap();
    std::fs::write(
        p("latin1.txt"),
        b"(Qu\xe9bec) Le premier ministre a parl\xe9 aujourd'hui.\nPosted at 1:00 p.m.\nBody.\n",
    )
    .unwrap();
    std::fs::write(
        p("bom.txt"),
        b"\xEF\xBB\xBF(Ottawa) The lede.\r\nPosted at 1:00 p.m.\r\nBody.\r\n",
    )
    .unwrap();
    std::fs::create_dir(p("dir.txt")).unwrap();
    let names = [
        "empty.txt",
        "blank.txt",
        "latin1.txt",
        "nul.txt",
        "nolede.txt",
        "bom.txt",
        "dir.txt",
        "missing.txt",
    ];
    let paths: Vec<String> = names
        .iter()
        .map(|n| p(n).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["--reference-time", "2022-10-03T02:55:00Z"];
    args.extend(paths.iter().map(String::as_str));
    let (code, out, err) = check(&args);
    assert_eq!(code, 1);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["encoding"], "windows-1252");
    assert_eq!(out[0]["dateline"], "Québec");
    assert_eq!(out[1]["encoding"], "utf-8");
    assert_eq!(out[1]["dateline"], "Ottawa");
    let kinds: Vec<(&str, &str)> = err
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap(),
                e["error"]["kind"].as_str().unwrap(),
            )
        })
        .collect();
    let want = [
        ("empty.txt", "empty"),
        ("blank.txt", "blank"),
        ("nul.txt", "nul_bytes"),
        ("nolede.txt", "no_lede"),
        ("dir.txt", "not_a_file"),
        ("missing.txt", "not_found"),
    ];
    assert_eq!(kinds.len(), want.len(), "{err:?}");
    for ((path, kind), (name, wkind)) in kinds.iter().zip(want) {
        assert!(path.ends_with(name), "{path} vs {name}");
        assert_eq!(*kind, wkind, "{path}");
    }
    assert!(err
        .iter()
        .all(|e| !e["error"]["message"].as_str().unwrap().is_empty()));
}

#[test]
fn too_large_is_refused_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "[parse]\nmax_bytes = 1000\n").unwrap();
    let big = dir.path().join("big.txt");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(10_000_000).unwrap(); // sparse: never read
    let (code, out, err) = check(&["--config", cfg.to_str().unwrap(), big.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(err[0]["error"]["kind"], "too_large");
}

#[test]
fn validate_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "[watch]\nsettle = 3\n").unwrap();
    let out = Command::new(common::bin())
        .args(["validate", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("settle"), "{msg}");
    let shipped = common::fixtures().join("../../config/wirewatch.toml");
    let out = Command::new(common::bin())
        .args(["validate", "--config", shipped.to_str().unwrap()])
        .output()
        .unwrap();
    common::assert_success(&out);
}
