//! Kafka and Cassandra as local JVMs: start the ones not already answering,
//! wait until they accept clients, stop what was started.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::process::{self, Managed};
use crate::{cassandra, kafka, relaunch};

/// How one server is started and recognised.
pub struct Spec {
    pub name: &'static str,
    pub addr: &'static str,
    /// Part of the JVM command line, checked before signalling a recorded pid.
    pub marker: &'static str,
    /// Logged once the server accepts clients (the port alone opens earlier).
    pub ready_line: &'static str,
    /// Fetches jars, writes configs into the fresh runtime dir, returns the JVM command.
    pub prepare: fn(&Layout, &Path) -> Result<Command>,
}

impl Spec {
    fn socket_addr(&self) -> SocketAddr {
        self.addr
            .parse()
            .expect("server addresses are valid socket addresses")
    }
}

/// Cassandra first: it takes longest to start.
pub const ALL: [&Spec; 2] = [&cassandra::SPEC, &kafka::SPEC];

const READY_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_GRACE: Duration = Duration::from_secs(30);

struct Started {
    spec: &'static Spec,
    process: Managed,
    log: PathBuf,
    since: Instant,
    ready: bool,
}

/// The servers this invocation started; dropping it stops them.
pub struct Servers(Vec<Started>);

impl Servers {
    /// Starts every server that is not already answering on its port,
    /// without waiting for it to become ready.
    pub fn launch(layout: &Layout) -> Result<Self> {
        let mut servers = Self(Vec::new());
        for spec in ALL {
            if process::port_open(spec.socket_addr()) {
                say!(
                    "{} is already answering on {}, using it",
                    spec.name,
                    spec.addr
                );
                continue;
            }
            servers.0.push(start(layout, spec)?);
        }
        Ok(servers)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this invocation started every server (none was already running).
    pub fn started_all(&self) -> bool {
        self.0.len() == ALL.len()
    }

    /// Waits until every started server accepts clients, printing how long each took.
    pub fn wait_ready(&mut self, interrupt: &Interrupt) -> Result<()> {
        // A server already ready at the first look may have been ready for a while.
        let mut bound = "at most ";
        while self.0.iter().any(|server| !server.ready) {
            if interrupt.is_set() {
                bail!("interrupted while the servers were starting");
            }
            self.check_running()?;
            for server in self.0.iter_mut().filter(|server| !server.ready) {
                let elapsed = server.since.elapsed();
                if process::port_open(server.spec.socket_addr())
                    && fs::read_to_string(&server.log)
                        .is_ok_and(|log| log.contains(server.spec.ready_line))
                {
                    server.ready = true;
                    say!(
                        "{} ready on {} in {bound}{:.1}s",
                        server.spec.name,
                        server.spec.addr,
                        elapsed.as_secs_f64()
                    );
                } else if elapsed > READY_TIMEOUT {
                    bail!(
                        "{} was not ready after {}s\n{}",
                        server.spec.name,
                        READY_TIMEOUT.as_secs(),
                        process::log_tail(&server.log, 40)
                    );
                }
            }
            bound = "";
            thread::sleep(Duration::from_millis(250));
        }
        Ok(())
    }

    /// Fails if a started server has exited.
    pub fn check_running(&mut self) -> Result<()> {
        for server in &mut self.0 {
            if let Some(status) = server.process.exited() {
                bail!(
                    "{} exited unexpectedly ({status})\n{}",
                    server.spec.name,
                    process::log_tail(&server.log, 40)
                );
            }
        }
        Ok(())
    }

    /// Stops the started servers in parallel.
    pub fn stop(&mut self) {
        for server in &mut self.0 {
            server.process.terminate();
        }
        let deadline = Instant::now() + STOP_GRACE;
        process::wait_until(deadline, || {
            // Reaps (and reports) each server as soon as it has exited.
            self.0.retain_mut(|server| match server.process.exited() {
                Some(_) => {
                    server.process.wait(deadline);
                    false
                }
                None => true,
            });
            self.0.is_empty()
        });
        for mut server in self.0.drain(..) {
            server.process.wait(deadline);
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start(layout: &Layout, spec: &'static Spec) -> Result<Started> {
    let pid_file = layout.pid_file(spec.name);
    if let Some((pid, marker)) = process::read_pid_file(&pid_file) {
        if process::is_running(pid, &marker) {
            bail!(
                "{} (pid {pid}) from an earlier run is still running but not answering on {}; \
                 run `cargo xtask down` first",
                spec.name,
                spec.addr
            );
        }
    }

    say!("starting {}", spec.name);
    let dir = layout.local.join(spec.name);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("could not wipe {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let mut command = (spec.prepare)(layout, &dir)?;
    relaunch::save(&dir, &command)?;

    let log = dir.join(format!("{}.log", spec.name));
    let out = File::create(&log).with_context(|| format!("could not create {}", log.display()))?;
    command
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out));
    let process = Managed::spawn(spec.name, spec.marker, &mut command, pid_file)?;
    say!(
        "{} is starting (pid {}, log {})",
        spec.name,
        process.pid(),
        log.display()
    );
    Ok(Started {
        spec,
        process,
        log,
        since: Instant::now(),
        ready: false,
    })
}

/// `$JAVA_HOME/bin/java` if `JAVA_HOME` is set, else `java` from PATH.
pub fn java() -> Command {
    match std::env::var_os("JAVA_HOME").filter(|home| !home.is_empty()) {
        Some(home) => Command::new(Path::new(&home).join("bin").join("java")),
        None => Command::new("java"),
    }
}

/// `cargo xtask servers`: start, report, wait for ctrl-c, stop.
pub fn foreground(layout: &Layout, interrupt: &Interrupt) -> Result<()> {
    let mut servers = Servers::launch(layout)?;
    if servers.is_empty() {
        say!("nothing to start");
        return Ok(());
    }
    servers.wait_ready(interrupt)?;
    for spec in ALL {
        say!("{:<10} {}", spec.name, spec.addr);
    }
    say!(
        "logs and data in {}; press ctrl-c to stop",
        layout.local.display()
    );
    while !interrupt.is_set() {
        servers.check_running()?;
        thread::sleep(Duration::from_millis(500));
    }
    servers.stop();
    Ok(())
}
