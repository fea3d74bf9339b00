//! `cargo xtask chaos [--minutes N] [--seed S] [--release]`: hard faults at random times while
//! events flow, then a check that no accepted event was lost.
//!
//! The four services run as separate processes (the sender twice) on local Kafka and
//! Cassandra, under a fresh topic prefix and keyspace. `driver.py` creates a tenant and three
//! webhooks pointing at `receiver.py` (which verifies every signature with the
//! `standardwebhooks` package), publishes with ids of its own choosing and keeps those answered
//! 202. Meanwhile the seeded plan (`plan.rs`) kills and restarts the broker, the database and
//! each service, stalls processes with SIGSTOP, and makes endpoints fail or hang
//! (`inject.rs`). Once every fault is healed the driver waits for the pipeline to settle and
//! checks that every accepted event reached every webhook and that the ledger holds each
//! delivery with its attempts; duplicates are counted. The report, the fault log and every
//! process's log go to `target/hookline-local/chaos/`.

mod driver;
mod inject;
mod log;
mod plan;
mod stack;
mod supervise;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus};
use std::thread;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use self::driver::Driver;
use self::inject::Injector;
use self::log::FaultLog;
use self::stack::Stack;
pub use self::stack::PROCESS_NAMES;
use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::servers::{Servers, ALL};
use crate::{down, process, python, random};

/// The sender's timeout per request; a hanging endpoint holds each request longer.
const REQUEST_TIMEOUT_SECS: u64 = 2;
const HOLD_SECS: u64 = REQUEST_TIMEOUT_SECS + 2;

pub struct Options {
    /// How long events are published (and faults injected, but for the last quarter).
    pub minutes: f64,
    /// Replays a run's fault plan; drawn at random when absent.
    pub seed: Option<u64>,
    pub release: bool,
    /// Longest wait for the pipeline to deliver everything once the faults are healed.
    pub settle_secs: u64,
}

impl Options {
    /// The run `cargo xtask test` makes: two minutes, always the same faults. The plan of seed
    /// 366 kills the broker, the database, fanout and a sender, stalls the broker and the
    /// ledger, and has an endpoint hang and one fail, two faults overlapping.
    pub const TEST: Options = Options {
        minutes: 2.0,
        seed: Some(366),
        release: false,
        settle_secs: 150,
    };

    pub fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options {
            minutes: 5.0,
            seed: None,
            release: false,
            settle_secs: 300,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} takes a value"));
            match arg.as_str() {
                "--minutes" => {
                    options.minutes = value()?.parse().context("--minutes takes a number")?;
                    ensure!(options.minutes > 0.0, "--minutes must be positive");
                }
                "--seed" => {
                    options.seed = Some(value()?.parse().context("--seed takes a whole number")?)
                }
                "--release" => options.release = true,
                _ => bail!("unexpected argument `{arg}`"),
            }
        }
        Ok(options)
    }
}

/// `cargo xtask chaos`: on servers of its own, since it kills them.
pub fn run(layout: &Layout, interrupt: &Interrupt, options: &Options) -> Result<ExitCode> {
    if ALL
        .iter()
        .any(|spec| process::port_open(spec.addr.parse().expect("valid address")))
    {
        bail!("kafka or cassandra is already running; the chaos run kills them, so stop them first (cargo xtask down)");
    }
    let mut servers = Servers::launch(layout)?;
    let outcome = servers
        .wait_ready(interrupt)
        .and_then(|()| run_on_servers(layout, interrupt, options));
    // The run started servers again from their saved command lines, so only their pid files
    // know what runs now: stopped by those first, then `servers` reaps what it started (and
    // would remove those pid files).
    down::stop_servers(layout);
    servers.stop();
    outcome
}

