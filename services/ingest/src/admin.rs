//! The operator API: tenants (with their settings) and their API keys, behind the admin token.
//! Disabling a tenant and revoking a key are records in the compacted topics, so every service's
//! control plane refuses the keys within moments. One route here takes a tenant key instead:
//! `GET /v1/keys/self`, which tells a key's holder what the key may do.

use axum::extract::FromRequestParts;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hookline_control::hash_api_key;
use hookline_domain::ids::{new_key_id, new_tenant_id};
use hookline_domain::ErrorCode;
use hookline_runtime::api::{bearer_token, ApiError, ApiJson, ApiQuery, ErrorBody, Tenant};
use hookline_runtime::deadline::Deadline;
use hookline_schemas::{
    ApiKeyRecord, PayloadShape, PublishLimit, Scope, TenantRecord, SCHEMA_VERSION,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::page::{self, Page};
use crate::patch::nullable;
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: String,
    /// The payload shape of the tenant's webhooks unless they choose one.
    #[serde(default)]
    payload: PayloadShape,
}

/// Create a tenant.
#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    security(("admin_token" = [])),
    request_body = CreateTenant,
    responses(
        (status = 201, description = "The new tenant.", body = TenantRecord),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    deadline: Deadline,
    _admin: Admin,
    ApiJson(request): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantRecord>), ApiError> {
    check_name(&request.name)?;
    let tenant = TenantRecord {
        schema_version: SCHEMA_VERSION,
        id: new_tenant_id(),
        name: request.name,
        created_at: Utc::now(),
        payload: request.payload,
        disabled_at: None,
        publish_limit: None,
    };
    store_tenant(&state, deadline, &tenant).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// Writes the tenant and waits until this process's view has it.
async fn store_tenant(
    state: &AppState,
    deadline: Deadline,
    tenant: &TenantRecord,
) -> Result<(), ApiError> {
    state
        .write(deadline, &state.topics.tenants(), &tenant.id, tenant)
        .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: String,
    /// Defaults to every scope.
    #[serde(default)]
    #[schema(min_items = 1)]
    scopes: Option<Vec<Scope>>,
}

/// A new API key: the key itself is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    view: KeyView,
    /// `hk_…`: send it as `Authorization: Bearer <key>`.
    key: String,
}

/// A new API key: `hk_` and 32 random bytes, URL-safe base64.
fn generate_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("hk_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Create an API key of a tenant.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant_id}/keys",
    tag = "tenants",
    security(("admin_token" = [])),
    params(("tenant_id" = String, Path)),
    request_body = CreateKey,
    responses(
        (status = 201, description = "The new key, shown this once.", body = CreatedKey),
        (status = 404, description = "No such tenant (`not_found`).", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    deadline: Deadline,
    _admin: Admin,
    Path(tenant_id): Path<String>,
    ApiJson(request): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    check_name(&request.name)?;
    let scopes = request.scopes.unwrap_or_else(|| Scope::ALL.to_vec());
    if scopes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "scopes: list at least one scope",
        ));
    }
    state.catch_up(deadline).await?;
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
        revoked_at: None,
    };
    state
        .write(deadline, &state.topics.keys(), &record.id, &record)
        .await?;
    // The key itself is shown this once; only its hash is kept.
    let body = CreatedKey {
        view: KeyView::new(&record),
        key,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
}

/// List tenants, oldest first.
#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "tenants",
    security(("admin_token" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tenants.", body = Page<TenantRecord>),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    deadline: Deadline,
    _admin: Admin,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<TenantRecord>>, ApiError> {
    let limit = page::limit(query.limit)?;
    state.catch_up(deadline).await?;
    let control = state.control.read();
    let tenants = control.tenants_after(query.cursor.as_deref()).cloned();
    Ok(Json(page::paginate(
        tenants,
        |tenant| &tenant.id,
        query.cursor.as_deref(),
        limit,
    )))
}

/// The tenant as the view has it after catching up with every acknowledged write.
async fn current_tenant(
    state: &AppState,
    deadline: Deadline,
    tenant_id: &str,
) -> Result<TenantRecord, ApiError> {
    state.catch_up(deadline).await?;
    state
        .control
        .read()
        .tenant(tenant_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("tenant"))
}

/// Read a tenant.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}",
    tag = "tenants",
    security(("admin_token" = [])),
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, description = "The tenant.", body = TenantRecord),
        (status = 404, description = "No such tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    deadline: Deadline,
    _admin: Admin,
    Path(tenant_id): Path<String>,
) -> Result<Json<TenantRecord>, ApiError> {
    Ok(Json(current_tenant(&state, deadline, &tenant_id).await?))
}

/// Disables a tenant for good: its keys stop working and its webhooks receive nothing.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant_id}/disable",
    tag = "tenants",
    security(("admin_token" = [])),
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, description = "The tenant, disabled.", body = TenantRecord),
        (status = 404, description = "No such tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn disable_tenant(
    State(state): State<AppState>,
    deadline: Deadline,
    _admin: Admin,
    Path(tenant_id): Path<String>,
) -> Result<Json<TenantRecord>, ApiError> {
    let mut tenant = current_tenant(&state, deadline, &tenant_id).await?;
    if tenant.disabled_at.is_some() {
        return Ok(Json(tenant));
    }
    tenant.disabled_at = Some(Utc::now());
    store_tenant(&state, deadline, &tenant).await?;
    Ok(Json(tenant))
}

