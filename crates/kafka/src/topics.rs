//! Topic creation. Every service ensures the topics it touches exist, so any start order works.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::METADATA_TIMEOUT;
use crate::{KafkaAdapterError, KafkaArgs};

/// Seven days: producers and receivers recover from `events` within this window.
const EVENTS_RETENTION_MS: &str = "604800000";

/// The stages that dead-letter records they can never process.
pub const DEAD_LETTER_STAGES: [&str; 3] = ["fanout", "sender", "ledger"];

/// Creates every Hookline topic that does not exist yet.
pub async fn ensure_topics(args: &KafkaArgs) -> Result<(), KafkaAdapterError> {
    let admin: AdminClient<DefaultClientContext> = args.client_config().create()?;
    let names = args.topics();
    let replication = || TopicReplication::Fixed(args.replication);
    let (events, deliveries, attempts) = (names.events(), names.deliveries(), names.attempts());
    let event_ids = names.event_ids();
    let dead = names.dead();
    let control = names.control();
    let dead_letters: std::collections::HashMap<&str, String> = DEAD_LETTER_STAGES
        .into_iter()
        .map(|stage| (stage, names.dead_letters(stage)))
        .collect();

    let mut topics = vec![
        NewTopic::new(&events, args.partitions, replication())
            .set("retention.ms", EVENTS_RETENTION_MS),
        // fanout's changelog of idempotency keys: one partition per partition of `events`,
        // kept as long as events, the longest idempotency window.
        NewTopic::new(&event_ids, args.partitions, replication())
            .set("retention.ms", EVENTS_RETENTION_MS),
        NewTopic::new(&deliveries, args.partitions, replication()),
        NewTopic::new(&attempts, args.partitions, replication()),
        NewTopic::new(&dead, args.partitions, replication())
            .set("retention.ms", EVENTS_RETENTION_MS),
    ];
    // Records no stage could process: few, kept as long as accepted events.
    for stage in DEAD_LETTER_STAGES {
        topics.push(
            NewTopic::new(&dead_letters[stage], 1, replication())
                .set("retention.ms", EVENTS_RETENTION_MS),
        );
    }
    // Control-plane state is small; one partition keeps its history in one total order.
    for topic in &control {
        topics.push(NewTopic::new(topic, 1, replication()).set("cleanup.policy", "compact"));
    }

    create(args, &admin, &topics).await
}

/// Creates topics named `names` with as many partitions as `deliveries` when missing (retry tiers
/// use it, so a task keeps its webhook's partition number).
pub async fn ensure_partitioned_topics(
    args: &KafkaArgs,
    names: &[String],
) -> Result<(), KafkaAdapterError> {
    let admin: AdminClient<DefaultClientContext> = args.client_config().create()?;
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|topic| {
            NewTopic::new(
                topic,
                args.partitions,
                TopicReplication::Fixed(args.replication),
            )
        })
        .collect();
    create(args, &admin, &topics).await
}

async fn create(
    args: &KafkaArgs,
    admin: &AdminClient<DefaultClientContext>,
    topics: &[NewTopic<'_>],
) -> Result<(), KafkaAdapterError> {
    // A request no broker answers (away, or still starting) fails soon after the operation's own
    // timeout rather than after socket.timeout.ms (60 s), so the caller's retries report it.
    let options = AdminOptions::new()
        .operation_timeout(Some(METADATA_TIMEOUT))
        .request_timeout(Some(METADATA_TIMEOUT + Duration::from_secs(5)));
    for result in admin.create_topics(topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaAdapterError::CreateTopic { topic, code }),
        }
    }
    let names = topics.iter().map(|topic| topic.name.to_owned()).collect();
    await_leaders(args, names).await
}

/// Waits until every partition of `topics` has a leader: a topic just created (here or by
/// another service starting at the same moment) answers "not leader" until then.
async fn await_leaders(args: &KafkaArgs, topics: Vec<String>) -> Result<(), KafkaAdapterError> {
    let client: BaseConsumer = args.client_config().create()?;
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        for topic in &topics {
            loop {
                let metadata = client.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
                let ready = metadata.topics().iter().all(|t| {
                    t.error().is_none()
                        && !t.partitions().is_empty()
                        && t.partitions()
                            .iter()
                            .all(|p| p.error().is_none() && p.leader() >= 0)
                });
                if ready {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(KafkaAdapterError::Timeout(
                        "partition leaders of new topics",
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    })
    .await
    .map_err(|_| KafkaAdapterError::Stopped)?
}
