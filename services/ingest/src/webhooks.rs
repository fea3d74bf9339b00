//! `/v1/webhooks`: create, list (cursor pages, status filter), get, patch, delete,
//! activate/deactivate, rotate-secret, and test (one synthetic event sent right away).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderName, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_control::WebhookStatus;
use hookline_domain::event_filter::validate_event_type;
use hookline_domain::event_filter::MAX_EVENT_TYPE_LEN;
use hookline_domain::ids::{delivery_id, new_event_id, new_webhook_id};
use hookline_domain::webhook_url::{MAX_URL_LEN, URL_START_PATTERN};
use hookline_domain::RetrySchedule;
use hookline_domain::{validate_webhook_url, ErrorCode, EventFilters};
use hookline_runtime::api::{ApiError, ApiJson, ApiQuery, ErrorBody, Tenant};
use hookline_runtime::deadline::Deadline;
use hookline_schemas::{
    ErrorClass, EventRecord, Ordering, PayloadShape, PreviousSecret, RetryOverride, Scope,
    SignatureProfile, WebhookRecord, SCHEMA_VERSION,
};
use hookline_signing::{Secret, SecretKeys};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::{IntoParams, ToSchema};

use crate::event_types;
use crate::page::{self, Page};
use crate::AppState;

// Lengths are counted in characters, as the document's `maxLength` counts them.
const MAX_NAME_LEN: usize = 200;
const MAX_DESCRIPTION_LEN: usize = 1024;
const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_LEN: usize = 256;
const MAX_HEADERS: usize = 20;
const MAX_HEADER_NAME_LEN: usize = 256;
const MAX_HEADER_VALUE_LEN: usize = 1024;
/// An HTTP header name: an RFC 9110 token.
const HEADER_NAME_PATTERN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
/// A custom header's value: printable ASCII, space included.
const HEADER_VALUE_PATTERN: &str = "^[ -~]*$";
/// An exact event type, as `validate_event_type` takes it.
const EVENT_TYPE_PATTERN: &str = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$";
/// `*`, or an event type's prefix followed by `.*`.
const WILDCARD_FILTER_PATTERN: &str = "^([A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*\\.)?\\*$";
const MAX_EVENT_FILTERS: usize = 256;
const MAX_RATE_LIMIT: u32 = 100_000;
/// Bounds of an owner-chosen secret for the profiles keyed with the secret's text.
const MIN_TEXT_SECRET_LEN: usize = 16;
const MAX_TEXT_SECRET_LEN: usize = 256;

/// Headers the sender sets itself; a webhook's custom headers may not replace them.
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "connection",
    "transfer-encoding",
];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    #[schema(schema_with = url_schema)]
    url: String,
    #[schema(schema_with = events_schema)]
    events: Vec<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1024)]
    description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = metadata_schema)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(schema_with = headers_schema)]
    headers: BTreeMap<String, String>,
    /// Generated (`whsec_…`) when absent. The `standard` profile takes only `whsec_` and the
    /// base64 of 24 to 64 bytes; the other profiles take any 16 to 256 visible ASCII
    /// characters. Never `enc:…`.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 256, pattern = "^[!-~]*$")]
    secret: Option<String>,
    #[serde(default)]
    ordering: Ordering,
    /// Most requests per second.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    rate_limit: Option<u32>,
    #[serde(default)]
    retry: Option<RetryOverride>,
    #[serde(default = "default_active")]
    active: bool,
    #[serde(default)]
    signature: SignatureProfile,
    /// Defaults to the tenant's payload shape.
    #[serde(default)]
    payload: Option<PayloadShape>,
}

fn default_active() -> bool {
    true
}

/// A partial update: fields present replace the webhook's; absent (or `null`) fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhook {
    #[serde(default)]
    #[schema(schema_with = url_or_null_schema)]
    url: Option<String>,
    #[serde(default)]
    #[schema(schema_with = events_or_null_schema)]
    events: Option<Vec<String>>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1024)]
    description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = metadata_or_null_schema)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    #[schema(schema_with = headers_or_null_schema)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    ordering: Option<Ordering>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    rate_limit: Option<u32>,
    #[serde(default)]
    retry: Option<RetryOverride>,
    #[serde(default)]
    active: Option<bool>,
    /// The webhook's secret is kept, and must suit the new profile (see `secret` of
    /// `CreateWebhook`): a `whsec_…` secret suits every profile.
    #[serde(default)]
    signature: Option<SignatureProfile>,
    #[serde(default)]
    payload: Option<PayloadShape>,
}

