//! `Posted …` / `Updated …` lines: recognising them, reading the date and time they
//! give (English and French, many variants), and resolving them to moments against
//! the capture time, following the rules of the La Presse layout.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{ToSpan, Zoned};

use crate::record::Stamp;

/// Which stamp a line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampKind {
    /// `Posted`, `Published`, `Publié`: first publication.
    Posted,
    /// `Updated`, `Modified`, `Mis à jour`, `Modifié`: latest revision.
    Updated,
}

/// Which day a stamp names relative to the capture day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelDay {
    /// `today`, `aujourd'hui`, `this morning`, `ce matin`.
    Today,
    /// `yesterday`, `hier`.
    Yesterday,
}

/// What a stamp line says, before resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawStamp {
    /// Relative day word, if any.
    pub rel: Option<RelDay>,
    /// Month (1-12) and day of an explicit date.
    pub month_day: Option<(i8, i8)>,
    /// Explicit year.
    pub year: Option<i16>,
    /// Hour (0-23) and minute.
    pub time: Option<(i8, i8)>,
}

impl RawStamp {
    /// True when the stamp names its day (explicit date or relative word).
    pub fn has_day(&self) -> bool {
        self.rel.is_some() || self.month_day.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Num(u32, usize),
    Colon,
    Dot,
    Comma,
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            let mut n: u32 = 0;
            let mut len = 0;
            while let Some(&d) = chars.peek() {
                match d.to_digit(10) {
                    Some(v) if d.is_ascii_digit() => {
                        n = n.saturating_mul(10).saturating_add(v);
                        len += 1;
                        chars.next();
                    }
                    _ => break,
                }
            }
            out.push(Tok::Num(n, len));
        } else if c.is_alphabetic() {
            let mut w = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_alphabetic() || ((d == '\'' || d == '’') && !w.is_empty()) {
                    w.extend(d.to_lowercase());
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Tok::Word(w.replace('’', "'")));
        } else {
            chars.next();
            match c {
                ':' => out.push(Tok::Colon),
                '.' => out.push(Tok::Dot),
                ',' => out.push(Tok::Comma),
                _ => {}
            }
        }
    }
    out
}

fn word_at(toks: &[Tok], i: usize) -> Option<&str> {
    match toks.get(i) {
        Some(Tok::Word(w)) => Some(w.as_str()),
        _ => None,
    }
}

/// Recognises a stamp line: returns its kind and the rest of the line.
pub fn classify(line: &str) -> Option<(StampKind, &str)> {
    const KEYS: &[(&str, StampKind)] = &[
        ("posted", StampKind::Posted),
        ("published", StampKind::Posted),
        ("publié", StampKind::Posted),
        ("publie", StampKind::Posted),
        ("updated", StampKind::Updated),
        ("last updated", StampKind::Updated),
        ("modified", StampKind::Updated),
        ("modifié", StampKind::Updated),
        ("modifie", StampKind::Updated),
        ("mis à jour", StampKind::Updated),
        ("mis a jour", StampKind::Updated),
        ("mise à jour", StampKind::Updated),
        ("mise a jour", StampKind::Updated),
    ];
    let trimmed = line.trim_start();
    for (key, kind) in KEYS {
        if let Some(rest) = strip_prefix_ci(trimmed, key) {
            // The keyword must end at a word boundary.
            match rest.chars().next() {
                None => return Some((*kind, rest)),
                Some(c) if !c.is_alphanumeric() => return Some((*kind, rest)),
                _ => {}
            }
        }
    }
    None
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let mut it = s.char_indices();
    for p in prefix.chars() {
        let (_, c) = it.next()?;
        let same = c.to_lowercase().eq(p.to_lowercase()) || (p == ' ' && c.is_whitespace());
        if !same {
            return None;
        }
    }
    match it.next() {
        Some((i, _)) => Some(&s[i..]),
        None => Some(""),
    }
}

