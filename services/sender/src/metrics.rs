use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Metrics of the sender service.
#[derive(Clone)]
pub struct SenderMetrics {
    pub attempts: IntCounterVec,
    pub attempt_duration: Histogram,
    pub in_flight: IntGauge,
    pub tasks_skipped: IntCounter,
}

impl SenderMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            attempts: IntCounterVec::new(
                Opts::new(
                    "hookline_sender_attempts_total",
                    "Delivery attempts recorded, by outcome and response status class",
                ),
                &["outcome", "status_class"],
            )?,
            attempt_duration: Histogram::with_opts(HistogramOpts::new(
                "hookline_sender_attempt_duration_seconds",
                "Time from sending a request until its response (or failure)",
            ))?,
            in_flight: IntGauge::new(
                "hookline_sender_in_flight_tasks",
                "Delivery tasks started and not yet finished",
            )?,
            tasks_skipped: IntCounter::new(
                "hookline_sender_tasks_skipped_total",
                "Undecodable delivery tasks, logged and skipped",
            )?,
        };
        registry.register(Box::new(metrics.attempts.clone()))?;
        registry.register(Box::new(metrics.attempt_duration.clone()))?;
        registry.register(Box::new(metrics.in_flight.clone()))?;
        registry.register(Box::new(metrics.tasks_skipped.clone()))?;
        Ok(metrics)
    }
}
