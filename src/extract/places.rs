//! Places: gazetteer look-ups, disambiguation and counting.
//!
//! Multi-word names (`Los Angeles`, `Latin America`) and the dateline are places outright.
//! A single capitalised word is a place when the gazetteer knows it and it is not the
//! surname of a person named in the article; a name that is also a common word or a
//! person's name (`Griffin`, `Jackson`, `Mobile`) must stand after a place preposition
//! (`in`, `to`, `from`, ...) or as someone's home town (`Mrs. Cheshire of Griffin`),
//! unless it is a capital or a city of a million people (`Santiago`, `Washington`).
//! When a name has several readings (`Georgia` the country or the US state), the one in
//! the country the article's other places point to wins.

use std::collections::HashMap;

use crate::record::Place;

use super::entities::Mentions;
use super::gazetteer::{Gazetteer, PlaceEntry, PlaceKind};
use super::lexicon::flag;
use super::people::Span;
use super::tokens::{shape, Doc, Kind};
use crate::fold::fold_into;

/// A place candidate: its gazetteer readings (looked up once) and how it is written.
struct Cand<'a, 'g> {
    entries: &'g [PlaceEntry],
    surface: &'a str,
    at: usize,
    /// The name to report when the surface is an abbreviation (`Fla.`: `Florida`).
    name: Option<&'static str>,
}

/// The state or province reading among `entries` (`New York` the state), else all.
fn state_reading(entries: &[PlaceEntry]) -> &[PlaceEntry] {
    match entries
        .iter()
        .position(|e| matches!(e.kind, PlaceKind::State | PlaceKind::Province))
    {
        Some(k) => &entries[k..=k],
        None => entries,
    }
}

/// A town no list knows, in the United States or in Canada.
static TOWN_US: [PlaceEntry; 1] = [town("US")];
static TOWN_CA: [PlaceEntry; 1] = [town("CA")];
/// A feature or locality no list knows (`Coosa Valley`).
static FEATURE: [PlaceEntry; 1] = [PlaceEntry {
    kind: PlaceKind::Feature,
    ..town("")
}];

const fn town(country: &'static str) -> PlaceEntry {
    PlaceEntry {
        canonical: "",
        kind: PlaceKind::City,
        country,
        population: 0,
        capital: false,
        ambiguous: false,
    }
}

