//! Places told by their form rather than a list: state and province abbreviations
//! (`Fla.`, `N.Y.`, `N. Y.`, `Ont.`), the towns they follow (`Ocala, Fla.`), and named
//! features and localities (`Coosa Valley`, `Drexel Park`, `Larimer St.`).
//!
//! An abbreviation that is also a word (`Ill.`, `Pa.`, `Mass.`, `Me.`) names a state
//! only after `Town,`; the others (`Calif.`, `N.J.`) anywhere. The town before one
//! is a place even when no list knows it.

use super::tokens::{shape, Doc, Kind};

/// (abbreviation folded without its periods or spaces, state or province, country,
/// needs a town before it).
const ABBREVIATIONS: &[(&str, &str, &str, bool)] = &[
    ("ala", "Alabama", "US", false),
    ("ariz", "Arizona", "US", false),
    ("ark", "Arkansas", "US", true),
    ("calif", "California", "US", false),
    ("cal", "California", "US", true),
    ("colo", "Colorado", "US", false),
    ("conn", "Connecticut", "US", false),
    ("del", "Delaware", "US", true),
    ("dc", "District of Columbia", "US", true),
    ("fla", "Florida", "US", false),
    ("ga", "Georgia", "US", true),
    ("ill", "Illinois", "US", true),
    ("ind", "Indiana", "US", true),
    ("kan", "Kansas", "US", true),
    ("kans", "Kansas", "US", false),
    ("ky", "Kentucky", "US", false),
    ("la", "Louisiana", "US", true),
    ("md", "Maryland", "US", true),
    ("mass", "Massachusetts", "US", true),
    ("me", "Maine", "US", true),
    ("mich", "Michigan", "US", false),
    ("minn", "Minnesota", "US", false),
    ("miss", "Mississippi", "US", true),
    ("mo", "Missouri", "US", true),
    ("mont", "Montana", "US", true),
    ("neb", "Nebraska", "US", true),
    ("nebr", "Nebraska", "US", false),
    ("nev", "Nevada", "US", true),
    ("nh", "New Hampshire", "US", false),
    ("nj", "New Jersey", "US", false),
    ("nm", "New Mexico", "US", false),
    ("ny", "New York", "US", false),
    ("nc", "North Carolina", "US", false),
    ("nd", "North Dakota", "US", false),
    ("okla", "Oklahoma", "US", false),
    ("ore", "Oregon", "US", true),
    ("pa", "Pennsylvania", "US", true),
    ("ri", "Rhode Island", "US", false),
    ("sc", "South Carolina", "US", false),
    ("sd", "South Dakota", "US", false),
    ("tenn", "Tennessee", "US", false),
    ("tex", "Texas", "US", false),
    ("vt", "Vermont", "US", true),
    ("va", "Virginia", "US", true),
    ("wash", "Washington", "US", true),
    ("wva", "West Virginia", "US", false),
    ("wis", "Wisconsin", "US", false),
    ("wyo", "Wyoming", "US", false),
    ("ont", "Ontario", "CA", true),
    ("que", "Quebec", "CA", true),
    ("bc", "British Columbia", "CA", true),
    ("alta", "Alberta", "CA", true),
    ("sask", "Saskatchewan", "CA", true),
    ("man", "Manitoba", "CA", true),
    ("ns", "Nova Scotia", "CA", true),
    ("nb", "New Brunswick", "CA", true),
    ("nfld", "Newfoundland", "CA", true),
    ("pei", "Prince Edward Island", "CA", false),
];

/// A state abbreviation found in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateAbbr {
    /// Token range (`N. Y.` is two tokens).
    pub span: (usize, usize),
    /// The state's name.
    pub state: &'static str,
    /// ISO code of its country.
    pub country: &'static str,
}

/// Whether token `k` is a word written with a period (`Fla.`, `N.`, `N.Y.`).
fn dotted(doc: &Doc<'_>, k: usize) -> bool {
    doc.tokens.get(k).is_some_and(|t| {
        t.kind == Kind::Word
            && t.is(shape::CAP)
            && (t.is(shape::ABBR) || t.is(shape::INITIAL))
            && doc.text(k).ends_with('.')
    })
}

