//! The events page: the tenant's events in a time window (`GET /v1/events`, in the order they
//! were accepted, a page at a time), each with its payload and its deliveries (`GET
//! /v1/events/{id}`), and the event-type catalogue with each type's schema and example.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::future::join_all;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{segment, ApiFailure};
use crate::pages::{rendered, utc_timestamp, SignedIn, REPLAY};
use crate::session::Session;
use crate::views::{
    action_button, all_type_names, datalist, failure, json_text, listed, page, query, status_badge,
    text, timestamp,
};
use crate::{views, Console};

const EVENTS_PER_PAGE: &str = "20";
/// The window shown when none is picked: the last day.
const DEFAULT_WINDOW_HOURS: i64 = 24;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EventsQuery {
    #[serde(rename = "type")]
    event_type: String,
    /// A `datetime-local` value, read as UTC; empty for the last day.
    since: String,
    cursor: String,
}

/// Webhooks by id, to name a delivery's webhook rather than show its id; empty when the key
/// may not list webhooks.
struct WebhookNames(HashMap<String, Value>);

impl WebhookNames {
    fn from_listing(listing: &Result<Value, ApiFailure>) -> Self {
        Self(
            listed(listing)
                .into_iter()
                .map(|webhook| (text(&webhook, "id").to_owned(), webhook))
                .collect(),
        )
    }

    /// The webhook's name, else its URL, linked to its page; its id when unknown (deleted, or
    /// not listable with this key).
    fn link(&self, webhook_id: &str) -> Markup {
        let href = format!("/console/webhooks/{}", segment(webhook_id));
        let label = self.0.get(webhook_id).map(|webhook| {
            webhook["name"]
                .as_str()
                .filter(|name| !name.is_empty())
                .unwrap_or(text(webhook, "url"))
                .to_owned()
        });
        html! {
            @match label {
                Some(label) => a href=(href) { (label) },
                None => a href=(href) { code { (webhook_id) } },
            }
        }
    }
}

