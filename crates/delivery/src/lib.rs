//! One webhook request: the body, the signature headers, sending it, and what came back. Used by
//! the sender for every attempt and by ingest for `POST /v1/webhooks/{id}/test`; it keeps no
//! state and records nothing, callers do.
//!
//! Every request goes only to addresses the [`AddressPolicy`] allows: the client's resolver
//! drops forbidden addresses from DNS answers (and the connection uses exactly the checked
//! addresses, no second lookup), IP-literal hosts are checked before sending, and redirects are
//! never followed.
//!
//! What it reports of an exchange is fit for the ledger: the headers sent and answered, with
//! credentials redacted and the answer's headers cut at a size (`hookline_domain::recorded_headers`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hookline_domain::recorded_headers::{
    headers_within, recorded_value, MAX_RECORDED_RESPONSE_HEADER_BYTES,
};
use hookline_domain::AddressPolicy;
use hookline_schemas::{
    ErrorClass, EventRecord, HttpHeader, PayloadShape, SignatureProfile, WebhookRecord,
};
use hookline_signing::{
    hmac_sha256_hex, signature_header, AtRestError, Secret, SecretKeys, SigningError,
};
use serde::Serialize;
use serde_json::value::RawValue;

/// Most bytes of a response body kept.
pub const MAX_RECORDED_BODY: usize = 4096;

const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"));

/// Which addresses webhook requests may reach beyond the public internet.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AddressArgs {
    /// Comma-separated CIDR networks webhooks may reach although they are private, loopback or
    /// reserved (e.g. `127.0.0.0/8,::1/128` for local development). Empty: public addresses only.
    #[arg(
        long = "allowed-networks",
        env = "HOOKLINE_ALLOWED_NETWORKS",
        default_value = ""
    )]
    pub allowed_networks: String,
}

impl AddressArgs {
    pub fn policy(&self) -> Result<AddressPolicy, hookline_domain::ForbiddenAddress> {
        AddressPolicy::parse(&self.allowed_networks)
    }
}

/// The keys that seal webhook secrets at rest (see `hookline_signing::SecretKeys`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SecretKeyArgs {
    /// Comma-separated `id:<base64 of 32 random bytes>` AES-256-GCM keys; the first seals new
    /// secrets, all open. Rotate by putting a new key first and keeping the old ones.
    #[arg(
        long = "secret-keys",
        env = "HOOKLINE_SECRET_KEYS",
        default_value = "",
        hide_env_values = true
    )]
    pub secret_keys: String,
    /// Without `HOOKLINE_SECRET_KEYS`, seal with a fixed, public development key (local runs
    /// and tests only).
    #[arg(
        long = "allow-development-secret-key",
        env = "HOOKLINE_ALLOW_DEVELOPMENT_SECRET_KEY",
        default_value_t = false
    )]
    pub allow_development_key: bool,
}

impl SecretKeyArgs {
    pub fn keys(&self) -> Result<SecretKeys, AtRestError> {
        if self.secret_keys.trim().is_empty() && self.allow_development_key {
            return Ok(SecretKeys::development());
        }
        SecretKeys::parse(&self.secret_keys)
    }
}

/// Resolves names with the system resolver and keeps only the addresses the policy allows.
struct CheckedResolver {
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| policy.check(addr.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                let refused = resolved.first().map(|addr| addr.ip().to_string());
                return Err(format!(
                    "refused: {host} resolves only to forbidden addresses ({})",
                    refused.unwrap_or_else(|| "none".into())
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of webhook requests, with the policy its requests obey and the keys that
/// open webhook secrets.
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
    policy: AddressPolicy,
    keys: SecretKeys,
}

/// The HTTP client of every attempt: only addresses `policy` allows, no redirects (a 3xx is a
/// failure), a hard timeout.
pub fn http_client(
    timeout: Duration,
    policy: AddressPolicy,
    keys: SecretKeys,
) -> Result<Client, reqwest::Error> {
    let inner = reqwest::Client::builder()
        .dns_resolver(Arc::new(CheckedResolver {
            policy: policy.clone(),
        }))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?;
    Ok(Client {
        inner,
        policy,
        keys,
    })
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
    /// The response headers in order, credentials redacted, names and values together at most
    /// `MAX_RECORDED_RESPONSE_HEADER_BYTES`.
    pub headers: Vec<HttpHeader>,
    /// Whether headers were dropped to stay within that size.
    pub headers_truncated: bool,
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
    /// The headers sent, in order, credentials redacted; empty when no request was made. The
    /// HTTP client adds only `host` and `content-length` to them.
    pub request_headers: Vec<HttpHeader>,
    pub result: Result<Answer, Failure>,
}

/// `headers` as the ledger records them: names lowercase (as `http` keeps them), values as
/// text, credentials redacted.
fn recorded_headers(headers: &reqwest::header::HeaderMap) -> Vec<HttpHeader> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes());
            HttpHeader {
                name: name.as_str().to_owned(),
                value: recorded_value(name.as_str(), &value).to_owned(),
            }
        })
        .collect()
}

