//! Live latency meter for the end-to-end benchmark (`scripts/bench.sh`).
//!
//! ```text
//! cargo run --release --example live_latency -- --from STAGING --inbox INBOX \
//!     --output OUT.jsonl [--rate 500] [--duration 20] [--pid PID] [--wait-idle] \
//!     [--timeout 10]
//! ```
//!
//! Drops the files of `--from` (a staging folder on the same file system as the
//! inbox, taken in name order) into `--inbox` by `rename`, at a fixed rate, for the
//! given duration, and tails `--output` (polled every millisecond from its size at
//! start), matching each new line to its file by the file name of `source.path`.
//! The latency of a file is from the instant just before its `rename` to the
//! instant its line was read complete from the output. Prints p50/p90/p99/p99.9/max
//! latency in ms, counts (lost = dropped files with no line within `--timeout` s
//! after the last drop), and, with `--pid`, the daemon's CPU use over the run
//! (utime + stime from `/proc/PID/stat`) and its peak RSS (`VmHWM`).
//!
//! The dropper's worst lag behind its schedule is printed too: more than a few ms
//! means the machine was too busy to keep time, and latencies suffer from it as well.
//!
//! `--wait-idle` first waits (up to 120 s) until the daemon has used no CPU for
//! 0.6 s, so that its start-up scan is not in the measurement.
//!
//! The last line is machine-readable: `RESULT key=value ...`.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Command line (`--help` lists it).
#[derive(clap::Parser)]
#[command(about = "Drops files by rename at a fixed rate and times rename → readable line")]
struct Args {
    /// Folder of files to drop.
    #[arg(long)]
    from: PathBuf,
    /// The daemon's watched folder.
    #[arg(long)]
    inbox: PathBuf,
    /// The daemon's output file.
    #[arg(long)]
    output: PathBuf,
    /// Drops per second.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Seconds of dropping.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds to wait for the last lines.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// The daemon's PID, for its CPU use.
    #[arg(long)]
    pid: Option<u32>,
    /// Wait until the daemon is idle before dropping.
    #[arg(long = "wait-idle")]
    idle: bool,
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: fields are counted after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `/proc/PID/status` value in kB (`VmHWM`, `VmRSS`).
fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn wait_idle(pid: u32) {
    let start = Instant::now();
    let mut quiet = 0;
    let mut last = cpu_ticks(pid);
    while start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(200));
        let now = cpu_ticks(pid);
        if now.is_none() {
            eprintln!("live_latency: process {pid} is gone");
            std::process::exit(1);
        }
        if now <= last.map(|l| l + 1) {
            quiet += 1;
            if quiet >= 3 {
                eprintln!(
                    "live_latency: daemon idle after {:.1} s",
                    start.elapsed().as_secs_f64()
                );
                return;
            }
        } else {
            quiet = 0;
        }
        last = now;
    }
    eprintln!("live_latency: daemon still busy after 120 s; measuring anyway");
}

#[derive(serde::Deserialize)]
struct Line {
    source: Src,
}

#[derive(serde::Deserialize)]
struct Src {
    path: String,
}

fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Shared {
    /// File name → instant just before its rename.
    dropped: Mutex<HashMap<String, Instant>>,
    /// Latencies in ms of matched lines.
    latencies: Mutex<Vec<f64>>,
    /// Lines that matched no dropped file.
    other: Mutex<u64>,
}

/// Tails `path` from `start`, every millisecond, until `stop`.
fn tail(path: &Path, start: u64, shared: &Shared, stop: &AtomicBool) {
    let mut f = loop {
        match std::fs::File::open(path) {
            Ok(f) => break f,
            Err(_) if !stop.load(Ordering::Relaxed) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    };
    f.seek(SeekFrom::Start(start)).expect("seek output");
    let mut buf = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 20];
    while !stop.load(Ordering::Relaxed) {
        let n = f.read(&mut chunk).expect("read output");
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let now = Instant::now();
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        let mut lat = Vec::new();
        let mut other = 0;
        {
            let dropped = shared.dropped.lock().expect("lock");
            for line in buf[..end].split(|&b| b == b'\n') {
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<Line>(line) {
                    Ok(l) => match dropped.get(file_name(&l.source.path)) {
                        Some(t) => lat.push(now.duration_since(*t).as_secs_f64() * 1000.0),
                        None => other += 1,
                    },
                    Err(_) => other += 1,
                }
            }
        }
        buf.drain(..=end);
        shared.latencies.lock().expect("lock").extend(lat);
        *shared.other.lock().expect("lock") += other;
    }
}

