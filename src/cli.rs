//! Command line: `wirewatch check`, `wirewatch validate` (and the daemon's `run`).
//!
//! Every subcommand returns an exit code instead of exiting, so tests can drive it
//! and `main.rs` stays a one-liner.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jiff::Timestamp;
use serde_json::json;

use crate::config::Config;
use crate::parse;

/// Watch a folder of news article files and append one enriched JSON record per
/// article version.
#[derive(Debug, Parser)]
#[command(name = "wirewatch", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse article files and print one JSON record per file on stdout.
    ///
    /// Files that cannot be articles print `{"path":…,"error":{"kind":…,"message":…}}`
    /// on stderr; the others still print, and the exit status is then 1.
    Check {
        /// Capture moment (RFC 3339) the stamps are resolved against; default: each
        /// file's modification time.
        #[arg(long, value_name = "RFC3339")]
        reference_time: Option<String>,
        /// IANA time zone of the stamps; default: `parse.timezone` from the config.
        #[arg(long, value_name = "TZ")]
        timezone: Option<String>,
        /// Config file; default: config/wirewatch.toml when present, else built-in defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Article files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Check a config file and say which key is wrong and why.
    Validate {
        /// Config file; default: config/wirewatch.toml when present, else built-in defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            reference_time,
            timezone,
            config,
            files,
        } => check(
            reference_time.as_deref(),
            timezone.as_deref(),
            config.as_deref(),
            &files,
        ),
        Command::Validate { config } => validate(config.as_deref()),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("wirewatch: {message}");
    ExitCode::from(2)
}

/// `wirewatch validate`.
pub fn validate(config: Option<&Path>) -> ExitCode {
    match Config::load(config) {
        Ok((_, Some(path))) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Ok((_, None)) => {
            println!(
                "no config file ({} absent): built-in defaults are valid",
                crate::config::DEFAULT_PATH
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `wirewatch check`.
pub fn check(
    reference: Option<&str>,
    tz: Option<&str>,
    config: Option<&Path>,
    files: &[PathBuf],
) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok((c, _)) => c,
        Err(e) => return fail(e),
    };
    let opts = match cfg.parse_options(tz) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let reference = match reference.map(str::parse::<Timestamp>).transpose() {
        Ok(r) => r,
        Err(e) => {
            return fail(format_args!(
                "--reference-time {:?} is not an RFC 3339 time with an offset (e.g. 2022-10-03T02:55:00Z): {e}",
                reference.unwrap_or_default()
            ))
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut status = ExitCode::SUCCESS;
    for path in files {
        let result =
            parse::read_file(path, &opts.limits).and_then(|f| parse::parse(&f, reference, &opts));
        match result {
            Ok(mut record) => {
                crate::extract::extract(&mut record);
                let line = match serde_json::to_string(&record) {
                    Ok(l) => l,
                    Err(e) => return fail(format_args!("cannot serialize record: {e}")),
                };
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::from(1);
                }
            }
            Err(reject) => {
                let (p, hex) = parse::path_strings(path);
                let mut v =
                    json!({"path": p, "error": {"kind": reject.kind, "message": reject.message}});
                if let Some(h) = hex {
                    v["path_hex"] = json!(h);
                }
                eprintln!("{v}");
                status = ExitCode::from(1);
            }
        }
    }
    status
}
