//! Extract-stage statistics on the dev corpus, and a spot-check sample for a person to
//! judge.
//!
//! `cargo run --release --example extract_stats [-- SEED]` parses every file of
//! `tests/fixtures/dev` with its manifest reference time, runs the extract stage, and
//! prints: the gazetteer load time, people / places / organizations / quotes per
//! article, the share of quotes with a speaker, and 20 entities drawn at random (seeded,
//! default 42) with the sentence they occur in.

use std::path::Path;
use std::time::Instant;

use serde::Deserialize;
use wirewatch::extract::{self, gazetteer, ExtractOptions};
use wirewatch::parse::{self, ParseOptions};
use wirewatch::record::Record;

#[derive(Deserialize)]
struct Entry {
    file: String,
    reference_time: String,
}

/// SplitMix64: a tiny seeded generator, enough to draw a reproducible sample.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Item {
    file: String,
    what: &'static str,
    entity: String,
    detail: String,
    find: Vec<String>,
    text: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(42);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dev");

    let t = Instant::now();
    let gaz = gazetteer::get().map_err(|e| e.to_string())?;
    let load = t.elapsed();
    let (places, words) = gaz.sizes();
    println!(
        "gazetteer: {} bytes embedded, {places} place keys, {words} words, loaded in {:.1} ms",
        gazetteer::DATA.len(),
        load.as_secs_f64() * 1e3
    );

    let manifest: Vec<Entry> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json"))?)?;
    let opts = ParseOptions::new("America/Toronto")?;
    let xopts = ExtractOptions::default();
    let (mut n, mut people, mut place_n, mut orgs, mut quotes, mut spoken, mut dates) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    let mut items: Vec<Item> = Vec::new();
    let mut spent = std::time::Duration::ZERO;
    for e in &manifest {
        let file = parse::read_file(&dir.join(&e.file), &opts.limits)?;
        let reference = e.reference_time.parse().ok();
        let mut r: Record = match parse::parse(&file, reference, &opts) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let t = Instant::now();
        extract::extract_with(&mut r, &xopts);
        spent += t.elapsed();
        n += 1;
        people += r.people.len();
        place_n += r.places.len();
        orgs += r.organizations.len();
        quotes += r.quotes.len();
        spoken += r.quotes.iter().filter(|q| q.speaker.is_some()).count();
        dates += r.dates.len();
        let mut text = r.lede.clone();
        for p in r.paragraphs() {
            text.push('\n');
            text.push_str(p);
        }
        for p in &r.people {
            let mut find = vec![p.name.clone()];
            find.extend(p.aliases.iter().cloned());
            items.push(Item {
                file: e.file.clone(),
                what: "person",
                entity: p.name.clone(),
                detail: format!("aliases {:?}, roles {:?}", p.aliases, p.roles),
                find,
                text: text.clone(),
            });
        }
        for p in &r.places {
            items.push(Item {
                file: e.file.clone(),
                what: "place",
                entity: p.name.clone(),
                detail: format!("{} {}", p.kind, p.country.as_deref().unwrap_or("-")),
                find: vec![p.name.clone()],
                text: text.clone(),
            });
        }
        for o in &r.organizations {
            let mut find = vec![o.name.clone()];
            find.extend(o.acronym.iter().cloned());
            items.push(Item {
                file: e.file.clone(),
                what: "organization",
                entity: o.name.clone(),
                detail: format!("acronym {:?}", o.acronym),
                find,
                text: text.clone(),
            });
        }
    }
    let per = |x: usize| x as f64 / n.max(1) as f64;
    println!("articles: {n}");
    println!(
        "per article: people {:.2}, places {:.2}, organizations {:.2}, quotes {:.2}, dates {:.2}",
        per(people),
        per(place_n),
        per(orgs),
        per(quotes),
        per(dates)
    );
    println!(
        "quotes with a speaker: {spoken} of {quotes} ({:.1}%)",
        100.0 * spoken as f64 / quotes.max(1) as f64
    );
    println!(
        "extract time: {:.0} µs per article on average (keywords included)",
        spent.as_secs_f64() * 1e6 / n.max(1) as f64
    );
    println!("\nspot-check sample (seed {seed}):");
    let mut rng = Rng(seed);
    for k in 0..20.min(items.len()) {
        let i = rng.below(items.len());
        let it = items.swap_remove(i);
        println!(
            "{:2}. [{}] {} = {:?} ({})\n    {}",
            k + 1,
            it.file,
            it.what,
            it.entity,
            it.detail,
            sentence_with(&it.text, &it.find)
        );
    }
    Ok(())
}

/// The first sentence of `text` that contains one of `needles`.
fn sentence_with(text: &str, needles: &[String]) -> String {
    for line in text.lines() {
        for n in needles {
            if let Some(at) = line.find(n.as_str()) {
                let start = line[..at].rfind(". ").map_or(0, |p| p + 2);
                let end = line[at..].find(". ").map_or(line.len(), |p| at + p + 1);
                return line[start..end].to_owned();
            }
        }
    }
    "(not found verbatim)".to_owned()
}
