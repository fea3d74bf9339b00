//! The console's pages and form actions. Reads are GETs that render; actions are POSTs of
//! plain forms that redirect (303) on success, or render the API's error beside the form.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use hookline_schemas::{EventRecord, PayloadShape, SCHEMA_VERSION};
use maud::{html, Markup};
use reqwest::StatusCode as ApiStatus;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::api::{segment, ApiFailure};
use crate::charts::{delivery_chart, latency, success_sparkline, Stats};
use crate::session::Session;
use crate::test_event::{test_panel, TestForm};
use crate::views::{
    active_type_names, all_type_names, body_text, csrf_field, datalist, failure, header_list,
    link_button, listed, page, query, redacted_headers, status_badge, submit, text, timestamp,
};
use crate::webhook_form::secret_page;
use crate::Console;

type Shared = State<Arc<Console>>;

pub(crate) const SIGN_IN: &str = "/console/sign-in";
/// The scopes actions need, as the API names them.
pub(crate) const MANAGE: &str = "webhooks:manage";
const READ: &str = "deliveries:read";
pub(crate) const REPLAY: &str = "deliveries:replay";
const WEBHOOK_STATUSES: [&str; 4] = ["active", "inactive", "failing", "disabled"];
const ATTEMPT_OUTCOMES: [&str; 3] = ["succeeded", "failed", "cancelled"];
const ATTEMPTS_PER_PAGE: &str = "20";

/// A signed-in visitor with a tenant key: their session and the key. Anyone else is sent to
/// sign in (or, an operator, to pick a tenant).
pub struct SignedIn {
    pub session: Session,
    pub key: String,
}

impl FromRequestParts<Arc<Console>> for SignedIn {
    type Rejection = Redirect;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let session = console
            .sealer
            .from_headers(&parts.headers)
            .ok_or_else(|| Redirect::to(SIGN_IN))?;
        match (&session.api_key, &session.operator) {
            (Some(key), _) => Ok(Self {
                key: key.clone(),
                session,
            }),
            // An operator who has not picked a tenant yet.
            (None, Some(_)) => Err(Redirect::to("/console/tenants")),
            (None, None) => Err(Redirect::to(SIGN_IN)),
        }
    }
}

/// A submitted form whose CSRF token is its session's; anything else is refused with 403.
pub struct Submitted {
    pub session: Session,
    fields: Vec<(String, String)>,
}

impl FromRequest<Arc<Console>> for Submitted {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Arc<Console>) -> Result<Self, Response> {
        let session = console.sealer.from_headers(request.headers());
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(request, console)
            .await
            .map_err(IntoResponse::into_response)?;
        let submitted = Self {
            session: session.ok_or_else(forbidden)?,
            fields,
        };
        if !submitted.session.csrf_matches(submitted.field("csrf")) {
            return Err(forbidden());
        }
        Ok(submitted)
    }
}

impl Submitted {
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.trim())
            .unwrap_or_default()
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(field, _)| field == name)
            .map(|(_, value)| value.trim())
    }

    /// Where to go after the action: a console page named by the form, or `fallback`.
    fn back_or(&self, fallback: String) -> String {
        let back = self.field("back");
        let local = back.starts_with("/console") && !back.contains("//") && !back.contains('\\');
        if local {
            back.to_owned()
        } else {
            fallback
        }
    }
}

/// A submitted form of a signed-in visitor, with their key; anyone else is sent to sign in.
pub struct Action {
    pub form: Submitted,
    pub key: String,
}

impl FromRequest<Arc<Console>> for Action {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Arc<Console>) -> Result<Self, Response> {
        let form = Submitted::from_request(request, console).await?;
        match form.session.api_key.clone() {
            Some(key) => Ok(Self { form, key }),
            None => Err(see_other(SIGN_IN)),
        }
    }
}

fn forbidden() -> Response {
    let content = html! {
        p { "This form has expired or did not come from the console. Go back, reload the page and try again." }
        p { a href=(SIGN_IN) { "Sign in" } }
    };
    rendered(StatusCode::FORBIDDEN, page("Refused", None, content))
}

