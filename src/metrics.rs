//! Counters, gauges and histograms every stage reports, and their Prometheus
//! exposition (`GET /metrics`).
//!
//! The values are `prometheus-client` metrics: atomics, cheap on the hot path, shared
//! by cloning. The `run --once` summary line, the periodic log line and the HTTP
//! endpoint all read the same values. The queue depths are read from the channels
//! themselves when `/metrics` is scraped ([`Metrics::probe_channel`],
//! [`Metrics::sample_depths`]).

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::RejectKind;

/// Label set of `wirewatch_rejected_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Reject kind, e.g. `empty`.
    pub kind: String,
}

/// Label set of `wirewatch_queue_depth`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    /// `watch` (files the watcher handed over, waiting for a reader), `read` (files
    /// handed to the readers whose outcome the orderer has not taken yet), `commit`
    /// (outcomes waiting for the committer).
    pub stage: String,
}

/// Reads how many items wait in one stage's queue.
type DepthProbe = Box<dyn Fn() -> usize + Send + Sync>;

/// The probes behind `wirewatch_queue_depth`, by stage.
#[derive(Clone, Default)]
struct Probes(Arc<Mutex<Vec<(String, DepthProbe)>>>);

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stages: Vec<String> = self
            .0
            .lock()
            .map(|p| p.iter().map(|(s, _)| s.clone()).collect())
            .unwrap_or_default();
        f.debug_tuple("Probes").field(&stages).finish()
    }
}

/// All metrics of one daemon.
#[derive(Debug, Clone)]
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
    /// Files rejected, by kind.
    pub rejected: Family<KindLabel, Counter>,
    /// Full rescans of the watched folder (overflow, folder recreated).
    pub rescans: Counter,
    /// Bytes appended to the output.
    pub output_bytes: Counter,
    /// Batches committed.
    pub commits: Counter,
    /// Unix time (seconds) of the last commit; 0 before the first.
    pub last_commit: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Items waiting in each stage's queue (set by [`Metrics::sample_depths`]).
    pub queue_depth: Family<StageLabel, Gauge>,
    depth_probes: Probes,
    /// Seconds from the watcher noticing a file to its record being durable.
    pub latency: Histogram,
    /// Articles in the dedupe state.
    pub state_articles: Gauge,
    /// Processed files remembered in the state.
    pub state_files: Gauge,
    /// Size of the state database file, bytes.
    pub state_bytes: Gauge,
    /// Live `/events` subscribers.
    pub events_subscribers: Gauge,
    /// `/events` clients disconnected because they fell behind.
    pub events_lagged: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            files_seen: Counter::default(),
            emitted: Counter::default(),
            updates: Counter::default(),
            duplicates: Counter::default(),
            stale: Counter::default(),
            unchanged: Counter::default(),
            rejected: Family::default(),
            rescans: Counter::default(),
            output_bytes: Counter::default(),
            commits: Counter::default(),
            last_commit: Gauge::default(),
            queue_depth: Family::default(),
            depth_probes: Probes::default(),
            // 0.5 ms … ~16 s
            latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            state_articles: Gauge::default(),
            state_files: Gauge::default(),
            state_bytes: Gauge::default(),
            events_subscribers: Gauge::default(),
            events_lagged: Counter::default(),
        }
    }
}

impl Metrics {
    /// A new set, shared.
    pub fn shared() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counts a rejection.
    pub fn reject(&self, kind: RejectKind) {
        self.rejected
            .get_or_create(&KindLabel {
                kind: kind.as_str().to_owned(),
            })
            .inc();
    }

    /// Total rejections.
    pub fn rejected_total(&self) -> u64 {
        RejectKind::ALL
            .iter()
            .map(|k| {
                self.rejected
                    .get_or_create(&KindLabel {
                        kind: k.as_str().to_owned(),
                    })
                    .get()
            })
            .sum()
    }

