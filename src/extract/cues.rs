//! People the name lists do not know, told by their context: a single capitalised
//! word left over by the chunk pass is a person's name when the sentence uses it as
//! one.
//!
//! The cues, each about the word `X` and its neighbours in the sentence:
//! - a speaker's slot next to a quotation: `“…”, said X`, `“…”, X said`, `X said, “…”`;
//! - a verb of saying: `X said`, `X has declared`, `said X,` (anywhere);
//! - an appositive: `X, who …`, `X, 42, …`, `our son, X,`;
//! - a subject whose verb follows (`X dropped a double`, `X considers`, `X would`) or a
//!   possessive (`X's next toss`): only for a word no list knows at all, or a listed
//!   surname that is not a common word (or stands inside the sentence);
//! - a surname used as an adjective: `the Kennedy plan`;
//! - a list with a known person: `Paschal, Cooke and Hinton` once one is a person.
//!
//! A word that is a place's name (unless that name needs context, `Jackson`), a
//! function word, a title, a month or a word with digits is never promoted; a common
//! word (`Barber`, `Brown`) only when it is also a listed surname, or stands inside the
//! sentence in a speaker's slot or as a listed first name. The
//! people pass then gives every other mention of the same word the same reading.

use super::entities::{Mentions, PersonMention, NOT_PERSON};
use super::gazetteer::{Gazetteer, PlaceEntry};
use super::lexicon::flag;
use super::tokens::{shape, Doc, Kind, Token};

/// How strongly the context says "person".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cue {
    /// Nothing.
    None,
    /// A name used as an adjective: `the Kennedy plan` (a surname only).
    Adjective,
    /// A subject with a verb, a possessive.
    Weak,
    /// A speaker's slot or a verb of saying.
    Strong,
}

/// Kinship nouns before an appositive name: `our son, Daniel,`.
const KIN: &[&str] = &[
    "son",
    "daughter",
    "wife",
    "husband",
    "brother",
    "sister",
    "father",
    "mother",
    "uncle",
    "aunt",
    "nephew",
    "niece",
    "cousin",
    "grandson",
    "granddaughter",
    "widow",
    "fiancee",
];

/// Auxiliaries and modals after a subject: `Davis may use`, `Davis would have`.
const AUXILIARIES: &[&str] = &[
    "may", "might", "would", "will", "could", "should", "must", "can", "has", "had", "is", "was",
    "does", "did",
];

/// What a capitalised word may be, for [`Ctx::name_like`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    /// No list knows it, not even as a common word.
    Unknown,
    /// A common word, a first name or a surname.
    Listed,
    /// A word in a place's slot (`in X`, `from X`): a person only in a speaker's
    /// slot.
    Place,
}

struct Ctx<'c, 'd> {
    doc: &'c Doc<'d>,
    gaz: &'c Gazetteer,
}

impl Ctx<'_, '_> {
    fn tok(&self, k: usize) -> Option<&Token> {
        self.doc.tokens.get(k)
    }

    /// A lower-case verb of saying at `k`.
    fn speech(&self, k: usize) -> bool {
        self.tok(k)
            .is_some_and(|t| t.kind == Kind::Word && !t.is(shape::CAP) && t.has(flag::SPEECH))
    }

    fn punct(&self, k: usize, c: char) -> bool {
        self.tok(k).is_some_and(|t| t.kind == Kind::Punct(c))
    }

    fn same_sentence(&self, a: usize, b: usize) -> bool {
        match (self.tok(a), self.tok(b)) {
            (Some(x), Some(y)) => x.sent == y.sent,
            _ => false,
        }
    }

    /// Token `k` follows a closing quotation mark in its paragraph, maybe with a comma
    /// between.
    fn after_close(&self, k: usize) -> bool {
        let mut p = k;
        while p > 0 && self.punct(p - 1, ',') {
            p -= 1;
        }
        p > 0
            && self.tok(p - 1).is_some_and(|t| t.kind == Kind::Close)
            && self.tok(p - 1).map(|t| t.para) == self.tok(k).map(|t| t.para)
    }

    /// An opening quotation mark within the two tokens after `k`.
    fn open_soon(&self, k: usize) -> bool {
        (k + 1..k + 3).any(|j| self.tok(j).is_some_and(|t| t.kind == Kind::Open))
    }

