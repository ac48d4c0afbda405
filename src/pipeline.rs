//! The pipeline: stages wired with bounded channels, and the commit protocol.
//!
//! ```text
//! watch ──Candidate──▶ dispatcher ──JoinHandle (in arrival order)──▶ orderer ──Outcome──▶ committer
//!          (bounded)     │ spawn_blocking: read → parse → extract        (bounded)     dedupe → sink → state
//!                        └ up to `workers` files in flight
//! ```
//!
//! Parse and extract run on the blocking pool, several files at once; the orderer
//! awaits their results in arrival order, so dedupe sees each article's versions in
//! the order they landed. Every channel is bounded: a slow sink stops the orderer,
//! which stops the dispatcher, which stops the watcher (backpressure; memory stays flat).
//!
//! # Commit protocol
//!
//! The committer takes batches (up to `output.batch_records` outcomes, or what
//! arrived within `output.batch_ms`) and for each batch:
//!
//! 1. judges every parsed version against the state plus the batch so far
//!    ([`crate::dedupe`]);
//! 2. appends the batch's reject lines to the rejects file, then its records to the
//!    output, each with one write of whole lines followed by fsync;
//! 3. commits to the state, in one transaction, the new article versions, the
//!    processed files (path, size, mtime, SHA-256; any outcome), and the output
//!    positions reached in step 2.
//!
//! The output is therefore never behind the state. After a crash, on start,
//! [`Sink::recover`] returns the complete lines past the committed position: they are
//! *adopted* into the state (their versions and files count as done), and only an
//! incomplete last line is cut. Lines a reader may already have read are never
//! rewritten. Files whose outcome was a duplicate or stale version and did not reach
//! the commit are simply processed again, with the same outcome and no output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::dedupe::{mtime_ns, Dedupe, FileEntry, StateError, Store, Verdict};
use crate::error::{Reject, RejectKind};
pub use crate::health::Health;
use crate::metrics::Metrics;
use crate::parse::{self, OpenError, ParseOptions};
use crate::record::Record;
use crate::sink::{FileSink, Sink, SinkError, StdoutSink};
use crate::watch::{self as watcher, Candidate, WatchOptions};

/// Errors that stop the daemon from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::error::ConfigError),
    /// The state store.
    #[error(transparent)]
    State(#[from] StateError),
    /// An output.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The watcher.
    #[error(transparent)]
    Watch(#[from] watcher::WatchError),
    /// A task died.
    #[error("internal error: {0}")]
    Internal(String),
    /// Asked to stop while a batch could not be committed.
    #[error("stopped with a batch not committed ({0}); what was not committed is recovered at the next start")]
    Uncommitted(#[source] Box<PipelineError>),
}

/// What the readers made of one candidate file.
#[derive(Debug)]
pub enum Outcome {
    /// A record to judge.
    Parsed {
        /// The record.
        record: Box<Record>,
        /// Key of the file in the state.
        file: (Vec<u8>, FileEntry),
        /// When the watcher handed it over.
        noticed: Instant,
    },
    /// A file that cannot be an article.
    Rejected {
        /// The path.
        path: PathBuf,
        /// Why.
        reject: Reject,
        /// Key of the file in the state (none when it vanished).
        file: Option<(Vec<u8>, FileEntry)>,
    },
    /// Already processed with the same content.
    Unchanged {
        /// Refreshed key when only the mtime moved.
        refresh: Option<(Vec<u8>, FileEntry)>,
    },
    /// Not read because of a transient error when the daemon stopped: no outcome
    /// is recorded, so the next start reads the file.
    Deferred {
        /// The path.
        path: PathBuf,
        /// The last transient error.
        reason: String,
    },
}

impl Outcome {
    /// The state key of the file this outcome is about, if any.
    pub fn file_key(&self) -> Option<(&[u8], &FileEntry)> {
        match self {
            Outcome::Parsed { file, .. } => Some((&file.0, &file.1)),
            Outcome::Rejected { file: Some(f), .. } => Some((&f.0, &f.1)),
            _ => None,
        }
    }
}

/// One line of the rejects file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectLine {
    /// Path of the file (lossy UTF-8).
    pub path: String,
    /// Raw path bytes in hex, when the name is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// Kind and message.
    pub error: RejectError,
    /// File size when seen.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Modification time (RFC 3339, UTC) when seen.
    #[serde(default)]
    pub modified: Option<String>,
    /// SHA-256 of the content, when it was read.
    #[serde(default)]
    pub sha256: Option<String>,
    /// When it was rejected.
    pub rejected_at: String,
}

/// The `error` object of a reject line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectError {
    /// Stable kind.
    pub kind: RejectKind,
    /// Message for a person.
    pub message: String,
}

fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

fn path_from(path: &str, hex_path: Option<&str>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    match hex_path.and_then(|h| hex::decode(h).ok()) {
        Some(b) => PathBuf::from(std::ffi::OsString::from_vec(b)),
        None => PathBuf::from(path),
    }
}

fn ts_ns(t: Option<&str>) -> i128 {
    t.and_then(|s| s.parse::<Timestamp>().ok())
        .map_or(0, |t| t.as_nanosecond())
}

/// Everything a reader needs.
#[derive(Debug, Clone)]
pub struct ReaderContext {
    /// Parser settings.
    pub opts: ParseOptions,
    /// The state (read-only here).
    pub store: Arc<Store>,
    /// The watched folder (symlinks must stay inside).
    pub root: PathBuf,
    /// How long to wait for a file that changes while it is read.
    pub settle: Duration,
    /// Turns true when the daemon stops: transient errors are no longer retried.
    pub stop: watch::Receiver<bool>,
}

/// Reads, parses and enriches one candidate. Runs on the blocking pool.
///
/// A transient error (descriptors or memory used up, a full disk, an interrupted
/// call) is retried with backoff, never recorded as the file's outcome; when the
/// daemon stops meanwhile the file is left for the next start
/// ([`Outcome::Deferred`]).
pub fn examine(path: &Path, ctx: &ReaderContext) -> Outcome {
    let mut backoff = Duration::from_millis(50);
    loop {
        match examine_once(path, ctx) {
            Ok(outcome) => return outcome,
            Err(e) => {
                if *ctx.stop.borrow() {
                    return Outcome::Deferred {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    };
                }
                tracing::warn!(path = %path.display(), error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot read the file for now; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One attempt of [`examine`]; `Err` is a transient error to retry.
fn examine_once(path: &Path, ctx: &ReaderContext) -> Result<Outcome, std::io::Error> {
    let rejected = |reject: Reject, file: Option<(Vec<u8>, FileEntry)>| Outcome::Rejected {
        path: path.to_owned(),
        reject,
        file,
    };
    let key = path_bytes(path);
    let entry_of = |m: &std::fs::Metadata, sha: Option<String>| FileEntry {
        size: m.len(),
        mtime_ns: mtime_ns(m),
        sha256: sha,
    };
    // One open, confined to the watched folder; everything after asks the
    // descriptor, never the name again.
    let file = match parse::open_beneath(&ctx.root, path) {
        Ok(f) => f,
        Err(OpenError::Transient(e)) => return Err(e),
        Err(OpenError::Reject(r)) => {
            // Remembered (so not retried until it changes) unless it is gone.
            let entry = match r.kind {
                RejectKind::NotFound => None,
                _ => std::fs::symlink_metadata(path)
                    .ok()
                    .map(|m| (key, entry_of(&m, None))),
            };
            return Ok(rejected(r, entry));
        }
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) if parse::open::is_transient(&e) => return Err(e),
        Err(e) => return Ok(rejected(Reject::from_io(&e, "stat the file"), None)),
    };
    let known = match ctx.store.file(&key) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "state read failed; processing the file again");
            None
        }
    };
    if let Some(k) = &known {
        if k.size == meta.len() && k.mtime_ns == mtime_ns(&meta) {
            return Ok(Outcome::Unchanged { refresh: None });
        }
    }
    if !meta.is_file() {
        return match parse::read_opened(&file, path, &ctx.opts.limits) {
            Err(OpenError::Transient(e)) => Err(e),
            Err(OpenError::Reject(r)) => Ok(rejected(r, Some((key, entry_of(&meta, None))))),
            Ok(_) => Ok(rejected(
                Reject::new(RejectKind::NotAFile, "not a regular file"),
                Some((key, entry_of(&meta, None))),
            )),
        };
    }
    // A file another process still has open for writing is not read yet: wait for
    // the writer to close it (bounded: 20 settle periods), then read anyway.
    for _ in 0..20 {
        if !parse::open::open_for_writing_elsewhere(&file) {
            break;
        }
        std::thread::sleep(ctx.settle);
    }
    // Read; if the file changed while being read (a writer still at work), wait for
    // it to settle and read again, a few times at most.
    let mut meta = meta;
    let mut tries = 0;
    let source = loop {
        let source = match parse::read_opened(&file, path, &ctx.opts.limits) {
            Ok(f) => f,
            Err(OpenError::Transient(e)) => return Err(e),
            Err(OpenError::Reject(r)) => {
                return Ok(rejected(r, Some((key, entry_of(&meta, None)))));
            }
        };
        match file.metadata() {
            Ok(after)
                if (after.len(), mtime_ns(&after)) != (meta.len(), mtime_ns(&meta))
                    && tries < 5 =>
            {
                tries += 1;
                meta = after;
                std::thread::sleep(ctx.settle);
            }
            _ => break source,
        }
    };
    Ok(match parse::parse(&source, None, &ctx.opts) {
        Ok(mut record) => {
            let entry = entry_of(&meta, Some(record.source.sha256.clone()));
            if known.as_ref().and_then(|k| k.sha256.as_deref())
                == Some(record.source.sha256.as_str())
            {
                return Ok(Outcome::Unchanged {
                    refresh: Some((key, entry)),
                });
            }
            if let Err(reject) = enrich_within(&mut record, &ctx.opts) {
                return Ok(rejected(reject, Some((key, entry))));
            }
            Outcome::Parsed {
                record: Box::new(record),
                file: (key, entry),
                noticed: Instant::now(),
            }
        }
        Err(r) => {
            use sha2::Digest;
            let sha = hex::encode(sha2::Sha256::digest(&source.bytes));
            if known.as_ref().and_then(|k| k.sha256.as_deref()) == Some(sha.as_str()) {
                return Ok(Outcome::Unchanged {
                    refresh: Some((key, entry_of(&meta, Some(sha)))),
                });
            }
            rejected(r, Some((key, entry_of(&meta, Some(sha)))))
        }
    })
}

/// The extract stage, with no time limit.
pub fn enrich(record: &mut Record) {
    crate::extract::extract(record);
}

/// The extract stage as the readers and `check` apply it after parsing: held to
/// `opts.max_extract` (`parse.max_extract_ms`), past which the file is a `too_slow`
/// reject and the record is not used.
pub fn enrich_within(record: &mut Record, opts: &ParseOptions) -> Result<(), Reject> {
    let xopts = crate::extract::ExtractOptions::default();
    crate::extract::extract_within(record, &xopts, Some(opts.max_extract)).map_err(|e| {
        Reject::new(
            RejectKind::TooSlow,
            format!(
                "{e} (parse.max_extract_ms): not processed, and not retried until the file changes; raise the limit if real articles take this long"
            ),
        )
    })
}

/// Reads, parses and enriches one file: what `check` prints and what the daemon's
/// readers produce (before dedupe).
pub fn build_record(
    path: &Path,
    reference: Option<Timestamp>,
    opts: &ParseOptions,
) -> Result<Record, Reject> {
    let file = parse::read_file(path, &opts.limits)?;
    let mut record = parse::parse(&file, reference, opts)?;
    enrich_within(&mut record, opts)?;
    Ok(record)
}

/// What the HTTP endpoints and the signal handlers share with the pipeline.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Liveness of the stages.
    pub health: Arc<Health>,
    /// Emitted records, for live subscribers (`GET /events`). Sending never waits.
    pub events: tokio::sync::broadcast::Sender<Arc<Event>>,
    /// Settings that SIGHUP may change: parse options and batch sizes.
    pub reload: watch::Receiver<Arc<Config>>,
}

