use hookline_runtime::{latency_histogram, latency_histograms, DeadLetterCounter};
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge, Registry};

/// Metrics of the fanout service.
#[derive(Clone)]
pub struct FanoutMetrics {
    pub events_joined: IntCounter,
    pub tasks_emitted: IntCounter,
    pub dead_letters: DeadLetterCounter,
    pub batch_duration: Histogram,
    pub transactions_aborted: IntCounter,
    pub repeats: IntCounter,
    pub idempotency_keys: IntGauge,
    /// How long a batch's first event waited between ingest producing it and fanout reading it.
    pub event_age: Histogram,
    /// Each step of a batch: `gather`, `catch_up`, `join`, `produce`, `commit`.
    pub steps: HistogramVec,
}

impl FanoutMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            events_joined: IntCounter::new(
                "hookline_fanout_events_joined_total",
                "Events joined with the webhooks they match",
            )?,
            tasks_emitted: IntCounter::new(
                "hookline_fanout_tasks_emitted_total",
                "Delivery tasks committed to the deliveries topic",
            )?,
            dead_letters: DeadLetterCounter::register(registry, "fanout")?,
            batch_duration: Histogram::with_opts(HistogramOpts::new(
                "hookline_fanout_batch_duration_seconds",
                "Time to join and commit one batch of events",
            ))?,
            transactions_aborted: IntCounter::new(
                "hookline_fanout_transactions_aborted_total",
                "Transactions that failed and whose batch was committed again in a new one",
            )?,
            repeats: IntCounter::new(
                "hookline_fanout_repeats_total",
                "Events not delivered because an event with their id was accepted within the idempotency window",
            )?,
            idempotency_keys: IntGauge::new(
                "hookline_fanout_idempotency_keys",
                "Producer-chosen event ids held in memory, within the idempotency window",
            )?,
            event_age: latency_histogram(
                registry,
                "hookline_fanout_event_age_seconds",
                "Time from ingest producing a batch's first event until fanout read it",
            )?,
            steps: latency_histograms(
                registry,
                "hookline_fanout_step_seconds",
                "Time each step of a batch took: gather (waiting for more events), catch_up (the webhooks), join, produce (the tasks acknowledged and the offsets sent), commit (the transaction)",
                "step",
            )?,
        };
        registry.register(Box::new(metrics.events_joined.clone()))?;
        registry.register(Box::new(metrics.repeats.clone()))?;
        registry.register(Box::new(metrics.idempotency_keys.clone()))?;
        registry.register(Box::new(metrics.tasks_emitted.clone()))?;
        registry.register(Box::new(metrics.batch_duration.clone()))?;
        registry.register(Box::new(metrics.transactions_aborted.clone()))?;
        Ok(metrics)
    }
}
