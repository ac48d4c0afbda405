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
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};

use crate::config::{WatchConfig, WatchMode};
use crate::metrics::Metrics;

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

/// Which paths are candidates.
#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Filter {
    /// Builds the filter from `[watch]` globs.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, globset::Error> {
        let build = |globs: &[String]| -> Result<GlobSet, globset::Error> {
            let mut b = GlobSetBuilder::new();
            for g in globs {
                b.add(Glob::new(g)?);
            }
            b.build()
        };
        Ok(Filter {
            include: if include.is_empty() {
                None
            } else {
                Some(build(include)?)
            },
            exclude: build(exclude)?,
        })
    }

    /// True when `rel` (a path relative to the watched folder) should be read.
    pub fn accepts(&self, rel: &Path) -> bool {
        let hidden = rel
            .components()
            .any(|c| c.as_os_str().as_encoded_bytes().first() == Some(&b'.'));
        if hidden {
            return false;
        }
        let name = rel
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default();
        let scratch = [&b".tmp"[..], b".part", b".swp", b"~"]
            .iter()
            .any(|s| name.len() >= s.len() && name[name.len() - s.len()..].eq_ignore_ascii_case(s));
        if scratch {
            return false;
        }
        if let Some(inc) = &self.include {
            if !inc.is_match(rel) {
                return false;
            }
        }
        !self.exclude.is_match(rel)
    }
}

/// True for a directory that is named like an article (`*.txt`): reported, not entered.
fn article_named(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
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
    pub filter: Filter,
    /// The state, to skip files already processed without handing them over (a
    /// restart then costs one `stat` and one look-up per unchanged file).
    pub known: Option<std::sync::Arc<crate::dedupe::Store>>,
    /// The daemon's own outputs and state: skipped.
    pub own: crate::sink::OwnFiles,
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
            filter: Filter::new(&cfg.include, &cfg.exclude)?,
            known: None,
            own: crate::sink::OwnFiles::default(),
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

struct State {
    opts: WatchOptions,
    tx: mpsc::Sender<Candidate>,
    /// In-place writes waiting to settle: path → last activity.
    pending: HashMap<PathBuf, Instant>,
    /// Folders created while running, to scan again once their watch is surely in
    /// place: folder → (when, scans left).
    new_dirs: HashMap<PathBuf, (Instant, u8)>,
    metrics: std::sync::Arc<Metrics>,
    /// Turns true when the daemon is asked to stop: scans and sends end early.
    stop: watch::Receiver<bool>,
}

/// When a folder created while running is scanned again: the event backend adds
/// its watch only after handing over the event that names it, so files written
/// into it in between have no event of their own. The second scan is for a
/// backend thread that was slow to get there.
const NEW_DIR_RESCANS: [Duration; 2] = [Duration::from_millis(200), Duration::from_secs(2)];

/// Entries read from the folder tree per batch: the most the start-up scan holds
/// in memory at once, whatever the size of the folder.
const WALK_BATCH: usize = 65_536;

/// A depth-first walk of a folder tree that reads `WALK_BATCH` entries at a time.
/// Within a batch the entries are in name order, so a folder of up to
/// `WALK_BATCH` entries is read in name order; a larger one in batches of its
/// on-disk order, each sorted.
struct Walker {
    /// Open folders, innermost last.
    stack: Vec<std::fs::ReadDir>,
    /// Entries per batch.
    batch: usize,
}

impl Walker {
    fn new(dir: &Path) -> Walker {
        Walker::with_batch(dir, WALK_BATCH)
    }

    fn with_batch(dir: &Path, batch: usize) -> Walker {
        let mut w = Walker {
            stack: Vec::new(),
            batch: batch.max(1),
        };
        w.descend(dir);
        w
    }

    /// Queues a folder (unreadable ones are skipped, as they were by `read_dir`).
    fn descend(&mut self, dir: &Path) {
        match std::fs::read_dir(dir) {
            Ok(rd) => self.stack.push(rd),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot read folder; skipped")
            }
        }
    }

    /// Up to `batch` entries of the innermost open folder, sorted by name (None:
    /// the walk is over).
    fn next_batch(&mut self) -> Option<Vec<std::fs::DirEntry>> {
        loop {
            let rd = self.stack.last_mut()?;
            let mut batch: Vec<std::fs::DirEntry> = Vec::new();
            for e in rd.by_ref() {
                if let Ok(e) = e {
                    batch.push(e);
                }
                if batch.len() == self.batch {
                    break;
                }
            }
            if batch.len() < self.batch {
                self.stack.pop();
            }
            if !batch.is_empty() {
                batch.sort_by_key(|e| e.file_name());
                return Some(batch);
            }
        }
    }
}

