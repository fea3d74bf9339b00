//! One attempt as a record: the request itself (body, signatures, sending) is
//! `hookline_delivery`'s; this turns its outcome into an [`AttemptRecord`].

use chrono::{DateTime, SecondsFormat, Utc};
pub use hookline_delivery::http_client;
use hookline_delivery::send;
use hookline_domain::ids::new_attempt_id;
use hookline_domain::recorded_url::recorded_url;
use hookline_schemas::{
    AttemptOutcome, AttemptRecord, DeliveryTask, ErrorClass, WebhookRecord, SCHEMA_VERSION,
};

/// What one attempt produced: its record, and the endpoint's `Retry-After` if it sent one.
pub struct Attempted {
    pub record: AttemptRecord,
    pub retry_after: Option<String>,
}

/// Signs and POSTs `task` to `webhook`, and describes what happened.
pub async fn deliver(
    http: &hookline_delivery::Client,
    task: &DeliveryTask,
    webhook: &WebhookRecord,
) -> Attempted {
    let exchange = send(http, webhook, &task.delivery_id, &task.event).await;
    let mut record = attempt_record(task, &webhook.url, exchange.sent_at);
    record.duration_ms = u64::try_from(exchange.duration.as_millis()).unwrap_or(u64::MAX);
    record.request_headers = exchange.request_headers;
    let mut retry_after = None;
    match exchange.result {
        Ok(answer) => {
            record.response_status = Some(answer.status);
            if answer.is_success() {
                record.outcome = AttemptOutcome::Succeeded;
            } else {
                record.error_class = Some(ErrorClass::HttpStatus);
                record.error = Some(format!("endpoint answered {}", answer.status));
            }
            record.response_body = Some(answer.body);
            record.response_headers = answer.headers;
            record.response_headers_truncated = answer.headers_truncated;
            retry_after = answer.retry_after;
        }
        Err(failure) => {
            record.error_class = failure.class;
            record.error = Some(failure.message);
        }
    }
    Attempted {
        record,
        retry_after,
    }
}

/// The record of an attempt that was not made because the webhook no longer exists or is
/// disabled.
pub fn cancelled(task: &DeliveryTask) -> AttemptRecord {
    let mut record = attempt_record(task, "", Utc::now());
    record.outcome = AttemptOutcome::Cancelled;
    record.error_class = Some(ErrorClass::WebhookDeleted);
    record.error = Some("the webhook was deleted, deactivated or disabled".into());
    record
}

/// The record of a task held while its endpoint's circuit was open until the time of its last
/// attempt had passed: no request was sent.
pub fn held_past_last_attempt(
    task: &DeliveryTask,
    webhook: &WebhookRecord,
    held_since: DateTime<Utc>,
) -> AttemptRecord {
    let mut record = attempt_record(task, &webhook.url, Utc::now());
    record.error_class = Some(ErrorClass::CircuitOpen);
    record.error = Some(format!(
        "held since {} while the endpoint's circuit was open, past the time of the last attempt; no request was sent",
        held_since.to_rfc3339_opts(SecondsFormat::Secs, true)
    ));
    record
}

/// Marks the attempt whose failure opened the endpoint's circuit: the endpoint's tasks are held
/// from here on, and this record says so once for all of them.
pub fn note_circuit_opened(record: &mut AttemptRecord) {
    let failure = record.error.take().unwrap_or_default();
    record.error = Some(format!(
        "{failure}; the circuit opened: this endpoint's tasks are held until a probe succeeds"
    ));
}

fn attempt_record(task: &DeliveryTask, url: &str, attempted_at: DateTime<Utc>) -> AttemptRecord {
    AttemptRecord {
        schema_version: SCHEMA_VERSION,
        attempt_id: new_attempt_id(),
        delivery_id: task.delivery_id.clone(),
        tenant_id: task.tenant_id.clone(),
        webhook_id: task.webhook_id.clone(),
        event_id: task.event.id.clone(),
        event_type: task.event.event_type.clone(),
        event_accepted_at: Some(task.event.accepted_at),
        attempt_number: task.attempt,
        url: recorded_url(url),
        attempted_at,
        duration_ms: 0,
        outcome: AttemptOutcome::Failed,
        response_status: None,
        response_body: None,
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        response_headers_truncated: false,
        error_class: None,
        error: None,
        next_attempt_at: None,
        replay: task.replay,
    }
}
