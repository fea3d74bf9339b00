//! `cargo xtask <command>`: developer tasks for Hookline.
//!
//! Kafka and Cassandra run as plain JVMs from jars fetched once with Maven,
//! so nothing but a JDK, Maven, Python 3 and curl is needed on the machine.

/// Prints a progress line, prefixed so it stands out from forwarded output.
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("[xtask] {}", format_args!($($arg)*))
    };
}

mod bench;
mod browser;
mod cassandra;
mod chaos;
mod check_ops;
mod check_ops_live;
mod debian;
mod down;
mod faults;
mod fuzz_api;
mod interrupt;
mod kafka;
mod layout;
mod maven;
mod process;
mod python;
mod random;
mod relaunch;
mod servers;
mod test;
mod up;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  servers               start kafka and cassandra and keep them running until ctrl-c
  test [-- <args>...]   fmt, clippy, check-ops (offline) and the workspace tests against
                        local servers, the console's in headless Chromium among them
                        (extra args are passed to `cargo test --workspace`), then two minutes
                        of `chaos` with a fixed seed
  up                    servers + hookline + a demo webhook receiver, ready for curl
  bench [-- <args>...]  the benchmark harness in release mode (args go to hookline-bench,
                        e.g. `-- --workloads i --events 20000`)
  down                  stop everything a previous command left running
  faults                the fault tests: kafka restarted and cassandra stopped mid-run
                        (starts its own servers; stop any running ones first)
  chaos [--minutes N] [--seed S] [--release]
                        the services as separate processes under random hard faults (kill -9
                        and restarts of kafka, cassandra and each service, SIGSTOP, failing and
                        hanging endpoints) while events flow, then fails on any accepted event
                        not delivered or not in the ledger (default 5 minutes; --seed replays a
                        run's faults; starts its own servers; `test` runs 2 minutes of it)
  server stop|kill|start <name>
                        stop a running server (kill: SIGKILL at once), or start it again
                        with its data
  fuzz-api [--seconds N]
                        schemathesis against a running hookline and its /openapi.json: no 5xx,
                        every response as documented, invalid input refused (default 90s)
  check-ops [--live]    validate deploy/ and docker-compose.yml offline (promtool, kustomize,
                        Kubernetes and Compose schemas, PromQL against the services' metrics);
                        --live: then run the services and a real Prometheus, send events, and
                        check every dashboard and alert expression returns data";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("[xtask] error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let layout = Layout::discover()?;
    match (command.as_str(), rest) {
        ("servers", []) => servers::foreground(&layout, &Interrupt::install()?)?,
        ("down", []) => down::run(&layout)?,
        ("test", []) => return test::run(&layout, &Interrupt::install()?, &[]),
        ("test", [dashes, extra @ ..]) if dashes == "--" => {
            return test::run(&layout, &Interrupt::install()?, extra)
        }
        ("up", []) => up::run(&layout, &Interrupt::install()?)?,
        ("bench", []) => bench::run(&layout, &Interrupt::install()?, &[])?,
        ("bench", [dashes, extra @ ..]) if dashes == "--" => {
            bench::run(&layout, &Interrupt::install()?, extra)?
        }
        ("faults", []) => return faults::run(&layout, &Interrupt::install()?),
        ("chaos", options) => {
            let options = chaos::Options::parse(options)?;
            return chaos::run(&layout, &Interrupt::install()?, &options);
        }
        ("server", [action, name]) if action == "stop" => relaunch::stop(&layout, name)?,
        ("server", [action, name]) if action == "kill" => relaunch::kill(&layout, name)?,
        ("server", [action, name]) if action == "start" => relaunch::start(&layout, name)?,
        ("fuzz-api", []) => {
            fuzz_api::run(&layout, &Interrupt::install()?, fuzz_api::DEFAULT_SECONDS)?
        }
        ("fuzz-api", [flag, seconds]) if flag == "--seconds" => {
            let seconds = seconds.parse().context("--seconds takes a whole number")?;
            fuzz_api::run(&layout, &Interrupt::install()?, seconds)?
        }
        ("check-ops", []) => check_ops::run(&layout, &Interrupt::install()?, false)?,
        ("check-ops", [live]) if live == "--live" => {
            check_ops::run(&layout, &Interrupt::install()?, true)?
        }
        ("help" | "-h" | "--help", _) => println!("{USAGE}"),
        _ => bail!("unexpected arguments `{}`\n\n{USAGE}", args.join(" ")),
    }
    Ok(ExitCode::SUCCESS)
}
