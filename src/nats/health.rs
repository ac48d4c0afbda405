//! What the NATS side tells `/health` ([`Health`]), through a
//! [`Reporter`]:
//!
//! * the connection, from the client's events: losing it, or failing to connect,
//!   sets `nats_connection` ("lost the connection to the NATS cluster at URLS;
//!   reconnecting", "cannot connect to the NATS cluster at URLS: …"); connecting
//!   clears it. An idle daemon thus turns unhealthy as soon as the cluster goes
//!   away, and healthy again once it is back.
//! * requests: every failed request (a publish or its acknowledgement, a read or
//!   write of the dedupe bucket, setting up the stream or the bucket) sets
//!   `nats_request` to what failed and why; the next request that succeeds clears
//!   it.
//! * while the daemon starts, `starting` reads "connecting to NATS at URLS" until
//!   the stream (and the bucket) are ready.
//!
//! A daemon's reporter also carries the NATS sink's metrics: the connection events
//! set `wirewatch_nats_connected`, and the sink counts through it.

use std::fmt::Display;
use std::sync::{Arc, Mutex};

use crate::health::Health;
use crate::metrics::NatsMetrics;

use crate::config::nats::NatsConfig;

/// Reports NATS trouble to a [`Health`]; does nothing when made with `default()`
/// (tools and tests that have no `/health`).
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    health: Option<Arc<Health>>,
    urls: String,
    metrics: Option<NatsMetrics>,
}

fn set(slot: &Mutex<Option<String>>, value: Option<String>) {
    if let Ok(mut g) = slot.lock() {
        *g = value;
    }
}

impl Reporter {
    /// A reporter for the cluster of `cfg`.
    pub fn new(health: Arc<Health>, cfg: &NatsConfig) -> Reporter {
        Reporter {
            health: Some(health),
            urls: cfg.urls.join(","),
            metrics: None,
        }
    }

    /// Also sets and counts `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Option<NatsMetrics>) -> Reporter {
        self.metrics = metrics;
        self
    }

    /// The NATS sink's metrics, when the daemon exposes them.
    pub(crate) fn metrics(&self) -> Option<&NatsMetrics> {
        self.metrics.as_ref()
    }

    /// Sets the connection gauge.
    pub(crate) fn set_connected(&self, connected: bool) {
        if let Some(m) = &self.metrics {
            m.connected.set(i64::from(connected));
        }
    }

    /// The servers, as written in `[nats] urls`.
    pub fn urls(&self) -> &str {
        &self.urls
    }

    /// Sets (or, with `None`, clears) what the start-up is doing.
    pub fn starting(&self, phase: Option<String>) {
        if let Some(h) = &self.health {
            set(&h.starting, phase);
        }
    }

    /// A request failed: `what` failed with `error`.
    pub fn failed(&self, what: &str, error: impl Display) {
        if let Some(h) = &self.health {
            set(&h.nats_request, Some(format!("{what} failed: {error}")));
        }
    }

    /// A request succeeded: clears the last failure.
    pub fn succeeded(&self) {
        if let Some(h) = &self.health {
            set(&h.nats_request, None);
        }
    }

    /// Follows a client event (see the module docs).
    pub fn event(&self, event: &async_nats::Event) {
        match event {
            async_nats::Event::Connected => self.set_connected(true),
            async_nats::Event::Disconnected | async_nats::Event::Closed => {
                self.set_connected(false)
            }
            _ => {}
        }
        let Some(h) = &self.health else {
            return;
        };
        let urls = &self.urls;
        match event {
            async_nats::Event::Connected => set(&h.nats_connection, None),
            async_nats::Event::Disconnected => set(
                &h.nats_connection,
                Some(format!(
                    "lost the connection to the NATS cluster at {urls}; reconnecting"
                )),
            ),
            async_nats::Event::ClientError(e) => set(
                &h.nats_connection,
                Some(format!(
                    "cannot connect to the NATS cluster at {urls}: {e}; retrying"
                )),
            ),
            async_nats::Event::Closed => set(
                &h.nats_connection,
                Some(format!(
                    "the connection to the NATS cluster at {urls} is closed"
                )),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_requests_reach_health() {
        let health = Arc::new(Health::default());
        let cfg = NatsConfig {
            urls: vec!["nats://a:1".into(), "nats://b:2".into()],
            ..NatsConfig::default()
        };
        let r = Reporter::new(health.clone(), &cfg);
        let reasons = || health.check(0.0, 0.0, 30.0).unwrap_err();
        r.starting(Some(format!("connecting to NATS at {}", r.urls())));
        assert_eq!(
            reasons(),
            vec!["starting: connecting to NATS at nats://a:1,nats://b:2"]
        );
        r.failed("creating or reading the stream", "timed out");
        assert_eq!(
            reasons()[1],
            "NATS: creating or reading the stream failed: timed out"
        );
        r.starting(None);
        r.succeeded();
        assert_eq!(
            reasons(),
            vec!["starting: opening and recovering the state"]
        );
        use std::sync::atomic::Ordering::Relaxed;
        health.ready.store(true, Relaxed);
        health.watcher_alive.store(true, Relaxed);
        health.committer_alive.store(true, Relaxed);
        assert!(health.check(0.0, 0.0, 30.0).is_ok());
        r.event(&async_nats::Event::Disconnected);
        assert_eq!(
            reasons(),
            vec!["NATS: lost the connection to the NATS cluster at nats://a:1,nats://b:2; reconnecting"]
        );
        r.event(&async_nats::Event::Connected);
        assert!(health.check(0.0, 0.0, 30.0).is_ok());
        // The connection gauge follows the same events.
        let r = r.with_metrics(Some(NatsMetrics::default()));
        let connected = || r.metrics().map(|m| m.connected.get());
        assert_eq!(connected(), Some(0));
        r.event(&async_nats::Event::Connected);
        assert_eq!(connected(), Some(1));
        r.event(&async_nats::Event::Disconnected);
        assert_eq!(connected(), Some(0));
        // Without a Health, nothing happens.
        Reporter::default().failed("x", "y");
    }
}
