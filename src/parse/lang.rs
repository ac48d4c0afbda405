//! The body language of a record: its ISO 639-1 code, or `und`.
//!
//! It owns the sample the language is told from (the lede and body paragraphs, up to
//! 320 bytes), the function-word count that settles the clear cases, and the fallback
//! for every other sample: `whatlang`'s trigram and alphabet scoring, restricted to
//! the eight languages of [`LANGUAGES`].
//!
//! The count ([`by_function_words`]) tallies the sample's English function words
//! (`the`, `of`, `and`, `said`…), its French ones (`des`, `et`, `est`, `dans`… and,
//! apart, those French shares with Spanish, Italian or Catalan: `la`, `de`, `que`…)
//! and those of the six other languages (`el`, `und`, `het`, `della`…). It answers
//! English or French only when the sample is Latin script beyond doubt and that
//! language's words are at least [`MIN_WORDS`] and [`MIN_RATIO`] times the rival
//! language's plus [`OTHER_WEIGHT`] times the six others'; French also needs
//! [`MIN_OWN`] words of its own. Those thresholds are where no disagreement with
//! whatlang is found on the test fixtures, generated corpora, and texts made to sit
//! near the line (cut short, English and French mixed, mixed with the six others), with
//! room to spare; a test checks the fixtures. Anything else goes to whatlang, which
//! costs some twenty-five times as much.

use std::sync::LazyLock;

use super::layout::Layout;

/// The languages a newsroom's wire copy comes in. Restricting whatlang to these
/// (instead of all ~70) makes detection about eight times cheaper and avoids
/// confusing short English text with, say, Scots or Afrikaans.
const LANGUAGES: [whatlang::Lang; 8] = [
    whatlang::Lang::Eng,
    whatlang::Lang::Fra,
    whatlang::Lang::Spa,
    whatlang::Lang::Por,
    whatlang::Lang::Deu,
    whatlang::Lang::Ita,
    whatlang::Lang::Nld,
    whatlang::Lang::Cat,
];

static DETECTOR: LazyLock<whatlang::Detector> =
    LazyLock::new(|| whatlang::Detector::with_allowlist(LANGUAGES.to_vec()));

/// Bytes of prose the language is told from: trigram scoring costs time in
/// proportion to the text, and a few hundred bytes are plenty.
const SAMPLE: usize = 320;

/// Fewest function words of the winning language for the count to answer.
const MIN_WORDS: u32 = 8;

/// Fewest French function words of French alone (not `la`, `de`, `que`, which
/// Spanish, Italian or Catalan also use) for the count to answer French.
const MIN_OWN: u32 = 3;

/// How many times the winner's function words must outnumber the others': the other
/// language's, plus [`OTHER_WEIGHT`] for each of the six other languages'.
const MIN_RATIO: u32 = 8;

/// What one function word of Spanish, Portuguese, Italian, Catalan, German or Dutch
/// weighs against the winner: more than an English or French one, since a few of them
/// in a short text can be enough for whatlang to answer that language.
const OTHER_WEIGHT: u32 = 3;

/// ISO 639-1 code of the body language: by function words when they settle it, else
/// by whatlang; `und` when neither can tell (no letters, or a script none of the
/// eight languages is written in).
pub(crate) fn detect(layout: &Layout) -> String {
    let sample = sample(layout);
    by_function_words(&sample)
        .unwrap_or_else(|| by_trigrams(&sample))
        .to_owned()
}

/// The lede and body paragraphs, each after one space, up to [`SAMPLE`] bytes (cut at
/// a character boundary).
fn sample(layout: &Layout) -> String {
    let mut sample = String::with_capacity(SAMPLE + 64);
    for p in std::iter::once(&layout.lede).chain(layout.sections.iter().flat_map(|s| &s.paragraphs))
    {
        if sample.len() >= SAMPLE {
            break;
        }
        let mut end = p.len().min(SAMPLE - sample.len());
        while !p.is_char_boundary(end) {
            end -= 1;
        }
        sample.push(' ');
        sample.push_str(&p[..end]);
    }
    sample
}