    /// Sets a stage's queue depth.
    pub fn set_depth(&self, stage: &str, depth: usize) {
        self.queue_depth
            .get_or_create(&StageLabel {
                stage: stage.to_owned(),
            })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Reports `stage`'s depth as the number of items waiting in the channel `tx`
    /// sends to, read at each [`Metrics::sample_depths`] (0 once every sender is
    /// gone). Holds only a weak sender: the channel still closes when its senders
    /// are dropped. Replaces an earlier probe of the same stage.
    pub fn probe_channel<T: Send + 'static>(&self, stage: &str, tx: &tokio::sync::mpsc::Sender<T>) {
        let weak = tx.downgrade();
        let probe: DepthProbe = Box::new(move || {
            weak.upgrade()
                .map_or(0, |tx| tx.max_capacity() - tx.capacity())
        });
        if let Ok(mut probes) = self.depth_probes.0.lock() {
            probes.retain(|(s, _)| s != stage);
            probes.push((stage.to_owned(), probe));
        }
    }

    /// Sets every probed stage's `queue_depth` from its channel, now.
    pub fn sample_depths(&self) {
        if let Ok(probes) = self.depth_probes.0.lock() {
            for (stage, probe) in probes.iter() {
                self.set_depth(stage, probe());
            }
        }
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

    /// A registry exposing every metric under the `wirewatch_` prefix.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("wirewatch");
        r.register(
            "files_seen",
            "Files handed from the watcher to the readers",
            self.files_seen.clone(),
        );
        r.register(
            "records_emitted",
            "Records written to the output",
            self.emitted.clone(),
        );
        r.register(
            "updates",
            "Emitted records with revision > 1",
            self.updates.clone(),
        );
        r.register(
            "duplicates",
            "Versions dropped: same stamp as the newest emitted",
            self.duplicates.clone(),
        );
        r.register(
            "stale",
            "Versions dropped: older than the newest emitted",
            self.stale.clone(),
        );
        r.register(
            "unchanged",
            "Files skipped: already processed with the same content",
            self.unchanged.clone(),
        );
        r.register("rejected", "Files rejected, by kind", self.rejected.clone());
        r.register(
            "rescans",
            "Full rescans of the watched folder",
            self.rescans.clone(),
        );
        r.register(
            "output_bytes",
            "Bytes appended to the output",
            self.output_bytes.clone(),
        );
        r.register(
            "commits",
            "Batches committed (output durable, state written)",
            self.commits.clone(),
        );
        r.register(
            "last_commit_timestamp_seconds",
            "Unix time of the last commit",
            self.last_commit.clone(),
        );
        r.register(
            "queue_depth",
            "Items waiting in each stage's queue",
            self.queue_depth.clone(),
        );
        r.register(
            "watch_to_sink_seconds",
            "Latency from the watcher noticing a file to its record being durable",
            self.latency.clone(),
        );
        r.register(
            "state_articles",
            "Articles in the dedupe state",
            self.state_articles.clone(),
        );
        r.register(
            "state_files",
            "Processed files remembered in the state",
            self.state_files.clone(),
        );
        r.register(
            "state_bytes",
            "Size of the state database file",
            self.state_bytes.clone(),
        );
        r.register(
            "events_subscribers",
            "Live /events subscribers",
            self.events_subscribers.clone(),
        );
        r.register(
            "events_lagged",
            "/events clients disconnected because they fell behind",
            self.events_lagged.clone(),
        );
        r
    }

    /// Prometheus text exposition of a registry.
    pub fn encode(registry: &Registry) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(m: &Metrics, stage: &str) -> i64 {
        m.queue_depth
            .get_or_create(&StageLabel {
                stage: stage.to_owned(),
            })
            .get()
    }

    #[test]
    fn channel_depths_are_read_when_sampled() {
        let m = Metrics::default();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(8);
        m.probe_channel("watch", &tx);
        m.sample_depths();
        assert_eq!(depth(&m, "watch"), 0);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        m.sample_depths();
        assert_eq!(depth(&m, "watch"), 3);
        rx.try_recv().unwrap();
        m.sample_depths();
        assert_eq!(depth(&m, "watch"), 2);
        // The probe does not keep the channel open.
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert!(rx.try_recv().is_err());
        m.sample_depths();
        assert_eq!(depth(&m, "watch"), 0);
    }
}
