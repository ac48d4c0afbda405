//! Quotations and who said them.
//!
//! A quotation runs from an opening mark (`“`, `«`, an opening `"`) to the matching
//! closing mark; one left open at the end of a paragraph goes on in the next paragraph
//! when that one opens with a quote mark (the newspaper convention), else it ends there.
//! A short quoted phrase whose words are all capitalised (`“Summit of the Americas”`) is
//! a title, not a quotation.
//!
//! The speaker is read from the sentence around the quotation:
//! after it, `“…,” X said`, `“…,” said X`, `“…,” X, …, assured reporters`, `“…,” he
//! added`; before it, `X said: “…”`, `X said (he hoped) that “…”`, `according to X, “…”`.
//! `he`/`she` stand for a person named earlier in the same sentence, else the last
//! speaker, else the person last named in the previous two paragraphs. A subject that is
//! not a person (`the jury said`, `US officials said`) gives no speaker. Short phrases
//! (five words or fewer, scare quotes such as `“model for the region”`) take a speaker
//! only when a verb of saying stands right next to them. A quotation with no attribution
//! that continues a quoted speech (same paragraph, or the next one) keeps its speaker.
//!
//! The person mentions are looked up by binary search (they are sorted by position),
//! and what a sentence holds (`according to X`) is read once per sentence, so that
//! the pass costs a few steps per quotation however many the article has.

use std::cell::Cell;

use super::lexicon::flag;
use super::people::Span;
use super::tokens::{shape, Doc, Kind};

/// A quotation found in the text.
#[derive(Debug, Clone)]
pub(crate) struct QuoteSpan {
    /// Token of the opening mark.
    pub open: usize,
    /// Token of the closing mark (None: ran to the end of a paragraph).
    pub close: Option<usize>,
    /// Last token inside the quotation, plus one.
    pub end: usize,
    /// Text without the marks.
    pub text: String,
    /// Number of words.
    pub words: usize,
    /// A quoted title, not speech.
    pub title: bool,
}

/// Finds the quotations.
pub(crate) fn find(doc: &Doc<'_>) -> Vec<QuoteSpan> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (pi, range) in doc.para_tokens.iter().enumerate() {
        if !doc.budget.spend(range.len()) {
            break;
        }
        let mut seg_start: Option<usize> = None;
        let mut first_tok = true;
        for i in range.clone() {
            let t = doc.tokens[i];
            match t.kind {
                Kind::Open => {
                    if first_tok && open.is_some() {
                        // Continuation of a quotation from the previous paragraph.
                        seg_start = Some(i + 1);
                    } else if open.is_none() {
                        open = Some((i, String::new()));
                        seg_start = Some(i + 1);
                    }
                }
                Kind::Close => {
                    if let (Some((o, mut text)), Some(s)) = (open.take(), seg_start.take()) {
                        push_seg(doc, &mut text, s, i);
                        out.push(make(doc, o, Some(i), i, text));
                    }
                }
                _ => {}
            }
            first_tok = false;
        }
        if let Some((o, mut text)) = open.take() {
            if let Some(s) = seg_start {
                push_seg(doc, &mut text, s, range.end);
            }
            let next_opens = doc
                .para_tokens
                .get(pi + 1)
                .and_then(|r| doc.tokens.get(r.start))
                .is_some_and(|t| t.kind == Kind::Open);
            if next_opens {
                open = Some((o, text));
            } else {
                out.push(make(doc, o, None, range.end, text));
            }
        }
    }
    out
}

fn push_seg(doc: &Doc<'_>, text: &mut String, a: usize, b: usize) {
    if a >= b {
        return;
    }
    let s = doc.span(a, b);
    if !text.is_empty() && !s.is_empty() {
        text.push(' ');
    }
    text.push_str(s);
}

fn make(doc: &Doc<'_>, open: usize, close: Option<usize>, end: usize, text: String) -> QuoteSpan {
    let text = text
        .trim()
        .trim_end_matches([',', ';', ':'])
        .trim_end()
        .to_owned();
    let words = (open + 1..end)
        .filter(|&k| matches!(doc.tokens[k].kind, Kind::Word | Kind::Number))
        .count();
    let same_para = close.is_some_and(|c| doc.tokens[c].para == doc.tokens[open].para);
    let title = same_para && (2..=8).contains(&words) && is_title(doc, open + 1, end);
    QuoteSpan {
        open,
        close,
        end,
        text,
        words,
        title,
    }
}

