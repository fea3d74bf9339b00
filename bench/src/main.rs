//! Hookline's benchmark harness (`cargo xtask bench`).
//!
//! Runs the release `hookline` binary (all four services in one process) against the local
//! Kafka and Cassandra, delivers to an in-process sink that verifies every signature, and
//! reports throughput and latency next to the raw limits measured in the same run: an rdkafka
//! producer's messages/s and a plain HTTP client's requests/s into the same sink.

mod fanout_join;
mod latency;
mod ledger;
mod replay;
mod sink;
mod stack;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use futures::stream::{self, StreamExt};
use hookline_signing::Secret;
use serde_json::{json, Value};

use crate::sink::{quantile, Sink, HANGING_PATH};
use crate::stack::Stack;

#[derive(Parser)]
struct Args {
    /// The `hookline` binary to benchmark (build it with `--release`).
    #[arg(long)]
    hookline: std::path::PathBuf,
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka: String,
    #[arg(long, default_value = "127.0.0.1:9042")]
    cassandra: String,
    /// Events published in each bulk workload.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Which workloads to run: fanout-join (fanout's join step in process, for one tenant
    /// among idle webhooks of others; first, before the stack starts), i (1 tenant × 10
    /// webhooks), ii (100 tenants × 10 webhooks), iii (workload i with one endpoint hanging),
    /// ledger (attempts written per second, read latency as the store grows), replay (a
    /// recovery job replaying a webhook's dead deliveries), backlog (tasks queued for a dead
    /// endpoint; last, as the sender keeps working on them). Variants of (i): i-ids (every
    /// event with a producer-chosen id, an idempotency key) and i-spread (every event with an
    /// ordering key of its own, spread over all partitions as events keyed by id were).
    /// latency: single events at a steady 10 and 100 per second to 1 tenant × 10 webhooks,
    /// with the time of each step on the way.
    #[arg(long, default_value = "fanout-join,i,ii,iii,ledger,replay,backlog")]
    workloads: String,
    /// Webhooks of other tenants beside the active one in the fanout-join workload.
    #[arg(long, default_value_t = 100_000)]
    idle_webhooks: usize,
    /// Tasks queued for a dead endpoint in the backlog workload.
    #[arg(long, default_value_t = 1_000_000)]
    backlog: usize,
    /// Attempts written through the ledger service, and again through the raw driver loop.
    #[arg(long, default_value_t = 100_000)]
    ledger_attempts: usize,
    /// Attempts stored when read latency is measured the second time.
    #[arg(long, default_value_t = 1_000_000)]
    ledger_fill: usize,
    /// Dead deliveries a recovery job replays in the replay workload.
    #[arg(long, default_value_t = 10_000)]
    replay_events: usize,
    /// Partitions of the events, deliveries and attempts topics.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
}

const WEBHOOKS_PER_TENANT: usize = 10;

/// One pipeline workload: who publishes, what their events carry, and whether an endpoint
/// hangs.
struct Workload {
    name: &'static str,
    label: &'static str,
    tenants: usize,
    hang_one: bool,
    shape: EventShape,
}

/// What a published event carries beyond its type and data.
#[derive(Clone, Copy)]
enum EventShape {
    /// Nothing: a generated id, the tenant as its ordering scope.
    Plain,
    /// A producer-chosen id (an idempotency key).
    ProducerIds,
    /// An ordering key of its own: events spread over every partition.
    Spread,
}

impl EventShape {
    fn event(self, event_type: &str, phase: &str, n: usize) -> Value {
        let mut event = json!({"type": event_type, "timestamp": chrono::Utc::now(), "data": {"phase": phase, "n": n}});
        let unique = format!("{phase}_{n}_{}", unique_suffix());
        match self {
            Self::Plain => {}
            Self::ProducerIds => event["id"] = json!(unique),
            Self::Spread => event["ordering_key"] = json!(unique),
        }
        event
    }
}

