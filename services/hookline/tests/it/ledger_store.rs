//! The ledger's tables through the store itself: an attempt that leaves its delivery's state as
//! it was writes no listing row, yet the listings show it; sparse listings over hour buckets
//! reach their end; and a keyspace of the first layout is copied by `migrate_first_layout`.

use chrono::{DateTime, Duration, DurationRound, Utc};
use hookline_schemas::{AttemptOutcome, AttemptRecord, HttpHeader, SCHEMA_VERSION};
use hookline_store::{CassandraArgs, DeliveryQuery, DeliverySummary, Ledger, Migrated, Page};
use hookline_testkit::cassandra_args;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

/// Attempt `number` of delivery `n` (webhook `wh_{n % 2}`, event accepted at `accepted_at`):
/// failed with a retry to come, unless `final_outcome` says how it ended.
fn attempt(
    n: usize,
    number: u32,
    accepted_at: DateTime<Utc>,
    final_outcome: Option<AttemptOutcome>,
) -> AttemptRecord {
    let attempted_at = accepted_at + Duration::seconds(i64::from(number));
    AttemptRecord {
        schema_version: SCHEMA_VERSION,
        attempt_id: format!("att_{n}_{number}"),
        delivery_id: format!("msg_{n}"),
        tenant_id: "ten_1".into(),
        webhook_id: format!("wh_{}", n % 2),
        event_id: format!("evt_{n}"),
        event_type: "order.paid".into(),
        event_accepted_at: Some(accepted_at),
        attempt_number: number,
        url: "https://example.com/hook".into(),
        attempted_at,
        duration_ms: 7,
        outcome: final_outcome.unwrap_or(AttemptOutcome::Failed),
        response_status: Some(if final_outcome == Some(AttemptOutcome::Succeeded) {
            200
        } else {
            500 + u16::try_from(number).unwrap()
        }),
        response_body: Some("body".into()),
        request_headers: vec![HttpHeader {
            name: "webhook-id".into(),
            value: format!("msg_{n}"),
        }],
        response_headers: Vec::new(),
        response_headers_truncated: false,
        error_class: None,
        error: None,
        next_attempt_at: final_outcome
            .is_none()
            .then(|| attempted_at + Duration::seconds(5)),
        replay: false,
    }
}

fn window(since: DateTime<Utc>, webhook_id: Option<&str>) -> DeliveryQuery {
    DeliveryQuery {
        webhook_id: webhook_id.map(str::to_owned),
        statuses: Vec::new(),
        event_type: None,
        since,
        until: Utc::now() + Duration::minutes(1),
    }
}

/// Every delivery a listing returns, `limit` at a time, and how many pages that took.
async fn listed(
    ledger: &Ledger,
    query: &DeliveryQuery,
    limit: usize,
) -> (Vec<DeliverySummary>, usize) {
    let (mut all, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let Page { data, next_cursor } = ledger
            .list_deliveries("ten_1", query, limit, cursor.as_deref())
            .await
            .unwrap();
        pages += 1;
        all.extend(data);
        match next_cursor {
            Some(next) => cursor = Some(next),
            None => return (all, pages),
        }
    }
}

