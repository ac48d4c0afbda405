//! The `[sink]`, `[nats]` and `[dedupe]` sections of the configuration, and their
//! validation (called from [`super::Config::validate`]).

use std::path::PathBuf;

use serde::Deserialize;

pub use super::security::Secret;
use super::Config;
use crate::error::ConfigError;

/// Where records go.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// The JSON-lines file `output.path` (or stdout).
    #[default]
    File,
    /// A NATS JetStream stream (`[nats]`).
    Nats,
}

/// `[sink]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// `file` or `nats`.
    pub kind: SinkKind,
}

/// Where dedupe decisions are kept.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DedupeStore {
    /// The embedded redb state of this daemon.
    #[default]
    Local,
    /// A replicated JetStream key-value bucket shared by every daemon.
    Nats,
}

/// `[dedupe]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DedupeConfig {
    /// `local` or `nats`.
    pub store: DedupeStore,
    /// Key-value bucket of the `nats` store.
    pub kv_bucket: String,
    /// Replicas of that bucket.
    pub kv_replicas: usize,
}

impl Default for DedupeConfig {
    fn default() -> Self {
        DedupeConfig {
            store: DedupeStore::Local,
            kv_bucket: "wirewatch-dedupe".into(),
            kv_replicas: 3,
        }
    }
}

/// `[nats]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URLs (any node of the cluster; the others are discovered).
    pub urls: Vec<String>,
    /// A `.creds` file (JWT + NKey seed) for clusters with authentication.
    pub credentials: Option<PathBuf>,
    /// User name of user + password authentication.
    pub user: Option<String>,
    /// Password of `user` (or [`NatsConfig::password_file`]).
    pub password: Option<Secret>,
    /// A file holding the password of `user` (surrounding whitespace dropped).
    pub password_file: Option<PathBuf>,
    /// Token authentication (or [`NatsConfig::token_file`]).
    pub token: Option<Secret>,
    /// A file holding the token.
    pub token_file: Option<PathBuf>,
    /// A file holding an NKey user seed (`SU…`).
    pub nkey_seed_file: Option<PathBuf>,
    /// PEM file of the certificate authorities trusted for the servers' certificates
    /// (instead of the system's roots); setting it requires TLS.
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; with [`NatsConfig::tls_key`].
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of [`NatsConfig::tls_cert`].
    pub tls_key: Option<PathBuf>,
    /// The name the servers' certificates are checked against, instead of the host
    /// in `urls` (servers reached by address or through a proxy); needs `tls_ca`.
    pub tls_server_name: Option<String>,
    /// Refuse to talk to a server without TLS (implied by the other `tls_*` keys).
    pub tls_required: bool,
    /// Start TLS before the server's greeting (servers with `handshake_first`).
    pub tls_first: bool,
    /// Subject of the reject lines; empty: `<subject_prefix>-rejects`.
    pub rejects_subject: String,
    /// Stream holding [`NatsConfig::rejects_subject`]; empty: `<stream>_REJECTS`.
    pub rejects_stream: String,
    /// Stream name.
    pub stream: String,
    /// Records go to `<subject_prefix>.<dateline-slug>.<article_id>`.
    pub subject_prefix: String,
    /// Replicas of the stream (1, 3 or 5 in practice).
    pub replicas: usize,
    /// Messages older than this many days leave the stream; 0 keeps them forever.
    pub max_age_days: u32,
    /// Versions kept per article (per subject); 0 keeps every version.
    pub max_versions_per_article: i64,
    /// The stream drops a re-publish of the same `Nats-Msg-Id` within this many seconds.
    pub duplicate_window_s: u64,
    /// Time-out of one request or publish acknowledgement, milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            urls: vec!["nats://127.0.0.1:4222".into()],
            credentials: None,
            user: None,
            password: None,
            password_file: None,
            token: None,
            token_file: None,
            nkey_seed_file: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_server_name: None,
            tls_required: false,
            tls_first: false,
            rejects_subject: String::new(),
            rejects_stream: String::new(),
            stream: "ARTICLES".into(),
            subject_prefix: "articles".into(),
            replicas: 3,
            max_age_days: 30,
            max_versions_per_article: 0,
            duplicate_window_s: 600,
            request_timeout_ms: 5000,
        }
    }
}

impl NatsConfig {
    /// The subject reject lines are published on.
    pub fn rejects_subject(&self) -> String {
        if self.rejects_subject.is_empty() {
            format!("{}-rejects", self.subject_prefix)
        } else {
            self.rejects_subject.clone()
        }
    }

    /// The stream that holds [`NatsConfig::rejects_subject`].
    pub fn rejects_stream(&self) -> String {
        if self.rejects_stream.is_empty() {
            format!("{}_REJECTS", self.stream)
        } else {
            self.rejects_stream.clone()
        }
    }

    /// True when any `tls_*` key asks for TLS.
    pub fn wants_tls(&self) -> bool {
        self.tls_required
            || self.tls_first
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_server_name.is_some()
    }
}

/// True when `s` is a valid subject of plain tokens (no wildcards, no spaces).
pub fn is_plain_subject(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
        })
}

