//! Signature profiles and payload shapes against receivers written from the platform docs in
//! the seeds (re-implemented in `receiver.py`, independent of our signer): each gets the body
//! it documents, byte for byte, signed the way it checks.

use std::time::Duration;

use hookline_testkit::{eventually, Api, Receiver, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::start_hookline;

/// One platform's receiver: its webhook settings, how it verifies, and an event for it.
struct Platform {
    path: &'static str,
    event_type: &'static str,
    signature: Value,
    payload: &'static str,
    secret: &'static str,
    verifier: Value,
    /// `data` as published, exactly as sent over HTTP.
    data: &'static str,
}

fn platforms() -> Vec<Platform> {
    vec![
        // Ruune: hex HMAC of the raw body in X-Ruune-Signature, its own body shape.
        Platform {
            path: "/ruune",
            event_type: "note.processed",
            signature: json!({"type": "hmac-hex", "header": "X-Ruune-Signature"}),
            payload: "raw",
            secret: "whsec_my_signing_secret",
            verifier: json!({"scheme": "hmac-hex", "header": "X-Ruune-Signature"}),
            data: r#"{ "event": "note.processed",  "data": {"z": 1, "a": 2.50, "e": 1e3, "s": "\u00e9\n"} }"#,
        },
        // Ringyo: hex HMAC of JSON.stringify(req.body): our envelope must be compact.
        Platform {
            path: "/ringyo",
            event_type: "call.completed",
            signature: json!({"type": "hmac-hex", "header": "X-Ringyo-Signature"}),
            payload: "envelope",
            secret: "ringyo_secret_0123456789",
            verifier: json!({"scheme": "hmac-hex", "header": "X-Ringyo-Signature", "reserialize": true}),
            data: r#"{"call_id":"c_1","duration":42,"tags":["a","b"]}"#,
        },
        // The recordings platform: sha256=<hex> of JSON.stringify(payload), {event,timestamp,data}.
        Platform {
            path: "/recordings",
            event_type: "recording.created",
            signature: json!({"type": "hmac-sha256-prefixed", "header": "X-Webhook-Signature"}),
            payload: "raw",
            secret: "recordings_secret_0123456789",
            verifier: json!({"scheme": "sha256-prefixed", "header": "X-Webhook-Signature", "reserialize": true}),
            data: r#"{"event":"recording.created","timestamp":"2026-06-01T00:00:00Z","data":{"id":"rec_1"}}"#,
        },
        // Ardela: sha256=<hex> of timestamp + "." + raw body, x-ardela-* headers.
        Platform {
            path: "/ardela",
            event_type: "recording.completed",
            signature: json!({"type": "timestamped", "prefix": "x-ardela-"}),
            payload: "raw",
            secret: "ardela_secret_0123456789",
            verifier: json!({"scheme": "timestamped", "prefix": "x-ardela-"}),
            data: r#"{"event":"recording.completed","recording":{"id":"clxxx123","title":"Client Meeting Notes","status":"COMPLETED"},"apiUrl":"/api/v1/recordings/clxxx123"}"#,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receivers_of_other_platforms_verify_their_documented_bodies_unchanged() {
    let hookline = start_hookline(crate::sender_args()).await.0;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;

    for platform in platforms() {
        let (status, webhook) = api
            .post(
                "/v1/webhooks",
                &key,
                &json!({
                    "url": receiver.url(platform.path),
                    "events": [platform.event_type],
                    "secret": platform.secret,
                    "signature": platform.signature,
                    "payload": platform.payload,
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{webhook}");
        receiver
            .configure_verifier(platform.path, platform.secret, platform.verifier.clone())
            .await;
        let event = format!(
            r#"{{"type":"{}","data":{}}}"#,
            platform.event_type, platform.data
        );
        let (status, body) = api
            .post_raw("/v1/events", &key, "application/json", event)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    for platform in platforms() {
        let delivery = eventually(platform.path, Duration::from_secs(60), || async {
            receiver.deliveries_at(platform.path).await.pop()
        })
        .await;
        assert!(delivery.verified, "{}: {delivery:?}", platform.path);
        if platform.payload == "raw" {
            assert_eq!(delivery.body, platform.data, "{}", platform.path);
        } else {
            let envelope = delivery.json();
            assert_eq!(envelope["type"], json!(platform.event_type));
            assert!(
                delivery
                    .body
                    .ends_with(&format!(r#","data":{}}}"#, platform.data)),
                "{}",
                delivery.body
            );
        }
    }

    // A tenant whose webhooks get raw bodies unless they choose otherwise.
    let (status, tenant) = api
        .post(
            "/v1/tenants",
            ADMIN_TOKEN,
            &json!({"name": "raw", "payload": "raw"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    let (_, raw_key) = api
        .post(
            &format!("/v1/tenants/{}/keys", tenant["id"].as_str().unwrap()),
            ADMIN_TOKEN,
            &json!({"name": "k"}),
        )
        .await;
    let raw_key = raw_key["key"].as_str().unwrap();
    let (_, inherited) = api
        .post(
            "/v1/webhooks",
            raw_key,
            &json!({"url": receiver.url("/raw"), "events": ["*"]}),
        )
        .await;
    assert_eq!(inherited["payload"], json!("raw"));
    let (_, chosen) = api
        .post(
            "/v1/webhooks",
            raw_key,
            &json!({"url": receiver.url("/env"), "events": ["*"], "payload": "envelope"}),
        )
        .await;
    assert_eq!(chosen["payload"], json!("envelope"));
    hookline.stop().await.expect("hookline shuts down cleanly");
}
