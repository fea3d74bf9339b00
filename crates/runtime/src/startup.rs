//! Start-up that waits for Kafka and the ledger database instead of giving up.
//!
//! A broker that just started (or restarted) answers with retriable errors for a few seconds,
//! and a database may come up after the services that use it. So a service's `start` runs each
//! step that needs them (topics, metadata, the control plane's catch-up, transactions,
//! migrations) through [`Starting::wait_for`]: transient failures are retried with back-off
//! ([`hookline_backoff`]) and logged, while a permanent one (bad configuration, refused
//! credentials) ends the process at once. Meanwhile [`crate::serve`] already answers
//! `/healthz`, `/metrics` and an un-ready `/readyz` naming the steps waited on, and gives the
//! whole start-up `HOOKLINE_STARTUP_TIMEOUT_SECS` before the process exits with an error.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_backoff::{retry, Backoff, Failure, GaveUp};
use prometheus::{Gauge, IntCounterVec, IntGauge, Opts, Registry};
use tokio_util::sync::CancellationToken;

use crate::telemetry::WithSources;
use crate::BoxError;

/// Settings of a process's start-up.
#[derive(Debug, Clone, clap::Args)]
pub struct StartupArgs {
    /// Seconds a process may wait at start-up for Kafka and the ledger database (retrying what
    /// fails while they are away or settling) before it exits with an error.
    #[arg(
        long = "startup-timeout-secs",
        env = "HOOKLINE_STARTUP_TIMEOUT_SECS",
        default_value_t = StartupArgs::DEFAULT_TIMEOUT_SECS
    )]
    pub timeout_secs: u64,
}

impl StartupArgs {
    pub const DEFAULT_TIMEOUT_SECS: u64 = 120;

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

impl Default for StartupArgs {
    fn default() -> Self {
        Self {
            timeout_secs: Self::DEFAULT_TIMEOUT_SECS,
        }
    }
}

/// Why a process did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A step failed in a way retrying cannot fix; its error is the source.
    #[error("{service} cannot start: {step} failed and retrying cannot fix it")]
    Refused {
        service: &'static str,
        step: &'static str,
        #[source]
        source: BoxError,
    },
    #[error(
        "start-up did not finish within {} s (HOOKLINE_STARTUP_TIMEOUT_SECS); still waiting for {waiting}",
        timeout.as_secs()
    )]
    TimedOut { timeout: Duration, waiting: String },
    #[error("shut down while starting")]
    ShutDown,
}

/// What a process waits for while it starts, and the start-up metrics. Cheap to clone.
#[derive(Clone)]
pub(crate) struct StartupProgress {
    /// (service, step) of every step running now.
    waiting: Arc<Mutex<Vec<(&'static str, &'static str)>>>,
    starting: IntGauge,
    retries: IntCounterVec,
    duration: Gauge,
}

impl StartupProgress {
    pub(crate) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let starting = IntGauge::with_opts(Opts::new(
            "hookline_starting",
            "1 while this process waits for Kafka or the ledger database at start-up (not ready), 0 once its services are built",
        ))?;
        let retries = IntCounterVec::new(
            Opts::new(
                "hookline_startup_retries_total",
                "Transient failures retried at start-up, by service and step (Kafka or the ledger database away or settling)",
            ),
            &["service", "step"],
        )?;
        let duration = Gauge::with_opts(Opts::new(
            "hookline_startup_duration_seconds",
            "How long this process took to start (0 until it has)",
        ))?;
        registry.register(Box::new(starting.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            waiting: Arc::default(),
            starting,
            retries,
            duration,
        })
    }

    pub(crate) fn begin(&self) {
        self.starting.set(1);
    }

    pub(crate) fn finish(&self, took: Duration) {
        self.starting.set(0);
        self.duration.set(took.as_secs_f64());
    }

    /// The steps running now, as `service: step` joined by commas (empty between steps).
    pub(crate) fn waiting_for(&self) -> String {
        self.waiting
            .lock()
            .expect("startup progress lock poisoned")
            .iter()
            .map(|(service, step)| format!("{service}: {step}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn enter(&self, service: &'static str, step: &'static str) -> Step<'_> {
        self.waiting
            .lock()
            .expect("startup progress lock poisoned")
            .push((service, step));
        Step {
            progress: self,
            entry: (service, step),
        }
    }
}

/// A step in progress; leaves the waiting list when dropped (finished, failed or abandoned).
struct Step<'a> {
    progress: &'a StartupProgress,
    entry: (&'static str, &'static str),
}

