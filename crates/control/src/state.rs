use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use hookline_domain::EventFilters;
use hookline_schemas::{
    ApiKeyRecord, EventTypeRecord, Scope, TenantRecord, TopicNames, WebhookHealthRecord,
    WebhookRecord,
};
use sha2::{Digest, Sha256};

use crate::groups::IdGroups;
use crate::webhooks::Webhooks;

/// Who is calling: a tenant, with the scopes of the key it presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub key_id: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// The lowercase hex SHA-256 of an API key: the only form in which keys are stored.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Control-plane state built from the compacted topics' records.
///
/// Indexed so that no lookup reads the records of every tenant: tenants by id and in id order
/// (a page of them starts where the previous ended), keys by hash, by id and by tenant,
/// webhooks by id and by tenant and event-type filter ([`Webhooks`]). Only
/// `webhooks_by_status` scans.
#[derive(Debug, Default)]
pub struct ControlState {
    tenants: HashMap<String, TenantRecord>,
    /// The ids of `tenants`, for pages in id order; lookups stay O(1) by `tenants`.
    tenant_ids: BTreeSet<String>,
    keys_by_hash: HashMap<String, ApiKeyRecord>,
    key_hash_by_id: HashMap<String, String>,
    key_ids_by_tenant: IdGroups,
    webhooks: Webhooks,
    health: HashMap<String, WebhookHealthRecord>,
    /// Each tenant's catalogue, by name.
    event_types: HashMap<String, BTreeMap<String, EventTypeRecord>>,
}

/// A webhook's status as owners see it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Active,
    /// Deactivated by its owner: configuration and history kept, nothing delivered.
    Inactive,
    /// Its recent attempts all failed; it still receives deliveries.
    Failing,
    /// It failed for too long, or its tenant is disabled, and it receives nothing.
    Disabled,
}

impl WebhookStatus {
    pub const ALL: [WebhookStatus; 4] = [
        WebhookStatus::Active,
        WebhookStatus::Inactive,
        WebhookStatus::Failing,
        WebhookStatus::Disabled,
    ];

    /// The name owners see in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Active => "active",
            WebhookStatus::Inactive => "inactive",
            WebhookStatus::Failing => "failing",
            WebhookStatus::Disabled => "disabled",
        }
    }

    /// Whether tasks for a webhook in this status are emitted and attempted.
    pub fn receives_deliveries(self) -> bool {
        matches!(self, WebhookStatus::Active | WebhookStatus::Failing)
    }
}

/// Which compacted topic a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlTopic {
    Tenants,
    Keys,
    Webhooks,
    WebhookHealth,
    EventTypes,
}

impl ControlTopic {
    pub fn of(names: &TopicNames, topic: &str) -> Option<Self> {
        if topic == names.tenants() {
            Some(Self::Tenants)
        } else if topic == names.keys() {
            Some(Self::Keys)
        } else if topic == names.webhooks() {
            Some(Self::Webhooks)
        } else if topic == names.webhook_health() {
            Some(Self::WebhookHealth)
        } else if topic == names.event_types() {
            Some(Self::EventTypes)
        } else {
            None
        }
    }
}

impl ControlState {
    /// Applies one record; `value` is `None` for a tombstone. Undecodable records are skipped
    /// (and reported) so one bad record never stops the view.
    pub fn apply(&mut self, topic: ControlTopic, key: &str, value: Option<&[u8]>) {
        let Some(value) = value else {
            self.remove(topic, key);
            return;
        };
        let outcome = match topic {
            ControlTopic::Tenants => serde_json::from_slice(value).map(|t| self.put_tenant(t)),
            ControlTopic::Keys => serde_json::from_slice(value).map(|k| self.put_key(k)),
            ControlTopic::Webhooks => serde_json::from_slice(value).map(|w| self.put_webhook(w)),
            ControlTopic::WebhookHealth => {
                serde_json::from_slice(value).map(|h| self.put_health(h))
            }
            ControlTopic::EventTypes => {
                serde_json::from_slice(value).map(|e| self.put_event_type(e))
            }
        };
        if let Err(err) = outcome {
            tracing::error!(?topic, key, error = %err, "skipping undecodable control record");
        }
    }

