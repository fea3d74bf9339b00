//! What a webhook URL must look like before it is stored.
//!
//! This is the syntactic check done at creation. Address checks (private ranges, DNS) belong to
//! the sender's resolver, because DNS answers change after creation.

use url::Url;

/// Longest webhook URL accepted, in characters.
pub const MAX_URL_LEN: usize = 2048;
/// How a webhook URL must begin, as the API's document states it (ASCII case aside). The URL
/// parser alone would also take `https:host` or leading spaces.
pub const URL_START_PATTERN: &str = "^[Hh][Tt][Tt][Pp][Ss]?://";

#[derive(Debug, Clone, Copy, Default)]
pub struct UrlPolicy {
    /// Accept `http://` (local development only).
    pub allow_http: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    #[error("url is not an absolute URL: {0}")]
    NotAUrl(String),
    #[error("url must use https")]
    SchemeNotAllowed,
    #[error("url must have a host")]
    NoHost,
    #[error("url must not carry credentials")]
    HasCredentials,
    #[error("url must not have a fragment")]
    HasFragment,
    #[error("url is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("url must start with `https://` (or `http://`)")]
    NoSchemeStart,
}

pub fn validate_webhook_url(raw: &str, policy: UrlPolicy) -> Result<Url, WebhookUrlError> {
    if raw.chars().count() > MAX_URL_LEN {
        return Err(WebhookUrlError::TooLong);
    }
    if !starts_with_scheme(raw) {
        return Err(WebhookUrlError::NoSchemeStart);
    }
    let url = Url::parse(raw).map_err(|err| WebhookUrlError::NotAUrl(err.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        _ => return Err(WebhookUrlError::SchemeNotAllowed),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(WebhookUrlError::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookUrlError::HasCredentials);
    }
    if url.fragment().is_some() {
        return Err(WebhookUrlError::HasFragment);
    }
    Ok(url)
}

/// Whether `raw` begins as [`URL_START_PATTERN`] says.
fn starts_with_scheme(raw: &str) -> bool {
    ["https://", "http://"].iter().any(|start| {
        raw.get(..start.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(start))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy { allow_http: false };
    const DEV: UrlPolicy = UrlPolicy { allow_http: true };

    #[test]
    fn https_urls_are_accepted() {
        let url = validate_webhook_url("https://example.com/hooks?x=1", STRICT).unwrap();
        assert_eq!(url.host_str(), Some("example.com"));
    }

    #[test]
    fn http_only_when_allowed() {
        assert_eq!(
            validate_webhook_url("http://example.com/", STRICT),
            Err(WebhookUrlError::SchemeNotAllowed)
        );
        assert!(validate_webhook_url("http://127.0.0.1:8090/", DEV).is_ok());
    }

    #[test]
    fn hostile_and_malformed_urls_are_refused() {
        for bad in [
            "not a url",
            "/relative/path",
            "ftp://example.com/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://user:pass@example.com/",
            "https://example.com/#frag",
            "gopher://example.com",
            "https:example.com/",
            " https://example.com/",
        ] {
            assert!(validate_webhook_url(bad, DEV).is_err(), "{bad} accepted");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            validate_webhook_url(&long, STRICT),
            Err(WebhookUrlError::TooLong)
        );
        // Characters are counted, as the document's `maxLength` counts them.
        let at_limit = format!("HTTPS://example.com/{}", "é".repeat(MAX_URL_LEN - 20));
        assert!(validate_webhook_url(&at_limit, STRICT).is_ok());
    }
}