/// Makes ids unique across runs of the same phase.
fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    started * 1_000_000_000 + NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Workload {
    fn named(name: &str) -> Self {
        let (name, label, tenants, hang_one, shape) = match name {
            "i" => (
                "i",
                "(i) 1 tenant × 10 webhooks",
                1,
                false,
                EventShape::Plain,
            ),
            "ii" => (
                "ii",
                "(ii) 100 tenants × 10 webhooks",
                100,
                false,
                EventShape::Plain,
            ),
            "iii" => (
                "iii",
                "(iii) 1 tenant × 10 webhooks, one hanging",
                1,
                true,
                EventShape::Plain,
            ),
            "i-ids" => (
                "i-ids",
                "(i) with producer-chosen ids",
                1,
                false,
                EventShape::ProducerIds,
            ),
            _ => (
                "i-spread",
                "(i) with an ordering key per event",
                1,
                false,
                EventShape::Spread,
            ),
        };
        Self {
            name,
            label,
            tenants,
            hang_one,
            shape,
        }
    }
}
const BATCH: usize = 100;
/// Steady publish rates, events per second, whose latency is measured after each bulk load
/// (the lower first: it leaves no backlog behind).
const STEADY_RATES: [usize; 2] = [100, 1_000];

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (in_process, pipeline): (Vec<&str>, Vec<&str>) = args
        .workloads
        .split(',')
        .map(str::trim)
        .partition(|workload| *workload == "fanout-join");
    let mut report = Report::default();
    // Nothing else runs beside the in-process workloads: they come before the stack starts.
    for _ in &in_process {
        report.extend(fanout_join::fanout_join(args.idle_webhooks)?);
    }
    if pipeline.is_empty() {
        return Ok(());
    }
    let sink = Sink::default();
    let sink_url = sink.serve().await?;
    let stack = Stack::start(&args).await?;

    report.push(raw_producer(&stack).await?);
    report.push(raw_http(&sink, &sink_url).await?);
    report.push(single_publish(&stack).await?);

    for workload in pipeline {
        match workload {
            "i" | "ii" | "iii" | "i-ids" | "i-spread" => {
                let workload = Workload::named(workload);
                report.extend(
                    bulk_and_steady(&stack, &sink, &sink_url, &workload, args.events).await?,
                )
            }
            "latency" => report.extend(latency::latency(&stack, &sink, &sink_url).await?),
            "backlog" => report.push(backlog(&stack, args.backlog).await?),
            "replay" => {
                report.extend(replay::replay(&stack, &sink, &sink_url, args.replay_events).await?)
            }
            "ledger" => {
                report.extend(ledger::ledger(&stack, args.ledger_attempts, args.ledger_fill).await?)
            }
            other => bail!("unknown workload {other}"),
        }
    }
    report.push(format!(
        "| peak RSS of the hookline process | {} MiB |",
        stack.peak_rss_mib()
    ));
    report.push(format!(
        "| signatures refused by the sink | {} |",
        sink.bad_signatures()
    ));
    drop(stack);
    Ok(())
}

/// The results table, printed row by row as each measure completes.
#[derive(Default)]
struct Report {
    started: bool,
}

impl Report {
    fn push(&mut self, row: String) {
        if !self.started {
            println!("| measure | result |\n|---|---|");
            self.started = true;
        }
        println!("{row}");
    }

    fn extend(&mut self, rows: Vec<String>) {
        for row in rows {
            self.push(row);
        }
    }
}

/// The raw limit of producing into Kafka from one rdkafka producer, as ingest does.
async fn raw_producer(stack: &Stack) -> Result<String> {
    let topic = stack.scratch_topic().await?;
    let publisher = hookline_kafka::Publisher::new(&stack.kafka)?;
    let payload =
        json!({"schema_version": 1, "tenant_id": "ten_raw", "type": "bench.raw", "data": {"n": 1}});
    let count = 200_000;
    let started = Instant::now();
    let results: Vec<_> = stream::iter(0..count)
        .map(|n| {
            let (publisher, topic, payload) = (publisher.clone(), topic.clone(), payload.clone());
            async move {
                publisher
                    .send_json(&topic, &format!("k{n}"), &payload)
                    .await
            }
        })
        .buffer_unordered(10_000)
        .collect()
        .await;
    let failures = results.iter().filter(|r| r.is_err()).count();
    let rate = count as f64 / started.elapsed().as_secs_f64();
    Ok(format!("| raw limit: rdkafka producer (acks=all, idempotent) | {rate:.0} messages/s ({failures} failed) |"))
}

