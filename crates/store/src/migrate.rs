//! `hookline migrate`: copies what a keyspace of the first layout holds into the current
//! tables.
//!
//! The first layout wrote six rows per attempt: the attempt in `attempts_by_delivery` and
//! `attempts_by_webhook`, and the delivery's state, rewritten every time, in `deliveries`,
//! `deliveries_by_webhook`, `deliveries_by_tenant` (one partition per day) and
//! `deliveries_by_event`. The current one keeps `deliveries_by_event` and replaces the others
//! with `delivery_attempts`, `webhook_log` and `deliveries_by_tenant_hour`. The writer fills
//! only the current tables, so after an upgrade the reads show what was recorded before it
//! once this copy has run. Each row is copied with its remaining time to live and its write
//! time, so it expires when it would have, and a copy never overwrites what the writer
//! recorded since (the later attempt wins). Running it again copies the same rows again.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use scylla::response::PagingState;
use scylla::{DeserializeRow, SerializeRow};

use crate::cursor::Bucket;
use crate::rows::{AttemptColumns, DeliveryState, Inserts, ListedDelivery, WebhookLogAttempt};
use crate::schema::{add_missing_columns, columns_of, LEGACY_ADDED_COLUMNS};
use crate::{Ledger, StoreError};

/// Rows read per page of a first-layout table.
const PAGE: i32 = 1_000;
/// Rows written at once.
const CONCURRENCY: usize = 64;

/// What a copy moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Rows of `attempts_by_delivery` and `attempts_by_webhook` copied.
    pub attempts: u64,
    /// Rows of `deliveries_by_tenant` copied (each a delivery's state, written three times).
    pub deliveries: u64,
}

/// Defines `$kept`: a row of type `$row` (whose `write_time` is that of the row it copies) with
/// its remaining time to live (none: 0, which writes it without one), bound to
/// `USING TTL :ttl AND TIMESTAMP :write_time`.
macro_rules! kept {
    ($kept:ident, $row:ident) => {
        #[derive(SerializeRow)]
        struct $kept<'a> {
            #[scylla(flatten)]
            row: &'a $row<'a>,
            ttl: i32,
        }
    };
}

kept!(KeptAttempt, AttemptOnly);
kept!(KeptWebhookAttempt, WebhookLogAttempt);
kept!(KeptState, DeliveryState);
kept!(KeptListed, ListedDelivery);

/// An attempt's row in its delivery's partition, without the delivery's state.
#[derive(SerializeRow)]
struct AttemptOnly<'a> {
    tenant_id: &'a str,
    delivery_id: &'a str,
    #[scylla(flatten)]
    attempt: &'a AttemptColumns<'a>,
    response_body: Option<&'a str>,
    error: Option<&'a str>,
    replay: bool,
    write_time: i64,
}

/// Defines a row of a first-layout attempt table: the columns both hold, and `$extra`.
macro_rules! legacy_attempt {
    ($(#[$doc:meta])* $name:ident { $($extra:ident: $type:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(DeserializeRow)]
        struct $name {
            tenant_id: String,
            delivery_id: String,
            attempted_at: DateTime<Utc>,
            attempt_id: String,
            attempt_number: i32,
            url: String,
            outcome: String,
            response_status: Option<i32>,
            error_class: Option<String>,
            duration_ms: i64,
            next_attempt_at: Option<DateTime<Utc>>,
            request_headers: Option<Vec<(String, String)>>,
            response_headers: Option<Vec<(String, String)>>,
            response_headers_truncated: Option<bool>,
            ttl: Option<i32>,
            write_time: i64,
            $($extra: $type),*
        }

        impl $name {
            /// The attempt's columns, with `headers` (from `headers_of`).
            fn columns<'a>(&'a self, headers: &'a Headers<'a>) -> AttemptColumns<'a> {
                AttemptColumns {
                    attempted_at: self.attempted_at,
                    attempt_id: &self.attempt_id,
                    attempt_number: self.attempt_number,
                    url: &self.url,
                    outcome: &self.outcome,
                    response_status: self.response_status,
                    error_class: self.error_class.as_deref(),
                    duration_ms: self.duration_ms,
                    next_attempt_at: self.next_attempt_at,
                    request_headers: &headers.0,
                    response_headers: &headers.1,
                    response_headers_truncated: self.response_headers_truncated.unwrap_or(false),
                }
            }

            fn headers(&self) -> Headers<'_> {
                (pairs(&self.request_headers), pairs(&self.response_headers))
            }
        }
    };
}

