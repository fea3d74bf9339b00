//! Wire types of every Hookline topic.
//!
//! Each record carries `schema_version`; readers ignore fields they do not know, so a newer
//! writer never breaks an older reader. `data` is carried as raw JSON text from ingest to the
//! wire: nothing re-serializes a producer's payload. The JSON Schema of each topic's value is
//! generated from these types into `schemas/json/` (see `tests/json_schemas.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Version stamped on every record written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// Names of the topics, all under one configurable prefix (default `hookline.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicNames {
    prefix: String,
}

impl TopicNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Accepted events, keyed by ordering key.
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// Compacted: webhook id → [`WebhookRecord`] or tombstone.
    pub fn webhooks(&self) -> String {
        format!("{}webhooks", self.prefix)
    }

    /// Compacted: tenant id → [`TenantRecord`].
    pub fn tenants(&self) -> String {
        format!("{}tenants", self.prefix)
    }

    /// Compacted: key id → [`ApiKeyRecord`].
    pub fn keys(&self) -> String {
        format!("{}keys", self.prefix)
    }

    /// Compacted: `{tenant id}/{name}` → [`EventTypeRecord`].
    pub fn event_types(&self) -> String {
        format!("{}event-types", self.prefix)
    }

    /// Delivery tasks, keyed by webhook id.
    pub fn deliveries(&self) -> String {
        format!("{}deliveries", self.prefix)
    }

    /// Attempt records, keyed by delivery id.
    pub fn attempts(&self) -> String {
        format!("{}attempts", self.prefix)
    }

    /// Delivery tasks waiting `delay` (a name like `30s`, `2m`, `1h`) before their next attempt.
    pub fn retry_tier(&self, delay: &str) -> String {
        format!("{}deliveries.retry.{delay}", self.prefix)
    }

    /// Tasks whose attempts are spent, with their last error.
    pub fn dead(&self) -> String {
        format!("{}deliveries.dead", self.prefix)
    }

    /// Compacted: webhook id → [`WebhookHealthRecord`], written by senders.
    pub fn webhook_health(&self) -> String {
        format!("{}webhook-health", self.prefix)
    }

    /// The compacted control-plane topics.
    pub fn control(&self) -> [String; 5] {
        [
            self.tenants(),
            self.keys(),
            self.webhooks(),
            self.webhook_health(),
            self.event_types(),
        ]
    }
}

/// An accepted event (`events` topic).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventRecord {
    pub schema_version: u32,
    pub tenant_id: String,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened, as the producer stated it (defaults to acceptance time).
    pub timestamp: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
    /// The producer's payload, byte for byte.
    #[schemars(with = "serde_json::Value")]
    pub data: Box<RawValue>,
}

/// What a webhook request's body is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadShape {
    /// `{"id","type","timestamp","data"}`, compact, with `data` byte for byte (the default).
    #[default]
    Envelope,
    /// The event's `data` exactly as published, for receivers that expect their own shape.
    Raw,
}

/// How a webhook request is signed, so receivers written for other platforms work unchanged.
/// Every profile but `standard` uses HMAC-SHA256 keyed with the secret's text as shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SignatureProfile {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` (the default).
    #[default]
    Standard,
    /// Hex HMAC of the raw body in `header` (e.g. `X-Ruune-Signature`).
    HmacHex { header: String },
    /// `sha256=<hex HMAC of the raw body>` in `header` (e.g. `X-Hub-Signature-256`).
    HmacSha256Prefixed { header: String },
    /// `sha256=<hex HMAC of "{timestamp}.{body}">` in `{prefix}signature`, with
    /// `{prefix}timestamp`, `{prefix}event` and `{prefix}delivery` (e.g. prefix `x-ardela-`).
    Timestamped { prefix: String },
}

/// A tenant (`tenants` topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TenantRecord {
    pub schema_version: u32,
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The payload shape of the tenant's new webhooks unless they choose one.
    #[serde(default)]
    pub payload: PayloadShape,
    /// When an operator disabled the tenant: its keys stop working and its webhooks receive
    /// nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
    /// Replaces the deployment's publish rate limit for this tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_limit: Option<PublishLimit>,
}

/// How many events a tenant may publish: a token bucket of `events_per_second` (0: no limit)
/// saving up at most `burst` events (defaults to one second's worth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishLimit {
    pub events_per_second: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// An entry of a tenant's event-type catalogue (`event-types` topic, keyed by
