use clap::Parser;

/// Hookline ingest: the public write API.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address of the HTTP endpoints (API, probes, metrics).
    #[arg(long, env = "HOOKLINE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: String,
    #[command(flatten)]
    config: hookline_ingest::Config,
}

#[tokio::main]
async fn main() -> Result<(), hookline_runtime::BoxError> {
    let cli = Cli::parse();
    hookline_runtime::telemetry::run_binary(&cli.listen, cli.config, hookline_ingest::run).await
}
