//! Desk load meter: the desk page (`GET /`) in headless Chromium over a daemon whose
//! output already holds many records while files land at a steady rate; then the
//! daemon's backlog throughput with and without a browser on the page.
//!
//! ```text
//! cargo run --release --example gen_corpus -- --out CORPUS --n 31500
//! cargo run --release --example desk_load -- --bin target/release/wirewatch \
//!     --corpus CORPUS --work WORK [--records 10000] [--rate 50] [--secs 30] \
//!     [--throughput 20000] [--runs 3] [--no-page]
//! ```
//!
//! Needs Debian's `chromium` and `chromium-driver`. The corpus's files are taken in
//! name order and hard-linked (their mtimes kept), never moved: the first
//! `--records` make the output with `run --once`; the next `rate × secs` are renamed
//! into the inbox of the running daemon at `--rate` files/s while the page is open;
//! the next `--throughput` are the backlog of the throughput runs.
//!
//! **Responsiveness.** In the page: the lag of a 50 ms `setInterval` (how late it
//! fires: the main thread was busy), long tasks (over 50 ms, Chromium's
//! `PerformanceObserver`), the time from a record being readable in the output
//! (this tool tails it every millisecond) to its item being on the page (a
//! `MutationObserver`), every 3 s the time from a click on an item to its story
//! shown with its versions, and the time a filter (a person chip) and its removal
//! take to redraw the wire; at the end the page's DOM nodes and JavaScript heap.
//!
//! **Throughput.** `--runs` rounds of three runs: nobody watching; a client that
//! reads the page's two streams and polls `/api/stats` as the page does (the
//! daemon's side of a browser on another machine); headless Chromium on the page on
//! this machine. Each: a fresh daemon, `--throughput` files renamed into its inbox
//! at once, timed from the first rename to the last record readable; the daemon's
//! and Chromium's CPU from `/proc/PID/stat`. The order of the three turns by one
//! each round, and each watched run is also compared with the no-watcher run of its
//! own round (`paired_*`: median, then lowest and highest). `--no-page` runs only
//! these.
//!
//! The last line is machine-readable: `RESULT key=value ...`.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

/// Command line (`--help` lists it).
#[derive(clap::Parser)]
#[command(about = "The desk page under load, and the daemon's throughput with a browser on it")]
struct Args {
    /// The wirewatch binary.
    #[arg(long)]
    bin: PathBuf,
    /// A corpus from `gen_corpus` (at least records + rate × secs + throughput files).
    #[arg(long)]
    corpus: PathBuf,
    /// An empty folder on the corpus's file system, for the daemons' files.
    #[arg(long)]
    work: PathBuf,
    /// Records in the output before the page opens.
    #[arg(long, default_value_t = 10_000)]
    records: usize,
    /// Files per second landing while the page is open.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds of landing.
    #[arg(long, default_value_t = 30.0)]
    secs: f64,
    /// Files in each throughput run (0 skips them).
    #[arg(long, default_value_t = 20_000)]
    throughput: usize,
    /// Rounds of throughput runs (nobody, a stream client, a browser; the order
    /// turns by one each round).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only the throughput runs (no responsiveness measure).
    #[arg(long)]
    no_page: bool,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) -> Res<()> {
    let t = Instant::now();
    while !ok() {
        if t.elapsed() > limit {
            return Err(format!("waited {limit:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A daemon's folder: config, inbox, output, state.
struct Site {
    dir: PathBuf,
    port: u16,
}

impl Site {
    fn new(dir: PathBuf) -> Res<Site> {
        std::fs::create_dir_all(dir.join("inbox"))?;
        std::fs::create_dir_all(dir.join("staging"))?;
        let port = free_port()?;
        let d = dir.display();
        std::fs::write(
            dir.join("wirewatch.toml"),
            format!(
                "[watch]\ndir = \"{d}/inbox\"\n[output]\npath = \"{d}/out/articles.jsonl\"\nrejects = \"{d}/out/rejected.jsonl\"\n[state]\ndir = \"{d}/state\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n"
            ),
        )?;
        Ok(Site { dir, port })
    }
    fn config(&self) -> PathBuf {
        self.dir.join("wirewatch.toml")
    }
    fn output(&self) -> PathBuf {
        self.dir.join("out/articles.jsonl")
    }
    /// Hard-links `files` into the staging folder (same file system as the inbox).
    fn stage(&self, files: &[PathBuf]) -> Res<Vec<(PathBuf, PathBuf)>> {
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let name = f.file_name().ok_or("a corpus file without a name")?;
            let staged = self.dir.join("staging").join(name);
            std::fs::hard_link(f, &staged)?;
            out.push((staged, self.dir.join("inbox").join(name)));
        }
        Ok(out)
    }
    fn start(&self, bin: &Path) -> Res<Daemon> {
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(self.config())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("daemon.log"))?)
            .spawn()?;
        let daemon = Daemon(child);
        let port = self.port;
        wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })?;
        Ok(daemon)
    }
}

