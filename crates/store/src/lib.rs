//! The ledger store. Speaks CQL that both ScyllaDB and Apache Cassandra 5 accept.
//!
//! Tables are denormalized per query and every write is idempotent: an attempt row is keyed by
//! its attempt id, and a delivery's summary row is written `USING TIMESTAMP` of the attempt it
//! summarizes, so replaying the `attempts` topic, in any order, leaves the same rows.

mod args;
mod cursor;
mod error;
mod ledger;
mod migrate;
mod recover;
mod schema;

pub use args::CassandraArgs;
pub use error::StoreError;
pub use ledger::{
    AttemptRow, AttemptTally, DeliveryQuery, DeliveryRow, DeliverySummary, EventDelivery, Ledger,
    Page, StoredEvent, WebhookAttempt,
};
pub use migrate::Migrated;
pub use recover::{LeasedRun, RecoverJob, RecoverPosition, RecoverRun};
