use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A background loop of a service. It returns when the shutdown token fires and its in-flight
/// work is finished or handed off, or with an error that stops the whole process.
pub type Worker = BoxFuture<'static, Result<(), BoxError>>;

/// What a service's `start` hands to its caller.
pub struct Service {
    pub name: &'static str,
    /// Public API routes (may be empty).
    pub routes: Router,
    /// Set once the service can do its job; `/readyz` answers 503 until every service is ready.
    pub ready: Arc<AtomicBool>,
    pub workers: Vec<Worker>,
}

/// What a service needs from the process that runs it.
#[derive(Clone)]
pub struct Context {
    /// Every service registers its metrics here; `/metrics` exposes it.
    pub registry: Registry,
    /// Fires on SIGTERM/SIGINT (or when a worker fails).
    pub shutdown: CancellationToken,
}

impl Context {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            registry: Registry::new(),
            shutdown,
        }
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    ready: Arc<Vec<(&'static str, Arc<AtomicBool>)>>,
    shutdown: CancellationToken,
}

#[derive(Clone)]
struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "hookline_http_requests_total",
                "HTTP requests answered, by route and status",
            ),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "hookline_http_request_duration_seconds",
                "Time to answer an HTTP request, by route",
            ),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }
}

/// Serves `services` on `listener` until `shutdown` fires, then waits for every worker to drain.
/// A worker that fails cancels `shutdown`, so one broken stage stops the process instead of
/// leaving it half-working; the first error is returned.
pub async fn serve(
    listener: TcpListener,
    services: Vec<Service>,
    context: Context,
) -> Result<(), BoxError> {
    let Context { registry, shutdown } = context;
    let http_metrics = HttpMetrics::register(&registry)?;
    crate::ops_metrics::register_process_metrics(&registry)?;
    let mut routes = Router::new();
    let mut ready = Vec::new();
    let mut workers = JoinSet::new();
    for service in services {
        routes = routes.merge(service.routes);
        ready.push((service.name, service.ready));
        for worker in service.workers {
            workers.spawn(worker);
        }
    }
    let ops = OpsState {
        registry,
        ready: Arc::new(ready),
        shutdown: shutdown.clone(),
    };
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_document))
        .with_state(ops);
    let app = routes
        .merge(probes)
        .layer(middleware::from_fn_with_state(http_metrics, observe));

    let address = listener.local_addr()?;
    tracing::info!(%address, "listening");
    let server =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let server = tokio::spawn(async move { server.await });

    let mut first_error: Option<BoxError> = None;
    while let Some(outcome) = workers.join_next().await {
        let error: BoxError = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error,
            Err(panic) => Box::new(panic),
        };
        tracing::error!(error = %error, "a worker failed; shutting down");
        shutdown.cancel();
        first_error.get_or_insert(error);
    }
    shutdown.cancel();
    server.await??;
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

async fn readyz(State(ops): State<OpsState>) -> Response {
    if ops.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let waiting: Vec<&str> = ops
        .ready
        .iter()
        .filter(|(_, ready)| !ready.load(Ordering::Acquire))
        .map(|(name, _)| *name)
        .collect();
    if waiting.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        let message = format!("not ready: {}", waiting.join(", "));
        (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
    }
}

/// The OpenAPI document of the whole public API, whichever services this process runs.
async fn openapi_document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        hookline_schemas::OPENAPI_JSON,
    )
        .into_response()
}

async fn metrics(State(ops): State<OpsState>) -> Response {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&ops.registry.gather(), &mut body) {
        Ok(()) => ([("content-type", encoder.format_type().to_owned())], body).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// Counts and times every request by its route template (bounded labels, never raw paths).
async fn observe(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    metrics
        .requests
        .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
        .inc();
    metrics
        .duration
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(elapsed.as_secs_f64());
    tracing::debug!(%method, %route, status = status.as_u16(), elapsed_ms = elapsed.as_millis() as u64, "request");
    response
}
