//! `cargo xtask check-ops --live`: the dashboards and alert rules against a real Prometheus.
//!
//! Starts (or reuses) Kafka and Cassandra, runs the four services as separate processes under a
//! fresh topic prefix and keyspace, a demo receiver, and Debian's Prometheus scraping every
//! service each second with `deploy/prometheus/alerts.yml` loaded. `check_ops.py live` then
//! sends events (to a healthy webhook, and to one whose endpoint refuses connections, so
//! retries and dead letters happen) and asserts through Prometheus's API that every rule
//! evaluates, every dashboard expression returns data, and every metric they name is scraped.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::process::{self, Managed};
use crate::servers::Servers;
use crate::{cassandra, kafka, random};

/// Each service and the name its process goes by here (and in its pid file).
const SERVICES: [(&str, &str); 4] = [
    ("ingest", "ops-ingest"),
    ("fanout", "ops-fanout"),
    ("sender", "ops-sender"),
    ("ledger", "ops-ledger"),
];
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// The demo receiver's secret; the check subscribes it with the same one.
const RECEIVER_SECRET: &str = "whsec_aG9va2xpbmUtZGVtby1yZWNlaXZlci1zZWNyZXQtMDE=";

/// A port the operating system just had free on loopback.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn logged(command: &mut Command, log: &Path) -> Result<()> {
    let file =
        fs::File::create(log).with_context(|| format!("could not create {}", log.display()))?;
    command.stdout(file.try_clone()?).stderr(file);
    Ok(())
}

pub fn run(layout: &Layout, interrupt: &Interrupt, python: &Path, promtool: &Path) -> Result<()> {
    let prometheus_binary = promtool.with_file_name("prometheus");
    ensure!(
        prometheus_binary.is_file(),
        "{} is missing (Debian's prometheus package installs it beside promtool)",
        prometheus_binary.display()
    );
    let work = layout.local.join("ops-live");
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    fs::create_dir_all(&work)?;

    let mut servers = Servers::launch(layout)?;
    let outcome = run_stack(
        layout,
        interrupt,
        python,
        &prometheus_binary,
        &work,
        &mut servers,
    );
    servers.stop();
    outcome
}

