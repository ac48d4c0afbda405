//! Dates the text mentions, resolved against the article's own date.
//!
//! Forms: `October 30`, `Oct. 30, 2022`, `30 October`, `Aug. 2, 1913` (kind `date`);
//! `June 2021`, `last March`, `in June` (kind `month`, `YYYY-MM`); `on Monday`,
//! `Sunday evening`, `next Friday` (kind `weekday`); `in 2018` (kind `year`, `YYYY`);
//! `yesterday`, `today`, `tomorrow` (kind `relative`).
//!
//! Without a year, the tense of the clause decides: `last`/`next` first; else the
//! nearest cue going back through the clause, then forward, then the whole sentence:
//! `will`, `next`, `scheduled` and present-tense verbs of scheduled events (`kicks off
//! on Monday`, `meets Thursday`) point forward; `was`, `said`, past forms, `after`,
//! `ago` point back; with no cue, back. Week days resolve to the nearest such day on
//! or after (forward) or on or before (back) the reference date; months to the nearest
//! such month; a month and day to the nearest year in that direction.
//!
//! A sentence's cues and clause boundaries are read once ([`SentenceCues`]), and
//! repeats are found in a set, so that the pass stays linear in the text however many
//! dates a sentence holds.

use std::collections::HashSet;
use std::ops::Range;

use jiff::civil::{Date, Weekday};
use jiff::ToSpan;

use crate::record::DateMention;

use super::lexicon::flag;
use super::tokens::{shape, Doc, Kind};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tense {
    Past,
    Future,
}

/// The dates found so far, without repeats.
#[derive(Default)]
struct Found {
    out: Vec<DateMention>,
    seen: HashSet<(String, String, String), foldhash::fast::RandomState>,
}

/// Finds and resolves the dates. `reference` is the article's date.
pub(crate) fn find(doc: &Doc<'_>, reference: Date) -> Vec<DateMention> {
    let mut out = Found::default();
    let cues = &mut SentenceCues::default();
    let n = doc.tokens.len();
    let mut i = 0;
    while i < n {
        if !doc.budget.spend(1) {
            break;
        }
        let t = doc.tokens[i];
        if t.kind == Kind::Word && t.is(shape::CAP) && t.has(flag::MONTH) {
            if let Some((end, m)) = month_expr(doc, cues, i, reference) {
                push(&mut out, m);
                i = end;
                continue;
            }
        }
        if t.kind == Kind::Number {
            // `30 October`
            if let (Some(day), true) = (day_number(doc.text(i)), i + 1 < n) {
                let m = doc.tokens[i + 1];
                if m.kind == Kind::Word && m.is(shape::CAP) && m.has(flag::MONTH) {
                    if let Some(month) = month_number(doc.fold(i + 1)) {
                        let (year, end) = year_after(doc, i + 2);
                        let tense = tense_at(doc, cues, i, i + 2);
                        if let Some(d) = resolve_day(reference, year, month, day, tense) {
                            push(
                                &mut out,
                                DateMention {
                                    text: doc.span(i, end).to_owned(),
                                    date: fmt_day(d),
                                    kind: "date".into(),
                                },
                            );
                            i = end;
                            continue;
                        }
                    }
                }
            }
            // `in 2018`
            if let Some(y) = year_number(doc.text(i)) {
                let prev_ok = i > 0
                    && matches!(
                        doc.fold(i - 1),
                        "in" | "since"
                            | "until"
                            | "by"
                            | "before"
                            | "after"
                            | "from"
                            | "during"
                            | "of"
                            | "through"
                    );
                let next_is_word_noun = doc
                    .tokens
                    .get(i + 1)
                    .is_some_and(|x| x.kind == Kind::Word && !x.has(flag::STOP));
                if prev_ok && !next_is_word_noun {
                    push(
                        &mut out,
                        DateMention {
                            text: doc.text(i).to_owned(),
                            date: fmt_year(y),
                            kind: "year".into(),
                        },
                    );
                }
            }
        }
        if t.kind == Kind::Word && t.is(shape::CAP) && t.has(flag::WEEKDAY) {
            if let Some(wd) = weekday(doc.fold(i)) {
                let (a, qual) = qualifier(doc, i);
                let mut end = i + 1;
                if end < n
                    && doc.tokens[end].kind == Kind::Word
                    && doc.tokens[end].has(flag::DAYPART)
                {
                    end += 1;
                }
                let tense = qual.unwrap_or_else(|| tense_at(doc, cues, i, end));
                let strict = qual.is_some();
                let d = resolve_weekday(reference, wd, tense, strict);
                push(
                    &mut out,
                    DateMention {
                        text: doc.span(a, end).to_owned(),
                        date: fmt_day(d),
                        kind: "weekday".into(),
                    },
                );
                i = end;
                continue;
            }
        }
        if t.kind == Kind::Word && !t.is(shape::CAP) && t.has(flag::RELDAY) {
            let off = match doc.fold(i) {
                "yesterday" => -1,
                "tomorrow" => 1,
                _ => 0,
            };
            if let Ok(d) = reference.checked_add(off.days()) {
                push(
                    &mut out,
                    DateMention {
                        text: doc.text(i).to_owned(),
                        date: fmt_day(d),
                        kind: "relative".into(),
                    },
                );
            }
        }
        i += 1;
    }
    out.out
}