    /// A lower-case word at `k` read as a verb after a subject: a past form, a
    /// `-ed` word, an auxiliary, or the `-s` form of a common word (`considers`).
    fn verb(&self, k: usize) -> bool {
        let Some(t) = self.tok(k) else { return false };
        if t.kind != Kind::Word || t.is(shape::CAP) || !self.same_sentence(k - 1, k) {
            return false;
        }
        let w = self.doc.fold(k);
        if (t.has(flag::PAST | flag::SPEECH) && !t.has(flag::STOP)) || AUXILIARIES.contains(&w) {
            return true;
        }
        (w.len() > 4 && w.ends_with("ed"))
            || (w.len() > 4
                && !t.has(flag::STOP)
                && w.strip_suffix('s').is_some_and(|stem| {
                    !stem.ends_with('s') && self.gaz.word_flags(stem) & flag::COMMON != 0
                }))
    }

    /// Whether the word `i` stands in a speaker's slot next to a quotation.
    fn speaker_slot(&self, i: usize) -> bool {
        (i > 0 && self.speech(i - 1) && self.after_close(i - 1))
            || (self.speech(i + 1) && (self.after_close(i) || self.open_soon(i + 1)))
    }

    /// What the context of the single word `i` says.
    fn cue(&self, i: usize) -> Cue {
        let n = self.doc.tokens.len();
        if self.speaker_slot(i) {
            return Cue::Strong;
        }
        // `X said`, `X has said`, `X, who …`.
        if self.same_sentence(i, i + 1) && self.speech(i + 1) {
            return Cue::Strong;
        }
        if i + 2 < n
            && matches!(
                self.doc.fold(i + 1),
                "has" | "had" | "also" | "then" | "later"
            )
            && self.speech(i + 2)
        {
            return Cue::Strong;
        }
        // `said X,` / `said X.`
        if i > 0 && self.speech(i - 1) && self.same_sentence(i - 1, i) {
            let next_ends = self.tok(i + 1).is_none_or(|t| {
                matches!(t.kind, Kind::Punct('.' | ',' | ';')) || t.sent != self.doc.tokens[i].sent
            });
            if next_ends {
                return Cue::Strong;
            }
        }
        // `our son, X,`
        if i >= 2
            && self.punct(i - 1, ',')
            && KIN.contains(&self.doc.fold(i - 2))
            && self.same_sentence(i - 2, i)
        {
            return Cue::Strong;
        }
        if self.punct(i + 1, ',') && self.same_sentence(i, i + 2) {
            let t2 = self.tok(i + 2);
            // `X, who …`
            if self.doc.fold(i + 2) == "who" {
                return Cue::Strong;
            }
            // `X, 42, …`
            if t2.is_some_and(|t| t.is(shape::DIGIT)) && self.punct(i + 3, ',') {
                return Cue::Weak;
            }
        }
        if self.verb(i + 1) {
            return Cue::Weak;
        }
        // `Hyde's next toss`, `Brown's most formidable foe`.
        if self.doc.tokens[i].is(shape::POSS)
            && self
                .tok(i + 1)
                .is_some_and(|t| t.kind == Kind::Word && !t.is(shape::CAP))
            && self.same_sentence(i, i + 1)
        {
            return Cue::Weak;
        }
        // `the Kennedy plan`, `the Meyner administration`.
        if i > 0
            && self.doc.is_word(i - 1, "the")
            && self
                .tok(i + 1)
                .is_some_and(|t| t.kind == Kind::Word && !t.is(shape::CAP) && !t.has(flag::STOP))
            && self.same_sentence(i, i + 1)
        {
            return Cue::Adjective;
        }
        Cue::None
    }

    /// Whether the word `i` reads as a common word: one that running text writes in
    /// lower case (the Brown corpus; a dictionary entry that it never does, such as
    /// `stram`, is rare enough to be a name), a plural of a common word (`Officials`,
    /// `Weeks`, `Floridians`), or an `-ing` form (`Having`).
    fn common(&self, i: usize) -> bool {
        let t = &self.doc.tokens[i];
        if t.has(flag::LOWER) {
            return true;
        }
        let w = self.doc.fold(i);
        let stem_common = |stem: &str| {
            !stem.is_empty() && self.gaz.word_flags(stem) & (flag::COMMON | flag::DEMONYM) != 0
        };
        w.ends_with("ing")
            || w.strip_suffix('s').is_some_and(stem_common)
            || w.strip_suffix("es").is_some_and(stem_common)
    }

