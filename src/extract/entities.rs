//! Finding name mentions: runs of capitalised words ("chunks") cut into titles,
//! people, organizations and places.
//!
//! A chunk is a run of capitalised words in one sentence, joined by name particles
//! (`da`, `van`) and connectors (`of`, `of the`, `for`). Each chunk is read left to right:
//! an acronym definition found earlier, a curated institution, a title (`US Secretary
//! of State`, `Mr.`, `Gov.`) followed by a name, an organization ending in a keyword
//! (`State Department`, `Fulton Superior Court`) or shaped `Organization of X`, a
//! multi-word place from the gazetteer (`Los Angeles`), a demonym, or a person's name
//! (two or more name-like words anchored by a first name, an initial, or a word that is
//! not a common English word). Single capitalised words left over are resolved later,
//! once every full name is known (surname coreference, places, acronyms).
//!
//! The pass stays linear in a chunk however long it is: the searches that run ahead
//! of the position (the next acronym span, the end of an organization, the end of a
//! run of title modifiers) remember their answer ([`NextFrom`]), and a name has at
//! most [`MAX_NAME_WORDS`] words.

use std::cell::Cell;

use super::gazetteer::{Gazetteer, Phrase};
use super::lexicon::flag;
use super::next::NextFrom;
use super::tokens::{shape, Doc, Kind};

/// The most name words in one person's name (a longer run of them is cut).
pub(crate) const MAX_NAME_WORDS: usize = 12;

/// A person mention.
#[derive(Debug, Clone)]
pub(crate) struct PersonMention {
    /// Whole mention, title included (token range).
    pub span: (usize, usize),
    /// The name words.
    pub core: (usize, usize),
    /// Token of an honorific (`Mr.`), if any.
    pub honorific: Option<usize>,
    /// Tokens of a title seen with the name.
    pub role: Option<(usize, usize)>,
}

/// A place mention, before disambiguation.
#[derive(Debug, Clone)]
pub(crate) struct PlaceMention {
    /// Token range.
    pub span: (usize, usize),
    /// Folded key in the gazetteer.
    pub key: String,
    /// A place known from its context, not the gazetteer: a town known from the
    /// state after it (`Ocala, Fla.`), its country's code; a feature (`Coosa
    /// Valley`), `""`.
    pub town: Option<&'static str>,
    /// Written as a state's abbreviation (`N. Y.`): the state's name (its reading is
    /// the state's, not the city's).
    pub state: Option<&'static str>,
}

/// An organization mention.
#[derive(Debug, Clone)]
pub(crate) struct OrgMention {
    /// Token range.
    pub span: (usize, usize),
    /// Name as it should be reported.
    pub name: String,
    /// Acronym, when defined or known.
    pub acronym: Option<String>,
}

/// Everything the chunk pass found.
#[derive(Debug, Default)]
pub(crate) struct Mentions {
    /// People (full names and titled names).
    pub persons: Vec<PersonMention>,
    /// Multi-word places and dateline places.
    pub places: Vec<PlaceMention>,
    /// Organizations.
    pub orgs: Vec<OrgMention>,
    /// Single capitalised words to resolve later.
    pub singles: Vec<usize>,
    /// Acronyms defined in the text: (acronym, org name).
    pub acronyms: Vec<(String, String)>,
}

/// Flags of words that never name a person.
pub(crate) const NOT_PERSON: u32 = flag::STOP
    | flag::MONTH
    | flag::WEEKDAY
    | flag::ORG_END
    | flag::TITLE
    | flag::HONORIFIC
    | flag::DEMONYM
    | flag::NOT_NAME;

/// An organization keyword scan: from `from` (within `limit`) it stopped at `stop`,
/// and `last` is the last keyword it met before that.
#[derive(Debug, Clone, Copy)]
struct OrgScan {
    from: usize,
    limit: usize,
    stop: usize,
    last: Option<usize>,
}

pub(crate) struct Scanner<'d, 'a> {
    doc: &'d Doc<'a>,
    gaz: &'d Gazetteer,
    excluded: &'d [bool],
    /// Token -> index+1 of an org span defined by an acronym, 0 otherwise.
    marks: Vec<u32>,
    key: String,
    out: Mentions,
    /// The next token with a mark.
    next_mark: NextFrom,
    /// The next token that is not a title modifier (or is a title word).
    next_non_modifier: NextFrom,
    /// The last organization keyword scan, see [`Scanner::org_keywords`].
    org_scan: Cell<Option<OrgScan>>,
    /// The next title word followed by a name, for `X of Y` organizations and their
    /// `of Y` tails.
    next_title_name: NextFrom,
    next_title_name_tail: NextFrom,
    /// The article is about sport ([`super::teams::sporty`]).
    sporty: bool,
}

