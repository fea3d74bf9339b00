//! Signing in and out, and the operator's tenant picker.
//!
//! The sign-in form takes a tenant API key or the admin token. A tenant key is checked with
//! `GET /v1/keys/self`, which also tells the console the key's scopes. The admin token is
//! recognised by `GET /v1/tenants`; the operator then picks a tenant, and because the API acts
//! for a tenant only with one of its keys, the console creates a key for that tenant through
//! the admin API (`POST /v1/tenants/{id}/keys`, named `console session <operator> until
//! <expiry>`), keeps it only in the sealed session, and revokes it when the operator switches
//! tenant or signs out. Keys of sessions that ended without signing out are revoked the next
//! time an operator opens that tenant.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use maud::html;
use reqwest::StatusCode as ApiStatus;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{segment, ApiFailure};
use crate::pages::{failure_page, rendered, see_other, Submitted, SIGN_IN};
use crate::session::{Operator, Session, TenantShown};
use crate::views::{csrf_field, failure, page, query, status_badge, text};
use crate::Console;

type Shared = State<Arc<Console>>;

const TENANTS: &str = "/console/tenants";
/// The start of the name of every key the console creates for an operator.
const SESSION_KEY_PREFIX: &str = "console session ";
const MAX_OPERATOR_NAME_CHARS: usize = 80;

pub async fn sign_in_form(State(console): Shared, headers: HeaderMap) -> Response {
    match console.sealer.from_headers(&headers) {
        Some(Session {
            api_key: Some(_), ..
        }) => see_other("/console/webhooks"),
        Some(Session {
            operator: Some(_), ..
        }) => see_other(TENANTS),
        Some(session) => sign_in_page(&session, None, StatusCode::OK),
        None => {
            let session = Session::new(None, console.session_lifetime);
            let cookie = console.sealer.set_cookie(&session);
            let page = sign_in_page(&session, None, StatusCode::OK);
            ([(SET_COOKIE, cookie)], page).into_response()
        }
    }
}

fn sign_in_page(session: &Session, error: Option<&ApiFailure>, status: StatusCode) -> Response {
    let content = html! {
        form.card method="post" action=(SIGN_IN) {
            (csrf_field(&session.csrf))
            label for="api_key" { "Tenant API key or admin token" }
            input #api_key type="password" name="api_key" required autocomplete="off";
            @if let Some(error) = error { (failure(error)) }
            p.hint {
                "With a tenant key the console can do what the key's scopes allow. With the admin token you pick a tenant next. "
                "Either is kept only in an encrypted session cookie."
            }
            button type="submit" { "Sign in" }
        }
    };
    rendered(status, page("Sign in", None, content))
}

pub async fn sign_in(State(console): Shared, form: Submitted) -> Response {
    let token = form.field("api_key");
    let refused = match console.api.get(token, "/v1/keys/self", &[]).await {
        Ok(key) => return signed_in(&console, tenant_session(&console, token, &key)),
        Err(refused) => refused,
    };
    if refused.status != ApiStatus::UNAUTHORIZED {
        return sign_in_page(&form.session, Some(&refused), StatusCode::BAD_GATEWAY);
    }
    // Not a tenant key: perhaps the admin token, which may list tenants.
    match console
        .api
        .get(token, "/v1/tenants", &[("limit", "1")])
        .await
    {
        Ok(_) => {
            let mut session = Session::new(None, console.session_lifetime);
            session.operator = Some(Operator {
                admin_token: token.to_owned(),
                key_id: None,
            });
            let cookie = console.sealer.set_cookie(&session);
            ([(SET_COOKIE, cookie)], Redirect::to(TENANTS)).into_response()
        }
        Err(error) if error.status == ApiStatus::UNAUTHORIZED => {
            sign_in_page(&form.session, Some(&refused), StatusCode::UNAUTHORIZED)
        }
        Err(error) => sign_in_page(&form.session, Some(&error), StatusCode::BAD_GATEWAY),
    }
}

/// A new session (with a new CSRF token) for a tenant key, as `GET /v1/keys/self` showed it.
fn tenant_session(console: &Console, key: &str, shown: &Value) -> Session {
    let tenant_id = text(shown, "tenant_id").to_owned();
    let mut session = Session::new(Some(key.to_owned()), console.session_lifetime);
    session.scopes = scopes_of(shown);
    session.tenant = Some(TenantShown {
        name: tenant_id.clone(),
        id: tenant_id,
    });
    session
}

