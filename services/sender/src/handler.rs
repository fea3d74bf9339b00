//! The life of one delivery task in the sender.
//!
//! 1. A task from a retry tier that is not due yet hops on to the tier that fits its wait.
//! 2. A deleted, deactivated or disabled webhook cancels the task (recorded as such).
//! 3. The endpoint admits it: a free slot, a place in its bounded queue, or else it is parked
//!    on a retry tier without an attempt (the attempt number is unchanged).
//! 4. While the endpoint's circuit is open the task is held without an attempt: in memory
//!    while the probe is near (woken by its answer), otherwise parked until the probe is due.
//!    Its retry schedule's time runs on; held past its last attempt's time, it is dead-lettered.
//!    Otherwise it is paced to the webhook's rate limit, signed and sent.
//! 5. The attempt is recorded; a failure goes to the tier of its next attempt, or to dead
//!    letters when attempts are spent. FIFO webhooks wait for their retries in place instead,
//!    so later tasks stay behind them.
//!
//! The task counts as done (its offset may be committed) only once every record it produces
//! is acknowledged. Producing is retried while Kafka is away; a task that can never be
//! finished (undecodable, or a record Kafka refuses) goes to `dead-letters.sender` instead.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hookline_backoff::{Backoff, GaveUp};
use hookline_control::ControlPlane;
use hookline_domain::circuit::{Admission, CircuitState};
use hookline_domain::ids::new_event_id;
use hookline_domain::retry::{parse_retry_after, status_is_retryable, with_jitter};
use hookline_domain::{RetrySchedule, RetryTiers};
use hookline_kafka::{ConsumedRecord, DeadLetters, KafkaAdapterError, Position, Publisher};
use hookline_runtime::DeadLetterReason;
use hookline_schemas::{
    AttemptOutcome, AttemptRecord, DeliveryTask, EventRecord, Ordering, TopicNames,
    WebhookHealthRecord, WebhookRecord, SCHEMA_VERSION,
};
use serde_json::value::RawValue;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::attempt;
use crate::endpoints::{Admit, CircuitChange, Endpoint, Endpoints, Ticket};
use crate::metrics::SenderMetrics;

/// A tier record this close to its due time is attempted rather than forwarded.
const DUE_TOLERANCE: Duration = Duration::from_millis(500);
/// Random extra wait added to each retry, as a fraction of the wait.
const JITTER: f64 = 0.1;

/// How failures are retried.
pub struct RetryPolicy {
    pub schedule: RetrySchedule,
    pub tiers: RetryTiers,
    pub retry_client_errors: bool,
    pub park_delay: Duration,
    pub disable_after: Duration,
}

pub struct Handler {
    pub control: ControlPlane,
    pub publisher: Publisher,
    pub http: hookline_delivery::Client,
    pub topics: TopicNames,
    pub policy: RetryPolicy,
    pub endpoints: Endpoints,
    pub metrics: SenderMetrics,
    pub dead_letters: DeadLetters,
}

/// How an admitted task left its attempts.
enum Settled {
    /// Delivered, scheduled for its next attempt, or dead-lettered.
    Done,
    /// The circuit turned it away before an attempt: it is held again.
    CircuitOpen(Box<DeliveryTask>),
}

/// Why a task was not finished.
enum Stop {
    /// The abandon token fired (shutdown): the task stays uncommitted and comes back.
    Abandoned,
    /// It can never be finished: its record goes to the dead letters, with the reason.
    Poison(String, DeadLetterReason),
}

impl From<GaveUp<KafkaAdapterError>> for Stop {
    fn from(gave_up: GaveUp<KafkaAdapterError>) -> Self {
        match gave_up {
            GaveUp::Abandoned => Self::Abandoned,
            GaveUp::Permanent(err) => Self::Poison(
                format!("rejected by Kafka: {err}"),
                DeadLetterReason::RejectedByKafka,
            ),
        }
    }
}

