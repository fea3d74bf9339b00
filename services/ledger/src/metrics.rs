use hookline_runtime::DeadLetterCounter;
use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};

/// Metrics of the ledger service.
#[derive(Clone)]
pub struct LedgerMetrics {
    pub attempts_written: IntCounter,
    pub events_written: IntCounter,
    pub write_failures: IntCounter,
    pub dead_letters: DeadLetterCounter,
    pub write_duration: Histogram,
    pub group_size: Histogram,
    pub groups_split: IntCounter,
}

impl LedgerMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            attempts_written: IntCounter::new(
                "hookline_ledger_attempts_written_total",
                "Attempt records written to the ledger store",
            )?,
            events_written: IntCounter::new(
                "hookline_ledger_events_written_total",
                "Accepted events (with their payload) written to the ledger store",
            )?,
            write_failures: IntCounter::new(
                "hookline_ledger_write_failures_total",
                "Ledger writes that failed and were retried",
            )?,
            dead_letters: DeadLetterCounter::register(registry, "ledger")?,
            write_duration: Histogram::with_opts(HistogramOpts::new(
                "hookline_ledger_write_duration_seconds",
                "Time to write one attempt and its delivery state",
            ))?,
            group_size: Histogram::with_opts(
                HistogramOpts::new(
                    "hookline_ledger_attempt_group_size",
                    "Attempts written to the ledger store in one request",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0]),
            )?,
            groups_split: IntCounter::new(
                "hookline_ledger_attempt_groups_split_total",
                "Groups of attempts the store refused whole, then written one attempt at a time",
            )?,
        };
        registry.register(Box::new(metrics.attempts_written.clone()))?;
        registry.register(Box::new(metrics.events_written.clone()))?;
        registry.register(Box::new(metrics.write_failures.clone()))?;
        registry.register(Box::new(metrics.write_duration.clone()))?;
        registry.register(Box::new(metrics.group_size.clone()))?;
        registry.register(Box::new(metrics.groups_split.clone()))?;
        Ok(metrics)
    }
}
