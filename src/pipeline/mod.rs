//! The pipeline: stages wired with bounded channels, and the commit protocol.
//!
//! ```text
//! watch ──Candidate──▶ dispatcher ──Job (≤ 16 files)──▶ reader threads ──outcomes──▶ orderer ──▶ committer
//!          (bounded)     │ one reply per job, queued     read → parse → extract   (chunk order)   dedupe → sink → state
//!                        └ in job order; ≤ 2 × workers jobs in flight
//! ```
//!
//! Parse and extract run on the reader threads (`pool.rs`), several chunks at once;
//! the orderer awaits their results in job order, so dedupe sees each article's
//! versions in the order they landed. Every channel is bounded: a slow sink stops the orderer,
//! which stops the dispatcher, which stops the watcher (backpressure; memory stays flat).
//!
//! # Commit protocol
//!
//! The committer takes batches (up to `output.batch_records` outcomes; past the
//! first, it waits up to `output.batch_ms` only while more files are on their way,
//! else `output.linger_ms`) and for each batch:
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

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::dedupe::{FileEntry, StateError, Store};
use crate::error::Reject;
pub use crate::health::Health;
use crate::parse;
use crate::record::Record;
use crate::sink::{FileSink, Sink, SinkError, StdoutSink};
use crate::watch::{self as watcher, Candidate, WatchOptions};

mod committer;
mod events;
mod pool;
mod reader;
mod rejects;

