//! A producer's event id is an idempotency key end to end: a batch published twice is
//! delivered once, and the ledger lists each event once, as first accepted.

use std::collections::BTreeMap;
use std::time::Duration;

use hookline_testkit::{eventually, Api, Receiver, RunningService};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::dead_letters::tenant_with_webhook;
use crate::{config, sender_args};

fn batch(ids: &[&str], version: u32) -> Value {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "type": "order.paid", "data": {"version": version}}))
        .collect();
    json!({ "events": events })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_published_twice_is_delivered_and_listed_once() {
    let (config, _) = config(sender_args());
    let hookline = RunningService::start(hookline::run, config).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_, key, _) = tenant_with_webhook(&api, &receiver).await;
    let ids = ["inv_1", "inv_2", "inv_3", "inv_4"];

    for version in [1, 2] {
        let (status, body) = api
            .post("/v1/events/batch", &key, &batch(&ids, version))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["ids"], json!(ids));
    }
    // Read after the repeats on the same partition (the tenant's): once it is delivered and
    // listed, the repeats were judged and written.
    let (status, _) = api
        .post("/v1/events/batch", &key, &batch(&["inv_end"], 1))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let received = eventually("the last event", Duration::from_secs(60), || async {
        let deliveries = receiver.deliveries_at("/a").await;
        deliveries
            .iter()
            .any(|delivery| delivery.json()["id"] == json!("inv_end"))
            .then_some(deliveries)
    })
    .await;
    let mut delivered: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for delivery in received.iter().filter(|delivery| !delivery.failed) {
        let body = delivery.json();
        delivered
            .entry(body["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(body["data"].clone());
    }
    for id in ids {
        assert_eq!(
            delivered.get(id),
            Some(&vec![json!({"version": 1})]),
            "{delivered:?}"
        );
    }

    let listed = eventually(
        "the ledger to list the last event",
        Duration::from_secs(60),
        || async {
            let (status, page) = api.get("/v1/events?limit=100", &key).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let listed: Vec<Value> = page["data"].as_array().unwrap().clone();
            listed
                .iter()
                .any(|event| event["id"] == json!("inv_end"))
                .then_some(listed)
        },
    )
    .await;
    let mut times_listed: BTreeMap<String, usize> = BTreeMap::new();
    for event in &listed {
        *times_listed
            .entry(event["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for id in ids {
        assert_eq!(times_listed.get(id), Some(&1), "{times_listed:?}");
        let (status, event) = api.get(&format!("/v1/events/{id}"), &key).await;
        assert_eq!(status, StatusCode::OK, "{event}");
        assert_eq!(event["data"], json!({"version": 1}), "{event}");
    }
}
