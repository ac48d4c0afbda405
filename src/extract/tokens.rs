//! One tokenisation of an article, shared by every sub-extractor.
//!
//! The text is the lede (paragraph 0) and the body paragraphs (1..) in order; headings
//! are left out. Each paragraph is cut into words, numbers, punctuation and quote marks;
//! each word carries its shape (capitalised, initial, possessive, ...), its accent-folded
//! lower-case form (kept in one shared buffer) and the lexicon flags of that form, so
//! that later passes never re-scan or re-allocate the text.

use crate::fold::push_folded;
use std::ops::Range;

use super::budget::Budget;
use super::gazetteer::{word_hash, word_hash_short, Gazetteer, WordHasher};
use crate::parse::swar;

/// Shape bits of a token.
pub(crate) mod shape {
    /// First letter upper-case.
    pub const CAP: u16 = 1;
    /// Two or more letters, all upper-case (`OAS`, `U.S.`).
    pub const ALLCAPS: u16 = 1 << 1;
    /// A single capital letter with a period (`J.`).
    pub const INITIAL: u16 = 1 << 2;
    /// Ends with an abbreviation period (`Mr.`, `Aug.`).
    pub const ABBR: u16 = 1 << 3;
    /// A possessive `’s` or `s’` was cut off the word.
    pub const POSS: u16 = 1 << 4;
    /// First word of a sentence.
    pub const SENT_START: u16 = 1 << 5;
    /// Starts with a digit.
    pub const DIGIT: u16 = 1 << 6;
    /// Contains a hyphen.
    pub const HYPHEN: u16 = 1 << 7;
}

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Letters (and digits, hyphens, apostrophes, abbreviation periods).
    Word,
    /// Starts with a digit: `2018`, `30th`, `10:23`.
    Number,
    /// Any other single character.
    Punct(char),
    /// `“` or `«` (or a straight `"` read as opening).
    Open,
    /// `”` or `»` (or a straight `"` read as closing).
    Close,
}

/// One token of one paragraph.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    /// Byte range in the paragraph text (possessive cut off).
    pub start: u32,
    /// End of that range.
    pub end: u32,
    /// Byte range of the folded form in [`Doc::folded`].
    pub fold: (u32, u32),
    /// What it is.
    pub kind: Kind,
    /// [`shape`] bits.
    pub shape: u16,
    /// Lexicon flags of the folded form (see [`super::lexicon`]).
    pub lex: u32,
    /// Paragraph index (0 = lede).
    pub para: u32,
    /// Sentence index in [`Doc::sentences`].
    pub sent: u32,
}

impl Token {
    /// Whether the shape bit is set.
    pub fn is(&self, bit: u16) -> bool {
        self.shape & bit != 0
    }
    /// Whether any of the lexicon bits is set.
    pub fn has(&self, bits: u32) -> bool {
        self.lex & bits != 0
    }
    /// A word starting with a capital.
    pub fn cap_word(&self) -> bool {
        self.kind == Kind::Word && self.is(shape::CAP)
    }
}

/// The tokenised article.
#[derive(Debug, Default)]
pub(crate) struct Doc<'a> {
    /// Paragraph texts: 0 = lede, then body paragraphs.
    pub paras: Vec<&'a str>,
    /// Token range of each paragraph.
    pub para_tokens: Vec<Range<usize>>,
    /// All tokens, in order.
    pub tokens: Vec<Token>,
    /// Token range of each sentence (sentences never cross paragraphs).
    pub sentences: Vec<Range<usize>>,
    /// Folded forms of the words, back to back.
    pub folded: String,
    /// [`word_hash`] of each token's folded form (0 for punctuation), parallel to
    /// `tokens`: computed once, used by the lexicon probe and as the key-phrase
    /// pass's term identity.
    pub hashes: Vec<u64>,
    /// The work every pass counts, and the deadline it is held to.
    pub budget: Budget,
    /// Whether the words carry the lexicon's flags (the document was tokenised with
    /// the gazetteer).
    pub flagged: bool,
}

