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
    /// Copy what the ledger's first table layout holds into the current tables (once, after
    /// upgrading a keyspace written before it; safe to repeat, and to run while Hookline runs).
    Migrate {
        #[command(flatten)]
        cassandra: hookline_store::CassandraArgs,
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
        Command::Migrate { cassandra } => {
            hookline_runtime::telemetry::init_tracing();
            let ledger = hookline_store::Ledger::connect(&cassandra).await?;
            if !ledger.has_first_layout().await? {
                println!("keyspace {}: nothing to migrate", cassandra.keyspace);
                return Ok(());
            }
            let migrated = ledger
                .migrate_first_layout(|so_far| {
                    tracing::info!(
                        attempts = so_far.attempts,
                        deliveries = so_far.deliveries,
                        "copying the first layout's rows"
                    );
                })
                .await?;
            println!(
                "keyspace {}: copied {} attempt rows and {} deliveries; the first layout's \
                 tables (attempts_by_delivery, attempts_by_webhook, deliveries, \
                 deliveries_by_webhook, deliveries_by_tenant) can be dropped",
                cassandra.keyspace, migrated.attempts, migrated.deliveries
            );
            Ok(())
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