impl Handler {
    /// Handles one consumed task. `true` once everything it produced is acknowledged (or the
    /// record went to the dead letters), `false` if `abandon` fired first. Called in the order
    /// tasks are read: the task takes its place in its webhook's line before anything waits.
    pub fn handle(
        self: Arc<Self>,
        record: ConsumedRecord,
        abandon: CancellationToken,
    ) -> impl Future<Output = bool> + Send {
        let payload = record.payload.as_deref().unwrap_or_default();
        let task: Result<DeliveryTask, _> = serde_json::from_slice(payload);
        let ticket = task
            .as_ref()
            .ok()
            .map(|task| self.endpoints.ticket(&task.webhook_id));
        let span = tracing::info_span!("handle", topic = %record.topic, partition = record.partition, offset = record.offset);
        async move {
            let task = task.map_err(|err| {
                Stop::Poison(
                    format!("undecodable delivery task: {err}"),
                    DeadLetterReason::Undecodable,
                )
            });
            self.settle(&record, task, ticket, &abandon).await
        }
        .instrument(span)
    }

    async fn settle(
        &self,
        record: &ConsumedRecord,
        task: Result<DeliveryTask, Stop>,
        ticket: Option<Ticket>,
        abandon: &CancellationToken,
    ) -> bool {
        let processed = match task {
            Ok(task) => self.process(task, ticket, abandon).await,
            Err(stop) => Err(stop),
        };
        match processed {
            Ok(()) => true,
            Err(Stop::Abandoned) => false,
            Err(Stop::Poison(reason, class)) => {
                self.metrics.records_dead_lettered.inc(class);
                self.dead_letters.send(record, &reason, abandon).await
            }
        }
    }

    async fn process(
        &self,
        mut task: DeliveryTask,
        ticket: Option<Ticket>,
        abandon: &CancellationToken,
    ) -> Result<(), Stop> {
        if let Some(wait) = remaining_wait(&task) {
            if wait > DUE_TOLERANCE {
                self.metrics.tier_hops.inc();
                return self.to_tier(&task, wait, abandon).await;
            }
        }
        let Some(webhook) = self.webhook(&task).await else {
            let cancelled = attempt::cancelled(&task);
            return self
                .durably(abandon, || self.publish_attempt(&cancelled))
                .await;
        };
        let endpoint = self.endpoints.get(&webhook);
        let fifo = webhook.ordering == Ordering::Fifo;
        // A FIFO webhook's task waits for every task read before it (a failing one retries in
        // place, holding the line); it keeps its place until it is finished.
        let _turn = match ticket {
            Some(ticket) if fifo => {
                tokio::select! {
                    () = abandon.cancelled() => return Err(Stop::Abandoned),
                    () = ticket.turn() => {}
                }
                Some(ticket)
            }
            _ => None,
        };
        let schedule = webhook_schedule(&webhook).unwrap_or_else(|| self.policy.schedule.clone());
        loop {
            let held = self
                .hold_while_open(task, &webhook, &endpoint, &schedule, abandon)
                .await?;
            let Some(admissible) = held else {
                return Ok(());
            };
            task = admissible;
            let limits = self.endpoints.limits();
            let queue_limit =
                (!fifo).then(|| endpoint.queue_capacity(limits.queued, limits.queue_wait));
            let slot = match endpoint.admit(queue_limit).await {
                Admit::Go(permit) => permit,
                Admit::Park => {
                    self.metrics.parked.inc();
                    return self.park(task, self.policy.park_delay, abandon).await;
                }
            };
            self.metrics.in_flight.inc();
            let settled = self
                .attempt_until_settled(task, &webhook, &endpoint, &schedule, slot, abandon)
                .await;
            self.metrics.in_flight.dec();
            match settled? {
                Settled::Done => return Ok(()),
                Settled::CircuitOpen(turned_away) => task = *turned_away,
            }
        }
    }