/// A running daemon, stopped (SIGTERM, then waited for) when dropped, also when
/// a measurement fails half-way.
struct Daemon(Child);

impl Daemon {
    fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// chromedriver, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stop(daemon: Daemon) {
    drop(daemon);
}

/// utime + stime of `pid`, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (get(11) + get(12)) / tick
}

/// utime + stime of every Chromium process (and chromedriver), in seconds, by pid.
fn browser_cpu_secs() -> std::collections::HashMap<u32, f64> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Default::default();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("chrom"))
        })
        .map(|pid| (pid, cpu_secs(pid)))
        .collect()
}

/// The CPU the Chromium processes alive at the end used since `before` (a process
/// of an earlier run that exits meanwhile is not counted).
fn browser_cpu_since(before: &std::collections::HashMap<u32, f64>) -> f64 {
    browser_cpu_secs()
        .iter()
        .map(|(pid, t)| t - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

/// Follows an output file from its current end: `(article_id/revision, ms)` of each
/// complete line, when it was read.
struct Tail {
    seen: Arc<Mutex<Vec<(String, f64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tail {
    fn new(path: PathBuf) -> Res<Tail> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut file = std::fs::File::open(&path)?;
        file.seek(SeekFrom::End(0))?;
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = vec![0; 1 << 16];
            while !st.load(Ordering::Relaxed) {
                let n = file.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                let t = now_ms();
                buf.extend_from_slice(&chunk[..n]);
                while let Some(i) = memchr::memchr(b'\n', &buf) {
                    if let Ok(v) = serde_json::from_slice::<Value>(&buf[..i]) {
                        let key = format!(
                            "{}/{}",
                            v["article_id"].as_str().unwrap_or(""),
                            v["revision"]
                        );
                        if let Ok(mut s) = s.lock() {
                            s.push((key, t));
                        }
                    }
                    buf.drain(..=i);
                }
            }
        });
        Ok(Tail {
            seen,
            stop,
            thread: Some(thread),
        })
    }
    fn count(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.len())
    }
    fn finish(mut self) -> Vec<(String, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// chromedriver on a free port, and a headless Chromium session from it.
async fn browser(profile: &Path) -> Res<(Driver, Client)> {
    let port = free_port()?;
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("chromedriver ({e}): apt-get install chromium chromium-driver"))?;
    let driver = Driver(driver);
    wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", format!("--user-data-dir={}", profile.display())],
        }),
    );
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(true);
    let client = ClientBuilder::new(http)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    Ok((driver, client))
}

