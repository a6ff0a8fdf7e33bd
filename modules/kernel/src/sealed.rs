//! Secrets sealed for another process of the same deployment (AES-256-GCM).
//!
//! A single-use token an event must carry (a verification or reset link) is
//! sealed by its publisher and opened by the subscriber that emails it, so the
//! outbox and the dead letters hold only ciphertext. The key is derived from
//! the deployment's service credential (`services.token`), which every process
//! of a deployment shares; a database reader without it learns nothing.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;
/// Keeps this key apart from any other use of the service credential.
const KEY_LABEL: &[u8] = b"hometrip sealed v1\0";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this key and context")]
    WrongKeyOrContext,
    #[error("sealing failed")]
    Seal,
}

/// Seals and opens short secrets; `context` (associated data, e.g. the event
/// type and account) must match on both sides, so a sealed value cannot be
/// moved to another event.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// The key is SHA-256 of a label and the credential: the credential is a
    /// random high-entropy secret, so no slow derivation is needed.
    pub fn from_credential(credential: &str) -> Sealer {
        let key = Sha256::new().chain_update(KEY_LABEL).chain_update(credential.trim().as_bytes()).finalize();
        Sealer { cipher: Aes256Gcm::new(&key) }
    }

    /// `base64url(nonce ‖ ciphertext ‖ tag)`, a fresh random nonce each time.
    pub fn seal(&self, context: &str, plain: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: context.as_bytes() })
            .map_err(|_| SealError::Seal)?;
        Ok(URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat()))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<String, SealError> {
        let raw = URL_SAFE_NO_PAD.decode(sealed.trim()).map_err(|_| SealError::Malformed)?;
        if raw.len() <= NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: data, aad: context.as_bytes() })
            .map_err(|_| SealError::WrongKeyOrContext)?;
        String::from_utf8(plain).map_err(|_| SealError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_the_same_credential_and_context_only() {
        let a = Sealer::from_credential("deployment credential");
        let sealed = a.seal("auth.x:1", "the-token").unwrap();
        assert!(!sealed.contains("the-token"));
        assert_eq!(a.open("auth.x:1", &sealed).unwrap(), "the-token");
        // Another process of the same deployment opens it.
        assert_eq!(Sealer::from_credential("deployment credential\n").open("auth.x:1", &sealed).unwrap(), "the-token");
        assert_eq!(Sealer::from_credential("other").open("auth.x:1", &sealed), Err(SealError::WrongKeyOrContext));
        assert_eq!(a.open("auth.x:2", &sealed), Err(SealError::WrongKeyOrContext));
        // Fresh nonce each time.
        assert_ne!(sealed, a.seal("auth.x:1", "the-token").unwrap());
    }

    #[test]
    fn tampered_or_garbage_values_are_refused() {
        let a = Sealer::from_credential("k");
        let sealed = a.seal("c", "secret").unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(a.open("c", &URL_SAFE_NO_PAD.encode(bytes)), Err(SealError::WrongKeyOrContext));
        assert_eq!(a.open("c", "not base64 !"), Err(SealError::Malformed));
        assert_eq!(a.open("c", "AAAA"), Err(SealError::Malformed));
    }
}
