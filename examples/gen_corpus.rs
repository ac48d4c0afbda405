//! Builds a synthetic article corpus for the end-to-end benchmark (`scripts/bench.sh`).
//!
//! ```text
//! cargo run --release --example gen_corpus -- --out DIR [--n 50000] [--seed 42]
//!     [--updates 0.2] [--size 4096] [--window 2000] [--fixtures tests/fixtures/dev]
//!     [--live-out DIR2 --live-n M] [--skip K]
//! ```
//!
//! Every file is built from the dev fixtures (`tests/fixtures/dev`):
//!
//! * about 80 % are **new stories**: the lede of a fixture with one or two content
//!   words replaced, a dateline picked from a list, a random `Posted` moment in
//!   2022-2023 and often an `Updated` one, written in one of the English or French
//!   stamp forms of the La Presse layout (time only, `yesterday`/`hier`, full date,
//!   `Oct. 3, 2022, 1:14 p.m.`, date only), and a body taken from the fixture and
//!   padded with paragraphs of other fixtures to about `--size` bytes;
//! * about 20 % (`--updates`) are **update versions** of a recent story (one of the
//!   last `--window` stories): same dateline, lede and `Posted` line, a later
//!   `Updated` stamp and an edited body (words replaced, a paragraph added or cut).
//!
//! Each file's mtime is its capture time (a little after its newest stamp), so the
//! relative stamps resolve to the intended moments. Files are named
//! `NNNNNNN_<sha256 prefix>.txt`; name order is generation order, so `run --once`
//! sees every story's versions oldest first and every file must be emitted: the
//! expected summary is `N emitted (U updates), 0 duplicates, 0 stale, 0 rejected`.
//!
//! The generator checks its own output with the library's parser: every file must
//! parse, its stamps must resolve to the intended moments (otherwise another stamp
//! form is tried), a new story must get an `article_id` no earlier story has, and an
//! update must get its story's id. Output is deterministic for a given seed and
//! fixture set. With `--live-out`, files `N..N+M` of the same sequence (new stories and
//! updates of the stories before them) go to a second folder, for the live benchmark.
//!
//! `--skip K` generates the first K files without writing them: a corpus of K files
//! made earlier with the same seed grows to N files (the scale steps do this).
//!
//! The counts are printed on stdout as `key=value` lines: `files`, `updates` and
//! `bytes` describe the whole corpus of `--n` files (skipped ones included),
//! `written` how many files this run wrote there, `live_*` the live folder.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use wirewatch::parse::{self, ParseOptions, SourceFile};
use wirewatch::record::Stamp;

/// Command line (`--help` lists it).
#[derive(clap::Parser)]
#[command(about = "Writes a deterministic corpus of article files for the benchmarks")]
struct Args {
    /// Folder for the corpus.
    #[arg(long)]
    out: PathBuf,
    /// Number of files.
    #[arg(long, default_value_t = 50_000)]
    n: usize,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of files that are updates of earlier stories.
    #[arg(long, default_value_t = 0.2)]
    updates: f64,
    /// Target size of a file, bytes.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// How many recent stories an update may come from.
    #[arg(long, default_value_t = 2000)]
    window: usize,
    /// Folder of fixture files and their manifest.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dev"))]
    fixtures: PathBuf,
    /// Time zone of the stamps.
    #[arg(long, default_value = "America/Toronto")]
    timezone: String,
    /// Folder for extra files to drop live (with --live-n).
    #[arg(long)]
    live_out: Option<PathBuf>,
    /// Number of live files.
    #[arg(long, default_value_t = 0)]
    live_n: usize,
    /// Generate the first K files without writing them (extends a corpus of K files).
    #[arg(long, default_value_t = 0)]
    skip: usize,
}

/// splitmix64: tiny, deterministic across platforms and crate versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo).max(1) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const DATELINES: &[&str] = &[
    "Montreal",
    "Montréal",
    "Québec",
    "Quebec",
    "Toronto",
    "Ottawa",
    "Gatineau",
    "Sherbrooke",
    "Trois-Rivières",
    "Saguenay",
    "Rimouski",
    "Laval",
    "Vancouver",
    "Calgary",
    "Halifax",
    "Winnipeg",
    "Kyiv",
    "Havana",
    "Lima",
    "Santiago",
    "Mexico City",
    "Bogota",
    "Caracas",
    "Buenos Aires",
    "Brasilia",
    "Paris",
    "Berlin",
    "London",
    "Brussels",
    "Geneva",
    "Madrid",
    "Rome",
    "Lisbon",
    "Dakar",
    "Rabat",
    "Beirut",
    "Jerusalem",
    "Tokyo",
    "Seoul",
    "Beijing",
    "Sydney",
    "Washington",
    "New York",
    "Atlanta",
    "Dallas",
    "Boston",
    "Chicago",
    "Ottawa and Toronto",
    "Paris et Montréal",
];

