//! The extract stage: fills a parsed [`Record`]'s `people`, `places`, `organizations`,
//! `quotes`, `dates` and `keywords`.
//!
//! It owns everything read from the article's words rather than its layout. The text is
//! the lede (paragraph 0) and the body paragraphs (1..), tokenised once (`tokens`) and
//! shared by every pass; section headings are not used as entity sources. Passes, in
//! order:
//!
//! 1. `quotes` finds quotations (so that quoted titles such as `“Summit of the
//!    Americas”` are kept out of the name passes);
//! 2. `entities` cuts runs of capitalised words into titles, people, organizations and
//!    places, using the embedded [`gazetteer`] and curated `lexicon`;
//! 3. `people` groups mentions into persons (surname coreference), then `orgs` and
//!    `places` resolve what is left (acronyms, disambiguation by context);
//! 4. `quotes` attributes each quotation to a person or to no one;
//! 5. `dates` resolves date expressions against the posted date;
//! 6. `keywords` ranks key phrases with YAKE.
//!
//! [`extract`] is a pure function of the record (plus the gazetteer, loaded once behind a
//! `LazyLock`), so it may run on many threads at once.
//!
//! Every pass is near-linear in the text, whatever it holds, and counts its steps in
//! the document's `budget`; [`extract_within`] also gives the budget a deadline,
//! checked between passes and every few thousand steps within them, and returns
//! [`TooSlow`] once it has passed. [`adversarial`] writes the hostile texts the
//! linearity test measures.

pub mod adversarial;
mod budget;
mod cues;
mod dates;
mod entities;
pub mod gazetteer;
mod keywords;
mod lexicon;
mod next;
mod orgs;
mod people;
mod places;
mod quotes;
mod states;
mod teams;
mod tokens;

use std::sync::LazyLock;
use std::time::Duration;

use jiff::civil::Date;

use crate::record::{DateMention, Organization, Person, Place, Quote, Record};

use budget::Budget;
use gazetteer::Gazetteer;
use tokens::Doc;

/// What [`extract_with`] computes.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Compute `keywords` (YAKE).
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

/// The extract stage ran past its time limit (`parse.max_extract_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("extraction did not finish within the {} ms limit", .limit.as_millis())]
pub struct TooSlow {
    /// The limit that was exceeded.
    pub limit: Duration,
}

/// A gazetteer with the curated lists only, used if the embedded data cannot be read.
static FALLBACK: LazyLock<Gazetteer> = LazyLock::new(|| Gazetteer::parse("").unwrap_or_default());

/// Fills the six extracted fields of `record` (with key phrases).
pub fn extract(record: &mut Record) {
    extract_with(record, &ExtractOptions::default());
}

/// Fills the six extracted fields of `record` as `opts` says.
pub fn extract_with(record: &mut Record, opts: &ExtractOptions) {
    // With no deadline the budget never runs out.
    let _ = extract_within(record, opts, None);
}

/// Fills the six extracted fields of `record` as `opts` says, giving up once `limit`
/// has passed (checked between passes and every few thousand steps within them). On
/// [`TooSlow`] the record's extracted fields are left as they were.
pub fn extract_within(
    record: &mut Record,
    opts: &ExtractOptions,
    limit: Option<Duration>,
) -> Result<(), TooSlow> {
    let gaz = match gazetteer::get() {
        Ok(g) => g,
        Err(e) => {
            record
                .warnings
                .push(format!("gazetteer unavailable, places not extracted: {e}"));
            &FALLBACK
        }
    };
    let (x, _) = run_within(record, gaz, opts, Budget::new(limit)).map_err(|()| TooSlow {
        limit: limit.unwrap_or_default(),
    })?;
    record.people = x.people;
    record.places = x.places;
    record.organizations = x.organizations;
    record.quotes = x.quotes;
    record.dates = x.dates;
    record.keywords = x.keywords;
    Ok(())
}

