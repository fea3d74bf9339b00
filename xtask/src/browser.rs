//! What the console's browser tests need (`services/hookline/tests/it/console_browser.rs`):
//! Debian's Chromium, and `playwright-core` from npm in the suite's folder.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{ensure, Context, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::{debian, process};

/// The Node suite, beside the integration test that starts it.
const SUITE: &str = "services/hookline/tests/console-browser";

/// Installs what is missing and returns the path of Chromium.
pub fn prepare(layout: &Layout, interrupt: &Interrupt) -> Result<PathBuf> {
    let chromium = debian::ensure_program("chromium", "chromium", interrupt)?;
    install_packages(layout, interrupt)?;
    Ok(chromium)
}

/// `npm ci` when `node_modules` is missing or was installed from another lockfile (the one
/// installed is kept beside the packages); packages come from npm's cache when it has them.
fn install_packages(layout: &Layout, interrupt: &Interrupt) -> Result<()> {
    let suite = layout.root.join(SUITE);
    let lockfile = fs::read(suite.join("package-lock.json"))
        .with_context(|| format!("could not read {SUITE}/package-lock.json"))?;
    let installed = suite
        .join("node_modules")
        .join(".hookline-package-lock.json");
    if fs::read(&installed).is_ok_and(|installed| installed == lockfile) {
        return Ok(());
    }
    let status = process::run(
        Command::new("npm")
            .args(["ci", "--prefer-offline", "--no-audit", "--no-fund"])
            .current_dir(&suite),
        interrupt,
    )?;
    ensure!(status.success(), "npm ci in {SUITE} failed ({status})");
    fs::write(&installed, lockfile).context("could not record the installed lockfile")
}
