//! Retry tiers: topics whose records become ready a fixed delay after they were produced.
//!
//! Within one partition, records are produced in time order, so ready times only grow. When the
//! head of a partition is not ready yet, the partition is paused and the record held until its
//! time; then it is handed on and the partition resumed. Nothing polls in a busy loop, and
//! memory holds at most the head of each paused partition (plus what was already in flight).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::consumer::Dispatcher;
use crate::{AtLeastOnceConsumer, ConsumedRecord, KafkaAdapterError, KafkaArgs};

type Partition = (String, i32);

/// A group consumer of delay topics.
pub struct DelayedConsumer {
    consumer: AtLeastOnceConsumer,
    delays: HashMap<String, Duration>,
}

impl DelayedConsumer {
    /// Joins `group` on every topic of `tiers` (topic, delay).
    pub fn subscribe(
        args: &KafkaArgs,
        group: &str,
        tiers: &[(String, Duration)],
    ) -> Result<Self, KafkaAdapterError> {
        let topics: Vec<String> = tiers.iter().map(|(topic, _)| topic.clone()).collect();
        Ok(Self {
            consumer: AtLeastOnceConsumer::subscribe(args, group, &topics)?,
            delays: tiers.iter().cloned().collect(),
        })
    }

    /// When `record` is ready, as an instant of the runtime's clock.
    fn ready_at(&self, record: &ConsumedRecord) -> Instant {
        let delay = self.delays.get(&record.topic).copied().unwrap_or_default();
        let produced_ms = record.timestamp_ms.unwrap_or(0);
        let now_ms = unix_now_ms();
        let ready_ms =
            produced_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        let wait = u64::try_from(ready_ms.saturating_sub(now_ms)).unwrap_or(0);
        Instant::now() + Duration::from_millis(wait)
    }

    /// Like [`AtLeastOnceConsumer::run_concurrently`], handing each record on once it is ready.
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
        let dispatcher = Dispatcher::new(self.consumer.clone(), concurrency, handle);
        let mut held: HashMap<Partition, VecDeque<ConsumedRecord>> = HashMap::new();
        let mut timers: BinaryHeap<Reverse<(Instant, Partition)>> = BinaryHeap::new();
        loop {
            let next_timer = timers.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = sleep_until(next_timer), if next_timer.is_some() => {
                    let Some(Reverse((_, partition))) = timers.pop() else { continue };
                    let Some(queue) = held.get_mut(&partition) else { continue };
                    while let Some(front) = queue.front() {
                        let ready_at = self.ready_at(front);
                        if ready_at > Instant::now() {
                            timers.push(Reverse((ready_at, partition.clone())));
                            break;
                        }
                        let record = queue.pop_front().expect("front exists");
                        dispatcher.dispatch(record).await?;
                    }
                    if queue.is_empty() {
                        held.remove(&partition);
                        if let Err(err) = self.consumer.resume(&partition.0, partition.1) {
                            tracing::debug!(error = %err, topic = partition.0, partition = partition.1, "could not resume");
                        }
                    }
                }
                record = self.consumer.next(shutdown) => {
                    let record = match record {
                        None => break,
                        Some(Ok(record)) => record,
                        Some(Err(err)) => {
                            tracing::warn!(error = %err, "reading retry tiers failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                    let partition = (record.topic.clone(), record.partition);
                    if let Some(queue) = held.get_mut(&partition) {
                        // Fetched before the pause took effect: it waits behind the head.
                        queue.push_back(record);
                        continue;
                    }
                    let ready_at = self.ready_at(&record);
                    if ready_at <= Instant::now() {
                        dispatcher.dispatch(record).await?;
                        continue;
                    }
                    self.consumer.pause(&partition.0, partition.1)?;
                    timers.push(Reverse((ready_at, partition.clone())));
                    held.insert(partition, VecDeque::from([record]));
                }
            }
        }
        // Held records were never started: their offsets stay uncommitted and they are read
        // again after a restart.
        dispatcher.drain(grace).await
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn unix_now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
