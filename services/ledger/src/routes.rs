//! The ledger's read API: deliveries and attempts, events (polling), statistics and replay.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_domain::ErrorCode;
use hookline_runtime::api::{ApiError, ApiQuery, ErrorBody, Tenant};
use hookline_schemas::{DeliveryTask, EventRecord, Scope, SCHEMA_VERSION};
use hookline_store::{
    AttemptRow, DeliveryQuery, DeliveryRow, DeliverySummary, EventDelivery, Page, StoreError,
    StoredEvent, WebhookAttempt,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::series::{Intervals, Series, SeriesPoint, Tally};
use crate::AppState;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;
/// Longest window of a webhook's statistics, in hours (the retention bounds it further).
const MAX_STATS_HOURS: u32 = 24 * 366;
const _: () = assert!(MAX_STATS_HOURS * 60 == crate::series::MAX_INTERVAL_MINUTES);
/// Attempts read at most to compute a webhook's statistics.
const MAX_STATS_ATTEMPTS: usize = 10_000;

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Cursor(bad) => {
            ApiError::new(ErrorCode::ValidationFailed, format!("cursor: {bad}"))
        }
        other => ApiError::unavailable(&other),
    }
}

/// A page size: `DEFAULT_LIMIT` when absent, refused outside 1 to `MAX_LIMIT`.
fn checked_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => Ok(limit),
        _ => Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("limit: 1 to {MAX_LIMIT}"),
        )),
    }
}

/// Paging and time-window parameters shared by listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    limit: Option<usize>,
    cursor: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    webhook_id: Option<String>,
    status: Option<String>,
    event_type: Option<String>,
    #[serde(rename = "type")]
    type_filter: Option<String>,
}

impl ListParams {
    fn limit(&self) -> Result<usize, ApiError> {
        checked_limit(self.limit)
    }

    /// The window to list: by default the whole retention period.
    fn window(&self, state: &AppState) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let until = self.until.unwrap_or_else(Utc::now);
        let since = self
            .since
            .unwrap_or(until - state.retention)
            .max(until - state.retention);
        if since > until {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                "since: must not be after until",
            ));
        }
        Ok((since, until))
    }

    fn refuse(&self, present: bool, name: &str) -> Result<(), ApiError> {
        if present {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                format!("{name}: not a filter of this listing"),
            ));
        }
        Ok(())
    }
}

const STATUSES: [&str; 6] = [
    "pending",
    "retrying",
    "succeeded",
    "failed",
    "dead",
    "cancelled",
];

/// `GET /v1/deliveries`: newest first, filtered by webhook, status, event type and time.
#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "deliveries",
    security(("api_key" = ["deliveries:read"])),
    params(
        ("webhook_id" = Option<String>, Query, description = "Only this webhook's deliveries."),
        ("status" = Option<String>, Query, description = "Only deliveries in this state: `pending`, `retrying`, `succeeded`, `failed`, `dead` or `cancelled`."),
        ("event_type" = Option<String>, Query, description = "Only deliveries of events of this type."),
        ("since" = Option<DateTime<Utc>>, Query, description = "Created at or after (default: the retention period ago)."),
        ("until" = Option<DateTime<Utc>>, Query, description = "Created at or before (default: now)."),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100, description = "Page size (default 50)."),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "A page of deliveries, newest first.", body = Page<DeliverySummary>),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<DeliverySummary>>, ApiError> {
    let principal = tenant.require(Scope::DeliveriesRead)?;
    params.refuse(params.type_filter.is_some(), "type")?;
    if let Some(status) = &params.status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                format!("status: one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let (since, until) = params.window(&state)?;
    let query = DeliveryQuery {
        webhook_id: params.webhook_id.clone(),
        statuses: params.status.iter().cloned().collect(),
        event_type: params.event_type.clone(),
        since,
        until,
    };
    let page = state
        .ledger
        .list_deliveries(
            &principal.tenant_id,
            &query,
            params.limit()?,
            params.cursor.as_deref(),
        )
        .await
        .map_err(store_error)?;
    Ok(Json(page))
}

/// A delivery and every attempt of it.
#[derive(Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryRow,
    attempts: Vec<AttemptRow>,
}

