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
    keys: Vec<(String, Aes256Gcm)>,
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
                if key.len() != 32 || !valid_id {
                    return Err(bad());
                }
                let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| bad())?;
                Ok((id.to_owned(), cipher))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(AtRestError::NoKeys);
        }
        Ok(Self { keys })
    }

    /// A fixed, publicly known key: for local development and tests only.
    pub fn development() -> Self {
        let cipher = Aes256Gcm::new_from_slice(&DEVELOPMENT_KEY).expect("a 32-byte key");
        Self {
            keys: vec![("dev".to_owned(), cipher)],
        }
    }

    /// Seals `secret` of the webhook `webhook_id` with the first key.
    pub fn seal(&self, secret: &str, webhook_id: &str) -> String {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret.as_bytes(),
            aad: webhook_id.as_bytes(),
        };
        let mut sealed = nonce.to_vec();
        sealed.extend(
            cipher
                .encrypt(Nonce::from_slice(&nonce), payload)
                .expect("AES-GCM seals any secret of ours"),
        );
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
        if sealed.len() < NONCE_LEN {
            return Err(AtRestError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: webhook_id.as_bytes(),
        };
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| AtRestError::Corrupt)?;
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