impl Shared {
    /// A context for a pipeline that nobody else watches (tests, `--once`).
    pub fn new(cfg: &Config) -> (Shared, watch::Sender<Arc<Config>>) {
        let (tx, rx) = watch::channel(Arc::new(cfg.clone()));
        let shared = Shared {
            metrics: Metrics::shared(),
            health: Arc::new(Health::default()),
            events: tokio::sync::broadcast::channel(1024).0,
            reload: rx,
        };
        (shared, tx)
    }
}

/// One emitted record, for live subscribers. The chunks sent to them are built
/// once and shared by every subscriber.
#[derive(Debug)]
pub struct Event {
    /// The JSON line as written to the output, with its newline (the NDJSON chunk).
    ndjson: bytes::Bytes,
    /// The server-sent event chunk, built for the first subscriber that wants it.
    sse: std::sync::OnceLock<bytes::Bytes>,
    /// The same record as a JSON value, for filters.
    pub value: serde_json::Value,
}

impl Event {
    /// An event for the JSON line `line` (without its newline) of the record `value`.
    pub fn new(line: String, value: serde_json::Value) -> Event {
        let mut ndjson = line.into_bytes();
        ndjson.push(b'\n');
        Event {
            ndjson: ndjson.into(),
            sse: std::sync::OnceLock::new(),
            value,
        }
    }

