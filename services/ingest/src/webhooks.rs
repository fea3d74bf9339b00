//! `POST/GET /v1/webhooks`, `GET/DELETE /v1/webhooks/{id}`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_control::WebhookStatus;
use hookline_domain::ids::new_webhook_id;
use hookline_domain::RetrySchedule;
use hookline_domain::{validate_webhook_url, ErrorCode, EventFilters};
use hookline_runtime::api::{ApiError, ApiJson, Tenant};
use hookline_schemas::{Ordering, RetryOverride, Scope, WebhookRecord, SCHEMA_VERSION};
use hookline_signing::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::AppState;

const MAX_DESCRIPTION_LEN: usize = 1024;
const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_LEN: usize = 256;
const MAX_EVENT_FILTERS: usize = 256;
const MAX_RATE_LIMIT: u32 = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// `whsec_…`; generated when absent.
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    ordering: Ordering,
    /// Most requests per second.
    #[serde(default)]
    rate_limit: Option<u32>,
    #[serde(default)]
    retry: Option<RetryOverride>,
}

/// A webhook as the API shows it: never with its secret, except once at creation.
#[derive(Debug, Serialize)]
pub struct WebhookView {
    id: String,
    url: String,
    events: Vec<String>,
    status: WebhookStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    metadata: BTreeMap<String, String>,
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
            description: record.description.clone(),
            metadata: record.metadata.clone(),
            ordering: record.ordering,
            rate_limit: record.rate_limit,
            retry: record.retry,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

fn validate(request: &CreateWebhook, state: &AppState) -> Result<Secret, ApiError> {
    validate_webhook_url(&request.url, state.url_policy)
        .map_err(|err| ApiError::new(ErrorCode::InvalidUrl, err.to_string()))?;
    if request.events.len() > MAX_EVENT_FILTERS {
        return Err(ApiError::new(
            ErrorCode::InvalidEvents,
            format!("events: at most {MAX_EVENT_FILTERS} entries"),
        ));
    }
    EventFilters::parse(&request.events)
        .map_err(|err| ApiError::new(ErrorCode::InvalidEvents, err.to_string()))?;
    let invalid = |message: String| ApiError::new(ErrorCode::ValidationFailed, message);
    if request
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION_LEN)
    {
        return Err(invalid(format!(
            "description: at most {MAX_DESCRIPTION_LEN} bytes"
        )));
    }
    if request.metadata.len() > MAX_METADATA_ENTRIES
        || request.metadata.iter().any(|(key, value)| {
            key.is_empty() || key.len() > MAX_METADATA_LEN || value.len() > MAX_METADATA_LEN
        })
    {
        return Err(invalid(format!(
            "metadata: at most {MAX_METADATA_ENTRIES} entries, keys 1 to {MAX_METADATA_LEN} bytes, values at most {MAX_METADATA_LEN}"
        )));
    }
    if request
        .rate_limit
        .is_some_and(|limit| !(1..=MAX_RATE_LIMIT).contains(&limit))
    {
        return Err(invalid(format!(
            "rate_limit: 1 to {MAX_RATE_LIMIT} requests per second"
        )));
    }
    if let Some(retry) = request.retry {
        RetrySchedule::exponential(
            retry.max_attempts,
            std::time::Duration::from_secs(retry.initial_delay_secs),
            retry.multiplier,
        )
        .map_err(|err| invalid(format!("retry: {err}")))?;
    }
    match &request.secret {
        Some(secret) => Secret::parse(secret).map_err(|err| invalid(format!("secret: {err}"))),
        None => Ok(Secret::generate()),
    }
}

pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(request): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let secret = validate(&request, &state)?;
    let now = Utc::now();
    let record = WebhookRecord {
        schema_version: SCHEMA_VERSION,
        id: new_webhook_id(),
        tenant_id: principal.tenant_id.clone(),
        url: request.url,
        events: request.events,
        description: request.description,
        metadata: request.metadata,
        secret: secret.expose(),
        ordering: request.ordering,
        rate_limit: request.rate_limit,
        retry: request.retry,
        created_at: now,
        updated_at: now,
    };
    let topic = state.topics.webhooks();
    let position = state
        .publisher
        .send_json(&topic, &record.id, &record)
        .await?;
    state.control.wait_applied(&topic, position).await?;
    let view = WebhookView::new(&record, WebhookStatus::Active);
    let mut body = serde_json::to_value(view).expect("a view serializes");
    // The secret is shown this once.
    body["secret"] = json!(record.secret);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(State(state): State<AppState>, tenant: Tenant) -> Result<Json<Value>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let control = state.control.read();
    let data: Vec<WebhookView> = control
        .webhooks_of(&principal.tenant_id)
        .into_iter()
        .map(|record| WebhookView::new(record, control.status(&record.id)))
        .collect();
    Ok(Json(json!({ "data": data })))
}

pub async fn get(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let control = state.control.read();
    let record = control
        .webhook(&principal.tenant_id, &webhook_id)
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(Json(WebhookView::new(record, control.status(&record.id))))
}

pub async fn delete(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let principal = tenant.require(Scope::WebhooksManage)?;
    let exists = state
        .control
        .read()
        .webhook(&principal.tenant_id, &webhook_id)
        .is_some();
    if !exists {
        return Err(ApiError::not_found("webhook"));
    }
    let topic = state.topics.webhooks();
    let position = state.publisher.send_tombstone(&topic, &webhook_id).await?;
    state.control.wait_applied(&topic, position).await?;
    Ok(Json(json!({ "deleted": true })))
}