pub(crate) fn rendered(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

pub(crate) fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A page that only says what the API refused, with the API's status.
pub(crate) fn failure_page(error: &ApiFailure, session: &Session) -> Response {
    let status = StatusCode::from_u16(error.status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let title = if error.status == ApiStatus::NOT_FOUND {
        "Not found"
    } else {
        "Not done"
    };
    let content = html! {
        (failure(error))
        p { a href="/console/webhooks" { "Back to webhooks" } }
    };
    rendered(status, page(title, Some(session), content))
}

pub async fn home(_: SignedIn) -> Redirect {
    Redirect::to("/console/webhooks")
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    status: String,
    cursor: String,
}

pub async fn webhooks(
    State(console): Shared,
    signed_in: SignedIn,
    Query(params): Query<ListQuery>,
) -> Response {
    let key = &signed_in.key;
    let session = &signed_in.session;
    let listing = console
        .api
        .get(
            key,
            "/v1/webhooks",
            &[("status", &params.status), ("cursor", &params.cursor)],
        )
        .await;
    let rows = listed(&listing);
    let cannot_read = session.lacks(READ);
    let healths = match cannot_read {
        Some(_) => Vec::new(),
        None => {
            join_all(
                rows.iter()
                    .map(|webhook| health(&console, key, text(webhook, "id"))),
            )
            .await
        }
    };
    let blocked = session.lacks(MANAGE);
    let content = html! {
        p { (link_button("/console/webhooks/new", "New webhook", blocked.as_deref())) }
        form.filters method="get" action="/console/webhooks" {
            label for="status" { "Status" }
            select #status name="status" {
                option value="" { "any" }
                @for status in WEBHOOK_STATUSES {
                    option value=(status) selected[params.status == status] { (status) }
                }
            }
            button type="submit" { "Filter" }
        }
        @match &listing {
            Err(error) => (failure(error)),
            Ok(listing) => {
                @if rows.is_empty() {
                    p { "No webhooks" @if !params.status.is_empty() { " with this status" } "." }
                } @else {
                    div.table-wrap {
                        table.webhooks {
                            thead { tr { th { "Endpoint" } th { "Events" } th { "Status" } th { "Success, 24 h" } th { "Last attempt" } th { "Actions" } } }
                            tbody {
                                @for (index, webhook) in rows.iter().enumerate() {
                                    @let id = text(webhook, "id");
                                    @let detail = format!("/console/webhooks/{}", segment(id));
                                    tr {
                                        td.endpoint {
                                            a href=(detail) { (text(webhook, "url")) }
                                            @if let Some(name) = webhook["name"].as_str() { br; small { (name) } }
                                        }
                                        td { (events_of(webhook)) }
                                        td { (status_badge(text(webhook, "status"))) }
                                        @match healths.get(index) {
                                            None => {
                                                td { small.needs { (cannot_read.as_deref().unwrap_or_default()) } }
                                                td { small.needs { (cannot_read.as_deref().unwrap_or_default()) } }
                                            }
                                            Some(health) => {
                                                td {
                                                    @match &health.stats {
                                                        Ok(stats) => { (success_sparkline(stats)) br; small { (stats.summary()) } }
                                                        Err(error) => small.error { (error.code) }
                                                    }
                                                }
                                                td { (last_attempt(&health.last)) }
                                            }
                                        }
                                        td.row-actions { (switch_button(webhook, "/console/webhooks", session)) }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(cursor) = listing["next_cursor"].as_str() {
                        p { a href={ "/console/webhooks?" (query(&[("status", &params.status), ("cursor", cursor)])) } { "Next page" } }
                    }
                }
            }
        }
    };
    rendered(StatusCode::OK, page("Webhooks", Some(session), content))
}

/// A webhook's last 24 hours for its row in the list.
struct Health {
    stats: Result<Stats, ApiFailure>,
    last: Result<Value, ApiFailure>,
}

async fn health(console: &Console, key: &str, webhook_id: &str) -> Health {
    let base = format!("/v1/webhooks/{}", segment(webhook_id));
    let (stats_path, attempts_path) = (format!("{base}/stats"), format!("{base}/attempts"));
    let (stats, last) = futures::join!(
        console.api.get(key, &stats_path, &[("hours", "24")]),
        console.api.get(key, &attempts_path, &[("limit", "1")]),
    );
    Health {
        stats: stats.map(|stats| serde_json::from_value(stats).unwrap_or_default()),
        last: last.map(|page| page["data"][0].clone()),
    }
}

/// The newest attempt in words: outcome, time and response status.
fn last_attempt(last: &Result<Value, ApiFailure>) -> Markup {
    html! {
        @match last {
            Err(error) => small.error { (error.code) },
            Ok(attempt) if attempt.is_null() => "none yet",
            Ok(attempt) => {
                (status_badge(text(attempt, "outcome")))
                br;
                small {
                    (timestamp(text(attempt, "attempted_at")))
                    @if let Some(status) = attempt["response_status"].as_u64() { " · HTTP " (status) }
                }
            }
        }
    }
}

fn events_of(webhook: &Value) -> String {
    webhook["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Deactivate an active webhook, activate an inactive one; then go `back`.
fn switch_button(webhook: &Value, back: &str, session: &Session) -> Markup {
    let id = segment(text(webhook, "id"));
    let (action, label) = if webhook["active"].as_bool().unwrap_or(false) {
        ("deactivate", "Deactivate")
    } else {
        ("activate", "Activate")
    };
    html! {
        form.inline method="post" action={ "/console/webhooks/" (id) "/" (action) } {
            (csrf_field(&session.csrf))
            input type="hidden" name="back" value=(back);
            (submit(label, session.lacks(MANAGE).as_deref()))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AttemptQuery {
    status: String,
    event_type: String,
    /// `datetime-local` values, read as UTC.
    since: String,
    until: String,
    cursor: String,
}

pub async fn webhook(
    State(console): Shared,
    signed_in: SignedIn,
    Path(webhook_id): Path<String>,
    Query(params): Query<AttemptQuery>,
) -> Response {
    let key = &signed_in.key;
    let session = &signed_in.session;
    let base = format!("/v1/webhooks/{}", segment(&webhook_id));
    let (stats_path, attempts_path) = (format!("{base}/stats"), format!("{base}/attempts"));
    let (since, until) = (utc_timestamp(&params.since), utc_timestamp(&params.until));
    let attempts_query = [
        ("status", params.status.as_str()),
        ("event_type", &params.event_type),
        ("since", &since),
        ("until", &until),
        ("cursor", &params.cursor),
        ("limit", ATTEMPTS_PER_PAGE),
    ];
    let (webhook, stats, attempts, catalogue) = futures::join!(
        console.api.get(key, &base, &[]),
        console.api.get(key, &stats_path, &[("hours", "24")]),
        console.api.get(key, &attempts_path, &attempts_query),
        console.api.get(
            key,
            "/v1/event-types",
            &[("limit", "100"), ("include_archived", "true")]
        ),
    );
    let webhook = match webhook {
        Ok(webhook) => webhook,
        Err(error) => return failure_page(&error, session),
    };
    let stats = stats.map(|stats| serde_json::from_value::<Stats>(stats).unwrap_or_default());
    let attempt_rows = listed(&attempts);
    let details = attempt_details(&console, key, &attempt_rows).await;
    let test_types = catalogue
        .as_ref()
        .map(active_type_names)
        .unwrap_or_default();
    let csrf = &session.csrf;
    let id = segment(text(&webhook, "id"));
    let here = format!("/console/webhooks/{id}");
    let (manage, replay) = (session.lacks(MANAGE), session.lacks(REPLAY));
    let filters = [
        ("status", params.status.as_str()),
        ("event_type", &params.event_type),
        ("since", &params.since),
        ("until", &params.until),
    ];
    let content = html! {
        section {
            h2 { "Configuration" }
            dl {
                @if let Some(name) = webhook["name"].as_str() { dt { "Name" } dd { (name) } }
                dt { "URL" } dd { code { (text(&webhook, "url")) } }
                dt { "Status" } dd { (status_badge(text(&webhook, "status"))) }
                dt { "Events" } dd { (events_of(&webhook)) }
                @if let Some(description) = webhook["description"].as_str().filter(|d| !d.is_empty()) { dt { "Description" } dd { (description) } }
                dt { "Metadata" } dd { (pairs_text(&webhook["metadata"], "=")) }
                dt { "Extra headers" } dd { (pairs_text(&redacted_headers(&webhook["headers"]), ": ")) }
                dt { "Signature" } dd { code { (webhook["signature"].to_string()) } }
                dt { "Payload" } dd { (text(&webhook, "payload")) }
                dt { "Ordering" } dd { (text(&webhook, "ordering")) }
                dt { "Rate limit" } dd {
                    @match webhook["rate_limit"].as_u64() {
                        Some(limit) => { (limit) " requests per second" }
                        None => "none",
                    }
                }
                dt { "Created" } dd { (timestamp(text(&webhook, "created_at"))) }
            }
            div.actions {
                (link_button(&format!("{here}/edit"), "Edit", manage.as_deref()))
                (switch_button(&webhook, &here, session))
                (link_button(&format!("{here}/rotate-secret"), "Rotate secret…", manage.as_deref()))
                @match &manage {
                    None => a.button.danger href={ (here) "/delete" } { "Delete…" },
                    Some(reason) => (link_button(&format!("{here}/delete"), "Delete…", Some(reason))),
                }
            }
        }
        section {
            h2 { "Send a test event" }
            (test_panel(&here, &TestForm::default(), &test_types, None, session))
        }
        section {
            h2 { "Recover failed deliveries" }
            form.card method="post" action={ (here) "/recover" } {
                (csrf_field(csrf))
                label for="since" { "Since (UTC)" }
                input #since type="datetime-local" name="since" required;
                (submit("Replay failed deliveries since then", replay.as_deref()))
            }
        }
        section {
            h2 { "Last 24 hours" }
            @match &stats {
                Ok(stats) => {
                    (delivery_chart(stats))
                    h3 { "Latency" }
                    (latency(stats))
                }
                Err(error) => (failure(error)),
            }
        }
        section {
            h2 { "Attempts" }
            form.filters method="get" action=(here) {
                div {
                    label for="attempt_status" { "Outcome" }
                    select #attempt_status name="status" {
                        option value="" { "any" }
                        @for outcome in ATTEMPT_OUTCOMES {
                            option value=(outcome) selected[params.status == outcome] { (outcome) }
                        }
                    }
                }
                div {
                    label for="attempt_event_type" { "Event type" }
                    input #attempt_event_type type="text" name="event_type" value=(params.event_type) list="attempt_event_types";
                    (datalist("attempt_event_types", &all_type_names(&catalogue)))
                }
                div {
                    label for="attempt_since" { "From (UTC)" }
                    input #attempt_since type="datetime-local" name="since" value=(params.since);
                }
                div {
                    label for="attempt_until" { "To (UTC)" }
                    input #attempt_until type="datetime-local" name="until" value=(params.until);
                }
                button type="submit" { "Filter" }
            }
            @match &attempts {
                Err(error) => (failure(error)),
                Ok(page) => {
                    @if attempt_rows.is_empty() { p { "No attempts" @if filters.iter().any(|(_, value)| !value.is_empty()) { " match these filters" } "." } }
                    @for attempt in &attempt_rows {
                        (attempt_entry(attempt, &details, payload_shape(&webhook), &here, session))
                    }
                    @if let Some(cursor) = page["next_cursor"].as_str() {
                        @let older = [filters.as_slice(), &[("cursor", cursor)]].concat();
                        p { a href={ (here) "?" (query(&older)) } { "Older attempts" } }
                    }
                }
            }
        }
    };
    rendered(
        StatusCode::OK,
        page(text(&webhook, "url"), Some(session), content),
    )
}

/// A string map (metadata, headers) as lines of text, or "none".
fn pairs_text(map: &Value, separator: &str) -> Markup {
    let pairs: Vec<(&String, &Value)> = map.as_object().into_iter().flatten().collect();
    html! {
        @if pairs.is_empty() { "none" }
        @for (name, value) in pairs {
            code { (name) (separator) (value.as_str().unwrap_or_default()) } br;
        }
    }
}

/// The deliveries and events behind a page of attempts, fetched once each: they hold the
/// response bodies, errors and payloads the attempt log leaves out.
struct AttemptDetails {
    deliveries: Vec<(String, Result<Value, ApiFailure>)>,
    events: Vec<(String, Result<SentEvent, ApiFailure>)>,
}

/// An event as `GET /v1/events/{id}` answers it, its `data` byte for byte as published.
#[derive(Deserialize)]
struct SentEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: DateTime<Utc>,
    accepted_at: DateTime<Utc>,
    data: Box<RawValue>,
}

impl SentEvent {
    /// The request body the sender builds for this event and a webhook's payload `shape`
    /// (`hookline_delivery::body`); a body names no tenant.
    fn body(&self, shape: PayloadShape) -> String {
        let record = EventRecord {
            schema_version: SCHEMA_VERSION,
            tenant_id: String::new(),
            id: self.id.clone(),
            event_type: self.event_type.clone(),
            timestamp: self.timestamp,
            accepted_at: self.accepted_at,
            data: self.data.clone(),
            ordering_key: None,
            id_chosen_by_producer: false,
        };
        String::from_utf8_lossy(&hookline_delivery::body(&record, shape)).into_owned()
    }
}

/// A webhook's payload shape as the API shows it (the default when absent).
fn payload_shape(webhook: &Value) -> PayloadShape {
    serde_json::from_value(webhook["payload"].clone()).unwrap_or_default()
}

/// What the hint beside a request body says it is, for the webhook's payload shape.
fn body_label(shape: PayloadShape) -> &'static str {
    match shape {
        PayloadShape::Raw => {
            "As sent for the webhook's payload shape, raw: the event's data exactly as \
             published (pretty-printed here)."
        }
        PayloadShape::Envelope => {
            "As sent for the webhook's payload shape, envelope: {id, type, timestamp, data} as \
             compact JSON (pretty-printed here; the timestamp as the ledger keeps it, to the \
             millisecond)."
        }
    }
}

async fn attempt_details(console: &Console, key: &str, attempts: &[Value]) -> AttemptDetails {
    let distinct = |field: &str| -> BTreeSet<String> {
        attempts
            .iter()
            .map(|attempt| text(attempt, field).to_owned())
            .collect()
    };
    let (deliveries, events) = futures::join!(
        fetch_each(console, key, "/v1/deliveries", distinct("delivery_id")),
        fetch_each(console, key, "/v1/events", distinct("event_id")),
    );
    AttemptDetails { deliveries, events }
}

/// `GET {prefix}/{id}` for each of `ids`, at once.
async fn fetch_each<T: DeserializeOwned>(
    console: &Console,
    key: &str,
    prefix: &str,
    ids: BTreeSet<String>,
) -> Vec<(String, Result<T, ApiFailure>)> {
    join_all(ids.into_iter().map(|id| async move {
        let path = format!("{prefix}/{}", segment(&id));
        let found = console.api.get_as(key, &path, &[]).await;
        (id, found)
    }))
    .await
}

fn found<'a, T>(
    list: &'a [(String, Result<T, ApiFailure>)],
    id: &str,
) -> Option<&'a Result<T, ApiFailure>> {
    list.iter()
        .find(|(candidate, _)| candidate == id)
        .map(|(_, found)| found)
}

fn attempt_entry(
    attempt: &Value,
    details: &AttemptDetails,
    shape: PayloadShape,
    back: &str,
    session: &Session,
) -> Markup {
    let delivery_id = text(attempt, "delivery_id");
    let delivery = found(&details.deliveries, delivery_id);
    let row = delivery
        .and_then(|delivery| delivery.as_ref().ok())
        .and_then(|delivery| delivery["attempts"].as_array())
        .and_then(|rows| rows.iter().find(|row| row["id"] == attempt["id"]));
    // Headers are recorded on the attempt; either listing may carry them.
    let recorded = |field: &str| {
        let on_row = row
            .map(|row| &row[field])
            .filter(|headers| !headers.is_null());
        on_row.unwrap_or(&attempt[field]).clone()
    };
    let event = found(&details.events, text(attempt, "event_id"));
    let status = attempt["response_status"]
        .as_i64()
        .map(|status| status.to_string())
        .unwrap_or_else(|| "no response".into());
    html! {
        details.attempt {
            summary {
                (status_badge(text(attempt, "outcome")))
                " " (timestamp(text(attempt, "attempted_at")))
                " · " code { (text(attempt, "event_type")) }
                " · attempt " (attempt["attempt_number"])
                " · " (status)
                " · " (attempt["duration_ms"]) " ms"
            }
            h3 { "Request" }
            dl {
                dt { "URL" } dd { code { (text(attempt, "url")) } }
                dt { "Delivery (webhook-id)" } dd { code { (delivery_id) } }
                dt { "Event" } dd { code { (text(attempt, "event_id")) } }
            }
            h4 { "Request headers" }
            (header_list(&recorded("request_headers")))
            h4 { "Request body" }
            p.hint { (body_label(shape)) }
            @match event {
                Some(Ok(event)) => (body_text(&event.body(shape))),
                Some(Err(error)) => (failure(error)),
                None => p { "Unknown event." },
            }
            h3 { "Response" }
            dl {
                dt { "Status" } dd { (status) }
                dt { "Duration" } dd { (attempt["duration_ms"]) " ms" }
                @if let Some(class) = attempt["error_class"].as_str() { dt { "Error class" } dd { (class) } }
                @if let Some(row) = row {
                    @if let Some(error) = row["error"].as_str() { dt { "Error" } dd { (error) } }
                    @if let Some(next) = row["next_attempt_at"].as_str() { dt { "Next attempt" } dd { (timestamp(next)) } }
                }
            }
            h4 { "Response headers" }
            (header_list(&recorded("response_headers")))
            @if let Some(body) = row.and_then(|row| row["response_body"].as_str()) {
                h4 { "Response body" }
                (body_text(body))
            }
            @if let Some(Err(error)) = delivery { (failure(error)) }
            form.inline method="post" action={ "/console/deliveries/" (segment(delivery_id)) "/replay" } {
                (csrf_field(&session.csrf))
                input type="hidden" name="back" value=(back);
                (submit("Replay this delivery", session.lacks(REPLAY).as_deref()))
            }
        }
    }
}

pub async fn switch_webhook(
    State(console): Shared,
    Path((webhook_id, switch)): Path<(String, String)>,
    action: Action,
) -> Response {
    if switch != "activate" && switch != "deactivate" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (form, key) = (&action.form, action.key.as_str());
    let path = format!("/v1/webhooks/{}/{switch}", segment(&webhook_id));
    match console.api.post(key, &path, &json!({})).await {
        Ok(_) => see_other(&form.back_or(format!("/console/webhooks/{}", segment(&webhook_id)))),
        Err(error) => failure_page(&error, &form.session),
    }
}

/// What a confirmation page asks before an action that cannot be taken back.
struct Confirmation {
    title: &'static str,
    /// The action's path under the webhook's page, and its button.
    action: &'static str,
    button: &'static str,
    /// What happens, given the webhook's URL.
    warning: fn(&str) -> Markup,
}

const DELETE: Confirmation = Confirmation {
    title: "Delete webhook",
    action: "delete",
    button: "Delete webhook",
    warning: |url| {
        html! {
            "Delete the webhook for " code { (url) } "? "
            "It stops receiving events at once. To pause it and keep it, deactivate it instead."
        }
    },
};

const ROTATE_SECRET: Confirmation = Confirmation {
    title: "Rotate secret",
    action: "rotate-secret",
    button: "Rotate secret",
    warning: |url| {
        html! {
            "Rotate the signing secret of the webhook for " code { (url) } "? "
            "The new secret is shown once, on the next page. The old one keeps signing beside it "
            "for the rotation's overlap only: update your endpoint before that ends."
        }
    },
};

/// The confirmation page of `confirmation` for a webhook: what it does, the button, a way back.
async fn confirm(
    console: &Console,
    signed_in: &SignedIn,
    webhook_id: &str,
    confirmation: &Confirmation,
) -> Response {
    let path = format!("/v1/webhooks/{}", segment(webhook_id));
    let webhook = match console.api.get(&signed_in.key, &path, &[]).await {
        Ok(webhook) => webhook,
        Err(error) => return failure_page(&error, &signed_in.session),
    };
    let here = format!("/console/webhooks/{}", segment(webhook_id));
    let content = html! {
        p.warning { ((confirmation.warning)(text(&webhook, "url"))) }
        form.inline method="post" action={ (here) "/" (confirmation.action) } {
            (csrf_field(&signed_in.session.csrf))
            button.danger type="submit" { (confirmation.button) }
        }
        " " a href=(here) { "Cancel" }
    };
    rendered(
        StatusCode::OK,
        page(confirmation.title, Some(&signed_in.session), content),
    )
}

pub async fn confirm_delete(
    State(console): Shared,
    signed_in: SignedIn,
    Path(webhook_id): Path<String>,
) -> Response {
    confirm(&console, &signed_in, &webhook_id, &DELETE).await
}

pub async fn confirm_rotate_secret(
    State(console): Shared,
    signed_in: SignedIn,
    Path(webhook_id): Path<String>,
) -> Response {
    confirm(&console, &signed_in, &webhook_id, &ROTATE_SECRET).await
}

pub async fn delete_webhook(
    State(console): Shared,
    Path(webhook_id): Path<String>,
    action: Action,
) -> Response {
    let (form, key) = (&action.form, action.key.as_str());
    let path = format!("/v1/webhooks/{}", segment(&webhook_id));
    match console.api.delete(key, &path).await {
        Ok(_) => see_other("/console/webhooks"),
        Err(error) => failure_page(&error, &form.session),
    }
}

pub async fn rotate_secret(
    State(console): Shared,
    Path(webhook_id): Path<String>,
    action: Action,
) -> Response {
    let (form, key) = (&action.form, action.key.as_str());
    let path = format!("/v1/webhooks/{}/rotate-secret", segment(&webhook_id));
    match console.api.post(key, &path, &json!({})).await {
        Ok(rotated) => rendered(
            StatusCode::OK,
            secret_page("Secret rotated", &rotated, &form.session),
        ),
        Err(error) => failure_page(&error, &form.session),
    }
}

/// A `datetime-local` value (`2026-11-23T15:00`, read as UTC) as RFC 3339; anything else as
/// given, for the API to judge.
pub(crate) fn utc_timestamp(local: &str) -> String {
    match local.len() {
        16 => format!("{local}:00Z"),
        19 => format!("{local}Z"),
        _ => local.to_owned(),
    }
}

pub async fn replay(
    State(console): Shared,
    Path(delivery_id): Path<String>,
    action: Action,
) -> Response {
    let (form, key) = (&action.form, action.key.as_str());
    let path = format!("/v1/deliveries/{}/replay", segment(&delivery_id));
    match console.api.post(key, &path, &json!({})).await {
        Ok(_) => see_other(&form.back_or("/console/events".into())),
        Err(error) => failure_page(&error, &form.session),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_are_rebuilt_for_the_payload_shape() {
        let answered = r#"{"id":"evt_1","type":"order.created","timestamp":"2026-11-23T15:00:00.120Z","accepted_at":"2026-11-23T15:00:00.200Z","data":{"z":1, "a":[true]},"deliveries":[]}"#;
        let event: SentEvent = serde_json::from_str(answered).unwrap();
        assert_eq!(
            event.body(PayloadShape::Envelope),
            r#"{"id":"evt_1","type":"order.created","timestamp":"2026-11-23T15:00:00.120Z","data":{"z":1, "a":[true]}}"#
        );
        assert_eq!(event.body(PayloadShape::Raw), r#"{"z":1, "a":[true]}"#);
        assert!(body_label(PayloadShape::Raw).contains("exactly as published"));
        assert!(body_label(PayloadShape::Envelope).contains("{id, type, timestamp, data}"));
    }

    #[test]
    fn datetime_local_values_are_read_as_utc() {
        assert_eq!(utc_timestamp("2026-11-23T15:00"), "2026-11-23T15:00:00Z");
        assert_eq!(utc_timestamp("2026-11-23T15:00:30"), "2026-11-23T15:00:30Z");
        assert_eq!(utc_timestamp("yesterday"), "yesterday");
    }
}
