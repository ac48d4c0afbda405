//! The extract stage's allowance: a count of the work its passes do, and an optional
//! deadline.
//!
//! Every pass reports its steps (a token looked at, a candidate compared) with
//! [`Budget::spend`]; the clock is read only when another [`CHECK_EVERY`] steps have
//! been spent, so the check costs a counter update per step. Once the deadline has
//! passed, `spend` says so and keeps saying so: the long loops stop at once, and
//! [`super::run_within`] turns the rest of the work into a [`super::TooSlow`] at the
//! next pass boundary. The count itself is what the linearity tests measure: work,
//! not time.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Steps between two readings of the clock.
pub(crate) const CHECK_EVERY: u64 = 4096;

/// Work done so far and the deadline, for one article.
#[derive(Debug)]
pub(crate) struct Budget {
    deadline: Option<Instant>,
    work: Cell<u64>,
    /// The work count at which the clock is read next (0 once over: every call looks).
    next_check: Cell<u64>,
    over: Cell<bool>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(None)
    }
}

impl Budget {
    /// A budget that runs out `limit` from now (never, with `None`).
    pub fn new(limit: Option<Duration>) -> Budget {
        Budget {
            deadline: limit.and_then(|l| Instant::now().checked_add(l)),
            work: Cell::new(0),
            next_check: Cell::new(CHECK_EVERY),
            over: Cell::new(false),
        }
    }

    /// Counts `steps` steps of work; false once the deadline has passed.
    #[inline]
    pub fn spend(&self, steps: usize) -> bool {
        let w = self.work.get().saturating_add(steps as u64);
        self.work.set(w);
        if w < self.next_check.get() {
            return true;
        }
        self.check()
    }

    #[cold]
    fn check(&self) -> bool {
        if self.over.get() {
            return false;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.over.set(true);
            self.next_check.set(0);
            return false;
        }
        self.next_check
            .set(self.work.get().saturating_add(CHECK_EVERY));
        true
    }

    /// Whether the deadline has passed (as last seen by [`Budget::spend`], or now).
    pub fn over(&self) -> bool {
        !self.check()
    }

    /// Steps counted so far.
    pub fn work(&self) -> u64 {
        self.work.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_runs_out() {
        let free = Budget::new(None);
        assert!((0..10_000).all(|_| free.spend(3)));
        assert_eq!(free.work(), 30_000);
        assert!(!free.over());
        let spent = Budget::new(Some(Duration::ZERO));
        // The clock is read within CHECK_EVERY steps, and from then on every step fails.
        assert!(!(0..CHECK_EVERY).all(|_| spent.spend(1)));
        assert!(!spent.spend(1));
        assert!(spent.over());
    }
}
