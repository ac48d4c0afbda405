//! The HTTP listener under hostile clients and load, against the real binary over
//! real sockets: `/events` clients that close or never read are let go and their
//! connections closed, a taken port stops the daemon at start, and
//! `wirewatch_queue_depth` shows the files that wait.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::Value;

fn http_config(port: u16) -> String {
    format!("[http]\nlisten = \"127.0.0.1:{port}\"\n")
}

fn start(extra: &str) -> (Daemon, u16) {
    let port = common::free_port();
    let mut d = Daemon::new(&format!("{}{extra}", http_config(port)));
    d.start();
    common::wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (d, port)
}

/// A GET's body.
fn get(port: u16, path: &str) -> String {
    common::http_get(port, path).1
}

/// The value of a metric line `name` (with `labels`, e.g. `{stage="watch"}`).
fn metric(body: &str, name: &str, labels: &str) -> f64 {
    let key = format!("{name}{labels} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}{labels} in:\n{body}"))
}

fn subscribers(port: u16) -> f64 {
    metric(&get(port, "/metrics"), "wirewatch_events_subscribers", "")
}

/// Opens `/events?{query}` on a new connection (the request sent, nothing read).
fn subscribe(stream: &mut TcpStream, query: &str) {
    write!(
        stream,
        "GET /events?{query} HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
}

/// A story whose body is about `bytes` long, unique by `n`.
fn story(n: usize, place: &str, bytes: usize) -> Vec<u8> {
    let mut s = format!(
        "({place}) Mayor Jean Tremblay announced measure {n} for the city council on transit.\nPosted on September {}, 2022 at {}:{:02}\n",
        1 + n % 28,
        n % 24,
        n % 60
    );
    let para = "The vote on the budget for roads, bridges and water is expected next week, officials said.";
    while s.len() < bytes {
        s.push_str(para);
        s.push_str(if s.len() % 900 < 90 { "\n\n" } else { " " });
    }
    s.push('\n');
    s.into_bytes()
}

/// 200 `/events` clients whose filter never matches: while they are connected the
/// subscriber gauge counts them; once they close it returns to 0, though no record
/// they would have received was emitted since (the subscriber notices the close by
/// itself), and the records dropped meanwhile still reach the output.
#[test]
fn events_subscribers_that_close_are_let_go_without_a_record() {
    const CLIENTS: usize = 200;
    let (mut d, port) = start("");
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            subscribe(&mut s, "place=atlantis-under-the-sea");
            s
        })
        .collect();
    // Each has its response head: its subscriber is running.
    for s in &mut clients {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    assert_eq!(subscribers(port), CLIENTS as f64);
    drop(clients);
    for n in 0..3 {
        d.drop_file(&format!("s{n}.txt"), &story(n, "Ottawa", 300), None);
    }
    common::wait_for(Duration::from_secs(20), || subscribers(port) == 0.0);
    d.wait_records(3);
    assert_eq!(d.stop(), 0);
}

/// A TCP connection with a small receive buffer (set before connecting, so the
/// window stays small): a client that is slow to take what it is sent.
fn small_window_connect(port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    s.connect(&addr.into()).unwrap();
    s.into()
}

/// Reads until the server ends the connection (EOF or reset); false when it is
/// still open after `limit`.
fn ends_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; 1 << 16];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Clients that never read, while tens of megabytes of records are emitted: the
/// server disconnects each once more than its bound waits for it (the gauge goes
/// back down, `wirewatch_events_lagged_total` counts them, and their sockets end
/// with EOF or a reset), while a client that reads gets every record.
#[test]
fn events_clients_that_do_not_read_are_disconnected() {
    const STALLED: usize = 10;
    const FILES: usize = 80;
    const BYTES: usize = 400_000;
    let (mut d, port) = start("");
    let mut stalled: Vec<TcpStream> = (0..STALLED)
        .map(|_| {
            let mut s = small_window_connect(port);
            subscribe(&mut s, "");
            s
        })
        .collect();
    let mut reader = TcpStream::connect(("127.0.0.1", port)).unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    subscribe(&mut reader, "place=ottawa");
    let reading = std::thread::spawn(move || {
        let mut got = std::collections::BTreeSet::new();
        let mut r = BufReader::new(reader);
        let mut line = String::new();
        while got.len() < FILES {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => panic!("the reading client failed after {} records: {e}", got.len()),
            }
            if let Some(start) = line.find('{') {
                let v: Value = serde_json::from_str(line[start..].trim()).unwrap();
                got.insert(v["source"]["path"].as_str().unwrap().to_owned());
            }
        }
        (got, r)
    });
    common::wait_for(Duration::from_secs(20), || {
        subscribers(port) == (STALLED + 1) as f64
    });
    for n in 0..FILES {
        d.drop_file(&format!("big{n:02}.txt"), &story(n, "Ottawa", BYTES), None);
    }
    // The reading client stays connected (and subscribed) until the end.
    let (got, _reader) = reading.join().unwrap();
    assert_eq!(got.len(), FILES, "the reading client missed records");
    let start = Instant::now();
    while subscribers(port) != 1.0 {
        if start.elapsed() > Duration::from_secs(60) {
            let log = d.log();
            panic!(
                "{} subscribers left\n{}\nlog tail:\n{}",
                subscribers(port),
                get(port, "/metrics"),
                &log[log.len().saturating_sub(3000)..]
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = get(port, "/metrics");
    assert_eq!(
        metric(&m, "wirewatch_events_lagged_total", ""),
        STALLED as f64
    );
    for (i, s) in stalled.iter_mut().enumerate() {
        assert!(
            ends_within(s, Duration::from_secs(60)),
            "stalled client {i}: the server kept its connection open"
        );
    }
    assert_eq!(d.records().len(), FILES);
    assert_eq!(d.stop(), 0);
}

/// A port another process holds: the daemon stops at start with exit code 1 and a
/// message naming the address and what to do.
#[test]
fn a_taken_http_port_stops_the_daemon_at_start() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let d = Daemon::new(&http_config(port));
    let err = d.path("stderr.log");
    let mut child = d
        .cmd()
        .args(["run", "--config"])
        .arg(d.config_path())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the daemon kept running on a taken port:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("[http] listen"), "{stderr}");
    assert!(
        !d.path("out/articles.jsonl").exists(),
        "the pipeline started"
    );
    drop(holder);
}

