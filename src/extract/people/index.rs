//! The indexes [`super::resolve`] looks people up in, so that an article naming
//! thousands of people costs thousands of steps, not millions: full names by surname
//! (and by surname and first name; a surname shared by more than
//! [`SAME_SURNAME_SCAN`] persons has only its first ones compared by initial),
//! one-word names by every word a person answers to ([`OneWord`]), aliases and roles
//! by a set once a person has many ([`Distinct`]). Each answers as a scan of every
//! person would.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::{compatible, Cluster};

/// Maps keyed by text from the article: seeded per map, so that no input can be
/// written to collide.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// How many persons of one surname a full name is compared with by initial (`J.
/// Smith`, `John Smith`); any number are compared by equal first name.
const SAME_SURNAME_SCAN: usize = 64;

/// Past this many entries a [`Distinct`] list keeps a set of its lower-case forms.
const DISTINCT_SCAN: usize = 16;

/// Strings in first-seen order, without repeats (ASCII case ignored).
#[derive(Default)]
pub(super) struct Distinct {
    pub(super) items: Vec<String>,
    /// The items' ASCII lower-case forms, once there are more than [`DISTINCT_SCAN`].
    // Boxed: most lists never need it, and every person carries two of them.
    #[allow(clippy::box_collection)]
    seen: Option<Box<HashSet<String, foldhash::fast::RandomState>>>,
}

impl Distinct {
    /// Adds `s` unless it is empty or already there; returns the steps it took.
    pub(super) fn push(&mut self, s: &str) -> usize {
        if s.is_empty() {
            return 1;
        }
        let Some(seen) = &mut self.seen else {
            if self.items.iter().any(|x| x.eq_ignore_ascii_case(s)) {
                return self.items.len();
            }
            self.items.push(s.to_owned());
            if self.items.len() > DISTINCT_SCAN {
                self.seen = Some(Box::new(
                    self.items.iter().map(|x| x.to_ascii_lowercase()).collect(),
                ));
            }
            return self.items.len();
        };
        if seen.insert(s.to_ascii_lowercase()) {
            self.items.push(s.to_owned());
        }
        1
    }
}

/// The persons with full names, by surname, for pass 1.
#[derive(Default)]
pub(super) struct FullNames<'d> {
    /// Persons by surname, in the order they were opened.
    by_surname: Map<&'d str, Vec<usize>>,
    /// The first person opened (or renamed) with each surname and first name.
    by_name: Map<(&'d str, &'d str), usize>,
}

