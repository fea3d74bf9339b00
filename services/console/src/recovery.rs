//! Recovering a webhook's failed deliveries since a time (`POST /v1/webhooks/{id}/recover`)
//! and the job's page: its progress, followed by htmx while it runs, then what it replayed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde_json::{json, Value};

use crate::api::{segment, ApiFailure};
use crate::pages::{failure_page, rendered, see_other, utc_timestamp, Action, SignedIn};
use crate::views::{failure, page, query, status_badge, text, timestamp};
use crate::Console;

type Shared = State<Arc<Console>>;

pub async fn recover(
    State(console): Shared,
    Path(webhook_id): Path<String>,
    action: Action,
) -> Response {
    let (form, key) = (&action.form, action.key.as_str());
    let since = utc_timestamp(form.field("since"));
    let path = format!("/v1/webhooks/{}/recover", segment(&webhook_id));
    match console.api.post(key, &path, &json!({"since": since})).await {
        Ok(job) => see_other(&format!(
            "/console/webhooks/{}/recover/{}",
            segment(&webhook_id),
            segment(text(&job, "id"))
        )),
        Err(error) => failure_page(&error, &form.session),
    }
}

pub async fn recovery(
    State(console): Shared,
    signed_in: SignedIn,
    Path((webhook_id, job_id)): Path<(String, String)>,
) -> Response {
    let key = &signed_in.key;
    let webhook_page = format!("/console/webhooks/{}", segment(&webhook_id));
    let here = format!("{webhook_page}/recover/{}", segment(&job_id));
    let path = format!(
        "/v1/webhooks/{}/recover/{}",
        segment(&webhook_id),
        segment(&job_id)
    );
    let job = match console.api.get(key, &path, &[]).await {
        Ok(job) => job,
        Err(error) => return failure_page(&error, &signed_in.session),
    };
    let running = text(&job, "status") == "running";
    let replayed = if running {
        None
    } else {
        Some(replayed_deliveries(&console, key, &webhook_id, &job).await)
    };
    let content = html! {
        // While the job runs, htmx reloads this region every two seconds; the region of a
        // finished job polls no more and has no refresh control.
        div #progress hx-get=[running.then_some(&here)] hx-trigger=[running.then_some("every 2s")] hx-select="#progress" hx-swap="outerHTML" {
            dl {
                dt { "Status" } dd { (status_badge(text(&job, "status"))) }
                dt { "Replayed so far" } dd { (job["replayed"]) }
                dt { "Window" } dd { (timestamp(text(&job, "since"))) " – " (timestamp(text(&job, "until"))) }
                @if let Some(error) = job["error"].as_str() { dt { "Error" } dd { (error) } }
            }
            @match &replayed {
                None => p { a.button href=(here) { "Refresh progress" } },
                Some(replayed) => (replayed_section(replayed, &webhook_page, &job)),
            }
        }
        p { a href=(webhook_page) { "Back to the webhook" } }
    };
    rendered(
        StatusCode::OK,
        page("Recovery", Some(&signed_in.session), content),
    )
}

/// The webhook's deliveries of the job's window attempted since the job started: those it
/// replayed (a delivery retried on its own schedule meanwhile shows too).
async fn replayed_deliveries(
    console: &Console,
    key: &str,
    webhook_id: &str,
    job: &Value,
) -> Result<Vec<Value>, ApiFailure> {
    let window = [
        ("webhook_id", webhook_id),
        ("since", text(job, "since")),
        ("until", text(job, "until")),
        ("limit", "100"),
    ];
    let listing = console.api.get(key, "/v1/deliveries", &window).await?;
    let started = instant(text(job, "created_at"));
    Ok(listing["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|delivery| instant(text(delivery, "last_attempt_at")) >= started)
        .cloned()
        .collect())
}

fn instant(rfc3339: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|at| at.to_utc())
}

fn replayed_section(
    replayed: &Result<Vec<Value>, ApiFailure>,
    webhook_page: &str,
    job: &Value,
) -> Markup {
    // The attempt log from the job's start, to the minute (`datetime-local`).
    let since_start = instant(text(job, "created_at"))
        .map(|at| at.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default();
    html! {
        h2 { "What it replayed" }
        @match replayed {
            Err(error) => (failure(error)),
            Ok(deliveries) if deliveries.is_empty() => p { "No delivery of the window has been attempted since the job started." },
            Ok(deliveries) => {
                p.hint { "Deliveries of the window attempted since the job started; a replay still on its way shows once attempted." }
                div.table-wrap {
                    table {
                        thead { tr { th { "Event type" } th { "Delivery" } th { "Status" } th { "Attempts" } th { "Last attempt" } } }
                        tbody {
                            @for delivery in deliveries {
                                tr {
                                    td { code { (text(delivery, "event_type")) } }
                                    td { code { (text(delivery, "id")) } }
                                    td { (status_badge(text(delivery, "status"))) }
                                    td { (delivery["attempt_count"]) }
                                    td { (timestamp(text(delivery, "last_attempt_at"))) }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { a href={ (webhook_page) "?" (query(&[("since", &since_start)])) } { "Attempts since the job started" } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_job_lists_its_replays_and_links_their_attempts() {
        let job = json!({"created_at": "2026-11-23T15:04:30Z"});
        let replayed = Ok(vec![json!({
            "id": "msg_1", "event_type": "order.created", "status": "succeeded",
            "attempt_count": 2, "last_attempt_at": "2026-11-23T15:04:31Z"
        })]);
        let section = replayed_section(&replayed, "/console/webhooks/wh_1", &job).into_string();
        assert!(section.contains("<code>msg_1</code>"));
        assert!(section.contains(r#"<span class="badge good">succeeded</span>"#));
        assert!(section.contains(r#"href="/console/webhooks/wh_1?since=2026-11-23T15%3A04""#));
        let none = replayed_section(&Ok(Vec::new()), "/console/webhooks/wh_1", &job).into_string();
        assert!(none.contains("No delivery of the window"));
    }
}
