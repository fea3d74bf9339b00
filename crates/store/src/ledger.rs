use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use hookline_schemas::{AttemptRecord, EventRecord};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Row;

use crate::cursor::{Bucket, Direction};
use crate::paging::Scan;
use crate::recover::{applied, RecoverStatements};
use crate::rows::{
    attempt_columns, delivery_state, header_pairs, AttemptRows, Inserts, ATTEMPT, DELIVERY,
    WEBHOOK_ATTEMPT_COLUMNS,
};
use crate::schema::{add_missing_columns, is_valid_keyspace, migrations, ADDED_COLUMNS};
use crate::views::{
    AttemptRow, AttemptTally, DeliveryProgress, DeliveryQuery, DeliveryRow, DeliverySummary,
    EventDelivery, Listed, Page, StoredEvent, WebhookAttempt,
};
use crate::{CassandraArgs, StoreError};

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
        let inserts = Inserts {
            keyspace,
            using: "USING TIMESTAMP :write_time",
        };
        let webhook_log = format!(
            "FROM {keyspace}.webhook_log WHERE tenant_id = ? AND webhook_id = ? AND day = ? \
             AND kind = ? AND at >= ? AND at <= ?"
        );
        Ok(Self {
            recover: RecoverStatements::prepare(&session, keyspace).await?,
            insert_delivery_attempt: prepare(inserts.delivery_attempt(true)).await?,
            insert_webhook_attempt: prepare(inserts.webhook_attempt()).await?,
            upsert_webhook_delivery: prepare(inserts.webhook_delivery()).await?,
            upsert_tenant_delivery: prepare(inserts.tenant_delivery()).await?,
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
                "SELECT {WEBHOOK_ATTEMPT_COLUMNS} {webhook_log}"
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
