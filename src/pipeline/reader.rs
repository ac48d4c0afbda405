//! The reader: what happens to one candidate file on a reader thread, from open to
//! parsed and extracted record or reject ([`examine`]).

use super::Outcome;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::watch;

use crate::dedupe::{mtime_ns, FileEntry, Store};
use crate::error::{Reject, RejectKind};
use crate::parse::{self, OpenError, ParseOptions};
use crate::record::Record;

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

/// Reads, parses and enriches one candidate. Runs on a reader thread.
///
/// A transient error (descriptors or memory used up, a full disk, an interrupted
/// call) is retried with backoff, never recorded as the file's outcome; when the
/// daemon stops meanwhile the file is left for the next start
/// ([`Outcome::Deferred`]).
pub fn examine(path: &Path, ctx: &ReaderContext) -> Outcome {
    let mut backoff = crate::retry::Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
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
                let wait = backoff.wait();
                tracing::warn!(path = %path.display(), error = %e, retry_in_ms = wait.as_millis() as u64, "cannot read the file for now; retrying");
                std::thread::sleep(wait);
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
    let key = crate::paths::to_bytes(path).to_vec();
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
        return match parse::read_opened_as(&file, &meta, path, &ctx.opts.limits) {
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
        let source = match parse::read_opened_as(&file, &meta, path, &ctx.opts.limits) {
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
