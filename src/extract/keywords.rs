//! Key phrases with YAKE (Campos et al., "YAKE! Keyword extraction from single
//! documents using multiple local features", Information Sciences 509, 2020),
//! computed on the extract stage's own tokens.
//!
//! Why not call the `yake-rust` crate: measured on the seed article it costs 0.6 ms
//! for the first 300 bytes and 4.6 ms for the whole text (its regex sentence splitter
//! and a per-call copy of the stop-word set), which is 60 times the whole per-article
//! budget of the pipeline. The algorithm itself is a few counts per word; what the
//! crate spends its time on — splitting sentences and words — this stage has
//! already done. The crate stays as the reference: a test checks that the phrases
//! found here are the ones it finds.
//!
//! For each word that is not a stop word (lexicon stop list, the function words and
//! adverbs of [`words`], or fewer than three letters), from its occurrences: `TF`,
//! capitalized occurrences not opening a sentence and acronyms (casing), the median
//! sentence index (position), the sentences it appears in (spread), and how varied its
//! left and right neighbours are (relatedness). Word score
//! `H = Rel·Pos / (Case + Freq/Rel + Spread/Rel)`; candidate phrases of one to three
//! words inside a sentence, not starting or ending with a stop word, score
//! `Π H / (TF_phrase · (1 + Σ H))`. Lower is better; phrases contained in a better one
//! are dropped. A function word or adverb that is also a name (`May`, `Notre Dame`)
//! counts as a word, but opens or closes a phrase only where it is capitalised inside
//! a sentence; a French function word that is also an English word (`son`, `pour`) is
//! a stop word in a French text only; a leading French elision is left out of a
//! phrase (`l'accord` reads `accord`).

mod table;
mod words;

use super::tokens::{shape, Doc, Kind};
use table::{EdgeMemo, IdTable};
use words::Edge;

/// Longest candidate phrase, in words.
const MAX_NGRAM: usize = 3;

/// Bits per term id in a packed phrase key (`id + 1`, three to a `u64`).
const ID_BITS: u32 = 21;

/// Term ids below this fit in a packed key; it is also the mask of one id's bits.
const ID_LIMIT: u32 = (1 << ID_BITS) - 1;

#[derive(Default, Clone)]
struct Term {
    /// Counts are integers (added to faster than floats, and half the size); the
    /// score converts them, exactly, to `f64`.
    tf: u32,
    upper: u32,
    acronym: u32,
    /// Sentences the term appears in.
    sentences: u32,
    /// Last sentence counted in `sentences`.
    last_sentence: u32,
    /// Median sentence index of its occurrences (filled after counting).
    median: f64,
    /// Occurrences seen so far by the median pass, and the sentence of the lower
    /// middle one of an even count.
    seen: u32,
    lower_middle: u32,
    /// Distinct left and right neighbours.
    left: u32,
    right: u32,
    /// Occurrences with a left and a right neighbour.
    left_n: u32,
    right_n: u32,
}

/// A candidate phrase: up to three term ids.
type Key = ([u32; MAX_NGRAM], u8);

fn contains(long: &Key, short: &Key) -> bool {
    let (l, s) = (&long.0[..long.1 as usize], &short.0[..short.1 as usize]);
    // Element by element: a slice comparison would call `memcmp` for three words.
    s.len() <= l.len()
        && l.windows(s.len())
            .any(|w| w.iter().zip(s).all(|(a, b)| a == b))
}

/// Groups `(key, value)` pairs by key with a counting sort, keeping their order
/// within a key: afterwards the values of key `k` are
/// `values[offsets[k]..offsets[k + 1]]`. `counts` gives how many pairs each key has.
fn group_by_first(
    pairs: &[(u32, u32)],
    counts: impl Iterator<Item = usize>,
    offsets: &mut Vec<usize>,
    values: &mut Vec<u32>,
) {
    // `offsets[k]` starts at the end of key `k`'s run and counts down to its start
    // while the pairs are walked backwards (so each run keeps the pairs' order);
    // the total, pushed last, closes the last run.
    offsets.clear();
    let mut total = 0;
    for c in counts {
        total += c;
        offsets.push(total);
    }
    values.clear();
    values.resize(total, 0);
    for &(k, v) in pairs.iter().rev() {
        let f = &mut offsets[k as usize];
        *f -= 1;
        values[*f] = v;
    }
    offsets.push(total);
}