/// whatlang's answer for `sample`, as an ISO 639-1 code (`und` for none).
fn by_trigrams(sample: &str) -> &'static str {
    DETECTOR
        .detect_lang(sample)
        .and_then(|l| isolang::Language::from_639_3(l.code()))
        .and_then(|l| l.to_639_1())
        .unwrap_or("und")
}

/// `en` or `fr` when the sample's function words settle it (see the module
/// documentation), `None` when whatlang has to decide.
fn by_function_words(sample: &str) -> Option<&'static str> {
    let t = Tally::of(sample);
    // More ASCII letters than all non-ASCII characters together: whatlang's main
    // script is Latin, whatever the rest is.
    if t.ascii_letters <= t.non_ascii {
        return None;
    }
    let clear = |win: u32, rival: u32| {
        win >= MIN_WORDS && win >= MIN_RATIO * (rival + OTHER_WEIGHT * t.other)
    };
    if clear(t.en, t.fr) {
        Some("en")
    } else if t.fr_own >= MIN_OWN && clear(t.fr, t.en) {
        Some("fr")
    } else {
        None
    }
}

/// What a word says of the sample's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vote {
    /// An English function word.
    English,
    /// A French function word no other of the eight languages uses much.
    French,
    /// A French function word that Spanish, Italian, Catalan or Portuguese also use.
    FrenchShared,
    /// A function word of Spanish, Portuguese, Italian, Catalan, German or Dutch.
    Other,
    /// Any other word.
    None,
}

/// Function words of the sample, by language, and the counts that tell its script.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    /// English function words.
    en: u32,
    /// French function words, shared ones included.
    fr: u32,
    /// French function words of French alone.
    fr_own: u32,
    /// Function words of the six other languages.
    other: u32,
    /// ASCII letters.
    ascii_letters: u32,
    /// Non-ASCII characters of any kind (letters, quotation marks, spaces).
    non_ascii: u32,
}

/// Longest listed word, in bytes.
const LONGEST: usize = 7;

impl Tally {
    /// Counts over `text`. A word is a run of letters (an apostrophe ends it:
    /// `l'accord` is `l` and `accord`), compared in ASCII lower case.
    fn of(text: &str) -> Tally {
        let mut t = Tally::default();
        let mut word = [0u8; LONGEST];
        // Bytes of the current word; past LONGEST it cannot be listed.
        let mut len = 0usize;
        for c in text.chars().chain(std::iter::once(' ')) {
            if c.is_ascii() {
                if c.is_ascii_alphabetic() {
                    t.ascii_letters += 1;
                    if len < LONGEST {
                        word[len] = c.to_ascii_lowercase() as u8;
                    }
                    len += 1;
                    continue;
                }
            } else {
                t.non_ascii += 1;
                if c.is_alphabetic() {
                    let mut buf = [0u8; 4];
                    let s = c.encode_utf8(&mut buf).as_bytes();
                    if len + s.len() <= LONGEST {
                        word[len..len + s.len()].copy_from_slice(s);
                    }
                    len += s.len();
                    continue;
                }
            }
            if len > 0 && len <= LONGEST {
                match vote(&word[..len]) {
                    Vote::English => t.en += 1,
                    Vote::French => {
                        t.fr += 1;
                        t.fr_own += 1;
                    }
                    Vote::FrenchShared => t.fr += 1,
                    Vote::Other => t.other += 1,
                    Vote::None => {}
                }
            }
            len = 0;
        }
        t
    }
}

