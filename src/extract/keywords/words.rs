//! Which words may open or close a key phrase.
//!
//! A key phrase never starts or ends with a function word (article, pronoun,
//! preposition, conjunction, auxiliary) or an adverb, in English or French. The
//! lexicon's stop list covers the commonest function words; the lists here add the
//! rest, the adverbs, English contractions (`didn't`), French elisions whose remainder
//! is a function word (`qu'il`, `c'est`), French `-amment` / `-emment` adverbs, and
//! English `-ly` adverbs by a conservative rule: six letters or more, not a listed
//! adjective or noun (`family`, `elderly`), not a known first name, surname or place.
//!
//! Some of these words are also names or parts of names: the month `May`, `Dan
//! Rather`, `Notre Dame`, `Kennerly`. Those are [`Edge::Named`]: only an occurrence
//! capitalised inside a sentence may stand at a phrase's edge. A few French function
//! words are English words too (`son`, `pour`, `car`): those are [`Edge::French`],
//! stop words only in a text that [`french_vote`] finds French.
//!
//! The lists are folded (lower-case ASCII, accents removed, `'` for apostrophes),
//! space-separated, and read once into a hash table.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::extract::gazetteer;
use crate::extract::lexicon::flag;
use crate::extract::tokens::{shape, Doc, Kind, Token};

/// How a word may stand at the edge of a key phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    /// Anywhere: a content word.
    Free = 0,
    /// Never: a function word or adverb, treated as a stop word throughout.
    Never = 1,
    /// Only where it is capitalised inside a sentence (then it is a name).
    Named = 2,
    /// Never in a French text, anywhere in another: a French function word that is
    /// also an English word.
    French = 3,
}

impl Edge {
    /// The edge of `Edge as u32` (anything else reads as [`Edge::Free`]).
    pub(crate) fn from_u32(v: u32) -> Edge {
        match v {
            1 => Edge::Never,
            2 => Edge::Named,
            3 => Edge::French,
            _ => Edge::Free,
        }
    }
}

/// English function words of three letters or more (shorter words are stop words
/// anyway).
const EN_FUNCTION: &str = "\
aboard about above across after against all along alongside although amid amidst among \
amongst and another any anybody anyone anything are around atop because been before \
behind being below beneath beside besides between beyond both but can cannot concerning \
could despite did does doing down during each either every everybody everyone everything \
except excluding few fewer for from had has have having her hers herself him himself his \
how including inside into its itself lest like many minus more most much must myself \
neither nobody none noone nor not nothing off onto other others ought our ours ourselves \
out outside over own per plus regarding same several shall she should since some \
somebody someone something such than that the their theirs them themselves these they \
this those though through throughout thru till toward towards under underneath unless \
unlike until unto upon various versus via was were what whatever when whenever where \
whereas wherever whether which whichever while whilst who whoever whom whomever whose \
why will with within without would you your yours yourself yourselves";

/// English adverbs that the `-ly` rule does not catch (or that its name check would
/// spare: `nicely` is also a surname).
const EN_ADVERBS: &str = "\
ably afterward afterwards again ago ahead almost alone already also altogether always \
anew anyhow anyway anywhere apart aptly aside away backward backwards badly beforehand \
coyly downward downwards dryly duly earlier else elsewhere enough even ever everywhere \
forth fully further furthermore gravely hence here hereby herein hither hotly however \
idly indeed instead just later least less likewise madly maybe meanwhile moreover never \
nevertheless newly nicely nobly nonetheless notwithstanding now nowhere oddly often once \
only otherwise overly perhaps quite seldom shyly sideways somehow sometimes somewhat \
somewhere soon still then thence there thereafter thereby therefore therein thither \
thrice thus today together tomorrow tonight too truly twice upward upwards very well \
whence whereby wherein whereupon wryly yesterday yet";

/// French function words, except those that are also English words (`son`, `car`,
/// `pour`, `par`, `est`, `pendant`) or name parts (in [`NAMED`]).
const FR_FUNCTION: &str = "\
afin ai aucun aucune aura auraient aurait auront autre autres avaient avait avant avec \
avez avoir avons ceci cela celle celles celui certaines certains ces cet cette ceux \
chacun chacune chaque comme contre depuis devait devrait doit doivent dont elles entre \
envers etaient etait etant ete etes etre eux ils jusque laquelle lequel lesquelles \
lesquels leur leurs lors lorsque lui mais malgre meme memes mes nous ont parce parmi pas \
peut peuvent plusieurs pourrait pouvait puisque quand que quel quelle quelles quelque \
quelques quels qui quiconque quoi quoique rien sauf selon sera seraient serait seront \
ses soit sommes sont suis tandis tes tous tout toute toutes une vers voici voila vos \
votre vous";

