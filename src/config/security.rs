//! The security keys of `[nats]`: TLS (CA, client certificate and key) and the
//! authentication method (a `.creds` file, user + password, a token or an NKey
//! seed), their validation at `wirewatch validate` time, and [`Secret`], the string
//! type that never prints its value.

use std::path::Path;

use serde::Deserialize;

use super::nats::NatsConfig;
use crate::error::ConfigError;

/// A password or token: compares and clones like a string, never shows in `Debug`
/// output (logs, error messages).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Reads a secret file (`password_file`, `token_file`, `nkey_seed_file`): its text
/// with surrounding whitespace (a final newline) dropped; an empty file is an error.
pub fn read_secret(path: &Path) -> std::io::Result<Secret> {
    let text = std::fs::read_to_string(path)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        ));
    }
    Ok(Secret::new(text))
}

/// The authentication methods set, by the key that sets each.
fn methods(n: &NatsConfig) -> Vec<&'static str> {
    let mut m = Vec::new();
    if n.credentials.is_some() {
        m.push("credentials");
    }
    if n.user.is_some() || n.password.is_some() || n.password_file.is_some() {
        m.push("user");
    }
    if n.token.is_some() || n.token_file.is_some() {
        m.push("token");
    }
    if n.nkey_seed_file.is_some() {
        m.push("nkey_seed_file");
    }
    m
}

/// Checks the security keys: one authentication method at most, each complete,
/// every named file readable and of the right shape.
pub fn validate(n: &NatsConfig, origin: &str) -> Result<(), ConfigError> {
    let err = |key: &str, message: String| ConfigError::Value {
        path: origin.to_owned(),
        key: format!("nats.{key}"),
        message,
    };
    let m = methods(n);
    if m.len() > 1 {
        return Err(err(
            m[1],
            format!(
                "set one authentication method, not {}: remove all but one of nats.{}",
                m.len(),
                m.join(", nats.")
            ),
        ));
    }
    if n.password.is_some() && n.password_file.is_some() {
        return Err(err(
            "password_file",
            "give nats.password or nats.password_file, not both".into(),
        ));
    }
    if n.token.is_some() && n.token_file.is_some() {
        return Err(err(
            "token_file",
            "give nats.token or nats.token_file, not both".into(),
        ));
    }
    match (&n.user, n.password.is_some() || n.password_file.is_some()) {
        (Some(u), _) if u.is_empty() => {
            return Err(err("user", "must not be empty".into()));
        }
        (Some(_), false) => {
            return Err(err(
                "user",
                "needs nats.password or nats.password_file".into(),
            ));
        }
        (None, true) => {
            return Err(err(
                "user",
                "a password needs nats.user (the user name)".into(),
            ));
        }
        _ => {}
    }
    for (key, s) in [("password", &n.password), ("token", &n.token)] {
        if s.as_ref().is_some_and(|s| s.expose().is_empty()) {
            return Err(err(key, "must not be empty".into()));
        }
    }
    if n.tls_cert.is_some() != n.tls_key.is_some() {
        let key = if n.tls_cert.is_some() {
            "tls_key"
        } else {
            "tls_cert"
        };
        return Err(err(
            key,
            "mutual TLS needs both nats.tls_cert and nats.tls_key".into(),
        ));
    }
    if let Some(name) = &n.tls_server_name {
        if async_nats::rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
            return Err(err(
                "tls_server_name",
                format!("{name:?} is not a DNS name or IP address"),
            ));
        }
        if n.tls_ca.is_none() {
            return Err(err(
                "tls_server_name",
                "needs nats.tls_ca (the authority that signed the servers' certificates)".into(),
            ));
        }
    }
    for (key, path) in [
        ("password_file", &n.password_file),
        ("token_file", &n.token_file),
        ("nkey_seed_file", &n.nkey_seed_file),
    ] {
        let Some(path) = path else { continue };
        let secret = read_secret(path).map_err(|e| {
            err(
                key,
                format!(
                    "cannot read {}: {e} (give a readable file holding the secret)",
                    path.display()
                ),
            )
        })?;
        if key == "nkey_seed_file" && !looks_like_seed(secret.expose()) {
            return Err(err(
                key,
                format!(
                    "{} does not hold an NKey user seed (one line starting with `SU`, as `nk -gen user` writes)",
                    path.display()
                ),
            ));
        }
    }
    if let Some(path) = &n.credentials {
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(
                "credentials",
                format!(
                    "cannot read {}: {e} (give the user's .creds file)",
                    path.display()
                ),
            )
        })?;
        if !text.contains("BEGIN NATS USER JWT") {
            return Err(err(
                "credentials",
                format!(
                    "{} is not a .creds file (no `BEGIN NATS USER JWT` block)",
                    path.display()
                ),
            ));
        }
    }
    for (key, path, what) in [
        ("tls_ca", &n.tls_ca, "CERTIFICATE"),
        ("tls_cert", &n.tls_cert, "CERTIFICATE"),
        ("tls_key", &n.tls_key, "PRIVATE KEY"),
    ] {
        let Some(path) = path else { continue };
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(
                key,
                format!("cannot read {}: {e} (give a PEM file)", path.display()),
            )
        })?;
        let pem = text
            .lines()
            .any(|l| l.starts_with("-----BEGIN ") && l.contains(what));
        if !pem {
            return Err(err(
                key,
                format!("{} holds no PEM `{what}` block", path.display()),
            ));
        }
    }
    Ok(())
}

