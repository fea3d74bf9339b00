//! A small client of Hookline's HTTP API that returns status and JSON body.

use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    base_url: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.finish(request).await
    }

    /// Sends a raw body with the given content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.finish(request).await
    }

    async fn finish(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let text = response.text().await.expect("the API sends a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a tenant and a key with every scope (or `scopes`); returns (tenant id, key).
    pub async fn tenant_with_key(
        &self,
        admin_token: &str,
        scopes: Option<&[&str]>,
    ) -> (String, String) {
        let (status, tenant) = self
            .post(
                "/v1/tenants",
                admin_token,
                &serde_json::json!({"name": "test tenant"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{tenant}");
        let tenant_id = tenant["id"].as_str().expect("tenant id").to_owned();
        let mut request = serde_json::json!({"name": "test key"});
        if let Some(scopes) = scopes {
            request["scopes"] = serde_json::json!(scopes);
        }
        let (status, key) = self
            .post(
                &format!("/v1/tenants/{tenant_id}/keys"),
                admin_token,
                &request,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        (tenant_id, key["key"].as_str().expect("key").to_owned())
    }
}
