//! The terminal presentation of a record: a compact, readable block ([`format_block`]).

use std::io::{self, IsTerminal};

use serde_json::Value;

use crate::record::Stamp;

use super::{DEFAULT_WIDTH, NAMES_SHOWN};
use crate::filter::record_stamp;

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
            width: if tty {
                super::sys::terminal_width()
            } else {
                None
            }
            .unwrap_or(DEFAULT_WIDTH),
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
