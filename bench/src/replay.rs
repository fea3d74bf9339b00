//! The replay workload: a webhook's endpoint fails every request, so each of `count` events
//! ends as a dead delivery after one attempt; then the endpoint recovers, a recovery job
//! (`POST /v1/webhooks/{id}/recover`) replays them all, and the workload measures how long
//! until every replay reached the sink and until the job reported itself done.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::Utc;
use hookline_signing::Secret;
use serde_json::json;

use crate::sink::Sink;
use crate::stack::{Stack, ADMIN_TOKEN};
use crate::{await_deliveries, delivery_rate, publish_batches, EventShape, Tenant};

const PATH: &str = "/replay";
/// How long the ledger may take to record a phase's attempts.
const LEDGER_DEADLINE: Duration = Duration::from_secs(900);

pub async fn replay(
    stack: &Stack,
    sink: &Sink,
    sink_url: &str,
    count: usize,
) -> Result<Vec<String>> {
    let (_, key) = stack.api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (status, created) = stack
        .api
        .post(
            "/v1/webhooks",
            &key,
            &json!({
                "url": format!("{sink_url}{PATH}"),
                "events": ["*"],
                "retry": {"max_attempts": 1, "initial_delay_secs": 1},
            }),
        )
        .await;
    if status.as_u16() != 201 {
        bail!("webhook creation failed: {created}");
    }
    let webhook_id = created["id"].as_str().unwrap_or_default().to_owned();
    sink.register(
        PATH,
        Secret::parse(created["secret"].as_str().unwrap_or_default())?,
    );
    let tenant = Tenant { key: key.clone() };
    let published = count.div_ceil(crate::BATCH) * crate::BATCH;

    // The rate to compare with: the same endpoint's first deliveries of as many fresh events.
    sink.reset();
    let written_before = stack.ledger_written().await;
    publish_batches(
        stack,
        std::slice::from_ref(&tenant),
        count,
        "first",
        EventShape::Plain,
    )
    .await;
    await_deliveries(sink, published as u64, Duration::from_secs(900)).await;
    let (first_delivered, first_rate) = delivery_rate(sink);
    // Recorded before the failing phase counts its own attempts.
    if !stack
        .await_ledger_written(written_before + published as u64, LEDGER_DEADLINE)
        .await
    {
        bail!("the ledger did not record the {published} first deliveries within 15 minutes");
    }

    sink.set_failing(PATH, true);
    sink.reset();

    // Every event fails once and is dead: one attempt each in the ledger.
    let since = Utc::now();
    let written_before = stack.ledger_written().await;
    publish_batches(
        stack,
        std::slice::from_ref(&tenant),
        count,
        "replay",
        EventShape::Plain,
    )
    .await;
    let dead_started = Instant::now();
    if !stack
        .await_ledger_written(written_before + published as u64, LEDGER_DEADLINE)
        .await
    {
        bail!("the {published} deliveries did not all fail within 15 minutes");
    }
    let dead_in = dead_started.elapsed();
    let until = Utc::now();
    // The store keeps times to the millisecond and `until` is inclusive: a probe accepted in
    // the same millisecond would be in the window.
    tokio::time::sleep(Duration::from_millis(5)).await;

    // The endpoint is back. Its circuit opened after the first failures and closes once a probe
    // after the cool-down succeeds; single events are probes, outside the recovery's window.
    sink.set_failing(PATH, false);
    let probing = Instant::now();
    while sink.total() == 0 {
        if probing.elapsed() > Duration::from_secs(180) {
            bail!("the endpoint's circuit did not close within 3 minutes");
        }
        stack
            .api
            .post(
                "/v1/events",
                &key,
                &json!({"type": "bench.probe", "timestamp": Utc::now(), "data": {"phase": "probe"}}),
            )
            .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    sink.reset();

    let started = Instant::now();
    let (status, job) = stack
        .api
        .post(
            &format!("/v1/webhooks/{webhook_id}/recover"),
            &key,
            &json!({"since": since, "until": until}),
        )
        .await;
    if status.as_u16() != 202 {
        bail!("recovery refused: {job}");
    }
    let job_path = format!(
        "/v1/webhooks/{webhook_id}/recover/{}",
        job["id"].as_str().unwrap_or_default()
    );
    let (mut at_sink, mut done) = (None, None);
    let mut replayed = 0;
    while at_sink.is_none() || done.is_none() {
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the recovery did not finish within 15 minutes");
        }
        if at_sink.is_none() && sink.total() >= published as u64 {
            at_sink = Some(started.elapsed());
        }
        if done.is_none() {
            let (_, job) = stack.api.get(&job_path, &key).await;
            match job["status"].as_str() {
                Some("succeeded") => {
                    done = Some(started.elapsed());
                    replayed = job["replayed"].as_i64().unwrap_or(0);
                }
                Some("failed") => bail!("the recovery failed: {job}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (at_sink, done) = (at_sink.unwrap_or_default(), done.unwrap_or_default());
    let (delivered, sink_rate) = delivery_rate(sink);
    let distinct = sink.stats().get(PATH).map_or(0, |stats| stats.ids.len());
    sink.reset();
    Ok(vec![
        format!("| replay: the same endpoint's first deliveries of {published} fresh events, first to last | {first_rate:.0} deliveries/s ({first_delivered} delivered) |"),
        format!("| replay: {published} deliveries dead after one failed attempt | in {:.1} s |", dead_in.as_secs_f64()),
        format!("| replay: recovery job done (every dead delivery's task produced) | {:.0} replays/s ({replayed} in {:.1} s) |", replayed as f64 / done.as_secs_f64(), done.as_secs_f64()),
        format!("| replay: recovery start to the last replay at the sink | {:.0} replays/s ({published} in {:.1} s) |", published as f64 / at_sink.as_secs_f64(), at_sink.as_secs_f64()),
        format!("| replay: replays at the sink, first to last | {sink_rate:.0} deliveries/s ({delivered} delivered, {distinct} distinct webhook-ids) |"),
    ])
}
