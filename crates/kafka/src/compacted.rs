//! A KTable-style view of compacted topics.
//!
//! The view assigns itself every partition of its topics from the beginning (no consumer group:
//! every instance holds the whole state) and applies each record, in order, for as long as the
//! process runs. [`CompactedView::catch_up`] reads the topics' high watermarks and waits until
//! everything below them is applied: after it returns, the view reflects every write that was
//! acknowledged before the call began. That is how a webhook whose creation was acknowledged
//! before an event was accepted is sure to see that event, with no clocks involved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::METADATA_TIMEOUT;
use crate::{KafkaAdapterError, KafkaArgs, Position};

/// One record of a compacted topic; `value` is `None` for a tombstone.
#[derive(Debug, Clone, Copy)]
pub struct CompactedRecord<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// Next offset to apply, per (topic, partition).
type Applied = HashMap<(String, i32), i64>;

/// A continuously updated view of compacted topics. Cheap to clone.
#[derive(Clone)]
pub struct CompactedView {
    /// Reads high watermarks. A client of its own: the reader keeps a fetch waiting on the
    /// broker (up to `fetch.wait.max.ms`) and a broker answers one connection's requests in
    /// order, so a watermark query sharing its connection would wait that long per partition.
    watermarks: Arc<BaseConsumer>,
    partitions: Arc<Vec<(String, i32)>>,
    applied: watch::Receiver<Applied>,
}

