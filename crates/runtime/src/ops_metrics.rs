//! Metrics every process exposes whatever services it runs: what is running
//! (`hookline_build_info`), what it costs (`process_*`: CPU, resident memory, file descriptors,
//! threads, the names every Prometheus client library uses), and how far each consumer group is
//! behind (`hookline_kafka_consumer_lag_records`).

use std::time::Duration;

use hookline_kafka::{KafkaArgs, LagProbe};
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

use crate::{BoxError, Context, Worker};

/// How often a group's lag is measured; a few Prometheus scrape intervals see each value.
const LAG_INTERVAL: Duration = Duration::from_secs(10);

/// Registers the process-wide metrics, once per registry (see [`crate::serve`]).
pub(crate) fn register_process_metrics(registry: &Registry) -> Result<(), prometheus::Error> {
    let build_info = IntGauge::with_opts(
        Opts::new(
            "hookline_build_info",
            "Always 1; its labels tell which Hookline version this process runs",
        )
        .const_label("version", env!("CARGO_PKG_VERSION")),
    )?;
    build_info.set(1);
    registry.register(Box::new(build_info))?;
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(())
}

/// A worker that exports `group`'s lag on each of `topics` as
/// `hookline_kafka_consumer_lag_records{group, topic}` until shutdown. Every replica of a
/// service measures the same group, so aggregate with `max`, never `sum`, across instances.
pub fn watch_consumer_lag(
    context: &Context,
    kafka: &KafkaArgs,
    group: &str,
    topics: &[String],
) -> Result<Worker, BoxError> {
    // One series family per group: the group is a constant label, so services sharing one
    // process (and one registry) each register their own without colliding.
    let lag = IntGaugeVec::new(
        Opts::new(
            "hookline_kafka_consumer_lag_records",
            "Records on a topic not yet committed by a consumer group (high watermark minus committed offset, summed over partitions)",
        )
        .const_label("group", group),
        &["topic"],
    )?;
    context.registry.register(Box::new(lag.clone()))?;
    let probe = LagProbe::new(kafka, group, topics)?;
    let shutdown = context.shutdown.clone();
    let group = group.to_owned();
    Ok(Box::pin(async move {
        let mut ticks = tokio::time::interval(LAG_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                _ = ticks.tick() => {}
            }
            match probe.measure().await {
                Ok(lags) => {
                    for topic_lag in lags {
                        lag.with_label_values(&[topic_lag.topic.as_str()])
                            .set(topic_lag.records);
                    }
                }
                // A lag reading is advisory: keep the last values and try again next tick.
                Err(err) => tracing::debug!(group, error = %err, "could not measure consumer lag"),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use prometheus::Encoder;

    use super::*;

    fn exposition(registry: &Registry) -> String {
        let mut body = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut body)
            .expect("metrics encode");
        String::from_utf8(body).expect("metrics are text")
    }

    #[test]
    fn process_metrics_expose_build_info_and_resource_use() {
        let registry = Registry::new();
        register_process_metrics(&registry).expect("registers");
        let text = exposition(&registry);
        assert!(text.contains(&format!(
            "hookline_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(text.contains("process_resident_memory_bytes"));
        assert!(text.contains("process_cpu_seconds_total"));
    }

    #[tokio::test]
    async fn lag_of_several_groups_shares_one_registry_and_stops_on_shutdown() {
        let context = Context::new(tokio_util::sync::CancellationToken::new());
        let kafka = KafkaArgs {
            brokers: "127.0.0.1:1".into(),
            topic_prefix: "test.".into(),
            partitions: 1,
            replication: 1,
            fetch_wait_ms: KafkaArgs::DEFAULT_FETCH_WAIT_MS,
            producer_linger_ms: KafkaArgs::DEFAULT_LINGER_MS,
            max_poll_interval_ms: KafkaArgs::DEFAULT_MAX_POLL_INTERVAL_MS,
        };
        let workers: Vec<Worker> = ["test.sender", "test.ledger"]
            .into_iter()
            .map(|group| {
                watch_consumer_lag(&context, &kafka, group, &["test.deliveries".into()])
                    .expect("registers")
            })
            .collect();
        context.shutdown.cancel();
        for worker in workers {
            worker.await.expect("stops cleanly");
        }
    }
}