/// A webhook as the API shows it: never with its secret, except once at creation or rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    id: String,
    url: String,
    events: Vec<String>,
    status: WebhookStatus,
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    signature: SignatureProfile,
    payload: PayloadShape,
    ordering: Ordering,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<RetryOverride>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl WebhookView {
    fn new(record: &WebhookRecord, status: WebhookStatus) -> Self {
        Self {
            id: record.id.clone(),
            url: record.url.clone(),
            events: record.events.clone(),
            status,
            active: record.active,
            name: record.name.clone(),
            description: record.description.clone(),
            metadata: record.metadata.clone(),
            headers: record.headers.clone(),
            signature: record.signature.clone(),
            payload: record.payload,
            ordering: record.ordering,
            rate_limit: record.rate_limit,
            retry: record.retry,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }

    /// The view with the secret, shown this once.
    fn with_secret(self, secret: String) -> WebhookWithSecret {
        WebhookWithSecret {
            webhook: self,
            secret,
        }
    }
}

/// A webhook with its signing secret, shown only at creation and rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    webhook: WebhookView,
    /// `whsec_…` (or the owner's own secret for the other profiles).
    secret: String,
}

// The document's schemas of the rules below. Where a rule cannot be a JSON Schema keyword,
// the description states it.

fn url_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_URL_LEN))
        .pattern(Some(URL_START_PATTERN))
        .description(Some(
            "`https://…` (plain `http://` only where the deployment allows it), an absolute URL \
             with a host, without credentials or fragment; never a private, loopback or \
             otherwise reserved address (`invalid_url`).",
        ))
}

fn events_schema() -> ArrayBuilder {
    let exact = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_EVENT_TYPE_LEN))
        .pattern(Some(EVENT_TYPE_PATTERN));
    let wildcard = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_EVENT_TYPE_LEN + ".*".len()))
        .pattern(Some(WILDCARD_FILTER_PATTERN));
    ArrayBuilder::new()
        .items(AnyOfBuilder::new().item(exact).item(wildcard))
        .min_items(Some(1))
        .max_items(Some(MAX_EVENT_FILTERS))
        .description(Some(
            "Event-type filters (`invalid_events`): exact types, `*`, or `prefix.*`. Once the \
             tenant has an event-type catalogue, each exact type newly subscribed to must be \
             in it and not archived.",
        ))
}

fn metadata_schema() -> ObjectBuilder {
    let text = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_METADATA_LEN))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(MAX_METADATA_ENTRIES))
        .property_names(Some(text().min_length(Some(1))))
        .additional_properties(Some(text()))
        .description(Some("Free-form labels, for the owner's use."))
}

fn headers_schema() -> ObjectBuilder {
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_HEADER_NAME_LEN))
        .pattern(Some(HEADER_NAME_PATTERN));
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_HEADER_VALUE_LEN))
        .pattern(Some(HEADER_VALUE_PATTERN));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(MAX_HEADERS))
        .property_names(Some(name))
        .additional_properties(Some(value))
        .description(Some(format!(
            "Extra HTTP headers sent with every request. Names are not those Hookline sets \
             ({}, in any case) and do not start with `webhook-`.",
            RESERVED_HEADERS.map(|name| format!("`{name}`")).join(", ")
        )))
}

/// A `PatchWebhook` field: the same as `CreateWebhook`'s, or `null` to keep it.
fn or_null(schema_type: Type) -> SchemaType {
    SchemaType::from_iter([schema_type, Type::Null])
}

fn url_or_null_schema() -> ObjectBuilder {
    url_schema().schema_type(or_null(Type::String))
}

fn events_or_null_schema() -> ArrayBuilder {
    events_schema().schema_type(or_null(Type::Array))
}

