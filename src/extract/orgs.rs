//! Organizations: merging full names and acronyms, counting mentions.
//!
//! Sources, all found by [`super::entities`]: acronym definitions
//! (`Organization of American States (OAS)` is one organization with acronym `OAS`),
//! curated institutions (`United Nations`/`UN`, `Pentagon`), and capitalised names
//! ending in a keyword (`State Department`, `Fulton Superior Court`) or shaped
//! `University of X`. A later bare acronym counts as a mention of its organization.

use std::collections::HashMap;

use crate::record::Organization;

use super::entities::Mentions;
use super::gazetteer::Gazetteer;
use super::places::add_alias;
use super::tokens::{shape, Doc};
use crate::fold::fold_str;

/// All-capital words that are not organizations: units, broadcast bands, eras, Roman
/// numerals are checked apart.
const NOT_ACRONYMS: &[&str] = &[
    "TV", "OK", "AM", "PM", "FM", "AD", "BC", "ID", "MPH", "RPM", "IQ", "PS", "RSVP", "SOS", "VIP",
    "HQ", "GI", "GIS", "MP", "DJ", "LP", "SS", "AWOL", "RIP", "ASAP", "NB",
];

/// Whether the all-capital word `i`, never spelled out in the text, is an
/// organization's acronym (`TCU`, `GOP`, `TASS`): two to six letters, not a place, a
/// Roman numeral or a unit, and not inside a run of capitals (a shouted line).
fn undefined_acronym(doc: &Doc<'_>, gaz: &Gazetteer, i: usize) -> bool {
    let w = doc.text(i);
    let letters = w.len();
    if !(2..=6).contains(&letters) || !w.bytes().all(|b| b.is_ascii_uppercase()) {
        return false;
    }
    if w.bytes().all(|b| b"IVXLCDM".contains(&b)) || NOT_ACRONYMS.contains(&w) {
        return false;
    }
    let caps = |k: usize| doc.tokens.get(k).is_some_and(|t| t.is(shape::ALLCAPS));
    if (i > 0 && caps(i - 1)) || caps(i + 1) {
        return false;
    }
    gaz.place(doc.fold(i)).is_empty()
}

/// Aggregates organization mentions. `used` marks single words already taken.
pub(crate) fn resolve(
    doc: &Doc<'_>,
    gaz: &Gazetteer,
    m: &Mentions,
    used: &mut [bool],
) -> Vec<Organization> {
    // (position, name, acronym, the words the text used).
    let mut items: Vec<(usize, String, Option<String>, &str)> = m
        .orgs
        .iter()
        .map(|o| {
            let surface = doc.span(o.span.0, o.span.1);
            // An acronym definition's span holds `(OAS)`: its surface is the name.
            let surface = if o.acronym.is_some() && surface.ends_with(')') {
                o.name.as_str()
            } else {
                surface
            };
            (o.span.0, o.name.clone(), o.acronym.clone(), surface)
        })
        .collect();
    // The first definition of each acronym.
    let mut defined: HashMap<&str, &(String, String), foldhash::fast::RandomState> =
        HashMap::default();
    for d in &m.acronyms {
        defined.entry(d.0.as_str()).or_insert(d);
    }
    doc.budget.spend(m.acronyms.len() + m.singles.len());
    for &i in &m.singles {
        if used[i] || !doc.tokens[i].is(shape::ALLCAPS) {
            continue;
        }
        let w = doc.text(i);
        if let Some((acr, name)) = defined.get(w) {
            items.push((i, name.clone(), Some(acr.clone()), w));
            used[i] = true;
        } else if undefined_acronym(doc, gaz, i) {
            items.push((i, w.to_owned(), Some(w.to_owned()), w));
            used[i] = true;
        }
    }
    items.sort_by_key(|x| x.0);
    doc.budget.spend(items.len());
    let mut out: Vec<Organization> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (_, name, acronym, surface) in items {
        let name = name.trim_end_matches(['’', '\'']).to_owned();
        let key = fold_str(&name);
        let k = match index.get(&key) {
            Some(&k) => {
                out[k].mentions += 1;
                if out[k].acronym.is_none() {
                    out[k].acronym = acronym;
                }
                k
            }
            None => {
                index.insert(key, out.len());
                out.push(Organization {
                    name,
                    acronym,
                    aliases: Vec::new(),
                    mentions: 1,
                });
                out.len() - 1
            }
        };
        let o = &mut out[k];
        let surface = surface.trim_end_matches(['’', '\'']);
        if o.acronym.as_deref() != Some(surface) {
            add_alias(&o.name, &mut o.aliases, surface);
        }
    }
    out
}
