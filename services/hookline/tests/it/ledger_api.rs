//! The ledger's read API: listings with filters and cursors, the attempt log, statistics,
//! events for polling, replay, and recovery jobs that outlive the instance running them.

use std::collections::BTreeSet;
use std::time::Duration;

use hookline_store::Ledger;
use hookline_testkit::{eventually, Api, Receiver, RunningService, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{config, sender_args, start_hookline};

/// Follows `next_cursor` through a listing and returns every item.
async fn all_pages(api: &Api, key: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(cursor) => format!("{path}{separator}limit=2&cursor={cursor}"),
            None => format!("{path}{separator}limit=2"),
        };
        let (status, page) = api.get(&url, key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        items.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_attempts_events_and_replay() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_, other_key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let mut webhook_ids = Vec::new();
    for (path, status) in [("/ok", 204), ("/broken", 500)] {
        let (_, created) = api
            .post(
                "/v1/webhooks",
                &key,
                &json!({"url": receiver.url(path), "events": ["order.*"]}),
            )
            .await;
        receiver
            .configure(path, created["secret"].as_str().unwrap(), status)
            .await;
        webhook_ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let (ok_webhook, broken_webhook) = (&webhook_ids[0], &webhook_ids[1]);

    let payloads = [r#"{"n": 1,  "x": 1.50}"#, r#"{"n":2}"#, r#"{"n":3}"#];
    let mut event_ids = Vec::new();
    for (n, data) in payloads.iter().enumerate() {
        let event_type = if n == 1 {
            "order.paid"
        } else {
            "order.created"
        };
        let body = format!(r#"{{"type":"{event_type}","data":{data}}}"#);
        let (status, accepted) = api
            .post_raw("/v1/events", &key, "application/json", body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        event_ids.push(accepted["id"].as_str().unwrap().to_owned());
    }
    eventually(
        "six deliveries in the ledger",
        Duration::from_secs(60),
        || async {
            let (_, page) = api.get("/v1/deliveries?limit=100", &key).await;
            (page["data"].as_array().map_or(0, Vec::len) == 6).then_some(())
        },
    )
    .await;

    // Every delivery exactly once across pages, newest first.
    let deliveries = all_pages(&api, &key, "/v1/deliveries").await;
    assert_eq!(deliveries.len(), 6);
    let ids: BTreeSet<_> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 6, "a delivery repeated across pages");
    let created: Vec<_> = deliveries
        .iter()
        .map(|d| d["created_at"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {created:?}"
    );

    let retrying = all_pages(&api, &key, "/v1/deliveries?status=retrying").await;
    assert_eq!(retrying.len(), 3);
    assert!(retrying
        .iter()
        .all(|d| d["webhook_id"] == json!(broken_webhook)));
    let of_ok = all_pages(
        &api,
        &key,
        &format!("/v1/deliveries?webhook_id={ok_webhook}"),
    )
    .await;
    assert_eq!(of_ok.len(), 3);
    let paid = all_pages(&api, &key, "/v1/deliveries?event_type=order.paid").await;
    assert_eq!(paid.len(), 2);

    // The attempt log and statistics of one webhook.
    let attempts = all_pages(
        &api,
        &key,
        &format!("/v1/webhooks/{broken_webhook}/attempts"),
    )
    .await;
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a["response_status"] == json!(500)));
    let (status, stats) = api
        .get(&format!("/v1/webhooks/{broken_webhook}/stats"), &key)
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(
        (stats["attempts"].clone(), stats["failed"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(stats["success_rate"], json!(0.0));
    for hours in ["0", "8785"] {
        let (status, body) = api
            .get(
                &format!("/v1/webhooks/{broken_webhook}/stats?hours={hours}"),
                &key,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "hours={hours}: {body}"
        );
    }

    // Events in acceptance order, payloads byte for byte.
    let events = eventually("events in the ledger", Duration::from_secs(30), || async {
        let (_, page) = api.get("/v1/events", &key).await;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        (data.len() == 3).then_some(data)
    })
    .await;
    let listed: Vec<_> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, event_ids);
    let (_, page) = api.get("/v1/events?type=order.paid", &key).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let (status, body) = api.get(&format!("/v1/events/{}", event_ids[0]), &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        serde_json::from_str::<Value>(payloads[0]).unwrap()
    );
    assert_eq!(body["deliveries"].as_array().unwrap().len(), 2);

    // Replay a failed delivery once the endpoint is fixed: same webhook-id, marked as a replay.
    let broken_secret_path = "/broken";
    let target = &retrying[0];
    let delivery_id = target["id"].as_str().unwrap();
    let before = receiver.deliveries_at(broken_secret_path).await.len();
    let (status, body) = api
        .post(
            &format!("/v1/deliveries/{delivery_id}/replay"),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let replayed = eventually("the replayed request", Duration::from_secs(30), || async {
        let deliveries = receiver.deliveries_at(broken_secret_path).await;
        (deliveries.len() > before).then(|| deliveries.last().cloned().unwrap())
    })
    .await;
    assert_eq!(replayed.webhook_id.as_deref(), Some(delivery_id));
    let detail = eventually(
        "the replay in the ledger",
        Duration::from_secs(30),
        || async {
            let (_, detail) = api
                .get(&format!("/v1/deliveries/{delivery_id}"), &key)
                .await;
            (detail["attempts"].as_array().map_or(0, Vec::len) == 2).then_some(detail)
        },
    )
    .await;
    assert_eq!(detail["attempts"][1]["replay"], json!(true));
    assert_eq!(detail["attempts"][1]["attempt_number"], json!(2));

    // What the broken webhook's receiver missed, with payloads, for it to catch up by polling.
    let (status, missed) = api
        .get(
            &format!("/v1/webhooks/{broken_webhook}/events?delivery=unsucceeded"),
            &key,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{missed}");
    assert_eq!(missed["data"].as_array().unwrap().len(), 3, "{missed}");
    assert!(missed["data"][0]["event"]["data"]["n"].is_number());
    let (_, none_missed) = api
        .get(
            &format!("/v1/webhooks/{ok_webhook}/events?delivery=unsucceeded"),
            &key,
        )
        .await;
    assert_eq!(none_missed["data"], json!([]));

    // Recover every retrying delivery of the broken webhook as a tracked job (the replayed one
    // has spent its attempts and is dead by now).
    let retrying_now = all_pages(
        &api,
        &key,
        &format!("/v1/deliveries?webhook_id={broken_webhook}&status=retrying"),
    )
    .await
    .len();
    assert_eq!(retrying_now, 2);
    let before = receiver.deliveries_at("/broken").await.len();
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, job) = api
        .post(
            &format!("/v1/webhooks/{broken_webhook}/recover"),
            &key,
            &json!({"since": since, "status": "retrying"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job_path = format!(
        "/v1/webhooks/{broken_webhook}/recover/{}",
        job["id"].as_str().unwrap()
    );
    let finished = eventually(
        "the recovery to finish",
        Duration::from_secs(30),
        || async {
            let (_, job) = api.get(&job_path, &key).await;
            (job["status"] == json!("succeeded")).then_some(job)
        },
    )
    .await;
    assert_eq!(finished["replayed"], json!(retrying_now), "{finished}");
    eventually(
        "the recovered requests",
        Duration::from_secs(30),
        || async {
            (receiver.deliveries_at("/broken").await.len() >= before + retrying_now).then_some(())
        },
    )
    .await;

    // Another tenant sees none of it; bad parameters are refused.
    let (status, _) = api
        .get(
            &format!("/v1/webhooks/{broken_webhook}/attempts"),
            &other_key,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .post(
            &format!("/v1/deliveries/{delivery_id}/replay"),
            &other_key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = api.get("/v1/deliveries", &other_key).await;
    assert_eq!(page["data"], json!([]));
    let (_, page) = api.get("/v1/events", &other_key).await;
    assert_eq!(page["data"], json!([]));
    for bad in [
        "/v1/deliveries?limit=0",
        "/v1/deliveries?limit=101",
        "/v1/deliveries?cursor=garbage!",
        "/v1/deliveries?status=bogus",
        "/v1/deliveries?since=yesterday",
        "/v1/deliveries?unknown=1",
        "/v1/webhooks/wh_missing/events?delivery=unsucceeded",
    ] {
        let (status, body) = api.get(bad, &key).await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
        assert!(body["error"]["code"].is_string(), "{bad}: {body}");
    }
    hookline.stop().await.expect("clean shutdown");
}

/// The ids of every delivery a listing returns, read 100 at a time.
async fn delivery_ids(api: &Api, key: &str, path: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}&limit=100&cursor={cursor}"),
            None => format!("{path}&limit=100"),
        };
        let (status, page) = api.get(&url, key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        ids.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recovery_resumes_on_another_instance_when_its_own_stops() {
    const EVENTS: usize = 400;
    let mut sender = sender_args();
    // Every failure of this endpoint is an HTTP attempt: no circuit turns replays away.
    sender.circuit_threshold = 1_000_000;
    let (mut config, _) = config(sender);
    // One replay at a time, so the job is still running when its instance stops; a short
    // lease and scan, so another instance resumes it quickly.
    config.ledger.recover.replays_in_flight = 1;
    config.ledger.recover.lease_secs = 2;
    config.ledger.recover.scan_secs = 1;
    let first = RunningService::start(hookline::run, config.clone()).await;
    let api = Api::new(&first.base_url);
    let receiver = Receiver::start();
    let (tenant_id, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_, created) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({
                "url": receiver.url("/down"),
                "events": ["*"],
                "retry": {"max_attempts": 1, "initial_delay_secs": 1},
            }),
        )
        .await;
    let (webhook_id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    receiver.configure("/down", &secret, 500).await;
    let since = chrono::Utc::now().to_rfc3339();
    for batch in 0..EVENTS / 100 {
        let events: Vec<Value> = (0..100)
            .map(|n| json!({"type": "order.created", "data": {"n": batch * 100 + n}}))
            .collect();
        let (status, body) = api
            .post("/v1/events/batch", &key, &json!({ "events": events }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let dead_path = format!("/v1/deliveries?webhook_id={webhook_id}&status=dead");
    let dead = eventually(
        "every delivery dead after one attempt",
        Duration::from_secs(120),
        || async {
            let ids = delivery_ids(&api, &key, &dead_path).await;
            (ids.len() == EVENTS).then_some(ids)
        },
    )
    .await;

    receiver.configure("/down", &secret, 204).await;
    let answered_before = receiver.deliveries_at("/down").await.len();
    let (status, job) = api
        .post(
            &format!("/v1/webhooks/{webhook_id}/recover"),
            &key,
            &json!({"since": since}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let job_path = format!("/v1/webhooks/{webhook_id}/recover/{job_id}");
    eventually("a first page replayed", Duration::from_secs(60), || async {
        let (_, job) = api.get(&job_path, &key).await;
        (job["replayed"].as_i64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    first.stop().await.expect("a clean stop");

    // Stopped half-way: the job is still running, with its progress saved.
    let ledger = Ledger::connect(&config.cassandra).await.unwrap();
    let stopped = ledger
        .recover_job(&tenant_id, &job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.status, "running", "{stopped:?}");
    assert!(stopped.replayed < EVENTS as i64, "{stopped:?}");

    let second = RunningService::start(hookline::run, config).await;
    let api = Api::new(&second.base_url);
    let finished = eventually(
        "the recovery finished by the second instance",
        Duration::from_secs(120),
        || async {
            let (_, job) = api.get(&job_path, &key).await;
            (job["status"] == json!("succeeded")).then_some(job)
        },
    )
    .await;
    // Deliveries the first instance replayed after its last save and that succeeded since are
    // no longer dead, so the second one neither replays nor counts them.
    assert!(finished["replayed"].as_i64().unwrap() > 0, "{finished}");
    // Every dead delivery reached the endpoint again: a few maybe twice, none skipped.
    eventually(
        "every dead delivery replayed to the endpoint",
        Duration::from_secs(120),
        || async {
            let delivered: BTreeSet<String> = receiver.deliveries_at("/down").await
                [answered_before..]
                .iter()
                .filter_map(|d| d.webhook_id.clone())
                .collect();
            (delivered == dead).then_some(())
        },
    )
    .await;
    second.stop().await.expect("a clean stop");
}

/// The value of header `name` in an attempt's `request_headers` or `response_headers`.
fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_array()
        .expect("headers are an array")
        .iter()
        .find(|header| header["name"] == json!(name))
        .map(|header| header["value"].as_str().expect("a header value is text"))
}

/// The only delivery of `webhook_id`, with its attempts, once it has `attempts` of them.
async fn delivery_of(api: &Api, key: &str, webhook_id: &str, attempts: usize) -> Value {
    eventually(
        "the delivery and its attempts in the ledger",
        Duration::from_secs(60),
        || async {
            let (_, page) = api
                .get(&format!("/v1/deliveries?webhook_id={webhook_id}"), key)
                .await;
            let id = page["data"][0]["id"].as_str()?.to_owned();
            let (_, detail) = api.get(&format!("/v1/deliveries/{id}"), key).await;
            (detail["attempts"].as_array()?.len() == attempts).then_some(detail)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attempts_show_the_headers_sent_and_answered_without_credentials() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    // The receiver tells endpoints apart by path and query.
    let target = "/headers?token=secret-value&team=payments";
    let (_, answering) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({
                "url": receiver.url(target),
                "events": ["*"],
                "headers": {"X-Api-Key": "k-123", "X-Team": "payments"},
            }),
        )
        .await;
    receiver
        .configure(target, answering["secret"].as_str().unwrap(), 204)
        .await;
    // Nothing listens on a port just released: the attempt fails before any answer.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, unreachable) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({
                "url": format!("http://127.0.0.1:{closed_port}/?token=secret-value"),
                "events": ["*"],
            }),
        )
        .await;
    let (status, _) = api
        .post("/v1/events", &key, &json!({"type": "a.b", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let answering_id = answering["id"].as_str().unwrap();
    let detail = delivery_of(&api, &key, answering_id, 1).await;
    let attempt = &detail["attempts"][0];
    let sent = &attempt["request_headers"];
    assert_eq!(header(sent, "webhook-id"), detail["id"].as_str(), "{sent}");
    assert!(header(sent, "webhook-signature")
        .unwrap()
        .starts_with("v1,"));
    assert_eq!(header(sent, "x-api-key"), Some("[redacted]"), "{sent}");
    assert_eq!(header(sent, "x-team"), Some("payments"), "{sent}");
    assert_eq!(header(sent, "content-type"), Some("application/json"));
    assert_eq!(
        attempt["url"],
        json!(receiver.url("/headers?token=[redacted]&team=payments"))
    );
    // The endpoint itself got the keys: only the record leaves them out.
    let received = receiver.deliveries_at(target).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].headers["x-api-key"], "k-123");
    let answered = &attempt["response_headers"];
    assert_eq!(header(answered, "content-length"), Some("0"), "{answered}");
    assert!(header(answered, "server").is_some(), "{answered}");
    assert_eq!(attempt["response_headers_truncated"], json!(false));
    // The webhook's attempt log shows the same.
    let (_, log) = api
        .get(&format!("/v1/webhooks/{answering_id}/attempts"), &key)
        .await;
    assert_eq!(log["data"][0]["url"], attempt["url"]);
    assert_eq!(log["data"][0]["request_headers"], *sent);
    assert_eq!(log["data"][0]["response_headers"], *answered);

    let detail = delivery_of(&api, &key, unreachable["id"].as_str().unwrap(), 1).await;
    let attempt = &detail["attempts"][0];
    assert_eq!(attempt["error_class"], json!("connection"), "{attempt}");
    assert_eq!(
        attempt["url"],
        json!(format!("http://127.0.0.1:{closed_port}/?token=[redacted]"))
    );
    // Nor in the error, although the HTTP client's message names the URL.
    assert!(!attempt.to_string().contains("secret-value"), "{attempt}");
    assert!(header(&attempt["request_headers"], "webhook-signature").is_some());
    assert_eq!(attempt["response_headers"], json!([]));
    hookline.stop().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_count_successes_retries_and_dead_deliveries_per_interval() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_, created) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({
                "url": receiver.url("/flaky"),
                "events": ["*"],
                "retry": {"max_attempts": 2, "initial_delay_secs": 1},
            }),
        )
        .await;
    let (webhook_id, secret) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let publish = || async {
        let (status, _) = api
            .post("/v1/events", &key, &json!({"type": "a.b", "data": {}}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    };
    // A delivery that fails, is retried, fails again and is dead; then one that succeeds.
    receiver.configure("/flaky", secret, 500).await;
    publish().await;
    let dead = delivery_of(&api, &key, webhook_id, 2).await;
    assert_eq!(dead["status"], json!("dead"), "{dead}");
    receiver.configure("/flaky", secret, 204).await;
    publish().await;
    let attempts = eventually("three attempts", Duration::from_secs(60), || async {
        let (_, log) = api
            .get(&format!("/v1/webhooks/{webhook_id}/attempts"), &key)
            .await;
        let data = log["data"].as_array()?.clone();
        (data.len() == 3).then_some(data)
    })
    .await;

    let time = |value: &Value| -> chrono::DateTime<chrono::Utc> {
        value.as_str().unwrap().parse().unwrap()
    };
    for (query, intervals, minutes) in [("", 24, 60), ("?hours=1&interval_minutes=1", 60, 1)] {
        let (status, stats) = api
            .get(&format!("/v1/webhooks/{webhook_id}/stats{query}"), &key)
            .await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        assert_eq!(
            (
                &stats["succeeded"],
                &stats["failed"],
                &stats["interval_minutes"]
            ),
            (&json!(1), &json!(2), &json!(minutes))
        );
        let series = stats["series"].as_array().unwrap();
        assert_eq!(series.len(), intervals, "{query}: {stats}");
        let since = time(&stats["since"]);
        let length = chrono::Duration::minutes(minutes);
        for (index, point) in series.iter().enumerate() {
            assert_eq!(time(&point["start"]), since + length * index as i32);
        }
        // Each attempt in the interval its time falls in: the dead delivery's first attempt
        // as retrying, its last as failed, the other as succeeded.
        let mut expected = vec![[0u64; 3]; intervals];
        for attempt in &attempts {
            let elapsed = time(&attempt["attempted_at"]) - since;
            let index = usize::try_from(elapsed.num_milliseconds() / length.num_milliseconds())
                .unwrap()
                .min(intervals - 1);
            let column = match (
                attempt["outcome"].as_str(),
                attempt["next_attempt_at"].is_null(),
            ) {
                (Some("succeeded"), _) => 0,
                (Some("failed"), false) => 1,
                _ => 2,
            };
            expected[index][column] += 1;
        }
        let counted: Vec<[u64; 3]> = series
            .iter()
            .map(|p| ["succeeded", "retrying", "failed"].map(|k| p[k].as_u64().unwrap()))
            .collect();
        assert_eq!(counted, expected, "{query}: {stats}");
        let totals = counted.iter().fold([0; 3], |sum, p| {
            [sum[0] + p[0], sum[1] + p[1], sum[2] + p[2]]
        });
        assert_eq!(totals, [1, 1, 1], "{query}");
    }

    for bad in [
        "interval_minutes=0",
        "interval_minutes=-1",
        "hours=24&interval_minutes=2",
        "interval_minutes=1",
        "interval_minutes=527041",
        "interval_minutes=2147483648",
    ] {
        let (status, body) = api
            .get(&format!("/v1/webhooks/{webhook_id}/stats?{bad}"), &key)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["code"], json!("validation_failed"), "{bad}");
    }
    // The window is at most the retention (a day in these tests): 480 intervals of 3 minutes.
    let (status, stats) = api
        .get(
            &format!("/v1/webhooks/{webhook_id}/stats?hours=48&interval_minutes=3"),
            &key,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["series"].as_array().unwrap().len(), 480);
    hookline.stop().await.expect("clean shutdown");
}
