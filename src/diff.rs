//! What changed: the `changes` object of a revision, computed against the previous
//! emitted version of the same article.
//!
//! The state keeps a [`Snapshot`] of the last emitted version of every live article
//! (lede, headings, paragraphs, names, quote hashes: what the diff needs and nothing
//! else); the committer diffs a new revision against it before writing the record.
//!
//! # Paragraphs
//!
//! Paragraph indexes count body paragraphs from 1 across sections, headings excluded
//! (index 0 would be the lede, reported by `lede_changed` instead) — the same
//! numbering as `quotes[].paragraph`. Matching:
//!
//! 1. a paragraph whose text equals one of the previous version is *unchanged*,
//!    wherever it sits (a moved paragraph is neither removed nor added);
//! 2. among the rest, pairs whose **token Jaccard similarity** (sets of lowercased
//!    alphanumeric words, |A ∩ B| / |A ∪ B|) is at least 0.5 are *edited*, best pairs
//!    first;
//! 3. what is left of the new version is *added*, of the previous one *removed*.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::hash::fnv1a;
use crate::record::Record;
pub use crate::record::{Changes, Delta, Edit, ParagraphChanges, QuoteChanges};

/// Token Jaccard similarity at or above which two paragraphs are one edited paragraph.
pub const EDIT_SIMILARITY: f64 = 0.5;

/// What the diff needs of the last emitted version of an article.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The lede (without dateline).
    pub lede: String,
    /// Headings, in order.
    pub headings: Vec<String>,
    /// Body paragraphs, in order.
    pub paragraphs: Vec<String>,
    /// `people[].name`.
    pub people: Vec<String>,
    /// `places[].name`.
    pub places: Vec<String>,
    /// `organizations[].name`.
    pub organizations: Vec<String>,
    /// 64-bit hashes of `quotes[].text`.
    pub quotes: Vec<u64>,
    /// Word count.
    pub word_count: usize,
}

impl Snapshot {
    /// The snapshot of a record.
    pub fn of(r: &Record) -> Snapshot {
        Snapshot {
            lede: r.lede.clone(),
            headings: r.headings().map(str::to_owned).collect(),
            paragraphs: r.paragraphs().map(str::to_owned).collect(),
            people: r.people.iter().map(|p| p.name.clone()).collect(),
            places: r.places.iter().map(|p| p.name.clone()).collect(),
            organizations: r.organizations.iter().map(|o| o.name.clone()).collect(),
            quotes: r.quotes.iter().map(|q| fnv1a(&q.text)).collect(),
            word_count: r.word_count,
        }
    }
}