fn main() {
    let Args {
        from,
        inbox,
        output,
        rate,
        duration,
        timeout,
        pid,
        idle,
    } = clap::Parser::parse();
    if rate <= 0.0 || duration <= 0.0 {
        eprintln!("--rate and --duration must be positive");
        std::process::exit(2);
    }
    let mut files: Vec<String> = std::fs::read_dir(&from)
        .unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    files.sort();
    let want = (rate * duration).round() as usize;
    if files.len() < want {
        eprintln!(
            "live_latency: only {} files in {} for {want} drops; dropping them all",
            files.len(),
            from.display()
        );
    }
    files.truncate(want);

    if idle {
        if let Some(p) = pid {
            wait_idle(p);
        }
    }

    let start_offset = std::fs::metadata(&output).map_or(0, |m| m.len());
    let shared = Arc::new(Shared {
        dropped: Mutex::new(HashMap::with_capacity(files.len())),
        latencies: Mutex::new(Vec::with_capacity(files.len())),
        other: Mutex::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let tailer = {
        let (shared, stop, output) = (shared.clone(), stop.clone(), output.clone());
        std::thread::spawn(move || tail(&output, start_offset, &shared, &stop))
    };

    let ticks = clock_ticks();
    let cpu0 = pid.and_then(cpu_ticks);
    let period = Duration::from_secs_f64(1.0 / rate);
    let t0 = Instant::now();
    let mut late_max = Duration::ZERO;
    for (i, name) in files.iter().enumerate() {
        let due = t0 + period * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else {
            late_max = late_max.max(now - due);
        }
        let src = from.join(name);
        let dst = inbox.join(name);
        let before = Instant::now();
        shared
            .dropped
            .lock()
            .expect("lock")
            .insert(name.clone(), before);
        if let Err(e) = std::fs::rename(&src, &dst) {
            panic!("rename {} -> {}: {e}", src.display(), dst.display());
        }
    }
    let drop_secs = t0.elapsed().as_secs_f64();
    // Wait for the stragglers.
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    while Instant::now() < deadline {
        if shared.latencies.lock().expect("lock").len() >= files.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let total_secs = t0.elapsed().as_secs_f64();
    let cpu1 = pid.and_then(cpu_ticks);
    stop.store(true, Ordering::Relaxed);
    tailer.join().expect("tail thread");

    let mut lat = shared.latencies.lock().expect("lock").clone();
    lat.sort_by(f64::total_cmp);
    let other = *shared.other.lock().expect("lock");
    let sent = files.len();
    let received = lat.len();
    let lost = sent.saturating_sub(received);
    let mean = if lat.is_empty() {
        f64::NAN
    } else {
        lat.iter().sum::<f64>() / lat.len() as f64
    };
    let (p50, p90, p99, p999, max) = (
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        percentile(&lat, 99.9),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "dropped {sent} files in {drop_secs:.2} s ({:.0}/s, worst lag behind schedule {:.1} ms)",
        sent as f64 / drop_secs,
        late_max.as_secs_f64() * 1000.0
    );
    println!("lines matched {received}, lost {lost}, other lines {other}");
    println!(
        "latency ms: p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  p99.9 {p999:.2}  max {max:.2}  mean {mean:.2}"
    );
    let mut result = format!(
        "RESULT sent={sent} received={received} lost={lost} other={other} drop_secs={drop_secs:.3} \
         rate={:.1} lag_ms={:.3} p50_ms={p50:.3} p90_ms={p90:.3} p99_ms={p99:.3} p999_ms={p999:.3} max_ms={max:.3} mean_ms={mean:.3}",
        sent as f64 / drop_secs,
        late_max.as_secs_f64() * 1000.0
    );
    if let (Some(p), Some(c0), Some(c1)) = (pid, cpu0, cpu1) {
        let cpu_secs = (c1 - c0) as f64 / ticks;
        let pct = 100.0 * cpu_secs / total_secs;
        let hwm = status_kb(p, "VmHWM:").unwrap_or(0);
        let rss = status_kb(p, "VmRSS:").unwrap_or(0);
        println!(
            "daemon: {cpu_secs:.2} CPU s over {total_secs:.2} s = {pct:.1} % of one core; \
             {:.2} ms CPU per file; RSS {:.1} MiB, peak {:.1} MiB",
            1000.0 * cpu_secs / sent.max(1) as f64,
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        result.push_str(&format!(
            " cpu_s={cpu_secs:.3} wall_s={total_secs:.3} cpu_pct={pct:.2} rss_kb={rss} hwm_kb={hwm}"
        ));
    }
    println!("{result}");
    if lost > 0 {
        std::process::exit(1);
    }
}