fn metadata_or_null_schema() -> ObjectBuilder {
    metadata_schema().schema_type(or_null(Type::Object))
}

fn headers_or_null_schema() -> ObjectBuilder {
    headers_schema().schema_type(or_null(Type::Object))
}

/// Checks a header name an owner chose; `field` names it in the error.
fn check_header_name(field: &str, name: &str) -> Result<(), String> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .ok()
        .filter(|_| name.len() <= MAX_HEADER_NAME_LEN)
        .ok_or_else(|| {
            format!(
                "{field}: `{name}` is not a header name (an HTTP token of at most {MAX_HEADER_NAME_LEN} characters)"
            )
        })?;
    let lower = parsed.as_str();
    if RESERVED_HEADERS.contains(&lower) || lower.starts_with("webhook-") {
        return Err(format!("{field}: `{name}` is set by Hookline"));
    }
    Ok(())
}

/// Checks the profile and that `secret` (in clear) suits it.
fn validate_signature(record: &WebhookRecord, secret: &str) -> Result<(), String> {
    if SecretKeys::is_sealed(secret) {
        return Err("secret: must not start with `enc:`".into());
    }
    match &record.signature {
        SignatureProfile::Standard => {
            return Secret::parse(secret).map(drop).map_err(|err| {
                format!("secret: {err} (the `standard` profile needs `whsec_<base64>`)")
            });
        }
        SignatureProfile::HmacHex { header } | SignatureProfile::HmacSha256Prefixed { header } => {
            check_header_name("signature.header", header)?;
        }
        SignatureProfile::Timestamped { prefix } => {
            if prefix.is_empty() {
                return Err("signature.prefix: must not be empty".into());
            }
            check_header_name("signature.prefix", &format!("{prefix}signature"))?;
        }
    }
    if !(MIN_TEXT_SECRET_LEN..=MAX_TEXT_SECRET_LEN).contains(&secret.len())
        || !secret.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(format!(
            "secret: {MIN_TEXT_SECRET_LEN} to {MAX_TEXT_SECRET_LEN} visible ASCII characters"
        ));
    }
    Ok(())
}

fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    if headers.len() > MAX_HEADERS {
        return Err(format!("headers: at most {MAX_HEADERS} entries"));
    }
    for (name, value) in headers {
        check_header_name("headers", name)?;
        // Printable ASCII only: `HeaderValue` would also take tabs and bytes above 0x7f.
        if value.len() > MAX_HEADER_VALUE_LEN
            || !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        {
            return Err(format!(
                "headers: the value of `{name}` must be printable ASCII, at most {MAX_HEADER_VALUE_LEN} characters"
            ));
        }
    }
    Ok(())
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Checks everything an owner can set on a webhook, naming the field that is wrong.
fn validate(record: &WebhookRecord, state: &AppState) -> Result<(), ApiError> {
    let url = validate_webhook_url(&record.url, state.url_policy)
        .map_err(|err| ApiError::new(ErrorCode::InvalidUrl, err.to_string()))?;
    state
        .addresses
        .check_literal(&url)
        .map_err(|err| ApiError::new(ErrorCode::InvalidUrl, format!("url: {err}")))?;
    if record.events.len() > MAX_EVENT_FILTERS {
        return Err(ApiError::new(
            ErrorCode::InvalidEvents,
            format!("events: at most {MAX_EVENT_FILTERS} entries"),
        ));
    }
    EventFilters::parse(&record.events)
        .map_err(|err| ApiError::new(ErrorCode::InvalidEvents, err.to_string()))?;
    let invalid = |message: String| ApiError::new(ErrorCode::ValidationFailed, message);
    if record
        .name
        .as_ref()
        .is_some_and(|name| name.trim().is_empty() || chars(name) > MAX_NAME_LEN)
    {
        return Err(invalid(format!("name: 1 to {MAX_NAME_LEN} characters")));
    }
    if record
        .description
        .as_ref()
        .is_some_and(|d| chars(d) > MAX_DESCRIPTION_LEN)
    {
        return Err(invalid(format!(
            "description: at most {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    if record.metadata.len() > MAX_METADATA_ENTRIES
        || record.metadata.iter().any(|(key, value)| {
            key.is_empty() || chars(key) > MAX_METADATA_LEN || chars(value) > MAX_METADATA_LEN
        })
    {
        return Err(invalid(format!(
            "metadata: at most {MAX_METADATA_ENTRIES} entries, keys 1 to {MAX_METADATA_LEN} characters, values at most {MAX_METADATA_LEN}"
        )));
    }
    validate_headers(&record.headers).map_err(invalid)?;
    let secret = state
        .secret_keys
        .open(&record.secret, &record.id)
        .map_err(|err| ApiError::new(ErrorCode::Internal, format!("webhook secret: {err}")))?;
    validate_signature(record, &secret).map_err(invalid)?;
    if record
        .rate_limit
        .is_some_and(|limit| !(1..=MAX_RATE_LIMIT).contains(&limit))
    {
        return Err(invalid(format!(
            "rate_limit: 1 to {MAX_RATE_LIMIT} requests per second"
        )));
    }
    if let Some(retry) = record.retry {
        RetrySchedule::exponential(
            retry.max_attempts,
            std::time::Duration::from_secs(retry.initial_delay_secs),
            retry.multiplier,
        )
        .map_err(|err| invalid(format!("retry: {err}")))?;
    }
    Ok(())
}

/// Writes the record and waits until this process's view has it, so the caller's next read
/// (and fanout's next batch) sees it.
async fn store(
    state: &AppState,
    deadline: Deadline,
    record: &WebhookRecord,
) -> Result<(), ApiError> {
    state
        .write(deadline, &state.topics.webhooks(), &record.id, record)
        .await
}

/// The tenant's webhook, as the view has it after catching up with acknowledged writes.
async fn current(
    state: &AppState,
    deadline: Deadline,
    tenant_id: &str,
    webhook_id: &str,
) -> Result<WebhookRecord, ApiError> {
    state.catch_up(deadline).await?;
    state
        .control
        .read()
        .webhook(tenant_id, webhook_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("webhook"))
}

fn view(state: &AppState, record: &WebhookRecord) -> WebhookView {
    WebhookView::new(record, state.control.read().status(&record.id))
}

/// Subscribe an endpoint; its secret is shown this once.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The new webhook and its secret.", body = WebhookWithSecret),
        (status = 409, description = "The tenant has as many webhooks as allowed (`webhook_limit_reached`).", body = ErrorBody),
        (status = 422, description = "`invalid_url`, `invalid_events` or `validation_failed`", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    ApiJson(request): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    state.catch_up(deadline).await?;
    let tenant_payload = state
        .control
        .read()
        .tenant(&principal.tenant_id)
        .map(|tenant| tenant.payload)
        .unwrap_or_default();
    let now = Utc::now();
    let mut record = WebhookRecord {
        schema_version: SCHEMA_VERSION,
        id: new_webhook_id(),
        tenant_id: principal.tenant_id.clone(),
        url: request.url,
        events: request.events,
        name: request.name,
        description: request.description,
        metadata: request.metadata,
        headers: request.headers,
        active: request.active,
        secret: request
            .secret
            .unwrap_or_else(|| Secret::generate().expose()),
        previous_secrets: Vec::new(),
        signature: request.signature,
        payload: request.payload.unwrap_or(tenant_payload),
        ordering: request.ordering,
        rate_limit: request.rate_limit,
        retry: request.retry,
        created_at: now,
        updated_at: now,
    };
    validate(&record, &state)?;
    event_types::check_subscriptions(
        &state.control.read(),
        &principal.tenant_id,
        &record.events,
        &[],
    )?;
    let count = state
        .control
        .read()
        .webhooks_of(&principal.tenant_id)
        .count();
    if count >= state.max_webhooks_per_tenant {
        return Err(ApiError::new(
            ErrorCode::WebhookLimitReached,
            format!(
                "a tenant may have at most {} webhooks",
                state.max_webhooks_per_tenant
            ),
        ));
    }
    // The secret is shown this once, and sealed before it enters the topic.
    let secret = std::mem::take(&mut record.secret);
    record.secret = state.secret_keys.seal(&secret, &record.id);
    store(&state, deadline, &record).await?;
    let body = view(&state, &record).with_secret(secret);
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    status: Option<WebhookStatus>,
}

/// List the tenant's webhooks, oldest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of webhooks.", body = Page<WebhookView>),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<WebhookView>>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let limit = page::limit(query.limit)?;
    let control = state.control.read();
    let views = control
        .webhooks_of(&principal.tenant_id)
        .map(|record| WebhookView::new(record, control.status(&record.id)))
        .filter(|view| query.status.is_none_or(|status| view.status == status));
    Ok(Json(page::paginate(
        views,
        |view| &view.id,
        query.cursor.as_deref(),
        limit,
    )))
}

/// Read a webhook.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    params(("webhook_id" = String, Path)),
    responses(
        (status = 200, description = "The webhook.", body = WebhookView),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let record = current(&state, deadline, &principal.tenant_id, &webhook_id).await?;
    Ok(Json(view(&state, &record)))
}

/// Change some fields of a webhook.
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    params(("webhook_id" = String, Path)),
    request_body = PatchWebhook,
    responses(
        (status = 200, description = "The webhook as changed.", body = WebhookView),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
        (status = 422, description = "`invalid_url`, `invalid_events` or `validation_failed`", body = ErrorBody),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
    ApiJson(patch): ApiJson<PatchWebhook>,
) -> Result<Json<WebhookView>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let mut record = current(&state, deadline, &principal.tenant_id, &webhook_id).await?;
    let subscribed_before = record.events.clone();
    let PatchWebhook {
        url,
        events,
        name,
        description,
        metadata,
        headers,
        ordering,
        rate_limit,
        retry,
        active,
        signature,
        payload,
    } = patch;
    record.url = url.unwrap_or(record.url);
    record.events = events.unwrap_or(record.events);
    record.name = name.or(record.name);
    record.description = description.or(record.description);
    record.metadata = metadata.unwrap_or(record.metadata);
    record.headers = headers.unwrap_or(record.headers);
    record.ordering = ordering.unwrap_or(record.ordering);
    record.rate_limit = rate_limit.or(record.rate_limit);
    record.retry = retry.or(record.retry);
    record.active = active.unwrap_or(record.active);
    record.signature = signature.unwrap_or(record.signature);
    record.payload = payload.unwrap_or(record.payload);
    validate(&record, &state)?;
    event_types::check_subscriptions(
        &state.control.read(),
        &principal.tenant_id,
        &record.events,
        &subscribed_before,
    )?;
    record.updated_at = Utc::now();
    store(&state, deadline, &record).await?;
    Ok(Json(view(&state, &record)))
}

async fn set_active(
    state: &AppState,
    deadline: Deadline,
    tenant: &Tenant,
    webhook_id: &str,
    active: bool,
) -> Result<Json<WebhookView>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let mut record = current(state, deadline, &principal.tenant_id, webhook_id).await?;
    if record.active != active {
        record.active = active;
        record.updated_at = Utc::now();
        store(state, deadline, &record).await?;
    }
    Ok(Json(view(state, &record)))
}

/// Resumes deliveries to a deactivated webhook.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/activate",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    params(("webhook_id" = String, Path)),
    responses(
        (status = 200, description = "The webhook, active.", body = WebhookView),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    set_active(&state, deadline, &tenant, &webhook_id, true).await
}

/// Stops deliveries (pending tasks are cancelled) but keeps configuration and history.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/deactivate",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    params(("webhook_id" = String, Path)),
    responses(
        (status = 200, description = "The webhook, inactive.", body = WebhookView),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn deactivate(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    set_active(&state, deadline, &tenant, &webhook_id, false).await
}

/// Replaces the signing secret. The old one keeps signing alongside (both signatures are sent)
/// until the overlap ends, so receivers can switch without losing a request.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/rotate-secret",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    params(("webhook_id" = String, Path)),
    responses(
        (status = 200, description = "The webhook and its new secret, shown this once.", body = WebhookWithSecret),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let mut record = current(&state, deadline, &principal.tenant_id, &webhook_id).await?;
    let now = Utc::now();
    record
        .previous_secrets
        .retain(|previous| previous.expires_at > now);
    record.previous_secrets.push(PreviousSecret {
        secret: record.secret.clone(),
        expires_at: now + state.secret_rotation_overlap,
    });
    let secret = Secret::generate().expose();
    record.secret = state.secret_keys.seal(&secret, &record.id);
    record.updated_at = now;
    store(&state, deadline, &record).await?;
    Ok(Json(view(&state, &record).with_secret(secret)))
}

/// What a deletion answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    deleted: bool,
}

/// Delete a webhook; its history stays in the ledger.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    params(("webhook_id" = String, Path)),
    responses(
        (status = 200, description = "Deleted.", body = Deleted),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    current(&state, deadline, &principal.tenant_id, &webhook_id).await?;
    state
        .delete(deadline, &state.topics.webhooks(), &webhook_id)
        .await?;
    Ok(Json(Deleted { deleted: true }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestWebhook {
    /// The synthetic event's type.
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", max_length = 128)]
    event_type: String,
    /// The synthetic event's `data`; `{}` when absent.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    data: Option<Box<RawValue>>,
}

/// Whether the endpoint took the synthetic event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// It answered 2xx.
    Succeeded,
    /// It answered otherwise, or not in time.
    Failed,
}

/// What the endpoint did with the synthetic event.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    event_id: String,
    /// The `webhook-id` the request carried.
    delivery_id: String,
    duration_ms: u64,
    outcome: TestOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_status: Option<u16>,
    /// The start of the response body.
    #[serde(skip_serializing_if = "Option::is_none")]
    response_body: Option<String>,
    /// Why no answer counts (a timeout, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Sends one synthetic event to this webhook only, now, and answers with what the endpoint did.
/// The event is not published: no other webhook sees it and nothing is retried or recorded.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/test",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    params(("webhook_id" = String, Path)),
    request_body = TestWebhook,
    responses(
        (status = 200, description = "What the endpoint answered.", body = TestResult),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
        (status = 422, description = "`validation_failed`, or `url_unreachable` when no connection could be made.", body = ErrorBody),
    )
)]
pub async fn send_test(
    State(state): State<AppState>,
    deadline: Deadline,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
    ApiJson(request): ApiJson<TestWebhook>,
) -> Result<Json<TestResult>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    validate_event_type(&request.event_type)
        .map_err(|err| ApiError::new(ErrorCode::ValidationFailed, format!("type: {err}")))?;
    let webhook = current(&state, deadline, &principal.tenant_id, &webhook_id).await?;
    let now = Utc::now();
    let event = EventRecord {
        schema_version: SCHEMA_VERSION,
        tenant_id: principal.tenant_id.clone(),
        id: new_event_id(),
        event_type: request.event_type,
        timestamp: now,
        accepted_at: now,
        data: request
            .data
            .unwrap_or_else(|| RawValue::from_string("{}".into()).expect("`{}` is JSON")),
        ordering_key: None,
        id_chosen_by_producer: false,
    };
    let message_id = delivery_id(&event.tenant_id, &event.id, &webhook.id);
    let exchange = hookline_delivery::send(&state.http, &webhook, &message_id, &event).await;
    let duration_ms = u64::try_from(exchange.duration.as_millis()).unwrap_or(u64::MAX);
    let mut body = TestResult {
        event_id: event.id,
        delivery_id: message_id,
        duration_ms,
        outcome: TestOutcome::Failed,
        response_status: None,
        response_body: None,
        error: None,
    };
    match exchange.result {
        Ok(answer) => {
            if answer.is_success() {
                body.outcome = TestOutcome::Succeeded;
            }
            body.response_status = Some(answer.status);
            body.response_body = Some(answer.body);
        }
        Err(failure) if failure.class == Some(ErrorClass::Connection) => {
            return Err(ApiError::new(
                ErrorCode::UrlUnreachable,
                format!(
                    "could not connect to the webhook's url: {}",
                    failure.message
                ),
            ));
        }
        Err(failure) => body.error = Some(failure.message),
    }
    Ok(Json(body))
}