    /// Holds `task` while its endpoint's circuit is open, without an attempt: in memory while
    /// the probe is near and there is room (woken by the circuit's next change), otherwise
    /// parked on a retry tier until the probe is due. The retry schedule's time runs on: held
    /// past the time its last attempt would have been due, the task is dead-lettered.
    /// `Some(task)` once it may ask for admission; `None` once it is parked or dead.
    async fn hold_while_open(
        &self,
        mut task: DeliveryTask,
        webhook: &WebhookRecord,
        endpoint: &Arc<Endpoint>,
        schedule: &RetrySchedule,
        abandon: &CancellationToken,
    ) -> Result<Option<DeliveryTask>, Stop> {
        let fifo = webhook.ordering == Ordering::Fifo;
        loop {
            let (state, mut changes) = endpoint.circuit_state();
            let probe_in = match state {
                CircuitState::Admitting => return Ok(Some(task)),
                CircuitState::Open { probe_in } => Some(probe_in),
                CircuitState::Probing => None,
            };
            if task.held_since.is_none() {
                self.metrics.circuit_holds.inc();
            }
            let held_since = *task.held_since.get_or_insert_with(Utc::now);
            let last_attempt_due = held_since + schedule.time_left_before_last(task.attempt);
            let time_left = (last_attempt_due - Utc::now())
                .to_std()
                .ok()
                .filter(|left| *left > DUE_TOLERANCE);
            let Some(time_left) = time_left else {
                let record = attempt::held_past_last_attempt(&task, webhook, held_since);
                self.count(&record);
                self.dead_letter(&record, task, abandon).await?;
                return Ok(None);
            };
            let park_delay = self.policy.park_delay;
            let probe_near = probe_in.is_none_or(|probe_in| probe_in <= park_delay);
            let hold = (probe_near || fifo)
                .then(|| self.endpoints.hold(endpoint, fifo))
                .flatten();
            let Some(_hold) = hold else {
                let wait = probe_in.map_or(park_delay, |probe_in| probe_in.max(park_delay));
                self.park(task, wait.min(time_left), abandon).await?;
                return Ok(None);
            };
            let recheck = probe_in.unwrap_or(park_delay).min(time_left);
            self.metrics.held_tasks.inc();
            let abandoned = tokio::select! {
                () = abandon.cancelled() => true,
                _ = changes.changed() => false,
                () = tokio::time::sleep(recheck) => false,
            };
            self.metrics.held_tasks.dec();
            if abandoned {
                return Err(Stop::Abandoned);
            }
        }
    }

    /// Sends `task` to wait `wait` on a retry tier without an attempt (its number unchanged).
    async fn park(
        &self,
        task: DeliveryTask,
        wait: Duration,
        abandon: &CancellationToken,
    ) -> Result<(), Stop> {
        let parked = DeliveryTask {
            due_at: Some(Utc::now() + wait),
            ..task
        };
        self.to_tier(&parked, wait, abandon).await
    }

    /// Records `last` (the task's last attempt) and sends the task to the dead letters.
    async fn dead_letter(
        &self,
        last: &AttemptRecord,
        task: DeliveryTask,
        abandon: &CancellationToken,
    ) -> Result<(), Stop> {
        self.metrics.dead_letters.inc();
        let dead = DeliveryTask {
            last_error: last.error.clone(),
            due_at: None,
            ..task
        };
        let dead_topic = self.topics.dead();
        self.durably(abandon, || self.publish_attempt(last)).await?;
        self.durably(abandon, || self.publish_task(&dead_topic, &dead))
            .await
    }

    /// Attempts the task; on failure schedules its next attempt (in place for FIFO webhooks).
    /// The endpoint's `slot` is given back as soon as the endpoint has answered, so the next
    /// request goes out while this attempt's records are produced.
    async fn attempt_until_settled(
        &self,
        mut task: DeliveryTask,
        webhook: &WebhookRecord,
        endpoint: &Endpoint,
        schedule: &RetrySchedule,
        slot: OwnedSemaphorePermit,
        abandon: &CancellationToken,
    ) -> Result<Settled, Stop> {
        let fifo = webhook.ordering == Ordering::Fifo;
        let mut slot = Some(slot);
        loop {
            let Some((mut record, retry_after)) = self.attempt_once(&task, webhook, endpoint).await
            else {
                return Ok(Settled::CircuitOpen(Box::new(task)));
            };
            let succeeded = record.outcome == AttemptOutcome::Succeeded;
            if succeeded || !fifo {
                slot.take();
            }
            if succeeded {
                self.durably(abandon, || self.publish_attempt(&record))
                    .await?;
                return Ok(Settled::Done);
            }
            let wait = self.next_wait(&record, retry_after.as_deref(), schedule, task.attempt);
            let Some(wait) = wait else {
                // Attempts spent (or not worth retrying): dead letters.
                self.dead_letter(&record, task, abandon).await?;
                return Ok(Settled::Done);
            };
            let due_at = Utc::now() + wait;
            record.next_attempt_at = Some(due_at);
            self.metrics.retries_scheduled.inc();
            self.durably(abandon, || self.publish_attempt(&record))
                .await?;
            let next = DeliveryTask {
                attempt: task.attempt + 1,
                due_at: Some(due_at),
                last_error: record.error.clone(),
                held_since: None,
                ..task
            };
            if !fifo {
                self.to_tier(&next, wait, abandon).await?;
                return Ok(Settled::Done);
            }
            // FIFO: keep the endpoint's only slot and wait here, so later tasks stay behind.
            tokio::select! {
                () = abandon.cancelled() => return Err(Stop::Abandoned),
                () = tokio::time::sleep(wait) => {}
            }
            task = next;
        }
    }

