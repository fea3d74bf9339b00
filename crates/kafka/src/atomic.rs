//! All-or-none publishing: the records of one call are produced in one Kafka transaction, so
//! `read_committed` readers (fanout, the ledger) see every one of them or none.
//!
//! A transactional producer runs one transaction at a time, so a small pool of them serves
//! concurrent calls. A producer whose transaction failed is replaced before it serves again.

use std::sync::Mutex;

use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::Semaphore;

use crate::consumer::blocking;
use crate::transactional::{commit_transaction, produce, transactional_producer};
use crate::{KafkaAdapterError, KafkaArgs, OutgoingRecord};

/// A pool of transactional producers.
pub struct AtomicPublisher {
    idle: Mutex<Vec<Slot>>,
    permits: Semaphore,
}

/// One producer and the settings it was made with (its own transactional id).
struct Slot {
    producer: FutureProducer,
    config: rdkafka::ClientConfig,
}

impl AtomicPublisher {
    /// `transactions` producers named `{transactional_id}-{n}` (`transactional_id` unique per
    /// running instance), their transactions initialized.
    pub async fn start(
        args: &KafkaArgs,
        transactional_id: &str,
        transactions: usize,
    ) -> Result<Self, KafkaAdapterError> {
        let mut idle = Vec::with_capacity(transactions);
        let config = args.transactional_producer_config();
        for n in 0..transactions {
            let mut own = config.clone();
            own.set("transactional.id", format!("{transactional_id}-{n}"));
            idle.push(Slot {
                producer: transactional_producer(&own).await?,
                config: own,
            });
        }
        Ok(Self {
            idle: Mutex::new(idle),
            permits: Semaphore::new(transactions),
        })
    }

    /// Produces `records` in one transaction and waits until it is committed. On an error
    /// none of them is visible to `read_committed` readers.
    pub async fn send_all(&self, records: &[OutgoingRecord]) -> Result<(), KafkaAdapterError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| KafkaAdapterError::Stopped)?;
        let mut lease = Lease {
            pool: self,
            slot: self.idle.lock().expect("pool lock poisoned").pop(),
        };
        let slot = lease.slot.as_mut().expect("one idle producer per permit");
        let outcome = transact(&slot.producer, records).await;
        if outcome.is_err() {
            slot.producer = recover(slot).await;
        }
        outcome
    }
}

/// A producer taken from the pool; it goes back even when the call is dropped midway (its
/// open transaction is then aborted by the next call's recovery, or times out at the broker).
struct Lease<'a> {
    pool: &'a AtomicPublisher,
    slot: Option<Slot>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.pool
                .idle
                .lock()
                .expect("pool lock poisoned")
                .push(slot);
        }
    }
}

/// A fresh producer for the slot, with its transactional id: it fences the failed one and
/// aborts what that left open. (Aborting in place leaves librdkafka bumping the producer's
/// epoch in the background, which can purge the next transaction's records.)
async fn recover(slot: &Slot) -> FutureProducer {
    match transactional_producer(&slot.config).await {
        Ok(fresh) => fresh,
        Err(err) => {
            // Kafka is away: the old one is tried (and replaced) again next time.
            tracing::warn!(error = %err, "could not start a new publish producer");
            slot.producer.clone()
        }
    }
}

async fn transact(
    producer: &FutureProducer,
    records: &[OutgoingRecord],
) -> Result<(), KafkaAdapterError> {
    let beginning = producer.clone();
    blocking(move || beginning.begin_transaction()).await?;
    let sent =
        futures::future::join_all(records.iter().map(|record| produce(producer, record))).await;
    for outcome in sent {
        outcome?;
    }
    let committing = producer.clone();
    blocking(move || commit_transaction(&committing)).await
}
