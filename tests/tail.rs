//! `wirewatch tail` on real files: the real binary reads, filters and formats records
//! written by hand (with `people`, `places` and `organizations` filled), follows a
//! file that a writer thread rotates by rename and truncates, waits for a file that
//! does not exist yet, and stops cleanly on a closed pipe and on SIGINT.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// Generous: only a hang fails on it, never slowness.
const LIMIT: Duration = Duration::from_secs(60);

fn tail() -> Command {
    let mut c = Command::new(common::bin());
    c.arg("tail");
    c.env_remove("NO_COLOR");
    c
}

/// A record as the daemon writes it, with the extract stage's lists filled.
fn record(n: usize) -> Value {
    json!({
        "schema": 1,
        "article_id": format!("{n:016x}"),
        "source": {"path": format!("/srv/inbox/{n}.txt"), "bytes": 100, "sha256": "00", "modified": null},
        "encoding": "utf-8",
        "dateline": "Washington",
        "title": format!("Story number {n} about the tour"),
        "title_source": "lede_first_sentence",
        "lede": format!("Story number {n} about the tour."),
        "posted_at": "2022-10-02T22:23:00-04:00",
        "updated_at": "2022-10-02T22:53:00-04:00",
        "capture_time": "2022-10-02T22:55:00-04:00",
        "timezone": "America/Toronto",
        "sections": [],
        "word_count": 6,
        "reading_time_min": 1,
        "language": "en",
        "content_hash": "00",
        "people": [],
        "places": [],
        "organizations": [],
        "quotes": [],
        "dates": [],
        "keywords": [],
        "revision": 1,
        "supersedes": null
    })
}

fn person(name: &str, aliases: &[&str]) -> Value {
    json!({"name": name, "aliases": aliases, "mentions": 1, "roles": []})
}

fn place(name: &str) -> Value {
    json!({"name": name, "mentions": 1, "kind": "city", "country": null})
}

fn org(name: &str, acronym: Option<&str>) -> Value {
    json!({"name": name, "acronym": acronym, "mentions": 1})
}

fn line(v: &Value) -> String {
    format!("{}\n", serde_json::to_string(v).unwrap())
}

fn write_records(path: &Path, recs: &[Value]) {
    let text: String = recs.iter().map(line).collect();
    std::fs::write(path, text).unwrap();
}

/// The four records of the filter tests.
fn sample() -> Vec<Value> {
    let mut a = record(1);
    a["title"] = json!("US Secretary of State Antony Blinken kicks off a Latin American tour in Colombia on Monday aimed at strengthening ties with key allies recently led by leftist presidents");
    a["revision"] = json!(2);
    a["supersedes"] = json!("2022-10-02T22:23:00-04:00");
    a["people"] = json!([
        person("Antony Blinken", &["Mr. Blinken", "Blinken"]),
        person("Jair Bolsonaro", &[]),
        person("Luiz Inácio Lula da Silva", &["Lula"])
    ]);
    a["places"] = json!([place("Washington"), place("Colombia"), place("Bogotá")]);
    a["organizations"] = json!([org("Organization of American States", Some("OAS"))]);

    let mut b = record(2);
    b["dateline"] = json!("Montréal");
    b["title"] = json!("José Martí exhibition opens at the museum");
    b["posted_at"] = json!("2022-10-01T09:00:00-04:00");
    b["updated_at"] = json!(null);
    b["people"] = json!([person("José Martí", &["Martí"])]);
    b["places"] = json!([place("Montréal"), place("Québec")]);
    b["organizations"] = json!([org("Musée des beaux-arts de Montréal", Some("MBAM"))]);

    let mut c = record(3);
    c["dateline"] = json!(null);
    c["title"] = json!("Ministers meet in Lima");
    c["posted_at"] = json!("2022-10-05");
    c["updated_at"] = json!(null);
    c["people"] = json!([person("Antony Blinken", &[])]);
    c["places"] = json!([place("Lima")]);
    c["organizations"] = json!([org("Organization of American States", Some("OAS"))]);

    let d = record(4); // no names at all
    vec![a, b, c, d]
}

