//! Configuration: the TOML file, its defaults, and validation that names the key at
//! fault. Unknown keys are errors, so a typo never silently falls back to a default.
//!
//! Lookup order: `--config FILE` if given (must exist), else `config/wirewatch.toml`
//! in the working directory if present, else the embedded defaults (the same values
//! as the commented file in `config/wirewatch.toml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod http;
pub mod nats;
pub mod security;
mod validate;

pub use http::HttpConfig;
pub use validate::check_log_level;

use crate::error::ConfigError;
use crate::parse::{Limits, ParseOptions};

/// Where the config is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "config/wirewatch.toml";

/// The largest `parse.max_extract_ms` accepted: one hour.
const MAX_EXTRACT_MS_LIMIT: u64 = 3_600_000;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How files are read.
    pub parse: ParseConfig,
    /// Which folder is watched and how.
    pub watch: WatchConfig,
    /// Where records and rejects go.
    pub output: OutputConfig,
    /// The dedupe state.
    pub state: StateConfig,
    /// Stage wiring.
    pub pipeline: PipelineConfig,
    /// The HTTP listener (metrics, health, live events), its token and TLS.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Where records go (`file` or `nats`).
    pub sink: nats::SinkConfig,
    /// The NATS JetStream cluster, stream and subjects.
    pub nats: nats::NatsConfig,
    /// Where dedupe decisions are kept (`local` or `nats`).
    pub dedupe: nats::DedupeConfig,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Level filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing
    /// directive such as `wirewatch=debug`); `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// `[parse]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ParseConfig {
    /// IANA zone the stamps are written in.
    pub timezone: String,
    /// Largest file accepted, bytes.
    pub max_bytes: u64,
    /// Longest line accepted, bytes.
    pub max_line_bytes: usize,
    /// Longest time the extract stage may take over one file, milliseconds; a file
    /// that takes longer is rejected (`too_slow`).
    pub max_extract_ms: u64,
}

/// How the watched folder is followed.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// File-system events (inotify), with a rescan on overflow.
    Events,
    /// Rescan every `poll_interval_ms` (for network file systems without events).
    Poll,
}

/// `[watch]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Folder to watch.
    pub dir: PathBuf,
    /// Also watch sub-folders.
    pub recursive: bool,
    /// Globs a file's path (relative to `dir`) must match; empty means every file.
    pub include: Vec<String>,
    /// Globs that exclude a file even if included.
    pub exclude: Vec<String>,
    /// A file written in place is taken after this many quiet milliseconds.
    pub settle_ms: u64,
    /// `events` or `poll`.
    pub mode: WatchMode,
    /// Rescan interval in `poll` mode, milliseconds.
    pub poll_interval_ms: u64,
}

/// `[output]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// JSON-lines file the records are appended to; `-` for stdout. A regular file
    /// (or a path where one can be created), other than `rejects`.
    pub path: String,
    /// JSON-lines file the rejected files are recorded in: a regular file other
    /// than `path`.
    pub rejects: PathBuf,
    /// Commit (fsync) after at most this many records.
    pub batch_records: usize,
    /// Commit at most this many milliseconds after the first uncommitted record,
    /// waiting only while more files are on their way (found, handed over or being
    /// read).
    pub batch_ms: u64,
    /// Wait at least this many milliseconds (at most `batch_ms`) after the first
    /// uncommitted record even when no file is on its way: fewer, larger commits
    /// for a quiet folder, at that much more latency. 0 commits at once.
    pub linger_ms: u64,
    /// Rotate the output once it reaches this many bytes (0 = never).
    pub rotate_bytes: u64,
    /// Rotate the output after this many seconds (0 = never).
    pub rotate_secs: u64,
    /// Rotated outputs to keep (0 = all).
    pub rotate_keep: usize,
}

/// `[state]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Folder of the dedupe database.
    pub dir: PathBuf,
    /// Forget articles whose newest version is older than this many days.
    pub expire_days: u32,
    /// Memory for the state database's page cache, in MiB: the one part of the
    /// daemon's memory that grows with the number of articles, up to this bound.
    pub cache_mib: usize,
}

/// `[pipeline]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Parse + extract workers; 0 means one per core.
    pub workers: usize,
    /// Capacity of each channel between stages.
    pub channel_capacity: usize,
}

impl Default for ParseConfig {
    fn default() -> Self {
        let l = Limits::default();
        ParseConfig {
            timezone: "America/Toronto".into(),
            max_bytes: l.max_bytes,
            max_line_bytes: l.max_line_bytes,
            max_extract_ms: crate::parse::DEFAULT_MAX_EXTRACT_MS,
        }
    }
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            dir: "inbox".into(),
            recursive: true,
            include: Vec::new(),
            exclude: Vec::new(),
            settle_ms: 500,
            mode: WatchMode::Events,
            poll_interval_ms: 1000,
        }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            path: "out/articles.jsonl".into(),
            rejects: "out/rejected.jsonl".into(),
            batch_records: 256,
            batch_ms: 5,
            linger_ms: 0,
            rotate_bytes: 0,
            rotate_secs: 0,
            rotate_keep: 0,
        }
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: "state".into(),
            expire_days: 30,
            cache_mib: 16,
        }
    }
}