enum Found {
    /// Settled: its path, and its size and modification time (ns) when it is a
    /// regular file (zeros otherwise), which poll mode compares between rounds.
    Ready(PathBuf, (u64, i128)),
    Young(PathBuf),
    /// Processed before, unchanged (same size and modification time).
    Known,
}

impl State {
    fn rel<'a>(&self, path: &'a Path) -> Option<&'a Path> {
        path.strip_prefix(&self.opts.root).ok()
    }

    /// True once the daemon is asked to stop.
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sends a path on; false when the pipeline has gone away or the daemon is
    /// stopping (a full channel never delays a stop).
    async fn send(&self, path: PathBuf) -> bool {
        self.metrics.files_seen.inc();
        let candidate = Candidate {
            path,
            noticed: Instant::now(),
        };
        let mut stop = self.stop.clone();
        tokio::select! {
            sent = self.tx.send(candidate) => sent.is_ok(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Classifies one directory entry the walk found (None: skipped; a folder to
    /// descend into is pushed on `walker`).
    fn classify(
        &self,
        e: &std::fs::DirEntry,
        now: SystemTime,
        walker: &mut Walker,
    ) -> Option<Found> {
        let path = e.path();
        let rel = self.rel(&path)?;
        if !self.opts.filter.accepts(rel) || self.opts.own.contains(&path) {
            return None;
        }
        let ft = e.file_type().ok()?;
        if ft.is_dir() && !article_named(&path) {
            if self.opts.recursive {
                walker.descend(&path);
            }
            return None;
        }
        let meta = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.is_file());
        let young = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age < self.opts.settle);
        if let (Some(m), Some(store), false) = (&meta, &self.opts.known, young) {
            let mtime_ns = crate::dedupe::mtime_ns(m);
            let same = store
                .file(crate::paths::to_bytes(&path))
                .ok()
                .flatten()
                .is_some_and(|k| k.size == m.len() && k.mtime_ns == mtime_ns);
            if same {
                return Some(Found::Known);
            }
        }
        Some(if young {
            Found::Young(path)
        } else {
            let sig = meta
                .as_ref()
                .map(|m| (m.len(), crate::dedupe::mtime_ns(m)))
                .unwrap_or_default();
            Found::Ready(path, sig)
        })
    }

    /// The next batch of the walk, classified (empty: the walk is over, or the
    /// daemon is stopping).
    fn walk_batch(&self, walker: &mut Walker) -> Vec<Found> {
        let now = SystemTime::now();
        loop {
            if self.stopping() {
                return Vec::new();
            }
            let Some(entries) = walker.next_batch() else {
                return Vec::new();
            };
            let found: Vec<Found> = entries
                .iter()
                .filter_map(|e| self.classify(e, now, walker))
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
    }

    /// Scans the folder: settled files are sent, young ones wait to settle. False
    /// when the pipeline has gone away or the daemon is stopping.
    async fn scan(&mut self, dir: PathBuf) -> bool {
        let mut walker = Walker::new(&dir);
        loop {
            // Blocking file-system work: let the runtime move other tasks off this
            // thread. One batch at a time, so memory stays flat at any folder size.
            let found = tokio::task::block_in_place(|| self.walk_batch(&mut walker));
            if self.stopping() {
                return false;
            }
            if found.is_empty() {
                return true;
            }
            for f in found {
                match f {
                    Found::Known => {
                        self.metrics.files_seen.inc();
                        self.metrics.unchanged.inc();
                    }
                    Found::Ready(p, _) => {
                        self.pending.remove(&p);
                        if !self.send(p).await {
                            return false;
                        }
                    }
                    Found::Young(p) => {
                        self.pending.insert(p, Instant::now());
                    }
                }
            }
        }
    }

    /// Scans again the folders created while running whose next rescan is due.
    async fn rescan_new_dirs(&mut self) -> bool {
        let now = Instant::now();
        let mut due: Vec<PathBuf> = self
            .new_dirs
            .iter()
            .filter(|(_, (since, left))| {
                let step = NEW_DIR_RESCANS.len() - usize::from(*left);
                now.duration_since(*since) >= NEW_DIR_RESCANS[step]
            })
            .map(|(p, _)| p.clone())
            .collect();
        due.sort();
        for dir in due {
            if let Some((_, left)) = self.new_dirs.get_mut(&dir) {
                *left -= 1;
                if *left == 0 {
                    self.new_dirs.remove(&dir);
                }
            }
            if !dir.is_dir() {
                self.new_dirs.remove(&dir);
                continue;
            }
            if !self.scan(dir).await {
                return false;
            }
        }
        true
    }

    /// Sends the pending files that have been quiet for the settle time.
    async fn flush_settled(&mut self) -> bool {
        let now = Instant::now();
        let mut ready: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= self.opts.settle)
            .map(|(p, _)| p.clone())
            .collect();
        ready.sort();
        for p in ready {
            self.pending.remove(&p);
            // Still being written by a slow writer (mtime moved) → wait again.
            let recent = std::fs::symlink_metadata(&p)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age < self.opts.settle);
            if recent {
                self.pending.insert(p, now);
                continue;
            }
            if std::fs::symlink_metadata(&p).is_err() {
                continue; // gone before it settled: nothing to read
            }
            if !self.send(p).await {
                return false;
            }
        }
        true
    }

    /// Handles one path named by an event: `at_once` for a rename into the folder.
    async fn touched(&mut self, path: PathBuf, at_once: bool) -> bool {
        let Some(rel) = self.rel(&path) else {
            return true;
        };
        if rel.as_os_str().is_empty()
            || !self.opts.filter.accepts(rel)
            || self.opts.own.contains(&path)
        {
            return true;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            self.pending.remove(&path);
            return true;
        };
        if meta.is_dir() && !article_named(&path) {
            // A folder created or moved in: its files may predate our watch on it,
            // now and until the backend has added that watch.
            if self.opts.recursive {
                self.new_dirs
                    .insert(path.clone(), (Instant::now(), NEW_DIR_RESCANS.len() as u8));
                return self.scan(path).await;
            }
            return true;
        }
        if at_once {
            self.pending.remove(&path);
            self.send(path).await
        } else {
            self.pending.insert(path, Instant::now());
            true
        }
    }
}

