//! Programs from Debian's packages, installed with apt-get on the spot when missing.

use std::env;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use crate::interrupt::Interrupt;
use crate::process;

/// apt-get holds dpkg's lock while it installs: steps that run side by side take turns here
/// rather than fail on the lock.
static APT: Mutex<()> = Mutex::new(());

pub fn on_path(program: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// `program` from PATH, or from Debian's `package` installed now. Without recommends: they
/// add tools these programs do not need here, and only cost time.
pub fn ensure_program(program: &str, package: &str, interrupt: &Interrupt) -> Result<PathBuf> {
    if let Some(path) = on_path(program) {
        return Ok(path);
    }
    let _apt = APT.lock().unwrap_or_else(PoisonError::into_inner);
    // Another step may have installed it while this one waited its turn.
    if let Some(path) = on_path(program) {
        return Ok(path);
    }
    say!("{program} is missing; installing Debian's {package} package");
    let started = Instant::now();
    let install = || {
        process::run(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                // Another apt on the machine (an unattended upgrade, say): wait for it.
                .args(["-o", "DPkg::Lock::Timeout=300", package])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            interrupt,
        )
    };
    if !install()?.success() {
        process::run(Command::new("apt-get").args(["update", "-q"]), interrupt)?;
        ensure!(install()?.success(), "apt-get install {package} failed");
    }
    say!(
        "installed {package} in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    on_path(program)
        .with_context(|| format!("{program} is still not on PATH after installing {package}"))
}