impl CompactedView {
    /// Starts applying `topics` from their beginning and returns once the view has caught up.
    pub async fn start<F>(
        args: &KafkaArgs,
        topics: Vec<String>,
        mut apply: F,
        shutdown: CancellationToken,
    ) -> Result<Self, KafkaAdapterError>
    where
        F: FnMut(CompactedRecord<'_>) + Send + 'static,
    {
        let config = args.reader_config(&args.group("view"));
        let consumer: Arc<StreamConsumer> = Arc::new(config.create()?);
        let watermarks: Arc<BaseConsumer> = Arc::new(config.create()?);

        let partitions = blocking(&consumer, move |consumer| {
            let mut partitions = Vec::new();
            for topic in &topics {
                let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
                for found in metadata.topics() {
                    // A broker still starting may answer a topic without its partitions; a view
                    // assigned none of them would never read it, so that is an error to retry.
                    if let Some(error) = found.error() {
                        return Err(KafkaError::MetadataFetch(error.into()).into());
                    }
                    if found.partitions().is_empty() {
                        return Err(KafkaError::MetadataFetch(
                            RDKafkaErrorCode::LeaderNotAvailable,
                        )
                        .into());
                    }
                    for partition in found.partitions() {
                        partitions.push((topic.clone(), partition.id()));
                    }
                }
            }
            Ok(partitions)
        })
        .await?;
        let mut assignment = TopicPartitionList::new();
        for (topic, partition) in &partitions {
            assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;

        let (applied_tx, applied) = watch::channel(Applied::new());
        let reader = Arc::clone(&consumer);
        // Stops the reader when this start fails, so a caller that tries again leaves none behind.
        let stop_reader = shutdown.child_token();
        let stopping = stop_reader.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = stopping.cancelled() => return,
                    message = reader.recv() => message,
                };
                match message {
                    Ok(message) => {
                        apply(CompactedRecord {
                            topic: message.topic(),
                            key: message.key().unwrap_or_default(),
                            value: message.payload(),
                        });
                        let partition = (message.topic().to_owned(), message.partition());
                        let next = message.offset() + 1;
                        applied_tx.send_modify(|applied| {
                            applied.insert(partition, next);
                        });
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "compacted view read failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });

        let view = Self {
            watermarks,
            partitions: Arc::new(partitions),
            applied,
        };
        if let Err(error) = view.catch_up(Duration::from_secs(60)).await {
            stop_reader.cancel();
            return Err(error);
        }
        Ok(view)
    }

    /// Waits until the record written at `position` of `topic` is applied (read-your-writes).
    pub async fn wait_applied(
        &self,
        topic: &str,
        position: Position,
        timeout: Duration,
    ) -> Result<(), KafkaAdapterError> {
        let partition = (topic.to_owned(), position.partition);
        self.wait_until(vec![(partition, position.offset + 1)], timeout)
            .await
    }

    /// Waits until every record acknowledged before this call is applied. One broker round
    /// trip when the view is already there (the common case: fanout calls this per batch);
    /// the partitions' starts are asked only for those behind, since an emptied partition
    /// has nothing left to apply.
    pub async fn catch_up(&self, timeout: Duration) -> Result<(), KafkaAdapterError> {
        let partitions = Arc::clone(&self.partitions);
        let applied = self.applied.clone();
        let targets = blocking(&self.watermarks, move |consumer| {
            // One request per bound for every partition at once, not two per partition.
            let highs = offsets_at(consumer, &partitions, Offset::End)?;
            let behind: Vec<((String, i32), i64)> = {
                let applied = applied.borrow();
                partitions
                    .iter()
                    .cloned()
                    .zip(highs)
                    .filter(|(partition, high)| {
                        applied.get(partition).is_none_or(|next| next < high)
                    })
                    .collect()
            };
            if behind.is_empty() {
                return Ok(behind);
            }
            let lagging: Vec<(String, i32)> = behind
                .iter()
                .map(|(partition, _)| partition.clone())
                .collect();
            let lows = offsets_at(consumer, &lagging, Offset::Beginning)?;
            Ok(behind
                .into_iter()
                .zip(lows)
                .filter(|((_, high), low)| high > low)
                .map(|(target, _)| target)
                .collect())
        })
        .await?;
        if targets.is_empty() {
            return Ok(());
        }
        self.wait_until(targets, timeout).await
    }

    async fn wait_until(
        &self,
        targets: Vec<((String, i32), i64)>,
        timeout: Duration,
    ) -> Result<(), KafkaAdapterError> {
        let mut applied = self.applied.clone();
        let reached = async move {
            applied
                .wait_for(|applied| {
                    targets.iter().all(|(partition, high)| {
                        applied.get(partition).is_some_and(|next| next >= high)
                    })
                })
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(KafkaAdapterError::Stopped),
            Err(_) => Err(KafkaAdapterError::Timeout("the compacted view to catch up")),
        }
    }
}

/// The first (`Offset::Beginning`) or next (`Offset::End`) offset of each of `partitions`, in
/// their order, asked for in one request.
fn offsets_at(
    consumer: &BaseConsumer,
    partitions: &[(String, i32)],
    bound: Offset,
) -> Result<Vec<i64>, KafkaAdapterError> {
    let mut query = TopicPartitionList::new();
    for (topic, partition) in partitions {
        // The broker reads these special "timestamps" as the log's start and end.
        query.add_partition_offset(topic, *partition, bound)?;
    }
    let answer = consumer.offsets_for_times(query, METADATA_TIMEOUT)?;
    partitions
        .iter()
        .map(|(topic, partition)| {
            let element = answer
                .find_partition(topic, *partition)
                .ok_or(KafkaError::OffsetFetch(RDKafkaErrorCode::UnknownPartition))?;
            element.error()?;
            match element.offset() {
                Offset::Offset(offset) => Ok(offset),
                // An empty partition answers "end" for both bounds.
                _ => Ok(0),
            }
        })
        .collect()
}

/// Runs a blocking rdkafka call off the async runtime.
async fn blocking<C, T, F>(consumer: &Arc<C>, call: F) -> Result<T, KafkaAdapterError>
where
    C: Send + Sync + 'static,
    T: Send + 'static,
    F: FnOnce(&C) -> Result<T, KafkaAdapterError> + Send + 'static,
{
    let consumer = Arc::clone(consumer);
    tokio::task::spawn_blocking(move || call(&consumer))
        .await
        .map_err(|_| KafkaAdapterError::Stopped)?
}
