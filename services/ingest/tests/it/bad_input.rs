use hookline_testkit::{records_in, Api, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{start_ingest, MAX_BODY_BYTES};

/// Asserts the stable error body with `code` and the status that goes with it.
fn assert_error(case: &str, (status, body): (StatusCode, Value), expected_status: u16, code: &str) {
    assert_eq!(status.as_u16(), expected_status, "{case}: {body}");
    assert_eq!(body["error"]["code"], json!(code), "{case}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{case}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_and_never_reach_the_topic() {
    let (ingest, kafka) = start_ingest().await;
    let api = Api::new(&ingest.base_url);
    let (_tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_tenant, read_only) = api
        .tenant_with_key(ADMIN_TOKEN, Some(&["deliveries:read"]))
        .await;

    let raw_cases: &[(&str, &str, &str, u16)] = &[
        (
            "malformed JSON",
            "application/json",
            r#"{"type": "a.b", "data": "#,
            400,
        ),
        ("not JSON at all", "application/json", "hello", 400),
        (
            "JSON of the wrong content type",
            "text/plain",
            r#"{"type":"a.b","data":{}}"#,
            415,
        ),
        ("missing type", "application/json", r#"{"data": {}}"#, 422),
        (
            "type of the wrong JSON type",
            "application/json",
            r#"{"type": 42, "data": {}}"#,
            422,
        ),
        (
            "invalid type name",
            "application/json",
            r#"{"type": "not a type!", "data": {}}"#,
            422,
        ),
        (
            "empty type",
            "application/json",
            r#"{"type": "", "data": {}}"#,
            422,
        ),
        (
            "missing data",
            "application/json",
            r#"{"type": "a.b"}"#,
            422,
        ),
        (
            "unknown field",
            "application/json",
            r#"{"type": "a.b", "data": {}, "payload": {}}"#,
            422,
        ),
        (
            "the fields as an array",
            "application/json",
            r#"[null, "a.b", {}]"#,
            422,
        ),
        (
            "invalid id",
            "application/json",
            r#"{"id": "has spaces", "type": "a.b", "data": {}}"#,
            422,
        ),
        (
            "invalid timestamp",
            "application/json",
            r#"{"type": "a.b", "data": {}, "timestamp": "yesterday"}"#,
            422,
        ),
        (
            "array instead of object",
            "application/json",
            r#"[{"type": "a.b", "data": {}}]"#,
            422,
        ),
    ];
    for (case, content_type, body, status) in raw_cases {
        let answer = api
            .post_raw("/v1/events", &key, content_type, body.to_string())
            .await;
        assert_error(case, answer, *status, "validation_failed");
    }

    let oversized =
        json!({"type": "a.b", "data": {"blob": "x".repeat(MAX_BODY_BYTES)}}).to_string();
    let answer = api
        .post_raw("/v1/events", &key, "application/json", oversized.clone())
        .await;
    assert_error("oversized event", answer, 413, "payload_too_large");
    let answer = api
        .post_raw(
            "/v1/events/batch",
            &key,
            "application/json",
            format!(r#"{{"events":[{oversized}]}}"#),
        )
        .await;
    assert_error("oversized batch", answer, 413, "payload_too_large");

    let event = json!({"type": "a.b", "data": {}});
    let answer = api
        .call(Method::POST, "/v1/events", None, Some(&event))
        .await;
    assert_error("no API key", answer, 401, "unauthorized");
    let answer = api.post("/v1/events", "hk_not_a_real_key", &event).await;
    assert_error("wrong API key", answer, 401, "unauthorized");
    let answer = api.post("/v1/events", ADMIN_TOKEN, &event).await;
    assert_error("admin token is not an API key", answer, 401, "unauthorized");
    let answer = api.post("/v1/events", &read_only, &event).await;
    assert_error("key without events:publish", answer, 403, "forbidden");

    let batch_cases = [
        ("empty batch", json!({"events": []})),
        (
            "batch over the event limit",
            json!({"events": [event, event, event, event]}),
        ),
        (
            "batch with one bad event",
            json!({"events": [event, {"type": "bad type", "data": {}}]}),
        ),
        (
            "batch with a missing field",
            json!({"events": [event, {"type": "a.b"}]}),
        ),
        (
            "batch of the wrong shape",
            json!({"events": {"type": "a.b"}}),
        ),
    ];
    for (case, body) in batch_cases {
        assert_error(
            case,
            api.post("/v1/events/batch", &key, &body).await,
            422,
            "validation_failed",
        );
    }

    let topic = kafka.topics().events();
    assert!(
        records_in(&kafka, &topic).await.is_empty(),
        "a refused event reached {topic}"
    );

    // The same API accepts good input, so the refusals above were about the input.
    let (status, _) = api.post("/v1/events", &key, &event).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(records_in(&kafka, &topic).await.len(), 1);
    ingest.stop().await.expect("ingest shuts down cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhooks_are_refused_and_tenants_are_isolated() {
    let (ingest, kafka) = start_ingest().await;
    let api = Api::new(&ingest.base_url);
    let (_tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_tenant, other_key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_tenant, publisher_only) = api
        .tenant_with_key(ADMIN_TOKEN, Some(&["events:publish"]))
        .await;

    let cases: &[(&str, Value, u16, &str)] = &[
        (
            "not a URL",
            json!({"url": "not a url", "events": ["*"]}),
            422,
            "invalid_url",
        ),
        (
            "relative URL",
            json!({"url": "/hooks", "events": ["*"]}),
            422,
            "invalid_url",
        ),
        (
            "plain http",
            json!({"url": "http://example.com/hooks", "events": ["*"]}),
            422,
            "invalid_url",
        ),
        (
            "ftp",
            json!({"url": "ftp://example.com/", "events": ["*"]}),
            422,
            "invalid_url",
        ),
        (
            "javascript",
            json!({"url": "javascript:alert(1)", "events": ["*"]}),
            422,
            "invalid_url",
        ),
        (
            "credentials",
            json!({"url": "https://u:p@example.com/", "events": ["*"]}),
            422,
            "invalid_url",
        ),
        (
            "empty events",
            json!({"url": "https://example.com/", "events": []}),
            422,
            "invalid_events",
        ),
        (
            "malformed event",
            json!({"url": "https://example.com/", "events": ["a..b"]}),
            422,
            "invalid_events",
        ),
        (
            "misplaced wildcard",
            json!({"url": "https://example.com/", "events": ["*.paid"]}),
            422,
            "invalid_events",
        ),
        (
            "events not a list",
            json!({"url": "https://example.com/", "events": "*"}),
            422,
            "validation_failed",
        ),
        (
            "missing url",
            json!({"events": ["*"]}),
            422,
            "validation_failed",
        ),
        (
            "unknown field",
            json!({"url": "https://example.com/", "events": ["*"], "evnts": []}),
            422,
            "validation_failed",
        ),
        (
            "bad secret",
            json!({"url": "https://example.com/", "events": ["*"], "secret": "hunter2"}),
            422,
            "validation_failed",
        ),
        (
            "metadata not strings",
            json!({"url": "https://example.com/", "events": ["*"], "metadata": {"a": 1}}),
            422,
            "validation_failed",
        ),
    ];
    for (case, body, status, code) in cases {
        assert_error(
            case,
            api.post("/v1/webhooks", &key, body).await,
            *status,
            code,
        );
    }
    let good = json!({"url": "https://example.com/hooks", "events": ["invoice.*"], "metadata": {"team": "billing"}});
    assert_error(
        "no scope",
        api.post("/v1/webhooks", &publisher_only, &good).await,
        403,
        "forbidden",
    );
    assert!(records_in(&kafka, &kafka.topics().webhooks())
        .await
        .is_empty());

    let (status, created) = api.post("/v1/webhooks", &key, &good).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());
    let (status, shown) = api.get(&path, &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["metadata"], json!({"team": "billing"}));
    assert!(shown.get("secret").is_none());

    // Another tenant can neither see nor delete it, and its list is empty.
    assert_error(
        "other tenant reads",
        api.get(&path, &other_key).await,
        404,
        "not_found",
    );
    assert_error(
        "other tenant deletes",
        api.delete(&path, &other_key).await,
        404,
        "not_found",
    );
    let (_, list) = api.get("/v1/webhooks", &other_key).await;
    assert_eq!(list, json!({"data": [], "next_cursor": null}));
    let (status, _) = api.get(&path, &key).await;
    assert_eq!(status, StatusCode::OK, "still there for its owner");

    // The admin API wants the admin token, and a key only for an existing tenant.
    let tenant = json!({"name": "acme"});
    assert_error(
        "tenant without token",
        api.call(Method::POST, "/v1/tenants", None, Some(&tenant))
            .await,
        401,
        "unauthorized",
    );
    assert_error(
        "tenant with an API key",
        api.post("/v1/tenants", &key, &tenant).await,
        401,
        "unauthorized",
    );
    assert_error(
        "empty tenant name",
        api.post("/v1/tenants", ADMIN_TOKEN, &json!({"name": ""}))
            .await,
        422,
        "validation_failed",
    );
    let key_request = json!({"name": "k"});
    assert_error(
        "key of a missing tenant",
        api.post("/v1/tenants/ten_missing/keys", ADMIN_TOKEN, &key_request)
            .await,
        404,
        "not_found",
    );
    assert_error(
        "unknown scope",
        api.post(
            "/v1/tenants/ten_missing/keys",
            ADMIN_TOKEN,
            &json!({"name": "k", "scopes": ["root"]}),
        )
        .await,
        422,
        "validation_failed",
    );
    ingest.stop().await.expect("ingest shuts down cleanly");
}

/// Every unknown key and every control-plane read catches the view up with Kafka; that takes
/// a metadata round trip, not a wait behind the view's own long-polling fetch (half a second
/// per control topic before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_with_the_control_plane_is_quick() {
    let (ingest, _) = start_ingest().await;
    let api = Api::new(&ingest.base_url);
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let (status, _) = api.get("/v1/webhooks", "hk_unknown").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = api.get("/v1/tenants/ten_unknown", ADMIN_TOKEN).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(3),
        "10 catch-ups took {elapsed:?}"
    );
}
