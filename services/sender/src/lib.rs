//! sender: consumes delivery tasks, signs and POSTs them, records every attempt, and routes
//! failures through retry tiers to dead letters.
//!
//! Contract: a task's offset is stored only after everything it produced (its attempt record,
//! and on failure its next task or dead letter) is acknowledged by Kafka: at-least-once. Tasks
//! of one partition run concurrently and finish in any order; offsets advance only up to the
//! lowest unfinished task. One slow or dead endpoint never holds back the others: see
//! [`endpoints`] and [`handler`]. The `webhook-id` header is the delivery id, identical on every
//! retry and replay of one event to one webhook.

mod attempt;
pub mod endpoints;
pub mod handler;
mod metrics;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hookline_control::ControlPlane;
use hookline_delivery::{AddressArgs, SecretKeyArgs};
use hookline_domain::retry::format_delay;
use hookline_domain::{RetrySchedule, RetryTiers};
use hookline_kafka::{
    ensure_partitioned_topics, ensure_topics, AtLeastOnceConsumer, DeadLetters, DelayedConsumer,
    KafkaAdapterError, KafkaArgs, Publisher,
};
use hookline_runtime::{
    serve, watch_consumer_lag, BoxError, Context, Service, StartupArgs, Worker,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::endpoints::{EndpointLimits, Endpoints};
use crate::handler::{Handler, RetryPolicy};
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
    /// Most tasks in flight at once in this process (across every endpoint).
    #[arg(
        long = "sender-concurrency",
        env = "HOOKLINE_SENDER_CONCURRENCY",
        default_value_t = 1024
    )]
    pub concurrency: usize,
    /// Most requests in flight to one endpoint.
    #[arg(
        long = "endpoint-concurrency",
        env = "HOOKLINE_ENDPOINT_CONCURRENCY",
        default_value_t = 16
    )]
    pub endpoint_concurrency: usize,
    /// Fewest tasks that may wait for one endpoint; further tasks are parked on a retry tier.
    #[arg(
        long = "endpoint-queue",
        env = "HOOKLINE_ENDPOINT_QUEUE",
        default_value_t = 64
    )]
    pub endpoint_queue: usize,
    /// Milliseconds a queued task may expect to wait for an endpoint at its recent pace; an
    /// endpoint's queue holds what it finishes in that time (at least `endpoint-queue`).
    #[arg(
        long = "endpoint-queue-wait-ms",
        env = "HOOKLINE_ENDPOINT_QUEUE_WAIT_MS",
        default_value_t = 1000
    )]
    pub endpoint_queue_wait_ms: u64,
    /// Seconds a parked task waits before it is tried again.
    #[arg(
        long = "park-delay-secs",
        env = "HOOKLINE_PARK_DELAY_SECS",
        default_value_t = 5
    )]
    pub park_delay_secs: u64,
    /// Waits between attempts, comma-separated (its length + 1 is the number of attempts).
    #[arg(long = "retry-schedule", env = "HOOKLINE_RETRY_SCHEDULE", default_value = hookline_domain::retry::DEFAULT_SCHEDULE)]
    pub retry_schedule: String,
    /// Delays of the retry-tier topics, comma-separated.
    #[arg(long = "retry-tiers", env = "HOOKLINE_RETRY_TIERS", default_value = hookline_domain::retry::DEFAULT_TIERS)]
    pub retry_tiers: String,
    /// Retry 4xx answers other than 408 and 429 (they are often transient misconfigurations).
    #[arg(long = "retry-client-errors", env = "HOOKLINE_RETRY_CLIENT_ERRORS", default_value_t = true, action = clap::ArgAction::Set)]
    pub retry_client_errors: bool,
    /// Consecutive failures that open an endpoint's circuit and mark its webhook failing.
    #[arg(
        long = "circuit-threshold",
        env = "HOOKLINE_CIRCUIT_THRESHOLD",
        default_value_t = 10
    )]
    pub circuit_threshold: u32,
    /// Seconds an open circuit waits before letting one probe through.
    #[arg(
        long = "circuit-cooldown-secs",
        env = "HOOKLINE_CIRCUIT_COOLDOWN_SECS",
        default_value_t = 30
    )]
    pub circuit_cooldown_secs: u64,
    /// Hours a webhook may keep failing before it is disabled.
    #[arg(
        long = "disable-after-hours",
        env = "HOOKLINE_DISABLE_AFTER_HOURS",
        default_value_t = 120
    )]
    pub disable_after_hours: u64,
    /// Seconds in-flight tasks get to finish on shutdown before they are left to a restart.
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
    #[command(flatten)]
    pub addresses: AddressArgs,
    #[command(flatten)]
    pub secret_keys: SecretKeyArgs,
    #[command(flatten)]
    pub startup: StartupArgs,
}

