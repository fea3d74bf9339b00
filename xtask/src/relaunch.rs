//! `cargo xtask server stop|kill|start <name>`: stops (or kills) a running server and starts it again from the
//! command line saved when it was first started, keeping its data. Fault tests use it to take
//! Kafka or Cassandra away mid-run and bring it back.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::layout::Layout;
use crate::process;
use crate::servers::{Spec, ALL};

const COMMAND_FILE: &str = "command.txt";
const STOP_GRACE: Duration = Duration::from_secs(30);
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Saves `command` next to a server's data so it can be started again later.
pub fn save(dir: &Path, command: &Command) -> Result<()> {
    let mut lines = Vec::new();
    if let Some(cwd) = command.get_current_dir() {
        lines.push(format!("CWD {}", cwd.display()));
    }
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            lines.push(format!(
                "ENV {}={}",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    lines.push(format!("ARG {}", command.get_program().to_string_lossy()));
    for arg in command.get_args() {
        lines.push(format!("ARG {}", arg.to_string_lossy()));
    }
    fs::write(dir.join(COMMAND_FILE), lines.join("\n") + "\n")
        .context("could not save the server command")
}

fn load(dir: &Path) -> Result<Command> {
    let path = dir.join(COMMAND_FILE);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is missing: start the servers with cargo xtask first",
            path.display()
        )
    })?;
    let mut program = None;
    let mut command = None::<Command>;
    let (mut envs, mut cwd) = (Vec::new(), None);
    for line in text.lines() {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "CWD" => cwd = Some(rest.to_owned()),
            "ENV" => envs.push(
                rest.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
            ),
            "ARG" if program.is_none() => {
                program = Some(rest.to_owned());
                command = Some(Command::new(rest));
            }
            "ARG" => {
                command.as_mut().expect("program comes first").arg(rest);
            }
            _ => bail!("unexpected line in {}: {line}", path.display()),
        }
    }
    let mut command = command.ok_or_else(|| anyhow!("{} names no program", path.display()))?;
    for (key, value) in envs.into_iter().flatten() {
        command.env(key, value);
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    Ok(command)
}

fn spec(name: &str) -> Result<&'static Spec> {
    ALL.into_iter()
        .find(|spec| spec.name == name)
        .ok_or_else(|| anyhow!("no server named {name} (kafka or cassandra)"))
}

/// Stops the named server (SIGTERM, then SIGKILL after a grace period), keeping its data.
pub fn stop(layout: &Layout, name: &str) -> Result<()> {
    let spec = spec(name)?;
    let (pid, marker) = process::read_pid_file(&layout.pid_file(spec.name))
        .ok_or_else(|| anyhow!("{name} has no pid file: is it running?"))?;
    if !process::is_running(pid, &marker) {
        bail!("{name} (pid {pid}) is not running");
    }
    process::signal(pid, "TERM");
    let deadline = Instant::now() + STOP_GRACE;
    if !process::wait_until(deadline, || !process::is_running(pid, &marker)) {
        process::signal(pid, "KILL");
    }
    say!("{name} stopped");
    Ok(())
}

/// Kills the named server at once (SIGKILL, as a crash or an OOM kill would), keeping its data.
pub fn kill(layout: &Layout, name: &str) -> Result<()> {
    let spec = spec(name)?;
    let (pid, marker) = process::read_pid_file(&layout.pid_file(spec.name))
        .ok_or_else(|| anyhow!("{name} has no pid file: is it running?"))?;
    if !process::is_running(pid, &marker) {
        bail!("{name} (pid {pid}) is not running");
    }
    process::signal(pid, "KILL");
    if !process::wait_until(Instant::now() + STOP_GRACE, || {
        !process::is_running(pid, &marker)
    }) {
        bail!("{name} (pid {pid}) survived SIGKILL");
    }
    say!("{name} killed");
    Ok(())
}

/// Starts the named server again with its saved command and waits until it is ready.
pub fn start(layout: &Layout, name: &str) -> Result<()> {
    let spec = spec(name)?;
    let dir = layout.local.join(spec.name);
    let mut command = load(&dir)?;
    let log = dir.join(format!("{}.log", spec.name));
    let logged_before = fs::metadata(&log).map(|m| m.len() as usize).unwrap_or(0);
    let out = OpenOptions::new().append(true).create(true).open(&log)?;
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .spawn()
        .with_context(|| format!("could not start {name}"))?;
    fs::write(
        layout.pid_file(spec.name),
        format!("{}\n{}\n", child.id(), spec.marker),
    )?;
    let started = Instant::now();
    let addr = spec.addr.parse().expect("server addresses are valid");
    let ready = process::wait_until(started + READY_TIMEOUT, || {
        process::port_open(addr)
            && fs::read(&log).is_ok_and(|text| {
                String::from_utf8_lossy(&text[logged_before.min(text.len())..])
                    .contains(spec.ready_line)
            })
    });
    if !ready {
        bail!("{name} did not come back\n{}", process::log_tail(&log, 40));
    }
    say!(
        "{name} ready again in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