/// French adverbs (the `-amment` / `-emment` ones come from the rule).
const FR_ADVERBS: &str = "\
abord absolument actuellement ailleurs ainsi alors assez aujourd'hui auparavant aussi \
aussitot autant autrefois autrement beaucoup bien bientot cependant certainement certes \
clairement combien completement davantage dedans dehors deja demain derriere desormais \
dessous dessus directement egalement encore enfin ensuite entierement environ exactement \
finalement fortement generalement guere hier ici immediatement jadis jamais justement \
largement longtemps maintenant moins neanmoins non normalement notamment oui parfois \
particulierement partout peu peut-etre plutot pourquoi pourtant precisement pres presque \
principalement probablement puis quasi quasiment quelquefois rapidement rarement \
seulement simplement souvent surtout tant tantot tard tellement tot totalement toujours \
toutefois tres trop uniquement vite voire volontiers vraiment";

/// Function words and adverbs that are also names or name parts (`May`, `Dan Rather`,
/// `Notre Dame`, `Tel Aviv`, `Near East`).
const NAMED: &str = "\
chez dans durant elle may moi mon near nos notre rather sans sous sur tel toi";

/// Words of six letters or more ending in `-ly` that are not adverbs.
const LY_NOT_ADVERBS: &str = "\
anomaly assembly beastly beggarly biweekly bodily brotherly bubbly butterfly chilly \
comely comply comradely costly courtly cowardly crumbly dastardly deadly deathly \
disorderly dragonfly earthly easterly elderly family fatherly firefly friendly frilly \
gadfly gangly gentlemanly ghastly ghostly goodly grisly grizzly heavenly homely homily \
hourly housefly kingly leisurely likely lively lonely lordly lovely mannerly masterly \
matronly mealy melancholy miserly monopoly monthly motherly multiply neighborly \
neighbourly nightly northerly orderly otherworldly oversupply panoply pearly portly \
potbelly prickly princely quarterly queenly resupply saintly scholarly scraggly seemly \
shapely sicily sickly sisterly slovenly smelly southerly spindly sprightly stately \
steely supply timely underbelly unearthly unfriendly ungodly unlikely unruly unseemly \
unsightly untimely unworldly weekly westerly wobbly womanly woolly worldly wrinkly \
yearly";

/// French function words that are also English words.
const FR_ENGLISH: &str = "car est par pendant pour son ton";

/// French elisions: what may stand before the apostrophe of `qu'il`, `l'un`.
const ELISIONS: &[&str] = &[
    "c", "d", "j", "jusqu", "l", "lorsqu", "m", "n", "presqu", "puisqu", "qu", "quoiqu", "s", "t",
];

/// What a listed word is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    /// A function word or adverb.
    Never,
    /// A function word or adverb that is also a name.
    Named,
    /// A French function word that is also an English word.
    French,
    /// A `-ly` word that is not an adverb.
    NotAdverb,
}

type Table = HashMap<&'static str, Listed, foldhash::fast::FixedState>;

/// Every listed word and what it is (a word in two lists keeps the later one; a test
/// checks that none is).
static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let lists = [
        (EN_FUNCTION, Listed::Never),
        (EN_ADVERBS, Listed::Never),
        (FR_FUNCTION, Listed::Never),
        (FR_ADVERBS, Listed::Never),
        (NAMED, Listed::Named),
        (LY_NOT_ADVERBS, Listed::NotAdverb),
        (FR_ENGLISH, Listed::French),
    ];
    let mut t = Table::default();
    for (words, what) in lists {
        t.extend(words.split_ascii_whitespace().map(|w| (w, what)));
    }
    t
});

/// How the folded word `w` (lexicon flags `lex`) may stand at a phrase's edge.
pub(crate) fn edge(w: &str, lex: u32) -> Edge {
    let w = w.trim_end_matches('.');
    match TABLE.get(w) {
        Some(Listed::Never) => Edge::Never,
        Some(Listed::Named) => Edge::Named,
        Some(Listed::French) => Edge::French,
        Some(Listed::NotAdverb) => Edge::Free,
        // Contractions and elisions have an apostrophe: most words are spared both tests.
        None if emment_adverb(w)
            || (w.bytes().any(|b| b == b'\'') && (contraction(w) || elided_function(w))) =>
        {
            Edge::Never
        }
        // A surname missing from the name lists is capitalised where it is a name.
        None if ly_adverb(w, lex) => Edge::Named,
        None => Edge::Free,
    }
}

/// French `constamment`, `évidemment`.
fn emment_adverb(w: &str) -> bool {
    w.len() > 7 && (w.ends_with("amment") || w.ends_with("emment"))
}

/// `didn't`, `we're`, `they've`, `you'll`, `I'd`, `I'm`.
fn contraction(w: &str) -> bool {
    w.contains('\'')
        && ["n't", "'re", "'ve", "'ll", "'d", "'m"]
            .iter()
            .any(|s| w.ends_with(s))
}

