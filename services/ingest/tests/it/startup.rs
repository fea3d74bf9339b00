//! Start-up and control-plane writes while Kafka is away or settling. The tests that stop and
//! start Kafka run with `cargo xtask faults`, on servers of their own.

use std::time::{Duration, Instant};

use hookline_testkit::{kafka_args, xtask_server, Api, RunningService, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::ingest_config;

/// What one request answered: status, `Retry-After`, and the body.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("ingest answers");
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|value| value.to_str().expect("a readable header").to_owned());
    let body = response.text().await.expect("a body");
    Answer {
        status,
        retry_after,
        body,
    }
}

async fn get(base_url: &str, path: &str) -> Answer {
    send(reqwest::Client::new().get(format!("{base_url}{path}"))).await
}

/// `POST /v1/tenants` with the admin token.
async fn create_tenant(base_url: &str, name: &str) -> Answer {
    let request = reqwest::Client::new()
        .post(format!("{base_url}/v1/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": name }));
    send(request).await
}

/// The value of an unlabelled metric.
async fn metric(base_url: &str, name: &str) -> f64 {
    let text = get(base_url, "/metrics").await.body;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// While starting: alive, not ready (naming what it waits for), and the API refuses requests
/// with `unavailable` and a `Retry-After`.
async fn assert_starting(base_url: &str) {
    assert_eq!(get(base_url, "/healthz").await.status, StatusCode::OK);
    let ready = get(base_url, "/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.body.starts_with("starting"), "readyz: {}", ready.body);
    let refused = create_tenant(base_url, "too early").await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert_eq!(refused.retry_after.as_deref(), Some("5"));
    assert!(
        refused.body.contains(r#""code":"unavailable""#),
        "{}",
        refused.body
    );
    assert_eq!(metric(base_url, "hookline_starting").await, 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_broker_ingest_stays_up_unready_and_stops_at_its_deadline() {
    hookline_runtime::telemetry::init_tracing();
    let mut kafka = kafka_args();
    // Nothing listens there: every connection is refused.
    kafka.brokers = "127.0.0.1:1".into();
    let mut config = ingest_config(kafka);
    config.startup.timeout_secs = 4;
    let ingest = RunningService::spawn(hookline_ingest::run, config).await;
    let started = Instant::now();
    assert_starting(&ingest.base_url).await;
    let ready = get(&ingest.base_url, "/readyz").await;
    assert_eq!(ready.body, "starting: waiting for ingest: kafka topics");

    let ended = tokio::time::timeout(Duration::from_secs(30), ingest.ended())
        .await
        .expect("it stops at its deadline");
    let error = ended.expect_err("a start-up that ran out of time is an error");
    assert_eq!(
        error.to_string(),
        "start-up did not finish within 4 s (HOOKLINE_STARTUP_TIMEOUT_SECS); still waiting for ingest: kafka topics"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "stops and starts Kafka: run with `cargo xtask faults`"]
async fn ingest_started_before_the_broker_becomes_ready_once_it_has_settled() {
    hookline_runtime::telemetry::init_tracing();
    tokio::task::spawn_blocking(|| xtask_server("stop", "kafka"))
        .await
        .unwrap();
    let mut ingest = RunningService::spawn(hookline_ingest::run, ingest_config(kafka_args())).await;
    assert_starting(&ingest.base_url).await;

    // Kafka starts while ingest keeps trying: ingest meets it down, starting, then settling.
    let kafka = tokio::task::spawn_blocking(|| xtask_server("start", "kafka"));
    ingest.wait_ready(Duration::from_secs(180)).await;
    kafka.await.unwrap();
    assert!(metric(&ingest.base_url, "hookline_startup_duration_seconds").await > 0.0);
    assert_eq!(metric(&ingest.base_url, "hookline_starting").await, 0.0);

    let api = Api::new(&ingest.base_url);
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (status, accepted) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "invoice.paid", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts Kafka: run with `cargo xtask faults`"]
async fn control_plane_writes_ride_out_a_broker_restart() {
    hookline_runtime::telemetry::init_tracing();
    let ingest = RunningService::start(hookline_ingest::run, ingest_config(kafka_args())).await;
    let base_url = ingest.base_url.clone();
    let api = Api::new(&base_url);
    let (tenant_id, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (status, webhook) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": "https://example.com/hooks", "events": ["*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    let webhook_id = webhook["id"].as_str().unwrap().to_owned();

    tokio::task::spawn_blocking(|| xtask_server("stop", "kafka"))
        .await
        .unwrap();
    // While Kafka is away a write waits out its deadline, then says when to retry.
    let asked = Instant::now();
    let refused = create_tenant(&base_url, "during the outage").await;
    let waited = asked.elapsed();
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert_eq!(refused.retry_after.as_deref(), Some("5"));
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "answered after {waited:?}"
    );
    assert!(metric(&base_url, "hookline_ingest_control_unavailable_total").await >= 1.0);

    tokio::task::spawn_blocking(|| xtask_server("start", "kafka"))
        .await
        .unwrap();
    // Right after the broker is back it still settles: every write is retried within its
    // deadline and succeeds without the client retrying.
    let writes: Vec<(&str, String, &str, Value)> = vec![
        (
            "POST",
            "/v1/tenants".into(),
            ADMIN_TOKEN,
            json!({"name": "after the restart"}),
        ),
        (
            "POST",
            format!("/v1/tenants/{tenant_id}/keys"),
            ADMIN_TOKEN,
            json!({"name": "after the restart"}),
        ),
        (
            "POST",
            "/v1/event-types".into(),
            &key,
            json!({"name": "invoice.paid", "description": "after the restart"}),
        ),
        (
            "PATCH",
            format!("/v1/webhooks/{webhook_id}"),
            &key,
            json!({"description": "after the restart"}),
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            &key,
            json!({"url": "https://example.com/more", "events": ["invoice.*"]}),
        ),
    ];
    for (method, path, token, body) in &writes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, answer) = api.call(method, path, Some(token), Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
    }
    let (status, patched) = api.get(&format!("/v1/webhooks/{webhook_id}"), &key).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["description"], json!("after the restart"));
    eprintln!(
        "control-plane writes across a restart: {} transient failures retried",
        metric(&base_url, "hookline_ingest_control_retries_total").await
    );
}
