//! A producer-chosen id is an idempotency key: the same events published again — after ingest
//! was killed between Kafka's acknowledgement and its answer, through another ingest instance,
//! after fanout restarted — are answered 202 with the same ids, and fanout emits their delivery
//! tasks once.

use std::collections::BTreeMap;
use std::net::TcpListener as StdListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookline_kafka::KafkaArgs;
use hookline_runtime::StartupArgs;
use hookline_schemas::DeliveryTask;
use hookline_testkit::{
    eventually, kafka_args, read_until, Api, RunningService, ServiceProcess, ADMIN_TOKEN,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::start_ingest_on;

/// The ingest binary on a fixed address, so a restart answers where the first one did.
async fn start_ingest_process(kafka: &KafkaArgs, address: &str) -> ServiceProcess {
    let process = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_hookline-ingest"))
            .env("HOOKLINE_LISTEN", address)
            .env("HOOKLINE_KAFKA_BROKERS", &kafka.brokers)
            .env("HOOKLINE_TOPIC_PREFIX", &kafka.topic_prefix)
            .env("HOOKLINE_KAFKA_PARTITIONS", kafka.partitions.to_string())
            .env("HOOKLINE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HOOKLINE_ALLOW_DEVELOPMENT_SECRET_KEY", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    );
    let url = format!("http://{address}/readyz");
    eventually("ingest ready", Duration::from_secs(60), || async {
        let ready = reqwest::get(&url).await.ok()?;
        ready.status().is_success().then_some(())
    })
    .await;
    process
}

/// A relay in front of `upstream` that, once armed, kills the process `victim` the moment the
/// answer's first bytes arrive and closes the client's connection: Kafka has acknowledged, and
/// the client never hears it. Returns its address and whether an answer was cut so, with the
/// status line it began with.
async fn cutting_relay(
    upstream: String,
    victim: u32,
) -> (
    String,
    Arc<AtomicBool>,
    tokio::sync::oneshot::Receiver<String>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let armed = Arc::new(AtomicBool::new(false));
    let (cut_tx, cut) = tokio::sync::oneshot::channel();
    let arming = Arc::clone(&armed);
    tokio::spawn(async move {
        let mut cut_tx = Some(cut_tx);
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let mut server = TcpStream::connect(&upstream).await.unwrap();
            let armed = arming.load(Ordering::SeqCst);
            let cut_tx = if armed { cut_tx.take() } else { None };
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                let to_server = tokio::io::copy(&mut client_read, &mut server_write);
                let from_server = async {
                    let mut buffer = vec![0u8; 64 * 1024];
                    loop {
                        let read = server_read.read(&mut buffer).await.unwrap_or(0);
                        if read == 0 {
                            return;
                        }
                        if let Some(cut_tx) = cut_tx {
                            let _ = Command::new("kill")
                                .args(["-9", &victim.to_string()])
                                .status();
                            let head = String::from_utf8_lossy(&buffer[..read]);
                            let _ = cut_tx.send(head.lines().next().unwrap_or_default().to_owned());
                            return;
                        }
                        if client_write.write_all(&buffer[..read]).await.is_err() {
                            return;
                        }
                    }
                };
                tokio::select! {
                    _ = to_server => {}
                    () = from_server => {}
                }
            });
        }
    });
    (address, armed, cut)
}

fn free_address() -> String {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

async fn start_fanout(kafka: &KafkaArgs) -> RunningService {
    let config = hookline_fanout::Config {
        kafka: kafka.clone(),
        fanout: hookline_fanout::FanoutArgs {
            batch_size: 500,
            linger_ms: 0,
            idempotency_window_secs: 24 * 60 * 60,
        },
        startup: StartupArgs::default(),
    };
    RunningService::start(hookline_fanout::run, config).await
}

/// Delivery tasks per event id, read until the task of `last` is among them.
async fn tasks_until(kafka: &KafkaArgs, last: &str) -> BTreeMap<String, usize> {
    let event_of = |payload: &Vec<u8>| {
        serde_json::from_slice::<DeliveryTask>(payload)
            .expect("a delivery task")
            .event
            .id
    };
    let records = read_until(kafka, &kafka.topics().deliveries(), |records| {
        records.iter().any(|payload| event_of(payload) == last)
    })
    .await;
    let mut tasks = BTreeMap::new();
    for payload in &records {
        *tasks.entry(event_of(payload)).or_default() += 1;
    }
    tasks
}

fn batch(ids: &[&str]) -> Value {
    let events: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| json!({"id": id, "type": "order.paid", "data": {"n": n}}))
        .collect();
    json!({ "events": events })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_published_again_are_answered_the_same_and_fanned_out_once() {
    let kafka = kafka_args();
    let address = free_address();
    let mut ingest = start_ingest_process(&kafka, &address).await;
    let mut fanout = start_fanout(&kafka).await;
    let api = Api::new(format!("http://{address}"));
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (status, created) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": "https://example.com/hooks", "events": ["*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let ids = ["ord_1", "ord_2", "ord_3"];

    // Kafka acknowledges the batch; ingest is killed before the client hears it.
    let (relay, armed, cut) = cutting_relay(address.clone(), ingest.id()).await;
    armed.store(true, Ordering::SeqCst);
    let unanswered = reqwest::Client::new()
        .post(format!("http://{relay}/v1/events/batch"))
        .bearer_auth(&key)
        .json(&batch(&ids))
        .send()
        .await;
    assert!(unanswered.is_err(), "the client heard {unanswered:?}");
    let head = cut.await.expect("the answer was cut");
    assert!(head.contains(" 202 "), "ingest answered {head}");
    ingest.kill();

    // The client retries once ingest is back: the same answer.
    let _ingest = start_ingest_process(&kafka, &address).await;
    let (status, body) = api.post("/v1/events/batch", &key, &batch(&ids)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["ids"], json!(ids));

    // Through another ingest instance, and one event of the batch on its own.
    let other = start_ingest_on(kafka.clone()).await;
    let other = Api::new(&other.base_url);
    let (status, body) = other.post("/v1/events/batch", &key, &batch(&ids)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = other
        .post(
            "/v1/events",
            &key,
            &json!({"id": "ord_2", "type": "order.paid", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["id"], json!("ord_2"));

    // Events are read in order per tenant, so once the last one has its task every earlier
    // one was judged.
    let (status, _) = api
        .post("/v1/events/batch", &key, &batch(&["first_end"]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let tasks = tasks_until(&kafka, "first_end").await;
    for id in ids {
        assert_eq!(tasks.get(id), Some(&1), "tasks per event: {tasks:?}");
    }

    // A new fanout reads the ids back from the changelog.
    fanout.stop().await.expect("fanout stops");
    fanout = start_fanout(&kafka).await;
    let (status, _) = api.post("/v1/events/batch", &key, &batch(&ids)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = api
        .post("/v1/events/batch", &key, &batch(&["second_end"]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let tasks = tasks_until(&kafka, "second_end").await;
    for id in ids {
        assert_eq!(tasks.get(id), Some(&1), "tasks per event: {tasks:?}");
    }
    drop(fanout);
}
