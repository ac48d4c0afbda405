//! `wirewatch tail`: read the records stream back, for people and for scripts.
//!
//! This module owns three separable pieces, so that another source of lines (a later
//! `--nats URL`) can reuse the last two unchanged:
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

use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::config::Config;
use crate::error::ConfigError;
use crate::record::Stamp;

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
    /// Follow a NATS JetStream stream instead of a file (server URLs, comma-separated);
    /// same view and filters. Follows until interrupted.
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

// ---------------------------------------------------------------------------------
// Filter
// ---------------------------------------------------------------------------------

/// Which records to show. Every condition must hold (AND); an empty filter passes
/// everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    since: Option<Timestamp>,
    people: Vec<String>,
    places: Vec<String>,
    orgs: Vec<String>,
}

impl Filter {
    /// A filter from `--since` (already resolved) and the name needles, which are
    /// folded here (case, accents, runs of white space).
    pub fn new(
        since: Option<Timestamp>,
        people: &[String],
        places: &[String],
        orgs: &[String],
    ) -> Filter {
        let fold_all = |v: &[String]| v.iter().map(|s| fold(s)).collect();
        Filter {
            since,
            people: fold_all(people),
            places: fold_all(places),
            orgs: fold_all(orgs),
        }
    }

    /// True when the record passes every condition.
    ///
    /// `--since`: the record's `updated_at`, else `posted_at`, must be at or after the
    /// bound; a record with neither does not pass. A date-only stamp is a whole day
    /// in the record's `timezone` (UTC when unknown) and passes when any part of that
    /// day is at or after the bound.
    ///
    /// Names: each needle must be a substring of the folded `name` of some entry (or
    /// of its `aliases`, or an organization's `acronym`).
    pub fn matches(&self, record: &Value) -> bool {
        if let Some(since) = self.since {
            if !stamp_at_or_after(record, since) {
                return false;
            }
        }
        let all = |needles: &[String], key: &str, extra: &[&str]| {
            needles
                .iter()
                .all(|n| entity_names(record, key, extra).any(|name| fold(&name).contains(n)))
        };
        all(&self.people, "people", &["aliases"])
            && all(&self.places, "places", &["aliases"])
            && all(&self.orgs, "organizations", &["acronym", "aliases"])
    }
}

