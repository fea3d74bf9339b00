use hookline_control::{ControlPlane, WebhookStatus};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Metrics of the ingest service.
#[derive(Clone)]
pub struct IngestMetrics {
    /// Events acknowledged by Kafka and answered 202.
    pub events_accepted: IntCounter,
    /// Events refused, by error code.
    pub events_rejected: IntCounterVec,
    /// Time from handing an event to the producer until Kafka acknowledged it.
    pub produce_duration: Histogram,
    /// Transient Kafka failures retried within a control-plane request's deadline.
    pub control_retries: IntCounter,
    /// Control-plane requests answered `unavailable`: Kafka did not settle within the deadline.
    pub control_unavailable: IntCounter,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            events_accepted: IntCounter::new(
                "hookline_ingest_events_accepted_total",
                "Events acknowledged by Kafka and answered 202",
            )?,
            events_rejected: IntCounterVec::new(
                Opts::new(
                    "hookline_ingest_events_rejected_total",
                    "Events refused, by error code",
                ),
                &["code"],
            )?,
            produce_duration: Histogram::with_opts(HistogramOpts::new(
                "hookline_ingest_produce_duration_seconds",
                "Time until Kafka acknowledged an accepted event or batch",
            ))?,
            control_retries: IntCounter::new(
                "hookline_ingest_control_retries_total",
                "Transient Kafka failures retried within a control-plane request's deadline",
            )?,
            control_unavailable: IntCounter::new(
                "hookline_ingest_control_unavailable_total",
                "Control-plane requests answered unavailable because Kafka did not settle within their deadline",
            )?,
        };
        registry.register(Box::new(metrics.events_accepted.clone()))?;
        registry.register(Box::new(metrics.events_rejected.clone()))?;
        registry.register(Box::new(metrics.produce_duration.clone()))?;
        registry.register(Box::new(metrics.control_retries.clone()))?;
        registry.register(Box::new(metrics.control_unavailable.clone()))?;
        Ok(metrics)
    }
}

/// `hookline_webhooks{state}`, counted from the materialized control plane at each scrape.
struct WebhooksByState<F> {
    count: F,
    gauge: IntGaugeVec,
}

impl<F> Collector for WebhooksByState<F>
where
    F: Fn() -> [(WebhookStatus, usize); 4] + Send + Sync,
{
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (status, count) in (self.count)() {
            self.gauge
                .with_label_values(&[status.as_str()])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.gauge.collect()
    }
}

fn register_webhooks_by_state(
    registry: &Registry,
    count: impl Fn() -> [(WebhookStatus, usize); 4] + Send + Sync + 'static,
) -> Result<(), prometheus::Error> {
    let gauge = IntGaugeVec::new(
        Opts::new(
            "hookline_webhooks",
            "Webhooks of all tenants by state (active, inactive, failing, disabled); every replica sees the same, so aggregate with max",
        ),
        &["state"],
    )?;
    registry.register(Box::new(WebhooksByState { count, gauge }))
}

/// Exports `hookline_webhooks{state}` from `control`.
pub fn register_webhook_states(
    registry: &Registry,
    control: ControlPlane,
) -> Result<(), prometheus::Error> {
    register_webhooks_by_state(registry, move || control.read().webhooks_by_status())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use prometheus::Encoder;

    use super::*;

    #[test]
    fn webhooks_by_state_are_counted_at_each_scrape() {
        let registry = Registry::new();
        let failing = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&failing);
        register_webhooks_by_state(&registry, move || {
            WebhookStatus::ALL.map(|status| match status {
                WebhookStatus::Failing => (status, counted.load(Ordering::Relaxed)),
                _ => (status, 1),
            })
        })
        .expect("registers");
        let scrape = || {
            let mut text = Vec::new();
            prometheus::TextEncoder::new()
                .encode(&registry.gather(), &mut text)
                .expect("metrics encode");
            String::from_utf8(text).expect("metrics are text")
        };
        let first = scrape();
        for state in ["active", "inactive", "disabled"] {
            assert!(first.contains(&format!("hookline_webhooks{{state=\"{state}\"}} 1")));
        }
        assert!(first.contains(r#"hookline_webhooks{state="failing"} 0"#));
        failing.store(3, Ordering::Relaxed);
        assert!(scrape().contains(r#"hookline_webhooks{state="failing"} 3"#));
    }
}
