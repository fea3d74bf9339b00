//! The owner's API: tenants and keys (admin), and the webhook lifecycle, with tenant isolation
//! on every route.

use std::time::Duration;

use hookline_testkit::{eventually, records_in, Api, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{start_ingest, start_ingest_on, MAX_WEBHOOKS_PER_TENANT};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("a page has data")
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn publish(api: &Api, key: &str) -> StatusCode {
    api.post("/v1/events", key, &json!({"type": "a.b", "data": {}}))
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_get_and_disable_tenants_and_revoke_keys_everywhere() {
    let (ingest, kafka) = start_ingest().await;
    let other_ingest = start_ingest_on(kafka).await;
    let api = Api::new(&ingest.base_url);
    let elsewhere = Api::new(&other_ingest.base_url);
    let (tenant_a, key_a) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (tenant_b, key_b) = api.tenant_with_key(ADMIN_TOKEN, None).await;

    let (status, tenant) = api
        .get(&format!("/v1/tenants/{tenant_a}"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::OK, "{tenant}");
    assert_eq!(tenant["id"], json!(tenant_a));
    assert!(tenant.get("disabled_at").is_none());
    let (status, body) = api.get("/v1/tenants/ten_missing", ADMIN_TOKEN).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));

    let (status, first) = api.get("/v1/tenants?limit=1", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(ids(&first), [tenant_a.as_str()]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = api
        .get(&format!("/v1/tenants?limit=1&cursor={cursor}"), ADMIN_TOKEN)
        .await;
    assert_eq!(ids(&second), [tenant_b.as_str()]);
    assert_eq!(second["next_cursor"], Value::Null);
    let (status, body) = api.get("/v1/tenants?limit=101", ADMIN_TOKEN).await;
    assert_eq!((status.as_u16(), code(&body)), (422, "validation_failed"));

    // Tenant keys are not operator tokens, on any admin route.
    for (method, path) in [
        (Method::GET, "/v1/tenants".to_owned()),
        (Method::GET, format!("/v1/tenants/{tenant_a}")),
        (Method::POST, format!("/v1/tenants/{tenant_a}/disable")),
        (Method::GET, format!("/v1/tenants/{tenant_a}/keys")),
    ] {
        let (status, body) = api.call(method, &path, Some(&key_a), None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}"
        );
    }

    let (status, keys) = api
        .get(&format!("/v1/tenants/{tenant_a}/keys"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let listed = &keys["data"].as_array().unwrap()[0];
    assert!(listed.get("key").is_none() && listed.get("key_hash").is_none());
    let key_a_id = listed["id"].as_str().unwrap().to_owned();

    // A key reads itself (never its secret), and only with itself.
    let (status, itself) = api.get("/v1/keys/self", &key_a).await;
    assert_eq!(status, StatusCode::OK, "{itself}");
    assert_eq!(itself["id"], key_a_id.as_str());
    assert_eq!(itself["tenant_id"], tenant_a.as_str());
    assert!(itself["scopes"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(itself.get("key").is_none() && itself.get("key_hash").is_none());
    let (status, _) = api.get("/v1/keys/self", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A key is revoked only under its own tenant.
    let (status, body) = api
        .post(
            &format!("/v1/tenants/{tenant_b}/keys/{key_a_id}/revoke"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(publish(&elsewhere, &key_a).await, StatusCode::ACCEPTED);

    let (status, revoked) = api
        .post(
            &format!("/v1/tenants/{tenant_a}/keys/{key_a_id}/revoke"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(publish(&api, &key_a).await, StatusCode::UNAUTHORIZED);
    eventually(
        "the other ingest to refuse the revoked key",
        Duration::from_secs(10),
        || async { (publish(&elsewhere, &key_a).await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    assert_eq!(publish(&api, &key_b).await, StatusCode::ACCEPTED);

    let (status, disabled) = api
        .post(
            &format!("/v1/tenants/{tenant_b}/disable"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert!(disabled["disabled_at"].is_string());
    assert_eq!(publish(&api, &key_b).await, StatusCode::UNAUTHORIZED);
    let (status, body) = api
        .post(
            &format!("/v1/tenants/{tenant_b}/keys"),
            ADMIN_TOKEN,
            &json!({"name": "still listed"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let fresh_key = body["key"].as_str().unwrap();
    assert_eq!(
        publish(&api, fresh_key).await,
        StatusCode::UNAUTHORIZED,
        "a disabled tenant's new keys do not work either"
    );

    other_ingest
        .stop()
        .await
        .expect("ingest shuts down cleanly");
    ingest.stop().await.expect("ingest shuts down cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_manage_the_whole_webhook_lifecycle_of_their_own_tenant_only() {
    let (ingest, kafka) = start_ingest().await;
    let api = Api::new(&ingest.base_url);
    let (_tenant, key) = api.tenant_with_key(ADMIN_TOKEN, None).await;
    let (_other, other_key) = api.tenant_with_key(ADMIN_TOKEN, None).await;

    let (status, created) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({
                "url": "https://example.com/hooks",
                "events": ["invoice.*"],
                "name": "billing",
                "headers": {"X-Api-Key": "abc"},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["status"], json!("active"));
    assert_eq!(created["headers"], json!({"X-Api-Key": "abc"}));
    let path = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());

    let (status, patched) = api
        .call(
            Method::PATCH,
            &path,
            Some(&key),
            Some(&json!({"name": "renamed", "events": ["invoice.paid"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], json!("renamed"));
    assert_eq!(patched["events"], json!(["invoice.paid"]));
    assert_eq!(patched["url"], json!("https://example.com/hooks"));
    assert!(patched.get("secret").is_none());
    for (patch, expected) in [
        (json!({"url": "ftp://example.com"}), "invalid_url"),
        (json!({"events": ["not valid!"]}), "invalid_events"),
        (json!({"headers": {"webhook-id": "x"}}), "validation_failed"),
        (
            json!({"headers": {"content-type": "text/plain"}}),
            "validation_failed",
        ),
        (json!({"headers": {"bad name": "x"}}), "validation_failed"),
        (json!({"secret": "whsec_x"}), "validation_failed"),
        (
            json!({"signature": {"type": "hmac-hex", "header": "webhook-signature"}}),
            "validation_failed",
        ),
        (
            json!({"signature": {"type": "timestamped", "prefix": ""}}),
            "validation_failed",
        ),
        (json!({"signature": {"type": "md5"}}), "validation_failed"),
        (json!({"payload": "xml"}), "validation_failed"),
    ] {
        let (status, body) = api
            .call(Method::PATCH, &path, Some(&key), Some(&patch))
            .await;
        assert_eq!(status.as_u16(), 422, "{patch}: {body}");
        assert_eq!(code(&body), expected, "{patch}: {body}");
    }

    let (status, inactive) = api
        .post(&format!("{path}/deactivate"), &key, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{inactive}");
    assert_eq!(
        (inactive["status"].clone(), inactive["active"].clone()),
        (json!("inactive"), json!(false))
    );
    assert_eq!(inactive["name"], json!("renamed"), "configuration is kept");
    let (_, list) = api.get("/v1/webhooks?status=inactive", &key).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let (_, list) = api.get("/v1/webhooks?status=active", &key).await;
    assert!(list["data"].as_array().unwrap().is_empty(), "{list}");
    let (status, body) = api.get("/v1/webhooks?status=sleeping", &key).await;
    assert_eq!((status.as_u16(), code(&body)), (422, "validation_failed"));
    let (status, active) = api
        .post(&format!("{path}/activate"), &key, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(active["status"], json!("active"));

    let (status, rotated) = api
        .post(&format!("{path}/rotate-secret"), &key, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    let (_, fetched) = api.get(&path, &key).await;
    assert!(
        fetched.get("secret").is_none(),
        "secrets are shown only once"
    );
    // Neither secret is in the topic in clear: both are sealed.
    let stored: Vec<String> = records_in(&kafka, &kafka.topics().webhooks())
        .await
        .into_iter()
        .filter_map(|(_, value)| value.map(|v| String::from_utf8(v).unwrap()))
        .collect();
    assert!(!stored.is_empty());
    for record in &stored {
        assert!(
            !record.contains(&secret) && !record.contains(new_secret),
            "{record}"
        );
        assert!(record.contains("enc:v1:dev:"), "{record}");
    }

    // Another tenant's key sees none of it, on every route.
    for (method, route) in [
        (Method::GET, path.clone()),
        (Method::PATCH, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/activate")),
        (Method::POST, format!("{path}/deactivate")),
        (Method::POST, format!("{path}/rotate-secret")),
        (Method::POST, format!("{path}/test")),
    ] {
        let body = match route.rsplit('/').next() {
            Some("test") => Some(json!({"type": "test.ping"})),
            _ => (method == Method::PATCH).then(|| json!({"name": "stolen"})),
        };
        let (status, answer) = api
            .call(method, &route, Some(&other_key), body.as_ref())
            .await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{route}"
        );
    }
    let (_, others) = api.get("/v1/webhooks", &other_key).await;
    assert!(others["data"].as_array().unwrap().is_empty());
    let (_, unchanged) = api.get(&path, &key).await;
    assert_eq!(unchanged["name"], json!("renamed"));

    // Pages, then the per-tenant limit.
    for _ in 1..MAX_WEBHOOKS_PER_TENANT {
        let (status, body) = api
            .post(
                "/v1/webhooks",
                &key,
                &json!({"url": "https://example.com/more", "events": ["*"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = api
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": "https://example.com/one-too-many", "events": ["*"]}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (409, "webhook_limit_reached")
    );
    let mut seen = Vec::new();
    let mut next = "/v1/webhooks?limit=2".to_owned();
    loop {
        let (status, page) = api.get(&next, &key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["data"].as_array().unwrap().len() <= 2);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => next = format!("/v1/webhooks?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), MAX_WEBHOOKS_PER_TENANT);
    let (status, body) = api.get("/v1/webhooks?limit=0", &key).await;
    assert_eq!((status.as_u16(), code(&body)), (422, "validation_failed"));

    // Private, loopback and reserved addresses are refused in every spelling.
    for url in [
        "https://127.0.0.1/hooks",
        "https://2130706433/",
        "https://0x7f.0.0.1/",
        "https://0177.0.0.1/",
        "https://0.0.0.0/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/",
        "https://[fd00::1]/",
    ] {
        let (status, body) = api
            .call(Method::PATCH, &path, Some(&key), Some(&json!({"url": url})))
            .await;
        assert_eq!(
            (status.as_u16(), code(&body)),
            (422, "invalid_url"),
            "{url}: {body}"
        );
    }

    // No such name (`.invalid` never resolves): the test attempt cannot connect.
    let (status, body) = api
        .call(
            Method::PATCH,
            &path,
            Some(&key),
            Some(&json!({"url": "https://hookline-test.invalid/hooks"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .post(&format!("{path}/test"), &key, &json!({"type": "test.ping"}))
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (422, "url_unreachable"),
        "{body}"
    );
    let (status, body) = api
        .post(
            &format!("{path}/test"),
            &key,
            &json!({"type": "not a type!"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (422, "validation_failed"),
        "{body}"
    );

    let (status, body) = api.delete(&path, &key).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"deleted": true})));
    ingest.stop().await.expect("ingest shuts down cleanly");
}
