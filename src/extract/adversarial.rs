//! Hostile article texts, for checking that the extract stage stays near-linear in its
//! input: the linearity unit test (which counts work), `examples/adversarial.rs`
//! (which times parse + extract at `parse.max_bytes`) and the `too_slow` integration
//! test use them.
//!
//! Each generator writes a whole article file — a lede, a `Posted` line, then body
//! paragraphs of at most `line_bytes` bytes — of at most `bytes` bytes, every name
//! distinct (a counter spelled into the words), so that nothing repeats that a cache
//! could absorb.

use std::fmt::Write as _;

/// A generator: `(bytes, line_bytes) -> article text`.
pub type Generator = fn(usize, usize) -> String;

/// Every generator, by name.
pub const ALL: [(&str, Generator); 6] = [
    ("names", names),
    ("honorifics", honorifics),
    ("quotes", quotes),
    ("brackets", brackets),
    ("headings", headings),
    ("capitalised", capitalised),
];

/// `n` spelled in capital-then-lower-case letters: `Ab`, `Ac`, … (a name word no
/// lexicon knows).
fn word(n: usize) -> String {
    let mut s = String::from("Q");
    let mut n = n;
    loop {
        s.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            break s;
        }
    }
}

/// Builds an article from sentences: `next(i, out)` appends the `i`-th sentence (with
/// no surrounding space); paragraphs are cut before `line_bytes`, the file before
/// `bytes`.
fn article(bytes: usize, line_bytes: usize, mut next: impl FnMut(usize, &mut String)) -> String {
    let mut out = String::with_capacity(bytes);
    out.push_str("(Ottawa) A hostile article for the extract stage.\nPosted at 9:00 a.m.\n");
    let mut para = String::new();
    let mut sentence = String::new();
    for i in 0.. {
        sentence.clear();
        next(i, &mut sentence);
        if out.len() + para.len() + sentence.len() + 2 > bytes {
            break;
        }
        if !para.is_empty() && para.len() + sentence.len() + 1 > line_bytes {
            out.push_str(&para);
            out.push('\n');
            para.clear();
        }
        if !para.is_empty() {
            para.push(' ');
        }
        para.push_str(&sentence);
    }
    if !para.is_empty() {
        out.push_str(&para);
        out.push('\n');
    }
    out
}

/// `Mr. NameN met Mrs. OtherN.`: thousands of one-word titled names, each new.
pub fn names(bytes: usize, line_bytes: usize) -> String {
    article(bytes, line_bytes, |i, s| {
        let _ = write!(s, "Mr. Name{i} met Mrs. Other{i}.");
    })
}

/// Titles and honorifics: titled names (some sharing a surname with a full name),
/// bare surnames, and runs of honorifics and titles with no name after them.
pub fn honorifics(bytes: usize, line_bytes: usize) -> String {
    article(bytes, line_bytes, |i, s| {
        let (a, b) = (word(i), word(i + 1_000_000));
        let _ = match i % 4 {
            0 => write!(
                s,
                "Gov. {a} and Sen. {b} met Dr. {a}, Lt. Gov. {b} and Mrs. {a}."
            ),
            1 => write!(
                s,
                "John {a} and Mary {a} saw Mr. {a} and Ms. {a}; {a} left."
            ),
            2 => write!(
                s,
                "Mr. Mrs. Dr. Sen. Gov. Rev. Prof. Mr. Mrs. Dr. Sen. Gov. {b} spoke."
            ),
            _ => write!(
                s,
                "President Secretary General Minister Deputy Mayor {a} said {b} is here."
            ),
        };
    })
}

/// Attributed quotations: `“…,” said X.`, `X said: “…”`, `according to X, “…”`, `“…,” he
/// added`, in separate sentences and in one long sentence.
pub fn quotes(bytes: usize, line_bytes: usize) -> String {
    article(bytes, line_bytes, |i, s| {
        let (a, b) = (word(i), word(i + 1_000_000));
        let _ = match i % 5 {
            0 => write!(s, "“We will win the vote,” said John {a}."),
            1 => write!(s, "“It is certain,” he added, “and soon,” said Mary {b},"),
            2 => write!(
                s,
                "according to {a}, “the budget is fine and will pass,” and"
            ),
            3 => write!(
                s,
                "Jane {b} said: “This goes on and on and on”, then “more” and"
            ),
            _ => write!(
                s,
                "“No comment,” the jury said, “none at all” has has had said {a}."
            ),
        };
    })
}

