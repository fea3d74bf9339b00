//! The stable error codes of the public API (`{"error":{"code","message"}}`).

/// A stable, documented error code. Clients match on these strings, so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidUrl,
    InvalidEvents,
    WebhookLimitReached,
    UrlUnreachable,
    PayloadTooLarge,
    Unauthorized,
    Forbidden,
    NotFound,
    RateLimited,
    ValidationFailed,
    /// An event type of that name is already in the tenant's catalogue.
    EventTypeExists,
    /// An event type's `schema` is not a valid JSON Schema.
    InvalidSchema,
    /// An event's `data` does not match its type's schema.
    SchemaViolation,
    /// A dependency (Kafka, the ledger store) is unavailable; retry later.
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code: the OpenAPI document lists them as the values of `error.code`, so a new
    /// code belongs here too.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidUrl,
        ErrorCode::InvalidEvents,
        ErrorCode::WebhookLimitReached,
        ErrorCode::UrlUnreachable,
        ErrorCode::EventTypeExists,
        ErrorCode::InvalidSchema,
        ErrorCode::SchemaViolation,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::RateLimited,
        ErrorCode::ValidationFailed,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidUrl => "invalid_url",
            ErrorCode::InvalidEvents => "invalid_events",
            ErrorCode::WebhookLimitReached => "webhook_limit_reached",
            ErrorCode::UrlUnreachable => "url_unreachable",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::EventTypeExists => "event_type_exists",
            ErrorCode::InvalidSchema => "invalid_schema",
            ErrorCode::SchemaViolation => "schema_violation",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidUrl
            | ErrorCode::InvalidEvents
            | ErrorCode::ValidationFailed
            | ErrorCode::InvalidSchema
            | ErrorCode::SchemaViolation
            | ErrorCode::UrlUnreachable => 422,
            ErrorCode::WebhookLimitReached | ErrorCode::EventTypeExists => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}
