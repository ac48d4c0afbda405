//! People: grouping name mentions into persons (surname coreference), choosing the
//! fullest form, and collecting aliases and roles.
//!
//! Full names (two or more name words) open persons in text order; a later full name
//! that agrees on the surname and whose first name is equal or an initial of it joins
//! the same person. One-word names (`Mr. Blinken`, `President Petro`, a bare `Blinken`)
//! join the person most recently named with that surname (`Lula` may also match a middle
//! name); a titled one-word name with no such person becomes a person of its own.
//! Every look-up goes through an index ([`index`]), so that an article naming
//! thousands of people costs thousands of steps, not millions.

mod index;

use crate::record::Person;

use index::{Distinct, FullNames, OneWord};

use super::entities::{Mentions, PersonMention};
use super::lexicon::flag;
use super::tokens::{shape, Doc, Kind};

/// A person mention tied to its person, for quote attribution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// Token range of the mention (title included).
    pub span: (usize, usize),
    /// Index into the people list.
    pub person: usize,
}

struct Cluster<'d> {
    /// Folded name words (particles and suffixes left out), borrowed from the document.
    words: Vec<&'d str>,
    /// The fullest form seen so far, borrowed from the text.
    display: &'d str,
    display_words: usize,
    aliases: Distinct,
    roles: Distinct,
    mentions: u32,
    first_seen: usize,
    /// Gender told by an honorific: `m` (`Mr.`), `f` (`Mrs.`, `Miss`), or 0.
    gender: u8,
}

/// Gender told by an honorific (folded, without its period).
fn honorific_gender(h: &str) -> u8 {
    match h.trim_end_matches('.') {
        "mr" | "m" | "messrs" | "sir" | "monsieur" | "herr" | "senor" => b'm',
        "mrs" | "miss" | "ms" | "mme" | "mlle" | "madame" | "dame" | "lady" | "senora"
        | "mesdames" => b'f',
        _ => 0,
    }
}

impl<'d> Cluster<'d> {
    /// A person known so far only by `words`, first named at token `first_seen`.
    fn new(words: Vec<&'d str>, first_seen: usize) -> Self {
        Cluster {
            words,
            display: "",
            display_words: 0,
            aliases: Distinct::default(),
            roles: Distinct::default(),
            mentions: 0,
            first_seen,
            gender: 0,
        }
    }

    fn surname(&self) -> &'d str {
        self.words.last().copied().unwrap_or("")
    }

    /// The one-word names that designate this person: the surname, and the non-first
    /// words of a long name (`Lula` in `Luiz Inacio Lula da Silva`). May repeat.
    fn answers(&self) -> impl Iterator<Item = &'d str> + '_ {
        let rest = if self.words.len() >= 3 {
            &self.words[1..]
        } else {
            &[]
        };
        std::iter::once(self.surname()).chain(rest.iter().copied())
    }
}

/// Name words of a core: folded, without particles, initials' periods kept.
fn core_words<'d>(doc: &'d Doc<'_>, core: (usize, usize)) -> Vec<&'d str> {
    (core.0..core.1)
        .filter(|&k| {
            let t = &doc.tokens[k];
            t.kind == Kind::Word && t.is(shape::CAP) && !t.has(flag::SUFFIX)
        })
        .map(|k| doc.fold(k))
        .collect()
}

fn compatible(a: &[&str], b: &[&str]) -> bool {
    // Same surname, and first names equal or one an initial of the other.
    if a.last() != b.last() {
        return false;
    }
    match (a.first(), b.first()) {
        (Some(x), Some(y)) => {
            x == y
                || (x.ends_with('.') && y.starts_with(x.trim_end_matches('.')))
                || (y.ends_with('.') && x.starts_with(y.trim_end_matches('.')))
        }
        _ => false,
    }
}

