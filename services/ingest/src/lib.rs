//! ingest: the public write API.
//!
//! Accepts events (one or a batch), validates and sizes them, and answers 202 only after Kafka
//! acknowledged them (`acks=all`, idempotent producer), so an accepted event is never lost. Also
//! owns the control-plane API (tenants, API keys, event types, webhooks), written as records to
//! the compacted topics. Bad input is refused with a stable error code and never reaches a topic.

mod admin;
mod control_writes;
mod event_types;
mod events;
mod metrics;
mod page;
mod patch;
mod publish_limit;
mod webhooks;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};
use axum::Router;
use hookline_control::{hash_api_key, ControlPlane};
use hookline_delivery::{AddressArgs, SecretKeyArgs};
use hookline_domain::{AddressPolicy, UrlPolicy};
use hookline_kafka::{ensure_topics, AtomicPublisher, KafkaAdapterError, KafkaArgs, Publisher};
use hookline_runtime::{serve, BoxError, Context, Service, StartupArgs};
use hookline_schemas::{PublishLimit, TopicNames};
use hookline_signing::SecretKeys;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::event_types::SchemaCache;
use crate::metrics::IngestMetrics;
use crate::publish_limit::PublishLimiter;

/// How long `POST /v1/webhooks/{id}/test` waits for the endpoint.
/// Batch publishes in flight at once per instance: each is one Kafka transaction, and a
/// transactional producer runs one at a time.
const BATCHES_IN_FLIGHT: usize = 4;
const TEST_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The OpenAPI description of ingest's routes (the `hookline` crate merges it with the
/// ledger's into the document of the whole API).
#[derive(OpenApi)]
#[openapi(paths(
    events::publish,
    events::publish_batch,
    admin::create_tenant,
    admin::list_tenants,
    admin::get_tenant,
    admin::patch_tenant,
    admin::disable_tenant,
    admin::create_key,
    admin::list_keys,
    admin::revoke_key,
    admin::current_key,
    webhooks::create,
    webhooks::list,
    webhooks::get,
    webhooks::patch,
    webhooks::delete,
    webhooks::activate,
    webhooks::deactivate,
    webhooks::rotate_secret,
    webhooks::send_test,
    event_types::create,
    event_types::list,
    event_types::get,
    event_types::patch,
))]
pub struct IngestApi;

/// Settings of the ingest service.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Token of the operator API (tenants and keys), sent as `Authorization: Bearer <token>`.
    #[arg(
        long = "admin-token",
        env = "HOOKLINE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: String,
    /// Largest request body accepted, in bytes (one event, or one batch).
    #[arg(long = "max-body-bytes", env = "HOOKLINE_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// Most events in one batch request.
    #[arg(
        long = "max-batch-events",
        env = "HOOKLINE_MAX_BATCH_EVENTS",
        default_value_t = 100
    )]
    pub max_batch_events: usize,
    /// Accept `http://` webhook URLs (local development only).
    #[arg(
        long = "allow-http-urls",
        env = "HOOKLINE_ALLOW_HTTP_URLS",
        default_value_t = false
    )]
    pub allow_http_urls: bool,
    /// Most webhooks one tenant may have.
    #[arg(
        long = "max-webhooks-per-tenant",
        env = "HOOKLINE_MAX_WEBHOOKS_PER_TENANT",
        default_value_t = 50
    )]
    pub max_webhooks_per_tenant: usize,
    /// How long a rotated-out webhook secret keeps signing alongside the new one, in seconds.
    #[arg(
        long = "secret-rotation-overlap-secs",
        env = "HOOKLINE_SECRET_ROTATION_OVERLAP_SECS",
        default_value_t = 24 * 60 * 60
    )]
    pub secret_rotation_overlap_secs: u32,
    /// Events per second one tenant may publish to this process (0: no limit); an operator may
    /// set a tenant's own with `PATCH /v1/tenants/{id}`.
    #[arg(
        long = "tenant-publish-rate",
        env = "HOOKLINE_TENANT_PUBLISH_RATE",
        default_value_t = 50_000
    )]
    pub tenant_publish_rate: u32,
    /// Events one tenant may publish at once above its rate; defaults to one second's worth.
    #[arg(long = "tenant-publish-burst", env = "HOOKLINE_TENANT_PUBLISH_BURST")]
    pub tenant_publish_burst: Option<u32>,
}

/// Everything the ingest service needs.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub ingest: IngestArgs,
    #[command(flatten)]
    pub addresses: AddressArgs,
    #[command(flatten)]
    pub secret_keys: SecretKeyArgs,
    #[command(flatten)]
    pub startup: StartupArgs,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub control: ControlPlane,
    pub publisher: Publisher,
    /// Batches of events, each produced in one transaction.
    pub batches: Arc<AtomicPublisher>,
    pub topics: Arc<TopicNames>,
    pub admin_token_hash: Arc<str>,
    pub url_policy: UrlPolicy,
    pub max_batch_events: usize,
    pub max_webhooks_per_tenant: usize,
    pub secret_rotation_overlap: chrono::Duration,
    /// Compiled JSON Schemas of the event-type catalogues.
    pub schemas: SchemaCache,
    pub publish_limiter: PublishLimiter,
    /// Client of `POST /v1/webhooks/{id}/test`.
    pub http: hookline_delivery::Client,
    /// Addresses webhook URLs may point at (IP literals are checked at creation).
    pub addresses: AddressPolicy,
    /// Seal webhook secrets before they enter the `webhooks` topic.
    pub secret_keys: SecretKeys,
    pub metrics: IngestMetrics,
}

