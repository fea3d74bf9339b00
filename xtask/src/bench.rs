//! `cargo xtask bench`: the benchmark harness against local servers, in release mode.

use anyhow::{bail, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::servers::Servers;
use crate::{cassandra, kafka, process};

pub fn run(layout: &Layout, interrupt: &Interrupt, extra: &[String]) -> Result<()> {
    let mut servers = Servers::launch(layout)?;
    let outcome = bench(layout, interrupt, extra, &mut servers);
    servers.stop();
    outcome
}

fn bench(
    layout: &Layout,
    interrupt: &Interrupt,
    extra: &[String],
    servers: &mut Servers,
) -> Result<()> {
    let build = [
        "build",
        "--release",
        "-p",
        "hookline",
        "-p",
        "hookline-bench",
    ];
    if !process::run(&mut layout.cargo(&build), interrupt)?.success() {
        bail!("the release build failed");
    }
    servers.wait_ready(interrupt)?;
    let release = layout.target_dir().join("release");
    let mut command = std::process::Command::new(release.join("hookline-bench"));
    command
        .arg("--hookline")
        .arg(release.join("hookline"))
        .args([
            "--kafka",
            kafka::SPEC.addr,
            "--cassandra",
            cassandra::SPEC.addr,
        ])
        .args(extra);
    if !process::run(&mut command, interrupt)?.success() {
        bail!("the benchmark failed");
    }
    Ok(())
}
