//! wirewatch: a daemon that turns a folder of news article files into a stream of
//! enriched JSON records, one per article version.
//!
//! # Layout
//!
//! Follow one file from the watched folder to the output:
//!
//! * [`parse`] reads the file's bytes ([`parse::read_file`], refusing non-files and
//!   files over the size limit before reading them), decodes them (UTF-8, else
//!   Windows-1252), splits the lede and its `(Dateline)`, reads the `Posted`/`Updated`
//!   lines and resolves them against the capture moment in the configured zone
//!   ([`parse::stamp`]), groups paragraphs under headings ([`parse::layout`]), and
//!   derives the story identity `article_id` and the `content_hash`
//!   ([`parse::id`]). The result is a [`record::Record`]; a file that cannot be an
//!   article is an [`error::Reject`] with a stable [`error::RejectKind`].
//! * [`extract`] sits between parse and output: it reads the record's lede and paragraphs
//!   and fills `people`, `places` (embedded GeoNames gazetteer), `organizations`, `quotes`
//!   with speakers, `dates` resolved against the posted day, and `keywords` (YAKE).
//! * [`record`] is the data model every stage shares and the JSON contract of the
//!   output stream.
//! * [`config`] loads and validates `config/wirewatch.toml` (unknown keys are errors).
//! * [`tail`] reads the output back (`wirewatch tail`): follows the JSON-lines file
//!   across rotation and truncation, filters records by time and names, and prints
//!   them as JSON or as short blocks for a terminal.
//! * [`cli`] is the command line; `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod config;
pub mod daemon;
pub mod dedupe;
pub mod diff;
pub mod error;
pub mod extract;
pub mod filter;
pub mod hash;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod nats;
pub mod parse;
pub mod paths;
pub mod pipeline;
pub mod record;
pub mod runtime;
pub mod sink;
pub mod tail;
pub mod watch;

/// The process allocator: mimalloc (see docs/design.md); building
/// without the default `mimalloc` feature falls back to the system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