/// `GET /v1/deliveries/{id}`: one delivery of the caller's tenant with all its attempts.
#[utoipa::path(
    get,
    path = "/v1/deliveries/{delivery_id}",
    tag = "deliveries",
    security(("api_key" = ["deliveries:read"])),
    params(("delivery_id" = String, Path, description = "The `webhook-id` the endpoint received.")),
    responses(
        (status = 200, description = "The delivery and its attempts.", body = DeliveryDetail),
        (status = 404, description = "No such delivery of this tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn delivery(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(delivery_id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let principal = tenant.require(Scope::DeliveriesRead)?;
    let found = state
        .ledger
        .delivery(&principal.tenant_id, &delivery_id)
        .await
        .map_err(store_error)?;
    let (delivery, attempts) = found.ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok(Json(DeliveryDetail { delivery, attempts }))
}

/// Fails with `not_found` unless the webhook exists and belongs to the tenant.
pub(crate) fn own_webhook(
    state: &AppState,
    tenant_id: &str,
    webhook_id: &str,
) -> Result<(), ApiError> {
    match state.control.read().webhook(tenant_id, webhook_id) {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("webhook")),
    }
}

/// `GET /v1/webhooks/{id}/attempts`: the webhook's attempt log, newest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhook_id}/attempts",
    tag = "deliveries",
    security(("api_key" = ["deliveries:read"])),
    params(
        ("webhook_id" = String, Path),
        ("status" = Option<String>, Query, description = "Only attempts with this outcome: `succeeded`, `failed` or `cancelled`."),
        ("event_type" = Option<String>, Query, description = "Only attempts of events of this type."),
        ("since" = Option<DateTime<Utc>>, Query, description = "Attempted at or after (default: the retention period ago)."),
        ("until" = Option<DateTime<Utc>>, Query, description = "Attempted at or before (default: now)."),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100, description = "Page size (default 50), counted before the `status` and `event_type` filters."),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "A page of attempts, newest first.", body = Page<WebhookAttempt>),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn webhook_attempts(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<WebhookAttempt>>, ApiError> {
    let principal = tenant.require(Scope::DeliveriesRead)?;
    own_webhook(&state, &principal.tenant_id, &webhook_id)?;
    params.refuse(
        params.webhook_id.is_some() || params.type_filter.is_some(),
        "webhook_id, type",
    )?;
    let (since, until) = params.window(&state)?;
    let mut page = state
        .ledger
        .webhook_attempts(
            &principal.tenant_id,
            &webhook_id,
            since,
            until,
            params.limit()?,
            params.cursor.as_deref(),
        )
        .await
        .map_err(store_error)?;
    page.data.retain(|attempt| {
        params.status.as_ref().is_none_or(|s| *s == attempt.outcome)
            && params
                .event_type
                .as_ref()
                .is_none_or(|t| *t == attempt.event_type)
    });
    Ok(Json(page))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// Hours to look back (default 24, at most the retention).
    hours: Option<u32>,
    /// Length of the series' intervals (default: the window's 24th, in whole minutes).
    interval_minutes: Option<u32>,
}

/// A webhook's attempts in a window: counts, success rate and latency.
#[derive(Serialize, ToSchema)]
pub struct WebhookStats {
    webhook_id: String,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    /// Succeeded and failed attempts.
    attempts: u64,
    succeeded: u64,
    failed: u64,
    /// `null` without attempts.
    success_rate: Option<f64>,
    latency_ms: Latency,
    /// Whether only the newest attempts were counted (there were too many).
    truncated: bool,
    /// The window cut into intervals of `interval_minutes` from `since`, oldest first, empty
    /// ones included; the last ends at or after `until`.
    series: Vec<SeriesPoint>,
    /// The length of each interval of `series`.
    interval_minutes: i64,
}

/// Attempt durations in milliseconds; `null` without attempts.
#[derive(Serialize, ToSchema)]
pub struct Latency {
    p50: Option<i64>,
    p95: Option<i64>,
    p99: Option<i64>,
}

/// `GET /v1/webhooks/{id}/stats`: attempt counts, success rate and latency percentiles.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhook_id}/stats",
    tag = "deliveries",
    security(("api_key" = ["deliveries:read"])),
    params(
        ("webhook_id" = String, Path),
        ("hours" = Option<u32>, Query, minimum = 1, maximum = 8784, description = "Hours to look back (default 24); the window ends at the retention."),
        ("interval_minutes" = Option<u32>, Query, minimum = 1, maximum = 527040, description = "Length of each interval of `series` (default: the window cut into 24, rounded up to whole minutes); `validation_failed` when the window would have more than 500."),
    ),
    responses(
        (status = 200, description = "The webhook's statistics.", body = WebhookStats),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn webhook_stats(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Json<WebhookStats>, ApiError> {
    let principal = tenant.require(Scope::DeliveriesRead)?;
    own_webhook(&state, &principal.tenant_id, &webhook_id)?;
    let hours = params.hours.unwrap_or(24);
    if !(1..=MAX_STATS_HOURS).contains(&hours) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("hours: 1 to {MAX_STATS_HOURS}"),
        ));
    }
    let until = Utc::now();
    let since = (until - chrono::Duration::hours(i64::from(hours))).max(until - state.retention);
    let intervals = Intervals::new(since, until, params.interval_minutes).map_err(|err| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            format!("interval_minutes: {err}"),
        )
    })?;
    let mut series = Series::new(intervals);
    let mut durations = Vec::new();
    let (mut succeeded, mut failed) = (0u64, 0u64);
    let mut cursor = None;
    loop {
        let page = state
            .ledger
            .webhook_attempt_tallies(
                &principal.tenant_id,
                &webhook_id,
                since,
                until,
                MAX_LIMIT,
                cursor.as_deref(),
            )
            .await
            .map_err(store_error)?;
        for attempt in &page.data {
            let tally = Tally::of(&attempt.outcome, attempt.next_attempt_at);
            match tally {
                Some(Tally::Succeeded) => succeeded += 1,
                Some(Tally::Retrying | Tally::Failed) => failed += 1,
                None => {}
            }
            if let Some(tally) = tally {
                series.count(attempt.attempted_at, tally);
            }
            durations.push(attempt.duration_ms);
        }
        cursor = page.next_cursor;
        if cursor.is_none() || durations.len() >= MAX_STATS_ATTEMPTS {
            break;
        }
    }
    durations.sort_unstable();
    let percentile = |q: f64| -> Option<i64> {
        let index = ((durations.len() as f64 - 1.0) * q).round() as usize;
        durations.get(index).copied()
    };
    let total = succeeded + failed;
    Ok(Json(WebhookStats {
        webhook_id,
        since,
        until,
        attempts: total,
        succeeded,
        failed,
        success_rate: (total > 0).then(|| succeeded as f64 / total as f64),
        latency_ms: Latency {
            p50: percentile(0.5),
            p95: percentile(0.95),
            p99: percentile(0.99),
        },
        truncated: cursor.is_some(),
        interval_minutes: intervals.minutes(),
        series: series.into_points(),
    }))
}

