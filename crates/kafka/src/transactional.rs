//! Exactly-once stages: read a batch, produce its output and commit its offsets in one Kafka
//! transaction.
//!
//! Contract:
//! - A failed transaction never lets a later one commit past its batch. The stage keeps the
//!   batch in memory and commits it again, in a fresh transaction, until it commits or its
//!   partitions are taken away; their new owner (perhaps this instance again) then reads them
//!   from the committed offsets. Nothing is rewound with a seek, which a broker that is away
//!   can silently refuse.
//! - A record read before its partition was revoked is never committed after: each record
//!   carries its partition's revocation count from when it was read.
//! - While it waits (for Kafka to come back, or for anything passed to
//!   [`TransactionalStage::hold`]) the stage keeps polling with its partitions paused, so it
//!   stays in its group however long the wait. Records fetched meanwhile wait in memory, in
//!   order, and open the next batch.
//! - An input the caller cannot process, or whose output Kafka will never take (larger than
//!   the topic accepts), becomes a dead letter in the same transaction; the stage moves on.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::FutureExt;
use hookline_backoff::Backoff;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::consumer::blocking;
use crate::dead_letters::dead_letter;
use crate::polling::{Partition, Polling, Read};
use crate::{ConsumedRecord, KafkaAdapterError, KafkaArgs, OutgoingRecord};

/// How long a transaction step may take before it counts as failed.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a commit that failed with a retriable error is tried again in place.
const COMMIT_RETRIES: u32 = 3;

/// Records read together, each partition's in offset order.
pub struct Batch {
    reads: Vec<Read>,
    gathered_in: Duration,
}

impl Batch {
    /// How long the batch gathered records after its first one arrived.
    pub fn gathered_in(&self) -> Duration {
        self.gathered_in
    }

    pub fn records(&self) -> impl Iterator<Item = &ConsumedRecord> {
        self.reads.iter().map(|read| &read.record)
    }

    /// Each record with its partition's tenure when it was read: a number that changes each
    /// time the partition is taken from this consumer, so state kept per partition can tell
    /// a new tenure (and restore itself) from the one it has.
    pub fn records_with_tenure(&self) -> impl Iterator<Item = (&ConsumedRecord, u64)> {
        self.reads.iter().map(|read| (&read.record, read.epoch))
    }

    pub fn len(&self) -> usize {
        self.reads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }
}

/// What processing one input record gave.
#[derive(Debug)]
pub enum Processed {
    /// Records to produce (none at all still moves the offset past the input).
    Output(Vec<OutgoingRecord>),
    /// It can never be processed, for this reason: it becomes a dead letter.
    Poison(String),
}

/// What one [`TransactionalStage::commit`] did with its batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Inputs committed with their output.
    pub processed: usize,
    /// Records produced for the inputs committed with their output, by topic.
    pub produced: BTreeMap<String, usize>,
    /// Inputs committed as dead letters, `rejected` of them because Kafka refused their
    /// output.
    pub dead_lettered: usize,
    pub rejected: usize,
    /// Inputs dropped because their partition was revoked: their new owner reads them again.
    pub revoked: usize,
    /// Transactions that failed before one committed.
    pub failed_transactions: u32,
    /// How long the transaction that committed took to produce its records and send the
    /// offsets (side by side), and then to commit.
    pub produced_in: Duration,
    pub committed_in: Duration,
}

/// Why one transaction did not commit.
enum TransactionError {
    /// Kafka is away or the transaction was aborted: try the same batch again.
    Failed(KafkaAdapterError),
    /// Kafka refused an output for good; which input's is not known yet.
    Refused(KafkaAdapterError),
    /// Kafka will never take an output of input `index`.
    Rejected {
        index: usize,
        error: KafkaAdapterError,
    },
}

/// One stage of exactly-once processing (see the module's contract).
pub struct TransactionalStage {
    polling: Polling,
    /// Replaced by a fresh one when it fails beyond what aborting a transaction recovers
    /// (a fatal error, e.g. after the broker lost its transactional state).
    producer: Mutex<FutureProducer>,
    producer_config: rdkafka::ClientConfig,
    stage: &'static str,
    dead_letters: String,
}

