//! What the watcher knows of the folder: files waiting to settle, the walk of a
//! folder in batches, and what a scan or an event finds ([`State`]).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;

use super::paths::article_named;
use super::{Candidate, WatchOptions};

pub(super) struct State {
    pub(super) opts: WatchOptions,
    pub(super) tx: mpsc::Sender<Candidate>,
    /// In-place writes waiting to settle: path → last activity.
    pub(super) pending: HashMap<PathBuf, Instant>,
    /// Folders created while running, to scan again once their watch is surely in
    /// place: folder → (when, scans left).
    pub(super) new_dirs: HashMap<PathBuf, (Instant, u8)>,
    pub(super) metrics: std::sync::Arc<Metrics>,
    /// Turns true when the daemon is asked to stop: scans and sends end early.
    pub(super) stop: watch::Receiver<bool>,
    /// During the first scan, the hashes of the paths it walks: afterwards the state
    /// forgets the files it remembers that are no longer there ([`State::mark_scanned`]).
    pub(super) first_seen: Option<Vec<u64>>,
}

/// When a folder created while running is scanned again: the event backend adds
/// its watch only after handing over the event that names it, so files written
/// into it in between have no event of their own. The second scan is for a
/// backend thread that was slow to get there.
pub(super) const NEW_DIR_RESCANS: [Duration; 2] =
    [Duration::from_millis(200), Duration::from_secs(2)];

/// Entries read from the folder tree per batch: the most the start-up scan holds
/// in memory at once, whatever the size of the folder.
pub(super) const WALK_BATCH: usize = 65_536;

/// A depth-first walk of a folder tree that reads `WALK_BATCH` entries at a time.
/// Within a batch the entries are in name order, so a folder of up to
/// `WALK_BATCH` entries is read in name order; a larger one in batches of its
/// on-disk order, each sorted.
pub(super) struct Walker {
    /// Open folders, innermost last.
    pub(super) stack: Vec<std::fs::ReadDir>,
    /// Entries per batch.
    pub(super) batch: usize,
}

impl Walker {
    pub(super) fn new(dir: &Path) -> Walker {
        Walker::with_batch(dir, WALK_BATCH)
    }

    pub(super) fn with_batch(dir: &Path, batch: usize) -> Walker {
        let mut w = Walker {
            stack: Vec::new(),
            batch: batch.max(1),
        };
        w.descend(dir);
        w
    }

