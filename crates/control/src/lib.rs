//! The control plane: tenants, API keys, webhooks and event types, event-sourced in compacted
//! topics and materialized in memory by every service that needs them.
//!
//! [`ControlState`] is the pure state machine (records in, lookups out). [`ControlPlane`] keeps
//! one up to date from Kafka and answers lookups, catching up first when a lookup misses, so a
//! key or webhook is usable on every service as soon as its creation was acknowledged.

mod groups;
mod plane;
mod state;
mod webhooks;

pub use plane::ControlPlane;
pub use state::{hash_api_key, ControlState, ControlTopic, Principal, WebhookStatus};
