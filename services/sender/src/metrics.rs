use std::time::Duration;

use hookline_domain::retry::format_delay;
use hookline_runtime::{latency_histogram, DeadLetterCounter};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Metrics of the sender service.
#[derive(Clone)]
pub struct SenderMetrics {
    pub attempts: IntCounterVec,
    pub attempt_duration: Histogram,
    pub in_flight: IntGauge,
    /// Task records the sender could never process (not tasks whose attempts are spent).
    pub records_dead_lettered: DeadLetterCounter,
    pub retries_scheduled: IntCounter,
    pub dead_letters: IntCounter,
    pub parked: IntCounter,
    pub tier_hops: IntCounter,
    /// Tasks held back by an open circuit (once per hold, however often it is parked).
    pub circuit_holds: IntCounter,
    /// Tasks held in memory while their endpoint's circuit is open.
    pub held_tasks: IntGauge,
    pub open_circuits: IntGauge,
    pub event_to_delivery: Histogram,
    /// How long a fresh task waited between fanout producing it and the sender reading it.
    pub task_age: Histogram,
    retry_due_lag: HistogramVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    let counter = IntCounter::new(name, help)?;
    registry.register(Box::new(counter.clone()))?;
    Ok(counter)
}

impl SenderMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let attempts = IntCounterVec::new(
            Opts::new(
                "hookline_sender_attempts_total",
                "Delivery attempts recorded, by outcome and response status class",
            ),
            &["outcome", "status_class"],
        )?;
        registry.register(Box::new(attempts.clone()))?;
        let attempt_duration = Histogram::with_opts(HistogramOpts::new(
            "hookline_sender_attempt_duration_seconds",
            "Time from sending a request until its response (or failure)",
        ))?;
        registry.register(Box::new(attempt_duration.clone()))?;
        let in_flight = IntGauge::new(
            "hookline_sender_in_flight_tasks",
            "Delivery tasks holding an endpoint slot",
        )?;
        registry.register(Box::new(in_flight.clone()))?;
        let open_circuits = IntGauge::new(
            "hookline_sender_open_circuits",
            "Endpoints whose circuit is open in this process",
        )?;
        registry.register(Box::new(open_circuits.clone()))?;
        let held_tasks = IntGauge::new(
            "hookline_sender_held_tasks",
            "Delivery tasks held in memory while their endpoint's circuit is open",
        )?;
        registry.register(Box::new(held_tasks.clone()))?;
        let event_to_delivery = Histogram::with_opts(
            HistogramOpts::new(
                "hookline_sender_event_to_delivery_seconds",
                "Time from an event's acceptance until an endpoint acknowledged it",
            )
            .buckets(vec![
                0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
                3600.0,
            ]),
        )?;
        registry.register(Box::new(event_to_delivery.clone()))?;
        let retry_due_lag = HistogramVec::new(
            HistogramOpts::new(
                "hookline_sender_retry_due_lag_seconds",
                "How long after it was due a retry-tier task was handed to an attempt, by tier delay",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
            &["tier"],
        )?;
        registry.register(Box::new(retry_due_lag.clone()))?;
        Ok(Self {
            task_age: latency_histogram(
                registry,
                "hookline_sender_task_age_seconds",
                "Time from fanout producing a delivery task until the sender read it (its transaction's commit included)",
            )?,
            retry_due_lag,
            open_circuits,
            held_tasks,
            event_to_delivery,
            attempts,
            attempt_duration,
            in_flight,
            records_dead_lettered: DeadLetterCounter::register(registry, "sender")?,
            retries_scheduled: counter(
                registry,
                "hookline_sender_retries_scheduled_total",
                "Failed attempts whose next attempt was scheduled",
            )?,
            dead_letters: counter(
                registry,
                "hookline_sender_dead_letters_total",
                "Tasks sent to dead letters with their attempts spent",
            )?,
            parked: counter(
                registry,
                "hookline_sender_parked_total",
                "Tasks parked on a retry tier because their endpoint was backlogged",
            )?,
            tier_hops: counter(
                registry,
                "hookline_sender_tier_hops_total",
                "Tasks that left a retry tier early and moved to the tier fitting their wait",
            )?,
            circuit_holds: counter(
                registry,
                "hookline_sender_circuit_holds_total",
                "Tasks held back without an attempt because their endpoint's circuit was open",
            )?,
        })
    }

    /// Records that a task of the retry tier of `delay` started `overdue` after it was due.
    pub fn observe_retry_due_lag(&self, delay: Duration, overdue: Duration) {
        self.retry_due_lag
            .with_label_values(&[&format_delay(delay)])
            .observe(overdue.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use prometheus::Encoder;

    use super::*;

    #[test]
    fn retry_due_lag_is_labelled_by_tier_delay() {
        let registry = Registry::new();
        let metrics = SenderMetrics::register(&registry).expect("registers");
        metrics.observe_retry_due_lag(Duration::from_secs(30), Duration::from_millis(250));
        metrics.observe_retry_due_lag(Duration::from_secs(120), Duration::ZERO);
        let mut text = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .expect("metrics encode");
        let text = String::from_utf8(text).expect("metrics are text");
        assert!(
            text.contains(r#"hookline_sender_retry_due_lag_seconds_bucket{tier="30s",le="0.1"} 0"#)
        );
        assert!(
            text.contains(r#"hookline_sender_retry_due_lag_seconds_bucket{tier="30s",le="0.5"} 1"#)
        );
        assert!(text.contains(r#"hookline_sender_retry_due_lag_seconds_count{tier="2m"} 1"#));
    }
}
