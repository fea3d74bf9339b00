//! Runs a fault plan against the servers, the services and the receiver's endpoints: one thread
//! per fault, so faults overlap when the plan has them close together; a fault on a target that
//! is still busy with an earlier one waits for it. Between faults it keeps every process alive
//! (`supervise.rs`).

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};

use super::log::FaultLog;
use super::plan::{Action, Fault, Target, SERVICES};
use super::stack::{Stack, READY_TIMEOUT};
use super::supervise::RESTART_BACKOFF;
use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::servers::Spec;
use crate::{cassandra, kafka, process, relaunch};

/// How often the supervisor looks at the processes.
pub(super) const TICK: Duration = Duration::from_millis(500);
/// How long the open transaction of a killed fanout may hold back the delivery tasks after it
/// on the same partitions: fanout's transactional id is new in each process, so nothing fences
/// the dead one's transaction and read_committed senders wait for its timeout (60 s).
const FANOUT_TRANSACTION_HOLD: Duration = Duration::from_secs(70);

pub struct Injector<'a> {
    pub(super) layout: &'a Layout,
    pub(super) stack: &'a Stack,
    pub(super) log: &'a FaultLog,
    interrupt: &'a Interrupt,
    /// How long a hanging endpoint holds each request: past the sender's timeout.
    hold_secs: u64,
    busy: Mutex<HashSet<Target>>,
    pub(super) last_restart: Mutex<HashMap<usize, Instant>>,
    injected: AtomicUsize,
    /// Until when a killed fanout's transaction may hold deliveries back.
    holdback_until: Mutex<SystemTime>,
    /// Why the run cannot be trusted any more (a process that did not come back).
    broken: Mutex<Option<String>>,
}

impl<'a> Injector<'a> {
    pub fn new(
        layout: &'a Layout,
        stack: &'a Stack,
        log: &'a FaultLog,
        interrupt: &'a Interrupt,
        hold_secs: u64,
    ) -> Self {
        Self {
            layout,
            stack,
            log,
            interrupt,
            hold_secs,
            busy: Mutex::default(),
            last_restart: Mutex::default(),
            injected: AtomicUsize::new(0),
            holdback_until: Mutex::new(UNIX_EPOCH),
            broken: Mutex::default(),
        }
    }

    /// Faults injected so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// Until when deliveries may still be held back by the faults without being lost.
    pub fn holdback_until(&self) -> SystemTime {
        *self.holdback_until.lock().expect("holdback")
    }

    /// Injects every fault of `plan` at its time after `started` (interrupted: no more), and
    /// returns once each has been healed.
    pub fn run(&self, plan: &[Fault], started: Instant) -> Result<()> {
        thread::scope(|scope| {
            let mut in_flight = Vec::new();
            let mut next = 0;
            loop {
                let stopping = self.interrupt.is_set() || self.is_broken();
                while !stopping && next < plan.len() && started.elapsed() >= plan[next].at {
                    let fault = plan[next];
                    in_flight.push(scope.spawn(move || self.inject(fault)));
                    next += 1;
                }
                in_flight.retain(|fault| !fault.is_finished());
                if (stopping || next == plan.len()) && in_flight.is_empty() {
                    break;
                }
                self.supervise();
                thread::sleep(TICK);
            }
        });
        self.check()
    }

