use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use std::ops::ControlFlow;

use chrono::NaiveDate;
use hookline_schemas::{AttemptRecord, EventRecord, HttpHeader};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::response::PagingState;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Row;
use scylla::{DeserializeRow, SerializeRow};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::cursor::Cursor;
use crate::recover::{applied, RecoverStatements};
use crate::schema::{is_valid_keyspace, migrations, ADDED_COLUMNS};
use crate::{CassandraArgs, StoreError};

#[derive(Debug, Clone, Copy)]
enum Direction {
    NewestFirst,
    OldestFirst,
}

/// The UTC days from `since` to `until`, in `direction`.
fn days_between(
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    direction: Direction,
) -> Vec<NaiveDate> {
    let mut days: Vec<NaiveDate> = since
        .date_naive()
        .iter_days()
        .take_while(|day| *day <= until.date_naive())
        .collect();
    if matches!(direction, Direction::NewestFirst) {
        days.reverse();
    }
    days
}

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

/// The columns both attempt tables hold.
#[derive(SerializeRow)]
struct AttemptColumns<'a> {
    tenant_id: &'a str,
    delivery_id: &'a str,
    webhook_id: &'a str,
    attempted_at: DateTime<Utc>,
    attempt_id: &'a str,
    attempt_number: i32,
    url: &'a str,
    outcome: &'a str,
    response_status: Option<i32>,
    error_class: Option<&'a str>,
    duration_ms: i64,
    next_attempt_at: Option<DateTime<Utc>>,
    request_headers: &'a [(&'a str, &'a str)],
    response_headers: &'a [(&'a str, &'a str)],
    response_headers_truncated: bool,
}

/// A row of `attempts_by_delivery`.
#[derive(SerializeRow)]
struct AttemptOfDelivery<'a> {
    #[scylla(flatten)]
    attempt: &'a AttemptColumns<'a>,
    response_body: Option<&'a str>,
    error: Option<&'a str>,
    replay: bool,
}

/// A row of `attempts_by_webhook`.
#[derive(SerializeRow)]
struct AttemptOfWebhook<'a> {
    #[scylla(flatten)]
    attempt: &'a AttemptColumns<'a>,
    day: String,
    event_id: &'a str,
    event_type: &'a str,
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
    insert_attempt: PreparedStatement,
    upsert_delivery: PreparedStatement,
    select_delivery: PreparedStatement,
    select_attempts: PreparedStatement,
    upsert_delivery_by_webhook: PreparedStatement,
    upsert_delivery_by_tenant: PreparedStatement,
    upsert_delivery_by_event: PreparedStatement,
    insert_attempt_by_webhook: PreparedStatement,
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

