//! Counters, gauges and histograms every stage reports, and their exposition
//! (`GET /metrics`): the `wirewatch_*` metrics, `wirewatch_build_info`, the NATS
//! sink's (`nats.rs`), the process's (`process.rs`, read from `/proc/self` at each
//! scrape) and the two text formats (`expo.rs`).
//!
//! The values are `prometheus-client` metrics: atomics, cheap on the hot path, shared
//! by cloning. The `run --once` summary line, the periodic log line and the HTTP
//! endpoint all read the same values. Every series exists from the start: each reject
//! kind and each queue stage at 0 ([`Depths`]).

mod expo;
mod nats;
mod process;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::RejectKind;

pub use expo::{encode, Format};
pub use nats::{NatsErrorKind, NatsMetrics};

/// The git commit this binary was built from (12 hex digits), or `unknown`
/// (`build.rs`).
pub const COMMIT: &str = env!("WIREWATCH_COMMIT");

/// What `wirewatch --version` prints after the program name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("WIREWATCH_COMMIT"),
    ")"
);

/// Label set of `wirewatch_rejected_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Reject kind, e.g. `empty`.
    pub kind: String,
}

/// Label set of `wirewatch_queue_depth`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    /// One of [`Depths::STAGES`].
    pub stage: String,
}

/// Label set of `wirewatch_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    commit: String,
}

/// The files waiting in each stage, counted where they are handed on (each gauge
/// is one series of `wirewatch_queue_depth`).
#[derive(Debug, Clone, Default)]
pub struct Depths {
    /// Settled files the current scan found and has not handed over yet.
    pub scan: Gauge,
    /// Files written in place, waiting to be quiet for the settle time.
    pub settle: Gauge,
    /// Files handed over by the watcher that no reader has started on.
    pub watch: Gauge,
    /// Files a reader has started on and not finished.
    pub read: Gauge,
    /// Files read, waiting to be committed or being committed.
    pub commit: Gauge,
}

impl Depths {
    /// The `stage` label values, in pipeline order.
    pub const STAGES: [&'static str; 5] = ["scan", "settle", "watch", "read", "commit"];

    fn of_family(family: &Family<StageLabel, Gauge>) -> Depths {
        let get = |stage: &str| {
            family
                .get_or_create(&StageLabel {
                    stage: stage.to_owned(),
                })
                .clone()
        };
        Depths {
            scan: get("scan"),
            settle: get("settle"),
            watch: get("watch"),
            read: get("read"),
            commit: get("commit"),
        }
    }
}

/// `n` as a gauge value.
pub fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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
    /// Files rejected, by kind (every kind present from the start).
    pub rejected: Family<KindLabel, Counter>,
    /// Full rescans of the watched folder (overflow, folder recreated).
    pub rescans: Counter,
    /// Bytes appended to the output.
    pub output_bytes: Counter,
    /// Batches committed.
    pub commits: Counter,
    /// Unix time (seconds) of the last commit; 0 before the first.
    pub last_commit: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Files waiting in each stage: the series of [`Metrics::depths`].
    queue_depth: Family<StageLabel, Gauge>,
    /// Files waiting in each stage, by stage.
    pub depths: Depths,
    /// Seconds from the watcher noticing a file to its record being durable.
    pub latency: Histogram,
    /// Seconds to append a batch's lines to the outputs and fsync them.
    pub output_sync: Histogram,
    /// Seconds to commit a batch to the state (one redb transaction, `fdatasync`).
    pub state_commit: Histogram,
    /// Files in each committed batch.
    pub batch_files: Histogram,
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
    /// The NATS sink's metrics, when the sink is NATS (exposed only then).
    pub nats: Option<NatsMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        let rejected = Family::<KindLabel, Counter>::default();
        for k in RejectKind::ALL {
            drop(rejected.get_or_create(&KindLabel {
                kind: k.as_str().to_owned(),
            }));
        }
        let queue_depth = Family::default();
        let depths = Depths::of_family(&queue_depth);
        Metrics {
            files_seen: Counter::default(),
            emitted: Counter::default(),
            updates: Counter::default(),
            duplicates: Counter::default(),
            stale: Counter::default(),
            unchanged: Counter::default(),
            rejected,
            rescans: Counter::default(),
            output_bytes: Counter::default(),
            commits: Counter::default(),
            last_commit: Gauge::default(),
            queue_depth,
            depths,
            // 0.5 ms … ~16 s
            latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            // 0.1 ms … ~3 s
            output_sync: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            state_commit: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            // 1 … 4,096
            batch_files: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            state_articles: Gauge::default(),
            state_files: Gauge::default(),
            state_bytes: Gauge::default(),
            events_subscribers: Gauge::default(),
            events_lagged: Counter::default(),
            nats: None,
        }
    }
}

