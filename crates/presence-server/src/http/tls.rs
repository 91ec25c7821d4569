//! HTTPS: the certificate and key from PEM files, served with rustls, and
//! read again on demand (the binary does it on SIGHUP) without dropping a
//! connection.
//!
//! The server's configuration asks a resolver for the certificate at every
//! handshake; the resolver holds the current one behind a lock that a
//! reload swaps. Connections already open keep the session they agreed on;
//! the next handshake gets the new certificate. A reload that fails (a
//! file missing or half-written, a key that does not match) changes
//! nothing: the server goes on with the certificate it had.
//!
//! Only HTTP/1.1 is offered (by ALPN), as over plain TCP. The crypto is
//! rustls's `ring` provider with its safe defaults (TLS 1.2 and 1.3).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key could not be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read, or holds no PEM block of the kind needed.
    #[error("cannot read {what} from {path}: {reason}")]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the key, or the key does not match the certificate.
    #[error("cannot use the certificate {cert} with the key {key}: {reason}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// The certificate in use, swapped by [`Tls::reload`].
struct Current {
    cert: PathBuf,
    key: PathBuf,
    certified: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Current")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified.read().clone())
    }
}

/// What HTTPS needs: the acceptor every connection's handshake goes
/// through, and the files it reloads from.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<Current>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate chain and key from PEM files.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let certified = read_certified(cert, key)?;
        let current = Arc::new(Current {
            cert: cert.to_owned(),
            key: key.to_owned(),
            certified: RwLock::new(Arc::new(certified)),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| unusable(cert, key, &e))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            current,
        })
    }

    /// Reads the files again; the next handshakes use what they hold. On
    /// failure, the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = read_certified(&self.current.cert, &self.current.key)?;
        *self.current.certified.write() = Arc::new(certified);
        Ok(())
    }

    /// What each connection's handshake goes through.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// The chain in `cert` with the key in `key`, checked to belong together.
fn read_certified(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read_error = |what, path: &Path, reason: String| TlsError::Read {
        what,
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| read_error("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        let reason = "no CERTIFICATE block".to_owned();
        return Err(read_error("certificate", cert, reason));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| read_error("private key", key, e.to_string()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| unusable(cert, key, &e))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| unusable(cert, key, &e))?;
    Ok(certified)
}

fn unusable(cert: &Path, key: &Path, reason: &dyn fmt::Display) -> TlsError {
    TlsError::Unusable {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost`: its PEM files in `dir`.
    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    fn served(tls: &Tls) -> Vec<u8> {
        tls.current
            .certified
            .read()
            .end_entity_cert()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_reload_takes_new_files_and_a_failed_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), "first");
        let tls = Tls::load(&cert, &key).unwrap();
        let first = served(&tls);
        let (other_cert, other_key) = write_pair(dir.path(), "second");
        std::fs::copy(&other_cert, &cert).unwrap();
        std::fs::copy(&other_key, &key).unwrap();
        tls.reload().unwrap();
        let second = served(&tls);
        assert_ne!(first, second);
        // A half-written certificate: refused, and the one in use stays.
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA").unwrap();
        assert!(matches!(tls.reload(), Err(TlsError::Read { .. })));
        assert_eq!(served(&tls), second);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = write_pair(dir.path(), "one");
        let (_, key) = write_pair(dir.path(), "two");
        let error = Tls::load(&cert, &key).unwrap_err();
        assert!(matches!(error, TlsError::Unusable { .. }), "{error}");
        let missing = dir.path().join("missing.key");
        let error = Tls::load(&cert, &missing).unwrap_err();
        assert!(error.to_string().contains("missing.key"), "{error}");
    }
}