const VOCAB: &[&str] = &[
    "council",
    "harbour",
    "tribunal",
    "minister",
    "province",
    "coalition",
    "senate",
    "budget",
    "railway",
    "airport",
    "hospital",
    "school",
    "union",
    "strike",
    "tariff",
    "pipeline",
    "bridge",
    "highway",
    "election",
    "mayor",
    "governor",
    "treaty",
    "summit",
    "embassy",
    "border",
    "refugee",
    "wildfire",
    "flood",
    "drought",
    "harvest",
    "factory",
    "mine",
    "forest",
    "river",
    "festival",
    "museum",
    "theatre",
    "stadium",
    "league",
    "champion",
    "verdict",
    "inquiry",
    "audit",
    "reform",
    "pension",
    "housing",
    "tenant",
    "landlord",
    "transit",
    "subway",
    "ferry",
    "tunnel",
    "vaccine",
    "clinic",
    "nurse",
    "doctor",
    "teacher",
    "student",
    "campus",
    "research",
    "satellite",
    "rocket",
    "telescope",
    "glacier",
    "island",
    "village",
    "suburb",
    "district",
    "county",
    "parish",
    "cathedral",
    "bishop",
    "cardinal",
    "general",
    "admiral",
    "colonel",
    "police",
    "sheriff",
    "prosecutor",
    "lawyer",
    "judge",
    "jury",
    "witness",
    "merchant",
    "banker",
    "investor",
    "currency",
    "inflation",
    "interest",
    "market",
    "export",
    "import",
    "shipment",
    "cargo",
    "tanker",
    "convoy",
    "ceasefire",
    "protest",
    "petition",
    "referendum",
    "ballot",
    "candidate",
    "campaign",
    "delegate",
    "caucus",
    "cabinet",
    "ministry",
    "agency",
    "commission",
    "committee",
    "board",
    "charter",
    "statute",
    "decree",
    "ordinance",
    "licence",
    "permit",
    "quota",
    "subsidy",
    "grant",
    "loan",
    "deficit",
    "surplus",
    "revenue",
    "payroll",
    "workers",
    "farmers",
    "fishers",
];

