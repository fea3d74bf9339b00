//! Logs and signals.

use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber: `RUST_LOG` filters (default `info`), and
/// `HOOKLINE_LOG_FORMAT=json` switches to one JSON object per line. Later calls do nothing.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,librdkafka=warn,rdkafka=warn,scylla=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let json = std::env::var("HOOKLINE_LOG_FORMAT").is_ok_and(|format| format == "json");
    // Only the first subscriber installed counts; a second call is not an error.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
            _ = terminate.recv() => tracing::info!("terminated; shutting down"),
        }
        cancel.cancel();
    });
    token
}

/// The body of every service binary: logs, the listener, the signal token, then `run`.
pub async fn run_binary<C, F, Fut>(listen: &str, config: C, run: F) -> Result<(), crate::BoxError>
where
    F: FnOnce(C, tokio::net::TcpListener, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::BoxError>>,
{
    init_tracing();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    run(config, listener, shutdown_on_signal()).await
}