/// Groups the person mentions (and the single words that repeat a known surname) into
/// people. Returns the people, the mention spans, and marks the single words used.
pub(crate) fn resolve<'d>(
    doc: &'d Doc<'_>,
    m: &Mentions,
    used: &mut [bool],
) -> (Vec<Person>, Vec<Span>) {
    // Sized for the worst case (every mention a new person): a large article's lists
    // are allocated once, not copied as they grow.
    let mut clusters: Vec<Cluster<'d>> = Vec::with_capacity(m.persons.len());
    let mut spans: Vec<Span> = Vec::with_capacity(m.persons.len() + m.singles.len());
    let mut order: Vec<&PersonMention> = m.persons.iter().collect();
    order.sort_by_key(|p| p.span.0);

    // The `Mr. Blinken` form of a titled mention, built here and copied only when
    // it is a new alias.
    let mut form = String::new();
    // Returns whether the mention told the person's gender.
    let mut add = |c: &mut Cluster<'d>, pm: &PersonMention, words: usize| {
        let core_text: &'d str = doc.span(pm.core.0, pm.core.1);
        let core_text = core_text.trim_end_matches(['’', '\'']);
        c.mentions += 1;
        let mut told = false;
        if let Some(h) = pm.honorific {
            if c.gender == 0 {
                c.gender = honorific_gender(doc.fold(h));
                told = c.gender != 0;
            }
        }
        let mut steps = 1;
        if let Some(h) = pm.honorific {
            form.clear();
            form.push_str(doc.text(h));
            form.push(' ');
            form.push_str(core_text);
            steps += c.aliases.push(&form);
        }
        steps += c.aliases.push(core_text);
        if words > c.display_words
            || (words == c.display_words && core_text.len() > c.display.len())
        {
            c.display = core_text;
            c.display_words = words;
        }
        if let Some((a, b)) = pm.role {
            steps += c.roles.push(doc.span(a, b));
        }
        doc.budget.spend(steps);
        told
    };

    // Pass 1: full names.
    let mut pending: Vec<(&PersonMention, Vec<&'d str>)> = Vec::with_capacity(m.persons.len());
    let mut full = FullNames::default();
    for pm in &order {
        if !doc.budget.spend(pm.core.1 - pm.core.0) {
            break;
        }
        let words = core_words(doc, pm.core);
        if words.len() < 2 {
            pending.push((pm, words));
            continue;
        }
        let (found, steps) = full.find(&clusters, &words);
        doc.budget.spend(steps);
        let n = words.len();
        let ci = match found {
            Some(ci) => {
                if n > clusters[ci].words.len() {
                    full.add(ci, &words, false);
                    clusters[ci].words = words;
                }
                ci
            }
            None => {
                full.add(clusters.len(), &words, true);
                clusters.push(Cluster::new(words, pm.span.0));
                clusters.len() - 1
            }
        };
        add(&mut clusters[ci], pm, n);
        spans.push(Span {
            span: pm.span,
            person: ci,
        });
    }
    // Pass 2: one-word titled names.
    let mut one_word = OneWord::new(clusters.len(), m.persons.len());
    for ci in 0..clusters.len() {
        doc.budget.spend(clusters[ci].words.len());
        one_word.add(&clusters, ci);
    }
    for (pm, words) in pending {
        let Some(&w) = words.first() else { continue };
        if !doc.budget.spend(words.len()) {
            break;
        }
        let gender = pm.honorific.map_or(0, |h| honorific_gender(doc.fold(h)));
        let n = words.len();
        let (found, steps) = one_word.best_match(&clusters, w, pm.span.0, gender);
        doc.budget.spend(steps);
        let ci = found.unwrap_or_else(|| {
            clusters.push(Cluster::new(words, pm.span.0));
            let ci = clusters.len() - 1;
            one_word.add(&clusters, ci);
            ci
        });
        if add(&mut clusters[ci], pm, n) {
            one_word.set_gender(&clusters[ci], ci);
        }
        spans.push(Span {
            span: pm.span,
            person: ci,
        });
    }
    // Pass 3: bare surnames among the single words.
    for &i in &m.singles {
        let t = &doc.tokens[i];
        if t.is(shape::ALLCAPS) {
            continue;
        }
        let w = doc.fold(i);
        let (found, steps) = one_word.best_match(&clusters, w, i, 0);
        if !doc.budget.spend(steps) {
            break;
        }
        if let Some(ci) = found {
            let pm = PersonMention {
                span: (i, i + 1),
                core: (i, i + 1),
                honorific: None,
                role: None,
            };
            add(&mut clusters[ci], &pm, 1);
            spans.push(Span {
                span: (i, i + 1),
                person: ci,
            });
            used[i] = true;
        }
    }
    spans.sort_by_key(|s| s.span.0);
    let people = clusters
        .into_iter()
        .map(|c| {
            let display = c.display;
            let aliases = c
                .aliases
                .items
                .into_iter()
                .filter(|a| !a.eq_ignore_ascii_case(display))
                .collect();
            Person {
                name: display.to_owned(),
                aliases,
                mentions: c.mentions,
                roles: c.roles.items,
            }
        })
        .collect();
    (people, spans)
}