impl Drop for Step<'_> {
    fn drop(&mut self) {
        let mut waiting = self
            .progress
            .waiting
            .lock()
            .expect("startup progress lock poisoned");
        if let Some(index) = waiting.iter().position(|entry| *entry == self.entry) {
            waiting.remove(index);
        }
    }
}

/// One service's start-up, from [`crate::Context::starting`].
pub struct Starting {
    pub(crate) service: &'static str,
    pub(crate) progress: StartupProgress,
    /// The process's shutdown token: a signal while waiting ends the start-up cleanly.
    pub(crate) abandon: CancellationToken,
}

impl Starting {
    /// Runs `operation` until it succeeds, retrying with back-off while `is_transient` says its
    /// error may pass; a permanent error, or a shutdown, ends the start-up. `/readyz` and the
    /// log name `step` meanwhile, and each retry counts in `hookline_startup_retries_total`.
    pub async fn wait_for<T, E, F, Fut>(
        &self,
        step: &'static str,
        is_transient: impl Fn(&E) -> bool,
        mut operation: F,
    ) -> Result<T, StartupError>
    where
        E: std::error::Error + Send + Sync + 'static,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _step = self.progress.enter(self.service, step);
        tracing::info!(service = self.service, step, "starting: waiting for");
        let retries = self
            .progress
            .retries
            .with_label_values(&[self.service, step]);
        let (retries, is_transient) = (&retries, &is_transient);
        let what = format!("{} start-up: {step}", self.service);
        let outcome = retry(Backoff::dependency(), &self.abandon, &what, || {
            let attempt = operation();
            async move {
                attempt.await.map_err(|error| {
                    if is_transient(&error) {
                        retries.inc();
                        Failure::Transient(WithSources(error))
                    } else {
                        Failure::Permanent(WithSources(error))
                    }
                })
            }
        })
        .await;
        match outcome {
            Ok(value) => Ok(value),
            Err(GaveUp::Permanent(WithSources(error))) => Err(StartupError::Refused {
                service: self.service,
                step,
                source: Box::new(error),
            }),
            Err(GaveUp::Abandoned) => Err(StartupError::ShutDown),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("away")]
        Away,
        #[error("refused")]
        Refused,
    }

    fn starting(progress: &StartupProgress, abandon: CancellationToken) -> Starting {
        Starting {
            service: "ingest",
            progress: progress.clone(),
            abandon,
        }
    }

    fn is_away(error: &TestError) -> bool {
        matches!(error, TestError::Away)
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_is_retried_while_away_counted_and_named_until_it_succeeds() {
        let progress = StartupProgress::register(&Registry::new()).unwrap();
        let calls = AtomicU32::new(0);
        let step = starting(&progress, CancellationToken::new());
        let outcome = step
            .wait_for("kafka topics", is_away, || {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                let named = progress.waiting_for();
                async move {
                    assert_eq!(named, "ingest: kafka topics");
                    if call < 2 {
                        Err(TestError::Away)
                    } else {
                        Ok(call)
                    }
                }
            })
            .await;
        assert_eq!(outcome.unwrap(), 2);
        assert_eq!(
            progress
                .retries
                .with_label_values(&["ingest", "kafka topics"])
                .get(),
            2
        );
        assert_eq!(
            progress.waiting_for(),
            "",
            "a finished step is no longer waited for"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_ends_the_start_up_at_once() {
        let progress = StartupProgress::register(&Registry::new()).unwrap();
        let calls = AtomicU32::new(0);
        let outcome: Result<(), _> = starting(&progress, CancellationToken::new())
            .wait_for("ledger database", is_away, || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(TestError::Refused) }
            })
            .await;
        let error = outcome.unwrap_err();
        assert!(
            matches!(
                error,
                StartupError::Refused {
                    step: "ledger database",
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(progress.waiting_for(), "");
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_while_waiting_ends_the_start_up() {
        let progress = StartupProgress::register(&Registry::new()).unwrap();
        let shutdown = CancellationToken::new();
        let outcome: Result<(), _> = starting(&progress, shutdown.clone())
            .wait_for("kafka topics", is_away, || {
                shutdown.cancel();
                async { Err(TestError::Away) }
            })
            .await;
        assert!(matches!(outcome, Err(StartupError::ShutDown)));
    }
}
