//! Running a service in the test process, and reading what reached a topic.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_kafka::{CompactedView, KafkaArgs};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service started by a test on a port of its own; shut down on drop.
pub struct RunningService {
    pub base_url: String,
    pub shutdown: CancellationToken,
    handle: Option<JoinHandle<Result<(), BoxError>>>,
}

impl RunningService {
    /// Starts `run(config, listener, shutdown)` on 127.0.0.1:0 and waits until `/readyz` is 200.
    pub async fn start<C, F, Fut>(run: F, config: C) -> Self
    where
        F: FnOnce(C, TcpListener, CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let mut service = Self::spawn(run, config).await;
        service.wait_ready(Duration::from_secs(90)).await;
        service
    }

    /// Starts `run(config, listener, shutdown)` on 127.0.0.1:0 without waiting for it to be
    /// ready (its listener answers at once).
    pub async fn spawn<C, F, Fut>(run: F, config: C) -> Self
    where
        F: FnOnce(C, TcpListener, CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base_url = format!("http://{}", listener.local_addr().expect("bound"));
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(run(config, listener, shutdown.clone()));
        Self {
            base_url,
            shutdown,
            handle: Some(handle),
        }
    }

    /// Waits until `/readyz` answers 200; panics after `timeout`, or at once with the service's
    /// error if it stopped.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let http = reqwest::Client::new();
        let ready_url = format!("{}/readyz", self.base_url);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let answer = http.get(&ready_url).send().await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                return;
            }
            if self.handle.as_ref().is_some_and(JoinHandle::is_finished) {
                let handle = self.handle.take().expect("checked above");
                let outcome = handle.await.expect("the service task does not panic");
                panic!("the service stopped before it was ready: {outcome:?}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for the service to be ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the service stops by itself (no shutdown signal) and returns how it ended.
    pub async fn ended(mut self) -> Result<(), BoxError> {
        let handle = self.handle.take().expect("awaited once");
        handle.await.expect("the service task does not panic")
    }

    /// Shuts the service down and returns how its run ended.
    pub async fn stop(mut self) -> Result<(), BoxError> {
        self.shutdown.cancel();
        let handle = self.handle.take().expect("stopped once");
        handle.await.expect("the service task does not panic")
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Every record (key, value) in `topic` right now.
/// Creates `topic` with `partitions` and topic settings `config` (e.g. a small
/// `max.message.bytes`) before a service would create it with its defaults.
pub async fn create_topic(
    kafka: &KafkaArgs,
    topic: &str,
    partitions: i32,
    config: &[(&str, &str)],
) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        kafka.client_config().create().expect("an admin client");
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (name, value) in config {
        new_topic = new_topic.set(name, value);
    }
    let created = admin
        .create_topics([&new_topic], &AdminOptions::new())
        .await
        .expect("topic creation answers");
    for result in created {
        result.expect("the topic is created");
    }
}

/// The first `count` committed records of `topic` (any partition), waiting up to a minute
/// for them. Unlike [`records_in`] it reads topics written in transactions, whose commit
/// markers keep a compacted view from ever reaching the high watermark.
pub async fn first_records(kafka: &KafkaArgs, topic: &str, count: usize) -> Vec<Vec<u8>> {
    read_until(kafka, topic, |records| records.len() >= count).await
}

/// The committed records of `topic` read from its start until `done` says they are enough
/// (waiting up to a minute); like [`first_records`], it reads transactional topics.
pub async fn read_until(
    kafka: &KafkaArgs,
    topic: &str,
    done: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::Message;
    let consumer: StreamConsumer = kafka
        .consumer_config(&crate::unique_name("read"))
        .create()
        .expect("a consumer");
    consumer
        .subscribe(&[topic])
        .expect("the topic is subscribed");
    let mut records = Vec::new();
    let reading = async {
        while !done(&records) {
            let message = consumer.recv().await.expect("the topic is readable");
            records.push(message.payload().unwrap_or_default().to_vec());
        }
    };
    tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .unwrap_or_else(|_| panic!("{topic} did not hold the records awaited after a minute"));
    records
}

pub async fn records_in(kafka: &KafkaArgs, topic: &str) -> Vec<(String, Option<Vec<u8>>)> {
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&records);
    let stop = CancellationToken::new();
    CompactedView::start(
        kafka,
        vec![topic.to_owned()],
        move |record| {
            let key = String::from_utf8_lossy(record.key).into_owned();
            sink.lock()
                .unwrap()
                .push((key, record.value.map(<[u8]>::to_vec)));
        },
        stop.clone(),
    )
    .await
    .expect("the topic is readable");
    stop.cancel();
    let records = records.lock().unwrap().clone();
    records
}

/// A service started as a process of its own, so a test can kill it with SIGKILL; killed on
/// drop too, even when the test fails.
pub struct ServiceProcess(std::process::Child);

impl ServiceProcess {
    pub fn spawn(command: &mut std::process::Command) -> Self {
        Self(command.spawn().expect("the service binary starts"))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL, and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
