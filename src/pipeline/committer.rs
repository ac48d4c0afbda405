//! The committer: batches of outcomes judged, written and committed in the order of
//! the commit protocol ([`Committer`]), and crash recovery on start.

use super::{Event, EventKind, Outcome, PipelineError, Position, RejectLine, Shared, Stop};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::dedupe::{Dedupe, FileEntry, Store, Verdict};
use crate::metrics::Metrics;
use crate::record::Record;
use crate::sink::{Committed, Sink};

/// Adopted lines committed to the state at a time during recovery, so that
/// adopting a whole output (a state moved aside) takes bounded memory.
const ADOPT_BATCH: usize = 1024;

/// Adopts the complete lines past the committed positions of both outputs into the
/// state: records as emitted versions and their files, reject lines as their files.
/// Commits every [`ADOPT_BATCH`] lines without moving the committed positions, so a
/// crash in the middle adopts the same lines again at the next start (adopting a
/// version the state already holds changes nothing). Returns (records, rejects).
fn adopt(
    store: &Store,
    outputs: &mut Outputs,
    dedupe: &mut Dedupe,
    now: i64,
) -> Result<(usize, usize), PipelineError> {
    let mut failed: Option<PipelineError> = None;
    let mut pending = 0;
    let mut step = |dedupe: &mut Dedupe, failed: &mut Option<PipelineError>| {
        pending += 1;
        if pending >= ADOPT_BATCH {
            pending = 0;
            if let Err(e) = dedupe.commit() {
                *failed = Some(e.into());
                return false;
            }
        }
        true
    };
    let mut records = 0;
    outputs.records.recover(store.committed("output")?, &mut |line| {
        match serde_json::from_str::<Record>(line) {
            Ok(r) => {
                if let Err(e) = dedupe.adopt(&r, now) {
                    failed = Some(e.into());
                    return false;
                }
                dedupe.remember_content(&r.source.sha256, now);
                let path = crate::paths::from_strings(&r.source.path, r.source.path_hex.as_deref());
                let entry = FileEntry {
                    size: r.source.bytes,
                    mtime_ns: super::rejects::ts_ns(r.source.modified.as_deref()),
                    sha256: Some(r.source.sha256.clone()),
                };
                dedupe
                    .pending_mut()
                    .files
                    .push((crate::paths::to_bytes(&path).to_vec(), entry));
                records += 1;
                step(dedupe, &mut failed)
            }
            Err(e) => {
                tracing::error!(error = %e, "output line past the committed point is not a record; left as is");
                true
            }
        }
    })?;
    if let Some(e) = failed.take() {
        return Err(e);
    }
    let mut rejects = 0;
    outputs
        .rejects
        .recover(store.committed("rejects")?, &mut |line| {
            rejects += 1;
            let Ok(r) = serde_json::from_str::<RejectLine>(line) else {
                return true;
            };
            let Some(size) = r.bytes else {
                return true;
            };
            let path = crate::paths::from_strings(&r.path, r.path_hex.as_deref());
            let entry = FileEntry {
                size,
                mtime_ns: super::rejects::ts_ns(r.modified.as_deref()),
                sha256: r.sha256.clone(),
            };
            dedupe
                .pending_mut()
                .files
                .push((crate::paths::to_bytes(&path).to_vec(), entry));
            step(dedupe, &mut failed)
        })?;
    match failed {
        Some(e) => Err(e),
        None => Ok((records, rejects)),
    }
}

/// The outputs the committer writes to.
pub struct Outputs {
    /// Records.
    pub records: Box<dyn Sink>,
    /// Rejects.
    pub rejects: Box<dyn Sink>,
}

/// The committer: dedupe, sinks and state, driven one batch at a time.
pub struct Committer {
    dedupe: Dedupe,
    outputs: Outputs,
    metrics: Arc<Metrics>,
    shared: Shared,
    last_expiry: Instant,
    expire_after: i64,
    /// The output bytes of the last batch, kept for the next one so that its pages
    /// are not given back and faulted in again at every batch.
    out_buf: Vec<u8>,
}

/// Output buffer capacity kept between batches, at most: a batch of huge records
/// does not pin its memory for the daemon's life.
const KEEP_OUT_BYTES: usize = 4 << 20;

