//! The ledger workload: attempts written per second by the ledger service (consuming the
//! `attempts` topic) against the raw limit of the same rows written straight through the
//! driver by a loop of prepared statements at the same concurrency, and the read API's p99
//! latency as the store grows.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::Utc;
use futures::stream::{self, StreamExt};
use hookline_schemas::{AttemptOutcome, AttemptRecord, HttpHeader, SCHEMA_VERSION};
use hookline_store::{CassandraArgs, Ledger};
use serde_json::json;

use crate::sink::quantile;
use crate::stack::{self, Stack};

/// Records the ledger writes at once, as the ledger service does by default.
const WRITE_CONCURRENCY: usize = 64;
const WEBHOOKS: usize = 10;
/// Requests per read-latency measure, one at a time.
const READS: usize = 1_000;

/// The attempts of one workload: first attempts that succeeded, one delivery each, spread over
/// ten webhooks of one tenant.
struct Attempts {
    tenant_id: String,
    webhook_ids: Vec<String>,
    run: String,
}

impl Attempts {
    fn record(&self, n: usize) -> AttemptRecord {
        let now = Utc::now();
        AttemptRecord {
            schema_version: SCHEMA_VERSION,
            attempt_id: format!("att_{}_{n}", self.run),
            delivery_id: format!("msg_{}_{n}", self.run),
            tenant_id: self.tenant_id.clone(),
            webhook_id: self.webhook_ids[n % self.webhook_ids.len()].clone(),
            event_id: format!("evt_{}_{n}", self.run),
            event_type: "bench.ledger".into(),
            event_accepted_at: Some(now),
            attempt_number: 1,
            url: "http://127.0.0.1:9/ledger".into(),
            attempted_at: now,
            duration_ms: 3,
            outcome: AttemptOutcome::Succeeded,
            response_status: Some(204),
            response_body: None,
            // What a Standard Webhooks request and a small answer carry.
            request_headers: headers(&[
                ("webhook-id", &format!("msg_{}_{n}", self.run)),
                ("webhook-timestamp", &now.timestamp().to_string()),
                (
                    "webhook-signature",
                    "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
                ),
                ("content-type", "application/json"),
                ("user-agent", "Hookline/0.1.0"),
                ("accept", "*/*"),
            ]),
            response_headers: headers(&[
                ("content-length", "0"),
                ("date", "Mon, 23 Nov 2026 18:00:00 GMT"),
            ]),
            response_headers_truncated: false,
            error_class: None,
            error: None,
            next_attempt_at: None,
            replay: false,
        }
    }
}

fn headers(pairs: &[(&str, &str)]) -> Vec<HttpHeader> {
    pairs
        .iter()
        .map(|(name, value)| HttpHeader {
            name: (*name).to_owned(),
            value: (*value).to_owned(),
        })
        .collect()
}

/// Runs the workload: `count` attempts through the raw loop, `count` through the ledger
/// service, `count` through the raw loop again, read latency at that size, then the store
/// filled to `fill` attempts and read latency again.
pub async fn ledger(stack: &Stack, count: usize, fill: usize) -> Result<Vec<String>> {
    let (tenant_id, key) = stack.api.tenant_with_key(stack::ADMIN_TOKEN, None).await;
    let mut webhook_ids = Vec::new();
    for n in 0..WEBHOOKS {
        let (status, created) = stack
            .api
            .post(
                "/v1/webhooks",
                &key,
                &json!({"url": format!("http://127.0.0.1:9/ledger{n}"), "events": ["bench.none"]}),
            )
            .await;
        if status.as_u16() != 201 {
            bail!("webhook creation failed: {created}");
        }
        webhook_ids.push(created["id"].as_str().unwrap_or_default().to_owned());
    }
    let attempts = |run: &str| Attempts {
        tenant_id: tenant_id.clone(),
        webhook_ids: webhook_ids.clone(),
        run: run.to_owned(),
    };
    let mut rows = Vec::new();

    // The raw limit: the same rows through the driver, no Kafka in between. Measured before and
    // after the service and averaged, so neither side has the database's warm-up (its JIT
    // compiling the write path) or its growth to itself.
    let store = Ledger::connect(&CassandraArgs {
        nodes: stack.cassandra.clone(),
        keyspace: stack.keyspace.clone(),
        replication_factor: 1,
        retention_days: 30,
    })
    .await?;
    let (raw_before, cassandra_raw_before) = with_cassandra_cpu(stack, count, async {
        write_directly(&store, &attempts("raw-before"), 0..count).await
    })
    .await?;

    // Through the pipeline: produced into `attempts`, written by the ledger service.
    let pipeline = attempts("pipeline");
    let publisher = hookline_kafka::Publisher::new(&stack.kafka)?;
    let topic = stack.kafka.topics().attempts();
    let written_before = stack.ledger_written().await;
    let cassandra_before = stack.cassandra_cpu_seconds();
    let started = Instant::now();
    stream::iter(0..count)
        .map(|n| {
            let (publisher, topic, record) = (publisher.clone(), topic.clone(), pipeline.record(n));
            async move {
                publisher
                    .send_json(&topic, &record.delivery_id, &record)
                    .await
            }
        })
        .buffer_unordered(10_000)
        .for_each(|_| async {})
        .await;
    let target = written_before + count as u64;
    if !stack
        .await_ledger_written(target, Duration::from_secs(1800))
        .await
    {
        bail!("the ledger did not write {count} attempts within 30 minutes");
    }
    let service_rate = count as f64 / started.elapsed().as_secs_f64();
    let cassandra_service =
        cpu_per_thousand(stack.cassandra_cpu_seconds() - cassandra_before, count);

    let raw = attempts("raw");
    let (raw_after, cassandra_raw_after) = with_cassandra_cpu(stack, count, async {
        write_directly(&store, &raw, 0..count).await
    })
    .await?;
    let raw_rate = (raw_before + raw_after) / 2.0;
    rows.push(format!(
        "| ledger: attempts written by the service from the `attempts` topic ({count}) | {service_rate:.0} attempts/s ({:.0} % of the raw loop) |",
        service_rate / raw_rate * 100.0
    ));
    rows.push(format!(
        "| ledger: raw limit, the same rows by a driver loop ({WRITE_CONCURRENCY} concurrent) | {raw_rate:.0} attempts/s ({raw_before:.0} before the service, {raw_after:.0} after) |"
    ));
    rows.push(format!(
        "| ledger: Cassandra CPU per 1,000 attempts written (raw loop before, service, raw loop after) | {cassandra_raw_before:.2} / {cassandra_service:.2} / {cassandra_raw_after:.2} s |"
    ));

    let stored = 3 * count;
    rows.extend(read_latencies(stack, &key, &webhook_ids[0], &raw, count, stored).await);
    if fill > stored {
        let filler = attempts("fill");
        let fill_rate = write_directly(&store, &filler, 0..fill - stored).await?;
        eprintln!("filled the ledger to {fill} attempts at {fill_rate:.0} attempts/s");
        rows.extend(read_latencies(stack, &key, &webhook_ids[0], &raw, count, fill).await);
    }
    Ok(rows)
}

