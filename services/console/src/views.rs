//! The pieces every page is made of. maud escapes every interpolated string, so payloads,
//! headers and bodies from the API are rendered as text, never as markup.

use hookline_domain::recorded_headers::carries_credential;
pub use hookline_domain::recorded_headers::REDACTED;
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use crate::api::ApiFailure;
use crate::session::Session;

/// How much of a body a page shows before "show all".
pub const BODY_PREVIEW_CHARS: usize = 2_000;

const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"responseHandling":[{"code":"204","swap":false},{"code":"...","swap":true}]}"#;

/// A whole page; for a signed-in session, the navigation, the tenant it acts for and the
/// sign-out form.
pub fn page(title: &str, session: Option<&Session>, content: Markup) -> Markup {
    let signed_in =
        session.filter(|session| session.api_key.is_some() || session.operator.is_some());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Hookline" }
                // htmx: no inline indicator styles (the CSP refuses them), no eval, and
                // refused forms (4xx) are shown like any page rather than dropped.
                meta name="htmx-config" content=(HTMX_CONFIG);
                link rel="stylesheet" href="/console/assets/console.css";
                // No icon: otherwise browsers ask for /favicon.ico and log its 404.
                link rel="icon" href="data:,";
                script src="/console/assets/htmx.min.js" defer {}
            }
            body hx-boost="true" {
                header.top {
                    a.brand href="/console" { "Hookline" }
                    @if let Some(session) = signed_in {
                        nav aria-label="Main" {
                            @if session.api_key.is_some() {
                                a href="/console/webhooks" { "Webhooks" }
                                a href="/console/events" { "Events" }
                            }
                            @if session.operator.is_some() {
                                a href="/console/tenants" { "Tenants" }
                            }
                        }
                        @if let Some(tenant) = &session.tenant {
                            p.tenant {
                                "Tenant: " strong { (tenant.name) }
                                @if tenant.name != tenant.id { " " small { code { (tenant.id) } } }
                                @if session.operator.is_some() { " (as operator)" }
                            }
                        }
                        form method="post" action="/console/sign-out" {
                            (csrf_field(&session.csrf))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (content) }
            }
        }
    }
}

pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A form's submit button; disabled, with the reason beside it, when `blocked` says why the
/// session's key may not do it (the API would refuse it anyway).
pub fn submit(label: &str, blocked: Option<&str>) -> Markup {
    html! {
        button type="submit" disabled[blocked.is_some()] { (label) }
        @if let Some(reason) = blocked { " " small.needs { (reason) } }
    }
}

/// A one-button form posting to `action` (activate, replay, …), guarded like [`submit`].
pub fn action_button(action: &str, label: &str, csrf: &str, blocked: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(csrf))
            (submit(label, blocked))
        }
    }
}

/// A link styled as a button (to a form page), shown inert with the reason when `blocked`.
pub fn link_button(href: &str, label: &str, blocked: Option<&str>) -> Markup {
    html! {
        @match blocked {
            None => a.button href=(href) { (label) },
            Some(reason) => {
                span.button.disabled aria-disabled="true" { (label) }
                " " small.needs { (reason) }
            }
        }
    }
}

/// An API error where it belongs: its stable code and its message.
pub fn failure(failure: &ApiFailure) -> Markup {
    html! {
        p.error role="alert" {
            strong { code { (failure.code) } } " " (failure.message)
        }
    }
}

/// Status as a word (and a class for colour, never colour alone).
pub fn status_badge(status: &str) -> Markup {
    let class = match status {
        "active" | "succeeded" => "good",
        "failing" | "retrying" | "inactive" | "pending" => "warn",
        // Under way: neither good nor bad news yet.
        "running" => "neutral",
        _ => "bad",
    };
    html! { span class={ "badge " (class) } { (status) } }
}