impl TransactionalStage {
    /// Joins `group` on `input` and opens a transactional producer named `transactional_id`
    /// (unique per running instance). Inputs it gives up on go to `stage`'s dead letters.
    pub async fn start(
        args: &KafkaArgs,
        stage: &'static str,
        group: &str,
        input: &str,
        transactional_id: &str,
    ) -> Result<Self, KafkaAdapterError> {
        let mut consumer_config = args.consumer_config(group);
        consumer_config.set("enable.auto.commit", "false");
        let polling = Polling::subscribe(&consumer_config, &[input])?;

        let mut producer_config = args.transactional_producer_config();
        producer_config.set("transactional.id", transactional_id);
        let producer = transactional_producer(&producer_config).await?;
        Ok(Self {
            polling,
            producer: Mutex::new(producer),
            producer_config,
            stage,
            dead_letters: args.topics().dead_letters(stage),
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer
            .lock()
            .expect("producer lock poisoned")
            .clone()
    }

    /// Waits for at least one record, then gathers more until `max` records or until `linger`
    /// passes without one. Records held from a retried batch come first. `None` once
    /// `shutdown` fires before the first record.
    pub async fn next_batch(
        &self,
        max: usize,
        linger: Duration,
        shutdown: &CancellationToken,
    ) -> Option<Result<Batch, KafkaAdapterError>> {
        loop {
            let mut reads = self.polling.take_held(max);
            let mut first_read = Instant::now();
            if reads.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    read = self.polling.recv() => match read {
                        Ok(read) => reads.push(read),
                        Err(err) => return Some(Err(err)),
                    },
                }
                first_read = Instant::now();
            }
            // While held records remain, nothing newer of their partitions may join a batch.
            if !self.polling.has_held() {
                while reads.len() < max {
                    // Without a linger, only what is already fetched joins: a timer of zero
                    // would still wait for the timer wheel's next tick, a millisecond.
                    let next = if linger.is_zero() {
                        self.polling.recv().now_or_never()
                    } else {
                        tokio::time::timeout(linger, self.polling.recv()).await.ok()
                    };
                    match next {
                        Some(Ok(read)) => reads.push(read),
                        Some(Err(err)) => {
                            tracing::warn!(error = %err, "reading records failed");
                            break;
                        }
                        None => break,
                    }
                }
            }
            // A rebalance while gathering may have taken partitions away.
            reads.retain(|read| self.polling.still_owns(read));
            if !reads.is_empty() {
                return Some(Ok(Batch {
                    reads,
                    gathered_in: first_read.elapsed(),
                }));
            }
        }
    }

    /// Runs `work` while the stage keeps polling with its partitions paused, so it stays in
    /// its group however long `work` takes. `None` if `shutdown` fires first.
    pub async fn hold<F: Future>(
        &self,
        work: F,
        shutdown: &CancellationToken,
    ) -> Option<F::Output> {
        self.polling.hold(work, shutdown).await
    }

