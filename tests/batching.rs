//! When a batch is committed: the real daemon, real files, and its `/metrics`
//! (`wirewatch_batch_files`, the files of each committed batch). A batch waits up to
//! `output.batch_ms` only for files already on their way; with none, it waits
//! `output.linger_ms` (0 by default) and is committed.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;

/// A story with its own stamp, unique by `n`.
fn story(n: usize) -> Vec<u8> {
    let (day, hour, minute) = (1 + n % 28, n % 24, n % 60);
    let lede = format!("(Quebec City) The council adopted transit measure {n} on Monday.");
    let stamp = format!("Posted on September {day}, 2022 at {hour}:{minute:02}");
    format!("{lede}\n{stamp}\nThe final vote is next week, the mayor's office said.\n").into_bytes()
}

/// A daemon whose batches may wait a minute for files on their way, with `extra`
/// `[output]` keys and the HTTP listener on a free port, started.
fn start(extra: &str) -> (Daemon, u16) {
    let port = common::free_port();
    let mut d = Daemon::new(&format!(
        "[output]\nbatch_ms = 60000\n{extra}\n[http]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    d.start();
    common::wait_for(Duration::from_secs(10), || {
        common::http_get(port, "/health").0 != 0
    });
    (d, port)
}

/// The value of the sample `series` on `/metrics`.
fn metric(port: u16, series: &str) -> f64 {
    let (status, body) = common::http_get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{body}"))
}

#[test]
fn a_lone_file_does_not_wait_out_batch_ms() {
    let (mut d, port) = start("");
    let t = Instant::now();
    d.drop_file("lone.txt", &story(1), None);
    // Held for batch_ms, the record would come a minute later.
    d.wait_records(1);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "a lone file waited {:?}: the batch waited for nothing on its way",
        t.elapsed()
    );
    assert_eq!(metric(port, "wirewatch_batch_files_count"), 1.0);
    assert_eq!(metric(port, "wirewatch_batch_files_sum"), 1.0);
    assert_eq!(d.stop(), 0, "{}", d.log());
}

#[test]
fn a_backlog_is_committed_in_large_batches_without_waiting_out_batch_ms() {
    let port = common::free_port();
    let mut d = Daemon::new(&format!(
        "[output]\nbatch_ms = 60000\nbatch_records = 64\n[http]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    let n = 300;
    for i in 0..n {
        d.drop_file(&format!("s{i:03}.txt"), &story(i), None);
    }
    let t = Instant::now();
    d.start();
    common::wait_for(Duration::from_secs(30), || d.records().len() >= n);
    assert!(t.elapsed() < Duration::from_secs(50), "{:?}", t.elapsed());
    common::wait_for(Duration::from_secs(10), || {
        common::http_get(port, "/health").0 != 0
    });
    let batches = metric(port, "wirewatch_batch_files_count");
    assert_eq!(metric(port, "wirewatch_batch_files_sum"), n as f64);
    // Files on their way are waited for: batches fill up (to batch_records) rather
    // than going one file at a time.
    assert!(
        batches <= (n / 8) as f64,
        "{batches} batches for {n} files: the batch did not wait for files on their way"
    );
    assert_eq!(d.stop(), 0, "{}", d.log());
}

#[test]
fn linger_ms_gathers_files_that_come_apart_into_one_batch() {
    let (mut d, port) = start("linger_ms = 4000");
    let t = Instant::now();
    d.drop_file("first.txt", &story(1), None);
    std::thread::sleep(Duration::from_millis(300));
    d.drop_file("second.txt", &story(2), None);
    d.wait_records(2);
    let waited = t.elapsed();
    assert_eq!(
        metric(port, "wirewatch_batch_files_count"),
        1.0,
        "two files 300 ms apart, linger 4 s: one batch"
    );
    assert_eq!(metric(port, "wirewatch_batch_files_sum"), 2.0);
    // Lingering is waiting: the first record came no sooner than linger_ms.
    assert!(waited >= Duration::from_secs(4), "{waited:?}");
    assert_eq!(d.stop(), 0, "{}", d.log());
}

#[test]
fn linger_ms_above_batch_ms_is_refused_by_name() {
    let d = Daemon::new("[output]\nbatch_ms = 5\nlinger_ms = 50\n");
    let (code, err) = d.validate();
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("output.linger_ms"), "{err}");
}
