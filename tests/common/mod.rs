//! Helpers shared by the integration tests: fixture paths, the corpus manifest, and
//! copying fixtures into a temp dir with their capture times as mtimes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::Value;

/// One row of `tests/fixtures/dev/manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub file: String,
    pub group: String,
    pub role: String,
    pub dateline: Option<String>,
    pub reference_time: String,
    pub posted: Option<String>,
    pub updated: Option<String>,
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn seed() -> PathBuf {
    fixtures().join("seed/000_fbc3d1cb8b5383ef.txt")
}

pub fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(fixtures().join("dev/manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}

/// Seconds since the epoch of an RFC 3339 time.
pub fn system_time(rfc3339: &str) -> SystemTime {
    let ts: jiff::Timestamp = rfc3339.parse().expect("rfc3339");
    SystemTime::UNIX_EPOCH + Duration::from_secs(ts.as_second() as u64)
}

/// Copies a dev fixture to `dir/name`, setting its mtime to the manifest's capture time.
pub fn copy_with_mtime(entry: &Entry, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(fixtures().join("dev").join(&entry.file), &dst).expect("copy fixture");
    set_mtime(&dst, system_time(&entry.reference_time));
    dst
}

pub fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open for mtime");
    f.set_modified(t).expect("set mtime");
}

/// The binary under test: this build's, or the one `WIREWATCH_TEST_BIN` names
/// (to show that a test fails on another build, such as the one before a fix).
pub fn bin() -> PathBuf {
    match std::env::var_os("WIREWATCH_TEST_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_wirewatch")),
    }
}

/// A daemon under test: a temp folder with inbox/, out/, state/ and a config.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<std::process::Child>,
    pub extra_config: String,
    /// Environment variables the daemon (and every command of [`Daemon::cmd`]) gets.
    pub env: Vec<(String, String)>,
}

impl Daemon {
    pub fn new(extra_config: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
        let d = Daemon {
            dir,
            child: None,
            extra_config: extra_config.to_owned(),
            env: Vec::new(),
        };
        d.write_config();
        d
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("wirewatch.toml")
    }

    fn write_config(&self) {
        let p = |r: &str| self.path(r).to_string_lossy().into_owned();
        let mut cfg = format!(
            "[watch]\ndir = {:?}\nsettle_ms = 200\n[output]\npath = {:?}\nrejects = {:?}\nbatch_ms = 2\n[state]\ndir = {:?}\n",
            p("inbox"),
            p("out/articles.jsonl"),
            p("out/rejected.jsonl"),
            p("state")
        );
        // Sections in extra_config replace nothing: keys are appended to their table.
        for line in self.extra_config.lines() {
            cfg.push_str(line);
            cfg.push('\n');
        }
        std::fs::write(self.config_path(), merge_tables(&cfg)).unwrap();
    }

