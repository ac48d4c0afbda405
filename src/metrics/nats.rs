//! The NATS sink's metrics ([`NatsMetrics`]): publish latency, retries, errors by
//! kind, duplicates the stream dropped, and the connection state. Registered only
//! when the sink is NATS; every series is there (at 0) from the start.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Why a publish to the stream failed (the `kind` label of
/// `wirewatch_nats_publish_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsErrorKind {
    /// No acknowledgement within the request time-out (no leader, server away).
    Timeout,
    /// The connection was lost while sending.
    BrokenPipe,
    /// No stream listens on the subject.
    StreamNotFound,
    /// The stream refused the message's fence (`Nats-Expected-Last-Subject-Sequence`);
    /// the sink reads the subject and decides again.
    WrongLastSequence,
    /// Too many acknowledgements outstanding.
    MaxAckPending,
    /// Anything else (including a failed read of the subject after a refused fence).
    Other,
    /// A batch not acknowledged before the sink gave up (the committer retries it).
    GaveUp,
}

impl NatsErrorKind {
    /// Every kind, in label order.
    pub const ALL: [NatsErrorKind; 7] = [
        NatsErrorKind::Timeout,
        NatsErrorKind::BrokenPipe,
        NatsErrorKind::StreamNotFound,
        NatsErrorKind::WrongLastSequence,
        NatsErrorKind::MaxAckPending,
        NatsErrorKind::Other,
        NatsErrorKind::GaveUp,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            NatsErrorKind::Timeout => "timeout",
            NatsErrorKind::BrokenPipe => "broken_pipe",
            NatsErrorKind::StreamNotFound => "stream_not_found",
            NatsErrorKind::WrongLastSequence => "wrong_last_sequence",
            NatsErrorKind::MaxAckPending => "max_ack_pending",
            NatsErrorKind::Other => "other",
            NatsErrorKind::GaveUp => "gave_up",
        }
    }
}

/// Label set of `wirewatch_nats_publish_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    kind: String,
}

/// The NATS sink's metrics, shared by cloning.
#[derive(Debug, Clone)]
pub struct NatsMetrics {
    /// Seconds from sending a batch to the stream to every message of it
    /// acknowledged (retries included).
    pub publish_seconds: Histogram,
    /// Messages sent again after a failed publish or acknowledgement.
    pub retries: Counter,
    errors: Family<ErrorLabel, Counter>,
    /// Messages the stream acknowledged as duplicates (already stored: a
    /// re-publish after a crash or a retry).
    pub duplicates: Counter,
    /// 1 while the client is connected to the cluster, else 0.
    pub connected: Gauge,
}

impl Default for NatsMetrics {
    fn default() -> Self {
        let errors = Family::<ErrorLabel, Counter>::default();
        for k in NatsErrorKind::ALL {
            drop(errors.get_or_create(&ErrorLabel {
                kind: k.as_str().to_owned(),
            }));
        }
        NatsMetrics {
            // 1 ms … ~32 s
            publish_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            retries: Counter::default(),
            errors,
            duplicates: Counter::default(),
            connected: Gauge::default(),
        }
    }
}

impl NatsMetrics {
    /// Counts a failed publish.
    pub fn error(&self, kind: NatsErrorKind) {
        self.errors
            .get_or_create(&ErrorLabel {
                kind: kind.as_str().to_owned(),
            })
            .inc();
    }

    /// Failed publishes of `kind` so far.
    pub fn errors(&self, kind: NatsErrorKind) -> u64 {
        self.errors
            .get_or_create(&ErrorLabel {
                kind: kind.as_str().to_owned(),
            })
            .get()
    }

    /// Registers every metric in `r` (which adds the `wirewatch_` prefix).
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "nats_publish_seconds",
            "Seconds from sending a batch to the NATS stream to all of it acknowledged",
            self.publish_seconds.clone(),
        );
        r.register(
            "nats_publish_retries",
            "Messages sent to the NATS stream again after a failure",
            self.retries.clone(),
        );
        r.register(
            "nats_publish_errors",
            "Failed publishes to the NATS stream, by kind",
            self.errors.clone(),
        );
        r.register(
            "nats_duplicates",
            "Messages the NATS stream acknowledged as already stored",
            self.duplicates.clone(),
        );
        r.register(
            "nats_connected",
            "1 while connected to the NATS cluster, else 0",
            self.connected.clone(),
        );
    }
}
