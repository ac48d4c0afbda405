//! The desk (`GET /`) and the endpoints it reads, against the real binary: the page
//! and its files are served, `/api/stats` counts, `/api/story/<id>` gives every
//! version of a story from the output, `/api/rejects` the latest rejects,
//! `/events?last=N` replays the latest matching records; and the page itself in Debian's headless Chromium through chromedriver:
//! the wire shows the seed and an update (the update live, with its `rev 2` badge),
//! the health panel a reject from before the page opened and one after,
//! a person chip narrows it, Enter opens the story with the update's added
//! paragraph, Esc closes it, a phone-width window does not scroll sideways, and
//! nothing reached the console's errors.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

fn start() -> (Daemon, u16) {
    let port = common::free_port();
    let mut d = Daemon::new(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    d.start();
    common::wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (d, port)
}

fn drop_seed(d: &Daemon) {
    let bytes = std::fs::read(common::seed()).unwrap();
    d.drop_file(
        "000_fbc3d1cb8b5383ef.txt",
        &bytes,
        Some(common::system_time("2022-10-03T02:55:00Z")),
    );
}

fn json_get(port: u16, path: &str) -> (u16, Value) {
    let (status, body) = common::http_get(port, path);
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

/// The first `n` NDJSON lines of the never-ending `/events?{query}`.
fn first_lines(port: u16, query: &str, n: usize) -> Vec<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /events?{query} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut out = Vec::new();
    let mut line = String::new();
    while out.len() < n {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "the stream ended");
        // The chunked encoding's size lines and the headers are not JSON.
        if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
            if v.is_object() {
                out.push(v);
            }
        }
    }
    out
}

#[test]
fn the_page_stats_and_a_storys_versions_are_served() {
    let (mut d, port) = start();
    let manifest = common::manifest();
    let (first, update) = common::first_and_update(&manifest);
    drop_seed(&d);
    d.wait_records(1);
    d.drop_fixture(first, "first.txt");
    d.wait_records(2);
    d.drop_fixture(update, "update.txt");
    let recs = d.wait_records(3);
    common::wait_for(Duration::from_secs(10), || {
        json_get(port, "/api/stats").1["emitted"] == 3
    });

    let (status, page) = common::http_get(port, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"desk.js\""), "{page}");
    for asset in ["/desk.js", "/desk.css"] {
        let (status, body) = common::http_get(port, asset);
        assert_eq!(status, 200, "{asset}");
        assert!(body.len() > 1000, "{asset}: {body}");
    }

    let (status, stats) = json_get(port, "/api/stats");
    assert_eq!(status, 200);
    assert_eq!(stats["emitted"], 3, "{stats}");
    assert_eq!(stats["updates"], 1, "{stats}");
    assert_eq!(stats["status"], "ok", "{stats}");
    assert!(stats["last_commit"].as_f64().unwrap() > 0.0, "{stats}");
    assert!(stats["queue_depth"]["commit"].is_i64(), "{stats}");
    assert_eq!(stats["rejected_by_kind"]["empty"], 0, "{stats}");

    let id = recs[2]["article_id"].as_str().unwrap();
    assert_eq!(recs[1]["article_id"], recs[2]["article_id"]);
    let (status, story) = json_get(port, &format!("/api/story/{id}"));
    assert_eq!(status, 200, "{story}");
    let versions = story["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{story}");
    assert_eq!(versions[0]["record"], recs[1]);
    assert_eq!(versions[1]["record"], recs[2]);
    assert!(versions[1]["id"].as_str().unwrap().contains('-'));

    // The latest rejects, newest first, from the rejects file.
    let (status, body) = json_get(port, "/api/rejects");
    assert_eq!((status, &body["rejects"]), (200, &json!([])), "{body}");
    d.drop_file("empty.txt", b"", None);
    d.drop_file("blank.txt", b"  \n\n", None);
    common::wait_for(Duration::from_secs(10), || {
        json_get(port, "/api/stats").1["rejected"] == 2
    });
    let (status, body) = json_get(port, "/api/rejects?last=1");
    assert_eq!(status, 200, "{body}");
    let list = body["rejects"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{body}");
    let (_, both) = json_get(port, "/api/rejects");
    let names: Vec<&str> = both["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{both}");
    assert_eq!(list[0], both["rejects"][0]);
    assert!(
        names.contains(&"empty.txt") && names.contains(&"blank.txt"),
        "{both}"
    );
    assert!(both["rejects"][0]["error"]["message"].is_string(), "{both}");
    for bad in [
        "/api/rejects?last=0",
        "/api/rejects?last=x",
        "/api/rejects?n=3",
    ] {
        let (status, body) = json_get(port, bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("last"), "{body}");
    }

    let (status, body) = json_get(port, "/api/story/0000000000000000");
    assert_eq!(status, 404, "{body}");
    let (status, body) = json_get(port, "/api/story/..%2Fetc");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("article_id"));
    assert_eq!(d.stop(), 0);
}