/// Checks the three sections.
pub fn validate(cfg: &Config, origin: &str) -> Result<(), ConfigError> {
    let err = |key: &str, message: String| ConfigError::Value {
        path: origin.to_owned(),
        key: key.to_owned(),
        message,
    };
    let n = &cfg.nats;
    if n.urls.is_empty() {
        return Err(err(
            "nats.urls",
            "give at least one server URL, e.g. [\"nats://127.0.0.1:4222\"]".into(),
        ));
    }
    for u in &n.urls {
        if let Err(e) = u.parse::<async_nats::ServerAddr>() {
            return Err(err(
                "nats.urls",
                format!("{u:?} is not a NATS server URL (e.g. \"nats://host:4222\"): {e}"),
            ));
        }
    }
    if n.stream.is_empty()
        || !n
            .stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(err(
            "nats.stream",
            format!(
                "{:?}: a stream name is letters, digits, `_` and `-`",
                n.stream
            ),
        ));
    }
    if !is_plain_subject(&n.subject_prefix) {
        return Err(err(
            "nats.subject_prefix",
            format!(
                "{:?} is not a subject: dot-separated non-empty tokens without spaces or wildcards",
                n.subject_prefix
            ),
        ));
    }
    let rejects = n.rejects_subject();
    if !is_plain_subject(&rejects) || rejects.starts_with(&format!("{}.", n.subject_prefix)) {
        return Err(err(
            "nats.rejects_subject",
            format!(
                "{rejects:?} must be a plain subject outside {}.> (the records' subjects)",
                n.subject_prefix
            ),
        ));
    }
    let rstream = n.rejects_stream();
    if rstream == n.stream
        || !rstream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(err(
            "nats.rejects_stream",
            format!("{rstream:?}: a stream name other than nats.stream, of letters, digits, `_` and `-`"),
        ));
    }
    super::security::validate(n, origin)?;
    if !(1..=5).contains(&n.replicas) {
        return Err(err("nats.replicas", "must be 1 to 5".into()));
    }
    if n.max_versions_per_article < 0 {
        return Err(err(
            "nats.max_versions_per_article",
            "must be 0 (keep all) or more".into(),
        ));
    }
    if n.duplicate_window_s == 0 {
        return Err(err("nats.duplicate_window_s", "must be at least 1".into()));
    }
    if n.max_age_days > 0 && n.duplicate_window_s > u64::from(n.max_age_days) * 86_400 {
        return Err(err(
            "nats.duplicate_window_s",
            "must not exceed nats.max_age_days".into(),
        ));
    }
    if n.request_timeout_ms < 100 {
        return Err(err(
            "nats.request_timeout_ms",
            "must be at least 100".into(),
        ));
    }
    let d = &cfg.dedupe;
    if d.kv_bucket.is_empty()
        || !d
            .kv_bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(err(
            "dedupe.kv_bucket",
            format!(
                "{:?}: a bucket name is letters, digits, `_` and `-`",
                d.kv_bucket
            ),
        ));
    }
    if !(1..=5).contains(&d.kv_replicas) {
        return Err(err("dedupe.kv_replicas", "must be 1 to 5".into()));
    }
    if d.store == DedupeStore::Nats && cfg.sink.kind != SinkKind::Nats {
        return Err(err(
            "dedupe.store",
            "\"nats\" needs [sink] kind = \"nats\" (the ledger marks versions published from the stream's acknowledgements)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_parse_and_bad_values_are_named() {
        let c = Config::from_toml(
            "[sink]\nkind = \"nats\"\n[nats]\nurls = [\"nats://a:1\", \"b:2\"]\nreplicas = 1\n[dedupe]\nstore = \"nats\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.sink.kind, SinkKind::Nats);
        assert_eq!(c.nats.urls.len(), 2);
        assert_eq!(c.dedupe.store, DedupeStore::Nats);
        for (text, key) in [
            ("[sink]\nkind = \"kafka\"\n", "kind"),
            ("[nats]\nurl = []\n", "url"),
            ("[nats]\nurls = []\n", "nats.urls"),
            ("[nats]\nstream = \"a.b\"\n", "nats.stream"),
            ("[nats]\nsubject_prefix = \"a.>\"\n", "nats.subject_prefix"),
            ("[nats]\nreplicas = 0\n", "nats.replicas"),
            (
                "[nats]\nduplicate_window_s = 0\n",
                "nats.duplicate_window_s",
            ),
            (
                "[nats]\nmax_age_days = 1\nduplicate_window_s = 100000\n",
                "nats.duplicate_window_s",
            ),
            ("[dedupe]\nkv_bucket = \"a b\"\n", "dedupe.kv_bucket"),
            ("[dedupe]\nstore = \"nats\"\n", "dedupe.store"),
            ("[dedupe]\nstor = \"nats\"\n", "stor"),
        ] {
            let e = Config::from_toml(text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn plain_subjects() {
        assert!(is_plain_subject("articles"));
        assert!(is_plain_subject("news.articles"));
        assert!(!is_plain_subject("a..b"));
        assert!(!is_plain_subject(".a"));
        assert!(!is_plain_subject("a b"));
        assert!(!is_plain_subject("a.*"));
    }
}
