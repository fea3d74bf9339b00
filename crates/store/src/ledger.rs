use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hookline_schemas::AttemptRecord;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use scylla::DeserializeRow;
use serde::Serialize;

use crate::schema::{is_valid_keyspace, migrations};
use crate::CassandraArgs;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid keyspace name `{0}`: letters, digits and `_`, starting with a letter")]
    InvalidKeyspace(String),
    #[error("could not connect to the ledger database")]
    Connect(#[from] scylla::errors::NewSessionError),
    #[error("could not prepare a ledger statement")]
    Prepare(#[from] scylla::errors::PrepareError),
    #[error("ledger query failed")]
    Execute(#[from] scylla::errors::ExecutionError),
    #[error("schema did not reach agreement")]
    SchemaAgreement(#[from] scylla::errors::SchemaAgreementError),
    #[error("unexpected ledger result")]
    Rows(#[from] scylla::response::query_result::IntoRowsResultError),
    #[error("unexpected ledger row")]
    Row(#[from] scylla::response::query_result::RowsError),
    #[error("unexpected ledger row")]
    FirstRow(#[from] scylla::response::query_result::MaybeFirstRowError),
    #[error("unreadable ledger row")]
    Deserialize(#[from] scylla::deserialize::DeserializationError),
}

impl StoreError {
    /// Whether retrying later may succeed (the database is unreachable or overloaded), as
    /// opposed to a bug or a bad configuration.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Execute(_) | StoreError::Connect(_))
    }
}

/// A delivery's latest state, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, DeserializeRow)]
pub struct DeliveryRow {
    #[serde(rename = "id")]
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub last_attempt_at: DateTime<Utc>,
    pub last_response_status: Option<i32>,
}

/// One attempt, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, DeserializeRow)]
pub struct AttemptRow {
    #[serde(rename = "id")]
    pub attempt_id: String,
    pub attempt_number: i32,
    pub attempted_at: DateTime<Utc>,
    pub url: String,
    pub outcome: String,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The ledger's repository: one session, statements prepared once.
#[derive(Clone)]
pub struct Ledger {
    session: Arc<Session>,
    insert_attempt: PreparedStatement,
    upsert_delivery: PreparedStatement,
    select_delivery: PreparedStatement,
    select_attempts: PreparedStatement,
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
        session.await_schema_agreement().await?;

        let insert_attempt = session
            .prepare(format!(
                "INSERT INTO {keyspace}.attempts_by_delivery (tenant_id, delivery_id, attempted_at, \
                 attempt_id, attempt_number, webhook_id, url, outcome, response_status, \
                 response_body, error_class, error, duration_ms, next_attempt_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
                 response_body, error_class, error, duration_ms, next_attempt_at \
                 FROM {keyspace}.attempts_by_delivery \
                 WHERE tenant_id = ? AND delivery_id = ?"
            ))
            .await?;
        Ok(Self {
            session: Arc::new(session),
            insert_attempt,
            upsert_delivery,
            select_delivery,
            select_attempts,
        })
    }

    /// Records one attempt and the delivery state it leads to. Idempotent.
    pub async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), StoreError> {
        let attempt_number = i32::try_from(attempt.attempt_number).unwrap_or(i32::MAX);
        let response_status = attempt.response_status.map(i32::from);
        let duration_ms = i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX);
        self.session
            .execute_unpaged(
                &self.insert_attempt,
                (
                    &attempt.tenant_id,
                    &attempt.delivery_id,
                    attempt.attempted_at,
                    &attempt.attempt_id,
                    attempt_number,
                    &attempt.webhook_id,
                    &attempt.url,
                    attempt.outcome.as_str(),
                    response_status,
                    &attempt.response_body,
                    attempt.error_class.map(|class| class.as_str()),
                    &attempt.error,
                    duration_ms,
                    attempt.next_attempt_at,
                ),
            )
            .await?;
        // Last write wins by attempt time, whatever order the records are replayed in.
        let write_time = attempt.attempted_at.timestamp_micros();
        self.session
            .execute_unpaged(
                &self.upsert_delivery,
                (
                    &attempt.tenant_id,
                    &attempt.delivery_id,
                    &attempt.webhook_id,
                    &attempt.event_id,
                    &attempt.event_type,
                    attempt.delivery_status(),
                    attempt_number,
                    attempt.attempted_at,
                    response_status,
                    write_time,
                ),
            )
            .await?;
        Ok(())
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