pub use committer::{Committer, Outputs};
pub use events::{sse_chunk, Event, EventKind, Feed, Position, Shared};
use pool::ReaderPool;
pub use reader::{build_record, enrich, enrich_within, examine, ReaderContext};
pub use rejects::{RejectError, RejectLine, REJECT_SCHEMA};

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
    /// A stage's task died (a panic, or the runtime shutting down).
    #[error("internal error: the {stage} task failed: {source}")]
    Task {
        /// `committer` or `watcher`.
        stage: &'static str,
        /// Why it ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// A record or reject line could not be serialized.
    #[error("internal error: cannot serialize a {what}: {source}")]
    Serialize {
        /// `record` or `reject line`.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The reader threads could not be started.
    #[error("cannot start the reader threads: {0} (lower pipeline.workers?)")]
    Readers(#[source] std::io::Error),
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
    let mut publisher = None;
    let records: Box<dyn Sink> = if cfg.sink.kind == crate::nats::SinkKind::Nats {
        // Connecting waits for the cluster; a stop request meanwhile ends it (nothing
        // was taken yet, so nothing is left undone).
        let mut graceful = stop.graceful.clone();
        let opened = tokio::select! {
            opened = crate::nats::open_measured(cfg, shared.health.clone(), metrics.nats.clone()) => opened?,
            _ = graceful.wait_for(|s| *s) => {
                tracing::info!("stopped while connecting to NATS");
                return Ok(());
            }
        };
        ledger = opened.ledger;
        publisher = Some(opened.rejects);
        opened.records
    } else if cfg.output.path == "-" {
        Box::new(StdoutSink::default())
    } else {
        Box::new(
            FileSink::open(Path::new(&cfg.output.path))?
                .with_rotation(crate::sink::Rotation::from_config(&cfg.output)),
        )
    };
    let mut rejects: Box<dyn Sink> = Box::new(FileSink::open(&cfg.output.rejects)?);
    if let Some(p) = publisher {
        rejects = p.wrap(rejects);
    }
    // They exist now: resolve them, so the watcher never takes them as input.
    let records_file = (cfg.sink.kind == crate::nats::SinkKind::File && cfg.output.path != "-")
        .then(|| Path::new(&cfg.output.path));
    wopts.own = crate::sink::OwnFiles::new(records_file, &cfg.output.rejects, &cfg.state.dir);
    wopts.scanned = shared.health.scanned.clone();
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
    let workers = cfg.pipeline.worker_count();
    let cap = cfg.pipeline.channel_capacity;
    let (cand_tx, mut cand_rx) = mpsc::channel::<Candidate>(cap);
    let (job_tx, mut job_rx) = mpsc::channel::<oneshot::Receiver<Vec<Outcome>>>(workers * 2);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<Outcome>>(cap.div_ceil(pool::CHUNK).max(2));
    let (readers, queue) =
        ReaderPool::start(workers, metrics.depths.clone()).map_err(PipelineError::Readers)?;

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
            let mut files = Vec::with_capacity(pool::CHUNK);
            // A job takes a slot from when it is queued until its reader is done with
            // it: at most `workers * 2` chunks are queued or being read.
            let slots = Arc::new(tokio::sync::Semaphore::new(workers * 2));
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                if cand_rx.recv_many(&mut files, pool::CHUNK).await == 0 {
                    break;
                }
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
                let (reply, outcomes) = oneshot::channel();
                let job = pool::Job {
                    files: std::mem::replace(&mut files, Vec::with_capacity(pool::CHUNK)),
                    ctx: ctx.clone(),
                    reply,
                    slot,
                };
                let sent = queue.send(job).is_ok();
                if !sent || job_tx.send(outcomes).await.is_err() {
                    break;
                }
            }
        })
    };
    let orderer = {
        tokio::spawn(async move {
            while let Some(r) = job_rx.recv().await {
                match r.await {
                    Ok(o) if o.is_empty() => {}
                    Ok(o) => {
                        if out_tx.send(o).await.is_err() {
                            break;
                        }
                    }
                    Err(_) => tracing::error!("a reader thread ended early"),
                }
            }
        })
    };

    let mut committer = Some(committer);
    let mut result = Ok(());
    let mut last_state_refresh = Instant::now();
    let reload = shared.reload.clone();
    'outer: loop {
        health.beat();
        // Idle, the committer still beats (the systemd watchdog).
        let mut batch = loop {
            match tokio::time::timeout(health.beat_every(), out_rx.recv()).await {
                Ok(Some(batch)) => break batch,
                Ok(None) => break 'outer,
                Err(_) => health.beat(),
            }
        };
        let (batch_max, batch_wait, linger) = {
            let c = reload.borrow();
            (
                c.output.batch_records,
                Duration::from_millis(c.output.batch_ms),
                Duration::from_millis(c.output.linger_ms.min(c.output.batch_ms)),
            )
        };
        let opened = tokio::time::Instant::now();
        let (deadline, lingered) = (opened + batch_wait, opened + linger);
        while batch.len() < batch_max {
            match out_rx.try_recv() {
                Ok(mut o) => batch.append(&mut o),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Wait for files already on their way, up to `batch_ms`; with
                    // none found, handed over or being read, only `linger_ms`.
                    let until = if on_the_way(&metrics.depths, batch.len()) {
                        deadline
                    } else {
                        lingered
                    };
                    if tokio::time::Instant::now() >= until {
                        break;
                    }
                    match tokio::time::timeout_at(until, out_rx.recv()).await {
                        Ok(Some(mut o)) => batch.append(&mut o),
                        Ok(None) => break,
                        // Look again: files may have set out meanwhile.
                        Err(_) => {}
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
        let taken = crate::metrics::count(batch.len());
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
        metrics.depths.commit.dec_by(taken);
        match joined {
            Ok((c, r)) => {
                committer = Some(c);
                if let Err(e) = r {
                    result = Err(e);
                    break 'outer;
                }
            }
            Err(e) => {
                result = Err(PipelineError::Task {
                    stage: "committer",
                    source: e,
                });
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
    // The dispatcher held the last sender of the readers' queue: they end now.
    tokio::task::spawn_blocking(move || readers.join())
        .await
        .ok();
    let watched = watch_task.await;
    result?;
    match watched {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(PipelineError::Task {
            stage: "watcher",
            source: e,
        }),
    }
}

/// Whether files are on their way to the committer beyond the `in_batch` it holds:
/// found by a scan and not handed over, handed over and not started, being read, or
/// read and not yet taken into the batch. Files waiting out their settle time are
/// not: they come later than any batch would wait.
fn on_the_way(depths: &crate::metrics::Depths, in_batch: usize) -> bool {
    let read_not_taken = depths.commit.get() - crate::metrics::count(in_batch);
    depths.scan.get() > 0 || depths.watch.get() > 0 || depths.read.get() > 0 || read_not_taken > 0
}