/// An event as the API shows it: its payload as published.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    #[serde(flatten)]
    event: StoredEvent,
    /// The payload, byte for byte as published.
    #[schema(value_type = Value)]
    data: Box<RawValue>,
}

/// An event's payload as stored, as raw JSON to send or show byte for byte.
fn stored_payload(event: &StoredEvent) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(event.data.clone()).map_err(|err| {
        ApiError::new(
            ErrorCode::Internal,
            format!("stored payload unreadable: {err}"),
        )
    })
}

fn event_view(event: StoredEvent) -> Result<EventView, ApiError> {
    let data = stored_payload(&event)?;
    Ok(EventView { event, data })
}

/// `GET /v1/events`: the tenant's events in acceptance order (the recovery source of truth).
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    security(("api_key" = ["deliveries:read"])),
    params(
        ("type" = Option<String>, Query, description = "Only events of this type."),
        ("since" = Option<DateTime<Utc>>, Query, description = "Accepted at or after (default: the retention period ago)."),
        ("until" = Option<DateTime<Utc>>, Query, description = "Accepted at or before (default: now)."),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100, description = "Page size (default 50)."),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "A page of events with their payloads.", body = Page<EventView>),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<EventView>>, ApiError> {
    let principal = tenant.require(Scope::DeliveriesRead)?;
    params.refuse(
        params.webhook_id.is_some() || params.status.is_some() || params.event_type.is_some(),
        "webhook_id, status, event_type (use type)",
    )?;
    let (since, until) = params.window(&state)?;
    let page = state
        .ledger
        .list_events(
            &principal.tenant_id,
            params.type_filter.as_deref(),
            since,
            until,
            params.limit()?,
            params.cursor.as_deref(),
        )
        .await
        .map_err(store_error)?;
    let data = page
        .data
        .into_iter()
        .map(event_view)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Page {
        data,
        next_cursor: page.next_cursor,
    }))
}

