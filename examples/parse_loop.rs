//! Parses the seed N times (default 2000), and with a second argument `extract`
//! also runs the extract stage: a steady workload for profilers
//! (`valgrind --tool=callgrind --toggle-collect=parse_loop::work`, `perf record`).
//! A third argument, a folder, replaces the seed with the files in it (read into
//! memory first, then parsed in turn, N in all): for example a `gen_corpus` folder.

use wirewatch::parse::SourceFile;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let extract = std::env::args().nth(2).as_deref() == Some("extract");
    let opts = wirewatch::parse::ParseOptions::new("America/Toronto").expect("bundled tz");
    let files = match std::env::args().nth(3) {
        Some(dir) => read_dir(&dir),
        None => vec![SourceFile {
            path: "seed.txt".into(),
            bytes: include_bytes!("../tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt").to_vec(),
            modified: None,
        }],
    };
    if files.is_empty() {
        eprintln!("no files to parse");
        std::process::exit(2);
    }
    let reference = "2022-10-03T02:55:00Z".parse().ok();
    // Load the gazetteer before the measured loop.
    if let Ok(mut r) = wirewatch::parse::parse(&files[0], reference, &opts) {
        wirewatch::pipeline::enrich(&mut r);
    }
    let t = std::time::Instant::now();
    let words = work(&files, reference, &opts, n, extract);
    let el = t.elapsed();
    eprintln!(
        "{n} parses in {el:?}: {:.0}/s, {:.1} µs each ({words} words)",
        n as f64 / el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / n as f64
    );
}

/// Every regular file of `dir`, in name order.
fn read_dir(dir: &str) -> Vec<SourceFile> {
    let mut paths: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            eprintln!("cannot read {dir}: {e}");
            std::process::exit(2);
        }
    };
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            Some(SourceFile {
                path: p,
                bytes,
                modified: None,
            })
        })
        .collect()
}

/// The measured loop, a function of its own so that
/// `valgrind --tool=callgrind --toggle-collect=parse_loop::work` counts only it.
#[inline(never)]
fn work(
    files: &[SourceFile],
    reference: Option<jiff::Timestamp>,
    opts: &wirewatch::parse::ParseOptions,
    n: usize,
    extract: bool,
) -> usize {
    let mut words = 0;
    for file in files.iter().cycle().take(n) {
        if let Ok(mut r) = wirewatch::parse::parse(file, reference, opts) {
            if extract {
                wirewatch::pipeline::enrich(&mut r);
            }
            words += r.word_count;
        }
    }
    words
}
