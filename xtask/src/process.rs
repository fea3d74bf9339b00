//! Child processes: spawning, pid files, signals and log tails.

use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::interrupt::Interrupt;

const POLL: Duration = Duration::from_millis(200);

/// A long-running child in its own process group (so a ctrl-c in the
/// terminal reaches only xtask, which then stops it in order), recorded in a
/// pid file so `cargo xtask down` can find it. Dropping it stops it.
pub struct Managed {
    pub name: &'static str,
    child: Child,
    pid_file: PathBuf,
    terminated: Option<Instant>,
    stopped: bool,
}

impl Managed {
    /// `marker` is a string of the command line that `down` checks before
    /// signalling the recorded pid, so a reused pid is never touched.
    pub fn spawn(
        name: &'static str,
        marker: &str,
        command: &mut Command,
        pid_file: PathBuf,
    ) -> Result<Self> {
        command.process_group(0).stdin(Stdio::null());
        let child = spawn(command).with_context(|| format!("could not start {name}"))?;
        fs::write(&pid_file, format!("{}\n{marker}\n", child.id()))
            .with_context(|| format!("could not write {}", pid_file.display()))?;
        Ok(Self {
            name,
            child,
            pid_file,
            terminated: None,
            stopped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        // An error here means the child was already reaped: treat it as gone.
        self.child
            .try_wait()
            .unwrap_or_else(|_| Some(ExitStatus::default()))
    }

    /// Sends SIGTERM without waiting, so several processes can stop in parallel.
    pub fn terminate(&mut self) {
        if self.exited().is_none() {
            signal(self.pid(), "TERM");
        }
        self.terminated.get_or_insert_with(Instant::now);
    }

    /// Waits for the process to end, killing it at `deadline`; removes its pid file.
    pub fn wait(&mut self, deadline: Instant) {
        if !wait_until(deadline, || self.exited().is_some()) {
            say!("{} did not stop in time, killing it", self.name);
            // Ignored: failing means it has just exited on its own.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_file(&self.pid_file);
        self.stopped = true;
        let took = self.terminated.map(|at| at.elapsed()).unwrap_or_default();
        say!("{} stopped ({:.1}s)", self.name, took.as_secs_f64());
    }

    /// SIGKILL at once, as a crash would end it (fault injection), and reaps it quietly.
    pub fn kill(&mut self) {
        // Ignored: failing means it has already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.pid_file);
        self.stopped = true;
    }

    pub fn stop(&mut self, grace: Duration) {
        self.terminate();
        self.wait(Instant::now() + grace);
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop(Duration::from_secs(30));
        }
    }
}

/// Spawns `command`, explaining a missing program.
fn spawn(command: &mut Command) -> Result<Child> {
    command.spawn().map_err(|err| {
        let program = command.get_program().to_string_lossy().into_owned();
        if err.kind() == ErrorKind::NotFound {
            anyhow!("`{program}` was not found; is it installed and on PATH?")
        } else {
            anyhow!(err).context(format!("could not run `{program}`"))
        }
    })
}

/// Runs `command` to completion in the foreground, printing its command line.
/// A signal that reaches only xtask (not the terminal's process group) is
/// passed on as SIGTERM.
pub fn run(command: &mut Command, interrupt: &Interrupt) -> Result<ExitStatus> {
    say!("$ {}", display(command));
    let mut child = spawn(command)?;
    let mut forwarded = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if interrupt.is_set() && !forwarded {
            signal(child.id(), "TERM");
            forwarded = true;
        }
        thread::sleep(POLL);
    }
}

/// Runs a short command and returns its stdout, or an error with its output.
pub fn output(command: &mut Command) -> Result<String> {
    let out = spawn(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )?
    .wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!(
            "`{}` failed ({}):\n{}{}",
            display(command),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn display(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends a signal with kill(1); returns whether it was delivered.
pub fn signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether `pid` is a live process whose command line contains `marker`.
pub fn is_running(pid: u32, marker: &str) -> bool {
    Command::new("ps")
        .args(["-o", "args=", "-p", &pid.to_string()])
        .output()
        .is_ok_and(|out| {
            let args = String::from_utf8_lossy(&out.stdout);
            !args.trim().is_empty() && args.contains(marker)
        })
}

/// Reads a pid file written by [`Managed::spawn`]: the pid and its marker.
pub fn read_pid_file(path: &Path) -> Option<(u32, String)> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    Some((pid, lines.next().unwrap_or_default().to_owned()))
}

/// Polls `done` until it returns true (→ true) or `deadline` passes (→ false).
pub fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

pub fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// The last `lines` lines of a log file, for error messages. Java stack
/// frames are left out so the exception messages fit.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let messages: Vec<&str> = text
                .lines()
                .filter(|line| !line.starts_with("\tat ") && !line.starts_with("\t..."))
                .collect();
            let tail = messages[messages.len().saturating_sub(lines)..].join("\n");
            format!(
                "last lines of {} (without stack frames):\n{tail}",
                path.display()
            )
        }
        Err(err) => format!("(could not read {}: {err})", path.display()),
    }
}