/// Computes the extraction of a record without changing it.
pub fn run(record: &Record, gaz: &Gazetteer, opts: &ExtractOptions) -> Extraction {
    run_within(record, gaz, opts, Budget::default())
        .map_or_else(|()| Extraction::default(), |(x, _)| x)
}

/// Computes the extraction within `budget`: the extraction and the work it took, or
/// `Err` once the budget's deadline has passed.
fn run_within(
    record: &Record,
    gaz: &Gazetteer,
    opts: &ExtractOptions,
    budget: Budget,
) -> Result<(Extraction, u64), ()> {
    let mut paras: Vec<&str> = Vec::with_capacity(1 + record.sections.len() * 4);
    paras.push(record.lede.as_str());
    paras.extend(record.paragraphs());
    let doc = Doc::within(paras, Some(gaz), budget);
    let pass_done = || if doc.budget.over() { Err(()) } else { Ok(()) };
    pass_done()?;

    let spans = quotes::find(&doc);
    let mut excluded = vec![false; doc.tokens.len()];
    for q in spans.iter().filter(|q| q.title) {
        for e in &mut excluded[q.open..q.end.min(doc.tokens.len())] {
            *e = true;
        }
    }
    pass_done()?;
    let mentions = entities::Scanner::new(&doc, gaz, &excluded).run();
    pass_done()?;
    let mut used = vec![false; doc.tokens.len()];
    let (people, person_spans) = people::resolve(&doc, &mentions, &mut used);
    pass_done()?;
    let organizations = orgs::resolve(&doc, gaz, &mentions, &mut used);
    let places = places::resolve(
        &doc,
        gaz,
        &mentions,
        &used,
        &person_spans,
        record.dateline.as_deref(),
    );
    pass_done()?;
    let quotes = quotes::attribute(&doc, &spans, &person_spans)
        .into_iter()
        .map(|(qi, speaker)| Quote {
            text: spans[qi].text.clone(),
            speaker: speaker.and_then(|p| people.get(p)).map(|p| p.name.clone()),
            paragraph: doc.tokens[spans[qi].open].para as usize,
        })
        .collect();
    pass_done()?;
    let dates = match reference_date(record) {
        Some(r) => dates::find(&doc, r),
        None => Vec::new(),
    };
    pass_done()?;
    let keywords = if opts.keywords {
        keywords::keywords(&doc, opts.max_keywords)
    } else {
        Vec::new()
    };
    pass_done()?;
    let x = Extraction {
        people,
        places,
        organizations,
        quotes,
        dates,
        keywords,
    };
    Ok((x, doc.budget.work()))
}

