//! Fanout's join step in process, without Kafka: events per second turned into delivery tasks
//! (`ControlState::subscribers`, then `hookline_fanout::delivery_tasks`, what fanout does per
//! event) for one active tenant of 10 webhooks, with no other webhook in the state and with
//! `idle` webhooks of other tenants. The same events are also joined with the subscribers
//! found by a scan of every webhook, as `subscribers` found them before its index, so both
//! are measured in the same run.
//!
//! The states are built as the services build theirs: by applying `webhooks` (and `tenants`)
//! records. Rates are events per second of the joining thread's own CPU time (from
//! `/proc/thread-self/schedstat`), so whatever else the machine runs takes no share of them.
//! Each configuration is measured in rounds of one CPU second, the four configurations in turn,
//! and the median round is reported, so a busy moment of the machine (caches shared with
//! others) lands in one round of each rather than in one configuration.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hookline_control::{ControlState, ControlTopic};
use hookline_domain::idempotency::{IdempotencyKey, SeenIds};
use hookline_domain::EventFilters;
use hookline_schemas::{EventRecord, WebhookRecord};
use serde_json::{json, Value};

const ACTIVE_TENANT: &str = "ten_active";
const ACTIVE_WEBHOOKS: usize = 10;
const WEBHOOKS_PER_IDLE_TENANT: usize = 10;
const EVENT_TYPE: &str = "invoice.paid";
/// Filters of the webhooks, in turn: every one matches `EVENT_TYPE`, through each kind of
/// filter, and idle tenants' webhooks hold the same filters under their own tenant.
const FILTERS: [&[&str]; 4] = [
    &["*"],
    &["invoice.*"],
    &["invoice.paid"],
    &["customer.created", "invoice.paid", "invoice.refunded"],
];
const DELIVERIES_TOPIC: &str = "bench.deliveries";
/// Distinct events joined in turn.
const EVENTS: usize = 500;
const ROUND: Duration = Duration::from_secs(1);
const ROUNDS: usize = 7;

/// A state and the same webhooks as the scan before the index read them.
struct Webhooks {
    state: ControlState,
    scanned: HashMap<String, Scanned>,
}

struct Scanned {
    record: WebhookRecord,
    filters: EventFilters,
}

impl Webhooks {
    fn build(idle: usize) -> Result<Self> {
        let mut webhooks = Self {
            state: ControlState::default(),
            scanned: HashMap::new(),
        };
        webhooks.put_tenant(ACTIVE_TENANT)?;
        for n in 0..ACTIVE_WEBHOOKS {
            webhooks.put_webhook(&format!("wh_active_{n:02}"), ACTIVE_TENANT, n)?;
        }
        for n in 0..idle {
            let tenant_id = format!("ten_idle_{:05}", n / WEBHOOKS_PER_IDLE_TENANT);
            if n % WEBHOOKS_PER_IDLE_TENANT == 0 {
                webhooks.put_tenant(&tenant_id)?;
            }
            webhooks.put_webhook(&format!("wh_idle_{n:06}"), &tenant_id, n)?;
        }
        Ok(webhooks)
    }

    fn put_tenant(&mut self, id: &str) -> Result<()> {
        let record = json!({
            "schema_version": 1, "id": id, "name": id, "created_at": "2026-01-01T00:00:00Z",
        });
        self.state.apply(
            ControlTopic::Tenants,
            id,
            Some(&serde_json::to_vec(&record)?),
        );
        Ok(())
    }

    fn put_webhook(&mut self, id: &str, tenant_id: &str, n: usize) -> Result<()> {
        let value = serde_json::to_vec(&json!({
            "schema_version": 1, "id": id, "tenant_id": tenant_id,
            "url": format!("https://example.com/{id}"), "events": FILTERS[n % FILTERS.len()],
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }))?;
        self.state.apply(ControlTopic::Webhooks, id, Some(&value));
        let record: WebhookRecord = serde_json::from_slice(&value)?;
        let filters = EventFilters::parse(&record.events)?;
        self.scanned
            .insert(record.id.clone(), Scanned { record, filters });
        Ok(())
    }