/// Runs `tail --json ARGS FILE` to its end; returns (status, article ids, stderr).
fn json_ids(file: &Path, args: &[&str]) -> (i32, Vec<String>, String) {
    let out = tail().arg("--json").args(args).arg(file).output().unwrap();
    let ids = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            v["article_id"].as_str().unwrap().to_owned()
        })
        .collect();
    (
        out.status.code().unwrap_or(-1),
        ids,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ids(ns: &[usize]) -> Vec<String> {
    ns.iter().map(|n| format!("{n:016x}")).collect()
}

#[test]
fn json_prints_every_record_and_filters_select() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("articles.jsonl");
    let recs = sample();
    let mut text: String = recs[..2].iter().map(line).collect();
    text.push_str("{\"truncated\": \n\n[1, 2]\n");
    text.extend(recs[2..].iter().map(line));
    std::fs::write(&file, &text).unwrap();

    // Every record, unchanged, in order; the two bad lines are warned about.
    let out = tail().arg("--json").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let expected: String = recs.iter().map(line).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.contains("articles.jsonl:3: skipping a line that is not JSON"),
        "{err}"
    );
    assert!(
        err.contains("articles.jsonl:5: skipping a line that is not a wirewatch record"),
        "{err}"
    );

    let check = |args: &[&str], want: &[usize]| {
        let (code, got, err) = json_ids(&file, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(got, ids(want), "{args:?}");
    };
    // People: name, alias, case and accents folded.
    check(&["--person", "blinken"], &[1, 3]);
    check(&["--person", "LULA"], &[1]);
    check(&["--person", "jose marti"], &[2]);
    check(&["--person", "Luiz Inacio"], &[1]);
    check(&["--person", "nobody"], &[]);
    // Places.
    check(&["--place", "montreal"], &[2]);
    check(&["--place", "BOGOTA"], &[1]);
    check(&["--place", "lima"], &[3]);
    // Organizations: name or acronym.
    check(&["--org", "oas"], &[1, 3]);
    check(&["--org", "american states"], &[1, 3]);
    check(&["--org", "mbam"], &[2]);
    check(&["--org", "beaux-arts"], &[2]);
    // Several filters AND together, repeated ones too.
    check(&["--person", "blinken", "--place", "colombia"], &[1]);
    check(
        &["--person", "blinken", "--org", "oas", "--place", "lima"],
        &[3],
    );
    check(&["--person", "blinken", "--person", "bolsonaro"], &[1]);
    check(&["--person", "marti", "--org", "oas"], &[]);
    // --since: updated_at, else posted_at; a date-only stamp is its whole day.
    check(&["--since", "2022-10-02T00:00:00Z"], &[1, 3, 4]);
    check(&["--since", "2022-10-03T02:53:00Z"], &[1, 3, 4]);
    check(&["--since", "2022-10-03T02:54:00Z"], &[3]);
    check(&["--since", "2022-10-05T23:00:00-04:00"], &[3]);
    check(&["--since", "2022-10-06T00:00:00-04:00"], &[]);
    check(&["--since", "2022-10-01"], &[1, 2, 3, 4]);
    check(
        &["--since", "2022-10-02T00:00:00Z", "--org", "oas"],
        &[1, 3],
    );

    // Relative --since, against records stamped relative to now.
    let now = jiff::Timestamp::now().as_second();
    let at = |secs_ago: i64| {
        jiff::Timestamp::from_second(now - secs_ago)
            .unwrap()
            .to_string()
    };
    let mut recent = record(10);
    recent["updated_at"] = json!(at(10 * 60));
    let mut older = record(11);
    older["updated_at"] = json!(at(3 * 3600));
    let mut old = record(12);
    old["updated_at"] = json!(at(3 * 86_400));
    let rel = dir.path().join("relative.jsonl");
    write_records(&rel, &[recent, older, old]);
    for (since, want) in [
        ("1h", &[10][..]),
        ("30m", &[10]),
        ("4h", &[10, 11]),
        ("2h30m", &[10]),
        ("2d", &[10, 11]),
        ("1w", &[10, 11, 12]),
    ] {
        let (code, got, err) = json_ids(&rel, &["--since", since]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(got, ids(want), "--since {since}");
    }

    // A --since that is none of the accepted forms is a usage error naming them.
    let (code, _, err) = json_ids(&file, &["--since", "yesterday"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--since \"yesterday\"") && err.contains("30m"),
        "{err}"
    );
    let (code, _, err) = json_ids(&file, &["--person", " "]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn terminal_format_shows_time_dateline_title_people_places_revision() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("articles.jsonl");
    write_records(&file, &sample());
    let out = tail().arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no colors when stdout is not a terminal"
    );
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 4, "{text}");
    let a: Vec<&str> = blocks[0].lines().collect();
    assert_eq!(
        a[0],
        "2022-10-02 22:53 -04:00  Washington  rev 2 (was 22:23)"
    );
    assert!(
        a[1].starts_with("US Secretary of State Antony Blinken kicks off a Latin American tour")
    );
    assert!(
        a[1].ends_with('…') && a[1].chars().count() <= 100,
        "{}",
        a[1]
    );
    // People and places first; organizations only when they fit in 100 columns.
    assert_eq!(
        a[2],
        "people: Antony Blinken, Jair Bolsonaro, Luiz Inácio Lula da Silva   places: Washington, Colombia, …"
    );
    let b: Vec<&str> = blocks[1].lines().collect();
    assert_eq!(b[0], "2022-10-01 09:00 -04:00  Montréal  rev 1");
    assert_eq!(b[1], "José Martí exhibition opens at the museum");
    assert_eq!(
        b[2],
        "people: José Martí   places: Montréal, Québec   orgs: Musée des beaux-arts de Montréal"
    );
    assert_eq!(blocks[2], "2022-10-05  rev 1\nMinisters meet in Lima\npeople: Antony Blinken   places: Lima   orgs: Organization of American States");
    assert_eq!(
        blocks[3],
        "2022-10-02 22:53 -04:00  Washington  rev 1\nStory number 4 about the tour\n"
    );
    // Filters apply to the terminal format too.
    let out = tail()
        .args(["--place", "lima"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", blocks[2])
    );
}

/// End to end: the daemon writes the seed's record, `tail` shows it.
#[test]
fn shows_what_the_daemon_wrote() {
    let d = common::Daemon::new("");
    std::fs::copy(common::seed(), d.path("inbox/seed.txt")).unwrap();
    common::set_mtime(
        &d.path("inbox/seed.txt"),
        common::system_time("2022-10-03T02:55:00Z"),
    );
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    // FILE from --config's output.path.
    let out = tail()
        .arg("--config")
        .arg(d.config_path())
        .output()
        .unwrap();
    common::assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "2022-10-02 22:53 -04:00  Washington  rev 1");
    assert!(lines[1].starts_with("US Secretary of State Antony Blinken kicks off"));
}