/// Abbreviations that keep their period (folded, without the period).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "messrs", "dr", "st", "mt", "jr", "sr", "gov", "govs", "sen", "sens", "rep",
    "reps", "gen", "col", "lt", "sgt", "capt", "cpl", "maj", "adm", "cmdr", "prof", "rev", "hon",
    "inc", "corp", "co", "ltd", "bros", "no", "vs", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "pres", "ave", "blvd", "rd", "ft", "ga", "ala",
    "fla", "calif", "tex", "tenn", "miss", "mich", "ill", "mass", "conn", "penn", "va", "ky", "md",
    "mo", "okla", "ore", "wash", "wis", "minn", "colo", "ariz", "ark", "kan", "neb", "nev", "mme",
    "mlle", "m", "dept", "univ", "assn", "supt", "atty", "gen", "sec", "treas", "msgr", "fr",
    "sgt", "pvt", "det", "insp", "comdr", "cong", "lt", "ald", "asst",
];

/// The longest entry of [`ABBREVIATIONS`].
const ABBREVIATION_MAX: usize = 6;

/// [`ABBREVIATIONS`] sorted and without repeats, for a binary search.
static ABBREVIATIONS_SORTED: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| {
        let mut v = ABBREVIATIONS.to_vec();
        v.sort_unstable();
        v.dedup();
        v
    });

/// Whether `core` (a word before a period) is one of [`ABBREVIATIONS`], case aside.
fn is_abbreviation(core: &str) -> bool {
    let b = core.as_bytes();
    if b.is_empty() || b.len() > ABBREVIATION_MAX {
        return false;
    }
    let mut low = [0u8; ABBREVIATION_MAX];
    for (d, s) in low.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    let low = &low[..b.len()];
    ABBREVIATIONS_SORTED
        .binary_search_by(|a| a.as_bytes().cmp(low))
        .is_ok()
}

impl<'a> Doc<'a> {
    /// Tokenises the paragraphs (0 = lede), with no deadline.
    #[cfg(test)]
    pub fn new(paras: Vec<&'a str>, gaz: Option<&Gazetteer>) -> Doc<'a> {
        Doc::within(paras, gaz, Budget::default())
    }

    /// Tokenises the paragraphs (0 = lede), counting the work in `budget`. Past its
    /// deadline, the remaining paragraphs are left out (the caller checks the budget).
    pub fn within(paras: Vec<&'a str>, gaz: Option<&Gazetteer>, budget: Budget) -> Doc<'a> {
        let total: usize = paras.iter().map(|p| p.len()).sum();
        let mut doc = Doc {
            paras: Vec::new(),
            para_tokens: Vec::with_capacity(paras.len()),
            tokens: Vec::with_capacity(total / 4),
            sentences: Vec::with_capacity(total / 80 + 1),
            folded: String::with_capacity(total),
            hashes: Vec::with_capacity(total / 4),
            budget,
            flagged: gaz.is_some(),
        };
        for (pi, text) in paras.iter().enumerate() {
            let first = doc.tokens.len();
            if doc.budget.spend(text.len()) {
                doc.scan(text, pi as u32);
            }
            doc.para_tokens.push(first..doc.tokens.len());
            doc.split_sentences(first);
        }
        doc.budget.spend(doc.tokens.len());
        // Lexicon flags in a pass of their own: the look-ups are independent of each
        // other, so the CPU overlaps their cache misses (the table is larger than the
        // caches), which it cannot do when each sits between two tokenising steps.
        // The lexicon key drops an abbreviation's period.
        if let Some(g) = gaz {
            for (t, &h) in doc.tokens.iter_mut().zip(&doc.hashes) {
                if t.kind != Kind::Word {
                    continue;
                }
                t.lex = if t.is(shape::ABBR) {
                    let key = doc
                        .folded
                        .get(t.fold.0 as usize..t.fold.1 as usize)
                        .unwrap_or("")
                        .trim_end_matches('.');
                    g.word_flags(key)
                } else {
                    g.word_flags_by_hash(h)
                };
            }
        }
        doc.paras = paras;
        doc
    }

    /// Text of token `i` (empty when out of range).
    pub fn text(&self, i: usize) -> &'a str {
        let Some(t) = self.tokens.get(i) else {
            return "";
        };
        let p: &'a str = self.paras[t.para as usize];
        p.get(t.start as usize..t.end as usize).unwrap_or("")
    }

    /// Folded lower-case form of token `i` (empty for punctuation or out of range).
    pub fn fold(&self, i: usize) -> &str {
        let Some(t) = self.tokens.get(i) else {
            return "";
        };
        let (a, b) = t.fold;
        self.folded.get(a as usize..b as usize).unwrap_or("")
    }

    /// The text from the start of token `a` to the end of token `b - 1` (same paragraph).
    pub fn span(&self, a: usize, b: usize) -> &'a str {
        if a >= b || b > self.tokens.len() {
            return "";
        }
        let (ta, tb) = (&self.tokens[a], &self.tokens[b - 1]);
        if ta.para != tb.para {
            return self.text(a);
        }
        let p: &'a str = self.paras[ta.para as usize];
        p.get(ta.start as usize..tb.end as usize).unwrap_or("")
    }

