//! The ledger's read API.

use axum::extract::{Path, State};
use axum::Json;
use hookline_runtime::api::{ApiError, Tenant};
use hookline_schemas::Scope;
use hookline_store::{AttemptRow, DeliveryRow};
use serde::Serialize;

use crate::AppState;

#[derive(Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryRow,
    attempts: Vec<AttemptRow>,
}

/// `GET /v1/deliveries/{id}`: one delivery of the caller's tenant with all its attempts.
pub async fn delivery(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(delivery_id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let principal = tenant.require(Scope::DeliveriesRead)?;
    let found = state
        .ledger
        .delivery(&principal.tenant_id, &delivery_id)
        .await
        .map_err(|err| ApiError::unavailable(&err))?;
    let (delivery, attempts) = found.ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok(Json(DeliveryDetail { delivery, attempts }))
}