/// One reader, held up by a file another process keeps open for writing (it waits
/// up to 20 settle periods, here 40 s, for the writer): the files dropped behind it show in
/// `wirewatch_queue_depth` while they wait, and the depths return to 0 once all
/// are processed.
#[test]
fn queue_depth_shows_the_files_that_wait() {
    const WAITING: usize = 300;
    let (mut d, port) = start("[pipeline]\nworkers = 1\n[watch]\nsettle_ms = 2000\n");
    let depth = |stage: &str| {
        let m = get(port, "/metrics");
        metric(
            &m,
            "wirewatch_queue_depth",
            &format!("{{stage=\"{stage}\"}}"),
        )
    };
    let seen = || metric(&get(port, "/metrics"), "wirewatch_files_seen_total", "");
    // The held file, then three more: the reader, the orderer and the channel
    // between them are busy before the others arrive.
    let staging = d.path("held.txt.staging");
    let mut held = std::fs::File::create(&staging).unwrap();
    held.write_all(&story(0, "Ottawa", 300)).unwrap();
    std::fs::rename(&staging, d.path("inbox/held.txt")).unwrap();
    for n in 1..4 {
        d.drop_file(&format!("s{n}.txt"), &story(n, "Ottawa", 300), None);
    }
    common::wait_for(Duration::from_secs(20), || seen() == 4.0);
    std::thread::sleep(Duration::from_millis(500));
    for n in 4..4 + WAITING {
        d.drop_file(&format!("s{n}.txt"), &story(n, "Ottawa", 300), None);
    }
    let start = Instant::now();
    loop {
        let (watch, read) = (depth("watch"), depth("read"));
        if watch >= 100.0 && read >= 1.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "queue depth watch {watch}, read {read} while {WAITING} files wait"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(held);
    common::wait_for(Duration::from_secs(60), || d.records().len() == WAITING + 4);
    common::wait_for(Duration::from_secs(20), || {
        ["watch", "read", "commit"].iter().all(|s| depth(s) == 0.0)
    });
    assert_eq!(d.stop(), 0);
}

/// Files written in place wait for the settle time (here 5 s) in the watcher: they
/// show in `wirewatch_queue_depth{stage="settle"}` while they wait, and the depth
/// returns to 0 once they are processed.
#[test]
fn queue_depth_shows_the_files_that_settle() {
    const FILES: usize = 200;
    let (mut d, port) = start("[watch]\nsettle_ms = 5000\n");
    let settle = || {
        metric(
            &get(port, "/metrics"),
            "wirewatch_queue_depth",
            "{stage=\"settle\"}",
        )
    };
    assert_eq!(settle(), 0.0);
    for n in 0..FILES {
        std::fs::write(d.path(&format!("inbox/w{n}.txt")), story(n, "Ottawa", 300)).unwrap();
    }
    common::wait_for(Duration::from_secs(10), || settle() == FILES as f64);
    common::wait_for(Duration::from_secs(60), || d.records().len() == FILES);
    common::wait_for(Duration::from_secs(20), || {
        ["scan", "settle", "watch", "read", "commit"]
            .iter()
            .all(|s| {
                metric(
                    &get(port, "/metrics"),
                    "wirewatch_queue_depth",
                    &format!("{{stage=\"{s}\"}}"),
                ) == 0.0
            })
    });
    assert_eq!(d.stop(), 0);
}
