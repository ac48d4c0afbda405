//! The reader pool: long-lived threads that take candidate files in chunks and hand
//! back their outcomes in the order the chunks were given.
//!
//! The dispatcher takes from the watcher whatever candidates are waiting (up to
//! [`CHUNK`], at least one, so a lone file in a quiet folder goes at once) and sends
//! them as one [`Job`] on a bounded queue that every reader thread takes from. Each
//! job carries a one-shot reply; the dispatcher queues the reply ends in job order,
//! and the orderer awaits them in that order, so dedupe still sees every file in
//! arrival order while the readers work on several chunks at once. One job costs one
//! queue hand-off and one wake-up for a whole chunk, instead of a blocking-pool task,
//! a join handle and a wake-up per file.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::reader::{examine, ReaderContext};
use super::Outcome;
use crate::metrics::{count, Depths};
use crate::watch::Candidate;

/// The most candidates in one job. Large enough that hand-offs cost little next to
/// the work (a chunk is a few milliseconds of parsing), small enough that several
/// readers share a backlog and the first records of a burst are not held back.
pub const CHUNK: usize = 16;

/// A chunk of candidates for one reader, and where its outcomes go.
pub struct Job {
    /// The candidates, in arrival order.
    pub files: Vec<Candidate>,
    /// The settings they are read with.
    pub ctx: Arc<ReaderContext>,
    /// Receives one outcome per file that did not panic, in the same order.
    pub reply: oneshot::Sender<Vec<Outcome>>,
    /// The dispatcher's slot, given back when the job is done (this bounds the
    /// queue and the files in flight).
    pub slot: tokio::sync::OwnedSemaphorePermit,
}

/// The reader threads and the queue that feeds them (unbounded here: the dispatcher
/// bounds it with the jobs' slots). Dropping every [`crossbeam_channel::Sender`] of
/// the queue ends the threads once the jobs already queued are done;
/// [`ReaderPool::join`] waits for that.
pub struct ReaderPool {
    threads: Vec<JoinHandle<()>>,
}

impl ReaderPool {
    /// Starts `workers` reader threads (at least one) and returns them with the job
    /// queue's sending end. The threads move each job's files from the `watch` depth
    /// to `read` when they start on it, and to `commit` when they are done.
    pub fn start(
        workers: usize,
        depths: Depths,
    ) -> std::io::Result<(ReaderPool, crossbeam_channel::Sender<Job>)> {
        let workers = workers.max(1);
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx = rx.clone();
            let depths = depths.clone();
            let t = std::thread::Builder::new()
                .name(format!("wirewatch-reader-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        run_job(job, &depths);
                    }
                })?;
            threads.push(t);
        }
        Ok((ReaderPool { threads }, tx))
    }

    /// Waits for the threads to finish (after the queue's senders are gone).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Examines every file of a job and replies with the outcomes. A file whose
/// examination panics is logged and left out (it was not committed, so the next
/// start reads it again); the thread goes on with the rest.
fn run_job(job: Job, depths: &Depths) {
    let Job {
        files,
        ctx,
        reply,
        slot,
    } = job;
    let n = count(files.len());
    depths.watch.dec_by(n);
    depths.read.inc_by(n);
    let mut out = Vec::with_capacity(files.len());
    for c in &files {
        let examined = std::panic::catch_unwind(AssertUnwindSafe(|| examine(&c.path, &ctx)));
        match examined {
            Ok(mut o) => {
                if let Outcome::Parsed { noticed, .. } = &mut o {
                    *noticed = c.noticed;
                }
                out.push(o);
            }
            Err(_) => {
                tracing::error!(path = %c.path.display(), "reading the file failed (a bug: please report it); it is read again at the next start");
            }
        }
    }
    depths.read.dec_by(n);
    depths.commit.inc_by(count(out.len()));
    // The orderer is gone only when the pipeline is stopping.
    let _ = reply.send(out);
    drop(slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_end_when_the_queue_closes() {
        let (pool, tx) = ReaderPool::start(3, Depths::default()).unwrap();
        assert_eq!(pool.threads.len(), 3);
        drop(tx);
        pool.join();
    }
}
