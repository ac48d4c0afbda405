//! The process's logger: human lines or JSON objects on stderr, at a level that
//! `SIGHUP` can change ([`FilterHandle`]), unless `RUST_LOG` rules.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// Changes the level of the logger [`init_logging`] installed.
pub type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// Installs the global logger (stderr); returns a handle to change its level (none when
/// `RUST_LOG` rules).
pub fn init_logging(format: LogFormat, level: &str) -> Option<FilterHandle> {
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let filter = match &from_env {
        Some(v) => EnvFilter::new(v),
        // The NATS client is chatty at info; keep it to warnings unless asked.
        None if !level.contains("async_nats") => {
            EnvFilter::try_new(format!("{level},async_nats=warn"))
                .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn"))
        }
        None => EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Human => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init();
    from_env.is_none().then_some(handle)
}
