//! Operating the daemon: the HTTP listener (`/metrics` counters move with dropped
//! files, `/health` flips to 503 when the output cannot be written, `/events` streams
//! records with a filter), `wirewatch tail -f` across the daemon's own rotation,
//! SIGHUP, and completions.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Daemon;
use serde_json::Value;

use common::{free_port, http_get as get};

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{body}"))
}

fn story(n: usize, place: &str) -> Vec<u8> {
    format!(
        "({place}) Mayor Jean Tremblay announced measure {n} for the city council on transit.\nPosted on September {}, 2022 at {}:{:02}\nThe vote is expected next week, officials said.\n",
        1 + n % 28,
        n % 24,
        n % 60
    )
    .into_bytes()
}

#[test]
fn metrics_move_with_dropped_files() {
    let port = free_port();
    let mut d = Daemon::new(&format!("[http]\nlisten = \"127.0.0.1:{port}\""));
    d.start();
    common::wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let (code, body) = get(port, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(metric(&body, "wirewatch_records_emitted_total"), 0.0);
    for n in 0..3 {
        d.drop_file(&format!("s{n}.txt"), &story(n, "Ottawa"), None);
    }
    d.drop_file("dup.txt", &story(0, "Ottawa"), None);
    d.drop_file("empty.txt", b"", None);
    d.wait_records(3);
    common::wait_for(Duration::from_secs(20), || {
        let (_, b) = get(port, "/metrics");
        metric(&b, "wirewatch_duplicates_total") == 1.0 && b.contains("kind=\"empty\"} 1")
    });
    let (_, body) = get(port, "/metrics");
    assert_eq!(metric(&body, "wirewatch_records_emitted_total"), 3.0);
    assert_eq!(metric(&body, "wirewatch_files_seen_total"), 5.0);
    assert!(metric(&body, "wirewatch_output_bytes_total") > 0.0);
    assert!(metric(&body, "wirewatch_last_commit_timestamp_seconds") > 1.6e9);
    assert!(body.contains("wirewatch_watch_to_sink_seconds_bucket"));
    assert!(body.contains("wirewatch_queue_depth{stage=\"commit\"}"));
    let (code, h) = get(port, "/health");
    assert_eq!(code, 200, "{h}");
    assert_eq!(d.stop(), 0);
}

#[test]
fn health_flips_to_503_when_the_output_cannot_be_written() {
    let port = free_port();
    let mut d = Daemon::new(&format!("[http]\nlisten = \"127.0.0.1:{port}\""));
    // Making the output unwritable takes a small tmpfs (root).
    let Some(_tmpfs) = common::mount_tmpfs(&d.path("out"), "128k") else {
        return;
    };
    d.start();
    common::wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    common::wait_for(Duration::from_secs(10), || get(port, "/health").0 == 200);
    let filler = common::fill(&d.path("out"));
    d.drop_file("a.txt", &story(1, "Ottawa"), None);
    common::wait_for(Duration::from_secs(20), || get(port, "/health").0 == 503);
    let (_, body) = get(port, "/health");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "unhealthy");
    assert!(
        v["reasons"][0].as_str().unwrap().contains("cannot commit"),
        "{v}"
    );
    std::fs::remove_file(&filler).unwrap();
    d.wait_records(1);
    common::wait_for(Duration::from_secs(20), || get(port, "/health").0 == 200);
    assert_eq!(d.stop(), 0);
}