/// Case-, accent- and spacing-insensitive form of a name: `Montréal` → `montreal`.
pub fn fold(s: &str) -> String {
    deunicode::deunicode(s)
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every name of the entries of `record[key]`: the `name` of each object (or the
/// entry itself when it is a string), plus the `extra` fields (string or array of
/// strings) of each object.
fn entity_names<'a>(
    record: &'a Value,
    key: &str,
    extra: &'a [&'a str],
) -> impl Iterator<Item = String> + 'a {
    record
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(move |entry| {
            let mut names = Vec::new();
            match entry {
                Value::String(s) => names.push(s.clone()),
                Value::Object(o) => {
                    for field in std::iter::once(&"name").chain(extra) {
                        match o.get(*field) {
                            Some(Value::String(s)) => names.push(s.clone()),
                            Some(Value::Array(a)) => {
                                names.extend(a.iter().filter_map(Value::as_str).map(str::to_owned))
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
            names
        })
}

/// The stamp a record is placed in time by: `updated_at`, else `posted_at`.
fn record_stamp(record: &Value) -> Option<Stamp> {
    ["updated_at", "posted_at"]
        .iter()
        .filter_map(|k| record.get(*k).and_then(Value::as_str))
        .find_map(Stamp::parse)
}

fn stamp_at_or_after(record: &Value, since: Timestamp) -> bool {
    match record_stamp(record) {
        Some(Stamp::At { ts, .. }) => ts >= since,
        Some(Stamp::Day(day)) => {
            let tz = record
                .get("timezone")
                .and_then(Value::as_str)
                .and_then(|name| TimeZone::get(name).ok())
                .unwrap_or(TimeZone::UTC);
            // The day's end (the next midnight) must be after the bound.
            match day.tomorrow().and_then(|d| d.to_zoned(tz)) {
                Ok(end) => end.timestamp() > since,
                Err(_) => true,
            }
        }
        None => false,
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

// ---------------------------------------------------------------------------------
// Format
// ---------------------------------------------------------------------------------

/// How a block is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Longest line, in characters (the title and the names line are cut to it).
    pub width: usize,
    /// ANSI styling: bold title, dim metadata.
    pub color: bool,
}

impl Style {
    /// The style for standard output: its width when it is a terminal (else
    /// [`DEFAULT_WIDTH`]), colors when it is a terminal, `NO_COLOR` is unset or
    /// empty and `TERM` is not `dumb`.
    pub fn for_stdout() -> Style {
        let tty = io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Style {
            width: if tty { sys::terminal_width() } else { None }.unwrap_or(DEFAULT_WIDTH),
            color: tty && !no_color,
        }
    }
}

impl Default for Style {
    fn default() -> Self {
        Style {
            width: DEFAULT_WIDTH,
            color: false,
        }
    }
}

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// A record as a short block for a terminal, ending in a newline, no blank line:
///
/// ```text
/// 2022-10-02 22:53 -04:00  Washington  rev 2 (was 22:23)
/// US Secretary of State Antony Blinken kicks off a Latin American tour in Colombia…
/// people: Antony Blinken, Jair Bolsonaro, …   places: Washington, Colombia, Bogotá
/// ```
///
/// Line 1: the `updated_at` (else `posted_at`) stamp in the record's own offset, the
/// dateline, the revision and the stamp it supersedes. Line 2: the title, cut at a
/// word to `style.width`. Line 3 (left out when all are empty): up to three people
/// and three places, as many as fit in `style.width` (`…` when some are left out),
/// then organizations if they still fit. Control characters in the record are
/// replaced by spaces, so a record cannot drive the terminal.
pub fn format_block(record: &Value, style: &Style) -> String {
    let width = style.width.max(20);
    let paint = |code: &str, text: &str| {
        if style.color && !text.is_empty() {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    };
    let str_field = |k: &str| {
        record
            .get(k)
            .and_then(Value::as_str)
            .map(clean)
            .filter(|s| !s.is_empty())
    };

    // Line 1: time, dateline, revision.
    let stamp = record_stamp(record);
    let mut meta: Vec<String> = Vec::new();
    meta.push(match &stamp {
        Some(s) => show_stamp(s),
        None => "(no time)".into(),
    });
    if let Some(d) = str_field("dateline") {
        meta.push(d);
    }
    if let Some(rev) = record.get("revision").and_then(Value::as_u64) {
        let was = record
            .get("supersedes")
            .and_then(Value::as_str)
            .and_then(Stamp::parse)
            .map(|prev| format!(" (was {})", show_previous(&prev, stamp.as_ref())));
        meta.push(format!("rev {rev}{}", was.unwrap_or_default()));
    }
    let line1 = cut(&meta.join("  "), width);

    // Line 2: title (the lede when a record has no title).
    let title = str_field("title")
        .or_else(|| str_field("lede"))
        .unwrap_or_else(|| "(untitled)".into());
    let line2 = cut_at_word(&title, width);

    // Line 3: people and places, as many names of each as fit, each list getting a
    // turn; then organizations, only as far as they fit in what is left.
    let lists: Vec<(&str, Vec<String>, bool)> = [
        ("people", "people", true),
        ("places", "places", true),
        ("orgs", "organizations", false),
    ]
    .into_iter()
    .map(|(label, key, main)| (label, names_of(record, key), main))
    .filter(|(_, names, _)| !names.is_empty())
    .collect();
    let render = |counts: &[usize]| {
        lists
            .iter()
            .zip(counts)
            .filter(|(_, &n)| n > 0)
            .map(|((label, names, _), &n)| {
                let more = if n < names.len() { ", …" } else { "" };
                format!("{label}: {}{more}", names[..n].join(", "))
            })
            .collect::<Vec<_>>()
            .join("   ")
    };
    let mut counts: Vec<usize> = lists
        .iter()
        .map(|(_, _, main)| usize::from(*main))
        .collect();
    for main in [true, false] {
        loop {
            let mut grew = false;
            for i in 0..lists.len() {
                if lists[i].2 == main && counts[i] < lists[i].1.len().min(NAMES_SHOWN) {
                    counts[i] += 1;
                    if render(&counts).chars().count() <= width {
                        grew = true;
                    } else {
                        counts[i] -= 1;
                    }
                }
            }
            if !grew {
                break;
            }
        }
    }
    let parts: Vec<&str> = lists
        .iter()
        .zip(&counts)
        .filter(|(_, &n)| n > 0)
        .map(|((label, _, _), _)| *label)
        .collect();

    let mut out = String::new();
    out.push_str(&paint(DIM, &line1));
    out.push('\n');
    out.push_str(&paint(BOLD, &line2));
    out.push('\n');
    if !parts.is_empty() {
        let line3 = cut(&render(&counts), width);
        if style.color {
            // Dim the labels; the cut may have eaten the end of the line.
            let mut rest = line3.as_str();
            let mut colored = String::new();
            for label in &parts {
                let tag = format!("{label}:");
                if let Some(pos) = rest.find(&tag) {
                    colored.push_str(&rest[..pos]);
                    colored.push_str(&paint(DIM, &tag));
                    rest = &rest[pos + tag.len()..];
                }
            }
            colored.push_str(rest);
            out.push_str(&colored);
        } else {
            out.push_str(&line3);
        }
        out.push('\n');
    }
    out
}

/// The `name` of every entry of `record[key]` (or the entry, when a string), cleaned.
fn names_of(record: &Value, key: &str) -> Vec<String> {
    record
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.as_str()),
            _ => e.get("name").and_then(Value::as_str),
        })
        .map(clean)
        .filter(|s| !s.is_empty())
        .collect()
}

/// `2022-10-02 22:53 -04:00`, or `2022-10-02` for a date-only stamp.
fn show_stamp(s: &Stamp) -> String {
    match s {
        Stamp::At { ts, offset } => {
            let dt = offset.to_datetime(*ts);
            let secs = offset.seconds();
            let sign = if secs < 0 { '-' } else { '+' };
            let abs = secs.unsigned_abs();
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} {sign}{:02}:{:02}",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                abs / 3600,
                (abs % 3600) / 60
            )
        }
        Stamp::Day(d) => d.to_string(),
    }
}

/// The superseded stamp, as short as it can be next to the current one: `22:23` on
/// the same day and offset, else with its date.
fn show_previous(prev: &Stamp, current: Option<&Stamp>) -> String {
    match (prev, current) {
        (
            Stamp::At { ts, offset },
            Some(
                cur @ Stamp::At {
                    offset: cur_offset, ..
                },
            ),
        ) if offset == cur_offset && prev.date() == cur.date() => {
            let dt = offset.to_datetime(*ts);
            format!("{:02}:{:02}", dt.hour(), dt.minute())
        }
        (Stamp::At { ts, offset }, _) => {
            let dt = offset.to_datetime(*ts);
            format!("{} {:02}:{:02}", dt.date(), dt.hour(), dt.minute())
        }
        (Stamp::Day(d), _) => d.to_string(),
    }
}

/// Replaces control characters (escape sequences, tabs, new lines) and bidi
/// overrides by spaces and trims.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Cuts to at most `width` characters, ending in `…` when cut.
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// Like [`cut`], but at a word boundary when one is near the end.
fn cut_at_word(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let head: String = s.chars().take(width.saturating_sub(1)).collect();
    let keep = match head.rfind(' ') {
        Some(pos) if head[pos..].chars().count() <= 20 => &head[..pos],
        _ => head.as_str(),
    };
    let keep = keep.trim_end_matches([' ', ',', ';', ':']);
    format!("{keep}…")
}

// ---------------------------------------------------------------------------------
// Printer
// ---------------------------------------------------------------------------------

/// What a [`Printer`] writes per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The record's JSON line, unchanged.
    Json,
    /// A [`format_block`] block, blocks separated by a blank line.
    Block(Style),
}