    /// One attempt with its endpoint bookkeeping: its record and the endpoint's `Retry-After`,
    /// or `None` when the circuit turned it away (another task is the probe).
    async fn attempt_once(
        &self,
        task: &DeliveryTask,
        webhook: &WebhookRecord,
        endpoint: &Endpoint,
    ) -> Option<(AttemptRecord, Option<String>)> {
        if endpoint.circuit() == Admission::Skip {
            return None;
        }
        if let Some(per_second) = webhook.rate_limit {
            endpoint.pace(per_second).await;
        }
        let started = Instant::now();
        let attempted = attempt::deliver(&self.http, task, webhook).await;
        self.metrics
            .attempt_duration
            .observe(started.elapsed().as_secs_f64());
        let succeeded = attempted.record.outcome == AttemptOutcome::Succeeded;
        if succeeded {
            let since_accepted = Utc::now() - task.event.accepted_at;
            self.metrics
                .event_to_delivery
                .observe(since_accepted.num_microseconds().unwrap_or(0).max(0) as f64 / 1e6);
        }
        let mut record = attempted.record;
        let answered = endpoint.record(succeeded, started.elapsed());
        match answered.circuit {
            CircuitChange::Opened => {
                self.metrics.open_circuits.inc();
                attempt::note_circuit_opened(&mut record);
            }
            CircuitChange::Closed => self.metrics.open_circuits.dec(),
            CircuitChange::Unchanged => {}
        }
        self.count(&record);
        self.track_health(webhook, endpoint, succeeded, answered.consecutive_failures)
            .await;
        Some((record, attempted.retry_after))
    }

    /// The wait before the next attempt, or `None` when there is none.
    fn next_wait(
        &self,
        record: &AttemptRecord,
        retry_after: Option<&str>,
        schedule: &RetrySchedule,
        attempt: u32,
    ) -> Option<Duration> {
        if let Some(status) = record.response_status {
            if !status_is_retryable(status, self.policy.retry_client_errors) {
                return None;
            }
        }
        let scheduled = schedule.wait_after(attempt)?;
        let requested =
            retry_after.and_then(|value| parse_retry_after(value, Utc::now().timestamp()));
        let wait = with_jitter(scheduled, JITTER, rand_unit());
        // The endpoint may ask for a longer wait, never a shorter one.
        Some(requested.map_or(wait, |requested| requested.max(wait)))
    }

    /// Sends `task` to the retry tier that fits `wait`.
    async fn to_tier(
        &self,
        task: &DeliveryTask,
        wait: Duration,
        abandon: &CancellationToken,
    ) -> Result<(), Stop> {
        let tier = self.policy.tiers.for_wait(wait);
        let topic = self
            .topics
            .retry_tier(&hookline_domain::retry::format_delay(tier));
        self.durably(abandon, || self.publish_task(&topic, task))
            .await
    }

    /// The task's webhook as it is now, unless deleted, deactivated or disabled; catches up once before
    /// concluding it is gone.
    async fn webhook(&self, task: &DeliveryTask) -> Option<Arc<WebhookRecord>> {
        let lookup = || {
            let control = self.control.read();
            let webhook = control.shared_webhook(&task.tenant_id, &task.webhook_id)?;
            control
                .status(&webhook.id)
                .receives_deliveries()
                .then(|| Arc::clone(webhook))
        };
        if let Some(webhook) = lookup() {
            return Some(webhook);
        }
        if let Err(err) = self.control.catch_up().await {
            tracing::warn!(error = %err, "webhook view could not catch up");
        }
        let webhook = lookup();
        if webhook.is_none() {
            self.endpoints.forget(&task.webhook_id);
        }
        webhook
    }