impl<'d> FullNames<'d> {
    /// The first person `words` (two or more) may be, and the steps it took.
    pub(super) fn find(
        &self,
        clusters: &[Cluster<'d>],
        words: &[&'d str],
    ) -> (Option<usize>, usize) {
        let (Some(&first), Some(&last)) = (words.first(), words.last()) else {
            return (None, 1);
        };
        let Some(same) = self.by_surname.get(last) else {
            return (None, 1);
        };
        // A name is renamed to a longer compatible one, so the person found by first
        // name is checked again.
        let by_name = self
            .by_name
            .get(&(last, first))
            .copied()
            .filter(|&ci| compatible(&clusters[ci].words, words));
        let scan = same.len().min(SAME_SURNAME_SCAN);
        let by_initial = same[..scan]
            .iter()
            .copied()
            .find(|&ci| compatible(&clusters[ci].words, words));
        let found = match (by_name, by_initial) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (found, scan + 1)
    }

    /// Records that person `ci` now has `words` (the surname never changes).
    pub(super) fn add(&mut self, ci: usize, words: &[&'d str], new: bool) {
        let (Some(&first), Some(&last)) = (words.first(), words.last()) else {
            return;
        };
        if new {
            self.by_surname.entry(last).or_default().push(ci);
        }
        self.by_name.entry((last, first)).or_insert(ci);
    }
}

/// A gender an honorific told, as an index: none, `m`, `f`.
fn gender_class(g: u8) -> usize {
    match g {
        b'm' => 1,
        b'f' => 2,
        _ => 0,
    }
}

/// Past this many persons answering to one word, [`OneWord`] sorts them by gender
/// and first mention instead of scanning them.
const ONE_WORD_SCAN: usize = 8;

/// The persons one word designates.
enum Answering {
    /// One (most words).
    One(usize),
    /// A few, in the order they were opened.
    Few(Vec<usize>),
    /// Many: for each gender class ([`gender_class`]) and for the persons opened by
    /// full names (pass 1) and by titled one-word names (pass 2), the person first
    /// named at each token. Within one pass persons are opened in text order, so the
    /// one named first after a token is also the one opened first.
    Many(Box<[[BTreeMap<usize, usize>; 2]; 3]>),
}

/// The persons a one-word name may designate, by that word.
#[derive(Default)]
pub(super) struct OneWord<'d> {
    by_word: Map<&'d str, Answering>,
    /// Persons with a lower index were opened in pass 1.
    pass_two_from: usize,
}

impl<'d> OneWord<'d> {
    /// An empty index; persons from `pass_two_from` on are opened in pass 2; room
    /// for `words` words.
    pub(super) fn new(pass_two_from: usize, words: usize) -> Self {
        OneWord {
            by_word: Map::with_capacity_and_hasher(words, Default::default()),
            pass_two_from,
        }
    }

    /// Adds person `ci` (`clusters[ci]`).
    pub(super) fn add(&mut self, clusters: &[Cluster<'d>], ci: usize) {
        let c = &clusters[ci];
        for w in c.answers() {
            let answering = match self.by_word.entry(w) {
                Entry::Vacant(v) => {
                    v.insert(Answering::One(ci));
                    continue;
                }
                Entry::Occupied(o) => o.into_mut(),
            };
            match answering {
                Answering::One(first) => {
                    if *first != ci {
                        *answering = Answering::Few(vec![*first, ci]);
                    }
                }
                Answering::Few(list) => {
                    if list.last() != Some(&ci) {
                        list.push(ci);
                    }
                    if list.len() > ONE_WORD_SCAN {
                        let mut many: Box<[[BTreeMap<usize, usize>; 2]; 3]> = Box::default();
                        for &k in list.iter() {
                            let g = gender_class(clusters[k].gender);
                            let pass = usize::from(k >= self.pass_two_from);
                            many[g][pass].entry(clusters[k].first_seen).or_insert(k);
                        }
                        *answering = Answering::Many(many);
                    }
                }
                Answering::Many(many) => {
                    let pass = usize::from(ci >= self.pass_two_from);
                    many[gender_class(c.gender)][pass]
                        .entry(c.first_seen)
                        .or_insert(ci);
                }
            }
        }
    }

    /// Files person `ci` under the gender an honorific just told (it had none).
    pub(super) fn set_gender(&mut self, c: &Cluster<'d>, ci: usize) {
        let g = gender_class(c.gender);
        if g == 0 {
            return;
        }
        let pass = usize::from(ci >= self.pass_two_from);
        for w in c.answers() {
            if let Some(Answering::Many(many)) = self.by_word.get_mut(w) {
                if many[0][pass].get(&c.first_seen) == Some(&ci) {
                    many[0][pass].remove(&c.first_seen);
                    many[g][pass].entry(c.first_seen).or_insert(ci);
                }
            }
        }
    }

    /// The person a one-word name designates: the one first named most recently
    /// before `at`, else the first one opened of those named after it; an
    /// honorific's gender must not clash (`Mr. Wendell` is not `Mrs. Camilla Alsop
    /// Wendell`). Also returns the steps it took.
    pub(super) fn best_match(
        &self,
        clusters: &[Cluster<'d>],
        w: &str,
        at: usize,
        gender: u8,
    ) -> (Option<usize>, usize) {
        let Some(answering) = self.by_word.get(w) else {
            return (None, 1);
        };
        let mut before: Option<(usize, usize)> = None;
        let mut after: Option<usize> = None;
        match answering {
            Answering::One(_) | Answering::Few(_) => {
                let list = match answering {
                    Answering::One(ci) => std::slice::from_ref(ci),
                    Answering::Few(list) => list.as_slice(),
                    Answering::Many(_) => &[],
                };
                for &ci in list {
                    let c = &clusters[ci];
                    if gender != 0 && c.gender != 0 && c.gender != gender {
                        continue;
                    }
                    if c.first_seen <= at {
                        if before.is_none_or(|(_, s)| c.first_seen > s) {
                            before = Some((ci, c.first_seen));
                        }
                    } else if after.is_none() {
                        after = Some(ci);
                    }
                }
                (before.map(|(ci, _)| ci).or(after), list.len())
            }
            Answering::Many(many) => {
                let classes: &[usize] = match gender_class(gender) {
                    0 => &[0, 1, 2],
                    1 => &[0, 1],
                    _ => &[0, 2],
                };
                for &g in classes {
                    for by_token in &many[g] {
                        if let Some((&seen, &ci)) = by_token.range(..=at).next_back() {
                            if before.is_none_or(|(c, s)| seen > s || (seen == s && ci < c)) {
                                before = Some((ci, seen));
                            }
                        }
                        if let Some((_, &ci)) = by_token.range(at + 1..).next() {
                            after = Some(after.map_or(ci, |a| a.min(ci)));
                        }
                    }
                }
                (before.map(|(ci, _)| ci).or(after), 12)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    /// What the index replaces: a scan of every person, in order.
    fn scan(clusters: &[Cluster<'_>], w: &str, at: usize, gender: u8) -> Option<usize> {
        let mut before: Option<(usize, usize)> = None;
        let mut after = None;
        for (ci, c) in clusters.iter().enumerate() {
            if !c.answers().any(|a| a == w) || (gender != 0 && c.gender != 0 && c.gender != gender)
            {
                continue;
            }
            if c.first_seen <= at {
                if before.is_none_or(|(_, s)| c.first_seen > s) {
                    before = Some((ci, c.first_seen));
                }
            } else if after.is_none() {
                after = Some(ci);
            }
        }
        before.map(|(ci, _)| ci).or(after)
    }

    #[test]
    fn one_word_answers_like_a_scan() {
        const SURNAMES: [&str; 3] = ["smith", "jones", "lula"];
        const GENDERS: [u8; 3] = [0, b'm', b'f'];
        for seed in 1..20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            // Pass 1: full names, first named at 10, 20, 30, …; many per surname, so
            // that the index sorts them (more than ONE_WORD_SCAN).
            let mut clusters: Vec<Cluster<'_>> = (0..40)
                .map(|k| {
                    let mut words = vec!["ann"];
                    if rng.below(3) == 0 {
                        words.push(rng.pick(&SURNAMES));
                    }
                    words.push(rng.pick(&SURNAMES));
                    let mut c = Cluster::new(words, 10 * (k + 1));
                    c.gender = GENDERS[rng.below(3)];
                    c
                })
                .collect();
            let mut index = OneWord::new(clusters.len(), 8);
            for ci in 0..clusters.len() {
                index.add(&clusters, ci);
            }
            // Pass 2: titled one-word names at positions between them, in text order.
            for k in 0..60 {
                let (w, at) = (rng.pick(&SURNAMES), 7 * k + 3);
                let gender = GENDERS[rng.below(3)];
                let expected = scan(&clusters, w, at, gender);
                assert_eq!(index.best_match(&clusters, w, at, gender).0, expected);
                let ci = expected.unwrap_or_else(|| {
                    clusters.push(Cluster::new(vec![w], at));
                    index.add(&clusters, clusters.len() - 1);
                    clusters.len() - 1
                });
                if clusters[ci].gender == 0 && gender != 0 {
                    clusters[ci].gender = gender;
                    index.set_gender(&clusters[ci], ci);
                }
            }
            // Pass 3: bare surnames anywhere.
            for _ in 0..60 {
                let (w, at) = (rng.pick(&SURNAMES), rng.below(500));
                assert_eq!(
                    index.best_match(&clusters, w, at, 0).0,
                    scan(&clusters, w, at, 0)
                );
            }
        }
    }

    #[test]
    fn full_names_answer_like_a_scan() {
        const FIRST: [&str; 6] = ["john", "j.", "jo.", "mary", "m.", "jack"];
        const SURNAMES: [&str; 2] = ["smith", "jones"];
        for seed in 1..20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
            let mut clusters: Vec<Cluster<'_>> = Vec::new();
            let mut index = FullNames::default();
            for k in 0..120 {
                let mut words = vec![rng.pick(&FIRST)];
                if rng.below(4) == 0 {
                    words.push(rng.pick(&FIRST));
                }
                words.push(rng.pick(&SURNAMES));
                let expected = clusters.iter().position(|c| compatible(&c.words, &words));
                assert_eq!(index.find(&clusters, &words).0, expected, "{words:?}");
                match expected {
                    Some(ci) if words.len() > clusters[ci].words.len() => {
                        index.add(ci, &words, false);
                        clusters[ci].words = words;
                    }
                    Some(_) => {}
                    None => {
                        index.add(clusters.len(), &words, true);
                        clusters.push(Cluster::new(words, k));
                    }
                }
            }
        }
    }

    #[test]
    fn distinct_ignores_ascii_case_past_its_scan() {
        let mut d = Distinct::default();
        for k in 0..40 {
            d.push(&format!("Name {}", k % 25));
            d.push(&format!("NAME {}", k % 25));
        }
        d.push("");
        assert_eq!(d.items.len(), 25);
        assert_eq!(d.items[3], "Name 3");
    }
}