/// `qu'il`, `c'est`, `l'un`, `d'abord`, `jusqu'ici`: an elision before a function word
/// (or a word of one or two letters).
fn elided_function(w: &str) -> bool {
    let Some((head, rest)) = w.split_once('\'') else {
        return false;
    };
    ELISIONS.contains(&head) && (rest.len() < 3 || edge(rest, 0) != Edge::Free)
}

/// An English adverb in `-ly`: six letters or more, not a listed adjective or noun,
/// not a first name, surname or place.
fn ly_adverb(w: &str, lex: u32) -> bool {
    w.len() >= 6
        && w.ends_with("ly")
        && w.bytes().all(|b| b.is_ascii_lowercase())
        && lex & (flag::FIRST | flag::SURNAME) == 0
        && gazetteer::get().ok().is_none_or(|g| g.place(w).is_empty())
}

/// How token `i`'s word may stand at a phrase's edge; [`Edge::Never`] for a stop word
/// (lexicon stop list, fewer than three letters).
pub(crate) fn term_edge(doc: &Doc, i: usize) -> Edge {
    let t = &doc.tokens[i];
    // Folded forms are ASCII (accents folded, other marks dropped), so bytes are
    // characters here.
    let fold = doc.fold(i);
    if t.kind != Kind::Word
        || t.has(flag::STOP)
        || fold.bytes().filter(u8::is_ascii_alphanumeric).count() < 3
    {
        return Edge::Never;
    }
    edge(fold, t.lex)
}

/// Whether a token is written as a name: capitalised inside a sentence.
#[inline]
pub(crate) fn is_name(t: &Token) -> bool {
    t.is(shape::CAP) && !t.is(shape::SENT_START)
}

/// What a word says of the text's language: 1 for a common French function word, -1
/// for a common English one, 0 otherwise. Summed over a text's distinct words, the
/// sign tells French from English.
pub(crate) fn french_vote(w: &str) -> i32 {
    match w {
        "au" | "aux" | "avec" | "dans" | "des" | "du" | "est" | "et" | "la" | "le" | "les"
        | "par" | "pour" | "qui" | "sont" | "sur" | "une" => 1,
        "and" | "are" | "for" | "from" | "has" | "have" | "that" | "the" | "this" | "was"
        | "were" | "which" | "with" => -1,
        _ => 0,
    }
}

