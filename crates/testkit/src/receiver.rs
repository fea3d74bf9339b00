//! A webhook receiver in Python that verifies signatures with the `standardwebhooks` package
//! (an implementation independent of ours) and records every request.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde::Deserialize;
use serde_json::json;

/// One request the receiver got.
#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    pub path: String,
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub content_type: Option<String>,
    /// Every request header, names in lowercase.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
    /// Whether the signature verified with the path's secret.
    pub verified: bool,
    pub error: Option<String>,
    /// Unix time in seconds.
    pub received_at: f64,
    /// Whether it was answered with a failure.
    pub failed: bool,
}

/// How the receiver answers at one path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Behaviour {
    /// Status of a successful answer.
    pub status: u16,
    /// Answer 500 to this many requests first.
    pub fail_first: u32,
    /// Answer 500 to every request for this long after configuration.
    pub fail_for_ms: u64,
    /// Answer 500 to the first request of every this-many-th delivery (by `webhook-id`).
    pub fail_once_every: u32,
    /// Wait this long before answering.
    pub delay_ms: u64,
    /// `Retry-After` (seconds) sent with the failures.
    pub retry_after: Option<u64>,
}

impl Behaviour {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            fail_first: 0,
            fail_for_ms: 0,
            fail_once_every: 0,
            delay_ms: 0,
            retry_after: None,
        }
    }
}

impl Delivery {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }
}

pub struct Receiver {
    child: Child,
    base_url: String,
    http: reqwest::Client,
}

impl Receiver {
    /// Starts the receiver with `HOOKLINE_TEST_PYTHON` (a Python with `standardwebhooks`).
    pub fn start() -> Self {
        let python = std::env::var("HOOKLINE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/receiver.py");
        let mut child = Command::new(&python)
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {python} {script}: {err}"));
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut first_line)
            .expect("receiver prints its port");
        let port: u16 = first_line.trim().parse().unwrap_or_else(|_| {
            panic!("receiver did not start (is `standardwebhooks` installed for {python}? run the tests with `cargo xtask test`)")
        });
        Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sets the secret that requests to `path` must be signed with, and the status to answer.
    pub async fn configure(&self, path: &str, secret: &str, status: u16) {
        self.configure_with(path, secret, Behaviour::status(status))
            .await;
    }

    /// Sets the secret of `path` and how it answers.
    pub async fn configure_with(&self, path: &str, secret: &str, behaviour: Behaviour) {
        let mut config = serde_json::to_value(behaviour).expect("behaviour serializes");
        config["path"] = json!(path);
        config["secret"] = json!(secret);
        self.post_configuration(&config).await;
    }

    async fn post_configuration(&self, config: &serde_json::Value) {
        self.http
            .post(self.url("/_configure"))
            .json(config)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("receiver accepts its configuration");
    }

    /// Sets the secret of `path` and the documented receiver it verifies like (see
    /// `verify_as_documented` in `receiver.py`), answering 204.
    pub async fn configure_verifier(&self, path: &str, secret: &str, verifier: serde_json::Value) {
        let mut config =
            serde_json::to_value(Behaviour::status(204)).expect("behaviour serializes");
        config["path"] = json!(path);
        config["secret"] = json!(secret);
        config["verifier"] = verifier;
        self.post_configuration(&config).await;
    }

    /// Requests received at `path` so far.
    pub async fn deliveries_at(&self, path: &str) -> Vec<Delivery> {
        let mut deliveries = self.deliveries().await;
        deliveries.retain(|delivery| delivery.path == path);
        deliveries
    }

    /// Every request received so far.
    pub async fn deliveries(&self) -> Vec<Delivery> {
        self.http
            .get(self.url("/_received"))
            .send()
            .await
            .expect("receiver answers")
            .json()
            .await
            .expect("receiver answers JSON")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