    fn remove(&mut self, topic: ControlTopic, key: &str) {
        match topic {
            ControlTopic::Tenants => {
                self.tenants.remove(key);
                self.tenant_ids.remove(key);
            }
            ControlTopic::Keys => self.remove_key(key),
            ControlTopic::Webhooks => {
                self.webhooks.remove(key);
            }
            ControlTopic::WebhookHealth => {
                self.health.remove(key);
            }
            ControlTopic::EventTypes => {
                if let Some((tenant_id, name)) = key.split_once('/') {
                    if let Some(catalogue) = self.event_types.get_mut(tenant_id) {
                        catalogue.remove(name);
                    }
                }
            }
        }
    }

    fn put_tenant(&mut self, tenant: TenantRecord) {
        self.tenant_ids.insert(tenant.id.clone());
        self.tenants.insert(tenant.id.clone(), tenant);
    }

    fn put_key(&mut self, key: ApiKeyRecord) {
        self.remove_key(&key.id);
        self.key_hash_by_id
            .insert(key.id.clone(), key.key_hash.clone());
        self.key_ids_by_tenant.insert(&key.tenant_id, &key.id);
        self.keys_by_hash.insert(key.key_hash.clone(), key);
    }

    fn remove_key(&mut self, id: &str) {
        let Some(hash) = self.key_hash_by_id.remove(id) else {
            return;
        };
        if let Some(key) = self.keys_by_hash.remove(&hash) {
            self.key_ids_by_tenant.remove(&key.tenant_id, id);
        }
    }

    fn put_webhook(&mut self, record: WebhookRecord) {
        let filters = match EventFilters::parse(&record.events) {
            Ok(filters) => filters,
            Err(err) => {
                tracing::error!(webhook_id = %record.id, error = %err, "skipping webhook with invalid filters");
                return;
            }
        };
        self.webhooks.put(record, filters);
    }

    fn put_health(&mut self, health: WebhookHealthRecord) {
        self.health.insert(health.webhook_id.clone(), health);
    }

    fn put_event_type(&mut self, record: EventTypeRecord) {
        self.event_types
            .entry(record.tenant_id.clone())
            .or_default()
            .insert(record.name.clone(), record);
    }

    /// One entry of the tenant's event-type catalogue, archived or not.
    pub fn event_type(&self, tenant_id: &str, name: &str) -> Option<&EventTypeRecord> {
        self.event_types.get(tenant_id)?.get(name)
    }

