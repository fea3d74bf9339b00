use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use std::ops::ControlFlow;

use hookline_schemas::{AttemptRecord, EventRecord, HttpHeader};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::response::PagingState;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Row;
use scylla::{DeserializeRow, SerializeRow};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::cursor::{Bucket, Cursor, Direction};
use crate::recover::{applied, RecoverStatements};
use crate::schema::{is_valid_keyspace, migrations, ADDED_COLUMNS};
use crate::{CassandraArgs, StoreError};

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

/// Headers as stored: `(name, value)` tuples.
fn header_pairs(headers: &[HttpHeader]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|header| (header.name.as_str(), header.value.as_str()))
        .collect()
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
struct DeliveryAttempt<'a> {
    #[scylla(flatten)]
    state: &'a DeliveryState<'a>,
    #[scylla(flatten)]
    attempt: &'a AttemptColumns<'a>,
    response_body: Option<&'a str>,
    error: Option<&'a str>,
    replay: bool,
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

/// A delivery's progress, as its partition's static columns hold it: what a listing row written
/// at the delivery's last change of state is refreshed with while it is `retrying`.
#[derive(Debug, Clone, PartialEq, DeserializeRow)]
struct DeliveryProgress {
    attempts: i32,
    last_attempt_at: DateTime<Utc>,
    last_response_status: Option<i32>,
}

