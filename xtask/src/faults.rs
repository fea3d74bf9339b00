//! `cargo xtask faults`: the fault tests that take Kafka or Cassandra away: mid-run (the
//! sender's), across control-plane writes and before a service starts (ingest's), and before
//! the whole of Hookline starts (hookline's). They run on servers of their own, because they
//! stop and start them.

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::servers::{Servers, ALL};
use crate::{cassandra, down, kafka, process, python};

pub fn run(layout: &Layout, interrupt: &Interrupt) -> Result<ExitCode> {
    if ALL
        .iter()
        .any(|spec| process::port_open(spec.addr.parse().expect("valid address")))
    {
        bail!("kafka or cassandra is already running; the fault tests restart them, so stop them first (cargo xtask down)");
    }
    let python = python::ensure_venv(layout, interrupt)?;
    let mut servers = Servers::launch(layout)?;
    servers.wait_ready(interrupt)?;
    // The tests restart the servers, so this process no longer owns the ones running at the
    // end: `down` stops them by their pid files.
    std::mem::forget(servers);
    // Every ignored test of these binaries is a fault test; one at a time, since each stops and
    // starts the servers the others use.
    let mut test = layout.cargo(&[
        "test",
        "--no-fail-fast",
        "-p",
        "hookline-sender",
        "-p",
        "hookline-ingest",
        "-p",
        "hookline",
        "--test",
        "it",
        "--",
        "--ignored",
        "--test-threads=1",
    ]);
    test.env("HOOKLINE_TEST_KAFKA", kafka::SPEC.addr)
        .env("HOOKLINE_TEST_CASSANDRA", cassandra::SPEC.addr)
        .env("HOOKLINE_TEST_PYTHON", &python)
        .env("HOOKLINE_TEST_XTASK", std::env::current_exe()?);
    let status = process::run(&mut test, interrupt);
    down::run(layout)?;
    Ok(if status?.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
