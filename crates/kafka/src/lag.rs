//! Consumer lag of a group, measured from outside the group: for each partition of its topics,
//! the high watermark minus the group's committed offset (or minus the low watermark while the
//! group has committed nothing). The same arithmetic as Kafka's `kafka-consumer-groups.sh` and
//! KEDA's Kafka scaler, so dashboards, alerts and autoscaling agree.
//!
//! The probe never joins the group (it only fetches committed offsets), so measuring never
//! triggers a rebalance. On transactional topics the high watermark counts commit markers, so
//! a fully consumed partition may show a lag of one.

use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::METADATA_TIMEOUT;
use crate::{KafkaAdapterError, KafkaArgs};

/// The member ids of a consumer group, as its coordinator lists them now. A member dropped
/// for not polling in time comes back under a new id.
pub async fn group_members(
    args: &KafkaArgs,
    group: &str,
) -> Result<Vec<String>, KafkaAdapterError> {
    let consumer: BaseConsumer = args.client_config().create()?;
    let group = group.to_owned();
    tokio::task::spawn_blocking(move || {
        let list = consumer.fetch_group_list(Some(&group), METADATA_TIMEOUT)?;
        Ok(list
            .groups()
            .iter()
            .flat_map(|group| group.members())
            .map(|member| member.id().to_owned())
            .collect())
    })
    .await
    .map_err(|_| KafkaAdapterError::Stopped)?
}

/// Records not yet consumed by a group on one topic, summed over its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLag {
    pub topic: String,
    pub records: i64,
}

/// Measures one consumer group's lag on a fixed set of topics.
#[derive(Clone)]
pub struct LagProbe {
    consumer: Arc<BaseConsumer>,
    topics: Vec<String>,
}

impl LagProbe {
    pub fn new(
        args: &KafkaArgs,
        group: &str,
        topics: &[String],
    ) -> Result<Self, KafkaAdapterError> {
        let consumer: BaseConsumer = args
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topics: topics.to_vec(),
        })
    }

    /// The group's lag on each topic (blocking calls run off the runtime).
    pub async fn measure(&self) -> Result<Vec<TopicLag>, KafkaAdapterError> {
        let probe = self.clone();
        tokio::task::spawn_blocking(move || probe.measure_blocking())
            .await
            .map_err(|_| KafkaAdapterError::Stopped)?
    }

    fn measure_blocking(&self) -> Result<Vec<TopicLag>, KafkaAdapterError> {
        let mut partitions = TopicPartitionList::new();
        for topic in &self.topics {
            let metadata = self
                .consumer
                .fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                partitions.add_partition(topic, partition.id());
            }
        }
        let committed = self
            .consumer
            .committed_offsets(partitions, METADATA_TIMEOUT)?;
        let mut lags: Vec<TopicLag> = self
            .topics
            .iter()
            .map(|topic| TopicLag {
                topic: topic.clone(),
                records: 0,
            })
            .collect();
        for element in committed.elements() {
            let (low, high) = self.consumer.fetch_watermarks(
                element.topic(),
                element.partition(),
                METADATA_TIMEOUT,
            )?;
            let records = partition_lag(element.offset(), low, high);
            if let Some(lag) = lags.iter_mut().find(|lag| lag.topic == element.topic()) {
                lag.records += records;
            }
        }
        Ok(lags)
    }
}

/// Records between a committed position and the high watermark; everything retained when the
/// group has no position yet (it starts from the earliest record).
fn partition_lag(committed: Offset, low: i64, high: i64) -> i64 {
    let position = match committed {
        Offset::Offset(offset) => offset.max(low),
        _ => low,
    };
    (high - position).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_committed_offset() {
        assert_eq!(partition_lag(Offset::Offset(40), 0, 100), 60);
        assert_eq!(partition_lag(Offset::Offset(100), 0, 100), 0);
    }

    #[test]
    fn a_group_without_offsets_lags_by_everything_retained() {
        assert_eq!(partition_lag(Offset::Invalid, 20, 100), 80);
    }

    #[test]
    fn offsets_deleted_by_retention_count_from_the_low_watermark() {
        assert_eq!(partition_lag(Offset::Offset(5), 20, 100), 80);
    }
}
