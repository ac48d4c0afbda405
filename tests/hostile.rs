//! Hostile conditions, each against the real binary on real files: a process that
//! opens inbox files for writing while they are read, a symbolic link swapped in
//! while a file waits for its writer, descriptors used up by idle connections,
//! folders created and filled while running, a stop during the start-up scan, and
//! config values or files that must be refused rather than crash the daemon.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::{wait_for, wait_for_or, Daemon};

/// A distinct story per `n`: its own posted minute, so ids never collide.
fn story(n: usize) -> Vec<u8> {
    let (day, hour, min) = (1 + (n / 1440) % 28, (n / 60) % 24, n % 60);
    format!(
        "(Toronto) Council member {n} proposed a measure on transit funding today.\nPosted on September {day}, 2022 at {hour}:{min:02}\nThe vote is expected next week, officials said.\n"
    )
    .into_bytes()
}

fn file_names(recs: &[serde_json::Value]) -> BTreeSet<String> {
    recs.iter()
        .map(|r| {
            let p = r["source"]["path"].as_str().or(r["path"].as_str()).unwrap();
            p.rsplit('/').next().unwrap().to_owned()
        })
        .collect()
}

fn alive(d: &mut Daemon) -> bool {
    d.child
        .as_mut()
        .is_some_and(|c| c.try_wait().unwrap().is_none())
}

/// Waits for a child to exit, at most `limit`; None when it did not.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn writers_opening_inbox_files_cannot_kill_the_daemon() {
    // Each file is renamed in, then opened for writing and closed again and again
    // by this process while the daemon reads it (editors, rsync --inplace and
    // scanners do this): the kernel breaks the daemon's read lease with SIGIO.
    let mut d = Daemon::new("[watch]\nsettle_ms = 1\n");
    d.start();
    let pid = d.child.as_ref().unwrap().id() as i32;
    const STREAMS: usize = 6;
    const PER_STREAM: usize = 20;
    std::thread::scope(|s| {
        for stream in 0..STREAMS {
            let d = &d;
            s.spawn(move || {
                for i in 0..PER_STREAM {
                    let n = stream * PER_STREAM + i;
                    let path = d.drop_file(&format!("w{n:03}.txt"), &story(n), None);
                    // The notice the kernel sends a lease holder when a writer
                    // opens the file, sent outright: the race above is narrow.
                    unsafe { libc::kill(pid, libc::SIGIO) };
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(150) {
                        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) {
                            drop(f);
                        }
                        // Now and then a pause, so the daemon's lease can be granted
                        // and then broken by the next open.
                        if t.elapsed().as_micros().is_multiple_of(7) {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                }
            });
        }
    });
    let n = STREAMS * PER_STREAM;
    wait_for(Duration::from_secs(60), || {
        !alive(&mut d) || d.records().len() >= n
    });
    assert!(
        alive(&mut d),
        "the daemon died while files were opened for writing; log:\n{}",
        d.log()
    );
    let recs = d.records();
    assert_eq!(file_names(&recs).len(), n, "every file emitted once");
    assert_eq!(recs.len(), n, "nothing doubled");
    assert_eq!(d.stop(), 0);
}

#[test]
fn a_symlink_swapped_in_while_the_file_waits_for_its_writer_leaks_nothing() {
    let mut d = Daemon::new("[watch]\nsettle_ms = 300\n");
    // Events, hand-overs and reads in the log, for a failure to be read from it.
    d.env.push(("RUST_LOG".into(), "wirewatch=debug".into()));
    let secret = d.path("secret.txt");
    std::fs::write(
        &secret,
        b"(Ottawa) SECRETMARKER payroll figures for the whole ministry are listed here.\nPosted on September 3, 2022 at 10:00\nNobody outside should read this.\n",
    )
    .unwrap();
    d.start();
    // A writer creates the file in place and keeps it open: the reader waits for
    // it to close before reading.
    let target = d.path("inbox/a.txt");
    let mut writer = std::fs::File::create(&target).unwrap();
    writer.write_all(&story(1)).unwrap();
    writer.flush().unwrap();
    // Past the settle time, the reader has the file and waits for the writer.
    std::thread::sleep(Duration::from_millis(1200));
    // Swap a link to the secret into place (atomically), then let the writer go.
    let link = d.path("inbox/.a.txt.link");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    std::fs::rename(&link, &target).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(writer);
    wait_for_or(
        Duration::from_secs(30),
        || {
            d.rejects()
                .iter()
                .any(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/a.txt")))
        },
        || {
            format!(
                "no reject for the link; records {:?}; log:\n{}",
                d.records(),
                d.log()
            )
        },
    );
    // Give a leak every chance to show.
    std::thread::sleep(Duration::from_millis(1000));
    let out = std::fs::read_to_string(d.path("out/articles.jsonl")).unwrap_or_default();
    assert!(
        !out.contains("SECRETMARKER"),
        "text from outside the watched folder reached the output:\n{out}"
    );
    let rejects = d.rejects();
    let link_rejects: Vec<_> = rejects
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/a.txt")))
        .collect();
    assert_eq!(link_rejects.len(), 1, "{rejects:?}");
    assert_eq!(link_rejects[0]["error"]["kind"], "symlink");
    // What was written in the folder (the file the reader held) is the one emitted.
    let recs = d.records();
    assert!(recs.len() <= 1, "{recs:?}");
    for r in &recs {
        assert!(r["lede"].as_str().unwrap().contains("Council member 1 "));
    }
    assert_eq!(d.stop(), 0);
}

/// Descriptors in use by a process.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |r| r.count())
}

