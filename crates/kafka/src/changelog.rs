//! Changelogs: state a stage keeps per input partition, written in the same transactions as
//! its output, and read back by the partition's next owner (like a Kafka Streams state store's
//! changelog).
//!
//! A changelog has the partition count of the input, and a stage writes the state of input
//! partition `p` to changelog partition `p` (`OutgoingRecord::partition`).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::METADATA_TIMEOUT;
use crate::consumer::{blocking, detach};
use crate::{ConsumedRecord, KafkaAdapterError, KafkaArgs};

/// How long one poll of the reader waits.
const POLL: Duration = Duration::from_millis(100);

/// Reads partition `partition` of `topic`, committed records only, from the first one produced
/// at or after `since_ms` (Unix milliseconds) to the end, and gives each to `apply`, in order.
///
/// "The end" is the high watermark when the read begins, reached once every transaction below
/// it has committed or aborted: a previous owner's transaction still open at a rebalance is
/// waited for (it also holds the input's committed offsets), never guessed at.
pub async fn read_partition<T, F>(
    args: &KafkaArgs,
    topic: &str,
    partition: i32,
    since_ms: i64,
    state: T,
    mut apply: F,
) -> Result<T, KafkaAdapterError>
where
    T: Send + 'static,
    F: FnMut(&mut T, ConsumedRecord) + Send + 'static,
{
    let consumer: BaseConsumer = args.reader_config(&args.group("changelog")).create()?;
    let topic = topic.to_owned();
    blocking(move || {
        let (_, high) = consumer.fetch_watermarks(&topic, partition, METADATA_TIMEOUT)?;
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition_offset(&topic, partition, Offset::Offset(since_ms))?;
        let start = consumer
            .offsets_for_times(wanted, METADATA_TIMEOUT)?
            .find_partition(&topic, partition)
            .map(|found| found.offset())
            .unwrap_or(Offset::End);
        // No record at or after `since_ms`: nothing to read.
        let start = match start {
            Offset::Offset(offset) => offset,
            _ => return Ok(state),
        };
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, partition, Offset::Offset(start))?;
        consumer.assign(&assignment)?;
        let mut state = state;
        while position(&consumer, &topic, partition)? < high {
            match consumer.poll(POLL) {
                Some(Ok(message)) => apply(&mut state, detach(&message)),
                Some(Err(err)) => return Err(err),
                None => {}
            }
        }
        Ok(state)
    })
    .await
}

/// The next offset the consumer hands out (past transaction markers too), or 0 before any.
fn position(consumer: &BaseConsumer, topic: &str, partition: i32) -> Result<i64, KafkaError> {
    let positions = consumer.position()?;
    Ok(
        match positions
            .find_partition(topic, partition)
            .map(|found| found.offset())
        {
            Some(Offset::Offset(offset)) => offset,
            _ => 0,
        },
    )
}
