//! Hookline's Kafka adapter. rdkafka types stay inside this crate's API where they can; the
//! services use the small vocabulary below.
//!
//! - [`KafkaArgs`]: brokers, topic prefix and partition counts, from flags or `HOOKLINE_*` env.
//! - [`ensure_topics`]: creates every topic Hookline uses (idempotent).
//! - [`Publisher`]: an idempotent `acks=all` producer of JSON records.
//! - [`CompactedView`]: reads compacted topics from the start, forever, and can wait until it
//!   has applied everything written before a given moment ([`CompactedView::catch_up`]).
//! - [`AtLeastOnceConsumer`] and [`DelayedConsumer`] (retry tiers): offsets stored only after
//!   the caller's work is durable; [`TransactionalStage`]: exactly-once read-process-write.
//!   All of them keep polling while they wait on their downstream, so a long outage never
//!   costs their group membership.
//! - [`read_partition`]: reads back a stage's changelog partition (state it writes in its
//!   transactions), committed records only.
//! - [`DeadLetters`]: where a stage sends a record it can never process, with the reason.
//! - [`LagProbe`]: a consumer group's lag per topic, measured without joining the group.

mod atomic;
mod changelog;
mod compacted;
mod config;
mod consumer;
mod dead_letters;
mod delayed;
mod error;
mod lag;
mod polling;
mod publisher;
mod topics;
mod transactional;

pub use atomic::AtomicPublisher;
pub use changelog::read_partition;
pub use compacted::{CompactedRecord, CompactedView};
pub use config::KafkaArgs;
pub use consumer::{AtLeastOnceConsumer, ConsumedRecord, OutgoingRecord};
pub use dead_letters::{dead_letter, DeadLetters};
pub use delayed::DelayedConsumer;
pub use error::KafkaAdapterError;
pub use lag::{group_members, LagProbe, TopicLag};
pub use publisher::{Position, Publisher};
pub use topics::{ensure_partitioned_topics, ensure_topics, DEAD_LETTER_STAGES};
pub use transactional::{Batch, Committed, Processed, TransactionalStage};
