//! The webhook form, for creating (`POST /v1/webhooks`) and editing (`PATCH
//! /v1/webhooks/{id}`). A refused form comes back as it was sent, with the API's error beside
//! the field it concerns; the secret of a new webhook is shown once.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use reqwest::StatusCode as ApiStatus;
use serde_json::{json, Map, Value};

use crate::api::{segment, ApiFailure};
use crate::pages::{failure_page, rendered, see_other, Action, SignedIn, Submitted, MANAGE};
use crate::session::Session;
use crate::views::{
    active_type_names, csrf_field, failure, page, redacted_headers, submit, text, REDACTED,
};
use crate::Console;

type Shared = State<Arc<Console>>;

/// Fields an API error can be shown beside, as the API's messages name them.
const FIELDS: [&str; 11] = [
    "url",
    "events",
    "name",
    "description",
    "metadata",
    "headers",
    "rate_limit",
    "ordering",
    "signature",
    "secret",
    "payload",
];

/// Whether the form creates a webhook or edits one.
#[derive(Clone, Copy)]
enum Mode<'a> {
    Create,
    Edit { webhook_id: &'a str },
}

/// What the form holds, so a refused form comes back as it was sent.
#[derive(Default)]
struct WebhookForm {
    url: String,
    events: Vec<String>,
    name: String,
    description: String,
    /// `key=value`, one a line.
    metadata: String,
    /// `Name: value`, one a line.
    headers: String,
    rate_limit: String,
    ordering: String,
    signature: String,
    signature_header: String,
    signature_prefix: String,
    payload: String,
    secret: String,
}

impl WebhookForm {
    fn from_submitted(form: &Submitted) -> Self {
        let other = form.field("events_other");
        let mut events: Vec<String> = form
            .all("events")
            .chain(other.split([',', ' ', '\n']))
            .map(str::trim)
            .filter(|event| !event.is_empty())
            .map(str::to_owned)
            .collect();
        events.sort();
        events.dedup();
        let field = |name: &str| form.field(name).to_owned();
        Self {
            url: field("url"),
            events,
            name: field("name"),
            description: field("description"),
            metadata: field("metadata"),
            headers: field("headers"),
            rate_limit: field("rate_limit"),
            ordering: field("ordering"),
            signature: field("signature"),
            signature_header: field("signature_header"),
            signature_prefix: field("signature_prefix"),
            payload: field("payload"),
            secret: field("secret"),
        }
    }

