//! People's names: the name words from a position (`person_core`), what anchors
//! them (a first name, an initial), and the words that never belong to one.

use super::Scanner;
use super::{MAX_NAME_WORDS, NOT_PERSON};
use crate::extract::lexicon::flag;
use crate::extract::tokens::{shape, Kind};

impl Scanner<'_, '_> {
    /// Whether token `i` (before `limit`) could start a person's name.
    pub(super) fn name_like_after(&self, i: usize, limit: usize) -> bool {
        i < limit && {
            let t = self.tok(i);
            t.cap_word() && !t.has(NOT_PERSON)
        }
    }

    /// The name words from `i`: returns (end, number of name words).
    pub(super) fn person_core(&mut self, i: usize, limit: usize, titled: bool) -> (usize, usize) {
        // `St. Patty Day`, `Mount Vernon Smith`: not a name after a place-name prefix.
        if !titled && i > 0 && self.tok(i - 1).cap_word() && self.tok(i - 1).has(flag::NOT_NAME) {
            return (i, 0);
        }
        let mut j = i;
        let mut names = 0usize;
        let mut end = i;
        // The previous name word followed an initial (`R. E. Killingsworth`).
        let mut after_initial_form = false;
        // Whether `i..anchor.0` holds an anchor: `anchored(i, j)`, read on as `j` grows.
        let mut anchor = (i, false);
        while j < limit && names < MAX_NAME_WORDS {
            self.doc.budget.spend(1);
            let t = *self.tok(j);
            // A run-in second name: `R. E. Killingsworth Raymond E. Killingsworth`.
            if after_initial_form && names >= 2 && t.has(flag::FIRST) && !t.is(shape::INITIAL) {
                break;
            }
            after_initial_form = j > i
                && !t.is(shape::INITIAL)
                && self.tok(j - 1).is(shape::INITIAL)
                && t.cap_word();
            if t.kind == Kind::Word && !t.is(shape::CAP) && t.has(flag::PARTICLE) && names > 0 {
                if j + 1 < limit && self.tok(j + 1).cap_word() {
                    j += 1;
                    continue;
                }
                break;
            }
            if !t.cap_word() {
                break;
            }
            if t.has(flag::SUFFIX) && names > 0 && (t.is(shape::ABBR) || t.is(shape::ALLCAPS)) {
                j += 1;
                end = j;
                break;
            }
            if t.has(NOT_PERSON) && !t.is(shape::INITIAL) {
                break;
            }
            if t.is(shape::ALLCAPS) && !t.is(shape::INITIAL) && !self.initials(j) {
                break;
            }
            // `Herrin-Murphysboro-West`: a compound of three or more parts is no name.
            if t.is(shape::HYPHEN) && self.doc.text(j).matches('-').count() >= 2 {
                break;
            }
            if names == 0 {
                // `Denver's Al Carmichael`: a place's possessive opens no name.
                if t.is(shape::POSS) && !self.gaz.place(self.doc.fold(j)).is_empty() {
                    break;
                }
                if !titled {
                    let first = t.is(shape::INITIAL)
                        || (t.has(flag::FIRST)
                            && !(t.is(shape::SENT_START) && t.has(flag::COMMON)))
                        || !t.has(flag::COMMON);
                    if !first || self.is_big_place(j) {
                        break;
                    }
                }
            } else if (self.is_big_place(j) && !t.has(flag::SURNAME) && !t.has(flag::FIRST))
                || (!titled
                    && t.has(flag::COMMON)
                    && !t.has(flag::SURNAME | flag::FIRST)
                    && !self.anchored_to(&mut anchor, j))
            {
                break;
            }
            names += 1;
            j += 1;
            end = j;
            if t.is(shape::POSS) {
                break;
            }
        }
        // `Coosa Valley`, `Grady Hospital`: no first name and a place word at the end.
        if !titled && names >= 2 && self.tok(end - 1).has(flag::GEO) && !self.anchored(i, end) {
            return (i, 0);
        }
        // `Ben Epstein Good Guy Award`, `Sid Mercer Memorial Award`: a name that runs
        // into the name of a prize or a place ends before the first common word.
        if !titled && names >= 3 && self.tok(end - 1).has(flag::GEO) {
            if let Some(k) = (i + 2..end - 1).find(|&k| {
                let t = self.tok(k);
                t.has(flag::COMMON) && !t.has(flag::SURNAME | flag::FIRST)
            }) {
                return (k, k - i);
            }
        }
        (end, names)
    }

    /// Whether token `i` is a run of initials written together: `K.J.P.`.
    pub(super) fn initials(&self, i: usize) -> bool {
        let w = self.doc.text(i).as_bytes();
        w.len() >= 4
            && w.len().is_multiple_of(2)
            && w.chunks(2)
                .all(|c| c[0].is_ascii_uppercase() && c[1] == b'.')
    }

    /// Whether the name words `i..j` hold an initial or a first name that is not also a
    /// common word (`Forest`, `Will`, `Grant` do not count).
    pub(super) fn anchored(&self, i: usize, j: usize) -> bool {
        self.anchored_to(&mut (i, false), j)
    }

    /// [`Scanner::anchored`] read on from a previous answer: `state` is `(k, found)`,
    /// whether `i..k` holds an anchor; it is moved on to `j`.
    pub(super) fn anchored_to(&self, state: &mut (usize, bool), j: usize) -> bool {
        while !state.1 && state.0 < j {
            let t = self.tok(state.0);
            state.1 = t.is(shape::INITIAL) || (t.has(flag::FIRST) && !t.has(flag::COMMON));
            state.0 += 1;
        }
        self.doc.budget.spend(1);
        state.1
    }

    /// A country, state, continent or region name (not a city): never a name word.
    pub(super) fn is_big_place(&self, i: usize) -> bool {
        use crate::extract::gazetteer::PlaceKind as K;
        self.gaz.place(self.doc.fold(i)).first().is_some_and(|e| {
            matches!(
                e.kind,
                K::Country | K::FormerCountry | K::Continent | K::Region | K::State | K::Province
            )
        })
    }
}