/// The raw limit of a plain HTTP client posting signed requests into the sink.
async fn raw_http(sink: &Sink, sink_url: &str) -> Result<String> {
    let secret = Secret::generate();
    sink.register("/raw", secret.clone());
    let body = br#"{"id":"evt_raw","type":"bench.raw","timestamp":"2026-01-01T00:00:00Z","data":{"phase":"raw"}}"#;
    let client = reqwest::Client::new();
    let duration = Duration::from_secs(10);
    let started = Instant::now();
    let workers = (0..64).map(|_| {
        let (client, secret, url) = (client.clone(), secret.clone(), format!("{sink_url}/raw"));
        tokio::spawn(async move {
            let mut sent = 0u64;
            while started.elapsed() < duration {
                let timestamp = chrono::Utc::now().timestamp();
                let signature = secret.sign("msg_raw", timestamp, body);
                let response = client
                    .post(&url)
                    .header("webhook-id", "msg_raw")
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(&body[..])
                    .send()
                    .await;
                if response.is_ok_and(|r| r.status().is_success()) {
                    sent += 1;
                }
            }
            sent
        })
    });
    let sent: u64 = futures::future::join_all(workers)
        .await
        .into_iter()
        .map(|r| r.unwrap_or(0))
        .sum();
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    sink.reset();
    Ok(format!(
        "| raw limit: HTTP client into the sink (64 concurrent) | {rate:.0} requests/s |"
    ))
}

/// Single-event publish rate with 64 concurrent clients (to a tenant without webhooks, so only
/// ingest is measured).
async fn single_publish(stack: &Stack) -> Result<String> {
    let (_, key) = stack.api.tenant_with_key(stack::ADMIN_TOKEN, None).await;
    let count = 20_000;
    let started = Instant::now();
    let accepted = stream::iter(0..count)
        .map(|n| {
            let (api, key) = (stack.api.clone(), key.clone());
            async move {
                let (status, _) = api
                    .post(
                        "/v1/events",
                        &key,
                        &json!({"type": "bench.single", "data": {"n": n}}),
                    )
                    .await;
                status.as_u16() == 202
            }
        })
        .buffer_unordered(64)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let rate = accepted as f64 / started.elapsed().as_secs_f64();
    Ok(format!("| publish, single-event requests (64 concurrent) | {rate:.0} events/s ({accepted}/{count} accepted) |"))
}

/// Queues `count` delivery tasks for an endpoint that refuses connections, straight into the
/// `deliveries` topic, and reports the process's peak memory while the sender works on them.
async fn backlog(stack: &Stack, count: usize) -> Result<String> {
    let (tenant_id, key) = stack.api.tenant_with_key(stack::ADMIN_TOKEN, None).await;
    let (status, created) = stack
        .api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": "http://127.0.0.1:9/dead", "events": ["*"]}),
        )
        .await;
    if status.as_u16() != 201 {
        bail!("webhook creation failed: {created}");
    }
    let webhook_id = created["id"].as_str().unwrap_or_default().to_owned();
    let publisher = hookline_kafka::Publisher::new(&stack.kafka)?;
    let topic = stack.kafka.topics().deliveries();
    let started = Instant::now();
    stream::iter(0..count)
        .map(|n| {
            let task = json!({
                "schema_version": 1,
                "delivery_id": format!("msg_backlog_{n}"),
                "tenant_id": tenant_id,
                "webhook_id": webhook_id,
                "attempt": 1,
                "event": {
                    "schema_version": 1, "tenant_id": tenant_id, "id": format!("evt_backlog_{n}"),
                    "type": "bench.backlog", "timestamp": "2026-01-01T00:00:00Z",
                    "accepted_at": "2026-01-01T00:00:00Z", "data": {"n": n}
                }
            });
            let (publisher, topic, webhook_id) =
                (publisher.clone(), topic.clone(), webhook_id.clone());
            async move { publisher.send_json(&topic, &webhook_id, &task).await }
        })
        .buffer_unordered(10_000)
        .for_each(|_| async {})
        .await;
    let queued_in = started.elapsed();
    // Let the sender chew on the backlog for a while.
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(format!(
        "| backlog: {count} tasks for a dead endpoint (queued in {:.0} s), peak RSS after 60 s of work | {} MiB |",
        queued_in.as_secs_f64(),
        stack.peak_rss_mib()
    ))
}