/// An event, its payload and its deliveries.
#[derive(Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    event: EventView,
    deliveries: Vec<EventDelivery>,
}

/// `GET /v1/events/{id}`: the payload and its deliveries.
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}",
    tag = "events",
    security(("api_key" = ["deliveries:read"])),
    params(("event_id" = String, Path)),
    responses(
        (status = 200, description = "The event and its deliveries.", body = EventDetail),
        (status = 404, description = "No such event of this tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn event(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(event_id): Path<String>,
) -> Result<Json<EventDetail>, ApiError> {
    let principal = tenant.require(Scope::DeliveriesRead)?;
    let found = state
        .ledger
        .event(&principal.tenant_id, &event_id)
        .await
        .map_err(store_error)?;
    let (event, deliveries) = found.ok_or_else(|| ApiError::not_found("event"))?;
    Ok(Json(EventDetail {
        event: event_view(event)?,
        deliveries,
    }))
}

/// What a replay answers.
#[derive(Serialize, ToSchema)]
pub struct Replayed {
    delivery_id: String,
    replayed: bool,
}

/// `POST /v1/deliveries/{id}/replay`: sends the delivery again, to the webhook's current URL
/// and secret, with the same `webhook-id`; its attempts are marked as a replay.
#[utoipa::path(
    post,
    path = "/v1/deliveries/{delivery_id}/replay",
    tag = "deliveries",
    security(("api_key" = ["deliveries:replay"])),
    params(("delivery_id" = String, Path)),
    responses(
        (status = 202, description = "A new attempt is on its way.", body = Replayed),
        (status = 404, description = "No such delivery of this tenant, its webhook is gone, or its event is past retention (`not_found`).", body = ErrorBody),
    )
)]
pub async fn replay(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(delivery_id): Path<String>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let principal = tenant.require(Scope::DeliveriesReplay)?;
    replay_delivery(&state, &principal.tenant_id, &delivery_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Replayed {
            delivery_id,
            replayed: true,
        }),
    ))
}

/// Produces a new task for a delivery of `tenant_id`: the next attempt number, the event as
/// retained, marked as a replay.
pub(crate) async fn replay_delivery(
    state: &AppState,
    tenant_id: &str,
    delivery_id: &str,
) -> Result<(), ApiError> {
    let (delivery, _) = state
        .ledger
        .delivery(tenant_id, delivery_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    own_webhook(state, tenant_id, &delivery.webhook_id)?;
    publish_replay(
        state,
        tenant_id,
        ReplayOf {
            delivery_id: &delivery.delivery_id,
            webhook_id: &delivery.webhook_id,
            event_id: &delivery.event_id,
            attempts: delivery.attempts,
        },
    )
    .await
}

/// The delivery a replay is of, as the ledger knows it.
pub(crate) struct ReplayOf<'a> {
    pub delivery_id: &'a str,
    pub webhook_id: &'a str,
    pub event_id: &'a str,
    /// Attempts made so far.
    pub attempts: i32,
}

