//! Mutual TLS between the services of one deployment (`services.tls`): a
//! module process serves HTTPS and takes only clients whose certificate the
//! deployment's CA signed; every call to another service presents this
//! process's certificate. A certificate names its module as a DNS subject
//! alternative name (`booking`), which is both how a caller checks the
//! service it reached (the URL's host, `https://booking:4004`) and how the
//! service tells which module is calling.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// The CA, this process's certificate chain and key.
pub struct ServiceTls {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ServiceTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTls").field("chain", &self.chain.len()).finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServiceTls {
    /// Reads the PEM files; each error names the setting.
    pub fn load(ca_file: &Path, cert_file: &Path, key_file: &Path) -> Result<Arc<Self>, String> {
        let read_certs = |key: &str, path: &Path| -> Result<Vec<CertificateDer<'static>>, String> {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("services.tls.{key} ({}): {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("services.tls.{key} ({}): no certificate in it", path.display()));
            }
            Ok(certs)
        };
        let mut roots = RootCertStore::empty();
        for ca in read_certs("ca_file", ca_file)? {
            roots.add(ca).map_err(|e| format!("services.tls.ca_file ({}): {e}", ca_file.display()))?;
        }
        let chain = read_certs("cert_file", cert_file)?;
        let key = PrivateKeyDer::from_pem_file(key_file)
            .map_err(|e| format!("services.tls.key_file ({}): {e}", key_file.display()))?;
        let tls = ServiceTls { roots: Arc::new(roots), chain, key };
        // Both sides are built once here so a mismatch stops start-up.
        tls.server_config()?;
        tls.client_config()?;
        Ok(Arc::new(tls))
    }

    /// Serving: this process's certificate; a client certificate from the CA
    /// is required (no certificate, or another CA's, fails the handshake).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .map_err(|e| format!("services.tls.ca_file: {e}"))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| format!("services.tls.cert_file and key_file: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Calling: only the deployment's CA is trusted, and this process's
    /// certificate is presented.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| format!("services.tls.cert_file and key_file: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The certificate a client presented on this connection (kept by the
/// server's `on_connect`); the handshake already checked it against the CA.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub CertificateDer<'static>);

impl PeerCertificate {
    /// Whether it names `module` (a DNS subject alternative name).
    pub fn names(&self, module: &str) -> bool {
        let Ok(name) = ServerName::try_from(module) else { return false };
        webpki::EndEntityCert::try_from(&self.0).is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
    }
}
