//! The fault log: every fault and every recovery as it happens.

use std::fmt::Display;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};

/// Every fault and every recovery, with its time since publishing started, to stdout and a file.
pub struct FaultLog {
    started: Instant,
    file: Mutex<File>,
}

impl FaultLog {
    pub fn create(path: &Path, started: Instant) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("could not create {}", path.display()))?;
        Ok(Self {
            started,
            file: Mutex::new(file),
        })
    }

    pub fn note(&self, text: impl Display) {
        let line = format!("t+{:6.1}s  {text}", self.started.elapsed().as_secs_f64());
        say!("chaos {line}");
        if let Ok(mut file) = self.file.lock() {
            // The log is a report; a write that fails must not stop the run.
            let _ = writeln!(file, "{line}");
        }
    }
}
