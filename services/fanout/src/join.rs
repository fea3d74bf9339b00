use std::time::Duration;

use hookline_control::ControlPlane;
use hookline_domain::ids::delivery_id;
use hookline_kafka::{ConsumedRecord, OutgoingRecord, TransactionalStage};
use hookline_runtime::BoxError;
use hookline_schemas::{DeliveryTask, EventRecord, SCHEMA_VERSION};
use tokio_util::sync::CancellationToken;

use crate::metrics::FanoutMetrics;

/// Back-off after a failed batch before it is read again.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

pub struct Joiner {
    pub stage: TransactionalStage,
    pub control: ControlPlane,
    pub deliveries_topic: String,
    pub batch_size: usize,
    pub linger: Duration,
    pub metrics: FanoutMetrics,
}

impl Joiner {
    /// Joins batches until `shutdown`; a batch in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        while let Some(batch) = self
            .stage
            .next_batch(self.batch_size, self.linger, &shutdown)
            .await
        {
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "reading events failed; retrying");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    continue;
                }
            };
            let timer = self.metrics.batch_duration.start_timer();
            if let Err(err) = self.process(&batch).await {
                self.metrics.transactions_aborted.inc();
                tracing::warn!(error = %err, events = batch.len(), "fanout batch failed; it will be read again");
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            timer.observe_duration();
        }
        tracing::info!("fanout stopped");
        Ok(())
    }

    async fn process(&self, batch: &[ConsumedRecord]) -> Result<(), BoxError> {
        // Every webhook acknowledged before these events were accepted is in the view after this.
        self.control.catch_up().await?;
        let mut outputs = Vec::new();
        let mut joined = 0;
        {
            let control = self.control.read();
            for record in batch {
                let Some(event) = decode(record) else {
                    self.metrics.events_skipped.inc();
                    continue;
                };
                joined += 1;
                for webhook in control.subscribers(&event.tenant_id, &event.event_type) {
                    outputs.push(task_record(&self.deliveries_topic, &event, &webhook.id)?);
                }
            }
        }
        let tasks = outputs.len() as u64;
        self.stage.commit(batch, outputs).await?;
        self.metrics.events_joined.inc_by(joined);
        self.metrics.tasks_emitted.inc_by(tasks);
        Ok(())
    }
}

/// Decodes an event; an undecodable record is logged and skipped (its offset still advances).
fn decode(record: &ConsumedRecord) -> Option<EventRecord> {
    let payload = record.payload.as_deref().unwrap_or_default();
    match serde_json::from_slice(payload) {
        Ok(event) => Some(event),
        Err(err) => {
            tracing::error!(partition = record.partition, offset = record.offset, error = %err, "skipping undecodable event");
            None
        }
    }
}

fn task_record(
    topic: &str,
    event: &EventRecord,
    webhook_id: &str,
) -> Result<OutgoingRecord, serde_json::Error> {
    let task = DeliveryTask {
        schema_version: SCHEMA_VERSION,
        delivery_id: delivery_id(&event.tenant_id, &event.id, webhook_id),
        tenant_id: event.tenant_id.clone(),
        webhook_id: webhook_id.to_owned(),
        attempt: 1,
        due_at: None,
        last_error: None,
        replay: false,
        event: event.clone(),
    };
    Ok(OutgoingRecord {
        topic: topic.to_owned(),
        key: webhook_id.to_owned(),
        payload: serde_json::to_vec(&task)?,
    })
}
