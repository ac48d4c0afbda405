//! `GET /metrics` against the real tools that read it: the body in both formats
//! (text 0.0.4 by default, OpenMetrics when `Accept` asks) goes through the real
//! `promtool check metrics`, a real Prometheus server scrapes the daemon and answers
//! a query with the daemon's count, and `wirewatch --version` names the commit that
//! `wirewatch_build_info` reports. `promtool` and `prometheus` come from the Debian
//! package `prometheus` (`.ci/run` installs it); without them these tests print
//! `skipped: …` and pass, except under CI (`CI` set), where they fail.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Daemon;
use serde_json::Value;

/// The path of `tool` on `PATH`, or None (after saying so) outside CI.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "{name} not found under CI: install the Debian package prometheus (.ci/run does)"
            )
        }
        None => {
            println!("skipped: {name} not found (Debian package prometheus)");
            None
        }
    }
}

/// A story with its own stamp, unique by `n`.
fn story(n: usize) -> Vec<u8> {
    format!(
        "(Ottawa) Mayor Jean Tremblay announced measure {n} for the city council on transit.\nPosted on September {}, 2022 at {}:{:02}\nThe vote is expected next week, officials said.\n",
        1 + n % 28,
        n % 24,
        n % 60
    )
    .into_bytes()
}

/// A daemon with the HTTP listener on a free port, running.
fn start() -> (Daemon, u16) {
    let port = common::free_port();
    let mut d = Daemon::new(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    d.start();
    common::wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (d, port)
}

/// `GET /metrics` with an optional `Accept`: (status, Content-Type, body).
fn scrape(port: u16, accept: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// The value of the sample line `series` (name and labels) in `body`.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `promtool check metrics` on `body`: (exit code, what it reported).
fn promtool(promtool: &Path, body: &str) -> (i32, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

/// The commit `wirewatch --version` names (`wirewatch 0.1.0 (commit abcdef123456)`).
fn version_commit() -> String {
    let out = Command::new(common::bin())
        .arg("--version")
        .output()
        .expect("wirewatch --version");
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let want = format!("wirewatch {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = line
        .strip_prefix(&want)
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--version printed {line:?}"));
    assert!(
        commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "--version names no commit: {line:?}"
    );
    commit.to_owned()
}

/// Every series is there before the first file, a few files (one rejected)
/// later both formats are served with their Content-Type, the text format passes
/// `promtool check metrics` as it is, and the OpenMetrics body draws from promtool
/// (which reads only the text format 0.0.4) nothing but its one known complaint:
/// a counter's `_total` sample under a family named without `_total`.
#[test]
fn promtool_checks_both_formats() {
    let Some(promtool_bin) = tool("promtool") else {
        return;
    };
    let (mut d, port) = start();
    let (_, _, first) = scrape(port, None);
    for series in [
        "wirewatch_rejected_total{kind=\"empty\"}",
        "wirewatch_rejected_total{kind=\"no_lede\"}",
        "wirewatch_queue_depth{stage=\"watch\"}",
        "wirewatch_queue_depth{stage=\"settle\"}",
        "wirewatch_records_emitted_total",
    ] {
        assert_eq!(value(&first, series), Some(0.0), "{series} in:\n{first}");
    }
    assert!(
        !first.contains("wirewatch_nats_"),
        "NATS metrics without the NATS sink:\n{first}"
    );
    for n in 0..3 {
        d.drop_file(&format!("s{n}.txt"), &story(n), None);
    }
    d.drop_file("empty.txt", b"", None);
    d.wait_records(3);
    common::wait_for(Duration::from_secs(20), || {
        value(
            &scrape(port, None).2,
            "wirewatch_rejected_total{kind=\"empty\"}",
        ) == Some(1.0)
    });

    let (status, ct, text) = scrape(port, None);
    assert_eq!(status, 200);
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(value(&text, "wirewatch_records_emitted_total"), Some(3.0));
    assert!(value(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0.0));
    assert!(value(&text, "process_open_fds").is_some_and(|v| v > 0.0));
    let build = format!(
        "wirewatch_build_info{{version=\"{}\",commit=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        version_commit()
    );
    assert_eq!(value(&text, &build), Some(1.0), "{build} in:\n{text}");
    let (code, said) = promtool(&promtool_bin, &text);
    assert_eq!(code, 0, "promtool on the text format:\n{said}\n{text}");

    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (status, ct, om) = scrape(port, Some(accept));
    assert_eq!(status, 200);
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert_eq!(value(&om, "wirewatch_records_emitted_total"), Some(3.0));
    let (code, said) = promtool(&promtool_bin, &om);
    let counters: Vec<String> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .map(|f| format!("{f}_total no help text"))
        .collect();
    assert!(!counters.is_empty(), "{om}");
    let unexpected: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty() && !counters.iter().any(|c| c == l.trim()))
        .collect();
    assert!(
        (code == 0 || code == 3) && unexpected.is_empty(),
        "promtool on OpenMetrics (exit {code}):\n{said}\n{om}"
    );
    assert_eq!(d.stop(), 0);
}

/// A Prometheus server's answer to `query` (the instant vector's values).
fn query(port: u16, query: &str) -> Vec<(Value, f64)> {
    let (code, body) = common::http_get(port, &format!("/api/v1/query?query={query}"));
    if code != 200 {
        return Vec::new();
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|s| {
                    let x = s["value"][1].as_str()?.parse().ok()?;
                    Some((s["metric"].clone(), x))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Kills the Prometheus server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real Prometheus server scraping the daemon every second (it asks for
/// OpenMetrics first): its target is up, and a query gives back the daemon's
/// emitted count and build info.
#[test]
fn prometheus_scrapes_the_daemon() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let (mut d, port) = start();
    for n in 0..3 {
        d.drop_file(&format!("s{n}.txt"), &story(n), None);
    }
    d.wait_records(3);
    let prom_port = common::free_port();
    let config = d.path("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: wirewatch\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let log = d.path("prometheus.log");
    let _server = Server(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", d.path("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus"),
    );
    let start = std::time::Instant::now();
    loop {
        let emitted = query(prom_port, "wirewatch_records_emitted_total");
        let up = query(prom_port, "up");
        if emitted.iter().any(|(_, v)| *v == 3.0) && up.iter().any(|(_, v)| *v == 1.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Prometheus did not scrape the daemon: emitted {emitted:?}, up {up:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let build = query(prom_port, "wirewatch_build_info");
    assert_eq!(build.len(), 1, "{build:?}");
    assert_eq!(build[0].0["commit"], version_commit(), "{build:?}");
    assert_eq!(build[0].1, 1.0);
    assert_eq!(d.stop(), 0);
}
