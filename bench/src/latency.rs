//! Latency at low, steady load: single events published at an even pace to one tenant × 10
//! webhooks, event-to-delivery at the sink, and where the time goes, step by step, from the
//! process's own histograms over the same interval (means: each step's sum over its count).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;

use crate::sink::{quantile, Sink};
use crate::stack::{delta, Stack};
use crate::{await_deliveries, tenant, EventShape, WEBHOOKS_PER_TENANT};

/// Events per second, each rate for `STEADY_FOR`.
const RATES: [u64; 2] = [10, 100];
const STEADY_FOR: Duration = Duration::from_secs(30);

/// The steps of one event's way, as `(label, histogram, label set)`: each histogram's mean
/// over the interval.
const STEPS: [(&str, &str, &str); 10] = [
    (
        "ingest: produce until Kafka acknowledged",
        "hookline_ingest_produce_duration_seconds",
        "",
    ),
    (
        "fanout: event's age when read (ingest's linger, append, fetch)",
        "hookline_fanout_event_age_seconds",
        "",
    ),
    (
        "fanout: gathering the batch (linger)",
        "hookline_fanout_step_seconds",
        r#"{step="gather"}"#,
    ),
    (
        "fanout: catching up with the webhooks",
        "hookline_fanout_step_seconds",
        r#"{step="catch_up"}"#,
    ),
    (
        "fanout: join",
        "hookline_fanout_step_seconds",
        r#"{step="join"}"#,
    ),
    (
        "fanout: produce the tasks and send the offsets, until acknowledged",
        "hookline_fanout_step_seconds",
        r#"{step="produce"}"#,
    ),
    (
        "fanout: commit the transaction",
        "hookline_fanout_step_seconds",
        r#"{step="commit"}"#,
    ),
    (
        "sender: task's age when read (fanout's produce and commit, fetch)",
        "hookline_sender_task_age_seconds",
        "",
    ),
    (
        "sender: request until the endpoint answered",
        "hookline_sender_attempt_duration_seconds",
        "",
    ),
    (
        "sender: event accepted until the endpoint answered",
        "hookline_sender_event_to_delivery_seconds",
        "",
    ),
];

pub async fn latency(stack: &Stack, sink: &Sink, sink_url: &str) -> Result<Vec<String>> {
    let tenant = tenant(stack, sink, sink_url, "latency", false).await?;
    // Warm up: connections open, consumer groups settled.
    steady(stack, sink, &tenant.key, 10, Duration::from_secs(5)).await;
    let mut rows = Vec::new();
    for rate in RATES {
        let before = stack.metrics().await;
        let measured = steady(stack, sink, &tenant.key, rate, STEADY_FOR).await;
        let after = stack.metrics().await;
        let ms = |micros: u64| micros as f64 / 1000.0;
        let label = format!("latency, {rate} single events/s × 10 webhooks");
        rows.push(format!(
            "| {label}: published → endpoint received, p50 / p99 / max | {:.1} / {:.1} / {:.1} ms ({} deliveries) |",
            ms(quantile(&measured.deliveries, 0.5)),
            ms(quantile(&measured.deliveries, 0.99)),
            ms(quantile(&measured.deliveries, 1.0)),
            measured.deliveries.len(),
        ));
        rows.push(format!(
            "| {label}: `POST /v1/events` answered at the client, p50 / p99 | {:.1} / {:.1} ms |",
            ms(quantile(&measured.publishes, 0.5)),
            ms(quantile(&measured.publishes, 0.99)),
        ));
        for (step, histogram, labels) in STEPS {
            let mean = mean_between(&before, &after, histogram, labels);
            rows.push(format!(
                "| {label}, mean: {step} | {} |",
                mean.map_or("–".to_owned(), |seconds| format!(
                    "{:.2} ms",
                    seconds * 1e3
                ))
            ));
        }
        let batches = delta(
            &before,
            &after,
            "hookline_fanout_batch_duration_seconds_count",
        );
        let joined = delta(&before, &after, "hookline_fanout_events_joined_total");
        rows.push(format!(
            "| {label}: events per fanout batch | {:.2} |",
            joined / batches.max(1.0)
        ));
    }
    Ok(rows)
}

/// What one steady phase measured, sorted, in microseconds.
struct Measured {
    deliveries: Vec<u64>,
    publishes: Vec<u64>,
}

/// Publishes `per_second` single events evenly for `duration`, each from its own task so a
/// slow answer delays no other, and waits for every delivery.
async fn steady(
    stack: &Stack,
    sink: &Sink,
    key: &str,
    per_second: u64,
    duration: Duration,
) -> Measured {
    sink.reset();
    let events = per_second * duration.as_secs();
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_second as u32);
    let mut sends = Vec::new();
    for n in 0..events {
        ticker.tick().await;
        let event: Value = EventShape::Plain.event("bench.latency", "latency", n as usize);
        let (api, key) = (stack.api.clone(), key.to_owned());
        sends.push(tokio::spawn(async move {
            let started = Instant::now();
            api.post("/v1/events", &key, &event).await;
            started.elapsed().as_micros() as u64
        }));
    }
    let mut publishes: Vec<u64> = futures::future::join_all(sends)
        .await
        .into_iter()
        .flatten()
        .collect();
    publishes.sort_unstable();
    await_deliveries(
        sink,
        events * WEBHOOKS_PER_TENANT as u64,
        Duration::from_secs(120),
    )
    .await;
    let deliveries = sink.latencies("latency");
    sink.reset();
    Measured {
        deliveries,
        publishes,
    }
}

/// The mean of `histogram{labels}` over what was observed between the two readings.
fn mean_between(
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
    histogram: &str,
    labels: &str,
) -> Option<f64> {
    let count = delta(before, after, &format!("{histogram}_count{labels}"));
    let sum = delta(before, after, &format!("{histogram}_sum{labels}"));
    (count > 0.0).then(|| sum / count)
}
