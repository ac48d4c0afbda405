//! The state database under hostile conditions: a damaged file (cut short, bytes
//! changed) is a clear error that says what to do, and doing it loses and doubles
//! nothing; a full state volume makes commits fail until space comes back, then the
//! daemon carries on by itself, and one SIGTERM stops it while commits fail.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Daemon;

/// A distinct story per `n`: its own posted minute, so ids never collide.
fn story(n: usize) -> Vec<u8> {
    let (day, hour, min) = (1 + (n / 1440) % 28, (n / 60) % 24, n % 60);
    format!(
        "(Halifax) Harbour authority {n} approved a dredging plan for the port today.\nPosted on October {day}, 2022 at {hour}:{min:02}\nWork starts in the spring, officials said.\n"
    )
    .into_bytes()
}

fn names(recs: &[serde_json::Value]) -> BTreeSet<String> {
    recs.iter()
        .map(|r| {
            let p = r["source"]["path"].as_str().unwrap();
            p.rsplit('/').next().unwrap().to_owned()
        })
        .collect()
}

/// SIGTERM once, then wait at most `limit` for the exit; returns the exit code.
fn stop_within(d: &mut Daemon, limit: Duration) -> i32 {
    let mut child = d.child.take().expect("running");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "one SIGTERM did not stop the daemon within {limit:?}; log tail:\n{}",
                tail(&d.log())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tail(log: &str) -> &str {
    let mut from = log.len().saturating_sub(2000);
    while !log.is_char_boundary(from) {
        from += 1;
    }
    &log[from..]
}

/// xorshift64*: seeded, so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Damage done to the state file, in place (as a disk, a stray `dd` or an editor would).
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Cut to half its length.
    Truncate,
    /// Bytes changed at a few seeded places in every used 4 KiB page of the middle half
    /// of the file; the pattern depends on the seed.
    Flip(u64),
}

fn damage(file: &Path, how: Damage) {
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    let len = f.metadata().unwrap().len();
    let seed = match how {
        Damage::Truncate => return f.set_len(len / 2).unwrap(),
        Damage::Flip(seed) => seed,
    };
    let bytes = std::fs::read(file).unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (from, to) = (len as usize / 4 / 4096 * 4096, len as usize * 3 / 4);
    let mut changed = 0;
    for page in (from..to).step_by(4096) {
        let end = (page + 4096).min(bytes.len());
        if bytes[page..end].iter().all(|&b| b == 0) {
            continue; // never written: nothing to damage
        }
        for _ in 0..1 + rng.next() % 4 {
            let at = page + (rng.next() as usize) % (end - page);
            let old = bytes[at];
            let new = match seed % 4 {
                0 => !old,
                1 => old ^ (1 << (rng.next() % 8)),
                2 if old != 0 => 0,
                _ => old ^ (1 + (rng.next() % 255) as u8),
            };
            f.write_at(&[new], at as u64).unwrap();
            changed += 1;
        }
    }
    assert!(changed > 0, "nothing to damage in the middle of {file:?}");
}

/// The `mv FROM TO` the error message proposes.
fn proposed_move(stderr: &str) -> (PathBuf, PathBuf) {
    let start = stderr
        .find("`mv ")
        .unwrap_or_else(|| panic!("no `mv …` in:\n{stderr}"))
        + 4;
    let cmd = &stderr[start..start + stderr[start..].find('`').unwrap()];
    let (from, to) = cmd.split_once(' ').unwrap();
    (PathBuf::from(from), PathBuf::from(to))
}

