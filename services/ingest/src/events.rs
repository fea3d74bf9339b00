//! `POST /v1/events` and `POST /v1/events/batch`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_domain::event_filter::validate_event_type;
use hookline_domain::ids::{is_valid_event_id, new_event_id, MAX_EVENT_ID_LEN};
use hookline_domain::ErrorCode;
use hookline_kafka::{KafkaAdapterError, OutgoingRecord};
use hookline_runtime::api::ErrorBody;
use hookline_runtime::api::{ApiError, ApiJson, Tenant};
use hookline_schemas::{EventRecord, Scope, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::AppState;

/// One event as a producer publishes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    /// Producer-chosen id, and the event's idempotency key: publishing again an event whose id
    /// was accepted for this tenant within the idempotency window (24 h by default) answers 202
    /// with the same id and delivers nothing again, whichever ingest instance answers and
    /// whatever restarted in between. A retry must send the same `ordering_key` (the event's
    /// partition). Generated when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    id: Option<String>,
    /// Dot-separated name, e.g. `invoice.paid`.
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", max_length = 128)]
    event_type: String,
    /// Any JSON; delivered byte for byte.
    #[schema(value_type = Value)]
    data: Box<RawValue>,
    /// When the event happened; defaults to acceptance time.
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    /// The ordering scope within the tenant: FIFO webhooks receive the events of one scope in
    /// the order they were accepted. Absent: the tenant as a whole is one scope. Events of
    /// different scopes may be delivered in any order relative to each other.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:/-]{1,128}$")]
    ordering_key: Option<String>,
}

/// Longest ordering key accepted.
const MAX_ORDERING_KEY_LEN: usize = 128;

fn is_valid_ordering_key(key: &str) -> bool {
    (1..=MAX_ORDERING_KEY_LEN).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b))
}

/// Events checked together and produced all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBatch {
    /// At most `HOOKLINE_MAX_BATCH_EVENTS` (default 100).
    #[schema(min_items = 1)]
    events: Vec<PublishEvent>,
}

/// The id of an accepted event.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    id: String,
}

/// The ids of accepted events, in the order of the batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedBatch {
    ids: Vec<String>,
}

/// Checks one event, `data` against its type's schema too, and turns it into its record;
/// `position` names it in errors.
fn to_record(
    state: &AppState,
    tenant_id: &str,
    event: PublishEvent,
    position: &str,
) -> Result<EventRecord, ApiError> {
    let invalid = |message: String| {
        ApiError::new(ErrorCode::ValidationFailed, format!("{position}{message}"))
    };
    validate_event_type(&event.event_type).map_err(|err| invalid(format!("type: {err}")))?;
    state
        .schemas
        .check(
            &state.control.read(),
            tenant_id,
            &event.event_type,
            &event.data,
        )
        .map_err(|message| {
            ApiError::new(ErrorCode::SchemaViolation, format!("{position}{message}"))
        })?;
    let id_chosen_by_producer = event.id.is_some();
    let id = match event.id {
        Some(id) if is_valid_event_id(&id) => id,
        Some(_) => {
            return Err(invalid(format!(
                "id: must be 1 to {MAX_EVENT_ID_LEN} letters, digits, `_`, `-`, `.` or `:`"
            )))
        }
        None => new_event_id(),
    };
    let ordering_key = match event.ordering_key {
        Some(key) if is_valid_ordering_key(&key) => Some(key),
        Some(_) => {
            return Err(invalid(format!(
                "ordering_key: must be 1 to {MAX_ORDERING_KEY_LEN} letters, digits, `_`, `-`, `.`, `:` or `/`"
            )))
        }
        None => None,
    };
    let accepted_at = Utc::now();
    Ok(EventRecord {
        schema_version: SCHEMA_VERSION,
        tenant_id: tenant_id.to_owned(),
        id,
        event_type: event.event_type,
        timestamp: event.timestamp.unwrap_or(accepted_at),
        accepted_at,
        data: event.data,
        ordering_key,
        id_chosen_by_producer,
    })
}

/// Takes `events` events from the tenant's publish rate limit.
fn admit(state: &AppState, tenant_id: &str, events: usize) -> Result<(), ApiError> {
    let own_limit = state
        .control
        .read()
        .tenant(tenant_id)
        .and_then(|tenant| tenant.publish_limit);
    state
        .publish_limiter
        .admit(tenant_id, own_limit, events)
        .map_err(|err| count_rejection(state, err))
}