    /// The form filled with a webhook as the API shows it.
    fn from_webhook(webhook: &Value) -> Self {
        let lines = |map: &Value, separator: &str| {
            map.as_object()
                .into_iter()
                .flatten()
                .map(|(name, value)| format!("{name}{separator}{}", value.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("\n")
        };
        Self {
            url: text(webhook, "url").to_owned(),
            events: webhook["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            name: text(webhook, "name").to_owned(),
            description: text(webhook, "description").to_owned(),
            metadata: lines(&webhook["metadata"], "="),
            headers: lines(&redacted_headers(&webhook["headers"]), ": "),
            rate_limit: webhook["rate_limit"]
                .as_u64()
                .map(|limit| limit.to_string())
                .unwrap_or_default(),
            ordering: text(webhook, "ordering").to_owned(),
            payload: text(webhook, "payload").to_owned(),
            ..Self::default()
        }
    }

    /// The API request body: everything for a new webhook; for an edit, the fields the form
    /// edits (metadata and headers as a whole, so removed lines are removed).
    /// `current_headers` are the webhook's (`null` for a new one): a header left `[redacted]`
    /// keeps its value.
    fn body(&self, mode: Mode, current_headers: &Value) -> Result<Value, ApiFailure> {
        let mut body = Map::new();
        body.insert("url".into(), json!(self.url));
        body.insert("events".into(), json!(self.events));
        let metadata = pairs(&self.metadata, '=', "metadata", "key=value")?;
        let headers = pairs(&self.headers, ':', "headers", "Name: value")?;
        let headers = kept_credentials(headers, current_headers)?;
        let editing = matches!(mode, Mode::Edit { .. });
        if editing || !metadata.is_empty() {
            body.insert("metadata".into(), json!(metadata));
        }
        if editing || !headers.is_empty() {
            body.insert("headers".into(), json!(headers));
        }
        if !self.rate_limit.is_empty() {
            let limit: u32 = self
                .rate_limit
                .parse()
                .map_err(|_| invalid("rate_limit: a whole number of requests per second".into()))?;
            body.insert("rate_limit".into(), json!(limit));
        }
        // An edit sends the description even empty, which clears it.
        if editing || !self.description.is_empty() {
            body.insert("description".into(), json!(self.description));
        }
        let optional = [
            ("name", &self.name),
            ("payload", &self.payload),
            ("ordering", &self.ordering),
        ];
        for (name, value) in optional {
            if !value.is_empty() {
                body.insert(name.into(), json!(value));
            }
        }
        if let Mode::Create = mode {
            let signature = match self.signature.as_str() {
                "hmac-hex" | "hmac-sha256-prefixed" => {
                    json!({"type": self.signature, "header": self.signature_header})
                }
                "timestamped" => json!({"type": "timestamped", "prefix": self.signature_prefix}),
                _ => json!({"type": "standard"}),
            };
            body.insert("signature".into(), signature);
            if !self.secret.is_empty() {
                body.insert("secret".into(), json!(self.secret));
            }
        }
        Ok(Value::Object(body))
    }
}

fn invalid(message: String) -> ApiFailure {
    ApiFailure {
        status: ApiStatus::UNPROCESSABLE_ENTITY,
        code: "validation_failed".into(),
        message,
    }
}

/// `headers` with each value left [`REDACTED`] replaced by the webhook's current one: the
/// form never holds a credential it did not get typed. One the webhook does not have is
/// refused.
fn kept_credentials(
    mut headers: BTreeMap<String, String>,
    current: &Value,
) -> Result<BTreeMap<String, String>, ApiFailure> {
    for (name, value) in headers.iter_mut().filter(|(_, value)| *value == REDACTED) {
        *value = current[name.as_str()]
            .as_str()
            .ok_or_else(|| invalid(format!("headers: `{name}` is {REDACTED}: type its value")))?
            .to_owned();
    }
    Ok(headers)
}

/// `name<separator>value` lines as a map; blank lines are skipped.
fn pairs(
    lines: &str,
    separator: char,
    field: &str,
    shape: &str,
) -> Result<BTreeMap<String, String>, ApiFailure> {
    lines
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            line.split_once(separator)
                .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                .ok_or_else(|| invalid(format!("{field}: line {} is not `{shape}`", index + 1)))
        })
        .collect()
}

/// The form field an API error concerns; `None` shows it above the form.
fn field_of(error: &ApiFailure) -> Option<&'static str> {
    match error.code.as_str() {
        "invalid_url" | "url_unreachable" => Some("url"),
        "invalid_events" => Some("events"),
        _ => {
            // The API's validation messages start with the field they concern.
            let named = error.message.split([':', '.', ' ']).next().unwrap_or("");
            FIELDS.into_iter().find(|field| *field == named)
        }
    }
}

pub(crate) async fn event_type_names(console: &Console, key: &str) -> Vec<String> {
    let listing = console
        .api
        .get(key, "/v1/event-types", &[("limit", "100")])
        .await
        .unwrap_or_default();
    active_type_names(&listing)
}

