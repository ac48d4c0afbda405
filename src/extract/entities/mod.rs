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

mod names;
mod org_names;
mod titles;

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

    pub(super) fn tok(&self, i: usize) -> &super::tokens::Token {
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
                crate::fold::fold_into(&mut self.key, st.state);
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
