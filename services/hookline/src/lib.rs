//! Hookline in one process: the four services on one listener, for development and small
//! sites. Production runs each service as its own deployment; the code is the same.

pub mod demo_receiver;
pub mod openapi;

use hookline_delivery::{AddressArgs, SecretKeyArgs};
use hookline_fanout::FanoutArgs;
use hookline_ingest::IngestArgs;
use hookline_kafka::KafkaArgs;
use hookline_ledger::LedgerArgs;
use hookline_runtime::{serve, BoxError, Context, Service};
use hookline_sender::SenderArgs;
use hookline_store::CassandraArgs;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Everything the four services need.
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
}

/// Runs ingest, fanout, sender and ledger on `listener` until `shutdown` fires.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BoxError> {
    let context = Context::new(shutdown);
    let services = start(config, &context).await?;
    serve(listener, services, context).await
}

/// Builds the four services, ready to be served together.
pub async fn start(config: Config, context: &Context) -> Result<Vec<Service>, BoxError> {
    let kafka = config.kafka;
    let ingest = hookline_ingest::Config {
        kafka: kafka.clone(),
        ingest: config.ingest,
        addresses: config.addresses.clone(),
        secret_keys: config.secret_keys.clone(),
    };
    let fanout = hookline_fanout::Config {
        kafka: kafka.clone(),
        fanout: config.fanout,
    };
    let sender = hookline_sender::Config {
        kafka: kafka.clone(),
        sender: config.sender,
        addresses: config.addresses,
        secret_keys: config.secret_keys,
    };
    let ledger = hookline_ledger::Config {
        kafka,
        cassandra: config.cassandra,
        ledger: config.ledger,
    };
    Ok(vec![
        hookline_ledger::start(&ledger, context).await?,
        hookline_ingest::start(&ingest, context).await?,
        hookline_fanout::start(&fanout, context).await?,
        hookline_sender::start(&sender, context).await?,
    ])
}