/// Produces the records and waits until Kafka acknowledged every one. Several records go in
/// one transaction: readers see all of them or none.
async fn produce(state: &AppState, records: &[EventRecord]) -> Result<(), ApiError> {
    let topic = state.topics.events();
    let timer = state.metrics.produce_duration.start_timer();
    if let [record] = records {
        state
            .publisher
            .send_json(&topic, &record.partition_key(), record)
            .await
            .map_err(refusal)?;
    } else {
        let outgoing = records
            .iter()
            .map(|record| {
                Ok(OutgoingRecord {
                    topic: topic.clone(),
                    partition: None,
                    key: record.partition_key(),
                    payload: serde_json::to_vec(record)?,
                })
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()
            .map_err(KafkaAdapterError::from)?;
        state.batches.send_all(&outgoing).await.map_err(refusal)?;
    }
    timer.observe_duration();
    state.metrics.events_accepted.inc_by(records.len() as u64);
    Ok(())
}

/// Kafka refusing a record for good is the client's to fix (`payload_too_large`); anything
/// else is an outage to retry (`unavailable`).
fn refusal(error: KafkaAdapterError) -> ApiError {
    if error.is_transient() {
        return error.into();
    }
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        "an event is larger than Kafka accepts on the events topic; nothing was published",
    )
}

fn count_rejection(state: &AppState, error: ApiError) -> ApiError {
    state
        .metrics
        .events_rejected
        .with_label_values(&[error.code.as_str()])
        .inc();
    error
}

/// Publish an event: answered once Kafka has acknowledged it.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    security(("api_key" = ["events:publish"])),
    request_body = PublishEvent,
    responses(
        (status = 202, description = "Accepted: Kafka acknowledged it.", body = Published),
        (status = 422, description = "The event is not valid (`validation_failed`).", body = ErrorBody),
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    tenant: Tenant,
    body: Result<ApiJson<PublishEvent>, ApiError>,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let principal = tenant.require(Scope::EventsPublish)?;
    let ApiJson(event) = body.map_err(|err| count_rejection(&state, err))?;
    let record = to_record(&state, &principal.tenant_id, event, "")
        .map_err(|err| count_rejection(&state, err))?;
    admit(&state, &principal.tenant_id, 1)?;
    produce(&state, std::slice::from_ref(&record)).await?;
    Ok((StatusCode::ACCEPTED, Json(Published { id: record.id })))
}

/// Publish up to `HOOKLINE_MAX_BATCH_EVENTS` events at once, all or none.
#[utoipa::path(
    post,
    path = "/v1/events/batch",
    tag = "events",
    security(("api_key" = ["events:publish"])),
    request_body = PublishBatch,
    responses(
        (status = 202, description = "Accepted: Kafka acknowledged every event.", body = PublishedBatch),
        (status = 422, description = "An event is not valid, or the batch is empty or too long (`validation_failed`); none was accepted.", body = ErrorBody),
    )
)]
pub async fn publish_batch(
    State(state): State<AppState>,
    tenant: Tenant,
    body: Result<ApiJson<PublishBatch>, ApiError>,
) -> Result<(StatusCode, Json<PublishedBatch>), ApiError> {
    let principal = tenant.require(Scope::EventsPublish)?;
    let ApiJson(batch) = body.map_err(|err| count_rejection(&state, err))?;
    let count = batch.events.len();
    if count == 0 || count > state.max_batch_events {
        let message = format!(
            "events: a batch holds 1 to {} events",
            state.max_batch_events
        );
        return Err(count_rejection(
            &state,
            ApiError::new(ErrorCode::ValidationFailed, message),
        ));
    }
    // All or nothing: every event is checked before any is produced.
    let records = batch
        .events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            to_record(
                &state,
                &principal.tenant_id,
                event,
                &format!("events[{index}]."),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| count_rejection(&state, err))?;
    admit(&state, &principal.tenant_id, records.len())?;
    produce(&state, &records).await?;
    let ids = records.into_iter().map(|record| record.id).collect();
    Ok((StatusCode::ACCEPTED, Json(PublishedBatch { ids })))
}
