//! Ctrl-C and SIGTERM handling: the first signal asks for a clean shutdown,
//! a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn install() -> Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = Arc::clone(&flag);
        ctrlc::set_handler(move || {
            if handler_flag.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "[xtask] interrupted twice, exiting now; `cargo xtask down` stops leftovers"
                );
                std::process::exit(130);
            }
            eprintln!("[xtask] interrupted, shutting down (interrupt again to exit at once)");
        })
        .context("could not install the ctrl-c handler")?;
        Ok(Self(flag))
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
