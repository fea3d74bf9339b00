//! Recovery: replaying every failed or dead delivery of a webhook in a time window, as a
//! background job whose progress is kept in the ledger store.
//!
//! A job walks the webhook's deliveries newest first, a page at a time. After each page it saves
//! how far it got (the last delivery replayed, `RecoverPosition`) and extends its lease; the save
//! is conditional on still owning the job. Every ledger instance reads the list of unfinished
//! jobs every `HOOKLINE_RECOVER_SCAN_SECS` and claims those whose lease ran out (their instance
//! died, or stopped and released them), resuming after the saved position. A page replayed but
//! not yet saved is replayed again by the next owner: at least once, never skipped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use futures::stream::{self, Stream, StreamExt};
use futures::FutureExt;
use hookline_backoff::{Backoff, GaveUp};
use hookline_domain::ErrorCode;
use hookline_runtime::api::{ApiError, ApiJson, ErrorBody, Tenant};
use hookline_runtime::BoxError;
use hookline_schemas::Scope;
use hookline_store::{
    DeliveryQuery, DeliverySummary, RecoverJob, RecoverPosition, RecoverRun, StoreError,
};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::routes::{own_webhook, publish_replay, ReplayOf};
use crate::AppState;

/// States a recovery replays unless told otherwise.
const DEFAULT_STATUSES: [&str; 2] = ["failed", "dead"];
/// Deliveries replayed between two saves of a job's progress.
const PAGE: usize = 100;
/// Pages of a job replaying at once.
const PAGES_IN_FLIGHT: usize = 4;
/// How long a job's last save is retried while the database is busy.
const SAVE_PATIENCE: Duration = Duration::from_secs(5);

/// Settings of recovery jobs.
#[derive(Debug, Clone, clap::Args)]
pub struct RecoverArgs {
    /// Seconds a recovery job stays with its ledger instance without a saved page of progress;
    /// past it, another instance takes the job over. Longer than replaying one page of 100.
    #[arg(
        long = "recover-lease-secs",
        env = "HOOKLINE_RECOVER_LEASE_SECS",
        default_value_t = 30
    )]
    pub lease_secs: u64,
    /// Seconds between two looks for recovery jobs whose instance stopped.
    #[arg(
        long = "recover-scan-secs",
        env = "HOOKLINE_RECOVER_SCAN_SECS",
        default_value_t = 10
    )]
    pub scan_secs: u64,
    /// Replays in flight per recovery job, over the pages it replays at once.
    #[arg(
        long = "recover-concurrency",
        env = "HOOKLINE_RECOVER_CONCURRENCY",
        default_value_t = 100
    )]
    pub replays_in_flight: usize,
}

/// The recovery jobs of this ledger instance.
#[derive(Clone)]
pub(crate) struct Recoveries {
    /// This instance's name as a job's `owner`.
    owner: Arc<str>,
    lease: chrono::Duration,
    scan_every: Duration,
    concurrency: usize,
    /// `(tenant id, job id)` of the jobs running here, which the scan leaves alone.
    running: Arc<Mutex<HashSet<(String, String)>>>,
    shutdown: CancellationToken,
}

impl Recoveries {
    pub(crate) fn new(args: &RecoverArgs, shutdown: CancellationToken) -> Result<Self, BoxError> {
        if args.lease_secs == 0 || args.scan_secs == 0 || args.replays_in_flight == 0 {
            return Err(
                "HOOKLINE_RECOVER_LEASE_SECS, HOOKLINE_RECOVER_SCAN_SECS and \
                        HOOKLINE_RECOVER_CONCURRENCY must be at least 1"
                    .into(),
            );
        }
        Ok(Self {
            owner: format!("ldg_{}", uuid_v7()).into(),
            lease: chrono::Duration::seconds(i64::try_from(args.lease_secs)?),
            scan_every: Duration::from_secs(args.scan_secs),
            concurrency: args.replays_in_flight,
            running: Arc::default(),
            shutdown,
        })
    }

    fn lease_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.lease
    }

    fn runs_here(&self, tenant_id: &str, job_id: &str) -> bool {
        self.running
            .lock()
            .expect("not poisoned")
            .contains(&(tenant_id.to_owned(), job_id.to_owned()))
    }

    /// Notes that a job no longer runs here.
    fn forget_local(&self, run: &RecoverRun) {
        self.running
            .lock()
            .expect("not poisoned")
            .remove(&(run.tenant_id.clone(), run.job.job_id.clone()));
    }

    /// Runs a job this instance owns, in the background.
    fn spawn(&self, state: AppState, run: RecoverRun) {
        self.running
            .lock()
            .expect("not poisoned")
            .insert((run.tenant_id.clone(), run.job.job_id.clone()));
        tokio::spawn(run_job(state, run));
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// Deliveries created at or after (at most the retention period ago).
    since: DateTime<Utc>,
    /// Deliveries created at or before (default: now).
    #[serde(default)]
    until: Option<DateTime<Utc>>,
    /// Only deliveries in this state (`failed`, `dead`, `retrying` or `cancelled`).
    #[serde(default)]
    status: Option<String>,
}