/// Seconds of CPU per 1,000 attempts.
fn cpu_per_thousand(seconds: f64, attempts: usize) -> f64 {
    seconds * 1000.0 / attempts as f64
}

/// Runs `write` (`attempts` written at a rate it returns) and reads Cassandra's CPU time around
/// it: the rate and the CPU seconds per 1,000 attempts.
async fn with_cassandra_cpu(
    stack: &Stack,
    attempts: usize,
    write: impl std::future::Future<Output = Result<f64>>,
) -> Result<(f64, f64)> {
    let before = stack.cassandra_cpu_seconds();
    let rate = write.await?;
    Ok((
        rate,
        cpu_per_thousand(stack.cassandra_cpu_seconds() - before, attempts),
    ))
}

/// Tries of one raw write before the workload gives up (an overloaded database times out, and
/// the ledger service retries the same way).
const WRITE_TRIES: usize = 5;

/// Writes the attempts `range` through the store at the ledger's concurrency; attempts/s.
async fn write_directly(
    store: &Ledger,
    attempts: &Attempts,
    range: std::ops::Range<usize>,
) -> Result<f64> {
    let count = range.len();
    let started = Instant::now();
    let failures = stream::iter(range)
        .map(|n| {
            let record = attempts.record(n);
            async move {
                for _ in 0..WRITE_TRIES {
                    if store.record_attempt(&record).await.is_ok() {
                        return false;
                    }
                }
                true
            }
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    if failures > 0 {
        bail!("{failures} raw writes failed {WRITE_TRIES} times");
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// p50/p99 of the listing and the single-delivery routes with `stored` attempts in the store.
async fn read_latencies(
    stack: &Stack,
    key: &str,
    webhook_id: &str,
    known: &Attempts,
    known_count: usize,
    stored: usize,
) -> Vec<String> {
    let routes = [
        (
            "GET /v1/deliveries?limit=50",
            "/v1/deliveries?limit=50".to_owned(),
        ),
        (
            "GET /v1/deliveries?webhook_id=…&limit=50",
            format!("/v1/deliveries?webhook_id={webhook_id}&limit=50"),
        ),
    ];
    let mut rows = Vec::new();
    for (label, path) in routes {
        let latencies = timed_gets(stack, key, (0..READS).map(|_| path.clone())).await;
        rows.push(latency_row(label, stored, &latencies));
    }
    let ids = (0..READS).map(|n| {
        let record = known.record(n * 7919 % known_count);
        format!("/v1/deliveries/{}", record.delivery_id)
    });
    let latencies = timed_gets(stack, key, ids).await;
    rows.push(latency_row("GET /v1/deliveries/{id}", stored, &latencies));
    rows
}

/// Latencies in microseconds of GETs made one at a time; failed requests are left out.
async fn timed_gets(stack: &Stack, key: &str, paths: impl Iterator<Item = String>) -> Vec<u64> {
    let mut latencies = Vec::new();
    for path in paths {
        let started = Instant::now();
        let (status, _) = stack.api.get(&path, key).await;
        if status.is_success() {
            latencies.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
    }
    latencies.sort_unstable();
    latencies
}

fn latency_row(label: &str, stored: usize, latencies: &[u64]) -> String {
    let ms = |micros: u64| micros as f64 / 1000.0;
    format!(
        "| ledger: {label} with {stored} attempts stored, p50 / p99 | {:.1} / {:.1} ms ({} of {READS} answered) |",
        ms(quantile(latencies, 0.5)),
        ms(quantile(latencies, 0.99)),
        latencies.len()
    )
}
