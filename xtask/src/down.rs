//! `cargo xtask down`: stop whatever earlier commands left running.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::layout::Layout;
use crate::process;
use crate::{cassandra, fuzz_api, kafka, up};

const GRACE: Duration = Duration::from_secs(30);

pub fn run(layout: &Layout) -> Result<()> {
    // Hookline drains into Kafka and Cassandra, so it stops before them.
    let waves: [&[&str]; 2] = [
        &[up::HOOKLINE, up::RECEIVER, fuzz_api::HOOKLINE],
        &[kafka::SPEC.name, cassandra::SPEC.name],
    ];
    let mut stopped = 0;
    for wave in waves {
        let mut running = Vec::new();
        for &name in wave {
            let pid_file = layout.pid_file(name);
            let Some((pid, marker)) = process::read_pid_file(&pid_file) else {
                continue;
            };
            if process::is_running(pid, &marker) {
                say!("stopping {name} (pid {pid})");
                process::signal(pid, "TERM");
                running.push((name, pid, marker));
            }
            let _ = fs::remove_file(&pid_file);
        }
        let deadline = Instant::now() + GRACE;
        for (name, pid, marker) in running {
            if !process::wait_until(deadline, || !process::is_running(pid, &marker)) {
                say!(
                    "{name} did not stop within {}s, killing it",
                    GRACE.as_secs()
                );
                process::signal(pid, "KILL");
            }
            say!("{name} stopped");
            stopped += 1;
        }
    }
    if stopped == 0 {
        say!("nothing was running");
    }
    Ok(())
}
