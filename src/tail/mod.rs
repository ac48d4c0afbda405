//! `wirewatch tail`: read the records stream back, for people and for scripts.
//!
//! This module owns three separable pieces; the NATS source (`--nats URL`,
//! [`nats`]) reuses the last two unchanged:
//!
//! * [`FileTail`], the **source**: reads complete lines from a JSON-lines file by
//!   path and, when following, keeps reading across rotation by rename (the old file
//!   is read to its end through the still-open handle before the new one is read from
//!   offset 0), copytruncate-style truncation (the file shrinks: start again from 0)
//!   and a file that does not exist yet (wait for it). It never hands out a partial
//!   line.
//! * [`Filter`], the **selection**: `--since`, `--person`, `--place`, `--org` on a
//!   record as a [`serde_json::Value`] (tolerant of fields it does not know).
//! * [`format_block`], the **presentation**: a compact, readable block per record
//!   for a terminal; [`Printer`] ties filter and format to an output and turns bad
//!   lines into one-line warnings on stderr.
//!
//! [`command`] is the `wirewatch tail` subcommand itself: arguments, config lookup,
//! the poll loop, SIGINT and broken pipes (`| head` exits 0).

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::config::Config;
use crate::error::ConfigError;

mod follow;
mod format;
mod nats;
mod printer;
mod sys;

pub use crate::filter::Filter;
pub use follow::FileTail;
#[cfg(test)]
use follow::Line;
#[cfg(test)]
use format::format_block;
pub use format::Style;
use printer::warn;
pub use printer::{Output, Printer};

/// How long the follower sleeps when there is nothing new.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Bytes read from the file per [`FileTail::poll`].
const CHUNK: usize = 256 * 1024;

/// A line longer than this is dropped (with a warning) rather than buffered further:
/// no record comes near it, so it is garbage, and memory stays bounded.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Width used for the terminal format when the terminal's width is unknown.
pub const DEFAULT_WIDTH: usize = 100;

/// Names shown per list (`people`, `places`, `organizations`) before `…`.
const NAMES_SHOWN: usize = 3;

/// Arguments of `wirewatch tail`.
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// JSON-lines file to read; default: `output.path` from the config
    /// (out/articles.jsonl).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Keep following the file, across rotation and truncation; wait for it if it
    /// does not exist yet. Stop with Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only records updated (else posted) at or after TIME: RFC 3339
    /// (2022-10-02T00:00:00Z), a date (2022-10-02, midnight in `parse.timezone`), or
    /// a duration back from now (90s, 30m, 1h, 2d, 1w, 1h30m).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records naming a person whose name or alias contains NAME (case and
    /// accents ignored). Repeat to require several.
    #[arg(long, value_name = "NAME")]
    pub person: Vec<String>,
    /// Only records naming a place whose name contains NAME (case and accents
    /// ignored). Repeat to require several.
    #[arg(long, value_name = "NAME")]
    pub place: Vec<String>,
    /// Only records naming an organization whose name or acronym contains NAME
    /// (case and accents ignored). Repeat to require several.
    #[arg(long, value_name = "NAME")]
    pub org: Vec<String>,
    /// Print each record as its raw JSON line instead of a readable block.
    #[arg(long)]
    pub json: bool,
    /// Config file; default: config/wirewatch.toml when present, else built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Read a NATS JetStream stream instead of a file (server URLs, comma-separated):
    /// the records it holds, in stream order, with the same view and filters; with
    /// -f, keep following it.
    #[arg(long, value_name = "URL[,URL...]", conflicts_with = "file")]
    pub nats: Option<String>,
    /// With `--nats`: the subject to follow (wildcards allowed).
    #[arg(
        long,
        value_name = "SUBJECT",
        default_value = "articles.>",
        requires = "nats"
    )]
    pub subject: String,
}

/// Why `wirewatch tail` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The file is not there and we were not asked to wait for it.
    #[error("{path}: no such file (is the daemon writing elsewhere? use -f to wait for it)")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The path is a directory or another non-regular file.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// Writing to standard output failed (a broken pipe is not an error: see
    /// [`TailError::exit_code`]).
    #[error("cannot write to standard output: {0}")]
    Write(#[source] io::Error),
    /// `--since` could not be read.
    #[error("--since {value:?}: {reason}")]
    Since {
        /// What was given.
        value: String,
        /// What is accepted.
        reason: String,
    },
    /// An empty `--person`, `--place` or `--org`.
    #[error("--{flag} needs a non-empty name")]
    EmptyName {
        /// The flag, without dashes.
        flag: &'static str,
    },
    /// The configured output is standard output, which cannot be read back.
    #[error("the configured output.path is \"-\" (standard output): name the file to read")]
    OutputIsStdout,
    /// The config file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reading the NATS stream failed.
    #[error("NATS {urls}: {source}")]
    Nats {
        /// The server URLs given.
        urls: String,
        /// Cause.
        #[source]
        source: crate::sink::SinkError,
    },
    /// The async runtime for the NATS client could not start.
    #[error("cannot start the NATS client's runtime: {0}")]
    Runtime(#[source] io::Error),
}

impl TailError {
    /// Exit status for this error: 0 for a closed output (`| head`), 2 for usage and
    /// config errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            TailError::Write(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
            TailError::Since { .. }
            | TailError::EmptyName { .. }
            | TailError::OutputIsStdout
            | TailError::Config(_) => 2,
            _ => 1,
        }
    }
}

