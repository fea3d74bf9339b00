//! The Python virtualenv the webhook signature interop tests run against.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::process;

const REQUIREMENT: &str = "standardwebhooks==1.1.0";

/// Creates `target/hookline-local/venv` once and returns its interpreter.
pub fn ensure_venv(layout: &Layout, interrupt: &Interrupt) -> Result<PathBuf> {
    ensure_named_venv(layout, interrupt, "venv", &[REQUIREMENT])
}

/// Creates `target/hookline-local/<name>` with `requirements` once (again when they change)
/// and returns its interpreter.
pub fn ensure_named_venv(
    layout: &Layout,
    interrupt: &Interrupt,
    name: &str,
    requirements: &[&str],
) -> Result<PathBuf> {
    let venv = layout.local.join(name);
    let python = venv.join("bin").join("python");
    let marker = venv.join(".hookline-requirements");
    let wanted = requirements.join(" ");
    if fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted) {
        return Ok(python);
    }
    if venv.exists() {
        fs::remove_dir_all(&venv)
            .with_context(|| format!("could not remove {}", venv.display()))?;
    }
    let created = process::run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        interrupt,
    )?;
    anyhow::ensure!(created.success(), "python3 -m venv failed ({created})");
    let installed = process::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q"])
            .args(requirements),
        interrupt,
    )?;
    anyhow::ensure!(
        installed.success(),
        "pip install {wanted} failed ({installed})"
    );
    fs::write(&marker, wanted).context("could not write the venv marker")?;
    Ok(python)
}
