//! Hookline's web console, served at `/console`: server-rendered pages for webhook owners.
//!
//! The console is a client of the public API and nothing more: every page calls the API over
//! HTTP with the signed-in tenant key as its bearer token, so it can do exactly what the key's
//! scopes allow, and it adds no private route to any data. The key lives only in a sealed,
//! `HttpOnly`, `SameSite=Strict` session cookie (`session.rs`); every form carries the
//! session's CSRF token, checked on every POST; every answer carries a strict
//! Content-Security-Policy. Reading works without JavaScript; htmx (vendored in `assets/`, with
//! its licence) only boosts links and forms, swaps a test event's answer in beside its form and
//! follows a running recovery job, and `assets/console.js` only adds the copy button of the
//! page that shows a secret once.
//!
//! Sign-in takes a tenant key or the admin token (`auth.rs`): an operator picks a tenant and
//! the console acts for it with a short-lived key it creates through the admin API. What the
//! key's scopes do not allow is shown disabled with the scope it needs; the API refuses it
//! anyway.

mod api;
mod auth;
mod charts;
mod events;
mod pages;
mod recovery;
mod session;
mod test_event;
mod views;
mod webhook_form;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hookline_runtime::Service;

pub use api::{ApiClient, ApiFailure};
pub use session::{Sealer, Session, COOKIE_NAME};

/// Every answer's Content-Security-Policy: only the console's own scripts, styles and forms.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'";

#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Base URL of the public API the console calls (default: this process's own listener).
    #[arg(long = "console-api-url", env = "HOOKLINE_CONSOLE_API_URL")]
    pub api_url: Option<String>,
    /// Leave `Secure` off the session cookie, for a console served over plain HTTP locally.
    #[arg(
        long = "console-insecure-cookies",
        env = "HOOKLINE_CONSOLE_INSECURE_COOKIES",
        default_value_t = false
    )]
    pub insecure_cookies: bool,
    /// How long a console session lasts after sign-in.
    #[arg(
        long = "console-session-hours",
        env = "HOOKLINE_CONSOLE_SESSION_HOURS",
        default_value_t = 8
    )]
    pub session_hours: u32,
}

/// What the console needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the public API, e.g. `http://127.0.0.1:8080`.
    pub api_url: String,
    pub insecure_cookies: bool,
    pub session_hours: u32,
}

pub(crate) struct Console {
    pub api: ApiClient,
    pub sealer: Sealer,
    pub session_lifetime: chrono::Duration,
}

/// Builds the console: its routes under `/console`, ready at once, with no workers.
pub fn start(config: &Config) -> Service {
    let console = Arc::new(Console {
        api: ApiClient::new(&config.api_url),
        sealer: Sealer::random(!config.insecure_cookies),
        session_lifetime: chrono::Duration::hours(i64::from(config.session_hours)),
    });
    Service {
        name: "console",
        routes: router(console),
        ready: Arc::new(AtomicBool::new(true)),
        workers: Vec::new(),
    }
}

fn router(console: Arc<Console>) -> Router {
    let pages = Router::new()
        .route("/console", get(pages::home))
        .route(
            "/console/sign-in",
            get(auth::sign_in_form).post(auth::sign_in),
        )
        .route("/console/sign-out", post(auth::sign_out))
        .route(
            "/console/tenants",
            get(auth::tenants).post(auth::pick_tenant),
        )
        .route(
            "/console/webhooks",
            get(pages::webhooks).post(webhook_form::create_webhook),
        )
        .route("/console/webhooks/new", get(webhook_form::new_webhook))
        .route("/console/webhooks/{webhook_id}", get(pages::webhook))
        .route(
            "/console/webhooks/{webhook_id}/edit",
            get(webhook_form::edit_webhook_form).post(webhook_form::edit_webhook),
        )
        // Static segments win over `{action}`: it is only activate and deactivate.
        .route(
            "/console/webhooks/{webhook_id}/{action}",
            post(pages::switch_webhook),
        )
        .route(
            "/console/webhooks/{webhook_id}/delete",
            get(pages::confirm_delete).post(pages::delete_webhook),
        )
        .route(
            "/console/webhooks/{webhook_id}/rotate-secret",
            get(pages::confirm_rotate_secret).post(pages::rotate_secret),
        )
        .route(
            "/console/webhooks/{webhook_id}/test",
            post(test_event::test_webhook),
        )
        .route(
            "/console/webhooks/{webhook_id}/recover",
            post(recovery::recover),
        )
        .route(
            "/console/webhooks/{webhook_id}/recover/{job_id}",
            get(recovery::recovery),
        )
        .route(
            "/console/deliveries/{delivery_id}/replay",
            post(pages::replay),
        )
        .route("/console/events", get(events::events))
        .with_state(console);
    Router::new()
        .merge(pages)
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/htmx.min.js", get(htmx))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/htmx-LICENSE", get(htmx_licence))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
        (X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages show secrets once and tenant data: never from a shared or back-button cache.
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_bytes!("../assets/console.css"),
    )
}

async fn htmx() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/htmx.min.js"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/console.js"),
    )
}

async fn htmx_licence() -> Response {
    asset(
        "text/plain; charset=utf-8",
        include_bytes!("../assets/htmx-LICENSE"),
    )
}
