//! The control plane's reads and writes of a request, riding out a settling broker.
//!
//! Every control-plane request first catches this process's view up with Kafka, or writes a
//! record to a compacted topic and waits until the view has applied it (read-your-writes).
//! Right after a broker starts or restarts, those steps fail for a few seconds with retriable
//! errors; each is retried with back-off within the request's [`Deadline`] (10 s from its
//! start), and only then is `unavailable` answered, with a `Retry-After`. A write is safe to
//! repeat: a record holds its entity's whole state under its key, so a second copy changes
//! nothing. An `unavailable` write may still have reached Kafka; the client's retry (same id,
//! same state) or a read shows which.

use std::future::Future;

use hookline_kafka::KafkaAdapterError;
use hookline_runtime::api::ApiError;
use hookline_runtime::deadline::{Deadline, Unsettled};
use serde::Serialize;

use crate::AppState;

impl AppState {
    /// Catches the control plane up with every write acknowledged before this call.
    pub(crate) async fn catch_up(&self, deadline: Deadline) -> Result<(), ApiError> {
        self.settle(deadline, "control-plane catch-up", || {
            self.control.catch_up()
        })
        .await
    }

    /// Writes `record` under `key` to the compacted `topic` and waits until this process's
    /// view has it, so the caller's next read (and fanout's next batch) sees it.
    pub(crate) async fn write<T: Serialize>(
        &self,
        deadline: Deadline,
        topic: &str,
        key: &str,
        record: &T,
    ) -> Result<(), ApiError> {
        let position = self
            .settle(deadline, "control-plane write", || {
                self.publisher.send_json(topic, key, record)
            })
            .await?;
        self.settle(deadline, "control-plane view to apply a write", || {
            self.control.wait_applied(topic, position)
        })
        .await
    }

    /// Writes a tombstone for `key` to the compacted `topic` and waits until this process's
    /// view has applied it.
    pub(crate) async fn delete(
        &self,
        deadline: Deadline,
        topic: &str,
        key: &str,
    ) -> Result<(), ApiError> {
        let position = self
            .settle(deadline, "control-plane delete", || {
                self.publisher.send_tombstone(topic, key)
            })
            .await?;
        self.settle(deadline, "control-plane view to apply a delete", || {
            self.control.wait_applied(topic, position)
        })
        .await
    }

    async fn settle<T, F, Fut>(
        &self,
        deadline: Deadline,
        what: &str,
        operation: F,
    ) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, KafkaAdapterError>>,
    {
        let retries = &self.metrics.control_retries;
        deadline
            .retry_kafka(what, || retries.inc(), operation)
            .await
            .map_err(|error| {
                if matches!(error, Unsettled::DeadlinePassed) {
                    self.metrics.control_unavailable.inc();
                }
                ApiError::from(error)
            })
    }
}
