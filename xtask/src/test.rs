//! `cargo xtask test`: fmt, clippy and the workspace tests against local servers.

use std::process::{ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::servers::Servers;
use crate::{cassandra, kafka, process, python};

pub fn run(layout: &Layout, interrupt: &Interrupt, extra: &[String]) -> Result<ExitCode> {
    let mut phases = Phases::default();
    // The servers boot while the venv, fmt and clippy steps run; only the tests need them.
    let mut servers = phases.time("start servers", || Servers::launch(layout))?;
    let outcome = pipeline(layout, interrupt, extra, &mut servers, &mut phases);
    phases.time("stop servers", || servers.stop());
    phases.report();
    Ok(exit_code(outcome?))
}

/// Runs the steps in order and returns the status of the first failing one
/// (or of the tests).
fn pipeline(
    layout: &Layout,
    interrupt: &Interrupt,
    extra: &[String],
    servers: &mut Servers,
    phases: &mut Phases,
) -> Result<ExitStatus> {
    let python = phases.time("python venv", || python::ensure_venv(layout, interrupt))?;
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
            return Ok(status);
        }
    }

    phases.time("wait for servers", || servers.wait_ready(interrupt))?;
    let mut test = layout.cargo(&["test", "--workspace"]);
    test.args(extra)
        .env("HOOKLINE_TEST_KAFKA", kafka::SPEC.addr)
        .env("HOOKLINE_TEST_CASSANDRA", cassandra::SPEC.addr)
        .env("HOOKLINE_TEST_PYTHON", &python);
    let status = phases.time("test", || process::run(&mut test, interrupt))?;
    if !status.success() {
        say!("tests failed ({status})");
    }
    Ok(status)
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
        self.0.push((name, started.elapsed()));
        result
    }

    fn report(&self) {
        say!("timings:");
        for (name, took) in &self.0 {
            say!("  {name:<16} {:>6.1}s", took.as_secs_f64());
        }
    }
}