impl<'d, 'a> Scanner<'d, 'a> {
    pub fn new(doc: &'d Doc<'a>, gaz: &'d Gazetteer, excluded: &'d [bool]) -> Self {
        Scanner {
            doc,
            gaz,
            excluded,
            marks: vec![0; doc.tokens.len()],
            key: String::with_capacity(64),
            out: Mentions::default(),
            next_mark: NextFrom::default(),
            next_non_modifier: NextFrom::default(),
            org_scan: Cell::new(None),
            next_title_name: NextFrom::default(),
            next_title_name_tail: NextFrom::default(),
            sporty: super::teams::sporty(doc),
        }
    }

    /// Runs the pass over every sentence.
    pub fn run(mut self) -> Mentions {
        self.acronym_definitions();
        for s in 0..self.doc.sentences.len() {
            let r = self.doc.sentences[s].clone();
            if !self.doc.budget.spend(r.len()) {
                break;
            }
            let mut i = r.start;
            while i < r.end {
                if !self.chunk_word(i) {
                    i += 1;
                    continue;
                }
                let mut j = i + 1;
                while j < r.end {
                    if self.chunk_word(j) {
                        j += 1;
                        continue;
                    }
                    // `Planning and Development Commission`: `and` inside an org name.
                    if self.doc.is_word(j, "and") || self.doc.is_punct(j, '&') {
                        let mut m = j + 1;
                        while m < r.end && self.chunk_word(m) {
                            m += 1;
                        }
                        if m > j + 1 && self.tok(m - 1).has(flag::ORG_END) {
                            j = m;
                            continue;
                        }
                    }
                    if self.joiner(j) {
                        let mut k = j + 1;
                        if self.doc.is_word(k, "the") && self.doc.is_word(j, "of") {
                            k += 1;
                        }
                        if k < r.end && self.chunk_word(k) {
                            j = k;
                            continue;
                        }
                    }
                    break;
                }
                // `the Liberal party`, `the Communist party's program`.
                if j - i <= 2 && j < r.end && self.lower_party(j) {
                    self.push_org(i, j + 1);
                    i = j + 1;
                    continue;
                }
                self.chunk(i, j);
                i = j;
            }
        }
        super::cues::promote(self.doc, self.gaz, &mut self.out);
        self.out
    }

    fn tok(&self, i: usize) -> &super::tokens::Token {
        &self.doc.tokens[i]
    }

    #[inline]
    fn chunk_word(&self, i: usize) -> bool {
        let t = self.tok(i);
        t.cap_word()
            && !self.excluded[i]
            && (t.is(shape::ALLCAPS) || !t.has(flag::STOP))
            && !self.hyphen_adjective(i)
    }

    /// `Republican-controlled`, `Soviet-backed`, `Texas-based`: an adjective.
    fn hyphen_adjective(&self, i: usize) -> bool {
        self.tok(i).is(shape::HYPHEN)
            && self.doc.text(i).rsplit('-').next().is_some_and(|last| {
                last.ends_with("ed") && last.chars().next().is_some_and(char::is_lowercase)
            })
    }

    fn joiner(&self, i: usize) -> bool {
        let t = self.tok(i);
        t.kind == Kind::Word
            && !t.is(shape::CAP)
            && (t.has(flag::CONNECT) || t.has(flag::PARTICLE))
            && !self.excluded[i]
    }

