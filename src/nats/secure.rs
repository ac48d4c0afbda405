//! The security side of a connection: the client options for the `[nats]`
//! authentication method and TLS keys, and what a refused first connection means
//! for the user ([`refusal`]).
//!
//! Secrets are read from their files here, when the connection is made, and go
//! nowhere but into the client's options: they are never logged.

use async_nats::{ConnectErrorKind, ConnectOptions};

mod renamed;

use super::error;
use crate::config::nats::NatsConfig;
use crate::config::security::read_secret;
use crate::sink::SinkError;

/// Client options carrying the authentication method and TLS settings of `cfg`.
pub async fn options(cfg: &NatsConfig) -> Result<ConnectOptions, SinkError> {
    let file_error = |key: &str, path: &std::path::Path, e: std::io::Error| {
        error(
            &format!("nats.{key} {}", path.display()),
            format!("cannot read the file: {e}"),
        )
    };
    let mut opts = ConnectOptions::new();
    if let Some(path) = &cfg.credentials {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| file_error("credentials", path, e))?;
    }
    if let Some(user) = &cfg.user {
        let password = match (&cfg.password, &cfg.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(path)) => {
                read_secret(path).map_err(|e| file_error("password_file", path, e))?
            }
            (None, None) => {
                return Err(error(
                    "nats.user",
                    "no password: set nats.password or nats.password_file",
                ))
            }
        };
        opts = opts.user_and_password(user.clone(), password.expose().to_owned());
    }
    let token = match (&cfg.token, &cfg.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(path)) => {
            Some(read_secret(path).map_err(|e| file_error("token_file", path, e))?)
        }
        (None, None) => None,
    };
    if let Some(t) = token {
        opts = opts.token(t.expose().to_owned());
    }
    if let Some(path) = &cfg.nkey_seed_file {
        let seed = read_secret(path).map_err(|e| file_error("nkey_seed_file", path, e))?;
        opts = opts.nkey(seed.expose().to_owned());
    }
    if let (Some(name), Some(ca)) = (&cfg.tls_server_name, &cfg.tls_ca) {
        opts = opts.tls_client_config(renamed::client_config(cfg, ca, name)?);
    } else {
        if let Some(ca) = &cfg.tls_ca {
            opts = opts.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
    }
    if cfg.tls_first {
        opts = opts.tls_first();
    }
    if cfg.wants_tls() {
        opts = opts.require_tls(true);
    }
    Ok(opts)
}

/// What to check after a TLS failure.
const TLS_ADVICE: &str = "check that nats.tls_ca holds the authority that signed the server's certificate, that the host in nats.urls (or nats.tls_server_name) is a name in that certificate, that nats.tls_cert / nats.tls_key are a pair the server trusts, and that the server has TLS enabled";

/// The TLS error (a certificate refused by either side, an alert) behind a failed
/// connection, found down the source chain: the client reports a failed handshake
/// as an I/O error that carries it.
fn tls_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<async_nats::rustls::Error>() {
            return Some(t.to_string());
        }
        if let Some(t) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<async_nats::rustls::Error>())
        {
            return Some(t.to_string());
        }
        cur = err.source();
    }
    None
}

/// The advice for a first connection the servers refused, or `None` when the
/// failure may pass (no server answering yet: the caller keeps trying).
pub fn refusal(cfg: &NatsConfig, e: &async_nats::ConnectError) -> Option<String> {
    let method = if cfg.credentials.is_some() {
        "nats.credentials"
    } else if cfg.user.is_some() {
        "nats.user and nats.password / nats.password_file"
    } else if cfg.token.is_some() || cfg.token_file.is_some() {
        "nats.token / nats.token_file"
    } else if cfg.nkey_seed_file.is_some() {
        "nats.nkey_seed_file (is its public key in the server's authorization?)"
    } else {
        "the [nats] authentication keys: the server asks for credentials and none are set"
    };
    if let Some(tls) = tls_error(e) {
        return Some(format!("TLS failed ({tls}): {TLS_ADVICE}"));
    }
    match e.kind() {
        ConnectErrorKind::AuthorizationViolation => Some(format!(
            "the server refused the connection (authorization violation): check {method}"
        )),
        ConnectErrorKind::Authentication => {
            Some(format!("authentication failed ({e}): check {method}"))
        }
        ConnectErrorKind::Tls => Some(format!("TLS failed ({e}): {TLS_ADVICE}")),
        ConnectErrorKind::ServerParse => Some(format!("{e}: check nats.urls")),
        _ => None,
    }
}
