//! The tokio runtimes the commands run on.

use std::process::ExitCode;

/// A multi-thread tokio runtime with `workers` async threads and at most
/// `blocking` blocking ones. On failure the reason is printed and the exit code
/// to return is given.
pub fn runtime(workers: usize, blocking: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(blocking)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("wirewatch: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

/// A single-thread tokio runtime, for a command that follows one stream.
pub fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
