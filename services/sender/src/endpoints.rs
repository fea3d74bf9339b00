//! Per-endpoint state that keeps one endpoint from holding back the others: a cap on requests
//! in flight, a bounded queue behind it (overflow is parked to a retry tier), a circuit breaker,
//! and an optional request-rate limit.
//!
//! The queue is bounded by time rather than by count alone: an endpoint may queue as many tasks
//! as it finishes within `queue_wait` at its recent pace (and at least `queued`), so a burst for
//! a fast endpoint waits a few milliseconds in memory while a slow endpoint's overflow is parked
//! at once.
//!
//! While a circuit is open, its endpoint's tasks are held rather than attempted: a few in memory
//! (as many as may queue, and no more than `held` in the process), woken when the circuit
//! changes; the rest parked until the probe is due.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookline_domain::circuit::{Admission, CircuitBreaker, CircuitState};
use hookline_schemas::{Ordering, WebhookRecord};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Limits applied to every endpoint.
#[derive(Debug, Clone, Copy)]
pub struct EndpointLimits {
    /// Requests in flight per endpoint (FIFO endpoints: always 1).
    pub in_flight: usize,
    /// Tasks waiting for a slot per endpoint at the least; beyond the queue tasks are parked
    /// (FIFO endpoints wait).
    pub queued: usize,
    /// How long a queued task may expect to wait for a slot at the endpoint's recent pace.
    pub queue_wait: Duration,
    pub circuit_threshold: u32,
    pub circuit_cooldown: Duration,
    /// Tasks held in memory while their circuits are open, across every endpoint.
    pub held: usize,
}

/// The state of one endpoint (one webhook).
pub struct Endpoint {
    slots: Arc<Semaphore>,
    slot_count: usize,
    waiting: AtomicUsize,
    /// Recent request duration (exponentially weighted), `None` before the first answer.
    latency: Mutex<Option<Duration>>,
    breaker: Mutex<CircuitBreaker>,
    /// Bumped whenever an answer comes while the circuit is open or opens it: held tasks wake.
    circuit_changes: watch::Sender<u64>,
    /// Tasks held in memory while the circuit is open.
    held: AtomicUsize,
    rate: Mutex<TokenBucket>,
    /// Whether this process already reported the endpoint failing (so it reports once).
    pub reported_failing: Mutex<bool>,
}

/// What an HTTP outcome did to its endpoint.
pub struct Answered {
    pub consecutive_failures: u32,
    pub circuit: CircuitChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitChange {
    Opened,
    Closed,
    Unchanged,
}

/// What the endpoint lets a task do.
pub enum Admit {
    /// Go ahead; hold the permit for the request.
    Go(OwnedSemaphorePermit),
    /// The queue is full: park the task.
    Park,
}

impl Endpoint {
    fn new(limits: &EndpointLimits, fifo: bool) -> Self {
        let slots = if fifo { 1 } else { limits.in_flight.max(1) };
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            slot_count: slots,
            waiting: AtomicUsize::new(0),
            latency: Mutex::new(None),
            breaker: Mutex::new(CircuitBreaker::new(
                limits.circuit_threshold,
                limits.circuit_cooldown,
            )),
            circuit_changes: watch::Sender::new(0),
            held: AtomicUsize::new(0),
            rate: Mutex::new(TokenBucket::default()),
            reported_failing: Mutex::new(false),
        }
    }

    /// Tasks that may wait for a slot: those the endpoint finishes within `wait` at its recent
    /// pace, and at least `floor`.
    pub fn queue_capacity(&self, floor: usize, wait: Duration) -> usize {
        let latency = *self.latency.lock().expect("latency lock");
        let paced = latency
            .filter(|latency| !latency.is_zero())
            .map_or(0, |latency| {
                (wait.as_secs_f64() / latency.as_secs_f64() * self.slot_count as f64) as usize
            });
        paced.max(floor)
    }