/// A scored candidate: score, term ids, first token, end token.
type Scored = (f64, Key, u32, u32);

/// The key-phrase pass's working memory, kept per thread between articles so that
/// its tables and lists are allocated once, not once per article.
#[derive(Default)]
struct Scratch {
    ids: IdTable,
    multi: IdTable,
    tid: Vec<u32>,
    stop: Vec<bool>,
    /// How each term may stand at a phrase's edge.
    edges: Vec<Edge>,
    terms: Vec<Term>,
    pairs: Vec<(u32, u32)>,
    offsets: Vec<usize>,
    grouped: Vec<u32>,
    seen_from: Vec<u32>,
    edge_memo: EdgeMemo,
    ln_tf: Vec<f64>,
    ln_ln_pos: Vec<f64>,
    h: Vec<f64>,
    single: Vec<(u32, u32)>,
    multi_at: Vec<(u32, u32)>,
    scored: Vec<Scored>,
    bound: Vec<f64>,
}

/// Past this many tokens, an article's scratch is dropped after use rather than kept
/// for the next one (a rare huge file should not pin its memory for the thread's life).
const KEEP_SCRATCH_TOKENS: usize = 1 << 16;

/// Past this many words, the tables are sized for the most entries the article can
/// need (every word a new term, two new phrases per word) rather than for a typical
/// share of them: a table that large is out of the caches anyway, and growing it
/// would move every entry.
const SIZE_FOR_ALL_WORDS: usize = 1 << 16;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Up to `n` key phrases of the document, best first, as written in the text.
pub(crate) fn keywords(doc: &Doc, n: usize) -> Vec<String> {
    if doc.tokens.is_empty() || n == 0 {
        return Vec::new();
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            let out = run(doc, n, &mut s);
            if doc.tokens.len() > KEEP_SCRATCH_TOKENS {
                *s = Scratch::default();
            }
            out
        }
        // Only reachable by re-entry, which nothing does; stay correct anyway.
        Err(_) => run(doc, n, &mut Scratch::default()),
    })
}

