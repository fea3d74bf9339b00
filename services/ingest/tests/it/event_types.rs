//! The event-type catalogue: its routes, schemas enforced on publish, and the catalogue
//! enforced on webhook subscriptions; each tenant sees only its own.

use hookline_testkit::{records_in, Api, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::start_ingest;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

fn names(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .expect("a page has data")
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

async fn patch(api: &Api, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    api.call(Method::PATCH, path, Some(key), Some(&body)).await
}

fn amount_schema() -> Value {
    json!({
        "type": "object",
        "required": ["amount"],
        "properties": {"amount": {"type": "integer", "minimum": 0}},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_keep_a_catalogue_of_event_types_that_only_their_tenant_sees() {
    let (ingest, kafka) = start_ingest().await;
    let api = Api::new(&ingest.base_url);
    let (tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (status, reader) = api
        .post(
            &format!("/v1/tenants/{tenant}/keys"),
            ADMIN_TOKEN,
            &json!({"name": "reader", "scopes": ["deliveries:read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reader}");
    let reader = reader["key"].as_str().unwrap().to_owned();
    let (_other, other_key) = api.tenant_with_key(ADMIN_TOKEN, None).await;

    let paid = json!({
        "name": "invoice.paid",
        "description": "An invoice was paid in full",
        "schema": amount_schema(),
        "example": {"amount": 4200},
    });
    let (status, created) = api.post("/v1/event-types", &key, &paid).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], json!("invoice.paid"));
    assert_eq!(created["schema"], amount_schema());
    assert_eq!(created["example"], json!({"amount": 4200}));
    assert_eq!(created["archived"], json!(false));
    assert!(created["created_at"].is_string());
    let mut writes = 1;
    for name in ["invoice.created", "user.deleted"] {
        let (status, body) = api
            .post(
                "/v1/event-types",
                &key,
                &json!({"name": name, "description": ""}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body.get("schema").is_none(), "{body}");
        writes += 1;
    }

    let (status, body) = api.post("/v1/event-types", &key, &paid).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (409, "event_type_exists"),
        "{body}"
    );

    // Any of the tenant's keys reads the catalogue; changing it takes `webhooks:manage`.
    let (status, page) = api.get("/v1/event-types", &reader).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        names(&page),
        ["invoice.created", "invoice.paid", "user.deleted"]
    );
    assert_eq!(page["next_cursor"], Value::Null);
    let (status, shown) = api.get("/v1/event-types/invoice.paid", &reader).await;
    assert_eq!((status, shown), (StatusCode::OK, created.clone()));
    let (status, body) = api
        .post(
            "/v1/event-types",
            &reader,
            &json!({"name": "a.b", "description": ""}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, body) = patch(
        &api,
        "/v1/event-types/invoice.paid",
        &reader,
        json!({"archived": true}),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));

    let (status, first) = api.get("/v1/event-types?limit=2", &key).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(names(&first), ["invoice.created", "invoice.paid"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = api
        .get(&format!("/v1/event-types?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(names(&second), ["user.deleted"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Patches: description, removing the schema, archiving and back.
    let (status, patched) = patch(
        &api,
        "/v1/event-types/invoice.paid",
        &key,
        json!({"description": "Paid in full", "schema": null}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["description"], json!("Paid in full"));
    assert!(patched.get("schema").is_none(), "{patched}");
    assert_eq!(patched["example"], json!({"amount": 4200}), "kept");
    let (status, archived) = patch(
        &api,
        "/v1/event-types/user.deleted",
        &key,
        json!({"archived": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{archived}");
    assert_eq!(archived["archived"], json!(true));
    assert!(archived["archived_at"].is_string());
    writes += 2;
    let (_, page) = api.get("/v1/event-types", &key).await;
    assert_eq!(names(&page), ["invoice.created", "invoice.paid"]);
    let (_, page) = api.get("/v1/event-types?include_archived=true", &key).await;
    assert_eq!(
        names(&page),
        ["invoice.created", "invoice.paid", "user.deleted"]
    );
    let (status, body) = api.get("/v1/event-types/user.deleted", &key).await;
    assert_eq!(status, StatusCode::OK, "archived entries stay readable");
    assert_eq!(body["archived"], json!(true));
    let (status, body) = api
        .post(
            "/v1/event-types",
            &key,
            &json!({"name": "user.deleted", "description": ""}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (409, "event_type_exists"),
        "{body}"
    );
    let (status, body) = patch(
        &api,
        "/v1/event-types/user.deleted",
        &key,
        json!({"archived": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["archived"], json!(false));
    assert!(body.get("archived_at").is_none());
    writes += 1;

    // Bad input, refused before the topic.
    let create_cases: &[(&str, Value, u16, &str)] = &[
        (
            "missing description",
            json!({"name": "a.b"}),
            422,
            "validation_failed",
        ),
        (
            "malformed name",
            json!({"name": "not a type!", "description": ""}),
            422,
            "validation_failed",
        ),
        (
            "wildcard name",
            json!({"name": "a.*", "description": ""}),
            422,
            "validation_failed",
        ),
        (
            "description of the wrong type",
            json!({"name": "a.b", "description": 5}),
            422,
            "validation_failed",
        ),
        (
            "unknown field",
            json!({"name": "a.b", "description": "", "schemas": {}}),
            422,
            "validation_failed",
        ),
        (
            "schema not an object",
            json!({"name": "a.b", "description": "", "schema": "object"}),
            422,
            "invalid_schema",
        ),
        (
            "schema not a JSON Schema",
            json!({"name": "a.b", "description": "", "schema": {"type": "nonsense"}}),
            422,
            "invalid_schema",
        ),
        (
            "schema with a remote reference",
            json!({"name": "a.b", "description": "", "schema": {"$ref": "https://example.com/s.json"}}),
            422,
            "invalid_schema",
        ),
        (
            "example against the schema",
            json!({"name": "a.b", "description": "", "schema": amount_schema(), "example": {"amount": "4200"}}),
            422,
            "schema_violation",
        ),
    ];
    for (case, body, status, expected) in create_cases {
        let (answer, error) = api.post("/v1/event-types", &key, body).await;
        assert_eq!(answer.as_u16(), *status, "{case}: {error}");
        assert_eq!(code(&error), *expected, "{case}: {error}");
    }
    let (_, error) = api
        .post(
            "/v1/event-types",
            &key,
            &json!({"name": "a.b", "description": "", "schema": {"properties": {"n": {"minimum": "five"}}}}),
        )
        .await;
    assert!(message(&error).starts_with("schema:"), "{error}");
    let (status, error) = api
        .post_raw(
            "/v1/event-types",
            &key,
            "application/json",
            r#"{"name": "a.b", "#,
        )
        .await;
    assert_eq!(
        (status.as_u16(), code(&error)),
        (400, "validation_failed"),
        "{error}"
    );
    for (body, expected) in [
        (json!({"name": "renamed.type"}), "validation_failed"),
        (json!({"archived": "yes"}), "validation_failed"),
        (json!({"schema": {"type": 12}}), "invalid_schema"),
        (
            json!({"schema": amount_schema(), "example": {"amount": -1}}),
            "schema_violation",
        ),
    ] {
        let (status, error) = patch(&api, "/v1/event-types/invoice.paid", &key, body.clone()).await;
        assert_eq!(status.as_u16(), 422, "{body}: {error}");
        assert_eq!(code(&error), expected, "{body}: {error}");
    }
    for query in [
        "limit=101",
        "limit=0",
        "include_archived=maybe",
        "sort=name",
    ] {
        let (status, error) = api.get(&format!("/v1/event-types?{query}"), &key).await;
        assert_eq!(
            (status.as_u16(), code(&error)),
            (422, "validation_failed"),
            "{query}: {error}"
        );
    }
    let (status, error) = api.get("/v1/event-types/no.such", &key).await;
    assert_eq!((status, code(&error)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, error) = patch(
        &api,
        "/v1/event-types/no.such",
        &key,
        json!({"description": "x"}),
    )
    .await;
    assert_eq!((status, code(&error)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, error) = api.get("/v1/event-types", "hk_not_a_key").await;
    assert_eq!(
        (status, code(&error)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );

    // Another tenant sees none of it, and keeps a catalogue of its own.
    let (status, error) = api.get("/v1/event-types/invoice.paid", &other_key).await;
    assert_eq!((status, code(&error)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, error) = patch(
        &api,
        "/v1/event-types/invoice.paid",
        &other_key,
        json!({"archived": true}),
    )
    .await;
    assert_eq!((status, code(&error)), (StatusCode::NOT_FOUND, "not_found"));
    let (_, page) = api
        .get("/v1/event-types?include_archived=true", &other_key)
        .await;
    assert_eq!(page, json!({"data": [], "next_cursor": null}));
    let (status, body) = api
        .post(
            "/v1/event-types",
            &other_key,
            &json!({"name": "invoice.paid", "description": "theirs"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    writes += 1;
    let (_, mine) = api.get("/v1/event-types/invoice.paid", &key).await;
    assert_eq!(mine["description"], json!("Paid in full"));

    let records = records_in(&kafka, &kafka.topics().event_types()).await;
    assert_eq!(records.len(), writes, "only accepted changes are written");
    ingest.stop().await.expect("ingest shuts down cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_are_enforced_on_publish_and_the_catalogue_on_subscriptions() {
    let (ingest, kafka) = start_ingest().await;
    let api = Api::new(&ingest.base_url);
    let (_tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_other, other_key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let events_topic = kafka.topics().events();

    // A tenant without a catalogue subscribes and publishes as before.
    let (status, body) = api
        .post(
            "/v1/webhooks",
            &other_key,
            &json!({"url": "https://example.com/hooks", "events": ["anything.goes"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    for (name, schema) in [
        ("invoice.paid", Some(amount_schema())),
        ("invoice.refunded", None),
        ("invoice.legacy", None),
    ] {
        let mut request = json!({"name": name, "description": ""});
        if let Some(schema) = schema {
            request["schema"] = schema;
        }
        let (status, body) = api.post("/v1/event-types", &key, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, refunds) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": "https://example.com/refunds", "events": ["invoice.refunded"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refunds}");
    let refunds = format!("/v1/webhooks/{}", refunds["id"].as_str().unwrap());
    for name in ["invoice.legacy", "invoice.refunded"] {
        let (status, body) = patch(
            &api,
            &format!("/v1/event-types/{name}"),
            &key,
            json!({"archived": true}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Publishing: data must match the type's schema; data is still forwarded byte for byte.
    let good = r#"{"type": "invoice.paid", "data": {"amount":  42, "note": "ok" }}"#;
    let (status, body) = api
        .post_raw("/v1/events", &key, "application/json", good)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let stored = records_in(&kafka, &events_topic).await;
    let stored = String::from_utf8(stored[0].1.clone().unwrap()).unwrap();
    assert!(
        stored.contains(r#""data":{"amount":  42, "note": "ok" }"#),
        "{stored}"
    );
    let (status, error) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "invoice.paid", "data": {"amount": "42"}}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), code(&error)),
        (422, "schema_violation"),
        "{error}"
    );
    assert!(message(&error).contains("`/amount`"), "{error}");
    let (status, error) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "invoice.paid", "data": {}}),
        )
        .await;
    assert_eq!(code(&error), "schema_violation", "{status}: {error}");
    let good_event = json!({"type": "invoice.paid", "data": {"amount": 1}});
    let batch = json!({"events": [
        good_event,
        {"type": "invoice.paid", "data": {"amount": -1}},
        {"type": "invoice.paid", "data": {"amount": "x"}},
    ]});
    let (status, error) = api.post("/v1/events/batch", &key, &batch).await;
    assert_eq!(
        (status.as_u16(), code(&error)),
        (422, "schema_violation"),
        "{error}"
    );
    assert!(
        message(&error).starts_with("events[1].data:"),
        "the first bad event is named: {error}"
    );
    assert_eq!(
        records_in(&kafka, &events_topic).await.len(),
        1,
        "a refused batch produces nothing"
    );
    for body in [
        json!({"type": "not.catalogued", "data": {"anything": true}}),
        json!({"type": "invoice.legacy", "data": []}),
    ] {
        let (status, answer) = api.post("/v1/events", &key, &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}: {answer}");
    }
    let (status, answer) = api
        .post(
            "/v1/events",
            &other_key,
            &json!({"type": "invoice.paid", "data": {"amount": "x"}}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "another tenant's schema does not apply: {answer}"
    );

    // A changed schema applies at once.
    let (status, body) = patch(
        &api,
        "/v1/event-types/invoice.paid",
        &key,
        json!({"schema": {"type": "object", "properties": {"amount": {"type": "string"}}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, answer) = api
        .post(
            "/v1/events",
            &key,
            &json!({"type": "invoice.paid", "data": {"amount": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, error) = api.post("/v1/events", &key, &good_event).await;
    assert_eq!(code(&error), "schema_violation", "{status}: {error}");

    // Subscribing: exact types must be in the catalogue and not archived; wildcards pass.
    for events in [
        json!(["invoice.unknown"]),
        json!(["invoice.paid", "invoice.legacy"]),
    ] {
        let (status, error) = api
            .post(
                "/v1/webhooks",
                &key,
                &json!({"url": "https://example.com/hooks", "events": events}),
            )
            .await;
        assert_eq!(
            (status.as_u16(), code(&error)),
            (422, "invalid_events"),
            "{events}: {error}"
        );
    }
    let (status, webhook) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": "https://example.com/hooks", "events": ["invoice.paid", "invoice.*", "*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    let webhook = format!("/v1/webhooks/{}", webhook["id"].as_str().unwrap());
    let (status, error) = patch(
        &api,
        &webhook,
        &key,
        json!({"events": ["invoice.paid", "nope.nothing"]}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), code(&error)),
        (422, "invalid_events"),
        "{error}"
    );
    assert!(message(&error).contains("nope.nothing"), "{error}");
    // A subscription made before its type was archived is kept through later changes.
    let (status, body) = patch(
        &api,
        &refunds,
        &key,
        json!({"name": "refunds", "events": ["invoice.refunded", "invoice.paid"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, error) = patch(
        &api,
        &refunds,
        &key,
        json!({"events": ["invoice.refunded", "invoice.legacy"]}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), code(&error)),
        (422, "invalid_events"),
        "{error}"
    );
    ingest.stop().await.expect("ingest shuts down cleanly");
}