/// Identity of the watched folder: device, inode and birth time (a folder deleted
/// and recreated may get the same inode number back, never the same birth time).
fn identity(path: &Path) -> Option<(u64, u64, Option<SystemTime>)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.created().ok()))
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
    let mut st = State {
        opts,
        tx,
        pending: HashMap::new(),
        new_dirs: HashMap::new(),
        metrics,
        stop: stop.clone(),
    };
    if once {
        if !st.scan(root.clone()).await {
            return Ok(());
        }
        while !st.pending.is_empty() {
            tokio::time::sleep(st.opts.settle / 4 + Duration::from_millis(1)).await;
            if !st.flush_settled().await || *stop.borrow() {
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

async fn run_poll(st: State, mut stop: watch::Receiver<bool>) -> Result<(), WatchError> {
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
        let f = Filter::new(&[], &["drafts/**".into()]).unwrap();
        assert!(f.accepts(Path::new("a.txt")));
        assert!(f.accepts(Path::new("sub/a.txt")));
        assert!(!f.accepts(Path::new(".hidden.txt")));
        assert!(!f.accepts(Path::new(".git/a.txt")));
        assert!(!f.accepts(Path::new("a.txt.tmp")));
        assert!(!f.accepts(Path::new("a.part")));
        assert!(!f.accepts(Path::new(".a.txt.swp")));
        assert!(!f.accepts(Path::new("a.txt~")));
        assert!(!f.accepts(Path::new("drafts/a.txt")));
        let f = Filter::new(&["*.txt".into()], &[]).unwrap();
        assert!(f.accepts(Path::new("a.txt")));
        assert!(!f.accepts(Path::new("a.json")));
    }
}