    /// `Organization of American States (OAS)`: the words before the parenthesis whose
    /// initials spell the acronym become one organization.
    fn acronym_definitions(&mut self) {
        let toks = &self.doc.tokens;
        for p in 0..toks.len() {
            if toks[p].kind != Kind::Punct('(') || p + 2 >= toks.len() {
                continue;
            }
            let a = &toks[p + 1];
            if a.kind != Kind::Word
                || !a.is(shape::ALLCAPS)
                || toks[p + 2].kind != Kind::Punct(')')
                || a.para != toks[p].para
            {
                continue;
            }
            let acr: Vec<char> = self
                .doc
                .text(p + 1)
                .chars()
                .filter(|c| c.is_alphabetic())
                .collect();
            if acr.len() < 2 || acr.len() > 8 {
                continue;
            }
            // Walk back over capitalised words and connectors.
            let mut letters = Vec::with_capacity(acr.len());
            let mut start = p;
            let mut k = p;
            while k > 0 && letters.len() < acr.len() {
                k -= 1;
                let t = &toks[k];
                if t.para != toks[p].para || t.kind != Kind::Word {
                    break;
                }
                if t.is(shape::CAP) {
                    let first = self.doc.text(k).chars().next().unwrap_or(' ');
                    letters.push(first);
                    start = k;
                } else if t.has(flag::CONNECT) || matches!(self.doc.fold(k), "the" | "and") {
                    continue;
                } else {
                    break;
                }
            }
            letters.reverse();
            let same = letters.len() == acr.len()
                && letters
                    .iter()
                    .zip(&acr)
                    .all(|(a, b)| a.to_uppercase().eq(b.to_uppercase()));
            if !same {
                continue;
            }
            // A place spelled out (`United States (US)`) is not an organization.
            self.key.clear();
            join_folded(self.doc, start, p, &mut self.key);
            if !self.gaz.place(&self.key).is_empty() {
                continue;
            }
            let name = self.doc.span(start, p).to_owned();
            let acronym = self.doc.text(p + 1).to_owned();
            self.out.acronyms.push((acronym.clone(), name.clone()));
            self.out.orgs.push(OrgMention {
                span: (start, p + 3),
                name,
                acronym: Some(acronym),
            });
            let id = self.out.orgs.len() as u32;
            for m in &mut self.marks[start..p + 3] {
                *m = id;
            }
        }
    }

    fn chunk(&mut self, a: usize, b: usize) {
        let lower_role = self.lower_role_before(a);
        let mut i = a;
        while i < b {
            if !self.doc.budget.spend(1) {
                return;
            }
            if !self.tok(i).cap_word() {
                i += 1;
                continue;
            }
            if self.marks[i] != 0 {
                let id = self.marks[i];
                while i < b && self.marks[i] == id {
                    i += 1;
                }
                continue;
            }
            let limit = self
                .next_mark
                .find(i, b, &self.doc.budget, |k| self.marks[k] != 0);
            // `Fla.`, `N. Y.`; `Ocala` in `Ocala, Fla.`.
            if let Some(st) = super::states::abbreviation_at(self.doc, i) {
                self.key.clear();
                super::tokens::fold_into(&mut self.key, st.state);
                self.out.places.push(PlaceMention {
                    span: st.span,
                    key: self.key.clone(),
                    town: None,
                    state: Some(st.state),
                });
                i = st.span.1;
                continue;
            }
            if i == a && b - a <= 3 && !self.tok(a).has(flag::HONORIFIC | flag::TITLE) {
                if let Some(st) = super::states::town_before_state(self.doc, b) {
                    self.key.clear();
                    join_folded(self.doc, a, b, &mut self.key);
                    self.out.places.push(PlaceMention {
                        span: (a, b),
                        key: self.key.clone(),
                        town: Some(st.country),
                        state: None,
                    });
                    i = b;
                    continue;
                }
            }
            // Curated institutions and demonyms.
            if let Some((end, phrase)) = self.phrase_at(i, limit) {
                match phrase {
                    // `Senate Foreign Relations Committee`, `Federal Reserve Board`:
                    // a longer name that opens with an institution's.
                    Phrase::Institution(_) if self.org_end(i, limit).is_some_and(|e| e > end) => {}
                    Phrase::Institution(n) => {
                        let (name, acr) = super::lexicon::INSTITUTIONS[n];
                        self.out.orgs.push(OrgMention {
                            span: (i, end),
                            name: name.to_owned(),
                            acronym: (!acr.is_empty()).then(|| acr.to_owned()),
                        });
                        i = end;
                        continue;
                    }
                    Phrase::Demonym(_) => {
                        i = end;
                        continue;
                    }
                    Phrase::Title => {}
                }
            }
            if let Some(end) =
                super::teams::team_at(self.doc, self.gaz, i, limit, self.sporty, &mut self.key)
            {
                self.push_org(i, end);
                i = end;
                continue;
            }
            // Title (+ name).
            if let Some((role, hon, after)) = self.title_at(i, limit) {
                let (core_end, names) = self.person_core(after, limit, true);
                if names >= 1 {
                    self.out.persons.push(PersonMention {
                        span: (i, core_end),
                        core: (after, core_end),
                        honorific: hon,
                        role,
                    });
                    i = core_end;
                    continue;
                }
                // A title alone: `the Secretary of State will travel`.
                if hon.is_none() && !self.starts_org(i, limit) {
                    i = after.max(i + 1);
                    continue;
                }
            }
            if let Some(end) = self.org_at(i, limit) {
                self.push_org(i, end);
                i = end;
                continue;
            }
            if let Some(end) = self.place_at(i, limit) {
                self.out.places.push(PlaceMention {
                    span: (i, end),
                    key: self.key.clone(),
                    town: None,
                    state: None,
                });
                i = end;
                continue;
            }
            if let Some(end) = super::states::feature(self.doc, i, limit) {
                self.key.clear();
                join_folded(self.doc, i, end, &mut self.key);
                self.out.places.push(PlaceMention {
                    span: (i, end),
                    key: self.key.clone(),
                    town: Some(""),
                    state: None,
                });
                i = end;
                continue;
            }
            if self.tok(i).has(flag::DEMONYM) {
                i += 1;
                continue;
            }
            let titled = i == a && lower_role.is_some();
            let (core_end, names) = self.person_core(i, limit, titled);
            if names >= 2 || (titled && names >= 1) {
                self.out.persons.push(PersonMention {
                    span: (lower_role.map_or(i, |r| r.0), core_end),
                    core: (i, core_end),
                    honorific: None,
                    role: if titled { lower_role } else { None },
                });
                i = core_end;
                continue;
            }
            self.out.singles.push(i);
            i += 1;
        }
    }

