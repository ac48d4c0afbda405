//! Property tests: whatever the bytes, the parser returns a record or a typed
//! rejection, never panics. Inputs: random bytes, random text built from article
//! pieces, every truncation of the seed, and huge lines.

mod common;

use proptest::prelude::*;
use wirewatch::parse::{self, Limits, ParseOptions, SourceFile};

fn opts() -> ParseOptions {
    let mut o = ParseOptions::new("America/Toronto").unwrap();
    o.limits = Limits {
        max_bytes: 1 << 20,
        max_line_bytes: 64 << 10,
    };
    o
}

fn run(bytes: Vec<u8>) {
    let file = SourceFile {
        path: "p.txt".into(),
        bytes,
        modified: None,
    };
    let reference = "2022-10-03T02:55:00Z".parse().ok();
    match parse::parse(&file, reference, &opts()) {
        Ok(r) => {
            assert!(!r.lede.is_empty());
            serde_json::to_string(&r).unwrap();
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
}

const PIECES: &[&str] = &[
    "(Washington) ",
    "(",
    ")",
    "Posted at ",
    "Updated at ",
    "Publié à ",
    "Mis à jour le 1er ",
    "10:23 p.m.",
    "22 h 23",
    "8h26",
    "noon",
    "yesterday",
    "hier",
    "aujourd'hui",
    "October 2",
    "Oct. 3, 2022, ",
    "30 février",
    "99:99",
    "\n",
    "\r\n",
    "\u{a0}",
    "\u{202f}",
    "“",
    "”",
    "\"",
    "«",
    "»",
    "Heading Line",
    "Mr. Blinken said.",
    " ",
    "é",
    "\u{feff}",
    "2022",
    "a.m.",
    "PM",
    ":",
    ",",
    ".",
    "\t",
    "0",
    "31",
    "13",
    "24:00",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        run(bytes);
    }

    #[test]
    fn random_article_pieces_never_panic(idx in proptest::collection::vec(0..PIECES.len(), 0..80)) {
        let text: String = idx.iter().map(|&i| PIECES[i]).collect();
        run(text.into_bytes());
    }

    #[test]
    fn stamp_lines_never_panic(s in "(Posted|Updated|Publié|Mis à jour)[ a-zA-Z0-9:.,'éû]{0,40}") {
        run(format!("(Paris) Lede.\n{s}\nBody.").into_bytes());
    }
}

#[test]
fn every_truncation_of_the_seed() {
    let seed = std::fs::read(common::seed()).unwrap();
    for cut in 0..seed.len() {
        run(seed[..cut].to_vec());
    }
}

#[test]
fn huge_lines() {
    let mut line = b"(Paris) ".to_vec();
    line.extend(std::iter::repeat_n(b'a', 200_000));
    let file = SourceFile {
        path: "p.txt".into(),
        bytes: line.clone(),
        modified: None,
    };
    let err = parse::parse(&file, None, &opts()).unwrap_err();
    assert_eq!(err.kind, wirewatch::error::RejectKind::LineTooLong);
    // Under the limit: a long lede is still a record, with a truncated title.
    line.truncate(60_000);
    run(line);
}
