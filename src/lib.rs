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
//! * [`record`] is the data model every stage shares and the JSON contract of the
//!   output stream.
//! * [`config`] loads and validates `config/wirewatch.toml` (unknown keys are errors).
//! * [`cli`] is the command line; `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod config;
pub mod daemon;
pub mod dedupe;
pub mod error;
pub mod metrics;
pub mod nats;
pub mod parse;
pub mod pipeline;
pub mod record;
pub mod sink;
pub mod watch;