/// Every word capitalised except function words, and no sentence punctuation.
fn is_title(doc: &Doc<'_>, a: usize, b: usize) -> bool {
    let mut first = true;
    for k in a..b {
        let t = &doc.tokens[k];
        match t.kind {
            Kind::Word => {
                let ok = t.is(shape::CAP) || (!first && t.has(flag::STOP | flag::PARTICLE));
                if !ok {
                    return false;
                }
                first = false;
            }
            Kind::Number => first = false,
            Kind::Punct('.' | '!' | '?' | ',' | ';' | ':') => return false,
            _ => {}
        }
    }
    !first
}

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Person(usize),
    /// A subject that is not a person (`the jury said`).
    Other,
    /// No attribution found.
    Unknown,
}

/// Speaker of each quotation (index into people), in order; titles are skipped.
pub(crate) fn attribute(
    doc: &Doc<'_>,
    quotes: &[QuoteSpan],
    persons: &[Span],
) -> Vec<(usize, Option<usize>)> {
    let mut out = Vec::with_capacity(quotes.len());
    if quotes.is_empty() {
        return out;
    }
    let mut last_speaker: Option<(usize, u32)> = None;
    let mut by_end: Vec<(usize, usize)> = persons
        .iter()
        .enumerate()
        .map(|(k, s)| (s.span.1, k))
        .collect();
    by_end.sort_unstable();
    let mut ctx = Ctx {
        doc,
        persons,
        by_end,
        last_speaker: None,
        according: Cell::new(None),
    };
    for (qi, q) in quotes.iter().enumerate() {
        if q.title {
            continue;
        }
        if !doc.budget.spend(q.text.len() / 64 + 1) {
            break;
        }
        let short = q.words <= 5 && !q.text.contains(['.', '!', '?']);
        ctx.last_speaker = last_speaker.map(|s| s.0);
        let mut who = Who::Unknown;
        if let Some(c) = q.close {
            who = ctx.after(c, q.open);
        }
        if who == Who::Unknown {
            who = ctx.before(q.open, short);
        }
        if who == Who::Unknown && !short {
            // Continues the speech of the previous quotation.
            if let (Some((sp, para)), Some(prev)) = (last_speaker, qi.checked_sub(1)) {
                let p = doc.tokens[q.open].para;
                let prev_q = &quotes[prev];
                let prev_para = doc.tokens[prev_q.open].para;
                // A quotation left open runs on past a short line between
                // (a heading the layout kept as a paragraph).
                let adjacent = prev_para == p
                    || prev_para + 1 == p
                    || (prev_q.close.is_none() && prev_para + 2 == p);
                // Someone else named between the two (the speaker named again,
                // `“…”, Pratt said. “…”`, does not count).
                let named_between = ctx
                    .persons_from(prev_q.end + 1)
                    .iter()
                    .take_while(|s| s.span.0 < q.open)
                    .take(8)
                    .any(|s| s.person != sp);
                if adjacent && para >= prev_para && !named_between {
                    who = Who::Person(sp);
                }
            }
        }
        let speaker = match who {
            Who::Person(p) => {
                last_speaker = Some((p, doc.tokens[q.open].para));
                Some(p)
            }
            _ => None,
        };
        out.push((qi, speaker));
    }
    out
}

/// A sentence's first `according to X` with a person as `X`: the token of
/// `according` and the person.
type AccordingTo = Option<(usize, usize)>;

struct Ctx<'c, 'd> {
    doc: &'c Doc<'d>,
    /// Sorted by start (stable: the order of mentions starting together is kept).
    persons: &'c [Span],
    /// `(end, index into persons)` of every mention, sorted.
    by_end: Vec<(usize, usize)>,
    last_speaker: Option<usize>,
    /// The sentence last asked about by [`Ctx::according_to`], and its answer.
    according: Cell<Option<(usize, AccordingTo)>>,
}

impl Ctx<'_, '_> {
    /// The mentions starting at token `i` or later.
    fn persons_from(&self, i: usize) -> &[Span] {
        let k = self.persons.partition_point(|s| s.span.0 < i);
        self.doc.budget.spend(1);
        &self.persons[k..]
    }

    /// The mentions starting before token `i`.
    fn persons_before(&self, i: usize) -> &[Span] {
        let k = self.persons.partition_point(|s| s.span.0 < i);
        self.doc.budget.spend(1);
        &self.persons[..k]
    }

    fn tok(&self, i: usize) -> &super::tokens::Token {
        &self.doc.tokens[i]
    }

    fn speech(&self, i: usize) -> bool {
        let t = self.tok(i);
        t.kind == Kind::Word && !t.is(shape::CAP) && t.has(flag::SPEECH)
    }

    fn pronoun(&self, i: usize) -> bool {
        let t = self.tok(i);
        t.kind == Kind::Word && t.has(flag::PRONOUN)
    }

    fn person_starting(&self, i: usize) -> Option<&Span> {
        self.persons_from(i).first().filter(|s| s.span.0 == i)
    }