    /// `ControlState::subscribers` before its index: every webhook of every tenant, filtered.
    fn subscribers_by_scan(&self, tenant_id: &str, event_type: &str) -> Vec<&WebhookRecord> {
        self.scanned
            .values()
            .filter(|webhook| {
                webhook.record.tenant_id == tenant_id
                    && webhook.filters.matches(event_type)
                    && self.state.status(&webhook.record.id).receives_deliveries()
            })
            .map(|webhook| &webhook.record)
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Lookup {
    Index,
    Scan,
}

/// CPU time the calling thread has run for.
fn thread_cpu_time() -> Result<Duration> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let nanos = schedstat
        .split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .with_context(|| format!("unexpected schedstat {schedstat:?}"))?;
    Ok(Duration::from_nanos(nanos))
}

/// Joins events for one round; events per second of this thread's CPU time.
fn round(webhooks: &Webhooks, lookup: Lookup, events: &[EventRecord]) -> Result<f64> {
    let started = thread_cpu_time()?;
    let mut joined = 0usize;
    while thread_cpu_time()? - started < ROUND {
        for event in events {
            let subscribers = match lookup {
                Lookup::Index => webhooks
                    .state
                    .subscribers(&event.tenant_id, &event.event_type),
                Lookup::Scan => webhooks.subscribers_by_scan(&event.tenant_id, &event.event_type),
            };
            let ids = subscribers.iter().map(|webhook| webhook.id.as_str());
            let tasks = hookline_fanout::delivery_tasks(DELIVERIES_TOPIC, event, ids)?;
            if tasks.len() != ACTIVE_WEBHOOKS {
                bail!("an event was joined with {} webhooks", tasks.len());
            }
            std::hint::black_box(tasks);
        }
        joined += events.len();
    }
    Ok(joined as f64 / (thread_cpu_time()? - started).as_secs_f64())
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The workload's rows: events/s joined with 0 and with `idle` idle webhooks, indexed and
/// scanned.
pub fn fanout_join(idle: usize) -> Result<Vec<String>> {
    let started = Instant::now();
    let alone = Webhooks::build(0)?;
    let crowded = Webhooks::build(idle)?;
    eprintln!(
        "fanout-join: states of {ACTIVE_WEBHOOKS} and {} webhooks built in {:.1} s",
        ACTIVE_WEBHOOKS + idle,
        started.elapsed().as_secs_f64()
    );
    let events = (0..EVENTS)
        .map(|n| {
            let event: Value = json!({
                "schema_version": 1, "tenant_id": ACTIVE_TENANT, "id": format!("evt_{n}"),
                "type": EVENT_TYPE, "timestamp": "2026-01-01T00:00:00Z",
                "accepted_at": "2026-01-01T00:00:00Z", "data": {"phase": "bulk", "n": n},
            });
            serde_json::from_value(event)
        })
        .collect::<Result<Vec<EventRecord>, _>>()?;

    let configurations = [
        (Lookup::Index, &alone),
        (Lookup::Index, &crowded),
        (Lookup::Scan, &alone),
        (Lookup::Scan, &crowded),
    ];
    let mut rates: [Vec<f64>; 4] = Default::default();
    for _ in 0..ROUNDS {
        for ((lookup, webhooks), rates) in configurations.iter().zip(&mut rates) {
            rates.push(round(webhooks, *lookup, &events)?);
        }
    }
    let [index_alone, index_crowded, scan_alone, scan_crowded] = rates.map(median);
    let label = format!(
        "fanout join in process (subscribers + delivery tasks), 1 tenant × {ACTIVE_WEBHOOKS} webhooks, with 0 / {idle} idle webhooks in other tenants, events per CPU second, median of {ROUNDS} rounds"
    );
    Ok(vec![
        format!(
            "| {label}, indexed | {index_alone:.0} / {index_crowded:.0} events/s ({:.0} %) |",
            100.0 * index_crowded / index_alone
        ),
        format!(
            "| {label}, scan of every webhook (before the index) | {scan_alone:.0} / {scan_crowded:.0} events/s ({:.1} %) |",
            100.0 * scan_crowded / scan_alone
        ),
        idempotency_keys()?,
    ])
}

/// Ids judged (hash, lookup, insert) into one partition's [`SeenIds`]: CPU per id, and the
/// resident memory the held ids take.
fn idempotency_keys() -> Result<String> {
    const IDS: usize = 2_000_000;
    let ids: Vec<String> = (0..IDS).map(|n| format!("order_{n:012}")).collect();
    let resident_before = resident_bytes()?;
    let started = thread_cpu_time()?;
    let mut seen = SeenIds::new(24 * 3_600_000);
    for (n, id) in ids.iter().enumerate() {
        let accepted_ms = 1_767_225_600_000 + n as i64;
        seen.accept(IdempotencyKey::of(ACTIVE_TENANT, id), accepted_ms);
    }
    let cpu = thread_cpu_time()? - started;
    let per_id = (resident_bytes()? - resident_before) as f64 / IDS as f64;
    Ok(format!(
        "| idempotency keys in process: {IDS} producer-chosen ids judged into one partition's memory | {:.2} µs of CPU and {per_id:.0} bytes resident per id |",
        cpu.as_secs_f64() * 1e6 / IDS as f64
    ))
}

/// The process's resident memory, from `/proc/self/statm` (pages of 4 KiB).
fn resident_bytes() -> Result<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .with_context(|| format!("unexpected statm {statm:?}"))?;
    Ok(pages * 4096)
}
