//! Hookline started before its servers: every service waits for Kafka (and the ledger for its
//! database) instead of exiting, and the pipeline works once they are up. Run with
//! `cargo xtask faults`, which gives the tests servers of their own to stop and start.

use std::time::Duration;

use hookline_testkit::{eventually, xtask_server, Api, Receiver, RunningService, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

use crate::{config, sender_args};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "stops and starts Kafka and Cassandra: run with `cargo xtask faults`"]
async fn hookline_started_before_its_servers_delivers_once_they_are_up() {
    tokio::task::spawn_blocking(|| {
        xtask_server("stop", "kafka");
        xtask_server("stop", "cassandra");
    })
    .await
    .unwrap();
    let (mut config, _) = config(sender_args());
    // Cassandra alone may take a minute or two to come back on a busy machine.
    config.startup.timeout_secs = 400;
    let mut hookline = RunningService::spawn(hookline::run, config).await;
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/healthz", hookline.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = http
        .get(format!("{}/readyz", hookline.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let waiting = ready.text().await.unwrap();
    assert!(waiting.starts_with("starting"), "{waiting}");

    // Both come back while Hookline keeps trying: the ledger meets Kafka settling and a database
    // still starting, fanout initializes its transactions on a broker just up.
    let servers = tokio::task::spawn_blocking(|| {
        xtask_server("start", "kafka");
        xtask_server("start", "cassandra");
    });
    hookline.wait_ready(Duration::from_secs(400)).await;
    servers.await.unwrap();

    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (status, webhook) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url("/after-start"), "events": ["*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    receiver
        .configure("/after-start", webhook["secret"].as_str().unwrap(), 204)
        .await;
    let (status, event) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "a.b", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{event}");
    let delivery = eventually("the delivery", Duration::from_secs(60), || async {
        receiver.deliveries_at("/after-start").await.pop()
    })
    .await;
    assert!(delivery.verified, "{delivery:?}");
    // And the ledger, which waited for its database, recorded it.
    let event_id = event["id"].as_str().unwrap().to_owned();
    eventually("the ledger's record", Duration::from_secs(60), || {
        let (api, key, path) = (api.clone(), key.clone(), format!("/v1/events/{event_id}"));
        async move {
            let (status, _) = api.get(&path, &key).await;
            (status == StatusCode::OK).then_some(())
        }
    })
    .await;
}