    /// The tenant's event-type catalogue, archived entries included, in name order.
    pub fn event_types_of(&self, tenant_id: &str) -> impl Iterator<Item = &EventTypeRecord> {
        self.event_types
            .get(tenant_id)
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    /// The last health record of a webhook, if any was written.
    pub fn health(&self, webhook_id: &str) -> Option<&WebhookHealthRecord> {
        self.health.get(webhook_id)
    }

    pub fn status(&self, webhook_id: &str) -> WebhookStatus {
        if let Some(webhook) = self.webhooks.get(webhook_id) {
            if !webhook.active {
                return WebhookStatus::Inactive;
            }
            if self.tenant_disabled(&webhook.tenant_id) {
                return WebhookStatus::Disabled;
            }
        }
        match self.health.get(webhook_id) {
            Some(health) if health.disabled_at.is_some() => WebhookStatus::Disabled,
            Some(health) if health.failing_since.is_some() => WebhookStatus::Failing,
            _ => WebhookStatus::Active,
        }
    }

    /// How many webhooks are in each status, every status listed (in [`WebhookStatus::ALL`]
    /// order), across all tenants.
    ///
    /// A scan of every webhook: it is read only when `/metrics` is scraped (the
    /// `hookline_webhooks` gauge), never per event or per request.
    pub fn webhooks_by_status(&self) -> [(WebhookStatus, usize); 4] {
        let mut counts = WebhookStatus::ALL.map(|status| (status, 0));
        for webhook in self.webhooks.all() {
            let status = self.status(&webhook.id);
            if let Some((_, count)) = counts.iter_mut().find(|(s, _)| *s == status) {
                *count += 1;
            }
        }
        counts
    }

    pub fn tenant(&self, id: &str) -> Option<&TenantRecord> {
        self.tenants.get(id)
    }

    fn tenant_disabled(&self, id: &str) -> bool {
        self.tenants
            .get(id)
            .is_some_and(|tenant| tenant.disabled_at.is_some())
    }

    /// The tenants after the one with id `cursor` (from the first without one), oldest first
    /// (ids are time-ordered): reading a page reads only the tenants on it.
    pub fn tenants_after(&self, cursor: Option<&str>) -> impl Iterator<Item = &TenantRecord> {
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        self.tenant_ids
            .range::<str, _>((start, Bound::Unbounded))
            .filter_map(|id| self.tenants.get(id))
    }

    /// The tenant's API keys, revoked ones included, oldest first.
    pub fn keys_of(&self, tenant_id: &str) -> impl Iterator<Item = &ApiKeyRecord> {
        self.key_ids_by_tenant
            .get(tenant_id)
            .filter_map(move |key_id| self.key_by_id(key_id))
    }

    /// One API key, only if it belongs to `tenant_id`.
    pub fn key(&self, tenant_id: &str, key_id: &str) -> Option<&ApiKeyRecord> {
        self.key_by_id(key_id)
            .filter(|key| key.tenant_id == tenant_id)
    }

    fn key_by_id(&self, key_id: &str) -> Option<&ApiKeyRecord> {
        let hash = self.key_hash_by_id.get(key_id)?;
        self.keys_by_hash.get(hash)
    }

    /// The principal of a presented API key, if the key is not revoked and its tenant exists
    /// and is not disabled.
    pub fn authenticate(&self, api_key: &str) -> Option<Principal> {
        let key = self.keys_by_hash.get(&hash_api_key(api_key))?;
        if key.revoked_at.is_some() {
            return None;
        }
        let tenant = self.tenants.get(&key.tenant_id)?;
        if tenant.disabled_at.is_some() {
            return None;
        }
        Some(Principal {
            tenant_id: key.tenant_id.clone(),
            key_id: key.id.clone(),
            scopes: key.scopes.clone(),
        })
    }

    /// One webhook, only if it belongs to `tenant_id`.
    pub fn webhook(&self, tenant_id: &str, id: &str) -> Option<&WebhookRecord> {
        self.shared_webhook(tenant_id, id).map(|record| &**record)
    }

    /// [`Self::webhook`], as a handle that outlives the read lock without copying the record.
    pub fn shared_webhook(&self, tenant_id: &str, id: &str) -> Option<&Arc<WebhookRecord>> {
        self.webhooks
            .get(id)
            .filter(|record| record.tenant_id == tenant_id)
    }

    /// The tenant's webhooks, oldest first (ids are time-ordered, so this is id order too).
    pub fn webhooks_of(&self, tenant_id: &str) -> impl Iterator<Item = &WebhookRecord> {
        self.webhooks.of_tenant(tenant_id)
    }

    /// The tenant's webhooks subscribed to `event_type` that receive deliveries (active, not
    /// disabled, tenant not disabled), in id order. Reads only the tenant's webhooks whose
    /// filters match the type, however many webhooks other tenants have.
    pub fn subscribers(&self, tenant_id: &str, event_type: &str) -> Vec<&WebhookRecord> {
        self.webhooks
            .subscribed(tenant_id, event_type)
            .filter(|record| self.status(&record.id).receives_deliveries())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn tenant(id: &str) -> TenantRecord {
        TenantRecord {
            schema_version: 1,
            id: id.into(),
            name: id.into(),
            created_at: now(),
            payload: Default::default(),
            disabled_at: None,
            publish_limit: None,
        }
    }

    fn key(id: &str, tenant_id: &str, secret: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            schema_version: 1,
            id: id.into(),
            tenant_id: tenant_id.into(),
            name: id.into(),
            key_hash: hash_api_key(secret),
            scopes: vec![Scope::EventsPublish],
            created_at: now(),
            revoked_at: None,
        }
    }

    fn webhook(id: &str, tenant_id: &str, events: &[&str]) -> WebhookRecord {
        WebhookRecord {
            schema_version: 1,
            id: id.into(),
            tenant_id: tenant_id.into(),
            url: "https://example.com/".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            name: None,
            description: None,
            metadata: Default::default(),
            headers: Default::default(),
            active: true,
            secret: "whsec_x".into(),
            previous_secrets: Vec::new(),
            signature: Default::default(),
            payload: Default::default(),
            ordering: Default::default(),
            rate_limit: None,
            retry: None,
            created_at: now(),
            updated_at: now(),
        }
    }

    #[test]
    fn keys_authenticate_only_while_they_and_their_tenant_exist() {
        let mut state = ControlState::default();
        state.put_key(key("key_1", "ten_1", "secret-1"));
        assert_eq!(state.authenticate("secret-1"), None, "tenant unknown yet");
        state.put_tenant(tenant("ten_1"));
        let principal = state.authenticate("secret-1").unwrap();
        assert_eq!(principal.tenant_id, "ten_1");
        assert!(principal.has_scope(Scope::EventsPublish));
        assert!(!principal.has_scope(Scope::WebhooksManage));
        assert_eq!(state.authenticate("secret-2"), None);
        state.apply(ControlTopic::Keys, "key_1", None);
        assert_eq!(state.authenticate("secret-1"), None);
    }

    #[test]
    fn webhooks_are_matched_and_scoped_to_their_tenant() {
        let mut state = ControlState::default();
        state.put_webhook(webhook("wh_2", "ten_1", &["invoice.paid", "user.created"]));
        state.put_webhook(webhook("wh_1", "ten_1", &["invoice.*"]));
        state.put_webhook(webhook("wh_3", "ten_2", &["*"]));
        let ids: Vec<_> = state
            .subscribers("ten_1", "invoice.paid")
            .into_iter()
            .map(|w| w.id.as_str())
            .collect();
        assert_eq!(ids, ["wh_1", "wh_2"], "each once, in id order");
        assert!(state.subscribers("ten_1", "order.created").is_empty());
        assert!(state.webhook("ten_2", "wh_1").is_none());
        assert_eq!(state.webhooks_of("ten_2").count(), 1);
        state.apply(ControlTopic::Webhooks, "wh_1", None);
        assert_eq!(state.subscribers("ten_1", "invoice.paid").len(), 1);
    }

    #[test]
    fn disabled_webhooks_get_no_deliveries_and_status_follows_health() {
        let mut state = ControlState::default();
        state.put_webhook(webhook("wh_1", "ten_1", &["*"]));
        assert_eq!(state.status("wh_1"), WebhookStatus::Active);
        let mut health = WebhookHealthRecord {
            schema_version: 1,
            webhook_id: "wh_1".into(),
            tenant_id: "ten_1".into(),
            failing_since: Some(now()),
            disabled_at: None,
            updated_at: now(),
        };
        state.put_health(health.clone());
        assert_eq!(state.status("wh_1"), WebhookStatus::Failing);
        assert_eq!(state.subscribers("ten_1", "a.b").len(), 1);
        health.disabled_at = Some(now());
        state.put_health(health);
        assert_eq!(state.status("wh_1"), WebhookStatus::Disabled);
        assert!(state.subscribers("ten_1", "a.b").is_empty());
        state.apply(ControlTopic::WebhookHealth, "wh_1", None);
        assert_eq!(state.status("wh_1"), WebhookStatus::Active);
    }

    #[test]
    fn revoked_keys_and_keys_of_disabled_tenants_authenticate_nothing() {
        let mut state = ControlState::default();
        state.put_tenant(tenant("ten_1"));
        state.put_key(key("key_1", "ten_1", "secret-1"));
        state.put_key(key("key_2", "ten_1", "secret-2"));
        let mut revoked = key("key_1", "ten_1", "secret-1");
        revoked.revoked_at = Some(now());
        state.put_key(revoked);
        assert_eq!(state.authenticate("secret-1"), None);
        assert!(state.authenticate("secret-2").is_some());
        assert_eq!(
            state.keys_of("ten_1").count(),
            2,
            "revoked keys stay listed"
        );
        assert!(state.key("ten_2", "key_2").is_none());
        let mut disabled = tenant("ten_1");
        disabled.disabled_at = Some(now());
        state.put_tenant(disabled);
        assert_eq!(state.authenticate("secret-2"), None);
    }

    #[test]
    fn inactive_webhooks_and_webhooks_of_disabled_tenants_get_no_deliveries() {
        let mut state = ControlState::default();
        state.put_tenant(tenant("ten_1"));
        state.put_webhook(webhook("wh_1", "ten_1", &["*"]));
        let mut inactive = webhook("wh_2", "ten_1", &["*"]);
        inactive.active = false;
        state.put_webhook(inactive);
        assert_eq!(state.status("wh_2"), WebhookStatus::Inactive);
        let ids: Vec<_> = state
            .subscribers("ten_1", "a.b")
            .into_iter()
            .map(|w| w.id.as_str())
            .collect();
        assert_eq!(ids, ["wh_1"]);
        let mut disabled = tenant("ten_1");
        disabled.disabled_at = Some(now());
        state.put_tenant(disabled);
        assert_eq!(state.status("wh_1"), WebhookStatus::Disabled);
        assert!(state.subscribers("ten_1", "a.b").is_empty());
    }

    #[test]
    fn webhooks_are_counted_by_status_and_deleted_ones_not_at_all() {
        let mut state = ControlState::default();
        assert_eq!(
            state.webhooks_by_status(),
            WebhookStatus::ALL.map(|status| (status, 0))
        );
        state.put_tenant(tenant("ten_1"));
        for id in ["wh_1", "wh_2", "wh_3"] {
            state.put_webhook(webhook(id, "ten_1", &["*"]));
        }
        let mut inactive = webhook("wh_4", "ten_1", &["*"]);
        inactive.active = false;
        state.put_webhook(inactive);
        let mut disabled_tenant = tenant("ten_2");
        disabled_tenant.disabled_at = Some(now());
        state.put_tenant(disabled_tenant);
        state.put_webhook(webhook("wh_5", "ten_2", &["*"]));
        state.put_health(WebhookHealthRecord {
            schema_version: 1,
            webhook_id: "wh_1".into(),
            tenant_id: "ten_1".into(),
            failing_since: Some(now()),
            disabled_at: None,
            updated_at: now(),
        });
        // Health of a deleted webhook outlives it until its tombstone: not counted.
        state.put_health(WebhookHealthRecord {
            schema_version: 1,
            webhook_id: "wh_gone".into(),
            tenant_id: "ten_1".into(),
            failing_since: Some(now()),
            disabled_at: Some(now()),
            updated_at: now(),
        });
        assert_eq!(
            state.webhooks_by_status(),
            [
                (WebhookStatus::Active, 2),
                (WebhookStatus::Inactive, 1),
                (WebhookStatus::Failing, 1),
                (WebhookStatus::Disabled, 1),
            ]
        );
        assert_eq!(
            WebhookStatus::ALL.map(|status| serde_json::to_value(status).unwrap()),
            WebhookStatus::ALL.map(|status| serde_json::Value::from(status.as_str())),
            "metric labels are the API's names"
        );
    }

    #[test]
    fn event_types_are_kept_per_tenant_in_name_order() {
        let mut state = ControlState::default();
        for (tenant_id, name) in [("ten_1", "b.x"), ("ten_1", "a.x"), ("ten_2", "c.x")] {
            let record = EventTypeRecord {
                schema_version: 1,
                tenant_id: tenant_id.into(),
                name: name.into(),
                description: String::new(),
                schema: None,
                example: None,
                revision: 0,
                archived_at: None,
                created_at: now(),
                updated_at: now(),
            };
            let value = serde_json::to_vec(&record).unwrap();
            let key = EventTypeRecord::key(tenant_id, name);
            state.apply(ControlTopic::EventTypes, &key, Some(&value));
        }
        let names: Vec<_> = state.event_types_of("ten_1").map(|e| &e.name).collect();
        assert_eq!(names, ["a.x", "b.x"]);
        assert!(state.event_type("ten_2", "a.x").is_none());
        state.apply(ControlTopic::EventTypes, "ten_1/a.x", None);
        assert!(state.event_type("ten_1", "a.x").is_none());
        assert_eq!(state.event_types_of("ten_1").count(), 1);
        assert_eq!(state.event_types_of("ten_3").count(), 0);
    }

    #[test]
    fn undecodable_records_are_skipped() {
        let mut state = ControlState::default();
        state.apply(ControlTopic::Tenants, "ten_1", Some(b"not json"));
        assert!(state.tenant("ten_1").is_none());
        let valid = serde_json::to_vec(&tenant("ten_1")).unwrap();
        state.apply(ControlTopic::Tenants, "ten_1", Some(&valid));
        assert!(state.tenant("ten_1").is_some());
    }

    fn ids<'a>(webhooks: impl IntoIterator<Item = &'a WebhookRecord>) -> Vec<&'a str> {
        webhooks.into_iter().map(|w| w.id.as_str()).collect()
    }

    #[test]
    fn subscribers_match_by_name_prefix_and_star_each_once_in_id_order() {
        let mut state = ControlState::default();
        state.put_webhook(webhook("wh_4", "ten_1", &["a.b.*"]));
        state.put_webhook(webhook("wh_3", "ten_1", &["a.*", "a.b.c", "*"]));
        state.put_webhook(webhook("wh_2", "ten_1", &["a.b.c"]));
        state.put_webhook(webhook("wh_1", "ten_1", &["a.*", "a.*"]));
        assert_eq!(
            ids(state.subscribers("ten_1", "a.b.c")),
            ["wh_1", "wh_2", "wh_3", "wh_4"]
        );
        assert_eq!(
            ids(state.subscribers("ten_1", "a.b.c.d")),
            ["wh_1", "wh_3", "wh_4"]
        );
        assert_eq!(ids(state.subscribers("ten_1", "a.bc.d")), ["wh_1", "wh_3"]);
        assert_eq!(ids(state.subscribers("ten_1", "a.b")), ["wh_1", "wh_3"]);
        assert_eq!(
            ids(state.subscribers("ten_1", "a")),
            ["wh_3"],
            "`a.*` needs a segment after `a`"
        );
        assert_eq!(ids(state.subscribers("ten_1", "ab.c")), ["wh_3"]);
        assert!(state.subscribers("ten_2", "a.b.c").is_empty());
    }

    #[test]
    fn a_changed_webhook_is_found_under_its_new_filters_and_tenant_only() {
        let mut state = ControlState::default();
        let put = |state: &mut ControlState, record: &WebhookRecord| {
            let value = serde_json::to_vec(record).unwrap();
            state.apply(ControlTopic::Webhooks, &record.id, Some(&value));
        };
        put(&mut state, &webhook("wh_1", "ten_1", &["invoice.*"]));
        put(&mut state, &webhook("wh_1", "ten_1", &["user.created"]));
        assert!(state.subscribers("ten_1", "invoice.paid").is_empty());
        assert_eq!(ids(state.subscribers("ten_1", "user.created")), ["wh_1"]);

        put(&mut state, &webhook("wh_1", "ten_1", &["user.*.x"]));
        assert_eq!(
            ids(state.subscribers("ten_1", "user.created")),
            ["wh_1"],
            "a record with invalid filters is skipped; the previous version stays"
        );

        put(&mut state, &webhook("wh_1", "ten_2", &["user.created"]));
        assert!(state.subscribers("ten_1", "user.created").is_empty());
        assert_eq!(state.webhooks_of("ten_1").count(), 0);
        assert_eq!(ids(state.subscribers("ten_2", "user.created")), ["wh_1"]);

        state.apply(ControlTopic::Webhooks, "wh_1", None);
        assert!(state.subscribers("ten_2", "user.created").is_empty());
        assert!(state.webhooks.is_empty(), "nothing stays filed");
    }

    #[test]
    fn tenants_are_listed_in_id_order_from_the_cursor() {
        let mut state = ControlState::default();
        for id in ["ten_3", "ten_1", "ten_2"] {
            state.put_tenant(tenant(id));
        }
        let after = |cursor| -> Vec<_> {
            state
                .tenants_after(cursor)
                .map(|tenant| tenant.id.as_str())
                .collect()
        };
        assert_eq!(after(None), ["ten_1", "ten_2", "ten_3"]);
        assert_eq!(after(Some("ten_1")), ["ten_2", "ten_3"]);
        assert_eq!(
            after(Some("ten_10")),
            ["ten_2", "ten_3"],
            "a cursor need not exist"
        );
        assert!(after(Some("ten_3")).is_empty());
    }

    #[test]
    fn keys_are_listed_under_their_current_tenant_in_id_order() {
        let mut state = ControlState::default();
        state.put_key(key("key_2", "ten_1", "secret-2"));
        state.put_key(key("key_1", "ten_1", "secret-1"));
        let listed = |state: &ControlState, tenant_id| -> Vec<String> {
            state.keys_of(tenant_id).map(|key| key.id.clone()).collect()
        };
        assert_eq!(listed(&state, "ten_1"), ["key_1", "key_2"]);
        state.put_key(key("key_1", "ten_2", "secret-1"));
        assert_eq!(listed(&state, "ten_1"), ["key_2"]);
        assert_eq!(listed(&state, "ten_2"), ["key_1"]);
        state.apply(ControlTopic::Keys, "key_2", None);
        assert!(listed(&state, "ten_1").is_empty());
        assert!(state.key("ten_1", "key_2").is_none());
    }

    /// One control record, on small pools of ids so that records collide.
    #[derive(Debug, Clone)]
    enum Change {
        Webhook {
            id: u8,
            tenant: u8,
            events: Vec<String>,
            active: bool,
        },
        DeleteWebhook(u8),
        Tenant {
            tenant: u8,
            disabled: bool,
        },
        DeleteTenant(u8),
        Health {
            webhook: u8,
            failing: bool,
            disabled: bool,
        },
        DeleteHealth(u8),
        Key {
            id: u8,
            tenant: u8,
        },
        DeleteKey(u8),
    }

    const WEBHOOKS: u8 = 6;
    const TENANTS: u8 = 3;
    const KEYS: u8 = 4;

    impl Change {
        fn apply(&self, state: &mut ControlState) {
            let (topic, key, value) = match self {
                Change::Webhook {
                    id,
                    tenant,
                    events,
                    active,
                } => {
                    let events: Vec<&str> = events.iter().map(String::as_str).collect();
                    let mut record =
                        webhook(&format!("wh_{id}"), &format!("ten_{tenant}"), &events);
                    record.active = *active;
                    let value = serde_json::to_vec(&record).unwrap();
                    (ControlTopic::Webhooks, record.id, Some(value))
                }
                Change::DeleteWebhook(id) => (ControlTopic::Webhooks, format!("wh_{id}"), None),
                Change::Tenant {
                    tenant: id,
                    disabled,
                } => {
                    let mut record = tenant(&format!("ten_{id}"));
                    record.disabled_at = disabled.then(now);
                    let value = serde_json::to_vec(&record).unwrap();
                    (ControlTopic::Tenants, record.id, Some(value))
                }
                Change::DeleteTenant(id) => (ControlTopic::Tenants, format!("ten_{id}"), None),
                Change::Health {
                    webhook,
                    failing,
                    disabled,
                } => {
                    let record = WebhookHealthRecord {
                        schema_version: 1,
                        webhook_id: format!("wh_{webhook}"),
                        tenant_id: "ten_0".into(),
                        failing_since: failing.then(now),
                        disabled_at: disabled.then(now),
                        updated_at: now(),
                    };
                    let value = serde_json::to_vec(&record).unwrap();
                    (ControlTopic::WebhookHealth, record.webhook_id, Some(value))
                }
                Change::DeleteHealth(webhook) => {
                    (ControlTopic::WebhookHealth, format!("wh_{webhook}"), None)
                }
                Change::Key { id, tenant } => {
                    let record = key(
                        &format!("key_{id}"),
                        &format!("ten_{tenant}"),
                        &format!("secret-{id}"),
                    );
                    let value = serde_json::to_vec(&record).unwrap();
                    (ControlTopic::Keys, record.id, Some(value))
                }
                Change::DeleteKey(id) => (ControlTopic::Keys, format!("key_{id}"), None),
            };
            state.apply(topic, &key, value.as_deref());
        }
    }

    const SEGMENTS: [&str; 3] = ["a", "b", "ab"];

    fn event_type() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(&SEGMENTS[..]), 1..=3)
            .prop_map(|segments| segments.join("."))
    }

    fn filter() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => event_type(),
            4 => event_type().prop_map(|prefix| format!("{prefix}.*")),
            1 => Just("*".to_owned()),
            // Invalid: the whole record is skipped.
            1 => Just("a.*.b".to_owned()),
        ]
    }

    fn change() -> impl Strategy<Value = Change> {
        let filters = proptest::collection::vec(filter(), 1..4);
        prop_oneof![
            6 => (0..WEBHOOKS, 0..TENANTS, filters, any::<bool>()).prop_map(
                |(id, tenant, events, active)| Change::Webhook { id, tenant, events, active }
            ),
            2 => (0..WEBHOOKS).prop_map(Change::DeleteWebhook),
            2 => (0..TENANTS, any::<bool>())
                .prop_map(|(tenant, disabled)| Change::Tenant { tenant, disabled }),
            1 => (0..TENANTS).prop_map(Change::DeleteTenant),
            2 => (0..WEBHOOKS, any::<bool>(), any::<bool>()).prop_map(
                |(webhook, failing, disabled)| Change::Health { webhook, failing, disabled }
            ),
            1 => (0..WEBHOOKS).prop_map(Change::DeleteHealth),
            2 => (0..KEYS, 0..TENANTS).prop_map(|(id, tenant)| Change::Key { id, tenant }),
            1 => (0..KEYS).prop_map(Change::DeleteKey),
        ]
    }

    /// Every event type of one to three segments of [`SEGMENTS`], and one of four.
    fn probe_types() -> Vec<String> {
        let mut types: Vec<String> = SEGMENTS.iter().map(|s| s.to_string()).collect();
        for _ in 1..3 {
            let longer: Vec<String> = types
                .iter()
                .flat_map(|t| SEGMENTS.iter().map(move |s| format!("{t}.{s}")))
                .collect();
            types.extend(longer);
        }
        types.push("a.b.ab.a".into());
        types
    }

    /// What `subscribers` answered before the index: every webhook of every tenant, filtered.
    fn subscribers_by_scan<'a>(
        state: &'a ControlState,
        tenant_id: &str,
        event_type: &str,
    ) -> Vec<&'a str> {
        let mut ids: Vec<&str> = state
            .webhooks
            .all()
            .filter(|record| {
                record.tenant_id == tenant_id
                    && EventFilters::parse(&record.events)
                        .unwrap()
                        .matches(event_type)
                    && state.status(&record.id).receives_deliveries()
            })
            .map(|record| record.id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Every indexed lookup against a scan of everything, for each tenant (`ten_3` never has
    /// a record) and each of `types`.
    fn check_lookups_against_scans(
        state: &ControlState,
        types: &[String],
    ) -> Result<(), TestCaseError> {
        for tenant_id in (0..=TENANTS).map(|t| format!("ten_{t}")) {
            for event_type in types {
                prop_assert_eq!(
                    ids(state.subscribers(&tenant_id, event_type)),
                    subscribers_by_scan(state, &tenant_id, event_type),
                    "subscribers of {} to {}",
                    tenant_id,
                    event_type
                );
            }
            let mut webhooks = ids(state.webhooks.all().filter(|w| w.tenant_id == tenant_id));
            webhooks.sort_unstable();
            prop_assert_eq!(ids(state.webhooks_of(&tenant_id)), webhooks);
            let mut keys: Vec<&str> = state
                .keys_by_hash
                .values()
                .filter(|key| key.tenant_id == tenant_id)
                .map(|key| key.id.as_str())
                .collect();
            keys.sort_unstable();
            let listed: Vec<&str> = state
                .keys_of(&tenant_id)
                .map(|key| key.id.as_str())
                .collect();
            prop_assert_eq!(listed, keys);
        }
        let mut tenants: Vec<&str> = state.tenants.keys().map(String::as_str).collect();
        tenants.sort_unstable();
        let listed: Vec<&str> = state.tenants_after(None).map(|t| t.id.as_str()).collect();
        prop_assert_eq!(listed, tenants);
        Ok(())
    }

    proptest! {
        #[test]
        fn indexed_lookups_equal_a_scan_of_everything(
            changes in proptest::collection::vec(change(), 1..40)
        ) {
            let mut state = ControlState::default();
            let types = probe_types();
            for change in &changes {
                change.apply(&mut state);
                check_lookups_against_scans(&state, &types)?;
            }
            for id in 0..WEBHOOKS {
                Change::DeleteWebhook(id).apply(&mut state);
            }
            for id in 0..KEYS {
                Change::DeleteKey(id).apply(&mut state);
            }
            prop_assert!(state.webhooks.is_empty(), "deleted webhooks stay filed");
            prop_assert!(state.key_ids_by_tenant.is_empty(), "deleted keys stay filed");
        }
    }
}