    fn person_ending(&self, end: usize) -> Option<&Span> {
        let k = self.by_end.partition_point(|&(e, _)| e < end);
        self.doc.budget.spend(1);
        self.by_end
            .get(k)
            .filter(|&&(e, _)| e == end)
            .map(|&(_, p)| &self.persons[p])
    }

    /// The first `according to X` of sentence `s` whose `X` is a person: the token of
    /// `according` and the person. Read once per sentence.
    fn according_to(&self, s: usize) -> AccordingTo {
        if let Some((cached, found)) = self.according.get() {
            if cached == s {
                return found;
            }
        }
        let range = self.doc.sentences.get(s).cloned().unwrap_or(0..0);
        self.doc.budget.spend(range.len());
        let found = range.clone().find_map(|k| {
            let ok = k + 1 < range.end
                && self.doc.is_word(k, "according")
                && self.doc.is_word(k + 1, "to");
            ok.then(|| self.person_starting(k + 2).map(|p| (k, p.person)))
                .flatten()
        });
        self.according.set(Some((s, found)));
        found
    }

    fn sentence(&self, i: usize) -> std::ops::Range<usize> {
        let s = self.tok(i).sent as usize;
        self.doc.sentences.get(s).cloned().unwrap_or(i..i + 1)
    }

    /// `he`/`she` at token `i`.
    fn resolve_pronoun(&self, i: usize) -> Who {
        let sent = self.sentence(i);
        // Mentions before `i`, nearest first; those that reach past `i` (at most the
        // one around it) are passed over.
        let before = self.persons_before(i);
        let mut ended = before.iter().rev().filter(|s| {
            self.doc.budget.spend(1);
            s.span.1 <= i
        });
        let nearest = ended.next();
        if let Some(s) = nearest.filter(|s| s.span.0 >= sent.start) {
            return Who::Person(s.person);
        }
        if let Some(p) = self.last_speaker {
            return Who::Person(p);
        }
        // Earlier mentions are in earlier (or the same) paragraphs: the nearest one
        // decides.
        let para = self.tok(i).para;
        nearest
            .filter(|s| self.tok(s.span.0).para + 2 >= para)
            .map_or(Who::Unknown, |s| Who::Person(s.person))
    }

    /// Attribution after the closing mark `c`.
    fn after(&self, c: usize, open: usize) -> Who {
        let sent = self.sentence(c);
        let end = sent.end.min(self.doc.tokens.len());
        let para = self.tok(c).para;
        let mut k = c + 1;
        while k < end && matches!(self.tok(k).kind, Kind::Punct(',' | '—' | '–' | '-')) {
            k += 1;
        }
        if k >= end || self.tok(k).para != para {
            return Who::Unknown;
        }
        let _ = open;
        // `said X`, `added he`, `said the magistrate, X`.
        if self.speech(k) {
            let n = k + 1;
            if n < end {
                if let Some(s) = self.person_starting(n) {
                    return Who::Person(s.person);
                }
                if self.pronoun(n) {
                    return self.resolve_pronoun(n);
                }
                if let Some(s) = self.appositive_person(n, end) {
                    return Who::Person(s);
                }
                return self.subject_kind(n, end);
            }
            return Who::Unknown;
        }
        // `according to X`.
        if self.doc.is_word(k, "according") && self.doc.is_word(k + 1, "to") {
            if let Some(s) = self.person_starting(k + 2) {
                return Who::Person(s.person);
            }
            return Who::Other;
        }
        // `he added`.
        if self.pronoun(k) {
            if (k + 1..(k + 3).min(end)).any(|v| self.speech(v)) {
                return self.resolve_pronoun(k);
            }
            return Who::Unknown;
        }
        // `X said`, `X, in charge of ..., assured reporters`; `Colquitt Policeman X
        // said` (capitalised words before the name).
        let named = (k..(k + 4).min(end))
            .take_while(|&j| j == k || self.tok(j - 1).cap_word())
            .find_map(|j| self.person_starting(j));
        if let Some(s) = named {
            let mut e = s.span.1;
            if self.doc.is_punct(e, ',') {
                if let Some(close) = (e + 1..(e + 16).min(end)).find(|&v| self.doc.is_punct(v, ','))
                {
                    e = close + 1;
                }
            }
            if (e..(e + 3).min(end)).any(|v| self.speech(v)) {
                return Who::Person(s.person);
            }
            return Who::Unknown;
        }
        // `the jury said`, `officials said`.
        let verb = (k..(k + 5).min(end)).find(|&v| self.speech(v));
        if let Some(v) = verb {
            let any_person = self
                .persons_from(k)
                .iter()
                .take_while(|s| s.span.0 < v)
                .any(|s| s.span.1 <= v);
            if !any_person {
                return Who::Other;
            }
        }
        Who::Unknown
    }