#[test]
fn a_damaged_state_is_a_clear_error_and_moving_it_aside_adopts_the_output() {
    let manifest = common::manifest();
    let d = Daemon::new("");
    for (i, e) in manifest.iter().take(40).enumerate() {
        common::copy_with_mtime(e, &d.path("inbox"), &format!("{i:03}-{}", e.file));
    }
    for n in 0..20 {
        d.drop_file(&format!("s{n:02}.txt"), &story(n), None);
    }
    let (code, stderr) = d.once();
    assert_eq!(code, 0, "{stderr}");
    let before = d.records();
    let rejects = d.rejects().len();
    let ids: BTreeSet<String> = before
        .iter()
        .map(|r| r["article_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(before.len() > 40, "{} records", before.len());
    let state = d.path("state");
    let db = state.join("wirewatch.redb");
    let cases = [
        Damage::Truncate,
        Damage::Flip(1),
        Damage::Flip(2),
        Damage::Flip(3),
        Damage::Flip(4),
        Damage::Flip(7),
    ];
    for how in cases {
        // The state in place is the one the last run left, cleanly closed.
        damage(&db, how);
        let (code, stderr) = d.once();
        assert_eq!(code, 1, "{how:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{how:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{} is damaged", db.display())),
            "{how:?}: the message does not name the state file: {stderr}"
        );
        assert!(
            stderr.contains("move the state folder aside"),
            "{how:?}: {stderr}"
        );
        assert_eq!(d.records().len(), before.len(), "{how:?}: output changed");
        // Do what the message says.
        let (from, to) = proposed_move(&stderr);
        assert_eq!(from, state, "{how:?}: {stderr}");
        std::fs::rename(&from, &to).unwrap();
        let (code, stderr) = d.once();
        assert_eq!(code, 0, "{how:?}: after moving the state aside: {stderr}");
        let after = d.records();
        assert_eq!(
            after.len(),
            before.len(),
            "{how:?}: records lost or doubled"
        );
        let distinct: BTreeSet<(String, u64)> = after
            .iter()
            .map(|r| {
                let id = r["article_id"].as_str().unwrap().to_owned();
                (id, r["revision"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(distinct.len(), after.len(), "{how:?}: a version doubled");
        let after_ids: BTreeSet<String> = distinct.into_iter().map(|(id, _)| id).collect();
        assert_eq!(after_ids, ids, "{how:?}");
        assert_eq!(d.rejects().len(), rejects, "{how:?}: rejects doubled");
        std::fs::remove_dir_all(&to).unwrap();
    }
}

#[test]
fn a_full_state_volume_blocks_commits_then_the_daemon_resumes_by_itself() {
    let mut d = Daemon::new("");
    let Some(_tmpfs) = common::mount_tmpfs(&d.path("state"), "8m") else {
        return;
    };
    d.start();
    d.drop_file("first.txt", &story(0), None);
    d.wait_records(1);
    let filler = common::fill(&d.path("state"));
    d.drop_file("f01.txt", &story(1), None);
    common::wait_for(Duration::from_secs(20), || {
        d.log().contains("cannot commit a batch")
    });
    for n in 2..20 {
        d.drop_file(&format!("f{n:02}.txt"), &story(n), None);
    }
    // Space comes back: the daemon reopens the state and carries on, unasked.
    std::fs::remove_file(&filler).unwrap();
    d.wait_records(20);
    d.drop_file("after.txt", &story(20), None);
    common::wait_for(Duration::from_secs(30), || d.records().len() >= 21);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stop_within(&mut d, Duration::from_secs(30)), 0);
    let recs = d.records();
    assert_eq!(
        recs.len(),
        21,
        "lost or doubled after the state volume filled"
    );
    assert_eq!(names(&recs).len(), 21);
    assert!(d.log().contains("opened again after an I/O error"));
}

#[test]
fn one_sigterm_stops_the_daemon_while_state_commits_fail() {
    let mut d = Daemon::new("");
    let Some(_tmpfs) = common::mount_tmpfs(&d.path("state"), "8m") else {
        return;
    };
    d.start();
    let filler = common::fill(&d.path("state"));
    for n in 0..10 {
        d.drop_file(&format!("f{n:02}.txt"), &story(n), None);
    }
    common::wait_for(Duration::from_secs(20), || {
        d.log().contains("cannot commit a batch")
    });
    let code = stop_within(&mut d, Duration::from_secs(30));
    assert_eq!(code, 1, "{}", tail(&d.log()));
    assert!(
        d.log()
            .contains("what was not committed is recovered at the next start"),
        "{}",
        tail(&d.log())
    );
    // The next start, with space again, ends with every file exactly once.
    std::fs::remove_file(&filler).unwrap();
    let (code, stderr) = d.once();
    assert_eq!(code, 0, "{stderr}");
    let recs = d.records();
    assert_eq!(recs.len(), 10, "lost or doubled: {stderr}");
    assert_eq!(names(&recs).len(), 10);
}

/// Rewrites a state in layout 1, as the releases before layout 2 wrote it: every
/// value as `serde_json::to_vec` of its type (that release's encoding), one row per
/// snapshot in `snapshots`, the version as 1.
fn downgrade_to_layout_1(state: &Path) {
    use redb::{ReadableTable, TableDefinition};
    use wirewatch::dedupe::codec;
    const ARTICLES: TableDefinition<&str, &[u8]> = TableDefinition::new("articles");
    const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
    const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    const INDEX: TableDefinition<&str, (u64, u32, u32)> = TableDefinition::new("snapshot_index");
    const CHUNKS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshot_chunks");
    const LIVE: TableDefinition<u64, u32> = TableDefinition::new("snapshot_live");
    // Every article's snapshot, read through the store (the current layout packs
    // them).
    let ids: Vec<String> = {
        let db = redb::Database::open(state.join("wirewatch.redb")).unwrap();
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(ARTICLES).unwrap();
        t.iter()
            .unwrap()
            .map(|r| r.unwrap().0.value().to_owned())
            .collect()
    };
    let snapshots: Vec<(String, Vec<u8>)> = {
        let store = wirewatch::dedupe::Store::open(state, 1 << 20).unwrap();
        ids.into_iter()
            .map(|id| {
                let s = store
                    .snapshot(&id)
                    .unwrap()
                    .expect("a snapshot per article");
                (id, serde_json::to_vec(&s).unwrap())
            })
            .collect()
    };
    assert!(!snapshots.is_empty());
    let _ = std::fs::remove_file(state.join("wirewatch.redb.closed"));
    let db = redb::Database::open(state.join("wirewatch.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(ARTICLES).unwrap();
        let rows: Vec<(String, Vec<u8>)> = t
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                let a = codec::decode_article(v.value()).unwrap();
                (k.value().to_owned(), serde_json::to_vec(&a).unwrap())
            })
            .collect();
        assert!(!rows.is_empty());
        for (k, v) in rows {
            t.insert(k.as_str(), v.as_slice()).unwrap();
        }
        let mut t = tx.open_table(SNAPSHOTS).unwrap();
        for (k, v) in &snapshots {
            t.insert(k.as_str(), v.as_slice()).unwrap();
        }
        let mut t = tx.open_table(FILES).unwrap();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = t
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                let f = codec::decode_file(v.value()).unwrap();
                (k.value().to_vec(), serde_json::to_vec(&f).unwrap())
            })
            .collect();
        for (k, v) in rows {
            t.insert(k.as_slice(), v.as_slice()).unwrap();
        }
        let mut t = tx.open_table(META).unwrap();
        for name in ["output", "rejects"] {
            let c = t
                .get(name)
                .unwrap()
                .map(|v| codec::decode_committed(v.value()).unwrap());
            if let Some(c) = c {
                t.insert(name, serde_json::to_vec(&c).unwrap().as_slice())
                    .unwrap();
            }
        }
        t.insert("version", 1u32.to_le_bytes().as_slice()).unwrap();
        // Layout 1 had no dictionary.
        t.remove("snapshot_dict").unwrap();
    }
    tx.delete_table(INDEX).unwrap();
    tx.delete_table(CHUNKS).unwrap();
    tx.delete_table(LIVE).unwrap();
    tx.commit().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The file's lines, sorted, each without `emitted_at` (the one field that differs
/// between two runs on the same inputs; it must be there, a UTC time).
fn sorted_lines(file: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let at = v.as_object_mut().unwrap().remove("emitted_at");
            let at = at.as_ref().and_then(|a| a.as_str()).unwrap_or_default();
            assert!(
                at.parse::<jiff::Timestamp>().is_ok() && at.ends_with('Z'),
                "{l}"
            );
            v.to_string()
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn a_layout_1_state_is_migrated_at_open_and_the_updates_come_out_the_same() {
    let manifest = common::manifest();
    let d = Daemon::new("");
    let inbox = d.path("inbox");
    for (i, e) in manifest
        .iter()
        .enumerate()
        .filter(|(_, e)| e.role == "first")
    {
        common::copy_with_mtime(e, &inbox, &format!("{i:03}-{}", e.file));
    }
    let (code, stderr) = d.once();
    assert_eq!(code, 0, "{stderr}");
    // The same state twice: one left in the current layout, one taken back to layout 1.
    let (state, out) = (d.path("state"), d.path("out"));
    let (kept_state, kept_out) = (d.path("state.kept"), d.path("out.kept"));
    copy_dir(&state, &kept_state);
    copy_dir(&out, &kept_out);
    downgrade_to_layout_1(&state);
    for (i, e) in manifest
        .iter()
        .enumerate()
        .filter(|(_, e)| e.role != "first")
    {
        common::copy_with_mtime(e, &inbox, &format!("{i:03}-{}", e.file));
    }
    let (code, stderr) = d.once();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("state migrated from layout version 1 to 4"),
        "{stderr}"
    );
    let migrated = sorted_lines(&out.join("articles.jsonl"));
    let again = d.once();
    assert_eq!(again.0, 0, "{}", again.1);
    assert!(!again.1.contains("migrated"), "migrated twice: {}", again.1);
    // The same inputs on the state that never left the current layout.
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::rename(&kept_state, &state).unwrap();
    std::fs::rename(&kept_out, &out).unwrap();
    let (code, stderr) = d.once();
    assert_eq!(code, 0, "{stderr}");
    let control = sorted_lines(&out.join("articles.jsonl"));
    assert_eq!(migrated.len(), control.len());
    assert_eq!(migrated, control, "the records differ after the migration");
    // Updates were diffed against snapshots that went through the migration.
    let diffed = d
        .records()
        .iter()
        .filter(|r| {
            let c = &r["changes"];
            c.is_object()
                && (c["lede_changed"] == true
                    || !c["paragraphs"]["removed"].as_array().unwrap().is_empty()
                    || !c["paragraphs"]["edited"].as_array().unwrap().is_empty())
        })
        .count();
    assert!(diffed >= 5, "{diffed} revisions with changes");
}

/// The state stays the size of the folder: files that left it are forgotten after
/// the next start's scan, files still there (and one landing during the run) are not.
#[test]
fn files_that_left_the_folder_are_forgotten_at_the_next_start() {
    let d = Daemon::new("");
    for n in 0..6 {
        d.drop_file(&format!("s{n}.txt"), &story(n), None);
    }
    let (code, log) = d.once();
    assert_eq!(code, 0, "{log}");
    let files = || {
        let store = wirewatch::dedupe::Store::open(&d.path("state"), 1 << 20).unwrap();
        store.counts().unwrap().1
    };
    assert_eq!(files(), 6);
    for n in 0..4 {
        std::fs::remove_file(d.path(&format!("inbox/s{n}.txt"))).unwrap();
    }
    let (code, log) = d.once();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("2 unchanged"), "{log}");
    assert_eq!(files(), 2, "the 4 gone files are forgotten");
    // The two left are still known: a third start reads nothing.
    let (code, log) = d.once();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("0 emitted") && log.contains("2 unchanged"),
        "{log}"
    );
}

