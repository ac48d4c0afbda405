//! `nats.tls_server_name`: a TLS client configuration that checks the servers'
//! certificates against the configured name instead of the host in `nats.urls`
//! (the client otherwise always uses that host). Everything else is rustls's own
//! WebPKI verification against the `nats.tls_ca` authorities.

use std::path::Path;
use std::sync::Arc;

use async_nats::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use async_nats::rustls::client::WebPkiServerVerifier;
use async_nats::rustls::pki_types::pem::PemObject;
use async_nats::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use async_nats::rustls::{self, DigitallySignedStruct, SignatureScheme};

use crate::config::nats::NatsConfig;
use crate::nats::error;
use crate::sink::SinkError;

/// WebPKI verification of the server's certificate for one fixed name.
#[derive(Debug)]
struct Renamed {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for Renamed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The certificates of a PEM file, the error naming the key and the file.
fn certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, SinkError> {
    let bad = |e: &dyn std::fmt::Display| {
        error(
            &format!("nats.{key} {}", path.display()),
            format!("cannot read the certificates: {e}"),
        )
    };
    CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))
}

/// The rustls client configuration for `cfg` with the servers' name `name`.
pub(super) fn client_config(
    cfg: &NatsConfig,
    ca: &Path,
    name: &str,
) -> Result<rustls::ClientConfig, SinkError> {
    let fail = |e: &dyn std::fmt::Display| error("nats TLS settings", e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in certs("tls_ca", ca)? {
        roots.add(c).map_err(|e| {
            error(
                &format!("nats.tls_ca {}", ca.display()),
                format!("not a usable authority certificate: {e}"),
            )
        })?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| fail(&e))?;
    let name = ServerName::try_from(name.to_owned())
        .map_err(|e| error("nats.tls_server_name", format!("{name:?}: {e}")))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Renamed { inner, name }));
    match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => {
            let chain = certs("tls_cert", cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                error(
                    &format!("nats.tls_key {}", key.display()),
                    format!("cannot read the private key: {e}"),
                )
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| error("nats.tls_cert and nats.tls_key", e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
