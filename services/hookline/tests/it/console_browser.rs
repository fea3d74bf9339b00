//! The console in a real browser: headless Chromium (Debian's `chromium`) driven by
//! `playwright-core` from `tests/console-browser/` (`node --test`), against the whole stack.
//! This test starts Hookline and a receiver whose answers the suite switches between success
//! and failure (`/_configure`), seeds a tenant, its key, a read-only key and a webhook whose attempts carry
//! hostile payloads, and hands them to the suite; the suite saves a full-page screenshot of
//! every page it visits under `target/console-screenshots/`.
//!
//! Without Node's packages (`npm ci` in `tests/console-browser/`) or Chromium the test says so
//! and passes, unless `HOOKLINE_BROWSER_TESTS=required` (set by `cargo xtask test`, which
//! installs both first): then it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hookline_sender::SenderArgs;
use hookline_testkit::{eventually, Api, Receiver, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

use crate::{sender_args, start_hookline};

const SUITE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/console-browser");
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// Payloads that would run script if the console rendered them as markup.
const HOSTILE_SCRIPT: &str = "<script>window.__xss=1</script>";
const HOSTILE_IMAGE: &str = r#""><img src=x onerror="window.__xss=1">"#;

/// What the suite needs from this machine: Node, its packages and Chromium.
struct Suite {
    chromium: PathBuf,
}

impl Suite {
    /// The suite, ready to run; `None` (after saying why) when something is missing and the
    /// browser tests are not required.
    fn find() -> Option<Self> {
        let required =
            std::env::var("HOOKLINE_BROWSER_TESTS").is_ok_and(|value| value == "required");
        let chromium = std::env::var_os("HOOKLINE_TEST_CHROMIUM")
            .map_or_else(|| PathBuf::from(DEFAULT_CHROMIUM), PathBuf::from);
        let missing = if Command::new("node").arg("--version").output().is_err() {
            Some("node is not installed".to_owned())
        } else if !Path::new(SUITE_DIR)
            .join("node_modules/playwright-core")
            .is_dir()
        {
            Some(format!(
                "playwright-core is not installed (run `npm ci` in {SUITE_DIR})"
            ))
        } else if !chromium.is_file() {
            Some(format!(
                "chromium is not at {} (install Debian's `chromium` or set HOOKLINE_TEST_CHROMIUM)",
                chromium.display()
            ))
        } else {
            None
        };
        match missing {
            None => Some(Self { chromium }),
            Some(reason) if required => {
                panic!(
                    "{reason}; HOOKLINE_BROWSER_TESTS=required (`cargo xtask test` installs both)"
                )
            }
            Some(reason) => {
                eprintln!("{reason}: the console's browser tests are skipped (`cargo xtask test` runs them)");
                None
            }
        }
    }

    /// Runs `node --test` with `env`; panics, with the suite's output, unless it passes.
    async fn run(self, env: Vec<(&'static str, String)>) {
        let mut command = Command::new("node");
        command
            // A test that hangs (a browser that stopped answering) fails after two minutes.
            .args([
                "--test",
                "--test-timeout=120000",
                "--test-reporter=spec",
                "console.test.js",
            ])
            .current_dir(SUITE_DIR)
            .env("HOOKLINE_TEST_CHROMIUM", &self.chromium)
            .envs(env);
        let started = Instant::now();
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("node starts");
        eprintln!(
            "{}{}node --test took {:.1}s",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            started.elapsed().as_secs_f64()
        );
        assert!(
            output.status.success(),
            "the console's browser tests failed ({})",
            output.status
        );
    }
}

/// Where screenshots go: `target/console-screenshots/`, emptied first so every file is of
/// this run.
fn screenshot_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target tmp dir is inside the target dir");
    let dir = target.join("console-screenshots");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_in_headless_chromium() {
    let Some(suite) = Suite::find() else {
        return;
    };
    // One attempt per delivery: a failure is final (`dead`), so recovery finds it to replay.
    let sender = SenderArgs {
        retry_schedule: String::new(),
        ..sender_args()
    };
    let (hookline, _) = start_hookline(sender).await;
    let api = Api::new(&hookline.base_url);
    let receiver = Receiver::start();
    let (tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    // A key that may only read: the suite sees what it may not do disabled.
    let (status, reader) = api
        .post(
            &format!("/v1/tenants/{tenant}/keys"),
            ADMIN_TOKEN,
            &json!({"name": "reader", "scopes": ["deliveries:read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reader}");

    // A webhook whose attempts show hostile payloads, and an event type that describes itself
    // with markup: the suite finds them on the webhook's page and the events page.
    let (status, hostile) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url("/hostile"), "events": ["hostile.*"], "description": "hostile payloads"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hostile}");
    let hostile_id = hostile["id"].as_str().unwrap().to_owned();
    receiver
        .configure("/hostile", hostile["secret"].as_str().unwrap(), 200)
        .await;
    let (status, _) = api
        .post(
            "/v1/event-types",
            &key,
            &json!({
                "name": "hostile.script",
                "description": format!("an event type with {HOSTILE_IMAGE} in its description"),
                "example": {"note": HOSTILE_SCRIPT}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (event_type, data) in [
        ("hostile.script", json!({"note": HOSTILE_SCRIPT})),
        ("hostile.image", json!({"name": HOSTILE_IMAGE})),
    ] {
        let (status, body) = api
            .post(
                "/v1/events",
                &key,
                &json!({"type": event_type, "data": data}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let attempts_path = format!("/v1/webhooks/{hostile_id}/attempts");
    eventually("both hostile attempts", Duration::from_secs(60), || {
        let (api, key, path) = (api.clone(), key.clone(), attempts_path.clone());
        async move {
            let (_, attempts) = api.get(&path, &key).await;
            (attempts["data"].as_array().map_or(0, Vec::len) == 2).then_some(())
        }
    })
    .await;

    suite
        .run(vec![
            ("HOOKLINE_TEST_BASE_URL", hookline.base_url.clone()),
            ("HOOKLINE_TEST_API_KEY", key),
            (
                "HOOKLINE_TEST_READER_KEY",
                reader["key"].as_str().unwrap().to_owned(),
            ),
            ("HOOKLINE_TEST_RECEIVER_URL", receiver.url("")),
            ("HOOKLINE_TEST_HOSTILE_WEBHOOK", hostile_id),
            ("HOOKLINE_TEST_HOSTILE_SCRIPT", HOSTILE_SCRIPT.to_owned()),
            ("HOOKLINE_TEST_HOSTILE_IMAGE", HOSTILE_IMAGE.to_owned()),
            (
                "HOOKLINE_TEST_SCREENSHOTS",
                screenshot_dir().display().to_string(),
            ),
        ])
        .await;
    hookline.stop().await.unwrap();
}