impl Committer {
    /// Builds a committer and recovers from a crash: adopts complete output lines
    /// past the committed positions and cuts a torn last line.
    pub fn start(
        store: Arc<Store>,
        mut outputs: Outputs,
        shared: Shared,
        expire_days: u32,
    ) -> Result<Committer, PipelineError> {
        let metrics = shared.metrics.clone();
        let mut dedupe = Dedupe::new(store.clone());
        let now = Timestamp::now().as_second();
        let (adopted, rejects) = adopt(&store, &mut outputs, &mut dedupe, now)?;
        if adopted > 0 || rejects > 0 {
            tracing::info!(
                records = adopted,
                rejects,
                "adopted lines written before a crash"
            );
        }
        // Record where the outputs stand now (also after a torn tail was cut).
        let pos = outputs.records.append(&[])?;
        dedupe.pending_mut().output = Some(pos);
        let rpos = outputs.rejects.append(&[])?;
        dedupe.pending_mut().rejects = Some(rpos);
        dedupe.commit()?;
        shared.publish(Vec::new(), position(pos, pos.offset), Vec::new);
        let expired = store.expire(now - i64::from(expire_days) * 86_400)?;
        if expired > 0 {
            tracing::info!(articles = expired, "expired articles from the dedupe state");
        }
        Ok(Committer {
            dedupe,
            outputs,
            metrics,
            shared,
            last_expiry: Instant::now(),
            expire_after: i64::from(expire_days) * 86_400,
            out_buf: Vec::new(),
        })
    }

    /// Rotates the records output when its policy says so, after a commit: every
    /// line of the old file is already in the state, so a crash at any point of the
    /// rotation loses and doubles nothing.
    fn rotate(&mut self) -> Result<(), PipelineError> {
        if let Some(pos) = self.outputs.records.rotate_if_due()? {
            self.dedupe.pending_mut().output = Some(pos);
            self.dedupe.commit()?;
        }
        Ok(())
    }

    /// Refreshes the state gauges (articles, files, database size).
    pub fn refresh_state_metrics(&self) {
        if let Ok((a, f)) = self.dedupe.store().counts() {
            self.metrics
                .state_articles
                .set(i64::try_from(a).unwrap_or(i64::MAX));
            self.metrics
                .state_files
                .set(i64::try_from(f).unwrap_or(i64::MAX));
        }
        if let Ok(m) = std::fs::metadata(self.dedupe.store().path()) {
            self.metrics
                .state_bytes
                .set(i64::try_from(m.len()).unwrap_or(i64::MAX));
        }
    }

    /// Judges against a cluster-wide ledger instead of the local store.
    pub fn set_ledger(&mut self, ledger: Box<dyn crate::dedupe::Ledger>) {
        self.dedupe.set_ledger(ledger);
    }

    /// True when this exact file version (path, size, mtime, content) was already
    /// handled, in this batch or a committed one.
    fn already_done(&self, key: &[u8], entry: &FileEntry) -> Result<bool, PipelineError> {
        let pending = self.dedupe.pending_files_contains(key, entry);
        Ok(pending || self.dedupe.store().file(key)?.as_ref() == Some(entry))
    }