/// A body as text, pretty-printed when it is JSON, cut after [`BODY_PREVIEW_CHARS`] with the
/// rest one click away; an empty one says so rather than show an empty box.
pub fn body_text(body: &str) -> Markup {
    let pretty = pretty_json(body).unwrap_or_else(|| body.to_owned());
    let cut = pretty
        .char_indices()
        .nth(BODY_PREVIEW_CHARS)
        .map(|(index, _)| index);
    html! {
        @match cut {
            None if pretty.is_empty() => p.hint { "Empty." },
            None => pre { (pretty) },
            Some(index) => {
                pre { (&pretty[..index]) "…" }
                details {
                    summary { "Show all " (pretty.chars().count()) " characters" }
                    pre { (pretty) }
                }
            }
        }
    }
}

/// JSON text indented two spaces a level, its keys and its strings' escapes as they came (a
/// `Value` would sort the keys); `None` when `text` is not JSON.
pub fn pretty_json(text: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let mut pretty = String::with_capacity(text.len() * 2);
    let mut depth = 0;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            pretty.push(c);
            (in_string, escaped) = match c {
                _ if escaped => (true, false),
                '\\' => (true, true),
                '"' => (false, false),
                _ => (true, false),
            };
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                pretty.push(c);
            }
            '{' | '[' => {
                pretty.push(c);
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                match chars.next_if(|c| matches!(c, '}' | ']')) {
                    Some(close) => pretty.push(close),
                    None => {
                        depth += 1;
                        new_line(&mut pretty, depth);
                    }
                }
            }
            '}' | ']' => {
                depth -= 1;
                new_line(&mut pretty, depth);
                pretty.push(c);
            }
            ',' => {
                pretty.push(c);
                new_line(&mut pretty, depth);
            }
            ':' => pretty.push_str(": "),
            c if c.is_whitespace() => {}
            c => pretty.push(c),
        }
    }
    Some(pretty)
}

fn new_line(text: &mut String, depth: usize) {
    text.push('\n');
    text.extend(std::iter::repeat_n("  ", depth));
}

pub fn json_text(value: &Value) -> Markup {
    body_text(&value.to_string())
}

/// The items of a listing the API answered (`{"data": [...]}`), none when it refused.
pub fn listed(listing: &Result<Value, ApiFailure>) -> Vec<Value> {
    listing
        .as_ref()
        .ok()
        .and_then(|listing| listing["data"].as_array().cloned())
        .unwrap_or_default()
}

/// `1 attempt`, `2 attempts`.
pub fn attempts(count: u64) -> String {
    match count {
        1 => "1 attempt".into(),
        count => format!("{count} attempts"),
    }
}