/// The length of a leading French elision of `text` (`l'`, `d’`) when a word follows
/// it: `l'accord` opens a phrase as `accord`. An elision between capitals (`D'Amato`,
/// `L'Enfant`) is kept, as part of a name.
pub(crate) fn elision_len(text: &str) -> usize {
    let Some((i, c)) = text.char_indices().find(|&(_, c)| c == '\'' || c == '’') else {
        return 0;
    };
    let (head, rest) = (&text[..i], &text[i + c.len_utf8()..]);
    let starts = |s: &str, f: fn(char) -> bool| s.chars().next().is_some_and(f);
    let elision = head.len() <= 7 && ELISIONS.contains(&head.to_ascii_lowercase().as_str());
    if elision
        && starts(rest, char::is_alphabetic)
        && (starts(head, char::is_lowercase) || starts(rest, char::is_lowercase))
    {
        i + c.len_utf8()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::tokens::Doc;
    use crate::fold::fold_str;

    /// La Presse-style French copy, with adverbs and function words next to the nouns.
    const FRENCH: &str = "\
(Québec) Le gouvernement a encore reporté jeudi le dépôt de son projet de loi sur la réforme \
du régime forestier, qui devait pourtant être présenté avant la fin de la session parlementaire.
Le ministre des Forêts a toutefois assuré qu'il déposerait bientôt une version révisée du \
projet de loi, déjà longuement discutée avec les communautés autochtones.
« Nous avons toujours dit que nous prendrions le temps nécessaire », a-t-il déclaré lors \
d'un point de presse à l'Assemblée nationale.
L'opposition officielle estime plutôt que le gouvernement tente surtout de gagner du temps.
Selon la Fédération québécoise des municipalités, l'accord conclu l'été dernier avec \
l'industrie forestière reste néanmoins fragile, et les coupes prévues inquiètent encore \
beaucoup les maires de la région.
Les négociations reprendront ensuite à Montréal, puis à Chibougamau, où les travailleurs \
forestiers sont souvent les premiers touchés par les fermetures d'usines.
Le premier ministre a lui aussi promis jeudi une aide rapidement versée aux travailleurs \
forestiers, évidemment avant la fin de la session parlementaire.";

    /// Key phrases of an article file (its stamp lines left out).
    fn phrases(text: &str) -> Vec<String> {
        let paras: Vec<&str> = text
            .lines()
            .filter(|l| crate::parse::stamp::classify(l).is_none())
            .collect();
        let doc = Doc::new(paras, gazetteer::get().ok());
        super::super::keywords(&doc, 10)
    }

    /// The first or last word of `phrase` when it is one no phrase may open or close
    /// with: a stop word, a function word or adverb, a name-only word in lower case, or
    /// (in a French text) a French function word.
    fn bad_edge(phrase: &str, french: bool) -> Option<String> {
        let words: Vec<&str> = phrase.split_whitespace().collect();
        let stop = |w: &str| {
            let f = fold_str(w);
            let lex = gazetteer::get().map_or(0, |g| g.word_flags(f.trim_end_matches('.')));
            let short = f.bytes().filter(u8::is_ascii_alphanumeric).count() < 3;
            let capital = w.chars().next().is_some_and(char::is_uppercase);
            short
                || lex & flag::STOP != 0
                || match edge(&f, lex) {
                    Edge::Free => false,
                    Edge::Never => true,
                    Edge::Named => !capital,
                    Edge::French => french,
                }
        };
        let bad = [words.first(), words.last()]
            .into_iter()
            .flatten()
            .find(|w| stop(w));
        bad.map(|w| format!("{w:?} in {phrase:?}"))
    }

    #[test]
    fn edges_read_back_from_their_numbers() {
        for e in [Edge::Free, Edge::Never, Edge::Named, Edge::French] {
            assert_eq!(Edge::from_u32(e as u32), e);
        }
        assert_eq!(Edge::from_u32(99), Edge::Free);
    }

    #[test]
    fn no_phrase_opens_or_closes_on_a_function_word_or_adverb() {
        let file = include_str!("../../../tests/fixtures/dev/008_fccd1593fe3b7f7e.txt");
        let found = phrases(file);
        assert!(found.len() >= 5, "{found:?}");
        assert!(
            found.iter().all(|p| bad_edge(p, false).is_none()),
            "{found:?}"
        );
        assert!(!found.iter().any(|p| p.contains("again")), "{found:?}");

        let french = phrases(FRENCH);
        assert!(french.len() >= 5, "{french:?}");
        assert!(
            french.iter().all(|p| bad_edge(p, true).is_none()),
            "{french:?}"
        );
        assert!(
            !french
                .iter()
                .any(|p| p.starts_with("l'") || p.starts_with("d'")),
            "{french:?}"
        );

        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dev");
        let mut files = 0;
        for entry in std::fs::read_dir(dir).expect("dev fixtures") {
            let path = entry.expect("dev fixture").path();
            if path.extension().is_some_and(|e| e == "txt") {
                let bytes = std::fs::read(&path).expect("dev fixture");
                for p in phrases(&String::from_utf8_lossy(&bytes)) {
                    assert_eq!(bad_edge(&p, false), None, "{}", path.display());
                }
                files += 1;
            }
        }
        assert!(files > 300, "{files} dev fixtures");
    }

    #[test]
    fn lists_are_folded_and_disjoint() {
        let all = [
            EN_FUNCTION,
            EN_ADVERBS,
            FR_FUNCTION,
            FR_ADVERBS,
            NAMED,
            LY_NOT_ADVERBS,
            FR_ENGLISH,
        ]
        .map(str::split_ascii_whitespace);
        let count = all.iter().map(|l| l.clone().count()).sum::<usize>();
        assert_eq!(TABLE.len(), count, "a word is in two lists");
        for w in TABLE.keys() {
            assert!(
                w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b"'-".contains(&b)),
                "{w}"
            );
        }
    }

    #[test]
    fn adverbs_function_words_and_look_alikes() {
        let never = "again also just didn't qu'il c'est d'abord jusqu'ici n'ont encore deja \
                     evidemment the";
        let free = "family italy july rally supply assembly early elderly holy legislator \
                    l'accord d'ottawa gouvernement moment o'brien";
        let named = "reportedly specifically easily probably kennerly may notre";
        for (words, want) in [
            (never, Edge::Never),
            (free, Edge::Free),
            (named, Edge::Named),
        ] {
            for w in words.split_ascii_whitespace() {
                assert_eq!(edge(w, 0), want, "{w}");
            }
        }
        assert_eq!(edge("connolly", flag::SURNAME), Edge::Free);
        assert_eq!(edge("son", 0), Edge::French);
    }

    #[test]
    fn leading_elisions() {
        assert_eq!(elision_len("l'accord de paix"), 2);
        assert_eq!(elision_len("d’Ottawa"), 4);
        assert_eq!(elision_len("L'accord"), 2);
        assert_eq!(elision_len("L'Enfant Plaza"), 0);
        assert_eq!(elision_len("D'Amato"), 0);
        assert_eq!(elision_len("O'Brien"), 0);
        assert_eq!(elision_len("accord d'Ottawa"), 0);
    }
}