/// Reads `--since`: an RFC 3339 time with an offset, a date (`YYYY-MM-DD`, midnight
/// in `tz`), or a duration back from `now` made of `<number><unit>` parts with units
/// `s`, `m`, `h`, `d`, `w` (`90s`, `30m`, `1h30m`, `2d`).
pub fn parse_since(value: &str, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, TailError> {
    let err = |reason: String| TailError::Since {
        value: value.to_owned(),
        reason,
    };
    let v = value.trim();
    if let Some(secs) = parse_duration_secs(v) {
        return now
            .checked_sub(SignedDuration::from_secs(secs))
            .map_err(|e| err(format!("too far back: {e}")));
    }
    if v.len() == 10 {
        if let Ok(date) = v.parse::<jiff::civil::Date>() {
            return date
                .to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .map_err(|e| err(e.to_string()));
        }
    }
    v.parse::<Timestamp>().map_err(|_| {
        err(
            "expected an RFC 3339 time with an offset (2022-10-02T00:00:00Z), a date \
             (2022-10-02) or a duration back from now (30m, 1h, 2d, 1h30m)"
                .into(),
        )
    })
}

/// `1h30m` → 5400. `None` unless the whole text is `<digits><unit>` parts.
fn parse_duration_secs(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        let unit = match rest[digits..].chars().next()? {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[digits + 1..];
    }
    Some(total)
}

/// `wirewatch tail`: returns the exit status (0 also after Ctrl-C or a closed pipe).
pub fn command(args: TailArgs) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            if code != 0 {
                warn(format_args!("{e}"));
            }
            ExitCode::from(code)
        }
    }
}

