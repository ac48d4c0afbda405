//! Running under a service manager and a log collector: the `sd_notify` protocol
//! (`READY=1` after the start-up scan, `WATCHDOG=1` only while the committer beats,
//! `STOPPING=1`) on a real datagram socket, flat JSON logs, colour only on a
//! terminal, `--log-level`, the unit file as `systemd-analyze` reads it, and the man
//! page generated from the command line.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, skip_or_fail, Daemon};
use serde_json::Value;

/// A service manager's end of `NOTIFY_SOCKET`: a datagram socket in the test's dir.
struct Manager {
    sock: UnixDatagram,
    got: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Manager {
            sock,
            got: Vec::new(),
        }
    }

    /// Reads notices until one line is `want` (returns its index in `got`), or
    /// panics after `limit`.
    fn wait(&mut self, want: &str, limit: Duration) -> usize {
        let t = Instant::now();
        loop {
            if let Some(i) = self.got.iter().position(|l| l == want) {
                return i;
            }
            assert!(
                t.elapsed() < limit,
                "no {want:?} within {limit:?}; got {:?}",
                self.got
            );
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.got.extend(msg.lines().map(str::to_owned));
            }
        }
    }

    /// Reads every notice that arrives within `dur`.
    fn drain(&mut self, dur: Duration) {
        let t = Instant::now();
        let mut buf = [0u8; 4096];
        while t.elapsed() < dur {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.got.extend(msg.lines().map(str::to_owned));
            }
        }
    }

    fn count(&self, want: &str) -> usize {
        self.got.iter().filter(|l| *l == want).count()
    }
}

fn spawn_under_manager(d: &Daemon, socket: &Path, watchdog_usec: u64, fault: &str) -> Child {
    let mut c = d.cmd();
    c.args(["run", "--config"])
        .arg(d.config_path())
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", watchdog_usec.to_string())
        .stderr(std::fs::File::create(d.path("daemon.log")).unwrap());
    if !fault.is_empty() {
        c.env("WIREWATCH_FAULT", fault);
    }
    c.spawn().unwrap()
}