fn run(doc: &Doc, n: usize, s: &mut Scratch) -> Vec<String> {
    // Term ids by folded form, keyed by the tokeniser's 64-bit word hash (two words
    // whose hashes agree are one term; among a document's few thousand words that is
    // not expected to happen).
    let words = doc.tokens.iter().filter(|t| t.kind == Kind::Word).count();
    let ids = &mut s.ids;
    let large = words > SIZE_FOR_ALL_WORDS;
    ids.clear(if large { words } else { words / 2 });
    let tid = &mut s.tid;
    tid.clear();
    tid.resize(doc.tokens.len(), u32::MAX);
    // Stop words and edge rules, judged once per term (every occurrence has the same
    // folded form), and the text's language, from its distinct words.
    let (stop, edges) = (&mut s.stop, &mut s.edges);
    stop.clear();
    edges.clear();
    let mut french = 0;
    for (i, t) in doc.tokens.iter().enumerate() {
        if t.kind == Kind::Word {
            let next = stop.len() as u32;
            let id = ids.get_or_insert(doc.hashes[i] | 1, next);
            if id == next {
                let edge = s.edge_memo.edge(doc, i);
                stop.push(edge == Edge::Never);
                edges.push(edge);
                french += words::french_vote(doc.fold(i));
            }
            tid[i] = id;
        }
    }
    if french > 0 {
        for (st, e) in stop.iter_mut().zip(edges.iter()) {
            *st |= *e == Edge::French;
        }
    }
    // A term opens or closes a phrase at token `i` unless it is a stop word, or a name
    // written otherwise than as a name.
    let (stop, edges) = (&*stop, &*edges);
    let at_edge = |i: usize, term: u32| {
        !stop[term as usize]
            && (edges[term as usize] != Edge::Named || words::is_name(&doc.tokens[i]))
    };
    let terms = &mut s.terms;
    terms.clear();
    terms.resize(
        stop.len(),
        Term {
            last_sentence: u32::MAX,
            ..Term::default()
        },
    );
    let pairs = &mut s.pairs;
    pairs.clear();
    for (si, range) in doc.sentences.iter().enumerate() {
        if !doc.budget.spend(range.len()) {
            return Vec::new();
        }
        for i in range.clone() {
            let t = &doc.tokens[i];
            if t.kind != Kind::Word {
                continue;
            }
            let id = tid[i];
            let term = &mut terms[id as usize];
            term.tf += 1;
            if t.is(shape::ALLCAPS) {
                term.acronym += 1;
            } else if t.is(shape::CAP) && !t.is(shape::SENT_START) {
                term.upper += 1;
            }
            if term.last_sentence != si as u32 {
                term.last_sentence = si as u32;
                term.sentences += 1;
            }
            // Neighbours: adjacent words of the same sentence (punctuation breaks).
            if i + 1 < range.end && doc.tokens[i + 1].kind == Kind::Word {
                let next = tid[i + 1];
                term.right_n += 1;
                terms[next as usize].left_n += 1;
                pairs.push((id, next));
            }
        }
    }
    // Median sentence of each term: a second pass meets each term's occurrences in
    // sentence order, so the middle one (or the middle two) is the median.
    for (si, range) in doc.sentences.iter().enumerate() {
        if !doc.budget.spend(range.len()) {
            return Vec::new();
        }
        for i in range.clone() {
            if doc.tokens[i].kind != Kind::Word {
                continue;
            }
            let term = &mut terms[tid[i] as usize];
            term.seen += 1;
            let (k, l, si) = (term.seen, term.tf, si as u32);
            if l % 2 == 1 {
                if k == l.div_ceil(2) {
                    term.median = f64::from(si);
                }
            } else if k == l / 2 {
                term.lower_middle = si;
            } else if k == l / 2 + 1 {
                term.median = f64::from(term.lower_middle + si) / 2.0;
            }
        }
    }
    // Distinct neighbours: pairs grouped by left term, and a mark per right term
    // saying which left term last counted it.
    let (pair_offset, rights) = (&mut s.offsets, &mut s.grouped);
    group_by_first(
        pairs,
        terms.iter().map(|t| t.right_n as usize),
        pair_offset,
        rights,
    );
    let seen_from = &mut s.seen_from;
    seen_from.clear();
    seen_from.resize(terms.len(), u32::MAX);
    for a in 0..terms.len() {
        for &b in &rights[pair_offset[a]..pair_offset[a + 1]] {
            if seen_from[b as usize] != a as u32 {
                seen_from[b as usize] = a as u32;
                terms[a].right += 1;
                terms[b as usize].left += 1;
            }
        }
    }
    // Word scores, from the statistics of the non-stop words.
    let (mut count, mut sum, mut sum2, mut max_tf) = (0.0f64, 0.0f64, 0.0f64, 1.0f64);
    for (t, _) in terms.iter().zip(stop.iter()).filter(|(_, s)| !**s) {
        let tf = f64::from(t.tf);
        count += 1.0;
        sum += tf;
        sum2 += tf * tf;
        max_tf = max_tf.max(tf);
    }
    if count == 0.0 {
        return Vec::new();
    }
    let mean = sum / count;
    let std = (sum2 / count - mean * mean).max(0.0).sqrt();
    let n_sent = doc.sentences.len().max(1) as f64;
    // Counts and medians are small integers (medians may end in .5): logarithms come
    // from tables filled on first use, not computed once per term.
    let most = terms.iter().map(|t| t.tf as usize).max().unwrap_or(0);
    let ln_tf = &mut s.ln_tf;
    ln_tf.clear();
    ln_tf.resize(most + 1, f64::NAN);
    let ln_ln_pos = &mut s.ln_ln_pos;
    ln_ln_pos.clear();
    ln_ln_pos.resize(2 * doc.sentences.len() + 2, f64::NAN);
    let h = &mut s.h;
    h.clear();
    // Stop words' scores are never used (phrases skip them), so they are not computed.
    h.extend(terms.iter().zip(stop.iter()).map(|(t, &is_stop)| {
        if is_stop {
            return 0.0;
        }
        let tf = f64::from(t.tf);
        let lt = &mut ln_tf[t.tf as usize];
        if lt.is_nan() {
            *lt = tf.ln();
        }
        let casing = f64::from(t.upper.max(t.acronym)) / (1.0 + *lt);
        let lp = &mut ln_ln_pos[(t.median * 2.0) as usize];
        if lp.is_nan() {
            *lp = (3.0 + t.median).ln().ln();
        }
        let position = *lp;
        let freq = tf / (mean + std).max(f64::EPSILON);
        let dl = if t.left_n > 0 {
            f64::from(t.left) / f64::from(t.left_n)
        } else {
            0.0
        };
        let dr = if t.right_n > 0 {
            f64::from(t.right) / f64::from(t.right_n)
        } else {
            0.0
        };
        let rel = 1.0 + (dl + dr) * (tf / max_tf);
        let spread = f64::from(t.sentences) / n_sent;
        rel * position / (casing + freq / rel + spread / rel)
    }));
    // Candidate phrases. One word: counted per term. Two or three words: in a table
    // keyed by their term ids packed in a `u64` (`ID_BITS` each, id + 1 so that 0 is
    // empty); a term past the 2,097,150th distinct word of a document (which the size
    // limit keeps out of reach) only forms one-word candidates.
    let single = &mut s.single;
    single.clear();
    single.resize(stop.len(), (0, u32::MAX));
    let multi = &mut s.multi;
    multi.clear(if large { 2 * words } else { words });
    let multi_at = &mut s.multi_at;
    multi_at.clear();
    for range in &doc.sentences {
        if !doc.budget.spend(range.len()) {
            return Vec::new();
        }
        for a in range.clone() {
            let first = tid[a];
            if first == u32::MAX || !at_edge(a, first) {
                continue;
            }
            let e = &mut single[first as usize];
            e.0 += 1;
            if e.1 == u32::MAX {
                e.1 = a as u32;
            }
            let mut packed = u64::from(first) + 1;
            for len in 2..=MAX_NGRAM {
                let last = a + len - 1;
                if last >= range.end || doc.tokens[last].kind != Kind::Word {
                    break;
                }
                let w = tid[last];
                if first >= ID_LIMIT || w >= ID_LIMIT {
                    break;
                }
                packed |= (u64::from(w) + 1) << (ID_BITS as usize * (len - 1));
                if !at_edge(last, w) {
                    continue;
                }
                let next = multi_at.len() as u32;
                let slot = multi.get_or_insert(packed, next);
                if slot == next {
                    multi_at.push((0, a as u32));
                }
                multi_at[slot as usize].0 += 1;
            }
        }
    }
    let score = |key: &Key, tf: u32| {
        let (mut prod, mut sum) = (1.0, 0.0);
        for &w in &key.0[..key.1 as usize] {
            if !stop[w as usize] {
                prod *= h[w as usize];
                sum += h[w as usize];
            }
        }
        prod / (f64::from(tf) * (1.0 + sum))
    };
    let scored = &mut s.scored;
    scored.clear();
    for (w, &(tf, a)) in single.iter().enumerate() {
        if tf > 0 {
            let key = ([w as u32, u32::MAX, u32::MAX], 1);
            scored.push((score(&key, tf), key, a, a + 1));
        }
    }
    for (packed, slot) in multi.entries() {
        let (tf, a) = multi_at[slot as usize];
        let mut key: Key = ([u32::MAX; MAX_NGRAM], 0);
        let mut rest = packed;
        while rest != 0 {
            key.0[key.1 as usize] = (rest & u64::from(ID_LIMIT)) as u32 - 1;
            key.1 += 1;
            rest >>= ID_BITS;
        }
        scored.push((score(&key, tf), key, a, a + u32::from(key.1)));
    }
    // Only the best few can be chosen (plus those dropped as contained in a better
    // one): select them in linear time, then sort just those.
    let order = |x: &Scored, y: &Scored| {
        x.0.total_cmp(&y.0)
            .then_with(|| x.2.cmp(&y.2))
            .then_with(|| x.1 .1.cmp(&y.1 .1))
    };
    // The selection runs on the bare scores (eight bytes each, not forty): the
    // `keep`-th smallest score bounds the kept candidates; ties at the bound may let
    // a few more through, which the sort puts in order and the truncation drops.
    let keep = (n * 8).min(scored.len());
    if keep > 0 && keep < scored.len() {
        let bound = &mut s.bound;
        bound.clear();
        bound.extend(scored.iter().map(|c| c.0));
        let (_, &mut t, _) = bound.select_nth_unstable_by(keep - 1, f64::total_cmp);
        scored.retain(|c| c.0.total_cmp(&t).is_le());
    }
    scored.sort_unstable_by(order);
    scored.truncate(keep);
    let mut chosen: Vec<Key> = Vec::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    for &(_, key, a, b) in scored.iter() {
        if chosen
            .iter()
            .any(|k| contains(k, &key) || contains(&key, k))
        {
            continue;
        }
        // Without its elision, a phrase may read as one already chosen.
        let text = doc.span(a as usize, b as usize);
        let text = &text[words::elision_len(text)..];
        if out.iter().any(|o: &String| o.eq_ignore_ascii_case(text)) {
            continue;
        }
        chosen.push(key);
        out.push(text.to_owned());
        if out.len() == n {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_of(text: &str) -> Vec<String> {
        let paras: Vec<&str> = text.lines().collect();
        let doc = Doc::new(paras, super::super::gazetteer::get().ok());
        keywords(&doc, 10)
    }

    /// The memo of edges gives what judging each word afresh gives, warm or cold, and
    /// does not carry what one article taught into the next one's answers.
    #[test]
    fn remembered_edges_change_no_phrase() {
        let seed = include_str!("../../tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt");
        let french = "Le ministre a déclaré jeudi que le projet de loi sur la forêt serait \
            présenté avant la fin de la session, malgré les critiques des syndicats.";
        let cold = |text: &str| {
            let paras: Vec<&str> = text.lines().collect();
            let doc = Doc::new(paras, super::super::gazetteer::get().ok());
            let mut fresh = Scratch::default();
            run(&doc, 10, &mut fresh)
        };
        for text in [seed, french, seed, french] {
            assert_eq!(doc_of(text), cold(text));
        }
        // A document tokenised without the lexicon (no flags) is judged afresh.
        let paras: Vec<&str> = seed.lines().collect();
        let bare = Doc::new(paras, None);
        let mut fresh = Scratch::default();
        assert_eq!(keywords(&bare, 10), run(&bare, 10, &mut fresh));
    }

    /// However many distinct words a thread meets, the memo keeps at most its bound.
    #[test]
    fn the_memo_of_edges_stays_bounded() {
        // Distinct letter-only words: `zq` and the number's digits as letters.
        let words: Vec<String> = (0..EdgeMemo::MAX + 5000)
            .map(|i| {
                let digits = i.to_string();
                let letters: String = digits
                    .bytes()
                    .map(|d| char::from(d - b'0' + b'a'))
                    .collect();
                format!("zq{letters}")
            })
            .collect();
        let text = words.join(" ");
        let doc = Doc::new(vec![text.as_str()], super::super::gazetteer::get().ok());
        let mut s = Scratch::default();
        let _ = run(&doc, 10, &mut s);
        let used = s.edge_memo.table.used.len();
        assert!(used > 0 && used <= EdgeMemo::MAX, "{used}");
        assert!(s.edge_memo.table.keys.len() <= 2 * EdgeMemo::MAX);
    }

    #[test]
    fn empty_and_stop_only_texts() {
        assert!(doc_of("").is_empty());
        assert!(doc_of("the of and to in").is_empty());
    }

    /// The reference implementation (the `yake-rust` crate) and this one agree on what
    /// the seed article is about.
    #[test]
    fn agrees_with_the_yake_crate_on_the_seed() {
        let text = include_str!("../../tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt");
        let body: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 1 && *i != 2)
            .map(|(_, l)| l)
            .collect();
        let ours = doc_of(&body.join("\n"));
        let stop = yake_rust::StopWords::predefined("en").expect("english stop words");
        let cfg = yake_rust::Config {
            ngrams: 3,
            ..yake_rust::Config::default()
        };
        let theirs: Vec<String> = yake_rust::get_n_best(20, &body.join("\n"), &stop, &cfg)
            .into_iter()
            .map(|r| r.keyword.to_lowercase())
            .collect();
        let ours_l: Vec<String> = ours.iter().map(|s| s.to_lowercase()).collect();
        let shared = ours_l
            .iter()
            .filter(|k| {
                theirs
                    .iter()
                    .any(|t| t.contains(k.as_str()) || k.contains(t.as_str()))
            })
            .count();
        assert!(shared >= 6, "ours {ours_l:?} vs yake-rust {theirs:?}");
        assert!(ours_l.iter().any(|k| k.contains("blinken")), "{ours_l:?}");
        eprintln!("ours: {ours_l:?}\nyake-rust: {theirs:?}");
    }
}
