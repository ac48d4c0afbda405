//! The service manager's side of the daemon: `sd_notify` readiness, status,
//! watchdog and stop notices for a `Type=notify` unit (`config/wirewatch.service`).
//!
//! Nothing happens unless systemd (or another supervisor speaking the protocol) set
//! `NOTIFY_SOCKET`. Then:
//! - `READY=1` once the state is recovered, the stages run and the first scan has
//!   listed the watched folder ([`Health::started`]); `STATUS=` says what the
//!   start-up is doing until then, and the counters every few seconds after;
//! - `WATCHDOG=1` every half `WatchdogSec=`, but only while the committer beats
//!   ([`Health::beat`]): a committer stuck for the whole watchdog period (a hung
//!   disk, a deadlock) stops the feeding, and systemd restarts the service;
//! - `STOPPING=1` when a stop is asked for.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::health::Health;
use crate::metrics::Metrics;

/// How often `STATUS=` is refreshed once ready.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// Starts the notifier when a service manager listens (`NOTIFY_SOCKET` is set);
/// `None` otherwise. It ends when `stop` turns true, after sending `STOPPING=1`.
pub fn spawn(
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    std::env::var_os("NOTIFY_SOCKET")?;
    let watchdog = sd_notify::watchdog_enabled();
    if let Some(w) = watchdog {
        let every = (w / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        health.beat_every_ms.store(
            u64::try_from(every.as_millis()).unwrap_or(1000),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    Some(tokio::spawn(notifier(health, metrics, stop, watchdog)))
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}

async fn notifier(
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    watchdog: Option<Duration>,
) {
    // Feed at half the period, as sd_watchdog_enabled(3) advises; check readiness
    // and the stop request at least every 100 ms.
    let feed_every = watchdog.map(|w| (w / 2).max(Duration::from_millis(1)));
    let tick_every = feed_every.map_or(Duration::from_millis(100), |f| {
        f.min(Duration::from_millis(100))
    });
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ready = false;
    let mut last_feed = tokio::time::Instant::now();
    let mut last_status = tokio::time::Instant::now();
    let mut warned = false;
    send(&[NotifyState::Status(
        "starting: opening and recovering the state",
    )]);
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    send(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing and committing the files in flight")]);
                    return;
                }
            }
            _ = tick.tick() => {}
        }
        if !ready && health.started() {
            ready = true;
            send(&[
                NotifyState::Ready,
                NotifyState::Status(&format!("running: {}", metrics.summary())),
            ]);
            last_status = tokio::time::Instant::now();
        } else if !ready {
            let phase = health
                .starting
                .lock()
                .ok()
                .and_then(|g| g.clone())
                .unwrap_or_else(|| "listing the watched folder".to_owned());
            if last_status.elapsed() >= Duration::from_secs(1) {
                send(&[NotifyState::Status(&format!("starting: {phase}"))]);
                last_status = tokio::time::Instant::now();
            }
        } else if last_status.elapsed() >= STATUS_EVERY {
            send(&[NotifyState::Status(&format!(
                "running: {}",
                metrics.summary()
            ))]);
            last_status = tokio::time::Instant::now();
        }
        let (Some(period), Some(feed)) = (watchdog, feed_every) else {
            continue;
        };
        if last_feed.elapsed() < feed {
            continue;
        }
        // Before the committer's first beat (opening the state) the start-up
        // counts as alive: TimeoutStartSec= bounds it, not the watchdog.
        let silent = health.since_beat();
        if !ready || silent < period / 2 {
            send(&[NotifyState::Watchdog]);
            last_feed = tokio::time::Instant::now();
            warned = false;
        } else if !warned {
            warned = true;
            tracing::error!(
                silent_ms = silent.as_millis() as u64,
                "the committer has not beaten for half the watchdog period; no longer feeding the systemd watchdog"
            );
        }
    }
}