/// True for the shape of an NKey user seed: `SU` and 56 more base32 characters.
fn looks_like_seed(s: &str) -> bool {
    s.len() == 58
        && s.starts_with("SU")
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn error_of(text: &str) -> String {
        Config::from_toml(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c =
            Config::from_toml("[nats]\nuser = \"ww\"\npassword = \"hunter2\"\n", "t.toml").unwrap();
        assert_eq!(
            c.nats.password.as_ref().map(|p| p.expose()),
            Some("hunter2")
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        let c = Config::from_toml("[nats]\ntoken = \"s3cr3t-t0ken\"\n", "t.toml").unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-t0ken"));
    }

    #[test]
    fn one_method_at_a_time_and_each_complete() {
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("token");
        std::fs::write(&tok, "abc\n").unwrap();
        let two = format!(
            "[nats]\nuser = \"u\"\npassword = \"p\"\ntoken_file = {:?}\n",
            tok.display()
        );
        let e = error_of(&two);
        assert!(e.contains("set one authentication method"), "{e}");
        assert!(e.contains("nats.user, nats.token"), "{e}");
        for (text, key) in [
            ("[nats]\nuser = \"u\"\n", "nats.user"),
            ("[nats]\npassword = \"p\"\n", "nats.user"),
            ("[nats]\ntoken = \"\"\n", "nats.token"),
            (
                "[nats]\ntoken = \"a\"\ntoken_file = \"/nonexistent/t\"\n",
                "nats.token_file",
            ),
            (
                "[nats]\ntls_cert = \"/nonexistent/c.pem\"\n",
                "nats.tls_key",
            ),
            (
                "[nats]\nrejects_subject = \"articles.rejects\"\n",
                "nats.rejects_subject",
            ),
            (
                "[nats]\nrejects_stream = \"ARTICLES\"\n",
                "nats.rejects_stream",
            ),
            (
                "[nats]\ntls_server_name = \"a b\"\n",
                "nats.tls_server_name",
            ),
            (
                "[nats]\ntls_server_name = \"nats.internal\"\n",
                "nats.tls_server_name",
            ),
        ] {
            let e = error_of(text);
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn files_are_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = error_of(&format!("[nats]\ntls_ca = {:?}\n", missing.display()));
        assert!(
            e.contains("nats.tls_ca") && e.contains("missing.pem"),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = error_of(&format!("[nats]\ntls_ca = {:?}\n", junk.display()));
        assert!(e.contains("no PEM `CERTIFICATE` block"), "{e}");
        let e = error_of(&format!("[nats]\nnkey_seed_file = {:?}\n", junk.display()));
        assert!(
            e.contains("nats.nkey_seed_file") && e.contains("NKey user seed"),
            "{e}"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = error_of(&format!(
            "[nats]\nuser = \"u\"\npassword_file = {:?}\n",
            empty.display()
        ));
        assert!(
            e.contains("nats.password_file") && e.contains("empty"),
            "{e}"
        );
        let e = error_of(&format!("[nats]\ncredentials = {:?}\n", junk.display()));
        assert!(e.contains("not a .creds file"), "{e}");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter2\n").unwrap();
        let ok = format!("[nats]\nuser = \"u\"\npassword_file = {:?}\n", pw.display());
        assert!(Config::from_toml(&ok, "t.toml").is_ok());
    }
}
