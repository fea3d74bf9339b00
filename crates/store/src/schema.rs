//! Idempotent migrations, run by the ledger at start-up.

use scylla::client::session::Session;

use crate::StoreError;

/// A keyspace name is interpolated into DDL, so it is restricted to what CQL accepts unquoted.
pub fn is_valid_keyspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Columns added to tables after their first release: `(table, column, CQL type)`. A table
/// created now has them from the start; one of an earlier version gains them at start-up.
pub const ADDED_COLUMNS: [(&str, &str, &str); 5] = [
    // The delivery states a recovery replays.
    ("recover_jobs", "statuses", "list<text>"),
    // The ledger instance running the job, and until when it may without saving progress.
    ("recover_jobs", "owner", "text"),
    ("recover_jobs", "lease_until", "timestamp"),
    // The last delivery replayed (see `RecoverPosition`).
    ("recover_jobs", "resume_created_at", "timestamp"),
    ("recover_jobs", "resume_delivery_id", "text"),
];

/// Columns the tables of the first layout (see `migrate`) gained during its life; a keyspace
/// of that layout may lack them, so `hookline migrate` adds them before reading.
pub const LEGACY_ADDED_COLUMNS: [(&str, &str, &str); 7] = [
    ("attempts_by_delivery", "request_headers", HEADERS),
    ("attempts_by_delivery", "response_headers", HEADERS),
    (
        "attempts_by_delivery",
        "response_headers_truncated",
        "boolean",
    ),
    ("attempts_by_webhook", "request_headers", HEADERS),
    ("attempts_by_webhook", "response_headers", HEADERS),
    (
        "attempts_by_webhook",
        "response_headers_truncated",
        "boolean",
    ),
    ("attempts_by_webhook", "next_attempt_at", "timestamp"),
];

/// The CQL type of a list of HTTP headers.
const HEADERS: &str = "frozen<list<frozen<tuple<text, text>>>>";

/// The definitions of `table`'s columns in `ADDED_COLUMNS`, each followed by a comma, for its
/// `CREATE TABLE`.
fn added_columns(table: &str) -> String {
    ADDED_COLUMNS
        .iter()
        .filter(|(of, _, _)| *of == table)
        .map(|(_, column, cql_type)| format!("{column} {cql_type},\n"))
        .collect()
}

/// The statements that create the keyspace and tables when missing, in order.
pub fn migrations(keyspace: &str, replication_factor: u32, retention_days: u32) -> Vec<String> {
    let ttl = u64::from(retention_days) * 86_400;
    // Append-only rows expiring by TTL: time windows drop whole SSTables when they expire.
    let twcs = "compaction = {'class': 'TimeWindowCompactionStrategy', \
                'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}";
    vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}"
        ),
        // A delivery and its attempts in one partition: each attempt is a row, appended; the
        // delivery's latest state is in static columns written with it, so recording an attempt
        // is one mutation. Attempts are oldest first.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.delivery_attempts (
                tenant_id text,
                delivery_id text,
                webhook_id text static,
                event_id text static,
                event_type text static,
                created_at timestamp static,
                status text static,
                attempts int static,
                last_attempt_at timestamp static,
                last_response_status int static,
                attempted_at timestamp,
                attempt_id text,
                attempt_number int,
                url text,
                outcome text,
                response_status int,
                response_body text,
                error_class text,
                error text,
                duration_ms bigint,
                next_attempt_at timestamp,
                replay boolean,
                request_headers {HEADERS},
                response_headers {HEADERS},
                response_headers_truncated boolean,
                PRIMARY KEY ((tenant_id, delivery_id), attempted_at, attempt_id)
            ) WITH CLUSTERING ORDER BY (attempted_at ASC, attempt_id ASC)
              AND default_time_to_live = {ttl}
              AND {twcs}"
        ),
        // A webhook's day in one partition, two kinds of rows: its attempts by attempt time
        // (`kind = 'attempt'`, `at` the attempt's time, `id` the attempt's), and its deliveries
        // by creation, the event's acceptance (`kind = 'delivery'`, `id` the delivery's), each
        // newest first. A delivery's row is written when its state changes (see
        // `AttemptRecord::changes_delivery_state`), so most attempts write one row here, in the
        // same mutation as their delivery's row when both fall on one day.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.webhook_log (
                tenant_id text,
                webhook_id text,
                day text,
                kind text,
                at timestamp,
                id text,
                delivery_id text,
                event_id text,
                event_type text,
                status text,
                attempts int,
                last_attempt_at timestamp,
                last_response_status int,
                attempt_number int,
                url text,
                outcome text,
                response_status int,
                error_class text,
                duration_ms bigint,
                next_attempt_at timestamp,
                request_headers {HEADERS},
                response_headers {HEADERS},
                response_headers_truncated boolean,
                PRIMARY KEY ((tenant_id, webhook_id, day), kind, at, id)
            ) WITH CLUSTERING ORDER BY (kind ASC, at DESC, id ASC)
              AND default_time_to_live = {ttl}
              AND {twcs}"
        ),
        // A tenant's deliveries newest first, one partition per hour of creation so that no
        // partition of a busy tenant grows without bound; written when a delivery's state
        // changes.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.deliveries_by_tenant_hour (
                tenant_id text,
                hour text,
                created_at timestamp,
                delivery_id text,
                webhook_id text,
                event_id text,
                event_type text,
                status text,
                attempts int,
                last_attempt_at timestamp,
                last_response_status int,
                PRIMARY KEY ((tenant_id, hour), created_at, delivery_id)
            ) WITH CLUSTERING ORDER BY (created_at DESC, delivery_id ASC)
              AND default_time_to_live = {ttl}
              AND compaction = {{'class': 'SizeTieredCompactionStrategy'}}"
        ),
        // Accepted events with their payload, in acceptance order (polling and replay).
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.events_by_tenant (
                tenant_id text,
                day text,
                accepted_at timestamp,
                event_id text,
                event_type text,
                occurred_at timestamp,
                data text,
                PRIMARY KEY ((tenant_id, day), accepted_at, event_id)
            ) WITH CLUSTERING ORDER BY (accepted_at ASC, event_id ASC)
              AND default_time_to_live = {ttl}
              AND {twcs}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.events_by_id (
                tenant_id text,
                event_id text,
                event_type text,
                occurred_at timestamp,
                accepted_at timestamp,
                data text,
                PRIMARY KEY ((tenant_id, event_id))
            ) WITH default_time_to_live = {ttl}
              AND compaction = {{'class': 'SizeTieredCompactionStrategy'}}"
        ),
        // Recovery jobs and their progress (and, from `ADDED_COLUMNS`, their lease).
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.recover_jobs (
                tenant_id text,
                job_id text,
                webhook_id text,
                since timestamp,
                until timestamp,
                status text,
                replayed bigint,
                created_at timestamp,
                updated_at timestamp,
                error text,
                {}
                PRIMARY KEY ((tenant_id, job_id))
            ) WITH default_time_to_live = {ttl}",
            added_columns("recover_jobs")
        ),
        // Recovery jobs not yet finished: one partition (`bucket` is always 0), read every few
        // seconds by each ledger instance to resume the jobs of instances that stopped. Rows
        // are deleted when a job finishes; a tombstone that outlives its replicas' repair only
        // lists a finished job again, which the reader drops, so tombstones may go early.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.recover_jobs_unfinished (
                bucket int,
                tenant_id text,
                job_id text,
                PRIMARY KEY (bucket, tenant_id, job_id)
            ) WITH default_time_to_live = {ttl}
              AND gc_grace_seconds = 3600"
        ),
        // An event's deliveries, one row per webhook, written when a delivery's state changes.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.deliveries_by_event (
                tenant_id text,
                event_id text,
                webhook_id text,
                delivery_id text,
                status text,
                attempts int,
                last_attempt_at timestamp,
                PRIMARY KEY ((tenant_id, event_id), webhook_id)
            ) WITH default_time_to_live = {ttl}
              AND compaction = {{'class': 'SizeTieredCompactionStrategy'}}"
        ),
    ]
}

