use std::future::Future;
use std::time::{Duration, Instant};

use hookline_backoff::{Backoff, GaveUp};
use hookline_control::ControlPlane;
use hookline_domain::ids::delivery_id;
use hookline_kafka::{
    Batch, ConsumedRecord, KafkaAdapterError, OutgoingRecord, Processed, TransactionalStage,
};
use hookline_runtime::{BoxError, DeadLetterReason};
use hookline_schemas::{EventRecord, FirstDeliveryTask, SCHEMA_VERSION};
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::metrics::FanoutMetrics;
use crate::repeats::{Judgement, Repeats};

/// Back-off after reading events failed (nothing was read, so nothing is skipped).
const READ_BACKOFF: Duration = Duration::from_millis(500);

pub struct Joiner {
    pub stage: TransactionalStage,
    pub control: ControlPlane,
    pub deliveries_topic: String,
    pub batch_size: usize,
    pub linger: Duration,
    pub repeats: Repeats,
    pub metrics: FanoutMetrics,
}

impl Joiner {
    /// Joins batches until `shutdown`. A batch is committed (possibly after retries), or
    /// left uncommitted for its next owner; it is never skipped.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), BoxError> {
        while let Some(batch) = self
            .stage
            .next_batch(self.batch_size, self.linger, &shutdown)
            .await
        {
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "reading events failed; retrying");
                    tokio::time::sleep(READ_BACKOFF).await;
                    continue;
                }
            };
            let timer = self.metrics.batch_duration.start_timer();
            self.observe_read(&batch);
            let catching_up = Instant::now();
            if !self.catch_up(&shutdown).await? || !self.restore(&batch, &shutdown).await? {
                break;
            }
            self.observe_step("catch_up", catching_up.elapsed());
            let joining = Instant::now();
            let processed = self.join(&batch);
            self.observe_step("join", joining.elapsed());
            let Some(committed) = self.stage.commit(batch, processed, &shutdown).await else {
                break;
            };
            timer.observe_duration();
            self.observe_step("produce", committed.produced_in);
            self.observe_step("commit", committed.committed_in);
            self.metrics
                .events_joined
                .inc_by(committed.processed as u64);
            let tasks = committed.produced.get(&self.deliveries_topic);
            self.metrics
                .tasks_emitted
                .inc_by(tasks.copied().unwrap_or_default() as u64);
            self.metrics
                .idempotency_keys
                .set(self.repeats.keys() as i64);
            let rejected = committed.rejected as u64;
            let undecodable = committed.dead_lettered as u64 - rejected;
            self.metrics
                .dead_letters
                .inc_by(DeadLetterReason::RejectedByKafka, rejected);
            self.metrics
                .dead_letters
                .inc_by(DeadLetterReason::Undecodable, undecodable);
            self.metrics
                .transactions_aborted
                .inc_by(committed.failed_transactions.into());
            if committed.revoked > 0 {
                tracing::info!(
                    events = committed.revoked,
                    "partitions were revoked mid-batch; their new owner reads those events"
                );
            }
        }
        tracing::info!("fanout stopped");
        Ok(())
    }

    fn observe_read(&self, batch: &Batch) {
        if let Some(age) = batch.records().next().and_then(ConsumedRecord::age) {
            self.metrics.event_age.observe(age.as_secs_f64());
        }
        self.observe_step("gather", batch.gathered_in());
    }

    fn observe_step(&self, step: &str, took: Duration) {
        self.metrics
            .steps
            .with_label_values(&[step])
            .observe(took.as_secs_f64());
    }

    /// Every webhook acknowledged before the batch's events were accepted is in the view after
    /// this. `false` on shutdown; an error only if catching up can never succeed (refused
    /// credentials).
    async fn catch_up(&self, shutdown: &CancellationToken) -> Result<bool, BoxError> {
        let caught_up = until_kafka_answers(
            &self.stage,
            shutdown,
            "catching up with the webhooks",
            || self.control.catch_up(),
        )
        .await?;
        Ok(caught_up.is_some())
    }

    /// Reads back the idempotency keys of the batch's partitions new to this instance. `false`
    /// on shutdown.
    async fn restore(
        &mut self,
        batch: &Batch,
        shutdown: &CancellationToken,
    ) -> Result<bool, BoxError> {
        for (partition, tenure) in self.repeats.missing(batch) {
            let repeats = &self.repeats;
            let read = until_kafka_answers(
                &self.stage,
                shutdown,
                "reading idempotency keys back",
                || repeats.read_back(partition),
            )
            .await?;
            let Some(seen) = read else {
                return Ok(false);
            };
            self.repeats.hold(partition, tenure, seen);
        }
        Ok(true)
    }

    /// One outcome per event: its delivery tasks (and the memory of its id), nothing for a
    /// repeat, or why it can never be joined.
    fn join(&mut self, batch: &Batch) -> Vec<Processed> {
        let control = self.control.read();
        batch
            .records()
            .map(|record| {
                let event = match decode(record) {
                    Ok(event) => event,
                    Err(reason) => return Processed::Poison(reason),
                };
                let remember = match self.repeats.judge(record.partition, &event) {
                    Judgement::Deliver(remember) => remember,
                    Judgement::Repeat => {
                        self.metrics.repeats.inc();
                        return Processed::Output(Vec::new());
                    }
                };
                let subscribers = control.subscribers(&event.tenant_id, &event.event_type);
                let webhook_ids = subscribers.iter().map(|webhook| webhook.id.as_str());
                match delivery_tasks(&self.deliveries_topic, &event, webhook_ids) {
                    Ok(mut outputs) => {
                        outputs.extend(remember);
                        Processed::Output(outputs)
                    }
                    Err(err) => Processed::Poison(format!("could not encode its tasks: {err}")),
                }
            })
            .collect()
    }
}