impl PipelineConfig {
    /// Parse + extract workers: `workers`, or one per core when it is 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 0,
            channel_capacity: 256,
        }
    }
}

/// Largest config file read (a config is a few KiB; this stops `--config /dev/zero`).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Largest `parse.max_bytes`: every worker may hold a file this size in memory.
pub const MAX_FILE_BYTES: u32 = 256 << 20;

/// Largest `pipeline.workers`.
pub const MAX_WORKERS: usize = 1024;

/// Largest millisecond setting for waits and intervals: one day.
const MAX_MS: u32 = 86_400_000;

/// The level words `log.level` takes, alone or after `target=`.
pub const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Reads a config file of at most [`MAX_CONFIG_BYTES`], refusing what is not a
/// regular file (a device or FIFO would be read without end or block).
fn read_limited(p: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let fail = |source| ConfigError::Read {
        path: p.display().to_string(),
        source,
    };
    let file = std::fs::File::open(p).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} KiB; a config file is a few KiB",
                MAX_CONFIG_BYTES >> 10
            ),
        )));
    }
    String::from_utf8(bytes)
        .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

impl Config {
    /// Loads `path`, or [`DEFAULT_PATH`] when present, or the defaults. Validates.
    pub fn load(path: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let chosen = match path {
            Some(p) => Some(p.to_owned()),
            None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.is_file()),
        };
        let Some(p) = chosen else {
            return Ok((Config::default(), None));
        };
        let text = read_limited(&p)?;
        let cfg = Config::from_toml(&text, &p.display().to_string())?;
        Ok((cfg, Some(p)))
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Parser options from `[parse]`, with an optional zone override.
    pub fn parse_options(&self, tz_override: Option<&str>) -> Result<ParseOptions, ConfigError> {
        let name = tz_override.unwrap_or(&self.parse.timezone);
        let mut opts = ParseOptions::new(name).map_err(|_| ConfigError::Value {
            path: "--timezone".into(),
            key: "timezone".into(),
            message: format!("{name:?} is not an IANA time zone name (e.g. \"America/Toronto\")"),
        })?;
        opts.limits = Limits {
            max_bytes: self.parse.max_bytes,
            max_line_bytes: self.parse.max_line_bytes,
        };
        opts.max_extract = std::time::Duration::from_millis(self.parse.max_extract_ms);
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_equals_defaults() {
        let text = include_str!("../../config/wirewatch.toml");
        assert_eq!(
            Config::from_toml(text, "config/wirewatch.toml").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("[parse]\ntimezon = \"UTC\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timezon"), "{e}");
        let e = Config::from_toml("[nope]\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::from_toml("[parse]\ntimezone = \"Mars/Olympus\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("parse.timezone"), "{e}");
        let e = Config::from_toml("[parse]\nmax_bytes = \"big\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_bytes"), "{e}");
        for bad in ["0", "3600001"] {
            let e = Config::from_toml(&format!("[parse]\nmax_extract_ms = {bad}\n"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains("parse.max_extract_ms"), "{e}");
        }
        let e = Config::from_toml("[watch]\ninclude = [\"[\"]\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("watch.include"), "{e}");
    }

    #[test]
    fn numbers_out_of_range_are_refused_by_name() {
        for (text, key) in [
            (
                "[pipeline]\nchannel_capacity = 9223372036854775807\n",
                "pipeline.channel_capacity",
            ),
            (
                "[pipeline]\nchannel_capacity = 0\n",
                "pipeline.channel_capacity",
            ),
            (
                "[pipeline]\nworkers = 4611686018427387904\n",
                "pipeline.workers",
            ),
            (
                "[state]\ncache_mib = 9223372036854775807\n",
                "state.cache_mib",
            ),
            ("[state]\nexpire_days = 0\n", "state.expire_days"),
            ("[output]\nbatch_records = 0\n", "output.batch_records"),
            ("[output]\nbatch_ms = 100000000\n", "output.batch_ms"),
            (
                "[output]\nbatch_ms = 5\nlinger_ms = 6\n",
                "output.linger_ms",
            ),
            ("[parse]\nmax_bytes = 0\n", "parse.max_bytes"),
            ("[parse]\nmax_bytes = 17179869184\n", "parse.max_bytes"),
            ("[watch]\nsettle_ms = 999999999999\n", "watch.settle_ms"),
        ] {
            let e = Config::from_toml(text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("range"), "{text}: {e}");
        }
        let ok = Config::from_toml(
            "[pipeline]\nworkers = 1024\nchannel_capacity = 65536\n",
            "t.toml",
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn log_levels_are_checked_as_levels() {
        for good in [
            "info",
            "WARN",
            "off",
            "wirewatch=debug",
            "info,async_nats=warn",
            "trace",
        ] {
            assert!(check_log_level(good).is_ok(), "{good}");
        }
        for bad in [
            "warning",
            "verbose",
            "",
            "info,loud",
            "wirewatch=chatty",
            "wirewatch",
        ] {
            assert!(check_log_level(bad).is_err(), "{bad}");
            let e = Config::from_toml(&format!("[log]\nlevel = {bad:?}\n"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains("log.level"), "{bad}: {e}");
        }
    }

    #[test]
    fn config_files_are_read_with_a_limit() {
        let e = Config::load(Some(Path::new("/dev/zero")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
        let e = Config::load(Some(&big)).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
