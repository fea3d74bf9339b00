//! The public API's shared vocabulary: the error body, JSON bodies that fail with it, and the
//! tenant a request acts for.

use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookline_control::{ControlPlane, Principal};
use hookline_domain::ErrorCode;
use hookline_kafka::KafkaAdapterError;
use hookline_schemas::Scope;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::openapi::{ObjectBuilder, Type};
use utoipa::ToSchema;

use crate::deadline::Deadline;

/// The `Retry-After` of every `unavailable` answer, in seconds: about how long a restarted broker
/// or database node takes to settle.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// An API error: `{"error":{"code","message"}}`, by default with the code's HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Sent as `Retry-After` (whole seconds): when a refused request may succeed.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// The same error telling the caller to retry after `secs` seconds.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The same error with a more precise status (400 for unparseable JSON, say).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "a valid API key is required in the Authorization header as `Bearer <key>`",
        )
    }

    /// A dependency failed; the detail goes to the log, not to the caller, who is told when to
    /// retry (`Retry-After`).
    pub fn unavailable(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error, source = ?error.source(), "dependency unavailable");
        Self::new(
            ErrorCode::Unavailable,
            "a dependency is unavailable; retry later",
        )
        .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECS)
    }
}

/// The body of every API error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable: clients match on it.
    #[schema(schema_with = error_codes)]
    pub code: &'static str,
    /// For people; may change.
    pub message: String,
}

fn error_codes() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ErrorCode::ALL.map(ErrorCode::as_str)))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<KafkaAdapterError> for ApiError {
    fn from(error: KafkaAdapterError) -> Self {
        Self::unavailable(&error)
    }
}

/// A JSON object request body whose rejections use the API's error body.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let headers = parts.headers.clone();
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| json_rejection(JsonRejection::BytesRejection(rejection)))?;
        let mut buffered = Request::new(Body::from(bytes.clone()));
        *buffered.headers_mut() = headers;
        let Json(value) = Json::<T>::from_request(buffered, state)
            .await
            .map_err(json_rejection)?;
        // Serde also reads a struct from an array of its fields in order; the API takes objects.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                "request body must be a JSON object",
            ));
        }
        Ok(Self(value))
    }
}

/// A query string whose rejections use the API's error body.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                ErrorCode::ValidationFailed,
                rejection.body_text(),
            )),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            ErrorCode::PayloadTooLarge,
            "request body is larger than allowed",
        );
    }
    let message = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "request body must be JSON with `Content-Type: application/json`".to_owned()
        }
        _ => rejection.body_text(),
    };
    // Unparseable (400) and not JSON (415) keep their own status; well-formed JSON of the wrong
    // shape is 422 like every other validation failure.
    ApiError::new(ErrorCode::ValidationFailed, message).with_status(rejection.status())
}

/// The tenant a request acts for, from its `Authorization: Bearer <api key>` header.
#[derive(Debug, Clone)]
pub struct Tenant(pub Principal);

impl Tenant {
    /// Fails with `forbidden` unless the key carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<&Principal, ApiError> {
        if self.0.has_scope(scope) {
            Ok(&self.0)
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this API key lacks the `{}` scope", scope.as_str()),
            ))
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<S> FromRequestParts<S> for Tenant
where
    ControlPlane: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)
            .ok_or_else(ApiError::unauthorized)?
            .to_owned();
        let Ok(deadline) = Deadline::from_request_parts(parts, state).await;
        let control = ControlPlane::from_ref(state);
        // A key this process has not seen makes the control plane catch up with Kafka.
        let principal = deadline
            .retry_kafka(
                "authenticating an api key",
                || {},
                || control.authenticate(&token),
            )
            .await?;
        match principal {
            Some(principal) => Ok(Self(principal)),
            None => Err(ApiError::unauthorized()),
        }
    }
}
