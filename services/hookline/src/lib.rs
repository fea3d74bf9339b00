//! Hookline in one process: the four services and the web console on one listener, for
//! development and small sites. Production runs each service as its own deployment; the code
//! is the same.

pub mod demo_receiver;
pub mod openapi;

use std::net::SocketAddr;

use hookline_console::ConsoleArgs;
use hookline_delivery::{AddressArgs, SecretKeyArgs};
use hookline_fanout::FanoutArgs;
use hookline_ingest::IngestArgs;
use hookline_kafka::KafkaArgs;
use hookline_ledger::LedgerArgs;
use hookline_runtime::{serve, BoxError, Context, Service, StartupArgs};
use hookline_sender::SenderArgs;
use hookline_store::CassandraArgs;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Everything the four services and the console need.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub cassandra: CassandraArgs,
    #[command(flatten)]
    pub ingest: IngestArgs,
    #[command(flatten)]
    pub fanout: FanoutArgs,
    #[command(flatten)]
    pub sender: SenderArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    #[command(flatten)]
    pub addresses: AddressArgs,
    #[command(flatten)]
    pub secret_keys: SecretKeyArgs,
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(flatten)]
    pub startup: StartupArgs,
}

/// Runs ingest, fanout, sender, ledger and the console on `listener` until `shutdown` fires.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BoxError> {
    let context = Context::new(shutdown);
    let (listen, startup) = (listener.local_addr()?, config.startup.clone());
    serve(
        listener,
        &context,
        &startup,
        start(config, listen, &context),
    )
    .await
}

/// Builds the four services and the console, ready to be served together on `listen`, which
/// the console calls for the API unless `HOOKLINE_CONSOLE_API_URL` names another address. Each
/// service waits for Kafka (and the ledger for its database) as long as it takes.
pub async fn start(
    config: Config,
    listen: SocketAddr,
    context: &Context,
) -> Result<Vec<Service>, BoxError> {
    let console = hookline_console::Config {
        api_url: config
            .console
            .api_url
            .unwrap_or_else(|| own_base_url(listen)),
        insecure_cookies: config.console.insecure_cookies,
        session_hours: config.console.session_hours,
    };
    let kafka = config.kafka;
    let startup = config.startup;
    let ingest = hookline_ingest::Config {
        kafka: kafka.clone(),
        ingest: config.ingest,
        addresses: config.addresses.clone(),
        secret_keys: config.secret_keys.clone(),
        startup: startup.clone(),
    };
    let fanout = hookline_fanout::Config {
        kafka: kafka.clone(),
        fanout: config.fanout,
        startup: startup.clone(),
    };
    let sender = hookline_sender::Config {
        kafka: kafka.clone(),
        sender: config.sender,
        addresses: config.addresses,
        secret_keys: config.secret_keys,
        startup: startup.clone(),
    };
    let ledger = hookline_ledger::Config {
        kafka,
        cassandra: config.cassandra,
        ledger: config.ledger,
        startup,
    };
    Ok(vec![
        hookline_ledger::start(&ledger, context).await?,
        hookline_ingest::start(&ingest, context).await?,
        hookline_fanout::start(&fanout, context).await?,
        hookline_sender::start(&sender, context).await?,
        hookline_console::start(&console),
    ])
}

/// The URL at which this process reaches its own listener: a wildcard address is reached on
/// loopback.
fn own_base_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

#[cfg(test)]
mod tests {
    use super::own_base_url;

    #[test]
    fn the_console_reaches_a_wildcard_listener_on_loopback() {
        assert_eq!(
            own_base_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            own_base_url("[::]:8080".parse().unwrap()),
            "http://[::1]:8080"
        );
        assert_eq!(
            own_base_url("10.0.0.5:80".parse().unwrap()),
            "http://10.0.0.5:80"
        );
    }
}
