//! The NATS JetStream sink and the cluster-wide dedupe ledger against a real 3-node
//! cluster on 127.0.0.1 (`scripts/nats-cluster.sh start`; `scripts/test.sh` starts
//! it and exports `WIREWATCH_NATS_URLS`). Without that variable every test here
//! that needs the cluster prints `skipped: WIREWATCH_NATS_URLS not set` and passes,
//! except under CI (`CI` set), where a missing cluster fails the test.
//!
//! The tests take one lock, so they run one at a time: one of them kills a node.
//! Every stream and bucket gets a unique name and is deleted at the end.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::Daemon;
use serde_json::Value;
use wirewatch::config::nats::NatsConfig;
use wirewatch::nats::tail::{read_all, StreamRecord};

static SERIAL: Mutex<()> = Mutex::new(());

fn nats_urls() -> Option<String> {
    match std::env::var("WIREWATCH_NATS_URLS") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ if std::env::var_os("CI").is_some() => {
            panic!("WIREWATCH_NATS_URLS not set under CI: run the tests with scripts/test.sh, which starts the NATS cluster")
        }
        _ => {
            println!("skipped: WIREWATCH_NATS_URLS not set");
            None
        }
    }
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 100_000_000;
    format!("{prefix}_{}_{t}", std::process::id())
}

fn nats_cfg(urls: &str) -> NatsConfig {
    NatsConfig {
        urls: urls.split(',').map(str::to_owned).collect(),
        ..NatsConfig::default()
    }
}

async fn js(urls: &str) -> jetstream::Context {
    let cfg = nats_cfg(urls);
    let client = wirewatch::nats::connect(&cfg, "test").await.unwrap();
    wirewatch::nats::context(client, &cfg)
}

/// Reads the whole stream, retrying while the cluster elects a leader (≤ 60 s).
fn read_stream(urls: &str, stream: &str) -> Vec<StreamRecord> {
    rt().block_on(async {
        let js = js(urls).await;
        let start = Instant::now();
        loop {
            match read_all(&js, stream).await {
                Ok(v) => return v,
                Err(e) if start.elapsed() < Duration::from_secs(60) => {
                    eprintln!("read_stream: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("cannot read stream {stream}: {e}"),
            }
        }
    })
}

fn cleanup(urls: &str, stream: &str, bucket: Option<&str>) {
    rt().block_on(async {
        let js = js(urls).await;
        let _ = js.delete_stream(stream).await;
        let _ = js.delete_stream(format!("{stream}_REJECTS")).await;
        if let Some(b) = bucket {
            let _ = js.delete_key_value(b).await;
        }
    });
}

/// The subject prefix of a test stream (streams may not share subjects).
fn prefix_of(stream: &str) -> String {
    stream.to_ascii_lowercase()
}

/// A daemon whose records go to `stream` (on `<prefix_of(stream)>.>`); with
/// `bucket`, dedupe is cluster-wide.
/// A fresh stream named `name` (created as the daemon would) and a subject in it:
/// (context, stream, subject).
async fn test_stream(
    urls: &str,
    name: &str,
) -> (jetstream::Context, jetstream::stream::Stream, String) {
    let mut cfg = nats_cfg(urls);
    cfg.stream = name.to_owned();
    cfg.subject_prefix = prefix_of(name);
    let js = js(urls).await;
    let stream = wirewatch::nats::until_ok("stream", || wirewatch::nats::ensure_stream(&js, &cfg))
        .await
        .unwrap();
    let subject = format!("{}.x.0001", cfg.subject_prefix);
    (js, stream, subject)
}

/// Publishes `{}` with `Nats-Msg-Id: id` and, when given, a subject fence.
async fn publish_raw(
    js: &jetstream::Context,
    subject: &str,
    id: &str,
    fence: Option<u64>,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID};
    let mut h = async_nats::HeaderMap::new();
    h.insert(NATS_MESSAGE_ID, id);
    if let Some(f) = fence {
        h.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, f.to_string().as_str());
    }
    js.publish_with_headers(subject.to_owned(), h, "{}".into())
        .await
        .unwrap()
        .await
}

fn nats_daemon(urls: &str, stream: &str, bucket: Option<&str>, extra: &str) -> Daemon {
    let list: Vec<String> = urls.split(',').map(|u| format!("{u:?}")).collect();
    let mut cfg = format!(
        "[sink]\nkind = \"nats\"\n[nats]\nurls = [{}]\nstream = {stream:?}\nsubject_prefix = {:?}\nreplicas = 3\nrequest_timeout_ms = 2000\n",
        list.join(", "),
        prefix_of(stream)
    );
    if let Some(b) = bucket {
        cfg.push_str(&format!(
            "[dedupe]\nstore = \"nats\"\nkv_bucket = {b:?}\nkv_replicas = 3\n"
        ));
    }
    cfg.push_str(extra);
    Daemon::new(&cfg)
}