    /// Whether token `j` is a lower-case `party` (`party's`).
    fn lower_party(&self, j: usize) -> bool {
        let t = self.tok(j);
        t.kind == Kind::Word && !t.is(shape::CAP) && self.doc.fold(j) == "party"
    }

    /// An organization named by tokens `a..b`, as written.
    fn push_org(&mut self, a: usize, b: usize) {
        self.out.orgs.push(OrgMention {
            span: (a, b),
            name: self.doc.span(a, b).to_owned(),
            acronym: None,
        });
    }

    /// Most words in a curated phrase starting with token `i` (0: none). The phrase
    /// table is asked only about words the gazetteer marked as able to open one.
    fn phrase_span(&self, i: usize) -> usize {
        if self.tok(i).has(flag::PHRASE_START) {
            self.gaz.phrase_span(self.doc.fold(i))
        } else {
            0
        }
    }

    /// Longest curated phrase starting at `i`, within `limit`.
    fn phrase_at(&mut self, i: usize, limit: usize) -> Option<(usize, Phrase)> {
        let max = self.phrase_span(i).min(limit - i);
        for n in (1..=max).rev() {
            self.key.clear();
            join_folded(self.doc, i, i + n, &mut self.key);
            if let Some(p) = self.gaz.phrase(&self.key) {
                // Institutions must be written capitalised (or as an acronym), and not
                // open a longer name (`Congress of Industrial Organizations`).
                let last_cap = self.tok(i + n - 1).cap_word();
                let longer = self.doc.is_word(i + n, "of")
                    && self.tok(i + n).para == self.tok(i).para
                    && i + n + 1 < limit;
                if last_cap && !(longer && matches!(p, Phrase::Institution(_))) {
                    return Some((i + n, p));
                }
            }
        }
        None
    }

    fn is_title_word(&self, i: usize) -> bool {
        let t = self.tok(i);
        if t.kind != Kind::Word {
            return false;
        }
        if t.has(flag::TITLE) {
            return true;
        }
        t.is(shape::HYPHEN)
            && self
                .doc
                .fold(i)
                .split('-')
                .any(|p| self.gaz.word_flags(p.trim_end_matches('.')) & flag::TITLE != 0)
    }

