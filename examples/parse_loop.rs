//! Parses the seed N times (default 2000), and with a second argument `extract`
//! also runs the extract stage: a steady workload for profilers
//! (`valgrind --tool=callgrind --toggle-collect=parse_loop::work`, `perf record`).

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let extract = std::env::args().nth(2).as_deref() == Some("extract");
    let opts = wirewatch::parse::ParseOptions::new("America/Toronto").expect("bundled tz");
    let file = wirewatch::parse::SourceFile {
        path: "seed.txt".into(),
        bytes: include_bytes!("../tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt").to_vec(),
        modified: None,
    };
    let reference = "2022-10-03T02:55:00Z".parse().ok();
    // Load the gazetteer before the measured loop.
    if let Ok(mut r) = wirewatch::parse::parse(&file, reference, &opts) {
        wirewatch::pipeline::enrich(&mut r);
    }
    let t = std::time::Instant::now();
    let words = work(&file, reference, &opts, n, extract);
    let el = t.elapsed();
    eprintln!(
        "{n} parses in {el:?}: {:.0}/s ({words} words)",
        n as f64 / el.as_secs_f64()
    );
}

/// The measured loop, a function of its own so that
/// `valgrind --tool=callgrind --toggle-collect=parse_loop::work` counts only it.
#[inline(never)]
fn work(
    file: &wirewatch::parse::SourceFile,
    reference: Option<jiff::Timestamp>,
    opts: &wirewatch::parse::ParseOptions,
    n: usize,
    extract: bool,
) -> usize {
    let mut words = 0;
    for _ in 0..n {
        if let Ok(mut r) = wirewatch::parse::parse(file, reference, opts) {
            if extract {
                wirewatch::pipeline::enrich(&mut r);
            }
            words += r.word_count;
        }
    }
    words
}
