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
    let outcome = run(config, listener, shutdown_on_signal()).await;
    if let Err(error) = &outcome {
        tracing::error!(error = %chain(error.as_ref()), "exiting");
    }
    outcome
}

/// An error shown with its sources, as [`chain`] writes them: retry warnings name the cause
/// (`kafka client error: Metadata fetch error: NotLeaderForPartition …`), not only the outermost
/// error.
pub(crate) struct WithSources<E>(pub E);

impl<E: std::error::Error + 'static> std::fmt::Display for WithSources<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&chain(&self.0))
    }
}

/// An error and its sources, outermost first: `a: b: c`. A source whose text the error before
/// it already ends with (an error that shows its cause itself) is not repeated.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StartupError;

    #[test]
    fn an_exit_names_every_cause() {
        let error = StartupError::Refused {
            service: "ledger",
            step: "ledger database",
            source: "authentication failed".into(),
        };
        assert_eq!(
            chain(&error),
            "ledger cannot start: ledger database failed and retrying cannot fix it: authentication failed"
        );
    }

    #[test]
    fn a_cause_the_error_already_shows_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("not leader for partition")]
        struct Broker;
        #[derive(Debug, thiserror::Error)]
        #[error("kafka: {0}")]
        struct Kafka(#[source] Broker);
        let error = StartupError::Refused {
            service: "ingest",
            step: "kafka topics",
            source: Box::new(Kafka(Broker)),
        };
        assert_eq!(
            chain(&error),
            "ingest cannot start: kafka topics failed and retrying cannot fix it: kafka: not leader for partition"
        );
    }
}