    /// `the magistrate, K.J.P. Baraclough`: a person after `the` and up to four
    /// lower-case words and a comma, starting at `n`.
    fn appositive_person(&self, n: usize, end: usize) -> Option<usize> {
        if !self.doc.is_word(n, "the") {
            return None;
        }
        let comma = (n + 1..(n + 6).min(end)).find(|&j| self.doc.is_punct(j, ','))?;
        let lower = (n + 1..comma).all(|j| {
            let t = self.tok(j);
            t.kind == Kind::Word && !t.is(shape::CAP)
        });
        if !lower || comma == n + 1 {
            return None;
        }
        self.person_starting(comma + 1).map(|s| s.person)
    }

    /// What kind of subject starts at `n` (`the jury` is not a person).
    fn subject_kind(&self, n: usize, end: usize) -> Who {
        let t = self.tok(n);
        if t.kind == Kind::Word && n < end {
            Who::Other
        } else {
            Who::Unknown
        }
    }

    /// Attribution before the opening mark `o`.
    fn before(&self, o: usize, short: bool) -> Who {
        let sent = self.sentence(o);
        let start = sent.start;
        if o <= start {
            return Who::Unknown;
        }
        // `according to X, “…”`.
        if let Some((k, person)) = self.according_to(self.tok(o).sent as usize) {
            if k + 1 < o {
                return Who::Person(person);
            }
        }
        // The nearest verb of saying before the quotation.
        let lo = o.saturating_sub(6).max(start);
        if let Some(v) = (lo..o).rev().find(|&v| self.speech(v)) {
            // A short phrase takes the speaker only from a person (`Mr. Goldberg says
            // he's merely “putting my neck out”`), never from a pronoun far off.
            let who = self.subject_of(v, start);
            let direct = (v + 1..o).all(|k| {
                matches!(self.tok(k).kind, Kind::Punct(':' | ',')) || self.doc.is_word(k, "that")
            });
            return if short && !direct && !matches!(who, Who::Person(_)) {
                Who::Unknown
            } else {
                who
            };
        }
        // Reported speech: `X stated that … and that “…”`, `He declared on March 25
        // that … by “…”` — a verb of saying followed by `that`, earlier in the
        // sentence (at most 40 words back).
        let far = o.saturating_sub(40).max(start);
        let reported = (far..lo).rev().find(|&v| {
            self.speech(v) && (v + 1..(v + 6).min(o)).any(|k| self.doc.is_word(k, "that"))
        });
        match reported {
            Some(v) => match self.subject_of(v, start) {
                Who::Person(p) => Who::Person(p),
                _ => Who::Unknown,
            },
            None => Who::Unknown,
        }
    }

    /// The subject of the verb at `v` (sentence starting at `start`). Auxiliaries
    /// before the verb (`X has said`, `X had then told`) are stepped over.
    fn subject_of(&self, v: usize, start: usize) -> Who {
        let mut v = v;
        loop {
            if v == 0 || v <= start || !self.doc.budget.spend(1) {
                return Who::Unknown;
            }
            let p = v - 1;
            if self.pronoun(p) {
                return self.resolve_pronoun(p);
            }
            if let Some(s) = self.person_ending(v) {
                return Who::Person(s.person);
            }
            // `X, in charge of ..., said`.
            if self.doc.is_punct(p, ',') {
                if let Some(open) = (start..p)
                    .rev()
                    .take(16)
                    .find(|&k| self.doc.is_punct(k, ','))
                {
                    if let Some(s) = self.person_ending(open) {
                        return Who::Person(s.person);
                    }
                }
                return Who::Unknown;
            }
            // `X welcomed ... and said`: the subject of the sentence (a mention that
            // starts the sentence, or its second token).
            if self.doc.is_word(p, "and") || self.doc.is_word(p, "but") {
                // Else the first person named in the sentence and followed by a
                // comma (`… Johnny Weissmuller, the only real Tarzan, telephoned
                // Maureen O'Sullivan … and muttered`).
                let mentions = self.persons_from(start);
                let first = mentions
                    .iter()
                    .take_while(|s| s.span.0 <= start + 1 && s.span.0 < p)
                    .find(|s| s.span.1 <= p)
                    .or_else(|| {
                        mentions
                            .iter()
                            .take_while(|s| s.span.1 <= p)
                            .take(8)
                            .find(|s| self.doc.is_punct(s.span.1, ','))
                    });
                return first.map_or(Who::Unknown, |s| Who::Person(s.person));
            }
            // Auxiliaries: `X has said`, `X had told`.
            if !matches!(
                self.doc.fold(p),
                "has" | "had" | "have" | "also" | "then" | "later"
            ) {
                return Who::Other;
            }
            v = p;
        }
    }
}
