use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

/// Metrics of the ingest service.
#[derive(Clone)]
pub struct IngestMetrics {
    /// Events acknowledged by Kafka and answered 202.
    pub events_accepted: IntCounter,
    /// Events refused, by error code.
    pub events_rejected: IntCounterVec,
    /// Time from handing an event to the producer until Kafka acknowledged it.
    pub produce_duration: Histogram,
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
        };
        registry.register(Box::new(metrics.events_accepted.clone()))?;
        registry.register(Box::new(metrics.events_rejected.clone()))?;
        registry.register(Box::new(metrics.produce_duration.clone()))?;
        Ok(metrics)
    }
}
