//! Console sessions: the signed-in API key and the session's CSRF token, sealed with
//! AES-256-GCM into the session cookie, so the server keeps no session state and the browser
//! can neither read nor alter them.
//!
//! The sealing key is drawn at start-up: sessions end when the process restarts. A visitor
//! who has not signed in gets a session without a key, so the sign-in form carries a CSRF
//! token like every other form. An operator's session also carries the admin token and the id
//! of the key the console created for the tenant they view, so it can revoke it.

use axum::http::header::COOKIE;
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hookline_signing::Cipher;
use rand::RngCore;
use serde::{Deserialize, Serialize};

pub const COOKIE_NAME: &str = "hookline_console";
/// Associated data: a sealed value of another purpose never opens as a session.
const PURPOSE: &[u8] = b"hookline-console-session-v1";

/// What the session cookie carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The tenant API key, sent as the bearer token of every API call; `None` before sign-in,
    /// and for an operator until they pick a tenant.
    #[serde(rename = "k")]
    pub api_key: Option<String>,
    /// Every form of this session carries it; a POST without it is refused.
    #[serde(rename = "c")]
    pub csrf: String,
    #[serde(rename = "e")]
    pub expires_at: DateTime<Utc>,
    /// The key's scopes as the API names them (`webhooks:manage`, …); keys' scopes never
    /// change, so they are read once at sign-in.
    #[serde(rename = "s", default)]
    pub scopes: Vec<String>,
    /// The tenant the key acts for.
    #[serde(rename = "t", default)]
    pub tenant: Option<TenantShown>,
    /// Present when signed in with the admin token.
    #[serde(rename = "o", default)]
    pub operator: Option<Operator>,
}

/// The tenant a session acts for, as the pages name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantShown {
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "n")]
    pub name: String,
}

/// An operator's session: the admin token, and the short-lived key the console created for
/// the tenant being viewed (revoked when the operator switches tenant or signs out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    #[serde(rename = "a")]
    pub admin_token: String,
    #[serde(rename = "i")]
    pub key_id: Option<String>,
}

impl Session {
    pub fn new(api_key: Option<String>, lifetime: Duration) -> Self {
        let mut token = [0u8; 32];
        rand::rng().fill_bytes(&mut token);
        Self {
            api_key,
            csrf: URL_SAFE_NO_PAD.encode(token),
            expires_at: Utc::now() + lifetime,
            scopes: Vec::new(),
            tenant: None,
            operator: None,
        }
    }

    /// `None` when the key has `scope`; otherwise why an action needing it is unavailable.
    pub fn lacks(&self, scope: &str) -> Option<String> {
        (!self.scopes.iter().any(|held| held == scope)).then(|| format!("needs {scope}"))
    }

    /// Whether `submitted` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        let (expected, submitted) = (self.csrf.as_bytes(), submitted.as_bytes());
        expected.len() == submitted.len()
            && expected
                .iter()
                .zip(submitted)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

/// Seals sessions into cookie values and opens them again.
#[derive(Clone)]
pub struct Sealer {
    cipher: Cipher,
    secure: bool,
}

impl Sealer {
    /// A sealer with a fresh random key; `secure` adds the cookie's `Secure` attribute.
    pub fn random(secure: bool) -> Self {
        Self {
            cipher: Cipher::random(),
            secure,
        }
    }

    pub fn seal(&self, session: &Session) -> String {
        let plaintext = serde_json::to_vec(session).expect("a session serializes");
        let sealed = self.cipher.seal(&plaintext, PURPOSE);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The session sealed in `value`, unless it was altered, sealed by another key or expired.
    pub fn open(&self, value: &str) -> Option<Session> {
        let sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
        let plaintext = self.cipher.open(&sealed, PURPOSE)?;
        let session: Session = serde_json::from_slice(&plaintext).ok()?;
        (session.expires_at > Utc::now()).then_some(session)
    }

    /// The session of a request's cookies, if it carries a valid one.
    pub fn from_headers(&self, headers: &HeaderMap) -> Option<Session> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|cookies| cookies.split(';'))
            .filter_map(|cookie| cookie.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE_NAME)
            .find_map(|(_, value)| self.open(value))
    }

    /// The `Set-Cookie` value that stores `session` until it expires.
    pub fn set_cookie(&self, session: &Session) -> String {
        let max_age = (session.expires_at - Utc::now()).num_seconds().max(0);
        self.cookie(&self.seal(session), max_age)
    }

    /// The `Set-Cookie` value that removes the session.
    pub fn clear_cookie(&self) -> String {
        self.cookie("", 0)
    }

    fn cookie(&self, value: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{COOKIE_NAME}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        )
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn signed_in() -> Session {
        Session::new(Some("hk_test_key".into()), Duration::hours(8))
    }

    #[test]
    fn a_sealed_session_opens_to_itself_and_hides_the_key() {
        let sealer = Sealer::random(true);
        let session = signed_in();
        let sealed = sealer.seal(&session);
        assert!(!sealed.contains("hk_test_key"));
        assert_eq!(sealer.open(&sealed), Some(session));
        let operator = Session {
            operator: Some(Operator {
                admin_token: "admin-token-0123456789".into(),
                key_id: Some("key_1".into()),
            }),
            ..signed_in()
        };
        let sealed = sealer.seal(&operator);
        assert!(!sealed.contains("admin-token"));
        assert_eq!(sealer.open(&sealed), Some(operator));
    }

    #[test]
    fn altered_foreign_and_expired_sessions_do_not_open() {
        let sealer = Sealer::random(true);
        let sealed = sealer.seal(&signed_in());
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(sealer.open(std::str::from_utf8(&altered).unwrap()), None);
        assert_eq!(Sealer::random(true).open(&sealed), None);
        let expired = Session::new(Some("k".into()), Duration::seconds(-1));
        assert_eq!(sealer.open(&sealer.seal(&expired)), None);
        assert_eq!(sealer.open("not base64 !"), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_unless_told_otherwise() {
        let session = signed_in();
        let cookie = Sealer::random(true).set_cookie(&session);
        assert!(cookie.contains("; Path=/console; HttpOnly; SameSite=Strict; Max-Age="));
        assert!(cookie.ends_with("; Secure"));
        assert!(!Sealer::random(false)
            .set_cookie(&session)
            .contains("Secure"));
    }

    #[test]
    fn the_session_is_found_among_other_cookies() {
        let sealer = Sealer::random(false);
        let session = signed_in();
        let mut headers = HeaderMap::new();
        let cookies = format!("other=1; {COOKIE_NAME}={}; x=y", sealer.seal(&session));
        headers.insert(COOKIE, HeaderValue::from_str(&cookies).unwrap());
        assert_eq!(sealer.from_headers(&headers), Some(session));
    }

    #[test]
    fn a_missing_scope_is_named() {
        let session = Session {
            scopes: vec!["deliveries:read".into()],
            ..signed_in()
        };
        assert_eq!(session.lacks("deliveries:read"), None);
        assert_eq!(
            session.lacks("webhooks:manage").as_deref(),
            Some("needs webhooks:manage")
        );
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        let session = signed_in();
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&signed_in().csrf));
    }
}