/// A partial update of a tenant's settings: fields present replace, `publish_limit: null`
/// returns the tenant to the deployment's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTenant {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: Option<String>,
    #[serde(default)]
    payload: Option<PayloadShape>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<PublishLimit>)]
    publish_limit: Option<Option<PublishLimit>>,
}

/// Change a tenant's name, default payload shape or publish rate limit.
#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant_id}",
    tag = "tenants",
    security(("admin_token" = [])),
    params(("tenant_id" = String, Path)),
    request_body = PatchTenant,
    responses(
        (status = 200, description = "The tenant as changed.", body = TenantRecord),
        (status = 404, description = "No such tenant (`not_found`).", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
pub async fn patch_tenant(
    State(state): State<AppState>,
    deadline: Deadline,
    _admin: Admin,
    Path(tenant_id): Path<String>,
    ApiJson(patch): ApiJson<PatchTenant>,
) -> Result<Json<TenantRecord>, ApiError> {
    let mut tenant = current_tenant(&state, deadline, &tenant_id).await?;
    let PatchTenant {
        name,
        payload,
        publish_limit,
    } = patch;
    if let Some(name) = name {
        check_name(&name)?;
        tenant.name = name;
    }
    tenant.payload = payload.unwrap_or(tenant.payload);
    if let Some(publish_limit) = publish_limit {
        if publish_limit.is_some_and(|limit| limit.burst == Some(0)) {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                "publish_limit.burst: at least 1",
            ));
        }
        tenant.publish_limit = publish_limit;
    }
    store_tenant(&state, deadline, &tenant).await?;
    Ok(Json(tenant))
}

/// An API key as the API shows it: never its secret or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    id: String,
    tenant_id: String,
    name: String,
    scopes: Vec<Scope>,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

impl KeyView {
    fn new(record: &ApiKeyRecord) -> Self {
        Self {
            id: record.id.clone(),
            tenant_id: record.tenant_id.clone(),
            name: record.name.clone(),
            scopes: record.scopes.clone(),
            created_at: record.created_at,
            revoked_at: record.revoked_at,
        }
    }
}

/// A tenant's keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    data: Vec<KeyView>,
}

/// List a tenant's API keys (never their secrets).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/keys",
    tag = "tenants",
    security(("admin_token" = [])),
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, description = "Every key of the tenant.", body = KeyList),
        (status = 404, description = "No such tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    deadline: Deadline,
    _admin: Admin,
    Path(tenant_id): Path<String>,
) -> Result<Json<KeyList>, ApiError> {
    current_tenant(&state, deadline, &tenant_id).await?;
    let control = state.control.read();
    let data = control.keys_of(&tenant_id).map(KeyView::new).collect();
    Ok(Json(KeyList { data }))
}

/// The key a request is made with: its tenant, name and scopes (never its secret). Any key
/// may read itself, whatever its scopes.
#[utoipa::path(
    get,
    path = "/v1/keys/self",
    tag = "tenants",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The calling key.", body = KeyView),
        (status = 401, description = "No valid key (`unauthorized`).", body = ErrorBody),
    )
)]
pub async fn current_key(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<KeyView>, ApiError> {
    let Tenant(principal) = tenant;
    let control = state.control.read();
    let record = control
        .key(&principal.tenant_id, &principal.key_id)
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Json(KeyView::new(record)))
}

/// Revokes a key: recorded in the `keys` topic, so every service refuses it within moments.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant_id}/keys/{key_id}/revoke",
    tag = "tenants",
    security(("admin_token" = [])),
    params(("tenant_id" = String, Path), ("key_id" = String, Path)),
    responses(
        (status = 200, description = "The key, revoked.", body = KeyView),
        (status = 404, description = "No such key of this tenant (`not_found`).", body = ErrorBody),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    deadline: Deadline,
    _admin: Admin,
    Path((tenant_id, key_id)): Path<(String, String)>,
) -> Result<Json<KeyView>, ApiError> {
    state.catch_up(deadline).await?;
    let mut record = state
        .control
        .read()
        .key(&tenant_id, &key_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("key"))?;
    if record.revoked_at.is_none() {
        record.revoked_at = Some(Utc::now());
        state
            .write(deadline, &state.topics.keys(), &record.id, &record)
            .await?;
    }
    Ok(Json(KeyView::new(&record)))
}