/// Runs `js` until it returns something truthy (up to `limit`); that value.
async fn until(c: &Client, js: &str, limit: Duration) -> Res<Value> {
    let t = Instant::now();
    loop {
        let v = c.execute(js, vec![]).await?;
        if !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) {
            return Ok(v);
        }
        if t.elapsed() > limit {
            return Err(format!("waited {limit:?} for `{js}`").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The probe the page gets: interval lag, long tasks, item arrivals.
const PROBE: &str = r##"
const p = window.probe = { lags: [], long: 0, longMs: 0, arrivals: {} };
let due = performance.now() + 50;
setInterval(() => { const t = performance.now(); p.lags.push(Math.max(0, t - due)); due = t + 50; }, 50);
new PerformanceObserver((l) => { for (const e of l.getEntries()) { p.long++; p.longMs += e.duration; } }).observe({ type: "longtask" });
new MutationObserver((ms) => { const t = Date.now(); for (const m of ms) for (const n of m.addedNodes)
  if (n.dataset && n.dataset.article) { const k = `${n.dataset.article}/${n.dataset.rev}`; if (!(k in p.arrivals)) p.arrivals[k] = t; } })
  .observe(document.querySelector("#wire"), { childList: true });
"##;

/// Clicks the third item and waits for its story with its versions: ms.
const OPEN_STORY: &str = r##"
const done = arguments[arguments.length - 1];
const items = document.querySelectorAll("#wire .item");
const t0 = performance.now();
items[Math.min(2, items.length - 1)].click();
const check = () => { const s = document.querySelector("#story");
  if (!s.hidden && s.querySelector(".version")) { const ms = performance.now() - t0; document.querySelector("#close").click(); done(ms); }
  else setTimeout(check, 2); };
check();
"##;

/// Clicks a chip's filter (or its removal, with `#filters .chip`), waits for the
/// wire to be drawn again: ms.
const FILTER: &str = r##"
const done = arguments[arguments.length - 1];
const [sel, want] = [arguments[0], arguments[1]];
const t0 = performance.now();
document.querySelector(sel).click();
const check = () => { const n = document.querySelectorAll("#wire .item").length;
  if (n >= want) done(performance.now() - t0); else setTimeout(check, 2); };
check();
"##;

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

async fn responsiveness(a: &Args, files: &[PathBuf], out: &mut Vec<String>) -> Res<()> {
    let site = Site::new(a.work.join("desk"))?;
    let backlog = site.stage(&files[..a.records])?;
    for (from, to) in &backlog {
        std::fs::rename(from, to)?;
    }
    let t = Instant::now();
    let status = Command::new(&a.bin)
        .args(["run", "--once", "--config"])
        .arg(site.config())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("run --once over the {} files failed", a.records).into());
    }
    let lines = std::fs::read(site.output())?
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    let bytes = std::fs::metadata(site.output())?.len();
    eprintln!(
        "desk_load: {lines} records ({bytes} bytes) in the output after {:.1?}",
        t.elapsed()
    );
    let live_n = (a.rate * a.secs).round() as usize;
    let live = site.stage(&files[a.records..a.records + live_n])?;
    let daemon = site.start(&a.bin)?;
    let profile = tempfile::tempdir()?;
    let (driver, c) = browser(profile.path()).await?;
    let url = format!("http://127.0.0.1:{}/", site.port);
    let t = Instant::now();
    c.goto(&url).await?;
    until(
        &c,
        "return document.querySelectorAll('#wire .item').length >= 200",
        Duration::from_secs(60),
    )
    .await?;
    let first_paint = t.elapsed().as_secs_f64() * 1000.0;
    c.execute(PROBE, vec![]).await?;
    let tail = Tail::new(site.output())?;
    // Drops on a thread of their own, at the rate.
    let dropper = std::thread::spawn({
        let rate = a.rate;
        move || {
            let t0 = Instant::now();
            for (i, (from, to)) in live.iter().enumerate() {
                let due = t0 + Duration::from_secs_f64(i as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let _ = std::fs::rename(from, to);
            }
        }
    });
    let mut opens = Vec::new();
    let started = Instant::now();
    let mut filters = None;
    while started.elapsed().as_secs_f64() < a.secs {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let ms = c.execute_async(OPEN_STORY, vec![]).await?;
        opens.push(ms.as_f64().unwrap_or(f64::NAN));
        if filters.is_none() && started.elapsed().as_secs_f64() > a.secs / 2.0 {
            let from = now_ms();
            let on = c
                .execute_async(FILTER, vec![json!("#wire .item .chip.person"), json!(1)])
                .await?;
            let off = c
                .execute_async(FILTER, vec![json!("#filters .chip"), json!(200)])
                .await?;
            filters = Some((
                on.as_f64().unwrap_or(f64::NAN),
                off.as_f64().unwrap_or(f64::NAN),
                from,
                now_ms(),
            ));
        }
    }
    let _ = dropper.join();
    let want = live_n;
    let _ = wait_for(Duration::from_secs(20), || tail.count() >= want);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let probe = c
        .execute(
            "const p = window.probe; return { lags: p.lags, long: p.long, longMs: p.longMs, arrivals: p.arrivals, nodes: document.getElementsByTagName('*').length, heap: performance.memory ? performance.memory.usedJSHeapSize : null, errors: window.deskErrors }",
            vec![],
        )
        .await?;
    let seen = tail.finish();
    c.close().await?;
    drop(driver);
    stop(daemon);

    let mut lags: Vec<f64> = probe["lags"]
        .as_array()
        .map_or(Vec::new(), |v| v.iter().filter_map(Value::as_f64).collect());
    let arrivals = probe["arrivals"].as_object().cloned().unwrap_or_default();
    // Records written after the filter was removed reach the page live; the ones
    // during the filter's few hundred ms come back in its replay instead.
    let (fon, foff, f0, f1) = filters.unwrap_or((f64::NAN, f64::NAN, 0.0, 0.0));
    let mut delays = Vec::new();
    let (mut missing, mut filtered) = (0, 0);
    for (key, readable) in &seen {
        let arrival = arrivals.get(key).and_then(Value::as_f64);
        // Readable while the wire was filtered, or before but still on its way to
        // the page when the filter began (the filter resets the wire): on the page
        // when the filter went.
        if *readable <= f1 && (*readable >= f0 || arrival.is_none_or(|t| t >= f0)) {
            filtered += 1;
            continue;
        }
        match arrival {
            Some(t) => delays.push(t - readable),
            None => missing += 1,
        }
    }
    out.push(format!("output_records={lines} output_bytes={bytes} live_records={} first_paint_ms={first_paint:.0}", seen.len()));
    out.push(format!(
        "interval_lag_p50_ms={:.1} interval_lag_p99_ms={:.1} interval_lag_max_ms={:.1} long_tasks={} long_task_ms={:.0}",
        pct(&mut lags, 0.5), pct(&mut lags, 0.99), pct(&mut lags, 1.0), probe["long"], probe["longMs"].as_f64().unwrap_or(0.0)
    ));
    out.push(format!(
        "readable_to_page_p50_ms={:.0} readable_to_page_p99_ms={:.0} readable_to_page_max_ms={:.0} not_on_page={missing} readable_while_filtered={filtered}",
        pct(&mut delays.clone(), 0.5), pct(&mut delays.clone(), 0.99), pct(&mut delays, 1.0)
    ));
    out.push(format!(
        "story_open_p50_ms={:.0} story_open_max_ms={:.0} opens={} filter_on_ms={fon:.0} filter_off_ms={foff:.0} dom_nodes={} js_heap_mb={:.1} page_errors={}",
        pct(&mut opens.clone(), 0.5), pct(&mut opens.clone(), 1.0), opens.len(), probe["nodes"],
        probe["heap"].as_f64().unwrap_or(f64::NAN) / 1e6, probe["errors"]
    ));
    Ok(())
}

/// Who watches a throughput run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Watcher {
    /// Nobody.
    None,
    /// A client reading the page's streams (`/events?view=brief&last=200&max_rate=100` and
    /// `/events?outcome=rejected`) and `/api/stats` every 2 s, as the page does,
    /// without a browser: the daemon's side of a browser on another machine.
    Stream,
    /// Headless Chromium on the page, on this machine.
    Browser,
}

/// Reads a server-sent stream to nothing until `stop`.
fn drain(port: u16, query: &str, stop: Arc<AtomicBool>) -> Res<std::thread::JoinHandle<()>> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "GET /events?{query} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    )?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(std::thread::spawn(move || {
        let mut buf = vec![0; 1 << 16];
        while !stop.load(Ordering::Relaxed) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
    }))
}