fn once_with_env(d: &Daemon, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut c = d.cmd();
    c.args(["run", "--once", "--config"]).arg(d.config_path());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn seed_bytes() -> Vec<u8> {
    std::fs::read(common::seed()).unwrap()
}

fn seed_mtime() -> std::time::SystemTime {
    common::system_time("2022-10-03T02:55:00Z")
}

fn stamp_of(r: &Value) -> String {
    r["updated_at"]
        .as_str()
        .or(r["posted_at"].as_str())
        .unwrap_or("none")
        .to_owned()
}

fn nats_dir() -> PathBuf {
    std::env::var_os("WIREWATCH_NATS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/nats"))
}

fn cluster_script(args: &[&str]) {
    let st =
        Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/nats-cluster.sh"))
            .args(args)
            .env("WIREWATCH_NATS_DIR", nats_dir())
            .status()
            .unwrap();
    assert!(st.success(), "nats-cluster.sh {args:?} failed");
}

/// `run --once` with the NATS sink: the stream is created when missing with the
/// configured replicas and duplicate window; every record is one message on
/// `<prefix>.<dateline-slug>.<article_id>` with `Nats-Msg-Id` `<article_id>:<stamp>`;
/// `wirewatch tail --nats --json` prints it back; a second pass publishes nothing.
#[test]
fn publish_read_back_and_subject_naming() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let stream = unique("WWTEST_PUB");
    let d = nats_daemon(&urls, &stream, None, "[nats]\nduplicate_window_s = 300\n");
    d.drop_file("seed.txt", &seed_bytes(), Some(seed_mtime()));
    // A story with no dateline goes to articles.none.<id>.
    let manifest = common::manifest();
    let undated = manifest.iter().find(|e| e.dateline.is_none());
    if let Some(e) = undated {
        d.drop_fixture(e, "undated.txt");
    }
    let (code, err) = once_with_env(&d, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !d.path("out/articles.jsonl").exists(),
        "records must not go to the file"
    );
    let msgs = read_stream(&urls, &stream);
    assert_eq!(msgs.len(), 1 + usize::from(undated.is_some()), "{msgs:?}");
    let seed = msgs
        .iter()
        .find(|m| m.record["dateline"] == "Washington")
        .expect("seed record");
    let prefix = prefix_of(&stream);
    assert_eq!(
        seed.subject,
        format!("{prefix}.washington.1839577d31e01d1b")
    );
    assert_eq!(
        seed.msg_id.as_deref(),
        Some("1839577d31e01d1b:2022-10-02T22:53:00-04:00")
    );
    assert_eq!(seed.record["revision"], 1);
    assert!(seed.record["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with("/inbox/seed.txt"));
    if undated.is_some() {
        let m = msgs
            .iter()
            .find(|m| m.record["dateline"].is_null())
            .unwrap();
        let id = m.record["article_id"].as_str().unwrap();
        assert_eq!(m.subject, format!("{prefix}.none.{id}"));
    }
    // The stream was created with the configured settings.
    let info = rt().block_on(async {
        let js = js(&urls).await;
        let mut s = js.get_stream(&stream).await.unwrap();
        s.info().await.unwrap().clone()
    });
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(300));
    assert_eq!(info.config.subjects, vec![format!("{prefix}.>")]);
    assert!(info.cluster.and_then(|c| c.leader).is_some());

    // `tail --nats --json` prints the same records, and stops once it has caught up.
    let out = Command::new(common::bin())
        .args(["tail", "--nats", &urls, "--json"])
        .args(["--subject", &format!("{prefix}.>")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), msgs.len());
    assert_eq!(lines[0], msgs[0].record);
    // A subject of the stream that holds nothing: nothing printed, and it stops at once.
    let out = Command::new(common::bin())
        .args(["tail", "--nats", &urls, "--json"])
        .args(["--subject", &format!("{prefix}.nowhere.>")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Nothing new on a second pass.
    let (code, err) = once_with_env(&d, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(read_stream(&urls, &stream).len(), msgs.len());

    // A daemon whose subjects the existing stream does not hold stops at once.
    let other = nats_daemon(
        &urls,
        &stream,
        None,
        &format!("[nats]\nsubject_prefix = \"{prefix}-other\"\n"),
    );
    other.drop_file("seed.txt", &seed_bytes(), Some(seed_mtime()));
    let (code, err) = once_with_env(&other, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("records would go nowhere"), "{err}");
    cleanup(&urls, &stream, None);
}

/// The fault hook aborts the daemon right after the publish is acknowledged and
/// before its local commit; the restarted daemon processes the file again, and its
/// re-publish is dropped by the stream's duplicate window: the stream holds the
/// record once. `with_ledger`: the same with the cluster-wide ledger (the claim is
/// there, not marked published; the fence also recognises the stored copy).
fn kill_between_publish_and_commit(with_ledger: bool) {
    let Some(urls) = nats_urls() else { return };
    if !cfg!(feature = "fault-injection") {
        common::skip_or_fail("the fault hook needs `--features fault-injection` (scripts/test.sh)");
        return;
    }
    let _g = serial();
    let stream = unique("WWTEST_KILL");
    let bucket = with_ledger.then(|| unique("wwtest-kill"));
    let d = nats_daemon(&urls, &stream, bucket.as_deref(), "");
    d.drop_file("seed.txt", &seed_bytes(), Some(seed_mtime()));
    let (code, err) = once_with_env(&d, &[("WIREWATCH_FAULT", "kill_after_publish")]);
    assert_eq!(code, None, "must die by a signal: {err}");
    assert!(err.contains("kill_after_publish"), "{err}");
    assert_eq!(read_stream(&urls, &stream).len(), 1);

    let (code, err) = once_with_env(&d, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("already in the stream"),
        "the re-publish must be dropped by the stream: {err}"
    );
    let msgs = read_stream(&urls, &stream);
    assert_eq!(msgs.len(), 1, "the stream holds the record once: {msgs:?}");
    // Now committed: a third pass does nothing.
    let (code, err) = once_with_env(&d, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 unchanged"), "{err}");
    assert_eq!(read_stream(&urls, &stream).len(), 1);
    cleanup(&urls, &stream, bucket.as_deref());
}

#[test]
fn kill_between_publish_and_commit_local_dedupe() {
    kill_between_publish_and_commit(false);
}

#[test]
fn kill_between_publish_and_commit_cluster_dedupe() {
    kill_between_publish_and_commit(true);
}

/// Two ledgers (two connections, as two hosts) claim every version of the same
/// stories at the same moment, in opposite orders. Compare-and-set lets exactly one
/// write each version; no claim ever goes back to an older stamp; the bucket ends
/// with every story's newest version.
#[test]
fn ledger_cas_race_two_ledgers() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let bucket = unique("wwtest-race");
    let manifest = common::manifest();
    // Parse every version of the multi-version groups.
    let opts = wirewatch::parse::ParseOptions::new("America/Toronto").unwrap();
    let mut groups: BTreeMap<String, Vec<wirewatch::record::Record>> = BTreeMap::new();
    for e in &manifest {
        let f = wirewatch::parse::read_file(
            &common::fixtures().join("dev").join(&e.file),
            &opts.limits,
        )
        .unwrap();
        let reference: jiff::Timestamp = e.reference_time.parse().unwrap();
        if let Ok(r) = wirewatch::parse::parse(&f, Some(reference), &opts) {
            groups.entry(e.group.clone()).or_default().push(r);
        }
    }
    groups.retain(|_, v| v.len() > 1);
    let records: Vec<wirewatch::record::Record> = groups.into_values().flatten().take(60).collect();
    assert!(records.len() >= 20, "corpus has multi-version stories");
    let rt = rt();
    let (a, b) = rt.block_on(async {
        let ctx = js(&urls).await;
        let cfg = wirewatch::nats::DedupeConfig {
            kv_bucket: bucket.clone(),
            ..Default::default()
        };
        let kv_a = wirewatch::nats::ledger::ensure_bucket(&ctx, &cfg, 1)
            .await
            .unwrap();
        let ctx_b = js(&urls).await;
        let kv_b = ctx_b.get_key_value(&bucket).await.unwrap();
        (
            Arc::new(wirewatch::nats::ledger::Claims::new(kv_a)),
            Arc::new(wirewatch::nats::ledger::Claims::new(kv_b)),
        )
    });
    let run = |shared: Arc<wirewatch::nats::ledger::Claims>,
               order: Vec<wirewatch::record::Record>| async move {
        let mut got = Vec::new();
        for r in order {
            let (v, _) = shared.claim(&r, 1).await;
            let mid = wirewatch::nats::msg_id(&r.article_id, r.version_stamp());
            got.push((
                r.article_id.clone(),
                r.version_stamp().cloned(),
                v,
                shared.claim_for(&mid),
            ));
        }
        got
    };
    let mut rev = records.clone();
    rev.reverse();
    let (ga, gb) = rt.block_on(async {
        let ta = tokio::spawn(run(a.clone(), records.clone()));
        let tb = tokio::spawn(run(b.clone(), rev));
        (ta.await.unwrap(), tb.await.unwrap())
    });
    // Each (article, stamp) is written by at most one ledger: a write creates a
    // claim whose bucket revision is new; the other side sees it as claimed.
    let mut writes: HashMap<(String, String), Vec<u64>> = HashMap::new();
    for (id, stamp, v, claim) in ga.iter().chain(gb.iter()) {
        if let (wirewatch::dedupe::Verdict::Emit { .. }, Some(c)) = (v, claim) {
            writes
                .entry((
                    id.clone(),
                    stamp.as_ref().map(ToString::to_string).unwrap_or_default(),
                ))
                .or_default()
                .push(c.kv_revision);
        }
    }
    for (k, revs) in &writes {
        let distinct: HashSet<&u64> = revs.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "{k:?} claimed at two bucket revisions: {revs:?}"
        );
    }
    // Per ledger, the stamps it was told to emit for one article never go back.
    for got in [&ga, &gb] {
        let mut newest: HashMap<&str, &Option<wirewatch::record::Stamp>> = HashMap::new();
        for (id, stamp, v, _) in got {
            if matches!(v, wirewatch::dedupe::Verdict::Emit { .. }) {
                if let Some(prev) = newest.get(id.as_str()) {
                    assert!(stamp >= *prev, "{id}: emitted {stamp:?} after {prev:?}");
                }
                newest.insert(id, stamp);
            }
        }
    }
    // The bucket holds the newest version of every story.
    rt.block_on(async {
        let mut newest: HashMap<&str, Option<wirewatch::record::Stamp>> = HashMap::new();
        for r in &records {
            let e = newest.entry(&r.article_id).or_insert(None);
            if r.version_stamp().cloned() > *e {
                *e = r.version_stamp().cloned();
            }
        }
        for (id, stamp) in newest {
            let v = a.store().get(id).await.unwrap().expect("entry");
            let e: wirewatch::nats::ledger::LedgerEntry = serde_json::from_slice(&v).unwrap();
            assert_eq!(e.state.stamp, stamp, "{id}");
        }
    });
    rt.block_on(async {
        let _ = js(&urls).await.delete_key_value(&bucket).await;
    });
}

/// The stream leader's node, from the stream info.
fn stream_leader(urls: &str, stream: &str) -> String {
    rt().block_on(async {
        let js = js(urls).await;
        let start = Instant::now();
        loop {
            if let Ok(mut s) = js.get_stream(stream).await {
                if let Ok(info) = s.info().await {
                    if let Some(l) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                        return l;
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no stream leader"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// The done-when test: two daemons on two watch folders, the same stories dropped
/// into both at the same time, the stream leader's node killed mid-run (SIGKILL by
/// the PID in its pid file) and restarted afterwards. The stream then holds every
/// story's newest version exactly once, never an older version after a newer one,
/// and no version twice.
///
/// It once found an older version stored after a newer one across the failover
/// (a publish accepted by the dying leader, committed by the next one after a fenced
/// message it had not applied yet); the sink's check after each acknowledgement
/// (`nats::sink::keep_in_order`, tested alone below) now removes such a message.
/// The log lines of every version stored out of order are printed when it fails.
#[test]
fn two_daemons_same_stories_leader_killed() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let stream = unique("WWTEST_TWO");
    let bucket = unique("wwtest-two");
    let manifest = common::manifest();
    // Small batches and quick settles: many commits, so the kill lands mid-stream.
    let extra = "[output]\nbatch_records = 8\nbatch_ms = 2\n[watch]\nsettle_ms = 50\n[log]\nlevel = \"info,wirewatch::nats=debug\"\n";
    let mut a = nats_daemon(&urls, &stream, Some(&bucket), extra);
    let mut b = nats_daemon(&urls, &stream, Some(&bucket), extra);
    a.start();
    b.start();
    // The stream exists once a daemon is connected.
    let leader = stream_leader(&urls, &stream);
    // Both folders get the stories in the same order at the same time: folder A each
    // story's versions in manifest order (first, update, duplicate, stale, …),
    // folder B the same versions in reverse. The same story reaches both daemons at
    // the same moment, with the newest version first on one of them.
    let n = manifest.len();
    let mut order_b: Vec<(usize, &common::Entry)> = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let j = (i..n)
            .find(|&j| manifest[j].group != manifest[i].group)
            .unwrap_or(n);
        order_b.extend((i..j).rev().map(|k| (k, &manifest[k])));
        i = j;
    }
    let killed = Mutex::new(None::<String>);
    std::thread::scope(|s| {
        s.spawn(|| {
            for (i, e) in manifest.iter().enumerate() {
                a.drop_fixture(e, &format!("{i:04}-{}", e.file));
                if i == n / 3 {
                    // Kill the stream leader's node.
                    let node = leader.trim_start_matches('n').to_owned();
                    let pid_file = nats_dir().join(format!("n{node}.pid"));
                    let pid: i32 = std::fs::read_to_string(&pid_file)
                        .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()))
                        .trim()
                        .parse()
                        .unwrap();
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    eprintln!("killed stream leader {leader} (pid {pid}) after {i} files");
                    *killed.lock().unwrap() = Some(node);
                }
                if i % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(15));
                }
            }
        });
        s.spawn(|| {
            for (step, (i, e)) in order_b.iter().enumerate() {
                b.drop_fixture(e, &format!("{i:04}-{}", e.file));
                if step % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(15));
                }
            }
        });
    });
    let node = killed.lock().unwrap().clone().expect("leader killed");
    // Newest stamp of every group, and which article_ids belong to which group.
    let mut newest: BTreeMap<&str, String> = BTreeMap::new();
    for e in &manifest {
        let s = e.updated.clone().or(e.posted.clone()).unwrap_or_default();
        let cur = newest.entry(&e.group).or_default();
        if s > *cur {
            *cur = s;
        }
    }
    let group_of = |r: &Value| -> Option<String> {
        let f = r["source"]["path"].as_str()?.rsplit('/').next()?.to_owned();
        manifest
            .iter()
            .find(|m| f.ends_with(m.file.as_str()))
            .map(|m| m.group.clone())
    };
    let complete = |msgs: &[StreamRecord]| {
        newest.iter().all(|(g, stamp)| {
            msgs.iter()
                .any(|m| group_of(&m.record).as_deref() == Some(g) && stamp_of(&m.record) == *stamp)
        })
    };
    // Wait (≤ 120 s) until every story's newest version is in the stream and both
    // daemons have processed every file; restart the node meanwhile.
    let start = Instant::now();
    let mut restarted = false;
    loop {
        if !restarted && start.elapsed() > Duration::from_secs(3) {
            cluster_script(&["start-node", &node]);
            restarted = true;
        }
        let msgs = read_stream(&urls, &stream);
        if restarted && complete(&msgs) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "stream incomplete after 120 s: {} messages\nA log tail: {}\nB log tail: {}",
            msgs.len(),
            tail(&a.log()),
            tail(&b.log())
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Let the daemons finish what they hold, then stop them cleanly.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(a.stop(), 0, "{}", tail(&a.log()));
    assert_eq!(b.stop(), 0, "{}", tail(&b.log()));

    let msgs = read_stream(&urls, &stream);
    let mut seen: HashSet<String> = HashSet::new();
    let mut last: HashMap<String, String> = HashMap::new();
    for m in &msgs {
        let id = m.record["article_id"].as_str().unwrap().to_owned();
        let stamp = stamp_of(&m.record);
        assert!(
            seen.insert(format!("{id}:{stamp}")),
            "version {id} {stamp} is twice in the stream"
        );
        assert_eq!(m.msg_id.as_deref(), Some(format!("{id}:{stamp}").as_str()));
        if let Some(prev) = last.get(&id) {
            if wirewatch::record::Stamp::parse(&stamp) <= wirewatch::record::Stamp::parse(prev) {
                for (who, log) in [("A", a.log()), ("B", b.log())] {
                    for l in log.lines().filter(|l| l.contains(id.as_str())) {
                        eprintln!("{who}: {l}");
                    }
                }
            }
            assert!(
                wirewatch::record::Stamp::parse(&stamp) > wirewatch::record::Stamp::parse(prev),
                "{id}: {stamp} after {prev} (seq {})",
                m.seq
            );
        }
        last.insert(id, stamp);
    }
    for (g, stamp) in &newest {
        let n = msgs
            .iter()
            .filter(|m| group_of(&m.record).as_deref() == Some(g) && stamp_of(&m.record) == *stamp)
            .count();
        assert_eq!(
            n, 1,
            "group {g}: newest version {stamp} in the stream {n} times"
        );
    }
    let log = format!("{}{}", a.log(), b.log());
    eprintln!(
        "two daemons: {} messages for {} stories; leader n{node} killed and restarted; \
         publish retries {}, re-publishes dropped {}, overtaken {}, lost races {}",
        msgs.len(),
        newest.len(),
        log.matches("publish not acknowledged").count(),
        log.matches("already in the stream").count(),
        log.matches("overtaken").count(),
        log.matches("claimed earlier").count(),
    );
    cleanup(&urls, &stream, Some(&bucket));
}

fn tail(log: &str) -> &str {
    let mut i = log.len().saturating_sub(3000);
    while !log.is_char_boundary(i) {
        i += 1;
    }
    &log[i..]
}

/// The subject fence the ledger mode relies on: `Nats-Expected-Last-Subject-Sequence: 0`
/// accepts a message only on an empty subject, and `N` only while N is the
/// subject's last message.
#[test]
fn subject_fence_zero_means_empty_subject() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let stream = unique("WWTEST_FENCE");
    rt().block_on(async {
        let (js, _, subject) = test_stream(&urls, &stream).await;
        let publish = |fence: u64, id: &'static str| publish_raw(&js, &subject, id, Some(fence));
        let first = publish(0, "a:1")
            .await
            .expect("empty subject accepts fence 0");
        let e = publish(0, "a:2")
            .await
            .expect_err("fence 0 on a used subject");
        assert_eq!(
            e.kind(),
            jetstream::context::PublishErrorKind::WrongLastSequence
        );
        publish(first.sequence, "a:2")
            .await
            .expect("fence = last sequence");
        let e = publish(first.sequence, "a:3")
            .await
            .expect_err("stale fence");
        assert_eq!(
            e.kind(),
            jetstream::context::PublishErrorKind::WrongLastSequence
        );
        let _ = js.delete_stream(&stream).await;
    });
}

