//! `GET /events` as a resumable stream, against the real binary over real sockets:
//! every record carries an `id:`; a client that reconnects with `Last-Event-ID`
//! gets exactly the records it missed (replayed from the output file) and then the
//! live ones, with no gap and no double at the hand-over, even while files keep
//! landing; `since=` a time replays the records captured since; `retry:` opens the
//! stream and `: keep-alive` fills silences; an unknown parameter is a 400 naming
//! it; repeated filters all hold; `outcome=all` adds duplicates and rejects with
//! their reasons; a daemon writing to stdout refuses replay.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::Value;

/// The keep-alive interval the daemons of these tests use.
const KEEPALIVE_MS: &str = "300";

fn start(extra: &str) -> (Daemon, u16) {
    let port = common::free_port();
    let mut d = Daemon::new(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\n{extra}"));
    d.env
        .push(("WIREWATCH_EVENTS_KEEPALIVE_MS".into(), KEEPALIVE_MS.into()));
    d.start();
    common::wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (d, port)
}

/// A story about `place`, unique by `n`.
fn story(n: usize, place: &str) -> Vec<u8> {
    format!(
        "({place}) Mayor Jean Tremblay announced measure {n} for the city council on transit.\nPosted on September {}, 2022 at {}:{:02}\n\nThe vote on the budget for roads, bridges and water is expected next week, officials said.\n",
        1 + n % 28,
        n % 24,
        n % 60
    )
    .into_bytes()
}

/// One server-sent event (or comment block).
#[derive(Debug, Default, Clone)]
struct Ev {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    retry: Option<String>,
    comment: Option<String>,
}

impl Ev {
    fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap_or("null")).unwrap()
    }

    fn path(&self) -> String {
        let v = self.json();
        let p = v["source"]["path"].as_str().or(v["path"].as_str());
        p.unwrap_or_default().rsplit('/').next().unwrap().to_owned()
    }
}

/// A server-sent stream read from a raw socket (chunked transfer decoded here).
struct Sse {
    r: BufReader<TcpStream>,
    buf: String,
}

impl Sse {
    /// `GET /events?{query}` with `Accept: text/event-stream` (and `Last-Event-ID`).
    fn open(port: u16, query: &str, last_id: Option<&str>) -> Sse {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let last = last_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET /events?{query} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{last}\r\n"
        )
        .unwrap();
        let mut r = BufReader::new(s);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/event-stream"), "{head}");
        Sse {
            r,
            buf: String::new(),
        }
    }

    /// The next event or comment block.
    fn next(&mut self) -> Ev {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = Ev::default();
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        ev.comment = Some(c.trim().to_owned());
                    } else if let Some((k, v)) = line.split_once(": ") {
                        let v = Some(v.to_owned());
                        match k {
                            "id" => ev.id = v,
                            "event" => ev.event = v,
                            "data" => ev.data = v,
                            "retry" => ev.retry = v,
                            other => panic!("unknown field {other} in {block:?}"),
                        }
                    }
                }
                return ev;
            }
            // One chunk: its size in hex, CRLF, the bytes, CRLF.
            let mut size = String::new();
            self.r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16)
                .unwrap_or_else(|_| panic!("not a chunk size: {size:?}"));
            assert!(n > 0, "the stream ended");
            let mut chunk = vec![0u8; n + 2];
            self.r.read_exact(&mut chunk).unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk[..n]).unwrap());
        }
    }

    /// The next record or outcome event, skipping comments and `retry:`.
    fn next_event(&mut self) -> Ev {
        loop {
            let ev = self.next();
            if ev.event.is_some() {
                return ev;
            }
        }
    }

    /// The events until the `n`th keep-alive.
    fn over_keepalives(&mut self, n: usize) -> Vec<Ev> {
        (0..n).flat_map(|_| self.until_keepalive()).collect()
    }

    /// The events until the first keep-alive (the replay and what follows it,
    /// until a silence).
    fn until_keepalive(&mut self) -> Vec<Ev> {
        let mut got = Vec::new();
        loop {
            let ev = self.next();
            if ev.comment.as_deref() == Some("keep-alive") {
                return got;
            }
            if ev.event.is_some() {
                got.push(ev);
            }
        }
    }
}

