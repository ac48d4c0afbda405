//! Process life cycle of `wirewatch run`: the tokio runtime, signals, and the exit
//! summary.
//!
//! The first SIGINT or SIGTERM stops the watcher; files already taken are finished and
//! committed, then the process exits 0. A second signal abandons retries (for
//! example while the disk is full) and exits at once; what was not committed is
//! recovered at the next start.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::pipeline::{self, Stop};

/// Runs the daemon (or one pass with `once`) and returns the exit code.
pub fn run(cfg: Config, once: bool) -> ExitCode {
    let workers = if cfg.pipeline.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        cfg.pipeline.workers
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(workers + 2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wirewatch: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let metrics = Arc::new(Metrics::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let now = Arc::new(AtomicBool::new(false));
        let signals = {
            let now = now.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                    tracing::error!("cannot install signal handlers");
                    return;
                };
                let mut count = 0;
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    count += 1;
                    if count == 1 {
                        tracing::info!("stopping: finishing the files in flight (signal again to stop at once)");
                        let _ = stop_tx.send(true);
                    } else {
                        now.store(true, Ordering::Relaxed);
                        tracing::warn!("stopping at once; uncommitted work is recovered at the next start");
                        std::process::exit(130);
                    }
                }
            })
        };
        let stop = Stop {
            graceful: stop_rx,
            now,
        };
        if !once {
            tracing::info!(
                watch = %cfg.watch.dir.display(),
                output = %cfg.output.path,
                state = %cfg.state.dir.display(),
                "wirewatch running"
            );
        }
        let result = pipeline::run(&cfg, once, stop, metrics.clone()).await;
        signals.abort();
        match result {
            Ok(()) => {
                if once {
                    eprintln!("wirewatch: {}", metrics.summary());
                } else {
                    tracing::info!("stopped: {}", metrics.summary());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wirewatch: {e}");
                ExitCode::from(1)
            }
        }
    })
}