    /// Produces the output of `batch` (`processed`, one per record, in order) and commits the
    /// offsets past it, atomically, retrying in fresh transactions until it commits or every
    /// partition of the batch was revoked. `None` if `shutdown` fires first: nothing of the
    /// batch is committed, and it is read again after a restart.
    pub async fn commit(
        &self,
        batch: Batch,
        processed: Vec<Processed>,
        shutdown: &CancellationToken,
    ) -> Option<Committed> {
        assert_eq!(batch.len(), processed.len(), "one outcome per record");
        let mut items: Vec<(Read, Processed)> = batch.reads.into_iter().zip(processed).collect();
        let mut committed = Committed::default();
        let mut backoff = Backoff::dependency();
        let mut isolate = false;
        loop {
            let before = items.len();
            items.retain(|(read, _)| self.polling.still_owns(read));
            committed.revoked += before - items.len();
            if items.is_empty() {
                return Some(committed);
            }
            let (error, at_once) = match self.try_commit(&items, isolate).await {
                Ok((produced_in, committed_in)) => {
                    committed.produced_in = produced_in;
                    committed.committed_in = committed_in;
                    let poisoned = items
                        .iter()
                        .filter(|(_, outcome)| matches!(outcome, Processed::Poison(_)))
                        .count();
                    committed.dead_lettered += poisoned;
                    committed.processed += items.len() - poisoned;
                    for (_, outcome) in &items {
                        if let Processed::Output(records) = outcome {
                            for record in records {
                                *committed.produced.entry(record.topic.clone()).or_default() += 1;
                            }
                        }
                    }
                    return Some(committed);
                }
                // Kafka will never take it: the same batch goes again at once, that input
                // as a dead letter.
                Err(TransactionError::Refused(error)) => {
                    tracing::warn!(stage = self.stage, error = %error, "Kafka refused an output; sending the batch again one record at a time to find whose");
                    isolate = true;
                    (error, true)
                }
                Err(TransactionError::Rejected { index, error }) => {
                    items[index].1 = Processed::Poison(format!("rejected by Kafka: {error}"));
                    committed.rejected += 1;
                    (error, true)
                }
                Err(TransactionError::Failed(error)) => {
                    tracing::warn!(stage = self.stage, error = %error, records = items.len(), "transaction failed; committing the same batch again");
                    (error, false)
                }
            };
            committed.failed_transactions += 1;
            // The producer must be usable again before the next transaction begins.
            let mut fatal = is_fatal(&error);
            loop {
                match self.recover_producer(fatal).await {
                    Ok(()) => break,
                    Err(err) => {
                        tracing::warn!(stage = self.stage, error = %err, "transactional producer not ready yet");
                        fatal = fatal || is_fatal(&err);
                    }
                }
                self.hold(tokio::time::sleep(backoff.next_delay()), shutdown)
                    .await?;
            }
            if !at_once {
                self.hold(tokio::time::sleep(backoff.next_delay()), shutdown)
                    .await?;
            }
        }
    }

    /// Aborts the failed transaction, or replaces a producer that failed fatally (a new one
    /// with the same transactional id fences the old one and aborts what it left open).
    async fn recover_producer(&self, fatal: bool) -> Result<(), KafkaAdapterError> {
        if !fatal {
            let producer = self.producer();
            match blocking(move || producer.abort_transaction(TRANSACTION_TIMEOUT)).await {
                Ok(()) => return Ok(()),
                Err(err) if is_retriable(&err) => return Err(err),
                Err(err) => {
                    tracing::warn!(stage = self.stage, error = %err, "could not abort the transaction; starting a new producer");
                }
            }
        }
        let fresh = transactional_producer(&self.producer_config).await?;
        *self.producer.lock().expect("producer lock poisoned") = fresh;
        Ok(())
    }

    async fn try_commit(
        &self,
        items: &[(Read, Processed)],
        isolate: bool,
    ) -> Result<(Duration, Duration), TransactionError> {
        let failed = |err: KafkaAdapterError| TransactionError::Failed(err);
        let started = Instant::now();
        let producer = self.producer();
        let beginning = producer.clone();
        blocking(move || beginning.begin_transaction())
            .await
            .map_err(failed)?;
        let mut outputs: Vec<(usize, OutgoingRecord)> = Vec::new();
        for (index, (read, outcome)) in items.iter().enumerate() {
            match outcome {
                Processed::Output(records) => {
                    outputs.extend(records.iter().map(|record| (index, record.clone())));
                }
                Processed::Poison(reason) => {
                    let letter = dead_letter(&self.dead_letters, self.stage, &read.record, reason)
                        .map_err(failed)?;
                    outputs.push((index, letter));
                }
            }
        }
        let mut offsets = TopicPartitionList::new();
        for (topic, partition, next) in batch_ends(items.iter().map(|(read, _)| &read.record)) {
            offsets
                .add_partition_offset(&topic, partition, Offset::Offset(next))
                .map_err(|err| failed(err.into()))?;
        }
        let group = self
            .polling
            .consumer()
            .group_metadata()
            .ok_or(KafkaAdapterError::Stopped)
            .map_err(failed)?;
        let sending = producer.clone();
        // The offsets travel while the records are acknowledged: the transaction needs both
        // before it commits, in either order.
        let (produced, sent) = tokio::join!(
            produce_outputs(&producer, items, &outputs, isolate),
            blocking(move || {
                sending.send_offsets_to_transaction(&offsets, &group, TRANSACTION_TIMEOUT)
            })
        );
        produced?;
        sent.map_err(failed)?;
        let produced_in = started.elapsed();
        blocking(move || commit_transaction(&producer))
            .await
            .map_err(failed)?;
        Ok((produced_in, started.elapsed() - produced_in))
    }
}

