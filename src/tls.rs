//! TLS material: the certificate chain and private key named by `[listen] tls_cert` and
//! `tls_key`, turned into the rustls server configuration that TLS listeners hand to each
//! handshake.
//!
//! Owns: reading and parsing the PEM files, building the [`rustls::ServerConfig`] (ring crypto
//! provider, TLS 1.2 and 1.3, no client certificates), and the fingerprint that tells a reload
//! whether the files changed.
//! Must not touch: sockets and handshakes (`net::listener`), the config's shape (`config.rs`).
//! Invariants: a [`Material`] holds a certificate chain and a key that rustls accepted as a
//! pair; its `Debug` never shows key bytes.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A loaded certificate and key, ready for handshakes.
#[derive(Clone)]
pub struct Material {
    /// What every TLS handshake of the listeners uses.
    pub server: Arc<ServerConfig>,
    /// A hash of both files' bytes: equal material means unchanged files.
    fingerprint: u128,
}

impl PartialEq for Material {
    fn eq(&self, other: &Material) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Eq for Material {}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Material({:032x})", self.fingerprint)
    }
}

/// Which of the two files a [`load`] failure is about, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The certificate file cannot be read or holds no usable certificate.
    Cert(String),
    /// The key file cannot be read, holds no usable key, or the key does not match the
    /// certificate.
    Key(String),
}

/// Reads the PEM certificate chain at `cert` (leaf first) and the PEM private key at `key`
/// (PKCS#8, PKCS#1 or SEC1) and builds the server configuration.
pub fn load(cert: &Path, key: &Path) -> Result<Material, LoadError> {
    let cert_pem = std::fs::read(cert)
        .map_err(|e| LoadError::Cert(format!("cannot read {}: {e}", cert.display())))?;
    let key_pem = std::fs::read(key)
        .map_err(|e| LoadError::Key(format!("cannot read {}: {e}", key.display())))?;
    from_pem(&cert_pem, &key_pem).map_err(|e| match e {
        LoadError::Cert(why) => LoadError::Cert(format!("{}: {why}", cert.display())),
        LoadError::Key(why) => LoadError::Key(format!("{}: {why}", key.display())),
    })
}

/// Like [`load`] from the files' contents.
pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Material, LoadError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LoadError::Cert(format!("not a valid PEM certificate file ({e})")))?;
    if chain.is_empty() {
        return Err(LoadError::Cert(
            "no \"BEGIN CERTIFICATE\" section found".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => LoadError::Key(
            "no \"BEGIN PRIVATE KEY\" (or RSA / EC PRIVATE KEY) section found".into(),
        ),
        e => LoadError::Key(format!("not a valid PEM key file ({e})")),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LoadError::Cert(format!("no TLS version available ({e})")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                LoadError::Key("the key does not belong to the certificate".into())
            }
            e => LoadError::Key(format!("unusable key ({e})")),
        })?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(cert_pem);
    hasher.update(&(cert_pem.len() as u64).to_le_bytes());
    hasher.update(key_pem);
    Ok(Material {
        server: Arc::new(server),
        fingerprint: hasher.digest128(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_certificate_or_key() {
        assert!(matches!(
            from_pem(b"hello", b"world"),
            Err(LoadError::Cert(_))
        ));
        let cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(from_pem(cert, b"world"), Err(LoadError::Key(_))));
        // A key section that is not a key: rustls refuses it, and the error is about the key.
        let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(from_pem(cert, key), Err(LoadError::Key(_))));
    }

    fn self_signed() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn loads_a_pair_and_tells_changed_files_apart() {
        let (cert, key) = self_signed();
        let a = from_pem(cert.as_bytes(), key.as_bytes()).expect("valid pair");
        let again = from_pem(cert.as_bytes(), key.as_bytes()).expect("valid pair");
        assert_eq!(a, again);
        let (cert2, key2) = self_signed();
        let b = from_pem(cert2.as_bytes(), key2.as_bytes()).expect("valid pair");
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains("PRIVATE"));
        match from_pem(cert.as_bytes(), key2.as_bytes()) {
            Err(LoadError::Key(why)) => assert!(why.contains("does not belong"), "{why}"),
            other => panic!("expected a key mismatch, got {other:?}"),
        }
    }
}
