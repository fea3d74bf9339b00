//! The webhook lifecycle as receivers see it: custom headers arrive, a deactivated webhook gets
//! nothing until reactivated, and after a secret rotation both the old and the new secret verify.

use std::time::Duration;

use hookline_testkit::{eventually, Api, Delivery, Receiver, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

use crate::start_hookline;

async fn deliveries_of_event(receiver: &Receiver, path: &str, event_id: &str) -> Vec<Delivery> {
    receiver
        .deliveries_at(path)
        .await
        .into_iter()
        .filter(|delivery| delivery.json()["id"] == json!(event_id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deactivation_rotation_and_custom_headers_reach_the_receivers() {
    let hookline = start_hookline(crate::sender_args()).await.0;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;

    let (status, live) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url("/live"), "events": ["*"], "headers": {"X-Api-Key": "k-123"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{live}");
    let (_, paused) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url("/paused"), "events": ["*"], "active": false}),
        )
        .await;
    assert_eq!(paused["status"], json!("inactive"));
    let old_secret = live["secret"].as_str().unwrap().to_owned();
    let (status, rotated) = api
        .post(
            &format!(
                "/v1/webhooks/{}/rotate-secret",
                live["id"].as_str().unwrap()
            ),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    // The receiver still knows only the old secret: the overlap keeps it verifying.
    receiver.configure("/live", &old_secret, 204).await;
    receiver
        .configure("/paused", paused["secret"].as_str().unwrap(), 204)
        .await;

    let (status, first) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "a.b", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let first_id = first["id"].as_str().unwrap();
    let delivery = eventually(
        "the live webhook's delivery",
        Duration::from_secs(60),
        || async {
            deliveries_of_event(&receiver, "/live", first_id)
                .await
                .pop()
        },
    )
    .await;
    assert!(delivery.verified, "old secret refused: {delivery:?}");
    assert_eq!(
        delivery.headers.get("x-api-key").map(String::as_str),
        Some("k-123")
    );
    let signatures = &delivery.headers["webhook-signature"];
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");

    // Reactivated, the paused webhook gets events accepted from then on; never the first one.
    let paused_path = format!("/v1/webhooks/{}", paused["id"].as_str().unwrap());
    let (status, _) = api
        .post(&format!("{paused_path}/activate"), &key, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    receiver
        .configure("/live", rotated["secret"].as_str().unwrap(), 204)
        .await;
    let (_, second) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "a.b", "data": {"n": 2}}),
        )
        .await;
    let second_id = second["id"].as_str().unwrap();
    let delivery = eventually(
        "the reactivated webhook's delivery",
        Duration::from_secs(60),
        || async {
            deliveries_of_event(&receiver, "/paused", second_id)
                .await
                .pop()
        },
    )
    .await;
    assert!(delivery.verified, "{delivery:?}");
    let delivery = eventually(
        "the live webhook's second delivery",
        Duration::from_secs(60),
        || async {
            deliveries_of_event(&receiver, "/live", second_id)
                .await
                .pop()
        },
    )
    .await;
    assert!(delivery.verified, "new secret refused: {delivery:?}");
    assert!(deliveries_of_event(&receiver, "/paused", first_id)
        .await
        .is_empty());

    // A test send reaches only this webhook, signed, and answers with the endpoint's answer.
    let (status, tested) = api
        .post(
            &format!("{paused_path}/test"),
            &key,
            &json!({"type": "test.ping", "data": {"hello": "world"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["outcome"], json!("succeeded"));
    assert_eq!(tested["response_status"], json!(204));
    let test_id = tested["event_id"].as_str().unwrap();
    let delivery = deliveries_of_event(&receiver, "/paused", test_id)
        .await
        .pop()
        .expect("the test request arrived before its answer");
    assert!(delivery.verified, "{delivery:?}");
    assert_eq!(delivery.json()["data"], json!({"hello": "world"}));
    assert!(deliveries_of_event(&receiver, "/live", test_id)
        .await
        .is_empty());
    hookline.stop().await.expect("hookline shuts down cleanly");
}