impl FromRef<AppState> for ControlPlane {
    fn from_ref(state: &AppState) -> Self {
        state.control.clone()
    }
}

/// Builds the ingest service: settings checked, then (waiting for Kafka as long as it takes)
/// topics ensured, control plane caught up, and the batch publisher's transactions initialized.
pub async fn start(config: &Config, context: &Context) -> Result<Service, BoxError> {
    if config.ingest.admin_token.len() < 16 {
        return Err("HOOKLINE_ADMIN_TOKEN must be at least 16 characters".into());
    }
    let addresses = config.addresses.policy()?;
    let secret_keys = config.secret_keys.keys()?;
    let starting = context.starting("ingest");
    let transient = KafkaAdapterError::is_transient;
    starting
        .wait_for("kafka topics", transient, || ensure_topics(&config.kafka))
        .await?;
    let control = starting
        .wait_for("control plane", transient, || {
            ControlPlane::start(&config.kafka, context.shutdown.clone())
        })
        .await?;
    metrics::register_webhook_states(&context.registry, control.clone())?;
    let transactional_id = config.kafka.transactional_id("ingest");
    // Initializing transactions needs the transaction coordinator, which a broker still
    // starting may not have elected yet.
    let batches = starting
        .wait_for("kafka transactions", transient, || {
            AtomicPublisher::start(&config.kafka, &transactional_id, BATCHES_IN_FLIGHT)
        })
        .await?;
    let state = AppState {
        control,
        publisher: Publisher::new(&config.kafka)?,
        batches: Arc::new(batches),
        topics: Arc::new(config.kafka.topics()),
        admin_token_hash: hash_api_key(&config.ingest.admin_token).into(),
        url_policy: UrlPolicy {
            allow_http: config.ingest.allow_http_urls,
        },
        max_batch_events: config.ingest.max_batch_events,
        max_webhooks_per_tenant: config.ingest.max_webhooks_per_tenant,
        secret_rotation_overlap: chrono::Duration::seconds(
            config.ingest.secret_rotation_overlap_secs.into(),
        ),
        schemas: SchemaCache::default(),
        publish_limiter: PublishLimiter::new(PublishLimit {
            events_per_second: config.ingest.tenant_publish_rate,
            burst: config.ingest.tenant_publish_burst,
        }),
        http: hookline_delivery::http_client(
            TEST_REQUEST_TIMEOUT,
            addresses.clone(),
            secret_keys.clone(),
        )?,
        addresses,
        secret_keys,
        metrics: IngestMetrics::register(&context.registry)?,
    };
    let routes = Router::new()
        .route("/v1/events", post(events::publish))
        .route("/v1/events/batch", post(events::publish_batch))
        .route(
            "/v1/tenants",
            post(admin::create_tenant).get(admin::list_tenants),
        )
        .route(
            "/v1/tenants/{tenant_id}",
            get(admin::get_tenant).patch(admin::patch_tenant),
        )
        .route(
            "/v1/tenants/{tenant_id}/disable",
            post(admin::disable_tenant),
        )
        .route(
            "/v1/tenants/{tenant_id}/keys",
            post(admin::create_key).get(admin::list_keys),
        )
        .route(
            "/v1/tenants/{tenant_id}/keys/{key_id}/revoke",
            post(admin::revoke_key),
        )
        .route("/v1/keys/self", get(admin::current_key))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/v1/webhooks/{webhook_id}",
            get(webhooks::get)
                .patch(webhooks::patch)
                .delete(webhooks::delete),
        )
        .route(
            "/v1/webhooks/{webhook_id}/activate",
            post(webhooks::activate),
        )
        .route(
            "/v1/webhooks/{webhook_id}/deactivate",
            post(webhooks::deactivate),
        )
        .route(
            "/v1/webhooks/{webhook_id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/v1/webhooks/{webhook_id}/test", post(webhooks::send_test))
        .route(
            "/v1/event-types",
            post(event_types::create).get(event_types::list),
        )
        .route(
            "/v1/event-types/{name}",
            get(event_types::get).patch(event_types::patch),
        )
        .layer(DefaultBodyLimit::max(config.ingest.max_body_bytes))
        .with_state(state.clone());

    let publisher = state.publisher.clone();
    let shutdown = context.shutdown.clone();
    let flush_on_shutdown = Box::pin(async move {
        shutdown.cancelled().await;
        publisher.flush(std::time::Duration::from_secs(10)).await?;
        Ok(())
    });
    Ok(Service {
        name: "ingest",
        routes,
        ready: Arc::new(AtomicBool::new(true)),
        workers: vec![flush_on_shutdown],
    })
}

/// Runs the ingest service on `listener` until `shutdown` fires.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BoxError> {
    let context = Context::new(shutdown);
    serve(listener, &context, &config.startup, async {
        Ok(vec![start(&config, &context).await?])
    })
    .await
}