/// Builds the sender service: settings checked, then (waiting for Kafka as long as it takes)
/// topics ensured, webhook view caught up, consumers subscribed.
pub async fn start(config: &Config, context: &Context) -> Result<Service, BoxError> {
    let args = &config.sender;
    if args.concurrency == 0 || args.endpoint_concurrency == 0 {
        return Err("sender and endpoint concurrency must be at least 1".into());
    }
    let schedule = RetrySchedule::parse(&args.retry_schedule)?;
    let tiers = RetryTiers::parse(&args.retry_tiers)?;
    let topics = config.kafka.topics();
    let tier_topics: Vec<(String, Duration)> = tiers
        .delays()
        .iter()
        .map(|delay| (topics.retry_tier(&format_delay(*delay)), *delay))
        .collect();
    let names: Vec<String> = tier_topics.iter().map(|(topic, _)| topic.clone()).collect();
    let starting = context.starting("sender");
    let transient = KafkaAdapterError::is_transient;
    starting
        .wait_for("kafka topics", transient, || async {
            ensure_topics(&config.kafka).await?;
            ensure_partitioned_topics(&config.kafka, &names).await
        })
        .await?;
    let control = starting
        .wait_for("control plane", transient, || {
            ControlPlane::start(&config.kafka, context.shutdown.clone())
        })
        .await?;
    let fresh = AtLeastOnceConsumer::subscribe(
        &config.kafka,
        &config.kafka.group("sender"),
        &[topics.deliveries()],
    )?;
    // Its own group, so a rebalance of the tiers never disturbs the fresh tasks.
    let metrics = SenderMetrics::register(&context.registry)?;
    let retries = DelayedConsumer::subscribe(
        &config.kafka,
        &config.kafka.group("sender-retry"),
        &tier_topics,
    )?
    .observe_overdue({
        let metrics = metrics.clone();
        move |delay, overdue| metrics.observe_retry_due_lag(delay, overdue)
    });
    let publisher = Publisher::new(&config.kafka)?;
    let handler = Arc::new(Handler {
        control,
        dead_letters: DeadLetters::new(&config.kafka, publisher.clone(), "sender"),
        publisher,
        http: attempt::http_client(
            Duration::from_secs(args.request_timeout_secs),
            config.addresses.policy()?,
            config.secret_keys.keys()?,
        )?,
        topics,
        policy: RetryPolicy {
            schedule,
            tiers,
            retry_client_errors: args.retry_client_errors,
            park_delay: Duration::from_secs(args.park_delay_secs),
            disable_after: Duration::from_secs(args.disable_after_hours * 3600),
        },
        endpoints: Endpoints::new(EndpointLimits {
            in_flight: args.endpoint_concurrency,
            queued: args.endpoint_queue,
            queue_wait: Duration::from_millis(args.endpoint_queue_wait_ms),
            circuit_threshold: args.circuit_threshold,
            circuit_cooldown: Duration::from_secs(args.circuit_cooldown_secs),
            // Half of a consumer's tasks at most wait on open circuits; the rest keep flowing.
            held: args.concurrency / 2,
        }),
        metrics,
    });

    let grace = Duration::from_secs(args.shutdown_grace_secs);
    let (concurrency, shutdown) = (args.concurrency, context.shutdown.clone());
    let fresh_worker: Worker = {
        let (handler, shutdown) = (Arc::clone(&handler), shutdown.clone());
        Box::pin(async move {
            fresh
                .run_concurrently(concurrency, grace, &shutdown, move |record, abandon| {
                    if let Some(age) = record.age() {
                        handler.metrics.task_age.observe(age.as_secs_f64());
                    }
                    Arc::clone(&handler).handle(record, abandon)
                })
                .await?;
            Ok(())
        })
    };
    let retry_worker: Worker = {
        let publisher = handler.publisher.clone();
        Box::pin(async move {
            retries
                .run_concurrently(concurrency, grace, &shutdown, move |record, abandon| {
                    Arc::clone(&handler).handle(record, abandon)
                })
                .await?;
            publisher.flush(Duration::from_secs(5)).await?;
            tracing::info!("sender stopped");
            Ok(())
        })
    };
    Ok(Service {
        name: "sender",
        routes: Router::new(),
        ready: Arc::new(AtomicBool::new(true)),
        workers: vec![
            fresh_worker,
            retry_worker,
            watch_consumer_lag(
                context,
                &config.kafka,
                &config.kafka.group("sender"),
                &[config.kafka.topics().deliveries()],
            )?,
            watch_consumer_lag(
                context,
                &config.kafka,
                &config.kafka.group("sender-retry"),
                &names,
            )?,
        ],
    })
}

/// Runs the sender service, with its probes on `listener`, until `shutdown` fires.
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
