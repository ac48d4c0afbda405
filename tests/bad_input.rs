//! Bad input never stops the daemon and always leaves a visible outcome. Each case
//! drops the bad file into a running daemon, then a good file, and checks the reject
//! record (kind, path) and that the good file after it is still processed.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use common::Daemon;
use serde_json::Value;

fn seed() -> Vec<u8> {
    std::fs::read(common::seed()).unwrap()
}

/// A distinct good article (its own story), so each one is emitted.
fn good(n: usize) -> Vec<u8> {
    format!("(Ottawa) Story number {n} begins with a sentence about parliament.\nPosted at 10:{:02} a.m.\nBody paragraph {n}.\n", n % 60).into_bytes()
}

/// Runs `make_bad` (which puts something bad into the inbox) on a running daemon,
/// then drops a good file; returns the reject records and the output records.
fn case(extra: &str, make_bad: impl FnOnce(&Daemon)) -> (Vec<Value>, Vec<Value>, String) {
    let mut d = Daemon::new(extra);
    d.start();
    make_bad(&d);
    std::thread::sleep(Duration::from_millis(50));
    d.drop_file("zz-good.txt", &good(1), None);
    let recs = d.wait_records(1);
    common::wait_for(Duration::from_secs(20), || !d.rejects().is_empty());
    assert_eq!(d.stop(), 0, "daemon did not stop cleanly:\n{}", d.log());
    assert!(recs.iter().any(|r| r["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with("zz-good.txt")));
    (d.rejects(), d.records(), d.log())
}

fn assert_reject(rejects: &[Value], name_end: &str, kind: &str) {
    let r = rejects
        .iter()
        .find(|r| r["path"].as_str().unwrap_or("").ends_with(name_end))
        .unwrap_or_else(|| panic!("no reject for {name_end}: {rejects:?}"));
    assert_eq!(r["error"]["kind"], kind, "{r}");
    assert!(!r["error"]["message"].as_str().unwrap().is_empty());
}

#[test]
fn empty_file() {
    let (rej, _, _) = case("", |d| {
        d.drop_file("empty.txt", b"", None);
    });
    assert_reject(&rej, "empty.txt", "empty");
}

#[test]
fn only_blanks() {
    let (rej, _, _) = case("", |d| {
        d.drop_file("blank.txt", b"   \n\n \t\r\n\xc2\xa0\n", None);
    });
    assert_reject(&rej, "blank.txt", "blank");
}

#[test]
fn binary_file() {
    let (rej, _, _) = case("", |d| {
        let bytes: Vec<u8> = (0u32..8192)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
            .collect();
        d.drop_file("image.txt", &bytes, None);
    });
    assert_reject(&rej, "image.txt", "binary");
}

#[test]
fn nul_bytes() {
    let (rej, _, _) = case("", |d| {
        let mut b = seed();
        b[100] = 0;
        d.drop_file("nul.txt", &b, None);
    });
    assert_reject(&rej, "nul.txt", "nul_bytes");
}

#[test]
fn one_gib_file_refused_by_size() {
    let (rej, _, _) = case("", |d| {
        let tmp = d.path("huge.staging");
        let f = std::fs::File::create(&tmp).unwrap();
        f.set_len(1 << 30).unwrap(); // sparse: 1 GiB that costs no disk
        std::fs::rename(&tmp, d.path("inbox/huge.txt")).unwrap();
    });
    assert_reject(&rej, "huge.txt", "too_large");
}

#[test]
fn line_of_ten_megabytes() {
    // Raise the file limit so the line limit is what trips.
    let (rej, _, _) = case("[parse]\nmax_bytes = 16777216", |d| {
        let mut b = b"(Paris) ".to_vec();
        b.extend(std::iter::repeat_n(b'x', 10 << 20));
        d.drop_file("longline.txt", &b, None);
    });
    assert_reject(&rej, "longline.txt", "line_too_long");
}

#[test]
fn invalid_utf8_garbage_is_rejected_and_latin1_article_is_decoded() {
    let mut d = Daemon::new("");
    d.start();
    // Latin-1 article: a record, decoded as Windows-1252.
    d.drop_file("latin1.txt", b"(Qu\xe9bec) Le premier ministre a parl\xe9 de la r\xe9forme.\nPubli\xe9 \xe0 10 h 05\nCorps du texte.\n", None);
    // High bytes with no line structure: not an article.
    d.drop_file(
        "garbage.txt",
        &[
            0xff, 0xfe, 0x80, 0x81, 0x01, 0x02, 0x03, 0x04, 0xc3, 0x28, 0x05, 0x06,
        ],
        None,
    );
    d.drop_file("zz-good.txt", &good(2), None);
    let recs = d.wait_records(2);
    common::wait_for(Duration::from_secs(20), || !d.rejects().is_empty());
    assert_eq!(d.stop(), 0);
    let latin = recs
        .iter()
        .find(|r| {
            r["source"]["path"]
                .as_str()
                .unwrap()
                .ends_with("latin1.txt")
        })
        .unwrap();
    assert_eq!(latin["encoding"], "windows-1252");
    assert_eq!(latin["dateline"], "Québec");
    assert_reject(&d.rejects(), "garbage.txt", "binary");
}

#[test]
fn deleted_before_read_is_rejected_as_not_found() {
    // The watcher saw the file, the reader found nothing: exercised directly on the
    // reader, since the window between event and read is too short to hit reliably.
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        wirewatch::dedupe::Store::open(&dir.path().join("state"), 1 << 20).unwrap(),
    );
    let ctx = wirewatch::pipeline::ReaderContext {
        opts: wirewatch::parse::ParseOptions::new("America/Toronto").unwrap(),
        store,
        root: dir.path().to_owned(),
        settle: Duration::from_millis(10),
        stop: tokio::sync::watch::channel(false).1,
    };
    match wirewatch::pipeline::examine(&dir.path().join("gone.txt"), &ctx) {
        wirewatch::pipeline::Outcome::Rejected { reject, .. } => {
            assert_eq!(reject.kind, wirewatch::error::RejectKind::NotFound)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_to_nothing_before_read() {
    let (rej, _, _) = case("", |d| {
        let p = d.path("inbox").join("trunc.txt");
        std::fs::write(&p, seed()).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
    });
    assert_reject(&rej, "trunc.txt", "empty");
}

#[test]
fn no_read_permission() {
    if unsafe { libc::geteuid() } == 0 {
        // root reads any file: run the daemon as an unprivileged user instead.
        let nobody = 65534;
        let mut d = Daemon::new("");
        let chown = |p: &std::path::Path| {
            let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
            unsafe { libc::chown(c.as_ptr(), nobody, nobody) };
        };
        chown(d.dir.path());
        chown(&d.path("inbox"));
        chown(&d.config_path());
        // The unprivileged user may not reach the build folder (a clone in a 0700
        // folder): run a copy of the binary from the test's own folder.
        let exe = d.path("wirewatch");
        std::fs::copy(common::bin(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut cmd = std::process::Command::new(&exe);
        cmd.current_dir(d.dir.path()).env("RUST_LOG", "info");
        use std::os::unix::process::CommandExt;
        cmd.uid(nobody).gid(nobody);
        let child = cmd
            .args(["run", "--config"])
            .arg(d.config_path())
            .stderr(std::fs::File::create(d.path("daemon.log")).unwrap())
            .spawn()
            .unwrap();
        chown(&d.path("daemon.log"));
        d.child = Some(child);
        common::wait_for(Duration::from_secs(20), || {
            d.log().contains("wirewatch running")
        });
        let p = d.path("secret.staging");
        std::fs::write(&p, seed()).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
        std::fs::rename(&p, d.path("inbox/secret.txt")).unwrap();
        d.drop_file("zz-good.txt", &good(3), None);
        chown(&d.path("inbox/zz-good.txt"));
        d.wait_records(1);
        common::wait_for(Duration::from_secs(20), || !d.rejects().is_empty());
        assert_eq!(d.stop(), 0, "{}", d.log());
        assert_reject(&d.rejects(), "secret.txt", "permission_denied");
        return;
    }
    let (rej, _, _) = case("", |d| {
        let p = d.path("secret.staging");
        std::fs::write(&p, seed()).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
        std::fs::rename(&p, d.path("inbox/secret.txt")).unwrap();
    });
    assert_reject(&rej, "secret.txt", "permission_denied");
}

#[test]
fn directory_named_like_an_article() {
    let (rej, _, _) = case("", |d| {
        std::fs::create_dir(d.path("inbox/folder.txt")).unwrap();
    });
    assert_reject(&rej, "folder.txt", "not_a_file");
}

#[test]
fn fifo() {
    let (rej, _, _) = case("", |d| {
        let p = std::ffi::CString::new(d.path("inbox/pipe.txt").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o644) }, 0);
    });
    assert_reject(&rej, "pipe.txt", "not_a_file");
}

#[test]
fn symlink_outside_is_not_followed_inside_is_read() {
    let mut d = Daemon::new("");
    let outside = d.path("outside.txt");
    std::fs::write(&outside, seed()).unwrap();
    std::fs::create_dir(d.path("inbox/sub")).unwrap();
    std::fs::write(d.path("inbox/sub/real.txt"), good(4)).unwrap();
    common::set_mtime(
        &d.path("inbox/sub/real.txt"),
        common::system_time("2022-10-03T02:55:00Z"),
    );
    d.start();
    d.wait_records(1);
    std::os::unix::fs::symlink(&outside, d.path("inbox/escape.txt")).unwrap();
    std::os::unix::fs::symlink(d.path("inbox/sub/real.txt"), d.path("inbox/alias.txt")).unwrap();
    std::os::unix::fs::symlink(d.path("nowhere.txt"), d.path("inbox/dangling.txt")).unwrap();
    d.drop_file("zz-good.txt", &good(5), None);
    common::wait_for(Duration::from_secs(20), || {
        d.rejects().len() >= 2 && d.log().contains("alias.txt")
    });
    d.wait_records(2);
    assert_eq!(d.stop(), 0);
    let rej = d.rejects();
    assert_reject(&rej, "escape.txt", "symlink");
    assert_reject(&rej, "dangling.txt", "symlink");
    // Inside the folder: read through the link; same story as real.txt → duplicate.
    assert!(d.log().contains("duplicate"), "{}", d.log());
    assert_eq!(d.records().len(), 2);
}

#[test]
fn file_being_written_when_the_daemon_starts() {
    let mut d = Daemon::new("");
    let p = d.path("inbox/inprogress.txt");
    let bytes = seed();
    let (a, b) = bytes.split_at(bytes.len() / 2);
    // The writer holds the file open across the daemon's start, pausing longer than
    // the settle time: the daemon sees the file is still open for writing.
    let mut f = std::fs::File::create(&p).unwrap();
    std::io::Write::write_all(&mut f, a).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    d.start();
    std::thread::sleep(Duration::from_millis(300));
    std::io::Write::write_all(&mut f, b).unwrap();
    drop(f);
    let recs = d.wait_records(1);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(d.stop(), 0);
    assert_eq!(d.records().len(), 1);
    assert_eq!(recs[0]["source"]["bytes"], bytes.len() as u64);
    assert!(d.rejects().is_empty());
}

#[test]
fn non_utf8_and_newline_file_names_round_trip() {
    use std::os::unix::ffi::OsStringExt;
    let mut d = Daemon::new("");
    d.start();
    let weird = PathBuf::from(std::ffi::OsString::from_vec(b"caf\xe9-story.txt".to_vec()));
    let staging = d.path("w.staging");
    std::fs::write(&staging, good(6)).unwrap();
    std::fs::rename(&staging, d.path("inbox").join(&weird)).unwrap();
    std::fs::write(&staging, good(7)).unwrap();
    std::fs::rename(&staging, d.path("inbox/line\nbreak.txt")).unwrap();
    let recs = d.wait_records(2);
    assert_eq!(d.stop(), 0);
    let latin = recs
        .iter()
        .find(|r| r["source"].get("path_hex").is_some())
        .expect("a record with path_hex");
    let raw = hex_decode(latin["source"]["path_hex"].as_str().unwrap());
    let p = PathBuf::from(std::ffi::OsString::from_vec(raw));
    assert!(
        p.is_file(),
        "path_hex does not lead back to the file: {p:?}"
    );
    assert_eq!(p.file_name().unwrap().as_bytes(), b"caf\xe9-story.txt");
    let nl = recs
        .iter()
        .find(|r| r["source"]["path"].as_str().unwrap().contains('\n'))
        .expect("newline name");
    assert!(PathBuf::from(nl["source"]["path"].as_str().unwrap()).is_file());
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
