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
use super::tokens::{fold_str, shape, Doc};

/// Aggregates organization mentions. `used` marks single words already taken.
pub(crate) fn resolve(doc: &Doc<'_>, m: &Mentions, used: &mut [bool]) -> Vec<Organization> {
    let mut items: Vec<(usize, String, Option<String>)> = m
        .orgs
        .iter()
        .map(|o| (o.span.0, o.name.clone(), o.acronym.clone()))
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
            items.push((i, name.clone(), Some(acr.clone())));
            used[i] = true;
        }
    }
    items.sort_by_key(|x| x.0);
    doc.budget.spend(items.len());
    let mut out: Vec<Organization> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (_, name, acronym) in items {
        let name = name.trim_end_matches(['’', '\'']).to_owned();
        let key = fold_str(&name);
        match index.get(&key) {
            Some(&k) => {
                out[k].mentions += 1;
                if out[k].acronym.is_none() {
                    out[k].acronym = acronym;
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(Organization {
                    name,
                    acronym,
                    mentions: 1,
                });
            }
        }
    }
    out
}
