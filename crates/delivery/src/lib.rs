//! One webhook request: the body, the signature headers, sending it, and what came back. Used by
//! the sender for every attempt and by ingest for `POST /v1/webhooks/{id}/test`; it keeps no
//! state and records nothing, callers do.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hookline_schemas::{ErrorClass, EventRecord, PayloadShape, SignatureProfile, WebhookRecord};
use hookline_signing::{hmac_sha256_hex, signature_header, Secret, SigningError};
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

/// The body of a request: the envelope, or the event's `data` exactly as published.
pub fn body(event: &EventRecord, shape: PayloadShape) -> Vec<u8> {
    match shape {
        PayloadShape::Envelope => envelope_body(event),
        PayloadShape::Raw => event.data.get().as_bytes().to_vec(),
    }
}

/// The headers that sign one request under `profile`. `secrets` are the webhook's current
/// secret first, then those still in a rotation's overlap: Standard Webhooks sends one signature
/// per secret; the single-value profiles sign with the current secret only. Every profile also
/// carries `webhook-id`, the delivery id receivers deduplicate on.
pub fn signature_headers(
    profile: &SignatureProfile,
    secrets: &[&str],
    delivery_id: &str,
    timestamp: i64,
    event_type: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, SigningError> {
    let current = secrets.first().copied().unwrap_or_default().as_bytes();
    let mut headers = vec![("webhook-id".to_owned(), delivery_id.to_owned())];
    match profile {
        SignatureProfile::Standard => {
            let secrets = secrets
                .iter()
                .map(|secret| Secret::parse(secret))
                .collect::<Result<Vec<_>, _>>()?;
            headers.push(("webhook-timestamp".into(), timestamp.to_string()));
            headers.push((
                "webhook-signature".into(),
                signature_header(&secrets, delivery_id, timestamp, body),
            ));
        }
        SignatureProfile::HmacHex { header } => {
            headers.push((header.clone(), hmac_sha256_hex(current, &[body])));
        }
        SignatureProfile::HmacSha256Prefixed { header } => {
            let digest = hmac_sha256_hex(current, &[body]);
            headers.push((header.clone(), format!("sha256={digest}")));
        }
        SignatureProfile::Timestamped { prefix } => {
            let timestamp = timestamp.to_string();
            let digest = hmac_sha256_hex(current, &[timestamp.as_bytes(), b".", body]);
            headers.push((format!("{prefix}signature"), format!("sha256={digest}")));
            headers.push((format!("{prefix}timestamp"), timestamp));
            headers.push((format!("{prefix}event"), event_type.to_owned()));
            headers.push((format!("{prefix}delivery"), delivery_id.to_owned()));
        }
    }
    Ok(headers)
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

/// Shapes and signs `event` for `webhook` (its payload shape and signature profile) and POSTs
/// it as message `delivery_id`.
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
    let body = body(event, webhook.payload);
    let secrets: Vec<&str> = webhook.signing_secrets(now).collect();
    let signed = signature_headers(
        &webhook.signature,
        &secrets,
        delivery_id,
        now.timestamp(),
        &event.event_type,
        &body,
    )
    .map_err(|err| Failure {
        // Cannot happen for a secret ingest validated; reported rather than retried.
        class: None,
        message: format!("webhook secret unusable: {err}"),
    })?;
    let mut request = http.post(&webhook.url);
    // Custom headers first, so the ones Hookline sets always win (ingest refuses them anyway).
    for (name, value) in webhook
        .headers
        .iter()
        .chain(signed.iter().map(|(n, v)| (n, v)))
    {
        request = request.header(name, value);
    }
    let sent = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
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

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    #[test]
    fn raw_bodies_are_the_data_exactly_as_published() {
        let event: EventRecord = serde_json::from_str(
            r#"{"schema_version":1,"tenant_id":"ten_1","id":"evt_1","type":"a.b","timestamp":"2026-01-02T03:04:05Z","accepted_at":"2026-01-02T03:04:05Z","data":{"z":1, "a":"\u00e9", "n":1.50}}"#,
        )
        .unwrap();
        assert_eq!(
            body(&event, PayloadShape::Raw),
            br#"{"z":1, "a":"\u00e9", "n":1.50}"#
        );
    }

    #[test]
    fn each_profile_signs_as_its_platform_documents() {
        let secret = ["whsec_my_signing_secret"];
        let body = br#"{"event":"x"}"#;
        let expected = hmac_sha256_hex(secret[0].as_bytes(), &[body]);
        let sign = |profile: SignatureProfile| {
            signature_headers(&profile, &secret, "msg_1", 1_700_000_000, "a.b", body).unwrap()
        };
        let hex = sign(SignatureProfile::HmacHex {
            header: "X-Ruune-Signature".into(),
        });
        assert_eq!(header(&hex, "X-Ruune-Signature"), expected);
        assert_eq!(header(&hex, "webhook-id"), "msg_1");
        let prefixed = sign(SignatureProfile::HmacSha256Prefixed {
            header: "X-Hub-Signature-256".into(),
        });
        assert_eq!(
            header(&prefixed, "X-Hub-Signature-256"),
            format!("sha256={expected}")
        );
        let timestamped = sign(SignatureProfile::Timestamped {
            prefix: "x-ardela-".into(),
        });
        let over_timestamp = hmac_sha256_hex(secret[0].as_bytes(), &[b"1700000000.", body]);
        assert_eq!(
            header(&timestamped, "x-ardela-signature"),
            format!("sha256={over_timestamp}")
        );
        assert_eq!(header(&timestamped, "x-ardela-timestamp"), "1700000000");
        assert_eq!(header(&timestamped, "x-ardela-event"), "a.b");
        assert_eq!(header(&timestamped, "x-ardela-delivery"), "msg_1");
    }

    #[test]
    fn standard_signs_with_every_secret_in_the_overlap() {
        let secrets = [Secret::generate().expose(), Secret::generate().expose()];
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let headers = signature_headers(
            &SignatureProfile::Standard,
            &secrets,
            "msg_1",
            1_700_000_000,
            "a.b",
            b"{}",
        )
        .unwrap();
        let signature = header(&headers, "webhook-signature");
        for secret in &secrets {
            let secret = Secret::parse(secret).unwrap();
            hookline_signing::verify(&secret, "msg_1", 1_700_000_000, b"{}", signature).unwrap();
        }
        assert_eq!(signature.split(' ').count(), 2);
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