/// [`EventTypeRecord::key`]). Entries are archived, never deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventTypeRecord {
    pub schema_version: u32,
    pub tenant_id: String,
    /// The event type, as events carry it in `type`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A JSON Schema that published events' `data` must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// An example `data`, for documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<serde_json::Value>,
    /// Grows with every change, so a compiled schema is cached per revision.
    #[serde(default)]
    pub revision: u64,
    /// When it was archived: no webhook may newly subscribe to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EventTypeRecord {
    /// The record's key in its topic: unique per tenant and name (names never hold `/`).
    pub fn key(tenant_id: &str, name: &str) -> String {
        format!("{tenant_id}/{name}")
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Scope {
    #[serde(rename = "events:publish")]
    EventsPublish,
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    #[serde(rename = "deliveries:read")]
    DeliveriesRead,
    #[serde(rename = "deliveries:replay")]
    DeliveriesReplay,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::EventsPublish,
        Scope::WebhooksManage,
        Scope::DeliveriesRead,
        Scope::DeliveriesReplay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EventsPublish => "events:publish",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::DeliveriesRead => "deliveries:read",
            Scope::DeliveriesReplay => "deliveries:replay",
        }
    }
}

/// A tenant API key (`keys` topic). Only the SHA-256 of the key is ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyRecord {
    pub schema_version: u32,
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// Lowercase hex SHA-256 of the whole key.
    pub key_hash: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    /// When the key was revoked; it authenticates nothing from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// How a webhook's deliveries are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Concurrent, in any order (the default).
    #[default]
    Unordered,
    /// One at a time, in order of acceptance; a task that exhausts its retries is dead-lettered
    /// and the next proceeds.
    Fifo,
}

/// A webhook's own retry policy: `max_attempts` attempts, waiting `initial_delay_secs` after
/// the first failure and `multiplier` times longer after each further one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryOverride {
    pub max_attempts: u32,
    pub initial_delay_secs: u64,
    #[serde(default = "RetryOverride::default_multiplier")]
    pub multiplier: f64,
}

impl RetryOverride {
    fn default_multiplier() -> f64 {
        2.0
    }
}

/// A secret replaced by a rotation, still signing alongside the new one until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PreviousSecret {
    /// `whsec_<base64>`.
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// A webhook subscription (`webhooks` topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookRecord {
    pub schema_version: u32,
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// Event-type filters: exact names, `*`, or `prefix.*`.
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Extra HTTP headers sent with every request to this webhook.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// An inactive webhook keeps its configuration and history but receives nothing.
    #[serde(default = "WebhookRecord::default_active")]
    pub active: bool,
    /// Signing secret, `whsec_<base64>`.
    pub secret: String,
    /// Secrets replaced by rotations, signing too until they expire.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_secrets: Vec<PreviousSecret>,
    #[serde(default)]
    pub signature: SignatureProfile,
    #[serde(default)]
    pub payload: PayloadShape,
    #[serde(default)]
    pub ordering: Ordering,
    /// Most requests per second to this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Replaces the deployment's retry schedule for this webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOverride>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookRecord {
    fn default_active() -> bool {
        true
    }

    /// The secrets that sign a request at `now`: the current one first, then those rotated out
    /// whose overlap has not ended.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &str> {
        std::iter::once(self.secret.as_str()).chain(
            self.previous_secrets
                .iter()
                .filter(move |previous| previous.expires_at > now)
                .map(|previous| previous.secret.as_str()),
        )
    }
}

/// Endpoint health (`webhook-health` topic), written by senders on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookHealthRecord {
    pub schema_version: u32,
    pub webhook_id: String,
    pub tenant_id: String,
    /// Since when every attempt has failed; `None` while healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// When the webhook was disabled for failing too long; it then receives nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One event to deliver to one webhook (`deliveries` topic, keyed by webhook id).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryTask {
    pub schema_version: u32,
    /// Stable for one event to one webhook; sent as `webhook-id`.
    pub delivery_id: String,
    pub tenant_id: String,
    pub webhook_id: String,
    /// Number of the attempt this task asks for, from 1.
    pub attempt: u32,
    /// When the attempt is due; absent means now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// Why the previous attempt failed (on retry tiers and dead letters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Asked for by the webhook's owner after the fact (a replay or a recovery).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
    pub event: EventRecord,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The endpoint answered 2xx.
    Succeeded,
    /// Any other answer, or none.
    Failed,
    /// Not attempted: the webhook no longer exists.
    Cancelled,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// No answer within the request timeout.
    Timeout,
    /// DNS, TCP or TLS failed before a response.
    Connection,
    /// The endpoint answered with a non-2xx status.
    HttpStatus,
    /// The webhook was deleted, deactivated or disabled before the attempt.
    WebhookDeleted,
    /// The endpoint's circuit was open: no request was sent.
    CircuitOpen,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connection => "connection",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::WebhookDeleted => "webhook_deleted",
            ErrorClass::CircuitOpen => "circuit_open",
        }
    }
}

