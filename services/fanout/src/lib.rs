//! fanout: joins each event with the webhooks it matches and emits one delivery task per
//! (event, webhook) to `deliveries`, keyed by webhook id.
//!
//! Contract: read-process-write runs in one Kafka transaction with the consumed offsets, so a
//! crash never leaves duplicate tasks, and a failed transaction is committed again from memory,
//! never skipped. An event that can never be joined (undecodable, or its tasks larger than
//! Kafka takes) goes to `dead-letters.fanout` in the same transaction. Before joining a batch, the webhook view catches up to
//! the `webhooks` topic's high watermarks: a webhook whose creation was acknowledged before an
//! event was accepted always receives that event. An event whose producer-chosen id was
//! accepted within the idempotency window gets no tasks (`repeats.rs`).

mod join;
mod metrics;
mod repeats;

pub use join::delivery_tasks;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hookline_control::ControlPlane;
use hookline_kafka::{ensure_topics, KafkaAdapterError, KafkaArgs, TransactionalStage};
use hookline_runtime::{serve, watch_consumer_lag, BoxError, Context, Service, StartupArgs};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::FanoutMetrics;

/// Settings of the fanout service.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// Most events joined in one transaction.
    #[arg(
        long = "fanout-batch-size",
        env = "HOOKLINE_FANOUT_BATCH_SIZE",
        default_value_t = 500
    )]
    pub batch_size: usize,
    /// How long a batch waits for one more event before it is processed, in milliseconds. At
    /// 0 a batch takes what has arrived and goes: under load, the events that arrive during
    /// one batch's transaction make the next batch, so batches grow with the load by
    /// themselves, and a quiet pipeline waits for nothing.
    #[arg(
        long = "fanout-linger-ms",
        env = "HOOKLINE_FANOUT_LINGER_MS",
        default_value_t = 0
    )]
    pub linger_ms: u64,
    /// How long a producer-chosen event id stays an idempotency key, in seconds (at most
    /// seven days, the changelog's retention). Each id in the window costs up to about 85 bytes of
    /// memory in the fanout instance that owns its partition.
    #[arg(
        long = "idempotency-window-secs",
        env = "HOOKLINE_IDEMPOTENCY_WINDOW_SECS",
        default_value_t = 24 * 60 * 60,
        value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 60 * 60)
    )]
    pub idempotency_window_secs: u64,
}

/// Everything the fanout service needs.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub fanout: FanoutArgs,
    #[command(flatten)]
    pub startup: StartupArgs,
}

/// Builds the fanout service (waiting for Kafka as long as it takes): topics ensured, webhook
/// view caught up, subscribed to `events` with its transactions initialized.
pub async fn start(config: &Config, context: &Context) -> Result<Service, BoxError> {
    let starting = context.starting("fanout");
    let transient = KafkaAdapterError::is_transient;
    starting
        .wait_for("kafka topics", transient, || ensure_topics(&config.kafka))
        .await?;
    let control = starting
        .wait_for("control plane", transient, || {
            ControlPlane::start(&config.kafka, context.shutdown.clone())
        })
        .await?;
    let topics = config.kafka.topics();
    let transactional_id = config.kafka.transactional_id("fanout");
    // Initializing transactions needs the transaction coordinator, which a broker still
    // starting may not have elected yet.
    let (group, events) = (config.kafka.group("fanout"), topics.events());
    let stage = starting
        .wait_for("kafka transactions", transient, || {
            TransactionalStage::start(&config.kafka, "fanout", &group, &events, &transactional_id)
        })
        .await?;
    let worker = join::Joiner {
        stage,
        control,
        deliveries_topic: topics.deliveries(),
        batch_size: config.fanout.batch_size,
        linger: Duration::from_millis(config.fanout.linger_ms),
        repeats: repeats::Repeats::new(
            &config.kafka,
            Duration::from_secs(config.fanout.idempotency_window_secs),
        ),
        metrics: FanoutMetrics::register(&context.registry)?,
    };
    Ok(Service {
        name: "fanout",
        routes: Router::new(),
        // Ready once built: joined to its group and its webhook view caught up.
        ready: Arc::new(AtomicBool::new(true)),
        workers: vec![
            Box::pin(worker.run(context.shutdown.clone())),
            watch_consumer_lag(
                context,
                &config.kafka,
                &config.kafka.group("fanout"),
                &[topics.events()],
            )?,
        ],
    })
}

/// Runs the fanout service, with its probes on `listener`, until `shutdown` fires.
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