    fn inject(&self, fault: Fault) {
        let waited = self.claim(fault.target);
        // It may have waited for the target past an interrupt or a broken run.
        if self.interrupt.is_set() || self.is_broken() {
            self.release(fault.target);
            return;
        }
        if waited > Duration::from_secs(1) {
            self.log.note(format!(
                "{} was busy with an earlier fault for {:.1}s",
                fault.target,
                waited.as_secs_f64()
            ));
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        if let Err(err) = self.apply(fault) {
            self.break_run(format!("{}: {err:#}", fault.target));
        }
        self.release(fault.target);
    }

    fn apply(&self, fault: Fault) -> Result<()> {
        let target = fault.target;
        match (target, fault.action) {
            (Target::Endpoint(index), Action::Fail { for_ } | Action::Hang { for_ }) => {
                let failing = matches!(fault.action, Action::Fail { .. });
                let mode = if failing { "fail" } else { "hang" };
                self.endpoint(index, mode)?;
                self.log.note(if failing {
                    format!("{target} answers 500")
                } else {
                    format!("{target} hangs ({}s per request)", self.hold_secs)
                });
                thread::sleep(for_);
                self.endpoint(index, "ok")?;
                self.log.note(format!("{target} healthy again"));
            }
            (Target::Kafka | Target::Cassandra, Action::Kill { down }) => {
                let spec = spec(target);
                let (pid, marker) = self.server_pid(spec)?;
                process::signal(pid, "KILL");
                let gone = process::wait_until(Instant::now() + Duration::from_secs(10), || {
                    !process::is_running(pid, &marker)
                });
                ensure_gone(gone, spec.name, pid)?;
                self.log.note(format!("kill -9 {target} (pid {pid})"));
                let killed = Instant::now();
                thread::sleep(down);
                self.log.note(format!("starting {target} again"));
                relaunch::start(self.layout, spec.name)?;
                self.log.note(format!(
                    "{target} ready again, {:.1}s after the kill",
                    killed.elapsed().as_secs_f64()
                ));
            }
            (Target::Kafka | Target::Cassandra, Action::Stall { for_ }) => {
                let (pid, _) = self.server_pid(spec(target))?;
                self.stall(target, pid, for_);
            }
            (Target::Service(index), Action::Kill { down }) => {
                let pid = {
                    let mut process = self.stack.process(index);
                    let pid = process.pid();
                    process.kill();
                    pid
                };
                if SERVICES[index] == "fanout" {
                    let until = SystemTime::now() + FANOUT_TRANSACTION_HOLD;
                    let mut holdback = self.holdback_until.lock().expect("holdback");
                    *holdback = (*holdback).max(until);
                }
                self.log.note(format!(
                    "kill -9 {target} (pid {})",
                    pid.map_or("-".into(), |pid| pid.to_string())
                ));
                let killed = Instant::now();
                thread::sleep(down);
                self.start_service(index)?;
                self.log.note(format!(
                    "{target} ready again, {:.1}s after the kill",
                    killed.elapsed().as_secs_f64()
                ));
            }
            (Target::Service(index), Action::Stall { for_ }) => {
                let pid = self.stack.process(index).pid();
                let pid = pid.ok_or_else(|| anyhow!("{target} is not running"))?;
                self.stall(target, pid, for_);
            }
            (target, action) => bail!("the plan cannot {action:?} {target}"),
        }
        Ok(())
    }

    /// SIGSTOP, and SIGCONT after `for_`.
    fn stall(&self, target: Target, pid: u32, for_: Duration) {
        process::signal(pid, "STOP");
        self.log.note(format!("SIGSTOP {target} (pid {pid})"));
        thread::sleep(for_);
        process::signal(pid, "CONT");
        self.log.note(format!("SIGCONT {target} (pid {pid})"));
    }

    /// Starts a killed service and waits until it is ready, starting it again each time it
    /// exits first (it may, while Kafka is away).
    fn start_service(&self, index: usize) -> Result<()> {
        let since = Instant::now();
        self.stack.process(index).start()?;
        loop {
            let mut process = self.stack.process(index);
            if let Some(status) = process.exited() {
                self.log.note(format!(
                    "{} exited while starting ({status}); starting it again",
                    SERVICES[index]
                ));
                drop(process);
                thread::sleep(RESTART_BACKOFF);
                self.stack.process(index).start()?;
                continue;
            }
            if process.ready() {
                return Ok(());
            }
            if since.elapsed() > READY_TIMEOUT {
                bail!("not ready {READY_TIMEOUT:?} after its start");
            }
            drop(process);
            thread::sleep(Duration::from_millis(300));
        }
    }

    /// Sets how the receiver answers at an endpoint's path: `ok`, `fail` or `hang`.
    pub(super) fn endpoint(&self, index: usize, mode: &str) -> Result<()> {
        let body = format!(
            r#"{{"path":"/w{index}","mode":"{mode}","hold_secs":{}}}"#,
            self.hold_secs
        );
        let url = format!("http://127.0.0.1:{}/_fault", self.stack.receiver_port());
        process::output(
            Command::new("curl")
                .args(["-fsS", "--max-time", "5", "-X", "POST", "-d", &body, &url])
                .stdin(Stdio::null()),
        )
        .map(drop)
    }

    pub(super) fn server_pid(&self, spec: &Spec) -> Result<(u32, String)> {
        process::read_pid_file(&self.layout.pid_file(spec.name))
            .ok_or_else(|| anyhow!("{} has no pid file", spec.name))
    }

    /// Waits until no other fault holds `target`, takes it, and says how long that took.
    fn claim(&self, target: Target) -> Duration {
        let since = Instant::now();
        while !self.claim_if_free(target) {
            thread::sleep(Duration::from_millis(100));
        }
        since.elapsed()
    }

    pub(super) fn claim_if_free(&self, target: Target) -> bool {
        self.busy.lock().expect("busy set").insert(target)
    }

    pub(super) fn release(&self, target: Target) {
        self.busy.lock().expect("busy set").remove(&target);
    }

    fn is_broken(&self) -> bool {
        self.broken.lock().expect("broken flag").is_some()
    }

    pub(super) fn break_run(&self, why: String) {
        let mut broken = self.broken.lock().expect("broken flag");
        if broken.is_none() {
            self.log.note(format!("cannot go on: {why}"));
            *broken = Some(why);
        }
    }

    /// Fails once something did not recover: what follows would measure the harness.
    pub fn check(&self) -> Result<()> {
        match &*self.broken.lock().expect("broken flag") {
            Some(why) => bail!("the run is broken: {why}"),
            None => Ok(()),
        }
    }
}

fn spec(target: Target) -> &'static Spec {
    match target {
        Target::Kafka => &kafka::SPEC,
        _ => &cassandra::SPEC,
    }
}

fn ensure_gone(gone: bool, name: &str, pid: u32) -> Result<()> {
    if !gone {
        bail!("{name} (pid {pid}) still runs 10s after SIGKILL");
    }
    Ok(())
}