/// Decodes an event, or says why it cannot be.
fn decode(record: &ConsumedRecord) -> Result<EventRecord, String> {
    let payload = record.payload.as_deref().unwrap_or_default();
    serde_json::from_slice(payload).map_err(|err| format!("undecodable event: {err}"))
}

/// The first delivery task of `event` for each webhook, as records for `topic`: what fanout
/// emits for an event, given its subscribers. The event is serialized once, and each task is
/// written around it.
pub fn delivery_tasks<'a>(
    topic: &str,
    event: &EventRecord,
    webhook_ids: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<OutgoingRecord>, serde_json::Error> {
    let event_json = serde_json::value::to_raw_value(event)?;
    webhook_ids
        .into_iter()
        .map(|webhook_id| task_record(topic, event, &event_json, webhook_id))
        .collect()
}

fn task_record(
    topic: &str,
    event: &EventRecord,
    event_json: &RawValue,
    webhook_id: &str,
) -> Result<OutgoingRecord, serde_json::Error> {
    let delivery_id = delivery_id(&event.tenant_id, &event.id, webhook_id);
    let task = FirstDeliveryTask {
        schema_version: SCHEMA_VERSION,
        delivery_id: &delivery_id,
        tenant_id: &event.tenant_id,
        webhook_id,
        attempt: 1,
        event: event_json,
    };
    Ok(OutgoingRecord {
        topic: topic.to_owned(),
        partition: None,
        key: webhook_id.to_owned(),
        payload: serde_json::to_vec(&task)?,
    })
}

/// Runs a Kafka step, retrying transient failures with back-off while the stage keeps polling
/// with its partitions paused, so a long outage costs no group membership. `None` on shutdown;
/// an error only if the step can never succeed.
async fn until_kafka_answers<T, F, Fut>(
    stage: &TransactionalStage,
    shutdown: &CancellationToken,
    what: &str,
    mut step: F,
) -> Result<Option<T>, BoxError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, KafkaAdapterError>>,
{
    let retried = hookline_backoff::retry(Backoff::dependency(), shutdown, what, || {
        let attempt = step();
        async move { attempt.await.map_err(KafkaAdapterError::classified) }
    });
    match stage.hold(retried, shutdown).await {
        Some(Ok(value)) => Ok(Some(value)),
        None | Some(Err(GaveUp::Abandoned)) => Ok(None),
        Some(Err(GaveUp::Permanent(err))) => Err(err.into()),
    }
}
