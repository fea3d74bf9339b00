//! The Python driver (`driver.py`): it sets up the tenant and webhooks, publishes, and once the
//! faults are healed waits for the pipeline to settle and checks what arrived. It tells xtask
//! that publishing has started with a marker file, and xtask tells it the faults are over with
//! a line on its stdin.

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use super::plan::ENDPOINTS;
use crate::interrupt::Interrupt;
use crate::process;

const MARKER: &str = "publishing";
/// Setting up a tenant and webhooks on freshly started services.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

/// What the driver is given.
pub struct Settings<'a> {
    pub ingest_port: u16,
    pub ledger_port: u16,
    pub receiver_port: u16,
    pub admin_token: &'a str,
    pub publish_secs: f64,
    pub seed: u64,
    pub settle_secs: u64,
    /// The command that replays this run's faults, for the report.
    pub replay: String,
}

pub struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    marker: PathBuf,
}

impl Driver {
    pub fn spawn(python: &Path, script: &Path, work: &Path, settings: &Settings) -> Result<Self> {
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let marker = work.join(MARKER);
        let _ = fs::remove_file(&marker);
        let mut child = Command::new(python)
            .arg(script)
            .env("CHAOS_WORK", work)
            .env("CHAOS_INGEST", url(settings.ingest_port))
            .env("CHAOS_LEDGER", url(settings.ledger_port))
            .env("CHAOS_RECEIVER", url(settings.receiver_port))
            .env("CHAOS_ADMIN_TOKEN", settings.admin_token)
            .env("CHAOS_PUBLISH_SECS", settings.publish_secs.to_string())
            .env("CHAOS_SEED", settings.seed.to_string())
            .env("CHAOS_SETTLE_SECS", settings.settle_secs.to_string())
            .env("CHAOS_REPLAY", &settings.replay)
            .env("CHAOS_ENDPOINTS", ENDPOINTS.to_string())
            // Unbuffered, so its progress interleaves with the fault log.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            // Its own process group: a ctrl-c reaches xtask, which ends it in order.
            .process_group(0)
            .spawn()
            .context("could not start the chaos driver")?;
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            marker,
        })
    }

    /// Waits until the driver has set up its webhooks and starts publishing.
    pub fn wait_publishing(&mut self, interrupt: &Interrupt) -> Result<Instant> {
        let since = Instant::now();
        loop {
            if self.marker.exists() {
                return Ok(Instant::now());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the chaos driver exited ({status}) before it published");
            }
            if interrupt.is_set() || since.elapsed() > SETUP_TIMEOUT {
                self.stop();
                bail!("the chaos driver did not start publishing");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Tells the driver the faults are over, how many there were, and until when (Unix
    /// seconds) deliveries may still be held back without being lost: it settles once it has
    /// published.
    pub fn healed(&mut self, faults: usize, holdback_until: SystemTime) -> Result<()> {
        let mut stdin = self
            .stdin
            .take()
            .context("the driver was told once already")?;
        let until = holdback_until.duration_since(UNIX_EPOCH)?.as_secs_f64();
        writeln!(stdin, "healed {faults} {until:.3}").context("the chaos driver is gone")
    }

    /// Its exit status if it has ended.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// SIGTERM, then SIGKILL after a few seconds.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            process::signal(self.child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            if !process::wait_until(deadline, || self.child.try_wait().ok().flatten().is_some()) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}
