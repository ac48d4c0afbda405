//! Remembered forward searches, for passes that ask "where is the next token of this
//! kind" from positions that only move forward: each token is tested about once,
//! however many positions ask.

use std::cell::Cell;

use super::budget::Budget;

/// The answer to the last search: the first token at or after `from`, before `limit`,
/// that passed the test (`limit` when none did). It answers any later search from a
/// position between `from` and that token, with the same limit.
#[derive(Debug, Default)]
pub(crate) struct NextFrom {
    last: Cell<Option<(usize, usize, usize)>>,
}

impl NextFrom {
    /// The first `k` in `from..limit` with `test(k)`, else `limit`. `test` may depend
    /// on `limit` but on nothing else that changes between calls.
    pub fn find(
        &self,
        from: usize,
        limit: usize,
        budget: &Budget,
        test: impl Fn(usize) -> bool,
    ) -> usize {
        if let Some((f, l, found)) = self.last.get() {
            if l == limit && f <= from && from <= found {
                budget.spend(1);
                return found;
            }
        }
        let mut k = from;
        while k < limit && !test(k) {
            k += 1;
        }
        budget.spend(k.saturating_sub(from) + 1);
        self.last.set(Some((from, limit, k)));
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_a_fresh_search() {
        let marks = [0, 1, 0, 0, 1, 0, 0, 0];
        let next = NextFrom::default();
        let budget = Budget::default();
        for limit in [8, 6, 3] {
            for from in 0..limit {
                let fresh = (from..limit).find(|&k| marks[k] == 1).unwrap_or(limit);
                assert_eq!(next.find(from, limit, &budget, |k| marks[k] == 1), fresh);
            }
        }
    }
}
