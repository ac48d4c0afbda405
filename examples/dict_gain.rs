//! What the state's snapshot dictionary saves on real articles, through the state's
//! own codec.
//!
//! `cargo run --release --example dict_gain [-- FOLDER [N]]` parses and extracts the
//! articles of FOLDER (default `tests/fixtures/dev`, with its `manifest.json`
//! reference times; at most N, in name order, from a folder without one), makes the snapshot the state would keep of each, trains a
//! dictionary on the even-numbered half as the state trains it, and prints the
//! stored bytes of the odd-numbered half: plain zstd (level 1, what a state holds
//! before its dictionary) against the dictionary (what it holds after). The halves
//! share no article, so the figure is what a dictionary trained on earlier stories
//! gives later ones. It also prints the training's time and the time of one
//! snapshot's encoding with the dictionary (the fastest of three passes).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use wirewatch::dedupe::codec::{encode_snapshot, SnapshotDict};
use wirewatch::diff::Snapshot;
use wirewatch::parse::{self, ParseOptions};

#[derive(Deserialize)]
struct Entry {
    file: String,
    reference_time: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dev"));
    let limit: usize = match std::env::args().nth(2) {
        Some(n) => n.parse()?,
        None => usize::MAX,
    };
    // The fixtures' manifest gives each file's reference time; a folder without one
    // (a generated corpus) is read in name order without.
    let manifest: Vec<Entry> = match std::fs::read_to_string(dir.join("manifest.json")) {
        Ok(text) => serde_json::from_str(&text)?,
        Err(_) => {
            let mut names: Vec<String> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".txt"))
                .collect();
            names.sort();
            names
                .into_iter()
                .map(|file| Entry {
                    file,
                    reference_time: String::new(),
                })
                .collect()
        }
    };
    let opts = ParseOptions::new("America/Toronto")?;
    let mut snapshots = Vec::new();
    for e in manifest.iter().take(limit) {
        let file = parse::read_file(&dir.join(&e.file), &opts.limits)?;
        let Ok(mut r) = parse::parse(&file, e.reference_time.parse().ok(), &opts) else {
            continue;
        };
        wirewatch::enrich(&mut r);
        snapshots.push(Snapshot::of(&r));
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, s) in snapshots.iter().enumerate() {
        if i % 2 == 0 {
            train.push(encode_snapshot(s, None)?);
        } else {
            test.push(s);
        }
    }
    let started = Instant::now();
    let dict = SnapshotDict::train(train.iter().map(Vec::as_slice))?;
    let training = started.elapsed();
    let (mut raw, mut plain, mut with) = (0usize, 0usize, 0usize);
    for s in &test {
        raw += postcard::to_allocvec(s)?.len();
        plain += encode_snapshot(s, None)?.len();
        with += encode_snapshot(s, Some(&dict))?.len();
    }
    let n = test.len().max(1) as f64;
    let mut encoding = f64::INFINITY;
    for _ in 0..3 {
        let started = Instant::now();
        for s in &test {
            std::hint::black_box(encode_snapshot(s, Some(&dict))?);
        }
        encoding = encoding.min(started.elapsed().as_secs_f64() * 1e6 / n);
    }
    println!(
        "{} articles: dictionary of {} bytes trained on {}; the other {}: \
         postcard {:.0} B, zstd {:.0} B, with the dictionary {:.0} B per snapshot ({:.1} % of zstd); \
         training {} ms, {:.1} µs per snapshot encoding with the dictionary",
        snapshots.len(),
        dict.bytes().len(),
        train.len(),
        test.len(),
        raw as f64 / n,
        plain as f64 / n,
        with as f64 / n,
        100.0 * with as f64 / plain.max(1) as f64,
        training.as_millis(),
        encoding
    );
    Ok(())
}