    /// Whether the word `i` may be a person's name at all: `None` when not, else
    /// what kind of word it is.
    fn name_like(&self, i: usize) -> Option<Word> {
        let t = self.tok(i)?;
        if t.is(shape::ALLCAPS)
            || t.is(shape::INITIAL)
            || t.is(shape::DIGIT)
            || t.has(NOT_PERSON | flag::GEO)
        {
            return None;
        }
        let place = self.gaz.place(self.doc.fold(i)).first();
        // A capital or a city of a million is that place (`Berlin`, not Irving).
        if !place.is_none_or(|e: &PlaceEntry| e.ambiguous && !e.capital && e.population < 1_000_000)
        {
            return None;
        }
        // `in Jackson`, `from Griffin`: a place's slot.
        let after_prep = i > 0 && {
            let p = &self.doc.tokens[i - 1];
            p.kind == Kind::Word && !p.is(shape::CAP) && p.has(flag::LOC_PREP)
        };
        if after_prep {
            return Some(Word::Place);
        }
        let listed = flag::FIRST | flag::SURNAME | flag::TEAM;
        Some(
            if place.is_none() && t.lex & listed == 0 && !self.common(i) {
                Word::Unknown
            } else {
                Word::Listed
            },
        )
    }
}

/// Promotes the single words that their context names as people (see the module
/// docs): each becomes a one-word person mention and leaves `m.singles`.
pub(crate) fn promote(doc: &Doc<'_>, gaz: &Gazetteer, m: &mut Mentions) {
    let cx = Ctx { doc, gaz };
    doc.budget.spend(m.singles.len() + m.persons.len());
    let mut ends: Vec<usize> = m.persons.iter().map(|p| p.span.1).collect();
    ends.sort_unstable();
    let mut starts: Vec<usize> = m.persons.iter().map(|p| p.span.0).collect();
    starts.sort_unstable();
    let mut person = vec![false; m.singles.len()];
    for (s, &i) in m.singles.iter().enumerate() {
        let Some(mut word) = cx.name_like(i) else {
            continue;
        };
        // `Mrs. J. M. Cheshire of Griffin`: a home town.
        if i >= 2 && doc.is_word(i - 1, "of") && ends.binary_search(&(i - 1)).is_ok() {
            word = Word::Place;
        }
        let unknown = word == Word::Unknown;
        let t = &doc.tokens[i];
        let common = cx.common(i);
        let surname = t.has(flag::SURNAME);
        let mid = !t.is(shape::SENT_START);
        person[s] = match cx.cue(i) {
            _ if word == Word::Place => cx.cue(i) == Cue::Strong && cx.speaker_slot(i),
            // A common word inside the sentence: in a speaker's slot, or a first
            // name (not `Officials said`, `Traveler said`).
            Cue::Strong => {
                !common || surname || (mid && (t.has(flag::FIRST) || cx.speaker_slot(i)))
            }
            Cue::Weak => unknown || (surname && (!common || mid)),
            Cue::Adjective => surname && !common && !t.has(flag::FIRST),
            Cue::None => false,
        };
    }
    // Lists: `Paschal, Cooke and Hinton` — a word listed beside a person (a promoted
    // word or a full name) is one too.
    for _ in 0..2 {
        for s in 0..m.singles.len() {
            if person[s] {
                continue;
            }
            let i = m.singles[s];
            // A word no list knows, or a listed surname that is not a common word.
            let t = &doc.tokens[i];
            let eligible = match cx.name_like(i) {
                Some(Word::Unknown) => true,
                Some(Word::Listed) => t.has(flag::SURNAME) && !cx.common(i),
                _ => false,
            };
            if !eligible {
                continue;
            }
            let listed = |k: usize| {
                m.singles.binary_search(&k).is_ok_and(|x| person[x])
                    || ends.binary_search(&(k + 1)).is_ok()
                    || starts.binary_search(&k).is_ok()
            };
            let before = i >= 2
                && (cx.punct(i - 1, ',') || doc.is_word(i - 1, "and"))
                && cx.same_sentence(i - 2, i)
                && listed(i - 2);
            let after = (cx.punct(i + 1, ',') || doc.is_word(i + 1, "and"))
                && cx.same_sentence(i, i + 2)
                && listed(i + 2);
            if before || after {
                person[s] = true;
            }
        }
    }
    let mut keep = Vec::with_capacity(m.singles.len());
    for (s, &i) in m.singles.iter().enumerate() {
        if person[s] {
            m.persons.push(PersonMention {
                span: (i, i + 1),
                core: (i, i + 1),
                honorific: None,
                role: None,
            });
        } else {
            keep.push(i);
        }
    }
    m.singles = keep;
}