/// Reads at most [`MAX_RECORDED_BODY`] bytes of the response body; the rest is not waited for.
async fn read_answer(mut response: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut headers = recorded_headers(response.headers());
    let kept = headers_within(
        headers.iter().map(|h| (h.name.as_str(), h.value.as_str())),
        MAX_RECORDED_RESPONSE_HEADER_BYTES,
    );
    let headers_truncated = kept < headers.len();
    headers.truncate(kept);
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
        headers,
        headers_truncated,
        body: truncate_body(&body),
    })
}

/// Shapes and signs `event` for `webhook` (its payload shape and signature profile) and POSTs
/// it as message `delivery_id`.
pub async fn send(
    http: &Client,
    webhook: &WebhookRecord,
    delivery_id: &str,
    event: &EventRecord,
) -> Exchange {
    let sent_at = Utc::now();
    let started = Instant::now();
    let request = check_literal_host(&http.policy, &webhook.url)
        .and_then(|()| signed_request(http, webhook, delivery_id, event, sent_at));
    let (request_headers, result) = match request {
        Ok(request) => (
            recorded_headers(request.headers()),
            post(http, request).await,
        ),
        Err(failure) => (Vec::new(), Err(failure)),
    };
    Exchange {
        sent_at,
        duration: started.elapsed(),
        request_headers,
        result,
    }
}

/// A URL whose host is an IP literal never reaches the resolver: it is checked here.
fn check_literal_host(policy: &AddressPolicy, url: &str) -> Result<(), Failure> {
    let url = url::Url::parse(url).map_err(|err| Failure {
        class: Some(ErrorClass::Connection),
        message: format!("invalid url: {err}"),
    })?;
    policy.check_literal(&url).map_err(|err| Failure {
        class: Some(ErrorClass::Connection),
        message: format!("refused: {err}"),
    })
}

/// The request of one attempt, with every header it is sent with but the transport's own.
fn signed_request(
    http: &Client,
    webhook: &WebhookRecord,
    delivery_id: &str,
    event: &EventRecord,
    now: DateTime<Utc>,
) -> Result<reqwest::Request, Failure> {
    let body = body(event, webhook.payload);
    // Cannot fail for a secret ingest validated and sealed; reported rather than retried.
    let unusable = |err: &dyn std::error::Error| Failure {
        class: None,
        message: format!("webhook secret unusable: {err}"),
    };
    let secrets = webhook
        .signing_secrets(now)
        .map(|sealed| http.keys.open(sealed, &webhook.id))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| unusable(&err))?;
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let signed = signature_headers(
        &webhook.signature,
        &secrets,
        delivery_id,
        now.timestamp(),
        &event.event_type,
        &body,
    )
    .map_err(|err| unusable(&err))?;
    let mut request = http.inner.post(&webhook.url);
    // Custom headers first, so the ones Hookline sets always win (ingest refuses them anyway).
    for (name, value) in webhook
        .headers
        .iter()
        .chain(signed.iter().map(|(n, v)| (n, v)))
    {
        request = request.header(name, value);
    }
    // Set here rather than as the client's defaults, so the request holds what is recorded.
    let mut request = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .body(body)
        .build()
        .map_err(sending_failure)?;
    // Like the client's default: unless the webhook's own headers say otherwise.
    request
        .headers_mut()
        .entry(reqwest::header::ACCEPT)
        .or_insert(reqwest::header::HeaderValue::from_static("*/*"));
    Ok(request)
}

async fn post(http: &Client, request: reqwest::Request) -> Result<Answer, Failure> {
    let answer = match http.inner.execute(request).await {
        Ok(response) => read_answer(response).await,
        Err(err) => Err(err),
    };
    answer.map_err(sending_failure)
}

