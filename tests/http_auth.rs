//! The listener opened to a newsroom, against the real binary over real sockets:
//! with `[http] token` (or `token_file`) every endpoint answers 401 without the
//! token or with a wrong one and 200 with it (header, cookie or query parameter),
//! over plain HTTP and over TLS (certificates made here with rcgen, a rustls
//! client); `/health` may stay open; a client that speaks plain HTTP to the TLS
//! port does not stop the listener; `validate` and `run` refuse a listener beyond
//! loopback without a token.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::Daemon;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

const TOKEN: &str = "9f2c4e61d0b3a7c85e4f1a2b3c4d5e6f";

/// A response: status, head (lower-cased) and body (empty for a 200 `/events`,
/// whose body never ends).
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Sends `GET path` with `headers` on `s` and reads the reply.
fn exchange(mut s: impl Read + Write, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes())
        .and_then(|()| s.flush())
        .is_err()
    {
        // A TLS client that refused the server's certificate.
        return Reply {
            status: 0,
            head: String::new(),
            body: String::new(),
        };
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let stream = path.starts_with("/events");
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if stream && got.windows(4).any(|w| w == b"\r\n\r\n") && got.starts_with(b"HTTP/1.1 200") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Reply {
        status: head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A plain HTTP request.
fn plain(port: u16, path: &str, headers: &[(&str, &str)]) -> Reply {
    exchange(connect(port), path, headers)
}

/// The test's certificate authority, and a server certificate for localhost.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wirewatch test CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = params.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).unwrap().pem();
    Pki {
        ca,
        cert,
        key: key.serialize_pem(),
    }
}

/// A rustls client that trusts `ca`.
fn client(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A request over TLS (server name `localhost`).
fn tls(config: &Arc<rustls::ClientConfig>, port: u16, path: &str, h: &[(&str, &str)]) -> Reply {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    exchange(rustls::StreamOwned::new(conn, connect(port)), path, h)
}

/// A daemon listening on a free loopback port with `http` added to `[http]`.
fn start(http: &str) -> (Daemon, u16) {
    let port = common::free_port();
    let mut d = Daemon::new(&format!("[http]\nlisten = \"127.0.0.1:{port}\"\n{http}"));
    d.start();
    common::wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (d, port)
}

const PATHS: [&str; 3] = ["/metrics", "/health", "/events"];

/// The three cases on every endpoint through `get`: no token and a wrong one are
/// 401 with a Bearer challenge, the right one in the header is 200 (`/health`:
/// not 401, as it may say 503 while the daemon starts).
fn check_three_cases(get: impl Fn(&str, &[(&str, &str)]) -> Reply) {
    let bearer = format!("Bearer {TOKEN}");
    for path in PATHS {
        let r = get(path, &[]);
        assert_eq!(r.status, 401, "{path} without a token: {r:?}");
        assert!(r.head.contains("www-authenticate: bearer"), "{r:?}");
        assert!(r.body.contains("[http] token"), "{r:?}");
        let r = get(path, &[("Authorization", "Bearer wrong-token-wrong-token")]);
        assert_eq!(r.status, 401, "{path} with a wrong token: {r:?}");
        assert!(r.head.contains("error=\"invalid_token\""), "{r:?}");
        let r = get(path, &[("Authorization", &bearer)]);
        assert_eq!(r.status, 200, "{path} with the token: {r:?}");
    }
    // What a page's EventSource can send: the cookie, or the query parameter.
    let cookie = format!("theme=dark; wirewatch_token={TOKEN}");
    let r = get("/events", &[("Cookie", &cookie)]);
    assert_eq!(r.status, 200, "cookie: {r:?}");
    let r = get(&format!("/events?place=colombia&token={TOKEN}"), &[]);
    assert_eq!(r.status, 200, "query: {r:?}");
    let r = get("/events?token=wrong-token-wrong-token", &[]);
    assert_eq!(r.status, 401, "wrong query token: {r:?}");
    // The token parameter hides no other: an unknown one is still a 400.
    let r = get(&format!("/events?token={TOKEN}&plaec=x"), &[]);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("plaec"), "{r:?}");
}

/// Plain HTTP with `token_file`: without, with a wrong and with the right token on
/// `/metrics`, `/health` and `/events`; the token never reaches the log.
#[test]
fn every_endpoint_requires_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("http-token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let (mut d, port) = start(&format!("token_file = {:?}\n", file.display()));
    check_three_cases(|path, h| plain(port, path, h));
    assert!(!d.log().contains(TOKEN), "{}", d.log());
    assert_eq!(d.stop(), 0);
}

/// The desk behind a token: its page and script load without it (they hold no
/// data, and the page asks for the token), its data endpoints need it, and the
/// session cookie the page sets opens them.
#[test]
fn the_desk_page_loads_and_its_data_needs_the_token() {
    let (mut d, port) = start(&format!("token = {TOKEN:?}\n"));
    for path in ["/", "/desk.js", "/desk.css"] {
        let r = plain(port, path, &[]);
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    let js = plain(port, "/desk.js", &[]).body;
    assert!(
        js.contains("wirewatch_token="),
        "the page keeps the token in a cookie"
    );
    let cookie = format!("wirewatch_token={TOKEN}");
    for path in ["/api/stats", "/api/story/0123456789abcdef"] {
        assert_eq!(plain(port, path, &[]).status, 401, "{path} without a token");
        let r = plain(port, path, &[("Cookie", &cookie)]);
        assert_ne!(r.status, 401, "{path} with the cookie: {r:?}");
    }
    assert_eq!(d.stop(), 0);
}

/// `public_health = true`: `/health` answers without the token, the rest still
/// needs it.
#[test]
fn health_can_stay_open_for_probes() {
    let (mut d, port) = start(&format!("token = {TOKEN:?}\npublic_health = true\n"));
    common::wait_for(Duration::from_secs(10), || {
        plain(port, "/health", &[]).status == 200
    });
    assert_eq!(plain(port, "/metrics", &[]).status, 401);
    assert_eq!(plain(port, "/events", &[]).status, 401);
    assert_eq!(d.stop(), 0);
}

/// HTTPS: the same three cases over TLS; a client that speaks plain HTTP to the
/// TLS port, one that sends garbage and one that never shakes hands get no HTTP
/// answer, and the next good request is served.
#[test]
fn tls_listener_requires_the_token_and_survives_bad_clients() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &p.cert).unwrap();
    std::fs::write(&key, &p.key).unwrap();
    let (mut d, port) = start(&format!(
        "token = {TOKEN:?}\ntls_cert = {:?}\ntls_key = {:?}\n",
        cert.display(),
        key.display()
    ));
    let config = client(&p.ca);
    check_three_cases(|path, h| tls(&config, port, path, h));
    let bearer = format!("Bearer {TOKEN}");
    // A client that never shakes hands holds up nobody.
    let idle = connect(port);
    let r = plain(port, "/metrics", &[("Authorization", &bearer)]);
    assert!(!r.head.starts_with("http/1.1"), "plain HTTP on TLS: {r:?}");
    let mut junk = connect(port);
    junk.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
        .unwrap();
    let mut rest = Vec::new();
    let _ = junk.read_to_end(&mut rest);
    let r = tls(&config, port, "/metrics", &[("Authorization", &bearer)]);
    assert_eq!(r.status, 200, "after bad clients: {r:?}");
    assert!(r.body.contains("wirewatch_"), "{r:?}");
    // A client that does not trust the certificate is refused by its own side.
    let untrusting = client(&pki().ca);
    assert_eq!(tls(&untrusting, port, "/metrics", &[]).status, 0);
    assert_eq!(
        tls(&config, port, "/health", &[("Authorization", &bearer)]).status,
        200
    );
    drop(idle);
    assert_eq!(d.stop(), 0);
}

/// `validate` (and `run`) refuse `0.0.0.0` and `[::]` without a token, naming
/// `[http] token`/`token_file`; with a token, or on loopback, the config is valid.
#[test]
fn validate_refuses_a_listener_beyond_loopback_without_a_token() {
    for listen in ["0.0.0.0:9464", "[::]:9464"] {
        let d = Daemon::new(&format!("[http]\nlisten = {listen:?}\n"));
        for args in [&["validate"][..], &["run", "--once"]] {
            let out = d
                .cmd()
                .args(args)
                .arg("--config")
                .arg(d.config_path())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{listen} {args:?}: {err}");
            assert!(
                err.contains("http.listen") && err.contains("[http] token or token_file"),
                "{listen} {args:?}: {err}"
            );
        }
        let d = Daemon::new(&format!("[http]\nlisten = {listen:?}\ntoken = {TOKEN:?}\n"));
        let (code, err) = d.validate();
        assert_eq!(code, Some(0), "{err}");
    }
    let d = Daemon::new("[http]\nlisten = \"127.0.0.1:9464\"\n");
    let (code, err) = d.validate();
    assert_eq!(code, Some(0), "{err}");
}
