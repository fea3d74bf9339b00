//! Standard Webhooks signing (<https://www.standardwebhooks.com/>).
//!
//! A request carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`:
//! space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per active secret
//! (several while a secret is being rotated). Secrets are `whsec_` followed by the base64 key.

mod at_rest;

pub use at_rest::{AtRestError, Cipher, SecretKeys};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const SECRET_PREFIX: &str = "whsec_";
/// Bytes of key material in a generated secret.
const GENERATED_KEY_LEN: usize = 24;
/// Shortest key accepted (the spec asks for 24 to 64 bytes).
const MIN_KEY_LEN: usize = 24;
const MAX_KEY_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("secret must start with `whsec_`")]
    MissingPrefix,
    #[error("secret is not valid base64")]
    NotBase64,
    #[error("secret key must be {MIN_KEY_LEN} to {MAX_KEY_LEN} bytes")]
    BadLength,
    #[error("no signature matches")]
    NoMatch,
}

/// A signing secret's key material.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    /// Parses `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, SigningError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SigningError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SigningError::NotBase64)?;
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
            return Err(SigningError::BadLength);
        }
        Ok(Self { key })
    }

    /// The `whsec_<base64>` form shown to the webhook owner.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac accepts any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// One `v1,<base64>` signature.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let digest = self.mac(msg_id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(digest))
    }
}

/// The `webhook-signature` header value for a message signed with every given secret.
pub fn signature_header(secrets: &[Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lowercase hex HMAC-SHA256 of `parts` (concatenated) keyed with `key` as given: the scheme of
/// platforms that use the secret's text itself as the key.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a `webhook-signature` header: succeeds when any `v1` signature matches (in constant
/// time). Timestamp tolerance is the receiver's policy and is not checked here.
pub fn verify(
    secret: &Secret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> Result<(), SigningError> {
    let matches = header
        .split(' ')
        .filter_map(|candidate| candidate.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|expected| {
            secret
                .mac(msg_id, timestamp, body)
                .verify_slice(&expected)
                .is_ok()
        });
    if matches {
        Ok(())
    } else {
        Err(SigningError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn hex_hmac_matches_the_rfc_4231_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// The test vector published with the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_test_vector() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let secret = Secret::generate();
        assert_eq!(Secret::parse(&secret.expose()).unwrap(), secret);
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(Secret::parse("abc"), Err(SigningError::MissingPrefix));
        assert_eq!(Secret::parse("whsec_!!!"), Err(SigningError::NotBase64));
        assert_eq!(Secret::parse("whsec_YWJj"), Err(SigningError::BadLength));
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }

    #[test]
    fn any_signature_of_a_rotation_header_verifies() {
        let (old, new) = (Secret::generate(), Secret::generate());
        let header = signature_header(&[new.clone(), old.clone()], "msg_1", 10, b"{}");
        assert!(verify(&old, "msg_1", 10, b"{}", &header).is_ok());
        assert!(verify(&new, "msg_1", 10, b"{}", &header).is_ok());
        let stranger = Secret::generate();
        assert_eq!(
            verify(&stranger, "msg_1", 10, b"{}", &header),
            Err(SigningError::NoMatch)
        );
    }

    proptest! {
        #[test]
        fn a_signature_verifies_only_for_its_exact_message(
            id in "msg_[a-z0-9]{1,20}",
            timestamp in 0i64..4_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 0..512),
            flip in any::<usize>(),
        ) {
            let secret = Secret::generate();
            let header = secret.sign(&id, timestamp, &body);
            prop_assert!(verify(&secret, &id, timestamp, &body, &header).is_ok());
            prop_assert!(verify(&secret, &id, timestamp + 1, &body, &header).is_err());
            let other_id = format!("{id}x");
            prop_assert!(verify(&secret, &other_id, timestamp, &body, &header).is_err());
            if !body.is_empty() {
                let mut tampered = body.clone();
                let index = flip % tampered.len();
                tampered[index] ^= 0x01;
                prop_assert!(verify(&secret, &id, timestamp, &tampered, &header).is_err());
            }
        }
    }
}