/// The file names of the output's records, in order.
fn output_paths(d: &Daemon) -> Vec<String> {
    d.records()
        .iter()
        .map(|r| {
            let p = r["source"]["path"].as_str().unwrap();
            p.rsplit('/').next().unwrap().to_owned()
        })
        .collect()
}

/// A client reads 3 records, goes away, 5 more land; it reconnects with the id of
/// the last one it read while 12 more keep landing, and receives every record it
/// missed and then the live ones: together with the first 3, exactly the output
/// file, in order, once each, with ids that increase.
#[test]
fn a_client_that_reconnects_with_last_event_id_misses_nothing_and_gets_nothing_twice() {
    let (mut d, port) = start("");
    let mut first = Sse::open(port, "", None);
    let opening = first.next();
    assert_eq!(opening.retry.as_deref(), Some("3000"), "{opening:?}");
    for n in 0..3 {
        d.drop_file(&format!("a{n:02}.txt"), &story(n, "Ottawa"), None);
    }
    let read: Vec<Ev> = (0..3).map(|_| first.next_event()).collect();
    for ev in &read {
        assert_eq!(ev.event.as_deref(), Some("record"));
        assert!(ev.id.is_some(), "a record without an id: {ev:?}");
    }
    drop(first);
    for n in 3..8 {
        d.drop_file(&format!("a{n:02}.txt"), &story(n, "Ottawa"), None);
    }
    d.wait_records(8);
    let dropper = {
        let inbox = d.path("inbox");
        let staging = d.path("");
        std::thread::spawn(move || {
            for n in 8..20 {
                let tmp = staging.join(format!("a{n:02}.staging"));
                std::fs::write(&tmp, story(n, "Ottawa")).unwrap();
                std::fs::rename(&tmp, inbox.join(format!("a{n:02}.txt"))).unwrap();
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(40));
    let mut again = Sse::open(port, "", read[2].id.as_deref());
    let mut got: Vec<Ev> = read.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < 20 {
        assert!(Instant::now() < deadline, "only {} records", got.len());
        let ev = again.next_event();
        assert_eq!(ev.event.as_deref(), Some("record"), "{ev:?}");
        got.push(ev);
    }
    dropper.join().unwrap();
    d.wait_records(20);
    // Nothing more after them (a double would come here).
    let extra = again.until_keepalive();
    assert!(extra.is_empty(), "records sent twice: {extra:?}");
    let paths: Vec<String> = got.iter().map(Ev::path).collect();
    assert_eq!(paths, output_paths(&d));
    let offsets: Vec<u64> = got
        .iter()
        .map(|e| {
            e.id.as_deref()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    // The ids are the records' ends in the output file.
    let out = std::fs::read(d.path("out/articles.jsonl")).unwrap();
    assert_eq!(*offsets.last().unwrap(), out.len() as u64);
    assert_eq!(d.stop(), 0);
}

/// `since=` a time replays the records captured at or after it (their
/// `capture_time`), then goes live; filters hold in the replay too.
#[test]
fn since_a_time_replays_the_records_captured_since_then_goes_live() {
    let (mut d, port) = start("");
    let t = common::system_time;
    d.drop_file(
        "old.txt",
        &story(1, "Ottawa"),
        Some(t("2022-01-01T12:00:00Z")),
    );
    d.drop_file(
        "new.txt",
        &story(2, "Ottawa"),
        Some(t("2023-06-01T12:00:00Z")),
    );
    d.drop_file(
        "other.txt",
        &story(3, "Toronto"),
        Some(t("2023-06-01T12:00:00Z")),
    );
    d.wait_records(3);
    let mut s = Sse::open(port, "since=2023-01-01T00:00:00Z&place=ottawa", None);
    let replayed = s.until_keepalive();
    let paths: Vec<String> = replayed.iter().map(Ev::path).collect();
    let times: Vec<Value> = d
        .records()
        .iter()
        .map(|r| r["capture_time"].clone())
        .collect();
    assert_eq!(paths, ["new.txt"], "capture times {times:?} {replayed:?}");
    assert!(replayed[0].id.is_some());
    d.drop_file("live.txt", &story(4, "Ottawa"), None);
    assert_eq!(s.next_event().path(), "live.txt");
    // Everything, from the first id: the records after it.
    let all = d.records();
    assert_eq!(all.len(), 4);
    let mut from_start = Sse::open(port, "since=1h", None);
    assert_eq!(
        from_start.until_keepalive().len(),
        1,
        "only live.txt was captured in the last hour"
    );
    assert_eq!(d.stop(), 0);
}

/// An unknown parameter is a 400 that names it; repeated filters all hold (a
/// record must name both places), as `wirewatch tail`'s repeated flags; the
/// stream opens with `retry:` and shows a keep-alive in a silence.
#[test]
fn unknown_parameters_are_refused_and_repeated_filters_all_hold() {
    let (mut d, port) = start("");
    let (status, body) = common::http_get(port, "/events?since0=0");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"since0\""), "{body}");
    let (status, body) = common::http_get(port, "/events?outcome=lost");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"lost\""), "{body}");
    d.drop_file("ottawa.txt", &story(1, "Ottawa"), None);
    d.drop_file("toronto.txt", &story(2, "Toronto"), None);
    d.wait_records(2);
    let replay = |query: &str| -> Vec<String> {
        let mut s = Sse::open(port, &format!("since=1d&{query}"), None);
        let head = s.next();
        assert!(head.retry.is_some(), "{head:?}");
        s.until_keepalive().iter().map(Ev::path).collect()
    };
    assert_eq!(replay(""), ["ottawa.txt", "toronto.txt"]);
    assert_eq!(replay("place=ottawa"), ["ottawa.txt"]);
    assert!(replay("place=ottawa&place=toronto").is_empty());
    assert_eq!(replay("place=ottawa&place=otta"), ["ottawa.txt"]);
    assert!(replay("dateline=ottawa&dateline=toronto").is_empty());
    // A keep-alive on a live stream with nothing to send.
    let mut live = Sse::open(port, "", None);
    let started = Instant::now();
    assert!(live.until_keepalive().is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(d.stop(), 0);
}

/// `outcome=all` sends, besides the records, the rejected files with their kind and
/// reason and the versions dropped as duplicates with theirs, as events of their
/// own type without an id.
#[test]
fn outcome_all_shows_rejects_and_duplicates_with_their_reasons() {
    let (mut d, port) = start("");
    let mut s = Sse::open(port, "outcome=all", None);
    let mut emitted_only = Sse::open(port, "", None);
    d.drop_file("first.txt", &story(1, "Ottawa"), None);
    d.wait_records(1);
    d.drop_file("copy.txt", &story(1, "Ottawa"), None);
    d.drop_file("empty.txt", b"", None);
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 3 {
        let ev = s.next_event();
        seen.insert(ev.event.clone().unwrap(), ev);
    }
    let dup = &seen["duplicate"];
    assert!(dup.id.is_none());
    assert_eq!(dup.path(), "copy.txt");
    assert_eq!(dup.json()["outcome"], "duplicate");
    assert!(dup.json()["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let rej = &seen["rejected"];
    assert!(rej.id.is_none());
    assert_eq!(rej.path(), "empty.txt");
    assert_eq!(rej.json()["kind"], "empty");
    assert!(rej.json()["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(seen["record"].path(), "first.txt");
    // The default stream has the record only (what it was sent has reached it
    // within a few keep-alive periods).
    let events = emitted_only.over_keepalives(4);
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(kinds, ["record"]);
    assert_eq!(d.stop(), 0);
}

/// With the records going to stdout there is no file to replay from: `since=` is a
/// 400 that says so; the live stream still works.
#[test]
fn replay_is_refused_when_records_go_to_stdout() {
    let (mut d, port) = start("[output]\npath = \"-\"\n");
    let (status, body) = common::http_get(port, "/events?since=1h");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("stdout"), "{body}");
    let mut s = Sse::open(port, "", None);
    assert!(s.next().retry.is_some());
    assert_eq!(d.stop(), 0);
}

/// Drops `n` stories named `{prefix}00.txt`… into a daemon that has no records yet,
/// and returns their records once they are also broadcast (after the state commit),
/// so that a replay's end has moved past them.
fn drop_stories(d: &mut Daemon, port: u16, prefix: &str, n: usize) -> Vec<Value> {
    for i in 0..n {
        d.drop_file(&format!("{prefix}{i:02}.txt"), &story(i, "Ottawa"), None);
    }
    let recs = d.wait_records(n);
    let emitted = format!("\"emitted\":{n}");
    common::wait_for(Duration::from_secs(10), || {
        common::http_get(port, "/api/stats").1.contains(&emitted)
    });
    recs
}

/// `view=brief` over server-sent events: the replay of the recent past is one
/// `event: records` (a JSON array of briefs, the id its last record's); live
/// records that land together go together; a reconnect with that id misses
/// nothing and gets nothing twice; another outcome goes whole, in order.
#[test]
fn brief_server_sent_records_come_in_batches_with_the_last_id() {
    let (mut d, port) = start("");
    let recs = drop_stories(&mut d, port, "b", 4);
    let ids =
        |recs: &[Value]| -> Vec<Value> { recs.iter().map(|r| r["article_id"].clone()).collect() };
    let batch_ids = |ev: &Ev| -> Vec<Value> {
        assert_eq!(ev.event.as_deref(), Some("records"), "{ev:?}");
        ev.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["article_id"].clone())
            .collect()
    };
    // The same id the full stream gives the last record.
    let mut full = Sse::open(port, "last=1", None);
    let last_full = full.next_event();
    drop(full);
    let mut s = Sse::open(port, "view=brief&last=3&outcome=emitted,rejected", None);
    let replayed = s.next_event();
    assert_eq!(batch_ids(&replayed), ids(&recs[1..4]));
    assert_eq!(replayed.id, last_full.id);
    let b = &replayed.json()[0];
    assert!(b.get("sections").is_none() && b["title"].is_string(), "{b}");

    // Live: three at once, then a reject, then one more.
    for n in 4..7 {
        d.drop_file(&format!("b{n:02}.txt"), &story(n, "Ottawa"), None);
    }
    d.wait_records(7);
    d.drop_file("empty.txt", b"", None);
    common::wait_for(Duration::from_secs(10), || {
        common::read_jsonl(&d.path("out/rejected.jsonl")).len() == 1
    });
    d.drop_file("b07.txt", &story(7, "Ottawa"), None);
    let recs8 = d.wait_records(8);
    let mut live = Vec::new();
    let mut order = Vec::new();
    let mut last_id = None;
    while live.len() < 4 {
        let ev = s.next_event();
        order.push(ev.event.clone().unwrap());
        if ev.event.as_deref() == Some("rejected") {
            assert_eq!(ev.path(), "empty.txt");
            continue;
        }
        assert!(ev.id.is_some(), "{ev:?}");
        last_id = ev.id.clone();
        live.extend(batch_ids(&ev));
    }
    assert_eq!(live, ids(&recs8[4..8]));
    assert!(
        order.len() < 5 + 1,
        "one event per record or fewer: {order:?}"
    );
    let reject_at = order
        .iter()
        .position(|e| e == "rejected")
        .expect("the reject came");
    assert_eq!(order.last().map(String::as_str), Some("records"));
    assert!(
        reject_at > 0,
        "the reject came before the records before it: {order:?}"
    );
    drop(s);

    // Resumed after the first live batch's id: the rest, once.
    let mut again = Sse::open(port, "view=brief", last_id.as_deref());
    d.drop_file("b08.txt", &story(8, "Ottawa"), None);
    let recs9 = d.wait_records(9);
    let mut got = Vec::new();
    while got.is_empty() {
        got.extend(batch_ids(&again.next_event()));
    }
    assert_eq!(got, ids(&recs9[8..9]));
    assert_eq!(d.stop(), 0);
}

/// `max_rate=R`: past a first burst of 5 s' worth, at most R briefs a second go;
/// the newest of each batch are sent, the others counted in `event: skipped`, and
/// the last event's id is the last record's, shown or not (a reconnect resumes
/// after all of them).
#[test]
fn max_rate_sends_the_newest_briefs_and_counts_the_rest() {
    let (mut d, port) = start("");
    let recs = drop_stories(&mut d, port, "m", 12);
    // Misused: not with the full view, not on an NDJSON stream.
    let (status, body) = common::http_get(port, "/events?max_rate=5");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("view=brief"), "{body}");
    let (status, body) = common::http_get(port, "/events?view=brief&max_rate=5");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("text/event-stream"), "{body}");

    let mut full = Sse::open(port, "last=1", None);
    let last_full = full.next_event();
    drop(full);
    // 12 replayed, a burst of 5: the newest 5 go, 7 are counted.
    let mut s = Sse::open(port, "view=brief&last=12&max_rate=1", None);
    let skipped = s.next_event();
    assert_eq!(skipped.event.as_deref(), Some("skipped"), "{skipped:?}");
    assert_eq!(skipped.json()["records"], 7);
    assert_eq!(skipped.id, None);
    let shown = s.next_event();
    assert_eq!(shown.event.as_deref(), Some("records"), "{shown:?}");
    let got: Vec<Value> = shown
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["article_id"].clone())
        .collect();
    let want: Vec<Value> = recs[7..12]
        .iter()
        .map(|r| r["article_id"].clone())
        .collect();
    assert_eq!(got, want);
    assert_eq!(shown.id, last_full.id);

    // Live, with the burst spent: 1 a second refills. Eight land at once; every
    // one of them is shown or counted, and the last event carries the last id.
    for n in 12..20 {
        d.drop_file(&format!("m{n:02}.txt"), &story(n, "Ottawa"), None);
    }
    let recs = d.wait_records(20);
    let (mut shown, mut counted, mut last_id) = (Vec::new(), 0, None);
    let mut last_kind = None;
    while shown.len() as u64 + counted < 8 {
        let ev = s.next_event();
        last_kind = ev.event.clone();
        match ev.event.as_deref() {
            Some("records") => shown.extend(
                ev.json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b["article_id"].clone()),
            ),
            Some("skipped") => counted += ev.json()["records"].as_u64().unwrap(),
            other => panic!("unexpected event {other:?}: {ev:?}"),
        }
        if ev.id.is_some() {
            last_id = ev.id.clone();
        }
    }
    assert!(counted > 0, "the allowance held back none: {shown:?}");
    assert!(shown.len() < 8, "{shown:?}");
    // A batch sends its newest: when the last batch showed any, the newest of all
    // is the last shown.
    if last_kind.as_deref() == Some("records") {
        assert_eq!(shown.last(), Some(&recs[19]["article_id"]));
    }
    drop(s);
    // Resumed after that id: only what lands next.
    let mut again = Sse::open(port, "view=brief", last_id.as_deref());
    d.drop_file("m20.txt", &story(20, "Ottawa"), None);
    let recs = d.wait_records(21);
    let ev = again.next_event();
    assert_eq!(ev.event.as_deref(), Some("records"), "{ev:?}");
    assert_eq!(ev.json()[0]["article_id"], recs[20]["article_id"]);
    assert_eq!(ev.json().as_array().unwrap().len(), 1);
    assert_eq!(d.stop(), 0);
}
