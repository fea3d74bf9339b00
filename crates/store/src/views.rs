//! What the ledger's reads return: the API's views of deliveries, attempts and events.

use chrono::{DateTime, Utc};
use hookline_schemas::HttpHeader;
use scylla::DeserializeRow;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

/// A delivery's latest state, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, DeserializeRow, ToSchema)]
pub struct DeliveryRow {
    #[serde(rename = "id")]
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    /// How many attempts were made (`attempts` is the list of them where one is shown).
    #[serde(rename = "attempt_count")]
    pub attempts: i32,
    pub last_attempt_at: DateTime<Utc>,
    pub last_response_status: Option<i32>,
}

/// Headers as stored, `(name, value)` in order, shown as `[{"name", "value"}]`: empty when none
/// were recorded (no request or no answer, or an attempt older than their recording).
fn header_objects<S: Serializer>(
    headers: &Option<Vec<(String, String)>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let headers = headers.as_deref().unwrap_or_default();
    serializer.collect_seq(headers.iter().map(|(name, value)| HttpHeader {
        name: name.clone(),
        value: value.clone(),
    }))
}

/// A flag stored only since it exists: unknown reads as `false`.
fn false_when_unknown<S: Serializer>(
    flag: &Option<bool>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(flag.unwrap_or(false))
}

/// One attempt, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, DeserializeRow, ToSchema)]
pub struct AttemptRow {
    #[serde(rename = "id")]
    pub attempt_id: String,
    pub attempt_number: i32,
    pub attempted_at: DateTime<Utc>,
    /// The URL the request went to, with a password and the values of query parameters named
    /// like credentials (`token`, `api_key`, …) shown as `[redacted]`.
    pub url: String,
    pub outcome: String,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub replay: Option<bool>,
    /// The headers sent, in order, with the values of credentials (`authorization`, cookies,
    /// names with `auth`, `token`, `secret`, `password`, `api-key`, …) shown as `[redacted]`;
    /// empty when no request was sent.
    #[serde(serialize_with = "header_objects")]
    #[schema(value_type = Vec<HttpHeader>)]
    pub request_headers: Option<Vec<(String, String)>>,
    /// The headers answered, in order, credentials `[redacted]`, names and values together at
    /// most 4 KiB; empty without an answer.
    #[serde(serialize_with = "header_objects")]
    #[schema(value_type = Vec<HttpHeader>)]
    pub response_headers: Option<Vec<(String, String)>>,
    /// Whether the answer had more headers than `response_headers` holds (the rest, from the
    /// first that did not fit in 4 KiB, was dropped).
    #[serde(serialize_with = "false_when_unknown")]
    #[schema(value_type = bool)]
    pub response_headers_truncated: Option<bool>,
}

/// A delivery in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, DeserializeRow, ToSchema)]
pub struct DeliverySummary {
    #[serde(rename = "id")]
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    /// How many attempts were made (`attempts` is the list of them where one is shown).
    #[serde(rename = "attempt_count")]
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: DateTime<Utc>,
    pub last_response_status: Option<i32>,
}

/// An attempt in a webhook's log.
#[derive(Debug, Clone, PartialEq, Serialize, DeserializeRow, ToSchema)]
pub struct WebhookAttempt {
    #[serde(rename = "id")]
    pub attempt_id: String,
    pub attempted_at: DateTime<Utc>,
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempt_number: i32,
    /// The URL the request went to, with a password and the values of query parameters named
    /// like credentials (`token`, `api_key`, …) shown as `[redacted]`.
    pub url: String,
    pub outcome: String,
    pub response_status: Option<i32>,
    pub error_class: Option<String>,
    pub duration_ms: i64,
    /// When the next attempt was due after this failure; absent when none was (or the attempt
    /// predates its recording here).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The headers sent, in order, with the values of credentials (`authorization`, cookies,
    /// names with `auth`, `token`, `secret`, `password`, `api-key`, …) shown as `[redacted]`;
    /// empty when no request was sent.
    #[serde(serialize_with = "header_objects")]
    #[schema(value_type = Vec<HttpHeader>)]
    pub request_headers: Option<Vec<(String, String)>>,
    /// The headers answered, in order, credentials `[redacted]`, names and values together at
    /// most 4 KiB; empty without an answer.
    #[serde(serialize_with = "header_objects")]
    #[schema(value_type = Vec<HttpHeader>)]
    pub response_headers: Option<Vec<(String, String)>>,
    /// Whether the answer had more headers than `response_headers` holds (the rest, from the
    /// first that did not fit in 4 KiB, was dropped).
    #[serde(serialize_with = "false_when_unknown")]
    #[schema(value_type = bool)]
    pub response_headers_truncated: Option<bool>,
}

/// What a webhook's statistics need of one attempt.
#[derive(Debug, Clone, PartialEq, DeserializeRow)]
pub struct AttemptTally {
    pub attempted_at: DateTime<Utc>,
    pub outcome: String,
    pub duration_ms: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A delivery's progress, as its partition's static columns hold it: what a listing row written
/// at the delivery's last change of state is refreshed with while it is `retrying`.
#[derive(Debug, Clone, PartialEq, DeserializeRow)]
pub(crate) struct DeliveryProgress {
    attempts: i32,
    last_attempt_at: DateTime<Utc>,
    last_response_status: Option<i32>,
}

/// A listed delivery that may be behind its partition's static columns.
pub(crate) trait Listed {
    /// The delivery's id while it is `retrying` (its listing rows are then left as they were at
    /// its first failure); `None` when the row is up to date.
    fn retrying(&self) -> Option<&str>;
    fn refresh(&mut self, progress: DeliveryProgress);
}

impl Listed for DeliverySummary {
    fn retrying(&self) -> Option<&str> {
        (self.status == "retrying").then_some(self.delivery_id.as_str())
    }

    fn refresh(&mut self, progress: DeliveryProgress) {
        if progress.attempts >= self.attempts {
            self.attempts = progress.attempts;
            self.last_attempt_at = progress.last_attempt_at;
            self.last_response_status = progress.last_response_status;
        }
    }
}

impl Listed for EventDelivery {
    fn retrying(&self) -> Option<&str> {
        (self.status == "retrying").then_some(self.delivery_id.as_str())
    }

    fn refresh(&mut self, progress: DeliveryProgress) {
        if progress.attempts >= self.attempts {
            self.attempts = progress.attempts;
            self.last_attempt_at = progress.last_attempt_at;
        }
    }
}

/// An accepted event and its payload.
#[derive(Debug, Clone, PartialEq, Serialize, DeserializeRow, ToSchema)]
pub struct StoredEvent {
    #[serde(rename = "id")]
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(rename = "timestamp")]
    pub occurred_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
    /// The payload as published (JSON text).
    #[serde(skip)]
    pub data: String,
}

/// One delivery of an event.
#[derive(Debug, Clone, PartialEq, Serialize, DeserializeRow, ToSchema)]
pub struct EventDelivery {
    pub webhook_id: String,
    #[serde(rename = "id")]
    pub delivery_id: String,
    pub status: String,
    /// How many attempts were made (`attempts` is the list of them where one is shown).
    #[serde(rename = "attempt_count")]
    pub attempts: i32,
    pub last_attempt_at: DateTime<Utc>,
}

/// One page of a listing and where the next one starts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Which deliveries to list, newest first.
#[derive(Debug, Clone)]
pub struct DeliveryQuery {
    pub webhook_id: Option<String>,
    /// Deliveries in any of these states; every state when empty.
    pub statuses: Vec<String>,
    pub event_type: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}
