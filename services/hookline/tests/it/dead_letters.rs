//! Records no stage can process: each goes, with the reason, to its stage's dead-letter topic,
//! and the records behind it on the same partition are processed as usual.

use std::time::Duration;

use hookline_kafka::{KafkaArgs, OutgoingRecord, Publisher};
use hookline_schemas::DeadLetterRecord;
use hookline_testkit::{
    create_topic, eventually, first_records, Api, Behaviour, Receiver, ADMIN_TOKEN,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{config, sender_args};

/// The first `count` dead letters of `stage`.
async fn dead_letters(kafka: &KafkaArgs, stage: &str, count: usize) -> Vec<DeadLetterRecord> {
    first_records(kafka, &kafka.topics().dead_letters(stage), count)
        .await
        .iter()
        .map(|payload| serde_json::from_slice(payload).expect("a dead letter"))
        .collect()
}

/// A tenant, its key and a catch-all webhook answered 204 at the receiver's `/a`.
pub async fn tenant_with_webhook(api: &Api, receiver: &Receiver) -> (String, String, String) {
    let (tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (status, created) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url("/a"), "events": ["*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    receiver
        .configure_with(
            "/a",
            created["secret"].as_str().unwrap(),
            Behaviour::status(204),
        )
        .await;
    let webhook_id = created["id"].as_str().unwrap().to_owned();
    (tenant, key, webhook_id)
}

fn garbage(topic: String, key: &str) -> OutgoingRecord {
    OutgoingRecord {
        topic,
        partition: None,
        key: key.to_owned(),
        payload: b"{not json".to_vec(),
    }
}

fn payload_of(letter: &DeadLetterRecord) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(&letter.payload_base64)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undecodable_records_are_dead_lettered_by_each_stage_and_the_partition_moves_on() {
    let (config, kafka) = config(sender_args());
    let hookline = hookline_testkit::RunningService::start(hookline::run, config).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (tenant, key, webhook_id) = tenant_with_webhook(&api, &receiver).await;
    let webhook_id = webhook_id.as_str();

    // Garbage ahead of the event on the very partitions its records take: keyed like the
    // event (events), its task (deliveries) and its attempts (attempts).
    let event_id = "evt_after_garbage";
    let delivery_id = hookline_domain::ids::delivery_id(&tenant, event_id, webhook_id);
    let topics = kafka.topics();
    let publisher = Publisher::new(&kafka).unwrap();
    for record in [
        garbage(topics.events(), event_id),
        garbage(topics.deliveries(), webhook_id),
        garbage(topics.attempts(), &delivery_id),
    ] {
        publisher.send_record(&record).await.unwrap();
    }
    let (status, _) = api
        .post(
            "/v1/events",
            &key,
            &json!({"id": event_id, "type": "a.b", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    eventually(
        "the event to be delivered",
        Duration::from_secs(60),
        || async { (!receiver.deliveries_at("/a").await.is_empty()).then_some(()) },
    )
    .await;
    let path = format!("/v1/deliveries/{delivery_id}");
    eventually("the ledger to have it", Duration::from_secs(60), || async {
        let (code, body) = api.get(&path, &key).await;
        (code == StatusCode::OK && body["status"] == json!("succeeded")).then_some(())
    })
    .await;
    // The ledger reads events too (it stores their payload): it dead-letters both.
    for (stage, topics) in [
        ("fanout", vec![topics.events()]),
        ("sender", vec![topics.deliveries()]),
        ("ledger", vec![topics.attempts(), topics.events()]),
    ] {
        let letters = dead_letters(&kafka, stage, topics.len()).await;
        let mut seen: Vec<String> = letters.iter().map(|letter| letter.topic.clone()).collect();
        seen.sort();
        assert_eq!(seen, topics, "{stage}: {letters:?}");
        for letter in &letters {
            assert_eq!(letter.stage, stage);
            assert!(letter.reason.contains("undecodable"), "{}", letter.reason);
            assert_eq!(payload_of(letter), b"{not json");
        }
    }
    let metrics = reqwest::get(format!("{}/metrics", hookline.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (stage, count) in [("fanout", 1), ("sender", 1), ("ledger", 2)] {
        let line = format!(
            "hookline_records_dead_lettered_total{{reason=\"undecodable\",stage=\"{stage}\"}} {count}"
        );
        assert!(metrics.contains(&line), "no `{line}` in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_whose_tasks_kafka_refuses_is_dead_lettered_and_fanout_moves_on() {
    let (mut config, kafka) = config(sender_args());
    config.ingest.max_body_bytes = 64 * 1024;
    // Tasks carry their event: this topic refuses the task of a 20 kB event.
    create_topic(
        &kafka,
        &kafka.topics().deliveries(),
        kafka.partitions,
        &[("max.message.bytes", "16384")],
    )
    .await;
    let hookline = hookline_testkit::RunningService::start(hookline::run, config).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (_, key, _) = tenant_with_webhook(&api, &receiver).await;

    // Random letters: compression does not shrink them below the limit.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: String = (0..30_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    let big = json!({"events": [
        {"id": "evt_small_before", "type": "a.b", "data": {"n": 1}},
        {"id": "evt_too_large", "type": "a.b", "data": {"noise": noise}},
        {"id": "evt_small_after", "type": "a.b", "data": {"n": 2}},
    ]});
    let (status, body) = api.post("/v1/events/batch", &key, &big).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let delivered = eventually("the small events", Duration::from_secs(60), || async {
        let ids: Vec<String> = receiver
            .deliveries_at("/a")
            .await
            .iter()
            .map(|d| d.json()["id"].as_str().unwrap().to_owned())
            .collect();
        (ids.len() >= 2).then_some(ids)
    })
    .await;
    assert!(
        delivered.contains(&"evt_small_before".to_owned()),
        "{delivered:?}"
    );
    assert!(
        delivered.contains(&"evt_small_after".to_owned()),
        "{delivered:?}"
    );
    assert!(!delivered.contains(&"evt_too_large".to_owned()));
    let letters = dead_letters(&kafka, "fanout", 1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].reason.contains("rejected by Kafka"),
        "{}",
        letters[0].reason
    );
    let event: serde_json::Value = serde_json::from_slice(&payload_of(&letters[0])).unwrap();
    assert_eq!(event["id"], json!("evt_too_large"));
}
