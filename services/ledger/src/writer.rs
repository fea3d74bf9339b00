use std::time::Duration;

use hookline_backoff::{Backoff, GaveUp};
use hookline_kafka::{AtLeastOnceConsumer, ConsumedRecord, DeadLetters};
use hookline_runtime::{BoxError, DeadLetterReason};
use hookline_schemas::{AttemptRecord, EventRecord};
use hookline_store::Ledger;
use tokio_util::sync::CancellationToken;

use crate::metrics::LedgerMetrics;

pub struct Writer {
    pub consumer: AtLeastOnceConsumer,
    pub attempts_topic: String,
    pub concurrency: usize,
    pub ledger: Ledger,
    pub metrics: LedgerMetrics,
    pub dead_letters: DeadLetters,
}

impl Writer {
    pub async fn run(self, shutdown: CancellationToken, grace: Duration) -> Result<(), BoxError> {
        let (ledger, metrics, attempts_topic) = (self.ledger, self.metrics, self.attempts_topic);
        let dead_letters = self.dead_letters;
        self.consumer
            .run_concurrently(
                self.concurrency,
                grace,
                &shutdown,
                move |record, abandon| {
                    let (ledger, metrics, topic) =
                        (ledger.clone(), metrics.clone(), attempts_topic.clone());
                    let dead_letters = dead_letters.clone();
                    async move {
                        write(&ledger, &metrics, &dead_letters, &topic, &record, &abandon).await
                    }
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
/// written (or dead-lettered: undecodable, or refused by the store), `false` if abandoned.
async fn write(
    ledger: &Ledger,
    metrics: &LedgerMetrics,
    dead_letters: &DeadLetters,
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
            metrics.dead_letters.inc(DeadLetterReason::Undecodable);
            let reason = format!("undecodable record: {err}");
            return dead_letters.send(record, &reason, abandon).await;
        }
    };
    let written = hookline_backoff::retry(
        Backoff::dependency(),
        abandon,
        "writing to the ledger",
        || async {
            let timer = metrics.write_duration.start_timer();
            let written = match &input {
                Input::Attempt(attempt) => ledger.record_attempt(attempt).await,
                Input::Event(event) => ledger.record_event(event).await,
            };
            match written {
                Ok(()) => {
                    timer.observe_duration();
                    Ok(())
                }
                Err(err) => {
                    metrics.write_failures.inc();
                    Err(err.classified())
                }
            }
        },
    )
    .await;
    match written {
        Ok(()) => {
            match input {
                Input::Attempt(_) => metrics.attempts_written.inc(),
                Input::Event(_) => metrics.events_written.inc(),
            }
            true
        }
        Err(GaveUp::Abandoned) => false,
        Err(GaveUp::Permanent(err)) => {
            metrics.dead_letters.inc(DeadLetterReason::RejectedByStore);
            let reason = format!("refused by the ledger database: {err}");
            dead_letters.send(record, &reason, abandon).await
        }
    }
}
