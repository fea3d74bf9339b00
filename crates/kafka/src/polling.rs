//! A group consumer that can wait on something else for as long as it takes without leaving
//! its group.
//!
//! librdkafka drops a member that does not poll within `max.poll.interval.ms`, and a stage
//! blocked on its downstream (Kafka or the database away, every handler slot busy) would stop
//! polling. [`Polling::hold`] keeps polling while it waits: partitions are paused (librdkafka
//! then purges what it prefetched and, on resume, fetches again from the last record handed
//! out), and records that were already on their way are held in memory, in order, for
//! [`Polling::next`] to hand out first.
//!
//! It also counts revocations per partition ([`Ownership`]): each record carries its
//! partition's count from when it was read, so work read before a partition was taken away
//! can be told apart from work read after.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::{ClientConfig, ClientContext, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::consumer::detach;
use crate::{ConsumedRecord, KafkaAdapterError};

pub(crate) type Partition = (String, i32);

/// How long a wait may last before the consumer pauses its partitions and polls: far below
/// `max.poll.interval.ms`, far above a handler slot freeing under load.
const HOLD_GRACE: Duration = Duration::from_secs(2);

/// How many times each partition was taken from this consumer.
#[derive(Default)]
pub(crate) struct Ownership(Mutex<HashMap<Partition, u64>>);

impl Ownership {
    fn revoke(&self, list: &TopicPartitionList) {
        let mut epochs = self.0.lock().expect("ownership lock poisoned");
        for element in list.elements() {
            *epochs
                .entry((element.topic().to_owned(), element.partition()))
                .or_default() += 1;
        }
    }

    fn epoch(&self, topic: &str, partition: i32) -> u64 {
        let epochs = self.0.lock().expect("ownership lock poisoned");
        epochs
            .get(&(topic.to_owned(), partition))
            .copied()
            .unwrap_or_default()
    }

    pub(crate) fn still_owns(&self, read: &Read) -> bool {
        self.epoch(&read.record.topic, read.record.partition) == read.epoch
    }
}

/// Sees rebalances as the group hands them out (on the polling task, inside `recv`).
pub(crate) struct PollingContext {
    ownership: Arc<Ownership>,
    /// Cancelled when their partition is revoked: work on its records stops, and its new owner
    /// takes over from the committed offset.
    abandon: Mutex<HashMap<Partition, CancellationToken>>,
    /// Whether partitions are to be paused now: ones assigned meanwhile are paused too.
    holding: AtomicBool,
}

impl ClientContext for PollingContext {}

impl ConsumerContext for PollingContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            self.ownership.revoke(list);
            let mut abandon = self.abandon.lock().expect("abandon lock poisoned");
            for element in list.elements() {
                let partition = (element.topic().to_owned(), element.partition());
                if let Some(token) = abandon.remove(&partition) {
                    token.cancel();
                }
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            // A partition keeps its paused flag across a revocation; a new owner starts
            // fetching unless the stage is holding.
            let outcome = if self.holding.load(Ordering::SeqCst) {
                consumer.pause(list)
            } else {
                consumer.resume(list)
            };
            if let Err(err) = outcome {
                tracing::debug!(error = %err, "could not set the paused state of new partitions");
            }
        }
    }
}

/// A record and its partition's epoch when it was read.
pub(crate) struct Read {
    pub record: ConsumedRecord,
    pub epoch: u64,
}

pub(crate) struct Polling {
    consumer: StreamConsumer<PollingContext>,
    held: Mutex<VecDeque<Read>>,
    /// Partitions the caller paused itself (a retry tier waiting for its head): a hold leaves
    /// them paused.
    paused_by_caller: Mutex<HashSet<Partition>>,
}

impl Polling {
    pub(crate) fn subscribe(
        config: &ClientConfig,
        topics: &[&str],
    ) -> Result<Self, KafkaAdapterError> {
        let consumer: StreamConsumer<PollingContext> =
            config.create_with_context(PollingContext {
                ownership: Arc::new(Ownership::default()),
                abandon: Mutex::new(HashMap::new()),
                holding: AtomicBool::new(false),
            })?;
        consumer.subscribe(topics)?;
        Ok(Self {
            consumer,
            held: Mutex::new(VecDeque::new()),
            paused_by_caller: Mutex::new(HashSet::new()),
        })
    }

    pub(crate) fn consumer(&self) -> &StreamConsumer<PollingContext> {
        &self.consumer
    }

    fn ownership(&self) -> &Ownership {
        &self.consumer.context().ownership
    }

    pub(crate) fn still_owns(&self, read: &Read) -> bool {
        self.ownership().still_owns(read)
    }

    fn read(&self, message: &rdkafka::message::BorrowedMessage<'_>) -> Read {
        let record = detach(message);
        let epoch = self.ownership().epoch(&record.topic, record.partition);
        Read { record, epoch }
    }