/// A chaos run on servers that are running and ready (and that it may kill).
pub fn run_on_servers(
    layout: &Layout,
    interrupt: &Interrupt,
    options: &Options,
) -> Result<ExitCode> {
    let seed = match options.seed {
        Some(seed) => seed,
        None => u64::from_str_radix(&random::hex_token()?[..16], 16)?,
    };
    let replay = format!(
        "cargo xtask chaos --minutes {} --seed {seed}{}",
        options.minutes,
        if options.release { " --release" } else { "" }
    );
    say!("chaos seed {seed} (replay: {replay})");
    let publishing = Duration::from_secs_f64(options.minutes * 60.0);
    let faults = plan::plan(seed, publishing);

    let work = layout.local.join("chaos");
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    fs::create_dir_all(&work)?;
    let planned: String = faults.iter().map(|fault| format!("{fault}\n")).collect();
    fs::write(work.join("plan.txt"), &planned)?;
    say!("the plan of seed {seed}:\n{planned}");

    let python = python::ensure_venv(layout, interrupt)?;
    let binaries = work.join("bin");
    stack::snapshot_binaries(&build(layout, interrupt, options.release)?, &binaries)?;
    let admin_token = random::hex_token()?;
    let settings = stack::Settings {
        run_id: random::hex_token()?[..8].to_owned(),
        admin_token: admin_token.clone(),
        request_timeout_secs: REQUEST_TIMEOUT_SECS,
    };
    let stack = Stack::new(layout, &binaries, &python, &work, &settings)?;
    let outcome = stack.start().and_then(|()| {
        let driver = Driver::spawn(
            &python,
            &layout.root.join("xtask/src/chaos/driver.py"),
            &work,
            &driver::Settings {
                ingest_port: stack.service_port("ingest"),
                ledger_port: stack.service_port("ledger"),
                receiver_port: stack.receiver_port(),
                admin_token: &admin_token,
                publish_secs: publishing.as_secs_f64(),
                seed,
                settle_secs: options.settle_secs,
                replay: replay.clone(),
            },
        )?;
        exercise(layout, interrupt, &stack, driver, &faults, &work)
    });
    stack.stop();
    let report = work.join("report.md");
    match outcome?.code() {
        Some(0) => {
            say!("chaos: nothing lost; report in {}", report.display());
            Ok(ExitCode::SUCCESS)
        }
        Some(1) => {
            say!(
                "chaos: events lost (seed {seed}); replay with `{replay}`; report in {}",
                report.display()
            );
            Ok(ExitCode::FAILURE)
        }
        _ => bail!("the chaos driver failed; see above and {}", work.display()),
    }
}

/// Builds the services; returns the directory of the binaries.
fn build(layout: &Layout, interrupt: &Interrupt, release: bool) -> Result<PathBuf> {
    let mut build = layout.cargo(&["build"]);
    if release {
        build.arg("--release");
    }
    for service in ["ingest", "fanout", "sender", "ledger"] {
        build.args(["-p", &format!("hookline-{service}")]);
    }
    ensure!(
        process::run(&mut build, interrupt)?.success(),
        "building the services failed"
    );
    let profile = if release { "release" } else { "debug" };
    Ok(layout.target_dir().join(profile))
}

/// Injects the faults while the driver publishes, heals them, and keeps every process up while
/// the driver settles and checks; returns the driver's exit status.
fn exercise(
    layout: &Layout,
    interrupt: &Interrupt,
    stack: &Stack,
    mut driver: Driver,
    faults: &[plan::Fault],
    work: &Path,
) -> Result<ExitStatus> {
    let started = driver.wait_publishing(interrupt)?;
    let log = FaultLog::create(&work.join("faults.log"), started)?;
    let injector = Injector::new(layout, stack, &log, interrupt, HOLD_SECS);
    injector.run(faults, started)?;
    ensure!(!interrupt.is_set(), "interrupted");
    injector.heal()?;
    log.note(format!(
        "{} faults injected and healed; settling",
        injector.injected()
    ));
    driver.healed(injector.injected(), injector.holdback_until())?;
    loop {
        if let Some(status) = driver.exited()? {
            return Ok(status);
        }
        ensure!(!interrupt.is_set(), "interrupted");
        // Processes may still exit on their own while the pipeline settles.
        injector.supervise();
        injector.check()?;
        thread::sleep(Duration::from_millis(500));
    }
}