#[test]
fn last_n_replays_the_latest_matching_records_then_goes_live() {
    let (mut d, port) = start();
    let manifest = common::manifest();
    let (first, update) = common::first_and_update(&manifest);
    drop_seed(&d);
    d.wait_records(1);
    d.drop_fixture(first, "first.txt");
    d.drop_fixture(update, "update.txt");
    let recs = d.wait_records(3);
    // Counted once broadcast: the replay's end has moved past the update too.
    common::wait_for(Duration::from_secs(10), || {
        json_get(port, "/api/stats").1["emitted"] == 3
    });
    let got = first_lines(port, "last=2", 2);
    assert_eq!(got, recs[1..]);
    // The filter applies before the count.
    let seed_place = recs[0]["dateline"].as_str().unwrap();
    let got = first_lines(port, &format!("last=1&dateline={seed_place}"), 1);
    assert_eq!(got[0], recs[0]);
    let (status, body) = common::http_get(port, "/events?last=0");
    assert_eq!(status, 400);
    assert!(body.contains("1 to 1024"), "{body}");
    // The brief view: what the wire shows, the filters applied to the whole record.
    let briefs = first_lines(port, "last=2&view=brief", 2);
    for (b, r) in briefs.iter().zip(&recs[1..]) {
        for k in [
            "article_id",
            "revision",
            "title",
            "dateline",
            "posted_at",
            "capture_time",
        ] {
            assert_eq!(b[k], r[k], "{k}");
        }
        let names = |v: &Value| -> Vec<Value> {
            v["people"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].clone())
                .collect()
        };
        assert_eq!(names(b), names(r));
        assert!(b["people"][0].get("mentions").is_none(), "{b}");
        assert!(
            b.get("sections").is_none() && b.get("changes").is_none(),
            "{b}"
        );
        assert!(b["quotes"].as_array().unwrap().len() <= 1, "{b}");
        assert!(b.to_string().len() * 3 < r.to_string().len(), "{b}");
    }
    let person = recs[2]["people"][0]["name"].as_str().unwrap();
    let encoded: String = person
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let got = first_lines(port, &format!("last=1&view=brief&person={encoded}"), 1);
    assert_eq!(got[0]["article_id"], recs[2]["article_id"]);
    let (status, body) = common::http_get(port, "/events?view=short");
    assert_eq!(status, 400);
    assert!(body.contains("view=brief"), "{body}");
    assert_eq!(d.stop(), 0);
}

// --- the page in a real browser ---

/// chromedriver on a free port, killed when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<Driver> {
    let found = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !found("chromium") || !found("chromedriver") {
        common::skip_or_fail(
            "the desk test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
        );
        return None;
    }
    let port = common::free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Some(Driver(child, port))
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(true);
    ClientBuilder::new(http)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a chromium session from chromedriver")
}

