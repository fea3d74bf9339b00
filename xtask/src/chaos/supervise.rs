//! What a supervisor would do during a chaos run: start again whatever exits on its own (and
//! log it, since a service that exits is a finding of its own), and after the last fault wait
//! until everything answers again.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::inject::{Injector, TICK};
use super::plan::{Target, ENDPOINTS, SERVICES};
use super::stack::READY_TIMEOUT;
use crate::servers::Spec;
use crate::{cassandra, kafka, process, relaunch};

/// A process that exits on its own is started again at most this often.
pub(super) const RESTART_BACKOFF: Duration = Duration::from_secs(2);

impl Injector<'_> {
    /// Waits until every process answers and every endpoint is healthy: the end of the faults.
    pub fn heal(&self) -> Result<()> {
        for endpoint in 0..ENDPOINTS {
            self.endpoint(endpoint, "ok")?;
        }
        let since = Instant::now();
        loop {
            self.supervise();
            self.check()?;
            let down: Vec<&str> = (0..SERVICES.len())
                .filter(|&index| !self.stack.process(index).ready())
                .map(|index| SERVICES[index])
                .chain(
                    [&kafka::SPEC, &cassandra::SPEC]
                        .into_iter()
                        .filter(|spec| !server_answers(spec))
                        .map(|spec| spec.name),
                )
                .collect();
            if down.is_empty() {
                return Ok(());
            }
            if since.elapsed() > READY_TIMEOUT {
                bail!("not answering after the faults: {}", down.join(", "));
            }
            thread::sleep(TICK);
        }
    }

    /// Starts again each process that exited on its own (the receiver excepted: its records
    /// would be gone, so that breaks the run) and each server that is gone, unless a fault
    /// is working on it.
    pub fn supervise(&self) {
        for index in 0..self.stack.processes.len() {
            // The receiver is never a fault's target; its index only names it here.
            let target = Target::Service(index);
            if self.claim_if_free(target) {
                self.restart_if_exited(index);
                self.release(target);
            }
        }
        for (target, spec) in [
            (Target::Kafka, &kafka::SPEC),
            (Target::Cassandra, &cassandra::SPEC),
        ] {
            if self.claim_if_free(target) {
                if !self.server_running(spec) {
                    self.log
                        .note(format!("{} is gone; starting it again", spec.name));
                    if let Err(err) = relaunch::start(self.layout, spec.name) {
                        self.break_run(format!("{} did not come back: {err:#}", spec.name));
                    }
                }
                self.release(target);
            }
        }
    }

    fn restart_if_exited(&self, index: usize) {
        let mut process = self.stack.process(index);
        let Some(status) = process.exited() else {
            return;
        };
        if index == self.stack.receiver_index() {
            self.break_run(format!(
                "the receiver exited ({status}); its records are gone"
            ));
            return;
        }
        let mut last = self.last_restart.lock().expect("restart times");
        if last
            .get(&index)
            .is_some_and(|at| at.elapsed() < RESTART_BACKOFF)
        {
            return;
        }
        last.insert(index, Instant::now());
        self.log.note(format!(
            "{} exited on its own ({status}); starting it again",
            process.name
        ));
        if let Err(err) = process.start() {
            self.break_run(format!("could not start {}: {err:#}", process.name));
        }
    }

    fn server_running(&self, spec: &Spec) -> bool {
        self.server_pid(spec)
            .is_ok_and(|(pid, marker)| process::is_running(pid, &marker))
    }
}

fn server_answers(spec: &Spec) -> bool {
    process::port_open(spec.addr.parse().expect("server addresses are valid"))
}
