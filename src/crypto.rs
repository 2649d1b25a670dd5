//! Bot tokens at rest: AES-256-GCM with a fresh random nonce per write and the workspace id as
//! associated data, so a sealed token copied to another workspace's row does not open. The sealed
//! form names the key it was sealed with, so keys can be rotated later.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::config::EncryptionKey;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the sealed token is not in the v1 format")]
    Malformed,
    #[error("the token was sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("the token does not open with the configured key (tampered, or another workspace's)")]
    Rejected,
    #[error("the system random source failed")]
    Random,
}

/// Seals and opens secrets with the configured key.
#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
    key_id: String,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl TokenCipher {
    pub fn new(key: &EncryptionKey) -> TokenCipher {
        // The key id is a digest prefix: it tells keys apart without revealing anything usable.
        let key_id = hex::encode(&Sha256::digest(key.bytes())[..4]);
        TokenCipher { cipher: Aes256Gcm::new(key.bytes().into()), key_id }
    }

    /// `v1:<key id>:<base64(nonce ‖ ciphertext)>`
    pub fn seal(&self, workspace_id: i64, secret: &SecretString) -> Result<String, CryptoError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let aad = workspace_id.to_be_bytes();
        let payload = Payload { msg: secret.expose_secret().as_bytes(), aad: &aad };
        let sealed = self.cipher.encrypt(&Nonce::from(nonce), payload).map_err(|_| CryptoError::Rejected)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("v1:{}:{}", self.key_id, STANDARD.encode(bytes)))
    }

    pub fn open(&self, workspace_id: i64, sealed: &str) -> Result<SecretString, CryptoError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some("v1"), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Malformed);
        };
        if key_id != self.key_id {
            return Err(CryptoError::UnknownKey(key_id.to_string()));
        }
        let bytes = STANDARD.decode(body).map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
        let aad = workspace_id.to_be_bytes();
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| CryptoError::Rejected)?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| CryptoError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cipher(byte: u8) -> TokenCipher {
        let mut env = HashMap::new();
        env.insert("NUDGE_ENCRYPTION_KEY".to_string(), STANDARD.encode([byte; 32]));
        let empty = std::env::temp_dir().join("nudge-crypto-test-empty.toml");
        std::fs::write(&empty, "").unwrap();
        env.insert("NUDGE_CONFIG".to_string(), empty.display().to_string());
        let config = crate::config::Config::load(&env).unwrap();
        TokenCipher::new(config.encryption_key.as_ref().unwrap())
    }

    #[test]
    fn a_sealed_token_opens_for_its_own_workspace_only() {
        let cipher = cipher(1);
        let token = SecretString::from("xoxb-123-456-secret");
        let sealed = cipher.seal(42, &token).unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("xoxb"), "{sealed}");
        assert_eq!(cipher.open(42, &sealed).unwrap().expose_secret(), "xoxb-123-456-secret");
        assert_eq!(cipher.open(43, &sealed).unwrap_err(), CryptoError::Rejected);
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let cipher = cipher(1);
        let token = SecretString::from("xoxb-same");
        assert_ne!(cipher.seal(1, &token).unwrap(), cipher.seal(1, &token).unwrap());
    }

    #[test]
    fn another_key_or_a_tampered_token_does_not_open() {
        let sealed = cipher(1).seal(7, &SecretString::from("xoxb-x")).unwrap();
        assert!(matches!(cipher(2).open(7, &sealed), Err(CryptoError::UnknownKey(_))));
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(cipher(1).open(7, &tampered).is_err());
        assert_eq!(cipher(1).open(7, "garbage").unwrap_err(), CryptoError::Malformed);
        assert!(!format!("{:?}", cipher(1)).contains("cipher:"));
    }
}
