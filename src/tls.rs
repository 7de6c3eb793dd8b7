//! The one TLS client setup of the binary: rustls on the aws-lc-rs provider (hybrid post-quantum
//! key exchange preferred), handed to reqwest as a preconfigured backend,
//! the Mozilla roots of `webpki-roots` built in, and the operator's extra roots from
//! `tls.ca_file` on top (a private CA, or the throwaway CA of the tests).
//!
//! Certificates are always verified, host names included; there is no switch that turns that
//! off. Every outbound HTTPS client (chain RPC, facilitator) is made by [`TlsRoots::http_client`],
//! so they all trust the same roots. The choice of stack is in
//! `docs/decisions/2026-12-05-tls-stack.md`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The largest CA bundle read from `tls.ca_file`; a system bundle is about 220 KiB.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.ca_file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("tls.ca_file {path}: larger than {MAX_CA_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("tls.ca_file {path}: not a PEM certificate bundle")]
    NotPem { path: PathBuf },
    #[error("tls.ca_file {path}: holds no certificate")]
    Empty { path: PathBuf },
    #[error("tls.ca_file {path}: certificate {index} is not a usable CA: {source}")]
    BadRoot { path: PathBuf, index: usize, source: rustls::Error },
    /// The crypto provider refused the protocol versions asked for (a build problem).
    #[error("TLS setup: {0}")]
    Setup(#[source] rustls::Error),
    /// reqwest could not build a client on this TLS configuration.
    #[error("HTTPS client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The TLS client configuration every outbound connection uses: the built-in Mozilla roots
/// plus the operator's CA bundle, aws-lc-rs, TLS 1.2 and 1.3. Cheap to clone.
#[derive(Clone)]
pub struct TlsRoots {
    config: Arc<rustls::ClientConfig>,
    extra: usize,
}

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsRoots").field("extra", &self.extra).finish()
    }
}

impl TlsRoots {
    /// The built-in roots only.
    pub fn builtin() -> Result<Self, TlsError> {
        Self::with_roots(Vec::new(), None)
    }

    /// The built-in roots and every certificate of the PEM bundle at `path`.
    pub fn with_ca_file(path: &Path) -> Result<Self, TlsError> {
        let path_buf = || path.to_owned();
        let size = std::fs::metadata(path).map_err(|source| TlsError::Read { path: path_buf(), source })?.len();
        if size > MAX_CA_FILE_BYTES {
            return Err(TlsError::TooLarge { path: path_buf() });
        }
        let pem = std::fs::read(path).map_err(|source| TlsError::Read { path: path_buf(), source })?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsError::NotPem { path: path_buf() })?;
        if certs.is_empty() {
            return Err(TlsError::Empty { path: path_buf() });
        }
        Self::with_roots(certs, Some(path))
    }

    /// `tls.ca_file` when set, else the built-in roots.
    pub fn from_config(ca_file: Option<&str>) -> Result<Self, TlsError> {
        match ca_file {
            Some(path) => Self::with_ca_file(Path::new(path)),
            None => Self::builtin(),
        }
    }

    fn with_roots(extra: Vec<CertificateDer<'static>>, path: Option<&Path>) -> Result<Self, TlsError> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let count = extra.len();
        for (index, cert) in extra.into_iter().enumerate() {
            roots.add(cert).map_err(|source| TlsError::BadRoot {
                path: path.map(Path::to_owned).unwrap_or_default(),
                index,
                source,
            })?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { config: Arc::new(config), extra: count })
    }

    /// How many roots the operator added.
    pub fn extra_roots(&self) -> usize {
        self.extra
    }

    /// The rustls configuration, for connections that are not HTTP (SMPP, SIP): no ALPN.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// An HTTP(S) client on this configuration, with a whole-request `timeout` if given.
    /// Plain `http://` stays allowed (a node on the operator's own host).
    pub fn http_client(&self, timeout: Option<Duration>) -> Result<reqwest::Client, TlsError> {
        let mut http = (*self.config).clone();
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut builder = reqwest::Client::builder().tls_backend_preconfigured(http);
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        builder.build().map_err(TlsError::Client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_empty_or_not_pem_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        assert!(matches!(TlsRoots::with_ca_file(&missing), Err(TlsError::Read { .. })));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"").expect("write");
        let err = TlsRoots::with_ca_file(&empty).expect_err("empty");
        assert!(matches!(err, TlsError::Empty { .. }) && err.to_string().contains("empty.pem"), "{err}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").expect("write");
        assert!(TlsRoots::with_ca_file(&garbage).is_err());
    }

    #[test]
    fn built_in_roots_make_a_client() {
        let roots = TlsRoots::builtin().expect("roots");
        assert_eq!(roots.extra_roots(), 0);
        roots.http_client(Some(Duration::from_secs(1))).expect("client");
    }
}
