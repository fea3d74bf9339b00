//! Hookline's Kafka adapter. rdkafka types stay inside this crate's API where they can; the
//! services use the small vocabulary below.
//!
//! - [`KafkaArgs`]: brokers, topic prefix and partition counts, from flags or `HOOKLINE_*` env.
//! - [`ensure_topics`]: creates every topic Hookline uses (idempotent).
//! - [`Publisher`]: an idempotent `acks=all` producer of JSON records.
//! - [`CompactedView`]: reads compacted topics from the start, forever, and can wait until it
//!   has applied everything written before a given moment ([`CompactedView::catch_up`]).
//! - [`LagProbe`]: a consumer group's lag per topic, measured without joining the group.

mod compacted;
mod config;
mod consumer;
mod delayed;
mod error;
mod lag;
mod publisher;
mod topics;

pub use compacted::{CompactedRecord, CompactedView};
pub use config::KafkaArgs;
pub use consumer::{AtLeastOnceConsumer, ConsumedRecord, OutgoingRecord, TransactionalStage};
pub use delayed::DelayedConsumer;
pub use error::KafkaAdapterError;
pub use lag::{LagProbe, TopicLag};
pub use publisher::{Position, Publisher};
pub use topics::{ensure_partitioned_topics, ensure_topics};
