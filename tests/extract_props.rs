//! Property tests: whatever the text, parse + extract returns a record and never panics;
//! every quote speaker is one of the record's people.

use proptest::prelude::*;
use wirewatch::extract;
use wirewatch::parse::{self, ParseOptions, SourceFile};

const PIECES: &[&str] = &[
    "(Washington) ",
    "Posted at 10:23 p.m.\n",
    "Updated at 10:53 p.m.\n",
    "\n",
    " ",
    ". ",
    ", ",
    "“",
    "”",
    "\"",
    "«",
    "»",
    "‘",
    "’",
    "'s ",
    "(",
    ")",
    "OAS",
    "(OAS)",
    "Mr. ",
    "Mrs. ",
    "M. ",
    "J. ",
    "Gov. ",
    "President ",
    "Secretary of State ",
    "ex-president ",
    "head of state ",
    "Antony ",
    "Blinken",
    "Luiz Inacio Lula da Silva",
    "da ",
    "de ",
    "Washington",
    "Bogotá",
    "Santiago",
    "Lima",
    "Georgia",
    "Los Angeles",
    "Organization of ",
    "American States ",
    "Department",
    "State ",
    "Committee",
    "University of ",
    "said",
    " he ",
    " added",
    "according to ",
    "assured reporters",
    "on Monday",
    "Sunday evening",
    "last March",
    "October 30",
    "Aug. 2, 1913",
    "in 2018",
    "will ",
    "May",
    "30th",
    "31",
    "Jr.",
    "III",
    "—",
    "-",
    "…",
    "\u{a0}",
    "é",
    "ß",
    "İ",
    "ﬁ",
    "漢字",
    "0",
    "9999",
    ":",
    "that ",
    "the ",
    "of ",
    "The ",
    "Drug Enforcement\n",
];

fn build(parts: Vec<usize>) -> String {
    parts
        .into_iter()
        .map(|i| PIECES[i % PIECES.len()])
        .collect()
}

fn run(text: &str) {
    let opts = ParseOptions::new("America/Toronto").expect("tz");
    let file = SourceFile {
        path: "p.txt".into(),
        bytes: text.as_bytes().to_vec(),
        modified: None,
    };
    let reference = "2022-10-03T02:55:00Z".parse().ok();
    if let Ok(mut r) = parse::parse(&file, reference, &opts) {
        extract::extract(&mut r);
        for q in &r.quotes {
            if let Some(s) = &q.speaker {
                assert!(r.people.iter().any(|p| &p.name == s), "{s} not in people");
            }
        }
        serde_json::to_string(&r).expect("serializes");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pieces_never_panic(parts in prop::collection::vec(0usize..1000, 0..120)) {
        run(&build(parts));
    }

    #[test]
    fn any_text_never_panics(text in "\\PC{0,400}") {
        run(&format!("Lede {text}\nPosted at 1:00 p.m.\n{text}\n“{text}"));
    }
}

#[test]
fn every_truncation_of_the_seed() {
    let seed = include_str!("fixtures/seed/000_fbc3d1cb8b5383ef.txt");
    let mut cut = 0;
    while cut < seed.len() {
        if seed.is_char_boundary(cut) {
            run(&seed[..cut]);
        }
        cut += 97;
    }
}
