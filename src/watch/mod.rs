//! The watch stage: which files in the watched folder are ready to be read.
//!
//! At start the folder is scanned (recursively, in name order within batches of
//! 65,536 entries, so memory stays flat however large the folder); then file-system
//! events (`notify`, inotify on Linux) are followed, or in `poll` mode the folder is
//! rescanned every interval. A file that lands by rename is taken at once; a file
//! written in place is taken once it has been quiet for the settle time, so it is
//! never read half-written. An event-queue overflow triggers a rescan, and a watched
//! folder that is deleted and recreated is watched again and rescanned; nothing is
//! lost because the reader skips files the state already knows.
//!
//! Skipped: hidden files and folders (a component starting with `.`), names ending
//! in `.tmp`, `.part`, `.swp`, `~`, paths not matching `include` or matching
//! `exclude`, and the daemon's own files when they sit inside the folder
//! ([`crate::sink::OwnFiles`]: the output and its rotated copies, the rejects file,
//! the state folder). A directory whose name ends in `.txt` is passed on (and
//! rejected as `not_a_file`) instead of being descended into; symbolic links to
//! folders are not followed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};

use crate::config::{WatchConfig, WatchMode};
use crate::metrics::Metrics;

mod paths;
mod scan;

pub use paths::PathFilter;
use scan::{identity, Found, State, Walker};

/// Errors that stop the watcher from starting.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The folder cannot be created or read.
    #[error("watch folder {path}: {source}")]
    Dir {
        /// Folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The event backend failed.
    #[error("cannot watch {path}: {message} (try `mode = \"poll\"` in [watch])")]
    Notify {
        /// Folder.
        path: PathBuf,
        /// notify's message.
        message: String,
    },
    /// Bad glob (config validation normally catches it first).
    #[error("bad glob: {0}")]
    Glob(#[from] globset::Error),
}

/// Settings of the watcher, resolved from the config.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Absolute path of the watched folder.
    pub root: PathBuf,
    /// Descend into sub-folders.
    pub recursive: bool,
    /// Quiet time before an in-place write is taken.
    pub settle: Duration,
    /// Events or polling.
    pub mode: WatchMode,
    /// Poll interval.
    pub poll_interval: Duration,
    /// Path filter.
    pub filter: PathFilter,
    /// The state, to skip files already processed without handing them over (a
    /// restart then costs one `stat` and one look-up per unchanged file).
    pub known: Option<std::sync::Arc<crate::dedupe::Store>>,
    /// The daemon's own outputs and state: skipped.
    pub own: crate::sink::OwnFiles,
    /// Turns true once the first scan has listed the folder: every file present at
    /// start is then known or handed over (the daemon's readiness, see `systemd`).
    pub scanned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl WatchOptions {
    /// Resolves `[watch]`, creating the folder when missing.
    pub fn from_config(cfg: &WatchConfig) -> Result<WatchOptions, WatchError> {
        std::fs::create_dir_all(&cfg.dir).map_err(|source| WatchError::Dir {
            path: cfg.dir.clone(),
            source,
        })?;
        let root = std::fs::canonicalize(&cfg.dir).map_err(|source| WatchError::Dir {
            path: cfg.dir.clone(),
            source,
        })?;
        Ok(WatchOptions {
            root,
            recursive: cfg.recursive,
            settle: Duration::from_millis(cfg.settle_ms),
            mode: cfg.mode,
            poll_interval: Duration::from_millis(cfg.poll_interval_ms),
            filter: PathFilter::new(&cfg.include, &cfg.exclude)?,
            known: None,
            own: crate::sink::OwnFiles::default(),
            scanned: Default::default(),
        })
    }
}

/// A file ready to be read, with the moment it was noticed.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Absolute path.
    pub path: PathBuf,
    /// When the watcher decided it was ready (latency is measured from here).
    pub noticed: Instant,
}

