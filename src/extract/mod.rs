//! The extract stage: fills a parsed [`Record`]'s `people`, `places`, `organizations`,
//! `quotes`, `dates` and `keywords`.
//!
//! It owns everything read from the article's words rather than its layout. The text is
//! the lede (paragraph 0) and the body paragraphs (1..), tokenised once ([`tokens`]) and
//! shared by every pass; section headings are not used as entity sources. Passes, in
//! order:
//!
//! 1. [`quotes`] finds quotations (so that quoted titles such as `“Summit of the
//!    Americas”` are kept out of the name passes);
//! 2. [`entities`] cuts runs of capitalised words into titles, people, organizations and
//!    places, using the embedded [`gazetteer`] and curated [`lexicon`];
//! 3. [`people`] groups mentions into persons (surname coreference), then [`orgs`] and
//!    [`places`] resolve what is left (acronyms, disambiguation by context);
//! 4. [`quotes`] attributes each quotation to a person or to no one;
//! 5. [`dates`] resolves date expressions against the posted date;
//! 6. [`keywords`] ranks key phrases with YAKE.
//!
//! [`extract`] is a pure function of the record (plus the gazetteer, loaded once behind a
//! `LazyLock`), so it may run on many threads at once.

mod dates;
mod entities;
pub mod gazetteer;
mod keywords;
mod lexicon;
mod orgs;
mod people;
mod places;
mod quotes;
mod tokens;

use std::sync::LazyLock;

use jiff::civil::Date;

use crate::record::{DateMention, Organization, Person, Place, Quote, Record};

use gazetteer::Gazetteer;
use tokens::Doc;

/// What [`extract_with`] computes.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Run YAKE for `keywords` (by far the costliest pass: a few milliseconds a page).
    pub keywords: bool,
    /// How many key phrases to keep.
    pub max_keywords: usize,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            keywords: true,
            max_keywords: 10,
        }
    }
}

/// Everything the extract stage adds to a record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extraction {
    /// People named.
    pub people: Vec<Person>,
    /// Places named.
    pub places: Vec<Place>,
    /// Organizations named.
    pub organizations: Vec<Organization>,
    /// Quotations and speakers.
    pub quotes: Vec<Quote>,
    /// Dates, resolved.
    pub dates: Vec<DateMention>,
    /// Key phrases.
    pub keywords: Vec<String>,
}

/// A gazetteer with the curated lists only, used if the embedded data cannot be read.
static FALLBACK: LazyLock<Gazetteer> = LazyLock::new(|| Gazetteer::parse("").unwrap_or_default());

/// Fills the six extracted fields of `record` (with key phrases).
pub fn extract(record: &mut Record) {
    extract_with(record, &ExtractOptions::default());
}

/// Fills the six extracted fields of `record` as `opts` says.
pub fn extract_with(record: &mut Record, opts: &ExtractOptions) {
    let gaz = match gazetteer::get() {
        Ok(g) => g,
        Err(e) => {
            record
                .warnings
                .push(format!("gazetteer unavailable, places not extracted: {e}"));
            &FALLBACK
        }
    };
    let x = run(record, gaz, opts);
    record.people = x.people;
    record.places = x.places;
    record.organizations = x.organizations;
    record.quotes = x.quotes;
    record.dates = x.dates;
    record.keywords = x.keywords;
}

/// Computes the extraction of a record without changing it.
pub fn run(record: &Record, gaz: &Gazetteer, opts: &ExtractOptions) -> Extraction {
    let mut paras: Vec<&str> = Vec::with_capacity(1 + record.sections.len() * 4);
    paras.push(record.lede.as_str());
    paras.extend(record.paragraphs());
    let doc = Doc::new(paras, Some(gaz));

    let spans = quotes::find(&doc);
    let mut excluded = vec![false; doc.tokens.len()];
    for q in spans.iter().filter(|q| q.title) {
        for e in &mut excluded[q.open..q.end.min(doc.tokens.len())] {
            *e = true;
        }
    }
    let mentions = entities::Scanner::new(&doc, gaz, &excluded).run();
    let mut used = vec![false; doc.tokens.len()];
    let (people, person_spans) = people::resolve(&doc, &mentions, &mut used);
    let organizations = orgs::resolve(&doc, &mentions, &mut used);
    let places = places::resolve(
        &doc,
        gaz,
        &mentions,
        &used,
        &person_spans,
        record.dateline.as_deref(),
    );
    let quotes = quotes::attribute(&doc, &spans, &person_spans)
        .into_iter()
        .map(|(qi, speaker)| Quote {
            text: spans[qi].text.clone(),
            speaker: speaker.and_then(|p| people.get(p)).map(|p| p.name.clone()),
            paragraph: doc.tokens[spans[qi].open].para as usize,
        })
        .collect();
    let dates = match reference_date(record) {
        Some(r) => dates::find(&doc, r),
        None => Vec::new(),
    };
    let keywords = if opts.keywords && opts.max_keywords > 0 {
        let mut text = String::with_capacity(doc.paras.iter().map(|p| p.len() + 1).sum());
        for p in &doc.paras {
            text.push_str(p);
            text.push('\n');
        }
        keywords::keywords(&text, &record.language, opts.max_keywords)
    } else {
        Vec::new()
    };
    Extraction {
        people,
        places,
        organizations,
        quotes,
        dates,
        keywords,
    }
}

/// The date relative expressions are read against: the posted day, else the capture day.
pub fn reference_date(record: &Record) -> Option<Date> {
    if let Some(p) = &record.posted_at {
        return Some(p.date());
    }
    record.capture_time.get(..10).and_then(|d| d.parse().ok())
}