    /// Queues a folder (unreadable ones are skipped, as they were by `read_dir`).
    pub(super) fn descend(&mut self, dir: &Path) {
        match std::fs::read_dir(dir) {
            Ok(rd) => self.stack.push(rd),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot read folder; skipped")
            }
        }
    }

    /// Up to `batch` entries of the innermost open folder, sorted by name (None:
    /// the walk is over).
    pub(super) fn next_batch(&mut self) -> Option<Vec<std::fs::DirEntry>> {
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

pub(super) enum Found {
    /// Settled: its path, and its size and modification time (ns) when it is a
    /// regular file (zeros otherwise), which poll mode compares between rounds.
    Ready(PathBuf, (u64, i128)),
    Young(PathBuf),
    /// Processed before, unchanged (same size and modification time).
    Known,
}

/// A directory entry the walk kept: its path, its size and modification time (ns)
/// when it is a regular file, and whether it changed within the settle time.
pub(super) struct Seen {
    path: PathBuf,
    sig: Option<(u64, i128)>,
    young: bool,
}

impl State {
    pub(super) fn rel<'a>(&self, path: &'a Path) -> Option<&'a Path> {
        path.strip_prefix(&self.opts.root).ok()
    }

    /// Records that a scan has listed the folder. After the first, the state forgets
    /// the files it remembers that left the folder, so that it stays the size of the
    /// folder: only paths the scan did not walk are looked at (one `stat` each, for a
    /// file that landed during the scan).
    pub(super) fn mark_scanned(&mut self) {
        if let (Some(mut seen), Some(store)) = (self.first_seen.take(), self.opts.known.clone()) {
            seen.sort_unstable();
            seen.dedup();
            let root = self.opts.root.clone();
            let gone = tokio::task::block_in_place(|| {
                store.retain_files(|k| {
                    let p = crate::paths::from_bytes(k);
                    !p.starts_with(&root)
                        || seen.binary_search(&path_hash(k)).is_ok()
                        || std::fs::symlink_metadata(p).is_ok()
                })
            });
            match gone {
                Ok(0) => {}
                Ok(n) => tracing::debug!(files = n, "forgot files no longer in the watched folder"),
                // Housekeeping only: the entries stay until the next start.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot forget the files that left the watched folder now")
                }
            }
        }
        self.opts
            .scanned
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// True once the daemon is asked to stop.
    pub(super) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sends a path on; false when the pipeline has gone away or the daemon is
    /// stopping (a full channel never delays a stop).
    pub(super) async fn send(&self, path: PathBuf) -> bool {
        self.metrics.files_seen.inc();
        let candidate = Candidate {
            path,
            noticed: Instant::now(),
        };
        let mut stop = self.stop.clone();
        // Counted before it is sent: the reader that takes it may start at once.
        self.metrics.depths.watch.inc();
        let sent = tokio::select! {
            sent = self.tx.send(candidate) => sent.is_ok(),
            _ = stop.wait_for(|s| *s) => false,
        };
        if !sent {
            self.metrics.depths.watch.dec();
        }
        sent
    }

    /// Sets the `settle` depth to the files waiting to settle.
    pub(super) fn count_pending(&self) {
        self.metrics
            .depths
            .settle
            .set(crate::metrics::count(self.pending.len()));
    }

    /// Looks at one directory entry the walk found (None: skipped; a folder to
    /// descend into is pushed on `walker`).
    fn look(&self, e: &std::fs::DirEntry, now: SystemTime, walker: &mut Walker) -> Option<Seen> {
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
        let sig = meta.as_ref().map(|m| (m.len(), crate::dedupe::mtime_ns(m)));
        Some(Seen { path, sig, young })
    }

    /// Classifies what one batch of the walk saw: files processed before and
    /// unchanged (same size and modification time) are looked up in the state in
    /// one read, the rest are ready or young.
    fn classify(&self, seen: Vec<Seen>) -> Vec<Found> {
        let lookup: Vec<&[u8]> = seen
            .iter()
            .filter(|s| s.sig.is_some() && !s.young)
            .map(|s| crate::paths::to_bytes(&s.path))
            .collect();
        // A state that cannot be read now only costs a read of each file.
        let known = match (&self.opts.known, lookup.is_empty()) {
            (Some(store), false) => store.files(&lookup).unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut known = known.into_iter();
        seen.into_iter()
            .map(|s| {
                let remembered = if s.sig.is_some() && !s.young {
                    known.next().flatten()
                } else {
                    None
                };
                match s.sig {
                    _ if s.young => Found::Young(s.path),
                    Some((size, mtime_ns))
                        if remembered.is_some_and(|k| k.size == size && k.mtime_ns == mtime_ns) =>
                    {
                        Found::Known
                    }
                    sig => Found::Ready(s.path, sig.unwrap_or_default()),
                }
            })
            .collect()
    }

    /// The next batch of the walk, classified (empty: the walk is over, or the
    /// daemon is stopping).
    pub(super) fn walk_batch(&mut self, walker: &mut Walker) -> Vec<Found> {
        let now = SystemTime::now();
        loop {
            if self.stopping() {
                return Vec::new();
            }
            let Some(entries) = walker.next_batch() else {
                return Vec::new();
            };
            let seen: Vec<Seen> = entries
                .iter()
                .filter_map(|e| self.look(e, now, walker))
                .collect();
            if !seen.is_empty() {
                if let Some(first) = &mut self.first_seen {
                    first.extend(
                        seen.iter()
                            .map(|s| path_hash(crate::paths::to_bytes(&s.path))),
                    );
                }
                return self.classify(seen);
            }
        }
    }

    /// Scans the folder: settled files are sent, young ones wait to settle. False
    /// when the pipeline has gone away or the daemon is stopping.
    pub(super) async fn scan(&mut self, dir: PathBuf) -> bool {
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
            // The settled files of this batch wait here until each is sent.
            let ready = found
                .iter()
                .filter(|f| matches!(f, Found::Ready(..)))
                .count();
            self.metrics
                .depths
                .scan
                .inc_by(crate::metrics::count(ready));
            for f in found {
                match f {
                    Found::Known => {
                        self.metrics.files_seen.inc();
                        self.metrics.unchanged.inc();
                    }
                    Found::Ready(p, _) => {
                        self.pending.remove(&p);
                        self.metrics.depths.scan.dec();
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
    pub(super) async fn rescan_new_dirs(&mut self) -> bool {
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
    pub(super) async fn flush_settled(&mut self) -> bool {
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
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue; // gone before it settled: nothing to read
            };
            // Still being written by a slow writer (mtime moved) → wait again.
            let recent = meta
                .modified()
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age < self.opts.settle);
            if recent {
                self.pending.insert(p, now);
                continue;
            }
            if !self.send(p).await {
                return false;
            }
        }
        true
    }

    /// Handles one path named by an event: `at_once` for a rename into the folder.
    pub(super) async fn touched(&mut self, path: PathBuf, at_once: bool) -> bool {
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
pub(super) fn identity(path: &Path) -> Option<(u64, u64, Option<SystemTime>)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.created().ok()))
}

/// The hash the first scan keeps of each path it walks (64-bit: a collision only
/// keeps a gone file's entry until the next start).
fn path_hash(path: &[u8]) -> u64 {
    crate::hash::fnv1a_bytes(path.iter().copied())
}