/// Runs the watcher until `stop` turns true (or, with `once`, until the files present
/// at start have all been sent). Dropping `tx` at the end tells the pipeline that no
/// more files come.
pub async fn run(
    opts: WatchOptions,
    tx: mpsc::Sender<Candidate>,
    once: bool,
    mut stop: watch::Receiver<bool>,
    metrics: std::sync::Arc<Metrics>,
) -> Result<(), WatchError> {
    let root = opts.root.clone();
    let mode = opts.mode;
    // A state that remembers no file has nothing to forget: no hashes to keep.
    let first_seen = opts
        .known
        .as_ref()
        .is_some_and(|s| s.counts().map_or(true, |(_, files)| files > 0))
        .then(Vec::new);
    let mut st = State {
        opts,
        tx,
        pending: HashMap::new(),
        new_dirs: HashMap::new(),
        metrics,
        stop: stop.clone(),
        first_seen,
    };
    if once {
        if !st.scan(root.clone()).await {
            return Ok(());
        }
        st.mark_scanned();
        st.count_pending();
        while !st.pending.is_empty() {
            tokio::time::sleep(st.opts.settle / 4 + Duration::from_millis(1)).await;
            let flushed = st.flush_settled().await;
            st.count_pending();
            if !flushed || *stop.borrow() {
                return Ok(());
            }
        }
        return Ok(());
    }
    match mode {
        WatchMode::Poll => run_poll(st, stop).await,
        WatchMode::Events => {
            // Subscribe before the first scan so nothing landing during it is missed.
            let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
            let recursive = st.opts.recursive;
            let make = |root: &Path| -> Result<notify::RecommendedWatcher, WatchError> {
                let ev_tx = ev_tx.clone();
                let mut w = notify::recommended_watcher(move |res| {
                    let _ = ev_tx.send(res);
                })
                .map_err(|e| WatchError::Notify {
                    path: root.to_owned(),
                    message: e.to_string(),
                })?;
                let rm = if recursive {
                    RecursiveMode::Recursive
                } else {
                    RecursiveMode::NonRecursive
                };
                w.watch(root, rm).map_err(|e| WatchError::Notify {
                    path: root.to_owned(),
                    message: e.to_string(),
                })?;
                Ok(w)
            };
            let mut watcher = Some(make(&root)?);
            let mut watched_id = identity(&root);
            tracing::info!(watch = %root.display(), mode = "events", "wirewatch running");
            if !st.scan(root.clone()).await {
                return Ok(());
            }
            st.mark_scanned();
            st.count_pending();
            let tick =
                (st.opts.settle / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
            let mut ticker = tokio::time::interval(tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_root_check = Instant::now();
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    ev = ev_rx.recv() => {
                        let Some(ev) = ev else { break };
                        let ok = match ev {
                            Ok(ev) => {
                                if matches!(ev.kind, EventKind::Remove(_)) && ev.paths.iter().any(|p| p == &root) {
                                    // The folder itself is gone: look again at the next tick.
                                    watched_id = None;
                                }
                                handle_event(&mut st, ev).await
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "file-system event error; rescanning");
                                st.metrics.rescans.inc();
                                st.scan(root.clone()).await
                            }
                        };
                        if !ok { break; }
                    }
                    _ = ticker.tick() => {
                        if !st.flush_settled().await || !st.rescan_new_dirs().await { break; }
                        if watched_id.is_none() || last_root_check.elapsed() >= Duration::from_millis(500) {
                            last_root_check = Instant::now();
                            let now_id = identity(&root);
                            if now_id != watched_id {
                                watcher = None;
                                crate::parse::open::root_replaced();
                                if now_id.is_some() {
                                    tracing::warn!(dir = %root.display(), "watched folder was recreated; watching it again and rescanning");
                                    watcher = Some(make(&root)?);
                                    st.metrics.rescans.inc();
                                    if !st.scan(root.clone()).await { break; }
                                } else {
                                    tracing::warn!(dir = %root.display(), "watched folder is gone; waiting for it to come back");
                                }
                                watched_id = now_id;
                            }
                        }
                    }
                }
                st.count_pending();
            }
            drop(watcher);
            Ok(())
        }
    }
}

