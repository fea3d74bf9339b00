//! At-least-once consumption: the caller stores an offset only after the record's side
//! effects are durable; stored offsets are committed in the background. (The exactly-once
//! shape, read-process-write in one transaction, is `transactional.rs`.)
//!
//! While every handler slot is busy (the downstream is away and handlers wait on it), the
//! consumer keeps polling with its partitions paused ([`crate::polling`]), so it keeps its
//! group membership however long the outage.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_domain::OffsetTracker;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::polling::Polling;
use crate::{KafkaAdapterError, KafkaArgs};

/// A record read from Kafka, detached from the client.
#[derive(Debug, Clone)]
pub struct ConsumedRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// When the record was produced, in Unix milliseconds.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

impl ConsumedRecord {
    /// How long ago the record was produced, by this host's clock (a producer on another host
    /// adds the skew between the two clocks). `None` without a timestamp or from the future.
    pub fn age(&self) -> Option<Duration> {
        let produced = u64::try_from(self.timestamp_ms?).ok()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        now.checked_sub(Duration::from_millis(produced))
    }
}

/// A record to produce.
#[derive(Debug, Clone)]
pub struct OutgoingRecord {
    pub topic: String,
    /// The partition to write to; `None`: the one the key hashes to.
    pub partition: Option<i32>,
    pub key: String,
    pub payload: Vec<u8>,
}

pub(crate) fn detach(message: &rdkafka::message::BorrowedMessage<'_>) -> ConsumedRecord {
    ConsumedRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaAdapterError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|_| KafkaAdapterError::Stopped)?
        .map_err(Into::into)
}

/// A group consumer whose offsets advance only through [`AtLeastOnceConsumer::store`].
#[derive(Clone)]
pub struct AtLeastOnceConsumer {
    polling: Arc<Polling>,
}

impl AtLeastOnceConsumer {
    pub fn subscribe(
        args: &KafkaArgs,
        group: &str,
        topics: &[String],
    ) -> Result<Self, KafkaAdapterError> {
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let polling = Polling::subscribe(&args.consumer_config(group), &topics)?;
        Ok(Self {
            polling: Arc::new(polling),
        })
    }

    /// The next record (one held while slots were busy first), or `None` once `shutdown`
    /// fires.
    pub async fn next(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<Result<ConsumedRecord, KafkaAdapterError>> {
        tokio::select! {
            () = shutdown.cancelled() => None,
            read = self.polling.next() => Some(read.map(|read| read.record)),
        }
    }

    /// Marks everything of `partition` below `next_offset` as done; committed in the background.
    pub fn store(
        &self,
        topic: &str,
        partition: i32,
        next_offset: i64,
    ) -> Result<(), KafkaAdapterError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, Offset::Offset(next_offset))?;
        self.polling.consumer().store_offsets(&list)?;
        Ok(())
    }

    /// Commits what was stored, synchronously (on shutdown).
    pub async fn commit_stored(&self) -> Result<(), KafkaAdapterError> {
        let polling = Arc::clone(&self.polling);
        let outcome = blocking(move || {
            polling
                .consumer()
                .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        })
        .await;
        match outcome {
            // Nothing stored since the last commit is not a failure.
            Err(KafkaAdapterError::Kafka(KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            ))) => Ok(()),
            other => other,
        }
    }
}

