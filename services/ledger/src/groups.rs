//! Attempts written in groups: the attempts waiting to be written when a write can start go to
//! the database in one request.
//!
//! The database spends most of its work on an attempt per request, not per row (measured in
//! docs/benchmarks.md), so under load the writer sends several attempts at once. Nothing waits
//! for a group to fill: an attempt that arrives while a write slot is free goes alone, and
//! groups form only from what queues while every slot is busy. A group is bounded in attempts
//! and in bytes, below the database's refusal of large batches; if a group's write fails, each
//! of its attempts is written on its own, so one attempt the database refuses is dead-lettered
//! alone and a transient failure is retried by each attempt's own back-off.

use std::sync::Arc;

use hookline_schemas::AttemptRecord;
use hookline_store::{Ledger, StoreError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::metrics::LedgerMetrics;

/// Attempts in one request at most.
pub const MAX_ATTEMPTS: usize = 16;
/// What a group's rows may weigh at most, as `weight` estimates it: under Cassandra's default
/// `batch_size_fail_threshold` (50 KiB) with room for the columns not counted.
const MAX_BYTES: usize = 32 * 1024;

/// An attempt waiting for its group's write, and where its result goes.
struct Waiting {
    attempt: Arc<AttemptRecord>,
    written: oneshot::Sender<Result<(), StoreError>>,
}

/// The writer's handle: hands attempts to the task that groups them.
#[derive(Clone)]
pub struct AttemptGroups {
    ledger: Ledger,
    queue: mpsc::UnboundedSender<Waiting>,
}

impl AttemptGroups {
    /// Starts the grouping task, with at most `slots` group writes at once. It ends when every
    /// handle is dropped.
    pub fn start(ledger: Ledger, slots: usize, metrics: LedgerMetrics) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        let slots = Arc::new(Semaphore::new(slots));
        tokio::spawn(group(ledger.clone(), waiting, slots, metrics));
        Self { ledger, queue }
    }

    /// Writes `attempt`, with whichever attempts share its group (alone if the grouping task
    /// is gone, as while the runtime shuts down).
    pub async fn write(&self, attempt: Arc<AttemptRecord>) -> Result<(), StoreError> {
        let (written, result) = oneshot::channel();
        let waiting = Waiting {
            attempt: attempt.clone(),
            written,
        };
        if self.queue.send(waiting).is_ok() {
            if let Ok(result) = result.await {
                return result;
            }
        }
        self.ledger.record_attempt(&attempt).await
    }
}

/// The bytes an attempt's rows carry beyond their fixed columns: its URL and headers (written
/// in both its delivery's partition and its webhook's log), its answer's body and error.
fn weight(attempt: &AttemptRecord) -> usize {
    let headers: usize = attempt
        .request_headers
        .iter()
        .chain(&attempt.response_headers)
        .map(|header| header.name.len() + header.value.len() + 8)
        .sum();
    let once = |text: &Option<String>| text.as_ref().map_or(0, String::len);
    1024 + 2 * (attempt.url.len() + headers) + once(&attempt.response_body) + once(&attempt.error)
}

async fn group(
    ledger: Ledger,
    mut waiting: mpsc::UnboundedReceiver<Waiting>,
    slots: Arc<Semaphore>,
    metrics: LedgerMetrics,
) {
    let mut carried = None;
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match waiting.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        // The group forms once a slot is free, from what queued meanwhile.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = weight(&first.attempt);
        let mut members = vec![first];
        while members.len() < MAX_ATTEMPTS {
            let Ok(next) = waiting.try_recv() else { break };
            let next_bytes = weight(&next.attempt);
            if bytes + next_bytes > MAX_BYTES {
                carried = Some(next);
                break;
            }
            bytes += next_bytes;
            members.push(next);
        }
        metrics.group_size.observe(members.len() as f64);
        let ledger = ledger.clone();
        tokio::spawn(async move {
            write_group(&ledger, members).await;
            drop(slot);
        });
    }
}

async fn write_group(ledger: &Ledger, mut members: Vec<Waiting>) {
    let attempts: Vec<&AttemptRecord> = members.iter().map(|m| m.attempt.as_ref()).collect();
    // A member that is no longer waited for (abandoned at shutdown) is not answered.
    match ledger.record_attempts(&attempts).await {
        Ok(()) => {
            for member in members {
                let _ = member.written.send(Ok(()));
            }
        }
        Err(err) if members.len() == 1 => {
            if let Some(member) = members.pop() {
                let _ = member.written.send(Err(err));
            }
        }
        Err(_) => {
            let alone = members.into_iter().map(|member| async move {
                let result = ledger.record_attempt(&member.attempt).await;
                let _ = member.written.send(result);
            });
            futures::future::join_all(alone).await;
        }
    }
}
