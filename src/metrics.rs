//! Counters every stage reports: files seen, outcomes, rescans, bytes written.
//!
//! Plain atomics, cheap enough for the hot path; the summary line of `run --once`
//! and the periodic log line read them.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::RejectKind;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// All counters of one daemon.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Paths the watcher handed to the readers.
    pub files_seen: Counter,
    /// Records written to the output.
    pub emitted: Counter,
    /// Of those, revisions after the first.
    pub updates: Counter,
    /// Versions dropped because an emitted one has the same stamp.
    pub duplicates: Counter,
    /// Versions dropped because an emitted one is newer.
    pub stale: Counter,
    /// Files already processed with the same content (skipped).
    pub unchanged: Counter,
    /// Files rejected, by kind (index = position in [`RejectKind::ALL`]).
    pub rejected: [Counter; RejectKind::ALL.len()],
    /// Full rescans of the watched folder (overflow, folder recreated).
    pub rescans: Counter,
    /// Bytes appended to the output.
    pub output_bytes: Counter,
    /// Batches committed.
    pub commits: Counter,
    /// Unix milliseconds of the last commit.
    pub last_commit_ms: Gauge,
}

impl Metrics {
    /// Counts a rejection.
    pub fn reject(&self, kind: RejectKind) {
        if let Some(i) = RejectKind::ALL.iter().position(|k| *k == kind) {
            self.rejected[i].inc();
        }
    }

    /// Total rejections.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(Counter::get).sum()
    }

    /// The one-line summary printed by `run --once`.
    pub fn summary(&self) -> String {
        format!(
            "{} files seen: {} emitted ({} updates), {} duplicates, {} stale, {} rejected, {} unchanged",
            self.files_seen.get(),
            self.emitted.get(),
            self.updates.get(),
            self.duplicates.get(),
            self.stale.get(),
            self.rejected_total(),
            self.unchanged.get()
        )
    }
}
