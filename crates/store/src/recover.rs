//! Recovery jobs: their progress, and the lease that says which ledger instance runs each.
//!
//! A job's row is written once at its start (with its row in `recover_jobs_unfinished`, in one
//! logged batch) and from then on only by lightweight transactions: its owner saves progress
//! `IF owner = <itself>`, and another instance claims it `IF lease_until < <now>`. So every write
//! after the start is linearizable, and an owner that lost its lease learns it at its next save.
//! `recover_jobs_unfinished` is one small partition that every instance reads now and then to
//! find jobs whose owner stopped saving.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::response::PagingState;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use scylla::DeserializeRow;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{Ledger, StoreError};

/// A recovery job: replays of a webhook's failed deliveries in a window.
#[derive(Debug, Clone, PartialEq, Serialize, DeserializeRow, ToSchema)]
pub struct RecoverJob {
    #[serde(rename = "id")]
    pub job_id: String,
    pub webhook_id: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// Deliveries replayed so far, as saved page by page (a job resumed by another instance may
    /// count a few twice, or not count those replayed before the stop that succeeded since).
    pub replayed: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub error: Option<String>,
}

/// The last delivery a job replayed, in the newest-first order it walks: everything before it
/// (created later, or at the same instant with a smaller id) is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverPosition {
    pub created_at: DateTime<Utc>,
    pub delivery_id: String,
}

impl RecoverPosition {
    /// Whether a delivery comes at or before this position in the walk, so is already replayed.
    pub fn covers(&self, created_at: DateTime<Utc>, delivery_id: &str) -> bool {
        created_at > self.created_at
            || (created_at == self.created_at && delivery_id <= self.delivery_id.as_str())
    }
}

/// Everything needed to run a job, or to resume it elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoverRun {
    pub tenant_id: String,
    pub job: RecoverJob,
    /// Delivery states replayed.
    pub statuses: Vec<String>,
    /// Where the job stands; `None` before its first replay.
    pub position: Option<RecoverPosition>,
}

/// A job as the lease-keeping reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedRun {
    pub run: RecoverRun,
    pub lease_until: Option<DateTime<Utc>>,
}

#[derive(DeserializeRow)]
struct RunRow {
    job_id: String,
    webhook_id: String,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    status: String,
    replayed: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    error: Option<String>,
    statuses: Option<Vec<String>>,
    lease_until: Option<DateTime<Utc>>,
    resume_created_at: Option<DateTime<Utc>>,
    resume_delivery_id: Option<String>,
}

#[derive(Clone)]
pub(crate) struct RecoverStatements {
    insert_job: PreparedStatement,
    insert_unfinished: PreparedStatement,
    select_job: PreparedStatement,
    select_run: PreparedStatement,
    save_progress: PreparedStatement,
    claim: PreparedStatement,
    select_unfinished: PreparedStatement,
    delete_unfinished: PreparedStatement,
}

const JOB_COLUMNS: &str =
    "job_id, webhook_id, since, until, status, replayed, created_at, updated_at, error";

impl RecoverStatements {
    pub(crate) async fn prepare(session: &Session, keyspace: &str) -> Result<Self, StoreError> {
        let prepare = |text: String| async move { session.prepare(text).await };
        Ok(Self {
            insert_job: prepare(format!(
                "INSERT INTO {keyspace}.recover_jobs (tenant_id, {JOB_COLUMNS}, statuses, owner, \
                 lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_unfinished: prepare(format!(
                "INSERT INTO {keyspace}.recover_jobs_unfinished (bucket, tenant_id, job_id) \
                 VALUES (0, ?, ?)"
            ))
            .await?,
            select_job: prepare(format!(
                "SELECT {JOB_COLUMNS} FROM {keyspace}.recover_jobs WHERE tenant_id = ? AND job_id = ?"
            ))
            .await?,
            select_run: prepare(format!(
                "SELECT {JOB_COLUMNS}, statuses, lease_until, resume_created_at, resume_delivery_id \
                 FROM {keyspace}.recover_jobs WHERE tenant_id = ? AND job_id = ?"
            ))
            .await?,
            save_progress: prepare(format!(
                "UPDATE {keyspace}.recover_jobs SET status = ?, replayed = ?, updated_at = ?, \
                 error = ?, lease_until = ?, resume_created_at = ?, resume_delivery_id = ? \
                 WHERE tenant_id = ? AND job_id = ? IF owner = ?"
            ))
            .await?,
            claim: prepare(format!(
                "UPDATE {keyspace}.recover_jobs SET owner = ?, lease_until = ? \
                 WHERE tenant_id = ? AND job_id = ? IF status = 'running' AND lease_until < ?"
            ))
            .await?,
            select_unfinished: prepare(format!(
                "SELECT tenant_id, job_id FROM {keyspace}.recover_jobs_unfinished WHERE bucket = 0"
            ))
            .await?,
            delete_unfinished: prepare(format!(
                "DELETE FROM {keyspace}.recover_jobs_unfinished \
                 WHERE bucket = 0 AND tenant_id = ? AND job_id = ?"
            ))
            .await?,
        })
    }
}

