/// How to reach the ledger's database and lay out its keyspace.
#[derive(Debug, Clone, clap::Args)]
pub struct CassandraArgs {
    /// Contact points (host:port), comma-separated.
    #[arg(
        long = "cassandra-nodes",
        env = "HOOKLINE_CASSANDRA_NODES",
        default_value = "127.0.0.1:9042"
    )]
    pub nodes: String,
    /// Keyspace of the ledger, created when missing.
    #[arg(
        long = "cassandra-keyspace",
        env = "HOOKLINE_CASSANDRA_KEYSPACE",
        default_value = "hookline"
    )]
    pub keyspace: String,
    /// Replication factor of the keyspace when Hookline creates it.
    #[arg(
        long = "cassandra-replication",
        env = "HOOKLINE_CASSANDRA_REPLICATION",
        default_value_t = 1
    )]
    pub replication_factor: u32,
    /// Days the ledger keeps deliveries and attempts.
    #[arg(
        long = "retention-days",
        env = "HOOKLINE_RETENTION_DAYS",
        default_value_t = 30
    )]
    pub retention_days: u32,
}

impl CassandraArgs {
    pub fn node_list(&self) -> Vec<String> {
        self.nodes
            .split(',')
            .map(str::trim)
            .filter(|node| !node.is_empty())
            .map(str::to_owned)
            .collect()
    }
}