/// `POST /v1/webhooks/{id}/recover`: starts a recovery job and answers with it.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/recover",
    tag = "deliveries",
    security(("api_key" = ["deliveries:replay"])),
    params(("webhook_id" = String, Path)),
    request_body = RecoverRequest,
    responses(
        (status = 202, description = "The job, started.", body = RecoverJob),
        (status = 404, description = "No such webhook of this tenant (`not_found`).", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(webhook_id): Path<String>,
    ApiJson(request): ApiJson<RecoverRequest>,
) -> Result<(StatusCode, Json<RecoverJob>), ApiError> {
    let principal = tenant.require(Scope::DeliveriesReplay)?;
    let tenant_id = principal.tenant_id.clone();
    if state
        .control
        .read()
        .webhook(&tenant_id, &webhook_id)
        .is_none()
    {
        return Err(ApiError::not_found("webhook"));
    }
    let now = Utc::now();
    let until = request.until.unwrap_or(now);
    if request.since > until {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "since: must not be after until",
        ));
    }
    let statuses: Vec<String> = match request.status {
        Some(status) if ["failed", "dead", "retrying", "cancelled"].contains(&status.as_str()) => {
            vec![status]
        }
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                "status: one of failed, dead, retrying, cancelled",
            ))
        }
        None => DEFAULT_STATUSES.iter().map(|s| (*s).to_owned()).collect(),
    };
    let job = RecoverJob {
        job_id: format!("rcv_{}", uuid_v7()),
        webhook_id,
        since: request.since.max(now - state.retention),
        until,
        status: "running".into(),
        replayed: 0,
        created_at: now,
        updated_at: now,
        error: None,
    };
    let run = RecoverRun {
        tenant_id,
        job: job.clone(),
        statuses,
        position: None,
    };
    let recoveries = &state.recoveries;
    state
        .ledger
        .start_recover_job(&run, &recoveries.owner, recoveries.lease_from(now))
        .await
        .map_err(|err| ApiError::unavailable(&err))?;
    recoveries.spawn(state.clone(), run);
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// How a job's walk ended on this instance.
enum Walk {
    /// Every delivery of the window is replayed.
    Done,
    /// This instance is shutting down; the job waits for another.
    Stopped,
    /// Another instance took the job over.
    Lost,
}

/// Runs a job to its end (or until this instance stops or loses it) and records how it ended.
async fn run_job(state: AppState, mut run: RecoverRun) {
    let recoveries = state.recoveries.clone();
    let walk = walk(&state, &mut run).await;
    run.job.updated_at = Utc::now();
    match walk {
        Ok(Walk::Done) => run.job.status = "succeeded".into(),
        Ok(Walk::Stopped) => {}
        Ok(Walk::Lost) => return recoveries.forget_local(&run),
        Err(error) => {
            tracing::warn!(job_id = %run.job.job_id, %error, "recovery failed");
            run.job.status = "failed".into();
            run.job.error = Some(error);
        }
    }
    // The lease ends now: a stopping instance releases its job, so another resumes it at its
    // next scan rather than when the lease would have run out.
    finish(&state, &run, run.job.updated_at).await;
    recoveries.forget_local(&run);
}

/// Saves a job's last state and, once it is finished, takes it off the unfinished list.
async fn finish(state: &AppState, run: &RecoverRun, lease_until: DateTime<Utc>) {
    let (job_id, owner) = (&run.job.job_id, &*state.recoveries.owner);
    // A busy database times out now and then; a few seconds of tries spare the wait for the
    // lease.
    let never = CancellationToken::new();
    let saving = hookline_backoff::retry(
        Backoff::new(Duration::from_millis(200), Duration::from_secs(3)),
        &never,
        "saving a recovery's progress",
        || async {
            state
                .ledger
                .save_recover_progress(run, owner, lease_until)
                .await
                .map_err(StoreError::classified)
        },
    );
    let saved = match tokio::time::timeout(SAVE_PATIENCE, saving).await {
        Ok(Ok(saved)) => Ok(saved),
        Ok(Err(GaveUp::Permanent(err))) => Err(err.to_string()),
        Ok(Err(GaveUp::Abandoned)) | Err(_) => Err("the database stayed unavailable".to_owned()),
    };
    match saved {
        Ok(true) if run.job.status != "running" => {
            if let Err(err) = state
                .ledger
                .forget_finished_recover_job(&run.tenant_id, job_id)
                .await
            {
                // The scan drops finished jobs from the list too.
                tracing::warn!(%job_id, error = %err, "could not unlist a finished recovery");
            }
        }
        Ok(true) => tracing::info!(%job_id, "recovery handed over"),
        Ok(false) => tracing::info!(%job_id, "recovery taken over by another ledger instance"),
        // Its lease runs out and another instance finishes the walk from the last save.
        Err(err) => tracing::error!(%job_id, error = %err, "could not save the recovery's outcome"),
    }
}

