use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use hookline_runtime::{serve, BoxError, Context, Service, StartupArgs, StartupError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The failure of a dependency that is away.
#[derive(Debug, thiserror::Error)]
#[error("the dependency is away")]
struct Away;

/// A process whose one service waits until `up` is set (failing transiently meanwhile), or
/// fails permanently when `refuse` is set.
struct Process {
    base_url: String,
    shutdown: CancellationToken,
    run: JoinHandle<Result<(), BoxError>>,
}

async fn process(up: Arc<AtomicBool>, refuse: bool, timeout_secs: u64) -> Process {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let context = Context::new(shutdown.clone());
    let run = tokio::spawn(async move {
        let startup = StartupArgs { timeout_secs };
        // A process runs until its workers stop, and they stop on shutdown.
        let stopped = context.shutdown.clone();
        let worker = Box::pin(async move {
            stopped.cancelled().await;
            Ok(())
        });
        serve(listener, &context, &startup, async {
            context
                .starting("test")
                .wait_for(
                    "the dependency",
                    |_: &Away| !refuse,
                    || {
                        let up = up.load(Ordering::SeqCst);
                        async move {
                            if up {
                                Ok(())
                            } else {
                                Err(Away)
                            }
                        }
                    },
                )
                .await?;
            Ok(vec![Service {
                name: "test",
                routes: Router::new().route("/v1/thing", get(|| async { "thing" })),
                ready: Arc::new(AtomicBool::new(true)),
                workers: vec![worker],
            }])
        })
        .await
    });
    Process {
        base_url,
        shutdown,
        run,
    }
}

async fn get_text(url: &str) -> (u16, Option<String>, String) {
    let response = reqwest::get(url).await.expect("the process answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, retry_after, response.text().await.unwrap())
}

/// Polls `url` until it answers `status`, for up to 10 s.
async fn until_status(url: &str, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (answered, _, body) = get_text(url).await;
        if answered == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} kept answering {answered}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn probes_answer_while_a_dependency_is_away_and_routes_once_it_is_back() {
    let up = Arc::new(AtomicBool::new(false));
    let process = process(Arc::clone(&up), false, 60).await;
    let url = |path: &str| format!("{}{path}", process.base_url);

    assert_eq!(
        get_text(&url("/healthz")).await.0,
        200,
        "alive while starting"
    );
    let (status, _, body) = get_text(&url("/readyz")).await;
    assert_eq!(status, 503);
    assert_eq!(body, "starting: waiting for test: the dependency");
    let (status, retry_after, body) = get_text(&url("/v1/thing")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert!(body.contains(r#""code":"unavailable""#), "{body}");
    // The first retry comes 200 ms after the first failure.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let metrics = get_text(&url("/metrics")).await.2;
    assert!(metrics.contains("hookline_starting 1"), "{metrics}");
    assert!(
        metrics.contains(r#"hookline_startup_retries_total{service="test",step="the dependency"}"#),
        "{metrics}"
    );

    up.store(true, Ordering::SeqCst);
    assert_eq!(until_status(&url("/readyz"), 200).await, "ready");
    assert_eq!(get_text(&url("/v1/thing")).await.2, "thing");
    let metrics = get_text(&url("/metrics")).await.2;
    assert!(metrics.contains("hookline_starting 0"), "{metrics}");
    assert!(
        metrics.contains(
            r#"hookline_http_requests_total{method="GET",route="/v1/thing",status="200"} 1"#
        ),
        "routes are observed by their template once served: {metrics}"
    );

    process.shutdown.cancel();
    process.run.await.unwrap().expect("a clean stop");
}

#[tokio::test]
async fn a_start_up_past_its_deadline_ends_naming_what_it_waited_for() {
    let process = process(Arc::new(AtomicBool::new(false)), false, 1).await;
    let started = Instant::now();
    let error = process.run.await.unwrap().expect_err("the deadline passes");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            error.downcast_ref::<StartupError>(),
            Some(StartupError::TimedOut { .. })
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "start-up did not finish within 1 s (HOOKLINE_STARTUP_TIMEOUT_SECS); still waiting for test: the dependency"
    );
}

#[tokio::test]
async fn a_refusal_ends_the_start_up_at_once() {
    let process = process(Arc::new(AtomicBool::new(false)), true, 60).await;
    let error = tokio::time::timeout(Duration::from_secs(5), process.run)
        .await
        .expect("no waiting for a refusal")
        .unwrap()
        .expect_err("refused");
    let refused = error.downcast_ref::<StartupError>();
    assert!(
        matches!(
            refused,
            Some(StartupError::Refused {
                service: "test",
                step: "the dependency",
                ..
            })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_shutdown_while_starting_is_a_clean_stop() {
    let process = process(Arc::new(AtomicBool::new(false)), false, 60).await;
    assert_eq!(
        until_status(&format!("{}/healthz", process.base_url), 200).await,
        "ok"
    );
    process.shutdown.cancel();
    process.run.await.unwrap().expect("a clean stop");
}