    /// A title phrase or title word at `i` (optionally after modifiers and a country
    /// prefix): returns (role tokens, honorific token, first token after the title).
    #[allow(clippy::type_complexity)]
    fn title_at(
        &mut self,
        i: usize,
        limit: usize,
    ) -> Option<(Option<(usize, usize)>, Option<usize>, usize)> {
        let t = *self.tok(i);
        if t.has(flag::HONORIFIC) && (t.is(shape::ABBR) || t.is(shape::CAP)) {
            return Some((None, Some(i), i + 1));
        }
        // `M.` before a surname (French usage).
        if t.is(shape::INITIAL)
            && self.doc.fold(i) == "m."
            && i + 1 < limit
            && self.tok(i + 1).cap_word()
            && !self.tok(i + 1).is(shape::INITIAL)
            && (i == 0 || !self.tok(i - 1).is(shape::INITIAL))
        {
            return Some((None, Some(i), i + 1));
        }
        let mut k = i;
        // Country prefix: `US`, `Colombian`.
        if (t.has(flag::DEMONYM) || self.is_country(i)) && i + 1 < limit {
            k = i + 1;
        }
        k = self
            .next_non_modifier
            .find(k, limit, &self.doc.budget, |k| {
                !self.tok(k).has(flag::TITLE_MOD) || self.is_title_word(k)
            });
        // Title phrase, longest first.
        let max = if k < limit {
            self.phrase_span(k).min(limit - k)
        } else {
            0
        };
        for n in (2..=max).rev() {
            self.key.clear();
            join_folded(self.doc, k, k + n, &mut self.key);
            if self.gaz.phrase(&self.key) == Some(Phrase::Title) {
                return Some((Some((i, k + n)), None, k + n));
            }
        }
        if k < limit && self.is_title_word(k) {
            let mut end = k + 1;
            // `Lt. Gov.`, `Vice President`.
            while end < limit && self.is_title_word(end) && !self.tok(end).has(flag::ORG_END) {
                end += 1;
            }
            return Some((Some((i, end)), None, end));
        }
        None
    }

    fn is_country(&self, i: usize) -> bool {
        let t = self.tok(i);
        if !t.cap_word() {
            return false;
        }
        let key = self.doc.fold(i);
        self.gaz.place(key).first().is_some_and(|e| {
            matches!(
                e.kind,
                super::gazetteer::PlaceKind::Country | super::gazetteer::PlaceKind::FormerCountry
            )
        })
    }

    /// A lower-case title right before the chunk: `ex-president`, `head of state`.
    fn lower_role_before(&mut self, a: usize) -> Option<(usize, usize)> {
        let para = self.tok(a).para;
        let lower = |s: &Self, k: usize| {
            let t = s.tok(k);
            t.kind == Kind::Word && !t.is(shape::CAP) && t.para == para
        };
        for n in (1..=4usize).rev() {
            if a < n || !(a - n..a).all(|k| lower(self, k)) {
                continue;
            }
            let start = a - n;
            let ok = if n == 1 {
                self.is_title_word(start) && !self.tok(start).has(flag::STOP)
            } else if self.phrase_span(start) < n {
                false
            } else {
                self.key.clear();
                join_folded(self.doc, start, a, &mut self.key);
                self.gaz.phrase(&self.key) == Some(Phrase::Title)
            };
            if ok {
                let mut s = start;
                while s > 0 && lower(self, s - 1) && self.tok(s - 1).has(flag::TITLE_MOD) {
                    s -= 1;
                }
                if s > 0 && self.tok(s - 1).cap_word() && self.tok(s - 1).has(flag::DEMONYM) {
                    s -= 1;
                }
                return Some((s, a));
            }
        }
        None
    }

    /// Whether an organization starts at `i` (used to let `General Assembly` through).
    fn starts_org(&self, i: usize, limit: usize) -> bool {
        self.org_end(i, limit).is_some()
    }

    fn org_at(&self, i: usize, limit: usize) -> Option<usize> {
        self.org_end(i, limit)
    }