/// `since` as the form shows it: the picked value, or a day ago to the minute.
fn window_start(picked: &str) -> String {
    if !picked.is_empty() {
        return picked.to_owned();
    }
    (chrono::Utc::now() - chrono::Duration::hours(DEFAULT_WINDOW_HOURS))
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

pub async fn events(
    State(console): State<Arc<Console>>,
    signed_in: SignedIn,
    Query(params): Query<EventsQuery>,
) -> Response {
    let key = &signed_in.key;
    let since = window_start(&params.since);
    let since_utc = utc_timestamp(&since);
    let listing_query = [
        ("type", params.event_type.as_str()),
        ("since", &since_utc),
        ("cursor", &params.cursor),
        ("limit", EVENTS_PER_PAGE),
    ];
    let (listing, catalogue, webhooks) = futures::join!(
        console.api.get(key, "/v1/events", &listing_query),
        console.api.get(
            key,
            "/v1/event-types",
            &[("limit", "100"), ("include_archived", "true")]
        ),
        console.api.get(key, "/v1/webhooks", &[("limit", "100")]),
    );
    let rows = listed(&listing);
    let api = &console.api;
    let details = join_all(rows.iter().map(|event| {
        let path = format!("/v1/events/{}", segment(text(event, "id")));
        async move { api.get(key, &path, &[]).await }
    }))
    .await;
    let names = WebhookNames::from_listing(&webhooks);
    let session = &signed_in.session;
    let types = listed(&catalogue);
    let content = html! {
        section {
            h2 { "Recent events" }
            form.filters method="get" action="/console/events" {
                div {
                    label for="event_type" { "Event type" }
                    input #event_type type="text" name="type" value=(params.event_type) list="catalogue_types";
                    (datalist("catalogue_types", &all_type_names(&catalogue)))
                }
                div {
                    label for="event_since" { "From (UTC)" }
                    input #event_since type="datetime-local" name="since" value=(since);
                }
                button type="submit" { "Filter" }
            }
            p.hint { "Events accepted since then, in the order they were accepted." }
            @match &listing {
                Err(error) => (failure(error)),
                Ok(listing) => {
                    @if rows.is_empty() { p { "No events in this window." } }
                    @for (event, detail) in rows.iter().zip(&details) {
                        (event_entry(event, detail, &names, session))
                    }
                    @if let Some(cursor) = listing["next_cursor"].as_str() {
                        @let later = query(&[("type", &params.event_type), ("since", &since), ("cursor", cursor)]);
                        p { a href={ "/console/events?" (later) } { "Later events" } }
                    }
                }
            }
        }
        section {
            h2 { "Event types" }
            @match &catalogue {
                Err(error) => (failure(error)),
                Ok(_) => {
                    @if types.is_empty() { p { "The catalogue is empty: any event type may be published." } }
                    @for event_type in &types { (catalogue_entry(event_type)) }
                }
            }
        }
    };
    rendered(StatusCode::OK, page("Events", Some(session), content))
}

/// One event: its type and time, its deliveries, and its payload one click away.
fn event_entry(
    event: &Value,
    detail: &Result<Value, ApiFailure>,
    names: &WebhookNames,
    session: &Session,
) -> Markup {
    html! {
        article.event {
            h3 {
                code { (text(event, "type")) } " · " (timestamp(text(event, "timestamp")))
            }
            p.hint { "Event " code { (text(event, "id")) } }
            @match detail {
                Err(error) => (failure(error)),
                Ok(detail) => (deliveries_of(detail, names, session)),
            }
            details {
                summary { "Payload" }
                (json_text(&event["data"]))
            }
        }
    }
}

fn deliveries_of(detail: &Value, names: &WebhookNames, session: &Session) -> Markup {
    let deliveries = detail["deliveries"].as_array().cloned().unwrap_or_default();
    let blocked = session.lacks(REPLAY);
    html! {
        @if deliveries.is_empty() {
            p { "No webhook was subscribed to it." }
        } @else {
            ul.deliveries {
                @for delivery in &deliveries {
                    li {
                        (status_badge(text(delivery, "status")))
                        " " (names.link(text(delivery, "webhook_id")))
                        " · " (attempts(&delivery["attempt_count"]))
                        " · last " (timestamp(text(delivery, "last_attempt_at")))
                        " "
                        (action_button(&format!("/console/deliveries/{}/replay", segment(text(delivery, "id"))), "Replay", &session.csrf, blocked.as_deref()))
                    }
                }
            }
        }
    }
}

fn attempts(count: &Value) -> String {
    count
        .as_u64()
        .map_or_else(|| "no attempts".into(), views::attempts)
}

/// One catalogue entry: name, description, and the schema and example of its `data`.
fn catalogue_entry(event_type: &Value) -> Markup {
    html! {
        details.event-type {
            summary {
                code { (text(event_type, "name")) }
                @if event_type["archived"].as_bool().unwrap_or(false) { " " span.badge.warn { "archived" } }
                " " (text(event_type, "description"))
            }
            h3 { "Schema of data" }
            @match event_type.get("schema") {
                Some(schema) if !schema.is_null() => (json_text(schema)),
                _ => p.hint { "None: any data is accepted." },
            }
            h3 { "Example data" }
            @match event_type.get("example") {
                Some(example) if !example.is_null() => (json_text(example)),
                _ => p.hint { "None given." },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deliveries_name_their_webhook_and_fall_back_to_its_id() {
        let names = WebhookNames::from_listing(&Ok(json!({"data": [
            {"id": "wh_1", "name": "billing", "url": "https://example.com/a"},
            {"id": "wh_2", "url": "https://example.com/<b>"}
        ]})));
        assert!(names.link("wh_1").into_string().contains(">billing</a>"));
        assert!(names
            .link("wh_2")
            .into_string()
            .contains(">https://example.com/&lt;b&gt;</a>"));
        let unknown = WebhookNames::from_listing(&Err(ApiFailure {
            status: reqwest::StatusCode::FORBIDDEN,
            code: "forbidden".into(),
            message: String::new(),
        }));
        assert!(unknown
            .link("wh_1")
            .into_string()
            .contains("<code>wh_1</code>"));
    }

    #[test]
    fn a_catalogue_entry_shows_its_schema_and_example() {
        let entry = catalogue_entry(&json!({
            "name": "invoice.paid", "description": "an invoice was paid",
            "schema": {"type": "object", "required": ["amount"]},
            "example": {"amount": 4200}
        }))
        .into_string();
        assert!(entry.contains("Schema of data") && entry.contains("&quot;required&quot;"));
        assert!(entry.contains("&quot;amount&quot;: 4200"), "{entry}");
        let bare = catalogue_entry(&json!({"name": "x", "description": ""})).into_string();
        assert!(bare.contains("None: any data is accepted."));
    }

    #[test]
    fn attempt_counts_are_pluralized() {
        assert_eq!(attempts(&json!(1)), "1 attempt");
        assert_eq!(attempts(&json!(3)), "3 attempts");
    }
}
