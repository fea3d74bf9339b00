//! The pieces every page is made of. maud escapes every interpolated string, so payloads,
//! headers and bodies from the API are rendered as text, never as markup.

use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use crate::api::ApiFailure;

/// How much of a body a page shows before "show all".
pub const BODY_PREVIEW_CHARS: usize = 2_000;

const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"responseHandling":[{"code":"204","swap":false},{"code":"...","swap":true}]}"#;

/// A whole page; with the session's CSRF token (signed in), the navigation and sign-out form.
pub fn page(title: &str, csrf: Option<&str>, content: Markup) -> Markup {
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
                    @if let Some(csrf) = csrf {
                        nav aria-label="Main" {
                            a href="/console/webhooks" { "Webhooks" }
                            a href="/console/events" { "Events" }
                        }
                        form method="post" action="/console/sign-out" {
                            (csrf_field(csrf))
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

/// A one-button form posting to `action` (activate, replay, …).
pub fn action_button(action: &str, label: &str, csrf: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(csrf))
            button type="submit" { (label) }
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
        _ => "bad",
    };
    html! { span class={ "badge " (class) } { (status) } }
}

/// A body as text, pretty-printed when it is JSON, cut after [`BODY_PREVIEW_CHARS`] with the
/// rest one click away.
pub fn body_text(body: &str) -> Markup {
    let pretty = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok())
        .unwrap_or_else(|| body.to_owned());
    let cut = pretty
        .char_indices()
        .nth(BODY_PREVIEW_CHARS)
        .map(|(index, _)| index);
    html! {
        @match cut {
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

pub fn json_text(value: &Value) -> Markup {
    body_text(&value.to_string())
}

/// A string field of an API object, empty when absent.
pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// Succeeded and failed attempts as a bar, and latency percentiles, drawn server-side.
pub fn stats_chart(stats: &Value) -> Markup {
    const WIDTH: f64 = 300.0;
    let count = |field: &str| stats[field].as_u64().unwrap_or(0);
    let (succeeded, failed) = (count("succeeded"), count("failed"));
    let total = (succeeded + failed).max(1) as f64;
    let succeeded_width = WIDTH * succeeded as f64 / total;
    let latency = &stats["latency_ms"];
    let percentiles: Vec<(&str, u64)> = ["p50", "p95", "p99"]
        .into_iter()
        .map(|p| (p, latency[p].as_u64().unwrap_or(0)))
        .collect();
    let slowest = percentiles
        .iter()
        .map(|(_, ms)| *ms)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let rate = stats["success_rate"]
        .as_f64()
        .map(|rate| format!("{:.1} %", rate * 100.0))
        .unwrap_or_else(|| "no attempts".into());
    let label = format!("{succeeded} succeeded, {failed} failed; success rate {rate}");
    html! {
        figure.stats {
            svg role="img" aria-label=(label) width="320" height="120" viewBox="0 0 320 120" {
                rect x="0" y="0" width=(WIDTH) height="18" class="bar-failed" {}
                rect x="0" y="0" width=(succeeded_width) height="18" class="bar-succeeded" {}
                @for (row, (name, ms)) in percentiles.iter().enumerate() {
                    @let y = 40 + row * 26;
                    text x="0" y=(y + 13) class="axis" { (name) }
                    rect x="40" y=(y) width=((WIDTH - 120.0) * *ms as f64 / slowest) height="16" class="bar-latency" {}
                    text x=(WIDTH - 70.0) y=(y + 13) class="axis" { (ms) " ms" }
                }
            }
            figcaption { "Last 24 h: " (label) "." }
        }
    }
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
    fn long_bodies_are_cut_with_the_rest_behind_a_disclosure() {
        let long = "x".repeat(BODY_PREVIEW_CHARS + 10);
        let rendered = body_text(&long).into_string();
        assert!(rendered.contains("<details>"));
        assert!(rendered.contains(&format!("{} characters", BODY_PREVIEW_CHARS + 10)));
        assert!(!body_text("short").into_string().contains("<details>"));
    }

    #[test]
    fn the_chart_states_its_numbers_in_words() {
        let stats = serde_json::json!({
            "succeeded": 3, "failed": 1, "success_rate": 0.75,
            "latency_ms": {"p50": 10, "p95": 40, "p99": 90}
        });
        let rendered = stats_chart(&stats).into_string();
        assert!(rendered.contains("3 succeeded, 1 failed; success rate 75.0 %"));
        assert!(rendered.contains("90 ms"));
    }
}
