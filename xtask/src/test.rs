//! `cargo xtask test`: fmt, clippy, the offline deployment checks (`check-ops`) and the
//! workspace tests against local servers, the console's browser tests among them (with
//! Chromium and their npm packages installed first), then a two-minute chaos run on the same
//! servers (it kills them, so it runs alone, after the tests).

use std::process::{ExitCode, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::servers::Servers;
use crate::{browser, cassandra, chaos, check_ops, down, kafka, process, python};

pub fn run(layout: &Layout, interrupt: &Interrupt, extra: &[String]) -> Result<ExitCode> {
    let mut phases = Phases::default();
    // The servers boot while the venv, fmt and clippy steps run; only the tests need them.
    let mut servers = phases.time("start servers", || Servers::launch(layout))?;
    let outcome = pipeline(layout, interrupt, extra, &mut servers, &mut phases);
    phases.time("stop servers", || servers.stop());
    phases.report();
    outcome
}

/// Runs the steps in order (the deployment checks beside the first ones) and returns the
/// status of the first failing one (or of the chaos run).
fn pipeline(
    layout: &Layout,
    interrupt: &Interrupt,
    extra: &[String],
    servers: &mut Servers,
    phases: &mut Phases,
) -> Result<ExitCode> {
    // The tools of the tests, or the status of fmt or clippy that failed.
    let prepared = thread::scope(|scope| -> Result<Result<_, ExitStatus>> {
        // The deployment checks and the browser's install mostly wait on tools and downloads:
        // they run beside the venv, fmt and clippy rather than after them.
        let deployment = scope.spawn(|| timed(|| check_ops::run(layout, interrupt, false)));
        let browser = scope.spawn(|| timed(|| browser::prepare(layout, interrupt)));
        let python = phases.time("python venv", || python::ensure_venv(layout, interrupt))?;
        let lint_failure = lint(layout, interrupt, phases)?;
        let (checked, took) = deployment.join().expect("check-ops thread panicked");
        phases.record("check-ops", took);
        let (chromium, took) = browser.join().expect("browser thread panicked");
        phases.record("browser install", took);
        if let Some(status) = lint_failure {
            return Ok(Err(status));
        }
        checked.context("check-ops failed")?;
        let chromium = chromium.context("installing the browser tests' tools failed")?;
        Ok(Ok((python, chromium)))
    })?;
    let (python, chromium) = match prepared {
        Ok(tools) => tools,
        Err(lint_failure) => return Ok(exit_code(lint_failure)),
    };

    phases.time("wait for servers", || servers.wait_ready(interrupt))?;
    let mut test = layout.cargo(&["test", "--workspace"]);
    test.args(extra)
        .env("HOOKLINE_TEST_KAFKA", kafka::SPEC.addr)
        .env("HOOKLINE_TEST_CASSANDRA", cassandra::SPEC.addr)
        .env("HOOKLINE_TEST_PYTHON", &python)
        .env("HOOKLINE_TEST_CHROMIUM", &chromium)
        // Here the browser tests fail rather than skip when their tools are missing.
        .env("HOOKLINE_BROWSER_TESTS", "required");
    let status = phases.time("test", || process::run(&mut test, interrupt))?;
    if !status.success() {
        say!("tests failed ({status})");
        return Ok(exit_code(status));
    }
    chaos_step(layout, interrupt, servers, phases)
}

/// The chaos run, on the servers this command started: it kills them, so not on servers that
/// were running before (someone else's), and only once the tests no longer need them.
fn chaos_step(
    layout: &Layout,
    interrupt: &Interrupt,
    servers: &Servers,
    phases: &mut Phases,
) -> Result<ExitCode> {
    if !servers.started_all() {
        say!("chaos run skipped: it kills the servers, and they were running before `test` (run `cargo xtask chaos` on its own)");
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = phases.time("chaos", || {
        chaos::run_on_servers(layout, interrupt, &chaos::Options::TEST)
    });
    // The run started servers again from their saved command lines: only their pid files know
    // those processes. They are stopped by them now, before `servers` reaps the processes it
    // started (and removes the pid files).
    phases.time("stop servers", || down::stop_servers(layout));
    outcome
}

/// `step`'s result and how long it took, for a step on a thread of its own.
fn timed<T>(step: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    (step(), started.elapsed())
}

/// fmt and clippy; the status of the first that failed.
fn lint(layout: &Layout, interrupt: &Interrupt, phases: &mut Phases) -> Result<Option<ExitStatus>> {
    let checks: [(&str, &[&str]); 2] = [
        ("fmt", &["fmt", "--all", "--", "--check"]),
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];
    for (name, args) in checks {
        let status = phases.time(name, || process::run(&mut layout.cargo(args), interrupt))?;
        if !status.success() {
            say!("{name} failed ({status})");
            return Ok(Some(status));
        }
    }
    Ok(None)
}

fn exit_code(status: ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal.
        None => ExitCode::FAILURE,
    }
}

#[derive(Default)]
struct Phases(Vec<(&'static str, Duration)>);

impl Phases {
    fn time<T>(&mut self, name: &'static str, phase: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = phase();
        self.record(name, started.elapsed());
        result
    }

    fn record(&mut self, name: &'static str, took: Duration) {
        self.0.push((name, took));
    }

    fn report(&self) {
        say!("timings:");
        for (name, took) in &self.0 {
            say!("  {name:<16} {:>6.1}s", took.as_secs_f64());
        }
    }
}
