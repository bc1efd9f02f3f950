//! Whom a `wss://` connection trusts: the Mozilla roots of `webpki-roots`, plus CA certificates
//! an operator adds (a private CA of a TLS-terminating proxy, or a test's own CA).
//!
//! The rustls client configuration is built once and shared by every connection through an
//! `Arc`: each `ClientConnection` keeps a reference to it for its whole life, so a per-connection
//! copy of the ~150 root anchors would be resident for every idle session. The crypto provider is
//! `ring`, named explicitly rather than taken from a process default, so that another crate
//! enabling a second rustls provider cannot make the engine pick (or panic over) a different one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// A CA file that cannot be used, or a rustls configuration that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("TLS CA file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS CA file {} holds no PEM certificate", path.display())]
    NoCertificates { path: PathBuf },
    #[error("TLS CA file {}: certificate {index} is not a usable trust anchor: {reason}", path.display())]
    BadCertificate {
        path: PathBuf,
        index: usize,
        reason: String,
    },
    #[error("TLS client configuration: {0}")]
    Rustls(String),
}

/// Trust anchors for `wss://` and the rustls client configuration built from them. Cheap to clone
/// (shared); equal when the extra roots are equal.
#[derive(Clone)]
pub struct TlsTrust {
    extra_roots: Arc<[CertificateDer<'static>]>,
    /// Err only if rustls refused the configuration (see `Default`): the reason, for the
    /// connect error.
    client: Result<Arc<ClientConfig>, Arc<str>>,
}

impl std::fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTrust")
            .field("extra_roots", &self.extra_roots.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsTrust {
    fn eq(&self, other: &Self) -> bool {
        self.extra_roots == other.extra_roots
    }
}

impl Eq for TlsTrust {}

impl Default for TlsTrust {
    /// The `webpki-roots` anchors only. Built once per process: `EngineConfig::default()` is
    /// called often (tests, the gateway) and every default shares one rustls configuration.
    fn default() -> Self {
        static DEFAULT: OnceLock<TlsTrust> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Self::with_extra_roots(Vec::new()).unwrap_or_else(|e| Self {
                    extra_roots: Arc::from(Vec::new()),
                    // Not reachable with ring's suites; if it were, every `wss://` connect
                    // fails with this reason instead of the process panicking.
                    client: Err(Arc::from(e.to_string())),
                })
            })
            .clone()
    }
}

impl TlsTrust {
    /// The `webpki-roots` anchors plus `extra` (DER certificates, each a CA to trust).
    pub fn with_extra_roots(extra: Vec<CertificateDer<'static>>) -> Result<Self, TlsConfigError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in &extra {
            roots
                .add(cert.clone())
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
        }
        let client =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(Self {
            extra_roots: Arc::from(extra),
            client: Ok(Arc::new(client)),
        })
    }

    /// The `webpki-roots` anchors plus every certificate of the PEM file at `path`
    /// (`ZAPIN_WA_TLS_CA_FILE`). A file that is unreadable, holds no certificate or holds one
    /// that is not a valid trust anchor is an error, so a typo fails at startup.
    pub fn with_ca_file(path: &Path) -> Result<Self, TlsConfigError> {
        let file_error = |reason: String| TlsConfigError::CaFile {
            path: path.to_owned(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| file_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsConfigError::NoCertificates {
                path: path.to_owned(),
            });
        }
        let mut check = RootCertStore::empty();
        for (index, cert) in certs.iter().enumerate() {
            check
                .add(cert.clone())
                .map_err(|e| TlsConfigError::BadCertificate {
                    path: path.to_owned(),
                    index,
                    reason: e.to_string(),
                })?;
        }
        Self::with_extra_roots(certs)
    }

    /// CA certificates trusted on top of `webpki-roots`.
    pub fn extra_roots(&self) -> &[CertificateDer<'static>] {
        &self.extra_roots
    }

    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, Arc<str>> {
        self.client.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(contents: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, contents).unwrap();
        file
    }

    #[test]
    fn missing_file_is_a_typed_error() {
        let err = TlsTrust::with_ca_file(Path::new("/nonexistent/zapin-ca.pem")).unwrap_err();
        assert!(matches!(err, TlsConfigError::CaFile { .. }), "{err}");
    }

    #[test]
    fn file_without_certificates_is_rejected() {
        let file = write(b"not a pem file\n");
        let err = TlsTrust::with_ca_file(file.path()).unwrap_err();
        assert!(
            matches!(err, TlsConfigError::NoCertificates { .. }),
            "{err}"
        );
    }

    #[test]
    fn certificate_that_is_not_der_is_rejected() {
        // Valid PEM armour and base64, but the body is not an X.509 certificate.
        let file = write(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        let err = TlsTrust::with_ca_file(file.path()).unwrap_err();
        assert!(
            matches!(err, TlsConfigError::BadCertificate { index: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn default_is_shared_and_has_no_extra_roots() {
        let a = TlsTrust::default();
        let b = TlsTrust::default();
        assert!(a.extra_roots().is_empty());
        assert!(Arc::ptr_eq(
            &a.client_config().unwrap(),
            &b.client_config().unwrap()
        ));
    }
}
