//! `cargo xtask down`: stop whatever earlier commands left running.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::layout::Layout;
use crate::process;
use crate::{cassandra, chaos, fuzz_api, kafka, up};

const GRACE: Duration = Duration::from_secs(30);
const SERVERS: [&str; 2] = [kafka::SPEC.name, cassandra::SPEC.name];

pub fn run(layout: &Layout) -> Result<()> {
    // Hookline drains into Kafka and Cassandra, so it stops before them.
    let hookline = [up::HOOKLINE, up::RECEIVER, fuzz_api::HOOKLINE]
        .into_iter()
        .chain(chaos::PROCESS_NAMES)
        .collect::<Vec<_>>();
    let stopped = stop(layout, &hookline) + stop(layout, &SERVERS);
    if stopped == 0 {
        say!("nothing was running");
    }
    Ok(())
}

/// Stops Kafka and Cassandra by their pid files, whoever started them.
pub fn stop_servers(layout: &Layout) {
    stop(layout, &SERVERS);
}

/// Stops the named processes in parallel (SIGTERM, SIGKILL after a grace period); returns how
/// many were running.
fn stop(layout: &Layout, names: &[&str]) -> usize {
    let mut running = Vec::new();
    for &name in names {
        let pid_file = layout.pid_file(name);
        let Some((pid, marker)) = process::read_pid_file(&pid_file) else {
            continue;
        };
        if process::is_running(pid, &marker) {
            say!("stopping {name} (pid {pid})");
            // A stopped process would not handle SIGTERM.
            process::signal(pid, "CONT");
            process::signal(pid, "TERM");
            running.push((name, pid, marker));
        }
        let _ = fs::remove_file(&pid_file);
    }
    let deadline = Instant::now() + GRACE;
    for (name, pid, marker) in &running {
        if !process::wait_until(deadline, || !process::is_running(*pid, marker)) {
            say!(
                "{name} did not stop within {}s, killing it",
                GRACE.as_secs()
            );
            process::signal(*pid, "KILL");
        }
        say!("{name} stopped");
    }
    running.len()
}
