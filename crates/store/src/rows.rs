//! What an attempt writes: its rows, their columns and bind markers.

use chrono::{DateTime, Utc};
use hookline_schemas::{AttemptRecord, HttpHeader};
use scylla::SerializeRow;

use crate::cursor::Bucket;

/// Headers as stored: `(name, value)` tuples.
pub(crate) fn header_pairs(headers: &[HttpHeader]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|header| (header.name.as_str(), header.value.as_str()))
        .collect()
}

/// A delivery's state after an attempt: the static columns of its partition in
/// `delivery_attempts`, and its rows in the listings.
#[derive(SerializeRow)]
pub(crate) struct DeliveryState<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) delivery_id: &'a str,
    pub(crate) webhook_id: &'a str,
    pub(crate) event_id: &'a str,
    pub(crate) event_type: &'a str,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) status: &'a str,
    pub(crate) attempts: i32,
    pub(crate) last_attempt_at: DateTime<Utc>,
    pub(crate) last_response_status: Option<i32>,
    /// The write time of every row the attempt writes, in microseconds: the attempt's time.
    pub(crate) write_time: i64,
}

/// A delivery's row in a listing partitioned by time: its state and the partition's bucket.
#[derive(SerializeRow)]
pub(crate) struct ListedDelivery<'a> {
    #[scylla(flatten)]
    pub(crate) state: &'a DeliveryState<'a>,
    pub(crate) bucket: String,
}

/// The columns of an attempt that both the delivery's and the webhook's partitions hold.
#[derive(SerializeRow)]
pub(crate) struct AttemptColumns<'a> {
    pub(crate) attempted_at: DateTime<Utc>,
    pub(crate) attempt_id: &'a str,
    pub(crate) attempt_number: i32,
    pub(crate) url: &'a str,
    pub(crate) outcome: &'a str,
    pub(crate) response_status: Option<i32>,
    pub(crate) error_class: Option<&'a str>,
    pub(crate) duration_ms: i64,
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
    pub(crate) request_headers: &'a [(&'a str, &'a str)],
    pub(crate) response_headers: &'a [(&'a str, &'a str)],
    pub(crate) response_headers_truncated: bool,
}

/// An attempt's row in `delivery_attempts`, with its delivery's state in the static columns.
#[derive(SerializeRow)]
pub(crate) struct DeliveryAttempt<'a> {
    #[scylla(flatten)]
    pub(crate) state: &'a DeliveryState<'a>,
    #[scylla(flatten)]
    pub(crate) attempt: &'a AttemptColumns<'a>,
    pub(crate) response_body: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) replay: bool,
}

/// An attempt's row in its webhook's log.
#[derive(SerializeRow)]
pub(crate) struct WebhookLogAttempt<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) webhook_id: &'a str,
    pub(crate) bucket: String,
    pub(crate) delivery_id: &'a str,
    pub(crate) event_id: &'a str,
    pub(crate) event_type: &'a str,
    #[scylla(flatten)]
    pub(crate) attempt: &'a AttemptColumns<'a>,
    pub(crate) write_time: i64,
}

/// The delivery's state after `attempt`.
pub(crate) fn delivery_state(attempt: &AttemptRecord) -> DeliveryState<'_> {
    DeliveryState {
        tenant_id: &attempt.tenant_id,
        delivery_id: &attempt.delivery_id,
        webhook_id: &attempt.webhook_id,
        event_id: &attempt.event_id,
        event_type: &attempt.event_type,
        created_at: attempt.event_accepted_at.unwrap_or(attempt.attempted_at),
        status: attempt.delivery_status(),
        attempts: i32::try_from(attempt.attempt_number).unwrap_or(i32::MAX),
        last_attempt_at: attempt.attempted_at,
        last_response_status: attempt.response_status.map(i32::from),
        write_time: attempt.attempted_at.timestamp_micros(),
    }
}

pub(crate) fn attempt_columns<'a>(
    attempt: &'a AttemptRecord,
    request_headers: &'a [(&'a str, &'a str)],
    response_headers: &'a [(&'a str, &'a str)],
) -> AttemptColumns<'a> {
    AttemptColumns {
        attempted_at: attempt.attempted_at,
        attempt_id: &attempt.attempt_id,
        attempt_number: i32::try_from(attempt.attempt_number).unwrap_or(i32::MAX),
        url: &attempt.url,
        outcome: attempt.outcome.as_str(),
        response_status: attempt.response_status.map(i32::from),
        error_class: attempt.error_class.map(|class| class.as_str()),
        duration_ms: i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX),
        next_attempt_at: attempt.next_attempt_at,
        request_headers,
        response_headers,
        response_headers_truncated: attempt.response_headers_truncated,
    }
}

/// The rows one attempt may write (the listings' only when it changes its delivery's state).
pub(crate) struct AttemptRows<'a> {
    pub(crate) in_delivery: DeliveryAttempt<'a>,
    pub(crate) in_webhook_log: WebhookLogAttempt<'a>,
    pub(crate) by_webhook: ListedDelivery<'a>,
    pub(crate) by_tenant: ListedDelivery<'a>,
    pub(crate) by_event: (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        i32,
        DateTime<Utc>,
        i64,
    ),
}

