//! The console's only way to Hookline's data: the public HTTP API, called with the signed-in
//! key as the bearer token, so the console can do exactly what the key's scopes allow.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// An API call that did not succeed: the API's error (its stable `code` and message), or a
/// failure to reach the API at all (`code` `unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiFailure {
    fn unreachable(error: &reqwest::Error) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            code: "unavailable".into(),
            message: format!("the API did not answer: {error}"),
        }
    }
}

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
}

impl ApiClient {
    pub fn new(base_url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    pub async fn get(
        &self,
        key: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, ApiFailure> {
        self.get_as(key, path, query).await
    }

    /// A GET whose answer is read as `T`: a type holding `RawValue`s keeps JSON text as the
    /// API sent it (a `Value` sorts object keys).
    pub async fn get_as<T: DeserializeOwned>(
        &self,
        key: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ApiFailure> {
        let query: Vec<_> = query
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .collect();
        self.send(self.request(Method::GET, key, path).query(&query))
            .await
    }

    pub async fn post(
        &self,
        key: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Value, ApiFailure> {
        self.send(self.request(Method::POST, key, path).json(body))
            .await
    }

    pub async fn patch(
        &self,
        key: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Value, ApiFailure> {
        self.send(self.request(Method::PATCH, key, path).json(body))
            .await
    }

    pub async fn delete(&self, key: &str, path: &str) -> Result<Value, ApiFailure> {
        self.send(self.request(Method::DELETE, key, path)).await
    }

    fn request(&self, method: Method, key: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(key)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiFailure> {
        let response = request
            .send()
            .await
            .map_err(|error| ApiFailure::unreachable(&error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| ApiFailure::unreachable(&error))?;
        let not_understood = |error: serde_json::Error| ApiFailure {
            status: StatusCode::BAD_GATEWAY,
            code: "unavailable".into(),
            message: format!("the API's answer ({status}) was not understood: {error}"),
        };
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(not_understood);
        }
        let body: Value = serde_json::from_slice(&bytes).map_err(not_understood)?;
        let text = |field: &str| body["error"][field].as_str().unwrap_or_default().to_owned();
        Err(ApiFailure {
            status,
            code: text("code"),
            message: text("message"),
        })
    }
}

/// A path segment from user input, percent-encoded so it stays one segment.
pub fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
