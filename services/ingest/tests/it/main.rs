//! The ingest API against real Kafka: bad input is refused with the stable error body and
//! never reaches a topic; keys and tenants are enforced.

mod bad_input;

use hookline_ingest::{Config, IngestArgs};
use hookline_kafka::KafkaArgs;
use hookline_testkit::{kafka_args, RunningService, ADMIN_TOKEN};

/// Body limit of the ingest started by these tests (small, to test it cheaply).
pub const MAX_BODY_BYTES: usize = 4096;

pub async fn start_ingest() -> (RunningService, KafkaArgs) {
    let kafka = kafka_args();
    let config = Config {
        kafka: kafka.clone(),
        ingest: IngestArgs {
            admin_token: ADMIN_TOKEN.into(),
            max_body_bytes: MAX_BODY_BYTES,
            max_batch_events: 3,
            allow_http_urls: false,
            max_webhooks_per_tenant: 50,
            secret_rotation_overlap_secs: 24 * 60 * 60,
        },
    };
    (
        RunningService::start(hookline_ingest::run, config).await,
        kafka,
    )
}