/// Asks for `/api/stats` every 2 s until `stop`.
fn poll_stats(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    use std::io::Write;
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = write!(
                    s,
                    "GET /api/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                );
                let _ = s.read_to_end(&mut Vec::new());
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    })
}

/// One throughput run: files/s, and the daemon's and the browser's CPU µs per file.
async fn throughput_run(
    a: &Args,
    files: &[PathBuf],
    run: usize,
    watcher: Watcher,
) -> Res<(f64, f64, f64)> {
    let with_browser = watcher == Watcher::Browser;
    let site = Site::new(a.work.join(format!("tp-{run}-{watcher:?}")))?;
    let staged = site.stage(files)?;
    let daemon = site.start(&a.bin)?;
    wait_for(Duration::from_secs(10), || site.output().exists())?;
    let profile = tempfile::tempdir()?;
    let session = if with_browser {
        let (driver, c) = browser(profile.path()).await?;
        c.goto(&format!("http://127.0.0.1:{}/", site.port)).await?;
        until(
            &c,
            "return document.querySelector('#conn').classList.contains('live')",
            Duration::from_secs(20),
        )
        .await?;
        Some((driver, c))
    } else {
        None
    };
    let stop_client = Arc::new(AtomicBool::new(false));
    let mut client = Vec::new();
    if watcher == Watcher::Stream {
        client.push(drain(
            site.port,
            "last=200&view=brief&max_rate=100",
            stop_client.clone(),
        )?);
        client.push(drain(site.port, "outcome=rejected", stop_client.clone())?);
        client.push(poll_stats(site.port, stop_client.clone()));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tail = Tail::new(site.output())?;
    let cpu0 = cpu_secs(daemon.id());
    let browser0 = browser_cpu_secs();
    let t0 = Instant::now();
    for (from, to) in &staged {
        std::fs::rename(from, to)?;
    }
    wait_for(Duration::from_secs(600), || tail.count() >= staged.len())?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(daemon.id()) - cpu0;
    let browser = browser_cpu_since(&browser0);
    let _ = tail.finish();
    stop_client.store(true, Ordering::Relaxed);
    for c in client {
        let _ = c.join();
    }
    if let Some((driver, c)) = session {
        let items = c
            .execute(
                "return document.querySelectorAll('#wire .item').length",
                vec![],
            )
            .await?;
        if items != json!(500) {
            eprintln!("desk_load: the page shows {items} items, not 500");
        }
        c.close().await?;
        drop(driver);
    }
    stop(daemon);
    std::fs::remove_dir_all(&site.dir)?;
    let n = staged.len() as f64;
    Ok((n / secs, cpu / n * 1e6, browser / n * 1e6))
}

#[tokio::main]
async fn main() -> Res<()> {
    let a: Args = clap::Parser::parse();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&a.corpus)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    let live_n = (a.rate * a.secs).round() as usize;
    let need = a.records + live_n + a.throughput;
    if files.len() < need {
        return Err(format!(
            "{} has {} files; {need} are needed",
            a.corpus.display(),
            files.len()
        )
        .into());
    }
    std::fs::create_dir_all(&a.work)?;
    let mut out = Vec::new();
    if !a.no_page {
        responsiveness(&a, &files, &mut out).await?;
    }
    if a.throughput > 0 {
        let set = &files[a.records + live_n..need];
        let (mut without, mut stream, mut with) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..a.runs {
            let mut order = [Watcher::None, Watcher::Stream, Watcher::Browser];
            order.rotate_left(run % 3);
            for w in order {
                let (fps, cpu, bcpu) = throughput_run(&a, set, run, w).await?;
                eprintln!("desk_load: throughput run {run}, {w:?}: {fps:.0} files/s, {cpu:.0} µs daemon CPU and {bcpu:.0} µs browser CPU per file");
                match w {
                    Watcher::None => without.push((fps, cpu, bcpu)),
                    Watcher::Stream => stream.push((fps, cpu, bcpu)),
                    Watcher::Browser => with.push((fps, cpu, bcpu)),
                }
            }
        }
        let fmt = |v: &[(f64, f64, f64)]| {
            v.iter()
                .map(|(f, c, b)| format!("{f:.0}/{c:.0}/{b:.0}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mean = |v: &[(f64, f64, f64)]| v.iter().map(|x| x.0).sum::<f64>() / v.len() as f64;
        let median = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| {
            let mut x: Vec<f64> = v.iter().map(f).collect();
            pct(&mut x, 0.5)
        };
        // Each round's ratio to its own no-watcher run (the runs of a round are
        // next to each other in time, so slow drifts of the machine cancel).
        let paired = |v: &[(f64, f64, f64)]| {
            let mut r: Vec<f64> = v.iter().zip(&without).map(|(w, n)| w.0 / n.0).collect();
            let m = pct(&mut r, 0.5);
            format!("{:.3}[{:.3}..{:.3}]", m, r[0], r[r.len() - 1])
        };
        out.push(format!(
            "throughput_files={} none_fps_daemon_us_browser_us={} stream_client={} browser={} stream_over_none={:.3} browser_over_none={:.3} median_fps_none_stream_browser={:.0}/{:.0}/{:.0} median_daemon_us_none_stream_browser={:.0}/{:.0}/{:.0} median_browser_us={:.0} paired_stream_over_none={} paired_browser_over_none={}",
            a.throughput, fmt(&without), fmt(&stream), fmt(&with), mean(&stream) / mean(&without), mean(&with) / mean(&without),
            median(&without, |x| x.0), median(&stream, |x| x.0), median(&with, |x| x.0),
            median(&without, |x| x.1), median(&stream, |x| x.1), median(&with, |x| x.1),
            median(&with, |x| x.2), paired(&stream), paired(&with)
        ));
    }
    for l in &out {
        println!("{l}");
    }
    println!("RESULT {}", out.join(" "));
    Ok(())
}
