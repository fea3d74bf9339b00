//! The document's constraints are the handlers' rules: for each constrained field, a request at
//! the documented limit is valid by the document and accepted, and one just past it is invalid
//! by the document and refused with the field's error code. The limits are read from the
//! committed document, so changing one side alone fails here.

use hookline_testkit::{Api, ADMIN_TOKEN};
use jsonschema::Validator;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{sender_args, start_hookline};

/// A URL that passes every check of the test deployment (loopback is allowed there).
const URL: &str = "http://127.0.0.1:9/hook";

fn document() -> Value {
    serde_json::from_str(hookline_schemas::OPENAPI_JSON).expect("the document is JSON")
}

/// A validator of request bodies against one of the document's component schemas.
fn validator(document: &Value, component: &str) -> Validator {
    let schema = json!({
        "$ref": format!("#/components/schemas/{component}"),
        "components": document["components"],
    });
    jsonschema::validator_for(&schema).expect("the document's schemas compile")
}

/// A number the document states, at `pointer` in `schema`.
fn limit(schema: &Value, pointer: &str) -> usize {
    schema
        .pointer(pointer)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or_else(|| panic!("the document has no number at {pointer}"))
}

/// `n` characters of two bytes each: a limit in characters is not one in bytes.
fn text(n: usize) -> String {
    "é".repeat(n)
}

