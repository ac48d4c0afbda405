//! wirewatch: a daemon that turns a folder of news article files into a stream of
//! enriched JSON records, one per article version.
//!
//! # Layout
//!
//! Follow one file from the watched folder to the output; every module uses only the
//! ones above it in this list (no import cycles).
//!
//! Leaves, shared by every stage:
//! * [`error`]: the reject kinds and the configuration error; `hash`: FNV-1a, stable
//!   across builds; `fold`: the accent-free lower-case text that lookups and filters
//!   compare; `paths`: path ↔ bytes codecs, the checks of the output paths,
//!   the daemon's own files; `health`: the liveness `/health` reports;
//!   `logging`, `runtime`: the logger and the tokio runtimes; `retry`: the one
//!   backoff every retry loop uses.
//! * [`record`]: the data model every stage shares and the JSON contract of the
//!   output: the line as written (`record/wire.rs`), its JSON Schema
//!   (`schema.rs`), the `changes` types (`changes.rs`).
//!
//! The stages, in the order a file meets them:
//! * [`parse`](mod@parse) opens the file confined to the watched folder (`parse/open.rs`),
//!   decodes it (`decode.rs`), splits lede, dateline, stamp lines and headings
//!   (`layout.rs`), resolves the `Posted`/`Updated` stamps against the capture moment
//!   (`stamp.rs`), derives `article_id` and `content_hash` (`id.rs`) and tells the
//!   body language (`lang.rs`); the result is a [`record::Record`], or an
//!   [`error::Reject`].
//! * [`config`] loads and validates `config/wirewatch.toml` (`config/nats.rs`: the
//!   `[sink]`, `[nats]` and `[dedupe]` sections; `security.rs`: the `[nats]` TLS and
//!   authentication keys; `http.rs`: `[http]`, its access token and TLS files).
//! * [`extract`] fills `people`, `places`, `organizations`, `quotes`, `dates` and
//!   `keywords` (`extract/entities/` cuts names, `cues.rs`, `teams.rs`, `states.rs`
//!   tell names by context, `people/`, `orgs.rs`, `places.rs` resolve them,
//!   `quotes.rs`, `dates.rs`, `keywords/`).
//! * [`diff`] computes a revision's `changes` against the previous version's snapshot.
//! * [`sink`] appends records durably: the `Sink` trait, stdout, the locked file
//!   (`sink/file.rs`), its tail read back at a start (`sink/recover.rs`).
//! * [`dedupe`] judges each version (emit, duplicate, stale) and keeps the state: the
//!   policy (`dedupe/mod.rs`), the redb store (`store.rs`, `open.rs`), its errors.
//! * `metrics` holds the counters, gauges and histograms and their exposition
//!   (`metrics/expo.rs`: the text format 0.0.4 or OpenMetrics, `process.rs`: the
//!   `process_*` metrics, `nats.rs`: the NATS sink's); `build.rs` records the git
//!   commit for `wirewatch_build_info` and `--version`.
//! * [`nats`] is the scale-out: connecting securely (`nats/secure.rs`), the
//!   JetStream sink, reject lines on the cluster (`rejects.rs`), the cluster-wide
//!   ledger, reading the stream back.
//! * `watch` finds the files that are ready (`watch/scan.rs`: the folder's state,
//!   `paths.rs`: which paths are candidates).
//! * [`pipeline`] wires the stages with bounded channels: the reader on the blocking
//!   pool (`pipeline/reader.rs`), the committer and its commit protocol, which stamps
//!   `emitted_at` (`committer.rs`), the rejects file and its JSON Schema
//!   (`rejects.rs`), what HTTP shares
//!   (`events.rs`).
//! * `filter` selects records by time and names, for `http` (`/metrics`,
//!   `/health`, `/events`; `http/auth.rs`: the access token, `tls.rs`: HTTPS
//!   handshakes, `conn.rs`: the connections) and `tail` (`wirewatch tail`: `tail/follow.rs`,
//!   `nats.rs`, `format.rs`, `printer.rs`, `sys.rs`).
//! * `systemd` tells a service manager when the daemon is ready, what it is doing,
//!   and feeds its watchdog while the committer beats.
//! * `daemon` runs the pipeline with signals, `SIGHUP` reloads and progress.
//! * [`cli`] is the command line; `main.rs` only calls [`cli::main`].
//!
//! # Public API
//!
//! The modules above in links are public: the record model, the stages a program can
//! run on its own text (`parse`, `extract`, `diff`, `dedupe`'s verdict and store), the
//! sinks, the scale-out pieces and the command line. The plumbing (watcher, daemon,
//! HTTP, tail, metrics and the leaves they share) is private; the names most callers
//! need are re-exported here.

pub mod cli;
pub mod config;
mod daemon;
pub mod dedupe;
pub mod diff;
pub mod error;
pub mod extract;
mod filter;
mod fold;
mod hash;
mod health;
mod http;
mod logging;
mod metrics;
pub mod nats;
pub mod parse;
mod paths;
pub mod pipeline;
pub mod record;
mod retry;
mod runtime;
pub mod sink;
mod systemd;
mod tail;
mod watch;

pub use error::{ConfigError, Reject, RejectKind};
pub use extract::ExtractOptions;
pub use parse::{parse, ParseOptions, SourceFile};
pub use pipeline::enrich;
pub use record::{Record, Stamp};

/// The process allocator: mimalloc (see docs/design.md); building
/// without the default `mimalloc` feature falls back to the system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
