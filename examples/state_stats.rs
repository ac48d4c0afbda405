//! Where a state's bytes go: `cargo run --release --example state_stats -- STATE_DIR`
//! prints each table's entries, pages and stored bytes, and the bytes per article.
//! Run it on a stopped daemon's state (the daemon holds the state's lock).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: state_stats STATE_DIR");
        return ExitCode::from(2);
    };
    let dir = std::path::PathBuf::from(dir);
    let store = match wirewatch::dedupe::Store::open(&dir, 16 << 20) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("state_stats: {e}");
            return ExitCode::from(1);
        }
    };
    let stats = match store.table_stats() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("state_stats: {e}");
            return ExitCode::from(1);
        }
    };
    let file = std::fs::metadata(dir.join("wirewatch.redb"))
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.len(), m.blocks() * 512)
        })
        .unwrap_or_default();
    println!(
        "{:<15} {:>10} {:>9} {:>13} {:>13} {:>13}",
        "table", "entries", "pages", "page bytes", "stored", "fragmented"
    );
    let mut pages = 0;
    for t in &stats {
        pages += t.page_bytes;
        println!(
            "{:<15} {:>10} {:>9} {:>13} {:>13} {:>13}",
            t.name, t.entries, t.pages, t.page_bytes, t.stored_bytes, t.fragmented_bytes
        );
    }
    let count = |name: &str| {
        stats
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.entries)
            .max(1)
    };
    let (articles, files) = (count("articles"), count("files"));
    println!(
        "file: {} bytes long, {} allocated ({:.0} per processed file, {} files); table pages {} = {:.0} bytes per article ({} articles)",
        file.0,
        file.1,
        file.1 as f64 / files as f64,
        files,
        pages,
        pages as f64 / articles as f64,
        articles
    );
    ExitCode::SUCCESS
}
