//! The receiving end: verifies every signature, counts deliveries per path and records
//! event-to-delivery latency from the `timestamp` the publisher put in each event. A path may
//! be switched to failing: it then answers 500 and counts nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use chrono::{DateTime, Utc};
use hookline_signing::{verify, Secret};
use serde::Deserialize;
use tokio::net::TcpListener;

/// What arrived at one path.
#[derive(Debug, Default, Clone)]
pub struct PathStats {
    pub deliveries: u64,
    /// Distinct `webhook-id`s received: fewer than `deliveries` where one arrived again.
    pub ids: HashSet<String>,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    secrets: HashMap<String, Secret>,
    /// Paths answering 500 to every request.
    failing: HashSet<String>,
    paths: HashMap<String, PathStats>,
    /// Event-to-delivery latency in microseconds, by the event's `phase`.
    latencies: HashMap<String, Vec<u64>>,
    bad_signatures: u64,
}

#[derive(Clone, Default)]
pub struct Sink {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Deserialize)]
struct Envelope {
    timestamp: DateTime<Utc>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    phase: Option<String>,
}

/// A path that never answers in time.
pub const HANGING_PATH: &str = "/hang";

impl Sink {
    pub async fn serve(&self) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new().fallback(receive).with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(url)
    }

    pub fn register(&self, path: &str, secret: Secret) {
        self.inner
            .lock()
            .unwrap()
            .secrets
            .insert(path.to_owned(), secret);
    }

    /// Makes `path` answer 500 (`true`) or 204 again (`false`).
    pub fn set_failing(&self, path: &str, failing: bool) {
        let mut inner = self.inner.lock().unwrap();
        if failing {
            inner.failing.insert(path.to_owned());
        } else {
            inner.failing.remove(path);
        }
    }

    pub fn total(&self) -> u64 {
        self.inner
            .lock()
            .unwrap()
            .paths
            .values()
            .map(|p| p.deliveries)
            .sum()
    }

    pub fn stats(&self) -> HashMap<String, PathStats> {
        self.inner.lock().unwrap().paths.clone()
    }

    pub fn bad_signatures(&self) -> u64 {
        self.inner.lock().unwrap().bad_signatures
    }

    pub fn latencies(&self, phase: &str) -> Vec<u64> {
        let mut samples = self
            .inner
            .lock()
            .unwrap()
            .latencies
            .get(phase)
            .cloned()
            .unwrap_or_default();
        samples.sort_unstable();
        samples
    }

    pub fn reset(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.paths.clear();
        inner.latencies.clear();
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

async fn receive(
    State(sink): State<Sink>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path().to_owned();
    if path == HANGING_PATH {
        tokio::time::sleep(Duration::from_secs(60)).await;
        return StatusCode::NO_CONTENT;
    }
    let secret = sink.inner.lock().unwrap().secrets.get(&path).cloned();
    let verified = secret.is_some_and(|secret| {
        let id = header(&headers, "webhook-id").unwrap_or_default();
        let timestamp = header(&headers, "webhook-timestamp")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let signature = header(&headers, "webhook-signature").unwrap_or_default();
        verify(&secret, id, timestamp, &body, signature).is_ok()
    });
    let now = Instant::now();
    let envelope: Option<Envelope> = serde_json::from_slice(&body).ok();
    let mut inner = sink.inner.lock().unwrap();
    if !verified {
        inner.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if inner.failing.contains(&path) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let id = header(&headers, "webhook-id")
        .unwrap_or_default()
        .to_owned();
    let stats = inner.paths.entry(path).or_default();
    stats.deliveries += 1;
    stats.ids.insert(id);
    stats.first.get_or_insert(now);
    stats.last = Some(now);
    if let Some(envelope) = envelope {
        let latency = (Utc::now() - envelope.timestamp)
            .num_microseconds()
            .unwrap_or(0)
            .max(0) as u64;
        let phase = envelope.data.and_then(|d| d.phase).unwrap_or_default();
        inner.latencies.entry(phase).or_default().push(latency);
    }
    StatusCode::NO_CONTENT
}

/// The value at quantile `q` of sorted samples.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
