//! Retries, dead letters, isolation and FIFO against the real servers.

use std::time::Duration;

use hookline_kafka::KafkaArgs;
use hookline_sender::SenderArgs;
use hookline_testkit::{
    eventually, records_in, Api, Behaviour, Receiver, RunningService, ADMIN_TOKEN,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{sender_args, start_hookline};

/// Hookline with the given sender settings, a receiver, and a new tenant's API key.
struct Stage {
    hookline: RunningService,
    kafka: KafkaArgs,
    api: Api,
    receiver: Receiver,
    key: String,
}

async fn stage(sender: SenderArgs) -> Stage {
    let (hookline, kafka) = start_hookline(sender).await;
    let api = Api::new(&hookline.base_url);
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    Stage {
        hookline,
        kafka,
        api,
        receiver: Receiver::start(),
        key,
    }
}

/// Creates a webhook at `path` with `extra` settings and configures the receiver for it.
async fn webhook(
    api: &Api,
    key: &str,
    receiver: &Receiver,
    path: &str,
    extra: Value,
    behaviour: Behaviour,
) -> String {
    let mut body = json!({"url": receiver.url(path), "events": ["*"]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, created) = api.post("/v1/webhooks", key, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    receiver
        .configure_with(path, created["secret"].as_str().unwrap(), behaviour)
        .await;
    created["id"].as_str().unwrap().to_owned()
}

/// Waits until the ledger shows the delivery in `status` and returns it.
async fn ledger_status(api: &Api, key: &str, delivery_id: &str, status: &str) -> Value {
    let path = format!("/v1/deliveries/{delivery_id}");
    eventually(
        &format!("delivery {delivery_id} to be {status}"),
        Duration::from_secs(60),
        || {
            let (api, key, path) = (api.clone(), key.to_owned(), path.clone());
            async move {
                let (code, body) = api.get(&path, &key).await;
                (code == StatusCode::OK && body["status"] == json!(status)).then_some(body)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_are_retried_on_schedule_with_one_webhook_id_until_they_succeed() {
    let Stage {
        hookline,
        kafka: _,
        api,
        receiver,
        key,
    } = stage(sender_args()).await;
    let behaviour = Behaviour {
        fail_first: 2,
        ..Behaviour::status(204)
    };
    let retry = json!({"retry": {"max_attempts": 4, "initial_delay_secs": 1, "multiplier": 2.0}});
    webhook(&api, &key, &receiver, "/flaky", retry, behaviour).await;

    let (status, _) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "a.b", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let deliveries = eventually("three attempts", Duration::from_secs(60), || async {
        let deliveries = receiver.deliveries_at("/flaky").await;
        (deliveries.len() >= 3).then_some(deliveries)
    })
    .await;
    let ids: Vec<_> = deliveries
        .iter()
        .map(|d| d.webhook_id.clone().unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "webhook-id changed across retries: {ids:?}"
    );
    assert!(deliveries.iter().all(|d| d.verified));
    // Waits of 1 s then 2 s (plus at most 10 % jitter), served within a second.
    let gaps: Vec<f64> = deliveries
        .windows(2)
        .map(|w| w[1].received_at - w[0].received_at)
        .collect();
    assert!(
        (0.95..2.2).contains(&gaps[0]),
        "first retry after {:.2} s",
        gaps[0]
    );
    assert!(
        (1.95..3.3).contains(&gaps[1]),
        "second retry after {:.2} s",
        gaps[1]
    );

    let found = ledger_status(&api, &key, &ids[0], "succeeded").await;
    let attempts = found["attempts"].as_array().unwrap();
    let numbers: Vec<_> = attempts
        .iter()
        .map(|a| a["attempt_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3], "{found}");
    for failed in &attempts[..2] {
        assert_eq!(failed["response_status"], json!(500));
        assert!(failed["next_attempt_at"].is_string());
    }
    assert_eq!(attempts[2]["outcome"], json!("succeeded"));
    assert!(attempts[2]["next_attempt_at"].is_null());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.deliveries_at("/flaky").await.len(),
        3,
        "no attempt after success"
    );
    hookline.stop().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spent_attempts_go_to_dead_letters_and_retry_after_is_honoured() {
    let Stage {
        hookline,
        kafka,
        api,
        receiver,
        key,
    } = stage(sender_args()).await;
    let behaviour = Behaviour {
        fail_first: 100,
        retry_after: Some(3),
        ..Behaviour::status(204)
    };
    let retry = json!({"retry": {"max_attempts": 2, "initial_delay_secs": 1}});
    webhook(&api, &key, &receiver, "/dead", retry, behaviour).await;

    let (status, _) = api
        .post("/v1/events", &key, &json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let deliveries = eventually("two attempts", Duration::from_secs(60), || async {
        let deliveries = receiver.deliveries_at("/dead").await;
        (deliveries.len() >= 2).then_some(deliveries)
    })
    .await;
    let gap = deliveries[1].received_at - deliveries[0].received_at;
    assert!(
        gap >= 2.95,
        "Retry-After: 3 was not honoured (retried after {gap:.2} s)"
    );

    let webhook_id = deliveries[0].webhook_id.clone().unwrap();
    let found = ledger_status(&api, &key, &webhook_id, "dead").await;
    assert_eq!(found["attempts"].as_array().unwrap().len(), 2, "{found}");
    let dead = eventually("the dead letter", Duration::from_secs(30), || async {
        let records = records_in(&kafka, &kafka.topics().dead()).await;
        (!records.is_empty()).then_some(records)
    })
    .await;
    assert_eq!(dead.len(), 1);
    let task: Value = serde_json::from_slice(dead[0].1.as_deref().unwrap()).unwrap();
    assert_eq!(task["delivery_id"], json!(webhook_id));
    assert_eq!(task["attempt"], json!(2));
    assert!(task["last_error"].as_str().unwrap().contains("500"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.deliveries_at("/dead").await.len(),
        2,
        "no attempt after the last"
    );
    hookline.stop().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_endpoint_does_not_hold_back_the_others() {
    let sender = SenderArgs {
        request_timeout_secs: 3,
        endpoint_concurrency: 2,
        endpoint_queue: 64,
        ..sender_args()
    };
    let Stage {
        hookline,
        kafka: _,
        api,
        receiver,
        key,
    } = stage(sender).await;
    let hanging = Behaviour {
        delay_ms: 20_000,
        ..Behaviour::status(204)
    };
    webhook(&api, &key, &receiver, "/hanging", json!({}), hanging).await;
    webhook(
        &api,
        &key,
        &receiver,
        "/healthy",
        json!({}),
        Behaviour::status(204),
    )
    .await;

    // The first event warms the pipeline up (consumer groups joined, connections open).
    let (status, _) = api
        .post("/v1/events", &key, &json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually("the first delivery", Duration::from_secs(60), || async {
        (!receiver.deliveries_at("/healthy").await.is_empty()).then_some(())
    })
    .await;

    let events: Vec<Value> = (0..40)
        .map(|n| json!({"type": "a.b", "data": {"n": n}}))
        .collect();
    let (status, _) = api
        .post("/v1/events/batch", &key, &json!({"events": events}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Every request to the hanging endpoint times out after 3 s; the healthy one must not wait
    // behind them.
    eventually(
        "the healthy endpoint to get every event",
        Duration::from_secs(8),
        || async { (receiver.deliveries_at("/healthy").await.len() >= 41).then_some(()) },
    )
    .await;
    let hanging_requests = receiver.deliveries_at("/hanging").await.len();
    // At most two in flight at a time, each taking 3 s to time out.
    assert!(
        hanging_requests <= 4,
        "the in-flight cap was exceeded: {hanging_requests} requests"
    );
    hookline.stop().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fifo_webhook_gets_one_request_at_a_time_and_waits_for_its_retries() {
    let Stage {
        hookline,
        kafka: _,
        api,
        receiver,
        key,
    } = stage(sender_args()).await;
    let behaviour = Behaviour {
        fail_first: 1,
        delay_ms: 100,
        ..Behaviour::status(204)
    };
    let extra = json!({"ordering": "fifo", "retry": {"max_attempts": 3, "initial_delay_secs": 1}});
    webhook(&api, &key, &receiver, "/fifo", extra, behaviour).await;

    let events: Vec<Value> = (0..5)
        .map(|n| json!({"type": "a.b", "data": {"n": n}}))
        .collect();
    let (status, _) = api
        .post("/v1/events/batch", &key, &json!({"events": events}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let deliveries = eventually("six requests", Duration::from_secs(60), || async {
        let deliveries = receiver.deliveries_at("/fifo").await;
        (deliveries.len() >= 6).then_some(deliveries)
    })
    .await;
    // The first task's retry comes before any later task.
    assert_eq!(deliveries[0].webhook_id, deliveries[1].webhook_id);
    assert!(deliveries[1].received_at - deliveries[0].received_at >= 0.95);
    // One at a time: each request starts after the previous one's 100 ms answer.
    for pair in deliveries.windows(2) {
        assert!(
            pair[1].received_at - pair[0].received_at >= 0.09,
            "overlapping requests"
        );
    }
    let distinct: std::collections::BTreeSet<_> =
        deliveries.iter().map(|d| d.webhook_id.clone()).collect();
    assert_eq!(distinct.len(), 5);
    hookline.stop().await.expect("clean shutdown");
}

/// Publishes one event at a time until the endpoint has had `requests` requests.
async fn publish_until_requests(api: &Api, key: &str, receiver: &Receiver, path: &str, n: usize) {
    for sent in 1..=n {
        let (status, _) = api
            .post(
                "/v1/events",
                key,
                &json!({"type": "a.b", "data": {"n": sent}}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        eventually("the request", Duration::from_secs(60), || async {
            (receiver.deliveries_at(path).await.len() >= sent).then_some(())
        })
        .await;
    }
}

/// The attempts the ledger lists for `delivery_id`, once it shows `count` of them.
async fn ledger_attempts(api: &Api, key: &str, delivery_id: &str, count: usize) -> Vec<Value> {
    let path = format!("/v1/deliveries/{delivery_id}");
    eventually(
        &format!("{count} attempts of {delivery_id} in the ledger"),
        Duration::from_secs(60),
        || {
            let (api, key, path) = (api.clone(), key.to_owned(), path.clone());
            async move {
                let (_, body) = api.get(&path, &key).await;
                let attempts = body["attempts"].as_array().cloned().unwrap_or_default();
                (attempts.len() >= count).then_some(attempts)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_circuit_holds_tasks_without_attempts_until_its_probe_succeeds() {
    let sender = SenderArgs {
        circuit_threshold: 3,
        circuit_cooldown_secs: 3,
        ..sender_args()
    };
    let Stage {
        hookline,
        kafka: _,
        api,
        receiver,
        key,
    } = stage(sender).await;
    let behaviour = Behaviour {
        fail_first: 3,
        ..Behaviour::status(204)
    };
    let retry = json!({"retry": {"max_attempts": 5, "initial_delay_secs": 1}});
    webhook(&api, &key, &receiver, "/down", retry, behaviour).await;
    // Three failures in a row open the circuit.
    publish_until_requests(&api, &key, &receiver, "/down", 3).await;

    let events: Vec<Value> = (0..20)
        .map(|n| json!({"type": "a.b", "data": {"held": n}}))
        .collect();
    let (status, _) = api
        .post("/v1/events/batch", &key, &json!({"events": events}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let delivered = eventually(
        "every event delivered once the probe succeeds",
        Duration::from_secs(30),
        || async {
            let delivered: Vec<_> = receiver
                .deliveries_at("/down")
                .await
                .into_iter()
                .filter(|d| !d.failed)
                .collect();
            (delivered.len() >= 23).then_some(delivered)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests = receiver.deliveries_at("/down").await;
    assert_eq!(
        requests.len(),
        26,
        "3 failures, then one request per event: held tasks send nothing while the circuit is open"
    );
    // The events published while the circuit was open were each attempted once, when the probe
    // had closed it: the ledger holds no attempt for the time they were held.
    let mut opened = 0;
    for delivery in &delivered {
        let delivery_id = delivery.webhook_id.as_deref().unwrap();
        let attempts = ledger_attempts(&api, &key, delivery_id, 1).await;
        let failed: Vec<_> = attempts
            .iter()
            .filter(|a| a["outcome"] != json!("succeeded"))
            .collect();
        assert!(failed.len() <= 1, "{attempts:?}");
        for attempt in &failed {
            assert_eq!(attempt["response_status"], json!(500), "{attempt}");
            let error = attempt["error"].as_str().unwrap();
            opened += usize::from(error.contains("the circuit opened"));
        }
        if failed.is_empty() {
            assert_eq!(attempts.len(), 1, "{attempts:?}");
            assert_eq!(attempts[0]["attempt_number"], json!(1));
        }
    }
    assert_eq!(opened, 1, "one record says the circuit opened");
    hookline.stop().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_held_by_an_open_circuit_are_dead_lettered_on_the_retry_schedule_clock() {
    let sender = SenderArgs {
        circuit_threshold: 1,
        circuit_cooldown_secs: 600,
        ..sender_args()
    };
    let Stage {
        hookline,
        kafka,
        api,
        receiver,
        key,
    } = stage(sender).await;
    let behaviour = Behaviour {
        fail_first: 1_000,
        ..Behaviour::status(204)
    };
    // Three attempts, 2 s apart: a task's last attempt is due 4 s after its first.
    let retry = json!({"retry": {"max_attempts": 3, "initial_delay_secs": 2, "multiplier": 1.0}});
    webhook(&api, &key, &receiver, "/gone", retry, behaviour).await;
    publish_until_requests(&api, &key, &receiver, "/gone", 1).await;

    let events: Vec<Value> = (0..5)
        .map(|n| json!({"type": "a.b", "data": {"held": n}}))
        .collect();
    let (status, _) = api
        .post("/v1/events/batch", &key, &json!({"events": events}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let published = std::time::Instant::now();
    let dead = eventually("six dead letters", Duration::from_secs(60), || async {
        let records = records_in(&kafka, &kafka.topics().dead()).await;
        (records.len() >= 6).then_some(records)
    })
    .await;
    let took = published.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "dead-lettered {took:?} after publishing, not on the schedule's 4 s clock"
    );
    assert_eq!(
        receiver.deliveries_at("/gone").await.len(),
        1,
        "no request while open"
    );
    for record in &dead {
        let task: Value = serde_json::from_slice(record.1.as_deref().unwrap()).unwrap();
        let delivery_id = task["delivery_id"].as_str().unwrap();
        let found = ledger_status(&api, &key, delivery_id, "dead").await;
        let attempts = found["attempts"].as_array().unwrap();
        let last = attempts.last().unwrap();
        assert_eq!(last["error_class"], json!("circuit_open"), "{found}");
        assert!(last["response_status"].is_null(), "{found}");
        let first_try = attempts.len() == 1;
        assert!(
            first_try || attempts[0]["response_status"] == json!(500),
            "one record for the hold, not one per wait: {found}"
        );
        assert!(attempts.len() <= 2, "{found}");
    }
    hookline.stop().await.expect("clean shutdown");
}