    fn org_end(&self, i: usize, limit: usize) -> Option<usize> {
        let t = self.tok(i);
        if t.has(flag::HONORIFIC) || t.is(shape::INITIAL) {
            return None;
        }
        let title_then_name =
            |k: usize| self.is_title_word(k) && self.name_like_after(k + 1, limit);
        // `University of Georgia`, `Organization of American States`.
        if t.has(flag::ORG_START) && i + 2 < limit && self.doc.is_word(i + 1, "of") {
            let mut end =
                self.next_title_name
                    .find(i + 2, limit, &self.doc.budget, title_then_name);
            while end > i + 2 && !self.tok(end - 1).cap_word() {
                end -= 1;
            }
            if self.tok(end - 1).cap_word() {
                return Some(end);
            }
        }
        // `State Department`, `Fulton Superior Court`: up to the last keyword.
        let k = self.org_keywords(i, limit)?;
        // `Committee of Ten`, `Bank of America`, `Commission on Civil Rights`: keep the
        // `of X` (`on X`, `for X`) tail.
        // Never a date: `the Grand Jury on Friday`.
        let dated = k + 2 < limit && self.tok(k + 2).has(flag::MONTH | flag::WEEKDAY);
        let tail = (self.tok(k).has(flag::ORG_START) && self.doc.is_word(k + 1, "of"))
            || ((self.doc.is_word(k + 1, "on") || self.doc.is_word(k + 1, "for")) && !dated);
        if tail && k + 2 < limit {
            let mut end =
                self.next_title_name_tail
                    .find(k + 2, limit, &self.doc.budget, title_then_name);
            while end > k + 2 && !self.tok(end - 1).cap_word() {
                end -= 1;
            }
            return Some(end);
        }
        Some(k + 1)
    }

    /// The last organization keyword after `i` before the scan stops (at a title
    /// word that is not a keyword, followed by a name, or at `limit`). The stop and
    /// the last keyword before it are remembered: they answer every later `i` up to
    /// the stop.
    fn org_keywords(&self, i: usize, limit: usize) -> Option<usize> {
        // A singular possessive ends the name: `Salvation Army's Social Center`
        // (not `Baseball Writers' Association`).
        let stops = |k: usize| {
            (k > i
                && self.tok(k - 1).is(shape::POSS)
                && !self.doc.text(k - 1).ends_with(['s', 'S']))
                || self.is_title_word(k)
                    && !self.tok(k).has(flag::ORG_END)
                    && self.name_like_after(k + 1, limit)
        };
        let keyword = |k: usize| {
            let tk = self.tok(k);
            tk.cap_word() && tk.has(flag::ORG_END)
        };
        let last = match self.org_scan.get() {
            Some(s) if s.limit == limit && s.from <= i && i <= s.stop => {
                self.doc.budget.spend(1);
                s.last
            }
            _ => {
                let mut k = i;
                let mut last = None;
                while k < limit && !stops(k) {
                    if keyword(k) {
                        last = Some(k);
                    }
                    k += 1;
                }
                self.doc.budget.spend(k - i + 1);
                self.org_scan.set(Some(OrgScan {
                    from: i,
                    limit,
                    stop: k,
                    last,
                }));
                last
            }
        };
        last.filter(|&k| k > i)
    }

    /// Whether token `i` (before `limit`) could start a person's name.
    fn name_like_after(&self, i: usize, limit: usize) -> bool {
        i < limit && {
            let t = self.tok(i);
            t.cap_word() && !t.has(NOT_PERSON)
        }
    }

    /// Longest multi-word gazetteer place at `i` (sets `self.key`).
    fn place_at(&mut self, i: usize, limit: usize) -> Option<usize> {
        let max = if self.tok(i).has(flag::MULTI_PLACE_START) {
            self.gaz.place_span(self.doc.fold(i)).min(limit - i)
        } else {
            0
        };
        for n in (2..=max).rev() {
            if !self.tok(i + n - 1).cap_word() {
                continue;
            }
            self.key.clear();
            join_folded(self.doc, i, i + n, &mut self.key);
            if !self.gaz.place(&self.key).is_empty() {
                return Some(i + n);
            }
        }
        None
    }

