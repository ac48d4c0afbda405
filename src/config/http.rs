//! The `[http]` section: the listener's address, its access token (`token` or
//! `token_file`, a [`Secret`]), whether `/health` needs it, and its TLS
//! certificate and key; their validation (a listener beyond loopback needs a
//! token) and their loading at start ([`HttpConfig::access_token`],
//! [`HttpConfig::server_tls`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::security::{read_secret, Secret};
use crate::error::ConfigError;

/// The fewest characters an access token may have.
pub const MIN_TOKEN_CHARS: usize = 16;

/// `[http]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on, e.g. `127.0.0.1:9464`; empty = no listener.
    pub listen: String,
    /// The access token every request must carry (`Authorization: Bearer`, the
    /// `token` query parameter or the `wirewatch_token` cookie).
    pub token: Option<Secret>,
    /// A file holding the access token (trimmed), instead of `token`.
    pub token_file: Option<PathBuf>,
    /// `/health` answers without the token (for probes that cannot send it).
    pub public_health: bool,
    /// PEM file of the listener's certificate chain (leaf first): serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

/// The characters a token may hold: RFC 6750's `b64token` (fits a header, a
/// cookie and, percent-encoded, a query).
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=".contains(c)
}

impl HttpConfig {
    /// The listen address, when set and well-formed.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// The access token: `token`, or the trimmed text of `token_file` (read now);
    /// `None` when neither is set.
    pub fn access_token(&self, origin: &str) -> Result<Option<Secret>, ConfigError> {
        let err = |key: &str, message: String| ConfigError::Value {
            path: origin.to_owned(),
            key: format!("http.{key}"),
            message,
        };
        let (key, secret) = match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "token_file",
                    "give http.token or http.token_file, not both".into(),
                ))
            }
            (Some(t), None) => ("token", t.clone()),
            (None, Some(path)) => {
                let secret = read_secret(path).map_err(|e| {
                    err(
                        "token_file",
                        format!(
                            "cannot read {}: {e} (give a readable file holding the token)",
                            path.display()
                        ),
                    )
                })?;
                ("token_file", secret)
            }
            (None, None) => return Ok(None),
        };
        let t = secret.expose();
        if t.chars().count() < MIN_TOKEN_CHARS || !t.chars().all(token_char) {
            return Err(err(
                key,
                format!(
                    "the token must be at least {MIN_TOKEN_CHARS} characters of A-Z, a-z, 0-9 and -._~+/= (make one with `openssl rand -hex 32`)"
                ),
            ));
        }
        Ok(Some(secret))
    }

    /// The rustls server configuration of `tls_cert` and `tls_key` (read now),
    /// `None` when neither is set.
    pub fn server_tls(
        &self,
        origin: &str,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
        let err = |key: &str, message: String| ConfigError::Value {
            path: origin.to_owned(),
            key: format!("http.{key}"),
            message,
        };
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            (Some(_), None) => {
                return Err(err(
                    "tls_key",
                    "HTTPS needs both http.tls_cert and http.tls_key: give the key's PEM file"
                        .into(),
                ))
            }
            (None, Some(_)) => return Err(err(
                "tls_cert",
                "HTTPS needs both http.tls_cert and http.tls_key: give the certificate's PEM file"
                    .into(),
            )),
        };
        let chain = read_chain(cert).map_err(|m| err("tls_cert", m))?;
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            err(
                "tls_key",
                format!(
                    "{}: {} (give the certificate's private key as a PEM file)",
                    key.display(),
                    pem_reason(&e)
                ),
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
            .map_err(|e| {
                err(
                    "tls_key",
                    format!(
                        "{} does not go with {}: {e} (give the key of that certificate)",
                        key.display(),
                        cert.display()
                    ),
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }

    /// Checks the section: the address, the token, TLS, and that a listener
    /// beyond loopback has a token.
    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError::Value {
            path: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        let token = self.access_token(origin)?;
        self.server_tls(origin)?;
        if self.listen.is_empty() {
            return Ok(());
        }
        let Some(addr) = self.addr() else {
            return Err(err(
                "http.listen",
                format!(
                    "{:?} is not an address:port such as \"127.0.0.1:9464\"",
                    self.listen
                ),
            ));
        };
        if token.is_none() && !addr.ip().to_canonical().is_loopback() {
            return Err(err(
                "http.listen",
                format!(
                    "{addr} is reachable beyond this host: set [http] token or token_file (every request must then carry it), or listen on loopback (127.0.0.1 or [::1])"
                ),
            ));
        }
        Ok(())
    }
}

/// The certificates of a PEM file: at least one.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let what = |e: &rustls::pki_types::pem::Error| {
        format!(
            "{}: {} (give the certificate chain as a PEM file)",
            path.display(),
            pem_reason(e)
        )
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| what(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| what(&e))?;
    if chain.is_empty() {
        return Err(format!(
            "{} holds no PEM `CERTIFICATE` block (give the certificate chain as a PEM file)",
            path.display()
        ));
    }
    Ok(chain)
}

/// A PEM error in words.
fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(e) => format!("cannot read it: {e}"),
        Error::NoItemsFound => "it holds no PEM block of that kind".into(),
        other => format!("not valid PEM: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(text: &str) -> Result<Config, String> {
        Config::from_toml(text, "t.toml").map_err(|e| e.to_string())
    }

    const TOKEN: &str = "0123456789abcdef-token";

    #[test]
    fn beyond_loopback_needs_a_token() {
        for listen in ["0.0.0.0:9464", "[::]:9464", "192.168.1.20:9464"] {
            let e = load(&format!("[http]\nlisten = {listen:?}\n")).unwrap_err();
            assert!(
                e.contains("http.listen") && e.contains("[http] token or token_file"),
                "{listen}: {e}"
            );
            let ok = load(&format!("[http]\nlisten = {listen:?}\ntoken = {TOKEN:?}\n"));
            assert!(ok.is_ok(), "{listen}: {ok:?}");
        }
        for listen in ["127.0.0.1:9464", "127.3.2.1:9464", "[::1]:9464"] {
            let ok = load(&format!("[http]\nlisten = {listen:?}\n"));
            assert!(ok.is_ok(), "{listen}: {ok:?}");
        }
    }

    #[test]
    fn the_token_is_read_trimmed_checked_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, format!("  {TOKEN}\n")).unwrap();
        let c = load(&format!("[http]\ntoken_file = {:?}\n", file.display())).unwrap();
        let t = c.http.access_token("t.toml").unwrap().unwrap();
        assert_eq!(t.expose(), TOKEN);
        let c = load(&format!("[http]\ntoken = {TOKEN:?}\n")).unwrap();
        assert!(!format!("{c:?}").contains(TOKEN), "{c:?}");
        for (text, key) in [
            ("[http]\ntoken = \"short\"\n", "http.token"),
            (
                "[http]\ntoken = \"has spaces in it, sixteen+\"\n",
                "http.token",
            ),
            (
                "[http]\ntoken_file = \"/nonexistent/token\"\n",
                "http.token_file",
            ),
        ] {
            let e = load(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
        let both = format!(
            "[http]\ntoken = {TOKEN:?}\ntoken_file = {:?}\n",
            file.display()
        );
        let e = load(&both).unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn tls_needs_both_files_and_a_matching_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let other_key = dir.path().join("other.pem");
        std::fs::write(&cert, a.cert.pem()).unwrap();
        std::fs::write(&key, a.signing_key.serialize_pem()).unwrap();
        std::fs::write(&other_key, b.signing_key.serialize_pem()).unwrap();
        let keys = |c: &std::path::Path, k: &std::path::Path| {
            format!(
                "[http]\ntls_cert = {:?}\ntls_key = {:?}\n",
                c.display(),
                k.display()
            )
        };
        let c = load(&keys(&cert, &key)).unwrap();
        assert!(c.http.server_tls("t.toml").unwrap().is_some());
        let e = load(&keys(&cert, &other_key)).unwrap_err();
        assert!(e.contains("http.tls_key") && e.contains("other.pem"), "{e}");
        let e = load(&keys(&key, &key)).unwrap_err();
        assert!(e.contains("http.tls_cert") && e.contains("key.pem"), "{e}");
        let e = load(&keys(&cert, &cert)).unwrap_err();
        assert!(e.contains("http.tls_key") && e.contains("cert.pem"), "{e}");
        let e = load(&keys(&dir.path().join("missing.pem"), &key)).unwrap_err();
        assert!(
            e.contains("http.tls_cert") && e.contains("missing.pem"),
            "{e}"
        );
        let e = load(&format!("[http]\ntls_cert = {:?}\n", cert.display())).unwrap_err();
        assert!(e.contains("http.tls_key"), "{e}");
        let e = load(&format!("[http]\ntls_key = {:?}\n", key.display())).unwrap_err();
        assert!(e.contains("http.tls_cert"), "{e}");
    }
}
