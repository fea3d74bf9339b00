//! Consumers in the two shapes Hookline uses.
//!
//! - [`AtLeastOnceConsumer`]: the caller stores an offset only after the record's side effects
//!   are durable; stored offsets are committed in the background.
//! - [`TransactionalStage`]: read-process-write in one Kafka transaction with the consumed
//!   offsets (exactly-once fanout: a crash never leaves duplicate output).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_domain::OffsetTracker;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::METADATA_TIMEOUT;
use crate::{KafkaAdapterError, KafkaArgs};

/// How long a transaction step may take before it counts as failed.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A record to produce.
#[derive(Debug, Clone)]
pub struct OutgoingRecord {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
}

fn detach(message: &rdkafka::message::BorrowedMessage<'_>) -> ConsumedRecord {
    ConsumedRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
    }
}

/// Waits for the next record, or `None` once `shutdown` fires.
async fn next_record(
    consumer: &StreamConsumer,
    shutdown: &CancellationToken,
) -> Option<Result<ConsumedRecord, KafkaAdapterError>> {
    tokio::select! {
        () = shutdown.cancelled() => None,
        message = consumer.recv() => Some(message.map(|m| detach(&m)).map_err(Into::into)),
    }
}

async fn blocking<T: Send + 'static>(
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
    consumer: Arc<StreamConsumer>,
}

