//! Crash safety: start the daemon, drop files (first versions, updates, duplicates,
//! stale re-deliveries, bad files) while killing it with SIGKILL at random moments,
//! restart, and finally compare the output with what the manifest says must be
//! there: every group's newest version exactly once, no older version after a newer
//! one, no line doubled, no partial line, every bad file rejected exactly once.
//!
//! CI runs 25 kills (seeded: `WIREWATCH_CRASH_SEED`, default 7). The long mode:
//! `WIREWATCH_CRASH_KILLS=500 cargo test --release --features fault-injection --test crash`.
//! With `fault-injection` (as `scripts/test.sh` builds) the state trains its snapshot
//! dictionary after 120 snapshots instead of 1,000, so kills land around the training
//! and most updates are diffed against dictionary snapshots.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Daemon;

/// xorshift64*: a tiny seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Snapshots that trigger the dictionary's training in a `fault-injection` build.
const DICT_TRAIN_AT: u64 = 120;

#[test]
fn kill_nine_at_random_moments_loses_and_doubles_nothing() {
    let kills = env_u64("WIREWATCH_CRASH_KILLS", 25);
    let seed = env_u64("WIREWATCH_CRASH_SEED", 7);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let manifest = common::manifest();
    // Small batches: many commits, so kills land mid-write and mid-commit too.
    let mut d = Daemon::new("[output]\nbatch_records = 4\nbatch_ms = 1\n[watch]\nsettle_ms = 50");
    d.env
        .push(("WIREWATCH_DICT_TRAIN_AT".into(), DICT_TRAIN_AT.to_string()));

    // What to drop, in order: the corpus, with bad files and extra copies mixed in.
    let mut drops: Vec<(String, Vec<u8>, Option<std::time::SystemTime>)> = Vec::new();
    let mut bad = Vec::new();
    for (i, e) in manifest.iter().enumerate() {
        let bytes = std::fs::read(common::fixtures().join("dev").join(&e.file)).unwrap();
        let mtime = Some(common::system_time(&e.reference_time));
        drops.push((format!("{i:04}-{}", e.file), bytes.clone(), mtime));
        if i % 25 == 7 {
            let name = format!("{i:04}-bad.txt");
            let body: &[u8] = match i % 3 {
                0 => b"",
                1 => b"  \n\n",
                _ => b"(Paris) broken\0file\n",
            };
            bad.push(name.clone());
            drops.push((name, body.to_vec(), None));
        }
        if i % 40 == 13 {
            drops.push((format!("{i:04}-copy-{}", e.file), bytes, mtime));
        }
    }

    // When the corpus runs out before the kills do, it is dropped again under new
    // names (every version is then a duplicate or stale, every bad file a new reject).
    let mut next = 0;
    let mut dropped = 0;
    let mut rejected_names = Vec::new();
    let mut drop_next = |d: &Daemon, next: &mut usize, dropped: &mut usize| {
        let round = *next / drops.len();
        let (name, bytes, mtime) = &drops[*next % drops.len()];
        let name = if round == 0 {
            name.clone()
        } else {
            format!("r{round}-{name}")
        };
        if bad.iter().any(|b| name.ends_with(b.as_str())) {
            rejected_names.push(name.clone());
        }
        d.drop_file(&name, bytes, *mtime);
        *next += 1;
        *dropped += 1;
    };
    let mut done_kills = 0;
    while done_kills < kills {
        d.start();
        let burst = 1 + rng.below(30) as usize;
        for _ in 0..burst {
            drop_next(&d, &mut next, &mut dropped);
            if rng.below(4) == 0 {
                std::thread::sleep(Duration::from_micros(rng.below(3000)));
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        d.kill9();
        done_kills += 1;
    }
    // The rest of the round lands while the daemon is down; one last pass finishes it.
    while next % drops.len() != 0 {
        drop_next(&d, &mut next, &mut dropped);
    }
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");

    let text = std::fs::read_to_string(d.path("out/articles.jsonl")).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "output ends with a partial line"
    );
    let recs = d.records(); // panics on any line that is not JSON
    common::check_corpus_output(&manifest, &recs);

    let rejects = d.rejects();
    let mut per_file: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rejects {
        let name = r["path"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        *per_file.entry(name).or_default() += 1;
    }
    for b in &rejected_names {
        assert_eq!(
            per_file.get(b),
            Some(&1),
            "bad file {b} rejected {:?} times",
            per_file.get(b)
        );
    }
    assert_eq!(
        per_file.len(),
        rejected_names.len(),
        "unexpected rejects: {per_file:?}"
    );
    let log = d.log();
    if cfg!(feature = "fault-injection") {
        assert!(
            log.contains("trained the snapshot dictionary")
                || err.contains("trained the snapshot dictionary"),
            "no snapshot dictionary was trained (WIREWATCH_DICT_TRAIN_AT={DICT_TRAIN_AT})"
        );
    }
    eprintln!(
        "crash test: recoveries that adopted lines: {}, torn tails cut: {}",
        log.matches("adopted lines").count(),
        log.matches("cutting an incomplete").count()
    );
    eprintln!(
        "crash test: {done_kills} kills survived, {} files dropped, {} records, {} rejects, 0 lost, 0 doubled",
        dropped,
        recs.len(),
        rejects.len()
    );
}
