//! One HTTP attempt: the body, the signature headers, the request and how its outcome is
//! classified.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hookline_domain::ids::new_attempt_id;
use hookline_schemas::{
    AttemptOutcome, AttemptRecord, DeliveryTask, ErrorClass, EventRecord, WebhookRecord,
    SCHEMA_VERSION,
};
use hookline_signing::{signature_header, Secret};
use serde::Serialize;
use serde_json::value::RawValue;

/// Most bytes of a response body kept in the attempt record.
pub const MAX_RECORDED_BODY: usize = 4096;

const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"));

/// The HTTP client of every attempt: no redirects (a 3xx is a failure), a hard timeout.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(USER_AGENT)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
}

/// The default body: `{"id","type","timestamp","data"}`, compact, with `data` byte for byte.
#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: DateTime<Utc>,
    data: &'a RawValue,
}

pub fn envelope_body(event: &EventRecord) -> Vec<u8> {
    let envelope = Envelope {
        id: &event.id,
        event_type: &event.event_type,
        timestamp: event.timestamp,
        data: &event.data,
    };
    serde_json::to_vec(&envelope).expect("an envelope of valid JSON serializes")
}

/// Cuts `body` to at most [`MAX_RECORDED_BODY`] bytes of text, never inside a character.
pub fn truncate_body(body: &[u8]) -> String {
    let mut end = body.len().min(MAX_RECORDED_BODY);
    while end > 0 && end < body.len() && body[end] & 0b1100_0000 == 0b1000_0000 {
        end -= 1;
    }
    // Bytes that are not UTF-8 become U+FFFD, which may lengthen the text: cut again.
    let mut text = String::from_utf8_lossy(&body[..end]).into_owned();
    while text.len() > MAX_RECORDED_BODY {
        text.pop();
    }
    text
}

/// What came back from the endpoint.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

/// Reads at most [`MAX_RECORDED_BODY`] bytes of the response body; the rest is not waited for.
async fn read_answer(mut response: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while body.len() < MAX_RECORDED_BODY {
        match response.chunk().await? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// What one attempt produced: its record, and the endpoint's `Retry-After` if it sent one.
pub struct Attempted {
    pub record: AttemptRecord,
    pub retry_after: Option<String>,
}

/// Signs and POSTs `task` to `webhook`, and describes what happened.
pub async fn deliver(
    http: &reqwest::Client,
    task: &DeliveryTask,
    webhook: &WebhookRecord,
) -> Attempted {
    let body = envelope_body(&task.event);
    let attempted_at = Utc::now();
    let timestamp = attempted_at.timestamp();
    let mut record = attempt_record(task, &webhook.url, attempted_at);
    // During a rotation's overlap the old secret signs too: one signature per secret.
    let secrets: Result<Vec<Secret>, _> = webhook
        .signing_secrets(attempted_at)
        .map(Secret::parse)
        .collect();
    let secrets = match secrets {
        Ok(secrets) => secrets,
        Err(err) => {
            // Cannot happen for a secret ingest validated; recorded rather than retried.
            record.error = Some(format!("webhook secret unusable: {err}"));
            return Attempted {
                record,
                retry_after: None,
            };
        }
    };
    let signature = signature_header(&secrets, &task.delivery_id, timestamp, &body);
    let started = Instant::now();
    let mut request = http.post(&webhook.url);
    // Custom headers first, so the ones Hookline sets always win (ingest refuses them anyway).
    for (name, value) in &webhook.headers {
        request = request.header(name, value);
    }
    let sent = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &task.delivery_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(response) => read_answer(response).await,
        Err(err) => Err(err),
    };
    record.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut retry_after = None;
    match answer {
        Ok(answer) => {
            retry_after = answer.retry_after;
            record.response_status = Some(answer.status);
            record.response_body = Some(truncate_body(&answer.body));
            if (200..300).contains(&answer.status) {
                record.outcome = AttemptOutcome::Succeeded;
            } else {
                record.error_class = Some(ErrorClass::HttpStatus);
                record.error = Some(format!("endpoint answered {}", answer.status));
            }
        }
        Err(err) => {
            let class = if err.is_timeout() {
                ErrorClass::Timeout
            } else {
                ErrorClass::Connection
            };
            record.error_class = Some(class);
            record.error = Some(error_chain(&err));
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

/// The record of an attempt skipped because the endpoint's circuit is open.
pub fn circuit_open(task: &DeliveryTask, webhook: &WebhookRecord) -> AttemptRecord {
    let mut record = attempt_record(task, &webhook.url, Utc::now());
    record.error_class = Some(ErrorClass::CircuitOpen);
    record.error = Some("the endpoint keeps failing; no request was sent".into());
    record
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
        attempt_number: task.attempt,
        url: url.to_owned(),
        attempted_at,
        duration_ms: 0,
        outcome: AttemptOutcome::Failed,
        response_status: None,
        response_body: None,
        error_class: None,
        error: None,
        next_attempt_at: None,
    }
}

/// An error and its causes, one line (reqwest's top-level message alone hides the reason).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_carries_data_byte_for_byte() {
        let event: EventRecord = serde_json::from_str(
            r#"{"schema_version":1,"tenant_id":"ten_1","id":"evt_1","type":"invoice.paid","timestamp":"2026-01-02T03:04:05Z","accepted_at":"2026-01-02T03:04:05Z","data":{"b":1, "a":2.50}}"#,
        )
        .unwrap();
        let body = String::from_utf8(envelope_body(&event)).unwrap();
        assert_eq!(
            body,
            r#"{"id":"evt_1","type":"invoice.paid","timestamp":"2026-01-02T03:04:05Z","data":{"b":1, "a":2.50}}"#
        );
    }

    #[test]
    fn recorded_bodies_are_cut_on_a_character_boundary() {
        assert_eq!(truncate_body(b"short"), "short");
        let long = format!("a{}", "é".repeat(MAX_RECORDED_BODY));
        let cut = truncate_body(long.as_bytes());
        assert_eq!(cut.len(), MAX_RECORDED_BODY - 1);
        assert!(cut[1..].chars().all(|c| c == 'é'));
        assert!(truncate_body(&[0xff; MAX_RECORDED_BODY * 2]).len() <= MAX_RECORDED_BODY);
    }
}
