//! One webhook request: the body, the signature headers, sending it, and what came back. Used by
//! the sender for every attempt and by ingest for `POST /v1/webhooks/{id}/test`; it keeps no
//! state and records nothing, callers do.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hookline_schemas::{ErrorClass, EventRecord, WebhookRecord};
use hookline_signing::{signature_header, Secret};
use serde::Serialize;
use serde_json::value::RawValue;

/// Most bytes of a response body kept.
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

/// What the endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    /// The start of the body (at most [`MAX_RECORDED_BODY`] bytes).
    pub body: String,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `None` when no request was sent because the webhook's secret is unusable.
    pub class: Option<ErrorClass>,
    pub message: String,
}

/// One request and how it ended.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub sent_at: DateTime<Utc>,
    pub duration: Duration,
    pub result: Result<Answer, Failure>,
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
        body: truncate_body(&body),
    })
}

/// Signs `event` for `webhook` (with every secret still in its rotation overlap) and POSTs it,
/// sent as message `delivery_id`.
pub async fn send(
    http: &reqwest::Client,
    webhook: &WebhookRecord,
    delivery_id: &str,
    event: &EventRecord,
) -> Exchange {
    let sent_at = Utc::now();
    let started = Instant::now();
    let result = sign_and_post(http, webhook, delivery_id, event, sent_at).await;
    Exchange {
        sent_at,
        duration: started.elapsed(),
        result,
    }
}

async fn sign_and_post(
    http: &reqwest::Client,
    webhook: &WebhookRecord,
    delivery_id: &str,
    event: &EventRecord,
    now: DateTime<Utc>,
) -> Result<Answer, Failure> {
    let body = envelope_body(event);
    let timestamp = now.timestamp();
    // During a rotation's overlap the old secret signs too: one signature per secret.
    let secrets = webhook
        .signing_secrets(now)
        .map(Secret::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Failure {
            // Cannot happen for a secret ingest validated; reported rather than retried.
            class: None,
            message: format!("webhook secret unusable: {err}"),
        })?;
    let signature = signature_header(&secrets, delivery_id, timestamp, &body);
    let mut request = http.post(&webhook.url);
    // Custom headers first, so the ones Hookline sets always win (ingest refuses them anyway).
    for (name, value) in &webhook.headers {
        request = request.header(name, value);
    }
    let sent = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", delivery_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(response) => read_answer(response).await,
        Err(err) => Err(err),
    };
    answer.map_err(|err| Failure {
        class: Some(if err.is_timeout() {
            ErrorClass::Timeout
        } else {
            ErrorClass::Connection
        }),
        message: error_chain(&err),
    })
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