/// Brackets and parentheses: acronym definitions (each new), nested and unbalanced
/// brackets, bracketed names.
pub fn brackets(bytes: usize, line_bytes: usize) -> String {
    article(bytes, line_bytes, |i, s| {
        let (a, b) = (word(i), word(i + 1_000_000));
        let acr: String = [a.as_str(), b.as_str()]
            .iter()
            .flat_map(|w| w.chars().take(1))
            .chain(a.chars().skip(1).map(|c| c.to_ascii_uppercase()))
            .collect();
        let _ = match i % 4 {
            0 => write!(
                s,
                "The {a} {b} of the and of ({acr}) met ({acr}) (Mr. {a})."
            ),
            1 => write!(s, "((( [[ {a} ((( {b} ]] ))) ) ( ( {acr} ( ) ) ) (("),
            2 => write!(
                s,
                "(((((((((({a} ({b} ({acr}))))))))))) said {acr} and {acr}."
            ),
            _ => write!(s, "{acr} ) ) ] ] ( [ “ ( {a} ” ) {acr} ( {b} ."),
        };
    })
}

/// Many short heading-like lines: headings over one-line paragraphs, and runs of
/// heading-shaped lines (which are paragraphs, since no paragraph follows them).
pub fn headings(bytes: usize, _line_bytes: usize) -> String {
    let mut out = String::with_capacity(bytes);
    out.push_str("(Ottawa) A hostile article for the extract stage.\nPosted at 9:00 a.m.\n");
    let mut line = String::new();
    for i in 0.. {
        line.clear();
        let (a, b) = (word(i), word(i + 1_000_000));
        let _ = match i % 4 {
            0 => writeln!(line, "Heading {a} {b}"),
            1 => writeln!(line, "{a} met {b} in Paris."),
            2 => writeln!(line, "Mr. {a} Of The {b}"),
            _ => writeln!(line, "{b} And {a} Department"),
        };
        if out.len() + line.len() > bytes {
            break;
        }
        out.push_str(&line);
    }
    out
}

/// Long runs of capitalised words in one sentence: new name words mixed with lexicon
/// words that end organizations, places and titles (`Department`, `Hill`, `President`,
/// `Former`), dates, and connectors (`of`, `of the`, `and`); now and then a run of
/// hundreds of new name words that ends in a place word (`… Hill`).
pub fn capitalised(bytes: usize, line_bytes: usize) -> String {
    const MIX: [&str; 16] = [
        "Department",
        "Hill",
        "President",
        "Former",
        "of",
        "University",
        "of the",
        "Valley",
        "Committee",
        "and",
        "Monday",
        "John",
        "Bank",
        "Street",
        "October",
        "Deputy",
    ];
    article(bytes, line_bytes, |i, s| {
        if i % 64 == 63 {
            for k in 0..300 {
                let _ = write!(s, "{} ", word(1_000_000 + 300 * i + k));
            }
            s.push_str("Hill");
            return;
        }
        let _ = write!(s, "{} {}", word(i), MIX[i % MIX.len()]);
        if i % 7 == 0 {
            s.push_str(" 30");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::{budget::Budget, gazetteer, run_within, ExtractOptions};
    use super::*;
    use crate::parse::{self, ParseOptions, SourceFile};

    /// The work (steps counted by the budget, not time) the extract stage does on
    /// `generate`'s article of `bytes` bytes, in paragraphs of up to half of that.
    fn work(generate: Generator, bytes: usize) -> u64 {
        let file = SourceFile {
            path: "adversarial.txt".into(),
            bytes: generate(bytes, bytes / 2).into_bytes(),
            modified: None,
        };
        let opts = ParseOptions::new("America/Toronto").unwrap();
        let record = parse::parse(&file, "2022-10-03T02:55:00Z".parse().ok(), &opts).unwrap();
        let gaz = gazetteer::get().unwrap();
        let (_, work) =
            run_within(&record, gaz, &ExtractOptions::default(), Budget::default()).unwrap();
        work
    }

    /// Eight times the input costs at most ten times the work, for every generator: no
    /// pass is quadratic in the article, in a paragraph or in a sentence.
    #[test]
    fn work_grows_linearly_with_hostile_input() {
        let mut failed = Vec::new();
        for (name, generate) in ALL {
            let one = work(generate, 16 << 10);
            let eight = work(generate, 128 << 10);
            eprintln!(
                "{name}: {one} steps for 16 KiB, {eight} for 128 KiB ({:.1}×)",
                eight as f64 / one as f64
            );
            if eight > 10 * one {
                failed.push(name);
            }
        }
        assert!(failed.is_empty(), "super-linear work: {failed:?}");
    }

    #[test]
    fn generators_respect_their_bounds() {
        for (name, g) in ALL {
            let text = g(20_000, 3_000);
            assert!(
                text.len() <= 20_000 && text.len() > 15_000,
                "{name}: {}",
                text.len()
            );
            assert!(text.lines().all(|l| l.len() <= 3_000), "{name}");
        }
    }
}