const EN_MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const EN_ABBR: &[&str] = &[
    "Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.",
    "Dec.",
];
const FR_MONTHS: &[&str] = &[
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// A fixture split into lede (without dateline) and body lines.
struct Fixture {
    lede: String,
    body: Vec<String>,
}

fn load_fixtures(dir: &Path) -> (Vec<Fixture>, Vec<usize>) {
    let manifest = std::fs::read_to_string(dir.join("manifest.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("manifest.json").display()));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&manifest).expect("manifest json");
    let mut all = Vec::new();
    let mut bases = Vec::new();
    for row in rows {
        let file = row["file"].as_str().expect("file");
        let role = row["role"].as_str().unwrap_or("");
        let text = std::fs::read_to_string(dir.join(file)).expect("fixture is UTF-8");
        let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
        let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
        let Some(first) = lines.next() else { continue };
        let (_, lede) = parse::layout::split_dateline(first);
        let mut body = Vec::new();
        let mut in_stamps = true;
        for l in lines {
            if in_stamps && parse::stamp::classify(l).is_some() {
                continue;
            }
            in_stamps = false;
            body.push(l.to_owned());
        }
        if body.len() < 2 || lede.split_whitespace().count() < 6 {
            continue;
        }
        if role == "first" || role == "twin" {
            bases.push(all.len());
        }
        all.push(Fixture {
            lede: lede.to_owned(),
            body,
        });
    }
    assert!(!bases.is_empty(), "no usable fixtures in {}", dir.display());
    (all, bases)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lang {
    En,
    Fr,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    /// `Posted at 10:23 p.m.` / `Publié à 22 h 23`
    Time,
    /// `Posted yesterday at …` / `Publié hier à …`
    Yesterday,
    /// `Posted on October 2, 2022 at …` / `Publié le 2 octobre 2022 à …`
    DateTime,
    /// `Updated Oct. 3, 2022, 1:14 p.m.` (French: same as DateTime)
    Comma,
    /// `Posted on October 2` / `Publié le 2 octobre`
    DateOnly,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Posted,
    Updated,
}

fn en_time(h: i8, m: i8, rng: &mut Rng) -> String {
    let (h12, ap) = match h {
        0 => (12, "a.m."),
        1..=11 => (h, "a.m."),
        12 => (12, "p.m."),
        _ => (h - 12, "p.m."),
    };
    if rng.chance(0.1) {
        format!("{h12}:{m:02} {}", if ap == "a.m." { "AM" } else { "PM" })
    } else {
        format!("{h12}:{m:02} {ap}")
    }
}

fn fr_time(h: i8, m: i8, rng: &mut Rng) -> String {
    if rng.chance(0.25) {
        format!("{h}h{m:02}")
    } else {
        format!("{h} h {m:02}")
    }
}

fn stamp_line(kind: Kind, lang: Lang, style: Style, z: &Zoned, rng: &mut Rng) -> String {
    let (y, mo, d, h, mi) = (z.year(), z.month(), z.day(), z.hour(), z.minute());
    let mi0 = (mo - 1) as usize;
    match lang {
        Lang::En => {
            let p = match kind {
                Kind::Posted => *rng.pick(&["Posted", "Posted", "Posted", "Published"]),
                Kind::Updated => *rng.pick(&["Updated", "Updated", "Updated", "Modified"]),
            };
            let t = en_time(h, mi, rng);
            match style {
                Style::Time => format!("{p} at {t}"),
                Style::Yesterday => format!("{p} yesterday at {t}"),
                Style::DateTime => format!("{p} on {} {d}, {y} at {t}", EN_MONTHS[mi0]),
                Style::Comma => format!("{p} {} {d}, {y}, {t}", EN_ABBR[mi0]),
                Style::DateOnly => format!("{p} on {} {d}", EN_MONTHS[mi0]),
            }
        }
        Lang::Fr => {
            let p = match kind {
                Kind::Posted => "Publié",
                Kind::Updated => "Mis à jour",
            };
            let t = fr_time(h, mi, rng);
            let day = if d == 1 {
                "1er".to_owned()
            } else {
                d.to_string()
            };
            match style {
                Style::Time => format!("{p} à {t}"),
                Style::Yesterday => format!("{p} hier à {t}"),
                Style::DateTime | Style::Comma => {
                    format!("{p} le {day} {} {y} à {t}", FR_MONTHS[mi0])
                }
                Style::DateOnly => format!("{p} le {day} {}", FR_MONTHS[mi0]),
            }
        }
    }
}

/// A stamp form that fits a stamp seen from a capture moment.
fn choose_style(stamp: &Zoned, capture: &Zoned, rng: &mut Rng) -> Style {
    let within_day = capture.timestamp().as_second() - stamp.timestamp().as_second() < 86_000;
    let same_day = stamp.date() == capture.date();
    let day_before = capture.date().yesterday().ok() == Some(stamp.date());
    let r = rng.below(10);
    if same_day {
        match r {
            0..=5 => Style::Time,
            6..=8 => Style::DateTime,
            _ => Style::Comma,
        }
    } else if day_before {
        match r {
            0..=3 => Style::Yesterday,
            4..=5 if within_day => Style::Time,
            4..=8 => Style::DateTime,
            _ => Style::Comma,
        }
    } else if r < 7 {
        Style::DateTime
    } else {
        Style::Comma
    }
}

/// A story and what its newest version looked like (kept for the recent window only).
struct Story {
    id: String,
    lang: Lang,
    lede_line: String,
    posted_line: String,
    posted: Timestamp,
    posted_expect: String,
    newest: Timestamp,
    body: Vec<String>,
}

struct Gen {
    rng: Rng,
    tz: TimeZone,
    opts: ParseOptions,
    fixtures: Vec<Fixture>,
    bases: Vec<usize>,
    size: usize,
    ids: HashSet<String>,
    window: VecDeque<Story>,
    window_cap: usize,
    retries: u64,
    fallbacks: u64,
}

/// One generated file, checked.
struct Made {
    bytes: Vec<u8>,
    capture: Timestamp,
    sha: String,
}

fn ts(sec: i64) -> Timestamp {
    Timestamp::from_second(sec).expect("timestamp in range")
}

impl Gen {
    fn expect_at(&self, t: Timestamp) -> String {
        Stamp::at(t, &self.tz).to_string()
    }

    fn zoned(&self, t: Timestamp) -> Zoned {
        t.to_zoned(self.tz.clone())
    }

    /// Capture moment a little after `newest`: mostly within hours, sometimes the
    /// next day (so that `yesterday` forms appear).
    fn capture_after(&mut self, newest: Timestamp) -> Timestamp {
        let gap = if self.rng.chance(0.7) {
            self.rng.range(60, 4 * 3600)
        } else {
            self.rng.range(4 * 3600, 30 * 3600)
        };
        ts(newest.as_second() + gap)
    }

    fn vary_words(&mut self, text: &str, n: usize) -> String {
        let mut words: Vec<String> = text.split(' ').map(str::to_owned).collect();
        let candidates: Vec<usize> = words
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                let core = w.trim_end_matches(|c: char| !c.is_alphanumeric());
                core.len() >= 4 && core.chars().all(|c| c.is_ascii_lowercase())
            })
            .map(|(i, _)| i)
            .collect();
        for _ in 0..n {
            if candidates.is_empty() {
                break;
            }
            let i = *self.rng.pick(&candidates);
            let w = &words[i];
            let core_len = w.trim_end_matches(|c: char| !c.is_alphanumeric()).len();
            let tail = w[core_len..].to_owned();
            words[i] = format!("{}{tail}", self.rng.pick(VOCAB));
        }
        words.join(" ")
    }

    /// A body of about the target size: the fixture's, padded with other fixtures'.
    fn body_for(&mut self, base: usize) -> Vec<String> {
        let target =
            (self.size as f64 * (0.8 + 0.4 * (self.rng.next() % 1000) as f64 / 1000.0)) as usize;
        let mut body = self.fixtures[base].body.clone();
        let mut len: usize = body.iter().map(|l| l.len() + 1).sum::<usize>() + 300;
        while len < target {
            let f = self.rng.below(self.fixtures.len());
            let src = &self.fixtures[f].body;
            let start = self.rng.below(src.len());
            for l in &src[start..] {
                if len >= target {
                    break;
                }
                len += l.len() + 1;
                body.push(l.clone());
            }
        }
        body
    }

    fn edit_body(&mut self, body: &[String]) -> Vec<String> {
        let mut b = body.to_vec();
        for _ in 0..1 + self.rng.below(2) {
            let i = self.rng.below(b.len());
            b[i] = self.vary_words(&b[i].clone(), 2);
        }
        if b.len() > 4 && self.rng.chance(0.3) {
            let i = 1 + self.rng.below(b.len() - 1);
            b.remove(i);
        }
        if self.rng.chance(0.6) {
            let f = self.rng.below(self.fixtures.len());
            let src = &self.fixtures[f].body;
            let line = src[self.rng.below(src.len())].clone();
            let at = 1 + self.rng.below(b.len());
            b.insert(at, line);
        }
        b
    }

    fn render(&mut self, lines: &[&str], body: &[String]) -> Vec<u8> {
        let eol = if self.rng.chance(0.02) { "\r\n" } else { "\n" };
        let mut s = String::with_capacity(self.size + 512);
        if self.rng.chance(0.01) {
            s.push('\u{feff}');
        }
        for l in lines.iter().copied().chain(body.iter().map(String::as_str)) {
            s.push_str(l);
            s.push_str(eol);
        }
        s.into_bytes()
    }

    fn check(&self, bytes: &[u8], capture: Timestamp) -> Result<wirewatch::record::Record, String> {
        let file = SourceFile {
            path: PathBuf::from("gen.txt"),
            bytes: bytes.to_vec(),
            modified: Some(capture),
        };
        parse::parse(&file, None, &self.opts).map_err(|r| format!("{:?}: {}", r.kind, r.message))
    }

    /// A new story: returns the file, or None when the sampled stamps did not
    /// resolve as intended or the id was taken (the caller samples again).
    fn try_new_story(&mut self) -> Option<Made> {
        let base = *self.rng.pick(&self.bases);
        let dateline = if self.rng.chance(0.95) {
            Some(*self.rng.pick(DATELINES))
        } else {
            None
        };
        let swaps = 1 + self.rng.below(2);
        let lede = self.vary_words(&self.fixtures[base].lede.clone(), swaps);
        let lede_line = match dateline {
            Some(d) => format!("({d}) {lede}"),
            None => lede,
        };
        let lang = if self.rng.chance(0.2) {
            Lang::Fr
        } else {
            Lang::En
        };
        // 2022-01-01 .. 2024-01-01, whole minutes.
        let posted = ts(1_640_995_200 + self.rng.range(0, 730 * 1440) * 60);
        let date_only = self.rng.chance(0.04);
        let updated = (!date_only && self.rng.chance(0.5))
            .then(|| self.rng.range(10, 360))
            .map(|m| ts(posted.as_second() + m * 60));
        let newest = updated.unwrap_or(posted);
        let capture = if date_only {
            ts(posted.as_second() + self.rng.range(60, 2 * 86_400))
        } else {
            self.capture_after(newest)
        };
        let cz = self.zoned(capture);
        let pz = self.zoned(posted);
        let (posted_line, posted_expect) = if date_only {
            let d: Date = pz.date();
            (
                stamp_line(Kind::Posted, lang, Style::DateOnly, &pz, &mut self.rng),
                d.to_string(),
            )
        } else {
            let st = choose_style(&pz, &cz, &mut self.rng);
            (
                stamp_line(Kind::Posted, lang, st, &pz, &mut self.rng),
                self.expect_at(posted),
            )
        };
        let updated_line = updated.map(|u| {
            let uz = self.zoned(u);
            let st = choose_style(&uz, &cz, &mut self.rng);
            stamp_line(Kind::Updated, lang, st, &uz, &mut self.rng)
        });
        let body = self.body_for(base);
        let mut head = vec![lede_line.as_str(), posted_line.as_str()];
        if let Some(u) = &updated_line {
            head.push(u);
        }
        let bytes = self.render(&head, &body);
        let rec = match self.check(&bytes, capture) {
            Ok(r) => r,
            Err(e) => panic!(
                "generated file rejected ({e}):\n{}",
                String::from_utf8_lossy(&bytes)
            ),
        };
        let got_posted = rec.posted_at.as_ref().map(ToString::to_string);
        let got_updated = rec.updated_at.as_ref().map(ToString::to_string);
        let want_updated = updated.map(|u| self.expect_at(u));
        if got_posted.as_deref() != Some(posted_expect.as_str()) || got_updated != want_updated {
            self.fallbacks += 1;
            return None;
        }
        if !rec.warnings.is_empty() || self.ids.contains(&rec.article_id) {
            return None;
        }
        self.ids.insert(rec.article_id.clone());
        if !date_only {
            self.window.push_back(Story {
                id: rec.article_id.clone(),
                lang,
                lede_line,
                posted_line,
                posted,
                posted_expect,
                newest,
                body,
            });
            if self.window.len() > self.window_cap {
                self.window.pop_front();
            }
        }
        Some(Made {
            bytes,
            capture,
            sha: rec.source.sha256,
        })
    }

    /// An update of a recent story, or None when this sample did not check out.
    fn try_update(&mut self) -> Option<Made> {
        if self.window.is_empty() {
            return None;
        }
        let wi = self.rng.below(self.window.len());
        let (newest, posted, lang) = {
            let s = &self.window[wi];
            (s.newest, s.posted, s.lang)
        };
        let updated = ts(newest.as_second() + self.rng.range(5, 240) * 60);
        let capture = self.capture_after(updated);
        let cz = self.zoned(capture);
        let uz = self.zoned(updated);
        let st = choose_style(&uz, &cz, &mut self.rng);
        let updated_line = stamp_line(Kind::Updated, lang, st, &uz, &mut self.rng);
        let body = self.edit_body(&self.window[wi].body.clone());
        let want_updated = self.expect_at(updated);
        // The story's own Posted line; if it reads differently from this capture
        // moment (a relative form seen a day later), the same moment written in full.
        let mut posted_line = self.window[wi].posted_line.clone();
        for attempt in 0..2 {
            if attempt == 1 {
                let pz = self.zoned(posted);
                posted_line = stamp_line(Kind::Posted, lang, Style::DateTime, &pz, &mut self.rng);
                self.fallbacks += 1;
            }
            let s = &self.window[wi];
            let head = [
                s.lede_line.clone(),
                posted_line.clone(),
                updated_line.clone(),
            ];
            let head: Vec<&str> = head.iter().map(String::as_str).collect();
            let bytes = self.render(&head, &body);
            let rec = self.check(&bytes, capture).ok()?;
            let s = &self.window[wi];
            let ok_posted = rec.posted_at.as_ref().map(ToString::to_string).as_deref()
                == Some(s.posted_expect.as_str());
            let ok = ok_posted
                && rec.updated_at.as_ref().map(ToString::to_string).as_deref()
                    == Some(want_updated.as_str())
                && rec.article_id == s.id
                && rec.warnings.is_empty();
            if ok {
                let s = &mut self.window[wi];
                s.newest = updated;
                s.body = body;
                return Some(Made {
                    bytes,
                    capture,
                    sha: rec.source.sha256,
                });
            }
        }
        None
    }

    fn next_file(&mut self, update: bool) -> (Made, bool) {
        if update {
            for _ in 0..20 {
                if let Some(m) = self.try_update() {
                    return (m, true);
                }
                self.retries += 1;
            }
        }
        for _ in 0..200 {
            if let Some(m) = self.try_new_story() {
                return (m, false);
            }
            self.retries += 1;
        }
        panic!("could not generate a new story that checks out in 200 attempts");
    }
}

fn write_file(dir: &Path, index: usize, m: &Made) -> std::io::Result<()> {
    let path = dir.join(format!("{index:07}_{}.txt", &m.sha[..16]));
    let mut f = std::fs::File::create(&path)?;
    f.write_all(&m.bytes)?;
    let secs = u64::try_from(m.capture.as_second()).unwrap_or(0);
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))?;
    Ok(())
}

