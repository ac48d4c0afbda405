//! The output and rejects files under hostile conditions, with the real binary on real
//! files: a second daemon on the same output, `copytruncate` and deletion while the
//! daemon runs, a rename of the output followed by a SIGKILL, the same file for
//! records and rejects, outputs inside the watched
//! folder, an output that cannot be fsynced (`/dev/null`) and a stdout whose reader
//! has gone.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;

fn story(n: usize) -> Vec<u8> {
    let (day, hour, min) = (1 + (n / 1440) % 28, (n / 60) % 24, n % 60);
    format!(
        "(Toronto) Council member {n} proposed a measure on transit funding today.\nPosted on September {day}, 2022 at {hour}:{min:02}\nThe vote is expected next week, officials said.\n"
    )
    .into_bytes()
}

/// Waits (bounded) for a child to exit; kills it and panics when it does not.
fn wait_exit(child: &mut std::process::Child, limit: Duration, what: &str) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut std::process::Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

#[test]
fn a_second_daemon_on_the_same_output_is_refused() {
    let mut d = Daemon::new("");
    d.start();
    d.drop_file("a.txt", &story(1), None);
    d.wait_records(1);
    // Its own state and rejects: only the records output is shared.
    let mut second = d
        .cmd()
        .args(["run", "--config"])
        .arg(d.config_path())
        .arg("--state")
        .arg(d.path("state2"))
        .arg("--rejects")
        .arg(d.path("out2/rejected.jsonl"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_exit(&mut second, Duration::from_secs(20), "second daemon");
    let err = stderr_of(&mut second);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("articles.jsonl"), "{err}");
    assert!(err.contains("another process"), "{err}");
    // The first one runs on, undisturbed.
    d.drop_file("b.txt", &story(2), None);
    d.wait_records(2);
    assert_eq!(d.stop(), 0);
    assert_eq!(d.records().len(), 2);
}

#[test]
fn copytruncate_while_running_leaves_no_nul_bytes() {
    let mut d = Daemon::new("");
    d.start();
    for n in 0..5 {
        d.drop_file(&format!("a{n}.txt"), &story(n), None);
    }
    d.wait_records(5);
    // logrotate's copytruncate: copy, then truncate the original to 0 in place.
    let out = d.path("out/articles.jsonl");
    std::fs::copy(&out, d.path("out/articles.jsonl.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&out)
        .unwrap()
        .set_len(0)
        .unwrap();
    for n in 5..10 {
        d.drop_file(&format!("b{n}.txt"), &story(n), None);
    }
    common::wait_for(Duration::from_secs(20), || {
        common::read_jsonl(&out).len() >= 5
    });
    assert_eq!(d.stop(), 0);
    let bytes = std::fs::read(&out).unwrap();
    assert!(
        !bytes.contains(&0),
        "NUL bytes in the output after copytruncate"
    );
    let recs = d.records();
    assert_eq!(recs.len(), 5, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(common::read_jsonl(&d.path("out/articles.jsonl.1")).len(), 5);
    assert!(d.log().contains("shorter"), "{}", d.log());
    // A restart finds the state's position consistent with the file: nothing again.
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    assert_eq!(d.records().len(), 5);
}

/// logrotate's rename of the output while the daemon runs, then a SIGKILL: the next
/// start neither loses nor repeats a record across the two files.
#[test]
fn an_output_renamed_away_then_a_kill_loses_and_doubles_nothing() {
    let mut d = Daemon::new("");
    d.start();
    for n in 0..3 {
        d.drop_file(&format!("a{n}.txt"), &story(n), None);
    }
    d.wait_records(3);
    let old = d.path("out/articles.jsonl.1");
    std::fs::rename(d.path("out/articles.jsonl"), &old).unwrap();
    for n in 3..6 {
        d.drop_file(&format!("b{n}.txt"), &story(n), None);
    }
    d.wait_records(3);
    d.kill9();
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    let mut paths: Vec<String> = common::read_jsonl(&old)
        .into_iter()
        .chain(d.records())
        .map(|r| r["source"]["path"].as_str().unwrap().to_owned())
        .collect();
    paths.sort();
    let n = paths.len();
    paths.dedup();
    assert_eq!(n, paths.len(), "a record was written twice: {paths:?}");
    assert_eq!(n, 6, "{paths:?}");
}

#[test]
fn a_deleted_output_is_created_again() {
    let mut d = Daemon::new("");
    d.start();
    for n in 0..3 {
        d.drop_file(&format!("a{n}.txt"), &story(n), None);
    }
    d.wait_records(3);
    std::fs::remove_file(d.path("out/articles.jsonl")).unwrap();
    for n in 3..6 {
        d.drop_file(&format!("b{n}.txt"), &story(n), None);
    }
    let recs = d.wait_records(3);
    assert_eq!(d.stop(), 0);
    assert_eq!(recs.len(), 3);
    assert_eq!(d.records().len(), 3);
    let log = d.log();
    assert!(log.contains("WARN") && log.contains("no longer"), "{log}");
}

#[test]
fn the_same_file_for_records_and_rejects_is_refused() {
    let d = Daemon::new("[output]\nrejects = \"out/./articles.jsonl\"");
    let (code, err) = d.validate();
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains("output.path") && err.contains("output.rejects"),
        "{err}"
    );
    // The same on the command line of `run`.
    let same = d.path("out/x.jsonl");
    let out = d
        .cmd()
        .args(["run", "--once", "--config"])
        .arg(d.config_path())
        .arg("--output")
        .arg(&same)
        .arg("--rejects")
        .arg(&same)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("output.path") && err.contains("output.rejects"),
        "{err}"
    );
}

/// Records in the output and its rotated files, all in the inbox.
fn all_records(d: &Daemon) -> Vec<serde_json::Value> {
    let mut recs = Vec::new();
    for e in std::fs::read_dir(d.path("inbox")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("articles.jsonl") {
            recs.extend(common::read_jsonl(&d.path("inbox").join(name)));
        }
    }
    recs
}

#[test]
fn own_files_inside_the_watched_folder_are_not_input() {
    // Records (rotating), rejects and state all inside the inbox.
    let mut d = Daemon::new(
        "[output]\npath = \"inbox/articles.jsonl\"\nrejects = \"inbox/rejected.jsonl\"\nrotate_bytes = 2000\n[state]\ndir = \"inbox/state\"",
    );
    d.drop_file("a0.txt", &story(0), None);
    d.drop_file("bad0.txt", b"", None);
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    d.start();
    for n in 1..8 {
        d.drop_file(&format!("a{n}.txt"), &story(n), None);
    }
    d.drop_file("bad1.txt", b"", None);
    common::wait_for(Duration::from_secs(20), || all_records(&d).len() >= 8);
    common::wait_for(Duration::from_secs(20), || {
        common::read_jsonl(&d.path("inbox/rejected.jsonl")).len() >= 2
    });
    // Time for the daemon to notice its own writes, if it were going to.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(d.stop(), 0);
    let rotated = std::fs::read_dir(d.path("inbox"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("articles.jsonl.")
        })
        .count();
    assert!(rotated > 0, "the output never rotated");
    let recs = all_records(&d);
    let sources: Vec<&str> = recs
        .iter()
        .map(|r| r["source"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(recs.len(), 8, "{sources:?}");
    assert!(
        sources
            .iter()
            .all(|p| p.rsplit('/').next().unwrap().starts_with('a') && p.ends_with(".txt")),
        "{sources:?}"
    );
    let rejects = common::read_jsonl(&d.path("inbox/rejected.jsonl"));
    let rejected: Vec<&str> = rejects
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(rejects.len(), 2, "{rejected:?}");
    assert!(rejected.iter().all(|p| p.contains("/bad")), "{rejected:?}");
}

#[test]
fn an_output_that_cannot_be_fsynced_is_refused() {
    let d = Daemon::new("");
    d.drop_file("a.txt", &story(1), None);
    let mut child = d
        .cmd()
        .args(["run", "--once", "--output", "/dev/null", "--config"])
        .arg(d.config_path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_exit(
        &mut child,
        Duration::from_secs(30),
        "run --output /dev/null",
    );
    let err = stderr_of(&mut child);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("/dev/null"), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    // `validate` tells as well.
    let d = Daemon::new("[output]\nrejects = \"/dev/null\"");
    let (code, err) = d.validate();
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains("output.rejects") && err.contains("/dev/null"),
        "{err}"
    );
}

#[test]
fn a_closed_stdout_ends_the_daemon() {
    let d = Daemon::new("");
    let mut child = Command::new(common::bin())
        .current_dir(d.dir.path())
        .env("RUST_LOG", "info")
        .args(["run", "--output", "-", "--config"])
        .arg(d.config_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away (as `| head -c 1` does once it has its byte).
    drop(child.stdout.take());
    // Read stderr on the side so the daemon never blocks on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    std::thread::sleep(Duration::from_millis(500));
    d.drop_file("a.txt", &story(1), None);
    let code = wait_exit(
        &mut child,
        Duration::from_secs(30),
        "daemon on a closed stdout",
    );
    let err = log.join().unwrap();
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("stdout") && err.contains("closed"), "{err}");
}
