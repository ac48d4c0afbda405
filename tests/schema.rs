//! The JSON Schemas `wirewatch schema` prints, checked by an independent validator:
//! python `jsonschema` (Draft 2020-12, with format checking; `tests/schema_validate.py`
//! drives it) judges every record and reject line that `wirewatch check` and a real
//! daemon (`run --once`) write for every fixture under `tests/fixtures` and for bad
//! inputs of every kind the tests can make; and broken lines must fail, so that the
//! validator is shown to apply the schema.
//!
//! The validator is the python that `WIREWATCH_SCHEMA_PYTHON` names (scripts/test.sh
//! sets it from `scripts/schema-validator.sh`), else `target/schema-venv/bin/python`,
//! else `python3`, if it can import `jsonschema` and `rfc3339_validator`. Without one
//! the tests print "skipped: ..." and pass, unless `CI` is set: then they fail.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// The python that can run the validator, or `None` (after `skip_or_fail`).
fn validator() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("WIREWATCH_SCHEMA_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/schema-venv/bin/python"));
    candidates.push(PathBuf::from("python3"));
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-c", "import jsonschema, rfc3339_validator"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    common::skip_or_fail(
        "no python with jsonschema and rfc3339-validator: run scripts/schema-validator.sh (scripts/test.sh does)",
    );
    None
}

/// `wirewatch schema ARGS`: the schema text, checked to be a JSON object.
fn schema_text(args: &[&str]) -> String {
    let out = Command::new(common::bin())
        .arg("schema")
        .args(args)
        .output()
        .unwrap();
    common::assert_success(&out);
    String::from_utf8(out.stdout).unwrap()
}

/// Validates `lines` against the schema `wirewatch schema ARGS` prints; one verdict
/// per line (`ok` or `invalid: …`).
fn validate(py: &Path, schema_args: &[&str], lines: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, schema_text(schema_args)).unwrap();
    let input = dir.path().join("lines.jsonl");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&input, text).unwrap();
    let out = Command::new(py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema_validate.py"))
        .arg(&schema)
        .arg(&input)
        .output()
        .unwrap();
    common::assert_success(&out);
    let verdicts: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(verdicts.len(), lines.len(), "one verdict per line");
    verdicts
}

/// Asserts every line is valid, naming the first few that are not.
fn assert_all_valid(py: &Path, schema_args: &[&str], lines: &[String]) {
    let verdicts = validate(py, schema_args, lines);
    let bad: Vec<String> = verdicts
        .iter()
        .zip(lines)
        .filter(|(v, _)| *v != "ok")
        .take(5)
        .map(|(v, l)| format!("{v}\n  in {}", &l[..l.len().min(300)]))
        .collect();
    assert!(
        bad.is_empty(),
        "lines that fail the schema:\n{}",
        bad.join("\n")
    );
}

/// Every `.txt` under tests/fixtures.
fn fixture_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "txt") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&common::fixtures(), &mut files);
    files.sort();
    assert!(files.len() >= 346, "fixtures missing: {}", files.len());
    files
}

/// Bad and odd inputs in `dir`: one of each reject kind a test can make, a
/// Windows-1252 file and a name that is not UTF-8 (`path_hex`).
fn odd_inputs(dir: &Path) {
    let w = |name: &[u8], bytes: &[u8]| {
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(name)), bytes).unwrap()
    };
    w(b"empty.txt", b"");
    w(b"blank.txt", b"  \n\n");
    w(b"nul.txt", b"(Ottawa) A \0 lede.\n");
    w(
        b"binary.txt",
        &[0x01, 0x02, 0x03, 0x1b, 0x7f, 0x05, 0x06, 0x07, 0x08, 0x0e],
    );
    w(b"nolede.txt", b"Posted at 10:23 a.m.\n");
    let mut long = b"(Ottawa) ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 300_000));
    w(b"long.txt", &long);
    w(
        b"latin.txt",
        b"(Qu\xe9bec) Le ministre a parl\xe9 hier soir.\nPubli\xe9 le 2 octobre 2022 \xe0 8 h 26\nSuite.\n",
    );
    w(
        b"caf\xe9-story.txt",
        b"(Ottawa) A story under a name that is not UTF-8.\nPosted October 2, 2022\nBody.\n",
    );
    std::fs::create_dir(dir.join("dir.txt")).unwrap();
    // Leads nowhere: `symlink` in the daemon, `not_found` in `check`.
    std::os::unix::fs::symlink("/nonexistent/wirewatch/x.txt", dir.join("nowhere.txt")).unwrap();
}