/// `changes` across hosts: daemon A emits an article's first version, daemon B (its
/// own folder and state, the same bucket) its update. B never saw the first version,
/// yet its revision 2 says what changed, from the snapshot kept in the bucket entry:
/// the same `changes` as `check --against FIRST UPDATE`.
#[test]
fn changes_across_daemons_come_from_the_bucket() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let stream = unique("WWTEST_CHG");
    let bucket = unique("wwtest-chg");
    let manifest = common::manifest();
    let entry = |f: &str| manifest.iter().find(|e| e.file == f).unwrap().clone();
    let (first, update) = (
        entry("007_12a23dc6f6c396f7.txt"),
        entry("008_fccd1593fe3b7f7e.txt"),
    );
    let mut a = nats_daemon(&urls, &stream, Some(&bucket), "");
    let mut b = nats_daemon(&urls, &stream, Some(&bucket), "");
    a.start();
    b.start();
    a.drop_fixture(&first, "first.txt");
    common::wait_for(Duration::from_secs(30), || {
        read_stream(&urls, &stream).len() == 1
    });
    b.drop_fixture(&update, "update.txt");
    common::wait_for(Duration::from_secs(30), || {
        read_stream(&urls, &stream).len() == 2
    });
    assert_eq!(a.stop(), 0);
    assert_eq!(b.stop(), 0);
    let msgs = read_stream(&urls, &stream);
    assert_eq!(msgs[0].record["revision"], 1);
    assert_eq!(msgs[1].record["revision"], 2);
    let dev = |f: &str| {
        common::fixtures()
            .join("dev")
            .join(f)
            .to_string_lossy()
            .into_owned()
    };
    let expected = common::check_against(&dev(&first.file), &dev(&update.file));
    assert!(expected["changes"].is_object());
    assert_eq!(msgs[1].record["changes"], expected["changes"]);
    cleanup(&urls, &stream, Some(&bucket));
}

