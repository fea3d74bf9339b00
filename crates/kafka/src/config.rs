use std::time::Duration;

use hookline_schemas::TopicNames;
use rdkafka::ClientConfig;

/// How to reach Kafka and lay out Hookline's topics.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap servers, comma-separated.
    #[arg(
        long = "kafka-brokers",
        env = "HOOKLINE_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    /// Prefix of every topic and consumer group name.
    #[arg(
        long = "topic-prefix",
        env = "HOOKLINE_TOPIC_PREFIX",
        default_value = "hookline."
    )]
    pub topic_prefix: String,
    /// Partitions of the `events` and `deliveries` topics, created when missing. Bounds how many
    /// fanout and sender instances share the work.
    #[arg(
        long = "kafka-partitions",
        env = "HOOKLINE_KAFKA_PARTITIONS",
        default_value_t = 6
    )]
    pub partitions: i32,
    /// Replication factor of topics created when missing.
    #[arg(
        long = "kafka-replication",
        env = "HOOKLINE_KAFKA_REPLICATION",
        default_value_t = 1
    )]
    pub replication: i32,
    /// Longest a consumer's fetch waits at the broker for new records, in milliseconds. Records
    /// produced in a transaction (fanout's delivery tasks) become readable when it commits, which
    /// does not end a waiting fetch: this is the wait they may add to each delivery.
    #[arg(
        long = "kafka-fetch-wait-ms",
        env = "HOOKLINE_KAFKA_FETCH_WAIT_MS",
        default_value_t = KafkaArgs::DEFAULT_FETCH_WAIT_MS
    )]
    pub fetch_wait_ms: u32,
    /// How long a producer outside transactions (ingest's single events, the sender's
    /// attempts) waits for more records before it sends what it has, in milliseconds. It is
    /// added to every publish when the pipeline is quiet; with many concurrent publishers, it
    /// gathers their records into fewer broker requests.
    #[arg(
        long = "kafka-linger-ms",
        env = "HOOKLINE_KAFKA_LINGER_MS",
        default_value_t = KafkaArgs::DEFAULT_LINGER_MS
    )]
    pub producer_linger_ms: u32,
    /// Longest a consumer may go between polls before its group drops it, in milliseconds.
    /// Stages keep polling while they wait on their downstream, so an outage does not reach it.
    #[arg(
        long = "kafka-max-poll-interval-ms",
        env = "HOOKLINE_KAFKA_MAX_POLL_INTERVAL_MS",
        default_value_t = KafkaArgs::DEFAULT_MAX_POLL_INTERVAL_MS
    )]
    pub max_poll_interval_ms: u32,
}

impl KafkaArgs {
    pub const DEFAULT_FETCH_WAIT_MS: u32 = 20;
    pub const DEFAULT_LINGER_MS: u32 = 1;
    pub const DEFAULT_MAX_POLL_INTERVAL_MS: u32 = 300_000;

    pub fn topics(&self) -> TopicNames {
        TopicNames::new(self.topic_prefix.clone())
    }

    /// A transactional id for `stage` unique to this process: the group generation fences a
    /// zombie's offsets (KIP-447), so instances need no stable ids.
    pub fn transactional_id(&self, stage: &str) -> String {
        format!(
            "{}{stage}-{}",
            self.topic_prefix,
            uuid::Uuid::new_v4().simple()
        )
    }

    /// The consumer group of one stage, under the prefix so deployments stay apart.
    pub fn group(&self, stage: &str) -> String {
        format!("{}{stage}", self.topic_prefix)
    }

    /// Settings shared by every client.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.keepalive.enable", "true")
            // Requests go out as soon as they are written, as Kafka's own clients send them
            // (TCP_NODELAY).
            .set("socket.nagle.disable", "true")
            // A client retries a broker it lost at most a second apart (librdkafka's default
            // grows to 10 s), so it is back within a request's deadline once a restarted broker
            // answers again.
            .set("reconnect.backoff.max.ms", "1000")
            .set("log_level", "4");
        config
    }

    /// A consumer that assigns itself partitions and commits nothing (`group` only names it),
    /// reading committed records from the start of what it is given.
    pub(crate) fn reader_config(&self, group: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed");
        config
    }

    /// An idempotent producer that acknowledges only after every in-sync replica has the record.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", self.producer_linger_ms.to_string())
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "30000");
        config
    }

    /// A producer for transactions (`transactional.id` still to be set). A transaction hands
    /// over all its records before it waits for them, so it sends them at once: a linger
    /// would only delay them.
    pub(crate) fn transactional_producer_config(&self) -> ClientConfig {
        let mut config = self.producer_config();
        config
            .set("linger.ms", "0")
            .set("transaction.timeout.ms", "60000");
        config
    }

    /// A consumer of one group that commits only what the caller stored (at-least-once).
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set(
                "max.poll.interval.ms",
                self.max_poll_interval_ms.to_string(),
            )
            // Bound what librdkafka prefetches and fetches per consumer, whatever the backlog
            // (a fetch response may otherwise carry 50 MB): 4 MiB is more than a second of
            // tasks at the rates one process delivers.
            .set("queued.max.messages.kbytes", "4096")
            .set("fetch.max.bytes", "4194304")
            .set("fetch.wait.max.ms", self.fetch_wait_ms.to_string());
        config
    }
}

/// How long a blocking metadata or admin call may take before it counts as failed.
pub(crate) const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
