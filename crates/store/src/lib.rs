//! The ledger store. Speaks CQL that both ScyllaDB and Apache Cassandra 5 accept.
//!
//! Tables are denormalized per query and every write is idempotent: an attempt row is keyed by
//! its attempt id, and every row an attempt writes (its delivery's state included) carries the
//! attempt's time as its write time, so replaying the `attempts` topic, in any order, leaves
//! the same rows. `ledger.rs` prepares the statements and writes and reads through them;
//! `rows.rs` is what an attempt writes, `views.rs` what reads return, `paging.rs` how listings
//! walk time buckets (`cursor.rs`), `schema.rs` the tables and `migrate.rs` the copy of the
//! first layout.

mod args;
mod cursor;
mod error;
mod ledger;
mod migrate;
mod paging;
mod recover;
mod rows;
mod schema;
mod views;

pub use args::CassandraArgs;
pub use error::StoreError;
pub use ledger::Ledger;
pub use migrate::Migrated;
pub use recover::{LeasedRun, RecoverJob, RecoverPosition, RecoverRun};
pub use views::{
    AttemptRow, AttemptTally, DeliveryQuery, DeliveryRow, DeliverySummary, EventDelivery, Page,
    StoredEvent, WebhookAttempt,
};