#[test]
fn used_up_descriptors_are_waited_out_not_recorded_as_rejects() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut d = Daemon::new(&format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n[watch]\nsettle_ms = 50\n"
    ));
    // Start, and learn how many descriptors the running daemon needs.
    d.start();
    let pid = d.child.as_ref().unwrap().id();
    d.drop_file("warm.txt", &story(0), None);
    d.wait_records(1);
    let base = fd_count(pid);
    d.stop();
    // Again, with a descriptor limit just above that.
    let limit = (base + 24) as libc::rlim_t;
    let log = std::fs::File::options()
        .append(true)
        .open(d.path("daemon.log"))
        .unwrap();
    let mut cmd = d.cmd();
    cmd.args(["run", "--config"])
        .arg(d.config_path())
        .stderr(log);
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's limit.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let starts = d.log().matches("wirewatch running").count();
    d.child = Some(cmd.spawn().unwrap());
    let pid = d.child.as_ref().unwrap().id();
    wait_for(Duration::from_secs(20), || {
        d.log().matches("wirewatch running").count() > starts
    });
    // Idle connections until the daemon has no descriptor left.
    let mut conns = Vec::new();
    let t = Instant::now();
    while (fd_count(pid) as libc::rlim_t) < limit {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "descriptors: {} of {limit}",
            fd_count(pid)
        );
        conns.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
    for n in 1..=5 {
        d.drop_file(&format!("f{n}.txt"), &story(n), None);
    }
    wait_for(Duration::from_secs(20), || d.log().contains("retrying"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        d.rejects().is_empty(),
        "a transient error was recorded: {:?}",
        d.rejects()
    );
    drop(conns);
    let recs = d.wait_records(6);
    assert_eq!(recs.len(), 6, "{recs:?}");
    assert!(d.rejects().is_empty(), "{:?}", d.rejects());
    assert_eq!(d.stop(), 0);
    // And nothing is left to do at the next start.
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    assert_eq!(d.records().len(), 6);
}

#[test]
fn folders_created_and_filled_while_running_miss_nothing() {
    const LEVELS: usize = 30;
    const PER_LEVEL: usize = 66;
    let mut d = Daemon::new("[watch]\nsettle_ms = 100\n");
    d.start();
    let mut dir = d.path("inbox");
    let mut n = 0;
    for level in 0..LEVELS {
        dir = dir.join(format!("l{level:02}"));
        std::fs::create_dir(&dir).unwrap();
        for _ in 0..PER_LEVEL {
            std::fs::write(dir.join(format!("f{n:04}.txt")), story(n)).unwrap();
            n += 1;
        }
    }
    let total = LEVELS * PER_LEVEL;
    // Every file gets an outcome without a restart.
    let outcomes = || d.records().len() + d.rejects().len();
    let t = Instant::now();
    while outcomes() < total && t.elapsed() < Duration::from_secs(180) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let recs = d.records();
    let seen = file_names(&recs);
    let missing: Vec<String> = (0..total)
        .map(|n| format!("f{n:04}.txt"))
        .filter(|f| !seen.contains(f))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {total} files never seen: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert_eq!(recs.len(), total, "nothing doubled");
    assert!(d.rejects().is_empty(), "{:?}", d.rejects());
    assert_eq!(d.stop(), 0);
}

