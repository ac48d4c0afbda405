//! Identity: `article_id` (same for every version of a story) and `content_hash`
//! (same for two saves whose text differs only in stamps and white space).
//!
//! # How `article_id` is derived
//!
//! `article_id = sha256(dateline ‖ posted ‖ sketch(lede))`, first 16 hex digits.
//! The dateline is folded to lowercase ASCII. `posted` is the resolved `Posted`
//! stamp. The lede sketch is a *bottom-k min-hash*: the k content words (four
//! letters or more, not a stop word) whose hashes are smallest. An inserted or
//! deleted word changes the sketch only when that word itself is among the k
//! smallest, so a small edit of the lede keeps the id (on the dev corpus's edited
//! ledes: all kept; with one random word inserted into every dev lede, 98.3 % kept),
//! while two different ledes share a sketch only by chance (0.4 % of pairs for k = 1).
//!
//! k depends on how much the other parts already separate stories: when `posted`
//! has a time of day, stories that share dateline and minute are rare, so k = 1
//! (most tolerant of edits). When `posted` is only a day or missing, many stories
//! share the bucket, so k = 3, which makes a false merge (the worse error: it would
//! drop a story as stale) negligible, at the cost of splitting more edited ledes.
//! The daemon's dedupe stage also re-joins a split version to its story when their
//! ledes are near-identical in the same bucket (see `crate::dedupe`).

use sha2::{Digest, Sha256};

use crate::hash::fnv1a;
use crate::record::{Section, Stamp};

/// Common words left out of the sketch. A `match` rather than a list: it compiles to
/// a switch on the length and word compares, not a `memcmp` call per entry.
fn is_stop(w: &str) -> bool {
    matches!(
        w,
        "that"
            | "this"
            | "with"
            | "from"
            | "have"
            | "been"
            | "were"
            | "will"
            | "would"
            | "their"
            | "there"
            | "which"
            | "what"
            | "when"
            | "where"
            | "they"
            | "them"
            | "then"
            | "than"
            | "into"
            | "over"
            | "also"
            | "said"
            | "says"
            | "about"
            | "after"
            | "before"
            | "more"
            | "most"
            | "some"
            | "such"
            | "only"
            | "very"
            | "just"
            | "again"
            | "still"
            | "even"
            | "much"
            | "many"
            | "other"
            | "could"
            | "should"
            | "dans"
            | "pour"
            | "avec"
            | "sont"
            | "elle"
            | "leur"
            | "mais"
            | "plus"
    )
}

/// Lowercase ASCII fold of a word (`Québec` → `quebec`) for the story identity.
/// It is not `crate::fold`'s: an article's id must not move when extraction's
/// folding is tuned, so this one is frozen (whole-string `deunicode`, `[?]` for what
/// it cannot spell).
pub fn identity_fold(word: &str) -> String {
    let mut out = String::new();
    identity_fold_into(&mut out, word);
    out
}

/// [`identity_fold`] into `out` (cleared first), without allocating for an ASCII word.
fn identity_fold_into(out: &mut String, word: &str) {
    out.clear();
    if word.is_ascii() {
        out.push_str(word);
        out.make_ascii_lowercase();
    } else {
        out.push_str(&deunicode::deunicode(word).to_lowercase());
    }
}

/// The bottom-k min-hash sketch of a lede's content words, smallest hash first
/// (ties by word), each word once.
pub fn lede_sketch(lede: &str, k: usize) -> Vec<String> {
    // The k smallest so far, in order: each word is folded into one buffer and only
    // copied when it enters them.
    let mut best: Vec<(u64, String)> = Vec::with_capacity(k + 1);
    let mut w = String::new();
    for word in lede.split(|c: char| !c.is_alphanumeric()) {
        if word.len() < 4 || word.chars().count() < 4 {
            continue;
        }
        identity_fold_into(&mut w, word);
        if is_stop(&w) {
            continue;
        }
        let h = fnv1a(&w);
        let at = best.partition_point(|(bh, bw)| (*bh, bw.as_str()) < (h, w.as_str()));
        if at >= k || best.get(at).is_some_and(|(bh, bw)| *bh == h && *bw == w) {
            continue;
        }
        best.insert(at, (h, w.clone()));
        best.truncate(k);
    }
    best.into_iter().map(|(_, w)| w).collect()
}