/// A string field of an API object, empty when absent.
pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// An RFC 3339 instant as people read it, to the second in UTC (`2026-11-23 15:00:30 UTC`),
/// with the exact value kept in `datetime`; anything else as it came.
pub fn timestamp(instant: &str) -> Markup {
    let readable = chrono::DateTime::parse_from_rfc3339(instant).map_or_else(
        |_| instant.to_owned(),
        |at| at.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    html! { time datetime=(instant) { (readable) } }
}

/// Recorded HTTP headers (`[{name, value}]`) as text, or "not recorded" when the API sent
/// none.
pub fn header_list(headers: &Value) -> Markup {
    html! {
        @match headers.as_array() {
            None => p.hint { "Not recorded." },
            Some(headers) if headers.is_empty() => p.hint { "None." },
            Some(headers) => dl.headers {
                @for header in headers {
                    dt { code { (text(header, "name")) } }
                    dd { code { (text(header, "value")) } }
                }
            },
        }
    }
}

/// The names in a catalogue listing (`GET /v1/event-types`) that may still be subscribed to.
pub fn active_type_names(listing: &Value) -> Vec<String> {
    type_names(listing, false)
}

/// Every name in a catalogue listing, archived ones too (they may still have attempts), or
/// none when the catalogue could not be read.
pub fn all_type_names(listing: &Result<Value, ApiFailure>) -> Vec<String> {
    listing
        .as_ref()
        .map(|listing| type_names(listing, true))
        .unwrap_or_default()
}

fn type_names(listing: &Value, archived_too: bool) -> Vec<String> {
    listing["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event_type| archived_too || !event_type["archived"].as_bool().unwrap_or(false))
        .map(|event_type| text(event_type, "name").to_owned())
        .collect()
}

/// Suggestions for a text input (`list=id`): it can be picked from or typed past.
pub fn datalist(id: &str, names: &[String]) -> Markup {
    html! {
        datalist id=(id) {
            @for name in names { option value=(name) {} }
        }
    }
}

/// A webhook's configured headers (`{name: value}`), the values of those that carry
/// credentials [`REDACTED`], by the rule the ledger records attempts' headers by.
pub fn redacted_headers(headers: &Value) -> Value {
    let Some(headers) = headers.as_object() else {
        return headers.clone();
    };
    let shown = headers.iter().map(|(name, value)| {
        let value = if carries_credential(name) {
            Value::from(REDACTED)
        } else {
            value.clone()
        };
        (name.clone(), value)
    });
    Value::Object(shown.collect())
}

/// Query-string form of `pairs` for links (values percent-encoded).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(_, value)| !value.is_empty()) {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_text_never_markup() {
        let hostile = r#"{"x":"<script>alert(1)</script>","y":"\"><img src=x onerror=alert(1)>"}"#;
        let rendered = body_text(hostile).into_string();
        assert!(!rendered.contains("<script>"));
        assert!(!rendered.contains("<img"));
        assert!(rendered.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(rendered.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }

    #[test]
    fn header_values_are_text_and_absence_is_said() {
        let headers = serde_json::json!([{"name": "x-note", "value": "<script>alert(1)</script>"}]);
        let rendered = header_list(&headers).into_string();
        assert!(rendered.contains("&lt;script&gt;") && !rendered.contains("<script>"));
        assert!(header_list(&Value::Null)
            .into_string()
            .contains("Not recorded."));
    }

    #[test]
    fn instants_read_to_the_second_in_utc() {
        let shown = timestamp("2026-11-23T16:00:30.123+01:00").into_string();
        assert_eq!(
            shown,
            r#"<time datetime="2026-11-23T16:00:30.123+01:00">2026-11-23 15:00:30 UTC</time>"#
        );
        assert!(timestamp("soon").into_string().contains(">soon<"));
    }

    #[test]
    fn json_is_indented_with_its_keys_and_escapes_as_they_came() {
        let sent =
            r#"{"id":"evt_1","type":"a.b","data":{"z":[1, 2],"a":"q\"{,}:","e":{},"l":[ ]}}"#;
        let expected = r#"{
  "id": "evt_1",
  "type": "a.b",
  "data": {
    "z": [
      1,
      2
    ],
    "a": "q\"{,}:",
    "e": {},
    "l": []
  }
}"#;
        assert_eq!(pretty_json(sent).unwrap(), expected);
        let value: Value = serde_json::from_str(sent).unwrap();
        assert_eq!(serde_json::from_str::<Value>(expected).unwrap(), value);
        assert_eq!(pretty_json("not json"), None);
        assert_eq!(pretty_json(" 42 ").unwrap(), "42");
    }

    #[test]
    fn a_running_job_is_neither_good_nor_bad_news() {
        assert_eq!(
            status_badge("running").into_string(),
            r#"<span class="badge neutral">running</span>"#
        );
        assert!(status_badge("dead").into_string().contains("badge bad"));
    }

    #[test]
    fn credential_headers_are_redacted() {
        let headers = serde_json::json!({
            "Authorization": "Bearer x", "X-Auth-Token": "t", "x-api-key": "k",
            "X-Client-Secret": "s", "Cookie": "c", "X-Env": "prod"
        });
        let shown = redacted_headers(&headers);
        for name in [
            "Authorization",
            "X-Auth-Token",
            "x-api-key",
            "X-Client-Secret",
            "Cookie",
        ] {
            assert_eq!(shown[name], REDACTED, "{name}");
        }
        assert_eq!(shown["X-Env"], "prod");
    }

    #[test]
    fn long_bodies_are_cut_with_the_rest_behind_a_disclosure() {
        let long = "x".repeat(BODY_PREVIEW_CHARS + 10);
        let rendered = body_text(&long).into_string();
        assert!(rendered.contains("<details>"));
        assert!(rendered.contains(&format!("{} characters", BODY_PREVIEW_CHARS + 10)));
        assert!(!body_text("short").into_string().contains("<details>"));
        assert_eq!(body_text("").into_string(), r#"<p class="hint">Empty.</p>"#);
    }
}
