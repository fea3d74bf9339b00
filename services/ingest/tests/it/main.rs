//! The ingest API against real Kafka: bad input is refused with the stable error body and
//! never reaches a topic; keys and tenants are enforced.

mod atomic_batch;
mod bad_input;
mod event_types;
mod idempotency;
mod owner_api;
mod publish_limit;
mod startup;

use hookline_delivery::{AddressArgs, SecretKeyArgs};
use hookline_ingest::{Config, IngestArgs};
use hookline_kafka::KafkaArgs;
use hookline_runtime::StartupArgs;
use hookline_testkit::{kafka_args, RunningService, ADMIN_TOKEN};

/// Body limit of the ingest started by these tests (small, to test it cheaply).
pub const MAX_BODY_BYTES: usize = 4096;

/// Webhooks per tenant of the ingest started by these tests (small, to reach it cheaply).
pub const MAX_WEBHOOKS_PER_TENANT: usize = 5;

pub async fn start_ingest() -> (RunningService, KafkaArgs) {
    let kafka = kafka_args();
    (start_ingest_on(kafka.clone()).await, kafka)
}

/// Seals webhook secrets with the public development key.
pub fn development_secret_key() -> SecretKeyArgs {
    SecretKeyArgs {
        secret_keys: String::new(),
        allow_development_key: true,
    }
}

/// Another ingest on the same topics (another process of the same deployment).
pub async fn start_ingest_on(kafka: KafkaArgs) -> RunningService {
    RunningService::start(hookline_ingest::run, ingest_config(kafka)).await
}

/// The settings of the ingest these tests start, to change before starting it.
pub fn ingest_config(kafka: KafkaArgs) -> Config {
    Config {
        kafka,
        ingest: IngestArgs {
            admin_token: ADMIN_TOKEN.into(),
            max_body_bytes: MAX_BODY_BYTES,
            max_batch_events: 3,
            allow_http_urls: false,
            max_webhooks_per_tenant: MAX_WEBHOOKS_PER_TENANT,
            secret_rotation_overlap_secs: 24 * 60 * 60,
            tenant_publish_rate: 0,
            tenant_publish_burst: None,
        },
        // Public addresses only: these tests check that the rest is refused.
        addresses: AddressArgs::default(),
        secret_keys: development_secret_key(),
        startup: StartupArgs::default(),
    }
}
