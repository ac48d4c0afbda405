//! Command line: `wirewatch check`, `wirewatch validate`, `wirewatch schema` (and the
//! daemon's `run`).
//!
//! Every subcommand returns an exit code instead of exiting, so tests can drive it
//! and `main.rs` stays a one-liner.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;

use crate::config::Config;
use crate::logging::LogFormat;
use crate::pipeline;

/// Watch a folder of news article files and append one enriched JSON record per
/// article version.
#[derive(Debug, Parser)]
#[command(
    name = "wirewatch",
    version = crate::metrics::VERSION_LINE,
    about,
    propagate_version = true
)]
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
    /// The record is the daemon's without what only emitting sets: `emitted_at` is
    /// null, `revision` and `supersedes` are left out.
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
        /// Compute `changes` of the (single) FILE against this older version, as the
        /// daemon does for a revision.
        #[arg(long, value_name = "OLD")]
        against: Option<PathBuf>,
        /// Article files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Watch a folder and append one JSON line per new article version.
    ///
    /// With no flags: reads config/wirewatch.toml when present, else built-in
    /// defaults (watch inbox/, output out/articles.jsonl, rejects
    /// out/rejected.jsonl, state state/).
    Run {
        /// Config file; default: config/wirewatch.toml when present, else built-in defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Folder to watch (overrides `watch.dir`).
        #[arg(long, value_name = "DIR")]
        watch: Option<PathBuf>,
        /// Output file, or `-` for stdout (overrides `output.path`).
        #[arg(long, value_name = "FILE|-")]
        output: Option<String>,
        /// Rejects file (overrides `output.rejects`).
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
        /// State folder (overrides `state.dir`).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Process the files already there, wait until the output is durable, print a
        /// summary on stderr and exit.
        #[arg(long)]
        once: bool,
        /// Log format on stderr.
        #[arg(long, value_enum, default_value_t = LogFormat::Human)]
        log_format: LogFormat,
        /// Log level (`error`, `warn`, `info`, `debug`, `trace`, or `target=level`
        /// directives joined by commas); overrides `[log] level` and `RUST_LOG`.
        #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
        log_level: Option<String>,
    },
    /// Print the records of the output file as short readable blocks (or raw JSON
    /// with --json); with -f, keep following it across rotation.
    Tail(crate::tail::TailArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this command line; with --dir,
    /// write it and one page per subcommand (`wirewatch-run.1`, ...) there.
    Man {
        /// Folder to write every page into (e.g. /usr/local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the JSON Schema (draft 2020-12) of a record line or of a reject line.
    Schema {
        /// Which line: `record` (the output) or `reject` (the rejects file).
        #[arg(value_enum, default_value_t = SchemaKind::Record)]
        kind: SchemaKind,
        /// The reject line's schema (the same as `schema reject`).
        #[arg(long, conflicts_with = "kind")]
        reject: bool,
    },
    /// Check a config file and say which key is wrong and why.
    Validate {
        /// Config file; default: config/wirewatch.toml when present, else built-in defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// The lines `wirewatch schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// A record line of the output.
    Record,
    /// A line of the rejects file.
    Reject,
}

/// `wirewatch schema`: prints the JSON Schema of `kind`'s line on stdout.
pub fn schema(kind: SchemaKind) -> ExitCode {
    let text = match kind {
        SchemaKind::Record => crate::record::RECORD_SCHEMA,
        SchemaKind::Reject => pipeline::REJECT_SCHEMA,
    };
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wirewatch: cannot write the schema to stdout: {e}");
            ExitCode::from(1)
        }
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            reference_time,
            timezone,
            config,
            against,
            files,
        } => check(
            reference_time.as_deref(),
            timezone.as_deref(),
            config.as_deref(),
            against.as_deref(),
            &files,
        ),
        Command::Validate { config } => validate(config.as_deref()),
        Command::Schema { kind, reject } => schema(if reject { SchemaKind::Reject } else { kind }),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "wirewatch", &mut script);
            match std::io::stdout().write_all(&script) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::Man { dir } => {
            use clap::CommandFactory;
            // The pages carry the release, not the commit: one text per version.
            let cmd = Cli::command()
                .version(env!("CARGO_PKG_VERSION"))
                .long_version(None::<&str>);
            if let Some(dir) = dir {
                return match clap_mangen::generate_to(cmd, &dir) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(format!(
                        "cannot write the man pages to {}: {e}",
                        dir.display()
                    )),
                };
            }
            let mut page = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut page) {
                return fail(e);
            }
            match std::io::stdout().write_all(&page) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::Tail(args) => crate::tail::command(args),
        Command::Run {
            config,
            watch,
            output,
            rejects,
            state,
            once,
            log_format,
            log_level,
        } => {
            let log = crate::daemon::LogArgs {
                format: log_format,
                level_from_flag: log_level.is_some(),
            };
            let (mut cfg, path) = match Config::load(config.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let overrides = move |cfg: &mut Config| {
                if let Some(w) = &watch {
                    cfg.watch.dir = w.clone();
                }
                if let Some(o) = &output {
                    cfg.output.path = o.clone();
                }
                if let Some(r) = &rejects {
                    cfg.output.rejects = r.clone();
                }
                if let Some(s) = &state {
                    cfg.state.dir = s.clone();
                }
                if let Some(l) = &log_level {
                    cfg.log.level = l.clone();
                }
            };
            overrides(&mut cfg);
            if let Err(e) = cfg.validate("command line") {
                return fail(e);
            }
            crate::daemon::run(cfg, path, overrides, once, log)
        }
    }
}

fn parse_log_level(spec: &str) -> Result<String, String> {
    crate::config::check_log_level(spec).map(|()| spec.to_owned())
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

/// Prints the rejects-file line of `path` on stderr (what `wirewatch check` says of
/// a file that cannot be an article).
fn print_reject(path: &Path, reject: crate::error::Reject) {
    let seen = std::fs::symlink_metadata(path)
        .ok()
        .map(|m| crate::dedupe::FileEntry {
            size: m.len(),
            mtime_ns: crate::dedupe::mtime_ns(&m),
            sha256: None,
        });
    let line = pipeline::RejectLine::new(path, reject, seen.as_ref(), Timestamp::now());
    match serde_json::to_string(&line) {
        Ok(l) => eprintln!("{l}"),
        Err(e) => eprintln!("wirewatch: {}: {e}", path.display()),
    }
}

/// `wirewatch check`.
pub fn check(
    reference: Option<&str>,
    tz: Option<&str>,
    config: Option<&Path>,
    against: Option<&Path>,
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
    let previous = match against {
        None => None,
        Some(old) => {
            if files.len() != 1 {
                return fail("--against OLD takes exactly one FILE (the newer version)");
            }
            match pipeline::build_record(old, reference, &opts) {
                Ok(r) => Some(crate::diff::Snapshot::of(&r)),
                Err(reject) => {
                    print_reject(old, reject);
                    return ExitCode::from(1);
                }
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut status = ExitCode::SUCCESS;
    for path in files {
        match pipeline::build_record(path, reference, &opts) {
            Ok(mut record) => {
                if let Some(prev) = &previous {
                    record.changes = Some(Some(crate::diff::changes(prev, &record)));
                }
                let line = match serde_json::to_string(&record) {
                    Ok(l) => l,
                    Err(e) => return fail(format_args!("cannot serialize record: {e}")),
                };
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::from(1);
                }
            }
            Err(reject) => {
                print_reject(path, reject);
                status = ExitCode::from(1);
            }
        }
    }
    status
}