/// Runs `js` (a function body returning a value) until it returns something
/// truthy, for up to `limit`; returns that value.
async fn until(c: &Client, js: &str, limit: Duration) -> Value {
    let t = Instant::now();
    loop {
        let v = c.execute(js, vec![]).await.unwrap();
        let truthy =
            !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
        if truthy {
            return v;
        }
        if t.elapsed() > limit {
            let errors = c.execute("return window.deskErrors", vec![]).await;
            panic!("waited {limit:?} for `{js}` (page errors: {errors:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_desk_in_headless_chromium() {
    let Some(driver) = chromedriver() else { return };
    let (mut d, port) = start();
    let manifest = common::manifest();
    let (first, update) = common::first_and_update(&manifest);
    drop_seed(&d);
    d.wait_records(1);
    d.drop_fixture(first, "first.txt");
    d.wait_records(2);

    d.drop_file("before.txt", b"", None);
    common::wait_for(Duration::from_secs(10), || {
        json_get(port, "/api/stats").1["rejected"] == 1
    });

    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    let secs = Duration::from_secs(10);
    c.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    // The reject from before the page opened, then one live, on top.
    until(
        &c,
        "return document.querySelector('#rejects li')?.textContent.includes('before.txt')",
        secs,
    )
    .await;
    d.drop_file("after.txt", b"", None);
    let rejects = until(
        &c,
        "const l = document.querySelectorAll('#rejects li'); return l.length === 2 && l[0].textContent.includes('after.txt') && l[1].textContent",
        secs,
    )
    .await;
    assert!(
        rejects.as_str().unwrap().contains("before.txt"),
        "{rejects}"
    );
    // The recent past, replayed.
    until(
        &c,
        "return document.querySelectorAll('#wire .item').length === 2",
        secs,
    )
    .await;
    // The update, live, on top with its badge.
    d.drop_fixture(update, "update.txt");
    let recs = d.wait_records(3);
    let top = until(
        &c,
        "const i = document.querySelector('#wire .item'); return document.querySelectorAll('#wire .item').length === 3 && i.dataset.rev === '2' && i.querySelector('.rev').textContent",
        secs,
    )
    .await;
    assert_eq!(top, "rev 2");
    let stats = until(&c, "const t = document.querySelector('#counters').textContent; return t.includes('emitted3') && t", secs).await;
    assert!(stats.as_str().unwrap().contains("updates1"), "{stats}");

    // A person chip narrows the wire (the server filters): the seed goes.
    let person = recs[2]["people"][0]["name"]
        .as_str()
        .expect("the update names a person");
    let folded = person.to_lowercase();
    let matching = recs
        .iter()
        .filter(|r| {
            r["people"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"].as_str().unwrap().to_lowercase().contains(&folded))
        })
        .count();
    assert!(
        matching < 3,
        "{person} is in every record: no narrowing to see"
    );
    c.find(Locator::Css("#wire .item[data-rev='2'] .chip.person"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        &format!("return document.querySelectorAll('#wire .item').length === {matching} && document.querySelector('#filters .chip')?.textContent.includes({person:?})"),
        secs,
    )
    .await;

    // Enter on the update opens the story, with the paragraph the update added.
    c.execute(
        "document.querySelector(\"#wire .item[data-rev='2']\").focus()",
        vec![],
    )
    .await
    .unwrap();
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let changes = &recs[2]["changes"];
    let added = changes["paragraphs"]["added"][0]
        .as_u64()
        .expect("the update adds a paragraph");
    let paras: Vec<&str> = recs[2]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["paragraphs"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    let text = until(
        &c,
        "const p = document.querySelector('#story:not([hidden]) .added-para'); return p && p.textContent",
        secs,
    )
    .await;
    assert_eq!(text, paras[added as usize - 1]);
    let versions = c
        .execute(
            "return document.querySelectorAll('#story .version').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(versions, 2);
    // Esc closes it.
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{E00C}")
        .await
        .unwrap();
    until(&c, "return document.querySelector('#story').hidden", secs).await;

    // Phone width: one column, nothing wider than the window.
    c.set_window_size(390, 800).await.unwrap();
    until(
        &c,
        "return document.documentElement.scrollWidth <= window.innerWidth",
        secs,
    )
    .await;

    if let Some(path) = std::env::var_os("WIREWATCH_DESK_SCREENSHOT") {
        c.set_window_size(1280, 900).await.unwrap();
        std::fs::write(path, c.screenshot().await.unwrap()).unwrap();
    }
    let errors = c.execute("return window.deskErrors", vec![]).await.unwrap();
    assert_eq!(errors, json!([]), "the page logged errors");
    c.close().await.unwrap();
    assert_eq!(d.stop(), 0);
}