impl<'a> AttemptRows<'a> {
    pub(crate) fn of(
        attempt: &'a AttemptRecord,
        state: &'a DeliveryState<'a>,
        columns: &'a AttemptColumns<'a>,
    ) -> Self {
        Self {
            in_delivery: DeliveryAttempt {
                state,
                attempt: columns,
                response_body: attempt.response_body.as_deref(),
                error: attempt.error.as_deref(),
                replay: attempt.replay,
            },
            in_webhook_log: WebhookLogAttempt {
                tenant_id: &attempt.tenant_id,
                webhook_id: &attempt.webhook_id,
                bucket: Bucket::Day.of(attempt.attempted_at),
                delivery_id: &attempt.delivery_id,
                event_id: &attempt.event_id,
                event_type: &attempt.event_type,
                attempt: columns,
                write_time: state.write_time,
            },
            by_webhook: ListedDelivery {
                state,
                bucket: Bucket::Day.of(state.created_at),
            },
            by_tenant: ListedDelivery {
                state,
                bucket: Bucket::Hour.of(state.created_at),
            },
            by_event: (
                state.tenant_id,
                state.event_id,
                state.webhook_id,
                state.delivery_id,
                state.status,
                state.attempts,
                state.last_attempt_at,
                state.write_time,
            ),
        }
    }
}

/// The `kind` of a webhook's attempt in `webhook_log`.
pub(crate) const ATTEMPT: &str = "attempt";
/// The `kind` of a webhook's delivery in `webhook_log`.
pub(crate) const DELIVERY: &str = "delivery";

/// The columns of a delivery's state, for the listings written at its changes of state.
const DELIVERY_STATE: &str =
    "webhook_id, event_id, event_type, status, attempts, last_attempt_at, last_response_status";
/// Their bind markers, by name.
const DELIVERY_STATE_VALUES: &str = ":webhook_id, :event_id, :event_type, :status, :attempts, \
     :last_attempt_at, :last_response_status";
/// The columns an attempt's rows hold in both its delivery's and its webhook's partition.
const ATTEMPT_COLUMNS: &str = "attempt_number, url, outcome, response_status, error_class, \
     duration_ms, next_attempt_at, request_headers, response_headers, response_headers_truncated";
/// Their bind markers, by name.
const ATTEMPT_VALUES: &str = ":attempt_number, :url, :outcome, :response_status, :error_class, \
     :duration_ms, :next_attempt_at, :request_headers, :response_headers, \
     :response_headers_truncated";

/// The statements writing an attempt's rows, each ending with `using` (`USING TIMESTAMP
/// :write_time`, with a `TTL` as well when copying a row).
pub(crate) struct Inserts<'a> {
    pub(crate) keyspace: &'a str,
    pub(crate) using: &'a str,
}

impl Inserts<'_> {
    /// An attempt's row in its delivery's partition, with the delivery's state in the static
    /// columns when `with_state`.
    pub(crate) fn delivery_attempt(&self, with_state: bool) -> String {
        let Self { keyspace, using } = self;
        let (state, state_values) = if with_state {
            (
                format!("created_at, {DELIVERY_STATE}, "),
                format!(":created_at, {DELIVERY_STATE_VALUES}, "),
            )
        } else {
            (String::new(), String::new())
        };
        format!(
            "INSERT INTO {keyspace}.delivery_attempts (tenant_id, delivery_id, {state}\
             attempted_at, attempt_id, {ATTEMPT_COLUMNS}, response_body, error, replay) VALUES \
             (:tenant_id, :delivery_id, {state_values}:attempted_at, :attempt_id, \
             {ATTEMPT_VALUES}, :response_body, :error, :replay) {using}"
        )
    }

    /// A delivery's state alone, in the static columns of its partition.
    pub(crate) fn delivery_state(&self) -> String {
        let Self { keyspace, using } = self;
        format!(
            "INSERT INTO {keyspace}.delivery_attempts (tenant_id, delivery_id, created_at, \
             {DELIVERY_STATE}) VALUES (:tenant_id, :delivery_id, :created_at, \
             {DELIVERY_STATE_VALUES}) {using}"
        )
    }

    /// An attempt's row in its webhook's log.
    pub(crate) fn webhook_attempt(&self) -> String {
        let Self { keyspace, using } = self;
        format!(
            "INSERT INTO {keyspace}.webhook_log (tenant_id, webhook_id, day, kind, at, id, \
             delivery_id, event_id, event_type, {ATTEMPT_COLUMNS}) VALUES (:tenant_id, \
             :webhook_id, :bucket, '{ATTEMPT}', :attempted_at, :attempt_id, :delivery_id, \
             :event_id, :event_type, {ATTEMPT_VALUES}) {using}"
        )
    }

    /// A delivery's row in its webhook's log.
    pub(crate) fn webhook_delivery(&self) -> String {
        let Self { keyspace, using } = self;
        format!(
            "INSERT INTO {keyspace}.webhook_log (tenant_id, webhook_id, day, kind, at, id, \
             event_id, event_type, status, attempts, last_attempt_at, last_response_status) \
             VALUES (:tenant_id, :webhook_id, :bucket, '{DELIVERY}', :created_at, :delivery_id, \
             :event_id, :event_type, :status, :attempts, :last_attempt_at, \
             :last_response_status) {using}"
        )
    }

    /// A delivery's row in its tenant's hour.
    pub(crate) fn tenant_delivery(&self) -> String {
        let Self { keyspace, using } = self;
        format!(
            "INSERT INTO {keyspace}.deliveries_by_tenant_hour (tenant_id, hour, created_at, \
             delivery_id, {DELIVERY_STATE}) VALUES (:tenant_id, :bucket, :created_at, \
             :delivery_id, {DELIVERY_STATE_VALUES}) {using}"
        )
    }
}

/// The columns `webhook_log`'s attempts are read with (as `WebhookAttempt` names them).
pub(crate) const WEBHOOK_ATTEMPT_COLUMNS: &str =
    "id AS attempt_id, at AS attempted_at, delivery_id, event_id, event_type, attempt_number, \
     url, outcome, response_status, error_class, duration_ms, next_attempt_at, request_headers, \
     response_headers, response_headers_truncated";
