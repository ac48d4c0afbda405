//! The process's logger: human lines or JSON objects on stderr, at a level that
//! `SIGHUP` can change ([`FilterHandle`]), unless `RUST_LOG` rules.
//!
//! JSON lines are flat, as log collectors (Vector, Loki, Elastic's ECS) read them:
//! `timestamp`, `level`, `message`, `target` and the event's fields side by side.
//! Human lines are coloured only when stderr is a terminal and `NO_COLOR` is unset
//! or empty (<https://no-color.org>).

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
/// `RUST_LOG` rules). `level` is `--log-level` when `from_flag`, which then rules over
/// `RUST_LOG`; else it is `[log] level`, which `RUST_LOG` overrides.
pub fn init_logging(format: LogFormat, level: &str, from_flag: bool) -> Option<FilterHandle> {
    let from_env = (!from_flag)
        .then(|| std::env::var("RUST_LOG").ok())
        .flatten()
        .filter(|v| !v.is_empty());
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
        LogFormat::Human => fmt
            .with_ansi(colour(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init();
    from_env.is_none().then_some(handle)
}

/// Colour codes only on a terminal, and never when `NO_COLOR` is set to something.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new(""))));
    }
}