type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Resolves the place mentions. `used` marks single words already taken by people.
pub(crate) fn resolve<'a, 'g>(
    doc: &Doc<'a>,
    gaz: &'g Gazetteer,
    m: &Mentions,
    used: &[bool],
    persons: &[Span],
    dateline: Option<&'a str>,
) -> Vec<Place> {
    let mut cands: Vec<Cand<'a, 'g>> = Vec::with_capacity(m.places.len() + m.singles.len() + 2);
    let mut folded = String::new();
    if let Some(d) = dateline {
        for part in d
            .split([',', '/'])
            .flat_map(|p| p.split(" and "))
            .flat_map(|p| p.split(" et "))
        {
            let part = part.trim();
            folded.clear();
            fold_into(&mut folded, part);
            let mut entries = gaz.place(&folded);
            // `(Ocala, Fla.)`: the state's abbreviation.
            let mut name = None;
            if entries.is_empty() {
                if let Some((state, _)) = super::states::state_named(part) {
                    folded.clear();
                    fold_into(&mut folded, state);
                    entries = state_reading(gaz.place(&folded));
                    name = Some(state);
                }
            }
            if !part.is_empty() && !entries.is_empty() {
                cands.push(Cand {
                    entries,
                    surface: part,
                    at: 0,
                    name,
                });
            }
        }
    }
    for p in &m.places {
        let mut entries = gaz.place(&p.key);
        if p.state.is_some() {
            entries = state_reading(entries);
        }
        if let Some(country) = p.town {
            // `Ocala, Fla.`: the reading in the state's country, else a town of it.
            entries = match entries.iter().position(|e| e.country == country) {
                Some(k) => &entries[k..=k],
                None if country.is_empty() => &FEATURE,
                None if country == "CA" => &TOWN_CA,
                None => &TOWN_US,
            };
        }
        cands.push(Cand {
            entries,
            surface: doc.span(p.span.0, p.span.1),
            at: p.span.0,
            name: p.state,
        });
    }
    // Where each person mention ends, for `Cheshire of Griffin`.
    let mut person_ends: Vec<usize> = persons.iter().map(|s| s.span.1).collect();
    person_ends.sort_unstable();
    doc.budget
        .spend(m.places.len() + m.singles.len() + persons.len());
    for &i in &m.singles {
        if used[i] {
            continue;
        }
        let entries = gaz.place(doc.fold(i));
        let Some(best) = entries.first() else {
            continue;
        };
        if accept_single(doc, i, best, &person_ends) {
            cands.push(Cand {
                entries,
                surface: doc.text(i),
                at: i,
                name: None,
            });
        }
    }
    cands.sort_by_key(|c| c.at);

    // Country votes from names with a single reading.
    let mut votes: Map<&str, u32> = Map::default();
    for c in &cands {
        if let [e] = c.entries {
            if !e.country.is_empty() {
                *votes.entry(e.country).or_insert(0) += 1;
            }
        }
    }
    // Places by (folded name, kind, country): the name is folded into one reused
    // buffer, and only a new name allocates.
    let mut out: Vec<Place> = Vec::new();
    let mut keys: HashMap<
        String,
        Vec<(PlaceKind, &'static str, usize)>,
        foldhash::fast::RandomState,
    > = HashMap::default();
    doc.budget.spend(cands.len());
    for c in &cands {
        let Some(e) = choose(c.entries, &votes) else {
            continue;
        };
        let name: &str = if let Some(n) = c.name {
            n
        } else if e.canonical.is_empty() {
            c.surface.trim_end_matches(['’', '\''])
        } else {
            e.canonical
        };
        folded.clear();
        fold_into(&mut folded, name);
        if !keys.contains_key(folded.as_str()) {
            keys.insert(folded.clone(), Vec::new());
        }
        let Some(readings) = keys.get_mut(folded.as_str()) else {
            continue;
        };
        let known = readings
            .iter()
            .find(|(kind, country, _)| *kind == e.kind && *country == e.country);
        let surface = c.surface.trim_end_matches(['’', '\'']);
        let k = match known {
            Some(&(_, _, k)) => {
                out[k].mentions += 1;
                k
            }
            None => {
                readings.push((e.kind, e.country, out.len()));
                out.push(Place {
                    name: name.to_owned(),
                    aliases: Vec::new(),
                    mentions: 1,
                    kind: e.kind.as_str().to_owned(),
                    country: (!e.country.is_empty()).then(|| e.country.to_owned()),
                });
                out.len() - 1
            }
        };
        let place = &mut out[k];
        add_alias(&place.name, &mut place.aliases, surface);
    }
    out
}

/// Adds `surface` to `aliases` unless it is the name or already there (case aside).
/// An entity named thousands of ways keeps its first [`MAX_ALIASES`] forms.
pub(crate) fn add_alias(name: &str, aliases: &mut Vec<String>, surface: &str) {
    if surface.is_empty()
        || aliases.len() >= MAX_ALIASES
        || surface.eq_ignore_ascii_case(name)
        || aliases.iter().any(|a| a.eq_ignore_ascii_case(surface))
    {
        return;
    }
    aliases.push(surface.to_owned());
}

/// The most aliases a place or an organization keeps.
pub(crate) const MAX_ALIASES: usize = 16;

fn choose<'g>(entries: &'g [PlaceEntry], votes: &Map<&str, u32>) -> Option<&'g PlaceEntry> {
    let first = entries.first()?;
    if entries.len() == 1 {
        return Some(first);
    }
    // A capital or a big city keeps its reading whatever else the article names.
    if first.capital || first.population >= 1_000_000 {
        return Some(first);
    }
    let best = entries
        .iter()
        .filter(|e| !e.country.is_empty())
        .max_by_key(|e| votes.get(e.country).copied().unwrap_or(0));
    match best {
        Some(b)
            if votes.get(b.country).copied().unwrap_or(0)
                > votes.get(first.country).copied().unwrap_or(0) =>
        {
            Some(b)
        }
        _ => Some(first),
    }
}

/// Whether single word `i` is a place; `person_ends` (sorted) are where the person
/// mentions end.
fn accept_single(doc: &Doc<'_>, i: usize, best: &PlaceEntry, person_ends: &[usize]) -> bool {
    let t = &doc.tokens[i];
    if t.is(shape::ALLCAPS) && !matches!(best.kind, PlaceKind::Country | PlaceKind::FormerCountry) {
        return false;
    }
    let after_prep = i > 0 && {
        let p = &doc.tokens[i - 1];
        p.para == t.para && p.kind == Kind::Word && !p.is(shape::CAP) && p.has(flag::LOC_PREP)
    };
    // `Mrs. J. M. Cheshire of Griffin`: a home town after a person.
    let home_town =
        i >= 2 && doc.is_word(i - 1, "of") && person_ends.binary_search(&(i - 1)).is_ok();
    let sure = after_prep || home_town;
    let big = best.capital || best.population >= 1_000_000;
    let city_like = matches!(best.kind, PlaceKind::City | PlaceKind::County);
    if !city_like {
        // Countries, states, regions: the name alone suffices, but a sentence-initial
        // common word (`Chad`, `Jordan` are fine; `Reading` is not a country) is checked.
        return !(t.is(shape::SENT_START) && t.has(flag::COMMON)) || sure;
    }
    if best.ambiguous {
        return sure || big;
    }
    sure || !(t.is(shape::SENT_START) && t.has(flag::COMMON))
}
