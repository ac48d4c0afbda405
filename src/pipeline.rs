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
use crate::dedupe::{Dedupe, FileEntry, StateError, Store, Verdict};
use crate::error::{Reject, RejectKind};
use crate::metrics::Metrics;
use crate::parse::{self, ParseOptions};
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

fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
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
}

/// Reads, parses and enriches one candidate. Runs on the blocking pool.
pub fn examine(path: &Path, ctx: &ReaderContext) -> Outcome {
    let rejected = |reject: Reject, file: Option<(Vec<u8>, FileEntry)>| Outcome::Rejected {
        path: path.to_owned(),
        reject,
        file,
    };
    let lmeta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return rejected(Reject::from_io(&e, "stat the file"), None),
    };
    let key = path_bytes(path);
    let entry_of = |m: &std::fs::Metadata, sha: Option<String>| FileEntry {
        size: m.len(),
        mtime_ns: mtime_ns(m),
        sha256: sha,
    };
    if lmeta.file_type().is_symlink() {
        match std::fs::canonicalize(path) {
            Ok(target) if target.starts_with(&ctx.root) => {}
            Ok(target) => {
                return rejected(
                    Reject::new(
                        RejectKind::Symlink,
                        format!(
                            "symbolic link to {} outside the watched folder: not followed",
                            target.display()
                        ),
                    ),
                    Some((key, entry_of(&lmeta, None))),
                )
            }
            Err(e) => {
                return rejected(
                    Reject::new(RejectKind::Symlink, format!("dangling symbolic link: {e}")),
                    Some((key, entry_of(&lmeta, None))),
                )
            }
        }
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return rejected(Reject::from_io(&e, "stat the file"), None),
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
            return Outcome::Unchanged { refresh: None };
        }
    }
    if !meta.is_file() {
        return rejected(
            parse::read_file(path, &ctx.opts.limits)
                .err()
                .unwrap_or_else(|| Reject::new(RejectKind::NotAFile, "not a regular file")),
            Some((key, entry_of(&meta, None))),
        );
    }
    // Read; if the file changed while being read (a writer still at work), wait for
    // it to settle and read again, a few times at most.
    let mut meta = meta;
    let mut tries = 0;
    let file = loop {
        let file = match parse::read_file(path, &ctx.opts.limits) {
            Ok(f) => f,
            Err(r) => {
                let gone = matches!(r.kind, RejectKind::NotFound);
                return rejected(r, (!gone).then(|| (key, entry_of(&meta, None))));
            }
        };
        match std::fs::metadata(path) {
            Ok(after)
                if (after.len(), mtime_ns(&after)) != (meta.len(), mtime_ns(&meta))
                    && tries < 5 =>
            {
                tries += 1;
                meta = after;
                std::thread::sleep(ctx.settle);
            }
            _ => break file,
        }
    };
    match parse::parse(&file, None, &ctx.opts) {
        Ok(mut record) => {
            let entry = entry_of(&meta, Some(record.source.sha256.clone()));
            if known.as_ref().and_then(|k| k.sha256.as_deref())
                == Some(record.source.sha256.as_str())
            {
                return Outcome::Unchanged {
                    refresh: Some((key, entry)),
                };
            }
            enrich(&mut record);
            Outcome::Parsed {
                record: Box::new(record),
                file: (key, entry),
                noticed: Instant::now(),
            }
        }
        Err(r) => {
            use sha2::Digest;
            let sha = hex::encode(sha2::Sha256::digest(&file.bytes));
            if known.as_ref().and_then(|k| k.sha256.as_deref()) == Some(sha.as_str()) {
                return Outcome::Unchanged {
                    refresh: Some((key, entry_of(&meta, Some(sha)))),
                };
            }
            rejected(r, Some((key, entry_of(&meta, Some(sha)))))
        }
    }
}

/// The extract stage, applied by the readers after parsing.
fn enrich(_record: &mut Record) {}

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
    last_expiry: Instant,
    expire_after: i64,
}