fn run_stack(
    layout: &Layout,
    interrupt: &Interrupt,
    python: &Path,
    prometheus_binary: &Path,
    work: &Path,
    servers: &mut Servers,
) -> Result<()> {
    let mut build = layout.cargo(&["build"]);
    for package in [
        "hookline",
        "hookline-ingest",
        "hookline-fanout",
        "hookline-sender",
        "hookline-ledger",
    ] {
        build.args(["-p", package]);
    }
    ensure!(
        process::run(&mut build, interrupt)?.success(),
        "building the services failed"
    );
    servers.wait_ready(interrupt)?;

    let run_id = &random::hex_token()?[..8];
    let admin_token = random::hex_token()?;
    let binaries = layout.target_dir().join("debug");
    let mut running: Vec<Managed> = Vec::new();
    let mut targets = Vec::new();
    let started = Instant::now();
    for (service, name) in SERVICES {
        let port = free_port()?;
        let mut command = Command::new(binaries.join(format!("hookline-{service}")));
        command
            .env("HOOKLINE_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKLINE_KAFKA_BROKERS", kafka::SPEC.addr)
            .env("HOOKLINE_CASSANDRA_NODES", cassandra::SPEC.addr)
            .env("HOOKLINE_TOPIC_PREFIX", format!("opscheck{run_id}."))
            .env("HOOKLINE_CASSANDRA_KEYSPACE", format!("opscheck{run_id}"))
            .env("HOOKLINE_ADMIN_TOKEN", &admin_token)
            .env("HOOKLINE_ALLOW_HTTP_URLS", "true")
            .env("HOOKLINE_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("HOOKLINE_ALLOW_DEVELOPMENT_SECRET_KEY", "true")
            // Two quick retries, so a refusing endpoint reaches dead letters within seconds.
            .env("HOOKLINE_RETRY_SCHEDULE", "1s,1s")
            .env("HOOKLINE_CIRCUIT_THRESHOLD", "3")
            .env("HOOKLINE_CIRCUIT_COOLDOWN_SECS", "2");
        logged(&mut command, &work.join(format!("{service}.log")))?;
        running.push(Managed::spawn(
            name,
            &format!("hookline-{service}"),
            &mut command,
            layout.pid_file(name),
        )?);
        targets.push((service, port));
    }
    // All at once, as an orchestrator starts them: each waits for what it needs (the topics
    // another one is creating, a broker still settling) and becomes ready when it can.
    for &(service, port) in &targets {
        wait_ready(port, started, &mut running, interrupt)
            .with_context(|| format!("{service} did not become ready; see {}", work.display()))?;
    }
    say!("services ready in {:.1}s", started.elapsed().as_secs_f64());

    let receiver_port = free_port()?;
    let mut receiver = Command::new(binaries.join("hookline"));
    receiver
        .args([
            "demo-receiver",
            "--listen",
            &format!("127.0.0.1:{receiver_port}"),
        ])
        .env("HOOKLINE_DEMO_SECRET", RECEIVER_SECRET);
    logged(&mut receiver, &work.join("receiver.log"))?;
    running.push(Managed::spawn(
        "ops-receiver",
        "hookline demo-receiver",
        &mut receiver,
        layout.pid_file("ops-receiver"),
    )?);

    let prometheus_port = free_port()?;
    write_prometheus_config(layout, work, &targets)?;
    let mut prometheus = Command::new(prometheus_binary);
    prometheus
        .arg(format!(
            "--config.file={}",
            work.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"));
    logged(&mut prometheus, &work.join("prometheus.log"))?;
    running.push(Managed::spawn(
        "ops-prometheus",
        "prometheus",
        &mut prometheus,
        layout.pid_file("ops-prometheus"),
    )?);

    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let port_of = |wanted: &str| {
        targets
            .iter()
            .find(|(s, _)| *s == wanted)
            .map(|(_, p)| *p)
            .unwrap_or_default()
    };
    let status = process::run(
        Command::new(python)
            .arg(layout.root.join("xtask/src/check_ops.py"))
            .arg("live")
            .arg(&layout.root)
            .env("OPS_PROMETHEUS", url(prometheus_port))
            .env("OPS_INGEST", url(port_of("ingest")))
            .env("OPS_LEDGER", url(port_of("ledger")))
            .env("OPS_ADMIN_TOKEN", &admin_token)
            .env("OPS_RECEIVER", format!("{}/webhook", url(receiver_port)))
            .env("OPS_RECEIVER_SECRET", RECEIVER_SECRET)
            // Nothing listens there: every attempt fails to connect.
            .env("OPS_REFUSING", format!("{}/webhook", url(free_port()?)))
            .stdin(Stdio::null()),
        interrupt,
    )?;
    for mut process in running.into_iter().rev() {
        process.stop(Duration::from_secs(30));
    }
    ensure!(
        status.success(),
        "the live checks failed; logs in {}",
        work.display()
    );
    Ok(())
}

fn write_prometheus_config(layout: &Layout, work: &Path, targets: &[(&str, u16)]) -> Result<()> {
    fs::copy(
        layout.root.join("deploy/prometheus/alerts.yml"),
        work.join("alerts.yml"),
    )?;
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [alerts.yml]\nscrape_configs:\n",
    );
    for (service, port) in targets {
        // The job names of deploy/prometheus/prometheus.yml and the ServiceMonitors.
        config.push_str(&format!(
            "  - job_name: hookline-{service}\n    static_configs: [{{targets: [\"127.0.0.1:{port}\"]}}]\n"
        ));
    }
    fs::write(work.join("prometheus.yml"), config)?;
    Ok(())
}

pub fn wait_ready(
    port: u16,
    started: Instant,
    running: &mut [Managed],
    interrupt: &Interrupt,
) -> Result<()> {
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    loop {
        ensure!(!interrupt.is_set(), "interrupted");
        for process in running.iter_mut() {
            if let Some(status) = process.exited() {
                bail!("{} exited ({status})", process.name);
            }
        }
        let answered = Command::new("curl")
            .args(["-fsS", "-o", "/dev/null", &readyz])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if answered {
            return Ok(());
        }
        ensure!(
            started.elapsed() < READY_TIMEOUT,
            "not ready after {}s",
            READY_TIMEOUT.as_secs()
        );
        thread::sleep(Duration::from_millis(500));
    }
}