/// Produces the replay task of a delivery whose webhook was checked to be the tenant's.
pub(crate) async fn publish_replay(
    state: &AppState,
    tenant_id: &str,
    delivery: ReplayOf<'_>,
) -> Result<(), ApiError> {
    let event = state
        .ledger
        .stored_event(tenant_id, delivery.event_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("event (its retention has passed)"))?;
    let data = stored_payload(&event)?;
    let task = DeliveryTask {
        schema_version: SCHEMA_VERSION,
        delivery_id: delivery.delivery_id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        webhook_id: delivery.webhook_id.to_owned(),
        attempt: u32::try_from(delivery.attempts).unwrap_or(0) + 1,
        due_at: None,
        last_error: None,
        replay: true,
        held_since: None,
        event: EventRecord {
            schema_version: SCHEMA_VERSION,
            tenant_id: tenant_id.to_owned(),
            id: event.event_id,
            event_type: event.event_type,
            timestamp: event.occurred_at,
            accepted_at: event.accepted_at,
            data,
            // A replay's task is keyed by its webhook: the event's ordering scope is not needed.
            ordering_key: None,
            id_chosen_by_producer: false,
        },
    };
    state
        .publisher
        .send_json(&state.deliveries_topic, &task.webhook_id, &task)
        .await?;
    Ok(())
}

/// The delivery states that count as "not delivered".
const UNSUCCEEDED: [&str; 5] = ["pending", "retrying", "failed", "dead", "cancelled"];

/// Which events `GET /v1/webhooks/{id}/events` lists, by their delivery to the webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryFilter {
    /// Events not yet delivered successfully: pending, retrying, failed, dead or cancelled.
    Unsucceeded,
}

impl DeliveryFilter {
    /// The delivery states of the events listed.
    fn statuses(&self) -> &'static [&'static str] {
        match self {
            Self::Unsucceeded => &UNSUCCEEDED,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEventsParams {
    delivery: DeliveryFilter,
    limit: Option<usize>,
    cursor: Option<String>,
    since: Option<DateTime<Utc>>,
}

/// An event not yet delivered successfully to a webhook, and where its delivery stands.
#[derive(Serialize, ToSchema)]
pub struct UndeliveredEvent {
    event: EventView,
    delivery: DeliveryState,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryState {
    id: String,
    status: String,
    attempt_count: i32,
}

/// `GET /v1/webhooks/{id}/events?delivery=unsucceeded`: what a receiver that missed webhooks
/// needs to catch up, newest first, with each event's payload and delivery state.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhook_id}/events",
    tag = "deliveries",
    security(("api_key" = ["deliveries:read"])),
    params(
        ("webhook_id" = String, Path),
        ("delivery" = inline(DeliveryFilter), Query),
        ("since" = Option<DateTime<Utc>>, Query, description = "Created at or after (default: the retention period ago)."),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100, description = "Page size (default 50)."),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "A page of undelivered events, newest first.", body = Page<UndeliveredEvent>),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn webhook_events(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
    ApiQuery(params): ApiQuery<WebhookEventsParams>,
) -> Result<Json<Page<UndeliveredEvent>>, ApiError> {
    let principal = tenant.require(Scope::DeliveriesRead)?;
    own_webhook(&state, &principal.tenant_id, &webhook_id)?;
    let limit = checked_limit(params.limit)?;
    let until = Utc::now();
    let query = DeliveryQuery {
        webhook_id: Some(webhook_id),
        statuses: params
            .delivery
            .statuses()
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        event_type: None,
        since: params
            .since
            .unwrap_or(until - state.retention)
            .max(until - state.retention),
        until,
    };
    let page = state
        .ledger
        .list_deliveries(
            &principal.tenant_id,
            &query,
            limit,
            params.cursor.as_deref(),
        )
        .await
        .map_err(store_error)?;
    let mut data = Vec::with_capacity(page.data.len());
    for delivery in page.data {
        let Some((event, _)) = state
            .ledger
            .event(&principal.tenant_id, &delivery.event_id)
            .await
            .map_err(store_error)?
        else {
            continue;
        };
        data.push(UndeliveredEvent {
            event: event_view(event)?,
            delivery: DeliveryState {
                id: delivery.delivery_id,
                status: delivery.status,
                attempt_count: delivery.attempts,
            },
        });
    }
    Ok(Json(Page {
        data,
        next_cursor: page.next_cursor,
    }))
}