    /// Whether token `i` exists and is the punctuation `c`.
    pub fn is_punct(&self, i: usize, c: char) -> bool {
        self.tokens.get(i).is_some_and(|t| t.kind == Kind::Punct(c))
    }

    /// Whether token `i` exists and is a word whose folded form is `w`.
    pub fn is_word(&self, i: usize, w: &str) -> bool {
        self.tokens.get(i).is_some_and(|t| t.kind == Kind::Word) && self.fold(i) == w
    }

    fn scan(&mut self, text: &str, para: u32) {
        let bytes = text.as_bytes();
        // A byte cursor rather than `char_indices().peekable()`: wire copy is almost
        // all ASCII, and an ASCII byte is its own character, so only the rare other
        // bytes are decoded.
        let mut pos = 0;
        while let Some((c, clen)) = char_at(text, pos) {
            let i = pos;
            pos += clen;
            if c.is_whitespace() {
                continue;
            }
            if c.is_alphanumeric() {
                // Scan a word: alphanumerics joined by - ' ’ . & when a letter follows.
                let mut end = pos;
                let mut seg_len = 1usize;
                let mut has_dot = false;
                let mut has_hyphen = false;
                loop {
                    // Plain ASCII letters and digits eight at a time.
                    if let Some(x) = swar::word_at(bytes, end) {
                        let alnum = swar::ascii_alnum_mask(x);
                        let run = (!alnum & swar::HIGH).trailing_zeros() as usize / 8;
                        end += run;
                        seg_len += run;
                        if run == 8 {
                            continue;
                        }
                    }
                    let Some((d, dlen)) = char_at(text, end) else {
                        break;
                    };
                    if d.is_alphanumeric() {
                        end += dlen;
                        seg_len += 1;
                        continue;
                    }
                    let joiner = matches!(d, '-' | '\'' | '’' | '.' | '&');
                    if !joiner {
                        break;
                    }
                    let after = char_at(text, end + dlen).map(|(a, _)| a);
                    let ok = match d {
                        '.' => seg_len <= 2 && after.is_some_and(char::is_alphabetic),
                        '&' => seg_len <= 2 && after.is_some_and(char::is_uppercase),
                        _ => after.is_some_and(char::is_alphanumeric),
                    };
                    if !ok {
                        break;
                    }
                    if d == '.' {
                        has_dot = true;
                    }
                    if d == '-' {
                        has_hyphen = true;
                    }
                    seg_len = 0;
                    end += dlen;
                }
                pos = end;
                let mut word_end = end;
                let mut sh = 0u16;
                // Possessive: `’s` / `'s` inside the word, or `s’` at its end.
                let w = &text[i..end];
                if w.len() > 2 && (w.ends_with("’s") || w.ends_with("'s")) {
                    word_end = end - if w.ends_with("’s") { 4 } else { 2 };
                    sh |= shape::POSS;
                } else if w.ends_with('s') {
                    if let Some((d, dlen)) = char_at(text, pos) {
                        let next = char_at(text, pos + dlen).map(|(n, _)| n);
                        if matches!(d, '’' | '\'') && !next.is_some_and(char::is_alphanumeric) {
                            pos += dlen;
                            sh |= shape::POSS;
                        }
                    }
                }
                // Abbreviation period.
                if bytes.get(word_end) == Some(&b'.') && sh & shape::POSS == 0 {
                    let core = &text[i..word_end];
                    let single_cap = core.len() == c.len_utf8() && c.is_uppercase();
                    if has_dot || single_cap || is_abbreviation(core) {
                        pos += 1;
                        word_end += 1;
                        sh |= shape::ABBR;
                        if single_cap {
                            sh |= shape::INITIAL;
                        }
                    }
                }
                if has_hyphen {
                    sh |= shape::HYPHEN;
                }
                let kind = if c.is_ascii_digit() {
                    sh |= shape::DIGIT;
                    Kind::Number
                } else {
                    Kind::Word
                };
                self.push_word(text, i, word_end, kind, sh, para);
                continue;
            }
            let kind = match c {
                '“' | '«' => Kind::Open,
                '”' | '»' => Kind::Close,
                '"' => {
                    let prev = text[..i].chars().next_back();
                    let next = char_at(text, i + 1).map(|(n, _)| n);
                    let opens = prev.is_none_or(|p| p.is_whitespace() || "([{—–-".contains(p))
                        && next.is_some_and(|n| !n.is_whitespace());
                    if opens {
                        Kind::Open
                    } else {
                        Kind::Close
                    }
                }
                _ => Kind::Punct(c),
            };
            let at = self.folded.len() as u32;
            self.hashes.push(0);
            self.tokens.push(Token {
                start: i as u32,
                end: (i + clen) as u32,
                fold: (at, at),
                kind,
                shape: 0,
                lex: 0,
                para,
                sent: 0,
            });
        }
    }