impl Metrics {
    /// A new set, shared.
    pub fn shared() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// A new set for a daemon whose sink is NATS (`nats`: with the NATS sink's
    /// metrics), shared.
    pub fn shared_for(nats: bool) -> Arc<Metrics> {
        Arc::new(Metrics {
            nats: nats.then(NatsMetrics::default),
            ..Metrics::default()
        })
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

    /// A registry exposing every metric: the daemon's under the `wirewatch_`
    /// prefix, the process's (`process_*`) without it.
    pub fn registry(&self) -> Registry {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let r = root.sub_registry_with_prefix("wirewatch");
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                commit: COMMIT.to_owned(),
            })
            .set(1);
        r.register(
            "build_info",
            "The version and git commit of this binary (always 1)",
            build,
        );
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
            "Files waiting in each stage: scan, settle, watch, read, commit",
            self.queue_depth.clone(),
        );
        r.register(
            "watch_to_sink_seconds",
            "Latency from the watcher noticing a file to its record being durable",
            self.latency.clone(),
        );
        r.register(
            "output_sync_seconds",
            "Time to append a batch's lines to the outputs and fsync them",
            self.output_sync.clone(),
        );
        r.register(
            "state_commit_seconds",
            "Time to commit a batch to the state (one transaction, fdatasync)",
            self.state_commit.clone(),
        );
        r.register(
            "batch_files",
            "Files in each committed batch",
            self.batch_files.clone(),
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
        if let Some(n) = &self.nats {
            n.register(r);
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_there_before_the_first_event() {
        let body = encode(&Metrics::shared_for(true).registry(), Format::Prometheus);
        for k in RejectKind::ALL {
            let line = format!("wirewatch_rejected_total{{kind=\"{}\"}} 0\n", k.as_str());
            assert!(body.contains(&line), "{line} missing in:\n{body}");
        }
        for s in Depths::STAGES {
            let line = format!("wirewatch_queue_depth{{stage=\"{s}\"}} 0\n");
            assert!(body.contains(&line), "{line} missing in:\n{body}");
        }
        for name in [
            "wirewatch_nats_connected 0",
            "wirewatch_nats_publish_retries_total 0",
            "wirewatch_nats_duplicates_total 0",
            "wirewatch_nats_publish_seconds_count 0",
            "wirewatch_nats_publish_errors_total{kind=\"timeout\"} 0",
        ] {
            assert!(body.contains(name), "{name} missing in:\n{body}");
        }
        let build = format!(
            "wirewatch_build_info{{version=\"{}\",commit=\"{COMMIT}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(body.contains(&build), "{build} missing in:\n{body}");
        assert!(body.contains("\nprocess_open_fds "), "{body}");
        // Without the NATS sink its metrics are absent.
        let plain = encode(&Metrics::shared().registry(), Format::Prometheus);
        assert!(!plain.contains("wirewatch_nats_"), "{plain}");
    }

    #[test]
    fn depths_are_series_of_one_family() {
        let m = Metrics::default();
        m.depths.watch.inc_by(3);
        m.depths.watch.dec();
        let body = encode(&m.registry(), Format::OpenMetrics);
        assert!(
            body.contains("wirewatch_queue_depth{stage=\"watch\"} 2\n"),
            "{body}"
        );
    }
}
