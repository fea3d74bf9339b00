//! The webhooks of every tenant, indexed so that a lookup reads only the webhooks of the tenant
//! it names, and finding an event's subscribers reads only the webhooks that match it.
//!
//! Per tenant, a webhook's id is filed under each filter it lists: `*` in one set, `prefix.*`
//! under its prefix (kept with the trailing dot, `invoice.`), an exact type under its name. The
//! subscribers of `a.b.c` are then the `*` set, the webhooks filed under the prefixes `a.` and
//! `a.b.`, and those filed under `a.b.c`: O(segments of the type + matches), however many
//! webhooks this or any other tenant has.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use hookline_domain::{EventFilter, EventFilters};
use hookline_schemas::WebhookRecord;

use crate::groups::IdGroups;

#[derive(Debug)]
struct Webhook {
    /// Shared with the tasks that deliver to it, so each holds it without a copy.
    record: Arc<WebhookRecord>,
    filters: EventFilters,
}

/// Every webhook by id, and each tenant's webhooks filed by filter.
///
/// Every id filed in `by_tenant` is a key of `by_id`, under the tenant and the filters of the
/// record stored there: `put` and `remove` are the only writers, and change both together.
#[derive(Debug, Default)]
pub(crate) struct Webhooks {
    by_id: HashMap<String, Webhook>,
    by_tenant: HashMap<String, TenantWebhooks>,
}

impl Webhooks {
    /// Stores a webhook, replacing the one with its id: a changed tenant or changed filters
    /// leave nothing filed under the old ones.
    pub(crate) fn put(&mut self, record: WebhookRecord, filters: EventFilters) {
        self.remove(&record.id);
        self.by_tenant
            .entry(record.tenant_id.clone())
            .or_default()
            .file(&record.id, &filters);
        let record = Arc::new(record);
        self.by_id
            .insert(record.id.clone(), Webhook { record, filters });
    }

    pub(crate) fn remove(&mut self, id: &str) {
        let Some(Webhook { record, filters }) = self.by_id.remove(id) else {
            return;
        };
        let Some(tenant) = self.by_tenant.get_mut(&record.tenant_id) else {
            return;
        };
        tenant.unfile(id, &filters);
        if tenant.is_empty() {
            self.by_tenant.remove(&record.tenant_id);
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Arc<WebhookRecord>> {
        self.by_id.get(id).map(|webhook| &webhook.record)
    }

    /// Every webhook of every tenant, in no particular order.
    pub(crate) fn all(&self) -> impl Iterator<Item = &WebhookRecord> {
        self.by_id.values().map(|webhook| &*webhook.record)
    }

    /// The tenant's webhooks in id order.
    pub(crate) fn of_tenant(&self, tenant_id: &str) -> impl Iterator<Item = &WebhookRecord> {
        self.by_tenant
            .get(tenant_id)
            .into_iter()
            .flat_map(|tenant| &tenant.ids)
            .map(move |id| self.filed(id))
    }

    /// The tenant's webhooks with a filter matching `event_type`, each once, in id order.
    pub(crate) fn subscribed(
        &self,
        tenant_id: &str,
        event_type: &str,
    ) -> impl Iterator<Item = &WebhookRecord> {
        self.by_tenant
            .get(tenant_id)
            .map(|tenant| tenant.subscribed(event_type))
            .unwrap_or_default()
            .into_iter()
            .map(move |id| self.filed(id))
    }

    fn filed(&self, id: &str) -> &WebhookRecord {
        &self.by_id[id].record
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.is_empty() && self.by_tenant.is_empty()
    }
}

/// One tenant's webhook ids, and the same ids filed by filter.
#[derive(Debug, Default)]
struct TenantWebhooks {
    ids: BTreeSet<String>,
    /// Subscribed with `*`.
    everything: BTreeSet<String>,
    /// Subscribed with `prefix.*`, by prefix with its trailing dot.
    by_prefix: IdGroups,
    /// Subscribed to an exact type, by type.
    by_name: IdGroups,
}

impl TenantWebhooks {
    fn file(&mut self, id: &str, filters: &EventFilters) {
        self.ids.insert(id.to_owned());
        for filter in filters.iter() {
            match filter {
                EventFilter::Any => {
                    self.everything.insert(id.to_owned());
                }
                EventFilter::Prefix(prefix) => self.by_prefix.insert(prefix, id),
                EventFilter::Exact(name) => self.by_name.insert(name, id),
            }
        }
    }

    /// Undoes `file(id, filters)`.
    fn unfile(&mut self, id: &str, filters: &EventFilters) {
        self.ids.remove(id);
        for filter in filters.iter() {
            match filter {
                EventFilter::Any => {
                    self.everything.remove(id);
                }
                EventFilter::Prefix(prefix) => self.by_prefix.remove(prefix, id),
                EventFilter::Exact(name) => self.by_name.remove(name, id),
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.everything.is_empty()
            && self.by_prefix.is_empty()
            && self.by_name.is_empty()
    }

    /// The ids with a filter matching `event_type`, each once, in id order. A `prefix.*`
    /// filter matches exactly when its prefix (trailing dot included) is the type up to one of
    /// the type's dots, so only those prefixes are looked up.
    fn subscribed<'a>(&'a self, event_type: &str) -> Vec<&'a str> {
        let prefixes = event_type
            .match_indices('.')
            .map(|(dot, _)| &event_type[..=dot]);
        let mut ids: Vec<&str> = self
            .everything
            .iter()
            .map(String::as_str)
            .chain(self.by_name.get(event_type))
            .chain(prefixes.flat_map(|prefix| self.by_prefix.get(prefix)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
