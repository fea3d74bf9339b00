//! A webhook receiver for trying Hookline out: it checks each request's Standard Webhooks
//! signature and logs what arrived, with the `webhook-id` to look the delivery up by.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hookline_runtime::BoxError;
use hookline_signing::{verify, Secret};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Receivers commonly refuse timestamps further than this from their clock.
const TOLERANCE_SECS: i64 = 300;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// Checks one request; returns its `webhook-id` when the signature verifies.
fn check(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> Result<String, String> {
    let id = header(headers, "webhook-id").ok_or("missing webhook-id")?;
    let timestamp: i64 = header(headers, "webhook-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or("missing or malformed webhook-timestamp")?;
    let signature = header(headers, "webhook-signature").ok_or("missing webhook-signature")?;
    if (chrono::Utc::now().timestamp() - timestamp).abs() > TOLERANCE_SECS {
        return Err("timestamp outside the tolerance".into());
    }
    verify(secret, id, timestamp, body, signature).map_err(|err| err.to_string())?;
    Ok(id.to_owned())
}

async fn receive(State(secret): State<Arc<Secret>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    match check(&secret, &headers, &body) {
        Ok(webhook_id) => {
            let text = String::from_utf8_lossy(&body);
            tracing::info!(%webhook_id, body = %text, "verified delivery");
            StatusCode::NO_CONTENT
        }
        Err(reason) => {
            tracing::warn!(%reason, "refused a request");
            StatusCode::UNAUTHORIZED
        }
    }
}

/// Serves the receiver on `listener` (any path) until `shutdown` fires.
pub async fn run(
    secret: Secret,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BoxError> {
    let app = Router::new()
        .fallback(post(receive))
        .with_state(Arc::new(secret));
    tracing::info!(address = %listener.local_addr()?, "demo receiver listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}
