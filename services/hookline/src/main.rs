use clap::{Parser, Subcommand};
use hookline_signing::Secret;

/// Hookline: outgoing webhooks, signed, retried and recorded.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest, fanout, sender, ledger and the web console in this one process.
    Serve {
        /// Address of the HTTP API, probes and metrics.
        #[arg(long, env = "HOOKLINE_LISTEN", default_value = "0.0.0.0:8080")]
        listen: String,
        #[command(flatten)]
        config: Box<hookline::Config>,
    },
    /// Run a receiver that verifies signatures and logs every delivery (for trying Hookline).
    DemoReceiver {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
        /// The webhook's signing secret (`whsec_…`).
        #[arg(long, env = "HOOKLINE_DEMO_SECRET", hide_env_values = true)]
        secret: String,
    },
}

#[tokio::main]
async fn main() -> Result<(), hookline_runtime::BoxError> {
    match Cli::parse().command {
        Command::Serve { listen, config } => {
            hookline_runtime::telemetry::run_binary(&listen, *config, hookline::run).await
        }
        Command::DemoReceiver { listen, secret } => {
            let secret = Secret::parse(&secret)?;
            hookline_runtime::telemetry::run_binary(&listen, secret, hookline::demo_receiver::run)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every service's settings share one command line: no two may claim the same name.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