/// Whether a lightweight transaction was applied: its first column, `[applied]`, is true.
pub(crate) fn applied(row: Option<Row>) -> bool {
    row.is_some_and(|row| matches!(row.columns.first(), Some(Some(CqlValue::Boolean(true)))))
}

impl Ledger {
    /// Records a new job, owned by `owner` until `lease_until`, and lists it as unfinished.
    pub async fn start_recover_job(
        &self,
        run: &RecoverRun,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let job = &run.job;
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(self.recover.insert_job.clone());
        batch.append_statement(self.recover.insert_unfinished.clone());
        let values = (
            (
                &run.tenant_id,
                &job.job_id,
                &job.webhook_id,
                job.since,
                job.until,
                &job.status,
                job.replayed,
                job.created_at,
                job.updated_at,
                &job.error,
                &run.statuses,
                owner,
                lease_until,
            ),
            (&run.tenant_id, &job.job_id),
        );
        self.session.batch(&batch, values).await?;
        Ok(())
    }

    /// Saves a job's state and extends its lease, if `owner` still holds it; `false` when another
    /// instance took the job over.
    pub async fn save_recover_progress(
        &self,
        run: &RecoverRun,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let job = &run.job;
        let position = run.position.as_ref();
        let result = self
            .session
            .execute_unpaged(
                &self.recover.save_progress,
                (
                    &job.status,
                    job.replayed,
                    job.updated_at,
                    &job.error,
                    lease_until,
                    position.map(|p| p.created_at),
                    position.map(|p| &p.delivery_id),
                    &run.tenant_id,
                    &job.job_id,
                    owner,
                ),
            )
            .await?;
        Ok(applied(result.into_rows_result()?.maybe_first_row()?))
    }

    /// Makes `owner` the owner of a running job whose lease ended before `now`; `false` when the
    /// job is finished or its lease is current (another instance may just have claimed it).
    pub async fn claim_recover_job(
        &self,
        tenant_id: &str,
        job_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .session
            .execute_unpaged(
                &self.recover.claim,
                (owner, lease_until, tenant_id, job_id, now),
            )
            .await?;
        Ok(applied(result.into_rows_result()?.maybe_first_row()?))
    }

    /// A job's progress, as the API shows it.
    pub async fn recover_job(
        &self,
        tenant_id: &str,
        job_id: &str,
    ) -> Result<Option<RecoverJob>, StoreError> {
        Ok(self
            .session
            .execute_unpaged(&self.recover.select_job, (tenant_id, job_id))
            .await?
            .into_rows_result()?
            .maybe_first_row::<RecoverJob>()?)
    }

    /// A job with what it needs to resume, and its lease.
    pub async fn leased_recover_run(
        &self,
        tenant_id: &str,
        job_id: &str,
    ) -> Result<Option<LeasedRun>, StoreError> {
        let row = self
            .session
            .execute_unpaged(&self.recover.select_run, (tenant_id, job_id))
            .await?
            .into_rows_result()?
            .maybe_first_row::<RunRow>()?;
        Ok(row.map(|row| LeasedRun {
            run: RecoverRun {
                tenant_id: tenant_id.to_owned(),
                job: RecoverJob {
                    job_id: row.job_id,
                    webhook_id: row.webhook_id,
                    since: row.since,
                    until: row.until,
                    status: row.status,
                    replayed: row.replayed,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                    error: row.error,
                },
                statuses: row.statuses.unwrap_or_default(),
                position: row.resume_created_at.zip(row.resume_delivery_id).map(
                    |(created_at, delivery_id)| RecoverPosition {
                        created_at,
                        delivery_id,
                    },
                ),
            },
            lease_until: row.lease_until,
        }))
    }

    /// `(tenant id, job id)` of every job listed as unfinished.
    pub async fn unfinished_recover_jobs(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut jobs = Vec::new();
        let mut paging = PagingState::start();
        loop {
            let (result, response) = self
                .session
                .execute_single_page(&self.recover.select_unfinished, (), paging)
                .await?;
            for row in result.into_rows_result()?.rows::<(String, String)>()? {
                jobs.push(row?);
            }
            match response.into_paging_control_flow() {
                ControlFlow::Continue(next) => paging = next,
                ControlFlow::Break(()) => return Ok(jobs),
            }
        }
    }

    /// Takes a finished job off the unfinished list.
    pub async fn forget_finished_recover_job(
        &self,
        tenant_id: &str,
        job_id: &str,
    ) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.recover.delete_unfinished, (tenant_id, job_id))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_covers_what_the_newest_first_walk_passed() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc();
        let position = RecoverPosition {
            created_at: at,
            delivery_id: "msg_m".into(),
        };
        let later = at + chrono::Duration::milliseconds(1);
        let earlier = at - chrono::Duration::milliseconds(1);
        assert!(position.covers(later, "msg_z"));
        assert!(position.covers(at, "msg_a"));
        assert!(position.covers(at, "msg_m"));
        assert!(!position.covers(at, "msg_n"));
        assert!(!position.covers(earlier, "msg_a"));
    }
}