impl AtLeastOnceConsumer {
    pub fn subscribe(
        args: &KafkaArgs,
        group: &str,
        topics: &[String],
    ) -> Result<Self, KafkaAdapterError> {
        let consumer: StreamConsumer = args.consumer_config(group).create()?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Self {
            consumer: Arc::new(consumer),
        })
    }

    /// The next record, or `None` once `shutdown` fires.
    pub async fn next(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<Result<ConsumedRecord, KafkaAdapterError>> {
        next_record(&self.consumer, shutdown).await
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
        self.consumer.store_offsets(&list)?;
        Ok(())
    }

    /// Commits what was stored, synchronously (on shutdown).
    pub async fn commit_stored(&self) -> Result<(), KafkaAdapterError> {
        let consumer = Arc::clone(&self.consumer);
        let outcome =
            blocking(move || consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync))
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

/// One stage of exactly-once processing: consume a batch, produce its output and commit its
/// offsets in one transaction.
pub struct TransactionalStage {
    consumer: StreamConsumer,
    /// Replaced by a fresh one when it fails beyond what aborting a transaction recovers
    /// (a fatal error, e.g. after the broker lost its transactional state).
    producer: Mutex<FutureProducer>,
    producer_config: rdkafka::ClientConfig,
}

impl TransactionalStage {
    /// Joins `group` on `input` and opens a transactional producer named `transactional_id`
    /// (unique per running instance).
    pub async fn start(
        args: &KafkaArgs,
        group: &str,
        input: &str,
        transactional_id: &str,
    ) -> Result<Self, KafkaAdapterError> {
        let mut consumer_config = args.consumer_config(group);
        consumer_config.set("enable.auto.commit", "false");
        let consumer: StreamConsumer = consumer_config.create()?;
        consumer.subscribe(&[input])?;

        let mut producer_config = args.producer_config();
        producer_config
            .set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", "60000");
        let producer = transactional_producer(&producer_config).await?;
        Ok(Self {
            consumer,
            producer: Mutex::new(producer),
            producer_config,
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer
            .lock()
            .expect("producer lock poisoned")
            .clone()
    }

    /// Waits for at least one record, then gathers more until `max` records or until `linger`
    /// passes without one. `None` once `shutdown` fires before the first record.
    pub async fn next_batch(
        &self,
        max: usize,
        linger: Duration,
        shutdown: &CancellationToken,
    ) -> Option<Result<Vec<ConsumedRecord>, KafkaAdapterError>> {
        let first = match next_record(&self.consumer, shutdown).await? {
            Ok(record) => record,
            Err(err) => return Some(Err(err)),
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match tokio::time::timeout(linger, self.consumer.recv()).await {
                Ok(Ok(message)) => batch.push(detach(&message)),
                Ok(Err(err)) => return Some(Err(err.into())),
                Err(_elapsed) => break,
            }
        }
        Some(Ok(batch))
    }

    /// Produces `outputs` and commits the offsets past `batch`, atomically. On failure the
    /// transaction is aborted and the consumer rewound to the batch's start, so the batch is
    /// read again; the error is returned for the caller to back off.
    pub async fn commit(
        &self,
        batch: &[ConsumedRecord],
        outputs: Vec<OutgoingRecord>,
    ) -> Result<(), KafkaAdapterError> {
        let outcome = self.try_commit(batch, outputs).await;
        if let Err(error) = &outcome {
            let producer = self.producer();
            let aborted = blocking(move || producer.abort_transaction(TRANSACTION_TIMEOUT)).await;
            if let Err(err) = &aborted {
                tracing::warn!(error = %err, "could not abort the transaction");
            }
            if is_fatal(error) || aborted.as_ref().is_err_and(is_fatal) {
                tracing::warn!(error = %error, "transactional producer failed fatally; starting a new one");
                match transactional_producer(&self.producer_config).await {
                    Ok(fresh) => *self.producer.lock().expect("producer lock poisoned") = fresh,
                    Err(err) => {
                        tracing::warn!(error = %err, "could not start a new transactional producer")
                    }
                }
            }
            for (topic, partition, first) in batch_starts(batch) {
                if let Err(err) =
                    self.consumer
                        .seek(&topic, partition, Offset::Offset(first), METADATA_TIMEOUT)
                {
                    tracing::warn!(topic, partition, error = %err, "could not rewind; the partition may have moved");
                }
            }
        }
        outcome
    }

    async fn try_commit(
        &self,
        batch: &[ConsumedRecord],
        outputs: Vec<OutgoingRecord>,
    ) -> Result<(), KafkaAdapterError> {
        let producer = self.producer();
        let beginning = producer.clone();
        blocking(move || beginning.begin_transaction()).await?;
        let sends = outputs.iter().map(|record| {
            let future_record = FutureRecord::to(&record.topic)
                .key(&record.key)
                .payload(&record.payload);
            producer.send(future_record, TRANSACTION_TIMEOUT)
        });
        for outcome in futures::future::join_all(sends).await {
            outcome.map_err(|(err, _)| err)?;
        }
        let mut offsets = TopicPartitionList::new();
        for (topic, partition, next) in batch_ends(batch) {
            offsets.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        let group = self
            .consumer
            .group_metadata()
            .ok_or(KafkaAdapterError::Stopped)?;
        blocking(move || {
            producer.send_offsets_to_transaction(&offsets, &group, TRANSACTION_TIMEOUT)?;
            producer.commit_transaction(TRANSACTION_TIMEOUT)
        })
        .await
    }
}

/// A producer with `config`'s transactional id, its transactions initialized (which fences any
/// earlier producer with the same id).
async fn transactional_producer(
    config: &rdkafka::ClientConfig,
) -> Result<FutureProducer, KafkaAdapterError> {
    let producer: FutureProducer = config.create()?;
    let initializing = producer.clone();
    blocking(move || initializing.init_transactions(TRANSACTION_TIMEOUT)).await?;
    Ok(producer)
}

/// Whether a transactional producer can no longer be used after `error`.
fn is_fatal(error: &KafkaAdapterError) -> bool {
    matches!(error, KafkaAdapterError::Kafka(KafkaError::Transaction(err)) if err.is_fatal())
}

/// The first offset of each partition in a batch.
fn batch_starts(batch: &[ConsumedRecord]) -> Vec<(String, i32, i64)> {
    let mut starts: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for record in batch {
        let entry = starts
            .entry((record.topic.clone(), record.partition))
            .or_insert(record.offset);
        *entry = (*entry).min(record.offset);
    }
    starts.into_iter().map(|((t, p), o)| (t, p, o)).collect()
}

/// One past the last offset of each partition in a batch: the position to commit.
fn batch_ends(batch: &[ConsumedRecord]) -> Vec<(String, i32, i64)> {
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for record in batch {
        let entry = ends
            .entry((record.topic.clone(), record.partition))
            .or_insert(record.offset + 1);
        *entry = (*entry).max(record.offset + 1);
    }
    ends.into_iter().map(|((t, p), o)| (t, p, o)).collect()
}

impl AtLeastOnceConsumer {
    /// Runs `handle` on up to `concurrency` records at once until `shutdown`, storing each
    /// partition's offset only up to its lowest unfinished record. `handle` returns `true` when
    /// the record's side effects are durable, `false` when it gave up because its abandon token
    /// fired (the record then stays uncommitted and is redelivered). On shutdown, in-flight
    /// records get `grace` to finish before their abandon token fires; then stored offsets are
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
                Ok(record) => dispatcher.dispatch(record).await?,
                Err(err) => {
                    tracing::warn!(error = %err, "reading records failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        dispatcher.drain(grace).await
    }

    pub(crate) fn pause(&self, topic: &str, partition: i32) -> Result<(), KafkaAdapterError> {
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        self.consumer.pause(&list)?;
        Ok(())
    }

    pub(crate) fn resume(&self, topic: &str, partition: i32) -> Result<(), KafkaAdapterError> {
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        self.consumer.resume(&list)?;
        Ok(())
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

    /// Starts handling `record`, waiting first for a free slot.
    pub(crate) async fn dispatch(&self, record: ConsumedRecord) -> Result<(), KafkaAdapterError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| KafkaAdapterError::Stopped)?;
        let partition = (record.topic.clone(), record.partition);
        let offset = record.offset;
        self.tracker
            .lock()
            .expect("tracker lock poisoned")
            .start(partition.clone(), offset);
        let consumer = self.consumer.clone();
        let tracker = Arc::clone(&self.tracker);
        let handled = (self.handle)(record, self.abandon.clone());
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