/// The UTC day a timestamp falls in, as partitions name it.
pub(crate) fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Adds the columns of `ADDED_COLUMNS` that a table lacks. Cassandra refuses to add a column
/// twice, so each is looked up first; when another instance added it in between, its `ALTER`
/// fails and the column is there, which is all that matters.
async fn add_missing_columns(session: &Session, keyspace: &str) -> Result<(), StoreError> {
    let existing = |table: &'static str| async move {
        let rows = session
            .query_unpaged(
                "SELECT column_name FROM system_schema.columns \
                 WHERE keyspace_name = ? AND table_name = ?",
                (keyspace, table),
            )
            .await?
            .into_rows_result()?;
        let names = rows
            .rows::<(String,)>()?
            .map(|row| row.map(|(name,)| name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, StoreError>(names)
    };
    for (table, column, cql_type) in ADDED_COLUMNS {
        if existing(table).await?.iter().any(|name| name == column) {
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
            if !existing(table).await?.iter().any(|name| name == column) {
                return Err(err.into());
            }
        }
    }
    Ok(())
}

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
        add_missing_columns(&session, keyspace).await?;
        session.await_schema_agreement().await?;

        let insert_attempt = session
            .prepare(format!(
                "INSERT INTO {keyspace}.attempts_by_delivery (tenant_id, delivery_id, attempted_at, \
                 attempt_id, attempt_number, webhook_id, url, outcome, response_status, \
                 response_body, error_class, error, duration_ms, next_attempt_at, replay, \
                 request_headers, response_headers, response_headers_truncated) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?;
        let upsert_delivery = session
            .prepare(format!(
                "INSERT INTO {keyspace}.deliveries (tenant_id, delivery_id, webhook_id, event_id, \
                 event_type, status, attempts, last_attempt_at, last_response_status) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?;
        let select_delivery = session
            .prepare(format!(
                "SELECT delivery_id, webhook_id, event_id, event_type, status, attempts, \
                 last_attempt_at, last_response_status FROM {keyspace}.deliveries \
                 WHERE tenant_id = ? AND delivery_id = ?"
            ))
            .await?;
        let select_attempts = session
            .prepare(format!(
                "SELECT attempt_id, attempt_number, attempted_at, url, outcome, response_status, \
                 response_body, error_class, error, duration_ms, next_attempt_at, replay, \
                 request_headers, response_headers, response_headers_truncated \
                 FROM {keyspace}.attempts_by_delivery \
                 WHERE tenant_id = ? AND delivery_id = ?"
            ))
            .await?;
        let prepare = |text: String| {
            let session = &session;
            async move { session.prepare(text).await }
        };
        let summary =
            "delivery_id, webhook_id, event_id, event_type, status, attempts, created_at, \
                       last_attempt_at, last_response_status";
        Ok(Self {
            recover: RecoverStatements::prepare(&session, keyspace).await?,
            upsert_delivery_by_webhook: prepare(format!(
                "INSERT INTO {keyspace}.deliveries_by_webhook (tenant_id, webhook_id, day, created_at, \
                 delivery_id, event_id, event_type, status, attempts, last_attempt_at, \
                 last_response_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            upsert_delivery_by_tenant: prepare(format!(
                "INSERT INTO {keyspace}.deliveries_by_tenant (tenant_id, day, created_at, delivery_id, \
                 webhook_id, event_id, event_type, status, attempts, last_attempt_at, \
                 last_response_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            upsert_delivery_by_event: prepare(format!(
                "INSERT INTO {keyspace}.deliveries_by_event (tenant_id, event_id, webhook_id, \
                 delivery_id, status, attempts, last_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 USING TIMESTAMP ?"
            ))
            .await?,
            insert_attempt_by_webhook: prepare(format!(
                "INSERT INTO {keyspace}.attempts_by_webhook (tenant_id, webhook_id, day, attempted_at, \
                 attempt_id, delivery_id, event_id, event_type, attempt_number, url, outcome, \
                 response_status, error_class, duration_ms, next_attempt_at, request_headers, \
                 response_headers, response_headers_truncated) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
                "SELECT {summary} FROM {keyspace}.deliveries_by_webhook \
                 WHERE tenant_id = ? AND webhook_id = ? AND day = ? AND created_at >= ? AND created_at <= ?"
            ))
            .await?,
            select_deliveries_by_tenant: prepare(format!(
                "SELECT {summary} FROM {keyspace}.deliveries_by_tenant \
                 WHERE tenant_id = ? AND day = ? AND created_at >= ? AND created_at <= ?"
            ))
            .await?,
            select_attempts_by_webhook: prepare(format!(
                "SELECT attempt_id, attempted_at, delivery_id, event_id, event_type, attempt_number, \
                 url, outcome, response_status, error_class, duration_ms, next_attempt_at, \
                 request_headers, response_headers, response_headers_truncated \
                 FROM {keyspace}.attempts_by_webhook WHERE tenant_id = ? AND webhook_id = ? AND day = ? \
                 AND attempted_at >= ? AND attempted_at <= ?"
            ))
            .await?,
            select_attempt_tallies_by_webhook: prepare(format!(
                "SELECT attempted_at, outcome, duration_ms, next_attempt_at \
                 FROM {keyspace}.attempts_by_webhook WHERE tenant_id = ? AND webhook_id = ? AND day = ? \
                 AND attempted_at >= ? AND attempted_at <= ?"
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
            insert_attempt,
            upsert_delivery,
            select_delivery,
            select_attempts,
        })
    }

    /// Records one attempt and the delivery state it leads to. Idempotent.
    ///
    /// The six rows go in one unlogged batch: one request instead of six (measured on Cassandra
    /// 5: 40 % more attempts per second, less CPU per attempt). Unlogged, so no batch log: a
    /// write that fails is retried whole, and every row is idempotent.
    pub async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), StoreError> {
        let attempt_number = i32::try_from(attempt.attempt_number).unwrap_or(i32::MAX);
        let response_status = attempt.response_status.map(i32::from);
        let duration_ms = i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX);
        // Last write wins by attempt time, whatever order the records are replayed in.
        let write_time = attempt.attempted_at.timestamp_micros();
        let status = attempt.delivery_status();
        let created_at = attempt.event_accepted_at.unwrap_or(attempt.attempted_at);
        let created_day = day_of(created_at);
        let (tenant, delivery, webhook) = (
            &attempt.tenant_id,
            &attempt.delivery_id,
            &attempt.webhook_id,
        );
        let (event, event_type, attempted_at) =
            (&attempt.event_id, &attempt.event_type, attempt.attempted_at);
        let mut batch = Batch::new(BatchType::Unlogged);
        for statement in [
            &self.insert_attempt,
            &self.upsert_delivery,
            &self.upsert_delivery_by_webhook,
            &self.upsert_delivery_by_tenant,
            &self.upsert_delivery_by_event,
            &self.insert_attempt_by_webhook,
        ] {
            batch.append_statement(statement.clone());
        }
        let (request_headers, response_headers) = (
            header_pairs(&attempt.request_headers),
            header_pairs(&attempt.response_headers),
        );
        let columns = AttemptColumns {
            tenant_id: tenant,
            delivery_id: delivery,
            webhook_id: webhook,
            attempted_at,
            attempt_id: &attempt.attempt_id,
            attempt_number,
            url: &attempt.url,
            outcome: attempt.outcome.as_str(),
            response_status,
            error_class: attempt.error_class.map(|class| class.as_str()),
            duration_ms,
            next_attempt_at: attempt.next_attempt_at,
            request_headers: &request_headers,
            response_headers: &response_headers,
            response_headers_truncated: attempt.response_headers_truncated,
        };
        let values = (
            AttemptOfDelivery {
                attempt: &columns,
                response_body: attempt.response_body.as_deref(),
                error: attempt.error.as_deref(),
                replay: attempt.replay,
            },
            (
                tenant,
                delivery,
                webhook,
                event,
                event_type,
                status,
                attempt_number,
                attempted_at,
                response_status,
                write_time,
            ),
            (
                tenant,
                webhook,
                &created_day,
                created_at,
                delivery,
                event,
                event_type,
                status,
                attempt_number,
                attempted_at,
                response_status,
                write_time,
            ),
            (
                tenant,
                &created_day,
                created_at,
                delivery,
                webhook,
                event,
                event_type,
                status,
                attempt_number,
                attempted_at,
                response_status,
                write_time,
            ),
            (
                tenant,
                event,
                webhook,
                delivery,
                status,
                attempt_number,
                attempted_at,
                write_time,
            ),
            AttemptOfWebhook {
                attempt: &columns,
                day: day_of(attempted_at),
                event_id: event,
                event_type,
            },
        );
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
            day_of(event.accepted_at),
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
        match &query.webhook_id {
            Some(webhook_id) => {
                self.scan_days(
                    Direction::NewestFirst,
                    since,
                    until,
                    limit,
                    cursor,
                    keep,
                    |day| {
                        (
                            &self.select_deliveries_by_webhook,
                            (tenant_id.to_owned(), webhook_id.clone(), day, since, until),
                        )
                    },
                )
                .await
            }
            None => {
                self.scan_days(
                    Direction::NewestFirst,
                    since,
                    until,
                    limit,
                    cursor,
                    keep,
                    |day| {
                        (
                            &self.select_deliveries_by_tenant,
                            (tenant_id.to_owned(), day, since, until),
                        )
                    },
                )
                .await
            }
        }
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
        self.scan_days(
            Direction::NewestFirst,
            since,
            until,
            limit,
            cursor,
            |_: &WebhookAttempt| true,
            |day| {
                (
                    &self.select_attempts_by_webhook,
                    (
                        tenant_id.to_owned(),
                        webhook_id.to_owned(),
                        day,
                        since,
                        until,
                    ),
                )
            },
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
        self.scan_days(
            Direction::NewestFirst,
            since,
            until,
            limit,
            cursor,
            |_: &AttemptTally| true,
            |day| {
                (
                    &self.select_attempt_tallies_by_webhook,
                    (
                        tenant_id.to_owned(),
                        webhook_id.to_owned(),
                        day,
                        since,
                        until,
                    ),
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
        self.scan_days(
            Direction::OldestFirst,
            since,
            until,
            limit,
            cursor,
            keep,
            |day| {
                (
                    &self.select_events_by_tenant,
                    (tenant_id.to_owned(), day, since, until),
                )
            },
        )
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
        let deliveries = self
            .session
            .execute_unpaged(&self.select_event_deliveries, (tenant_id, event_id))
            .await?
            .into_rows_result()?
            .rows::<EventDelivery>()?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((event, deliveries)))
    }

    /// Reads day partitions from `since` to `until` in `direction`, one page at a time, keeping
    /// the rows `keep` accepts, until `limit` rows are found. Each page asks for no more rows than
    /// still needed, so every row read is either returned or filtered out: the cursor never skips
    /// one.
    #[allow(clippy::too_many_arguments)]
    async fn scan_days<'a, R, V>(
        &'a self,
        direction: Direction,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
        keep: impl Fn(&R) -> bool,
        statement: impl Fn(String) -> (&'a PreparedStatement, V),
    ) -> Result<Page<R>, StoreError>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
        V: scylla::serialize::row::SerializeRow,
    {
        let days = days_between(since, until, direction);
        let (mut index, mut paging) = match cursor {
            None => (0, PagingState::start()),
            Some(text) => {
                let cursor = Cursor::decode(text).map_err(StoreError::Cursor)?;
                let Some(index) = days.iter().position(|day| *day == cursor.day) else {
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
        while index < days.len() && data.len() < limit && pages_left > 0 {
            pages_left -= 1;
            let (prepared, values) = statement(days[index].format("%Y-%m-%d").to_string());
            let mut prepared = prepared.clone();
            prepared.set_page_size(i32::try_from(limit - data.len()).unwrap_or(i32::MAX));
            let (result, response) = self
                .session
                .execute_single_page(&prepared, values, paging)
                .await?;
            for row in result.into_rows_result()?.rows::<R>()? {
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
                }
            }
        }
        let next_cursor = (index < days.len()).then(|| {
            Cursor {
                day: days[index],
                paging_state: paging.as_bytes_slice().map(|bytes| bytes.to_vec()),
            }
            .encode()
        });
        Ok(Page { data, next_cursor })
    }

    /// A delivery of `tenant_id` and its attempts, oldest first; `None` when it does not exist
    /// or belongs to another tenant.
    pub async fn delivery(
        &self,
        tenant_id: &str,
        delivery_id: &str,
    ) -> Result<Option<(DeliveryRow, Vec<AttemptRow>)>, StoreError> {
        let delivery = self
            .session
            .execute_unpaged(&self.select_delivery, (tenant_id, delivery_id))
            .await?
            .into_rows_result()?
            .maybe_first_row::<DeliveryRow>()?;
        let Some(delivery) = delivery else {
            return Ok(None);
        };
        // One delivery has at most a few dozen attempts: a single page holds them.
        let attempts = self
            .session
            .execute_unpaged(&self.select_attempts, (tenant_id, delivery_id))
            .await?
            .into_rows_result()?
            .rows::<AttemptRow>()?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((delivery, attempts)))
    }
}