/// Replays page after page from the job's position, saving progress after each page.
///
/// Up to `PAGES_IN_FLIGHT` pages replay at once, each in a task of its own, sharing the job's
/// `HOOKLINE_RECOVER_CONCURRENCY` replays in flight, so the job is not held to one page per
/// round trip of its slowest replay. Pages are finished, and their progress saved, in the
/// order of the walk: a saved position never passes a page still in flight. A job that stops
/// or is lost drops the pages in flight (they are replayed again by whoever resumes it).
async fn walk(state: &AppState, run: &mut RecoverRun) -> Result<Walk, String> {
    let recoveries = &state.recoveries;
    let query = DeliveryQuery {
        webhook_id: Some(run.job.webhook_id.clone()),
        statuses: run.statuses.clone(),
        event_type: None,
        since: run.job.since,
        // Newest first: a resumed walk starts where the last saved one stopped.
        until: run
            .position
            .as_ref()
            .map_or(run.job.until, |position| position.created_at),
    };
    let tenant_id = run.tenant_id.clone();
    let webhook_id = run.job.webhook_id.clone();
    // Only the first page of a resumed walk can hold deliveries replayed before.
    let resumed_after = run.position.clone();
    // Shared by the pages in flight: the job's replays in flight, whichever page they are of.
    let permits = Arc::new(Semaphore::new(recoveries.concurrency));
    let replayed_pages = pages(state, &tenant_id, &query)
        .map(|page| {
            let started = page.and_then(|deliveries| {
                own_webhook(state, &tenant_id, &webhook_id).map_err(|err| err.message)?;
                let (replays, handle) = replay_page(
                    state.clone(),
                    tenant_id.clone(),
                    deliveries,
                    resumed_after.clone(),
                    Arc::clone(&permits),
                )
                .remote_handle();
                tokio::spawn(replays);
                Ok(handle)
            });
            async move { started?.await }
        })
        .buffered(PAGES_IN_FLIGHT);
    let mut replayed_pages = std::pin::pin!(replayed_pages);
    let mut next = replayed_pages.next().await;
    while let Some(page) = next {
        let page = page?;
        if let Some(last) = page.last {
            run.position = Some(last);
        }
        run.job.replayed += i64::try_from(page.count).unwrap_or(i64::MAX);
        if recoveries.shutdown.is_cancelled() {
            return Ok(Walk::Stopped);
        }
        run.job.updated_at = Utc::now();
        // The next page is finished (or read) while this one's progress is saved.
        let (saved, following) = tokio::join!(
            state.ledger.save_recover_progress(
                run,
                &recoveries.owner,
                recoveries.lease_from(run.job.updated_at),
            ),
            replayed_pages.next(),
        );
        match saved {
            Ok(true) => {}
            Ok(false) => return Ok(Walk::Lost),
            // Progress is saved again after the next page; if the database stays away, the lease
            // runs out and another instance resumes from the last save.
            Err(err) => {
                tracing::warn!(job_id = %run.job.job_id, error = %err, "could not save recovery progress")
            }
        }
        next = following;
    }
    Ok(Walk::Done)
}

/// The deliveries of `query`, a page at a time, each page read after the one before it.
fn pages<'a>(
    state: &'a AppState,
    tenant_id: &'a str,
    query: &'a DeliveryQuery,
) -> impl Stream<Item = Result<Vec<DeliverySummary>, String>> + 'a {
    // `None` once the last page was read; `Some(cursor)` for the next one.
    stream::try_unfold(Some(None::<String>), move |cursor| async move {
        let Some(cursor) = cursor else {
            return Ok(None);
        };
        let page = state
            .ledger
            .list_deliveries(tenant_id, query, PAGE, cursor.as_deref())
            .await
            .map_err(|err| err.to_string())?;
        Ok(Some((page.data, page.next_cursor.map(Some))))
    })
}