/// A listed delivery that may be behind its partition's static columns.
trait Listed {
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

/// The ledger's repository: one session, statements prepared once.
#[derive(Clone)]
pub struct Ledger {
    pub(crate) session: Arc<Session>,
    pub(crate) keyspace: String,
    insert_delivery_attempt: PreparedStatement,
    insert_webhook_attempt: PreparedStatement,
    upsert_webhook_delivery: PreparedStatement,
    upsert_tenant_delivery: PreparedStatement,
    upsert_delivery_by_event: PreparedStatement,
    select_delivery: PreparedStatement,
    select_progress: PreparedStatement,
    select_attempts: PreparedStatement,
    insert_event_by_tenant: PreparedStatement,
    insert_event_by_id: PreparedStatement,
    insert_first_event_by_id: PreparedStatement,
    select_deliveries_by_webhook: PreparedStatement,
    select_deliveries_by_tenant: PreparedStatement,
    select_attempts_by_webhook: PreparedStatement,
    select_attempt_tallies_by_webhook: PreparedStatement,
    select_events_by_tenant: PreparedStatement,
    select_event: PreparedStatement,
    select_event_deliveries: PreparedStatement,
    pub(crate) recover: RecoverStatements,
}

/// The delivery's state after `attempt`.
fn delivery_state(attempt: &AttemptRecord) -> DeliveryState<'_> {
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

fn attempt_columns<'a>(
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
struct AttemptRows<'a> {
    in_delivery: DeliveryAttempt<'a>,
    in_webhook_log: WebhookLogAttempt<'a>,
    by_webhook: ListedDelivery<'a>,
    by_tenant: ListedDelivery<'a>,
    by_event: (
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
    fn of(
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

/// The names of the columns of a table, empty when it does not exist.
pub(crate) async fn columns_of(
    session: &Session,
    keyspace: &str,
    table: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns \
             WHERE keyspace_name = ? AND table_name = ?",
            (keyspace, table),
        )
        .await?
        .into_rows_result()?;
    Ok(rows
        .rows::<(String,)>()?
        .map(|row| row.map(|(name,)| name))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Adds the `columns` that a table lacks (`(table, column, CQL type)`); tables that do not exist
/// are left alone. Cassandra refuses to add a column twice, so each is looked up first; when
/// another instance added it in between, its `ALTER` fails and the column is there, which is
/// all that matters.
pub(crate) async fn add_missing_columns(
    session: &Session,
    keyspace: &str,
    columns: &[(&str, &str, &str)],
) -> Result<(), StoreError> {
    for (table, column, cql_type) in columns {
        let existing = columns_of(session, keyspace, table).await?;
        if existing.is_empty() || existing.iter().any(|name| name == column) {
            continue;
        }
        let added = session
            .query_unpaged(
                format!("ALTER TABLE {keyspace}.{table} ADD {column} {cql_type}"),
                &[],
            )
            .await;
        session.await_schema_agreement().await?;
        if let Err(err) = added {
            let existing = columns_of(session, keyspace, table).await?;
            if !existing.iter().any(|name| name == column) {
                return Err(err.into());
            }
        }
    }
    Ok(())
}

/// The `kind` of a webhook's attempt in `webhook_log`.
pub(crate) const ATTEMPT: &str = "attempt";
/// The `kind` of a webhook's delivery in `webhook_log`.
pub(crate) const DELIVERY: &str = "delivery";

/// The columns of a delivery's state, for the listings written at its changes of state.
pub(crate) const DELIVERY_STATE: &str = "webhook_id, event_id, event_type, status, attempts, \
                              last_attempt_at, last_response_status";
/// Their bind markers, by name.
pub(crate) const DELIVERY_STATE_VALUES: &str =
    ":webhook_id, :event_id, :event_type, :status, :attempts, \
                                     :last_attempt_at, :last_response_status";
/// The columns an attempt's rows hold in both its delivery's and its webhook's partition.
pub(crate) const ATTEMPT_COLUMNS: &str =
    "attempt_number, url, outcome, response_status, error_class, \
                               duration_ms, next_attempt_at, request_headers, response_headers, \
                               response_headers_truncated";
pub(crate) const ATTEMPT_VALUES: &str =
    ":attempt_number, :url, :outcome, :response_status, :error_class, \
                              :duration_ms, :next_attempt_at, :request_headers, :response_headers, \
                              :response_headers_truncated";

impl Ledger {
    /// Connects, creates the keyspace and tables when missing, and prepares every statement.
    pub async fn connect(args: &CassandraArgs) -> Result<Self, StoreError> {
        let keyspace = &args.keyspace;
        if !is_valid_keyspace(keyspace) {
            return Err(StoreError::InvalidKeyspace(keyspace.clone()));
        }
        let session = SessionBuilder::new()
            .known_nodes(args.node_list())
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await?;
        for statement in migrations(keyspace, args.replication_factor, args.retention_days) {
            session.query_unpaged(statement, &[]).await?;
        }
        add_missing_columns(&session, keyspace, &ADDED_COLUMNS).await?;
        session.await_schema_agreement().await?;

        let prepare = |text: String| {
            let session = &session;
            async move { session.prepare(text).await }
        };
        let summary =
            "delivery_id, webhook_id, event_id, event_type, status, attempts, created_at, \
             last_attempt_at, last_response_status";
        let webhook_log = format!(
            "FROM {keyspace}.webhook_log WHERE tenant_id = ? AND webhook_id = ? AND day = ? \
             AND kind = ? AND at >= ? AND at <= ?"
        );
        Ok(Self {
            recover: RecoverStatements::prepare(&session, keyspace).await?,
            insert_delivery_attempt: prepare(format!(
                "INSERT INTO {keyspace}.delivery_attempts (tenant_id, delivery_id, created_at, \
                 {DELIVERY_STATE}, attempted_at, attempt_id, {ATTEMPT_COLUMNS}, response_body, \
                 error, replay) VALUES (:tenant_id, :delivery_id, :created_at, \
                 {DELIVERY_STATE_VALUES}, :attempted_at, :attempt_id, {ATTEMPT_VALUES}, \
                 :response_body, :error, :replay) USING TIMESTAMP :write_time"
            ))
            .await?,
            insert_webhook_attempt: prepare(format!(
                "INSERT INTO {keyspace}.webhook_log (tenant_id, webhook_id, day, kind, at, id, \
                 delivery_id, event_id, event_type, {ATTEMPT_COLUMNS}) VALUES (:tenant_id, \
                 :webhook_id, :bucket, '{ATTEMPT}', :attempted_at, :attempt_id, :delivery_id, \
                 :event_id, :event_type, {ATTEMPT_VALUES}) USING TIMESTAMP :write_time"
            ))
            .await?,
            upsert_webhook_delivery: prepare(format!(
                "INSERT INTO {keyspace}.webhook_log (tenant_id, webhook_id, day, kind, at, id, \
                 event_id, event_type, status, attempts, last_attempt_at, last_response_status) \
                 VALUES (:tenant_id, :webhook_id, :bucket, '{DELIVERY}', :created_at, \
                 :delivery_id, :event_id, :event_type, :status, :attempts, :last_attempt_at, \
                 :last_response_status) USING TIMESTAMP :write_time"
            ))
            .await?,
            upsert_tenant_delivery: prepare(format!(
                "INSERT INTO {keyspace}.deliveries_by_tenant_hour (tenant_id, hour, created_at, \
                 delivery_id, {DELIVERY_STATE}) VALUES (:tenant_id, :bucket, :created_at, \
                 :delivery_id, {DELIVERY_STATE_VALUES}) USING TIMESTAMP :write_time"
            ))
            .await?,
            upsert_delivery_by_event: prepare(format!(
                "INSERT INTO {keyspace}.deliveries_by_event (tenant_id, event_id, webhook_id, \
                 delivery_id, status, attempts, last_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 USING TIMESTAMP ?"
            ))
            .await?,
            select_delivery: prepare(format!(
                "SELECT delivery_id, webhook_id, event_id, event_type, status, attempts, \
                 last_attempt_at, last_response_status FROM {keyspace}.delivery_attempts \
                 WHERE tenant_id = ? AND delivery_id = ? LIMIT 1"
            ))
            .await?,
            select_progress: prepare(format!(
                "SELECT attempts, last_attempt_at, last_response_status \
                 FROM {keyspace}.delivery_attempts WHERE tenant_id = ? AND delivery_id = ? LIMIT 1"
            ))
            .await?,
            select_attempts: prepare(format!(
                "SELECT attempt_id, attempt_number, attempted_at, url, outcome, response_status, \
                 response_body, error_class, error, duration_ms, next_attempt_at, replay, \
                 request_headers, response_headers, response_headers_truncated \
                 FROM {keyspace}.delivery_attempts WHERE tenant_id = ? AND delivery_id = ?"
            ))
            .await?,
            insert_event_by_tenant: prepare(format!(
                "INSERT INTO {keyspace}.events_by_tenant (tenant_id, day, accepted_at, event_id, \
                 event_type, occurred_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_event_by_id: prepare(format!(
                "INSERT INTO {keyspace}.events_by_id (tenant_id, event_id, event_type, occurred_at, \
                 accepted_at, data) VALUES (?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_first_event_by_id: prepare(format!(
                "INSERT INTO {keyspace}.events_by_id (tenant_id, event_id, event_type, occurred_at, \
                 accepted_at, data) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            ))
            .await?,
            select_deliveries_by_webhook: prepare(format!(
                "SELECT id AS delivery_id, webhook_id, event_id, event_type, status, attempts, \
                 at AS created_at, last_attempt_at, last_response_status {webhook_log}"
            ))
            .await?,
            select_deliveries_by_tenant: prepare(format!(
                "SELECT {summary} FROM {keyspace}.deliveries_by_tenant_hour \
                 WHERE tenant_id = ? AND hour = ? AND created_at >= ? AND created_at <= ?"
            ))
            .await?,
            select_attempts_by_webhook: prepare(format!(
                "SELECT id AS attempt_id, at AS attempted_at, delivery_id, event_id, event_type, \
                 {ATTEMPT_COLUMNS} {webhook_log}"
            ))
            .await?,
            select_attempt_tallies_by_webhook: prepare(format!(
                "SELECT at AS attempted_at, outcome, duration_ms, next_attempt_at {webhook_log}"
            ))
            .await?,
            select_events_by_tenant: prepare(format!(
                "SELECT event_id, event_type, occurred_at, accepted_at, data \
                 FROM {keyspace}.events_by_tenant WHERE tenant_id = ? AND day = ? \
                 AND accepted_at >= ? AND accepted_at <= ?"
            ))
            .await?,
            select_event: prepare(format!(
                "SELECT event_id, event_type, occurred_at, accepted_at, data \
                 FROM {keyspace}.events_by_id WHERE tenant_id = ? AND event_id = ?"
            ))
            .await?,
            select_event_deliveries: prepare(format!(
                "SELECT webhook_id, delivery_id, status, attempts, last_attempt_at \
                 FROM {keyspace}.deliveries_by_event WHERE tenant_id = ? AND event_id = ?"
            ))
            .await?,
            session: Arc::new(session),
            keyspace: keyspace.clone(),
        })
    }

    /// Records one attempt and the delivery state it leads to. Idempotent.
    pub async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), StoreError> {
        self.record_attempts(&[attempt]).await
    }

    /// Records attempts and the delivery states they lead to, in one request. Idempotent.
    ///
    /// An attempt is a row in its delivery's partition (whose static columns hold the
    /// delivery's state) and one in its webhook's log. The delivery's rows in the listings (by
    /// webhook, tenant and event) are written only when its state may change
    /// (`AttemptRecord::changes_delivery_state`): a retried delivery's later failures leave
    /// them as they were, and reads refresh a `retrying` row from the static columns. Every
    /// row is written at its attempt's time, so the latest attempt wins whatever order the
    /// records are replayed in. The rows go in one unlogged batch: one request, no batch log
    /// (the database's work per request is most of its work per attempt); a write that fails
    /// is retried whole, and every row is idempotent.
    pub async fn record_attempts(&self, attempts: &[&AttemptRecord]) -> Result<(), StoreError> {
        let headers: Vec<_> = attempts
            .iter()
            .map(|attempt| {
                (
                    header_pairs(&attempt.request_headers),
                    header_pairs(&attempt.response_headers),
                )
            })
            .collect();
        let states: Vec<_> = attempts
            .iter()
            .map(|attempt| delivery_state(attempt))
            .collect();
        let columns: Vec<_> = attempts
            .iter()
            .zip(&headers)
            .map(|(attempt, (request, response))| attempt_columns(attempt, request, response))
            .collect();
        let rows: Vec<_> = attempts
            .iter()
            .zip(states.iter().zip(&columns))
            .map(|(attempt, (state, columns))| AttemptRows::of(attempt, state, columns))
            .collect();
        let mut batch = Batch::new(BatchType::Unlogged);
        let mut values: Vec<&(dyn SerializeRow + Sync)> = Vec::new();
        for (attempt, rows) in attempts.iter().zip(&rows) {
            values.extend([
                &rows.in_delivery as &(dyn SerializeRow + Sync),
                &rows.in_webhook_log,
            ]);
            batch.append_statement(self.insert_delivery_attempt.clone());
            batch.append_statement(self.insert_webhook_attempt.clone());
            if attempt.changes_delivery_state() {
                values.extend([
                    &rows.by_webhook as &(dyn SerializeRow + Sync),
                    &rows.by_tenant,
                    &rows.by_event,
                ]);
                batch.append_statement(self.upsert_webhook_delivery.clone());
                batch.append_statement(self.upsert_tenant_delivery.clone());
                batch.append_statement(self.upsert_delivery_by_event.clone());
            }
        }
        self.session.batch(&batch, values).await?;
        Ok(())
    }

    /// Keeps an accepted event and its payload. Idempotent. Of the events sharing a
    /// producer-chosen id (a producer's retries), the ledger keeps the one it writes first, and
    /// lists only that one.
    pub async fn record_event(&self, event: &EventRecord) -> Result<(), StoreError> {
        let data = event.data.get();
        let by_id = (
            &event.tenant_id,
            &event.id,
            &event.event_type,
            event.timestamp,
            event.accepted_at,
            data,
        );
        let by_tenant = (
            &event.tenant_id,
            Bucket::Day.of(event.accepted_at),
            event.accepted_at,
            &event.id,
            &event.event_type,
            event.timestamp,
            data,
        );
        if !event.id_chosen_by_producer {
            futures::try_join!(
                self.session
                    .execute_unpaged(&self.insert_event_by_tenant, by_tenant),
                self.session
                    .execute_unpaged(&self.insert_event_by_id, by_id),
            )?;
            return Ok(());
        }
        let first = self
            .session
            .execute_unpaged(&self.insert_first_event_by_id, by_id)
            .await?
            .into_rows_result()?
            .maybe_first_row::<Row>()?;
        if !applied(first) {
            // Written before: by this event (a write repeated after a crash) or by a retry of it.
            let kept = self.stored_event(&event.tenant_id, &event.id).await?;
            let same = kept.is_some_and(|kept| {
                kept.accepted_at.timestamp_millis() == event.accepted_at.timestamp_millis()
            });
            if !same {
                return Ok(());
            }
        }
        self.session
            .execute_unpaged(&self.insert_event_by_tenant, by_tenant)
            .await?;
        Ok(())
    }

    /// Deliveries of a tenant (or of one of its webhooks), newest first.
    pub async fn list_deliveries(
        &self,
        tenant_id: &str,
        query: &DeliveryQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<DeliverySummary>, StoreError> {
        let keep = |row: &DeliverySummary| {
            (query.statuses.is_empty() || query.statuses.contains(&row.status))
                && query
                    .event_type
                    .as_ref()
                    .is_none_or(|t| *t == row.event_type)
        };
        let (since, until) = (query.since, query.until);
        let mut page = match &query.webhook_id {
            Some(webhook_id) => {
                let read = Scan {
                    bucket: Bucket::Day,
                    direction: Direction::NewestFirst,
                    since,
                    until,
                    limit,
                };
                self.scan(read, cursor, keep, |day| {
                    (
                        &self.select_deliveries_by_webhook,
                        (tenant_id, webhook_id, day, DELIVERY, since, until),
                    )
                })
                .await?
            }
            None => {
                let read = Scan {
                    bucket: Bucket::Hour,
                    direction: Direction::NewestFirst,
                    since,
                    until,
                    limit,
                };
                self.scan(read, cursor, keep, |hour| {
                    (
                        &self.select_deliveries_by_tenant,
                        (tenant_id, hour, since, until),
                    )
                })
                .await?
            }
        };
        self.refresh_retrying(tenant_id, &mut page.data).await?;
        Ok(page)
    }

    /// Brings the rows of `retrying` deliveries up to date with their partitions' static
    /// columns (their listing rows are written at changes of state, not at every attempt).
    async fn refresh_retrying(
        &self,
        tenant_id: &str,
        rows: &mut [impl Listed],
    ) -> Result<(), StoreError> {
        let reads = rows.iter().map(|row| async move {
            let Some(delivery_id) = row.retrying() else {
                return Ok(None);
            };
            Ok::<_, StoreError>(
                self.session
                    .execute_unpaged(&self.select_progress, (tenant_id, delivery_id))
                    .await?
                    .into_rows_result()?
                    .maybe_first_row::<DeliveryProgress>()?,
            )
        });
        let progress = futures::future::try_join_all(reads).await?;
        for (row, progress) in rows.iter_mut().zip(progress) {
            if let Some(progress) = progress {
                row.refresh(progress);
            }
        }
        Ok(())
    }

    /// A webhook's attempts, newest first.
    pub async fn webhook_attempts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<WebhookAttempt>, StoreError> {
        self.webhook_log(
            &self.select_attempts_by_webhook,
            (tenant_id, webhook_id),
            (since, until),
            limit,
            cursor,
        )
        .await
    }

    /// What the statistics need of a webhook's attempts, newest first (a page of at most
    /// `limit`; the headers are not read).
    pub async fn webhook_attempt_tallies(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AttemptTally>, StoreError> {
        self.webhook_log(
            &self.select_attempt_tallies_by_webhook,
            (tenant_id, webhook_id),
            (since, until),
            limit,
            cursor,
        )
        .await
    }

    /// A webhook's attempts read by `statement` from its log, newest first.
    async fn webhook_log<R>(
        &self,
        statement: &PreparedStatement,
        (tenant_id, webhook_id): (&str, &str),
        (since, until): (DateTime<Utc>, DateTime<Utc>),
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<R>, StoreError>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
    {
        let read = Scan {
            bucket: Bucket::Day,
            direction: Direction::NewestFirst,
            since,
            until,
            limit,
        };
        self.scan(
            read,
            cursor,
            |_: &R| true,
            |day| {
                (
                    statement,
                    (tenant_id, webhook_id, day, ATTEMPT, since, until),
                )
            },
        )
        .await
    }

    /// A tenant's events in acceptance order.
    pub async fn list_events(
        &self,
        tenant_id: &str,
        event_type: Option<&str>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<StoredEvent>, StoreError> {
        let keep = |row: &StoredEvent| event_type.is_none_or(|t| t == row.event_type);
        let read = Scan {
            bucket: Bucket::Day,
            direction: Direction::OldestFirst,
            since,
            until,
            limit,
        };
        self.scan(read, cursor, keep, |day| {
            (
                &self.select_events_by_tenant,
                (tenant_id, day, since, until),
            )
        })
        .await
    }

    /// One event and its payload.
    pub async fn stored_event(
        &self,
        tenant_id: &str,
        event_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self
            .session
            .execute_unpaged(&self.select_event, (tenant_id, event_id))
            .await?
            .into_rows_result()?
            .maybe_first_row::<StoredEvent>()?)
    }

    /// One event with its deliveries.
    pub async fn event(
        &self,
        tenant_id: &str,
        event_id: &str,
    ) -> Result<Option<(StoredEvent, Vec<EventDelivery>)>, StoreError> {
        let Some(event) = self.stored_event(tenant_id, event_id).await? else {
            return Ok(None);
        };
        let mut deliveries = self
            .session
            .execute_unpaged(&self.select_event_deliveries, (tenant_id, event_id))
            .await?
            .into_rows_result()?
            .rows::<EventDelivery>()?
            .collect::<Result<Vec<_>, _>>()?;
        self.refresh_retrying(tenant_id, &mut deliveries).await?;
        Ok(Some((event, deliveries)))
    }

    /// Reads the buckets of `read`'s window in its direction, one page at a time, keeping the
    /// rows `keep` accepts, until `read.limit` rows are found. Each page asks for no more rows
    /// than still needed, so every row read is either returned or filtered out: the cursor never
    /// skips one. Empty buckets are found by reading one row of several at once, so a sparse
    /// listing over a long window costs a few round trips, not one per bucket.
    async fn scan<'a, R, V>(
        &'a self,
        read: Scan,
        cursor: Option<&str>,
        keep: impl Fn(&R) -> bool,
        statement: impl Fn(String) -> (&'a PreparedStatement, V),
    ) -> Result<Page<R>, StoreError>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
        V: SerializeRow,
    {
        let buckets = read.bucket.between(read.since, read.until, read.direction);
        let (mut index, mut paging) = match cursor {
            None => (0, PagingState::start()),
            Some(text) => {
                let cursor = Cursor::decode(text, read.bucket).map_err(StoreError::Cursor)?;
                let Some(index) = buckets.iter().position(|key| *key == cursor.bucket) else {
                    return Ok(Page {
                        data: Vec::new(),
                        next_cursor: None,
                    });
                };
                let paging = cursor
                    .paging_state
                    .map_or_else(PagingState::start, PagingState::new_from_raw_bytes);
                (index, paging)
            }
        };
        let mut data = Vec::new();
        // Bounds the work of one request when a filter matches little.
        let mut pages_left = 50;
        while index < buckets.len() && data.len() < read.limit && pages_left > 0 {
            pages_left -= 1;
            let starts_bucket = paging.as_bytes_slice().is_none();
            let (prepared, values) = statement(buckets[index].clone());
            let mut prepared = prepared.clone();
            prepared.set_page_size(i32::try_from(read.limit - data.len()).unwrap_or(i32::MAX));
            let (result, response) = self
                .session
                .execute_single_page(&prepared, values, paging)
                .await?;
            let rows = result.into_rows_result()?;
            let empty = rows.rows_num() == 0;
            for row in rows.rows::<R>()? {
                let row = row?;
                if keep(&row) {
                    data.push(row);
                }
            }
            match response.into_paging_control_flow() {
                ControlFlow::Continue(next) => paging = next,
                ControlFlow::Break(()) => {
                    index += 1;
                    paging = PagingState::start();
                    if starts_bucket && empty {
                        index = self.next_filled(&buckets, index, &statement).await?;
                    }
                }
            }
        }
        if index < buckets.len() && paging.as_bytes_slice().is_none() {
            // Stopped between buckets: a cursor only where rows remain.
            index = self.next_filled(&buckets, index, &statement).await?;
        }
        let next_cursor = (index < buckets.len()).then(|| {
            Cursor {
                bucket: buckets[index].clone(),
                paging_state: paging.as_bytes_slice().map(|bytes| bytes.to_vec()),
            }
            .encode()
        });
        Ok(Page { data, next_cursor })
    }

    /// The first of `buckets` from `from` on in which `statement` reads a row (`buckets.len()`
    /// when none), looked for in growing groups read at once.
    async fn next_filled<'a, V: SerializeRow>(
        &'a self,
        buckets: &[String],
        from: usize,
        statement: &impl Fn(String) -> (&'a PreparedStatement, V),
    ) -> Result<usize, StoreError> {
        let (mut index, mut width) = (from, 1);
        while index < buckets.len() {
            let end = (index + width).min(buckets.len());
            let probes = buckets[index..end].iter().map(|key| {
                let (prepared, values) = statement(key.clone());
                let mut prepared = prepared.clone();
                prepared.set_page_size(1);
                async move {
                    let (result, response) = self
                        .session
                        .execute_single_page(&prepared, values, PagingState::start())
                        .await?;
                    let more = matches!(
                        response.into_paging_control_flow(),
                        ControlFlow::Continue(_)
                    );
                    Ok::<_, StoreError>(more || result.into_rows_result()?.rows_num() > 0)
                }
            });
            let filled = futures::future::try_join_all(probes).await?;
            if let Some(offset) = filled.iter().position(|filled| *filled) {
                return Ok(index + offset);
            }
            index = end;
            width = (width * 2).min(64);
        }
        Ok(buckets.len())
    }

    /// A delivery of `tenant_id` and its attempts, oldest first; `None` when it does not exist
    /// or belongs to another tenant.
    pub async fn delivery(
        &self,
        tenant_id: &str,
        delivery_id: &str,
    ) -> Result<Option<(DeliveryRow, Vec<AttemptRow>)>, StoreError> {
        // One delivery has at most a few dozen attempts: a single page holds them.
        let (delivery, attempts) = futures::try_join!(
            self.session
                .execute_unpaged(&self.select_delivery, (tenant_id, delivery_id)),
            self.session
                .execute_unpaged(&self.select_attempts, (tenant_id, delivery_id)),
        )?;
        let Some(delivery) = delivery
            .into_rows_result()?
            .maybe_first_row::<DeliveryRow>()?
        else {
            return Ok(None);
        };
        let attempts = attempts
            .into_rows_result()?
            .rows::<AttemptRow>()?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((delivery, attempts)))
    }
}

/// Which buckets a listing reads, in which order, and how many rows it returns.
#[derive(Debug, Clone, Copy)]
struct Scan {
    bucket: Bucket,
    direction: Direction,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
}