/// The repair behind the ordering guarantee: when the stream holds a version stored
/// after one at least as new (what a leader change can let past the fence), the
/// sink's check deletes the late one; a version stored after an older one stays.
#[test]
fn version_stored_after_a_newer_one_is_deleted() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let stream_name = unique("WWTEST_ORDER");
    rt().block_on(async {
        use wirewatch::record::Stamp;
        let (js, stream, subject) = test_stream(&urls, &stream_name).await;
        // Unfenced publishes stand in for what the server let through.
        let publish = |id: String| {
            let (js, subject) = (&js, &subject);
            async move { publish_raw(js, subject, &id, None).await.unwrap().sequence }
        };
        // The sink's check for version `stamp` stored at `seq` behind fence 0.
        let check = |stamp: &'static str, seq: u64| {
            let (stream, subject) = (&stream, &subject);
            async move {
                wirewatch::nats::sink::keep_in_order(
                    stream,
                    subject,
                    &format!("a:{stamp}"),
                    Stamp::parse(stamp).as_ref(),
                    0,
                    seq,
                )
                .await
                .unwrap()
            }
        };
        let old = "2022-08-10T13:41:00-04:00";
        let new = "2022-08-10T15:09:00-04:00";
        let newest = "2022-08-10T18:00:00-04:00";
        let s_new = publish(format!("a:{new}")).await;
        let s_old = publish(format!("a:{old}")).await;
        let kept = check(old, s_old).await;
        assert!(!kept, "an older version after a newer one is removed");
        assert!(
            stream.get_raw_message(s_old).await.is_err(),
            "seq {s_old} deleted"
        );
        // Checking it again (a re-publish answered "duplicate") is harmless.
        let again = check(old, s_old).await;
        assert!(!again);
        // The newer one, with only older or no versions before it, stays.
        let kept = check(new, s_new).await;
        assert!(kept);
        let s_newest = publish(format!("a:{newest}")).await;
        let kept = check(newest, s_newest).await;
        assert!(kept, "a newer version after older ones stays");
        assert!(stream.get_raw_message(s_new).await.is_ok());
        assert!(stream.get_raw_message(s_newest).await.is_ok());
        let _ = js.delete_stream(&stream_name).await;
    });
}