/// The date relative expressions are read against: the posted day, else the capture day.
pub fn reference_date(record: &Record) -> Option<Date> {
    if let Some(p) = &record.posted_at {
        return Some(p.date());
    }
    record.capture_time.get(..10).and_then(|d| d.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{self, ParseOptions, SourceFile};

    fn record(text: &str) -> Record {
        let file = SourceFile {
            path: "t.txt".into(),
            bytes: text.as_bytes().to_vec(),
            modified: None,
        };
        let opts = ParseOptions::new("America/Toronto").unwrap();
        let mut r = parse::parse(&file, "2022-10-03T02:55:00Z".parse().ok(), &opts).unwrap();
        extract_with(
            &mut r,
            &ExtractOptions {
                keywords: false,
                ..ExtractOptions::default()
            },
        );
        r
    }

    fn people(r: &Record) -> Vec<&str> {
        r.people.iter().map(|p| p.name.as_str()).collect()
    }

    fn places(r: &Record) -> Vec<&str> {
        r.places.iter().map(|p| p.name.as_str()).collect()
    }

    fn orgs(r: &Record) -> Vec<&str> {
        r.organizations.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn press_of_1961() {
        let r = record(
            "(Atlanta) Gov. Vandiver told the Fulton County Grand Jury on Friday that the \
             State Welfare Department would act.\nPosted at 9:00 a.m.\n\
             Mrs. J. M. Cheshire of Griffin was named. Vandiver said the plan was sound.\n\
             The jury also met Fulton Superior Court Judge Durwood Pye.",
        );
        let p = people(&r);
        assert!(p.contains(&"Vandiver"), "{p:?}");
        assert!(p.contains(&"J. M. Cheshire"), "{p:?}");
        assert!(p.contains(&"Durwood Pye"), "{p:?}");
        let vandiver = r.people.iter().find(|x| x.name == "Vandiver").unwrap();
        assert_eq!(vandiver.mentions, 2);
        assert_eq!(vandiver.roles, ["Gov."]);
        let cheshire = r
            .people
            .iter()
            .find(|x| x.name == "J. M. Cheshire")
            .unwrap();
        assert!(cheshire.aliases.contains(&"Mrs. J. M. Cheshire".to_owned()));
        let pl = places(&r);
        assert!(pl.contains(&"Atlanta") && pl.contains(&"Griffin"), "{pl:?}");
        let o = orgs(&r);
        assert!(o.contains(&"Fulton County Grand Jury"), "{o:?}");
        assert!(o.contains(&"State Welfare Department"), "{o:?}");
        assert!(o.contains(&"Fulton Superior Court"), "{o:?}");
    }

    #[test]
    fn names_told_by_their_context() {
        let r = record(
            "(Ocala, Fla.) Draper declared the season over after the inning.\n\
             Posted at 9:00 a.m.\n\
             The coach of the Green Bay Packers said the team would win. The Yankees lost \
             the game. The Liberal party met the TCU board in Troy, N. Y. near Coosa Valley.\n\
             “We will be back,” said Stram. Lumpe worked a walk, and Hyde's next toss \
             went over the Senate Foreign Relations Committee on Friday.",
        );
        let p = people(&r);
        for name in ["Draper", "Stram", "Lumpe", "Hyde"] {
            assert!(p.contains(&name), "{name}: {p:?}");
        }
        let o = orgs(&r);
        for name in [
            "Green Bay Packers",
            "Yankees",
            "Liberal party",
            "TCU",
            "Senate Foreign Relations Committee",
        ] {
            assert!(o.contains(&name), "{name}: {o:?}");
        }
        let pl = places(&r);
        for name in ["Ocala", "Florida", "Troy", "New York", "Coosa Valley"] {
            assert!(pl.contains(&name), "{name}: {pl:?}");
        }
        assert!(!pl.contains(&"Green Bay"), "{pl:?}");
        let ny = r.places.iter().find(|x| x.name == "New York").unwrap();
        assert_eq!(ny.aliases, ["N. Y."]);
        let valley = r.places.iter().find(|x| x.name == "Coosa Valley").unwrap();
        assert_eq!(valley.kind, "feature");
        assert_eq!(r.quotes[0].speaker.as_deref(), Some("Stram"));
    }

    #[test]
    fn places_need_context_when_ambiguous() {
        let r = record(
            "Lede about Mobile homes.\nPosted at 9:00 a.m.\n\
             She flew to Mobile and then to Bogotá. Washington considers the offer.\n\
             Georgia's legislature met in Atlanta.",
        );
        let pl = places(&r);
        assert_eq!(pl.iter().filter(|p| **p == "Mobile").count(), 1);
        let mobile = r.places.iter().find(|p| p.name == "Mobile").unwrap();
        assert_eq!(
            mobile.mentions, 1,
            "the lede's `Mobile homes` is not a place"
        );
        assert!(
            pl.contains(&"Bogotá") && pl.contains(&"Washington"),
            "{pl:?}"
        );
        assert!(people(&r).is_empty(), "{:?}", people(&r));
        let georgia = r.places.iter().find(|p| p.name == "Georgia").unwrap();
        assert_eq!(
            (georgia.kind.as_str(), georgia.country.as_deref()),
            ("state", Some("US"))
        );
    }

    #[test]
    fn speakers() {
        let r = record(
            "Lede.\nPosted at 9:00 a.m.\n\
             “We will win,” said Mayor John Smith. “It is certain,” he added.\n\
             Jane Doe said: “This is a long quotation that goes on\n\
             “and on into the next paragraph.”\n\
             “No comment,” the jury said.\n\
             According to Jane Doe, “the budget is fine and will pass.”",
        );
        let q: Vec<(&str, Option<&str>, usize)> = r
            .quotes
            .iter()
            .map(|q| (q.text.as_str(), q.speaker.as_deref(), q.paragraph))
            .collect();
        assert_eq!(q[0], ("We will win", Some("John Smith"), 1));
        assert_eq!(q[1], ("It is certain", Some("John Smith"), 1));
        assert_eq!(q[2].1, Some("Jane Doe"));
        assert!(q[2].0.ends_with("into the next paragraph."), "{:?}", q[2]);
        assert_eq!(q[3], ("No comment", None, 4));
        assert_eq!(q[4].1, Some("Jane Doe"));
    }

    #[test]
    fn acronyms_and_institutions() {
        let r = record(
            "Lede.\nPosted at 9:00 a.m.\n\
             The Organization of American States (OAS) met. The OAS then voted with the \
             United Nations and NATO.",
        );
        let oas = r
            .organizations
            .iter()
            .find(|o| o.acronym.as_deref() == Some("OAS"))
            .unwrap();
        assert_eq!(
            (oas.name.as_str(), oas.mentions),
            ("Organization of American States", 2)
        );
        let o = orgs(&r);
        assert!(o.contains(&"United Nations"), "{o:?}");
        assert!(o.contains(&"North Atlantic Treaty Organization"), "{o:?}");
    }

    #[test]
    fn dates_resolve_against_posted_day() {
        let r = record(
            "Lede.\nPosted on October 2, 2022 at 1:00 p.m.\n\
             He will speak on Monday. She spoke Friday. The vote was Aug. 2, 1913, \
             and the next one is in June 2023. It happened in 2018.",
        );
        let d: Vec<(&str, &str, &str)> = r
            .dates
            .iter()
            .map(|d| (d.text.as_str(), d.date.as_str(), d.kind.as_str()))
            .collect();
        assert!(d.contains(&("Monday", "2022-10-03", "weekday")), "{d:?}");
        assert!(d.contains(&("Friday", "2022-09-30", "weekday")), "{d:?}");
        assert!(d.contains(&("Aug. 2, 1913", "1913-08-02", "date")), "{d:?}");
        assert!(d.contains(&("June 2023", "2023-06", "month")), "{d:?}");
        assert!(d.contains(&("2018", "2018", "year")), "{d:?}");
    }

    #[test]
    fn past_the_time_limit_the_record_is_left_alone() {
        let file = SourceFile {
            path: "t.txt".into(),
            bytes: adversarial::names(64 << 10, 16 << 10).into_bytes(),
            modified: None,
        };
        let opts = ParseOptions::new("America/Toronto").unwrap();
        let mut r = parse::parse(&file, "2022-10-03T02:55:00Z".parse().ok(), &opts).unwrap();
        let parsed = r.clone();
        let xopts = ExtractOptions::default();
        let e = extract_within(&mut r, &xopts, Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.limit, Duration::ZERO);
        assert_eq!(r, parsed);
        extract_within(&mut r, &xopts, Some(Duration::from_secs(3600))).unwrap();
        assert!(r.people.len() > 1000, "{}", r.people.len());
    }

    #[test]
    fn concurrent_calls_agree() {
        let text = include_str!("../../tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt");
        let one = record(text);
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || record(text)))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().people, one.people);
        }
    }
}
