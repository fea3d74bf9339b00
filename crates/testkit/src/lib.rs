//! Helpers for integration tests. The servers are the real ones started by `cargo xtask test`
//! (`HOOKLINE_TEST_KAFKA`, `HOOKLINE_TEST_CASSANDRA`); each test isolates itself with a unique
//! topic prefix and keyspace.

mod api;
mod receiver;
mod service;

use std::future::Future;
use std::time::{Duration, Instant};

use hookline_kafka::KafkaArgs;
use hookline_store::CassandraArgs;

pub use api::Api;
pub use receiver::{Behaviour, Delivery, Receiver};
pub use service::{
    create_topic, first_records, read_until, records_in, RunningService, ServiceProcess,
};

/// `HOOKLINE_ALLOWED_NETWORKS` of services whose tests deliver to receivers on this machine.
pub const LOOPBACK_NETWORKS: &str = "127.0.0.0/8,::1/128";

/// The admin token of services started by tests.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A name no other test (or earlier run) uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Kafka settings with a topic prefix of this test's own.
pub fn kafka_args() -> KafkaArgs {
    KafkaArgs {
        brokers: env_or("HOOKLINE_TEST_KAFKA", "127.0.0.1:9092"),
        topic_prefix: format!("{}.", unique_name("t")),
        partitions: 2,
        replication: 1,
        fetch_wait_ms: KafkaArgs::DEFAULT_FETCH_WAIT_MS,
        producer_linger_ms: KafkaArgs::DEFAULT_LINGER_MS,
        max_poll_interval_ms: KafkaArgs::DEFAULT_MAX_POLL_INTERVAL_MS,
    }
}

/// Cassandra settings with a keyspace of this test's own.
pub fn cassandra_args() -> CassandraArgs {
    CassandraArgs {
        nodes: env_or("HOOKLINE_TEST_CASSANDRA", "127.0.0.1:9042"),
        keyspace: unique_name("t"),
        replication_factor: 1,
        retention_days: 1,
    }
}

/// Stops or starts a server through `cargo xtask server stop|start <name>`, which
/// `cargo xtask faults` names in `HOOKLINE_TEST_XTASK`; `start` returns once the server accepts
/// clients again. Blocking: call it from `spawn_blocking`.
pub fn xtask_server(action: &str, name: &str) {
    let xtask = std::env::var("HOOKLINE_TEST_XTASK")
        .expect("run the fault tests with `cargo xtask faults`");
    let status = std::process::Command::new(xtask)
        .args(["server", action, name])
        .status()
        .expect("xtask runs");
    assert!(status.success(), "xtask server {action} {name} failed");
}

/// Polls `check` until it yields a value or `timeout` passes (then panics naming `what`).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