fn form_page(
    mode: Mode,
    form: &WebhookForm,
    catalogue: &[String],
    error: Option<&ApiFailure>,
    session: &Session,
) -> Markup {
    let error_at = |field: &str| error.filter(|error| field_of(error) == Some(field));
    let choices: Vec<&str> = std::iter::once("*")
        .chain(catalogue.iter().map(String::as_str))
        .collect();
    let other_events: Vec<&str> = form
        .events
        .iter()
        .map(String::as_str)
        .filter(|event| !choices.contains(event))
        .collect();
    let (title, action, button) = match mode {
        Mode::Create => (
            "New webhook",
            "/console/webhooks".to_owned(),
            "Create webhook",
        ),
        Mode::Edit { webhook_id } => (
            "Edit webhook",
            format!("/console/webhooks/{}/edit", segment(webhook_id)),
            "Save changes",
        ),
    };
    let blocked = session.lacks(MANAGE);
    let content = html! {
        @if let Some(error) = error.filter(|error| field_of(error).is_none()) { (failure(error)) }
        form.card method="post" action=(action) {
            (csrf_field(&session.csrf))
            label for="url" { "Endpoint URL" }
            input #url type="url" name="url" required value=(form.url) placeholder="https://example.com/webhooks";
            @if let Some(error) = error_at("url") { (failure(error)) }
            fieldset {
                legend { "Events" }
                @for name in &choices {
                    label.check {
                        input type="checkbox" name="events" value=(name) checked[form.events.iter().any(|event| event == name)];
                        " " code { (name) }
                        @if *name == "*" { " (every event type)" }
                    }
                }
                @if catalogue.is_empty() {
                    p.hint { "The tenant's event-type catalogue is empty: name the types below." }
                }
                label for="events_other" { "Other filters (comma-separated: exact types, " code { "prefix.*" } " or " code { "*" } ")" }
                input #events_other type="text" name="events_other" value=(other_events.join(", "));
                @if let Some(error) = error_at("events") { (failure(error)) }
            }
            label for="name" { "Name" }
            input #name type="text" name="name" value=(form.name);
            @if let Some(error) = error_at("name") { (failure(error)) }
            label for="description" { "Description" }
            input #description type="text" name="description" value=(form.description);
            @if let Some(error) = error_at("description") { (failure(error)) }
            label for="metadata" { "Metadata (one " code { "key=value" } " a line)" }
            textarea #metadata name="metadata" rows="3" { (form.metadata) }
            @if let Some(error) = error_at("metadata") { (failure(error)) }
            label for="headers" { "Extra request headers (one " code { "Name: value" } " a line)" }
            textarea #headers name="headers" rows="2" aria-describedby="headers_hint" { (form.headers) }
            @if let Mode::Edit { .. } = mode {
                p #headers_hint.hint {
                    "Values of headers that carry credentials (names with auth, cookie, token, secret, password, api key or credential) show as "
                    code { (REDACTED) } ": leave it to keep the value, or type a new one."
                }
            }
            @if let Some(error) = error_at("headers") { (failure(error)) }
            label for="rate_limit" { "Rate limit (requests per second, optional)" }
            input #rate_limit type="number" name="rate_limit" min="1" max="100000" value=(form.rate_limit);
            @if let Some(error) = error_at("rate_limit") { (failure(error)) }
            label for="ordering" { "Ordering" }
            select #ordering name="ordering" {
                option value="unordered" selected[form.ordering != "fifo"] { "unordered: concurrent, any order" }
                option value="fifo" selected[form.ordering == "fifo"] { "fifo: one at a time, in order" }
            }
            @if let Some(error) = error_at("ordering") { (failure(error)) }
            @if let Mode::Create = mode {
                label for="signature" { "Signature profile" }
                select #signature name="signature" {
                    @for (value, label) in [
                        ("standard", "Standard Webhooks (default)"),
                        ("hmac-hex", "Hex HMAC of the body in a header"),
                        ("hmac-sha256-prefixed", "sha256=<hex> in a header"),
                        ("timestamped", "Timestamped sha256=<hex> with prefixed headers"),
                    ] {
                        option value=(value) selected[form.signature == value] { (label) }
                    }
                }
                label for="signature_header" { "Signature header (hex and sha256= profiles)" }
                input #signature_header type="text" name="signature_header" value=(form.signature_header) placeholder="X-Hub-Signature-256";
                label for="signature_prefix" { "Header prefix (timestamped profile)" }
                input #signature_prefix type="text" name="signature_prefix" value=(form.signature_prefix) placeholder="x-acme-";
                @if let Some(error) = error_at("signature") { (failure(error)) }
                label for="secret" { "Secret (optional: generated when empty; other profiles take 16–256 characters)" }
                input #secret type="password" name="secret" autocomplete="off";
                @if let Some(error) = error_at("secret") { (failure(error)) }
            }
            label for="payload" { "Payload shape" }
            select #payload name="payload" {
                option value="" { "the tenant's default" }
                option value="envelope" selected[form.payload == "envelope"] { "envelope: {id, type, timestamp, data}" }
                option value="raw" selected[form.payload == "raw"] { "raw: data exactly as published" }
            }
            @if let Some(error) = error_at("payload") { (failure(error)) }
            @if let Mode::Edit { .. } = mode {
                p.hint {
                    "The signature profile and secret stay as they are; rotate the secret from the webhook's page. "
                    "An emptied name or rate limit keeps its current value: the API cannot remove them."
                }
            }
            (submit(button, blocked.as_deref()))
        }
    };
    page(title, Some(session), content)
}