/// Resolves the arguments and runs the read (and follow) loop to its end.
pub fn run(args: &TailArgs) -> Result<(), TailError> {
    let (cfg, _) = Config::load(args.config.as_deref())?;
    let path = match &args.file {
        Some(p) => p.clone(),
        None if cfg.output.path == "-" => return Err(TailError::OutputIsStdout),
        None => PathBuf::from(&cfg.output.path),
    };
    for (flag, names) in [
        ("person", &args.person),
        ("place", &args.place),
        ("org", &args.org),
    ] {
        if names.iter().any(|n| n.trim().is_empty()) {
            return Err(TailError::EmptyName { flag });
        }
    }
    let since = match &args.since {
        Some(s) => {
            let tz = TimeZone::get(&cfg.parse.timezone).unwrap_or(TimeZone::UTC);
            Some(parse_since(s, Timestamp::now(), &tz)?)
        }
        None => None,
    };
    let filter = Filter::new(since, &args.person, &args.place, &args.org);
    let output = if args.json {
        Output::Json
    } else {
        Output::Block(Style::for_stdout())
    };
    sys::stop_on_interrupt();
    if let Some(urls) = &args.nats {
        return nats::follow_nats(&cfg.nats, urls, &args.subject, args.follow, filter, output);
    }
    let stdout = io::stdout();
    let mut printer = Printer::new(filter, output, io::BufWriter::new(stdout.lock()));
    let mut source = FileTail::new(path, args.follow);
    let origin = source.path().display().to_string();
    let mut lines = Vec::new();
    while !sys::STOP.load(Ordering::Relaxed) {
        lines.clear();
        let progressed = source.poll(&mut lines)?;
        for line in &lines {
            if sys::STOP.load(Ordering::Relaxed) {
                break;
            }
            printer
                .line(&origin, line.number, &line.bytes)
                .map_err(TailError::Write)?;
        }
        printer.flush().map_err(TailError::Write)?;
        if progressed {
            continue;
        }
        if !args.follow {
            let pending = source.pending_bytes();
            if pending > 0 {
                warn(format_args!(
                    "{origin}: skipping an incomplete last line ({pending} bytes, still being written?)"
                ));
            }
            break;
        }
        if sys::stdout_closed() {
            // Nobody reads any more (`| head` exited): stop like a write would.
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::io::Write;

    fn record() -> Value {
        json!({
            "article_id": "1839577d31e01d1b",
            "dateline": "Washington",
            "title": "US Secretary of State Antony Blinken kicks off a Latin American tour in Colombia on Monday aimed at strengthening ties with key allies recently led by leftist presidents",
            "posted_at": "2022-10-02T22:23:00-04:00",
            "updated_at": "2022-10-02T22:53:00-04:00",
            "timezone": "America/Toronto",
            "revision": 2,
            "supersedes": "2022-10-02T22:23:00-04:00",
            "people": [
                {"name": "Antony Blinken", "aliases": ["Mr. Blinken", "Blinken"], "mentions": 3, "roles": []},
                {"name": "Jair Bolsonaro", "aliases": [], "mentions": 1, "roles": []},
                {"name": "Luiz Inácio Lula da Silva", "aliases": ["Lula"], "mentions": 2, "roles": []},
                {"name": "Gustavo Petro", "aliases": [], "mentions": 1, "roles": []}
            ],
            "places": [
                {"name": "Washington", "mentions": 1, "kind": "city", "country": "US"},
                {"name": "Colombia", "mentions": 2, "kind": "country", "country": "CO"},
                {"name": "Bogotá", "mentions": 1, "kind": "city", "country": "CO"}
            ],
            "organizations": [
                {"name": "Organization of American States", "acronym": "OAS", "mentions": 2}
            ]
        })
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn block_has_time_dateline_revision_title_and_names() {
        let b = format_block(&record(), &Style::default());
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(
            lines[0],
            "2022-10-02 22:53 -04:00  Washington  rev 2 (was 22:23)"
        );
        assert!(lines[1].starts_with("US Secretary of State Antony Blinken"));
        assert!(lines[1].ends_with('…') && lines[1].chars().count() <= DEFAULT_WIDTH);
        assert!(!lines[1].contains(" …"), "cut at a word: {:?}", lines[1]);
        // People and places take turns; organizations get what is left, if it fits.
        assert_eq!(
            lines[2],
            "people: Antony Blinken, Jair Bolsonaro, …   places: Washington, Colombia, Bogotá"
        );
        let wide = format_block(
            &record(),
            &Style {
                width: 200,
                color: false,
            },
        );
        assert!(wide.lines().nth(1).is_some_and(|l| !l.ends_with('…')));
        assert!(wide.contains(
            "people: Antony Blinken, Jair Bolsonaro, Luiz Inácio Lula da Silva, …   places: Washington, Colombia, Bogotá   orgs: "
        ), "{wide}");
        assert!(lines[2].chars().count() <= DEFAULT_WIDTH);
        assert_eq!(lines.len(), 3);
        assert!(!b.contains('\x1b'));
    }

    #[test]
    fn block_colors_only_when_asked_and_strips_control_characters() {
        let mut r = record();
        r["title"] = json!("Evil \u{1b}[31mred\u{1b}[0m title");
        let b = format_block(
            &r,
            &Style {
                width: 80,
                color: true,
            },
        );
        assert!(b.contains("\x1b[1mEvil  [31mred [0m title\x1b[0m"), "{b:?}");
        assert!(b.starts_with("\x1b[2m2022-10-02 22:53 -04:00"));
        assert!(b.contains("\x1b[2mpeople:\x1b[0m Antony Blinken"));
    }

    #[test]
    fn block_of_a_bare_record() {
        let r = json!({"article_id": "x", "title": "Hello", "posted_at": "2022-10-02", "revision": 1, "supersedes": null});
        assert_eq!(
            format_block(&r, &Style::default()),
            "2022-10-02  rev 1\nHello\n"
        );
        let r = json!({"article_id": "x", "title": "Hi", "updated_at": "2022-10-03T00:10:00-04:00", "revision": 3, "supersedes": "2022-10-02T23:50:00-04:00"});
        assert!(format_block(&r, &Style::default())
            .starts_with("2022-10-03 00:10 -04:00  rev 3 (was 2022-10-02 23:50)\n"));
    }

    #[test]
    fn name_filters_fold_case_and_accents_and_and_together() {
        let r = record();
        let f = |p: &[&str], pl: &[&str], o: &[&str]| {
            let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            Filter::new(None, &s(p), &s(pl), &s(o)).matches(&r)
        };
        assert!(f(&["blinken"], &[], &[]));
        assert!(f(&["LUIZ INACIO"], &[], &[]));
        assert!(f(&["lula"], &[], &[]), "alias");
        assert!(f(&[], &["bogota"], &[]));
        assert!(f(&[], &["  colom "], &[]));
        assert!(f(&[], &[], &["oas"]), "acronym");
        assert!(f(&[], &[], &["american states"]));
        assert!(f(&["blinken", "petro"], &["colombia"], &["oas"]));
        assert!(!f(&["blinken", "trudeau"], &[], &[]));
        assert!(!f(&["blinken"], &["paris"], &[]));
        assert!(!f(&[], &[], &["nato"]));
        assert!(Filter::default().matches(&json!({"article_id": "x"})));
        assert!(!Filter::new(None, &["a".into()], &[], &[]).matches(&json!({"article_id": "x"})));
    }

    #[test]
    fn since_compares_instants_and_whole_days() {
        let r = record();
        let f = |s: &str| Filter::new(Some(t(s)), &[], &[], &[]).matches(&r);
        assert!(f("2022-10-03T02:53:00Z"), "at the bound");
        assert!(!f("2022-10-03T02:54:00Z"));
        let day =
            json!({"article_id": "x", "posted_at": "2022-10-02", "timezone": "America/Toronto"});
        let g = |s: &str| Filter::new(Some(t(s)), &[], &[], &[]).matches(&day);
        assert!(g("2022-10-02T23:59:00-04:00"));
        assert!(!g("2022-10-03T00:00:00-04:00"));
        let none = json!({"article_id": "x", "posted_at": null});
        assert!(!Filter::new(Some(t("2000-01-01T00:00:00Z")), &[], &[], &[]).matches(&none));
    }

    #[test]
    fn since_parses_times_dates_and_durations() {
        let now = t("2022-10-03T12:00:00Z");
        let tz = TimeZone::get("America/Toronto").unwrap();
        let p = |s: &str| parse_since(s, now, &tz).unwrap();
        assert_eq!(p("2022-10-02T00:00:00Z"), t("2022-10-02T00:00:00Z"));
        assert_eq!(p("2022-10-02T00:00:00+02:00"), t("2022-10-01T22:00:00Z"));
        assert_eq!(p("2022-10-02"), t("2022-10-02T04:00:00Z"));
        assert_eq!(p("1h"), t("2022-10-03T11:00:00Z"));
        assert_eq!(p("30m"), t("2022-10-03T11:30:00Z"));
        assert_eq!(p("2d"), t("2022-10-01T12:00:00Z"));
        assert_eq!(p("1h30m"), t("2022-10-03T10:30:00Z"));
        assert_eq!(p("1w"), t("2022-09-26T12:00:00Z"));
        for bad in [
            "",
            "h",
            "1x",
            "yesterday",
            "2022-10-02T00:00:00",
            "1h-",
            "-1h",
        ] {
            assert!(parse_since(bad, now, &tz).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn printer_skips_bad_lines_and_separates_blocks() {
        let mut out = Vec::new();
        let mut p = Printer::new(Filter::default(), Output::Block(Style::default()), &mut out);
        let rec = serde_json::to_vec(&record()).unwrap();
        p.line("f", 1, &rec).unwrap();
        p.line("f", 2, b"{not json").unwrap();
        p.line("f", 3, b"[1,2]").unwrap();
        p.line("f", 4, b"   ").unwrap();
        p.line("f", 5, &rec).unwrap();
        assert_eq!(p.printed(), 2);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\n\n").count(), 1, "{text}");
        assert!(!text.ends_with("\n\n"));
    }

    #[test]
    fn file_tail_reads_only_complete_lines_and_follows_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, b"one\ntw").unwrap();
        let mut tail = FileTail::new(path.clone(), true);
        let mut lines = Vec::new();
        while tail.poll(&mut lines).unwrap() {}
        assert_eq!(lines.len(), 1);
        assert_eq!(tail.pending_bytes(), 2);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"o\nthree\n").unwrap();
        while tail.poll(&mut lines).unwrap() {}
        let text: Vec<&[u8]> = lines.iter().map(|l| l.bytes.as_slice()).collect();
        assert_eq!(text, [&b"one"[..], b"two", b"three"]);
        assert_eq!(lines[2].number, 3);
        f.set_len(0).unwrap();
        f.write_all(b"four\n").unwrap();
        lines.clear();
        while tail.poll(&mut lines).unwrap() {}
        assert_eq!(
            lines,
            [Line {
                number: 1,
                bytes: b"four".to_vec()
            }]
        );
    }

    #[test]
    fn file_tail_without_follow_reports_a_missing_file() {
        let mut tail = FileTail::new("/nonexistent/wirewatch/a.jsonl".into(), false);
        let err = tail.poll(&mut Vec::new()).unwrap_err();
        assert!(matches!(err, TailError::Missing { .. }));
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("no such file"));
    }

    #[test]
    fn broken_pipe_exits_zero() {
        let e = TailError::Write(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(e.exit_code(), 0);
    }
}
