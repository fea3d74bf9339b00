//! What the ledger keeps of an attempt's URL: never a credential.
//!
//! Endpoints that cannot read a custom header take their key in the URL (`?token=…`,
//! `?api_key=…`, `https://user:password@…`). The recorded copy reads [`REDACTED`] in place of a
//! password and of the value of every query parameter whose name carries a credential by the
//! headers' rule ([`carries_credential`]); everything else is kept byte for byte as the owner
//! wrote it. The request itself goes to the URL unchanged.
//!
//! The URL is cut where the WHATWG URL standard cuts it (as the `url` crate, and so the HTTP
//! client, does), so what is redacted is exactly what is sent as a password or a query.

use std::ops::Range;

use url::form_urlencoded;

use crate::recorded_headers::{carries_credential, REDACTED};

/// Schemes whose authority may follow any number of `/` or `\`, and ends at a `\` as well.
const SPECIAL_SCHEMES: [&str; 5] = ["ftp", "http", "https", "ws", "wss"];

/// Characters a URL parser removes wherever they are.
const TAB_OR_NEWLINE: [char; 3] = ['\t', '\n', '\r'];

/// The URL to record for a request to `url`: its password and the values of its query
/// parameters that carry a credential read [`REDACTED`]. An empty password or value, which
/// hides nothing, is kept.
pub fn recorded_url(url: &str) -> String {
    let (before_fragment, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let (before_query, query) =
        before_fragment.split_at(before_fragment.find('?').unwrap_or(before_fragment.len()));
    let mut recorded = String::with_capacity(url.len());
    match password_span(before_query) {
        Some(password) => {
            recorded.push_str(&before_query[..password.start]);
            recorded.push_str(REDACTED);
            recorded.push_str(&before_query[password.end..]);
        }
        None => recorded.push_str(before_query),
    }
    if let Some(query) = query.strip_prefix('?') {
        recorded.push('?');
        for (index, parameter) in query.split('&').enumerate() {
            if index > 0 {
                recorded.push('&');
            }
            push_recorded_parameter(&mut recorded, parameter);
        }
    }
    recorded.push_str(fragment);
    recorded
}

/// Appends `parameter` (`name=value`, as written) with its value redacted if its name, decoded
/// as a server decodes it, carries a credential.
fn push_recorded_parameter(recorded: &mut String, parameter: &str) {
    let hides_a_credential =
        form_urlencoded::parse(parameter.replace(TAB_OR_NEWLINE, "").as_bytes())
            .next()
            .is_some_and(|(name, value)| !value.is_empty() && carries_credential(&name));
    match parameter.split_once('=') {
        Some((name, _)) if hides_a_credential => {
            recorded.push_str(name);
            recorded.push('=');
            recorded.push_str(REDACTED);
        }
        _ => recorded.push_str(parameter),
    }
}

/// Where the non-empty password of `before_query` (a URL cut before its query and fragment) is:
/// in the authority, which ends at the first `/` (or `\`), between the first `:` and the last
/// `@`.
fn password_span(before_query: &str) -> Option<Range<usize>> {
    let scheme_start =
        before_query.len() - before_query.trim_start_matches(|c: char| c <= ' ').len();
    let (scheme, after_scheme) = before_query[scheme_start..].split_once(':')?;
    let scheme = scheme.replace(TAB_OR_NEWLINE, "").to_ascii_lowercase();
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return None;
    }
    let special = SPECIAL_SCHEMES.contains(&scheme.as_str());
    let authority_offset = if special {
        after_scheme.len()
            - after_scheme
                .trim_start_matches(|c: char| {
                    matches!(c, '/' | '\\') || TAB_OR_NEWLINE.contains(&c)
                })
                .len()
    } else if after_scheme.starts_with("//") {
        2
    } else {
        return None;
    };
    let authority = &after_scheme[authority_offset..];
    let authority = &authority[..authority
        .find(|c: char| c == '/' || (special && c == '\\'))
        .unwrap_or(authority.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let password_offset = userinfo.find(':')? + 1;
    if password_offset == userinfo.len() {
        return None;
    }
    let start = before_query.len() - after_scheme.len() + authority_offset + password_offset;
    Some(start..start + userinfo.len() - password_offset)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use url::Url;

    use super::*;

    #[test]
    fn a_password_is_redacted_and_a_lone_user_name_kept() {
        for (url, recorded) in [
            (
                "https://user:pass@example.com/",
                "https://user:[redacted]@example.com/",
            ),
            (
                "https://user:p%40ss:w@example.com:8443/hooks?x=1",
                "https://user:[redacted]@example.com:8443/hooks?x=1",
            ),
            // The last `@` of the authority ends the password, the first `:` starts it.
            (
                "https://a:b@c:d@example.com/",
                "https://a:[redacted]@example.com/",
            ),
            (
                "https://a@b:c@example.com/",
                "https://a@b:[redacted]@example.com/",
            ),
            // A URL parser accepts these spellings of `https://user:pass@…` too.
            (
                "HTTPS:user:pass@example.com",
                "HTTPS:user:[redacted]@example.com",
            ),
            (
                " https:\\\\user:pass@example.com\\x",
                " https:\\\\user:[redacted]@example.com\\x",
            ),
            (
                "custom://user:pass@example.com/",
                "custom://user:[redacted]@example.com/",
            ),
            ("https://user@example.com/", "https://user@example.com/"),
            ("https://user:@example.com/", "https://user:@example.com/"),
            ("https://@example.com/", "https://@example.com/"),
        ] {
            assert_eq!(recorded_url(url), recorded, "{url}");
        }
    }

    #[test]
    fn credential_parameters_are_redacted_and_the_rest_kept_as_written() {
        for (url, recorded) in [
            (
                "https://example.com/hooks?token=s3cr3t&team=payments",
                "https://example.com/hooks?token=[redacted]&team=payments",
            ),
            (
                "https://example.com/?a=1&api_key=k&sig=abc&Access-Token=t#token=frag",
                "https://example.com/?a=1&api_key=[redacted]&sig=abc&Access-Token=[redacted]#token=frag",
            ),
            // Repeated names, each redacted; empty or missing values hide nothing.
            (
                "https://example.com/?token=a&token=&token&token=b=c&&",
                "https://example.com/?token=[redacted]&token=&token&token=[redacted]&&",
            ),
            // Names are decoded as a server decodes them; other parameters stay encoded.
            (
                "https://example.com/?api%5Fkey=k&client+secret=s&q=a%20b+c&x=%E2%9C%93",
                "https://example.com/?api%5Fkey=[redacted]&client+secret=[redacted]&q=a%20b+c&x=%E2%9C%93",
            ),
            ("https://example.com/?to\tken=t", "https://example.com/?to\tken=[redacted]"),
            ("https://example.com/?", "https://example.com/?"),
            ("https://example.com/", "https://example.com/"),
            ("", ""),
        ] {
            assert_eq!(recorded_url(url), recorded, "{url}");
        }
    }

    #[test]
    fn the_host_and_the_path_are_never_redacted() {
        for url in [
            "https://token.example.com/token=1/user:pass@x",
            "https://example.com/a:b@c?sig=1",
            "https://token:@example.com/",
            "mailto:user:pass@example.com",
            "not a url: token=1 user:pass@x",
            "https://example.com/#user:pass@x?token=1",
        ] {
            assert_eq!(recorded_url(url), url);
        }
    }

    fn parameter_name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_.%+-]{0,10}".prop_filter("not a credential", |name| {
            !form_urlencoded::parse(name.as_bytes())
                .next()
                .is_some_and(|(name, _)| carries_credential(&name))
        })
    }

    fn query() -> impl Strategy<Value = String> {
        let parameter = prop_oneof![
            (parameter_name(), "[a-zA-Z0-9=%+:/@?. -]{0,12}")
                .prop_map(|(name, value)| format!("{name}={value}")),
            parameter_name(),
            (
                prop::sample::select(vec!["token", "api_key", "Password", "x-auth"]),
                Just(String::new()),
            )
                .prop_map(|(name, _)| format!("{name}=")),
        ];
        prop::collection::vec(parameter, 0..6).prop_map(|parameters| parameters.join("&"))
    }

    fn url_without_credentials() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["https://", "http://", "HTTPS:", "https:\\\\"]),
            prop::option::of("[a-z0-9._~-]{1,8}@"),
            prop::sample::select(vec!["example.com", "token.example.com:8443", "[::1]"]),
            "(/[a-zA-Z0-9:@=&%._-]{0,8}){0,3}",
            prop::option::of(query()),
            prop::option::of("[a-zA-Z0-9=&?:@#/_-]{0,12}"),
        )
            .prop_map(|(scheme, user, host, path, query, fragment)| {
                let mut url = format!("{scheme}{}{host}{path}", user.unwrap_or_default());
                if let Some(query) = query {
                    url.push('?');
                    url.push_str(&query);
                }
                if let Some(fragment) = fragment {
                    url.push('#');
                    url.push_str(&fragment);
                }
                url
            })
    }

    fn any_url() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "https://",
                "http://",
                "HTTPS:",
                "https:\\\\",
                "https:///",
            ]),
            "([a-z:@%]{0,8}@)?",
            prop::sample::select(vec!["example.com", "example.com:8443"]),
            "(/[a-z:@=&%\\\\]{0,6}){0,2}",
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "token",
                        "api%5Fkey",
                        "api_key",
                        "to\tken",
                        "sig",
                        "team",
                        "x",
                        "",
                    ]),
                    "(=[a-zA-Z0-9=%+:@/ ]{0,8})?",
                ),
                0..5,
            ),
            "(#[a-z=&?:@]{0,8})?",
        )
            .prop_map(|(scheme, userinfo, host, path, parameters, fragment)| {
                let query: Vec<String> = parameters
                    .into_iter()
                    .map(|(name, value)| format!("{name}{value}"))
                    .collect();
                format!(
                    "{scheme}{userinfo}{host}{path}?{}{fragment}",
                    query.join("&")
                )
            })
    }

    proptest! {
        #[test]
        fn a_url_without_a_password_or_credential_parameters_is_recorded_unchanged(
            url in url_without_credentials(),
        ) {
            prop_assert_eq!(recorded_url(&url), url);
        }

        /// Read back by a URL parser, the recorded URL is the URL with only its password and the
        /// values of its credential parameters replaced.
        #[test]
        fn a_url_parser_reads_the_same_url_with_only_credentials_redacted(url in any_url()) {
            let Ok(sent) = Url::parse(&url) else {
                return Ok(());
            };
            let recorded = Url::parse(&recorded_url(&url)).expect("the recorded url parses");
            prop_assert_eq!(recorded.scheme(), sent.scheme());
            prop_assert_eq!(recorded.username(), sent.username());
            prop_assert_eq!(
                recorded.password(),
                sent.password().map(|_| "%5Bredacted%5D")
            );
            prop_assert_eq!(recorded.host_str(), sent.host_str());
            prop_assert_eq!(recorded.port(), sent.port());
            prop_assert_eq!(recorded.path(), sent.path());
            prop_assert_eq!(recorded.fragment(), sent.fragment());
            let sent_pairs: Vec<_> = sent.query_pairs().collect();
            let recorded_pairs: Vec<_> = recorded.query_pairs().collect();
            prop_assert_eq!(recorded_pairs.len(), sent_pairs.len());
            for ((name, value), (sent_name, sent_value)) in recorded_pairs.iter().zip(&sent_pairs) {
                prop_assert_eq!(name, sent_name);
                if !carries_credential(name) {
                    prop_assert_eq!(value, sent_value);
                } else if !sent_value.is_empty() {
                    prop_assert_eq!(value, REDACTED);
                }
            }
        }
    }
}