/// A state abbreviation starting at token `i`.
pub(crate) fn abbreviation_at(doc: &Doc<'_>, i: usize) -> Option<StateAbbr> {
    if !dotted(doc, i) {
        return None;
    }
    let mut key: String = doc.fold(i).chars().filter(|c| *c != '.').collect();
    let mut end = i + 1;
    // `N. Y.`: two initials in a row.
    let t = &doc.tokens[i];
    if t.is(shape::INITIAL) && key.len() == 1 && dotted(doc, i + 1) {
        let next: String = doc.fold(i + 1).chars().filter(|c| *c != '.').collect();
        if next.len() == 1 {
            key.push_str(&next);
            end = i + 2;
        }
    }
    doc.budget.spend(1);
    let &(_, state, country, needs_town) = ABBREVIATIONS.iter().find(|e| e.0 == key)?;
    if needs_town && !after_town(doc, i) {
        return None;
    }
    Some(StateAbbr {
        span: (i, end),
        state,
        country,
    })
}

/// The state (and its country) a written abbreviation names (`Fla.`, `N. Y.`), read
/// alone, as in a dateline.
pub(crate) fn state_named(written: &str) -> Option<(&'static str, &'static str)> {
    if !written.ends_with('.') {
        return None;
    }
    let key: String = written
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    ABBREVIATIONS
        .iter()
        .find(|e| e.0 == key)
        .map(|&(_, state, country, _)| (state, country))
}

/// Whether the abbreviation at `i` follows `Town,` (a capitalised word and a comma in
/// the same sentence).
fn after_town(doc: &Doc<'_>, i: usize) -> bool {
    i >= 2
        && doc.is_punct(i - 1, ',')
        && doc.tokens[i - 2].cap_word()
        && doc.tokens[i - 2].sent == doc.tokens[i].sent
}

/// Whether the capitalised words ending at token `b` (exclusive) are followed by `,
/// <state abbreviation>`, which makes them a town.
pub(crate) fn town_before_state(doc: &Doc<'_>, b: usize) -> Option<StateAbbr> {
    if !doc.is_punct(b, ',') {
        return None;
    }
    abbreviation_at(doc, b + 1)
}

/// Last words of a feature's or a locality's name (folded, period dropped).
const FEATURE_WORDS: &[&str] = &[
    "valley",
    "river",
    "lake",
    "mountain",
    "mountains",
    "creek",
    "bay",
    "beach",
    "island",
    "islands",
    "park",
    "hill",
    "hills",
    "heights",
    "forest",
    "canyon",
    "desert",
    "harbor",
    "harbour",
    "street",
    "st",
    "avenue",
    "ave",
    "boulevard",
    "blvd",
    "road",
    "rd",
    "square",
    "plaza",
    "bridge",
    "township",
    "tract",
    "gate",
    "peninsula",
    "strait",
    "straits",
    "gulf",
    "sea",
    "ocean",
    "coast",
    "channel",
    "county",
];

/// A feature named by capitalised words `a..b` (one to three words, then a word of
/// [`FEATURE_WORDS`]), with no first name or initial among them (`George Park` is a
/// person): where it ends.
pub(crate) fn feature(doc: &Doc<'_>, a: usize, b: usize) -> Option<usize> {
    doc.budget.spend(1);
    let e = (a + 1..b.min(a + 4)).find(|&k| {
        let w = doc.fold(k).trim_end_matches('.');
        FEATURE_WORDS.contains(&w)
    })?;
    let named = (a..e).all(|k| {
        let t = &doc.tokens[k];
        t.cap_word()
            && !t.is(shape::INITIAL)
            && !t.has(
                super::lexicon::flag::FIRST
                    | super::lexicon::flag::HONORIFIC
                    | super::lexicon::flag::TITLE,
            )
            && !t.is(shape::POSS)
    });
    named.then_some(e + 1)
}