    /// Waits for a request slot, unless `queue_limit` tasks already wait (then `Park`).
    /// Tasks wait in arrival order, which keeps FIFO endpoints in order.
    pub async fn admit(&self, queue_limit: Option<usize>) -> Admit {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Admit::Go(permit);
        }
        let waiting = self.waiting.fetch_add(1, AtomicOrdering::AcqRel);
        if queue_limit.is_some_and(|limit| waiting >= limit) {
            self.waiting.fetch_sub(1, AtomicOrdering::AcqRel);
            return Admit::Park;
        }
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("endpoint semaphores are never closed");
        self.waiting.fetch_sub(1, AtomicOrdering::AcqRel);
        Admit::Go(permit)
    }

    pub fn circuit(&self) -> Admission {
        self.breaker
            .lock()
            .expect("breaker lock")
            .admit(Instant::now())
    }

    /// Records an HTTP outcome and how long it took.
    pub fn record(&self, success: bool, took: Duration) -> Answered {
        {
            let mut latency = self.latency.lock().expect("latency lock");
            *latency = Some(latency.map_or(took, |recent| recent.mul_f64(0.8) + took.mul_f64(0.2)));
        }
        let mut breaker = self.breaker.lock().expect("breaker lock");
        let was_open = breaker.is_open();
        if success {
            breaker.record_success();
        } else {
            breaker.record_failure(Instant::now());
        }
        let is_open = breaker.is_open();
        if was_open || is_open {
            self.circuit_changes.send_modify(|changes| *changes += 1);
        }
        Answered {
            consecutive_failures: breaker.consecutive_failures(),
            circuit: match (was_open, is_open) {
                (false, true) => CircuitChange::Opened,
                (true, false) => CircuitChange::Closed,
                _ => CircuitChange::Unchanged,
            },
        }
    }

    /// The circuit as a held task sees it, and a receiver that wakes on its next change
    /// (subscribed first, so no change is missed between the two).
    pub fn circuit_state(&self) -> (CircuitState, watch::Receiver<u64>) {
        let changes = self.circuit_changes.subscribe();
        let state = self
            .breaker
            .lock()
            .expect("breaker lock")
            .state(Instant::now());
        (state, changes)
    }

    /// Waits until a request fits within `per_second`.
    pub async fn pace(&self, per_second: u32) {
        loop {
            let wait = self
                .rate
                .lock()
                .expect("rate lock")
                .take(per_second, Instant::now());
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

/// A task held in memory while its endpoint's circuit is open; dropping it makes room.
pub struct Hold {
    endpoint: Arc<Endpoint>,
    total: Arc<AtomicUsize>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.endpoint.held.fetch_sub(1, AtomicOrdering::AcqRel);
        self.total.fetch_sub(1, AtomicOrdering::AcqRel);
    }
}

/// Takes one place under `limit` in `count`, if there is one.
fn take_place(count: &AtomicUsize, limit: Option<usize>) -> bool {
    let taken = count.fetch_add(1, AtomicOrdering::AcqRel);
    if limit.is_some_and(|limit| taken >= limit) {
        count.fetch_sub(1, AtomicOrdering::AcqRel);
        return false;
    }
    true
}

/// A token bucket holding up to one second of requests.
#[derive(Debug, Default)]
struct TokenBucket {
    tokens: f64,
    refilled_at: Option<Instant>,
}

impl TokenBucket {
    /// Takes a token, or says how long until one is available.
    fn take(&mut self, per_second: u32, now: Instant) -> Option<Duration> {
        let rate = f64::from(per_second.max(1));
        let elapsed = self.refilled_at.map_or(rate, |at| {
            now.saturating_duration_since(at).as_secs_f64() * rate
        });
        self.tokens = (self.tokens + elapsed).min(rate);
        self.refilled_at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

/// A webhook's tasks in the order they were read. A FIFO webhook's task starts only once every
/// task read before it has finished; the others give their place up at once.
#[derive(Default)]
pub struct Line {
    taken: Mutex<LineState>,
    /// The lowest number whose task has not finished.
    serving: watch::Sender<u64>,
}

#[derive(Default)]
struct LineState {
    next: u64,
    /// Finished out of turn: skipped once `serving` reaches them.
    finished: BTreeSet<u64>,
}

/// A place in a webhook's [`Line`]; dropping it (the task finished, or gave up) lets the next
/// one go.
pub struct Ticket {
    line: Arc<Line>,
    number: u64,
}

impl Line {
    fn take(self: &Arc<Self>) -> Ticket {
        let mut taken = self.taken.lock().expect("line lock");
        let number = taken.next;
        taken.next += 1;
        Ticket {
            line: Arc::clone(self),
            number,
        }
    }
}

impl Ticket {
    /// Waits until every task read before this one has finished.
    pub async fn turn(&self) {
        let mut serving = self.line.serving.subscribe();
        // The sender lives as long as the line this ticket holds.
        let _ = serving.wait_for(|serving| *serving >= self.number).await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut taken = self.line.taken.lock().expect("line lock");
        taken.finished.insert(self.number);
        self.line.serving.send_modify(|serving| {
            while taken.finished.remove(serving) {
                *serving += 1;
            }
        });
    }
}

/// Every endpoint this process has seen, by webhook id.
pub struct Endpoints {
    limits: EndpointLimits,
    by_webhook: Mutex<HashMap<String, Arc<Endpoint>>>,
    lines: Mutex<HashMap<String, Arc<Line>>>,
    held: Arc<AtomicUsize>,
}

impl Endpoints {
    pub fn new(limits: EndpointLimits) -> Self {
        Self {
            limits,
            by_webhook: Mutex::new(HashMap::new()),
            lines: Mutex::new(HashMap::new()),
            held: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A place to hold a task in memory while `endpoint`'s circuit is open: within the
    /// endpoint's queue and the process's limit, or always when `in_place` (FIFO tasks wait
    /// where they are). `None`: park it instead.
    pub fn hold(&self, endpoint: &Arc<Endpoint>, in_place: bool) -> Option<Hold> {
        let (per_endpoint, total) = if in_place {
            (None, None)
        } else {
            (Some(self.limits.queued), Some(self.limits.held))
        };
        if !take_place(&endpoint.held, per_endpoint) {
            return None;
        }
        if !take_place(&self.held, total) {
            endpoint.held.fetch_sub(1, AtomicOrdering::AcqRel);
            return None;
        }
        Some(Hold {
            endpoint: Arc::clone(endpoint),
            total: Arc::clone(&self.held),
        })
    }

    pub fn limits(&self) -> &EndpointLimits {
        &self.limits
    }

    pub fn get(&self, webhook: &WebhookRecord) -> Arc<Endpoint> {
        let mut map = self.by_webhook.lock().expect("endpoints lock");
        Arc::clone(map.entry(webhook.id.clone()).or_insert_with(|| {
            Arc::new(Endpoint::new(
                &self.limits,
                webhook.ordering == Ordering::Fifo,
            ))
        }))
    }

    /// A place in the line of `webhook_id`'s tasks; take it as the task is read.
    pub fn ticket(&self, webhook_id: &str) -> Ticket {
        let mut lines = self.lines.lock().expect("lines lock");
        lines.entry(webhook_id.to_owned()).or_default().take()
    }

    /// Forgets a deleted webhook's state.
    pub fn forget(&self, webhook_id: &str) {
        self.by_webhook
            .lock()
            .expect("endpoints lock")
            .remove(webhook_id);
        self.lines.lock().expect("lines lock").remove(webhook_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_the_rate_and_says_how_long_to_wait() {
        let start = Instant::now();
        let mut bucket = TokenBucket::default();
        for _ in 0..5 {
            assert_eq!(bucket.take(5, start), None);
        }
        let wait = bucket.take(5, start).expect("bucket empty");
        assert!(wait <= Duration::from_millis(200) && wait > Duration::ZERO);
        assert_eq!(bucket.take(5, start + Duration::from_millis(200)), None);
    }

    fn limits() -> EndpointLimits {
        EndpointLimits {
            in_flight: 2,
            queued: 1,
            queue_wait: Duration::from_secs(1),
            circuit_threshold: 3,
            circuit_cooldown: Duration::from_secs(30),
            held: 3,
        }
    }

    #[test]
    fn tasks_are_held_within_the_endpoint_queue_and_the_process_limit() {
        let endpoints = Endpoints::new(limits());
        let endpoint = || Arc::new(Endpoint::new(&limits(), false));
        let (a, b, c) = (endpoint(), endpoint(), endpoint());
        let first = endpoints.hold(&a, false).expect("room");
        assert!(endpoints.hold(&a, false).is_none(), "a's queue holds one");
        let _second = endpoints.hold(&b, false).expect("room");
        let _fifo = endpoints
            .hold(&a, true)
            .expect("FIFO tasks always wait in place");
        assert!(
            endpoints.hold(&c, false).is_none(),
            "the process holds three"
        );
        drop(first);
        assert!(endpoints.hold(&c, false).is_some(), "room again");
    }

    #[tokio::test]
    async fn held_tasks_wake_when_an_answer_changes_the_circuit() {
        let endpoint = Endpoint::new(&limits(), false);
        let (state, mut changes) = endpoint.circuit_state();
        assert_eq!(state, CircuitState::Admitting);
        endpoint.record(false, Duration::ZERO);
        endpoint.record(false, Duration::ZERO);
        assert!(!changes.has_changed().unwrap(), "closed: nothing to wake");
        let opening = endpoint.record(false, Duration::ZERO);
        assert_eq!(opening.circuit, CircuitChange::Opened);
        changes.changed().await.expect("opened");
        let (state, mut changes) = endpoint.circuit_state();
        assert!(matches!(state, CircuitState::Open { .. }));
        let closing = endpoint.record(true, Duration::ZERO);
        assert_eq!(closing.circuit, CircuitChange::Closed);
        changes.changed().await.expect("closed");
        assert_eq!(endpoint.circuit_state().0, CircuitState::Admitting);
    }

    #[tokio::test]
    async fn overflow_beyond_the_queue_is_parked() {
        let endpoint = Arc::new(Endpoint::new(&limits(), false));
        let Admit::Go(first) = endpoint.admit(Some(1)).await else {
            panic!("slot free")
        };
        let Admit::Go(_second) = endpoint.admit(Some(1)).await else {
            panic!("slot free")
        };
        let waiter = tokio::spawn({
            let endpoint = Arc::clone(&endpoint);
            async move { matches!(endpoint.admit(Some(1)).await, Admit::Go(_)) }
        });
        tokio::task::yield_now().await;
        while endpoint.waiting.load(AtomicOrdering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(endpoint.admit(Some(1)).await, Admit::Park));
        drop(first);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn a_fast_endpoint_queues_what_it_finishes_within_the_wait() {
        let endpoint = Endpoint::new(&limits(), false);
        let wait = Duration::from_secs(1);
        assert_eq!(endpoint.queue_capacity(1, wait), 1, "no pace known yet");
        endpoint.record(true, Duration::from_millis(10));
        assert_eq!(
            endpoint.queue_capacity(1, wait),
            200,
            "2 slots × 100 per second"
        );
        for _ in 0..50 {
            endpoint.record(false, Duration::from_secs(10));
        }
        assert_eq!(
            endpoint.queue_capacity(1, wait),
            1,
            "a slow endpoint parks at once"
        );
    }

    #[test]
    fn fifo_endpoints_have_one_slot() {
        let endpoint = Endpoint::new(&limits(), true);
        assert_eq!(endpoint.slots.available_permits(), 1);
    }
}