impl AtLeastOnceConsumer {
    /// Runs `handle` on up to `concurrency` records at once until `shutdown`, storing each
    /// partition's offset only up to its lowest unfinished record. `handle` returns `true` when
    /// the record's side effects are durable, `false` when it gave up because its abandon token
    /// fired (the record then stays uncommitted and is redelivered). On shutdown, in-flight
    /// records get `grace` to finish before their abandon token fires (it also fires when the
    /// record's partition is revoked); then stored offsets are
    /// committed.
    pub async fn run_concurrently<H, F>(
        &self,
        concurrency: usize,
        grace: Duration,
        shutdown: &CancellationToken,
        handle: H,
    ) -> Result<(), KafkaAdapterError>
    where
        H: Fn(ConsumedRecord, CancellationToken) -> F + Send + Sync + 'static,
        F: std::future::Future<Output = bool> + Send + 'static,
    {
        let dispatcher = Dispatcher::new(self.clone(), concurrency, handle);
        while let Some(record) = self.next(shutdown).await {
            match record {
                Ok(record) => dispatcher.dispatch(record, shutdown).await?,
                Err(err) => {
                    tracing::warn!(error = %err, "reading records failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        dispatcher.drain(grace).await
    }

    pub(crate) fn pause(&self, topic: &str, partition: i32) -> Result<(), KafkaAdapterError> {
        self.polling.pause(topic, partition)
    }

    pub(crate) fn resume(&self, topic: &str, partition: i32) -> Result<(), KafkaAdapterError> {
        self.polling.resume(topic, partition)
    }
}

/// Runs a handler on records concurrently and stores offsets in order (see
/// [`AtLeastOnceConsumer::run_concurrently`]).
pub(crate) struct Dispatcher<H> {
    consumer: AtLeastOnceConsumer,
    concurrency: usize,
    permits: Arc<Semaphore>,
    tracker: Arc<Mutex<OffsetTracker<(String, i32)>>>,
    handle: Arc<H>,
    /// In-flight records keep running through shutdown: they must finish to be committed.
    abandon: CancellationToken,
}

impl<H, F> Dispatcher<H>
where
    H: Fn(ConsumedRecord, CancellationToken) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = bool> + Send + 'static,
{
    pub(crate) fn new(consumer: AtLeastOnceConsumer, concurrency: usize, handle: H) -> Self {
        Self {
            consumer,
            concurrency,
            permits: Arc::new(Semaphore::new(concurrency)),
            tracker: Arc::new(Mutex::new(OffsetTracker::default())),
            handle: Arc::new(handle),
            abandon: CancellationToken::new(),
        }
    }

    /// Starts handling `record`, waiting first for a free slot; while none is free the
    /// consumer keeps polling with its partitions paused.
    pub(crate) async fn dispatch(
        &self,
        record: ConsumedRecord,
        shutdown: &CancellationToken,
    ) -> Result<(), KafkaAdapterError> {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let waiting = Arc::clone(&self.permits).acquire_owned();
                match self.consumer.polling.hold(waiting, shutdown).await {
                    Some(Ok(permit)) => permit,
                    // Shutting down: the record was never started and comes back after a
                    // restart.
                    None => return Ok(()),
                    Some(Err(_)) => return Err(KafkaAdapterError::Stopped),
                }
            }
        };
        let partition = (record.topic.clone(), record.partition);
        let offset = record.offset;
        self.tracker
            .lock()
            .expect("tracker lock poisoned")
            .start(partition.clone(), offset);
        let consumer = self.consumer.clone();
        let tracker = Arc::clone(&self.tracker);
        // Work on a revoked partition stops: its new owner starts from the committed offset.
        let abandon =
            self.consumer
                .polling
                .abandon_token(&record.topic, record.partition, &self.abandon);
        let handled = (self.handle)(record, abandon);
        tokio::spawn(async move {
            if handled.await {
                let next = tracker
                    .lock()
                    .expect("tracker lock poisoned")
                    .finish(&partition, offset);
                if let Some(next) = next {
                    if let Err(err) = consumer.store(&partition.0, partition.1, next) {
                        // After a rebalance the partition may belong to another instance,
                        // which resumes from its committed offset: at-least-once holds.
                        tracing::debug!(error = %err, "could not store offset");
                    }
                }
            }
            drop(permit);
        });
        Ok(())
    }

    /// Waits up to `grace` for in-flight records, abandons the rest, commits what is stored.
    pub(crate) async fn drain(self, grace: Duration) -> Result<(), KafkaAdapterError> {
        let all = u32::try_from(self.concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(grace, self.permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "shutdown grace ran out; unfinished records will be redelivered"
            );
            self.abandon.cancel();
        }
        self.consumer.commit_stored().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produced_at(timestamp_ms: Option<i64>) -> ConsumedRecord {
        ConsumedRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp_ms,
            key: None,
            payload: None,
        }
    }

    fn now_ms() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    #[test]
    fn a_records_age_is_measured_from_its_timestamp() {
        let age = produced_at(Some(now_ms() - 1_500)).age().expect("an age");
        assert!(age >= Duration::from_millis(1_500) && age < Duration::from_secs(60));
    }

    #[test]
    fn a_record_without_a_past_timestamp_has_no_age() {
        assert_eq!(produced_at(None).age(), None);
        assert_eq!(produced_at(Some(-1)).age(), None);
        assert_eq!(produced_at(Some(now_ms() + 3_600_000)).age(), None);
    }
}
