//! A file whose extraction runs past `parse.max_extract_ms` is rejected (`too_slow`),
//! recorded so that it is not retried, and does not hold up the file behind it. Also
//! `check` prints that reject like any other.

mod common;

use std::time::Duration;

use common::Daemon;
use wirewatch::extract::adversarial;

/// Two MiB of distinct titled names: seconds of extraction in a debug build, far
/// past the limit the tests set (no assertion here is about how long anything takes).
fn hostile() -> Vec<u8> {
    adversarial::names(2 << 20, 256 << 10).into_bytes()
}

/// A small article: well within the limit.
const GOOD: &[u8] = b"(Ottawa) Parliament met on Monday about the budget.\nPosted at 10:00 a.m.\nMr. John Smith said the budget would pass.\n";

const LIMIT: &str = "[parse]\nmax_extract_ms = 100\n";

#[test]
fn slow_extraction_is_rejected_and_the_next_file_still_emitted() {
    let mut d = Daemon::new(LIMIT);
    d.start();
    d.drop_file("a-hostile.txt", &hostile(), None);
    d.drop_file("b-good.txt", GOOD, None);
    let recs = d.wait_records(1);
    common::wait_for(Duration::from_secs(60), || !d.rejects().is_empty());
    assert_eq!(d.stop(), 0, "daemon did not stop cleanly:\n{}", d.log());
    let rejects = d.rejects();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let r = &rejects[0];
    assert!(
        r["path"].as_str().unwrap().ends_with("a-hostile.txt"),
        "{r}"
    );
    assert_eq!(r["error"]["kind"], "too_slow", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("parse.max_extract_ms"),
        "{r}"
    );
    let paths: Vec<&str> = recs
        .iter()
        .map(|r| r["source"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].ends_with("b-good.txt"), "{paths:?}");

    // The reject is the file's outcome: the next run does not read it again.
    let (code, stderr) = d.once();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(d.rejects().len(), 1, "{:?}", d.rejects());
    assert_eq!(d.records().len(), 1);
}

#[test]
fn check_prints_the_too_slow_reject() {
    let d = Daemon::new(LIMIT);
    let bad = d.path("hostile.txt");
    std::fs::write(&bad, hostile()).unwrap();
    let good = d.path("good.txt");
    std::fs::write(&good, GOOD).unwrap();
    let out = d
        .cmd()
        .args(["check", "--config"])
        .arg(d.config_path())
        .arg(&bad)
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reject: serde_json::Value = serde_json::from_str(stderr.trim()).expect("one JSON line");
    assert!(reject["path"].as_str().unwrap().ends_with("hostile.txt"));
    assert_eq!(reject["error"]["kind"], "too_slow", "{reject}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let record: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one record");
    assert_eq!(record["people"][0]["name"], "John Smith", "{record}");
}