#[test]
fn a_stop_during_the_start_up_scan_ends_it() {
    const N: usize = 5000;
    let mut d = Daemon::new("[pipeline]\nworkers = 1\nchannel_capacity = 16\n");
    let inbox = d.path("inbox");
    for n in 0..N {
        std::fs::write(inbox.join(format!("s{n:05}.txt")), story(n)).unwrap();
        // Settled: older than the settle time.
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    for n in 0..N {
        common::set_mtime(&inbox.join(format!("s{n:05}.txt")), old);
    }
    d.start();
    let mut child = d.child.take().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let code = wait_exit(&mut child, Duration::from_secs(60));
    if code.is_none() {
        let _ = child.kill();
    }
    assert_eq!(
        code,
        Some(0),
        "one SIGTERM must end the scan; log:\n{}",
        d.log()
    );
    let first = d.records().len();
    assert!(first < N, "the scan ran to its end before stopping");
    // Nothing taken is lost or doubled: the next pass does the rest.
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    let recs = d.records();
    assert_eq!(recs.len(), N);
    assert_eq!(file_names(&recs).len(), N);
}

#[test]
fn config_values_that_would_crash_run_are_refused() {
    for (extra, key) in [
        (
            "[pipeline]\nchannel_capacity = 9223372036854775807\n",
            "pipeline.channel_capacity",
        ),
        (
            "[pipeline]\nworkers = 4611686018427387904\n",
            "pipeline.workers",
        ),
        ("[log]\nlevel = \"warning\"\n", "log.level"),
    ] {
        let d = Daemon::new(extra);
        for verb in ["validate", "run"] {
            let mut args = vec![verb];
            if verb == "run" {
                args.push("--once");
            }
            let out = d
                .cmd()
                .args(&args)
                .arg("--config")
                .arg(d.config_path())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code().is_some_and(|c| c != 0 && c != 101),
                "{verb} {extra}: {:?} {err}",
                out.status
            );
            assert!(err.contains(key), "{verb} {extra}: {err}");
            assert!(!err.contains("panicked"), "{verb} {extra}: {err}");
        }
    }
}

#[test]
fn a_config_that_is_a_device_or_huge_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, vec![b'#'; 4 << 20]).unwrap();
    for config in [std::path::PathBuf::from("/dev/zero"), huge] {
        let mut child = std::process::Command::new(common::bin())
            .args(["validate", "--config"])
            .arg(&config)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let code = wait_exit(&mut child, Duration::from_secs(20));
        if code.is_none() {
            let _ = child.kill();
        }
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(code.is_some_and(|c| c != 0), "{config:?}: {code:?} {err}");
        assert!(err.contains(&*config.to_string_lossy()), "{err}");
    }
}

#[test]
fn the_same_bytes_on_another_day_are_a_duplicate_not_a_second_story() {
    // The seed's stamps are times of day ("Posted at 10:23 p.m."): they resolve
    // against the capture day, the file's modification time.
    let seed = std::fs::read(common::seed()).unwrap();
    let day = |d: &str| common::system_time(&format!("{d}T03:00:00Z"));
    let mut d = Daemon::new("");
    d.start();
    d.drop_file("first.txt", &seed, Some(day("2022-10-03")));
    d.wait_records(1);
    d.drop_file("again.txt", &seed, Some(day("2022-11-20")));
    wait_for(Duration::from_secs(20), || {
        d.log().contains("the same bytes were already processed")
    });
    assert_eq!(d.stop(), 0);
    // Across a restart too, and on a third day.
    d.start();
    d.drop_file("third.txt", &seed, Some(day("2023-01-15")));
    wait_for(Duration::from_secs(20), || {
        d.log()
            .matches("the same bytes were already processed")
            .count()
            >= 2
    });
    assert_eq!(d.stop(), 0);
    let recs = d.records();
    assert_eq!(recs.len(), 1, "one story, once: {:?}", file_names(&recs));
    // A changed byte is new content: judged by its stamps as before.
    let mut edited = seed.clone();
    edited.extend_from_slice(b"\nAn added closing paragraph.\n");
    d.drop_file("edited.txt", &edited, Some(day("2022-10-03")));
    let (code, err) = d.once();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        d.records().len(),
        1,
        "same stamps: a duplicate by its stamps"
    );
    assert!(err.contains("1 duplicate"), "{err}");
}
