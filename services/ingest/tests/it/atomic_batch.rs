//! A batch is published all or none: when Kafka refuses one of its events, none of the others
//! becomes readable, and the client is told the batch failed.

use std::collections::BTreeSet;

use hookline_testkit::{create_topic, kafka_args, read_until, Api, RunningService, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::ingest_config;

/// Letters that compression cannot shrink much.
fn noise(len: usize) -> String {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect()
}

/// Small events under ordering keys `k0`…`k5`, spread over the partitions of `events`.
fn small_events(prefix: &str) -> Vec<Value> {
    (0..6)
        .map(|n| json!({"id": format!("{prefix}_{n}"), "type": "a.b", "data": {"n": n}, "ordering_key": format!("k{n}")}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_kafka_refuses_an_event_of_is_published_not_at_all() {
    let kafka = kafka_args();
    // The topic takes records of up to 16 KiB; the API takes bodies of up to 128 KiB.
    create_topic(
        &kafka,
        &kafka.topics().events(),
        kafka.partitions,
        &[("max.message.bytes", "16384")],
    )
    .await;
    let mut config = ingest_config(kafka.clone());
    config.ingest.max_body_bytes = 128 * 1024;
    config.ingest.max_batch_events = 10;
    let ingest = RunningService::start(hookline_ingest::run, config).await;
    let api = Api::new(&ingest.base_url);
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;

    let mut refused = small_events("evt_refused");
    refused.push(json!({"id": "evt_too_large", "type": "a.b", "data": {"noise": noise(40_000)}}));
    let (status, body) = api
        .post("/v1/events/batch", &key, &json!({ "events": refused }))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], json!("payload_too_large"));

    let accepted = small_events("evt_accepted");
    let (status, body) = api
        .post("/v1/events/batch", &key, &json!({ "events": accepted }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // The accepted events share partitions (ordering keys) with the refused batch's small
    // ones and come after them: once all are read, anything of the refused batch would be too.
    let id_of = |payload: &Vec<u8>| {
        serde_json::from_slice::<Value>(payload).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let records = read_until(&kafka, &kafka.topics().events(), |records| {
        records
            .iter()
            .filter(|payload| id_of(payload).starts_with("evt_accepted"))
            .count()
            == 6
    })
    .await;
    let ids: BTreeSet<String> = records.iter().map(id_of).collect();
    let expected: BTreeSet<String> = (0..6).map(|n| format!("evt_accepted_{n}")).collect();
    assert_eq!(ids, expected, "records of the refused batch are readable");
}
