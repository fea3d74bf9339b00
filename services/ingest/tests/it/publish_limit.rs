//! Per-tenant publish rate limits, and the operator's `PATCH /v1/tenants/{id}` that sets a
//! tenant's own limit among its other settings.

use std::time::Duration;

use hookline_testkit::{kafka_args, Api, RunningService, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::ingest_config;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// Publishes a batch of `events` events; answers the status, `Retry-After` and the body.
async fn publish(base_url: &str, key: &str, events: usize) -> (StatusCode, Option<u64>, Value) {
    let batch = json!({"events": vec![json!({"type": "a.b", "data": {}}); events]});
    let response = reqwest::Client::new()
        .post(format!("{base_url}/v1/events/batch"))
        .bearer_auth(key)
        .json(&batch)
        .send()
        .await
        .expect("the API answers");
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|value| value.to_str().unwrap().parse().expect("whole seconds"));
    (
        status,
        retry_after,
        response.json().await.expect("a JSON body"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_publishing_past_their_rate_are_told_when_to_retry() {
    let mut config = ingest_config(kafka_args());
    config.ingest.tenant_publish_rate = 1;
    config.ingest.tenant_publish_burst = Some(3);
    let ingest = RunningService::start(hookline_ingest::run, config).await;
    let url = ingest.base_url.clone();
    let api = Api::new(&url);
    let (tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_other, other_key) = api.tenant_with_key(ADMIN_TOKEN, None).await;

    // A batch costs one token per event.
    let (status, _, body) = publish(&url, &key, 3).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, retry_after, body) = publish(&url, &key, 3).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{body}"
    );
    let retry_after = retry_after.expect("a Retry-After header");
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    let (status, _, body) = publish(&url, &other_key, 3).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "another tenant's bucket: {body}"
    );
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _, body) = publish(&url, &key, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "after Retry-After: {body}");

    // The operator lifts the tenant's limit, then sets one of its own, then removes it.
    let path = format!("/v1/tenants/{tenant}");
    let (status, patched) = api
        .call(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            Some(&json!({"publish_limit": {"events_per_second": 0}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["publish_limit"], json!({"events_per_second": 0}));
    for _ in 0..4 {
        let (status, _, body) = publish(&url, &key, 3).await;
        assert_eq!(status, StatusCode::ACCEPTED, "no limit: {body}");
    }
    let (status, patched) = api
        .call(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            Some(&json!({"publish_limit": {"events_per_second": 1, "burst": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (status, _, body) = publish(&url, &key, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, retry_after, body) = publish(&url, &key, 1).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(retry_after, Some(1));
    let (status, patched) = api
        .call(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            Some(&json!({"publish_limit": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert!(patched.get("publish_limit").is_none(), "{patched}");
    ingest.stop().await.expect("ingest shuts down cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_patch_a_tenants_settings() {
    let ingest = RunningService::start(hookline_ingest::run, ingest_config(kafka_args())).await;
    let api = Api::new(&ingest.base_url);
    let (tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let path = format!("/v1/tenants/{tenant}");

    let (status, patched) = api
        .call(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            Some(&json!({"name": "renamed", "payload": "raw"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (patched["name"].clone(), patched["payload"].clone()),
        (json!("renamed"), json!("raw"))
    );
    let (_, shown) = api.get(&path, ADMIN_TOKEN).await;
    assert_eq!(shown, patched);
    let (status, webhook) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": "https://example.com/hooks", "events": ["*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    assert_eq!(webhook["payload"], json!("raw"), "the tenant's new default");

    for body in [
        json!({"name": ""}),
        json!({"name": 7}),
        json!({"payload": "xml"}),
        json!({"disabled_at": "2026-01-01T00:00:00Z"}),
        json!({"publish_limit": {"events_per_second": "fast"}}),
        json!({"publish_limit": {"events_per_second": -1}}),
        json!({"publish_limit": {"events_per_second": 10, "burst": 0}}),
        json!({"publish_limit": {"events_per_second": 10, "bursts": 5}}),
    ] {
        let (status, error) = api
            .call(Method::PATCH, &path, Some(ADMIN_TOKEN), Some(&body))
            .await;
        assert_eq!(
            (status.as_u16(), code(&error)),
            (422, "validation_failed"),
            "{body}: {error}"
        );
    }
    let response = reqwest::Client::new()
        .patch(format!("{}{path}", ingest.base_url))
        .bearer_auth(ADMIN_TOKEN)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let rename = json!({"name": "stolen"});
    let (status, error) = api
        .call(
            Method::PATCH,
            "/v1/tenants/ten_missing",
            Some(ADMIN_TOKEN),
            Some(&rename),
        )
        .await;
    assert_eq!((status, code(&error)), (StatusCode::NOT_FOUND, "not_found"));
    for token in [Some(key.as_str()), None] {
        let (status, error) = api.call(Method::PATCH, &path, token, Some(&rename)).await;
        assert_eq!(
            (status, code(&error)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{error}"
        );
    }
    let (_, shown) = api.get(&path, ADMIN_TOKEN).await;
    assert_eq!(shown["name"], json!("renamed"), "nothing else changed it");
    ingest.stop().await.expect("ingest shuts down cleanly");
}