pub async fn new_webhook(State(console): Shared, signed_in: SignedIn) -> Response {
    let catalogue = event_type_names(&console, &signed_in.key).await;
    let form = WebhookForm::default();
    rendered(
        StatusCode::OK,
        form_page(Mode::Create, &form, &catalogue, None, &signed_in.session),
    )
}

/// Sends the form to the API: the webhook as the API answered, or the form again with the
/// refusal beside its field.
async fn send(console: &Console, action: &Action, mode: Mode<'_>) -> Result<Value, Response> {
    let submitted = WebhookForm::from_submitted(&action.form);
    let key = action.key.as_str();
    let answer = match mode {
        Mode::Create => match submitted.body(mode, &Value::Null) {
            Ok(body) => console.api.post(key, "/v1/webhooks", &body).await,
            Err(error) => Err(error),
        },
        Mode::Edit { webhook_id } => {
            let path = format!("/v1/webhooks/{}", segment(webhook_id));
            // The form shows credentials redacted; the webhook's own values are kept.
            match console.api.get(key, &path, &[]).await {
                Ok(current) => match submitted.body(mode, &current["headers"]) {
                    Ok(body) => console.api.patch(key, &path, &body).await,
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            }
        }
    };
    let error = match answer {
        Ok(answered) => return Ok(answered),
        Err(error) => error,
    };
    let catalogue = event_type_names(console, key).await;
    let status = StatusCode::from_u16(error.status.as_u16()).unwrap_or(StatusCode::BAD_REQUEST);
    let page = form_page(
        mode,
        &submitted,
        &catalogue,
        Some(&error),
        &action.form.session,
    );
    Err(rendered(status, page))
}

pub async fn create_webhook(State(console): Shared, action: Action) -> Response {
    match send(&console, &action, Mode::Create).await {
        Ok(created) => rendered(
            StatusCode::CREATED,
            secret_page("Webhook created", &created, &action.form.session),
        ),
        Err(refused) => refused,
    }
}

pub async fn edit_webhook_form(
    State(console): Shared,
    signed_in: SignedIn,
    Path(webhook_id): Path<String>,
) -> Response {
    let path = format!("/v1/webhooks/{}", segment(&webhook_id));
    let (webhook, catalogue) = futures::join!(
        console.api.get(&signed_in.key, &path, &[]),
        event_type_names(&console, &signed_in.key),
    );
    match webhook {
        Ok(webhook) => {
            let form = WebhookForm::from_webhook(&webhook);
            let mode = Mode::Edit {
                webhook_id: &webhook_id,
            };
            rendered(
                StatusCode::OK,
                form_page(mode, &form, &catalogue, None, &signed_in.session),
            )
        }
        Err(error) => failure_page(&error, &signed_in.session),
    }
}

pub async fn edit_webhook(
    State(console): Shared,
    Path(webhook_id): Path<String>,
    action: Action,
) -> Response {
    let mode = Mode::Edit {
        webhook_id: &webhook_id,
    };
    match send(&console, &action, mode).await {
        Ok(_) => see_other(&format!("/console/webhooks/{}", segment(&webhook_id))),
        Err(refused) => refused,
    }
}

/// The one time a webhook's secret is shown: after creation or rotation. The copy button is
/// revealed by `console.js` (no inline script: the CSP refuses it); without JavaScript the
/// field is selectable as ever.
pub fn secret_page(title: &str, webhook: &Value, session: &Session) -> Markup {
    let detail = format!("/console/webhooks/{}", segment(text(webhook, "id")));
    let content = html! {
        p.warning role="alert" {
            strong { "Copy this secret now." }
            " It is shown only this once; Hookline keeps it encrypted and will not show it again. "
            "Anyone holding it can sign requests your endpoint will trust: keep it in your secret store."
        }
        label for="secret" { "Signing secret" }
        div.copyable {
            input #secret type="text" readonly value=(text(webhook, "secret")) autocomplete="off" spellcheck="false";
            button type="button" hidden data-copy="secret" aria-describedby="copy-status" { "Copy secret" }
        }
        p #copy-status.hint role="status" aria-live="polite" {}
        p { "Endpoint: " code { (text(webhook, "url")) } }
        p { a.button href=(detail) { "Go to the webhook" } }
        script src="/console/assets/console.js" defer {}
    };
    page(title, Some(session), content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, message: &str) -> ApiFailure {
        ApiFailure {
            status: ApiStatus::BAD_REQUEST,
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn api_errors_land_beside_their_field() {
        assert_eq!(field_of(&error("invalid_url", "")), Some("url"));
        assert_eq!(field_of(&error("invalid_events", "")), Some("events"));
        assert_eq!(
            field_of(&error(
                "validation_failed",
                "secret: 16 to 256 visible ASCII characters"
            )),
            Some("secret")
        );
        assert_eq!(
            field_of(&error(
                "validation_failed",
                "headers: `Host` is set by Hookline"
            )),
            Some("headers")
        );
        assert_eq!(
            field_of(&error(
                "validation_failed",
                "signature.header: not a header"
            )),
            Some("signature")
        );
        assert_eq!(field_of(&error("webhook_limit_reached", "")), None);
    }

    #[test]
    fn metadata_and_headers_are_read_line_by_line() {
        let form = WebhookForm {
            url: "https://example.com/h".into(),
            events: vec!["*".into()],
            metadata: "team = billing\n\nregion=eu=west".into(),
            headers: "X-Env: prod".into(),
            ..WebhookForm::default()
        };
        let body = form.body(Mode::Create, &Value::Null).unwrap();
        assert_eq!(
            body["metadata"],
            json!({"team": "billing", "region": "eu=west"})
        );
        assert_eq!(body["headers"], json!({"X-Env": "prod"}));
        assert_eq!(body["signature"], json!({"type": "standard"}));
        let edit = WebhookForm::default()
            .body(Mode::Edit { webhook_id: "wh_1" }, &json!({}))
            .unwrap();
        assert_eq!(
            edit["metadata"],
            json!({}),
            "an edit clears removed entries"
        );
        assert!(edit.get("signature").is_none());
        let broken = WebhookForm {
            metadata: "ok=1\nbroken".into(),
            ..WebhookForm::default()
        };
        let refused = broken.body(Mode::Create, &Value::Null).unwrap_err();
        assert_eq!(refused.message, "metadata: line 2 is not `key=value`");
        assert_eq!(field_of(&refused), Some("metadata"));
        let rate = WebhookForm {
            rate_limit: "fast".into(),
            ..WebhookForm::default()
        };
        assert_eq!(
            field_of(&rate.body(Mode::Create, &Value::Null).unwrap_err()),
            Some("rate_limit")
        );
    }

    #[test]
    fn an_edit_form_starts_from_the_webhook() {
        let webhook = json!({
            "url": "https://example.com/h", "events": ["order.*"], "name": "orders",
            "metadata": {"team": "billing"}, "headers": {"X-Env": "prod"},
            "rate_limit": 5, "ordering": "fifo", "payload": "raw"
        });
        let form = WebhookForm::from_webhook(&webhook);
        assert_eq!(form.metadata, "team=billing");
        assert_eq!(form.headers, "X-Env: prod");
        assert_eq!(form.rate_limit, "5");
        assert_eq!(form.ordering, "fifo");
    }

    #[test]
    fn credentials_are_redacted_in_the_form_and_kept_unless_retyped() {
        let webhook = json!({
            "url": "https://example.com/h", "events": ["*"],
            "headers": {"Authorization": "Bearer s3cret", "X-Api-Key": "k3y", "X-Env": "prod"}
        });
        let form = WebhookForm::from_webhook(&webhook);
        assert!(!form.headers.contains("s3cret") && !form.headers.contains("k3y"));
        assert!(form.headers.contains("Authorization: [redacted]"));
        assert!(form.headers.contains("X-Env: prod"));
        let edit = Mode::Edit { webhook_id: "wh_1" };
        let kept = form.body(edit, &webhook["headers"]).unwrap();
        assert_eq!(kept["headers"], webhook["headers"]);
        let retyped = WebhookForm {
            headers: "Authorization: Bearer n3w\nX-Token: [redacted]".into(),
            ..WebhookForm::default()
        };
        let refused = retyped.body(edit, &webhook["headers"]).unwrap_err();
        assert_eq!(
            refused.message,
            "headers: `X-Token` is [redacted]: type its value"
        );
        assert_eq!(field_of(&refused), Some("headers"));
    }
}