/// The set of lowercased alphanumeric words of `s`, as sorted, distinct 64-bit
/// FNV-1a hashes (no allocation per word; a collision between two different words
/// of two paragraphs is a 2^-64 event per pair).
pub fn tokens(s: &str) -> Vec<u64> {
    use crate::hash::{OFFSET, PRIME};
    let mut out = Vec::with_capacity(s.len() / 5);
    let mut h = OFFSET;
    let mut in_word = false;
    let mut buf = [0u8; 4];
    for c in s.chars() {
        if c.is_alphanumeric() {
            in_word = true;
            if c.is_ascii() {
                h = (h ^ u64::from(c.to_ascii_lowercase() as u8)).wrapping_mul(PRIME);
            } else {
                for l in c.to_lowercase() {
                    for &b in l.encode_utf8(&mut buf).as_bytes() {
                        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
                    }
                }
            }
        } else if in_word {
            out.push(h);
            h = OFFSET;
            in_word = false;
        }
    }
    if in_word {
        out.push(h);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Token Jaccard similarity of two word sets from [`tokens`] (1.0 for two texts
/// without words).
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - both;
    if union == 0 {
        return 1.0;
    }
    both as f64 / union as f64
}

/// Items of `new` not in `old` and of `old` not in `new`, as multisets, in order.
fn delta(old: &[String], new: &[String]) -> Delta {
    let mut left: HashMap<&str, usize> = HashMap::new();
    for o in old {
        *left.entry(o).or_default() += 1;
    }
    let mut added = Vec::new();
    for n in new {
        match left.get_mut(n.as_str()) {
            Some(c) if *c > 0 => *c -= 1,
            _ => added.push(n.clone()),
        }
    }
    let mut right: HashMap<&str, usize> = HashMap::new();
    for n in new {
        *right.entry(n).or_default() += 1;
    }
    let mut removed = Vec::new();
    for o in old {
        match right.get_mut(o.as_str()) {
            Some(c) if *c > 0 => *c -= 1,
            _ => removed.push(o.clone()),
        }
    }
    Delta { added, removed }
}

/// Paragraph changes from `old` to `new`.
pub fn paragraphs(old: &[String], new: &[String]) -> ParagraphChanges {
    if old == new {
        return ParagraphChanges::default();
    }
    // 1. Exact matches, anywhere (moves are not changes): each new paragraph takes
    //    the first unused equal paragraph of the previous version. A few dozen
    //    paragraphs a side: comparing lengths first beats hashing every text.
    let mut old_used = vec![false; old.len()];
    let mut new_unmatched = Vec::new();
    for (j, p) in new.iter().enumerate() {
        match (0..old.len()).find(|&i| !old_used[i] && old[i].len() == p.len() && old[i] == *p) {
            Some(i) => old_used[i] = true,
            None => new_unmatched.push(j),
        }
    }
    let old_unmatched: Vec<usize> = (0..old.len()).filter(|&i| !old_used[i]).collect();
    // 2. Similar pairs, best first.
    let old_tok: Vec<Vec<u64>> = old_unmatched.iter().map(|&i| tokens(&old[i])).collect();
    let new_tok: Vec<Vec<u64>> = new_unmatched.iter().map(|&j| tokens(&new[j])).collect();
    let mut pairs = Vec::new();
    for (a, ot) in old_tok.iter().enumerate() {
        for (b, nt) in new_tok.iter().enumerate() {
            let s = jaccard(ot, nt);
            if s >= EDIT_SIMILARITY {
                pairs.push((s, a, b));
            }
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.2.cmp(&y.2)));
    let mut old_taken = vec![false; old_unmatched.len()];
    let mut new_taken = vec![false; new_unmatched.len()];
    let mut edited = Vec::new();
    for (_, a, b) in pairs {
        if old_taken[a] || new_taken[b] {
            continue;
        }
        old_taken[a] = true;
        new_taken[b] = true;
        let (i, j) = (old_unmatched[a], new_unmatched[b]);
        edited.push(Edit {
            index: j + 1,
            before: old[i].clone(),
            after: new[j].clone(),
        });
    }
    edited.sort_by_key(|e| e.index);
    // 3. The rest.
    let added = new_unmatched
        .iter()
        .enumerate()
        .filter(|(b, _)| !new_taken[*b])
        .map(|(_, &j)| j + 1)
        .collect();
    let removed = old_unmatched
        .iter()
        .enumerate()
        .filter(|(a, _)| !old_taken[*a])
        .map(|(_, &i)| old[i].clone())
        .collect();
    ParagraphChanges {
        added,
        removed,
        edited,
    }
}

/// The `changes` of `new` against the previous version's snapshot.
pub fn changes(prev: &Snapshot, new: &Record) -> Changes {
    changes_with(prev, &Snapshot::of(new), new)
}

/// [`changes`] when the new version's snapshot is already built (the daemon keeps it
/// as the next revision's `prev`, so it is built once).
pub fn changes_with(prev: &Snapshot, cur: &Snapshot, new: &Record) -> Changes {
    let lede_changed = prev.lede != cur.lede;
    let quote_hashes: HashSet<u64> = prev.quotes.iter().copied().collect();
    Changes {
        paragraphs: paragraphs(&prev.paragraphs, &cur.paragraphs),
        lede_changed,
        lede_before: lede_changed.then(|| prev.lede.clone()),
        headings: delta(&prev.headings, &cur.headings),
        people: delta(&prev.people, &cur.people),
        places: delta(&prev.places, &cur.places),
        organizations: delta(&prev.organizations, &cur.organizations),
        quotes: QuoteChanges {
            added: new
                .quotes
                .iter()
                .filter(|q| !quote_hashes.contains(&fnv1a(&q.text)))
                .map(|q| q.text.clone())
                .collect(),
        },
        word_count_delta: cur.word_count as i64 - prev.word_count as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn moved_deleted_edited_added() {
        let old = v(&[
            "Alpha paragraph about the council vote on Monday.",
            "Beta paragraph on the budget of the city.",
            "Gamma paragraph that will be deleted entirely now.",
            "Delta paragraph with the mayor's long quote here.",
        ]);
        let new = v(&[
            "Delta paragraph with the mayor's long quote here.", // moved
            "Alpha paragraph about the council vote on Monday.",
            "Beta paragraph on the new budget of the city.", // edited
            "Epsilon is entirely new text about something else.",
        ]);
        let c = paragraphs(&old, &new);
        assert_eq!(c.added, vec![4]);
        assert_eq!(c.removed, vec![old[2].clone()]);
        assert_eq!(c.edited.len(), 1);
        assert_eq!(c.edited[0].index, 3);
        assert_eq!(c.edited[0].before, old[1]);
    }

    #[test]
    fn multiset_delta() {
        let d = delta(&v(&["a", "b", "b"]), &v(&["b", "c"]));
        assert_eq!(d.added, v(&["c"]));
        assert_eq!(d.removed, v(&["a", "b"]));
    }

    #[test]
    fn jaccard_threshold() {
        let a = tokens("one two three four");
        let b = tokens("one two three five");
        assert!((jaccard(&a, &b) - 0.6).abs() < 1e-9);
        // Case and punctuation do not count; repeated words count once.
        assert_eq!(tokens("Été, été! ÉTÉ"), tokens("été"));
        assert_eq!(
            jaccard(&tokens("The the THE cat."), &tokens("the cat")),
            1.0
        );
        assert_eq!(jaccard(&tokens("..."), &tokens("")), 1.0);
        assert!(jaccard(&tokens("x y"), &tokens("z w")) < EDIT_SIMILARITY);
    }
}