    /// Marks the webhook failing after repeated failures, disables it when it failed for too
    /// long, and clears it on success. Writes only on changes.
    async fn track_health(
        &self,
        webhook: &WebhookRecord,
        endpoint: &Endpoint,
        succeeded: bool,
        failures: u32,
    ) {
        let health = self.control.read().health(&webhook.id).cloned();
        let now = Utc::now();
        let update = {
            let mut reported = endpoint.reported_failing.lock().expect("health lock");
            let failing_since = health.as_ref().and_then(|h| h.failing_since);
            if succeeded {
                if !*reported && failing_since.is_none() {
                    return;
                }
                *reported = false;
                (None, None)
            } else if failures < self.endpoints.limits().circuit_threshold {
                return;
            } else if let Some(since) = failing_since {
                let disabled = health.as_ref().and_then(|h| h.disabled_at).is_some();
                let too_long = (now - since)
                    .to_std()
                    .is_ok_and(|d| d >= self.policy.disable_after);
                if disabled || !too_long {
                    return;
                }
                (Some(since), Some(now))
            } else if *reported {
                return;
            } else {
                *reported = true;
                (Some(now), None)
            }
        };
        let (failing_since, disabled_at) = update;
        let record = WebhookHealthRecord {
            schema_version: SCHEMA_VERSION,
            webhook_id: webhook.id.clone(),
            tenant_id: webhook.tenant_id.clone(),
            failing_since,
            disabled_at,
            updated_at: now,
        };
        let topic = self.topics.webhook_health();
        if let Err(err) = self.publisher.send_json(&topic, &webhook.id, &record).await {
            tracing::warn!(error = %err, webhook_id = %webhook.id, "could not record webhook health");
            return;
        }
        tracing::info!(webhook_id = %webhook.id, failing = failing_since.is_some(), disabled = disabled_at.is_some(), "webhook health changed");
        if disabled_at.is_some() {
            self.announce_disabled(webhook, &record).await;
        }
    }

    /// Publishes the operational event `webhook.disabled` to the webhook's tenant; webhooks
    /// subscribed to it (the tenant's operational webhooks) receive it.
    async fn announce_disabled(&self, webhook: &WebhookRecord, health: &WebhookHealthRecord) {
        let data = serde_json::json!({
            "webhook_id": webhook.id,
            "url": webhook.url,
            "failing_since": health.failing_since,
            "disabled_at": health.disabled_at,
        });
        let now = Utc::now();
        let event = EventRecord {
            schema_version: SCHEMA_VERSION,
            tenant_id: webhook.tenant_id.clone(),
            id: new_event_id(),
            event_type: "webhook.disabled".into(),
            timestamp: now,
            accepted_at: now,
            data: RawValue::from_string(data.to_string()).expect("json! is valid JSON"),
            ordering_key: None,
            id_chosen_by_producer: false,
        };
        if let Err(err) = self
            .publisher
            .send_json(&self.topics.events(), &event.partition_key(), &event)
            .await
        {
            tracing::warn!(error = %err, "could not publish webhook.disabled");
        }
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

    async fn publish_attempt(
        &self,
        attempt: &AttemptRecord,
    ) -> Result<Position, KafkaAdapterError> {
        self.publisher
            .send_json(&self.topics.attempts(), &attempt.delivery_id, attempt)
            .await
    }

    async fn publish_task(
        &self,
        topic: &str,
        task: &DeliveryTask,
    ) -> Result<Position, KafkaAdapterError> {
        self.publisher
            .send_json(topic, &task.webhook_id, task)
            .await
    }

    /// Retries `send` while Kafka is unavailable. A record Kafka will never take stops the
    /// task as poison.
    async fn durably<F, Fut>(&self, abandon: &CancellationToken, mut send: F) -> Result<(), Stop>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Position, KafkaAdapterError>>,
    {
        hookline_backoff::retry(Backoff::dependency(), abandon, "producing", || {
            let sent = send();
            async move { sent.await.map_err(KafkaAdapterError::classified) }
        })
        .await?;
        Ok(())
    }
}

/// How long until a retried task is due (`None` for a first attempt).
fn remaining_wait(task: &DeliveryTask) -> Option<Duration> {
    let due_at = task.due_at?;
    (due_at - Utc::now()).to_std().ok()
}

/// A webhook's own retry schedule, if it has a valid one.
fn webhook_schedule(webhook: &WebhookRecord) -> Option<RetrySchedule> {
    let retry = webhook.retry?;
    RetrySchedule::exponential(
        retry.max_attempts,
        Duration::from_secs(retry.initial_delay_secs),
        retry.multiplier,
    )
    .ok()
}

fn rand_unit() -> f64 {
    rand::random::<f64>()
}