/// Turns lines from any source into output: parses, filters, formats, writes.
/// Lines that are not JSON records are skipped with a one-line warning on stderr.
#[derive(Debug)]
pub struct Printer<W: Write> {
    filter: Filter,
    output: Output,
    out: W,
    printed: u64,
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`.
    pub fn new(filter: Filter, output: Output, out: W) -> Printer<W> {
        Printer {
            filter,
            output,
            out,
            printed: 0,
        }
    }

    /// Handles one complete line (without its `\n`). `origin` and `line_no` name it
    /// in warnings. Errors are only write errors.
    pub fn line(&mut self, origin: &str, line_no: u64, line: &[u8]) -> io::Result<()> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let record = match serde_json::from_slice::<Value>(line) {
            Ok(v @ Value::Object(_)) if v.get("article_id").is_some_and(Value::is_string) => v,
            Ok(_) => {
                warn(format_args!(
                    "{origin}:{line_no}: skipping a line that is not a wirewatch record (no article_id)"
                ));
                return Ok(());
            }
            Err(e) => {
                warn(format_args!(
                    "{origin}:{line_no}: skipping a line that is not JSON ({e})"
                ));
                return Ok(());
            }
        };
        if !self.filter.matches(&record) {
            return Ok(());
        }
        match self.output {
            Output::Json => {
                self.out.write_all(line)?;
                self.out.write_all(b"\n")?;
            }
            Output::Block(style) => {
                if self.printed > 0 {
                    self.out.write_all(b"\n")?;
                }
                self.out
                    .write_all(format_block(&record, &style).as_bytes())?;
            }
        }
        self.printed += 1;
        Ok(())
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// How many records were written.
    pub fn printed(&self) -> u64 {
        self.printed
    }
}

/// One line on stderr, prefixed `wirewatch tail:`; a failing stderr is ignored.
fn warn(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "wirewatch tail: {message}");
}

// ---------------------------------------------------------------------------------
// Source: a file, followed
// ---------------------------------------------------------------------------------

/// A complete line read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the file it was read from (restarts at 1 after a
    /// rotation or truncation).
    pub number: u64,
    /// The bytes, without the `\n`.
    pub bytes: Vec<u8>,
}

/// The file currently being read.
#[derive(Debug)]
struct Opened {
    file: File,
    /// (device, inode): tells a new file at the path from this one.
    identity: (u64, u64),
    /// Bytes consumed from `file` (complete lines and `pending`).
    offset: u64,
    /// An incomplete last line, waiting for its `\n`.
    pending: Vec<u8>,
    /// Dropping an over-long line until its `\n`.
    discarding: bool,
    /// Lines handed out so far.
    lines: u64,
}

impl Opened {
    fn new(file: File, path: &Path) -> Result<Opened, TailError> {
        let meta = file.metadata().map_err(|source| TailError::Read {
            path: path.to_owned(),
            source,
        })?;
        if !meta.is_file() {
            return Err(TailError::NotAFile {
                path: path.to_owned(),
            });
        }
        Ok(Opened {
            file,
            identity: (meta.dev(), meta.ino()),
            offset: 0,
            pending: Vec::new(),
            discarding: false,
            lines: 0,
        })
    }

    /// Reads one chunk; appends its complete lines to `out`. Returns the bytes read
    /// (0 at the end of the file).
    fn read_chunk(
        &mut self,
        buf: &mut [u8],
        path: &Path,
        out: &mut Vec<Line>,
    ) -> Result<usize, TailError> {
        let n = loop {
            match self.file.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TailError::Read {
                        path: path.to_owned(),
                        source,
                    })
                }
            }
        };
        self.offset += n as u64;
        let mut rest = &buf[..n];
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            rest = &tail[1..];
            self.lines += 1;
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            let mut bytes = std::mem::take(&mut self.pending);
            bytes.extend_from_slice(head);
            out.push(Line {
                number: self.lines,
                bytes,
            });
        }
        if !self.discarding {
            self.pending.extend_from_slice(rest);
            if self.pending.len() > MAX_LINE_BYTES {
                warn(format_args!(
                    "{}:{}: skipping a line longer than {MAX_LINE_BYTES} bytes",
                    path.display(),
                    self.lines + 1
                ));
                self.pending = Vec::new();
                self.discarding = true;
            }
        }
        Ok(n)
    }

    /// Back to the start (the file was truncated).
    fn rewind(&mut self, path: &Path) -> Result<(), TailError> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|source| TailError::Read {
                path: path.to_owned(),
                source,
            })?;
        self.offset = 0;
        self.pending.clear();
        self.discarding = false;
        self.lines = 0;
        Ok(())
    }
}

/// Rotated siblings of `path` (`<name>.<suffix>` in the same folder) written after the
/// file `old` (found among them by identity) and other than `new`, oldest first by
/// modification time: the files a poll missed when the output rotated more than once
/// between two polls. Empty when `old` is not among the siblings (rotated elsewhere).
fn skipped_rotations(path: &Path, old: (u64, u64), new: (u64, u64)) -> Vec<PathBuf> {
    let mut siblings: Vec<(std::time::SystemTime, PathBuf, (u64, u64))> =
        crate::sink::rotated_siblings(path)
            .into_iter()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, e.path(), (m.dev(), m.ino())))
            })
            .collect();
    siblings.sort();
    let Some(at) = siblings.iter().position(|s| s.2 == old) else {
        return Vec::new();
    };
    siblings
        .into_iter()
        .skip(at + 1)
        .filter(|s| s.2 != new && s.2 != old)
        .map(|s| s.1)
        .collect()
}

/// Reads complete lines from a file by path; with `follow`, across rotation by
/// rename, truncation, and a file that does not exist yet.
///
/// Rotation: when the path names a new file, the old one is read to its end through
/// the handle still open (records written just before the rename are not lost), then
/// the new one from offset 0. While the path is missing (renamed away, new file not
/// yet created) the old handle keeps being read. When the output rotated more than
/// once between two polls, the files in between are found among the rotated
/// siblings (`<name>.*`, ordered by modification time) and read too. Limit: a
/// copytruncate that is refilled past the old size before a poll sees the shrink
/// cannot be detected.
#[derive(Debug)]
pub struct FileTail {
    path: PathBuf,
    follow: bool,
    current: Option<Opened>,
    told_waiting: bool,
    /// Read buffer, reused across polls.
    buf: Vec<u8>,
}

impl FileTail {
    /// A reader of `path`; nothing is opened until the first [`FileTail::poll`].
    pub fn new(path: PathBuf, follow: bool) -> FileTail {
        FileTail {
            path,
            follow,
            current: None,
            told_waiting: false,
            buf: vec![0; CHUNK],
        }
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what is available (at most a chunk, or the rest of a rotated file) and
    /// appends the complete lines to `out`. Returns `true` when it made progress
    /// (read bytes or switched files), `false` when there is nothing new for now;
    /// without `follow`, `false` means the end of the file.
    pub fn poll(&mut self, out: &mut Vec<Line>) -> Result<bool, TailError> {
        let path = self.path.clone();
        let FileTail {
            follow,
            current,
            buf,
            ..
        } = self;
        let Some(cur) = current.as_mut() else {
            return self.open_first();
        };
        let len = cur
            .file
            .metadata()
            .map_err(|source| TailError::Read {
                path: path.clone(),
                source,
            })?
            .len();
        if len < cur.offset {
            warn(format_args!(
                "{}: file truncated; reading it from the start",
                path.display()
            ));
            cur.rewind(&path)?;
        }
        if cur.read_chunk(buf, &path, out)? > 0 {
            return Ok(true);
        }
        if !*follow {
            return Ok(false);
        }
        // At the end of the open file: has the path moved on to a new file?
        let now_at_path = match std::fs::metadata(&path) {
            Ok(m) => (m.dev(), m.ino()),
            // Renamed away and not re-created yet, or momentarily unreadable: keep
            // reading the old handle.
            Err(_) => return Ok(false),
        };
        if now_at_path == cur.identity {
            return Ok(false);
        }
        // Hold the new file first, so that it cannot be rotated away while the old
        // one is drained.
        let new = match File::open(&path) {
            Ok(f) => Opened::new(f, &path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(TailError::Read { path, source }),
        };
        while cur.read_chunk(buf, &path, out)? > 0 {}
        if !cur.pending.is_empty() {
            warn(format_args!(
                "{}: the replaced file ended in an incomplete line ({} bytes); skipped",
                path.display(),
                cur.pending.len()
            ));
        }
        // Files rotated in and out between two polls: read them too, oldest first.
        for skipped in skipped_rotations(&path, cur.identity, new.identity) {
            if let Ok(f) = File::open(&skipped) {
                let mut o = Opened::new(f, &skipped)?;
                while o.read_chunk(buf, &skipped, out)? > 0 {}
                warn(format_args!(
                    "{}: read {} rotated in and out between two polls",
                    path.display(),
                    skipped.display()
                ));
            }
        }
        warn(format_args!(
            "{}: file replaced (rotated); following the new file",
            path.display()
        ));
        *current = Some(new);
        Ok(true)
    }

    fn open_first(&mut self) -> Result<bool, TailError> {
        match File::open(&self.path) {
            Ok(f) => {
                self.current = Some(Opened::new(f, &self.path)?);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !self.follow {
                    return Err(TailError::Missing {
                        path: self.path.clone(),
                    });
                }
                if !std::mem::replace(&mut self.told_waiting, true) {
                    warn(format_args!(
                        "{}: does not exist yet; waiting for it",
                        self.path.display()
                    ));
                }
                Ok(false)
            }
            Err(source) => Err(TailError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Bytes of an incomplete last line, if any (reported at the end of a
    /// non-following read).
    pub fn pending_bytes(&self) -> usize {
        self.current.as_ref().map_or(0, |c| c.pending.len())
    }
}

// ---------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------

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

/// `tail --nats`: the records of a JetStream stream, in stream order, through the same
/// filters and printer as the file tail.
fn follow_nats(urls: &str, subject: &str, filter: Filter, output: Output) -> Result<(), TailError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| TailError::Read {
            path: PathBuf::from(urls),
            source,
        })?;
    let stdout = io::stdout();
    let mut printer = Printer::new(filter, output, io::BufWriter::new(stdout.lock()));
    let mut broken = None;
    let result = rt.block_on(crate::nats::tail::follow_stream(
        urls,
        None,
        subject,
        crate::nats::tail::Deliver::All,
        |r| {
            let line = r.record.to_string();
            let done = printer
                .line(&r.subject, r.seq, line.as_bytes())
                .and_then(|()| printer.flush());
            match done {
                Err(e) => {
                    broken = Some(e);
                    std::ops::ControlFlow::Break(())
                }
                Ok(()) if sys::STOP.load(Ordering::Relaxed) => std::ops::ControlFlow::Break(()),
                Ok(()) => std::ops::ControlFlow::Continue(()),
            }
        },
    ));
    if let Some(e) = broken {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(TailError::Read {
                path: PathBuf::from("stdout"),
                source: e,
            });
        }
        return Ok(());
    }
    result.map_err(|e| TailError::Read {
        path: PathBuf::from(urls),
        source: io::Error::other(e.to_string()),
    })
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
        return follow_nats(urls, &args.subject, filter, output);
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

/// The few system calls std does not wrap.
mod sys {
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set by the first SIGINT or SIGTERM; the loops stop at the next line or poll.
    pub static STOP: AtomicBool = AtomicBool::new(false);

    extern "C" fn handler(_: libc::c_int) {
        // An atomic store is async-signal-safe.
        STOP.store(true, Ordering::Relaxed);
    }

    /// The first SIGINT or SIGTERM sets [`STOP`]; a second one kills as usual
    /// (`SA_RESETHAND`), so a stuck write can still be interrupted.
    pub fn stop_on_interrupt() {
        // SAFETY: `sigaction` gets a zeroed, then filled, struct we own and a handler
        // that only performs an atomic store.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
            act.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            libc::sigemptyset(&mut act.sa_mask);
            for sig in [libc::SIGINT, libc::SIGTERM] {
                libc::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
    }

    /// Columns of the terminal on standard output, if it is one.
    pub fn terminal_width() -> Option<usize> {
        // SAFETY: TIOCGWINSZ fills a `winsize` we own; a failing call is reported
        // by its return value and leaves it zeroed.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
        (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
    }

    /// True when standard output is a pipe or socket whose reader has gone.
    pub fn stdout_closed() -> bool {
        let mut fds = libc::pollfd {
            fd: libc::STDOUT_FILENO,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid `pollfd` we own, zero time-out.
        let rc = unsafe { libc::poll(&mut fds, 1, 0) };
        rc > 0 && fds.revents & (libc::POLLERR | libc::POLLHUP) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
