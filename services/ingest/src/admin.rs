//! The operator API: tenants and their API keys, behind the admin token.

use axum::extract::FromRequestParts;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use hookline_control::hash_api_key;
use hookline_domain::ids::{new_key_id, new_tenant_id};
use hookline_domain::ErrorCode;
use hookline_runtime::api::{bearer_token, ApiError, ApiJson};
use hookline_schemas::{ApiKeyRecord, Scope, TenantRecord, SCHEMA_VERSION};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::AppState;

/// Longest tenant or key name.
const MAX_NAME_LEN: usize = 200;

/// Proof that a request carries the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Comparing hashes keeps the comparison's timing independent of the token.
        match bearer_token(parts) {
            Some(token) if hash_api_key(token) == *state.admin_token_hash => Ok(Admin),
            _ => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "the admin token is required in the Authorization header as `Bearer <token>`",
            )),
        }
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("name: must be 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    name: String,
}

pub async fn create_tenant(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(request): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantRecord>), ApiError> {
    check_name(&request.name)?;
    let tenant = TenantRecord {
        schema_version: SCHEMA_VERSION,
        id: new_tenant_id(),
        name: request.name,
        created_at: Utc::now(),
    };
    let topic = state.topics.tenants();
    let position = state
        .publisher
        .send_json(&topic, &tenant.id, &tenant)
        .await?;
    state.control.wait_applied(&topic, position).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    /// Defaults to every scope.
    #[serde(default)]
    scopes: Option<Vec<Scope>>,
}

/// A new API key: `hk_` and 32 random bytes, URL-safe base64.
fn generate_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("hk_{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub async fn create_key(
    State(state): State<AppState>,
    _admin: Admin,
    Path(tenant_id): Path<String>,
    ApiJson(request): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_name(&request.name)?;
    let scopes = request.scopes.unwrap_or_else(|| Scope::ALL.to_vec());
    if scopes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "scopes: list at least one scope",
        ));
    }
    state.control.catch_up().await?;
    if state.control.read().tenant(&tenant_id).is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    let key = generate_api_key();
    let record = ApiKeyRecord {
        schema_version: SCHEMA_VERSION,
        id: new_key_id(),
        tenant_id,
        name: request.name,
        key_hash: hash_api_key(&key),
        scopes,
        created_at: Utc::now(),
    };
    let topic = state.topics.keys();
    let position = state
        .publisher
        .send_json(&topic, &record.id, &record)
        .await?;
    state.control.wait_applied(&topic, position).await?;
    // The key itself is shown this once; only its hash is kept.
    let body = json!({
        "id": record.id,
        "tenant_id": record.tenant_id,
        "name": record.name,
        "scopes": record.scopes,
        "created_at": record.created_at,
        "key": key,
    });
    Ok((StatusCode::CREATED, Json(body)))
}