/// The failure without the URL reqwest puts in its message: the URL may hold a credential, and
/// the attempt records it redacted on its own.
fn sending_failure(err: reqwest::Error) -> Failure {
    let err = err.without_url();
    Failure {
        class: Some(if err.is_timeout() {
            ErrorClass::Timeout
        } else {
            ErrorClass::Connection
        }),
        message: error_chain(&err),
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

    fn webhook(url: &str) -> WebhookRecord {
        serde_json::from_value(serde_json::json!({
            "schema_version": 1, "id": "wh_1", "tenant_id": "ten_1", "url": url,
            "events": ["*"], "secret": Secret::generate().expose(),
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    fn event() -> EventRecord {
        serde_json::from_str(
            r#"{"schema_version":1,"tenant_id":"ten_1","id":"evt_1","type":"a.b","timestamp":"2026-01-02T03:04:05Z","accepted_at":"2026-01-02T03:04:05Z","data":{}}"#,
        )
        .unwrap()
    }

    fn loopback_allowed() -> AddressPolicy {
        AddressPolicy::parse("127.0.0.0/8,::1/128").unwrap()
    }

    /// A one-request server on loopback answering `response`; returns its port.
    async fn answer_once(response: &str) -> u16 {
        let response = response.to_owned();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            stream.write_all(response.as_bytes()).await.unwrap();
        });
        port
    }

    async fn send_to(url: &str, policy: AddressPolicy) -> Exchange {
        let client =
            http_client(Duration::from_secs(5), policy, SecretKeys::development()).unwrap();
        send(&client, &webhook(url), "msg_1", &event()).await
    }

    #[tokio::test]
    async fn names_resolving_to_forbidden_addresses_are_refused_before_connecting() {
        let port = answer_once("HTTP/1.1 204 No Content\r\n\r\n").await;
        let exchange = send_to(
            &format!("http://localhost:{port}/"),
            AddressPolicy::default(),
        )
        .await;
        let failure = exchange.result.unwrap_err();
        assert_eq!(failure.class, Some(ErrorClass::Connection));
        assert!(
            failure.message.contains("forbidden addresses"),
            "{}",
            failure.message
        );
        let literal = send_to(
            &format!("http://[::ffff:127.0.0.1]:{port}/"),
            AddressPolicy::default(),
        )
        .await
        .result
        .unwrap_err();
        assert!(
            literal.message.starts_with("refused"),
            "{}",
            literal.message
        );
        let allowed = send_to(&format!("http://localhost:{port}/"), loopback_allowed()).await;
        assert_eq!(allowed.result.unwrap().status, 204);
    }

    #[tokio::test]
    async fn a_failure_never_repeats_the_url_and_its_credentials() {
        // Nothing listens on a port just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let exchange = send_to(
            &format!("http://user:pass@127.0.0.1:{port}/?token=s3cr3t"),
            loopback_allowed(),
        )
        .await;
        let failure = exchange.result.unwrap_err();
        assert_eq!(failure.class, Some(ErrorClass::Connection));
        assert!(!failure.message.contains("s3cr3t"), "{}", failure.message);
        assert!(!failure.message.contains("pass"), "{}", failure.message);
    }

    #[tokio::test]
    async fn redirects_are_answers_never_followed() {
        let port = answer_once(
            "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let exchange = send_to(&format!("http://127.0.0.1:{port}/"), loopback_allowed()).await;
        let answer = exchange.result.unwrap();
        assert_eq!(answer.status, 302);
        assert!(!answer.is_success());
    }

    #[tokio::test]
    async fn exchanges_record_headers_without_credentials_and_within_their_size() {
        let too_long = "x".repeat(MAX_RECORDED_RESPONSE_HEADER_BYTES);
        let port = answer_once(&format!(
            "HTTP/1.1 200 OK\r\nSet-Cookie: session=abc\r\nX-Request-Id: r-1\r\nX-Big: {too_long}\r\nX-After: 1\r\nContent-Length: 0\r\n\r\n"
        ))
        .await;
        let mut webhook = webhook(&format!("http://127.0.0.1:{port}/"));
        webhook.headers = [
            ("Accept", "application/json"),
            ("X-Api-Key", "k-123"),
            ("X-Team", "payments"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        let client = http_client(
            Duration::from_secs(5),
            loopback_allowed(),
            SecretKeys::development(),
        )
        .unwrap();
        let exchange = send(&client, &webhook, "msg_1", &event()).await;
        let sent: Vec<(&str, &str)> = exchange
            .request_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            &sent[..4],
            [
                ("accept", "application/json"),
                ("x-api-key", "[redacted]"),
                ("x-team", "payments"),
                ("webhook-id", "msg_1")
            ]
        );
        let names: Vec<&str> = sent.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            &names[4..],
            // The webhook's own `accept` stands: no second one.
            [
                "webhook-timestamp",
                "webhook-signature",
                "content-type",
                "user-agent"
            ]
        );
        assert!(sent[5].1.starts_with("v1,"));
        let answer = exchange.result.unwrap();
        let answered: Vec<(&str, &str)> = answer
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            answered,
            [("set-cookie", "[redacted]"), ("x-request-id", "r-1")]
        );
        assert!(answer.headers_truncated);
    }

    #[tokio::test]
    async fn without_an_answer_only_the_request_headers_are_known() {
        let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = unused.local_addr().unwrap().port();
        drop(unused);
        let exchange = send_to(&format!("http://127.0.0.1:{port}/"), loopback_allowed()).await;
        assert_eq!(
            exchange.result.unwrap_err().class,
            Some(ErrorClass::Connection)
        );
        assert!(exchange
            .request_headers
            .iter()
            .any(|h| h.name == "webhook-signature"));
        assert!(exchange
            .request_headers
            .iter()
            .any(|h| (h.name.as_str(), h.value.as_str()) == ("accept", "*/*")));
        let refused = send_to(
            &format!("http://127.0.0.1:{port}/"),
            AddressPolicy::default(),
        )
        .await;
        assert!(refused.request_headers.is_empty());
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