#[test]
fn a_whole_output_is_adopted_into_a_new_state_in_bounded_steps() {
    let d = Daemon::new("");
    d.drop_file("s0.txt", &story(0), None);
    let (code, stderr) = d.once();
    assert_eq!(code, 0, "{stderr}");
    let first = d.records().remove(0);
    // An output of many more records than one adoption step commits, each its own
    // article and file, then a state moved aside.
    let n = 2_600;
    let mut text = String::new();
    for i in 0..n {
        let mut r = first.clone();
        r["article_id"] = format!("{:016x}", 0xa000 + i).into();
        r["source"]["path"] = format!("{}/adopted-{i:05}.txt", d.path("inbox").display()).into();
        text.push_str(&r.to_string());
        text.push('\n');
    }
    let out = d.path("out").join("articles.jsonl");
    std::fs::write(&out, &text).unwrap();
    std::fs::remove_dir_all(d.path("state")).unwrap();
    let (code, stderr) = d.once();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("adopted lines written before a crash records={n}")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        text,
        "output changed"
    );
    {
        let store = wirewatch::dedupe::Store::open(&d.path("state"), 1 << 20).unwrap();
        // (The adopted files are not in the folder: the scan forgets them.)
        assert_eq!(store.counts().unwrap().0, n as u64);
    }
    // Every line is in: the next start adopts nothing and emits nothing.
    let (code, stderr) = d.once();
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("adopted"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
}
