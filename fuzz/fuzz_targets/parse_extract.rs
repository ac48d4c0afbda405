//! Fuzz target: arbitrary bytes through the parse and extract stages (what a reader
//! does with a file), then the `changes` diff against the seed. Any panic is a bug:
//! bad input must end in a record or a typed rejection.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wirewatch::parse::{self, ParseOptions, SourceFile};

fn opts() -> &'static ParseOptions {
    static OPTS: OnceLock<ParseOptions> = OnceLock::new();
    OPTS.get_or_init(|| ParseOptions::new("America/Toronto").expect("bundled tz"))
}

fn seed_snapshot() -> &'static wirewatch::diff::Snapshot {
    static SNAP: OnceLock<wirewatch::diff::Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let file = SourceFile {
            path: "seed.txt".into(),
            bytes: include_bytes!("../../tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt").to_vec(),
            modified: None,
        };
        let mut r = parse::parse(&file, "2022-10-03T02:55:00Z".parse().ok(), opts()).expect("seed parses");
        wirewatch::pipeline::enrich(&mut r);
        wirewatch::diff::Snapshot::of(&r)
    })
}

fuzz_target!(|data: &[u8]| {
    let file = SourceFile {
        path: "fuzz.txt".into(),
        bytes: data.to_vec(),
        modified: None,
    };
    if let Ok(mut record) = parse::parse(&file, "2022-10-03T02:55:00Z".parse().ok(), opts()) {
        wirewatch::pipeline::enrich(&mut record);
        let _ = wirewatch::diff::changes(seed_snapshot(), &record);
        let line = serde_json::to_string(&record).expect("a record always serializes");
        let back: wirewatch::record::Record = serde_json::from_str(&line).expect("and reads back");
        assert_eq!(back.article_id, record.article_id);
    }
});
