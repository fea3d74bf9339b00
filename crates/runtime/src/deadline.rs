//! How long an API request waits for Kafka to settle.
//!
//! A broker that just started or restarted answers with retriable errors for a few seconds (not
//! leader, fenced leader epoch, coordinator loading), and one that is away answers nothing. A
//! request that reads or writes the control plane retries such failures with back-off for as
//! long as its [`Deadline`] allows ([`Deadline::retry_kafka`]), then answers `unavailable` with
//! a `Retry-After`. The deadline is fixed when the request first asks for it (extractors run
//! before the handler, and [`crate::api::Tenant`] asks first), [`Deadline::REQUEST`] later, so
//! every Kafka step of one request shares it.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hookline_backoff::{retry, Backoff, Failure, GaveUp};
use hookline_kafka::KafkaAdapterError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::telemetry::WithSources;

/// When a request stops waiting for Kafka and answers `unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Instant);

/// Why a Kafka step of a request gave up.
#[derive(Debug, thiserror::Error)]
pub enum Unsettled {
    /// Kafka kept failing transiently (or did not answer) until the request's deadline.
    #[error("kafka did not settle before the request's deadline")]
    DeadlinePassed,
    /// Kafka failed in a way retrying cannot fix.
    #[error("kafka refused the request")]
    Refused(#[source] KafkaAdapterError),
}

impl From<Unsettled> for ApiError {
    fn from(error: Unsettled) -> Self {
        ApiError::unavailable(&error)
    }
}

impl Deadline {
    /// How long after its start a request may wait for Kafka.
    pub const REQUEST: Duration = Duration::from_secs(10);

    /// A deadline `wait` from now.
    pub fn after(wait: Duration) -> Self {
        Self(Instant::now() + wait)
    }

    /// Runs `operation` until it succeeds, retrying with back-off while its failures are
    /// transient ([`KafkaAdapterError::is_transient`]) and the deadline allows; each retry is
    /// logged naming `what` and reported to `on_retry` (for a metric).
    pub async fn retry_kafka<T, F, Fut>(
        self,
        what: &str,
        on_retry: impl Fn(),
        mut operation: F,
    ) -> Result<T, Unsettled>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, KafkaAdapterError>>,
    {
        let on_retry = &on_retry;
        // The deadline, not a shutdown, ends these retries: a draining server lets in-flight
        // requests finish.
        let never = CancellationToken::new();
        let attempts = retry(Backoff::dependency(), &never, what, || {
            let attempt = operation();
            async move {
                attempt.await.map_err(|error| {
                    if error.is_transient() {
                        on_retry();
                        Failure::Transient(WithSources(error))
                    } else {
                        Failure::Permanent(WithSources(error))
                    }
                })
            }
        });
        match tokio::time::timeout_at(self.0, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(GaveUp::Permanent(WithSources(error)))) => Err(Unsettled::Refused(error)),
            Ok(Err(GaveUp::Abandoned)) | Err(_) => Err(Unsettled::DeadlinePassed),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Deadline {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(deadline) = parts.extensions.get::<Deadline>() {
            return Ok(*deadline);
        }
        let deadline = Deadline::after(Self::REQUEST);
        parts.extensions.insert(deadline);
        Ok(deadline)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A broker that does not answer in time: transient.
    fn away() -> KafkaAdapterError {
        KafkaAdapterError::Timeout("the broker")
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_kafka_answers() {
        let (calls, retries) = (AtomicU32::new(0), AtomicU32::new(0));
        let outcome = Deadline::after(Deadline::REQUEST)
            .retry_kafka(
                "test write",
                || {
                    retries.fetch_add(1, Ordering::SeqCst);
                },
                || {
                    let call = calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if call < 3 {
                            Err(away())
                        } else {
                            Ok(call)
                        }
                    }
                },
            )
            .await;
        assert_eq!(outcome.unwrap(), 3);
        assert_eq!(retries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_the_retries() {
        let started = Instant::now();
        let outcome: Result<(), _> = Deadline::after(Duration::from_secs(10))
            .retry_kafka("test write", || {}, || async { Err(away()) })
            .await;
        assert!(matches!(outcome, Err(Unsettled::DeadlinePassed)));
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let answer = ApiError::from(outcome.unwrap_err());
        assert_eq!(answer.status.as_u16(), 503);
        assert!(answer.retry_after_secs.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_not_retried() {
        let calls = AtomicU32::new(0);
        let outcome: Result<(), _> = Deadline::after(Deadline::REQUEST)
            .retry_kafka(
                "test write",
                || {},
                || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { Err(KafkaAdapterError::Stopped) }
                },
            )
            .await;
        assert!(matches!(outcome, Err(Unsettled::Refused(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