fn push(found: &mut Found, m: DateMention) {
    if found
        .seen
        .insert((m.text.clone(), m.date.clone(), m.kind.clone()))
    {
        found.out.push(m);
    }
}

/// A month at `i`: `October 30[, 2022]`, `June 2021`, `last March`, `in June`.
fn month_expr(
    doc: &Doc<'_>,
    cues: &mut SentenceCues,
    i: usize,
    reference: Date,
) -> Option<(usize, DateMention)> {
    let month = month_number(doc.fold(i).trim_end_matches('.'))?;
    let n = doc.tokens.len();
    let next = doc.tokens.get(i + 1);
    // `May` and `March` are verbs too: a bare month needs a date-like neighbour.
    if let Some(day) = next
        .filter(|t| t.kind == Kind::Number && t.para == doc.tokens[i].para)
        .and_then(|_| day_number(doc.text(i + 1)))
    {
        let (year, end) = year_after(doc, i + 2);
        let tense = tense_at(doc, cues, i, i + 2);
        let d = resolve_day(reference, year, month, day, tense)?;
        return Some((
            end,
            DateMention {
                text: doc.span(i, end).to_owned(),
                date: fmt_day(d),
                kind: "date".into(),
            },
        ));
    }
    if i + 1 < n {
        if let Some(y) = year_number(doc.text(i + 1)) {
            if doc.tokens[i + 1].para == doc.tokens[i].para {
                return Some((
                    i + 2,
                    DateMention {
                        text: doc.span(i, i + 2).to_owned(),
                        date: fmt_month(y, month),
                        kind: "month".into(),
                    },
                ));
            }
        }
    }
    let (a, qual) = qualifier(doc, i);
    let prep = i > 0
        && doc.tokens[i - 1].para == doc.tokens[i].para
        && matches!(
            doc.fold(a.saturating_sub(1).min(i - 1)),
            "in" | "since"
                | "until"
                | "by"
                | "through"
                | "from"
                | "during"
                | "of"
                | "early"
                | "late"
                | "mid"
                | "last"
                | "next"
                | "this"
        );
    if qual.is_none() && !prep {
        return None;
    }
    if doc.fold(i) == "may" && qual.is_none() && !doc.tokens[i].is(shape::CAP) {
        return None;
    }
    let tense = qual.unwrap_or_else(|| tense_at(doc, cues, i, i + 1));
    let (y, m) = resolve_month(reference, month, tense, qual.is_some());
    Some((
        i + 1,
        DateMention {
            text: doc.span(a, i + 1).to_owned(),
            date: fmt_month(y, m),
            kind: "month".into(),
        },
    ))
}

/// `last` / `next` / `this` right before token `i`: (start token, forced tense).
fn qualifier(doc: &Doc<'_>, i: usize) -> (usize, Option<Tense>) {
    if i == 0 || doc.tokens[i - 1].para != doc.tokens[i].para {
        return (i, None);
    }
    match doc.fold(i - 1) {
        "last" | "past" => (i - 1, Some(Tense::Past)),
        "next" | "coming" => (i - 1, Some(Tense::Future)),
        _ => (i, None),
    }
}

/// `, 2022` or ` 2022` after a month and day.
fn year_after(doc: &Doc<'_>, i: usize) -> (Option<i16>, usize) {
    let mut k = i;
    if doc.is_punct(k, ',') {
        k += 1;
    }
    if let Some(y) = doc
        .tokens
        .get(k)
        .filter(|t| t.kind == Kind::Number)
        .and_then(|_| year_number(doc.text(k)))
    {
        return (Some(y), k + 1);
    }
    (None, i)
}

fn month_number(w: &str) -> Option<i8> {
    Some(match w.trim_end_matches('.') {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" | "mar" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" | "jun" => 6,
        "july" | "jul" => 7,
        "august" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    })
}

