//! The one retry loop every stage uses while a dependency (Kafka, the ledger database, an
//! endpoint's records) is away.
//!
//! Callers classify each failure once, as [`Failure::Transient`] (retried with capped
//! exponential back-off and jitter) or [`Failure::Permanent`] (returned at once, for the caller
//! to count and dead-letter). The loop stops early when its abandon token fires, so a stage can
//! always shut down or give a record up to another instance.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Random extra or shorter wait, as a fraction of each delay, so instances that failed together
/// do not retry together.
const JITTER: f64 = 0.2;

/// Capped exponential delays: `first`, twice that, … up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            next: first,
            max,
        }
    }

    /// The back-off of a stage waiting on Kafka or the database: 200 ms doubling to 10 s.
    pub const fn dependency() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(10))
    }

    /// The next delay, jittered by up to ±20 %; later delays grow until `max`.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        jittered(delay, rand::random::<f64>())
    }

    /// Starts again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// `delay` scaled by a factor in `[1 - JITTER, 1 + JITTER]` chosen by `unit` in `[0, 1)`.
fn jittered(delay: Duration, unit: f64) -> Duration {
    delay.mul_f64(1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0))
}

/// How an operation failed.
#[derive(Debug)]
pub enum Failure<E> {
    /// Worth trying again: the dependency is away, overloaded or settling.
    Transient(E),
    /// Will fail the same way every time: bad input, bad configuration, refused credentials.
    Permanent(E),
}

/// Why [`retry`] gave up.
#[derive(Debug, PartialEq, Eq)]
pub enum GaveUp<E> {
    /// The abandon token fired before the operation succeeded.
    Abandoned,
    /// The operation failed in a way retrying cannot fix.
    Permanent(E),
}

/// Runs `operation` until it succeeds, fails permanently, or `abandon` fires, sleeping per
/// `backoff` after each transient failure (logged as a warning naming `what`). The first try
/// always runs: abandoning stops retries, never work that may already succeed.
pub async fn retry<T, E, F, Fut>(
    mut backoff: Backoff,
    abandon: &CancellationToken,
    what: &str,
    mut operation: F,
) -> Result<T, GaveUp<E>>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure<E>>>,
{
    let mut failures = 0u32;
    loop {
        let error = match operation().await {
            Ok(value) => {
                if failures > 0 {
                    tracing::info!(what, failures, "succeeded after retrying");
                }
                return Ok(value);
            }
            Err(Failure::Permanent(error)) => return Err(GaveUp::Permanent(error)),
            Err(Failure::Transient(error)) => error,
        };
        failures += 1;
        if abandon.is_cancelled() {
            return Err(GaveUp::Abandoned);
        }
        let delay = backoff.next_delay();
        tracing::warn!(what, failures, ?delay, error = %error, "failed; retrying");
        tokio::select! {
            () = abandon.cancelled() => return Err(GaveUp::Abandoned),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<Duration> = (0..4).map(|_| backoff.next_delay()).collect();
        let bounds = [100, 200, 350, 350];
        for (delay, bound) in delays.iter().zip(bounds) {
            let bound = Duration::from_millis(bound);
            assert!(
                *delay >= bound.mul_f64(0.8) && *delay <= bound.mul_f64(1.2),
                "{delay:?} vs {bound:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(120));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let second = Duration::from_secs(1);
        assert_eq!(jittered(second, 0.0), Duration::from_millis(800));
        assert_eq!(jittered(second, 0.5), second);
        assert!(jittered(second, 1.0) <= Duration::from_millis(1200));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let outcome: Result<u32, GaveUp<String>> = retry(
            Backoff::dependency(),
            &CancellationToken::new(),
            "test",
            || {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if call < 3 {
                        Err(Failure::Transient(format!("away {call}")))
                    } else {
                        Ok(call)
                    }
                }
            },
        )
        .await;
        assert_eq!(outcome, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_returned_at_once() {
        let calls = AtomicU32::new(0);
        let outcome: Result<(), GaveUp<&str>> = retry(
            Backoff::dependency(),
            &CancellationToken::new(),
            "test",
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(Failure::Permanent("malformed")) }
            },
        )
        .await;
        assert_eq!(outcome, Err(GaveUp::Permanent("malformed")));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn abandoning_stops_the_retries() {
        let abandon = CancellationToken::new();
        let outcome: Result<(), GaveUp<&str>> =
            retry(Backoff::dependency(), &abandon, "test", || {
                abandon.cancel();
                async { Err(Failure::Transient("away")) }
            })
            .await;
        assert_eq!(outcome, Err(GaveUp::Abandoned));
    }
}
