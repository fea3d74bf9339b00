//! `cargo xtask fuzz-api`: Schemathesis against a running Hookline and its own OpenAPI
//! document.
//!
//! Starts (or reuses) Kafka and Cassandra, runs `hookline serve` under a fresh topic prefix and
//! keyspace, and hands it to `fuzz_api.py` (in a virtualenv with Schemathesis), which seeds a
//! tenant, keys, webhooks, a delivery and a recovery job, then generates requests from
//! `/openapi.json` for a bounded time. Any 5xx, any response that does not match the document
//! (status, content type, body schema) and any accepted schema-invalid request fails the run.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};

use crate::check_ops_live::{free_port, logged, wait_ready};
use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::process::{self, Managed};
use crate::servers::Servers;
use crate::{cassandra, kafka, python, random};

pub const HOOKLINE: &str = "fuzz-hookline";
const REQUIREMENTS: &[&str] = &["schemathesis==4.32.5"];
/// Seconds of request generation, in total over Schemathesis's phases.
pub const DEFAULT_SECONDS: u32 = 90;

pub fn run(layout: &Layout, interrupt: &Interrupt, seconds: u32) -> Result<()> {
    let python = python::ensure_named_venv(layout, interrupt, "fuzz-venv", REQUIREMENTS)?;
    let work = layout.local.join("fuzz-api");
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    fs::create_dir_all(&work)?;
    let mut servers = Servers::launch(layout)?;
    let outcome = (|| {
        let built = process::run(&mut layout.cargo(&["build", "-p", "hookline"]), interrupt)?;
        ensure!(
            built.success(),
            "`cargo build -p hookline` failed ({built})"
        );
        servers.wait_ready(interrupt)?;

        let run_id = &random::hex_token()?[..8];
        let admin_token = random::hex_token()?;
        let port = free_port()?;
        let mut serve = Command::new(layout.target_dir().join("debug").join("hookline"));
        serve
            .arg("serve")
            .env("HOOKLINE_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKLINE_KAFKA_BROKERS", kafka::SPEC.addr)
            .env("HOOKLINE_CASSANDRA_NODES", cassandra::SPEC.addr)
            .env("HOOKLINE_TOPIC_PREFIX", format!("fuzz{run_id}."))
            .env("HOOKLINE_CASSANDRA_KEYSPACE", format!("fuzz{run_id}"))
            .env("HOOKLINE_ADMIN_TOKEN", &admin_token)
            .env("HOOKLINE_ALLOW_HTTP_URLS", "true")
            // Thousands of valid creations: the count must not be what refuses them.
            .env("HOOKLINE_MAX_WEBHOOKS_PER_TENANT", "1000000")
            // The seeded webhooks point at a closed port on loopback: attempts fail at once.
            .env("HOOKLINE_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("HOOKLINE_ALLOW_DEVELOPMENT_SECRET_KEY", "true");
        logged(&mut serve, &work.join("hookline.log"))?;
        let mut hookline = Managed::spawn(
            HOOKLINE,
            "hookline serve",
            &mut serve,
            layout.pid_file(HOOKLINE),
        )?;
        wait_ready(
            port,
            Instant::now(),
            std::slice::from_mut(&mut hookline),
            interrupt,
        )?;

        let status = process::run(
            Command::new(&python)
                .arg(layout.root.join("xtask/src/fuzz_api.py"))
                .arg(&work)
                .env("FUZZ_BASE_URL", format!("http://127.0.0.1:{port}"))
                .env("FUZZ_ADMIN_TOKEN", &admin_token)
                .env(
                    "FUZZ_REFUSING_URL",
                    format!("http://127.0.0.1:{}/", free_port()?),
                )
                .env("FUZZ_SECONDS", seconds.to_string())
                .stdin(Stdio::null()),
            interrupt,
        )?;
        hookline.stop(Duration::from_secs(30));
        ensure!(
            status.success(),
            "the API does not keep to its document; the report and hookline's log are in {}",
            work.display()
        );
        Ok(())
    })();
    servers.stop();
    outcome
}
