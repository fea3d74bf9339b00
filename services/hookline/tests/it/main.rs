//! End to end against real Kafka and Cassandra: events published over HTTP reach exactly the
//! webhooks subscribed to them, signed (checked by an independent Standard Webhooks
//! implementation), and every attempt is in the ledger.

mod end_to_end;

use hookline::Config;
use hookline_fanout::FanoutArgs;
use hookline_ingest::IngestArgs;
use hookline_ledger::LedgerArgs;
use hookline_sender::SenderArgs;
use hookline_testkit::{cassandra_args, kafka_args, RunningService, ADMIN_TOKEN};

/// Hookline, all four services, on topics and a keyspace of this test's own.
pub async fn start_hookline() -> RunningService {
    let config = Config {
        kafka: kafka_args(),
        cassandra: cassandra_args(),
        ingest: IngestArgs {
            admin_token: ADMIN_TOKEN.into(),
            max_body_bytes: 256 * 1024,
            max_batch_events: 100,
            allow_http_urls: true,
        },
        fanout: FanoutArgs {
            batch_size: 500,
            linger_ms: 5,
        },
        sender: SenderArgs {
            request_timeout_secs: 10,
            concurrency: 32,
            shutdown_grace_secs: 5,
        },
        ledger: LedgerArgs { concurrency: 16 },
    };
    RunningService::start(hookline::run, config).await
}