/// A tenant of a workload.
struct Tenant {
    key: String,
}

async fn tenant(
    stack: &Stack,
    sink: &Sink,
    sink_url: &str,
    name: &str,
    hang_one: bool,
) -> Result<Tenant> {
    let (_, key) = stack.api.tenant_with_key(stack::ADMIN_TOKEN, None).await;
    for n in 0..WEBHOOKS_PER_TENANT {
        let path = if hang_one && n == 0 {
            HANGING_PATH.to_owned()
        } else {
            format!("/{name}/w{n}")
        };
        let (status, created) = stack
            .api
            .post(
                "/v1/webhooks",
                &key,
                &json!({"url": format!("{sink_url}{path}"), "events": ["*"]}),
            )
            .await;
        if status.as_u16() != 201 {
            bail!("webhook creation failed: {created}");
        }
        sink.register(
            &path,
            Secret::parse(created["secret"].as_str().unwrap_or_default())?,
        );
    }
    Ok(Tenant { key })
}

async fn publish_batches(
    stack: &Stack,
    tenants: &[Tenant],
    events: usize,
    phase: &str,
    shape: EventShape,
) -> Duration {
    let batches = events.div_ceil(BATCH);
    let started = Instant::now();
    stream::iter(0..batches)
        .map(|b| {
            let tenant = &tenants[b % tenants.len()];
            let events: Vec<Value> = (0..BATCH)
                .map(|n| shape.event("bench.bulk", phase, b * BATCH + n))
                .collect();
            let (api, key) = (stack.api.clone(), tenant.key.clone());
            async move {
                api.post("/v1/events/batch", &key, &json!({ "events": events }))
                    .await
            }
        })
        .buffer_unordered(8)
        .for_each(|_| async {})
        .await;
    started.elapsed()
}