async fn session(args: &CassandraArgs) -> Session {
    SessionBuilder::new()
        .known_nodes(args.node_list())
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retrying_delivery_is_listed_with_its_latest_attempt_though_only_changes_rewrite_its_rows(
) {
    let args = cassandra_args();
    let ledger = Ledger::connect(&args).await.unwrap();
    let accepted_at = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    // Out of order, as a replayed topic may hand them over.
    for number in [1, 3, 2] {
        ledger
            .record_attempt(&attempt(0, number, accepted_at, None))
            .await
            .unwrap();
    }
    let third = attempt(0, 3, accepted_at, None);

    // Only the first attempt changed the state: the listing rows still say one attempt.
    let cql = session(&args).await;
    let (stored,): (i32,) = cql
        .query_unpaged(
            format!(
                "SELECT attempts FROM {}.deliveries_by_tenant_hour WHERE tenant_id = 'ten_1' \
                 AND hour = ?",
                args.keyspace
            ),
            (accepted_at.format("%Y-%m-%dT%H").to_string(),),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .first_row()
        .unwrap();
    assert_eq!(stored, 1);

    // Yet every read shows the latest attempt.
    for webhook_id in [None, Some("wh_0")] {
        let (rows, _) = listed(
            &ledger,
            &window(accepted_at - Duration::hours(1), webhook_id),
            50,
        )
        .await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (
                rows[0].status.as_str(),
                rows[0].attempts,
                rows[0].last_attempt_at
            ),
            ("retrying", 3, third.attempted_at)
        );
        assert_eq!(rows[0].last_response_status, Some(503));
        assert_eq!(rows[0].created_at, accepted_at);
    }
    let (_, deliveries) = ledger_event(&ledger, &cql, &args, accepted_at).await;
    assert_eq!(
        (deliveries[0].status.as_str(), deliveries[0].attempts),
        ("retrying", 3)
    );
    let (delivery, attempts) = ledger.delivery("ten_1", "msg_0").await.unwrap().unwrap();
    assert_eq!(
        (delivery.status.as_str(), delivery.attempts),
        ("retrying", 3)
    );
    let numbers: Vec<i32> = attempts.iter().map(|a| a.attempt_number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    let logged = ledger
        .webhook_attempts(
            "ten_1",
            "wh_0",
            accepted_at,
            Utc::now() + Duration::minutes(1),
            50,
            None,
        )
        .await
        .unwrap();
    assert_eq!(logged.data.len(), 3);

    // The last attempt ends it: the listing rows are written again, and a filter finds it.
    ledger
        .record_attempt(&attempt(0, 4, accepted_at, Some(AttemptOutcome::Succeeded)))
        .await
        .unwrap();
    let mut succeeded = window(accepted_at - Duration::hours(1), Some("wh_0"));
    succeeded.statuses = vec!["succeeded".into()];
    let (rows, _) = listed(&ledger, &succeeded, 50).await;
    assert_eq!((rows.len(), rows[0].attempts), (1, 4), "{rows:?}");
    succeeded.statuses = vec!["retrying".into()];
    assert!(listed(&ledger, &succeeded, 50).await.0.is_empty());
    // Another tenant sees nothing of it.
    assert!(ledger.delivery("ten_2", "msg_0").await.unwrap().is_none());
}

/// The deliveries of `evt_0`, after storing the event itself.
async fn ledger_event(
    ledger: &Ledger,
    cql: &Session,
    args: &CassandraArgs,
    accepted_at: DateTime<Utc>,
) -> (String, Vec<hookline_store::EventDelivery>) {
    cql.query_unpaged(
        format!(
            "INSERT INTO {}.events_by_id (tenant_id, event_id, event_type, occurred_at, \
             accepted_at, data) VALUES ('ten_1', 'evt_0', 'order.paid', ?, ?, '{{}}')",
            args.keyspace
        ),
        (accepted_at, accepted_at),
    )
    .await
    .unwrap();
    let (event, deliveries) = ledger.event("ten_1", "evt_0").await.unwrap().unwrap();
    (event.event_id, deliveries)
}

#[tokio::test]
async fn a_sparse_listing_over_a_month_of_hours_reaches_its_end_in_few_pages() {
    let ledger = Ledger::connect(&cassandra_args()).await.unwrap();
    let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let ages = [0, 5, 26 * 24, 29 * 24 + 3];
    for (n, hours) in ages.iter().enumerate() {
        let accepted_at = now - Duration::hours(*hours);
        let done = attempt(n, 1, accepted_at, Some(AttemptOutcome::Succeeded));
        ledger.record_attempt(&done).await.unwrap();
    }
    let since = now - Duration::days(30);
    let (rows, pages) = listed(&ledger, &window(since, None), 2).await;
    let ids: Vec<&str> = rows.iter().map(|row| row.delivery_id.as_str()).collect();
    assert_eq!(ids, ["msg_0", "msg_1", "msg_2", "msg_3"]);
    // 721 hour buckets, nearly all empty, skipped without a page each: two full pages, and at
    // most one empty one after them (a page that ends exactly where a partition does cannot
    // tell that it did).
    assert!(pages <= 3, "{pages} pages");
    let (rows, _) = listed(&ledger, &window(since, Some("wh_1")), 1).await;
    let ids: Vec<&str> = rows.iter().map(|row| row.delivery_id.as_str()).collect();
    assert_eq!(ids, ["msg_1", "msg_3"]);
    // A cursor of another listing's buckets is refused, not misread.
    let day_cursor = ledger
        .list_deliveries("ten_1", &window(since, Some("wh_1")), 1, None)
        .await
        .unwrap()
        .next_cursor
        .unwrap();
    assert!(ledger
        .list_deliveries("ten_1", &window(since, None), 1, Some(&day_cursor))
        .await
        .is_err());
}

/// The first layout's attempt and delivery tables, as a keyspace written before the current
/// one holds them (`attempts_by_webhook` from before headers were recorded).
const FIRST_LAYOUT: [&str; 4] = [
    "CREATE TABLE {ks}.attempts_by_delivery (tenant_id text, delivery_id text, \
     attempted_at timestamp, attempt_id text, attempt_number int, webhook_id text, url text, \
     outcome text, response_status int, response_body text, error_class text, error text, \
     duration_ms bigint, next_attempt_at timestamp, replay boolean, \
     request_headers frozen<list<frozen<tuple<text, text>>>>, \
     response_headers frozen<list<frozen<tuple<text, text>>>>, response_headers_truncated boolean, \
     PRIMARY KEY ((tenant_id, delivery_id), attempted_at, attempt_id))",
    "CREATE TABLE {ks}.attempts_by_webhook (tenant_id text, webhook_id text, day text, \
     attempted_at timestamp, attempt_id text, delivery_id text, event_id text, event_type text, \
     attempt_number int, url text, outcome text, response_status int, error_class text, \
     duration_ms bigint, PRIMARY KEY ((tenant_id, webhook_id, day), attempted_at, attempt_id)) \
     WITH CLUSTERING ORDER BY (attempted_at DESC, attempt_id ASC)",
    "CREATE TABLE {ks}.deliveries_by_tenant (tenant_id text, day text, created_at timestamp, \
     delivery_id text, webhook_id text, event_id text, event_type text, status text, attempts int, \
     last_attempt_at timestamp, last_response_status int, \
     PRIMARY KEY ((tenant_id, day), created_at, delivery_id)) \
     WITH CLUSTERING ORDER BY (created_at DESC, delivery_id ASC)",
    "CREATE TABLE {ks}.deliveries_by_event (tenant_id text, event_id text, webhook_id text, \
     delivery_id text, status text, attempts int, last_attempt_at timestamp, \
     PRIMARY KEY ((tenant_id, event_id), webhook_id))",
];

/// A keyspace of the first layout holding one delivery of `wh_0`, failed once and then
/// succeeded, as the first layout's writer left it; the event's acceptance time.
async fn first_layout_keyspace(cql: &Session, args: &CassandraArgs) -> DateTime<Utc> {
    let ks = &args.keyspace;
    cql.query_unpaged(
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', \
             'replication_factor': 1}}"
        ),
        &[],
    )
    .await
    .unwrap();
    for table in FIRST_LAYOUT {
        cql.query_unpaged(table.replace("{ks}", ks), &[])
            .await
            .unwrap();
    }
    cql.await_schema_agreement().await.unwrap();

    let accepted_at = Utc::now().duration_trunc(Duration::seconds(1)).unwrap() - Duration::hours(2);
    let day = accepted_at.format("%Y-%m-%d").to_string();
    for number in [1, 2] {
        let at = accepted_at + Duration::seconds(number);
        let status = if number == 1 { 501 } else { 200 };
        let outcome = if number == 1 { "failed" } else { "succeeded" };
        cql.query_unpaged(
            format!(
                "INSERT INTO {ks}.attempts_by_delivery (tenant_id, delivery_id, attempted_at, \
                 attempt_id, attempt_number, webhook_id, url, outcome, response_status, \
                 response_body, duration_ms, replay, request_headers) VALUES ('ten_1', 'msg_0', \
                 ?, ?, ?, 'wh_0', 'https://example.com/hook', ?, ?, 'ok', 7, false, \
                 [('webhook-id', 'msg_0')]) USING TTL 3600"
            ),
            (
                at,
                format!("att_0_{number}"),
                number as i32,
                outcome,
                status,
            ),
        )
        .await
        .unwrap();
        cql.query_unpaged(
            format!(
                "INSERT INTO {ks}.attempts_by_webhook (tenant_id, webhook_id, day, attempted_at, \
                 attempt_id, delivery_id, event_id, event_type, attempt_number, url, outcome, \
                 response_status, duration_ms) VALUES ('ten_1', 'wh_0', ?, ?, ?, 'msg_0', \
                 'evt_0', 'order.paid', ?, 'https://example.com/hook', ?, ?, 7) USING TTL 3600"
            ),
            (
                &day,
                at,
                format!("att_0_{number}"),
                number as i32,
                outcome,
                status,
            ),
        )
        .await
        .unwrap();
    }
    let last = accepted_at + Duration::seconds(2);
    cql.query_unpaged(
        format!(
            "INSERT INTO {ks}.deliveries_by_tenant (tenant_id, day, created_at, delivery_id, \
             webhook_id, event_id, event_type, status, attempts, last_attempt_at, \
             last_response_status) VALUES ('ten_1', ?, ?, 'msg_0', 'wh_0', 'evt_0', 'order.paid', \
             'succeeded', 2, ?, 200) USING TTL 3600 AND TIMESTAMP ?"
        ),
        (&day, accepted_at, last, last.timestamp_micros()),
    )
    .await
    .unwrap();
    accepted_at
}

#[tokio::test]
async fn a_keyspace_of_the_first_layout_is_copied_into_the_current_tables() {
    let args = cassandra_args();
    let cql = session(&args).await;
    let ks = &args.keyspace;
    let accepted_at = first_layout_keyspace(&cql, &args).await;

    let ledger = Ledger::connect(&args).await.unwrap();
    assert!(ledger.has_first_layout().await.unwrap());
    assert!(ledger.delivery("ten_1", "msg_0").await.unwrap().is_none());
    let mut pages = 0;
    let migrated = ledger.migrate_first_layout(|_| pages += 1).await;
    assert_eq!(
        migrated.unwrap(),
        Migrated {
            attempts: 4,
            deliveries: 1
        }
    );
    assert_eq!(pages, 3);

    let (delivery, attempts) = ledger.delivery("ten_1", "msg_0").await.unwrap().unwrap();
    assert_eq!(
        (delivery.status.as_str(), delivery.attempts),
        ("succeeded", 2)
    );
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        attempts[0].request_headers,
        Some(vec![("webhook-id".into(), "msg_0".into())])
    );
    for webhook_id in [None, Some("wh_0")] {
        let (rows, _) = listed(
            &ledger,
            &window(accepted_at - Duration::hours(1), webhook_id),
            50,
        )
        .await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].status.as_str(), rows[0].attempts),
            ("succeeded", 2)
        );
    }
    let logged = ledger
        .webhook_attempts("ten_1", "wh_0", accepted_at, Utc::now(), 50, None)
        .await
        .unwrap();
    assert_eq!(logged.data.len(), 2);
    // Copies expire when the rows they copy would have.
    let (ttl,): (Option<i32>,) = cql
        .query_unpaged(
            format!(
                "SELECT TTL(outcome) FROM {ks}.delivery_attempts WHERE tenant_id = 'ten_1' \
                 AND delivery_id = 'msg_0' LIMIT 1"
            ),
            &[],
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .first_row()
        .unwrap();
    assert!(ttl.is_some_and(|ttl| ttl <= 3600), "{ttl:?}");

    // A replay recorded since wins over a second copy of the older state.
    let mut replay = attempt(0, 3, accepted_at, None);
    replay.replay = true;
    replay.attempted_at = Utc::now();
    ledger.record_attempt(&replay).await.unwrap();
    ledger.migrate_first_layout(|_| {}).await.unwrap();
    let (delivery, attempts) = ledger.delivery("ten_1", "msg_0").await.unwrap().unwrap();
    assert_eq!(
        (delivery.status.as_str(), delivery.attempts, attempts.len()),
        ("retrying", 3, 3)
    );
    let (rows, _) = listed(&ledger, &window(accepted_at - Duration::hours(1), None), 50).await;
    assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("retrying", 3));
}