fn month_of(w: &str) -> Option<i8> {
    let w = w.trim_end_matches('.');
    let m = match w {
        "january" | "jan" | "janvier" | "janv" => 1,
        "february" | "feb" | "février" | "fevrier" | "févr" | "fevr" | "fév" | "fev" => 2,
        "march" | "mar" | "mars" => 3,
        "april" | "apr" | "avril" | "avr" => 4,
        "may" | "mai" => 5,
        "june" | "jun" | "juin" => 6,
        "july" | "jul" | "juillet" | "juil" => 7,
        "august" | "aug" | "août" | "aout" => 8,
        "september" | "sep" | "sept" | "septembre" => 9,
        "october" | "oct" | "octobre" => 10,
        "november" | "nov" | "novembre" => 11,
        "december" | "dec" | "décembre" | "decembre" | "déc" => 12,
        _ => return None,
    };
    Some(m)
}

/// Reads `a.m.`, `am`, `p.m.`, `PM` at `i`; returns (is_pm, next index).
fn ampm(toks: &[Tok], i: usize) -> Option<(bool, usize)> {
    match word_at(toks, i)? {
        "am" => Some((false, skip_dot(toks, i + 1))),
        "pm" => Some((true, skip_dot(toks, i + 1))),
        w @ ("a" | "p") => {
            let mut j = skip_dot(toks, i + 1);
            if word_at(toks, j) == Some("m") {
                j = skip_dot(toks, j + 1);
                Some((w == "p", j))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn skip_dot(toks: &[Tok], i: usize) -> usize {
    if toks.get(i) == Some(&Tok::Dot) {
        i + 1
    } else {
        i
    }
}

fn apply_ampm(hour: u32, pm: bool) -> u32 {
    match (hour, pm) {
        (12, false) => 0,
        (h, true) if h < 12 => h + 12,
        (h, _) => h,
    }
}

/// Reads what follows the keyword of a stamp line. `None` when nothing usable is
/// there or a value is out of range.
pub fn read(rest: &str) -> Option<RawStamp> {
    let toks = tokenize(rest);
    let mut st = RawStamp::default();
    let mut day_pending: Option<u32> = None; // French: number before the month
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Word(w) => {
                let w = w.as_str();
                if let Some(m) = month_of(w) {
                    let mut j = skip_dot(&toks, i + 1);
                    let day = if let Some(d) = day_pending.take() {
                        d
                    } else if let Some(Tok::Num(d, _)) = toks.get(j) {
                        j += 1;
                        // `2nd`, `3rd`, `1st`
                        if matches!(word_at(&toks, j), Some("st" | "nd" | "rd" | "th")) {
                            j += 1;
                        }
                        *d
                    } else {
                        return None;
                    };
                    if !(1..=31).contains(&day) {
                        return None;
                    }
                    st.month_day = Some((m, day as i8));
                    i = j;
                    continue;
                }
                match w {
                    "today" | "aujourd'hui" | "aujourdhui" => st.rel = Some(RelDay::Today),
                    "yesterday" | "hier" => st.rel = Some(RelDay::Yesterday),
                    "morning" | "matin" | "afternoon" | "evening" | "soir" | "tonight" => {
                        st.rel.get_or_insert(RelDay::Today);
                    }
                    "après" | "apres" if word_at(&toks, i + 1) == Some("midi") => {
                        st.rel.get_or_insert(RelDay::Today);
                        i += 2;
                        continue;
                    }
                    "noon" | "midi" => st.time = Some((12, 0)),
                    "midnight" | "minuit" => st.time = Some((0, 0)),
                    _ => {}
                }
                i += 1;
            }
            Tok::Num(n, len) => {
                let n = *n;
                let next = toks.get(i + 1);
                // HH:MM
                if next == Some(&Tok::Colon) {
                    if let Some(Tok::Num(m, _)) = toks.get(i + 2) {
                        let mut hour = n;
                        let mut j = i + 3;
                        if let Some((pm, k)) = ampm(&toks, j) {
                            if !(1..=12).contains(&hour) {
                                return None;
                            }
                            hour = apply_ampm(hour, pm);
                            j = k;
                        }
                        st.time = Some(time_parts(hour, *m)?);
                        i = j;
                        continue;
                    }
                }
                // 22 h 23, 8h26, 22 h
                if let Some(Tok::Word(w)) = next {
                    if w == "h" {
                        let (m, j) = match toks.get(i + 2) {
                            Some(Tok::Num(m, _)) => (*m, i + 3),
                            _ => (0, i + 2),
                        };
                        st.time = Some(time_parts(n, m)?);
                        i = j;
                        continue;
                    }
                    if w == "er" {
                        day_pending = Some(n);
                        i += 2;
                        continue;
                    }
                    if month_of(w).is_some() {
                        day_pending = Some(n);
                        i += 1;
                        continue;
                    }
                }
                // 10 p.m.
                if let Some((pm, k)) = ampm(&toks, i + 1) {
                    if !(1..=12).contains(&n) {
                        return None;
                    }
                    st.time = Some(time_parts(apply_ampm(n, pm), 0)?);
                    i = k;
                    continue;
                }
                if *len == 4 && (1900..=2200).contains(&n) {
                    st.year = Some(n as i16);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    if st.time.is_none() && st.month_day.is_none() && st.rel.is_none() && st.year.is_none() {
        return None;
    }
    Some(st)
}

fn time_parts(h: u32, m: u32) -> Option<(i8, i8)> {
    if h <= 23 && m <= 59 {
        Some((h as i8, m as i8))
    } else if h == 24 && m == 0 {
        Some((0, 0))
    } else {
        None
    }
}

/// A stamp resolved to a moment (or day), with how its day was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The stamp.
    pub stamp: Stamp,
    /// True when the day was written (date or relative word), not inferred.
    pub day_given: bool,
}

/// Resolves a read stamp against the capture moment, in the capture's zone.
///
/// - a time with no date, or with a same-day word (`today`, `this morning`,
///   `aujourd'hui`, `ce soir`), is on the capture day, or the day before when that
///   would be after the capture moment;
/// - `yesterday`/`hier` is the day before the capture day;
/// - a month and day with no year take the capture year, or the year before when that
///   would be after the capture day.
pub fn resolve(raw: &RawStamp, capture: &Zoned) -> Option<Resolved> {
    let cap_date = capture.date();
    let date = if let Some((m, d)) = raw.month_day {
        match raw.year {
            Some(y) => Date::new(y, m, d).ok()?,
            None => {
                let this = Date::new(cap_date.year(), m, d).ok();
                match this {
                    Some(dt) if dt <= cap_date => dt,
                    // Feb 29 with no year in a non-leap capture year: last leap year.
                    _ => Date::new(cap_date.year() - 1, m, d)
                        .ok()
                        .or_else(|| Date::new(cap_date.year() - 4, m, d).ok())?,
                }
            }
        }
    } else {
        match raw.rel {
            Some(RelDay::Yesterday) => cap_date.checked_sub(1.day()).ok()?,
            _ => cap_date,
        }
    };
    let tz = capture.time_zone();
    match raw.time {
        Some((h, m)) => {
            let t = Time::new(h, m, 0, 0).ok()?;
            let mut z = local(date.to_datetime(t), tz)?;
            let capture_day = raw.month_day.is_none() && raw.rel != Some(RelDay::Yesterday);
            if capture_day && z.timestamp() > capture.timestamp() {
                z = local(date.checked_sub(1.day()).ok()?.to_datetime(t), tz)?;
            }
            Some(Resolved {
                stamp: Stamp::at(z.timestamp(), tz),
                day_given: raw.has_day(),
            })
        }
        None if raw.has_day() => Some(Resolved {
            stamp: Stamp::Day(date),
            day_given: true,
        }),
        None => None,
    }
}

fn local(dt: DateTime, tz: &TimeZone) -> Option<Zoned> {
    dt.to_zoned(tz.clone()).ok()
}

/// Shifts a stamp by whole days, keeping its wall-clock time in `tz`.
pub fn shift_days(stamp: &Stamp, days: i32, tz: &TimeZone) -> Option<Stamp> {
    match stamp {
        Stamp::At { ts, .. } => {
            let z = ts.to_zoned(tz.clone());
            let dt = z.datetime().checked_add(days.days()).ok()?;
            Some(Stamp::at(local(dt, tz)?.timestamp(), tz))
        }
        Stamp::Day(d) => Some(Stamp::Day(d.checked_add(days.days()).ok()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(s: &str) -> Zoned {
        let ts: jiff::Timestamp = s.parse().unwrap();
        ts.to_zoned(TimeZone::get("America/Toronto").unwrap())
    }

    fn res(line: &str, cap: &str) -> Option<String> {
        let (_, rest) = classify(line)?;
        let raw = read(rest)?;
        resolve(&raw, &capture(cap)).map(|r| r.stamp.to_string())
    }

    const CAP: &str = "2022-10-03T02:55:00Z"; // 2022-10-02 22:55 in Montreal

    #[test]
    fn english_variants() {
        let cases = [
            ("Posted at 10:23 p.m.", "2022-10-02T22:23:00-04:00"),
            ("Updated at 10:53 p.m.", "2022-10-02T22:53:00-04:00"),
            ("Posted yesterday at 5:00 p.m.", "2022-10-01T17:00:00-04:00"),
            ("Posted this morning", "2022-10-02"),
            ("Posted today at 9:05 a.m.", "2022-10-02T09:05:00-04:00"),
            ("Posted on October 2", "2022-10-02"),
            (
                "Posted on October 2, 2022 at 1:14 p.m.",
                "2022-10-02T13:14:00-04:00",
            ),
            (
                "Updated on Oct. 3, 2021 at 1:14 p.m.",
                "2021-10-03T13:14:00-04:00",
            ),
            (
                "Updated Oct. 1, 2022, 1:14 p.m.",
                "2022-10-01T13:14:00-04:00",
            ),
            ("Published at 1:14 PM", "2022-10-02T13:14:00-04:00"),
            ("Updated at 13:14", "2022-10-02T13:14:00-04:00"),
            ("Posted at noon", "2022-10-02T12:00:00-04:00"),
            ("Modified at 12:05 a.m.", "2022-10-02T00:05:00-04:00"),
            ("POSTED AT 10:23 P.M.", "2022-10-02T22:23:00-04:00"),
            ("Posted at 11:30 p.m.", "2022-10-01T23:30:00-04:00"),
            ("Posted on December 30", "2021-12-30"),
            (
                "Last updated on Sept 4th at 10 a.m.",
                "2022-09-04T10:00:00-04:00",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(res(line, CAP).as_deref(), Some(want), "{line}");
        }
    }

    #[test]
    fn french_variants() {
        let cases = [
            ("Publié à 22 h 23", "2022-10-02T22:23:00-04:00"),
            ("Mis à jour à 22 h 53", "2022-10-02T22:53:00-04:00"),
            ("Publié hier à 17 h 00", "2022-10-01T17:00:00-04:00"),
            ("Publié ce matin", "2022-10-02"),
            ("Publié aujourd'hui à 9 h 05", "2022-10-02T09:05:00-04:00"),
            ("Publié aujourd’hui à 9 h 05", "2022-10-02T09:05:00-04:00"),
            ("Publié le 2 octobre", "2022-10-02"),
            (
                "Publié le 2 octobre 2022 à 13 h 14",
                "2022-10-02T13:14:00-04:00",
            ),
            (
                "Mis à jour le 1er octobre 2022 à 8h26",
                "2022-10-01T08:26:00-04:00",
            ),
            ("Mis à jour hier à 22h48", "2022-10-01T22:48:00-04:00"),
            ("PUBLIÉ AUJOURD'HUI À 15 H 42", "2022-10-02T15:42:00-04:00"),
            ("Mis à jour à 08h26", "2022-10-02T08:26:00-04:00"),
            (
                "Mis a jour le 3 oct. 2021 a 8 h 26",
                "2021-10-03T08:26:00-04:00",
            ),
            ("Publié à midi", "2022-10-02T12:00:00-04:00"),
        ];
        for (line, want) in cases {
            assert_eq!(res(line, CAP).as_deref(), Some(want), "{line}");
        }
    }

    /// 2022-10-03 00:10 in Montreal: just after midnight.
    const AFTER_MIDNIGHT: &str = "2022-10-03T04:10:00Z";

    #[test]
    fn english_same_day_words_after_midnight() {
        let cases = [
            ("Updated today at 10:34 p.m.", "2022-10-02T22:34:00-04:00"),
            (
                "Posted this morning at 9:05 a.m.",
                "2022-10-02T09:05:00-04:00",
            ),
            (
                "Posted this evening at 8:00 p.m.",
                "2022-10-02T20:00:00-04:00",
            ),
            ("Posted today at 12:05 a.m.", "2022-10-03T00:05:00-04:00"),
            (
                "Posted yesterday at 11:30 p.m.",
                "2022-10-02T23:30:00-04:00",
            ),
            (
                "Posted yesterday at 12:05 a.m.",
                "2022-10-02T00:05:00-04:00",
            ),
            ("Posted this morning", "2022-10-03"),
            ("Updated at 10:34 p.m.", "2022-10-02T22:34:00-04:00"),
        ];
        for (line, want) in cases {
            assert_eq!(res(line, AFTER_MIDNIGHT).as_deref(), Some(want), "{line}");
        }
    }

    #[test]
    fn french_same_day_words_after_midnight() {
        let cases = [
            (
                "Mis à jour aujourd'hui à 22 h 34",
                "2022-10-02T22:34:00-04:00",
            ),
            ("PUBLIÉ AUJOURD’HUI À 15 H 42", "2022-10-02T15:42:00-04:00"),
            ("Publié ce matin à 9 h 05", "2022-10-02T09:05:00-04:00"),
            ("Publié ce soir à 20 h", "2022-10-02T20:00:00-04:00"),
            (
                "Publié cet après-midi à 14 h 10",
                "2022-10-02T14:10:00-04:00",
            ),
            ("Publié aujourd'hui à 0 h 05", "2022-10-03T00:05:00-04:00"),
            ("Mis à jour hier à 23 h 30", "2022-10-02T23:30:00-04:00"),
            ("Publié hier à 0 h 05", "2022-10-02T00:05:00-04:00"),
            ("Publié ce matin", "2022-10-03"),
        ];
        for (line, want) in cases {
            assert_eq!(res(line, AFTER_MIDNIGHT).as_deref(), Some(want), "{line}");
        }
    }

    #[test]
    fn non_stamps_and_bad_values() {
        assert!(classify("Postedness is a word").is_none());
        assert!(classify("The posted notice").is_none());
        assert_eq!(res("Posted at 25:99", CAP), None);
        assert_eq!(res("Posted on February 30", CAP), None);
        assert_eq!(res("Posted", CAP), None);
        assert_eq!(res("Posted at 13:14 p.m.", CAP), None);
    }

    #[test]
    fn winter_offset_and_year_rollback() {
        // Captured 2023-01-05 10:00 Montreal: "December 30" is 2022.
        let cap = "2023-01-05T15:00:00Z";
        assert_eq!(
            res("Posted on December 30 at 10:00 a.m.", cap).as_deref(),
            Some("2022-12-30T10:00:00-05:00")
        );
        assert_eq!(
            res("Posted at 9:00 a.m.", cap).as_deref(),
            Some("2023-01-05T09:00:00-05:00")
        );
    }
}