/// Waits until the healthy paths received `expected` deliveries (or a deadline passes).
async fn await_deliveries(sink: &Sink, expected: u64, deadline: Duration) -> Duration {
    let started = Instant::now();
    while sink.total() < expected && started.elapsed() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// Deliveries per second over the healthy paths, first to last delivery.
fn delivery_rate(sink: &Sink) -> (u64, f64) {
    let stats = sink.stats();
    let total: u64 = stats.values().map(|s| s.deliveries).sum();
    let first = stats.values().filter_map(|s| s.first).min();
    let last = stats.values().filter_map(|s| s.last).max();
    let seconds = match (first, last) {
        (Some(first), Some(last)) => (last - first).as_secs_f64().max(0.001),
        _ => return (0, 0.0),
    };
    (total, total as f64 / seconds)
}

async fn bulk_and_steady(
    stack: &Stack,
    sink: &Sink,
    sink_url: &str,
    workload: &Workload,
    events: usize,
) -> Result<Vec<String>> {
    let (name, shape) = (workload.name, workload.shape);
    let mut all = Vec::new();
    for t in 0..workload.tenants {
        all.push(
            tenant(
                stack,
                sink,
                sink_url,
                &format!("{name}t{t}"),
                workload.hang_one,
            )
            .await?,
        );
    }
    let healthy_per_event = (WEBHOOKS_PER_TENANT - usize::from(workload.hang_one)) as u64;
    // Warm up (one batch): consumer groups joined, connections open.
    publish_batches(stack, &all[..1], BATCH, "warmup", shape).await;
    await_deliveries(
        sink,
        BATCH as u64 * healthy_per_event,
        Duration::from_secs(120),
    )
    .await;
    sink.reset();

    let expected = events.div_ceil(BATCH) as u64 * BATCH as u64 * healthy_per_event;
    let written_before = stack.ledger_written().await;
    let metrics_before = stack.metrics().await;
    let cpu_before = stack.cpu_seconds();
    let cassandra_before = stack.cassandra_cpu_seconds();
    let publish = publish_batches(stack, &all, events, "bulk", shape).await;
    let waited = await_deliveries(sink, expected, Duration::from_secs(900)).await;
    let cpu_per_thousand = (stack.cpu_seconds() - cpu_before) * 1000.0 / expected as f64;
    let (delivered, rate) = delivery_rate(sink);
    let sender_work = sender_work(&metrics_before, &stack.metrics().await);
    let bulk = sink.latencies("bulk");
    let ledger_started = Instant::now();
    let ledger_target = written_before + delivered;
    stack
        .await_ledger_written(ledger_target, Duration::from_secs(600))
        .await;
    let ledger_catch_up = ledger_started.elapsed();
    let cassandra_per_thousand =
        (stack.cassandra_cpu_seconds() - cassandra_before) * 1000.0 / expected as f64;

    let mut steady_rows = Vec::new();
    for events_per_second in STEADY_RATES {
        let (offered, latencies) = steady(
            stack,
            sink,
            &all,
            events_per_second,
            healthy_per_event,
            shape,
        )
        .await;
        steady_rows.push((offered, latencies));
    }

    let ms = |micros: u64| micros as f64 / 1000.0;
    let label = workload.label;
    Ok(vec![
        format!("| {label}: publish {events} events in batches of {BATCH} | {:.0} events/s |", events as f64 / publish.as_secs_f64()),
        format!("| {label}: deliveries at the sink (healthy endpoints) | {rate:.0} deliveries/s ({delivered}/{expected} in {:.1} s) |", waited.as_secs_f64()),
        format!("| {label}: hookline CPU time per 1,000 deliveries (ingest to sink) | {cpu_per_thousand:.2} s |"),
        format!("| {label}: latency under bulk load p50 / p99 / max | {:.0} / {:.0} / {:.0} ms |", ms(quantile(&bulk, 0.5)), ms(quantile(&bulk, 0.99)), ms(quantile(&bulk, 1.0))),
        format!("| {label}: sender's attempts recorded / tasks held by an open circuit / parked, during the bulk | {sender_work} |"),
        format!("| {label}: ledger catch-up after the last delivery | {:.1} s |", ledger_catch_up.as_secs_f64()),
        format!("| {label}: Cassandra CPU time per 1,000 deliveries, until written | {cassandra_per_thousand:.2} s |"),
    ]
    .into_iter()
    .chain(steady_rows.iter().map(|(offered, latencies)| {
        format!(
            "| {label}: latency at a steady {offered:.0} events/s, p50 / p99 / max | {:.1} / {:.1} / {:.1} ms ({} deliveries) |",
            ms(quantile(latencies, 0.5)),
            ms(quantile(latencies, 0.99)),
            ms(quantile(latencies, 1.0)),
            latencies.len()
        )
    }))
    .collect())
}

/// What the sender did between two readings of its metrics: attempts recorded, tasks held by
/// an open circuit, tasks parked.
fn sender_work(before: &HashMap<String, f64>, after: &HashMap<String, f64>) -> String {
    let grew = |name| stack::family_delta(before, after, name);
    format!(
        "{:.0} / {:.0} / {:.0}",
        grew("hookline_sender_attempts_total"),
        grew("hookline_sender_circuit_holds_total"),
        grew("hookline_sender_parked_total"),
    )
}

/// Publishes `events_per_second` for 10 s (a batch every 10 ms) and waits for every delivery;
/// the rate actually offered and the sorted event-to-delivery latencies.
async fn steady(
    stack: &Stack,
    sink: &Sink,
    tenants: &[Tenant],
    events_per_second: usize,
    healthy_per_event: u64,
    shape: EventShape,
) -> (f64, Vec<u64>) {
    sink.reset();
    let per_tick = (events_per_second / 100).max(1);
    let ticks = 1000;
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut sends = Vec::new();
    for tick in 0..ticks {
        ticker.tick().await;
        let tenant = &tenants[tick % tenants.len()];
        let batch: Vec<Value> = (0..per_tick)
            .map(|n| shape.event("bench.steady", "steady", tick * per_tick + n))
            .collect();
        let (api, key) = (stack.api.clone(), tenant.key.clone());
        sends.push(tokio::spawn(async move {
            api.post("/v1/events/batch", &key, &json!({ "events": batch }))
                .await
        }));
    }
    futures::future::join_all(sends).await;
    let published = per_tick * ticks;
    let offered = published as f64 / started.elapsed().as_secs_f64();
    await_deliveries(
        sink,
        published as u64 * healthy_per_event,
        Duration::from_secs(300),
    )
    .await;
    let latencies = sink.latencies("steady");
    sink.reset();
    (offered, latencies)
}
