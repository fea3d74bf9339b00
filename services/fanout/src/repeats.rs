//! Producer-chosen ids as idempotency keys: an event whose id was accepted for its tenant
//! within the window is a retry, and gets no delivery tasks.
//!
//! fanout is the one place that sees every event of a partition of `events` in order, so it
//! judges there. What it remembers per partition ([`SeenIds`]) is written, as one
//! [`EventIdRecord`] per first acceptance, to the same partition number of the `event-ids`
//! changelog in the transaction that emits the event's tasks: a crash can never leave tasks
//! without the memory of them, or the reverse. Whoever owns a partition next (this instance
//! after a restart or a rebalance, or another one) reads the changelog back before joining any
//! event of it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use hookline_domain::idempotency::{Acceptance, IdempotencyKey, SeenIds};
use hookline_kafka::{read_partition, Batch, KafkaAdapterError, KafkaArgs, OutgoingRecord};
use hookline_schemas::{EventIdRecord, EventRecord, SCHEMA_VERSION};

/// How much older than the window a changelog is read from: the lag an event can have between
/// its acceptance and fanout joining it, and still be judged against keys that old.
const RESTORE_SLACK: Duration = Duration::from_secs(60 * 60);

/// What an event is, by its id.
pub enum Judgement {
    /// Deliver it; with the changelog record that remembers its id, if the producer chose it.
    Deliver(Option<OutgoingRecord>),
    /// Its id was first accepted within the window: deliver nothing again.
    Repeat,
}

pub struct Repeats {
    kafka: KafkaArgs,
    changelog: String,
    window_ms: i64,
    /// Per partition of `events`: the tenure its keys were read back in, and the keys.
    partitions: HashMap<i32, (u64, SeenIds)>,
}

impl Repeats {
    pub fn new(kafka: &KafkaArgs, window: Duration) -> Self {
        Self {
            kafka: kafka.clone(),
            changelog: kafka.topics().event_ids(),
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            partitions: HashMap::new(),
        }
    }

    /// The partitions of `batch` (with the tenure they were read in) whose keys this instance
    /// does not hold: new to it, or taken away and given back since.
    pub fn missing(&self, batch: &Batch) -> Vec<(i32, u64)> {
        let tenures: BTreeMap<i32, u64> = batch
            .records_with_tenure()
            .map(|(record, tenure)| (record.partition, tenure))
            .collect();
        tenures
            .into_iter()
            .filter(|(partition, tenure)| {
                self.partitions
                    .get(partition)
                    .is_none_or(|(held, _)| held != tenure)
            })
            .collect()
    }

    /// Reads the keys of `partition` back from the changelog: those accepted since the window
    /// (and the slack) began.
    pub async fn read_back(&self, partition: i32) -> Result<SeenIds, KafkaAdapterError> {
        let slack = i64::try_from(RESTORE_SLACK.as_millis()).unwrap_or_default();
        let since = Utc::now()
            .timestamp_millis()
            .saturating_sub(self.window_ms)
            .saturating_sub(slack);
        let began = std::time::Instant::now();
        let seen = read_partition(
            &self.kafka,
            &self.changelog,
            partition,
            since,
            SeenIds::new(self.window_ms),
            |seen, record| {
                let remembered = record
                    .payload
                    .as_deref()
                    .and_then(|payload| serde_json::from_slice::<EventIdRecord>(payload).ok());
                if let Some(id) = remembered {
                    let key = IdempotencyKey::of(&id.tenant_id, &id.event_id);
                    seen.restore(key, id.accepted_at.timestamp_millis());
                }
            },
        )
        .await?;
        tracing::info!(
            partition,
            keys = seen.len(),
            seconds = began.elapsed().as_secs_f64(),
            "idempotency keys read back"
        );
        Ok(seen)
    }

    /// Holds `seen` as the keys of `partition` for `tenure`.
    pub fn hold(&mut self, partition: i32, tenure: u64, seen: SeenIds) {
        self.partitions.insert(partition, (tenure, seen));
    }

    /// Judges `event`, read from `partition` (read back by [`Repeats::read_back`]), and remembers
    /// its id if it is the first.
    pub fn judge(&mut self, partition: i32, event: &EventRecord) -> Judgement {
        if !event.id_chosen_by_producer {
            return Judgement::Deliver(None);
        }
        let (_, seen) = self
            .partitions
            .get_mut(&partition)
            .expect("a batch's partitions are read back before it is judged");
        let key = IdempotencyKey::of(&event.tenant_id, &event.id);
        match seen.accept(key, event.accepted_at.timestamp_millis()) {
            Acceptance::Repeat { .. } => Judgement::Repeat,
            Acceptance::First => Judgement::Deliver(Some(self.changelog_record(partition, event))),
        }
    }

    /// Keys held, over every partition.
    pub fn keys(&self) -> usize {
        self.partitions.values().map(|(_, seen)| seen.len()).sum()
    }

    fn changelog_record(&self, partition: i32, event: &EventRecord) -> OutgoingRecord {
        let record = EventIdRecord {
            schema_version: SCHEMA_VERSION,
            tenant_id: event.tenant_id.clone(),
            event_id: event.id.clone(),
            accepted_at: event.accepted_at,
        };
        OutgoingRecord {
            topic: self.changelog.clone(),
            partition: Some(partition),
            key: format!("{}/{}", event.tenant_id, event.id),
            payload: serde_json::to_vec(&record).expect("an id record always serializes"),
        }
    }
}