impl Committer {
    /// Builds a committer and recovers from a crash: adopts complete output lines
    /// past the committed positions and cuts a torn last line.
    pub fn start(
        store: Arc<Store>,
        mut outputs: Outputs,
        metrics: Arc<Metrics>,
        expire_days: u32,
    ) -> Result<Committer, PipelineError> {
        let mut dedupe = Dedupe::new(store.clone());
        let now = Timestamp::now().as_second();
        let lines = outputs.records.recover(store.committed("output")?)?;
        let mut adopted = 0;
        for line in &lines {
            match serde_json::from_str::<Record>(line) {
                Ok(r) => {
                    dedupe.adopt(&r, now)?;
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
            last_expiry: Instant::now(),
            expire_after: i64::from(expire_days) * 86_400,
        })
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

    /// Judges, writes and commits one batch. Retries I/O errors with backoff until
    /// they clear or `stop_now` turns true (then the batch is left uncommitted,
    /// which recovery handles).
    pub fn process(
        &mut self,
        batch: Vec<Outcome>,
        stop_now: &std::sync::atomic::AtomicBool,
    ) -> Result<(), PipelineError> {
        let now_ts = Timestamp::now();
        let now = now_ts.as_second();
        let mut out = Vec::with_capacity(batch.len() * 4096);
        let mut rej = Vec::new();
        let (mut emitted, mut updates) = (0u64, 0u64);
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
                    mut record, file, ..
                } => {
                    let verdict = self.dedupe.judge(&mut record, now)?;
                    match verdict {
                        Verdict::Emit { revision, .. } => {
                            serde_json::to_writer(&mut out, &record).map_err(|e| {
                                PipelineError::Internal(format!("serialize record: {e}"))
                            })?;
                            out.push(b'\n');
                            emitted += 1;
                            if revision > 1 {
                                updates += 1;
                            }
                        }
                        Verdict::Duplicate => {
                            tracing::info!(path = %record.source.path, id = %record.article_id, "duplicate: same stamp as the newest emitted version; dropped");
                            self.metrics.duplicates.inc();
                        }
                        Verdict::Stale => {
                            tracing::info!(path = %record.source.path, id = %record.article_id, "stale: older than the newest emitted version; dropped");
                            self.metrics.stale.inc();
                        }
                    }
                    self.dedupe.pending_mut().files.push(file);
                }
                Outcome::Rejected { path, reject, file } => {
                    let (p, hex_path) = parse::path_strings(&path);
                    tracing::info!(path = %p, kind = %reject.kind, "rejected: {}", reject.message);
                    self.metrics.reject(reject.kind);
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
                    self.metrics.unchanged.inc();
                    if let Some(f) = refresh {
                        self.dedupe.pending_mut().files.push(f);
                    }
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
                    if stop_now.load(std::sync::atomic::Ordering::Relaxed) {
                        return Err(e);
                    }
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot commit a batch; not taking new files until it succeeds");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.metrics.emitted.add(emitted);
        self.metrics.updates.add(updates);
        self.metrics.output_bytes.add(out.len() as u64);
        self.metrics.commits.inc();
        self.metrics
            .last_commit_ms
            .set(u64::try_from(Timestamp::now().as_millisecond()).unwrap_or(0));
        if self.last_expiry.elapsed() > Duration::from_secs(3600) {
            self.last_expiry = Instant::now();
            let n = self.dedupe.store().expire(now - self.expire_after)?;
            if n > 0 {
                tracing::info!(articles = n, "expired articles from the dedupe state");
            }
        }
        Ok(())
    }
}

/// How the daemon was asked to stop.
#[derive(Debug, Clone)]
pub struct Stop {
    /// Turns true on the first SIGINT/SIGTERM: stop taking files, drain, commit.
    pub graceful: watch::Receiver<bool>,
    /// Turns true on a second signal: abandon retries.
    pub now: Arc<std::sync::atomic::AtomicBool>,
}

/// Runs the pipeline until the watcher finishes (`once`) or `stop` fires.
pub async fn run(
    cfg: &Config,
    once: bool,
    stop: Stop,
    metrics: Arc<Metrics>,
) -> Result<(), PipelineError> {
    let opts = cfg.parse_options(None)?;
    let wopts = WatchOptions::from_config(&cfg.watch)?;
    let store = Arc::new(Store::open(&cfg.state.dir, 32 << 20)?);
    let mut ledger = None;
    let records: Box<dyn Sink> = if cfg.sink.kind == crate::nats::SinkKind::Nats {
        let (sink, l) = crate::nats::open(cfg).await?;
        ledger = l;
        sink
    } else if cfg.output.path == "-" {
        Box::new(StdoutSink::default())
    } else {
        Box::new(FileSink::open(Path::new(&cfg.output.path))?)
    };
    let rejects: Box<dyn Sink> = Box::new(FileSink::open(&cfg.output.rejects)?);
    let mut committer = Committer::start(
        store.clone(),
        Outputs { records, rejects },
        metrics.clone(),
        cfg.state.expire_days,
    )?;
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

    let workers = if cfg.pipeline.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        cfg.pipeline.workers
    };
    let cap = cfg.pipeline.channel_capacity;
    let (cand_tx, mut cand_rx) = mpsc::channel::<Candidate>(cap);
    let (job_tx, mut job_rx) = mpsc::channel::<tokio::task::JoinHandle<Outcome>>(workers * 2);
    let (out_tx, mut out_rx) = mpsc::channel::<Outcome>(cap);

    let watch_task = tokio::spawn(watcher::run(
        wopts.clone(),
        cand_tx,
        once,
        stop.graceful.clone(),
        metrics.clone(),
    ));

    let ctx = Arc::new(ReaderContext {
        opts,
        store: store.clone(),
        root: wopts.root.clone(),
        settle: wopts.settle,
    });
    let dispatcher = tokio::spawn(async move {
        while let Some(c) = cand_rx.recv().await {
            let ctx = ctx.clone();
            let h = tokio::task::spawn_blocking(move || examine(&c.path, &ctx));
            if job_tx.send(h).await.is_err() {
                break;
            }
        }
    });
    let orderer = tokio::spawn(async move {
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
    });

    let batch_max = cfg.output.batch_records;
    let batch_wait = Duration::from_millis(cfg.output.batch_ms);
    let stop_now = stop.now.clone();
    let mut committer = Some(committer);
    let mut result = Ok(());
    'outer: loop {
        let Some(first) = out_rx.recv().await else {
            break;
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
        let Some(mut c) = committer.take() else { break };
        let stop_now = stop_now.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let r = c.process(batch, &stop_now);
            (c, r)
        })
        .await;
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
    drop(out_rx);
    let _ = orderer.await;
    let _ = dispatcher.await;
    match watch_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(PipelineError::Internal(format!("watcher failed: {e}"))),
    }
    result
}