    pub fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(bin());
        c.current_dir(self.dir.path()).env("RUST_LOG", "info");
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// `validate --config` on this daemon's config: returns (exit code, stderr).
    pub fn validate(&self) -> (Option<i32>, String) {
        let out = self
            .cmd()
            .args(["validate", "--config"])
            .arg(self.config_path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `run --once`: returns (exit code, stderr).
    pub fn once(&self) -> (i32, String) {
        let out = self
            .cmd()
            .args(["run", "--once", "--config"])
            .arg(self.config_path())
            .output()
            .unwrap();
        self.assert_whole_lines();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn start(&mut self) {
        let starts = self.log().matches("wirewatch running").count();
        let child = self
            .cmd()
            .args(["run", "--config"])
            .arg(self.config_path())
            .stderr(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(self.path("daemon.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Ready once the watcher is up: the log says so (once per start).
        let t = std::time::Instant::now();
        while self.log().matches("wirewatch running").count() <= starts {
            if t.elapsed() > Duration::from_secs(20) {
                let log = self.log();
                let pid = self.child.as_ref().map_or(0, |c| c.id());
                let mut diag = String::new();
                if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                    for t in tasks.flatten() {
                        let p = t.path();
                        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
                        let wchan = std::fs::read_to_string(p.join("wchan")).unwrap_or_default();
                        let stack = std::fs::read_to_string(p.join("stack")).unwrap_or_default();
                        diag.push_str(&format!(
                            "{} {} {}\n{}\n",
                            t.file_name().to_string_lossy(),
                            comm.trim(),
                            wchan,
                            stack
                        ));
                    }
                }
                panic!(
                    "daemon {pid} did not start; threads:\n{diag}\nlog tail:\n{}",
                    &log[log.len().saturating_sub(1500)..]
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(&mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let code = child.wait().unwrap().code().unwrap_or(-1);
        self.assert_whole_lines();
        code
    }

    /// After a clean exit nothing is half-written: `records()` leaving out an
    /// unterminated last line must never hide one.
    fn assert_whole_lines(&self) {
        for out in ["out/articles.jsonl", "out/rejected.jsonl"] {
            let bytes = std::fs::read(self.path(out)).unwrap_or_default();
            assert!(
                bytes.is_empty() || bytes.ends_with(b"\n"),
                "{out} ends in a partial line after a clean exit"
            );
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// Output records, parsed.
    pub fn records(&self) -> Vec<serde_json::Value> {
        read_jsonl(&self.path("out/articles.jsonl"))
    }

    pub fn rejects(&self) -> Vec<serde_json::Value> {
        read_jsonl(&self.path("out/rejected.jsonl"))
    }

    /// Drops a file into the inbox the safe way: write elsewhere, then rename in.
    pub fn drop_file(&self, name: &str, bytes: &[u8], mtime: Option<SystemTime>) -> PathBuf {
        let tmp = self.path(&format!("{name}.staging"));
        std::fs::write(&tmp, bytes).unwrap();
        if let Some(t) = mtime {
            set_mtime(&tmp, t);
        }
        let dst = self.path("inbox").join(name);
        std::fs::rename(&tmp, &dst).unwrap();
        dst
    }

    /// Drops a dev fixture by rename with its capture time as mtime.
    pub fn drop_fixture(&self, e: &Entry, name: &str) -> PathBuf {
        let bytes = std::fs::read(fixtures().join("dev").join(&e.file)).unwrap();
        self.drop_file(name, &bytes, Some(system_time(&e.reference_time)))
    }

    pub fn wait_records(&self, n: usize) -> Vec<serde_json::Value> {
        wait_for(Duration::from_secs(20), || self.records().len() >= n);
        self.records()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Joins repeated `[table]` headers so extra keys land in the right table.
fn merge_tables(cfg: &str) -> String {
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    let mut current = String::new();
    for line in cfg.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.to_owned();
            if !tables.iter().any(|(n, _)| *n == current) {
                tables.push((current.clone(), Vec::new()));
            }
        } else if !t.is_empty() {
            if let Some((_, lines)) = tables.iter_mut().find(|(n, _)| *n == current) {
                let key = t.split('=').next().unwrap_or("").trim().to_owned();
                lines.retain(|l| l.split('=').next().unwrap_or("").trim() != key);
                lines.push(t.to_owned());
            }
        }
    }
    tables
        .iter()
        .map(|(n, l)| format!("{n}\n{}\n", l.join("\n")))
        .collect()
}

/// Complete lines of a JSON-lines file, parsed. Like any tailing reader, it
/// leaves out a last line that has no newline yet: the daemon may be in the
/// middle of appending it, and a concurrent `read` can see part of a `write`.
/// Every complete line must parse.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// Polls `cond` every 20 ms until true or `limit`; panics on time-out.
pub fn wait_for(limit: Duration, cond: impl FnMut() -> bool) {
    wait_for_or(limit, cond, String::new);
}

/// [`wait_for`], with what `why` says (the daemon's log, say) in the time-out panic.
pub fn wait_for_or(limit: Duration, mut cond: impl FnMut() -> bool, why: impl FnOnce() -> String) {
    let start = std::time::Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            panic!("condition not met within {limit:?}\n{}", why());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks the corpus rules on an output.
pub fn check_corpus_output(manifest: &[Entry], recs: &[Value]) {
    let mut newest: BTreeMap<&str, &Entry> = BTreeMap::new();
    for e in manifest {
        let stamp = |x: &Entry| x.updated.clone().or(x.posted.clone()).unwrap_or_default();
        let cur = newest.entry(&e.group).or_insert(e);
        if stamp(e) > stamp(cur) {
            *cur = e;
        }
    }
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut last: HashMap<String, (String, u64)> = HashMap::new();
    for r in recs {
        let id = r["article_id"].as_str().unwrap().to_owned();
        let stamp = r["updated_at"]
            .as_str()
            .or(r["posted_at"].as_str())
            .unwrap_or("")
            .to_owned();
        assert!(
            seen.insert((id.clone(), stamp.clone())),
            "two lines for {id} {stamp}"
        );
        let rev = r["revision"].as_u64().unwrap();
        if let Some((prev, prev_rev)) = last.get(&id) {
            assert!(stamp > *prev, "{id}: {stamp} after {prev}");
            assert_eq!(rev, prev_rev + 1, "{id}: revision {rev} after {prev_rev}");
            assert_eq!(r["supersedes"].as_str(), Some(prev.as_str()));
        } else {
            assert_eq!(rev, 1);
        }
        last.insert(id, (stamp, rev));
    }
    for (group, e) in &newest {
        // The newest version of every group is in the output, exactly once (a
        // same-stamp copy of it may have been the one emitted).
        let stamp = e.updated.clone().or(e.posted.clone()).unwrap_or_default();
        let n = recs
            .iter()
            .filter(|r| {
                r["updated_at"].as_str().or(r["posted_at"].as_str()) == Some(stamp.as_str())
            })
            .filter(|r| {
                let f = r["source"]["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap();
                manifest
                    .iter()
                    .any(|m| f.ends_with(m.file.as_str()) && m.group == *group)
            })
            .count();
        assert_eq!(n, 1, "group {group}: newest version emitted {n} times");
    }
}

/// `wirewatch check --against OLD NEW`: the NEW record with `changes` against OLD.
#[allow(dead_code)]
pub fn check_against(old: &str, new: &str) -> Value {
    let out = std::process::Command::new(bin())
        .args(["check", "--against", old, new])
        .output()
        .unwrap();
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Asserts that a command exited 0, showing its stderr otherwise.
#[allow(dead_code)]
pub fn assert_success(out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The manifest's first `update` file and the `first` version of its story.
#[allow(dead_code)]
pub fn first_and_update(manifest: &[Entry]) -> (&Entry, &Entry) {
    let update = manifest.iter().find(|e| e.role == "update").unwrap();
    let first = manifest
        .iter()
        .find(|e| e.group == update.group && e.role == "first")
        .unwrap();
    (first, update)
}

/// A plain HTTP/1.1 GET to 127.0.0.1:`port`; returns (status, body). Status 0 when
/// nothing answers.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    if s.read_to_string(&mut resp).is_err() {
        return (0, String::new());
    }
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A port nothing listens on (bound once, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A test that cannot run here (no root, no tmpfs): prints "skipped: …" — or, when
/// the `CI` environment variable is set, fails, so that CI never passes a test that
/// did not run.
pub fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why} (CI is set: a test that cannot run here fails)");
    }
    eprintln!("skipped: {why}");
}

/// A small tmpfs mounted for a test; unmounted (lazily) when dropped.
pub struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `256k`) on `dir`, creating it.
/// Where that cannot be done, see [`skip_or_fail`]: `None` means skip the test.
pub fn mount_tmpfs(dir: &Path, size: &str) -> Option<Tmpfs> {
    std::fs::create_dir_all(dir).unwrap();
    let why = if unsafe { libc::geteuid() } != 0 {
        "mounting a small tmpfs needs root".to_owned()
    } else {
        match std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
        {
            Ok(s) if s.success() => return Some(Tmpfs(dir.to_owned())),
            Ok(s) => format!("cannot mount a tmpfs on {} ({s})", dir.display()),
            Err(e) => format!("cannot run mount: {e}"),
        }
    };
    skip_or_fail(&why);
    None
}

/// Fills the file system under `dir` with one file, `dir/filler`, until a write
/// fails; returns its path (delete it to free the space).
pub fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![b'x'; 4096];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    filler
}
