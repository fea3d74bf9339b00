use std::time::Duration;

use hookline_kafka::{AtLeastOnceConsumer, ConsumedRecord};
use hookline_runtime::BoxError;
use hookline_schemas::AttemptRecord;
use hookline_store::Ledger;
use tokio_util::sync::CancellationToken;

use crate::metrics::LedgerMetrics;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub struct Writer {
    pub consumer: AtLeastOnceConsumer,
    pub concurrency: usize,
    pub ledger: Ledger,
    pub metrics: LedgerMetrics,
}

impl Writer {
    pub async fn run(self, shutdown: CancellationToken, grace: Duration) -> Result<(), BoxError> {
        let ledger = self.ledger;
        let metrics = self.metrics;
        self.consumer
            .run_concurrently(
                self.concurrency,
                grace,
                &shutdown,
                move |record, abandon| {
                    let (ledger, metrics) = (ledger.clone(), metrics.clone());
                    async move { write(&ledger, &metrics, &record, &abandon).await }
                },
            )
            .await?;
        tracing::info!("ledger writer stopped");
        Ok(())
    }
}

/// Writes one attempt, retrying with back-off while the store is unavailable. `true` once
/// written (or undecodable), `false` if abandoned.
async fn write(
    ledger: &Ledger,
    metrics: &LedgerMetrics,
    record: &ConsumedRecord,
    abandon: &CancellationToken,
) -> bool {
    let payload = record.payload.as_deref().unwrap_or_default();
    let attempt: AttemptRecord = match serde_json::from_slice(payload) {
        Ok(attempt) => attempt,
        Err(err) => {
            tracing::error!(partition = record.partition, offset = record.offset, error = %err, "skipping undecodable attempt record");
            metrics.records_skipped.inc();
            return true;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        let timer = metrics.write_duration.start_timer();
        match ledger.record_attempt(&attempt).await {
            Ok(()) => {
                timer.observe_duration();
                metrics.attempts_written.inc();
                return true;
            }
            Err(err) => {
                metrics.write_failures.inc();
                tracing::warn!(error = %err, delivery_id = %attempt.delivery_id, ?backoff, "ledger write failed; retrying");
            }
        }
        tokio::select! {
            () = abandon.cancelled() => return false,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