#[test]
fn events_stream_with_a_filter() {
    let port = free_port();
    let mut d = Daemon::new(&format!("[http]\nlisten = \"127.0.0.1:{port}\""));
    d.start();
    common::wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /events?dateline=quebec&q=transit HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.contains("200"), "{status}");
    std::thread::sleep(Duration::from_millis(200));
    d.drop_file("a.txt", &story(1, "Ottawa"), None);
    d.drop_file("b.txt", &story(2, "Québec"), None);
    d.drop_file("c.txt", &story(3, "Montréal"), None);
    d.drop_file("d.txt", &story(4, "Quebec"), None);
    let mut got = Vec::new();
    let mut line = String::new();
    while got.len() < 2 {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(start) = line.find('{') {
            let v: Value = serde_json::from_str(line[start..].trim()).unwrap();
            got.push(v["dateline"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(got, vec!["Québec", "Quebec"]);
    assert_eq!(d.stop(), 0);
    assert_eq!(d.records().len(), 4);
}

#[test]
fn tail_follows_the_daemons_rotation_and_sees_every_record_once() {
    const N: usize = 40;
    let mut d = Daemon::new("[output]\nrotate_bytes = 3000\nbatch_records = 2");
    d.start();
    let out = d.path("out/articles.jsonl");
    let mut tail = Command::new(common::bin())
        .args(["tail", "--json", "-f"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The tail is following once it has printed the first record.
    d.drop_file("s00.txt", &story(0, "Ottawa"), None);
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("tail printed nothing");
    let mut ids = std::collections::BTreeMap::new();
    let v: Value = serde_json::from_str(&first).unwrap();
    ids.insert(v["source"]["path"].as_str().unwrap().to_owned(), 1);
    for n in 1..N {
        d.drop_file(&format!("s{n:02}.txt"), &story(n, "Ottawa"), None);
        std::thread::sleep(Duration::from_millis(15));
    }
    while ids.values().sum::<usize>() < N {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
            let mut total = 0;
            for e in std::fs::read_dir(d.path("out")).unwrap() {
                let p = e.unwrap().path();
                let n = std::fs::read_to_string(&p)
                    .unwrap_or_default()
                    .lines()
                    .count();
                eprintln!("{}: {n} lines", p.display());
                total += n;
            }
            panic!(
                "tail printed {} of {N} records; files hold {total}; printed: {ids:?}",
                ids.len()
            );
        };
        let v: Value = serde_json::from_str(&line).unwrap();
        *ids.entry(v["source"]["path"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(line) = rx.try_recv() {
        let v: Value = serde_json::from_str(&line).unwrap();
        *ids.entry(v["source"]["path"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert_eq!(d.stop(), 0);
    assert_eq!(ids.len(), N, "records missing");
    assert!(
        ids.values().all(|&c| c == 1),
        "a record printed twice: {ids:?}"
    );
    let rotated = std::fs::read_dir(d.path("out"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("articles.jsonl.")
        })
        .count();
    assert!(rotated >= 3, "the output rotated only {rotated} times");
    assert!(d.log().contains("output rotated"));
}

#[test]
fn sighup_reloads_the_log_level_and_parse_settings() {
    let mut d = Daemon::new("");
    d.start();
    let cfg = std::fs::read_to_string(d.config_path()).unwrap();
    std::fs::write(
        d.config_path(),
        format!("{cfg}\n[parse]\ntimezone = \"Europe/Paris\"\n"),
    )
    .unwrap();
    let pid = d.child.as_ref().unwrap().id() as i32;
    unsafe { libc::kill(pid, libc::SIGHUP) };
    common::wait_for(Duration::from_secs(10), || {
        d.log().contains("configuration reloaded")
    });
    d.drop_file(
        "seed.txt",
        &std::fs::read(common::seed()).unwrap(),
        Some(common::system_time("2022-10-03T02:55:00Z")),
    );
    let recs = d.wait_records(1);
    assert_eq!(recs[0]["timezone"], "Europe/Paris");
    // A broken config is refused and the daemon goes on.
    std::fs::write(d.config_path(), "[parse]\ntimezone = 3\n").unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    common::wait_for(Duration::from_secs(10), || {
        d.log().contains("config not reloaded")
    });
    assert_eq!(d.stop(), 0);
}

#[test]
fn completions() {
    let out = Command::new(common::bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wirewatch"));
}
