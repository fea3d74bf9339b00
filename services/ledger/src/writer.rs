use std::time::Duration;

use hookline_kafka::{AtLeastOnceConsumer, ConsumedRecord};
use hookline_runtime::BoxError;
use hookline_schemas::{AttemptRecord, EventRecord};
use hookline_store::Ledger;
use tokio_util::sync::CancellationToken;

use crate::metrics::LedgerMetrics;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub struct Writer {
    pub consumer: AtLeastOnceConsumer,
    pub attempts_topic: String,
    pub concurrency: usize,
    pub ledger: Ledger,
    pub metrics: LedgerMetrics,
}

impl Writer {
    pub async fn run(self, shutdown: CancellationToken, grace: Duration) -> Result<(), BoxError> {
        let (ledger, metrics, attempts_topic) = (self.ledger, self.metrics, self.attempts_topic);
        self.consumer
            .run_concurrently(
                self.concurrency,
                grace,
                &shutdown,
                move |record, abandon| {
                    let (ledger, metrics, topic) =
                        (ledger.clone(), metrics.clone(), attempts_topic.clone());
                    async move { write(&ledger, &metrics, &topic, &record, &abandon).await }
                },
            )
            .await?;
        tracing::info!("ledger writer stopped");
        Ok(())
    }
}

/// A record of either input topic (an attempt, with its headers, is the larger by far).
enum Input {
    Attempt(Box<AttemptRecord>),
    Event(EventRecord),
}

/// Writes one record, retrying with back-off while the store is unavailable. `true` once
/// written (or undecodable), `false` if abandoned.
async fn write(
    ledger: &Ledger,
    metrics: &LedgerMetrics,
    attempts_topic: &str,
    record: &ConsumedRecord,
    abandon: &CancellationToken,
) -> bool {
    let payload = record.payload.as_deref().unwrap_or_default();
    let decoded = if record.topic == attempts_topic {
        serde_json::from_slice(payload).map(Input::Attempt)
    } else {
        serde_json::from_slice(payload).map(Input::Event)
    };
    let input = match decoded {
        Ok(input) => input,
        Err(err) => {
            tracing::error!(topic = %record.topic, partition = record.partition, offset = record.offset, error = %err, "skipping undecodable record");
            metrics.records_skipped.inc();
            return true;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        let timer = metrics.write_duration.start_timer();
        let written = match &input {
            Input::Attempt(attempt) => ledger.record_attempt(attempt).await,
            Input::Event(event) => ledger.record_event(event).await,
        };
        match written {
            Ok(()) => {
                timer.observe_duration();
                match input {
                    Input::Attempt(_) => metrics.attempts_written.inc(),
                    Input::Event(_) => metrics.events_written.inc(),
                }
                return true;
            }
            Err(err) => {
                metrics.write_failures.inc();
                tracing::warn!(error = %err, ?backoff, "ledger write failed; retrying");
            }
        }
        tokio::select! {
            () = abandon.cancelled() => return false,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
