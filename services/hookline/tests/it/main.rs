//! End to end against real Kafka and Cassandra: events published over HTTP reach exactly the
//! webhooks subscribed to them, signed (checked by an independent Standard Webhooks
//! implementation), retried on failure, and every attempt is in the ledger.

mod console;
mod console_browser;
mod dead_letters;
mod delivery_engine;
mod end_to_end;
mod idempotency;
mod ledger_api;
mod ledger_store;
mod lifecycle;
mod openapi;
mod openapi_limits;
mod profiles;
mod startup;

use hookline::Config;
use hookline_console::ConsoleArgs;
use hookline_delivery::{AddressArgs, SecretKeyArgs};
use hookline_fanout::FanoutArgs;
use hookline_ingest::IngestArgs;
use hookline_kafka::KafkaArgs;
use hookline_ledger::LedgerArgs;
use hookline_runtime::StartupArgs;
use hookline_sender::SenderArgs;
use hookline_testkit::{
    cassandra_args, kafka_args, RunningService, ADMIN_TOKEN, LOOPBACK_NETWORKS,
};

/// Sender settings for tests: short timeouts, and retries far enough away that a test sees
/// only the attempts it asks for.
pub fn sender_args() -> SenderArgs {
    SenderArgs {
        request_timeout_secs: 10,
        concurrency: 256,
        endpoint_concurrency: 16,
        endpoint_queue: 64,
        endpoint_queue_wait_ms: 1000,
        park_delay_secs: 5,
        retry_schedule: "1h".into(),
        retry_tiers: "1s,5s,30s,1h".into(),
        retry_client_errors: true,
        circuit_threshold: 10,
        circuit_cooldown_secs: 30,
        disable_after_hours: 120,
        shutdown_grace_secs: 5,
    }
}

/// Hookline, all four services, on topics and a keyspace of this test's own; with the Kafka
/// settings, to look into its topics.
pub async fn start_hookline(sender: SenderArgs) -> (RunningService, KafkaArgs) {
    let (config, kafka) = config(sender);
    (RunningService::start(hookline::run, config).await, kafka)
}

/// Settings of all four services, on topics and a keyspace of this test's own.
pub fn config(sender: SenderArgs) -> (Config, KafkaArgs) {
    hookline_runtime::telemetry::init_tracing();
    let kafka = kafka_args();
    let config = Config {
        kafka: kafka.clone(),
        cassandra: cassandra_args(),
        ingest: IngestArgs {
            admin_token: ADMIN_TOKEN.into(),
            max_body_bytes: 256 * 1024,
            max_batch_events: 100,
            allow_http_urls: true,
            max_webhooks_per_tenant: 50,
            secret_rotation_overlap_secs: 24 * 60 * 60,
            tenant_publish_rate: 0,
            tenant_publish_burst: None,
        },
        fanout: FanoutArgs {
            batch_size: 500,
            linger_ms: 0,
            idempotency_window_secs: 24 * 60 * 60,
        },
        sender,
        ledger: LedgerArgs {
            write_concurrency: 16,
            recover: hookline_ledger::RecoverArgs {
                lease_secs: 30,
                scan_secs: 10,
                replays_in_flight: 32,
            },
        },
        // The receivers of these tests listen on loopback.
        addresses: AddressArgs {
            allowed_networks: LOOPBACK_NETWORKS.into(),
        },
        secret_keys: SecretKeyArgs {
            secret_keys: String::new(),
            allow_development_key: true,
        },
        // The console of these tests is reached over plain HTTP.
        console: ConsoleArgs {
            api_url: None,
            insecure_cookies: true,
            session_hours: 8,
        },
        startup: StartupArgs::default(),
    };
    (config, kafka)
}
