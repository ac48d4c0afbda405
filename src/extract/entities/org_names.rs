//! Organization names by their form: `X of Y`, a keyword at the end (`State
//! Department`) with its `of`/`on`/`for` tail; and multi-word gazetteer places.

use super::join_folded;
use super::OrgScan;
use super::Scanner;
use crate::extract::lexicon::flag;
use crate::extract::tokens::shape;

impl Scanner<'_, '_> {
    /// Whether an organization starts at `i` (used to let `General Assembly` through).
    pub(super) fn starts_org(&self, i: usize, limit: usize) -> bool {
        self.org_end(i, limit).is_some()
    }

    pub(super) fn org_at(&self, i: usize, limit: usize) -> Option<usize> {
        self.org_end(i, limit)
    }

    pub(super) fn org_end(&self, i: usize, limit: usize) -> Option<usize> {
        let t = self.tok(i);
        if t.has(flag::HONORIFIC) || t.is(shape::INITIAL) {
            return None;
        }
        let title_then_name =
            |k: usize| self.is_title_word(k) && self.name_like_after(k + 1, limit);
        // `University of Georgia`, `Organization of American States`.
        if t.has(flag::ORG_START) && i + 2 < limit && self.doc.is_word(i + 1, "of") {
            let mut end =
                self.next_title_name
                    .find(i + 2, limit, &self.doc.budget, title_then_name);
            while end > i + 2 && !self.tok(end - 1).cap_word() {
                end -= 1;
            }
            if self.tok(end - 1).cap_word() {
                return Some(end);
            }
        }
        // `State Department`, `Fulton Superior Court`: up to the last keyword.
        let k = self.org_keywords(i, limit)?;
        // `Committee of Ten`, `Bank of America`, `Commission on Civil Rights`: keep the
        // `of X` (`on X`, `for X`) tail.
        // Never a date: `the Grand Jury on Friday`.
        let dated = k + 2 < limit && self.tok(k + 2).has(flag::MONTH | flag::WEEKDAY);
        let tail = (self.tok(k).has(flag::ORG_START) && self.doc.is_word(k + 1, "of"))
            || ((self.doc.is_word(k + 1, "on") || self.doc.is_word(k + 1, "for")) && !dated);
        if tail && k + 2 < limit {
            let mut end =
                self.next_title_name_tail
                    .find(k + 2, limit, &self.doc.budget, title_then_name);
            while end > k + 2 && !self.tok(end - 1).cap_word() {
                end -= 1;
            }
            return Some(end);
        }
        Some(k + 1)
    }

    /// The last organization keyword after `i` before the scan stops (at a title
    /// word that is not a keyword, followed by a name, or at `limit`). The stop and
    /// the last keyword before it are remembered: they answer every later `i` up to
    /// the stop.
    pub(super) fn org_keywords(&self, i: usize, limit: usize) -> Option<usize> {
        // A singular possessive ends the name: `Salvation Army's Social Center`
        // (not `Baseball Writers' Association`).
        let stops = |k: usize| {
            (k > i
                && self.tok(k - 1).is(shape::POSS)
                && !self.doc.text(k - 1).ends_with(['s', 'S']))
                || self.is_title_word(k)
                    && !self.tok(k).has(flag::ORG_END)
                    && self.name_like_after(k + 1, limit)
        };
        let keyword = |k: usize| {
            let tk = self.tok(k);
            tk.cap_word() && tk.has(flag::ORG_END)
        };
        let last = match self.org_scan.get() {
            Some(s) if s.limit == limit && s.from <= i && i <= s.stop => {
                self.doc.budget.spend(1);
                s.last
            }
            _ => {
                let mut k = i;
                let mut last = None;
                while k < limit && !stops(k) {
                    if keyword(k) {
                        last = Some(k);
                    }
                    k += 1;
                }
                self.doc.budget.spend(k - i + 1);
                self.org_scan.set(Some(OrgScan {
                    from: i,
                    limit,
                    stop: k,
                    last,
                }));
                last
            }
        };
        last.filter(|&k| k > i)
    }

    /// Longest multi-word gazetteer place at `i` (sets `self.key`).
    pub(super) fn place_at(&mut self, i: usize, limit: usize) -> Option<usize> {
        let max = if self.tok(i).has(flag::MULTI_PLACE_START) {
            self.gaz.place_span(self.doc.fold(i)).min(limit - i)
        } else {
            0
        };
        for n in (2..=max).rev() {
            if !self.tok(i + n - 1).cap_word() {
                continue;
            }
            self.key.clear();
            join_folded(self.doc, i, i + n, &mut self.key);
            if !self.gaz.place(&self.key).is_empty() {
                return Some(i + n);
            }
        }
        None
    }
}
