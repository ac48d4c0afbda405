//! Times parse + extract on each hostile generator of
//! [`wirewatch::extract::adversarial`], at the default `parse.max_bytes` and
//! `parse.max_line_bytes` (or `--bytes N`), with no time limit: the figure the extract
//! stage's near-linear passes are judged by. Each generator runs `--runs N` times (3):
//! the median elapsed time, the slowest run, and the median CPU time of the thread
//! (which other work on the machine inflates less).
//!
//! `cargo run --release --example adversarial [-- --bytes N] [--runs N] [--write DIR]`;
//! `--write` also saves each file (`DIR/NAME.txt`), for `wirewatch check`.

use std::time::{Duration, Instant};

use wirewatch::extract::adversarial;
use wirewatch::parse::{self, Limits, ParseOptions, SourceFile};

/// CPU time used by this thread so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let mut args = std::env::args().skip(1);
    let limits = Limits::default();
    let mut bytes = limits.max_bytes as usize;
    let mut write: Option<std::path::PathBuf> = None;
    let mut runs = 3usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bytes" => bytes = args.next().and_then(|n| n.parse().ok()).expect("--bytes N"),
            "--write" => write = args.next().map(Into::into),
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .expect("--runs N (1 or more)")
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    let opts = ParseOptions::new("America/Toronto").expect("bundled tz");
    let reference = "2022-10-03T02:55:00Z".parse().ok();
    // Load the gazetteer before the first measurement.
    wirewatch::extract::gazetteer::get().expect("embedded gazetteer");
    println!("median of {runs} runs each (extract max: the slowest run)");
    println!(
        "{:<12} {:>9} {:>9} {:>11} {:>11} {:>11} {:>7} {:>7}",
        "generator", "bytes", "parse", "extract", "extract max", "extract cpu", "people", "quotes"
    );
    for (name, generate) in adversarial::ALL {
        let text = generate(bytes, limits.max_line_bytes);
        if let Some(dir) = &write {
            std::fs::create_dir_all(dir).expect("create --write folder");
            std::fs::write(dir.join(format!("{name}.txt")), &text).expect("write file");
        }
        let file = SourceFile {
            path: format!("{name}.txt").into(),
            bytes: text.into_bytes(),
            modified: None,
        };
        // (parse, extract, extract CPU) of each run; the record of the last.
        let mut times: Vec<(Duration, Duration, Duration)> = Vec::with_capacity(runs);
        let mut last = None;
        for _ in 0..runs {
            let t = Instant::now();
            let mut record = match parse::parse(&file, reference, &opts) {
                Ok(r) => r,
                Err(e) => {
                    println!("{name:<12} rejected by parse: {} ({})", e.kind, e.message);
                    break;
                }
            };
            let parsed = t.elapsed();
            let (t, c) = (Instant::now(), thread_cpu());
            wirewatch::pipeline::enrich(&mut record);
            times.push((parsed, t.elapsed(), thread_cpu() - c));
            last = Some(record);
        }
        let Some(record) = last else { continue };
        let median = |pick: fn(&(Duration, Duration, Duration)) -> Duration| {
            let mut v: Vec<Duration> = times.iter().map(pick).collect();
            v.sort();
            v[v.len() / 2]
        };
        let worst = times.iter().map(|t| t.1).max().unwrap_or_default();
        println!(
            "{name:<12} {:>9} {:>7.1}ms {:>9.1}ms {:>9.1}ms {:>9.1}ms {:>7} {:>7}",
            file.bytes.len(),
            ms(median(|t| t.0)),
            ms(median(|t| t.1)),
            ms(worst),
            ms(median(|t| t.2)),
            record.people.len(),
            record.quotes.len()
        );
    }
}
