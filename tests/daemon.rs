//! `wirewatch run` on real folders: real file-system events, a real redb state, the
//! real binary. Files are dropped by rename and by slow in-place writes, the daemon is
//! restarted, versions arrive out of order, and the output is checked line by line.

mod common;

use std::io::Write;
use std::time::Duration;

use common::Daemon;
use serde_json::Value;

fn seed_bytes() -> Vec<u8> {
    std::fs::read(common::seed()).unwrap()
}

fn seed_mtime() -> std::time::SystemTime {
    common::system_time("2022-10-03T02:55:00Z")
}

#[test]
fn seed_is_emitted_then_a_copy_is_a_duplicate() {
    let mut d = Daemon::new("");
    d.start();
    d.drop_file("seed.txt", &seed_bytes(), Some(seed_mtime()));
    let recs = d.wait_records(1);
    let r = &recs[0];
    assert_eq!(r["dateline"], "Washington");
    assert_eq!(r["posted_at"], "2022-10-02T22:23:00-04:00");
    assert_eq!(r["updated_at"], "2022-10-02T22:53:00-04:00");
    assert_eq!(r["revision"], 1);
    assert_eq!(r["supersedes"], Value::Null);
    assert!(r["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with("/inbox/seed.txt"));
    // The same article under another name: a duplicate, not a second line.
    d.drop_file("seed-again.txt", &seed_bytes(), Some(seed_mtime()));
    common::wait_for(Duration::from_secs(20), || d.log().contains("duplicate"));
    assert_eq!(d.stop(), 0);
    assert_eq!(d.records().len(), 1);
    assert!(d.log().contains("seed-again.txt"));
}

/// `run --once` over the whole dev corpus: for every group its newest version exactly
/// once, never an older version after a newer one, never two lines with the same
/// article_id and stamp; the summary adds up to the number of files.
#[test]
fn once_over_dev_corpus() {
    let d = Daemon::new("");
    let manifest = common::manifest();
    for e in &manifest {
        common::copy_with_mtime(e, &d.path("inbox"), &e.file);
    }
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    let recs = d.records();
    common::check_corpus_output(&manifest, &recs);
    let summary = err
        .lines()
        .find(|l| l.contains("files seen"))
        .expect("summary line");
    let nums: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    // seen, emitted, updates, duplicates, stale, rejected, unchanged
    assert_eq!(nums[0], manifest.len() as u64, "{summary}");
    assert_eq!(
        nums[1] + nums[3] + nums[4] + nums[5] + nums[6],
        nums[0],
        "{summary}"
    );
    assert_eq!(nums[1], recs.len() as u64);

    // Restart on the same folder and state: nothing new.
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    assert_eq!(d.records().len(), recs.len(), "restart emitted again");
    assert!(
        err.contains(&format!("{} unchanged", manifest.len())),
        "{err}"
    );
}

#[test]
fn restart_then_one_update_emits_exactly_it() {
    let manifest = common::manifest();
    let (first, update) = common::first_and_update(&manifest);
    let mut d = Daemon::new("");
    d.drop_fixture(first, "first.txt");
    let (code, _) = d.once();
    assert_eq!(code, 0);
    assert_eq!(d.records().len(), 1);
    d.start();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.records().len(), 1, "restart must not emit again");
    d.drop_fixture(update, "update.txt");
    let recs = d.wait_records(2);
    assert_eq!(d.stop(), 0);
    let recs_after = d.records();
    assert_eq!(recs_after.len(), 2);
    assert_eq!(recs[1]["article_id"], recs[0]["article_id"]);
    assert_eq!(recs[1]["revision"], 2);
    assert_eq!(
        recs[1]["supersedes"],
        recs[0]["updated_at"]
            .clone()
            .as_str()
            .map_or(recs[0]["posted_at"].clone(), Value::from)
    );
}

#[test]
fn versions_out_of_order_newest_wins() {
    let manifest = common::manifest();
    let (first, update) = common::first_and_update(&manifest);
    let mut d = Daemon::new("");
    d.start();
    d.drop_fixture(update, "b-update.txt");
    d.wait_records(1);
    d.drop_fixture(first, "a-first.txt");
    common::wait_for(Duration::from_secs(20), || d.log().contains("stale"));
    assert_eq!(d.stop(), 0);
    let recs = d.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["updated_at"].as_str(), update.updated.as_deref());
}

#[test]
fn slow_in_place_write_is_read_whole() {
    let mut d = Daemon::new("");
    d.start();
    let seed = seed_bytes();
    let path = d.path("inbox").join("slow.txt");
    let mut f = std::fs::File::create(&path).unwrap();
    let (a, b) = seed.split_at(seed.len() / 3);
    f.write_all(a).unwrap();
    f.flush().unwrap();
    for chunk in b.chunks(b.len() / 4 + 1) {
        std::thread::sleep(Duration::from_millis(120)); // under the 200 ms settle time
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
    }
    drop(f);
    let recs = d.wait_records(1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.stop(), 0);
    assert_eq!(d.records().len(), 1, "one record, not one per partial read");
    assert_eq!(recs[0]["source"]["bytes"], seed.len() as u64);
    assert!(d.rejects().is_empty(), "{:?}", d.rejects());
}

#[test]
fn overwritten_in_place_with_new_content_is_a_new_input() {
    let manifest = common::manifest();
    let (first, update) = common::first_and_update(&manifest);
    let mut d = Daemon::new("");
    d.start();
    let p = d.drop_fixture(first, "story.txt");
    d.wait_records(1);
    std::fs::write(
        &p,
        std::fs::read(common::fixtures().join("dev").join(&update.file)).unwrap(),
    )
    .unwrap();
    common::set_mtime(&p, common::system_time(&update.reference_time));
    let recs = d.wait_records(2);
    assert_eq!(d.stop(), 0);
    assert_eq!(recs[1]["revision"], 2);
}

#[test]
fn output_to_stdout() {
    let d = Daemon::new("");
    d.drop_file("seed.txt", &seed_bytes(), Some(seed_mtime()));
    let out = d
        .cmd()
        .args(["run", "--once", "--output", "-", "--config"])
        .arg(d.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["dateline"], "Washington");
}

#[test]
fn rejects_are_recorded_and_not_retried_until_changed() {
    let d = Daemon::new("");
    d.drop_file("empty.txt", b"", None);
    d.drop_file("good.txt", &seed_bytes(), Some(seed_mtime()));
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    let rej = d.rejects();
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0]["error"]["kind"], "empty");
    assert!(rej[0]["path"].as_str().unwrap().ends_with("empty.txt"));
    assert_eq!(d.records().len(), 1);
    let (_, _) = d.once();
    assert_eq!(
        d.rejects().len(),
        1,
        "rejected file retried without a change"
    );
    std::fs::write(d.path("inbox/empty.txt"), b"  \n").unwrap();
    let (_, _) = d.once();
    let rej = d.rejects();
    assert_eq!(rej.len(), 2);
    assert_eq!(rej[1]["error"]["kind"], "blank");
}