/// The whole cluster goes away while the daemon runs: it stays up, stops taking
/// files (the committer retries, the channels fill), loses nothing, and once the
/// cluster is back publishes what waited, each record once.
#[test]
fn cluster_away_then_back_loses_nothing() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let stream = unique("WWTEST_AWAY");
    let bucket = unique("wwtest-away");
    let manifest = common::manifest();
    let mut d = nats_daemon(&urls, &stream, Some(&bucket), "[watch]\nsettle_ms = 50\n");
    d.start();
    d.drop_file("seed.txt", &seed_bytes(), Some(seed_mtime()));
    let start = Instant::now();
    while read_stream(&urls, &stream).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "seed not published"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster_script(&["stop"]);
    let mut groups = HashSet::new();
    let firsts: Vec<&common::Entry> = manifest
        .iter()
        .filter(|e| e.role == "first" && groups.insert(e.group.clone()))
        .skip(40)
        .take(6)
        .collect();
    for (i, e) in firsts.iter().enumerate() {
        d.drop_fixture(e, &format!("away-{i}.txt"));
    }
    d.drop_file("away-empty.txt", b"", None);
    std::thread::sleep(Duration::from_secs(4));
    let alive = d.child.as_mut().unwrap().try_wait().unwrap().is_none();
    let restart = std::panic::catch_unwind(|| cluster_script(&["start"]));
    assert!(
        alive,
        "daemon died while the cluster was away: {}",
        tail(&d.log())
    );
    assert!(restart.is_ok(), "cluster did not come back");
    let log = d.log();
    assert!(
        log.contains("not taking new files") || log.contains("publish not acknowledged"),
        "{}",
        tail(&log)
    );
    let start = Instant::now();
    loop {
        let n = read_stream(&urls, &stream).len();
        if n > firsts.len() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{n} messages after the cluster came back\n{}",
            tail(&d.log())
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(d.stop(), 0, "{}", tail(&d.log()));
    let msgs = read_stream(&urls, &stream);
    let ids: HashSet<_> = msgs.iter().map(|m| m.msg_id.clone()).collect();
    assert_eq!(msgs.len(), 1 + firsts.len(), "{msgs:?}");
    assert_eq!(ids.len(), msgs.len(), "a record published twice");
    // The reject that waited for the cluster reached it once, and the local file.
    let rejects = read_stream(&urls, &format!("{stream}_REJECTS"));
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(d.rejects(), vec![rejects[0].record.clone()]);
    cleanup(&urls, &stream, Some(&bucket));
}