    /// A token cancelled when `parent` is, or when the partition is revoked.
    pub(crate) fn abandon_token(
        &self,
        topic: &str,
        partition: i32,
        parent: &CancellationToken,
    ) -> CancellationToken {
        let mut abandon = self
            .consumer
            .context()
            .abandon
            .lock()
            .expect("abandon lock poisoned");
        abandon
            .entry((topic.to_owned(), partition))
            .or_insert_with(|| parent.child_token())
            .clone()
    }

    /// Whether records are held from an earlier wait.
    pub(crate) fn has_held(&self) -> bool {
        !self.held.lock().expect("held lock poisoned").is_empty()
    }

    /// Up to `max` held records of partitions still owned, oldest first.
    pub(crate) fn take_held(&self, max: usize) -> Vec<Read> {
        let mut held = self.held.lock().expect("held lock poisoned");
        held.retain(|read| self.ownership().still_owns(read));
        let count = held.len().min(max);
        held.drain(..count).collect()
    }

    /// The next record: a held one first, else the next one fetched.
    pub(crate) async fn next(&self) -> Result<Read, KafkaAdapterError> {
        if let Some(read) = self.take_held(1).pop() {
            return Ok(read);
        }
        self.recv().await
    }

    /// The next record fetched (held ones are not looked at).
    pub(crate) async fn recv(&self) -> Result<Read, KafkaAdapterError> {
        let message = self.consumer.recv().await?;
        Ok(self.read(&message))
    }

    /// Runs `work` while polling with the partitions paused (see the module's docs). `None` if
    /// `shutdown` fires first. A wait shorter than [`HOLD_GRACE`] (a handler slot freeing
    /// under a backlog) polls nothing: pausing purges what librdkafka prefetched, so pausing
    /// on every short wait would refetch the backlog record by record.
    pub(crate) async fn hold<F: Future>(
        &self,
        work: F,
        shutdown: &CancellationToken,
    ) -> Option<F::Output> {
        tokio::pin!(work);
        tokio::select! {
            () = shutdown.cancelled() => return None,
            output = &mut work => return Some(output),
            () = tokio::time::sleep(HOLD_GRACE) => {}
        }
        let mut paused = false;
        let outcome = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break None,
                output = &mut work => break Some(output),
                message = self.consumer.recv() => {
                    // Paused only once something arrives: a short wait costs nothing.
                    if !paused {
                        self.set_holding(true);
                        paused = true;
                    }
                    match message {
                        Ok(message) => {
                            let read = self.read(&message);
                            self.held.lock().expect("held lock poisoned").push_back(read);
                        }
                        Err(err) => tracing::debug!(error = %err, "polling while holding"),
                    }
                }
            }
        };
        if paused {
            self.set_holding(false);
        }
        outcome
    }

    /// Pauses (or resumes) every assigned partition the caller did not pause itself.
    fn set_holding(&self, holding: bool) {
        self.consumer
            .context()
            .holding
            .store(holding, Ordering::SeqCst);
        let outcome = self.consumer.assignment().and_then(|assignment| {
            let by_caller = self.paused_by_caller.lock().expect("paused lock poisoned");
            let mut list = TopicPartitionList::new();
            for element in assignment.elements() {
                let partition = (element.topic().to_owned(), element.partition());
                if !by_caller.contains(&partition) {
                    list.add_partition(element.topic(), element.partition());
                }
            }
            if holding {
                self.consumer.pause(&list)
            } else {
                self.consumer.resume(&list)
            }
        });
        if let Err(err) = outcome {
            tracing::warn!(error = %err, holding, "could not pause or resume the assignment");
        }
    }

    /// Pauses one partition until [`Polling::resume`] (a hold leaves it paused).
    pub(crate) fn pause(&self, topic: &str, partition: i32) -> Result<(), KafkaAdapterError> {
        self.paused_by_caller
            .lock()
            .expect("paused lock poisoned")
            .insert((topic.to_owned(), partition));
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        self.consumer.pause(&list)?;
        Ok(())
    }

    pub(crate) fn resume(&self, topic: &str, partition: i32) -> Result<(), KafkaAdapterError> {
        self.paused_by_caller
            .lock()
            .expect("paused lock poisoned")
            .remove(&(topic.to_owned(), partition));
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        self.consumer.resume(&list)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(ownership: &Ownership, partition: i32) -> Read {
        Read {
            record: ConsumedRecord {
                topic: "events".into(),
                partition,
                offset: 7,
                timestamp_ms: None,
                key: None,
                payload: None,
            },
            epoch: ownership.epoch("events", partition),
        }
    }

    #[test]
    fn a_record_read_before_its_partition_was_revoked_is_no_longer_owned() {
        let ownership = Ownership::default();
        let (before, other) = (read(&ownership, 0), read(&ownership, 1));
        let mut revoked = TopicPartitionList::new();
        revoked.add_partition("events", 0);
        ownership.revoke(&revoked);
        assert!(!ownership.still_owns(&before));
        assert!(ownership.still_owns(&other));
        assert!(ownership.still_owns(&read(&ownership, 0)));
    }
}
