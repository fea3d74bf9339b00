//! What every Hookline service shares at run time.
//!
//! A service is built by its crate's `start` into a [`Service`]: its API routes, a readiness
//! flag and its background workers; the steps of `start` that need Kafka or the ledger database
//! wait for them through [`Starting::wait_for`] ([`startup`]). [`serve`] answers `/healthz`,
//! `/readyz`, `/metrics` and `/openapi.json` (the committed document of the whole public API)
//! on one listener from the start, the services' routes once `start` has built them, and drains
//! them all when the shutdown token fires.

pub mod api;
mod dead_letter_metric;
pub mod deadline;
pub mod openapi;
mod ops_metrics;
mod serve;
mod stage_latency;
pub mod startup;
pub mod telemetry;

pub use dead_letter_metric::{DeadLetterCounter, DeadLetterReason};
pub use ops_metrics::watch_consumer_lag;
pub use stage_latency::{latency_histogram, latency_histograms};
pub use startup::{Starting, StartupArgs, StartupError};

/// Every process built on the runtime allocates through mimalloc: under load, glibc's malloc
/// and free took a sixth of the pipeline's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub use serve::{serve, BoxError, Context, Service, Worker};