    fn push_word(
        &mut self,
        text: &str,
        start: usize,
        end: usize,
        kind: Kind,
        mut sh: u16,
        para: u32,
    ) {
        let word = &text[start..end];
        let fold_start = self.folded.len();
        let (mut letters, mut upper) = (0usize, 0usize);
        let short = ((1..=8).contains(&word.len()) && word.is_ascii())
            .then(|| swar::word_at(text.as_bytes(), start))
            .flatten();
        let hash = if let Some(x) = short {
            // A short ASCII word (most of them), read as one machine word: the bytes
            // past its end are cleared, capitals found and lower-cased together.
            let n = word.len();
            let x = x & (u64::MAX >> (64 - 8 * n));
            let caps = swar::in_range(x, b'A', b'Z');
            let low = x | caps >> 2;
            let small = swar::in_range(low, b'a', b'z');
            letters = small.count_ones() as usize;
            upper = caps.count_ones() as usize;
            if caps & 0x80 != 0 {
                sh |= shape::CAP;
            }
            // The folded form is the word in ASCII lower case: copied whole (and
            // lower-cased in place if it has capitals), not pushed a character at a
            // time.
            self.folded.push_str(word);
            if caps != 0 {
                self.folded[fold_start..].make_ascii_lowercase();
            }
            word_hash_short(low, n)
        } else if word.is_ascii() {
            // One pass counts and hashes; the folded form is copied and lower-cased.
            let mut hasher = WordHasher::new(word.len());
            for &b in word.as_bytes() {
                let up = b.is_ascii_uppercase();
                let low = b | u8::from(up) << 5;
                letters += usize::from(up | low.is_ascii_lowercase());
                upper += usize::from(up);
                hasher.push(low);
            }
            self.folded.push_str(word);
            if upper != 0 {
                self.folded[fold_start..].make_ascii_lowercase();
            }
            if word.as_bytes()[0].is_ascii_uppercase() {
                sh |= shape::CAP;
            }
            hasher.finish()
        } else {
            for ch in word.chars() {
                if ch.is_alphabetic() {
                    letters += 1;
                    if ch.is_uppercase() {
                        upper += 1;
                    }
                }
                push_folded(&mut self.folded, ch);
            }
            if word.chars().next().is_some_and(char::is_uppercase) {
                sh |= shape::CAP;
            }
            word_hash(self.folded.get(fold_start..).unwrap_or(""))
        };
        if letters >= 2 && upper == letters {
            sh |= shape::ALLCAPS;
        }
        let fold_end = self.folded.len();
        self.hashes.push(hash);
        self.tokens.push(Token {
            start: start as u32,
            end: end as u32,
            fold: (fold_start as u32, fold_end as u32),
            kind,
            shape: sh,
            lex: 0,
            para,
            sent: 0,
        });
    }