    /// Judges, writes and commits one batch. Retries I/O errors with backoff (the
    /// state database is closed and opened again before a retry, see
    /// [`crate::dedupe::store`]) until they clear or the daemon is asked to stop (then
    /// the batch is left uncommitted, [`PipelineError::Uncommitted`]: its lines already
    /// in the output are adopted at the next start, the rest is processed again). A
    /// sink error that retrying cannot clear (`SinkError::is_fatal`: a closed
    /// stdout) is returned at once.
    pub fn process(&mut self, batch: Vec<Outcome>, stop: &Stop) -> Result<(), PipelineError> {
        // Test-only (builds with `fault-injection`): a committer that hangs for
        // good, as on a dead disk, for the watchdog test.
        #[cfg(feature = "fault-injection")]
        if std::env::var_os("WIREWATCH_FAULT").is_some_and(|v| v == "hang_commit") {
            tracing::warn!("test fault hook: the committer hangs");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        let now_ts = Timestamp::now();
        let now = now_ts.as_second();
        let mut out = std::mem::take(&mut self.out_buf);
        out.clear();
        out.reserve(batch.len() * 4096);
        let mut rej = Vec::new();
        // Counted once the batch is committed, so the metrics reflect durable outcomes.
        let (mut emitted, mut updates, mut duplicates, mut stale, mut unchanged) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut rejected_kinds = Vec::new();
        let mut noticed_emitted = Vec::new();
        let mut events = Vec::new();
        // End offset (past its newline) of each record in `out`, in order.
        let mut ends = Vec::new();
        let live = self.shared.events.receiver_count() > 0;
        self.metrics.batch_files.observe(batch.len() as f64);
        for mut o in batch {
            // The same file can be handed over twice (a rescan racing an event): the
            // second time, it is already known.
            if let Some((key, entry)) = o.file_key() {
                if self.already_done(key, entry)? {
                    o = Outcome::Unchanged { refresh: None };
                }
            }
            match o {
                Outcome::Parsed {
                    mut record,
                    file,
                    noticed,
                } => {
                    // The same bytes judged before (another name, another day) are
                    // a duplicate whatever their stamps resolve to now.
                    let seen = self.dedupe.content_seen(&record.source.sha256)?;
                    let verdict = if seen {
                        tracing::info!(path = %record.source.path, sha256 = %record.source.sha256, "duplicate: the same bytes were already processed; dropped");
                        duplicates += 1;
                        if live {
                            events.push(dropped(
                                &record,
                                EventKind::Duplicate,
                                "the same bytes were already processed",
                            ));
                        }
                        None
                    } else {
                        self.dedupe.remember_content(&record.source.sha256, now);
                        Some(self.dedupe.judge(&mut record, now)?)
                    };
                    match verdict {
                        None => {}
                        Some(Verdict::Emit { revision, .. }) => {
                            // Final: nothing changes the record after this line.
                            record.emitted_at = Some(crate::record::format_utc(Timestamp::now()));
                            let start = out.len();
                            serde_json::to_writer(&mut out, &record).map_err(|source| {
                                PipelineError::Serialize {
                                    what: "record",
                                    source,
                                }
                            })?;
                            if live {
                                let line = String::from_utf8_lossy(&out[start..]).into_owned();
                                events.push(Event::new(line));
                            }
                            out.push(b'\n');
                            ends.push(out.len());
                            noticed_emitted.push(noticed);
                            emitted += 1;
                            if revision > 1 {
                                updates += 1;
                            }
                        }
                        Some(Verdict::Duplicate) => {
                            tracing::info!(path = %record.source.path, id = %record.article_id, "duplicate: same stamp as the newest emitted version; dropped");
                            duplicates += 1;
                            if live {
                                events.push(dropped(
                                    &record,
                                    EventKind::Duplicate,
                                    "same stamp as the newest emitted version",
                                ));
                            }
                        }
                        Some(Verdict::Stale) => {
                            tracing::info!(path = %record.source.path, id = %record.article_id, "stale: older than the newest emitted version; dropped");
                            stale += 1;
                            if live {
                                events.push(dropped(
                                    &record,
                                    EventKind::Stale,
                                    "older than the newest emitted version",
                                ));
                            }
                        }
                    }
                    self.dedupe.pending_mut().files.push(file);
                }
                Outcome::Rejected { path, reject, file } => {
                    tracing::info!(path = %path.display(), kind = %reject.kind, "rejected: {}", reject.message);
                    rejected_kinds.push(reject.kind);
                    if live {
                        events.push(Event::outcome(
                            EventKind::Rejected,
                            serde_json::json!({
                                "path": path.to_string_lossy(),
                                "kind": reject.kind.to_string(),
                                "reason": reject.message,
                            }),
                            None,
                        ));
                    }
                    let line = RejectLine::new(&path, reject, file.as_ref().map(|f| &f.1), now_ts);
                    serde_json::to_writer(&mut rej, &line).map_err(|source| {
                        PipelineError::Serialize {
                            what: "reject line",
                            source,
                        }
                    })?;
                    rej.push(b'\n');
                    if let Some(f) = file {
                        self.dedupe.pending_mut().files.push(f);
                    }
                }
                Outcome::Unchanged { refresh } => {
                    unchanged += 1;
                    if let Some(f) = refresh {
                        self.dedupe.pending_mut().files.push(f);
                    }
                }
                Outcome::Deferred { path, reason } => {
                    tracing::warn!(path = %path.display(), error = %reason, "stopping before the file could be read; it is read at the next start");
                }
            }
        }
        // Write rejects, then records, then the state; retry what fails.
        let mut backoff =
            crate::retry::Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let (mut rej_done, mut out_done) = (rej.is_empty(), out.is_empty());
        let mut out_pos = None;
        loop {
            let step = (|| -> Result<(), PipelineError> {
                if !(rej_done && out_done) {
                    let t = Instant::now();
                    if !rej_done {
                        let pos = self.outputs.rejects.append(&rej)?;
                        self.dedupe.pending_mut().rejects = Some(pos);
                        rej_done = true;
                    }
                    if !out_done {
                        let pos = self.outputs.records.append(&out)?;
                        self.dedupe.pending_mut().output = Some(pos);
                        out_pos = Some(pos);
                        out_done = true;
                    }
                    self.metrics.output_sync.observe(t.elapsed().as_secs_f64());
                }
                let t = Instant::now();
                self.dedupe.commit()?;
                self.metrics.state_commit.observe(t.elapsed().as_secs_f64());
                Ok(())
            })();
            match step {
                Ok(()) => break,
                Err(e) => {
                    if let Ok(mut g) = self.shared.health.sink_error.lock() {
                        *g = Some(e.to_string());
                    }
                    if matches!(&e, PipelineError::Sink(s) if s.is_fatal()) {
                        return Err(e);
                    }
                    if stop.requested() {
                        return Err(PipelineError::Uncommitted(Box::new(e)));
                    }
                    let wait = backoff.wait();
                    tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot commit a batch; not taking new files until it succeeds");
                    // A stop request cuts the wait short: one last try, then give up.
                    let until = Instant::now() + wait;
                    while !stop.requested() && Instant::now() < until {
                        // Waiting on purpose is alive: the watchdog is fed.
                        self.shared.health.beat();
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
        if let Ok(mut g) = self.shared.health.sink_error.lock() {
            *g = None;
        }
        for n in noticed_emitted {
            self.metrics.latency.observe(n.elapsed().as_secs_f64());
        }
        // The batch's records sit in the output just before its end.
        let start = out_pos.map_or(0, |p| p.offset.saturating_sub(out.len() as u64));
        let mut record_ends = ends.iter();
        for e in events.iter_mut().filter(|e| e.kind == EventKind::Record) {
            if let (Some(pos), Some(&end)) = (out_pos, record_ends.next()) {
                e.id = position(pos, start + end as u64);
            }
        }
        let late = || late_events(&out, &ends, out_pos, start);
        self.shared
            .publish(events, out_pos.and_then(|p| position(p, p.offset)), late);
        self.metrics.duplicates.inc_by(duplicates);
        self.metrics.stale.inc_by(stale);
        self.metrics.unchanged.inc_by(unchanged);
        for k in rejected_kinds {
            self.metrics.reject(k);
        }
        self.metrics.emitted.inc_by(emitted);
        self.metrics.updates.inc_by(updates);
        self.metrics.output_bytes.inc_by(out.len() as u64);
        if out.capacity() <= KEEP_OUT_BYTES {
            self.out_buf = out;
        }
        self.metrics.commits.inc();
        self.metrics
            .last_commit
            .set(Timestamp::now().as_millisecond() as f64 / 1000.0);
        self.rotate()?;
        if self.last_expiry.elapsed() > Duration::from_secs(3600) {
            self.last_expiry = Instant::now();
            // Not worth stopping for (a full disk): tried again in an hour.
            match self.dedupe.store().expire(now - self.expire_after) {
                Ok(0) => {}
                Ok(n) => tracing::info!(articles = n, "expired articles from the dedupe state"),
                Err(e) if e.is_io() => {
                    tracing::warn!(error = %e, "cannot expire old articles now; trying again later")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The position `offset` in the file of `pos` (none without a file: stdout, NATS).
fn position(pos: Committed, offset: u64) -> Option<Position> {
    pos.identity.map(|(dev, ino)| Position { dev, ino, offset })
}

/// The event of a version dropped as a duplicate or stale.
fn dropped(record: &Record, kind: EventKind, reason: &str) -> Event {
    Event::outcome(
        kind,
        serde_json::json!({
            "path": record.source.path,
            "article_id": record.article_id,
            "reason": reason,
        }),
        Some(serde_json::to_value(record).unwrap_or_default()),
    )
}

/// The record events of a batch judged while nobody listened, from the lines it
/// wrote (`ends`: each line's end in `out`; `start`: where `out` begins in the file).
fn late_events(out: &[u8], ends: &[usize], pos: Option<Committed>, start: u64) -> Vec<Event> {
    let mut from = 0;
    let mut events = Vec::with_capacity(ends.len());
    for &end in ends {
        let line = &out[from..end.saturating_sub(1).max(from)];
        from = end;
        let mut e = Event::new(String::from_utf8_lossy(line).into_owned());
        e.id = pos.and_then(|p| position(p, start + end as u64));
        events.push(e);
    }
    events
}