#[test]
fn schema_command_prints_draft_2020_12_schemas() {
    for (args, id) in [
        (&[][..], "urn:wirewatch:schema:record:2"),
        (&["record"][..], "urn:wirewatch:schema:record:2"),
        (&["reject"][..], "urn:wirewatch:schema:reject:1"),
        (&["--reject"][..], "urn:wirewatch:schema:reject:1"),
    ] {
        let v: Value = serde_json::from_str(&schema_text(args)).unwrap();
        assert_eq!(
            v["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{args:?}"
        );
        assert_eq!(v["$id"], id, "{args:?}");
        assert_eq!(v["additionalProperties"], false, "{args:?}");
        assert!(v["title"].is_string() && v["description"].is_string());
    }
    // The files under docs/schema are what the binary prints.
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema");
    assert_eq!(
        schema_text(&["record"]),
        std::fs::read_to_string(docs.join("record.schema.json")).unwrap()
    );
    assert_eq!(
        schema_text(&["reject"]),
        std::fs::read_to_string(docs.join("reject.schema.json")).unwrap()
    );
    let out = Command::new(common::bin())
        .args(["schema", "planet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `wirewatch check` over every fixture, the bad inputs, and one `--against` pair:
/// every record line on stdout and every reject line on stderr validates.
#[test]
fn check_lines_validate_for_every_fixture() {
    let Some(py) = validator() else { return };
    let dir = tempfile::tempdir().unwrap();
    odd_inputs(dir.path());
    let mut args: Vec<PathBuf> = fixture_files();
    let mut odd: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    odd.sort();
    args.extend(odd);
    args.push(dir.path().join("missing.txt"));
    let out = Command::new(common::bin())
        .arg("check")
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the bad inputs make it exit 1");
    let records: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let rejects: Vec<String> = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // Every fixture, the Windows-1252 file and the non-UTF-8 name are articles.
    assert_eq!(records.len(), fixture_files().len() + 2);
    let kinds: Vec<String> = rejects
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["error"]["kind"].to_string())
        .collect();
    for kind in [
        "empty",
        "blank",
        "nul_bytes",
        "binary",
        "no_lede",
        "line_too_long",
        "not_a_file",
        "not_found",
    ] {
        assert!(
            kinds.contains(&format!("{kind:?}")),
            "no {kind} in {kinds:?}"
        );
    }
    let parsed: Vec<Value> = records
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(parsed.iter().all(|r| r["emitted_at"].is_null()));
    assert!(parsed.iter().any(|r| r["posted_precision"] == "date"));
    assert!(parsed.iter().any(|r| r["posted_precision"] == "minute"));
    assert!(parsed.iter().any(|r| r["source"]["path_hex"].is_string()));
    assert!(parsed.iter().any(|r| r["encoding"] == "windows-1252"));

    let manifest = common::manifest();
    let (first, update) = common::first_and_update(&manifest);
    let dev = |f: &str| common::fixtures().join("dev").join(f);
    let pair = Command::new(common::bin())
        .arg("check")
        .arg("--against")
        .arg(dev(&first.file))
        .arg(dev(&update.file))
        .output()
        .unwrap();
    common::assert_success(&pair);
    let pair = String::from_utf8(pair.stdout)
        .unwrap()
        .trim_end()
        .to_owned();
    assert!(serde_json::from_str::<Value>(&pair).unwrap()["changes"].is_object());

    let mut all = records;
    all.push(pair);
    assert_all_valid(&py, &["record"], &all);
    assert_all_valid(&py, &["reject"], &rejects);
}

/// A real daemon over every fixture (with its capture time as mtime) and the bad
/// inputs: every line of the output and of the rejects file validates, revisions and
/// their `changes` included, and `emitted_at` lies within the run.
#[test]
fn daemon_lines_validate_for_every_fixture() {
    let Some(py) = validator() else { return };
    let d = common::Daemon::new("");
    let inbox = d.path("inbox");
    let manifest = common::manifest();
    for e in &manifest {
        common::copy_with_mtime(e, &inbox, &e.file);
    }
    let seed = inbox.join("seed.txt");
    std::fs::copy(common::seed(), &seed).unwrap();
    common::set_mtime(&seed, common::system_time("2022-10-03T02:55:00Z"));
    odd_inputs(&inbox);
    let before = jiff::Timestamp::now().as_second();
    let (code, err) = d.once();
    let after = jiff::Timestamp::now().as_second();
    assert_eq!(code, 0, "{err}");

    let lines = |p: &str| -> Vec<String> {
        std::fs::read_to_string(d.path(p))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let records = lines("out/articles.jsonl");
    let rejects = lines("out/rejected.jsonl");
    let parsed: Vec<Value> = records
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(parsed.len() > 250, "{} records", parsed.len());
    assert!(parsed.iter().any(|r| r["revision"].as_u64() > Some(1)));
    assert!(parsed.iter().any(|r| r["changes"].is_object()));
    for r in &parsed {
        let at: jiff::Timestamp = r["emitted_at"].as_str().unwrap().parse().unwrap();
        assert!(
            (before..=after).contains(&at.as_second()),
            "emitted_at {at} outside the run [{before}, {after}]"
        );
    }
    let kinds: Vec<Value> = rejects
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["error"]["kind"].clone())
        .collect();
    for kind in [
        "empty",
        "nul_bytes",
        "line_too_long",
        "not_a_file",
        "symlink",
    ] {
        assert!(kinds.contains(&json!(kind)), "no {kind} in {kinds:?}");
    }
    assert_all_valid(&py, &["record"], &records);
    assert_all_valid(&py, &["reject"], &rejects);
}

/// The seed's record with one change made by `edit`.
fn edited(seed: &Value, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut v = seed.clone();
    edit(v.as_object_mut().unwrap());
    v.to_string()
}

/// What the daemon adds to a revision 1 that `check` leaves out.
fn daemon_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("revision", json!(1)),
        ("supersedes", Value::Null),
        ("supersedes_utc", Value::Null),
        ("supersedes_precision", Value::Null),
        ("changes", Value::Null),
        ("emitted_at", json!("2026-12-02T05:04:12Z")),
    ]
}

/// Broken lines fail: a required field removed, a wrong type, a value the pattern
/// lets through but the format does not (a 13th month: only format checking catches
/// it), an unknown field, a kind outside its enum, a precision that contradicts the
/// stamp. The unedited line passes, so each failure is the edit's.
#[test]
fn broken_lines_fail_the_schema() {
    let Some(py) = validator() else { return };
    let out = Command::new(common::bin())
        .args(["check", "--reference-time", "2022-10-03T02:55:00Z"])
        .arg(common::seed())
        .output()
        .unwrap();
    common::assert_success(&out);
    let seed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("unedited", seed.to_string()),
        (
            "emitted_at removed",
            edited(&seed, |m| {
                m.remove("emitted_at");
            }),
        ),
        (
            "posted_at_utc removed",
            edited(&seed, |m| {
                m.remove("posted_at_utc");
            }),
        ),
        (
            "word_count a string",
            edited(&seed, |m| {
                m.insert("word_count".into(), json!("641"));
            }),
        ),
        (
            "posted_at_utc in month 13",
            edited(&seed, |m| {
                m.insert("posted_at_utc".into(), json!("2022-13-03T02:23:00Z"));
            }),
        ),
        (
            "posted_at_utc with an offset",
            edited(&seed, |m| {
                m.insert("posted_at_utc".into(), json!("2022-10-02T22:23:00-04:00"));
            }),
        ),
        (
            "unknown field",
            edited(&seed, |m| {
                m.insert("posted".into(), json!("2022-10-02"));
            }),
        ),
        (
            "place kind outside the enum",
            edited(&seed, |m| {
                m["places"][0]["kind"] = json!("planet");
            }),
        ),
        (
            "date precision on an instant",
            edited(&seed, |m| {
                m.insert("posted_precision".into(), json!("date"));
            }),
        ),
        (
            "revision without supersedes",
            edited(&seed, |m| {
                m.insert("revision".into(), json!(1));
            }),
        ),
        (
            "a daemon's revision 1 without emitted_at",
            edited(&seed, |m| {
                for (k, v) in daemon_fields() {
                    m.insert(k.into(), v);
                }
                m.insert("emitted_at".into(), Value::Null);
            }),
        ),
    ];
    let mut lines: Vec<String> = cases.iter().map(|(_, l)| l.clone()).collect();
    // Control: the same as the daemon writes it passes.
    lines.push(edited(&seed, |m| {
        for (k, v) in daemon_fields() {
            m.insert(k.into(), v);
        }
    }));
    let mut verdicts = validate(&py, &["record"], &lines);
    assert_eq!(
        verdicts.pop().as_deref(),
        Some("ok"),
        "a daemon's revision 1"
    );
    assert_eq!(verdicts[0], "ok", "the unedited seed record");
    for ((what, _), verdict) in cases.iter().zip(&verdicts).skip(1) {
        assert!(verdict.starts_with("invalid: "), "{what}: {verdict}");
    }

    let reject = json!({"path": "a.txt", "error": {"kind": "empty", "message": "zero bytes"},
        "bytes": 0, "modified": "2022-10-03T02:55:00Z", "sha256": null,
        "rejected_at": "2022-10-03T02:55:01.5Z"});
    let r = |edit: &dyn Fn(&mut Value)| {
        let mut v = reject.clone();
        edit(&mut v);
        v.to_string()
    };
    let lines = vec![
        reject.to_string(),
        r(&|v| v["error"]["kind"] = json!("exploded")),
        r(&|v| {
            v.as_object_mut().unwrap().remove("rejected_at");
        }),
        r(&|v| v["rejected_at"] = json!("2022-10-03T25:00:00Z")),
        r(&|v| v["bytes"] = json!(-1)),
    ];
    let verdicts = validate(&py, &["reject"], &lines);
    assert_eq!(verdicts[0], "ok", "the unedited reject line");
    for (i, verdict) in verdicts.iter().enumerate().skip(1) {
        assert!(
            verdict.starts_with("invalid: "),
            "reject case {i}: {verdict}"
        );
    }
}