    /// The name words from `i`: returns (end, number of name words).
    fn person_core(&mut self, i: usize, limit: usize, titled: bool) -> (usize, usize) {
        // `St. Patty Day`, `Mount Vernon Smith`: not a name after a place-name prefix.
        if !titled && i > 0 && self.tok(i - 1).cap_word() && self.tok(i - 1).has(flag::NOT_NAME) {
            return (i, 0);
        }
        let mut j = i;
        let mut names = 0usize;
        let mut end = i;
        // The previous name word followed an initial (`R. E. Killingsworth`).
        let mut after_initial_form = false;
        // Whether `i..anchor.0` holds an anchor: `anchored(i, j)`, read on as `j` grows.
        let mut anchor = (i, false);
        while j < limit && names < MAX_NAME_WORDS {
            self.doc.budget.spend(1);
            let t = *self.tok(j);
            // A run-in second name: `R. E. Killingsworth Raymond E. Killingsworth`.
            if after_initial_form && names >= 2 && t.has(flag::FIRST) && !t.is(shape::INITIAL) {
                break;
            }
            after_initial_form = j > i
                && !t.is(shape::INITIAL)
                && self.tok(j - 1).is(shape::INITIAL)
                && t.cap_word();
            if t.kind == Kind::Word && !t.is(shape::CAP) && t.has(flag::PARTICLE) && names > 0 {
                if j + 1 < limit && self.tok(j + 1).cap_word() {
                    j += 1;
                    continue;
                }
                break;
            }
            if !t.cap_word() {
                break;
            }
            if t.has(flag::SUFFIX) && names > 0 && (t.is(shape::ABBR) || t.is(shape::ALLCAPS)) {
                j += 1;
                end = j;
                break;
            }
            if t.has(NOT_PERSON) && !t.is(shape::INITIAL) {
                break;
            }
            if t.is(shape::ALLCAPS) && !t.is(shape::INITIAL) && !self.initials(j) {
                break;
            }
            // `Herrin-Murphysboro-West`: a compound of three or more parts is no name.
            if t.is(shape::HYPHEN) && self.doc.text(j).matches('-').count() >= 2 {
                break;
            }
            if names == 0 {
                // `Denver's Al Carmichael`: a place's possessive opens no name.
                if t.is(shape::POSS) && !self.gaz.place(self.doc.fold(j)).is_empty() {
                    break;
                }
                if !titled {
                    let first = t.is(shape::INITIAL)
                        || (t.has(flag::FIRST)
                            && !(t.is(shape::SENT_START) && t.has(flag::COMMON)))
                        || !t.has(flag::COMMON);
                    if !first || self.is_big_place(j) {
                        break;
                    }
                }
            } else if (self.is_big_place(j) && !t.has(flag::SURNAME) && !t.has(flag::FIRST))
                || (!titled
                    && t.has(flag::COMMON)
                    && !t.has(flag::SURNAME | flag::FIRST)
                    && !self.anchored_to(&mut anchor, j))
            {
                break;
            }
            names += 1;
            j += 1;
            end = j;
            if t.is(shape::POSS) {
                break;
            }
        }
        // `Coosa Valley`, `Grady Hospital`: no first name and a place word at the end.
        if !titled && names >= 2 && self.tok(end - 1).has(flag::GEO) && !self.anchored(i, end) {
            return (i, 0);
        }
        (end, names)
    }

    /// Whether token `i` is a run of initials written together: `K.J.P.`.
    fn initials(&self, i: usize) -> bool {
        let w = self.doc.text(i).as_bytes();
        w.len() >= 4
            && w.len().is_multiple_of(2)
            && w.chunks(2)
                .all(|c| c[0].is_ascii_uppercase() && c[1] == b'.')
    }

    /// Whether the name words `i..j` hold an initial or a first name that is not also a
    /// common word (`Forest`, `Will`, `Grant` do not count).
    fn anchored(&self, i: usize, j: usize) -> bool {
        self.anchored_to(&mut (i, false), j)
    }

    /// [`Scanner::anchored`] read on from a previous answer: `state` is `(k, found)`,
    /// whether `i..k` holds an anchor; it is moved on to `j`.
    fn anchored_to(&self, state: &mut (usize, bool), j: usize) -> bool {
        while !state.1 && state.0 < j {
            let t = self.tok(state.0);
            state.1 = t.is(shape::INITIAL) || (t.has(flag::FIRST) && !t.has(flag::COMMON));
            state.0 += 1;
        }
        self.doc.budget.spend(1);
        state.1
    }

    /// A country, state, continent or region name (not a city): never a name word.
    fn is_big_place(&self, i: usize) -> bool {
        use super::gazetteer::PlaceKind as K;
        self.gaz.place(self.doc.fold(i)).first().is_some_and(|e| {
            matches!(
                e.kind,
                K::Country | K::FormerCountry | K::Continent | K::Region | K::State | K::Province
            )
        })
    }
}

/// Appends the folded forms of tokens `a..b`, single-spaced, to `out`.
pub(crate) fn join_folded(doc: &Doc<'_>, a: usize, b: usize, out: &mut String) {
    for k in a..b {
        if k > a {
            out.push(' ');
        }
        out.push_str(doc.fold(k));
    }
}
