use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hookline_testkit::{eventually, Api, Receiver, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::start_hookline;

/// A webhook of the test: its receiver path and filters.
struct Subscription {
    path: &'static str,
    events: &'static [&'static str],
    /// Status the receiver answers with.
    status: u16,
}

const SUBSCRIPTIONS: &[Subscription] = &[
    Subscription {
        path: "/invoices",
        events: &["invoice.*"],
        status: 204,
    },
    Subscription {
        path: "/paid-and-users",
        events: &["invoice.paid", "user.created"],
        status: 200,
    },
    Subscription {
        path: "/everything",
        events: &["*"],
        status: 202,
    },
    Subscription {
        path: "/broken",
        events: &["invoice.paid"],
        status: 500,
    },
];

fn subscribed(events: &[&str], event_type: &str) -> bool {
    events.iter().any(|filter| {
        *filter == "*"
            || *filter == event_type
            || filter
                .strip_suffix('*')
                .is_some_and(|prefix| prefix.ends_with('.') && event_type.starts_with(prefix))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn published_events_reach_exactly_their_subscribers_signed_and_are_in_the_ledger() {
    let hookline = start_hookline(crate::sender_args()).await.0;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_other_tenant, other_key) = api.tenant_with_key(ADMIN_TOKEN, None).await;

    for subscription in SUBSCRIPTIONS {
        let (status, webhook) = api
            .post(
                "/v1/webhooks",
                &key,
                &json!({"url": receiver.url(subscription.path), "events": subscription.events, "description": subscription.path}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{webhook}");
        let secret = webhook["secret"]
            .as_str()
            .expect("secret shown at creation");
        assert!(secret.starts_with("whsec_"));
        receiver
            .configure(subscription.path, secret, subscription.status)
            .await;
    }
    // Another tenant's catch-all webhook must see none of the first tenant's events.
    let (status, other) = api
        .post(
            "/v1/webhooks",
            &other_key,
            &json!({"url": receiver.url("/other-tenant"), "events": ["*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    receiver
        .configure("/other-tenant", other["secret"].as_str().unwrap(), 204)
        .await;

    // One event at a time and a batch, with payloads whose bytes must survive untouched.
    let mut published: Vec<(String, String, String)> = Vec::new();
    for (event_type, data) in [
        (
            "invoice.paid",
            r#"{"amount": 4200,  "currency":"eur", "ratio": 1.50}"#,
        ),
        (
            "invoice.created",
            r#"{"nested":{"list":[1,2,3]},"unicode":"h\u00e9llo ✓"}"#,
        ),
        ("user.created", r#"{"id":"u_1"}"#),
        ("order.shipped", r#"[1, "two", null]"#),
    ] {
        let body = format!(r#"{{"type":"{event_type}","data":{data}}}"#);
        let (status, accepted) = api
            .post_raw("/v1/events", &key, "application/json", body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        published.push((
            accepted["id"].as_str().unwrap().to_owned(),
            event_type.to_owned(),
            data.to_owned(),
        ));
    }
    let batch = json!({"events": [
        {"id": "evt-batch-1", "type": "invoice.paid", "data": {"n": 1}, "timestamp": "2026-01-02T03:04:05Z"},
        {"type": "user.created", "data": {"n": 2}},
    ]});
    let (status, accepted) = api.post("/v1/events/batch", &key, &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let ids: Vec<String> = serde_json::from_value(accepted["ids"].clone()).unwrap();
    assert_eq!(ids[0], "evt-batch-1");
    published.push((ids[0].clone(), "invoice.paid".into(), r#"{"n":1}"#.into()));
    published.push((ids[1].clone(), "user.created".into(), r#"{"n":2}"#.into()));

    // What each path must receive: (path) -> event ids.
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (id, event_type, _) in &published {
        for subscription in SUBSCRIPTIONS {
            if subscribed(subscription.events, event_type) {
                expected
                    .entry(subscription.path)
                    .or_default()
                    .insert(id.clone());
            }
        }
    }
    let expected_total: usize = expected.values().map(BTreeSet::len).sum();
    eventually(
        "every delivery to arrive",
        Duration::from_secs(60),
        || async { (receiver.deliveries().await.len() >= expected_total).then_some(()) },
    )
    .await;
    // Give a duplicate or a stray delivery the chance to show up before judging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deliveries = receiver.deliveries().await;
    assert_eq!(deliveries.len(), expected_total, "{deliveries:#?}");

    let mut received: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut webhook_ids = BTreeSet::new();
    for delivery in &deliveries {
        assert!(
            delivery.verified,
            "signature refused by standardwebhooks: {delivery:?}"
        );
        assert_eq!(delivery.content_type.as_deref(), Some("application/json"));
        let body = delivery.json();
        let id = body["id"].as_str().unwrap().to_owned();
        let (_, event_type, data) = published
            .iter()
            .find(|(p, _, _)| *p == id)
            .expect("a published event");
        assert_eq!(body["type"], json!(event_type));
        assert!(body["timestamp"].is_string());
        // `data` is carried byte for byte: the raw text appears verbatim in the body.
        assert!(
            delivery.body.contains(&format!(r#""data":{data}"#)),
            "data re-serialized: {}",
            delivery.body
        );
        let fresh = received
            .entry(
                expected
                    .keys()
                    .find(|p| **p == delivery.path)
                    .copied()
                    .expect("a subscribed path"),
            )
            .or_default()
            .insert(id);
        assert!(fresh, "duplicate delivery: {delivery:?}");
        let webhook_id = delivery.webhook_id.clone().expect("webhook-id header");
        assert!(
            webhook_ids.insert(webhook_id),
            "webhook-id reused across messages"
        );
    }
    assert_eq!(received, expected);
    assert!(deliveries.iter().all(|d| d.path != "/other-tenant"));

    // Every attempt is in the ledger, under the webhook-id the receiver saw.
    for delivery in &deliveries {
        let webhook_id = delivery.webhook_id.as_deref().unwrap();
        let path = format!("/v1/deliveries/{webhook_id}");
        let found: Value = eventually("the attempt in the ledger", Duration::from_secs(30), || {
            let (api, key, path) = (api.clone(), key.clone(), path.clone());
            async move {
                let (status, body) = api.get(&path, &key).await;
                (status == StatusCode::OK).then_some(body)
            }
        })
        .await;
        let failing = delivery.path == "/broken";
        assert_eq!(found["id"], json!(webhook_id));
        assert_eq!(
            found["status"],
            json!(if failing { "retrying" } else { "succeeded" })
        );
        assert_eq!(found["event_id"], delivery.json()["id"]);
        let attempts = found["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{found}");
        assert_eq!(attempts[0]["attempt_number"], json!(1));
        assert_eq!(attempts[0]["url"], json!(receiver.url(&delivery.path)));
        if failing {
            assert_eq!(attempts[0]["response_status"], json!(500));
            assert_eq!(attempts[0]["error_class"], json!("http_status"));
            assert!(attempts[0]["next_attempt_at"].is_string(), "{found}");
        }
        // Another tenant cannot see it.
        let (status, body) = api.get(&path, &other_key).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], json!("not_found"));
    }

    hookline.stop().await.expect("hookline shuts down cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_webhook_receives_nothing_more() {
    let hookline = start_hookline(crate::sender_args()).await.0;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;

    let (_, kept) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url("/kept"), "events": ["*"]}),
        )
        .await;
    let (_, gone) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url("/gone"), "events": ["*"]}),
        )
        .await;
    receiver
        .configure("/kept", kept["secret"].as_str().unwrap(), 204)
        .await;
    receiver
        .configure("/gone", gone["secret"].as_str().unwrap(), 204)
        .await;

    let gone_path = format!("/v1/webhooks/{}", gone["id"].as_str().unwrap());
    let (status, body) = api.delete(&gone_path, &key).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"deleted": true})));
    let (status, _) = api.get(&gone_path, &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = api.get("/v1/webhooks", &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(
        list["data"][0].get("secret").is_none(),
        "secrets are shown only at creation"
    );

    let (status, _) = api
        .post("/v1/events", &key, &json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually(
        "the kept webhook's delivery",
        Duration::from_secs(60),
        || async {
            let deliveries = receiver.deliveries().await;
            deliveries.iter().any(|d| d.path == "/kept").then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver
        .deliveries()
        .await
        .iter()
        .all(|d| d.path == "/kept"));
    hookline.stop().await.expect("hookline shuts down cleanly");
}