#[test]
fn systemd_hears_ready_after_the_scan_then_watchdog_then_stopping() {
    let port = common::free_port();
    let d = Daemon::new(&format!("[http]\nlisten = \"127.0.0.1:{port}\""));
    for i in 0..20 {
        let story = format!(
            "(Quebec) Mayor Jean Tremblay announced measure {i} for the council.\nPosted on May {}, 2024 at 9:{i:02}\nThe vote is next week, officials said.\n",
            1 + i
        );
        // Written an hour ago: settled at the first scan, whatever the start-up
        // takes (a file younger than `settle_ms` waits, neither known nor queued).
        let written = std::time::SystemTime::now() - Duration::from_secs(3600);
        d.drop_file(&format!("a{i}.txt"), story.as_bytes(), Some(written));
    }
    let socket = d.path("notify.sock");
    let mut m = Manager::bind(&socket);
    let mut child = spawn_under_manager(&d, &socket, 400_000, "");
    let ready = m.wait("READY=1", Duration::from_secs(20));
    assert!(
        m.got[..ready]
            .iter()
            .any(|l| l.starts_with("STATUS=starting")),
        "a STATUS=starting… before READY=1: {:?}",
        m.got
    );
    assert!(
        m.got[ready..]
            .iter()
            .any(|l| l.starts_with("STATUS=running")),
        "STATUS=running beside READY=1: {:?}",
        m.got
    );
    // Ready means the folder was listed: every file present at start is taken.
    let (code, body) = common::http_get(port, "/metrics");
    assert_eq!(code, 200);
    let seen = body
        .lines()
        .find(|l| l.starts_with("wirewatch_files_seen_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(seen, Some(20.0), "{body}");
    d.wait_records(1);
    // 400 ms watchdog: fed every 200 ms while the committer beats (idle: every 1 s).
    let before = m.count("WATCHDOG=1");
    m.drain(Duration::from_millis(1500));
    let fed = m.count("WATCHDOG=1") - before;
    assert!(fed >= 4, "WATCHDOG=1 every 200 ms; got {fed} in 1.5 s");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    m.wait("STOPPING=1", Duration::from_secs(10));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", d.log());
    assert_eq!(d.records().len(), 20, "{}", d.log());
}

#[test]
fn the_watchdog_starves_when_the_committer_hangs() {
    if !cfg!(feature = "fault-injection") {
        skip_or_fail("the hanging committer needs a build with --features fault-injection");
        return;
    }
    let d = Daemon::new("");
    let socket = d.path("notify.sock");
    let mut m = Manager::bind(&socket);
    let mut child = spawn_under_manager(&d, &socket, 600_000, "hang_commit");
    m.wait("READY=1", Duration::from_secs(20));
    let fed_before = m.count("WATCHDOG=1");
    // The first batch hangs the committer for good.
    d.drop_file("x.txt", &std::fs::read(common::seed()).unwrap(), None);
    common::wait_for(Duration::from_secs(10), || {
        d.log().contains("the committer hangs")
    });
    // Half the period (300 ms) after its last beat, the feeding stops.
    m.drain(Duration::from_millis(600));
    let fed_at_hang = m.count("WATCHDOG=1");
    m.drain(Duration::from_millis(1500));
    let fed_after = m.count("WATCHDOG=1");
    let _ = child.kill();
    let _ = child.wait();
    assert!(fed_at_hang >= fed_before, "{:?}", m.got);
    assert_eq!(
        fed_after, fed_at_hang,
        "no WATCHDOG=1 while the committer hangs: {:?}",
        m.got
    );
    assert!(
        d.log().contains("no longer feeding the systemd watchdog"),
        "{}",
        d.log()
    );
}

#[test]
fn json_logs_are_flat_and_name_the_config_file() {
    let d = Daemon::new("");
    d.drop_file("x.txt", &std::fs::read(common::seed()).unwrap(), None);
    let out = d
        .cmd()
        .args(["run", "--once", "--log-format", "json", "--config"])
        .arg(d.config_path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let mut lines = 0;
    let mut loaded = false;
    for line in stderr.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        for key in ["timestamp", "level", "message", "target"] {
            assert!(v[key].is_string(), "no top-level {key} in {line}");
        }
        assert!(v.get("fields").is_none(), "nested fields in {line}");
        if v["message"] == "configuration loaded" {
            assert_eq!(v["config"], d.config_path().to_string_lossy().as_ref());
            loaded = true;
        }
        lines += 1;
    }
    assert!(lines >= 1 && loaded, "{stderr}");
}

#[test]
fn human_logs_to_a_file_have_no_colour_codes() {
    let d = Daemon::new("");
    let out = d
        .cmd()
        .args(["run", "--once", "--config"])
        .arg(d.config_path())
        // Colour is for terminals only, whatever the environment says of colour.
        .env("CLICOLOR_FORCE", "1")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("configuration loaded"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "ANSI codes in a log file: {stderr:?}"
    );
}

#[test]
fn log_level_flag_rules_over_rust_log_and_the_config() {
    let d = Daemon::new("[log]\nlevel = \"info\"");
    let run = |level: &str, rust_log: &str| {
        let out = d
            .cmd()
            .env("RUST_LOG", rust_log)
            .args(["run", "--once", "--log-level", level, "--config"])
            .arg(d.config_path())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The flag is quieter than RUST_LOG and the config: it rules.
    let quiet = run("warn", "info");
    assert!(!quiet.contains(" INFO "), "{quiet}");
    // And louder than RUST_LOG.
    let chatty = run("info", "error");
    assert!(chatty.contains(" INFO "), "{chatty}");
    assert!(chatty.contains("configuration loaded"), "{chatty}");
    let bad = d
        .cmd()
        .args(["run", "--once", "--log-level", "loud"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--log-level") && err.contains("debug"),
        "{err}"
    );
}

/// The unit file with its ExecStart pointing at this build (systemd checks the
/// binary exists), in `dir`.
fn unit_for_this_build(dir: &Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wirewatch.service"),
    )
    .unwrap();
    let unit = unit.replace("/usr/local/bin/wirewatch", &bin().to_string_lossy());
    let path = dir.join("wirewatch.service");
    std::fs::write(&path, unit).unwrap();
    path
}

fn systemd_analyze() -> Option<Command> {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip_or_fail("systemd-analyze is not installed (Debian package systemd)");
        return None;
    }
    Some(Command::new("systemd-analyze"))
}

#[test]
fn the_unit_file_verifies() {
    let Some(mut sa) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    // --man=no: the man page is not installed on a test host.
    let out = sa.args(["verify", "--man=no"]).arg(&unit).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    let own: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("wirewatch.service"))
        .collect();
    assert!(own.is_empty(), "systemd-analyze verify: {stderr}");
}

#[test]
fn the_unit_file_is_sandboxed() {
    let Some(mut sa) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    // systemd's exposure scale: 0 (locked down) to 10 (unprotected), and
    // --threshold in tenths of it; docs/operating.md lists what is left open and why.
    let out = sa
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&unit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exposure above 2.0:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Overall exposure level"), "{stdout}");
}

#[test]
fn the_man_pages_are_generated_from_the_command_line() {
    let out = Command::new(bin()).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH wirewatch 1"), "{page}");
    for sub in [
        "wirewatch\\-run(1)",
        "wirewatch\\-check(1)",
        "wirewatch\\-tail(1)",
    ] {
        assert!(page.contains(sub), "man page lacks {sub}:\n{page}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let run = std::fs::read_to_string(dir.path().join("wirewatch-run.1")).unwrap();
    assert!(run.contains("\\-\\-log\\-level"), "{run}");
    // The committed pages (docs/man/) are this build's.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut have: Vec<String> = std::fs::read_dir(&committed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    have.sort();
    assert_eq!(
        names, have,
        "docs/man is stale: run `cargo run -- man --dir docs/man`"
    );
    for n in names {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&n)).unwrap(),
            std::fs::read_to_string(committed.join(&n)).unwrap(),
            "docs/man/{n} is stale: run `cargo run -- man --dir docs/man`"
        );
    }
}
