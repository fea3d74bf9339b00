//! Handling one delivery task: look the webhook up, attempt, record the attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_control::ControlPlane;
use hookline_kafka::{AtLeastOnceConsumer, ConsumedRecord, Publisher};
use hookline_runtime::BoxError;
use hookline_schemas::{AttemptRecord, DeliveryTask, WebhookRecord};
use tokio_util::sync::CancellationToken;

use crate::attempt;
use crate::metrics::SenderMetrics;

/// Back-off between tries to produce an attempt record while Kafka is unavailable.
const PRODUCE_BACKOFF: Duration = Duration::from_millis(500);

pub struct Worker {
    pub consumer: AtLeastOnceConsumer,
    pub concurrency: usize,
    pub grace: Duration,
    pub handler: Handler,
}

/// What every in-flight task uses.
pub struct Handler {
    pub control: ControlPlane,
    pub publisher: Publisher,
    pub http: reqwest::Client,
    pub attempts_topic: String,
    pub metrics: SenderMetrics,
}

impl Worker {
    /// Consumes until `shutdown`, then lets in-flight tasks finish within the grace period.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let handler = Arc::new(self.handler);
        let publisher = handler.publisher.clone();
        self.consumer
            .run_concurrently(
                self.concurrency,
                self.grace,
                &shutdown,
                move |record, abandon| {
                    let handler = Arc::clone(&handler);
                    async move { handler.handle(&record, &abandon).await }
                },
            )
            .await?;
        publisher.flush(Duration::from_secs(5)).await?;
        tracing::info!("sender stopped");
        Ok(())
    }
}

impl Handler {
    /// Attempts one task and records the attempt. `true` once the record is acknowledged (or
    /// the task was undecodable), `false` if `abandon` fired first.
    #[tracing::instrument(skip_all, fields(partition = record.partition, offset = record.offset))]
    async fn handle(&self, record: &ConsumedRecord, abandon: &CancellationToken) -> bool {
        let payload = record.payload.as_deref().unwrap_or_default();
        let task: DeliveryTask = match serde_json::from_slice(payload) {
            Ok(task) => task,
            Err(err) => {
                tracing::error!(error = %err, "skipping undecodable delivery task");
                self.metrics.tasks_skipped.inc();
                return true;
            }
        };
        self.metrics.in_flight.inc();
        let attempt = match self.webhook(&task).await {
            Some(webhook) => {
                let started = Instant::now();
                let attempt = attempt::deliver(&self.http, &task, &webhook).await;
                self.metrics
                    .attempt_duration
                    .observe(started.elapsed().as_secs_f64());
                attempt
            }
            None => attempt::cancelled(&task),
        };
        self.count(&attempt);
        tracing::debug!(delivery_id = %attempt.delivery_id, outcome = attempt.outcome.as_str(), status = ?attempt.response_status, "attempt");
        let recorded = self.record(&attempt, abandon).await;
        self.metrics.in_flight.dec();
        recorded
    }

    /// The task's webhook as it is now; catches up once before concluding it was deleted.
    async fn webhook(&self, task: &DeliveryTask) -> Option<WebhookRecord> {
        let lookup = || {
            self.control
                .read()
                .webhook(&task.tenant_id, &task.webhook_id)
                .cloned()
        };
        if let Some(webhook) = lookup() {
            return Some(webhook);
        }
        if let Err(err) = self.control.catch_up().await {
            tracing::warn!(error = %err, "webhook view could not catch up");
        }
        lookup()
    }

    fn count(&self, attempt: &AttemptRecord) {
        let status_class = match attempt.response_status {
            Some(status) => format!("{}xx", status / 100),
            None => "none".to_owned(),
        };
        self.metrics
            .attempts
            .with_label_values(&[attempt.outcome.as_str(), status_class.as_str()])
            .inc();
    }

    /// Produces the attempt record, retrying while Kafka is unavailable; `false` if abandoned.
    async fn record(&self, attempt: &AttemptRecord, abandon: &CancellationToken) -> bool {
        loop {
            match self
                .publisher
                .send_json(&self.attempts_topic, &attempt.delivery_id, attempt)
                .await
            {
                Ok(_) => return true,
                Err(err) => tracing::warn!(error = %err, "recording an attempt failed; retrying"),
            }
            tokio::select! {
                () = abandon.cancelled() => return false,
                () = tokio::time::sleep(PRODUCE_BACKOFF) => {}
            }
        }
    }
}