    /// The JSON line, without its newline.
    pub fn line(&self) -> &str {
        let line = self.ndjson.strip_suffix(b"\n").unwrap_or(&self.ndjson);
        std::str::from_utf8(line).unwrap_or_default()
    }

    /// The NDJSON chunk: the line and its newline.
    pub fn ndjson(&self) -> bytes::Bytes {
        self.ndjson.clone()
    }

    /// The server-sent event chunk: `event: record`, `data: <line>`, a blank line.
    pub fn sse(&self) -> bytes::Bytes {
        self.sse
            .get_or_init(|| format!("event: record\ndata: {}\n\n", self.line()).into())
            .clone()
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
}

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
        let lines = outputs.records.recover(store.committed("output")?)?;
        let mut adopted = 0;
        for line in &lines {
            match serde_json::from_str::<Record>(line) {
                Ok(r) => {
                    dedupe.adopt(&r, now)?;
                    dedupe.remember_content(&r.source.sha256, now);
                    let path = path_from(&r.source.path, r.source.path_hex.as_deref());
                    let entry = FileEntry {
                        size: r.source.bytes,
                        mtime_ns: ts_ns(r.source.modified.as_deref()),
                        sha256: Some(r.source.sha256.clone()),
                    };
                    dedupe.pending_mut().files.push((path_bytes(&path), entry));
                    adopted += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "output line past the committed point is not a record; left as is")
                }
            }
        }
        let rlines = outputs.rejects.recover(store.committed("rejects")?)?;
        for line in &rlines {
            if let Ok(r) = serde_json::from_str::<RejectLine>(line) {
                if let Some(size) = r.bytes {
                    let path = path_from(&r.path, r.path_hex.as_deref());
                    let entry = FileEntry {
                        size,
                        mtime_ns: ts_ns(r.modified.as_deref()),
                        sha256: r.sha256.clone(),
                    };
                    dedupe.pending_mut().files.push((path_bytes(&path), entry));
                }
            }
        }
        if adopted > 0 || !rlines.is_empty() {
            tracing::info!(
                records = adopted,
                rejects = rlines.len(),
                "adopted lines written before a crash"
            );
        }
        // Record where the outputs stand now (also after a torn tail was cut).
        let pos = outputs.records.append(&[])?;
        dedupe.pending_mut().output = Some(pos);
        let rpos = outputs.rejects.append(&[])?;
        dedupe.pending_mut().rejects = Some(rpos);
        dedupe.commit()?;
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
    /// sink error that retrying cannot clear ([`SinkError::is_fatal`]: a closed
    /// stdout) is returned at once.
    pub fn process(&mut self, batch: Vec<Outcome>, stop: &Stop) -> Result<(), PipelineError> {
        let now_ts = Timestamp::now();
        let now = now_ts.as_second();
        let mut out = Vec::with_capacity(batch.len() * 4096);
        let mut rej = Vec::new();
        // Counted once the batch is committed, so the metrics reflect durable outcomes.
        let (mut emitted, mut updates, mut duplicates, mut stale, mut unchanged) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut rejected_kinds = Vec::new();
        let mut noticed_emitted = Vec::new();
        let mut events = Vec::new();
        let live = self.shared.events.receiver_count() > 0;
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
                        None
                    } else {
                        self.dedupe.remember_content(&record.source.sha256, now);
                        Some(self.dedupe.judge(&mut record, now)?)
                    };
                    match verdict {
                        None => {}
                        Some(Verdict::Emit { revision, .. }) => {
                            let start = out.len();
                            serde_json::to_writer(&mut out, &record).map_err(|e| {
                                PipelineError::Internal(format!("serialize record: {e}"))
                            })?;
                            if live {
                                let line = String::from_utf8_lossy(&out[start..]).into_owned();
                                let value = serde_json::to_value(&*record).unwrap_or_default();
                                events.push(Event::new(line, value));
                            }
                            out.push(b'\n');
                            noticed_emitted.push(noticed);
                            emitted += 1;
                            if revision > 1 {
                                updates += 1;
                            }
                        }
                        Some(Verdict::Duplicate) => {
                            tracing::info!(path = %record.source.path, id = %record.article_id, "duplicate: same stamp as the newest emitted version; dropped");
                            duplicates += 1;
                        }
                        Some(Verdict::Stale) => {
                            tracing::info!(path = %record.source.path, id = %record.article_id, "stale: older than the newest emitted version; dropped");
                            stale += 1;
                        }
                    }
                    self.dedupe.pending_mut().files.push(file);
                }
                Outcome::Rejected { path, reject, file } => {
                    let (p, hex_path) = parse::path_strings(&path);
                    tracing::info!(path = %p, kind = %reject.kind, "rejected: {}", reject.message);
                    rejected_kinds.push(reject.kind);
                    let line = RejectLine {
                        path: p,
                        path_hex: hex_path,
                        error: RejectError {
                            kind: reject.kind,
                            message: reject.message,
                        },
                        bytes: file.as_ref().map(|f| f.1.size),
                        modified: file
                            .as_ref()
                            .and_then(|f| Timestamp::from_nanosecond(f.1.mtime_ns).ok())
                            .map(|t| t.to_string()),
                        sha256: file.as_ref().and_then(|f| f.1.sha256.clone()),
                        rejected_at: now_ts.to_string(),
                    };
                    serde_json::to_writer(&mut rej, &line)
                        .map_err(|e| PipelineError::Internal(format!("serialize reject: {e}")))?;
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
        let mut backoff = Duration::from_millis(50);
        let (mut rej_done, mut out_done) = (rej.is_empty(), out.is_empty());
        loop {
            let step = (|| -> Result<(), PipelineError> {
                if !rej_done {
                    let pos = self.outputs.rejects.append(&rej)?;
                    self.dedupe.pending_mut().rejects = Some(pos);
                    rej_done = true;
                }
                if !out_done {
                    let pos = self.outputs.records.append(&out)?;
                    self.dedupe.pending_mut().output = Some(pos);
                    out_done = true;
                }
                self.dedupe.commit()?;
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
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot commit a batch; not taking new files until it succeeds");
                    // A stop request cuts the wait short: one last try, then give up.
                    let until = Instant::now() + backoff;
                    while !stop.requested() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if let Ok(mut g) = self.shared.health.sink_error.lock() {
            *g = None;
        }
        for n in noticed_emitted {
            self.metrics.latency.observe(n.elapsed().as_secs_f64());
        }
        for e in events {
            // No subscriber, or a lagging one: never waits.
            let _ = self.shared.events.send(Arc::new(e));
        }
        self.metrics.duplicates.inc_by(duplicates);
        self.metrics.stale.inc_by(stale);
        self.metrics.unchanged.inc_by(unchanged);
        for k in rejected_kinds {
            self.metrics.reject(k);
        }
        self.metrics.emitted.inc_by(emitted);
        self.metrics.updates.inc_by(updates);
        self.metrics.output_bytes.inc_by(out.len() as u64);
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

/// How the daemon was asked to stop.
#[derive(Debug, Clone)]
pub struct Stop {
    /// Turns true on the first SIGINT/SIGTERM: stop taking files, drain, commit; a
    /// commit that fails from then on is not retried.
    pub graceful: watch::Receiver<bool>,
    /// Turns true on a second signal: stop at once.
    pub now: Arc<std::sync::atomic::AtomicBool>,
}

impl Stop {
    /// True once a stop was asked for (either signal).
    pub fn requested(&self) -> bool {
        *self.graceful.borrow() || self.now.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Runs the pipeline until the watcher finishes (`once`) or `stop` fires.
pub async fn run(
    cfg: &Config,
    once: bool,
    stop: Stop,
    shared: Shared,
) -> Result<(), PipelineError> {
    let metrics = shared.metrics.clone();
    // Readers take read leases (see `parse::open`): a writer opening a file then
    // must not end the process with SIGIO.
    parse::open::ignore_lease_breaks();
    let opts = cfg.parse_options(None)?;
    let mut wopts = WatchOptions::from_config(&cfg.watch)?;
    let store = Arc::new(Store::open(
        &cfg.state.dir,
        cfg.state.cache_mib.max(1) << 20,
    )?);
    wopts.known = Some(store.clone());
    let mut ledger = None;
    let records: Box<dyn Sink> = if cfg.sink.kind == crate::nats::SinkKind::Nats {
        // Connecting waits for the cluster; a stop request meanwhile ends it (nothing
        // was taken yet, so nothing is left undone).
        let mut graceful = stop.graceful.clone();
        let (sink, l) = tokio::select! {
            opened = crate::nats::open(cfg, shared.health.clone()) => opened?,
            _ = graceful.wait_for(|s| *s) => {
                tracing::info!("stopped while connecting to NATS");
                return Ok(());
            }
        };
        ledger = l;
        sink
    } else if cfg.output.path == "-" {
        Box::new(StdoutSink::default())
    } else {
        Box::new(
            FileSink::open(Path::new(&cfg.output.path))?
                .with_rotation(crate::sink::Rotation::from_config(&cfg.output)),
        )
    };
    let rejects: Box<dyn Sink> = Box::new(FileSink::open(&cfg.output.rejects)?);
    // They exist now: resolve them, so the watcher never takes them as input.
    let records_file = (cfg.sink.kind == crate::nats::SinkKind::File && cfg.output.path != "-")
        .then(|| Path::new(&cfg.output.path));
    wopts.own = crate::sink::OwnFiles::new(records_file, &cfg.output.rejects, &cfg.state.dir);
    let mut committer = Committer::start(
        store.clone(),
        Outputs { records, rejects },
        shared.clone(),
        cfg.state.expire_days,
    )?;
    committer.refresh_state_metrics();
    if let Some(l) = ledger {
        committer.set_ledger(l);
    }
    // Forget files that left the folder, so the state stays the size of the folder.
    let root = wopts.root.clone();
    let gone = store.retain_files(|k| {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(k));
        !p.starts_with(&root) || std::fs::symlink_metadata(p).is_ok()
    })?;
    if gone > 0 {
        tracing::debug!(files = gone, "forgot files no longer in the watched folder");
    }

    let workers = cfg.pipeline.worker_count();
    let cap = cfg.pipeline.channel_capacity;
    let (cand_tx, mut cand_rx) = mpsc::channel::<Candidate>(cap);
    let (job_tx, mut job_rx) = mpsc::channel::<tokio::task::JoinHandle<Outcome>>(workers * 2);
    let (out_tx, mut out_rx) = mpsc::channel::<Outcome>(cap);
    metrics.probe_channel("watch", &cand_tx);
    metrics.probe_channel("read", &job_tx);
    metrics.probe_channel("commit", &out_tx);

    let health = shared.health.clone();
    health
        .watcher_alive
        .store(true, std::sync::atomic::Ordering::Relaxed);
    health
        .committer_alive
        .store(true, std::sync::atomic::Ordering::Relaxed);
    health
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let watch_task = {
        let health = health.clone();
        let fut = watcher::run(
            wopts.clone(),
            cand_tx,
            once,
            stop.graceful.clone(),
            metrics.clone(),
        );
        tokio::spawn(async move {
            let r = fut.await;
            health
                .watcher_alive
                .store(false, std::sync::atomic::Ordering::Relaxed);
            r
        })
    };

    let base = ReaderContext {
        opts,
        store: store.clone(),
        root: wopts.root.clone(),
        settle: wopts.settle,
        stop: stop.graceful.clone(),
    };
    let mut reload = shared.reload.clone();
    let dispatcher = {
        tokio::spawn(async move {
            let mut ctx = Arc::new(base);
            while let Some(c) = cand_rx.recv().await {
                if reload.has_changed().unwrap_or(false) {
                    let cfg = reload.borrow_and_update().clone();
                    match cfg.parse_options(None) {
                        Ok(opts) => {
                            let mut next = (*ctx).clone();
                            next.opts = opts;
                            ctx = Arc::new(next);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "reloaded parse settings are invalid; keeping the old ones")
                        }
                    }
                }
                let ctx = ctx.clone();
                let h = tokio::task::spawn_blocking(move || {
                    let mut o = examine(&c.path, &ctx);
                    if let Outcome::Parsed { noticed, .. } = &mut o {
                        *noticed = c.noticed;
                    }
                    o
                });
                if job_tx.send(h).await.is_err() {
                    break;
                }
            }
        })
    };
    let orderer = {
        tokio::spawn(async move {
            while let Some(h) = job_rx.recv().await {
                match h.await {
                    Ok(o) => {
                        if out_tx.send(o).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "a reader task failed"),
                }
            }
        })
    };

    let mut committer = Some(committer);
    let mut result = Ok(());
    let mut last_state_refresh = Instant::now();
    let reload = shared.reload.clone();
    'outer: loop {
        let Some(first) = out_rx.recv().await else {
            break;
        };
        let (batch_max, batch_wait) = {
            let c = reload.borrow();
            (
                c.output.batch_records,
                Duration::from_millis(c.output.batch_ms),
            )
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + batch_wait;
        while batch.len() < batch_max {
            match out_rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, out_rx.recv()).await {
                        Ok(Some(o)) => batch.push(o),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        health.backlog.store(
            batch.len() + out_rx.len(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let Some(mut c) = committer.take() else {
            break;
        };
        let stop = stop.clone();
        let refresh = last_state_refresh.elapsed() > Duration::from_secs(5);
        if refresh {
            last_state_refresh = Instant::now();
        }
        let joined = tokio::task::spawn_blocking(move || {
            let r = c.process(batch, &stop);
            if refresh {
                c.refresh_state_metrics();
            }
            (c, r)
        })
        .await;
        health
            .backlog
            .store(out_rx.len(), std::sync::atomic::Ordering::Relaxed);
        match joined {
            Ok((c, r)) => {
                committer = Some(c);
                if let Err(e) = r {
                    result = Err(e);
                    break 'outer;
                }
            }
            Err(e) => {
                result = Err(PipelineError::Internal(format!("committer failed: {e}")));
                break 'outer;
            }
        }
    }
    health
        .committer_alive
        .store(false, std::sync::atomic::Ordering::Relaxed);
    if let Some(c) = &committer {
        c.refresh_state_metrics();
    }
    if result.is_err() {
        // The committer gave up: the watcher may be idle, waiting for events.
        watch_task.abort();
    }
    drop(out_rx);
    let _ = orderer.await;
    let _ = dispatcher.await;
    let watched = watch_task.await;
    result?;
    match watched {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(PipelineError::Internal(format!("watcher failed: {e}"))),
    }
}
