//! One metric for every stage's dead letters, so one alert covers them all.

use prometheus::{IntCounterVec, Opts, Registry};

/// Why a record was dead-lettered: a bounded set of label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// Its bytes are not the record the topic's schema describes.
    Undecodable,
    /// Kafka refused what processing it produced (larger than the topic takes).
    RejectedByKafka,
    /// The ledger database refused to store it.
    RejectedByStore,
}

impl DeadLetterReason {
    const ALL: [Self; 3] = [
        Self::Undecodable,
        Self::RejectedByKafka,
        Self::RejectedByStore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undecodable => "undecodable",
            Self::RejectedByKafka => "rejected_by_kafka",
            Self::RejectedByStore => "rejected_by_store",
        }
    }
}

/// `hookline_records_dead_lettered_total{stage, reason}`: records `stage` could never process
/// and sent to its dead-letter topic. Every reason starts at zero, so alerts see the series.
#[derive(Clone)]
pub struct DeadLetterCounter(IntCounterVec);

impl DeadLetterCounter {
    pub fn register(registry: &Registry, stage: &str) -> Result<Self, prometheus::Error> {
        let counter = IntCounterVec::new(
            Opts::new(
                "hookline_records_dead_lettered_total",
                "Records a stage could never process, sent with the reason to its dead-letter topic",
            )
            .const_label("stage", stage),
            &["reason"],
        )?;
        for reason in DeadLetterReason::ALL {
            counter.with_label_values(&[reason.as_str()]);
        }
        registry.register(Box::new(counter.clone()))?;
        Ok(Self(counter))
    }

    pub fn inc(&self, reason: DeadLetterReason) {
        self.inc_by(reason, 1);
    }

    pub fn inc_by(&self, reason: DeadLetterReason, count: u64) {
        self.0.with_label_values(&[reason.as_str()]).inc_by(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_registers_the_same_metric_in_one_registry() {
        let registry = Registry::new();
        let fanout = DeadLetterCounter::register(&registry, "fanout").unwrap();
        DeadLetterCounter::register(&registry, "ledger").unwrap();
        fanout.inc(DeadLetterReason::Undecodable);
        let families = registry.gather();
        assert_eq!(families.len(), 1);
        assert_eq!(families[0].get_metric().len(), 6);
    }
}