    /// Cuts the tokens of the paragraph that starts at `first` into sentences.
    fn split_sentences(&mut self, first: usize) {
        let end = self.tokens.len();
        let mut start = first;
        let mut i = first;
        while i < end {
            let t = self.tokens[i];
            let stop = matches!(t.kind, Kind::Punct('.' | '!' | '?'));
            if stop {
                let mut j = i + 1;
                while j < end && matches!(self.tokens[j].kind, Kind::Close | Kind::Punct(')')) {
                    j += 1;
                }
                let next_starts = j >= end
                    || matches!(self.tokens[j].kind, Kind::Open)
                    || self.tokens[j].is(shape::CAP)
                    || self.tokens[j].kind == Kind::Number;
                if next_starts {
                    self.close_sentence(start, j);
                    start = j;
                    i = j;
                    continue;
                }
            }
            i += 1;
        }
        if start < end {
            self.close_sentence(start, end);
        }
    }

    fn close_sentence(&mut self, a: usize, b: usize) {
        let id = self.sentences.len() as u32;
        let mut first_word = true;
        for t in &mut self.tokens[a..b] {
            t.sent = id;
            if first_word && matches!(t.kind, Kind::Word | Kind::Number) {
                t.shape |= shape::SENT_START;
                first_word = false;
            }
        }
        self.sentences.push(a..b);
    }
}

/// The character at byte `pos` of `text` and its length in bytes (`None` at the end
/// or off a character boundary).
#[inline]
fn char_at(text: &str, pos: usize) -> Option<(char, usize)> {
    let b = *text.as_bytes().get(pos)?;
    if b.is_ascii() {
        return Some((char::from(b), 1));
    }
    let c = text.get(pos..)?.chars().next()?;
    Some((c, c.len_utf8()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let doc = Doc::new(vec![text], None);
        (0..doc.tokens.len())
            .map(|i| doc.text(i).to_owned())
            .collect()
    }

    #[test]
    fn abbreviations_are_found_case_aside_and_only_they() {
        assert!(ABBREVIATIONS.iter().all(|a| a.len() <= ABBREVIATION_MAX));
        for a in ABBREVIATIONS {
            assert!(is_abbreviation(a), "{a}");
            assert!(is_abbreviation(&a.to_ascii_uppercase()), "{a}");
        }
        for w in ["", "said", "Mrx", "Mé", "messrsx", "x", "Québec", "ST1"] {
            assert!(!is_abbreviation(w), "{w}");
        }
    }

    #[test]
    fn words_abbreviations_possessives() {
        assert_eq!(
            words("Mr. Blinken’s U.S. trip, Aug. 2."),
            ["Mr.", "Blinken", "U.S.", "trip", ",", "Aug.", "2", "."]
        );
        assert_eq!(
            words("Mrs. J. M. Cheshire of Griffin"),
            ["Mrs.", "J.", "M.", "Cheshire", "of", "Griffin"]
        );
        assert_eq!(
            words("the countries’ ex-president, don’t"),
            ["the", "countries", "ex-president", ",", "don’t"]
        );
    }

    #[test]
    fn folding_and_sentences() {
        let doc = Doc::new(vec!["In Bogotá he spoke. Then “Yes,” he said."], None);
        assert_eq!(doc.fold(1), "bogota");
        assert_eq!(doc.sentences.len(), 2);
        assert!(doc.tokens[5].is(shape::SENT_START));
        assert_eq!(doc.tokens[6].kind, Kind::Open);
    }

    #[test]
    fn straight_quotes() {
        let doc = Doc::new(vec!["He said \"no way\" today."], None);
        let kinds: Vec<Kind> = doc.tokens.iter().map(|t| t.kind).collect();
        assert_eq!(kinds[2], Kind::Open);
        assert_eq!(kinds[5], Kind::Close);
    }
}
