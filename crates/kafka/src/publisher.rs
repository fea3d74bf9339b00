use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::Serialize;

use crate::{KafkaAdapterError, KafkaArgs};

/// How long a record may wait for room in the local queue before the send fails.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// An idempotent, `acks=all` producer of JSON records. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
}

impl Publisher {
    pub fn new(args: &KafkaArgs) -> Result<Self, KafkaAdapterError> {
        Ok(Self {
            producer: args.producer_config().create()?,
        })
    }

    /// Sends one JSON record and waits for Kafka's acknowledgement.
    pub async fn send_json<T: Serialize>(
        &self,
        topic: &str,
        key: &str,
        value: &T,
    ) -> Result<Position, KafkaAdapterError> {
        let payload = serde_json::to_vec(value)?;
        self.send_bytes(topic, key, Some(&payload)).await
    }

    /// Sends an already encoded record and waits for Kafka's acknowledgement.
    pub async fn send_record(
        &self,
        record: &crate::OutgoingRecord,
    ) -> Result<Position, KafkaAdapterError> {
        self.send_bytes(&record.topic, &record.key, Some(&record.payload))
            .await
    }

    /// Sends a tombstone (a record without value) for `key` of a compacted topic.
    pub async fn send_tombstone(
        &self,
        topic: &str,
        key: &str,
    ) -> Result<Position, KafkaAdapterError> {
        self.send_bytes(topic, key, None).await
    }

    async fn send_bytes(
        &self,
        topic: &str,
        key: &str,
        payload: Option<&[u8]>,
    ) -> Result<Position, KafkaAdapterError> {
        let mut record = FutureRecord::<str, [u8]>::to(topic).key(key);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        let delivery = self
            .producer
            .send(record, QUEUE_TIMEOUT)
            .await
            .map_err(|(err, _message)| err)?;
        Ok(Position {
            partition: delivery.partition,
            offset: delivery.offset,
        })
    }

    /// Waits until every queued record is acknowledged (on shutdown).
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaAdapterError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|_| KafkaAdapterError::Stopped)??;
        Ok(())
    }
}