fn main() {
    let Args {
        out,
        n,
        seed,
        updates,
        size,
        window,
        fixtures,
        timezone: tz_name,
        live_out,
        live_n,
        skip,
    } = clap::Parser::parse();
    let window = window.max(1);
    if live_n > 0 && live_out.is_none() {
        eprintln!("gen_corpus: --live-n needs --live-out");
        std::process::exit(2);
    }
    for d in std::iter::once(&out).chain(live_out.as_ref()) {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    }
    let (fx, bases) = load_fixtures(&fixtures);
    let opts = ParseOptions::new(&tz_name).expect("time zone");
    let mut g = Gen {
        rng: Rng(seed),
        tz: opts.timezone.clone(),
        opts,
        fixtures: fx,
        bases,
        size,
        ids: HashSet::new(),
        window: VecDeque::new(),
        window_cap: window,
        retries: 0,
        fallbacks: 0,
    };
    let started = Instant::now();
    let total = n + live_n;
    // [main, live]: files, updates, bytes
    let mut counts = [[0u64; 3]; 2];
    let mut written = 0u64;
    for i in 0..total {
        let update = i > 0 && g.rng.chance(updates);
        let (made, was_update) = g.next_file(update);
        let (dir, c) = if i < n {
            (&out, &mut counts[0])
        } else {
            (live_out.as_ref().expect("live dir"), &mut counts[1])
        };
        if i >= skip {
            write_file(dir, i, &made).unwrap_or_else(|e| panic!("write {}: {e}", dir.display()));
            written += 1;
        }
        c[0] += 1;
        c[1] += u64::from(was_update);
        c[2] += made.bytes.len() as u64;
        if total >= 100_000 && (i + 1) % (total / 10) == 0 {
            eprintln!(
                "gen_corpus: {}/{total} files ({:.0?})",
                i + 1,
                started.elapsed()
            );
        }
    }
    let el = started.elapsed();
    eprintln!(
        "gen_corpus: {total} files ({} new stories, {} updates) in {el:.1?}; {} samples redrawn, {} stamp forms rewritten",
        counts[0][0] + counts[1][0] - counts[0][1] - counts[1][1],
        counts[0][1] + counts[1][1],
        g.retries,
        g.fallbacks
    );
    println!("files={}", counts[0][0]);
    println!("updates={}", counts[0][1]);
    println!("bytes={}", counts[0][2]);
    println!("written={written}");
    println!("live_files={}", counts[1][0]);
    println!("live_updates={}", counts[1][1]);
    println!("live_bytes={}", counts[1][2]);
    println!("seed={seed}");
}