async fn handle_event(st: &mut State, ev: notify::Event) -> bool {
    use notify::event::{ModifyKind, RenameMode};
    if ev.need_rescan() {
        tracing::warn!("file-system event queue overflowed; rescanning the watched folder");
        st.metrics.rescans.inc();
        let root = st.opts.root.clone();
        return st.scan(root).await;
    }
    match ev.kind {
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            for p in ev.paths {
                if !st.touched(p, true).await {
                    return false;
                }
            }
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            if let Some(p) = ev.paths.into_iter().nth(1) {
                return st.touched(p, true).await;
            }
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
            for p in ev.paths {
                st.pending.remove(&p);
            }
        }
        EventKind::Modify(ModifyKind::Name(_)) => {
            // Unknown rename direction: present means moved in.
            for p in ev.paths {
                if p.exists() && !st.touched(p, true).await {
                    return false;
                }
            }
        }
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Access(notify::event::AccessKind::Close(_)) => {
            for p in ev.paths {
                if !st.touched(p, false).await {
                    return false;
                }
            }
        }
        _ => {}
    }
    true
}

async fn run_poll(mut st: State, mut stop: watch::Receiver<bool>) -> Result<(), WatchError> {
    tracing::info!(watch = %st.opts.root.display(), mode = "poll", "wirewatch running");
    // path → (size, mtime) of what was already sent.
    let mut sent: HashMap<PathBuf, (u64, i128)> = HashMap::new();
    let mut ticker = tokio::time::interval(st.opts.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = ticker.tick() => {}
        }
        // Batch by batch, with the size and time the walk already read.
        let mut walker = Walker::new(&st.opts.root);
        let mut present = std::collections::HashSet::new();
        loop {
            let batch = st.walk_batch(&mut walker);
            if batch.is_empty() {
                break;
            }
            for f in batch {
                let Found::Ready(p, sig) = f else {
                    continue;
                };
                present.insert(p.clone());
                if sent.get(&p) != Some(&sig) {
                    sent.insert(p.clone(), sig);
                    if !st.send(p).await {
                        return Ok(());
                    }
                }
            }
        }
        sent.retain(|p, _| present.contains(p));
        st.mark_scanned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walker_reads_every_entry_once_in_sorted_batches() {
        let dir = tempfile::tempdir().expect("temp dir");
        for i in 0..7 {
            std::fs::write(dir.path().join(format!("f{i}")), b"x").expect("write");
        }
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        for i in 0..2 {
            std::fs::write(dir.path().join(format!("sub/g{i}")), b"x").expect("write");
        }
        let mut w = Walker::with_batch(dir.path(), 3);
        let mut seen = Vec::new();
        while let Some(batch) = w.next_batch() {
            assert!(batch.len() <= 3);
            let names: Vec<_> = batch.iter().map(|e| e.file_name()).collect();
            assert!(names.windows(2).all(|p| p[0] <= p[1]), "{names:?}");
            for e in batch {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    w.descend(&e.path());
                } else {
                    seen.push(e.path());
                }
            }
        }
        seen.sort();
        let mut want: Vec<PathBuf> = (0..7).map(|i| dir.path().join(format!("f{i}"))).collect();
        want.extend((0..2).map(|i| dir.path().join(format!("sub/g{i}"))));
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn filter_rules() {
        let f = PathFilter::new(&[], &["drafts/**".into()]).unwrap();
        assert!(f.accepts(Path::new("a.txt")));
        assert!(f.accepts(Path::new("sub/a.txt")));
        assert!(!f.accepts(Path::new(".hidden.txt")));
        assert!(!f.accepts(Path::new(".git/a.txt")));
        assert!(!f.accepts(Path::new("a.txt.tmp")));
        assert!(!f.accepts(Path::new("a.part")));
        assert!(!f.accepts(Path::new(".a.txt.swp")));
        assert!(!f.accepts(Path::new("a.txt~")));
        assert!(!f.accepts(Path::new("drafts/a.txt")));
        let f = PathFilter::new(&["*.txt".into()], &[]).unwrap();
        assert!(f.accepts(Path::new("a.txt")));
        assert!(!f.accepts(Path::new("a.json")));
    }
}
