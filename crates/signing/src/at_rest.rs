//! Webhook secrets at rest: sealed with AES-256-GCM before they enter any topic, opened only
//! where a request is signed (the sender, ingest's test send).
//!
//! A sealed secret reads `enc:v1:<key id>:<base64 nonce ‖ ciphertext>`; the key id names which
//! key sealed it, so keys rotate without downtime: add a new key first in the list (it seals
//! from then on), keep the old ones until no record uses them. The webhook id is the associated
//! data, so a sealed secret cannot be moved to another webhook. Text without the `enc:` prefix
//! is a secret written before sealing existed and is used as is.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;
/// The key of `SecretKeys::development`: public, so only for local runs and tests.
const DEVELOPMENT_KEY: [u8; 32] = *b"hookline-development-key-unsafe!";

/// AES-256-GCM with a random nonce per message: sealed bytes are `nonce ‖ ciphertext`, and the
/// associated data binds them to their purpose.
#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(Aes256Gcm::new(key.into()))
    }

    /// A cipher with a fresh random key, for what needs to open only in this process.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::new(&key)
    }

    pub fn seal(&self, message: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload { msg: message, aad };
        let mut sealed = nonce.to_vec();
        sealed.extend(
            self.0
                .encrypt(Nonce::from_slice(&nonce), payload)
                .expect("AES-GCM seals any message of ours"),
        );
        sealed
    }

    /// What [`seal`](Self::seal) sealed with the same `aad`; `None` if altered or foreign.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad,
        };
        self.0.decrypt(Nonce::from_slice(nonce), payload).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtRestError {
    #[error("secret keys must be `id:<base64 of 32 bytes>`, comma-separated: {0}")]
    BadKey(String),
    #[error("no secret key is configured")]
    NoKeys,
    #[error("sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    #[error("sealed secret is malformed or was altered")]
    Corrupt,
}

/// The keys that seal and open webhook secrets; the first seals.
#[derive(Clone)]
pub struct SecretKeys {
    keys: Vec<(String, Cipher)>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SecretKeys").field("ids", &ids).finish()
    }
}

impl SecretKeys {
    /// Parses `id:<base64 key>,id2:<base64 key>`; the first key seals.
    pub fn parse(spec: &str) -> Result<Self, AtRestError> {
        let keys = spec
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let bad = || AtRestError::BadKey(entry.split(':').next().unwrap_or("").to_owned());
                let (id, encoded) = entry.split_once(':').ok_or_else(bad)?;
                let key = STANDARD.decode(encoded).map_err(|_| bad())?;
                let valid_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
                let key: [u8; 32] = key.try_into().map_err(|_| bad())?;
                if !valid_id {
                    return Err(bad());
                }
                Ok((id.to_owned(), Cipher::new(&key)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(AtRestError::NoKeys);
        }
        Ok(Self { keys })
    }

    /// A fixed, publicly known key: for local development and tests only.
    pub fn development() -> Self {
        Self {
            keys: vec![("dev".to_owned(), Cipher::new(&DEVELOPMENT_KEY))],
        }
    }

    /// Seals `secret` of the webhook `webhook_id` with the first key.
    pub fn seal(&self, secret: &str, webhook_id: &str) -> String {
        let (id, cipher) = &self.keys[0];
        let sealed = cipher.seal(secret.as_bytes(), webhook_id.as_bytes());
        format!("{PREFIX}{id}:{}", STANDARD.encode(sealed))
    }

    /// Opens what [`seal`](Self::seal) made; text written before sealing passes unchanged.
    pub fn open(&self, stored: &str, webhook_id: &str) -> Result<String, AtRestError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, encoded) = rest.split_once(':').ok_or(AtRestError::Corrupt)?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(key_id, _)| key_id == id)
            .ok_or_else(|| AtRestError::UnknownKey(id.to_owned()))?;
        let sealed = STANDARD.decode(encoded).map_err(|_| AtRestError::Corrupt)?;
        let plain = cipher
            .open(&sealed, webhook_id.as_bytes())
            .ok_or(AtRestError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| AtRestError::Corrupt)
    }

    /// Whether `text` is in the sealed form (so it cannot be an owner's plain secret).
    pub fn is_sealed(text: &str) -> bool {
        text.starts_with("enc:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn sealed_secrets_open_only_for_their_webhook_and_never_show_the_secret() {
        let keys = SecretKeys::parse(&format!("k1:{}", key(1))).unwrap();
        let sealed = keys.seal("whsec_abc", "wh_1");
        assert!(sealed.starts_with("enc:v1:k1:") && !sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            keys.seal("whsec_abc", "wh_1"),
            "a fresh nonce each time"
        );
        assert_eq!(keys.open(&sealed, "wh_1").unwrap(), "whsec_abc");
        assert_eq!(keys.open(&sealed, "wh_2"), Err(AtRestError::Corrupt));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.open(&altered, "wh_1").is_err());
    }

    #[test]
    fn keys_rotate_without_downtime() {
        let old = SecretKeys::parse(&format!("k1:{}", key(1))).unwrap();
        let sealed_before = old.seal("whsec_old", "wh_1");
        let rotated = SecretKeys::parse(&format!("k2:{},k1:{}", key(2), key(1))).unwrap();
        assert_eq!(rotated.open(&sealed_before, "wh_1").unwrap(), "whsec_old");
        let sealed_after = rotated.seal("whsec_new", "wh_1");
        assert!(sealed_after.starts_with("enc:v1:k2:"));
        assert_eq!(
            old.open(&sealed_after, "wh_1"),
            Err(AtRestError::UnknownKey("k2".into()))
        );
    }

    #[test]
    fn plain_secrets_from_before_sealing_pass_and_bad_keys_are_refused() {
        let keys = SecretKeys::development();
        assert_eq!(keys.open("whsec_plain", "wh_1").unwrap(), "whsec_plain");
        assert_eq!(SecretKeys::parse("").unwrap_err(), AtRestError::NoKeys);
        assert!(SecretKeys::parse("k1:c2hvcnQ=").is_err(), "too short");
        assert!(SecretKeys::parse(&key(1)).is_err(), "no id");
        assert!(SecretKeys::parse(&format!("k-1:{}", key(1))).is_err());
    }
}