#[tokio::test]
async fn attempts_of_several_deliveries_are_written_in_one_request() {
    let ledger = Ledger::connect(&cassandra_args()).await.unwrap();
    let accepted_at = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let first = attempt(0, 1, accepted_at, None);
    ledger.record_attempt(&first).await.unwrap();
    let group = [
        attempt(0, 2, accepted_at, None),
        attempt(1, 1, accepted_at, Some(AttemptOutcome::Succeeded)),
        attempt(2, 1, accepted_at, None),
    ];
    ledger
        .record_attempts(&group.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    let (rows, _) = listed(&ledger, &window(accepted_at - Duration::hours(1), None), 50).await;
    let mut states: Vec<(&str, &str, i32)> = rows
        .iter()
        .map(|row| (row.delivery_id.as_str(), row.status.as_str(), row.attempts))
        .collect();
    states.sort_unstable();
    assert_eq!(
        states,
        [
            ("msg_0", "retrying", 2),
            ("msg_1", "succeeded", 1),
            ("msg_2", "retrying", 1)
        ]
    );
    let (_, attempts) = ledger.delivery("ten_1", "msg_0").await.unwrap().unwrap();
    assert_eq!(attempts.len(), 2);
}

#[tokio::test]
async fn hookline_migrate_copies_a_keyspace_of_the_first_layout() {
    let args = cassandra_args();
    let cql = session(&args).await;
    first_layout_keyspace(&cql, &args).await;
    let migrate = |keyspace: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
            .arg("migrate")
            .env("HOOKLINE_CASSANDRA_NODES", &args.nodes)
            .env("HOOKLINE_CASSANDRA_KEYSPACE", keyspace)
            .output()
            .unwrap()
    };
    let output = migrate(&args.keyspace);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("copied 4 attempt rows and 1 deliveries"),
        "{stdout}"
    );
    let ledger = Ledger::connect(&args).await.unwrap();
    let (delivery, attempts) = ledger.delivery("ten_1", "msg_0").await.unwrap().unwrap();
    assert_eq!((delivery.status.as_str(), attempts.len()), ("succeeded", 2));

    let fresh = cassandra_args().keyspace;
    let output = migrate(&fresh);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("nothing to migrate"),
        "{stdout}"
    );
    let refused = migrate("not-a-keyspace");
    assert!(!refused.status.success());
}
