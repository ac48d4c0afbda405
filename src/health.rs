//! The daemon's liveness, as `GET /health` reports it: what each stage and the NATS
//! client last said, and the verdict drawn from it ([`Health::check`]).

/// Liveness of the stages, read by `GET /health`.
#[derive(Debug, Default)]
pub struct Health {
    /// The watcher task is running.
    pub watcher_alive: std::sync::atomic::AtomicBool,
    /// The committer is running.
    pub committer_alive: std::sync::atomic::AtomicBool,
    /// The last error of a commit that is still being retried.
    pub sink_error: std::sync::Mutex<Option<String>>,
    /// Outcomes waiting for the committer (work in progress).
    pub backlog: std::sync::atomic::AtomicUsize,
    /// The pipeline has recovered its state and started its stages.
    pub ready: std::sync::atomic::AtomicBool,
    /// What the start-up is doing while not ready (none: opening and recovering
    /// the state).
    pub starting: std::sync::Mutex<Option<String>>,
    /// Why the NATS client is not connected, while it is not (see
    /// `nats::health`).
    pub nats_connection: std::sync::Mutex<Option<String>>,
    /// The last NATS request that failed, until a request succeeds.
    pub nats_request: std::sync::Mutex<Option<String>>,
    /// The watcher's first scan has listed the folder (shared with `WatchOptions`).
    pub scanned: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// When the committer last showed it is alive, in ms of `monotonic_ms`; it
    /// beats between batches, at least every second while idle, and while it waits
    /// to retry a commit. The systemd watchdog is fed only while it beats.
    pub committer_beat: std::sync::atomic::AtomicU64,
    /// How often an idle committer beats, in ms (0: every second); the systemd
    /// notifier sets it to a quarter of the watchdog period when that is shorter.
    pub beat_every_ms: std::sync::atomic::AtomicU64,
}

/// Milliseconds on a monotonic clock that starts at the process's first call.
pub fn monotonic_ms() -> u64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(std::time::Instant::now);
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Health {
    /// The committer is alive now.
    pub fn beat(&self) {
        self.committer_beat
            .store(monotonic_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// How often an idle committer beats.
    pub fn beat_every(&self) -> std::time::Duration {
        match self
            .beat_every_ms
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => std::time::Duration::from_secs(1),
            ms => std::time::Duration::from_millis(ms),
        }
    }

    /// How long since the committer last beat.
    pub fn since_beat(&self) -> std::time::Duration {
        let last = self
            .committer_beat
            .load(std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_millis(monotonic_ms().saturating_sub(last))
    }

    /// Ready for systemd: the state is recovered, the stages run, and the first scan
    /// has listed the folder.
    pub fn started(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.ready.load(Ordering::Relaxed) && self.scanned.load(Ordering::Acquire)
    }

    /// `Ok` when healthy, else the reasons. `last_commit` is Unix seconds (0: none);
    /// a backlog that has not been committed for `stall` is unhealthy.
    pub fn check(&self, last_commit: f64, now: f64, stall: f64) -> Result<(), Vec<String>> {
        use std::sync::atomic::Ordering::Relaxed;
        let said = |m: &std::sync::Mutex<Option<String>>| m.lock().ok().and_then(|g| g.clone());
        let nats: Vec<String> = [&self.nats_connection, &self.nats_request]
            .into_iter()
            .filter_map(said)
            .map(|e| format!("NATS: {e}"))
            .collect();
        if !self.ready.load(Relaxed) {
            let phase = said(&self.starting)
                .unwrap_or_else(|| "opening and recovering the state".to_owned());
            return Err(std::iter::once(format!("starting: {phase}"))
                .chain(nats)
                .collect());
        }
        let mut why = Vec::new();
        if !self.watcher_alive.load(Relaxed) {
            why.push("watcher is not running".to_owned());
        }
        if !self.committer_alive.load(Relaxed) {
            why.push("committer is not running".to_owned());
        }
        if let Ok(guard) = self.sink_error.lock() {
            if let Some(e) = guard.as_ref() {
                why.push(format!("cannot commit: {e}"));
            }
        }
        if self.backlog.load(Relaxed) > 0 && last_commit > 0.0 && now - last_commit > stall {
            why.push(format!(
                "work is waiting and nothing was committed for {:.0} s",
                now - last_commit
            ));
        }
        why.extend(nats);
        if why.is_empty() {
            Ok(())
        } else {
            Err(why)
        }
    }
}