/// The names of the columns of a table, empty when it does not exist.
pub(crate) async fn columns_of(
    session: &Session,
    keyspace: &str,
    table: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns \
             WHERE keyspace_name = ? AND table_name = ?",
            (keyspace, table),
        )
        .await?
        .into_rows_result()?;
    Ok(rows
        .rows::<(String,)>()?
        .map(|row| row.map(|(name,)| name))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Adds the `columns` that a table lacks (`(table, column, CQL type)`); tables that do not exist
/// are left alone. Cassandra refuses to add a column twice, so each is looked up first; when
/// another instance added it in between, its `ALTER` fails and the column is there, which is
/// all that matters.
pub(crate) async fn add_missing_columns(
    session: &Session,
    keyspace: &str,
    columns: &[(&str, &str, &str)],
) -> Result<(), StoreError> {
    for (table, column, cql_type) in columns {
        let existing = columns_of(session, keyspace, table).await?;
        if existing.is_empty() || existing.iter().any(|name| name == column) {
            continue;
        }
        let added = session
            .query_unpaged(
                format!("ALTER TABLE {keyspace}.{table} ADD {column} {cql_type}"),
                &[],
            )
            .await;
        session.await_schema_agreement().await?;
        if let Err(err) = added {
            let existing = columns_of(session, keyspace, table).await?;
            if !existing.iter().any(|name| name == column) {
                return Err(err.into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_names_are_restricted() {
        assert!(is_valid_keyspace("hookline_test_42"));
        for bad in ["", "1abc", "a-b", "a;DROP", "a b", &"k".repeat(49)] {
            assert!(!is_valid_keyspace(bad), "{bad:?}");
        }
    }

    #[test]
    fn new_tables_have_the_added_columns_from_the_start() {
        let statements = migrations("ks", 1, 1);
        for (table, column, cql_type) in ADDED_COLUMNS {
            let create = statements
                .iter()
                .find(|s| s.contains(&format!("ks.{table} (")))
                .unwrap_or_else(|| panic!("no table {table}"));
            assert!(
                create.contains(&format!("{column} {cql_type},")),
                "{create}"
            );
        }
    }

    #[test]
    fn migrations_carry_retention_and_replication() {
        let statements = migrations("ks", 3, 2);
        assert!(statements[0].contains("'replication_factor': 3"));
        assert!(statements[1..]
            .iter()
            .all(|s| s.contains("default_time_to_live = 172800")));
        assert!(statements.iter().all(|s| s.contains("IF NOT EXISTS")));
    }
}
