//! Hookline's domain rules, free of I/O so they can be tested exhaustively.

pub mod circuit;
pub mod error_code;
pub mod event_filter;
pub mod idempotency;
pub mod ids;
pub mod offsets;
pub mod rate;
pub mod recorded_headers;
pub mod recorded_url;
pub mod retry;
pub mod ssrf;
pub mod webhook_url;

pub use error_code::ErrorCode;
pub use event_filter::{EventFilter, EventFilterError, EventFilters};
pub use offsets::OffsetTracker;
pub use rate::{RateLimit, TokenBucket};
pub use retry::{RetrySchedule, RetryTiers};
pub use ssrf::{AddressPolicy, ForbiddenAddress};
pub use webhook_url::{validate_webhook_url, UrlPolicy, WebhookUrlError};
