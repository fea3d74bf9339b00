use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use hookline_kafka::{group_members, KafkaArgs};
use hookline_runtime::StartupArgs;
use hookline_testkit::{
    cassandra_args, eventually, kafka_args, xtask_server, Api, Behaviour, Delivery, Receiver,
    RunningService, ServiceProcess, ADMIN_TOKEN, LOOPBACK_NETWORKS,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Ingest, fanout and ledger in this process; the sender is started by each test.
struct Pipeline {
    kafka: KafkaArgs,
    /// The ingest API.
    api: Api,
    /// The ledger's read API.
    ledger: Api,
    _services: Vec<RunningService>,
}

async fn pipeline() -> Pipeline {
    pipeline_with(|_| {}).await
}

/// The pipeline with the ledger's settings changed by `adjust`.
async fn pipeline_with(adjust: impl FnOnce(&mut hookline_ledger::Config)) -> Pipeline {
    hookline_runtime::telemetry::init_tracing();
    let kafka = kafka_args();
    let ingest = hookline_ingest::Config {
        kafka: kafka.clone(),
        ingest: hookline_ingest::IngestArgs {
            admin_token: ADMIN_TOKEN.into(),
            max_body_bytes: 256 * 1024,
            max_batch_events: 100,
            allow_http_urls: true,
            max_webhooks_per_tenant: 50,
            secret_rotation_overlap_secs: 24 * 60 * 60,
            tenant_publish_rate: 0,
            tenant_publish_burst: None,
        },
        // The receivers of these tests listen on loopback.
        addresses: hookline_delivery::AddressArgs {
            allowed_networks: LOOPBACK_NETWORKS.into(),
        },
        secret_keys: hookline_delivery::SecretKeyArgs {
            secret_keys: String::new(),
            allow_development_key: true,
        },
        startup: StartupArgs::default(),
    };
    let fanout = hookline_fanout::Config {
        kafka: kafka.clone(),
        fanout: hookline_fanout::FanoutArgs {
            batch_size: 500,
            linger_ms: 0,
            idempotency_window_secs: 24 * 60 * 60,
        },
        startup: StartupArgs::default(),
    };
    let ledger = hookline_ledger::Config {
        kafka: kafka.clone(),
        cassandra: cassandra_args(),
        ledger: hookline_ledger::LedgerArgs {
            write_concurrency: 16,
            recover: hookline_ledger::RecoverArgs {
                lease_secs: 30,
                scan_secs: 10,
                replays_in_flight: 32,
            },
        },
        startup: StartupArgs::default(),
    };
    let mut ledger = ledger;
    adjust(&mut ledger);
    let ingest = RunningService::start(hookline_ingest::run, ingest).await;
    let ledger = RunningService::start(hookline_ledger::run, ledger).await;
    let (api, ledger_api) = (Api::new(&ingest.base_url), Api::new(&ledger.base_url));
    let services = vec![
        ingest,
        ledger,
        RunningService::start(hookline_fanout::run, fanout).await,
    ];
    Pipeline {
        kafka,
        api,
        ledger: ledger_api,
        _services: services,
    }
}

/// The sender as its own process, so it can be killed.
fn spawn_sender(kafka: &KafkaArgs, extra_env: &[(&str, &str)]) -> ServiceProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookline-sender"));
    command
        .env("HOOKLINE_LISTEN", "127.0.0.1:0")
        .env("HOOKLINE_KAFKA_BROKERS", &kafka.brokers)
        .env("HOOKLINE_TOPIC_PREFIX", &kafka.topic_prefix)
        .env("HOOKLINE_KAFKA_PARTITIONS", kafka.partitions.to_string())
        .env("HOOKLINE_RETRY_TIERS", "1s,5s,30s")
        .env("HOOKLINE_ALLOWED_NETWORKS", LOOPBACK_NETWORKS)
        .env("HOOKLINE_ALLOW_DEVELOPMENT_SECRET_KEY", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    ServiceProcess::spawn(&mut command)
}

/// Creates a catch-all webhook at each path.
async fn webhooks(
    api: &Api,
    key: &str,
    receiver: &Receiver,
    paths: &[&str],
    behaviour: &Behaviour,
) {
    for path in paths {
        let (status, created) = api
            .post(
                "/v1/webhooks",
                key,
                &json!({"url": receiver.url(path), "events": ["*"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        receiver
            .configure_with(path, created["secret"].as_str().unwrap(), behaviour.clone())
            .await;
    }
}

/// Publishes `count` events, ten per batch, one batch every 50 ms; returns their ids.
async fn publish(api: &Api, key: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for batch in 0..count / 10 {
        let events: Vec<Value> = (0..10)
            .map(|n| json!({"type": "fault.test", "data": {"n": batch * 10 + n}}))
            .collect();
        let (status, accepted) = api
            .post("/v1/events/batch", key, &json!({ "events": events }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        ids.extend(serde_json::from_value::<Vec<String>>(accepted["ids"].clone()).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ids
}

/// Event ids answered with success at each path; and how many requests were duplicates.
fn successes(deliveries: &[Delivery]) -> (BTreeMap<String, BTreeSet<String>>, usize) {
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut duplicates = 0;
    for delivery in deliveries.iter().filter(|d| !d.failed) {
        assert!(delivery.verified, "{delivery:?}");
        let id = delivery.json()["id"].as_str().unwrap().to_owned();
        if !by_path.entry(delivery.path.clone()).or_default().insert(id) {
            duplicates += 1;
        }
    }
    (by_path, duplicates)
}

/// Waits until every path answered every event with success at least once.
async fn await_all(
    receiver: &Receiver,
    paths: &[&str],
    ids: &[String],
    timeout: Duration,
) -> Vec<Delivery> {
    let expected: BTreeSet<String> = ids.iter().cloned().collect();
    eventually("every event at every endpoint", timeout, || async {
        let deliveries = receiver.deliveries().await;
        let (by_path, _) = successes(&deliveries);
        paths
            .iter()
            .all(|path| {
                by_path
                    .get(*path)
                    .is_some_and(|got| got.is_superset(&expected))
            })
            .then_some(deliveries)
    })
    .await
}

/// Every delivery the receiver saw is in the ledger as succeeded.
async fn assert_ledger_has(api: &Api, key: &str, deliveries: &[Delivery]) {
    let webhook_ids: BTreeSet<String> = deliveries
        .iter()
        .filter_map(|d| d.webhook_id.clone())
        .collect();
    for webhook_id in webhook_ids {
        let path = format!("/v1/deliveries/{webhook_id}");
        eventually("the ledger to catch up", Duration::from_secs(60), || {
            let (api, key, path) = (api.clone(), key.to_owned(), path.clone());
            async move {
                let (status, body) = api.get(&path, &key).await;
                (status == StatusCode::OK && body["status"] == json!("succeeded")).then_some(())
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_killed_mid_run_loses_nothing() {
    let pipeline = pipeline().await;
    let receiver = Receiver::start();
    let (_, key) = pipeline.api.tenant_with_key(ADMIN_TOKEN, None).await;
    let paths = ["/a", "/b", "/c"];
    webhooks(
        &pipeline.api,
        &key,
        &receiver,
        &paths,
        &Behaviour::status(204),
    )
    .await;

    let mut sender = spawn_sender(&pipeline.kafka, &[]);
    let publishing = {
        let (api, key) = (pipeline.api.clone(), key.clone());
        tokio::spawn(async move { publish(&api, &key, 300).await })
    };
    // Kill it once deliveries are flowing, then start a new one.
    eventually("deliveries to flow", Duration::from_secs(60), || async {
        (receiver.deliveries().await.len() >= 30).then_some(())
    })
    .await;
    sender.kill();
    let _sender = spawn_sender(&pipeline.kafka, &[]);
    let ids = publishing.await.unwrap();

    let deliveries = await_all(&receiver, &paths, &ids, Duration::from_secs(120)).await;
    let (_, duplicates) = successes(&deliveries);
    eprintln!(
        "kill -9: {} events × {} endpoints, {duplicates} duplicate deliveries",
        ids.len(),
        paths.len()
    );
    assert_ledger_has(&pipeline.ledger, &key, &deliveries).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_failing_for_a_while_gets_everything_once_it_recovers() {
    let pipeline = pipeline().await;
    let receiver = Receiver::start();
    let (_, key) = pipeline.api.tenant_with_key(ADMIN_TOKEN, None).await;
    let failing = Behaviour {
        fail_for_ms: 6_000,
        ..Behaviour::status(204)
    };
    webhooks(&pipeline.api, &key, &receiver, &["/down"], &failing).await;
    webhooks(
        &pipeline.api,
        &key,
        &receiver,
        &["/up"],
        &Behaviour::status(204),
    )
    .await;

    let env = [
        ("HOOKLINE_RETRY_SCHEDULE", "1s,2s,2s,2s,2s,2s,2s,2s,2s"),
        ("HOOKLINE_CIRCUIT_THRESHOLD", "5"),
        ("HOOKLINE_CIRCUIT_COOLDOWN_SECS", "2"),
    ];
    let _sender = spawn_sender(&pipeline.kafka, &env);
    let ids = publish(&pipeline.api, &key, 50).await;
    let deliveries = await_all(&receiver, &["/down", "/up"], &ids, Duration::from_secs(120)).await;
    let failures = deliveries.iter().filter(|d| d.failed).count();
    let (_, duplicates) = successes(&deliveries);
    eprintln!("failing endpoint: {failures} failed requests before recovery, {duplicates} duplicate deliveries");
    assert!(failures > 0, "the endpoint never failed");
    assert_ledger_has(&pipeline.ledger, &key, &deliveries).await;
}

/// Runs events through the pipeline while a server is taken away (and, for Cassandra, checks
/// the ledger's read API says so meanwhile) and brought back, then checks nothing was lost.
async fn survives(server_name: &'static str, away: Duration, label: &str) {
    let pipeline = pipeline().await;
    let receiver = Receiver::start();
    let (_, key) = pipeline.api.tenant_with_key(ADMIN_TOKEN, None).await;
    let paths = ["/a", "/b"];
    webhooks(
        &pipeline.api,
        &key,
        &receiver,
        &paths,
        &Behaviour::status(204),
    )
    .await;
    let _sender = spawn_sender(&pipeline.kafka, &[]);
    let publishing = {
        let (api, key) = (pipeline.api.clone(), key.clone());
        tokio::spawn(async move { publish(&api, &key, 300).await })
    };
    eventually("deliveries to flow", Duration::from_secs(60), || async {
        (receiver.deliveries().await.len() >= 20).then_some(())
    })
    .await;
    tokio::task::spawn_blocking(move || xtask_server("stop", server_name))
        .await
        .unwrap();
    if server_name == "cassandra" {
        // Reads fail cleanly while the ledger's database is away.
        eventually(
            "the read API to answer 503",
            Duration::from_secs(30),
            || async {
                let (status, body) = pipeline.ledger.get("/v1/deliveries", &key).await;
                (status == StatusCode::SERVICE_UNAVAILABLE
                    && body["error"]["code"] == json!("unavailable"))
                .then_some(())
            },
        )
        .await;
    }
    tokio::time::sleep(away).await;
    tokio::task::spawn_blocking(move || xtask_server("start", server_name))
        .await
        .unwrap();
    let ids = publishing.await.unwrap();
    let deliveries = await_all(&receiver, &paths, &ids, Duration::from_secs(180)).await;
    let (_, duplicates) = successes(&deliveries);
    eprintln!(
        "{label}: {} events × {} endpoints, {duplicates} duplicate deliveries",
        ids.len(),
        paths.len()
    );
    assert_ledger_has(&pipeline.ledger, &key, &deliveries).await;
}

/// Publishes single events with ids of its own at `per_second` for `duration`, each request on
/// its own task (a slow answer never slows the rest), and returns the ids answered 202.
async fn publish_steadily(
    api: &Api,
    key: &str,
    per_second: u64,
    duration: Duration,
) -> Vec<String> {
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
    let mut requests = tokio::task::JoinSet::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    for n in 0..per_second * duration.as_secs() {
        ticks.tick().await;
        let (api, key) = (api.clone(), key.to_owned());
        let id = format!("evt_{run}_{n}");
        requests.spawn(async move {
            let body = json!({"id": id, "type": "fault.test", "data": {"n": n}});
            let (status, _) = api.post("/v1/events", &key, &body).await;
            (status == StatusCode::ACCEPTED).then_some(id)
        });
    }
    let mut accepted = Vec::new();
    while let Some(answer) = requests.join_next().await {
        accepted.extend(answer.unwrap());
    }
    accepted
}

/// The broker killed with SIGKILL mid-run, and started again a few seconds later: every event
/// answered 202 is delivered and in the ledger. A transaction that failed while the broker was
/// away once let fanout commit past its whole batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills Kafka: run with `cargo xtask faults`"]
async fn kafka_killed_mid_run_loses_no_accepted_event() {
    let pipeline = pipeline().await;
    let receiver = Receiver::start();
    let (_, key) = pipeline.api.tenant_with_key(ADMIN_TOKEN, None).await;
    let paths = ["/a"];
    webhooks(
        &pipeline.api,
        &key,
        &receiver,
        &paths,
        &Behaviour::status(204),
    )
    .await;
    let _sender = spawn_sender(&pipeline.kafka, &[]);
    let publishing = {
        let (api, key) = (pipeline.api.clone(), key.clone());
        tokio::spawn(
            async move { publish_steadily(&api, &key, 200, Duration::from_secs(30)).await },
        )
    };
    tokio::time::sleep(Duration::from_secs(8)).await;
    tokio::task::spawn_blocking(|| xtask_server("kill", "kafka"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    tokio::task::spawn_blocking(|| xtask_server("start", "kafka"))
        .await
        .unwrap();
    let ids = publishing.await.unwrap();
    assert!(ids.len() > 3_000, "only {} events were accepted", ids.len());
    let deliveries = await_all(&receiver, &paths, &ids, Duration::from_secs(240)).await;
    let (_, duplicates) = successes(&deliveries);
    eprintln!(
        "kafka kill -9: {} events accepted, {duplicates} duplicate deliveries",
        ids.len()
    );
    assert_ledger_has(&pipeline.ledger, &key, &deliveries).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts Kafka: run with `cargo xtask faults`"]
async fn kafka_restarted_mid_run_loses_nothing() {
    survives("kafka", Duration::ZERO, "kafka restart").await;
}

/// The ledger's database away for longer than `max.poll.interval.ms`, every write slot
/// waiting on it: the ledger keeps polling with its partitions paused, so it stays in its group
/// under the same member id, and writes everything once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "stops Cassandra: run with `cargo xtask faults`"]
async fn cassandra_away_longer_than_the_poll_interval_keeps_the_ledger_in_its_group() {
    let pipeline = pipeline_with(|ledger| {
        ledger.kafka.max_poll_interval_ms = 11_000;
        ledger.ledger.write_concurrency = 4;
    })
    .await;
    let receiver = Receiver::start();
    let (_, key) = pipeline.api.tenant_with_key(ADMIN_TOKEN, None).await;
    let paths = ["/a"];
    webhooks(
        &pipeline.api,
        &key,
        &receiver,
        &paths,
        &Behaviour::status(204),
    )
    .await;
    let _sender = spawn_sender(&pipeline.kafka, &[]);
    let first = publish(&pipeline.api, &key, 20).await;
    await_all(&receiver, &paths, &first, Duration::from_secs(60)).await;
    let group = pipeline.kafka.group("ledger");
    let members = eventually(
        "the ledger's group to settle",
        Duration::from_secs(30),
        || async {
            group_members(&pipeline.kafka, &group)
                .await
                .ok()
                .filter(|members| members.len() == 1)
        },
    )
    .await;

    tokio::task::spawn_blocking(|| xtask_server("stop", "cassandra"))
        .await
        .unwrap();
    let during = publish(&pipeline.api, &key, 100).await;
    // Three poll intervals with every write slot stuck.
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(
        group_members(&pipeline.kafka, &group).await.unwrap(),
        members,
        "the ledger left its group while the database was away"
    );
    tokio::task::spawn_blocking(|| xtask_server("start", "cassandra"))
        .await
        .unwrap();

    let ids: Vec<String> = first.into_iter().chain(during).collect();
    let deliveries = await_all(&receiver, &paths, &ids, Duration::from_secs(120)).await;
    assert_ledger_has(&pipeline.ledger, &key, &deliveries).await;
    assert_eq!(
        group_members(&pipeline.kafka, &group).await.unwrap(),
        members,
        "the ledger rejoined its group after the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "stops Cassandra: run with `cargo xtask faults`"]
async fn cassandra_stopped_mid_run_loses_nothing() {
    survives("cassandra", Duration::from_secs(10), "cassandra outage").await;
}

/// One publisher's events to a FIFO webhook, each published once the previous was accepted:
/// the first successful delivery of each arrives in acceptance order and none is missing,
/// though the endpoint fails the first attempt of every tenth event (held in place, holding
/// the line) and the sender is killed with SIGKILL mid-run and started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fifo_webhook_gets_events_in_acceptance_order_through_failures_and_a_sender_kill() {
    let pipeline = pipeline().await;
    let receiver = Receiver::start();
    let (_, key) = pipeline.api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (status, created) = pipeline
        .api
        .post(
            "/v1/webhooks",
            &key,
            &json!({
                "url": receiver.url("/fifo"),
                "events": ["*"],
                "ordering": "fifo",
                "retry": {"max_attempts": 5, "initial_delay_secs": 1, "multiplier": 1.0},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let behaviour = Behaviour {
        fail_once_every: 10,
        ..Behaviour::status(204)
    };
    receiver
        .configure_with("/fifo", created["secret"].as_str().unwrap(), behaviour)
        .await;

    let mut sender = spawn_sender(&pipeline.kafka, &[]);
    let count = 300;
    for n in 0..count {
        let body = json!({"type": "fifo.test", "data": {"n": n}});
        let (status, answer) = pipeline.api.post("/v1/events", &key, &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    eventually(
        "a third of the deliveries",
        Duration::from_secs(120),
        || async { (receiver.deliveries_at("/fifo").await.len() >= count / 3).then_some(()) },
    )
    .await;
    sender.kill();
    let _sender = spawn_sender(&pipeline.kafka, &[]);

    let firsts = eventually(
        "every event delivered",
        Duration::from_secs(180),
        || async {
            let mut seen = BTreeSet::new();
            let firsts: Vec<u64> = receiver
                .deliveries_at("/fifo")
                .await
                .iter()
                .filter(|delivery| !delivery.failed)
                .map(|delivery| delivery.json()["data"]["n"].as_u64().unwrap())
                .filter(|n| seen.insert(*n))
                .collect();
            (firsts.len() == count).then_some(firsts)
        },
    )
    .await;
    let expected: Vec<u64> = (0..count as u64).collect();
    assert_eq!(firsts, expected, "first deliveries out of acceptance order");
    let failures = receiver
        .deliveries_at("/fifo")
        .await
        .iter()
        .filter(|delivery| delivery.failed)
        .count();
    assert!(
        failures >= count / 10 - 1,
        "only {failures} failed attempts"
    );
}