fn scopes_of(key: &Value) -> Vec<String> {
    key["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn signed_in(console: &Console, session: Session) -> Response {
    (
        [(SET_COOKIE, console.sealer.set_cookie(&session))],
        Redirect::to("/console/webhooks"),
    )
        .into_response()
}

pub async fn sign_out(State(console): Shared, form: Submitted) -> Response {
    revoke_session_key(&console, &form.session).await;
    (
        [(SET_COOKIE, console.sealer.clear_cookie())],
        Redirect::to(SIGN_IN),
    )
        .into_response()
}

/// Revokes the key the console created for an operator's current tenant, if any. A key that
/// cannot be revoked now is revoked by the next sweep of its tenant, once its session expired.
async fn revoke_session_key(console: &Console, session: &Session) {
    let (Some(operator), Some(tenant)) = (&session.operator, &session.tenant) else {
        return;
    };
    let Some(key_id) = &operator.key_id else {
        return;
    };
    if let Err(error) = revoke(console, &operator.admin_token, &tenant.id, key_id).await {
        tracing::warn!(tenant_id = %tenant.id, key_id = %key_id, error = %error, "console session key not revoked");
    }
}

async fn revoke(
    console: &Console,
    admin_token: &str,
    tenant_id: &str,
    key_id: &str,
) -> Result<Value, ApiFailure> {
    let path = format!(
        "/v1/tenants/{}/keys/{}/revoke",
        segment(tenant_id),
        segment(key_id)
    );
    console.api.post(admin_token, &path, &json!({})).await
}

/// Revokes the tenant's console session keys whose session has expired (their name says
/// until when they were meant to live).
async fn sweep_expired_session_keys(console: &Console, admin_token: &str, tenant_id: &str) {
    let path = format!("/v1/tenants/{}/keys", segment(tenant_id));
    let Ok(keys) = console.api.get(admin_token, &path, &[]).await else {
        return;
    };
    let expired = keys["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|key| key["revoked_at"].is_null())
        .filter(|key| session_key_expired(text(key, "name"), Utc::now()));
    for key in expired {
        if let Err(error) = revoke(console, admin_token, tenant_id, text(key, "id")).await {
            tracing::warn!(tenant_id = %tenant_id, error = %error, "expired console session key not revoked");
        }
    }
}

fn session_key_name(operator: &str, expires_at: DateTime<Utc>) -> String {
    let operator: String = operator.chars().take(MAX_OPERATOR_NAME_CHARS).collect();
    let operator = if operator.is_empty() {
        "operator"
    } else {
        &operator
    };
    format!(
        "{SESSION_KEY_PREFIX}{operator} until {}",
        expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

fn session_key_expired(name: &str, now: DateTime<Utc>) -> bool {
    name.strip_prefix(SESSION_KEY_PREFIX)
        .and_then(|rest| rest.rsplit_once(" until "))
        .and_then(|(_, until)| DateTime::parse_from_rfc3339(until).ok())
        .is_some_and(|until| until < now)
}

/// A signed-in operator: their session and the admin token. Anyone else is sent to sign in.
pub struct SignedInOperator {
    session: Session,
    admin_token: String,
}

impl FromRequestParts<Arc<Console>> for SignedInOperator {
    type Rejection = Redirect;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let session = console
            .sealer
            .from_headers(&parts.headers)
            .ok_or_else(|| Redirect::to(SIGN_IN))?;
        let admin_token = session
            .operator
            .as_ref()
            .map(|operator| operator.admin_token.clone())
            .ok_or_else(|| Redirect::to(SIGN_IN))?;
        Ok(Self {
            session,
            admin_token,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TenantsQuery {
    cursor: String,
}

pub async fn tenants(
    State(console): Shared,
    operator: SignedInOperator,
    Query(params): Query<TenantsQuery>,
) -> Response {
    let listing = console
        .api
        .get(
            &operator.admin_token,
            "/v1/tenants",
            &[("limit", "100"), ("cursor", &params.cursor)],
        )
        .await;
    let session = &operator.session;
    let viewing = session.tenant.as_ref().map(|tenant| tenant.id.as_str());
    let content = html! {
        @match &listing {
            Err(error) => (failure(error)),
            Ok(listing) => {
                @let rows = listing["data"].as_array().cloned().unwrap_or_default();
                @if rows.is_empty() { p { "No tenants yet." } }
                @else {
                    form.card method="post" action=(TENANTS) {
                        (csrf_field(&session.csrf))
                        fieldset {
                            legend { "Tenant" }
                            @for tenant in &rows {
                                @let id = text(tenant, "id");
                                @let disabled = !tenant["disabled_at"].is_null();
                                label.check.tenant-choice {
                                    input type="radio" name="tenant" value=(id) required disabled[disabled] checked[viewing == Some(id)];
                                    " " (text(tenant, "name")) " " small { code { (id) } }
                                    @if disabled { " " (status_badge("disabled")) }
                                    @if viewing == Some(id) { " " strong { "(viewing)" } }
                                }
                            }
                        }
                        label for="operator" { "Your name (names the temporary key the console creates for this tenant)" }
                        input #operator type="text" name="operator" maxlength=(MAX_OPERATOR_NAME_CHARS) autocomplete="name";
                        p.hint { "The console acts for the tenant with a key of all scopes that lives as long as this session; it is revoked when you switch tenant or sign out." }
                        button type="submit" { "Open tenant" }
                    }
                    @if let Some(cursor) = listing["next_cursor"].as_str() {
                        p { a href={ (TENANTS) "?" (query(&[("cursor", cursor)])) } { "More tenants" } }
                    }
                }
            }
        }
    };
    rendered(StatusCode::OK, page("Tenants", Some(session), content))
}

pub async fn pick_tenant(State(console): Shared, form: Submitted) -> Response {
    let Some(operator) = form.session.operator.clone() else {
        return see_other(SIGN_IN);
    };
    let admin_token = &operator.admin_token;
    let tenant_id = form.field("tenant");
    let tenant_path = format!("/v1/tenants/{}", segment(tenant_id));
    let tenant = match console.api.get(admin_token, &tenant_path, &[]).await {
        Ok(tenant) => tenant,
        Err(error) => return failure_page(&error, &form.session),
    };
    if !tenant["disabled_at"].is_null() {
        let error = ApiFailure {
            status: ApiStatus::CONFLICT,
            code: "tenant_disabled".into(),
            message: "this tenant is disabled: its keys authenticate nothing".into(),
        };
        return failure_page(&error, &form.session);
    }
    revoke_session_key(&console, &form.session).await;
    sweep_expired_session_keys(&console, admin_token, tenant_id).await;
    let expires_at = form.session.expires_at;
    let name = session_key_name(form.field("operator"), expires_at);
    let created = console
        .api
        .post(
            admin_token,
            &format!("{tenant_path}/keys"),
            &json!({"name": name}),
        )
        .await;
    let created = match created {
        Ok(created) => created,
        Err(error) => return failure_page(&error, &form.session),
    };
    let mut session = Session::new(
        Some(text(&created, "key").to_owned()),
        chrono::Duration::zero(),
    );
    session.expires_at = expires_at;
    session.scopes = scopes_of(&created);
    session.tenant = Some(TenantShown {
        id: tenant_id.to_owned(),
        name: text(&tenant, "name").to_owned(),
    });
    session.operator = Some(Operator {
        admin_token: operator.admin_token.clone(),
        key_id: Some(text(&created, "id").to_owned()),
    });
    signed_in(&console, session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_name_their_operator_and_expiry() {
        let until = DateTime::parse_from_rfc3339("2026-11-23T20:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let name = session_key_name("Ada", until);
        assert_eq!(name, "console session Ada until 2026-11-23T20:00:00Z");
        assert!(session_key_expired(
            &name,
            until + chrono::Duration::seconds(1)
        ));
        assert!(!session_key_expired(&name, until));
        assert!(session_key_name("", until).starts_with("console session operator until "));
        assert!(!session_key_expired(
            "ci deploy until 2000-01-01T00:00:00Z",
            until
        ));
        assert!(!session_key_expired(
            "console session without expiry",
            until
        ));
    }
}
