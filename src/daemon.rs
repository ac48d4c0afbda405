//! Process life cycle of `wirewatch run`: starting the logger and the runtime
//! ([`crate::logging`], [`crate::runtime`]), signals, the HTTP listener, progress,
//! periodic summaries, and the exit summary.
//!
//! - The HTTP listener (`[http] listen`) is bound before the pipeline starts: an
//!   address that cannot be bound (another process holds it) stops the daemon with
//!   exit code 1 and a message naming the address.
//!
//! - The first SIGINT or SIGTERM stops the watcher; files already taken are finished
//!   and committed, then the process exits 0. A commit that fails from then on (a full
//!   disk) is not retried: the process exits 1 and says that what was not committed is
//!   recovered at the next start. A second signal exits at once, with the same
//!   recovery at the next start.
//! - SIGHUP re-reads the config file. What changes without a restart: `[parse]`
//!   (time zone and limits, for files read from then on), `[output] batch_records`,
//!   `batch_ms` and `linger_ms`, and `[log] level`. Everything else (folders,
//!   paths, rotation, watch mode and globs, workers, the HTTP address) is read at
//!   start only; a SIGHUP that changes one of them logs a warning naming it.
//! - Logs go to stderr, human-readable or JSON (`--log-format json`), at the level of
//!   `RUST_LOG` or else `[log] level`; a summary line is logged every minute.
//! - `run --once` shows a progress bar (files/s, ETA) when stderr is a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::logging::{init_logging, FilterHandle, LogFormat};
use crate::pipeline::{self, Shared, Stop};
use crate::runtime::runtime;

/// How the daemon logs (the `run` flags).
#[derive(Debug, Clone, Copy)]
pub struct LogArgs {
    /// Human lines or JSON objects.
    pub format: LogFormat,
    /// `[log] level` was set by `--log-level`: it rules over `RUST_LOG`.
    pub level_from_flag: bool,
}

/// Runs the daemon (or one pass with `once`) and returns the exit code.
/// `config_path` is re-read on SIGHUP; `overrides` re-applies the command-line flags.
pub fn run(
    cfg: Config,
    config_path: Option<PathBuf>,
    overrides: impl Fn(&mut Config) + Send + 'static,
    once: bool,
    log: LogArgs,
) -> ExitCode {
    let log_handle = init_logging(log.format, &cfg.log.level, log.level_from_flag);
    match &config_path {
        Some(p) => tracing::info!(config = %p.display(), "configuration loaded"),
        None => tracing::info!(
            config = "built-in defaults",
            "no config file ({} absent): using the built-in defaults",
            crate::config::DEFAULT_PATH
        ),
    }
    let workers = cfg.pipeline.worker_count();
    let rt = match runtime(2, workers + 2) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let origin = config_path
        .as_ref()
        .map_or_else(|| "command line".to_owned(), |p| p.display().to_string());
    rt.block_on(async move {
        let (shared, reload_tx) = Shared::new(&cfg);
        let metrics = shared.metrics.clone();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let now = Arc::new(AtomicBool::new(false));
        let signals = tokio::spawn(signal_loop(
            stop_tx,
            now.clone(),
            cfg.clone(),
            config_path,
            overrides,
            reload_tx,
            log_handle,
        ));
        let stop = Stop {
            graceful: stop_rx.clone(),
            now,
        };
        let notifier =
            crate::systemd::spawn(shared.health.clone(), metrics.clone(), stop_rx.clone());
        // Bound before anything starts: a taken address stops the daemon here.
        let http = if cfg.http.listen.is_empty() {
            None
        } else {
            let addr: std::net::SocketAddr = match cfg.http.listen.parse() {
                Ok(addr) => addr,
                Err(e) => {
                    eprintln!("wirewatch: http.listen {:?}: {e}", cfg.http.listen);
                    return ExitCode::from(2);
                }
            };
            // Read again (validate read them): the files are what they are now.
            let access = match (cfg.http.access_token(&origin), cfg.http.server_tls(&origin)) {
                (Ok(token), Ok(tls)) => crate::http::Access {
                    auth: crate::http::auth::Auth::new(token.as_ref(), cfg.http.public_health),
                    tls,
                },
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("wirewatch: {e}");
                    return ExitCode::from(2);
                }
            };
            let listener = match crate::http::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!(
                        "wirewatch: cannot listen on {addr} ([http] listen): {e}; {}",
                        crate::http::bind_hint(&e)
                    );
                    return ExitCode::from(1);
                }
            };
            let shared = shared.clone();
            let stop = stop_rx.clone();
            Some(tokio::spawn(async move {
                if let Err(e) = crate::http::serve(listener, shared, access, stop).await {
                    tracing::error!(%addr, error = %e, "HTTP listener failed");
                }
            }))
        };
        let progress =
            (once && std::io::stderr().is_terminal()).then(|| progress_bar(metrics.clone()));
        let summaries = (!once).then(|| {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    tracing::info!("summary: {}", metrics.summary());
                }
            })
        });
        if !once {
            tracing::info!(
                watch = %cfg.watch.dir.display(),
                output = %cfg.output.path,
                state = %cfg.state.dir.display(),
                "wirewatch starting"
            );
        }
        let result = pipeline::run(&cfg, once, stop, shared).await;
        signals.abort();
        if let Some(n) = notifier {
            n.abort();
        }
        if let Some(s) = summaries {
            s.abort();
        }
        if let Some((bar, task)) = progress {
            task.abort();
            bar.finish_and_clear();
        }
        if let Some(h) = http {
            h.abort();
        }
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

