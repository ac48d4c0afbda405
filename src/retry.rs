//! The one backoff every retry loop uses: waits that double from a first delay up to
//! a cap (transient read errors, failed commits, NATS requests and publishes).

use std::time::Duration;

/// Exponential backoff: [`Backoff::wait`] gives the wait before the next attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Waits of `first`, then twice as long each time, at most `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            next: first.min(max),
            max,
        }
    }

    /// The wait before the next attempt (the next one is twice as long, up to the cap).
    pub fn wait(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_millis(300));
        let waits: Vec<u128> = (0..5).map(|_| b.wait().as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 300, 300]);
    }
}