/// One HTTP attempt (`attempts` topic, keyed by delivery id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AttemptRecord {
    pub schema_version: u32,
    pub attempt_id: String,
    pub delivery_id: String,
    pub tenant_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    /// When the event was accepted: the delivery's creation time in the ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_accepted_at: Option<DateTime<Utc>>,
    pub attempt_number: u32,
    pub url: String,
    pub attempted_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// The start of the response body (at most 4 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the next attempt is due; absent after success, cancellation, or the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Part of a replay asked for by the webhook's owner.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

impl AttemptRecord {
    /// The state of the delivery after this attempt.
    pub fn delivery_status(&self) -> &'static str {
        match (self.outcome, self.next_attempt_at) {
            (AttemptOutcome::Succeeded, _) => "succeeded",
            (AttemptOutcome::Cancelled, _) => "cancelled",
            (AttemptOutcome::Failed, Some(_)) => "retrying",
            (AttemptOutcome::Failed, None) => "dead",
        }
    }
}

/// The JSON Schema of each topic's value, by file name under `schemas/json/`.
pub fn topic_schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("events.schema.json", schemars::schema_for!(EventRecord)),
        ("tenants.schema.json", schemars::schema_for!(TenantRecord)),
        ("keys.schema.json", schemars::schema_for!(ApiKeyRecord)),
        ("webhooks.schema.json", schemars::schema_for!(WebhookRecord)),
        (
            "event-types.schema.json",
            schemars::schema_for!(EventTypeRecord),
        ),
        (
            "webhook-health.schema.json",
            schemars::schema_for!(WebhookHealthRecord),
        ),
        (
            "deliveries.schema.json",
            schemars::schema_for!(DeliveryTask),
        ),
        ("attempts.schema.json", schemars::schema_for!(AttemptRecord)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_data_is_carried_byte_for_byte() {
        let wire = r#"{"schema_version":1,"tenant_id":"ten_1","id":"evt_1","type":"a.b","timestamp":"2026-01-01T00:00:00Z","accepted_at":"2026-01-01T00:00:00Z","data":{ "z": 1,  "a": [1.50, 2e3] }}"#;
        let record: EventRecord = serde_json::from_str(wire).unwrap();
        assert_eq!(record.data.get(), r#"{ "z": 1,  "a": [1.50, 2e3] }"#);
        let again = serde_json::to_string(&record).unwrap();
        assert!(again.contains(r#""data":{ "z": 1,  "a": [1.50, 2e3] }"#));
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let wire = r#"{"schema_version":2,"id":"ten_1","name":"acme","created_at":"2026-01-01T00:00:00Z","plan":"gold"}"#;
        let record: TenantRecord = serde_json::from_str(wire).unwrap();
        assert_eq!(record.name, "acme");
    }

    #[test]
    fn webhooks_written_before_the_lifecycle_fields_decode_as_active() {
        let wire = r#"{"schema_version":1,"id":"wh_1","tenant_id":"ten_1","url":"https://example.com/","events":["*"],"secret":"whsec_x","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;
        let record: WebhookRecord = serde_json::from_str(wire).unwrap();
        assert!(record.active);
        assert!(record.headers.is_empty() && record.previous_secrets.is_empty());
    }

    #[test]
    fn rotated_secrets_sign_until_their_overlap_ends() {
        let wire = r#"{"schema_version":1,"id":"wh_1","tenant_id":"ten_1","url":"https://example.com/","events":["*"],"secret":"whsec_new","previous_secrets":[{"secret":"whsec_old","expires_at":"2026-01-02T00:00:00Z"}],"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;
        let record: WebhookRecord = serde_json::from_str(wire).unwrap();
        let during: DateTime<Utc> = "2026-01-01T12:00:00Z".parse().unwrap();
        let after: DateTime<Utc> = "2026-01-02T00:00:00Z".parse().unwrap();
        assert_eq!(
            record.signing_secrets(during).collect::<Vec<_>>(),
            ["whsec_new", "whsec_old"]
        );
        assert_eq!(
            record.signing_secrets(after).collect::<Vec<_>>(),
            ["whsec_new"]
        );
    }

    #[test]
    fn tenants_and_event_types_written_before_their_newer_fields_decode() {
        let wire = r#"{"schema_version":1,"id":"ten_1","name":"acme","created_at":"2026-01-01T00:00:00Z"}"#;
        let tenant: TenantRecord = serde_json::from_str(wire).unwrap();
        assert_eq!(tenant.publish_limit, None);
        let wire = r#"{"schema_version":1,"tenant_id":"ten_1","name":"a.b","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;
        let event_type: EventTypeRecord = serde_json::from_str(wire).unwrap();
        assert_eq!((event_type.revision, event_type.schema), (0, None));
        assert_eq!(EventTypeRecord::key("ten_1", "a.b"), "ten_1/a.b");
    }

    #[test]
    fn scopes_use_their_public_names() {
        for scope in Scope::ALL {
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
        }
    }
}