/// `n` entries `prefix0: value`, `prefix1: value`, …
fn entries(n: usize, prefix: &str, value: &str) -> Value {
    (0..n)
        .map(|i| (format!("{prefix}{i}"), json!(value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// One request body and what both the document and the API must make of it: `None` accepted,
/// `Some(code)` refused with that code. `described` marks a rule the document states in words
/// only, so the body is valid by its schema yet refused.
struct Case {
    what: String,
    body: Value,
    refused_with: Option<&'static str>,
    described: bool,
}

fn accepted(what: impl Into<String>, body: Value) -> Case {
    Case {
        what: what.into(),
        body,
        refused_with: None,
        described: false,
    }
}

fn refused(what: impl Into<String>, body: Value, code: &'static str) -> Case {
    Case {
        what: what.into(),
        body,
        refused_with: Some(code),
        described: false,
    }
}

/// `body(limit)` accepted and `body(limit + 1)` refused with `code`.
fn at_and_past(
    what: &str,
    limit: usize,
    body: impl Fn(usize) -> Value,
    code: &'static str,
) -> [Case; 2] {
    [
        accepted(what, body(limit)),
        refused(what, body(limit + 1), code),
    ]
}

fn refused_as_described(what: impl Into<String>, body: Value, code: &'static str) -> Case {
    Case {
        described: true,
        ..refused(what, body, code)
    }
}

/// `CreateWebhook` with `field` set to `value` on top of a minimal valid webhook.
fn webhook(field: &str, value: Value) -> Value {
    let mut body = json!({"url": URL, "events": ["*"]});
    body[field] = value;
    body
}

/// The boundaries of every constrained field of `CreateWebhook`, from the document.
fn webhook_cases(schema: &Value) -> Vec<Case> {
    let field = |name: &str| &schema["properties"][name];
    let max = |name: &str, pointer: &str| limit(field(name), pointer);
    let mut cases = Vec::new();

    for name in ["name", "description"] {
        let n = max(name, "/maxLength");
        cases.extend(at_and_past(
            name,
            n,
            |n| webhook(name, json!(text(n))),
            "validation_failed",
        ));
    }
    cases.push(refused(
        "blank name",
        webhook("name", json!("  ")),
        "validation_failed",
    ));

    let n = max("url", "/maxLength");
    let long_url = |n: usize| format!("{URL}/{}", text(n - URL.len() - 1));
    cases.extend(at_and_past(
        "url",
        n,
        |n| webhook("url", json!(long_url(n))),
        "invalid_url",
    ));
    cases.push(accepted(
        "url scheme in capitals",
        webhook("url", json!("HTTP://127.0.0.1:9/")),
    ));
    cases.push(refused(
        "url without `//`",
        webhook("url", json!("http:127.0.0.1:9/")),
        "invalid_url",
    ));

    let n = max("events", "/maxItems");
    let types = |n: usize| json!((0..n).map(|i| format!("type.{i}")).collect::<Vec<_>>());
    cases.extend(at_and_past(
        "events",
        n,
        |n| webhook("events", types(n)),
        "invalid_events",
    ));
    cases.push(refused(
        "no events",
        webhook("events", json!([])),
        "invalid_events",
    ));
    let n = max("events", "/items/anyOf/0/maxLength");
    cases.extend(at_and_past(
        "exact type",
        n,
        |n| webhook("events", json!(["a".repeat(n)])),
        "invalid_events",
    ));
    let n = max("events", "/items/anyOf/1/maxLength");
    let prefix = |n: usize| json!([format!("{}.*", "a".repeat(n - 2))]);
    cases.extend(at_and_past(
        "prefix filter",
        n,
        |n| webhook("events", prefix(n)),
        "invalid_events",
    ));
    cases.push(refused(
        "misplaced wildcard",
        webhook("events", json!(["a*"])),
        "invalid_events",
    ));

    let n = max("metadata", "/maxProperties");
    cases.extend(at_and_past(
        "metadata",
        n,
        |n| webhook("metadata", entries(n, "k", "v")),
        "validation_failed",
    ));
    let n = max("metadata", "/propertyNames/maxLength");
    cases.extend(at_and_past(
        "metadata key",
        n,
        |n| webhook("metadata", json!({text(n): "v"})),
        "validation_failed",
    ));
    cases.push(refused(
        "empty metadata key",
        webhook("metadata", json!({"": "v"})),
        "validation_failed",
    ));
    let n = max("metadata", "/additionalProperties/maxLength");
    cases.extend(at_and_past(
        "metadata value",
        n,
        |n| webhook("metadata", json!({"k": text(n)})),
        "validation_failed",
    ));

    let n = max("headers", "/maxProperties");
    cases.extend(at_and_past(
        "headers",
        n,
        |n| webhook("headers", entries(n, "x-h", "v")),
        "validation_failed",
    ));
    let n = max("headers", "/propertyNames/maxLength");
    cases.extend(at_and_past(
        "header name",
        n,
        |n| webhook("headers", json!({"x".repeat(n): "v"})),
        "validation_failed",
    ));
    cases.push(refused(
        "header name",
        webhook("headers", json!({"x y": "v"})),
        "validation_failed",
    ));
    cases.push(refused_as_described(
        "reserved header",
        webhook("headers", json!({"Host": "v"})),
        "validation_failed",
    ));
    let n = max("headers", "/additionalProperties/maxLength");
    let spaced = format!("{} v", "v".repeat(n - 2));
    cases.push(accepted(
        "header value",
        webhook("headers", json!({"x-h": spaced})),
    ));
    cases.push(refused(
        "header value",
        webhook("headers", json!({"x-h": "v".repeat(n + 1)})),
        "validation_failed",
    ));
    cases.push(refused(
        "header value",
        webhook("headers", json!({"x-h": "é"})),
        "validation_failed",
    ));

    let hmac = json!({"type": "hmac-hex", "header": "x-signature"});
    let with_secret = |secret: String| {
        let mut body = webhook("secret", json!(secret));
        body["signature"] = hmac.clone();
        body
    };
    let (min, n) = (max("secret", "/minLength"), max("secret", "/maxLength"));
    cases.push(accepted("shortest secret", with_secret("s".repeat(min))));
    cases.push(refused(
        "shortest secret",
        with_secret("s".repeat(min - 1)),
        "validation_failed",
    ));
    cases.extend(at_and_past(
        "longest secret",
        n,
        |n| with_secret("s".repeat(n)),
        "validation_failed",
    ));
    cases.push(refused(
        "secret",
        with_secret("s ".repeat(min)),
        "validation_failed",
    ));
    cases.push(refused_as_described(
        "standard secret",
        webhook("secret", json!("s".repeat(min))),
        "validation_failed",
    ));

    let (min, n) = (max("rate_limit", "/minimum"), max("rate_limit", "/maximum"));
    cases.push(accepted("rate_limit", webhook("rate_limit", json!(min))));
    cases.push(accepted("rate_limit", webhook("rate_limit", json!(n))));
    cases.push(refused(
        "rate_limit",
        webhook("rate_limit", json!(min - 1)),
        "validation_failed",
    ));
    cases.push(refused(
        "rate_limit",
        webhook("rate_limit", json!(n + 1)),
        "validation_failed",
    ));
    cases
}

/// The boundaries of `RetryOverride` and of `SignatureProfile`'s header names, from the
/// document.
fn retry_and_signature_cases(document: &Value) -> Vec<Case> {
    let schemas = &document["components"]["schemas"];
    let mut cases = Vec::new();
    let retry = |field: &str, value: Value| {
        let mut retry = json!({"max_attempts": 3, "initial_delay_secs": 1});
        retry[field] = value;
        webhook("retry", retry)
    };
    for field in ["max_attempts", "initial_delay_secs", "multiplier"] {
        let property = &schemas["RetryOverride"]["properties"][field];
        let (min, n) = (limit(property, "/minimum"), limit(property, "/maximum"));
        let past = |n: usize, step: i64| json!(i64::try_from(n).unwrap() + step);
        cases.push(accepted(field, retry(field, json!(min))));
        cases.push(accepted(field, retry(field, json!(n))));
        cases.push(refused(
            field,
            retry(field, past(min, -1)),
            "validation_failed",
        ));
        cases.push(refused(
            field,
            retry(field, past(n, 1)),
            "validation_failed",
        ));
    }

    let profiles = schemas["SignatureProfile"]["oneOf"]
        .as_array()
        .expect("profiles");
    let profile = |name: &str| {
        profiles
            .iter()
            .find(|p| p["properties"]["type"]["enum"][0] == name)
            .unwrap_or_else(|| panic!("no profile {name}"))
    };
    let signed = |signature: Value| {
        let mut body = webhook("signature", signature);
        body["secret"] = json!("s".repeat(32));
        body
    };
    let n = limit(profile("hmac-hex"), "/properties/header/maxLength");
    let header = |n: usize| json!({"type": "hmac-hex", "header": "x".repeat(n)});
    cases.extend(at_and_past(
        "signature header",
        n,
        |n| signed(header(n)),
        "validation_failed",
    ));
    let n = limit(profile("timestamped"), "/properties/prefix/maxLength");
    let prefix = |n: usize| json!({"type": "timestamped", "prefix": "x".repeat(n)});
    cases.extend(at_and_past(
        "signature prefix",
        n,
        |n| signed(prefix(n)),
        "validation_failed",
    ));
    cases
}

/// The boundaries of `CreateEventType`.
fn event_type_cases(schema: &Value) -> Vec<Case> {
    let field = |name: &str| &schema["properties"][name];
    let mut cases = Vec::new();
    let entry = |name: String, description: String, example: Value| json!({"name": name, "description": description, "example": example});
    let n = limit(field("name"), "/maxLength");
    let long_name = |n: usize, tag: char| format!("{tag}.{}", "n".repeat(n - 2));
    cases.push(accepted(
        "name",
        entry(long_name(n, 'a'), String::new(), json!(null)),
    ));
    cases.push(refused(
        "name",
        entry(long_name(n + 1, 'b'), String::new(), json!(null)),
        "validation_failed",
    ));
    cases.push(refused(
        "name",
        entry("a..b".into(), String::new(), json!(null)),
        "validation_failed",
    ));
    let n = limit(field("description"), "/maxLength");
    cases.push(accepted(
        "description",
        entry("c".into(), text(n), json!(null)),
    ));
    cases.push(refused(
        "description",
        entry("d".into(), text(n + 1), json!(null)),
        "validation_failed",
    ));
    cases.push(accepted(
        "example of any JSON",
        entry("e".into(), String::new(), json!("text")),
    ));
    cases
}

/// Sends every case as `POST path` and checks the document and the API agree with it.
async fn check(api: &Api, key: &str, path: &str, validator: &Validator, cases: &[Case]) {
    for case in cases {
        let valid = validator.is_valid(&case.body);
        let expected_valid = case.refused_with.is_none() || case.described;
        assert_eq!(
            valid,
            expected_valid,
            "{path} {}: the document finds it {}",
            case.what,
            if valid { "valid" } else { "invalid" }
        );
        let (status, answer) = api.post(path, key, &case.body).await;
        match case.refused_with {
            None => assert!(
                status.is_success(),
                "{path} {}: refused ({status}) at the documented limit: {answer}",
                case.what
            ),
            Some(code) => {
                assert_eq!(
                    status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{path} {}: {answer}",
                    case.what
                );
                assert_eq!(answer["error"]["code"], code, "{path} {}", case.what);
            }
        }
    }
}

/// The document's description of a query parameter of `GET path`.
fn parameter<'a>(document: &'a Value, path: &str, name: &str) -> &'a Value {
    document["paths"][path]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("GET {path} has no parameter {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_documents_limits_are_the_handlers_limits() {
    let (hookline, _) = start_hookline(sender_args()).await;
    let api = Api::new(&hookline.base_url);
    let document = document();
    let schemas = &document["components"]["schemas"];

    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let create_webhook = validator(&document, "CreateWebhook");
    check(
        &api,
        &key,
        "/v1/webhooks",
        &create_webhook,
        &webhook_cases(&schemas["CreateWebhook"]),
    )
    .await;
    // Another tenant: a tenant's number of webhooks is limited.
    let (_, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let cases = retry_and_signature_cases(&document);
    check(&api, &key, "/v1/webhooks", &create_webhook, &cases).await;
    let cases = event_type_cases(&schemas["CreateEventType"]);
    check(
        &api,
        &key,
        "/v1/event-types",
        &validator(&document, "CreateEventType"),
        &cases,
    )
    .await;

    // Query parameters: enums and ranges.
    let (status, webhook) = api
        .post("/v1/webhooks", &key, &webhook("name", json!("q")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    let id = webhook["id"].as_str().unwrap();
    let events = format!("/v1/webhooks/{id}/events");
    let delivery = parameter(&document, "/v1/webhooks/{webhook_id}/events", "delivery");
    for filter in delivery["schema"]["enum"].as_array().expect("an enum") {
        let query = format!("{events}?delivery={}", filter.as_str().unwrap());
        let (status, page) = api.get(&query, &key).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
    }
    let stats_path = "/v1/webhooks/{webhook_id}/stats";
    let hours = &parameter(&document, stats_path, "hours")["schema"];
    let limit_param = &parameter(&document, "/v1/webhooks/{webhook_id}/events", "limit")["schema"];
    let queries = [
        (format!("{events}?delivery=succeeded"), false),
        (
            format!(
                "{events}?delivery=unsucceeded&limit={}",
                limit(limit_param, "/maximum")
            ),
            true,
        ),
        (
            format!(
                "{events}?delivery=unsucceeded&limit={}",
                limit(limit_param, "/maximum") + 1
            ),
            false,
        ),
        (
            format!("/v1/webhooks/{id}/stats?hours={}", limit(hours, "/maximum")),
            true,
        ),
        (
            format!(
                "/v1/webhooks/{id}/stats?hours={}",
                limit(hours, "/maximum") + 1
            ),
            false,
        ),
    ];
    for (query, ok) in queries {
        let (status, answer) = api.call(Method::GET, &query, Some(&key), None).await;
        if ok {
            assert_eq!(status, StatusCode::OK, "{query}: {answer}");
        } else {
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{query}: {answer}"
            );
            assert_eq!(answer["error"]["code"], "validation_failed", "{query}");
        }
    }
}