fn weekday(w: &str) -> Option<Weekday> {
    Some(match w {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

fn day_number(s: &str) -> Option<i8> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &s[digits.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") || digits.is_empty() || digits.len() > 2 {
        return None;
    }
    let d: i8 = digits.parse().ok()?;
    (1..=31).contains(&d).then_some(d)
}

fn year_number(s: &str) -> Option<i16> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i16 = s.parse().ok()?;
    (1000..=2999).contains(&y).then_some(y)
}

/// `YYYY-MM-DD`. The three date forms are written digit by digit: `format!` with
/// padding costs about ten times as much, and an article holds a dozen dates.
fn fmt_day(d: Date) -> String {
    let mut out = fmt_month(d.year(), d.month());
    out.push('-');
    push_padded(&mut out, d.day().into(), 2);
    out
}

/// `YYYY-MM`.
fn fmt_month(y: i16, m: i8) -> String {
    let mut out = fmt_year(y);
    out.push('-');
    push_padded(&mut out, m.into(), 2);
    out
}

/// `YYYY`.
fn fmt_year(y: i16) -> String {
    let mut out = String::with_capacity(10);
    push_padded(&mut out, y.into(), 4);
    out
}

/// Appends `v` as `format!("{v:0width$}")` writes it.
fn push_padded(out: &mut String, v: i32, width: usize) {
    if !(0..10_000).contains(&v) {
        use std::fmt::Write;
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{v:0width$}");
        return;
    }
    let digits = [v / 1000, v / 100 % 10, v / 10 % 10, v % 10];
    let len = match v {
        1000.. => 4,
        100.. => 3,
        10.. => 2,
        _ => 1,
    };
    for &d in &digits[4 - len.max(width).min(4)..] {
        out.push(char::from(b'0' + d as u8));
    }
}

fn resolve_day(
    reference: Date,
    year: Option<i16>,
    month: i8,
    day: i8,
    tense: Tense,
) -> Option<Date> {
    if let Some(y) = year {
        return Date::new(y, month, day).ok();
    }
    let y = reference.year();
    let this = Date::new(y, month, day).ok();
    match (this, tense) {
        (Some(d), Tense::Past) if d > reference => Date::new(y - 1, month, day).ok(),
        (Some(d), Tense::Future) if d < reference => Date::new(y + 1, month, day).ok(),
        (Some(d), _) => Some(d),
        (None, _) => None,
    }
}

fn resolve_weekday(reference: Date, wd: Weekday, tense: Tense, strict: bool) -> Date {
    let cur = reference.weekday().to_monday_zero_offset();
    let want = wd.to_monday_zero_offset();
    let mut ahead = i64::from((want - cur).rem_euclid(7));
    let mut back = i64::from((cur - want).rem_euclid(7));
    if strict {
        if ahead == 0 {
            ahead = 7;
        }
        if back == 0 {
            back = 7;
        }
    }
    let off = match tense {
        Tense::Future => ahead,
        Tense::Past => -back,
    };
    reference.checked_add(off.days()).unwrap_or(reference)
}

fn resolve_month(reference: Date, month: i8, tense: Tense, strict: bool) -> (i16, i8) {
    let y = reference.year();
    let m = reference.month();
    match tense {
        Tense::Past => {
            if month < m || (month == m && !strict) {
                (y, month)
            } else {
                (y - 1, month)
            }
        }
        Tense::Future => {
            if month > m || (month == m && !strict) {
                (y, month)
            } else {
                (y + 1, month)
            }
        }
    }
}

/// What [`tense_at`] reads of one sentence, in token order: its cue words and its
/// clause boundaries (`,` `;` `:` dashes, `but`). Read once per sentence, and again
/// only for another one.
#[derive(Default)]
struct SentenceCues {
    sentence: Option<usize>,
    range: Range<usize>,
    cues: Vec<(usize, Tense)>,
    bounds: Vec<usize>,
}

impl SentenceCues {
    /// Reads sentence `s` unless it is the one already read.
    fn read(&mut self, doc: &Doc<'_>, s: usize) {
        if self.sentence == Some(s) {
            return;
        }
        self.sentence = Some(s);
        self.range = doc.sentences.get(s).cloned().unwrap_or(0..0);
        self.cues.clear();
        self.bounds.clear();
        doc.budget.spend(self.range.len());
        for k in self.range.clone() {
            if let Some(t) = cue(doc, k) {
                self.cues.push((k, t));
            }
            if matches!(doc.tokens[k].kind, Kind::Punct(',' | ';' | ':' | '—' | '–'))
                || doc.is_word(k, "but")
            {
                self.bounds.push(k);
            }
        }
    }

    /// The cue nearest before `a`, at `lo` or after.
    fn back(&self, lo: usize, a: usize) -> Option<Tense> {
        let k = self.cues.partition_point(|&(p, _)| p < a);
        k.checked_sub(1)
            .map(|k| self.cues[k])
            .filter(|&(p, _)| p >= lo)
            .map(|(_, t)| t)
    }

    /// The first cue at `b` or after, before `hi`.
    fn fwd(&self, b: usize, hi: usize) -> Option<Tense> {
        let k = self.cues.partition_point(|&(p, _)| p < b);
        self.cues.get(k).filter(|&&(p, _)| p < hi).map(|&(_, t)| t)
    }
}

/// The tense around the date at tokens `a..b`.
fn tense_at(doc: &Doc<'_>, cues: &mut SentenceCues, a: usize, b: usize) -> Tense {
    cues.read(doc, doc.tokens[a].sent as usize);
    let sent = cues.range.clone();
    // Clause: back to the previous boundary, forward to the next one.
    let k = cues.bounds.partition_point(|&p| p < a);
    let cs = k
        .checked_sub(1)
        .map_or(sent.start, |k| (cues.bounds[k] + 1).max(sent.start));
    let ce = if b >= sent.end {
        b
    } else {
        let k = cues.bounds.partition_point(|&p| p < b);
        cues.bounds.get(k).copied().unwrap_or(sent.end)
    };
    cues.back(cs, a)
        .or_else(|| cues.fwd(b, ce))
        .or_else(|| cues.back(sent.start, a))
        .or_else(|| cues.fwd(b, sent.end))
        .unwrap_or(Tense::Past)
}

fn cue(doc: &Doc<'_>, k: usize) -> Option<Tense> {
    let t = &doc.tokens[k];
    if t.kind != Kind::Word {
        return None;
    }
    let w = doc.fold(k);
    if t.has(flag::FUTURE) || w.ends_with("'ll") {
        return Some(Tense::Future);
    }
    if w == "to" && k > 0 && matches!(doc.fold(k - 1), "is" | "are" | "going") {
        return Some(Tense::Future);
    }
    if t.has(flag::PAST) {
        if w == "led" && doc.is_word(k + 1, "by") {
            return None;
        }
        return Some(Tense::Past);
    }
    if t.has(flag::PRESENT) && !t.is(shape::CAP) {
        return Some(Tense::Future);
    }
    if !t.is(shape::CAP) && w.len() >= 5 && w.ends_with("ed") && !doc.is_word(k + 1, "by") {
        return Some(Tense::Past);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn dates_are_written_as_format_writes_them() {
        for v in (-10_050..-9_950).chain(-120..12_100).chain(32_700..=32_767) {
            for width in [2, 4] {
                let mut out = String::new();
                push_padded(&mut out, v, width);
                assert_eq!(out, format!("{v:0width$}"));
            }
        }
        assert_eq!(fmt_day(d("0987-03-04")), "0987-03-04");
        assert_eq!(fmt_month(2022, 10), "2022-10");
        assert_eq!(fmt_year(31), "0031");
    }

    #[test]
    fn weekdays_follow_tense() {
        let sunday = d("2022-10-02");
        assert_eq!(
            resolve_weekday(sunday, Weekday::Monday, Tense::Future, false),
            d("2022-10-03")
        );
        assert_eq!(
            resolve_weekday(sunday, Weekday::Friday, Tense::Past, false),
            d("2022-09-30")
        );
        assert_eq!(
            resolve_weekday(sunday, Weekday::Sunday, Tense::Past, false),
            sunday
        );
        assert_eq!(
            resolve_weekday(sunday, Weekday::Sunday, Tense::Future, true),
            d("2022-10-09")
        );
    }

    #[test]
    fn months_and_days() {
        let r = d("2022-10-02");
        assert_eq!(resolve_month(r, 3, Tense::Past, true), (2022, 3));
        assert_eq!(resolve_month(r, 10, Tense::Past, true), (2021, 10));
        assert_eq!(resolve_month(r, 6, Tense::Future, false), (2023, 6));
        assert_eq!(
            resolve_day(r, None, 10, 30, Tense::Future),
            Some(d("2022-10-30"))
        );
        assert_eq!(
            resolve_day(r, None, 10, 30, Tense::Past),
            Some(d("2021-10-30"))
        );
        assert_eq!(
            resolve_day(r, Some(1913), 8, 2, Tense::Past),
            Some(d("1913-08-02"))
        );
        assert_eq!(resolve_day(r, None, 2, 30, Tense::Past), None);
        assert_eq!(day_number("30th"), Some(30));
        assert_eq!(day_number("300"), None);
        assert_eq!(year_number("2018"), Some(2018));
    }
}