/// With the NATS sink a rejected file's line is in the local rejects file and in
/// the stream `<stream>_REJECTS` (created by the daemon with the configured
/// replicas) on `<prefix>-rejects`, with `Nats-Msg-Id` `reject:<hash>`; a second
/// pass publishes nothing more.
#[test]
fn rejects_reach_the_cluster() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let stream = unique("WWTEST_REJ");
    let d = nats_daemon(&urls, &stream, None, "");
    d.drop_file("seed.txt", &seed_bytes(), Some(seed_mtime()));
    d.drop_file("hostile.txt", b"Headline\n\0\0\0\x01binary\n", None);
    d.drop_file("empty.txt", b"", None);
    let (code, err) = once_with_env(&d, &[]);
    assert_eq!(code, Some(0), "{err}");
    let local = d.rejects();
    assert_eq!(local.len(), 2, "{local:?}");
    let rstream = format!("{stream}_REJECTS");
    let msgs = read_stream(&urls, &rstream);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let kinds: HashSet<_> = msgs
        .iter()
        .map(|m| m.record["error"]["kind"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        kinds.contains("empty") && kinds.contains("nul_bytes"),
        "{kinds:?}"
    );
    for m in &msgs {
        assert_eq!(m.subject, format!("{}-rejects", prefix_of(&stream)));
        assert!(
            m.msg_id.as_deref().unwrap_or("").starts_with("reject:"),
            "{m:?}"
        );
        assert!(local.contains(&m.record), "{m:?} not in {local:?}");
    }
    assert_eq!(
        read_stream(&urls, &stream).len(),
        1,
        "the records stream holds the record only"
    );
    let info = rt().block_on(async {
        let js = js(&urls).await;
        let mut s = js.get_stream(&rstream).await.unwrap();
        s.info().await.unwrap().clone()
    });
    assert_eq!(info.config.num_replicas, 3);
    let (code, err) = once_with_env(&d, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(read_stream(&urls, &rstream).len(), 2);
    cleanup(&urls, &stream, None);
}

/// `/health` of a daemon: (status, reasons).
fn health(port: u16) -> (u16, Vec<String>) {
    let (code, body) = common::http_get(port, "/health");
    let reasons = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["reasons"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    (code, reasons)
}

/// The value of the sample `series` (name and labels) in a daemon's `/metrics`.
fn metric(port: u16, series: &str) -> Option<f64> {
    common::http_get(port, "/metrics").1.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The sum of every `wirewatch_nats_publish_errors_total` series.
fn publish_errors(port: u16) -> f64 {
    common::http_get(port, "/metrics")
        .1
        .lines()
        .filter(|l| l.starts_with("wirewatch_nats_publish_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `/health` until `cond` holds on (status, reasons); panics with the last
/// answer and the log tail after `limit`.
fn wait_health(
    d: &Daemon,
    port: u16,
    limit: Duration,
    what: &str,
    cond: impl Fn(u16, &[String]) -> bool,
) -> Vec<String> {
    let start = Instant::now();
    loop {
        let (code, reasons) = health(port);
        if cond(code, &reasons) {
            return reasons;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: /health still {code} {reasons:?} after {limit:?}\n{}",
            tail(&d.log())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A daemon whose cluster cannot be reached at start (its URL is a port nothing
/// listens on; no cluster needed): `/health` says 503 "starting: connecting to NATS
/// at <url>", and names what fails, not "opening and recovering the state".
#[test]
fn health_says_it_is_connecting_to_nats_while_the_cluster_is_unreachable() {
    let url = format!("nats://127.0.0.1:{}", common::free_port());
    let port = common::free_port();
    let mut d = nats_daemon(
        &url,
        "WWTEST_NOWHERE",
        Some("wwtest-nowhere"),
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let child = d
        .cmd()
        .args(["run", "--config"])
        .arg(d.config_path())
        .stderr(std::fs::File::create(d.path("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    d.child = Some(child);
    let starting = format!("starting: connecting to NATS at {url}");
    let reasons = wait_health(&d, port, Duration::from_secs(30), "unreachable", |c, r| {
        c == 503 && r.first() == Some(&starting) && r.iter().any(|x| x.contains("failed:"))
    });
    eprintln!("reasons while unreachable: {reasons:?}");
    // The NATS sink's metrics are there, at 0, before anything was published.
    for series in [
        "wirewatch_nats_connected",
        "wirewatch_nats_publish_retries_total",
        "wirewatch_nats_duplicates_total",
        "wirewatch_nats_publish_seconds_count",
        "wirewatch_nats_publish_errors_total{kind=\"timeout\"}",
        "wirewatch_nats_publish_errors_total{kind=\"gave_up\"}",
    ] {
        assert_eq!(metric(port, series), Some(0.0), "{series}");
    }
    assert!(
        !reasons.iter().any(|r| r.contains("recovering the state")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|r| r == &starting || r.starts_with("NATS: ")),
        "{reasons:?}"
    );
    // One SIGTERM ends the wait for the cluster.
    let mut child = d.child.take().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t = std::time::Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("one SIGTERM did not stop a daemon waiting for NATS");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0), "{}", d.log());
}

/// Starts the cluster again when dropped, so that a failing test does not leave it
/// stopped for the others.
struct Restart(bool);

impl Drop for Restart {
    fn drop(&mut self) {
        if self.0 {
            cluster_script(&["start"]);
        }
    }
}

/// The whole cluster goes away under a running daemon (cluster-wide dedupe, HTTP
/// on): while it is idle, `/health` turns 503 with the lost connection and
/// `wirewatch_nats_connected` 0; a file dropped meanwhile adds the failed request,
/// with its reason; once the cluster is back, `/health` is 200 again, the gauge 1,
/// and the file is published.
#[test]
fn health_reports_a_cluster_outage_while_idle_and_busy() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let stream = unique("WWTEST_HEALTH");
    let bucket = unique("wwtest-health");
    let port = common::free_port();
    let mut d = nats_daemon(
        &urls,
        &stream,
        Some(&bucket),
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n[watch]\nsettle_ms = 50\n"),
    );
    d.start();
    d.drop_file("seed.txt", &seed_bytes(), Some(seed_mtime()));
    common::wait_for(Duration::from_secs(30), || {
        read_stream(&urls, &stream).len() == 1
    });
    wait_health(&d, port, Duration::from_secs(30), "before", |c, _| c == 200);
    assert_eq!(metric(port, "wirewatch_nats_connected"), Some(1.0));
    assert!(metric(port, "wirewatch_nats_publish_seconds_count").is_some_and(|n| n >= 1.0));
    assert_eq!(publish_errors(port), 0.0);

    let mut restart = Restart(true);
    cluster_script(&["stop"]);
    let reasons = wait_health(
        &d,
        port,
        Duration::from_secs(30),
        "idle, cluster away",
        |c, r| c == 503 && r.iter().any(|x| x.starts_with("NATS: ")),
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("lost the connection") || r.contains("cannot connect")),
        "{reasons:?}"
    );
    let manifest = common::manifest();
    let first = manifest.iter().find(|e| e.role == "first").unwrap();
    d.drop_fixture(first, "during.txt");
    let reasons = wait_health(
        &d,
        port,
        Duration::from_secs(30),
        "busy, cluster away",
        |c, r| {
            c == 503
                && r.iter()
                    .any(|x| x.starts_with("NATS: ") && x.contains("failed:"))
        },
    );
    eprintln!("reasons during the outage: {reasons:?}");
    assert_eq!(metric(port, "wirewatch_nats_connected"), Some(0.0));

    cluster_script(&["start"]);
    restart.0 = false;
    wait_health(&d, port, Duration::from_secs(90), "cluster back", |c, _| {
        c == 200
    });
    common::wait_for(Duration::from_secs(60), || {
        read_stream(&urls, &stream).len() == 2
    });
    assert_eq!(metric(port, "wirewatch_nats_connected"), Some(1.0));
    assert_eq!(d.stop(), 0, "{}", tail(&d.log()));
    cleanup(&urls, &stream, Some(&bucket));
}

/// The cluster goes away under a daemon with local dedupe (so the file dropped
/// meanwhile goes straight to the sink): its publish times out, and
/// `wirewatch_nats_publish_errors_total{kind="timeout"}` and
/// `wirewatch_nats_publish_retries_total` count it while the connection gauge
/// reads 0; once the cluster is back the file is published and timed.
#[test]
fn nats_metrics_count_failed_publishes_and_retries() {
    let Some(urls) = nats_urls() else { return };
    let _g = serial();
    let stream = unique("WWTEST_METRICS");
    let port = common::free_port();
    let mut d = nats_daemon(
        &urls,
        &stream,
        None,
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n[watch]\nsettle_ms = 50\n"),
    );
    d.start();
    d.drop_file("seed.txt", &seed_bytes(), Some(seed_mtime()));
    common::wait_for(Duration::from_secs(30), || {
        metric(port, "wirewatch_nats_publish_seconds_count") == Some(1.0)
    });
    assert_eq!(metric(port, "wirewatch_nats_connected"), Some(1.0));
    assert_eq!(publish_errors(port), 0.0);
    assert_eq!(
        metric(port, "wirewatch_nats_publish_retries_total"),
        Some(0.0)
    );

    let mut restart = Restart(true);
    cluster_script(&["stop"]);
    let manifest = common::manifest();
    let first = manifest.iter().find(|e| e.role == "first").unwrap();
    d.drop_fixture(first, "during.txt");
    let timeouts = "wirewatch_nats_publish_errors_total{kind=\"timeout\"}";
    common::wait_for(Duration::from_secs(60), || {
        metric(port, timeouts).is_some_and(|n| n > 0.0)
            && metric(port, "wirewatch_nats_publish_retries_total").is_some_and(|n| n > 0.0)
    });
    assert_eq!(metric(port, "wirewatch_nats_connected"), Some(0.0));

    cluster_script(&["start"]);
    restart.0 = false;
    common::wait_for(Duration::from_secs(90), || {
        read_stream(&urls, &stream).len() == 2
    });
    common::wait_for(Duration::from_secs(20), || {
        metric(port, "wirewatch_nats_publish_seconds_count") == Some(2.0)
            && metric(port, "wirewatch_nats_connected") == Some(1.0)
    });
    assert_eq!(d.stop(), 0, "{}", tail(&d.log()));
    cleanup(&urls, &stream, None);
}
