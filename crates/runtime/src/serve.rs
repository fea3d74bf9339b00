use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use hookline_domain::ErrorCode;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::api::{ApiError, UNAVAILABLE_RETRY_AFTER_SECS};
use crate::startup::{Starting, StartupArgs, StartupError, StartupProgress};

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
    startup: StartupProgress,
}

impl Context {
    pub fn new(shutdown: CancellationToken) -> Self {
        let registry = Registry::new();
        let startup = StartupProgress::register(&registry)
            .expect("a new registry has no start-up metrics yet");
        Self {
            registry,
            shutdown,
            startup,
        }
    }

    /// The start-up of the service named `service`: see [`Starting::wait_for`].
    pub fn starting(&self, service: &'static str) -> Starting {
        Starting {
            service,
            progress: self.startup.clone(),
            abandon: self.shutdown.clone(),
        }
    }
}

/// What the services answer once they are built.
struct Started {
    /// Their API routes, with the HTTP metrics layer.
    routes: Router,
    ready: Vec<(&'static str, Arc<AtomicBool>)>,
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    /// Empty while the services are being built.
    started: Arc<OnceLock<Started>>,
    startup: StartupProgress,
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

/// Serves on `listener`, until `shutdown` fires, the services that `start` builds, then waits
/// for every worker to drain.
///
/// `/healthz`, `/metrics` and `/openapi.json` answer at once; while `start` runs (waiting for
/// Kafka and the ledger database, see [`crate::startup`]), `/readyz` and every API route answer
/// 503, and if it has not finished within `startup`'s timeout the process stops with
/// [`StartupError::TimedOut`]. A shutdown signal meanwhile stops it cleanly. Once the services
/// are built their routes answer and their workers run. A worker that fails cancels
/// `shutdown`, so one broken stage stops the process instead of leaving it half-working; the
/// first error is returned.
pub async fn serve<F>(
    listener: TcpListener,
    context: &Context,
    startup: &StartupArgs,
    start: F,
) -> Result<(), BoxError>
where
    F: Future<Output = Result<Vec<Service>, BoxError>>,
{
    let Context {
        registry,
        shutdown,
        startup: progress,
    } = context.clone();
    let began = Instant::now();
    progress.begin();
    let http_metrics = HttpMetrics::register(&registry)?;
    crate::ops_metrics::register_process_metrics(&registry)?;
    let started = Arc::new(OnceLock::<Started>::new());
    let ops = OpsState {
        registry,
        started: Arc::clone(&started),
        startup: progress.clone(),
        shutdown: shutdown.clone(),
    };
    let observed = middleware::from_fn_with_state(http_metrics, observe);
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_document))
        .with_state(ops)
        .layer(observed.clone());
    // Every other request goes to the services' routes once they are built; until then it is
    // refused as `unavailable`.
    let while_starting = Router::new()
        .fallback(|| async { starting_answer() })
        .layer(observed.clone());
    let app = probes.fallback({
        let started = Arc::clone(&started);
        move |request: Request| {
            let routes = started
                .get()
                .map_or_else(|| while_starting.clone(), |started| started.routes.clone());
            async move {
                match routes.oneshot(request).await {
                    Ok(response) => response,
                    Err(infallible) => match infallible {},
                }
            }
        }
    });

    let address = listener.local_addr()?;
    tracing::info!(%address, "listening");
    let server =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let server = tokio::spawn(async move { server.await });

    // Pinned here rather than moved into `select!`, so the steps it is waiting on can still be
    // named when the deadline passes.
    let start = std::pin::pin!(start);
    let deadline = tokio::time::sleep(startup.timeout());
    let built = tokio::select! {
        () = shutdown.cancelled() => Err(StartupError::ShutDown.into()),
        () = deadline => Err(StartupError::TimedOut {
            timeout: startup.timeout(),
            waiting: progress.waiting_for(),
        }
        .into()),
        built = start => built,
    };
    let services = match built {
        Ok(services) => services,
        Err(error) => {
            shutdown.cancel();
            server.await??;
            // A signal while starting is a clean stop, whichever step it interrupted.
            let interrupted = matches!(
                error.downcast_ref::<StartupError>(),
                Some(StartupError::ShutDown)
            );
            return if interrupted { Ok(()) } else { Err(error) };
        }
    };

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
    let routes = routes.layer(observed);
    started.get_or_init(|| Started { routes, ready });
    progress.finish(began.elapsed());
    tracing::info!(elapsed_ms = began.elapsed().as_millis() as u64, "started");

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

/// What an API route answers while the services are still being built.
fn starting_answer() -> Response {
    ApiError::new(
        ErrorCode::Unavailable,
        "this service is starting: it is waiting for Kafka or the ledger database; retry later",
    )
    .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECS)
    .into_response()
}

async fn readyz(State(ops): State<OpsState>) -> Response {
    if ops.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let Some(started) = ops.started.get() else {
        let steps = ops.startup.waiting_for();
        let message = if steps.is_empty() {
            "starting".to_owned()
        } else {
            format!("starting: waiting for {steps}")
        };
        return (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    };
    let waiting: Vec<&str> = started
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
