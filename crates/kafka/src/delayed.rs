//! Retry tiers: topics whose records become ready a fixed delay after they were produced.
//!
//! Within one partition, records are produced in time order, so ready times only grow. When the
//! head of a partition is not ready yet, the partition is paused and the record held until its
//! time; then it is handed on and the partition resumed. Nothing polls in a busy loop, and
//! memory holds at most the head of each paused partition (plus what was already in flight).
//!
//! How late each record is handed on past its ready time (a backlog of due records, or no free
//! handler slot) is reported to the observer set with [`DelayedConsumer::observe_overdue`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::consumer::Dispatcher;
use crate::{AtLeastOnceConsumer, ConsumedRecord, KafkaAdapterError, KafkaArgs};

type Partition = (String, i32);

/// Told a tier's delay and how long past its ready time a record of that tier was handed on.
type OverdueObserver = Box<dyn Fn(Duration, Duration) + Send + Sync>;

/// A group consumer of delay topics.
pub struct DelayedConsumer {
    consumer: AtLeastOnceConsumer,
    delays: HashMap<String, Duration>,
    observe_overdue: OverdueObserver,
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
            observe_overdue: Box::new(|_, _| {}),
        })
    }

    /// Calls `observe(tier delay, overdue)` for every record handed on, once its handler started.
    #[must_use]
    pub fn observe_overdue(
        mut self,
        observe: impl Fn(Duration, Duration) + Send + Sync + 'static,
    ) -> Self {
        self.observe_overdue = Box::new(observe);
        self
    }

    fn delay_of(&self, record: &ConsumedRecord) -> Duration {
        self.delays.get(&record.topic).copied().unwrap_or_default()
    }

    /// When `record` is ready, as an instant of the runtime's clock. A record without a
    /// timestamp is ready at once.
    fn ready_at(&self, record: &ConsumedRecord) -> Instant {
        let ready_ms = record.timestamp_ms.map_or(0, |produced_ms| {
            ready_ms(produced_ms, self.delay_of(record))
        });
        let wait = u64::try_from(ready_ms.saturating_sub(unix_now_ms())).unwrap_or(0);
        Instant::now() + Duration::from_millis(wait)
    }

    /// Dispatches `record` (waiting for a free slot) and reports how late that was.
    async fn hand_on<H, F>(
        &self,
        dispatcher: &Dispatcher<H>,
        record: ConsumedRecord,
        shutdown: &CancellationToken,
    ) -> Result<(), KafkaAdapterError>
    where
        H: Fn(ConsumedRecord, CancellationToken) -> F + Send + Sync + 'static,
        F: std::future::Future<Output = bool> + Send + 'static,
    {
        let delay = self.delay_of(&record);
        let ready = record
            .timestamp_ms
            .map(|produced_ms| ready_ms(produced_ms, delay));
        dispatcher.dispatch(record, shutdown).await?;
        if let Some(ready) = ready {
            (self.observe_overdue)(delay, overdue(ready, unix_now_ms()));
        }
        Ok(())
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
                        self.hand_on(&dispatcher, record, shutdown).await?;
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
                        self.hand_on(&dispatcher, record, shutdown).await?;
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

/// When a record produced at `produced_ms` on a tier of `delay` is ready, in Unix milliseconds.
fn ready_ms(produced_ms: i64, delay: Duration) -> i64 {
    produced_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
}

/// How long past `ready_ms` the moment `now_ms` is; zero when it is not past.
fn overdue(ready_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(now_ms.saturating_sub(ready_ms)).unwrap_or(0))
}

fn unix_now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_ready_its_tier_delay_after_it_was_produced() {
        assert_eq!(ready_ms(1_000, Duration::from_secs(5)), 6_000);
        assert_eq!(ready_ms(i64::MAX - 1, Duration::from_secs(5)), i64::MAX);
    }

    #[test]
    fn overdue_counts_only_time_past_ready() {
        assert_eq!(overdue(6_000, 6_250), Duration::from_millis(250));
        assert_eq!(overdue(6_000, 6_000), Duration::ZERO);
        assert_eq!(overdue(6_000, 5_000), Duration::ZERO);
    }
}
