//! sender: consumes delivery tasks, signs and POSTs them, and records every attempt.
//!
//! Contract: a task's offset is stored only after its attempt record is acknowledged by Kafka
//! (at-least-once). Tasks of one partition run concurrently and finish in any order; offsets
//! advance only up to the lowest unfinished task ([`hookline_domain::OffsetTracker`]). The
//! `webhook-id` header is the delivery id, identical on every retry and replay of one event to
//! one webhook, so receivers can deduplicate.

mod attempt;
mod metrics;
mod worker;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hookline_control::ControlPlane;
use hookline_kafka::{ensure_topics, AtLeastOnceConsumer, KafkaArgs, Publisher};
use hookline_runtime::{serve, BoxError, Context, Service};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::SenderMetrics;

/// Settings of the sender service.
#[derive(Debug, Clone, clap::Args)]
pub struct SenderArgs {
    /// Seconds an endpoint has to answer before the attempt counts as a timeout.
    #[arg(
        long = "request-timeout-secs",
        env = "HOOKLINE_REQUEST_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub request_timeout_secs: u64,
    /// Most attempts in flight at once in this process.
    #[arg(
        long = "sender-concurrency",
        env = "HOOKLINE_SENDER_CONCURRENCY",
        default_value_t = 256
    )]
    pub concurrency: usize,
    /// Seconds in-flight attempts get to finish on shutdown before they are left to a restart.
    #[arg(
        long = "shutdown-grace-secs",
        env = "HOOKLINE_SHUTDOWN_GRACE_SECS",
        default_value_t = 20
    )]
    pub shutdown_grace_secs: u64,
}

/// Everything the sender service needs.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub sender: SenderArgs,
}

/// Builds the sender service: joined to its group, webhook view caught up.
pub async fn start(config: &Config, context: &Context) -> Result<Service, BoxError> {
    if config.sender.concurrency == 0 {
        return Err("HOOKLINE_SENDER_CONCURRENCY must be at least 1".into());
    }
    ensure_topics(&config.kafka).await?;
    let topics = config.kafka.topics();
    let control = ControlPlane::start(&config.kafka, context.shutdown.clone()).await?;
    let consumer = AtLeastOnceConsumer::subscribe(
        &config.kafka,
        &config.kafka.group("sender"),
        &[topics.deliveries()],
    )?;
    let http = attempt::http_client(Duration::from_secs(config.sender.request_timeout_secs))?;
    let worker = worker::Worker {
        consumer,
        concurrency: config.sender.concurrency,
        grace: Duration::from_secs(config.sender.shutdown_grace_secs),
        handler: worker::Handler {
            control,
            publisher: Publisher::new(&config.kafka)?,
            http,
            attempts_topic: topics.attempts(),
            metrics: SenderMetrics::register(&context.registry)?,
        },
    };
    Ok(Service {
        name: "sender",
        routes: Router::new(),
        ready: Arc::new(AtomicBool::new(true)),
        workers: vec![Box::pin(worker.run(context.shutdown.clone()))],
    })
}

/// Runs the sender service, with its probes on `listener`, until `shutdown` fires.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BoxError> {
    let context = Context::new(shutdown);
    let service = start(&config, &context).await?;
    serve(listener, vec![service], context).await
}
