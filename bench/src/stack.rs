//! The Hookline process under test and its Kafka settings.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hookline_kafka::KafkaArgs;
use hookline_testkit::Api;

pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

pub struct Stack {
    child: Child,
    base_url: String,
    pub api: Api,
    pub kafka: KafkaArgs,
    pub cassandra: String,
    /// The keyspace of this run's ledger.
    pub keyspace: String,
    http: reqwest::Client,
}

impl Stack {
    pub async fn start(args: &crate::Args) -> Result<Self> {
        let run = format!("bench{}", chrono::Utc::now().timestamp());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base_url = format!("http://127.0.0.1:{port}");
        let kafka = KafkaArgs {
            brokers: args.kafka.clone(),
            topic_prefix: format!("{run}."),
            partitions: args.partitions,
            replication: 1,
            fetch_wait_ms: KafkaArgs::DEFAULT_FETCH_WAIT_MS,
            producer_linger_ms: KafkaArgs::DEFAULT_LINGER_MS,
            max_poll_interval_ms: KafkaArgs::DEFAULT_MAX_POLL_INTERVAL_MS,
        };
        let child = Command::new(&args.hookline)
            .arg("serve")
            .env("HOOKLINE_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKLINE_KAFKA_BROKERS", &args.kafka)
            .env("HOOKLINE_TOPIC_PREFIX", &kafka.topic_prefix)
            .env("HOOKLINE_KAFKA_PARTITIONS", args.partitions.to_string())
            .env("HOOKLINE_CASSANDRA_NODES", &args.cassandra)
            .env("HOOKLINE_CASSANDRA_KEYSPACE", &run)
            .env("HOOKLINE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HOOKLINE_ALLOW_HTTP_URLS", "true")
            .env("HOOKLINE_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("HOOKLINE_ALLOW_DEVELOPMENT_SECRET_KEY", "true")
            .env("HOOKLINE_MAX_BODY_BYTES", (1024 * 1024).to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", args.hookline.display()))?;
        let stack = Self {
            child,
            api: Api::new(&base_url),
            base_url,
            kafka,
            cassandra: args.cassandra.clone(),
            keyspace: run,
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            let ready = stack
                .http
                .get(format!("{}/readyz", stack.base_url))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("hookline did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("hookline ready in {:.1} s", started.elapsed().as_secs_f64());
        Ok(stack)
    }

    /// A topic with the partitions of `events`, for the raw producer limit.
    pub async fn scratch_topic(&self) -> Result<String> {
        let topic = format!("{}raw", self.kafka.topic_prefix);
        hookline_kafka::ensure_partitioned_topics(&self.kafka, std::slice::from_ref(&topic))
            .await?;
        Ok(topic)
    }

    /// Every series of the process's `/metrics` by its full name, labels included
    /// (`name{label="value"}`); empty when it cannot be read.
    pub async fn metrics(&self) -> HashMap<String, f64> {
        let Ok(response) = self
            .http
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
        else {
            return HashMap::new();
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
            .collect()
    }

    /// Attempts the ledger has written so far (from its metrics).
    pub async fn ledger_written(&self) -> u64 {
        let metrics = self.metrics().await;
        metrics
            .get("hookline_ledger_attempts_written_total")
            .map_or(0, |written| *written as u64)
    }

    /// Waits until the ledger has written `written` attempts in all; `false` if `deadline`
    /// passed first.
    pub async fn await_ledger_written(&self, written: u64, deadline: Duration) -> bool {
        let started = Instant::now();
        while self.ledger_written().await < written {
            if started.elapsed() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    /// CPU time the hookline process used so far, in seconds (user + system).
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(self.child.id())
    }

    /// CPU time the local Cassandra JVM used so far, in seconds (0 when none is found).
    pub fn cassandra_cpu_seconds(&self) -> f64 {
        let cassandra = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let command = std::fs::read(entry.path().join("cmdline")).ok()?;
                String::from_utf8_lossy(&command)
                    .contains("CassandraDaemon")
                    .then_some(pid)
            });
        cassandra.map_or(0.0, process_cpu_seconds)
    }

    /// The hookline process's peak resident set size.
    pub fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib / 1024)
    }
}

/// Stops the process (SIGTERM, so it drains) however the run ends, a failed workload included.
impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// CPU time process `pid` used so far, in seconds (user + system), from `/proc`.
fn process_cpu_seconds(pid: u32) -> f64 {
    // /proc reports clock ticks of USER_HZ, which is 100 on Linux.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |index: usize| fields.get(index).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15.
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / TICKS_PER_SECOND,
        _ => 0.0,
    }
}

/// How much `series` (a full name, labels included) grew between two readings of `/metrics`.
pub fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or_default() - before.get(series).copied().unwrap_or_default()
}

/// How much every series of the metric `name` (whatever its labels) grew between the readings.
pub fn family_delta(
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
    name: &str,
) -> f64 {
    after
        .keys()
        .filter(|series| series.split('{').next() == Some(name))
        .map(|series| delta(before, after, series))
        .fold(0.0, |total, grew| total + grew)
}