/// The vote of one lower-case word. The English list leaves out words common in
/// another of the eight languages' copy (`in`, `is`, `on`, `as`, `an`, `a`, `i`);
/// the French one counts the words French shares with Spanish, Italian, Catalan or
/// Portuguese (`la`, `de`, `que`, `il`) apart, as [`Vote::FrenchShared`].
fn vote(w: &[u8]) -> Vote {
    match w {
        b"the" | b"of" | b"and" | b"to" | b"that" | b"for" | b"was" | b"with" | b"said"
        | b"it" | b"be" | b"at" | b"by" | b"his" | b"he" | b"she" | b"are" | b"from"
        | b"has" | b"have" | b"had" | b"were" | b"which" | b"this" | b"not" | b"but"
        | b"will" | b"who" | b"would" | b"been" | b"their" | b"its" | b"they" => Vote::English,
        // `été` in UTF-8 last.
        b"des" | b"du" | b"et" | b"est" | b"une" | b"dans" | b"pour" | b"au" | b"aux"
        | b"sur" | b"avec" | b"pas" | b"ont" | b"sont" | b"ce" | b"cette" | b"elle"
        | b"ils" | b"par" | b"ses" | b"leur" | b"nous" | b"\xc3\xa9t\xc3\xa9" => Vote::French,
        b"le" | b"la" | b"les" | b"de" | b"un" | b"que" | b"qui" | b"il" | b"se" | b"ne"
        | b"sa" | b"son" => Vote::FrenchShared,
        // Spanish, Portuguese, Italian, Catalan, German, Dutch; `per`, `con`, `e`, `al`,
        // `met`, `lo`, `da`, `ha`, `dem`, `op` stay out (English copy has them).
        b"el" | b"los" | b"las" | b"del" | b"por" | b"es" | b"una" | b"para" | b"pero"
        | b"fue" | b"como" | b"este" | b"esta" | b"sus" | b"muy" | b"hay" | b"desde"
        | b"os" | b"das" | b"dos" | b"uma" | b"com" | b"foi" | b"ao" | b"pelo" | b"pela"
        | b"nas" | b"sua" | b"em" | b"na" | b"um" | b"ela" | b"ele" | b"han" | b"di" | b"dell"
        | b"nell" | b"sull" | b"dall" | b"che" | b"della" | b"delle" | b"dei" | b"degli" | b"nella"
        | b"alle" | b"dal" | b"dalla" | b"sul" | b"sulla" | b"sono" | b"gli" | b"nel"
        | b"alla" | b"anche" | b"questo" | b"questa" | b"hanno" | b"els" | b"amb"
        | b"dels" | b"seu" | b"pel" | b"aquest" | b"molt" | b"der" | b"die" | b"und"
        | b"ist" | b"nicht" | b"mit" | b"von" | b"zu" | b"den" | b"ein" | b"eine" | b"einen"
        | b"einer" | b"sich" | b"auf" | b"auch" | b"sie" | b"wird" | b"wurde" | b"werden"
        | b"nach" | b"bei" | b"aus" | b"dass" | b"oder" | b"sind" | b"hat" | b"zum" | b"zur"
        | b"het" | b"een" | b"van" | b"niet" | b"zijn" | b"voor" | b"ook" | b"wordt"
        | b"dat" | b"bij" | b"naar" | b"heeft" | b"worden" | b"werd" | b"deze" | b"maar"
        // `não`, `é`, `è`, `és`, `más`, `según`, `também`, `perquè`, `für` in UTF-8.
        | b"n\xc3\xa3o" | b"\xc3\xa9" | b"\xc3\xa8" | b"\xc3\xa9s" | b"m\xc3\xa1s"
        | b"seg\xc3\xban" | b"tamb\xc3\xa9m" | b"perqu\xc3\xa8" | b"f\xc3\xbcr" => Vote::Other,
        _ => Vote::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Section;

    fn layout(lede: &str, paragraphs: &[&str]) -> Layout {
        Layout {
            dateline: None,
            lede: lede.to_owned(),
            stamps: Vec::new(),
            sections: vec![Section {
                heading: None,
                paragraphs: paragraphs.iter().map(|p| (*p).to_owned()).collect(),
            }],
        }
    }

    const ENGLISH: &str = "US Secretary of State Antony Blinken kicks off a Latin American \
        tour in Colombia on Monday aimed at strengthening ties with key allies recently led \
        by leftist presidents. The displacement of Mr. Blinken, whose country with its Asian \
        prism and the war in Ukraine is sometimes accused of neglecting its partners, comes \
        the day after the first round of the election in Brazil.";

    const FRENCH: &[&str] = &[
        "Le conseil municipal a adopté mardi soir un budget en hausse de 4 % pour \
         l'an prochain, malgré les critiques de l'opposition.",
        "La mairesse a expliqué que cette augmentation était nécessaire pour entretenir les \
         routes et les parcs, dont plusieurs sont dans un état préoccupant.",
        "Les conseillers de l'opposition ont dénoncé une hausse de taxes qui pèsera surtout \
         sur les familles et sur les petits commerçants du centre-ville.",
    ];

    #[test]
    fn clear_english_is_settled_by_function_words() {
        let l = layout(ENGLISH, &[]);
        let s = sample(&l);
        assert_eq!(by_function_words(&s), Some("en"));
        assert_eq!(by_trigrams(&s), "en");
        assert_eq!(detect(&l), "en");
    }

    #[test]
    fn clear_french_is_settled_by_function_words() {
        let l = layout(FRENCH[0], &FRENCH[1..]);
        let s = sample(&l);
        assert_eq!(by_function_words(&s), Some("fr"));
        assert_eq!(by_trigrams(&s), "fr");
        assert_eq!(detect(&l), "fr");
    }

    #[test]
    fn short_mixed_and_other_texts_go_to_whatlang() {
        let spanish = "El Gobierno aprobó este martes un nuevo paquete de medidas para frenar \
            la subida de los precios de la energía, que incluye una rebaja del impuesto.";
        let german = "Die Bundesregierung hat am Mittwoch ein neues Paket beschlossen, das vor \
            allem Familien mit kleinen Einkommen und Rentner unterstützen soll.";
        let half = format!("{} {}", &ENGLISH[..150], FRENCH[1]);
        for (text, want) in [
            ("The mayor said it was over.", "en"),
            ("Le maire a dit que c'était fini.", "fr"),
            (spanish, "es"),
            (german, "de"),
            (half.as_str(), ""),
        ] {
            let l = layout(text, &[]);
            let s = sample(&l);
            assert_eq!(by_function_words(&s), None, "{text}");
            if !want.is_empty() {
                assert_eq!(detect(&l), want, "{text}");
            }
            assert_eq!(detect(&l), by_trigrams(&s), "{text}");
        }
        // English function words among more Cyrillic than Latin letters: whatlang's
        // main script is Cyrillic, which none of the eight languages is written in.
        let cyrillic = format!(
            "{} {}",
            "the of and to that for was with said it ",
            "Москва ".repeat(30)
        );
        assert_eq!(by_function_words(&cyrillic), None);
        assert_eq!(by_trigrams(&cyrillic), "und");
    }

    #[test]
    fn empty_text_is_undetermined() {
        assert_eq!(detect(&layout("", &[])), "und");
        assert_eq!(detect(&layout("", &["", "1961."])), "und");
        assert_eq!(by_function_words(" "), None);
    }

    /// Wherever the count answers on the test fixtures (their whole samples and
    /// their cuts every 32 bytes), whatlang gives the same answer.
    #[test]
    fn function_words_agree_with_whatlang_on_the_fixtures() {
        let limits = crate::parse::Limits::default();
        let dirs =
            ["dev", "seed"].map(|d| format!("{}/tests/fixtures/{d}", env!("CARGO_MANIFEST_DIR")));
        let (mut files, mut settled) = (0, 0);
        for dir in dirs {
            for entry in std::fs::read_dir(&dir).expect("fixture folder") {
                let bytes = std::fs::read(entry.expect("fixture").path()).expect("fixture");
                let Ok((text, _)) = crate::parse::decode::decode(&bytes, &limits) else {
                    continue;
                };
                let Some(l) = crate::parse::layout::split(&text) else {
                    continue;
                };
                files += 1;
                let s = sample(&l);
                let cuts = (16..s.len()).step_by(32).filter(|&k| s.is_char_boundary(k));
                for cut in cuts.map(|k| &s[..k]).chain([s.as_str()]) {
                    if let Some(lang) = by_function_words(cut) {
                        settled += 1;
                        assert_eq!(lang, by_trigrams(cut), "{cut:?}");
                    }
                }
            }
        }
        assert!(
            files > 300 && settled > 1500,
            "{files} files, {settled} settled"
        );
    }
}