#[test]
fn file_defaults_to_the_configured_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    write_records(&dir.path().join("data/recs.jsonl"), &[record(7)]);
    // config/wirewatch.toml in the working directory.
    std::fs::write(
        dir.path().join("config/wirewatch.toml"),
        "[output]\npath = \"data/recs.jsonl\"\n",
    )
    .unwrap();
    let out = tail()
        .arg("--json")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), line(&record(7)));
    // No config at all: out/articles.jsonl.
    let bare = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(bare.path().join("out")).unwrap();
    write_records(&bare.path().join("out/articles.jsonl"), &[record(8)]);
    let out = tail()
        .arg("--json")
        .current_dir(bare.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), line(&record(8)));
    // A bad config is a usage error.
    std::fs::write(dir.path().join("bad.toml"), "[output]\npaht = 1\n").unwrap();
    let out = tail()
        .args(["--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_file_is_an_error_without_follow() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out/articles.jsonl");
    let out = tail().arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}: no such file", file.display())) && err.contains("-f"),
        "{err}"
    );
}

/// A `wirewatch tail` child whose stdout and stderr are collected by threads.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Follower {
    fn spawn(args: &[&str], file: &Path) -> Follower {
        let mut child = tail()
            .args(args)
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let e = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                e.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Follower {
            child,
            lines,
            stderr,
        }
    }

    /// Article ids printed so far (`--json` output).
    fn ids(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(v) => v["article_id"].as_str().unwrap_or("?").to_owned(),
                Err(_) => format!("not JSON: {l}"),
            })
            .collect()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `n` records were printed, checking on the way that what was
    /// printed is exactly the start of `expected`.
    fn wait_records(&self, expected: &[String], n: usize) {
        let start = std::time::Instant::now();
        loop {
            let got = self.ids();
            assert!(
                got.len() <= expected.len() && got[..] == expected[..got.len()],
                "printed {} records, not a prefix of the {} written\nstderr:\n{}",
                got.len(),
                expected.len(),
                self.stderr()
            );
            if got.len() >= n {
                return;
            }
            assert!(
                start.elapsed() < LIMIT,
                "only {} of {n} records printed\nstderr:\n{}",
                got.len(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_exit(&mut self) -> i32 {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(start.elapsed() < LIMIT, "tail did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends whole lines to the output, as the daemon's sink does.
struct Writer {
    path: PathBuf,
    file: File,
    written: Arc<Mutex<Vec<String>>>,
    next: usize,
}

impl Writer {
    fn open(path: &Path, written: Arc<Mutex<Vec<String>>>) -> Writer {
        Writer {
            path: path.to_owned(),
            file: OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap(),
            written,
            next: 0,
        }
    }

    fn next_record(&mut self) -> Value {
        self.next += 1;
        let mut r = record(self.next);
        r["people"] = json!([person("Antony Blinken", &["Blinken"])]);
        r["places"] = json!([place("Bogotá")]);
        r["organizations"] = json!([org("Organization of American States", Some("OAS"))]);
        r
    }

    /// Appends `n` records, each in one write.
    fn append(&mut self, n: usize) {
        for _ in 0..n {
            let r = self.next_record();
            self.file.write_all(line(&r).as_bytes()).unwrap();
            self.push(&r);
        }
    }

    fn push(&self, r: &Value) {
        self.written
            .lock()
            .unwrap()
            .push(r["article_id"].as_str().unwrap().to_owned());
    }

    /// Rotation by rename: the file moves to `to`; the writer keeps its handle
    /// until `reopen`.
    fn rename(&self, to: &str) {
        std::fs::rename(&self.path, self.path.with_file_name(to)).unwrap();
    }

    /// Creates the new file at the path and writes there from now on.
    fn reopen(&mut self) {
        self.file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&self.path)
            .unwrap();
    }
}

/// The key test: a child `tail --json -f` while a writer thread appends records,
/// rotates the file by rename (to `.1`, to a timestamped name, with records still
/// written to the old file after the rename, with the path missing for a while),
/// truncates it in place (copytruncate), writes one record in two pieces and one
/// record larger than the reader's chunk: every record is printed exactly once,
/// in order.
#[test]
fn follow_across_rotation_and_truncation_prints_every_record_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("articles.jsonl");
    let written = Arc::new(Mutex::new(Vec::new()));
    let mut w = Writer::open(&path, written.clone());
    w.append(5);
    let child = Arc::new(Follower::spawn(&["--json", "-f"], &path));

    let c = child.clone();
    let wr = written.clone();
    let writer = std::thread::spawn(move || {
        // Before a rotation, wait until the child has caught up: two rotations
        // within one poll would skip the file in between (as with `tail -F`).
        let caught_up = || {
            let all = wr.lock().unwrap().clone();
            c.wait_records(&all, all.len());
        };
        caught_up();

        // 1. Rename to .1 right after a burst (likely unread yet), then two more
        //    records through the old handle, then the new file.
        w.append(20);
        w.rename("articles.jsonl.1");
        w.append(2);
        w.reopen();
        w.append(10);
        caught_up();

        // 2. Rename to a timestamped name; one record larger than a read chunk.
        w.append(3);
        let mut big = w.next_record();
        big["lede"] = json!("word ".repeat(100_000));
        w.file.write_all(line(&big).as_bytes()).unwrap();
        w.push(&big);
        w.append(3);
        w.rename("articles.jsonl.20221002T225500Z");
        w.reopen();
        w.append(10);
        caught_up();

        // 3. copytruncate: copy, cut to 0, go on appending. The first record after
        //    the cut must be seen before the file grows past its old size.
        std::fs::copy(&path, dir_of(&path).join("articles.jsonl.copy")).unwrap();
        w.file.set_len(0).unwrap();
        w.append(1);
        caught_up();
        w.append(10);
        caught_up();

        // 4. A record written in two pieces, then a rename to .2.
        let r = w.next_record();
        let text = line(&r);
        let (a, b) = text.split_at(text.len() / 2);
        w.file.write_all(a.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        w.file.write_all(b.as_bytes()).unwrap();
        w.push(&r);
        w.append(5);
        w.rename("articles.jsonl.2");
        w.reopen();
        w.append(5);
        caught_up();

        // 5. The path stays missing while the old handle is still written to.
        w.append(5);
        w.rename("articles.jsonl.3");
        w.append(3);
        caught_up();
        w.reopen();
        w.append(10);
        caught_up();
    });
    writer.join().expect("writer thread");

    let all = written.lock().unwrap().clone();
    assert_eq!(all.len(), 5 + 32 + 17 + 11 + 11 + 18);
    child.wait_records(&all, all.len());
    // A grace period for a duplicate to show up, then the exact comparison.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(child.ids(), all, "stderr:\n{}", child.stderr());
    let err = child.stderr();
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains("rotated"), "{err}");
}

fn dir_of(p: &Path) -> PathBuf {
    p.parent().unwrap().to_owned()
}

#[test]
fn follow_waits_for_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/articles.jsonl");
    let child = Follower::spawn(&["--json", "-f"], &path);
    common::wait_for(LIMIT, || child.stderr().contains("waiting for it"));
    assert!(child.ids().is_empty());
    std::fs::create_dir_all(dir_of(&path)).unwrap();
    write_records(&path, &[record(1), record(2)]);
    child.wait_records(&ids(&[1, 2]), 2);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(line(&record(3)).as_bytes()).unwrap();
    child.wait_records(&ids(&[1, 2, 3]), 3);
}

#[test]
fn sigint_while_following_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("articles.jsonl");
    write_records(&path, &[record(1)]);
    let mut child = Follower::spawn(&["-f"], &path);
    common::wait_for(LIMIT, || !child.lines.lock().unwrap().is_empty());
    unsafe { libc::kill(child.child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait_exit(), 0, "{}", child.stderr());
    assert!(!child.stderr().contains("panicked"));
}

/// `wirewatch tail … | head -1`: the reader goes away, tail exits 0 without a panic,
/// whether it was writing (a large file) or idle (following).
#[test]
fn closed_pipe_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("articles.jsonl");
    let recs: Vec<Value> = (0..2000)
        .map(|n| {
            let mut r = record(n);
            r["lede"] = json!("word ".repeat(200));
            r
        })
        .collect();
    write_records(&path, &recs);
    for args in [&["--json"][..], &[][..], &["--json", "-f"][..]] {
        let mut child = tail()
            .args(args)
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert!(!first.is_empty());
        drop(out);
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > LIMIT {
                let _ = child.kill();
                panic!("{args:?}: tail did not exit after its reader went away");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
