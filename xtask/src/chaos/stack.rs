//! The processes of a chaos run: the four services (the sender twice) and the webhook receiver,
//! each on a port fixed for the whole run, so a process started again after a kill is found
//! where the driver and the other services expect it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::plan::SERVICES;
use crate::check_ops_live::free_port;
use crate::layout::Layout;
use crate::process::{self, Managed};
use crate::{cassandra, kafka};

/// Pid-file names, so `cargo xtask down` finds what an interrupted run left behind.
pub const PROCESS_NAMES: [&str; 6] = [
    "chaos-ingest",
    "chaos-fanout",
    "chaos-sender-1",
    "chaos-sender-2",
    "chaos-ledger",
    "chaos-receiver",
];
const RECEIVER: usize = 5;
/// Starts of a service that exits before it is ready, at the beginning of a run.
const START_TRIES: u32 = 3;
/// A service that takes longer than this to answer `/readyz` after a start is broken.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Links (or copies) the service binaries just built into `to`: a service started again after
/// a kill must run the same code as before, even if a build replaces the binaries meanwhile.
pub fn snapshot_binaries(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for service in ["ingest", "fanout", "sender", "ledger"] {
        let name = format!("hookline-{service}");
        let (source, copy) = (from.join(&name), to.join(&name));
        fs::hard_link(&source, &copy)
            .or_else(|_| fs::copy(&source, &copy).map(drop))
            .with_context(|| format!("could not take {}", source.display()))?;
    }
    Ok(())
}

/// Settings every service gets.
pub struct Settings {
    pub run_id: String,
    pub admin_token: String,
    /// Longer than this, an endpoint's answer is a timeout; a hanging endpoint waits longer.
    pub request_timeout_secs: u64,
}

/// One process of the run, started again with the same command line after a kill.
pub struct Process {
    pub name: &'static str,
    pub port: u16,
    /// Part of its command line, checked before a recorded pid is signalled.
    marker: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    log: PathBuf,
    pid_file: PathBuf,
    running: Option<Managed>,
}

impl Process {
    /// Starts it, appending to its log.
    pub fn start(&mut self) -> Result<()> {
        if let Some(mut previous) = self.running.take() {
            if previous.exited().is_none() {
                self.running = Some(previous);
                bail!("{} is already running", self.name);
            }
            // Reaped before the new one writes its pid file, which this would remove.
            previous.kill();
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("could not open {}", self.log.display()))?;
        writeln!(log, "===== {} starting =====", self.name)?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        self.running = Some(Managed::spawn(
            self.name,
            &self.marker,
            &mut command,
            self.pid_file.clone(),
        )?);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(Managed::pid)
    }

