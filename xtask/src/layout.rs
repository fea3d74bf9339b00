//! Where things live: the workspace, runtime state and the jar cache.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

pub struct Layout {
    /// The workspace root, where cargo commands run.
    pub root: PathBuf,
    /// Runtime state (data, logs, configs, pid files): `<root>/target/hookline-local`.
    pub local: PathBuf,
    /// Jars fetched from Maven Central, shared by all checkouts.
    pub cache: PathBuf,
}

impl Layout {
    pub fn discover() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("the xtask crate has no parent directory")?
            .to_path_buf();
        let cache_home = match env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(env::var_os("HOME").context("HOME is not set")?).join(".cache"),
        };
        Ok(Self {
            local: root.join("target").join("hookline-local"),
            cache: cache_home.join("hookline").join("servers"),
            root,
        })
    }

    /// Cargo's target directory, honouring `CARGO_TARGET_DIR`.
    pub fn target_dir(&self) -> PathBuf {
        match env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
            Some(dir) => self.root.join(dir),
            None => self.root.join("target"),
        }
    }

    /// `cargo <args>` in the workspace root, with the cargo that runs xtask.
    pub fn cargo(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command.args(args).current_dir(&self.root);
        command
    }

    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.local.join(format!("{name}.pid"))
    }
}