fn progress_bar(
    metrics: Arc<crate::metrics::Metrics>,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files ({per_sec}, ETA {eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let b = bar.clone();
    let task = tokio::spawn(async move {
        loop {
            let done = metrics.emitted.get()
                + metrics.duplicates.get()
                + metrics.stale.get()
                + metrics.unchanged.get()
                + metrics.rejected_total();
            b.set_length(metrics.files_seen.get());
            b.set_position(done);
            b.set_message(format!("{} emitted", metrics.emitted.get()));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (bar, task)
}

async fn signal_loop(
    stop_tx: tokio::sync::watch::Sender<bool>,
    now: Arc<AtomicBool>,
    mut current: Config,
    config_path: Option<PathBuf>,
    overrides: impl Fn(&mut Config),
    reload_tx: tokio::sync::watch::Sender<Arc<Config>>,
    log_handle: Option<FilterHandle>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let mut first: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {
                reload(&mut current, config_path.as_deref(), &overrides, &reload_tx, log_handle.as_ref());
                continue;
            }
        }
        match first {
            None => {
                first = Some(std::time::Instant::now());
                tracing::info!(
                    "stopping: finishing the files in flight (signal again to stop at once)"
                );
                let _ = stop_tx.send(true);
            }
            // One request delivered twice at once (to the process and to its group,
            // as `timeout` does) is not a second request.
            Some(t) if t.elapsed() < Duration::from_millis(500) => {}
            Some(_) => {
                now.store(true, Ordering::Relaxed);
                tracing::warn!("stopping at once; uncommitted work is recovered at the next start");
                std::process::exit(130);
            }
        }
    }
}

/// SIGHUP: re-reads the config and applies what can change while running.
fn reload(
    current: &mut Config,
    path: Option<&std::path::Path>,
    overrides: &impl Fn(&mut Config),
    reload_tx: &tokio::sync::watch::Sender<Arc<Config>>,
    log_handle: Option<&FilterHandle>,
) {
    let mut next = match Config::load(path) {
        Ok((c, _)) => c,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: config not reloaded");
            return;
        }
    };
    overrides(&mut next);
    let restart_only = [
        ("watch", current.watch != next.watch),
        ("output.path", current.output.path != next.output.path),
        (
            "output.rejects",
            current.output.rejects != next.output.rejects,
        ),
        (
            "output.rotate_*",
            (
                current.output.rotate_bytes,
                current.output.rotate_secs,
                current.output.rotate_keep,
            ) != (
                next.output.rotate_bytes,
                next.output.rotate_secs,
                next.output.rotate_keep,
            ),
        ),
        ("state", current.state != next.state),
        ("pipeline", current.pipeline != next.pipeline),
        ("http", current.http != next.http),
    ];
    for (key, changed) in restart_only {
        if changed {
            tracing::warn!(key, "SIGHUP: this setting changes only at the next start");
        }
    }
    if let Some(h) = log_handle {
        if current.log != next.log {
            match EnvFilter::try_new(&next.log.level) {
                Ok(f) => {
                    let _ = h.reload(f);
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP: bad log.level"),
            }
        }
    }
    tracing::info!(
        "SIGHUP: configuration reloaded ([parse], [output] batch_* and linger_ms, [log] level)"
    );
    *current = next.clone();
    let _ = reload_tx.send(Arc::new(next));
}