    /// The exit status if it has ended (or was never started).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        match &mut self.running {
            Some(managed) => managed.exited(),
            None => Some(ExitStatus::default()),
        }
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut managed) = self.running.take() {
            managed.kill();
        }
    }

    /// SIGTERM, SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if let Some(mut managed) = self.running.take() {
            // A stopped process would not handle SIGTERM.
            process::signal(managed.pid(), "CONT");
            managed.stop(grace);
        }
    }

    /// Whether it answers: `/readyz` for a service, an open port for the receiver.
    pub fn ready(&self) -> bool {
        if self.name == PROCESS_NAMES[RECEIVER] {
            return process::port_open(([127, 0, 0, 1], self.port).into());
        }
        Command::new("curl")
            .args(["-fsS", "-o", "/dev/null", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{}/readyz", self.port))
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

pub struct Stack {
    /// The services in the order of [`SERVICES`], then the receiver; each locked by whoever
    /// signals or restarts it.
    pub processes: Vec<Mutex<Process>>,
}

impl Stack {
    /// The processes, not started yet.
    pub fn new(
        layout: &Layout,
        binaries: &Path,
        python: &Path,
        work: &Path,
        settings: &Settings,
    ) -> Result<Self> {
        let mut processes = Vec::new();
        for (index, service) in SERVICES.iter().enumerate() {
            // `sender-1` and `sender-2` are both `hookline-sender`.
            let binary = format!("hookline-{}", service.split('-').next().unwrap_or(service));
            let port = free_port()?;
            processes.push(Process {
                name: PROCESS_NAMES[index],
                port,
                marker: binary.clone(),
                program: binaries.join(&binary),
                args: Vec::new(),
                env: service_env(settings, port),
                log: work.join(format!("{service}.log")),
                pid_file: layout.pid_file(PROCESS_NAMES[index]),
                running: None,
            });
        }
        let port = free_port()?;
        let script = layout.root.join("xtask/src/chaos/receiver.py");
        processes.push(Process {
            name: PROCESS_NAMES[RECEIVER],
            port,
            marker: "receiver.py".into(),
            program: python.to_path_buf(),
            args: vec![script.display().to_string(), port.to_string()],
            env: Vec::new(),
            log: work.join("receiver.log"),
            pid_file: layout.pid_file(PROCESS_NAMES[RECEIVER]),
            running: None,
        });
        Ok(Self {
            processes: processes.into_iter().map(Mutex::new).collect(),
        })
    }

    pub fn process(&self, index: usize) -> std::sync::MutexGuard<'_, Process> {
        self.processes[index]
            .lock()
            .expect("a fault thread panicked")
    }

    pub fn port(&self, index: usize) -> u16 {
        self.process(index).port
    }

    pub fn service_port(&self, service: &str) -> u16 {
        let index = SERVICES.iter().position(|s| *s == service);
        self.port(index.expect("a known service"))
    }

    pub fn receiver_port(&self) -> u16 {
        self.port(RECEIVER)
    }

    pub fn receiver_index(&self) -> usize {
        RECEIVER
    }

    /// Starts the receiver and then the services one at a time: services that create the same
    /// fresh topics at once can read their metadata before the partitions have leaders. Even
    /// alone, a service may read it too early and exit: it is started again, a few times, as a
    /// supervisor would.
    pub fn start(&self) -> Result<()> {
        let order = std::iter::once(RECEIVER).chain(0..SERVICES.len());
        for index in order {
            let started = Instant::now();
            let mut starts = 1;
            self.process(index).start()?;
            loop {
                let mut process = self.process(index);
                if let Some(status) = process.exited() {
                    if starts == START_TRIES {
                        bail!(
                            "{} exited ({status}) before it was ready, {starts} times\n{}",
                            process.name,
                            process::log_tail(&process.log, 30)
                        );
                    }
                    say!("{} exited ({status}) while starting; again", process.name);
                    std::thread::sleep(Duration::from_secs(1));
                    process.start()?;
                    starts += 1;
                }
                if process.ready() {
                    say!(
                        "{} ready on 127.0.0.1:{} in {:.1}s",
                        process.name,
                        process.port,
                        started.elapsed().as_secs_f64()
                    );
                    break;
                }
                if started.elapsed() > READY_TIMEOUT {
                    bail!("{} was not ready after {READY_TIMEOUT:?}", process.name);
                }
                drop(process);
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        Ok(())
    }

    /// Stops everything: ingest first, so the rest drains what it accepted.
    pub fn stop(&self) {
        for process in &self.processes {
            process
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .stop(Duration::from_secs(30));
        }
    }
}

/// The environment of every service: this run's topics and keyspace, and retries short enough
/// that an endpoint which failed or hung for a while has everything within the settle time.
fn service_env(settings: &Settings, port: u16) -> Vec<(&'static str, String)> {
    let run_id = &settings.run_id;
    // Waits between attempts: three quick ones, then every 5 s, about three and a half
    // minutes in all: longer than any endpoint fault plus a circuit's cooldown.
    let schedule = ["1s", "2s", "4s"]
        .into_iter()
        .chain(std::iter::repeat_n("5s", 40))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        ("HOOKLINE_LISTEN", format!("127.0.0.1:{port}")),
        ("HOOKLINE_KAFKA_BROKERS", kafka::SPEC.addr.into()),
        ("HOOKLINE_CASSANDRA_NODES", cassandra::SPEC.addr.into()),
        ("HOOKLINE_TOPIC_PREFIX", format!("chaos{run_id}.")),
        ("HOOKLINE_CASSANDRA_KEYSPACE", format!("chaos{run_id}")),
        ("HOOKLINE_ADMIN_TOKEN", settings.admin_token.clone()),
        ("HOOKLINE_ALLOW_HTTP_URLS", "true".into()),
        // The receiver listens on loopback.
        ("HOOKLINE_ALLOWED_NETWORKS", "127.0.0.0/8".into()),
        ("HOOKLINE_ALLOW_DEVELOPMENT_SECRET_KEY", "true".into()),
        ("HOOKLINE_RETRY_SCHEDULE", schedule),
        ("HOOKLINE_RETRY_TIERS", "1s,5s".into()),
        ("HOOKLINE_CIRCUIT_COOLDOWN_SECS", "3".into()),
        (
            "HOOKLINE_REQUEST_TIMEOUT_SECS",
            settings.request_timeout_secs.to_string(),
        ),
        ("RUST_LOG", "info".into()),
        // Plain text in the log files.
        ("NO_COLOR", "1".into()),
    ]
}
