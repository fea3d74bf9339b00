//! Recovery: replaying every failed or dead delivery of a webhook in a time window, as a
//! background job whose progress is kept in the ledger store.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_domain::ErrorCode;
use hookline_runtime::api::{ApiError, ApiJson, ErrorBody, Tenant};
use hookline_schemas::Scope;
use hookline_store::{DeliveryQuery, RecoverJob};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::routes::replay_delivery;
use crate::AppState;

/// States a recovery replays unless told otherwise.
const DEFAULT_STATUSES: [&str; 2] = ["failed", "dead"];
/// Progress is saved after this many replays.
const SAVE_EVERY: i64 = 100;

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
        webhook_id: webhook_id.clone(),
        since: request.since.max(now - state.retention),
        until,
        status: "running".into(),
        replayed: 0,
        created_at: now,
        updated_at: now,
        error: None,
    };
    state
        .ledger
        .save_recover_job(&tenant_id, &job)
        .await
        .map_err(|err| ApiError::unavailable(&err))?;
    let query = DeliveryQuery {
        webhook_id: Some(webhook_id),
        statuses,
        event_type: None,
        since: job.since,
        until: job.until,
    };
    tokio::spawn(run(state, tenant_id, job.clone(), query));
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Replays page after page, saving progress; marks the job succeeded or failed at the end.
async fn run(state: AppState, tenant_id: String, mut job: RecoverJob, query: DeliveryQuery) {
    let mut cursor: Option<String> = None;
    let outcome: Result<(), String> = async {
        loop {
            let page = state
                .ledger
                .list_deliveries(&tenant_id, &query, 100, cursor.as_deref())
                .await
                .map_err(|err| err.to_string())?;
            for delivery in &page.data {
                replay_delivery(&state, &tenant_id, &delivery.delivery_id)
                    .await
                    .map_err(|err| err.message)?;
                job.replayed += 1;
                if job.replayed % SAVE_EVERY == 0 {
                    job.updated_at = Utc::now();
                    // Progress is informative: a failed save does not stop the job.
                    let _ = state.ledger.save_recover_job(&tenant_id, &job).await;
                }
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok(());
            }
        }
    }
    .await;
    job.updated_at = Utc::now();
    match outcome {
        Ok(()) => job.status = "succeeded".into(),
        Err(error) => {
            tracing::warn!(job_id = %job.job_id, %error, "recovery failed");
            job.status = "failed".into();
            job.error = Some(error);
        }
    }
    if let Err(err) = state.ledger.save_recover_job(&tenant_id, &job).await {
        tracing::error!(job_id = %job.job_id, error = %err, "could not save the recovery's outcome");
    }
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
