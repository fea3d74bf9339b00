//! ledger: consumes `attempts`, writes them to ScyllaDB/Cassandra, and serves the read API.
//!
//! Contract: an attempt's offset is stored only after its rows are written; while the database
//! is unavailable the writer backs off and retries, committing nothing (and keeps polling with
//! its partitions paused, so it stays in its group), and catches up when it returns. A record
//! it can never write (undecodable, or refused by the database) goes to `dead-letters.ledger`.
//! Writes are idempotent, so redelivered attempts leave the same rows.

mod groups;
mod metrics;
mod recover;
mod routes;
mod series;
mod turns;
mod writer;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use hookline_control::ControlPlane;
use hookline_kafka::{
    ensure_topics, AtLeastOnceConsumer, DeadLetters, KafkaAdapterError, KafkaArgs, Publisher,
};
use hookline_runtime::{serve, watch_consumer_lag, BoxError, Context, Service, StartupArgs};
use hookline_store::{CassandraArgs, Ledger, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::metrics::LedgerMetrics;
pub use crate::recover::RecoverArgs;
use crate::recover::Recoveries;

/// The OpenAPI description of the ledger's routes (the `hookline` crate merges it with
/// ingest's into the document of the whole API).
#[derive(OpenApi)]
#[openapi(paths(
    routes::list_deliveries,
    routes::delivery,
    routes::replay,
    routes::webhook_attempts,
    routes::webhook_stats,
    routes::webhook_events,
    recover::start,
    recover::status,
    routes::list_events,
    routes::event,
))]
pub struct LedgerApi;

/// Settings of the ledger service.
#[derive(Debug, Clone, clap::Args)]
pub struct LedgerArgs {
    /// Most records written to the store at once.
    #[arg(
        long = "ledger-concurrency",
        env = "HOOKLINE_LEDGER_CONCURRENCY",
        default_value_t = 64
    )]
    pub write_concurrency: usize,
    #[command(flatten)]
    pub recover: RecoverArgs,
}

/// Everything the ledger service needs.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub cassandra: CassandraArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    #[command(flatten)]
    pub startup: StartupArgs,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub control: ControlPlane,
    pub ledger: Ledger,
    pub publisher: Publisher,
    pub deliveries_topic: String,
    /// How far back listings look by default.
    pub retention: chrono::Duration,
    pub recoveries: Recoveries,
}

impl FromRef<AppState> for ControlPlane {
    fn from_ref(state: &AppState) -> Self {
        state.control.clone()
    }
}

/// Builds the ledger service (waiting for Kafka and the database as long as it takes): schema
/// migrated, statements prepared, webhook view caught up, consumer subscribed.
pub async fn start(config: &Config, context: &Context) -> Result<Service, BoxError> {
    if config.ledger.write_concurrency == 0 {
        return Err("HOOKLINE_LEDGER_CONCURRENCY must be at least 1".into());
    }
    let starting = context.starting("ledger");
    let transient = KafkaAdapterError::is_transient;
    starting
        .wait_for("kafka topics", transient, || ensure_topics(&config.kafka))
        .await?;
    let ledger = starting
        .wait_for("ledger database", StoreError::is_transient, || {
            Ledger::connect(&config.cassandra)
        })
        .await?;
    if ledger.has_first_layout().await? {
        tracing::warn!(
            "this keyspace holds tables of the ledger's first layout: deliveries and attempts \
             recorded before the upgrade are not listed until `hookline migrate` copies them"
        );
    }
    let control = starting
        .wait_for("control plane", transient, || {
            ControlPlane::start(&config.kafka, context.shutdown.clone())
        })
        .await?;
    let topics = config.kafka.topics();
    let consumer = AtLeastOnceConsumer::subscribe(
        &config.kafka,
        &config.kafka.group("ledger"),
        &[topics.attempts(), topics.events()],
    )?;
    let publisher = Publisher::new(&config.kafka)?;
    let writer = writer::Writer {
        consumer,
        attempts_topic: topics.attempts(),
        concurrency: config.ledger.write_concurrency,
        ledger: ledger.clone(),
        metrics: LedgerMetrics::register(&context.registry)?,
        dead_letters: DeadLetters::new(&config.kafka, publisher.clone(), "ledger"),
    };
    let state = AppState {
        control,
        ledger,
        publisher,
        deliveries_topic: topics.deliveries(),
        retention: chrono::Duration::days(i64::from(config.cassandra.retention_days)),
        recoveries: Recoveries::new(&config.ledger.recover, context.shutdown.clone())?,
    };
    let routes = Router::new()
        .route("/v1/deliveries", get(routes::list_deliveries))
        .route("/v1/deliveries/{delivery_id}", get(routes::delivery))
        .route("/v1/deliveries/{delivery_id}/replay", post(routes::replay))
        .route(
            "/v1/webhooks/{webhook_id}/attempts",
            get(routes::webhook_attempts),
        )
        .route(
            "/v1/webhooks/{webhook_id}/stats",
            get(routes::webhook_stats),
        )
        .route(
            "/v1/webhooks/{webhook_id}/events",
            get(routes::webhook_events),
        )
        .route("/v1/webhooks/{webhook_id}/recover", post(recover::start))
        .route(
            "/v1/webhooks/{webhook_id}/recover/{job_id}",
            get(recover::status),
        )
        .route("/v1/events", get(routes::list_events))
        .route("/v1/events/{event_id}", get(routes::event))
        .with_state(state.clone());
    Ok(Service {
        name: "ledger",
        routes,
        ready: Arc::new(AtomicBool::new(true)),
        workers: vec![
            Box::pin(writer.run(context.shutdown.clone(), Duration::from_secs(10))),
            Box::pin(recover::resume_orphaned_jobs(state)),
            watch_consumer_lag(
                context,
                &config.kafka,
                &config.kafka.group("ledger"),
                &[topics.attempts(), topics.events()],
            )?,
        ],
    })
}

/// Runs the ledger service on `listener` until `shutdown` fires.
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
