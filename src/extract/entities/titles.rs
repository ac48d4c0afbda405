//! Titles and curated phrases at a position: `Mr.`, `US Secretary of State`, a
//! lower-case `ex-president` before a name, institutions and demonyms of the phrase table.

use super::join_folded;
use super::Scanner;
use crate::extract::gazetteer::Phrase;
use crate::extract::lexicon::flag;
use crate::extract::tokens::{shape, Kind};

impl Scanner<'_, '_> {
    /// Most words in a curated phrase starting with token `i` (0: none). The phrase
    /// table is asked only about words the gazetteer marked as able to open one.
    pub(super) fn phrase_span(&self, i: usize) -> usize {
        if self.tok(i).has(flag::PHRASE_START) {
            self.gaz.phrase_span(self.doc.fold(i))
        } else {
            0
        }
    }

    /// Longest curated phrase starting at `i`, within `limit`.
    pub(super) fn phrase_at(&mut self, i: usize, limit: usize) -> Option<(usize, Phrase)> {
        let max = self.phrase_span(i).min(limit - i);
        for n in (1..=max).rev() {
            self.key.clear();
            join_folded(self.doc, i, i + n, &mut self.key);
            if let Some(p) = self.gaz.phrase(&self.key) {
                // Institutions must be written capitalised (or as an acronym), and not
                // open a longer name (`Congress of Industrial Organizations`).
                let last_cap = self.tok(i + n - 1).cap_word();
                let longer = self.doc.is_word(i + n, "of")
                    && self.tok(i + n).para == self.tok(i).para
                    && i + n + 1 < limit;
                if last_cap && !(longer && matches!(p, Phrase::Institution(_))) {
                    return Some((i + n, p));
                }
            }
        }
        None
    }

    pub(super) fn is_title_word(&self, i: usize) -> bool {
        let t = self.tok(i);
        if t.kind != Kind::Word {
            return false;
        }
        if t.has(flag::TITLE) {
            return true;
        }
        t.is(shape::HYPHEN)
            && self
                .doc
                .fold(i)
                .split('-')
                .any(|p| self.gaz.word_flags(p.trim_end_matches('.')) & flag::TITLE != 0)
    }

    /// A title phrase or title word at `i` (optionally after modifiers and a country
    /// prefix): returns (role tokens, honorific token, first token after the title).
    #[allow(clippy::type_complexity)]
    pub(super) fn title_at(
        &mut self,
        i: usize,
        limit: usize,
    ) -> Option<(Option<(usize, usize)>, Option<usize>, usize)> {
        let t = *self.tok(i);
        if t.has(flag::HONORIFIC) && (t.is(shape::ABBR) || t.is(shape::CAP)) {
            return Some((None, Some(i), i + 1));
        }
        // `M.` before a surname (French usage).
        if t.is(shape::INITIAL)
            && self.doc.fold(i) == "m."
            && i + 1 < limit
            && self.tok(i + 1).cap_word()
            && !self.tok(i + 1).is(shape::INITIAL)
            && (i == 0 || !self.tok(i - 1).is(shape::INITIAL))
        {
            return Some((None, Some(i), i + 1));
        }
        let mut k = i;
        // Country prefix: `US`, `Colombian`.
        if (t.has(flag::DEMONYM) || self.is_country(i)) && i + 1 < limit {
            k = i + 1;
        }
        k = self
            .next_non_modifier
            .find(k, limit, &self.doc.budget, |k| {
                !self.tok(k).has(flag::TITLE_MOD) || self.is_title_word(k)
            });
        // Title phrase, longest first.
        let max = if k < limit {
            self.phrase_span(k).min(limit - k)
        } else {
            0
        };
        for n in (2..=max).rev() {
            self.key.clear();
            join_folded(self.doc, k, k + n, &mut self.key);
            if self.gaz.phrase(&self.key) == Some(Phrase::Title) {
                return Some((Some((i, k + n)), None, k + n));
            }
        }
        if k < limit && self.is_title_word(k) {
            let mut end = k + 1;
            // `Lt. Gov.`, `Vice President`.
            while end < limit && self.is_title_word(end) && !self.tok(end).has(flag::ORG_END) {
                end += 1;
            }
            return Some((Some((i, end)), None, end));
        }
        None
    }

    pub(super) fn is_country(&self, i: usize) -> bool {
        let t = self.tok(i);
        if !t.cap_word() {
            return false;
        }
        let key = self.doc.fold(i);
        self.gaz.place(key).first().is_some_and(|e| {
            matches!(
                e.kind,
                crate::extract::gazetteer::PlaceKind::Country
                    | crate::extract::gazetteer::PlaceKind::FormerCountry
            )
        })
    }

    /// A lower-case title right before the chunk: `ex-president`, `head of state`.
    pub(super) fn lower_role_before(&mut self, a: usize) -> Option<(usize, usize)> {
        let para = self.tok(a).para;
        let lower = |s: &Self, k: usize| {
            let t = s.tok(k);
            t.kind == Kind::Word && !t.is(shape::CAP) && t.para == para
        };
        for n in (1..=4usize).rev() {
            if a < n || !(a - n..a).all(|k| lower(self, k)) {
                continue;
            }
            let start = a - n;
            let ok = if n == 1 {
                self.is_title_word(start) && !self.tok(start).has(flag::STOP)
            } else if self.phrase_span(start) < n {
                false
            } else {
                self.key.clear();
                join_folded(self.doc, start, a, &mut self.key);
                self.gaz.phrase(&self.key) == Some(Phrase::Title)
            };
            if ok {
                let mut s = start;
                while s > 0 && lower(self, s - 1) && self.tok(s - 1).has(flag::TITLE_MOD) {
                    s -= 1;
                }
                if s > 0 && self.tok(s - 1).cap_word() && self.tok(s - 1).has(flag::DEMONYM) {
                    s -= 1;
                }
                return Some((s, a));
            }
        }
        None
    }
}
