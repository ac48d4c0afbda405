//! Sports teams: a team's nickname after the place it plays for (`Green Bay Packers`,
//! `New York Yankees`, `Boston Red Sox`), or, in an article about sport, alone (`the
//! Yankees`, `Longhorns`).
//!
//! A nickname is a word of [`TEAMS`] (a two-word nickname such as `Red Sox` is matched
//! from its last word back). Whether an article is about sport is told by its words
//! ([`SPORT_WORDS`]): a nickname that is also a common word or a people's name (`Bears`,
//! `Giants`, `Indians`) names a team only there, or right after a place.

use super::entities::join_folded;
use super::gazetteer::Gazetteer;
use super::lexicon::{flag, TEAMS};
use super::tokens::{shape, Doc};

/// How many words of sport make an article one about sport.
const SPORTY: usize = 3;

/// Whether the article is about sport (counted once per document).
pub(crate) fn sporty(doc: &Doc<'_>) -> bool {
    doc.budget.spend(doc.tokens.len() / 64 + 1);
    doc.tokens
        .iter()
        .filter(|t| t.has(flag::SPORT))
        .take(SPORTY)
        .count()
        >= SPORTY
}

/// Whether the folded words `a..b` are a nickname of [`TEAMS`].
fn is_nickname(doc: &Doc<'_>, a: usize, b: usize, key: &mut String) -> bool {
    key.clear();
    join_folded(doc, a, b, key);
    doc.budget.spend(1);
    TEAMS.contains(&key.as_str())
}

/// A team named from token `i` (a capitalised word) within `limit`: where its name
/// ends. `key` is a scratch buffer.
pub(crate) fn team_at(
    doc: &Doc<'_>,
    gaz: &Gazetteer,
    i: usize,
    limit: usize,
    sporty: bool,
    key: &mut String,
) -> Option<usize> {
    // The nickname ends within the next four words (`New York Red Sox` at most).
    let end = (i + 5).min(limit);
    let k = (i..end).find(|&k| {
        let t = &doc.tokens[k];
        t.cap_word() && t.has(flag::TEAM)
    })?;
    if (i..=k).any(|j| !doc.tokens[j].cap_word()) {
        return None;
    }
    // The nickname: one word, or two when the pair is listed (`Red Sox`).
    let start = if k > i && is_nickname(doc, k - 1, k + 1, key) {
        k - 1
    } else if is_nickname(doc, k, k + 1, key) {
        k
    } else {
        return None;
    };
    let t = &doc.tokens[start];
    if start == i {
        // Alone: in sports reporting, and not a demonym unless it follows `the`
        // (`the Indians`).
        let after_the = i > 0 && doc.is_word(i - 1, "the");
        let demonym = t.has(flag::DEMONYM);
        let ok = sporty && !t.is(shape::ALLCAPS) && (!demonym || after_the);
        return ok.then_some(k + 1);
    }
    // After a place: the words before the nickname name a place.
    key.clear();
    join_folded(doc, i, start, key);
    doc.budget.spend(1);
    (!gaz.place(key).is_empty()).then_some(k + 1)
}
