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

use std::future::Future;
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

/// Where attempts are written: the ledger's store.
pub trait AttemptStore: Clone + Send + Sync + 'static {
    /// Writes `attempts` in one request.
    fn record_attempts(
        &self,
        attempts: &[&AttemptRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl AttemptStore for Ledger {
    fn record_attempts(
        &self,
        attempts: &[&AttemptRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Ledger::record_attempts(self, attempts)
    }
}

/// An attempt waiting for its group's write, and where its result goes.
struct Waiting {
    attempt: Arc<AttemptRecord>,
    written: oneshot::Sender<Result<(), StoreError>>,
}

/// The writer's handle: hands attempts to the task that groups them.
#[derive(Clone)]
pub struct AttemptGroups<S> {
    store: S,
    queue: mpsc::UnboundedSender<Waiting>,
}

impl<S: AttemptStore> AttemptGroups<S> {
    /// Starts the grouping task, with at most `slots` group writes at once. It ends when every
    /// handle is dropped.
    pub fn start(store: S, slots: usize, metrics: LedgerMetrics) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        let slots = Arc::new(Semaphore::new(slots));
        tokio::spawn(group(store.clone(), waiting, slots, metrics));
        Self { store, queue }
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
        self.store.record_attempts(&[&attempt]).await
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

async fn group<S: AttemptStore>(
    store: S,
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
        let (store, metrics) = (store.clone(), metrics.clone());
        tokio::spawn(async move {
            write_group(&store, members, &metrics).await;
            drop(slot);
        });
    }
}

async fn write_group<S: AttemptStore>(
    store: &S,
    mut members: Vec<Waiting>,
    metrics: &LedgerMetrics,
) {
    let attempts: Vec<&AttemptRecord> = members.iter().map(|m| m.attempt.as_ref()).collect();
    // A member that is no longer waited for (abandoned at shutdown) is not answered.
    match store.record_attempts(&attempts).await {
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
            metrics.groups_split.inc();
            let alone = members.into_iter().map(|member| async move {
                let result = store.record_attempts(&[&member.attempt]).await;
                let _ = member.written.send(result);
            });
            futures::future::join_all(alone).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;
    use hookline_schemas::{AttemptOutcome, SCHEMA_VERSION};
    use prometheus::Registry;
    use tokio::sync::Notify;

    use super::*;

    /// A store that keeps the attempt ids of each request, refuses every request holding
    /// `att_refused`, and holds its first request until `release` is notified.
    #[derive(Clone, Default)]
    struct Recording {
        requests: Arc<Mutex<Vec<Vec<String>>>>,
        release: Arc<Notify>,
        hold_first: bool,
    }

    impl AttemptStore for Recording {
        async fn record_attempts(&self, attempts: &[&AttemptRecord]) -> Result<(), StoreError> {
            let ids: Vec<String> = attempts.iter().map(|a| a.attempt_id.clone()).collect();
            let first = {
                let mut requests = self.requests.lock().unwrap();
                requests.push(ids.clone());
                requests.len() == 1
            };
            if first && self.hold_first {
                self.release.notified().await;
            }
            if ids.iter().any(|id| id == "att_refused") {
                return Err(StoreError::InvalidKeyspace("refused".into()));
            }
            Ok(())
        }
    }

    fn attempt(id: &str, body_bytes: usize) -> Arc<AttemptRecord> {
        Arc::new(AttemptRecord {
            schema_version: SCHEMA_VERSION,
            attempt_id: id.into(),
            delivery_id: format!("msg_{id}"),
            tenant_id: "ten_1".into(),
            webhook_id: "wh_1".into(),
            event_id: "evt_1".into(),
            event_type: "a.b".into(),
            event_accepted_at: None,
            attempt_number: 1,
            url: "https://example.com/".into(),
            attempted_at: Utc::now(),
            duration_ms: 1,
            outcome: AttemptOutcome::Succeeded,
            response_status: Some(200),
            response_body: Some("x".repeat(body_bytes)),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            response_headers_truncated: false,
            error_class: None,
            error: None,
            next_attempt_at: None,
            replay: false,
        })
    }

    fn metrics() -> LedgerMetrics {
        LedgerMetrics::register(&Registry::new()).unwrap()
    }

    /// Starts a write of each attempt while the store holds its first request (one slot), then
    /// releases it: the rest queue and go together.
    async fn queued_behind_one(
        store: &Recording,
        attempts: Vec<Arc<AttemptRecord>>,
        metrics: &LedgerMetrics,
    ) -> Vec<Result<(), StoreError>> {
        let groups = AttemptGroups::start(store.clone(), 1, metrics.clone());
        let mut writes = Vec::new();
        for attempt in attempts {
            let groups = groups.clone();
            writes.push(tokio::spawn(async move { groups.write(attempt).await }));
            tokio::task::yield_now().await;
        }
        while store.requests.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        store.release.notify_one();
        let mut results = Vec::new();
        for write in writes {
            results.push(write.await.unwrap());
        }
        results
    }

    #[tokio::test]
    async fn attempts_queued_while_every_slot_is_busy_go_in_one_request() {
        let store = Recording {
            hold_first: true,
            ..Recording::default()
        };
        let attempts = (0..5).map(|n| attempt(&format!("att_{n}"), 10)).collect();
        let metrics = metrics();
        let results = queued_behind_one(&store, attempts, &metrics).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(metrics.groups_split.get(), 0);
        let requests = store.requests.lock().unwrap().clone();
        assert_eq!(
            requests,
            [vec!["att_0"], vec!["att_1", "att_2", "att_3", "att_4"]]
        );
    }

    #[tokio::test]
    async fn an_attempt_the_store_refuses_fails_alone() {
        let store = Recording {
            hold_first: true,
            ..Recording::default()
        };
        let ids = ["att_0", "att_1", "att_refused", "att_3"];
        let attempts = ids.iter().map(|id| attempt(id, 10)).collect();
        let metrics = metrics();
        let results = queued_behind_one(&store, attempts, &metrics).await;
        assert_eq!(metrics.groups_split.get(), 1);
        let failed: Vec<&str> = ids
            .iter()
            .zip(&results)
            .filter(|(_, result)| result.is_err())
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(failed, ["att_refused"]);
        let requests = store.requests.lock().unwrap().clone();
        assert_eq!(requests[1], ["att_1", "att_refused", "att_3"]);
        assert_eq!(
            requests.len(),
            5,
            "the group, then each of its attempts alone"
        );
    }

    #[tokio::test]
    async fn a_group_stays_under_the_byte_bound() {
        let store = Recording {
            hold_first: true,
            ..Recording::default()
        };
        let attempts = (0..7)
            .map(|n| attempt(&format!("att_{n}"), 10_000))
            .collect();
        queued_behind_one(&store, attempts, &metrics()).await;
        let sizes: Vec<usize> = store
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 7);
        assert!(sizes.iter().all(|size| *size <= 3), "{sizes:?}");
    }

    #[tokio::test]
    async fn an_attempt_arriving_at_a_free_slot_goes_alone_at_once() {
        let store = Recording::default();
        let groups = AttemptGroups::start(store.clone(), 4, metrics());
        groups.write(attempt("att_0", 10)).await.unwrap();
        groups.write(attempt("att_1", 10)).await.unwrap();
        let requests = store.requests.lock().unwrap().clone();
        assert_eq!(requests, [vec!["att_0"], vec!["att_1"]]);
    }
}
