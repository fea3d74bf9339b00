//! What the ledger keeps of an attempt's HTTP headers: never a credential, and a response's
//! headers only up to a size.
//!
//! Owners put API keys in custom webhook headers and endpoints answer with cookies, so a header
//! whose name says it carries a credential is recorded with its value replaced by [`REDACTED`].
//! Signature headers (`webhook-signature`, `x-hub-signature-256`, …) are kept: they are HMACs
//! of one request that its receiver sees anyway, and prove nothing about any other.

/// The value recorded in place of a credential.
pub const REDACTED: &str = "[redacted]";

/// Most bytes of names and values of one response's headers recorded.
pub const MAX_RECORDED_RESPONSE_HEADER_BYTES: usize = 4096;

/// Words that, anywhere in a header's name (case and `-`/`_` ignored), mark it as carrying a
/// credential: `authorization`, `proxy-authorization`, `x-auth-token`, `cookie`, `set-cookie`,
/// `x-api-key`, `apikey`, `x-client-secret`, `x-password`, …
const CREDENTIAL_WORDS: [&str; 7] = [
    "auth",
    "cookie",
    "secret",
    "token",
    "password",
    "apikey",
    "credential",
];

/// Whether the header `name` carries a credential, so its value must never be recorded (the
/// same rule holds for the parameters of a URL's query, see [`crate::recorded_url`]).
pub fn carries_credential(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    CREDENTIAL_WORDS.iter().any(|word| folded.contains(word))
}

/// The value to record for header `name`: [`REDACTED`] for a credential, else `value`.
pub fn recorded_value<'a>(name: &str, value: &'a str) -> &'a str {
    if carries_credential(name) {
        REDACTED
    } else {
        value
    }
}

/// How many of `headers`, in order, are recorded when their names and values may total at most
/// `max_bytes`: the first one that does not fit and every one after it are dropped, so what is
/// kept is exactly what was received up to a point.
pub fn headers_within<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    max_bytes: usize,
) -> usize {
    let mut total = 0usize;
    let mut kept = 0;
    for (name, value) in headers {
        total = total.saturating_add(name.len() + value.len());
        if total > max_bytes {
            break;
        }
        kept += 1;
    }
    kept
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn credentials_are_redacted_and_everything_else_kept() {
        for name in [
            "authorization",
            "Proxy-Authorization",
            "cookie",
            "set-cookie",
            "X-Api-Key",
            "x-apikey",
            "X_API_KEY",
            "x-auth-token",
            "X-Client-Secret",
            "x-password",
            "x-access-token",
            "x-amz-security-token",
            "x-goog-credential",
        ] {
            assert!(carries_credential(name), "{name}");
            assert_eq!(recorded_value(name, "s3cr3t"), REDACTED);
        }
        for name in [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-hub-signature-256",
            "x-ardela-signature",
            "content-type",
            "user-agent",
            "x-team",
            "idempotency-key",
            "server",
            "date",
        ] {
            assert!(!carries_credential(name), "{name}");
            assert_eq!(recorded_value(name, "v1,abc"), "v1,abc");
        }
    }

    #[test]
    fn headers_are_kept_in_order_until_one_does_not_fit() {
        let headers = [("a", "123"), ("bb", "45"), ("c", "6"), ("d", "")];
        assert_eq!(headers_within(headers, 0), 0);
        assert_eq!(headers_within(headers, 3), 0);
        assert_eq!(headers_within(headers, 4), 1);
        assert_eq!(headers_within(headers, 8), 2);
        // `c` does not fit in 9, and `d` after it is dropped although it would.
        assert_eq!(
            headers_within([("a", "123"), ("bb", "45"), ("ccc", ""), ("d", "")], 9),
            2
        );
        assert_eq!(headers_within(headers, 10), 3);
        assert_eq!(headers_within(headers, 11), 4);
        assert_eq!(headers_within(headers, usize::MAX), 4);
    }

    fn header() -> impl Strategy<Value = (String, String)> {
        ("[a-z-]{1,12}", "[ -~]{0,40}")
    }

    proptest! {
        #[test]
        fn a_credential_word_anywhere_in_any_case_is_redacted(
            prefix in "[a-zA-Z-]{0,6}",
            word in prop::sample::select(vec!["Authorization", "COOKIE", "Secret", "token", "PassWord", "api-key", "ApiKey", "api_key", "auth"]),
            suffix in "[a-zA-Z0-9-]{0,6}",
        ) {
            let name = format!("{prefix}{word}{suffix}");
            prop_assert!(carries_credential(&name), "{name}");
            prop_assert_eq!(recorded_value(&name, "value"), REDACTED);
        }

        #[test]
        fn what_is_kept_is_a_prefix_within_the_limit_that_the_next_would_exceed(
            headers in proptest::collection::vec(header(), 0..40),
            max_bytes in 0usize..600,
        ) {
            let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            let kept = headers_within(pairs, max_bytes);
            let size = |h: &(String, String)| h.0.len() + h.1.len();
            let kept_bytes: usize = headers[..kept].iter().map(size).sum();
            prop_assert!(kept_bytes <= max_bytes);
            if let Some(next) = headers.get(kept) {
                prop_assert!(kept_bytes + size(next) > max_bytes);
            }
        }
    }
}
