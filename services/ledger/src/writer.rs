use std::sync::Arc;
use std::time::Duration;

use hookline_backoff::{Backoff, GaveUp};
use hookline_domain::idempotency::IdempotencyKey;
use hookline_kafka::{AtLeastOnceConsumer, ConsumedRecord, DeadLetters};
use hookline_runtime::{BoxError, DeadLetterReason};
use hookline_schemas::{AttemptRecord, EventRecord};
use hookline_store::Ledger;
use tokio_util::sync::CancellationToken;

use crate::groups::{AttemptGroups, MAX_ATTEMPTS};
use crate::metrics::LedgerMetrics;
use crate::turns::{Turn, Turns};

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
        // Under load every slot's group can fill from the records in flight.
        let slots = (self.concurrency / MAX_ATTEMPTS).max(1);
        let groups = AttemptGroups::start(ledger.clone(), slots, metrics.clone());
        let dead_letters = self.dead_letters;
        let turns = Arc::new(Turns::default());
        self.consumer
            .run_concurrently(
                self.concurrency,
                grace,
                &shutdown,
                move |record, abandon| {
                    // Called in the order records are read: a turn taken here keeps the copies
                    // of one producer-chosen id in that order.
                    let input = decode(&record, &attempts_topic);
                    let turn = match &input {
                        Ok(Input::Event(event)) if event.id_chosen_by_producer => {
                            Some(turns.take(IdempotencyKey::of(&event.tenant_id, &event.id)))
                        }
                        _ => None,
                    };
                    let (ledger, metrics) = (ledger.clone(), metrics.clone());
                    let (groups, dead_letters) = (groups.clone(), dead_letters.clone());
                    async move {
                        write(
                            &ledger,
                            &groups,
                            &metrics,
                            &dead_letters,
                            input,
                            turn,
                            &record,
                            &abandon,
                        )
                        .await
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
    Attempt(Arc<AttemptRecord>),
    Event(EventRecord),
}

fn decode(record: &ConsumedRecord, attempts_topic: &str) -> Result<Input, serde_json::Error> {
    let payload = record.payload.as_deref().unwrap_or_default();
    if record.topic == attempts_topic {
        serde_json::from_slice(payload).map(|attempt| Input::Attempt(Arc::new(attempt)))
    } else {
        serde_json::from_slice(payload).map(Input::Event)
    }
}

/// Writes one record (after the earlier copies of its event, with `turn`), retrying with
/// back-off while the store is unavailable. `true` once written (or dead-lettered:
/// undecodable, or refused by the store), `false` if abandoned.
#[allow(clippy::too_many_arguments)]
async fn write(
    ledger: &Ledger,
    groups: &AttemptGroups<Ledger>,
    metrics: &LedgerMetrics,
    dead_letters: &DeadLetters,
    decoded: Result<Input, serde_json::Error>,
    mut turn: Option<Turn>,
    record: &ConsumedRecord,
    abandon: &CancellationToken,
) -> bool {
    let input = match decoded {
        Ok(input) => input,
        Err(err) => {
            metrics.dead_letters.inc(DeadLetterReason::Undecodable);
            let reason = format!("undecodable record: {err}");
            return dead_letters.send(record, &reason, abandon).await;
        }
    };
    if let Some(turn) = &mut turn {
        tokio::select! {
            () = turn.wait() => {}
            () = abandon.cancelled() => return false,
        }
    }
    let written = hookline_backoff::retry(
        Backoff::dependency(),
        abandon,
        "writing to the ledger",
        || async {
            let timer = metrics.write_duration.start_timer();
            let written = match &input {
                Input::Attempt(attempt) => groups.write(attempt.clone()).await,
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