/// An attempt's request and response headers, as the current tables bind them.
type Headers<'a> = (Vec<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>);

fn pairs(headers: &Option<Vec<(String, String)>>) -> Vec<(&str, &str)> {
    headers
        .iter()
        .flatten()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

legacy_attempt!(
    /// A row of `attempts_by_delivery`.
    LegacyDeliveryAttempt {
        response_body: Option<String>,
        error: Option<String>,
        replay: Option<bool>,
    }
);

legacy_attempt!(
    /// A row of `attempts_by_webhook`.
    LegacyWebhookAttempt {
        webhook_id: String,
        day: String,
        event_id: String,
        event_type: String,
    }
);

/// A row of `deliveries_by_tenant`.
#[derive(DeserializeRow)]
struct LegacyDelivery {
    tenant_id: String,
    delivery_id: String,
    webhook_id: String,
    event_id: String,
    event_type: String,
    created_at: DateTime<Utc>,
    status: String,
    attempts: i32,
    last_attempt_at: DateTime<Utc>,
    last_response_status: Option<i32>,
    ttl: Option<i32>,
    write_time: i64,
}

const LEGACY_ATTEMPT: &str = "tenant_id, delivery_id, attempted_at, attempt_id, \
                              attempt_number, url, outcome, response_status, error_class, \
                              duration_ms, next_attempt_at, request_headers, response_headers, \
                              response_headers_truncated, TTL(outcome) AS ttl, \
                              WRITETIME(outcome) AS write_time";

impl Ledger {
    /// Whether the keyspace holds tables of the first layout, whose rows the reads do not show
    /// until `migrate_first_layout` has copied them.
    pub async fn has_first_layout(&self) -> Result<bool, StoreError> {
        Ok(
            !columns_of(&self.session, &self.keyspace, "attempts_by_delivery")
                .await?
                .is_empty(),
        )
    }

    /// Copies every row of the first layout's tables into the current ones (see the module's
    /// documentation), calling `progress` after each page.
    pub async fn migrate_first_layout(
        &self,
        mut progress: impl FnMut(Migrated),
    ) -> Result<Migrated, StoreError> {
        let keyspace = &self.keyspace;
        let mut migrated = Migrated::default();
        if !self.has_first_layout().await? {
            return Ok(migrated);
        }
        add_missing_columns(&self.session, keyspace, &LEGACY_ADDED_COLUMNS).await?;
        let inserts = Inserts {
            keyspace,
            using: "USING TTL :ttl AND TIMESTAMP :write_time",
        };
        let prepare = |text: String| async move { self.session.prepare(text).await };

        let to_delivery = &prepare(inserts.delivery_attempt(false)).await?;
        let select = format!(
            "SELECT {LEGACY_ATTEMPT}, response_body, error, replay \
             FROM {keyspace}.attempts_by_delivery"
        );
        migrated.attempts += self
            .copy(&select, |row: LegacyDeliveryAttempt| async move {
                let headers = row.headers();
                let columns = row.columns(&headers);
                let attempt = AttemptOnly {
                    tenant_id: &row.tenant_id,
                    delivery_id: &row.delivery_id,
                    attempt: &columns,
                    response_body: row.response_body.as_deref(),
                    error: row.error.as_deref(),
                    replay: row.replay.unwrap_or(false),
                    write_time: row.write_time,
                };
                let ttl = row.ttl.unwrap_or(0);
                let kept = KeptAttempt { row: &attempt, ttl };
                self.session.execute_unpaged(to_delivery, kept).await?;
                Ok(())
            })
            .await?;
        progress(migrated);

        let to_webhook_log = &prepare(inserts.webhook_attempt()).await?;
        let select = format!(
            "SELECT {LEGACY_ATTEMPT}, webhook_id, day, event_id, event_type \
             FROM {keyspace}.attempts_by_webhook"
        );
        migrated.attempts += self
            .copy(&select, |row: LegacyWebhookAttempt| async move {
                let headers = row.headers();
                let columns = row.columns(&headers);
                let attempt = WebhookLogAttempt {
                    tenant_id: &row.tenant_id,
                    webhook_id: &row.webhook_id,
                    bucket: row.day.clone(),
                    delivery_id: &row.delivery_id,
                    event_id: &row.event_id,
                    event_type: &row.event_type,
                    attempt: &columns,
                    write_time: row.write_time,
                };
                let ttl = row.ttl.unwrap_or(0);
                let kept = KeptWebhookAttempt { row: &attempt, ttl };
                self.session.execute_unpaged(to_webhook_log, kept).await?;
                Ok(())
            })
            .await?;
        progress(migrated);

        let to_state = &prepare(inserts.delivery_state()).await?;
        let to_webhook_delivery = &prepare(inserts.webhook_delivery()).await?;
        let to_tenant_delivery = &prepare(inserts.tenant_delivery()).await?;
        let select = format!(
            "SELECT tenant_id, delivery_id, webhook_id, event_id, event_type, created_at, status, \
             attempts, last_attempt_at, last_response_status, TTL(status) AS ttl, \
             WRITETIME(status) AS write_time FROM {keyspace}.deliveries_by_tenant"
        );
        migrated.deliveries += self
            .copy(&select, |row: LegacyDelivery| async move {
                let state = DeliveryState {
                    tenant_id: &row.tenant_id,
                    delivery_id: &row.delivery_id,
                    webhook_id: &row.webhook_id,
                    event_id: &row.event_id,
                    event_type: &row.event_type,
                    created_at: row.created_at,
                    status: &row.status,
                    attempts: row.attempts,
                    last_attempt_at: row.last_attempt_at,
                    last_response_status: row.last_response_status,
                    write_time: row.write_time,
                };
                let listed = |bucket: Bucket| ListedDelivery {
                    state: &state,
                    bucket: bucket.of(row.created_at),
                };
                let (by_webhook, by_tenant) = (listed(Bucket::Day), listed(Bucket::Hour));
                let ttl = row.ttl.unwrap_or(0);
                let kept = |row| KeptListed { row, ttl };
                futures::try_join!(
                    self.session
                        .execute_unpaged(to_state, KeptState { row: &state, ttl }),
                    self.session
                        .execute_unpaged(to_webhook_delivery, kept(&by_webhook)),
                    self.session
                        .execute_unpaged(to_tenant_delivery, kept(&by_tenant)),
                )?;
                Ok(())
            })
            .await?;
        progress(migrated);
        Ok(migrated)
    }

    /// Reads every row of `select`, page by page, and hands each to `write`, several at once;
    /// the number of rows copied.
    async fn copy<R, F>(&self, select: &str, write: impl Fn(R) -> F) -> Result<u64, StoreError>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
        F: std::future::Future<Output = Result<(), StoreError>>,
    {
        let mut statement = self.session.prepare(select).await?;
        statement.set_page_size(PAGE);
        let (mut paging, mut copied) = (PagingState::start(), 0);
        loop {
            let (result, response) = self
                .session
                .execute_single_page(&statement, &[], paging)
                .await?;
            let rows = result
                .into_rows_result()?
                .rows::<R>()?
                .collect::<Result<Vec<_>, _>>()?;
            copied += rows.len() as u64;
            stream::iter(rows)
                .map(&write)
                .buffer_unordered(CONCURRENCY)
                .try_collect::<()>()
                .await?;
            match response.into_paging_control_flow() {
                ControlFlow::Continue(next) => paging = next,
                ControlFlow::Break(()) => return Ok(copied),
            }
        }
    }
}