/// The story identity of an article version.
pub fn article_id(dateline: Option<&str>, posted: Option<&Stamp>, lede: &str) -> String {
    let k = match posted {
        Some(Stamp::At { .. }) => 1,
        _ => 3,
    };
    let mut h = Sha256::new();
    h.update(dateline.map(identity_fold).unwrap_or_default().as_bytes());
    h.update([0]);
    h.update(posted.map(|p| p.to_string()).unwrap_or_default().as_bytes());
    h.update([0]);
    for w in lede_sketch(lede, k) {
        h.update(w.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// SHA-256 over the dateline, lede, headings and paragraphs, one line each; stamp
/// lines are not part of it. The inputs come from [`super::layout`], which has
/// already collapsed white space, so two saves that differ only in spacing, line
/// ends or stamps hash the same.
pub fn content_hash(dateline: Option<&str>, lede: &str, sections: &[Section]) -> String {
    let mut h = Sha256::new();
    let mut line = |s: &str| {
        h.update(s.as_bytes());
        h.update(b"\n");
    };
    line(dateline.unwrap_or(""));
    line(lede);
    for s in sections {
        if let Some(head) = &s.heading {
            line(head);
        }
        for p in &s.paragraphs {
            line(p);
        }
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_survives_most_inserted_words() {
        let lede = "Barber, who is in his 13th year as a legislator, said there are some members of our congressional delegation in Washington who would like to see it passed";
        let edited = lede.replace("as a legislator", "as again a legislator");
        assert_eq!(lede_sketch(lede, 1), lede_sketch(&edited, 1));
        let posted = Stamp::parse("2022-10-03T07:46:00-04:00");
        assert_eq!(
            article_id(Some("London"), posted.as_ref(), lede),
            article_id(Some("London"), posted.as_ref(), &edited)
        );
    }

    /// The sketch as first written (fold every word, sort, dedup, take k), the
    /// definition the incremental one must keep.
    fn sketch_by_sorting(lede: &str, k: usize) -> Vec<String> {
        let mut words: Vec<(u64, String)> = lede
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 4)
            .map(identity_fold)
            .filter(|w| !is_stop(w))
            .map(|w| (fnv1a(&w), w))
            .collect();
        words.sort();
        words.dedup();
        words.into_iter().take(k).map(|(_, w)| w).collect()
    }

    proptest::proptest! {
        #[test]
        fn sketch_keeps_the_k_smallest(
            words in proptest::collection::vec("[A-Za-zéÉçà]{1,7}|that|with|Québec|QUÉBEC", 0..40),
            k in 0usize..5,
        ) {
            let lede = words.join(" ");
            proptest::prop_assert_eq!(lede_sketch(&lede, k), sketch_by_sorting(&lede, k));
        }
    }

    #[test]
    fn different_ledes_same_minute_differ() {
        let posted = Stamp::parse("2022-10-26T18:48:00-04:00");
        let a = article_id(Some("Havana"), posted.as_ref(), "A succession of highly publicized scandals has aroused the public within the last year.");
        let b = article_id(Some("Havana"), posted.as_ref(), "He promised nearly 200 Democratic county committee members at the meeting in the Puddingstone Inn.");
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn dateline_folds_accents() {
        let posted = Stamp::parse("2022-06-17");
        assert_eq!(
            article_id(Some("Québec"), posted.as_ref(), "Same lede words here"),
            article_id(Some("Quebec"), posted.as_ref(), "Same lede words here")
        );
    }
}