/// Produces a batch's `outputs` (each with the index of its input in `items`) and waits for
/// their acknowledgements. `isolate`: one at a time, so a refusal names its input.
async fn produce_outputs(
    producer: &FutureProducer,
    items: &[(Read, Processed)],
    outputs: &[(usize, OutgoingRecord)],
    isolate: bool,
) -> Result<(), TransactionError> {
    if isolate {
        // One record in flight at a time, so each is a produce request of its own and a
        // refusal names the input it belongs to.
        for (index, record) in outputs {
            if let Err(err) = produce(producer, record).await {
                let error = KafkaAdapterError::from(err);
                let poison = matches!(items[*index].1, Processed::Output(_));
                return Err(if poison && !error.is_transient() {
                    TransactionError::Rejected {
                        index: *index,
                        error,
                    }
                } else {
                    TransactionError::Failed(error)
                });
            }
        }
        return Ok(());
    }
    let outcomes =
        futures::future::join_all(outputs.iter().map(|(_, record)| produce(producer, record)))
            .await;
    let errors: Vec<KafkaAdapterError> = outcomes
        .into_iter()
        .filter_map(|outcome| outcome.err().map(Into::into))
        .collect();
    // Kafka refuses a whole produce request for one record in it: which input it belongs to
    // is found by sending them one at a time.
    if let Some(refused) = errors.iter().position(|err| !err.is_transient()) {
        let error = errors.into_iter().nth(refused).expect("found above");
        return Err(TransactionError::Refused(error));
    }
    match errors.into_iter().next() {
        Some(error) => Err(TransactionError::Failed(error)),
        None => Ok(()),
    }
}

/// Produces `record` in the producer's open transaction and waits for its acknowledgement.
pub(crate) async fn produce(
    producer: &FutureProducer,
    record: &OutgoingRecord,
) -> Result<(), KafkaError> {
    let mut future_record = FutureRecord::to(&record.topic)
        .key(&record.key)
        .payload(&record.payload);
    if let Some(partition) = record.partition {
        future_record = future_record.partition(partition);
    }
    producer
        .send(future_record, TRANSACTION_TIMEOUT)
        .await
        .map(|_| ())
        .map_err(|(err, _)| err)
}

/// Commits the open transaction, trying again in place while the error says a retry may
/// succeed (the transaction may already be committed at the broker; aborting it then would
/// produce the batch twice).
pub(crate) fn commit_transaction(producer: &FutureProducer) -> Result<(), KafkaError> {
    let mut tries = 0;
    loop {
        match producer.commit_transaction(TRANSACTION_TIMEOUT) {
            Err(KafkaError::Transaction(err)) if err.is_retriable() && tries < COMMIT_RETRIES => {
                tries += 1;
                tracing::warn!(error = %err, tries, "committing the transaction failed; trying again");
            }
            other => return other,
        }
    }
}

/// A producer with `config`'s transactional id, its transactions initialized (which fences any
/// earlier producer with the same id).
pub(crate) async fn transactional_producer(
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

/// Whether the same transactional call may succeed later (the broker is away).
fn is_retriable(error: &KafkaAdapterError) -> bool {
    matches!(error, KafkaAdapterError::Kafka(KafkaError::Transaction(err)) if err.is_retriable())
}

/// One past the last offset of each partition among `records`: the position to commit.
fn batch_ends<'a>(records: impl Iterator<Item = &'a ConsumedRecord>) -> Vec<(String, i32, i64)> {
    let mut ends: BTreeMap<Partition, i64> = BTreeMap::new();
    for record in records {
        let entry = ends
            .entry((record.topic.clone(), record.partition))
            .or_insert(record.offset + 1);
        *entry = (*entry).max(record.offset + 1);
    }
    ends.into_iter().map(|((t, p), o)| (t, p, o)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64) -> ConsumedRecord {
        ConsumedRecord {
            topic: "events".into(),
            partition,
            offset,
            timestamp_ms: None,
            key: None,
            payload: None,
        }
    }

    #[test]
    fn a_batch_commits_one_past_each_partitions_last_record() {
        let records = [record(0, 7), record(1, 3), record(0, 8), record(1, 4)];
        assert_eq!(
            batch_ends(records.iter()),
            vec![("events".into(), 0, 9), ("events".into(), 1, 5)]
        );
    }
}