/// What replaying one page did.
struct ReplayedPage {
    count: usize,
    /// The page's last delivery replayed, in the walk's order.
    last: Option<RecoverPosition>,
}

/// Replays a page's deliveries, each once it holds one of the job's `permits`, skipping those
/// a resumed walk already replayed.
async fn replay_page(
    state: AppState,
    tenant_id: String,
    deliveries: Vec<DeliverySummary>,
    resumed_after: Option<RecoverPosition>,
    permits: Arc<Semaphore>,
) -> Result<ReplayedPage, String> {
    let pending: Vec<_> = deliveries
        .into_iter()
        .filter(|delivery| {
            resumed_after
                .as_ref()
                .is_none_or(|position| !position.covers(delivery.created_at, &delivery.delivery_id))
        })
        .collect();
    let replays: Vec<_> = pending
        .iter()
        .map(|delivery| {
            let (state, tenant_id, permits) = (&state, &tenant_id, &permits);
            async move {
                let _permit = permits
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
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
        })
        .collect();
    futures::future::try_join_all(replays)
        .await
        .map_err(|err| err.message)?;
    Ok(ReplayedPage {
        count: pending.len(),
        last: pending.last().map(|delivery| RecoverPosition {
            created_at: delivery.created_at,
            delivery_id: delivery.delivery_id.clone(),
        }),
    })
}

/// Every `HOOKLINE_RECOVER_SCAN_SECS`, claims and resumes the unfinished jobs whose lease ran
/// out, until shutdown.
pub(crate) async fn resume_orphaned_jobs(state: AppState) -> Result<(), BoxError> {
    let recoveries = state.recoveries.clone();
    let mut ticker = tokio::time::interval(recoveries.scan_every);
    loop {
        tokio::select! {
            () = recoveries.shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        if let Err(err) = resume_orphans_once(&state).await {
            tracing::warn!(error = %err, "could not look for orphaned recovery jobs");
        }
    }
}

async fn resume_orphans_once(state: &AppState) -> Result<(), StoreError> {
    let recoveries = &state.recoveries;
    for (tenant_id, job_id) in state.ledger.unfinished_recover_jobs().await? {
        if recoveries.shutdown.is_cancelled() {
            return Ok(());
        }
        if recoveries.runs_here(&tenant_id, &job_id) {
            continue;
        }
        // Missing while the batch that started it is still landing.
        let Some(leased) = state.ledger.leased_recover_run(&tenant_id, &job_id).await? else {
            continue;
        };
        if leased.run.job.status != "running" {
            state
                .ledger
                .forget_finished_recover_job(&tenant_id, &job_id)
                .await?;
            continue;
        }
        let now = Utc::now();
        if leased.lease_until.is_some_and(|until| until >= now) {
            continue;
        }
        let claimed = state
            .ledger
            .claim_recover_job(
                &tenant_id,
                &job_id,
                &recoveries.owner,
                now,
                recoveries.lease_from(now),
            )
            .await?;
        if !claimed {
            continue;
        }
        // Read again now that it is ours: the last owner may have saved since the first read.
        let Some(leased) = state.ledger.leased_recover_run(&tenant_id, &job_id).await? else {
            continue;
        };
        tracing::info!(%job_id, replayed = leased.run.job.replayed, "resuming a recovery job whose instance stopped");
        recoveries.spawn(state.clone(), leased.run);
    }
    Ok(())
}

/// `GET /v1/webhooks/{id}/recover/{job_id}`: a recovery job's progress.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhook_id}/recover/{job_id}",
    tag = "deliveries",
    security(("api_key" = ["deliveries:read"])),
    params(("webhook_id" = String, Path), ("job_id" = String, Path)),
    responses(
        (status = 200, description = "The job's progress.", body = RecoverJob),
        (status = 404, description = "No such job of this webhook (`not_found`).", body = ErrorBody),
    )
)]
pub async fn status(
    State(state): State<AppState>,
    tenant: Tenant,
    Path((webhook_id, job_id)): Path<(String, String)>,
) -> Result<Json<RecoverJob>, ApiError> {
    let principal = tenant.require(Scope::DeliveriesRead)?;
    let job = state
        .ledger
        .recover_job(&principal.tenant_id, &job_id)
        .await
        .map_err(|err| ApiError::unavailable(&err))?
        .filter(|job| job.webhook_id == webhook_id)
        .ok_or_else(|| ApiError::not_found("recovery job"))?;
    Ok(Json(job))
}

fn uuid_v7() -> String {
    hookline_domain::ids::new_attempt_id()
        .trim_start_matches("att_")
        .to_owned()
}
